//! Usage plans' rate limits: a token bucket per contract, in this process.
//!
//! Written here rather than taken from a crate because the bucket's rate and size come
//! from each contract's plan at request time (and change when an operator changes the
//! plan), and the refusal must say how long to wait (`Retry-After`); the whole of it is a
//! map of two numbers per contract.
//!
//! Buckets are per API instance: N instances behind a load balancer allow up to N times
//! the plan's rate (API Gateway's own limits are likewise approximate). Quotas, which are
//! what a buyer pays for, are counted in the shared control plane and are exact.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use catalog::market::UsagePlan;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by contract id.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket, or says how long until one is there.
    ///
    /// # Errors
    /// The wait until the next token, when the bucket is empty.
    pub fn check(&self, key: &str, plan: &UsagePlan) -> Result<(), Duration> {
        self.check_at(key, plan, Instant::now())
    }

    fn check_at(&self, key: &str, plan: &UsagePlan, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(plan.rate_per_sec.max(1));
        let burst = f64::from(plan.burst.max(1));
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::market::QuotaPeriod;

    fn plan(rate: u32, burst: u32) -> UsagePlan {
        UsagePlan {
            rate_per_sec: rate,
            burst,
            quota: 1_000,
            period: QuotaPeriod::Day,
        }
    }

    #[test]
    fn a_burst_passes_then_the_rate_refills() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        let p = plan(2, 5);
        for _ in 0..5 {
            assert!(limiter.check_at("c", &p, t0).is_ok());
        }
        let wait = limiter.check_at("c", &p, t0).expect_err("bucket empty");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        assert!(
            limiter.check_at("other", &p, t0).is_ok(),
            "buckets are per key"
        );
        assert!(
            limiter
                .check_at("c", &p, t0 + Duration::from_millis(500))
                .is_ok()
        );
        assert!(
            limiter
                .check_at("c", &p, t0 + Duration::from_millis(500))
                .is_err()
        );
        // Idle for long: refilled to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(limiter.check_at("c", &p, later).is_ok());
        }
        assert!(limiter.check_at("c", &p, later).is_err());
    }
}
