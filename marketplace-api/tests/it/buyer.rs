//! A buyer's session: list, get URLs, download whole and ranged; versions; usage.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

use crate::fixture::*;

#[tokio::test]
async fn a_buyer_lists_gets_urls_and_downloads_whole_and_ranged() {
    let f = fixture().await;
    let list = send(&f.state, get("/datasets", Some(&f.buyer))).await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.json());
    let ds = &list.json()["datasets"][0];
    assert_eq!(ds["id"], DATASET);
    assert_eq!(ds["version"], 2);
    assert_eq!(ds["k"], 20);
    assert_eq!(ds["policyId"], "default-v2");
    assert_eq!(ds["records"], 300);
    assert_eq!(ds["tenants"], 2);
    assert_eq!(ds["access"]["status"], "licensed");
    assert_eq!(ds["schema"][0]["name"], "event_id");

    let urls = send(&f.state, signed_url_request(&f.buyer, &json!({}))).await;
    assert_eq!(urls.status, StatusCode::OK, "{:?}", urls.json());
    let body = urls.json();
    assert_eq!(body["version"], 2);
    let files = body["files"].as_array().expect("files");
    assert_eq!(files.len(), 4, "two releases, two files each");
    assert_eq!(body["quota"]["used"], 1);
    assert_eq!(body["quota"]["remaining"], 999);
    let expires = chrono::DateTime::parse_from_rfc3339(body["expiresAt"].as_str().expect("expiry"))
        .expect("rfc3339");
    let ttl = expires.timestamp() - chrono::Utc::now().timestamp();
    assert!(
        (895..=900).contains(&ttl),
        "default lifetime is 15 minutes: {ttl}"
    );

    for file in files {
        let url = local_part(file["url"].as_str().expect("url"));
        let path = url
            .split('?')
            .next()
            .expect("path")
            .trim_start_matches("/files/")
            .to_owned();
        let want = &f
            .files
            .iter()
            .find(|(p, _)| *p == path)
            .expect("a published file")
            .1;
        let whole = send(&f.state, get(&url, None)).await;
        assert_eq!(whole.status, StatusCode::OK);
        assert_eq!(&whole.body, want, "{path}");
        let ranged = send(
            &f.state,
            Request::get(&url)
                .header(header::RANGE, "bytes=100-199")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
        assert_eq!(ranged.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(ranged.body, want[100..200].to_vec());
        assert_eq!(
            ranged
                .headers
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok()),
            Some(format!("bytes 100-199/{}", want.len()).as_str())
        );
        let head = send(
            &f.state,
            Request::head(&url).body(Body::empty()).expect("req"),
        )
        .await;
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.body.is_empty());
        assert_eq!(
            head.headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()),
            Some(want.len().to_string().as_str())
        );
    }
}

