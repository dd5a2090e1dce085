//! `stackpro watch`: files appearing in the raw folder are released once per partition,
//! by whichever of several racing watchers takes the partition's lease; duplicate events
//! publish nothing new.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

/// A `stackpro watch` process, its JSON summaries arriving on a channel; killed on drop.
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: &Env) -> Watcher {
    let mut child = env
        .cmd(&["watch", "--settle-ms", "300", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stackpro watch");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    // Ready once it says it is watching.
    let mut first = String::new();
    BufReader::new(stderr)
        .read_line(&mut first)
        .expect("stderr line");
    assert!(first.starts_with("watching "), "{first}");
    Watcher { child, lines }
}

/// Statuses per partition (`dataset/tenant/dt`) from every summary received until
/// `want` partitions have a final status or the deadline passes.
fn collect(
    watchers: &[&Watcher],
    want: usize,
    deadline: Duration,
) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let end = Instant::now() + deadline;
    loop {
        for w in watchers {
            while let Ok(summary) = w.lines.try_recv() {
                for p in summary["partitions"].as_array().into_iter().flatten() {
                    let k = &p["partition"];
                    let key = format!(
                        "{}/{}/{}",
                        k["dataset"].as_str().unwrap_or(""),
                        k["tenant"].as_str().unwrap_or(""),
                        k["dt"].as_str().unwrap_or("")
                    );
                    seen.entry(key)
                        .or_default()
                        .push(p["status"].as_str().unwrap_or("").to_owned());
                }
            }
        }
        let done = seen
            .values()
            .filter(|s| s.iter().any(|s| s == "published"))
            .count();
        if done >= want || Instant::now() >= end {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    seen
}

/// `stackpro gen` into a scratch folder, then renamed into `env`'s raw partition as a
/// producer should deliver a file: whole at once, never seen half written.
fn arrive(env: &Env, tenant: &str, records: u64, file: &str, dirty: f64) {
    let scratch = Env::new();
    scratch.generate("contacts", tenant, records, file, dirty);
    let part = format!("raw/tenant={tenant}/dataset=contacts/source=test/dt=2026-11-24");
    std::fs::create_dir_all(env.path(&part)).expect("partition folder");
    std::fs::rename(
        scratch.path(&format!("{part}/{file}")),
        env.path(&format!("{part}/{file}")),
    )
    .expect("move the file into place");
}

/// Every summary's statuses for `partition` until one arrives or the deadline passes.
fn statuses_of(w: &Watcher, partition: &str, deadline: Duration) -> Vec<String> {
    let end = Instant::now() + deadline;
    loop {
        let seen = collect(&[w], 0, Duration::ZERO);
        if let Some(s) = seen.get(partition) {
            return s.clone();
        }
        if Instant::now() >= end {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_new_file_is_released_once_and_a_duplicate_event_publishes_nothing() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("raw")).expect("raw");
    env.grant("t-1", "contacts");
    let w = start(&env);
    arrive(&env, "t-1", 2000, "a.ndjson", 0.02);
    let seen = collect(&[&w], 1, Duration::from_secs(60));
    assert_eq!(
        seen.get("contacts/t-1/2026-11-24")
            .map(|s| s.iter().filter(|s| *s == "published").count()),
        Some(1),
        "{seen:?}"
    );
    // The same file announced again (touched): nothing new.
    let file = env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-24/a.ndjson");
    let text = std::fs::read(&file).expect("read");
    std::fs::write(&file, &text).expect("rewrite");
    // The watcher's summary for the partition, not a pause: it answers nothing new.
    let again = statuses_of(&w, "contacts/t-1/2026-11-24", Duration::from_secs(60));
    assert!(!again.is_empty(), "no summary for the touched file");
    assert!(again.iter().all(|s| s != "published"), "{again:?}");
    assert_eq!(env.releases().len(), 1);
    env.assert_verified();
}

#[test]
fn two_watchers_racing_release_each_partition_exactly_once() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("raw")).expect("raw");
    let tenants = ["t-1", "t-2", "t-3"];
    for t in tenants {
        env.grant(t, "contacts");
    }
    let (a, b) = (start(&env), start(&env));
    for (i, t) in tenants.iter().enumerate() {
        arrive(&env, t, 1500, &format!("part-{i}.ndjson"), 0.0);
    }
    let seen = collect(&[&a, &b], tenants.len(), Duration::from_secs(90));
    for t in tenants {
        let statuses = seen
            .get(&format!("contacts/{t}/2026-11-24"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            statuses.iter().filter(|s| *s == "published").count(),
            1,
            "{t}: {statuses:?}"
        );
        // The loser of a race is `busy` (the lease) or finds nothing new, never a
        // release refused by the ledger as a conflict.
        assert!(statuses.iter().all(|s| s != "failed"), "{t}: {statuses:?}");
    }
    let releases = env.releases();
    assert_eq!(
        releases.len(),
        tenants.len(),
        "one release per partition: {releases:?}"
    );
    env.assert_verified();
}

#[test]
fn the_watcher_refuses_to_start_when_the_etl_is_disabled() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("raw")).expect("raw");
    let out = env
        .cmd(&["watch"])
        .env("ETL_ENABLED", "false")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ETL is disabled"));
}
