//! Bounded load test of the marketplace API on 127.0.0.1, embedded default (SQLite
//! control plane, local curated folder): `GET /datasets` and `POST
//! /datasets/{id}/signed-url` from a pool of concurrent keep-alive clients, reporting
//! requests/s and p50/p99 latency, and checking that every signed-URL answer left its
//! usage event.
//!
//! ```text
//! cargo bench -p benches --bench api_load
//! API_LOAD_REQUESTS=20000 API_LOAD_CONCURRENCY=32 API_LOAD_RELEASES=30 cargo bench -p benches --bench api_load
//! ```
//!
//! Server and clients share the machine (and its two cores): the figures are what one
//! box serves while also generating the load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use catalog::market::{Listing, QuotaPeriod, Role, UsagePlan};
use catalog::storage::Location;
use catalog::{DataCatalog, SqliteCatalog, SqliteConsentStore, SqliteMarketStore};
use chrono::{TimeDelta, Utc};
use marketplace_api::http::AppState;
use marketplace_api::metrics::Metrics;
use marketplace_api::secrets::{KeyHasher, UrlKeys};
use marketplace_api::service::NewContract;
use marketplace_api::{Marketplace, Settings};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DATASET: &str = "contacts";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A marketplace with `releases` published releases of two tenants, a listing, and one
/// licensed buyer with a quota and rate far above the load.
async fn set_up(dir: &std::path::Path, releases: u64) -> anyhow::Result<(AppState, String)> {
    let state_dir = dir.join("state");
    let curated_dir = dir.join("curated");
    let curated = Location::open(
        &curated_dir.display().to_string(),
        &catalog::AwsSettings::default(),
    )?;
    let catalog = Arc::new(SqliteCatalog::open_in_state_dir(&state_dir)?);
    catalog
        .upsert_table(&catalog::conformance::sample_table(DATASET))
        .await?;
    for n in 0..releases {
        let tenant = format!("t-{}", n % 2);
        let rid = format!("r-{n:04}");
        let rel = format!(
            "dataset={DATASET}/tenant={tenant}/dt=2026-11-24/release={rid}/part-00000.parquet"
        );
        let path = curated_dir.join(&rel);
        std::fs::create_dir_all(path.parent().expect("parent"))?;
        std::fs::write(&path, vec![7_u8; 4096])?;
        let mut release = catalog::conformance::sample_release(&rid, DATASET, &tenant, &[]);
        release.files = vec![catalog::ReleaseFile {
            path: format!("{}/{rel}", curated.url),
            size_bytes: 4096,
            rows: 1000,
        }];
        release.published_at = Utc::now() + TimeDelta::milliseconds(i64::try_from(n)?);
        catalog.publish_release(&release).await?;
    }
    let settings = Settings::default();
    let market = Marketplace::new(
        Arc::new(SqliteMarketStore::open_in_state_dir(&state_dir)?),
        Arc::new(SqliteConsentStore::open_in_state_dir(&state_dir)?),
        catalog,
        curated,
        &settings,
        KeyHasher::new(b"bench-pepper-bench-pepper-bench-pepper-01")?,
        UrlKeys::parse("b1:bench-url-signing-secret-bench-url-signing-01")?,
        &catalog::AwsSettings::default(),
    )?;
    for t in ["t-0", "t-1"] {
        market.set_consent(t, DATASET, true, true, "bench").await?;
    }
    market
        .put_listing(Listing {
            dataset: DATASET.into(),
            title: "Contacts".into(),
            description: String::new(),
            expires_at: None,
            updated_at: Utc::now(),
        })
        .await?;
    market.create_buyer("b-bench", "Bench", None).await?;
    let (key, _) = market.issue_key("b-bench", Role::Buyer).await?;
    market
        .create_contract(NewContract {
            id: Some("c-bench".into()),
            buyer: "b-bench".into(),
            dataset: DATASET.into(),
            terms: "bench".into(),
            price_minor: 1,
            currency: "EUR".into(),
            start: Utc::now() - TimeDelta::days(1),
            end: Utc::now() + TimeDelta::days(1),
            plan: UsagePlan {
                rate_per_sec: 10_000_000,
                burst: 10_000_000,
                quota: 1_000_000_000,
                period: QuotaPeriod::Day,
            },
        })
        .await?;
    market.grant("b-bench", DATASET, None).await?;
    Ok((
        AppState {
            market,
            metrics: Arc::new(Metrics::new(None)),
            max_page_size: 100,
        },
        key.token,
    ))
}

