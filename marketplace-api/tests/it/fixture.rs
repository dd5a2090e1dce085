//! A marketplace on temporary SQLite files and a curated folder holding two published
//! releases of `contacts` (tenants t-1 and t-2, both consenting), with an admin key and a
//! buyer `b-acme` holding a contract and a grant.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use catalog::market::{QuotaPeriod, Role, UsagePlan};
use catalog::storage::Location;
use catalog::{ReleaseFile, SqliteCatalog, SqliteConsentStore, SqliteMarketStore};
use chrono::{TimeDelta, Utc};
use http_body_util::BodyExt;
use marketplace_api::http::AppState;
use marketplace_api::metrics::Metrics;
use marketplace_api::secrets::{KeyHasher, UrlKeys};
use marketplace_api::service::NewContract;
use marketplace_api::{Marketplace, Settings, router};
use serde_json::Value;
use tower::ServiceExt;

pub const PEPPER: &str = "test-pepper-test-pepper-test-pepper-0001";
pub const URL_KEYS: &str = "k1:url-signing-secret-url-signing-secret-01";
pub const DATASET: &str = "contacts";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub admin: String,
    pub buyer: String,
    pub contract_id: String,
    /// File contents by relative path.
    pub files: Vec<(String, Vec<u8>)>,
}

/// A response: status, headers, body bytes.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The stable error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["errorCode"].as_str().unwrap_or("").to_owned()
    }
}

pub fn plan(rate: u32, burst: u32, quota: u64) -> UsagePlan {
    UsagePlan {
        rate_per_sec: rate,
        burst,
        quota,
        period: QuotaPeriod::Day,
    }
}

/// A marketplace on the files of `dir` (a second call on the same folder is a second API
/// instance sharing the control plane).
pub fn instance(dir: &std::path::Path) -> AppState {
    let state_dir = dir.join("state");
    let curated = Location::open(
        &dir.join("curated").display().to_string(),
        &catalog::AwsSettings::default(),
    )
    .expect("curated");
    let market = Marketplace::new(
        Arc::new(SqliteMarketStore::open_in_state_dir(&state_dir).expect("market")),
        Arc::new(SqliteConsentStore::open_in_state_dir(&state_dir).expect("consent")),
        Arc::new(SqliteCatalog::open_in_state_dir(&state_dir).expect("catalog")),
        curated,
        &Settings {
            public_url: Some("http://market.test".into()),
            ..Settings::default()
        },
        KeyHasher::new(PEPPER.as_bytes()).expect("pepper"),
        UrlKeys::parse(URL_KEYS).expect("keys"),
        &catalog::AwsSettings::default(),
    )
    .expect("marketplace");
    AppState {
        market,
        metrics: Arc::new(Metrics::new(Some(dir.join("state/metrics.jsonl")))),
        max_page_size: 2,
    }
}

/// Publishes release `n` of tenant `tenant` with two files of distinct bytes.
pub async fn publish(
    f_dir: &std::path::Path,
    state: &AppState,
    n: u32,
    tenant: &str,
) -> Vec<(String, Vec<u8>)> {
    let curated = Location::open(
        &f_dir.join("curated").display().to_string(),
        &catalog::AwsSettings::default(),
    )
    .expect("curated");
    let rid = format!("r-{n}");
    let rel_dir = format!("dataset={DATASET}/tenant={tenant}/dt=2026-11-24/release={rid}");
    std::fs::create_dir_all(f_dir.join("curated").join(&rel_dir)).expect("release dir");
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for part in 0..2_u8 {
        let rel = format!("{rel_dir}/part-{part:05}.parquet");
        let bytes: Vec<u8> = (0..3000_u32)
            .map(|i| (i as u8) ^ (n as u8) ^ part)
            .collect();
        std::fs::write(f_dir.join("curated").join(&rel), &bytes).expect("file");
        entries.push(ReleaseFile {
            path: format!("{}/{rel}", curated.url),
            size_bytes: bytes.len() as u64,
            rows: 100,
        });
        files.push((rel, bytes));
    }
    let mut release = catalog::conformance::sample_release(&rid, DATASET, tenant, &[]);
    release.files = entries;
    release.records_out = 100 * u64::from(n);
    release.published_at = Utc::now() + TimeDelta::milliseconds(i64::from(n));
    state
        .market
        .catalog
        .publish_release(&release)
        .await
        .expect("publish");
    state.market.sync_versions(DATASET).await.expect("sync");
    files
}

pub async fn consent(state: &AppState, tenant: &str, granted: bool) {
    state
        .market
        .set_consent(tenant, DATASET, granted, true, "test")
        .await
        .expect("consent");
}

/// A buyer with a key, a contract under `plan` and a grant on `contacts`.
pub async fn licensed_buyer(state: &AppState, id: &str, plan: UsagePlan) -> (String, String) {
    let m = &state.market;
    m.create_buyer(id, &format!("Buyer {id}"), None)
        .await
        .expect("buyer");
    let (key, _) = m.issue_key(id, Role::Buyer).await.expect("key");
    let contract = m
        .create_contract(NewContract {
            id: None,
            buyer: id.into(),
            dataset: DATASET.into(),
            terms: "test licence".into(),
            price_minor: 100_000,
            currency: "EUR".into(),
            start: Utc::now() - TimeDelta::days(1),
            end: Utc::now() + TimeDelta::days(30),
            plan,
        })
        .await
        .expect("contract");
    m.grant(id, DATASET, None).await.expect("grant");
    (key.token, contract.id)
}

pub async fn fixture_with(plan: UsagePlan) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = instance(dir.path());
    state
        .market
        .catalog
        .upsert_table(&catalog::conformance::sample_table(DATASET))
        .await
        .expect("table");
    let mut files = publish(dir.path(), &state, 1, "t-1").await;
    files.extend(publish(dir.path(), &state, 2, "t-2").await);
    consent(&state, "t-1", true).await;
    consent(&state, "t-2", true).await;
    let (admin, _) = state
        .market
        .issue_key("ops", Role::Admin)
        .await
        .expect("admin key");
    state
        .market
        .put_listing(catalog::market::Listing {
            dataset: DATASET.into(),
            title: "Contacts".into(),
            description: "k-anonymous contact form submissions".into(),
            expires_at: None,
            updated_at: Utc::now(),
        })
        .await
        .expect("listing");
    let (buyer, contract_id) = licensed_buyer(&state, "b-acme", plan).await;
    Fixture {
        dir,
        state,
        admin: admin.token,
        buyer,
        contract_id,
        files,
    }
}

pub async fn fixture() -> Fixture {
    fixture_with(plan(1_000, 1_000, 1_000)).await
}

/// Sends one request through a fresh router on `state`.
pub async fn send(state: &AppState, request: Request<Body>) -> Answer {
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

pub fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("request")
}

pub fn post_json(uri: &str, token: Option<&str>, body: &Value) -> Request<Body> {
    let mut b = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).expect("request")
}

pub fn signed_url_request(token: &str, body: &Value) -> Request<Body> {
    post_json(
        &format!("/datasets/{DATASET}/signed-url"),
        Some(token),
        body,
    )
}

/// The path and query of a signed URL (the host is the configured public URL).
pub fn local_part(url: &str) -> String {
    url.strip_prefix("http://market.test")
        .expect("URL under the public base")
        .to_owned()
}

pub fn put_json(uri: &str, token: &str, body: &Value) -> Request<Body> {
    Request::put(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .expect("request")
}

pub fn delete(uri: &str, token: &str) -> Request<Body> {
    Request::delete(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}
