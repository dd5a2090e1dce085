//! Leases: which worker may release a partition now. Two workers handed the same
//! partition at once (a duplicated event, two queues, a retry) race for its lease; one
//! wins, the other backs off. A worker killed while holding a lease loses it at expiry.
//!
//! # Guarantees every implementation upholds
//!
//! - **One holder.** Of any number of concurrent [`LeaseStore::acquire`] calls for a
//!   name whose lease is free or expired, exactly one succeeds.
//! - **Fenced.** Renewing or releasing needs the [`Lease`] value acquired (its token):
//!   a worker whose lease expired and was taken over cannot renew or drop the new
//!   holder's.
//! - **Expiry.** A lease not renewed is free once `expires_at` has passed.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::error::Result;

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What is leased, such as a partition key.
    pub name: String,
    /// Who holds it (a worker id, for logs).
    pub holder: String,
    /// Random per acquisition: fences renewals and releases.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Storage for leases: the control-plane SQLite file ([`crate::SqliteLeaseStore`]) or
/// DynamoDB with the `aws` feature (`aws::DynamoLeaseStore`).
#[async_trait]
pub trait LeaseStore: Send + Sync + std::fmt::Debug {
    /// Takes `name` for `ttl` if it is free or expired at `now`; `None` if someone else
    /// holds it.
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>>;

    /// Extends a held lease to `now + ttl`; `None` if it was lost (expired and taken, or
    /// released).
    async fn renew(
        &self,
        lease: &Lease,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>>;

    /// Gives a held lease up; whether it was still held.
    async fn release(&self, lease: &Lease) -> Result<bool>;
}

/// A random lease token.
#[must_use]
pub fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    // Two independently seeded SipHash states: 128 bits, no extra dependency.
    let mut out = String::with_capacity(32);
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