struct Figures {
    ok: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `total` requests from `concurrency` workers, each a keep-alive connection.
async fn load(
    client: &reqwest::Client,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
    total: u64,
    concurrency: u64,
) -> Figures {
    let request = Arc::new(request);
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, request, issued) = (client.clone(), request.clone(), issued.clone());
            tokio::spawn(async move {
                let (mut ok, mut errors, mut latencies) = (0, 0, Vec::new());
                while issued.fetch_add(1, Ordering::Relaxed) < total {
                    let t = Instant::now();
                    let answer = request(&client).send().await;
                    let good = match answer {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    latencies.push(t.elapsed());
                    if good {
                        ok += 1;
                    } else {
                        errors += 1;
                    }
                }
                (ok, errors, latencies)
            })
        })
        .collect();
    let mut figures = Figures {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for w in workers {
        let (ok, errors, mut latencies) = w.await.expect("worker");
        figures.ok += ok;
        figures.errors += errors;
        figures.latencies.append(&mut latencies);
    }
    figures.elapsed = start.elapsed();
    figures.latencies.sort();
    figures
}

fn report(what: &str, f: &Figures) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what}: {} requests, {} errors, {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        f.ok + f.errors,
        f.errors,
        (f.ok + f.errors) as f64 / f.elapsed.as_secs_f64(),
        ms(percentile(&f.latencies, 0.50)),
        ms(percentile(&f.latencies, 0.99)),
        ms(f.latencies.last().copied().unwrap_or_default()),
    );
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with few requests.
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let total = env_or("API_LOAD_REQUESTS", if quick { 200 } else { 20_000 });
    let concurrency = env_or("API_LOAD_CONCURRENCY", 32);
    let releases = env_or("API_LOAD_RELEASES", 30);
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let (state, token) = server_rt.block_on(set_up(dir.path(), releases))?;
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let market = state.market.clone();
    let server = server_rt.spawn(marketplace_api::serve(
        state,
        listener,
        Duration::from_secs(3600),
        async {
            let _ = stopped.await;
        },
    ));
    println!(
        "api_load: {total} requests per endpoint, {concurrency} concurrent keep-alive clients, {releases} releases of one file in the version, 127.0.0.1:{}",
        addr.port()
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(usize::try_from(concurrency)?)
        .build()?;
    let base = format!("http://{addr}");
    let auth = format!("Bearer {token}");
    let (list, signed) = client_rt.block_on(async {
        let (b, a) = (base.clone(), auth.clone());
        let list = load(
            &client,
            move |c| c.get(format!("{b}/datasets")).header("authorization", &a),
            total,
            concurrency,
        )
        .await;
        let (b, a) = (base.clone(), auth.clone());
        let signed = load(
            &client,
            move |c| {
                c.post(format!("{b}/datasets/{DATASET}/signed-url"))
                    .header("authorization", &a)
            },
            total,
            concurrency,
        )
        .await;
        (list, signed)
    });
    report("GET /datasets", &list);
    report("POST /datasets/contacts/signed-url", &signed);
    let events = server_rt.block_on(market.store.usage_events(
        Some("b-bench"),
        Utc::now() - TimeDelta::days(1),
        Utc::now() + TimeDelta::days(1),
    ))?;
    println!(
        "usage events recorded: {} (signed-URL answers: {}); peak RSS {:.0} MiB",
        events.len(),
        signed.ok,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    let _ = stop.send(());
    server_rt.block_on(server)??;
    anyhow::ensure!(
        events.len() as u64 == signed.ok,
        "a signed-URL answer without its usage event"
    );
    anyhow::ensure!(list.errors == 0 && signed.errors == 0, "errors under load");
    Ok(())
}