#[tokio::test]
async fn a_version_names_the_releases_it_covers() {
    let f = fixture().await;
    publish(f.dir.path(), &f.state, 3, "t-1").await;
    let latest = send(&f.state, signed_url_request(&f.buyer, &json!({})))
        .await
        .json();
    assert_eq!(latest["version"], 3);
    assert_eq!(latest["files"].as_array().map(Vec::len), Some(6));
    let v1 = send(
        &f.state,
        signed_url_request(&f.buyer, &json!({"version": 1})),
    )
    .await
    .json();
    assert_eq!(v1["version"], 1);
    let releases: Vec<&str> = v1["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["releaseId"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(releases, vec!["r-1", "r-1"]);
    // Syncing again adds nothing.
    assert_eq!(
        f.state.market.sync_versions(DATASET).await.expect("sync"),
        0
    );
}

#[tokio::test]
async fn withdrawn_consent_of_one_tenant_removes_only_its_releases() {
    let f = fixture().await;
    consent(&f.state, "t-1", false).await;
    let body = send(&f.state, signed_url_request(&f.buyer, &json!({})))
        .await
        .json();
    let releases: std::collections::BTreeSet<&str> = body["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["releaseId"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        releases.into_iter().collect::<Vec<_>>(),
        vec!["r-2"],
        "t-1's release is gone, t-2's stays"
    );
    assert!(
        body["files"]
            .as_array()
            .expect("files")
            .iter()
            .all(|f| !f["url"].as_str().unwrap_or("").contains("tenant=t-1"))
    );
    let list = send(&f.state, get("/datasets", Some(&f.buyer)))
        .await
        .json();
    assert_eq!(list["datasets"][0]["tenants"], 1);
    assert_eq!(list["datasets"][0]["records"], 200);
}

#[tokio::test]
async fn usage_counts_requests_files_and_bytes_per_day_with_the_quota_left() {
    let f = fixture().await;
    for _ in 0..3 {
        assert_eq!(
            send(&f.state, signed_url_request(&f.buyer, &json!({})))
                .await
                .status,
            StatusCode::OK
        );
    }
    let usage = send(&f.state, get("/usage", Some(&f.buyer))).await;
    assert_eq!(usage.status, StatusCode::OK, "{:?}", usage.json());
    let u = usage.json();
    let day = &u["days"][0];
    assert_eq!(day["dataset"], DATASET);
    assert_eq!(day["requests"], 3);
    assert_eq!(day["files"], 12);
    assert_eq!(day["bytes"], 3 * 4 * 3000);
    assert_eq!(u["quotas"][0]["used"], 3);
    assert_eq!(u["quotas"][0]["remaining"], 997);
    assert_eq!(u["quotas"][0]["contractId"], f.contract_id.as_str());
    let bad = send(&f.state, get("/usage?from=2026-13-01", Some(&f.buyer))).await;
    assert_eq!(
        (bad.status, bad.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
}

#[tokio::test]
async fn revenue_follows_the_records_accessed_and_adds_up() {
    let f = fixture().await;
    consent(&f.state, "t-2", false).await;
    send(&f.state, signed_url_request(&f.buyer, &json!({}))).await; // r-2 only
    consent(&f.state, "t-2", true).await;
    consent(&f.state, "t-1", false).await;
    // Opted in (set_consent in the fixture opts in); now both have been accessed.
    consent(&f.state, "t-1", true).await;
    send(&f.state, signed_url_request(&f.buyer, &json!({}))).await;
    let period = chrono::Utc::now().format("%Y-%m").to_string();
    let lines = send(
        &f.state,
        post_json(
            &format!("/admin/revenue/{period}"),
            Some(&f.admin),
            &json!(null),
        ),
    )
    .await;
    assert_eq!(lines.status, StatusCode::OK, "{:?}", lines.json());
    let lines = lines.json();
    let ours: Vec<_> = lines
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["contractId"] == f.contract_id.as_str())
        .collect();
    let amounts: Vec<(&str, u64)> = ours
        .iter()
        .map(|l| {
            (
                l["tenant"].as_str().unwrap_or(""),
                l["amountMinor"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // r-1 has 100 records (t-1), r-2 200 (t-2): 100_000 split 1:2, leftover to the larger remainder.
    assert_eq!(amounts, vec![("t-1", 33_333), ("t-2", 66_667)]);
    let stored = send(
        &f.state,
        get(&format!("/admin/revenue/{period}"), Some(&f.admin)),
    )
    .await
    .json();
    assert_eq!(stored.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_version_with_no_consenting_tenant_sells_nothing_and_charges_nothing() {
    let f = fixture().await;
    consent(&f.state, "t-1", false).await;
    consent(&f.state, "t-2", false).await;
    let a = send(&f.state, signed_url_request(&f.buyer, &json!({}))).await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::NOT_FOUND, "no_consenting_releases")
    );
    let usage = send(&f.state, get("/usage", Some(&f.buyer))).await.json();
    assert_eq!(usage["quotas"][0]["used"], 0);
    assert!(usage["days"].as_array().is_some_and(Vec::is_empty));
    // A hostile dataset id is a plain 404, not a backend error.
    let odd = send(
        &f.state,
        post_json(
            "/datasets/..%2f..%2fetc/signed-url",
            Some(&f.buyer),
            &json!({}),
        ),
    )
    .await;
    assert_eq!(
        (odd.status, odd.code().as_str()),
        (StatusCode::NOT_FOUND, "dataset_not_found")
    );
}
