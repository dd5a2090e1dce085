//! The marketplace end to end over real sockets: an operator sets up a buyer with
//! `stackpro` commands, `stackpro serve` runs (twice, on one control plane), and a buyer
//! with a real HTTP client (reqwest) lists, gets signed URLs, downloads whole and ranged,
//! and reads the Parquet back equal to what `stackpro query` returns.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use arrow::array::AsArray;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;

const PEPPER: &str = "e2e-api-key-pepper-e2e-api-key-pepper-0001";
const URL_KEYS: &str = "e2e-k1:e2e-url-signing-secret-e2e-url-signing-01";

/// A `stackpro serve` process, stopped on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn market_cmd(env: &Env, args: &[&str]) -> Command {
    let mut c = env.cmd(args);
    c.env("STACKPRO_API_KEY_PEPPER", PEPPER)
        .env("STACKPRO_URL_SIGNING_KEYS", URL_KEYS)
        .env_remove("MARKETPLACE_ENABLED")
        .env_remove("STACKPRO_LISTEN")
        .env_remove("STACKPRO_PUBLIC_URL");
    c
}

fn market_ok(env: &Env, args: &[&str]) -> String {
    stdout_of_success(market_cmd(env, args), args)
}

/// Starts `stackpro serve` on a free port of 127.0.0.1 and waits until it listens.
fn serve(env: &Env) -> Server {
    let mut child = market_cmd(
        env,
        &["serve", "--listen", "127.0.0.1:0", "--sync-every", "1"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("start stackpro serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    Server { child, base }
}

/// Releases for two tenants, a listing, and buyer `b-acme` with a contract (quota
/// `quota` a day) and a grant; returns the buyer's and an admin's token.
fn set_up(env: &Env, quota: u64) -> (String, String) {
    env.generate("contacts", "t-1", 2500, "a.ndjson", 0.0);
    env.generate("contacts", "t-2", 2500, "b.ndjson", 0.0);
    env.grant("t-1", "contacts");
    env.grant("t-2", "contacts");
    let summary = run_json(env);
    assert_eq!(
        statuses(&summary),
        vec!["published", "published"],
        "{summary}"
    );
    let admin = market_ok(env, &["key", "create", "--admin", "ops"])
        .trim()
        .to_owned();
    market_ok(
        env,
        &[
            "buyer",
            "create",
            "--id",
            "b-acme",
            "--name",
            "Acme Analytics",
        ],
    );
    let buyer = market_ok(env, &["key", "create", "--buyer", "b-acme"])
        .trim()
        .to_owned();
    assert!(
        buyer.starts_with("spk_") && admin.starts_with("spk_"),
        "{buyer} {admin}"
    );
    market_ok(
        env,
        &[
            "listing",
            "put",
            "--dataset",
            "contacts",
            "--title",
            "Contacts",
            "--description",
            "Contact form submissions, k=20",
        ],
    );
    let contract: serde_json::Value = serde_json::from_str(&market_ok(
        env,
        &[
            "contract",
            "create",
            "--buyer",
            "b-acme",
            "--dataset",
            "contacts",
            "--price-minor",
            "50000",
            "--end",
            "2099-01-01T00:00:00Z",
            "--rate",
            "1000",
            "--burst",
            "1000",
            "--quota",
            &quota.to_string(),
            "--period",
            "day",
        ],
    ))
    .expect("contract json");
    assert_eq!(contract["status"], "active");
    market_ok(
        env,
        &[
            "grant",
            "create",
            "--buyer",
            "b-acme",
            "--dataset",
            "contacts",
        ],
    );
    (buyer, admin)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// The event ids `stackpro query` returns for `contacts`, sorted.
fn queried_event_ids(env: &Env) -> Vec<String> {
    let out = env.ok(&["query", "SELECT event_id FROM contacts ORDER BY event_id"]);
    query_rows(&out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_buyer_downloads_what_query_returns_through_signed_urls() {
    let env = Env::new();
    let (buyer, admin) = set_up(&env, 1_000);
    let server = serve(&env);
    let http = client();
    let auth = format!("Bearer {buyer}");

    let list: serde_json::Value = http
        .get(format!("{}/datasets", server.base))
        .header("authorization", &auth)
        .send()
        .await
        .expect("GET /datasets")
        .json()
        .await
        .expect("json");
    let ds = &list["datasets"][0];
    assert_eq!(
        (ds["id"].as_str(), ds["version"].as_u64(), ds["k"].as_u64()),
        (Some("contacts"), Some(2), Some(20)),
        "{list}"
    );
    assert_eq!(ds["access"]["status"], "licensed");

    let answer = http
        .post(format!("{}/datasets/contacts/signed-url", server.base))
        .header("authorization", &auth)
        .send()
        .await
        .expect("POST signed-url");
    assert_eq!(answer.status(), 200);
    let urls: serde_json::Value = answer.json().await.expect("json");
    let files = urls["files"].as_array().expect("files");
    assert!(!files.is_empty());
    let mut ids = Vec::new();
    for file in files {
        let url = file["url"].as_str().expect("url");
        assert!(url.starts_with(&server.base), "{url}");
        let body = http.get(url).send().await.expect("download");
        assert_eq!(body.status(), 200);
        let bytes = body.bytes().await.expect("bytes");
        assert_eq!(
            bytes.len() as u64,
            file["sizeBytes"].as_u64().expect("size")
        );
        let ranged = http
            .get(url)
            .header("range", "bytes=0-3")
            .send()
            .await
            .expect("range");
        assert_eq!(ranged.status(), 206);
        assert_eq!(ranged.bytes().await.expect("bytes").as_ref(), b"PAR1");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("parquet")
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let col = batch.column_by_name("event_id").expect("event_id");
            ids.extend(
                col.as_string::<i32>()
                    .iter()
                    .map(|v| v.unwrap_or("").to_owned()),
            );
        }
    }
    ids.sort();
    let queried = queried_event_ids(&env);
    assert!(!queried.is_empty());
    assert_eq!(
        ids, queried,
        "the files behind the URLs hold what `stackpro query` returns"
    );

    // The operator's admin key works over the socket; a buyer's does not.
    let buyers = http
        .get(format!("{}/admin/buyers", server.base))
        .header("authorization", format!("Bearer {admin}"))
        .send()
        .await
        .expect("admin");
    assert_eq!(buyers.status(), 200);
    let refused = http
        .get(format!("{}/admin/buyers", server.base))
        .header("authorization", &auth)
        .send()
        .await
        .expect("refused");
    assert_eq!(refused.status(), 403);
    let code: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(code["errorCode"], "admin_key_required");

    // Withdrawn consent (one tenant, by the operator's command) takes effect at once.
    env.ok(&[
        "consent",
        "revoke",
        "--tenant",
        "t-1",
        "--dataset",
        "contacts",
    ]);
    let urls: serde_json::Value = http
        .post(format!("{}/datasets/contacts/signed-url", server.base))
        .header("authorization", &auth)
        .send()
        .await
        .expect("POST signed-url")
        .json()
        .await
        .expect("json");
    let urls: Vec<&str> = urls["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["url"].as_str())
        .collect();
    assert!(
        !urls.is_empty() && urls.iter().all(|u| u.contains("tenant=t-2")),
        "{urls:?}"
    );

    // A revoked key is refused on the next request.
    let key_id = buyer.split('_').nth(1).expect("key id");
    market_ok(&env, &["key", "revoke", key_id]);
    let gone = http
        .get(format!("{}/datasets", server.base))
        .header("authorization", &auth)
        .send()
        .await
        .expect("revoked");
    assert_eq!(gone.status(), 401);
    let health = http
        .get(format!("{}/health", server.base))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let metrics = http
        .get(format!("{}/metrics", server.base))
        .header("authorization", format!("Bearer {admin}"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("stackpro_release_records_out"),
        "the pipeline's release metrics: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_api_processes_on_one_control_plane_never_sell_more_than_the_quota() {
    const QUOTA: u64 = 30;
    let env = Env::new();
    let (buyer, _) = set_up(&env, QUOTA);
    let servers = [serve(&env), serve(&env)];
    let http = client();
    let requests = (0..90).map(|i| {
        let url = format!("{}/datasets/contacts/signed-url", servers[i % 2].base);
        let http = http.clone();
        let auth = format!("Bearer {buyer}");
        tokio::spawn(async move {
            let a = http
                .post(url)
                .header("authorization", auth)
                .send()
                .await
                .expect("request");
            let status = a.status().as_u16();
            let body: serde_json::Value = a.json().await.expect("json");
            (status, body)
        })
    });
    let mut ok = 0;
    for r in futures_join(requests.collect()).await {
        match r {
            (200, _) => ok += 1,
            (403, body) => assert_eq!(body["errorCode"], "quota_exceeded", "{body}"),
            (status, body) => panic!("unexpected {status}: {body}"),
        }
    }
    assert_eq!(ok, QUOTA, "exactly the quota, across both processes");
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[test]
fn serve_refuses_to_start_when_the_marketplace_is_disabled() {
    let env = Env::new();
    let out = market_cmd(&env, &["serve", "--listen", "127.0.0.1:0"])
        .env("MARKETPLACE_ENABLED", "false")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("marketplace is disabled"), "{stderr}");
    // And without its secrets it refuses too, naming what is missing.
    let out = env
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .env_remove("STACKPRO_API_KEY_PEPPER")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("STACKPRO_API_KEY_PEPPER"));
}

#[test]
fn operator_commands_refuse_clearly() {
    let env = Env::new();
    let out = market_cmd(&env, &["key", "create", "--buyer", "b-nobody"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no buyer b-nobody"));
    let out = market_cmd(
        &env,
        &[
            "contract",
            "create",
            "--buyer",
            "b-nobody",
            "--dataset",
            "contacts",
            "--price-minor",
            "1",
            "--end",
            "2099-01-01T00:00:00Z",
        ],
    )
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = market_cmd(&env, &["revenue", "show", "--period", "2026-13"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
