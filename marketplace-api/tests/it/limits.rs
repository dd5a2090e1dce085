//! Usage plans: the token bucket's 429 with `Retry-After`, and the quota's 403, exact
//! across two API instances sharing one control plane.

use axum::http::{StatusCode, header};
use serde_json::json;

use crate::fixture::*;

#[tokio::test]
async fn a_burst_over_the_rate_gets_429_with_retry_after() {
    let f = fixture_with(plan(1, 3, 1_000)).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let a = send(&f.state, signed_url_request(&f.buyer, &json!({}))).await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(a.code(), "rate_limited");
            retry_after = a
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
        }
        statuses.push(a.status.as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    assert_eq!(retry_after.as_deref(), Some("1"));
    // Rate-limited requests are not usage.
    let usage = send(&f.state, get("/usage", Some(&f.buyer))).await.json();
    assert_eq!(usage["quotas"][0]["used"], 3);
}

#[tokio::test]
async fn a_used_up_quota_is_403_and_two_instances_never_oversell_it() {
    const QUOTA: u64 = 25;
    let f = fixture_with(plan(10_000, 10_000, QUOTA)).await;
    let other = instance(f.dir.path());
    let requests = (0..100).map(|i| {
        let state = if i % 2 == 0 {
            f.state.clone()
        } else {
            other.clone()
        };
        let token = f.buyer.clone();
        tokio::spawn(async move { send(&state, signed_url_request(&token, &json!({}))).await })
    });
    let answers = futures::future::join_all(requests).await;
    let mut ok = 0;
    for a in answers {
        let a = a.expect("task");
        match a.status {
            StatusCode::OK => ok += 1,
            StatusCode::FORBIDDEN => assert_eq!(a.code(), "quota_exceeded"),
            other => panic!("unexpected {other}: {:?}", a.json()),
        }
    }
    assert_eq!(ok, QUOTA, "exactly the quota was sold");
    let events = f
        .state
        .market
        .store
        .usage_events(
            Some("b-acme"),
            chrono::Utc::now() - chrono::TimeDelta::days(1),
            chrono::Utc::now() + chrono::TimeDelta::days(1),
        )
        .await
        .expect("events");
    assert_eq!(events.len() as u64, QUOTA, "one usage event per URL answer");
    let usage = send(&other, get("/usage", Some(&f.buyer))).await.json();
    assert_eq!(usage["quotas"][0]["remaining"], 0);
}
