//! Crash safety of a release: `stackpro run` killed with SIGKILL at seeded random
//! points, then restarted, ends exactly where an uninterrupted run does. After every
//! kill no catalog entry points at a missing file; after every restart each good record
//! is published exactly once (or suppressed, as in the uninterrupted run) and each bad
//! one sits in quarantine.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::*;

const TRIALS: u64 = 50;
const TENANTS: [&str; 3] = ["t-1", "t-2", "t-3"];

fn copy_dir(from: &Path, to: &Path) {
    for file in walk(from) {
        let rel = file.strip_prefix(from).expect("under the root");
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&file, &dest).expect("copy");
    }
}

/// What a finished state holds: releases (tenant, records out, suppressed; ids name the
/// raw objects' URLs, which differ between trial folders), published event ids,
/// quarantined lines.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    releases: BTreeSet<(String, u64, u64)>,
    event_ids: Vec<String>,
    quarantined: BTreeSet<String>,
}

fn outcome(env: &Env) -> Outcome {
    let releases = env
        .releases()
        .iter()
        .map(|r| {
            (
                r["tenant"].as_str().expect("tenant").to_owned(),
                r["records_out"].as_u64().expect("records_out"),
                r["suppressed"].as_u64().expect("suppressed"),
            )
        })
        .collect();
    let q = env.ok(&["query", "SELECT event_id FROM contacts ORDER BY event_id"]);
    let event_ids = query_rows(&q);
    let quarantined = walk(&env.path("quarantine"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .expect("quarantine file")
                .lines()
                .map(|line| {
                    // The object's URL names the trial's folder: keep its path in the root.
                    let mut v: serde_json::Value =
                        serde_json::from_str(line).expect("quarantine line");
                    let object = v["object"]
                        .as_str()
                        .unwrap_or("")
                        .rsplit("/raw/")
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    v["object"] = serde_json::Value::String(object);
                    v.to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Outcome {
        releases,
        event_ids,
        quarantined,
    }
}

/// Every file of every catalog entry exists.
fn no_dangling_entries(env: &Env, trial: u64) {
    for r in env.releases() {
        for f in r["files"].as_array().expect("files") {
            let url = f["path"].as_str().expect("path");
            let path = url.strip_prefix("file://").unwrap_or(url);
            assert!(
                Path::new(path).is_file(),
                "trial {trial}: release {} names a missing file {path}",
                r["release_id"]
            );
        }
    }
}

/// A small deterministic generator for the kill times.
fn lcg(seed: u64) -> u64 {
    seed.wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
        >> 33
}

#[test]
fn a_run_killed_at_random_points_and_restarted_ends_as_an_uninterrupted_run() {
    // The raw data once, with bad lines; each trial works on a copy.
    let source = Env::new();
    for (i, t) in TENANTS.iter().enumerate() {
        source.generate("contacts", t, 800, &format!("o-{i}.ndjson"), 0.03);
    }
    let fresh = || {
        let env = Env::new();
        copy_dir(&source.path("raw"), &env.path("raw"));
        for t in TENANTS {
            env.grant(t, "contacts");
        }
        env
    };
    // The kills spread over 0.8 of the quicker of two timed runs: one run timed alone
    // can be slowed by a cold cache or a busy runner, and kills timed on it would land
    // after later, quicker runs had finished.
    let timed = || {
        let env = fresh();
        let started = Instant::now();
        run_json(&env);
        (env, started.elapsed())
    };
    let (reference_env, first) = timed();
    let (_, second) = timed();
    let full = first.min(second).mul_f64(0.8);
    let reference = outcome(&reference_env);
    assert_eq!(reference.releases.len(), TENANTS.len());
    assert!(!reference.quarantined.is_empty(), "the data has bad lines");

    let mut killed_mid_run = 0;
    for trial in 0..TRIALS {
        let env = fresh();
        let delay_us = lcg(trial + 1) % (full.as_micros() as u64 + 1);
        let mut child = env
            .cmd(&["run"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run");
        std::thread::sleep(Duration::from_micros(delay_us));
        let finished_first = child.try_wait().expect("try_wait").is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if !finished_first {
            killed_mid_run += 1;
        }
        no_dangling_entries(&env, trial);
        run_json(&env);
        no_dangling_entries(&env, trial);
        let got = outcome(&env);
        assert_eq!(
            got.releases, reference.releases,
            "trial {trial} (kill after {delay_us} µs)"
        );
        assert_eq!(
            got.event_ids, reference.event_ids,
            "trial {trial}: each good record once"
        );
        assert_eq!(
            got.quarantined, reference.quarantined,
            "trial {trial}: each bad one quarantined"
        );
    }
    assert!(
        killed_mid_run >= TRIALS / 2,
        "most kills must land while the run works: {killed_mid_run}/{TRIALS}"
    );
}
