//! `stackpro retention sweep` on the embedded default: ages come from the policy
//! (raw 90 days, curated 730 days), the catalog entry goes with the files, and the ledger
//! stays, so expired raw data is never released again.

use std::time::{Duration, SystemTime};

use super::{Env, run_json, statuses, walk};

fn age(path: &std::path::Path, days: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open for mtime");
    file.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .expect("set mtime");
}

fn sweep(env: &Env, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["retention", "sweep", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&env.ok(&args)).expect("sweep json")
}

fn len(report: &serde_json::Value, key: &str) -> usize {
    report[key].as_array().map_or(0, Vec::len)
}

#[test]
fn sweep_removes_expired_raw_objects_and_releases_and_keeps_the_ledger() {
    let env = Env::new();
    env.generate("contacts", "t-1", 3000, "old.ndjson", 0.02);
    env.grant("t-1", "contacts");
    assert_eq!(statuses(&run_json(&env)), ["published"]);
    let old = env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-24/old.ndjson");
    let old_bytes = std::fs::read(&old).expect("raw file");
    env.generate("contacts", "t-1", 100, "fresh.ndjson", 0.0);
    let fresh = env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-24/fresh.ndjson");
    age(&old, 91);
    let quarantined: Vec<_> = walk(&env.path("quarantine"));
    assert!(!quarantined.is_empty(), "dirty records were quarantined");
    for q in &quarantined {
        age(q, 91);
    }

    // A dry run reports and deletes nothing.
    let dry = sweep(&env, &["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(len(&dry, "raw"), 1, "only the 91-day-old raw object: {dry}");
    assert!(
        dry["raw"][0]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("old.ndjson"))
    );
    assert_eq!(len(&dry, "quarantine"), quarantined.len());
    assert_eq!(len(&dry, "releases"), 0, "the release is new");
    assert!(old.exists() && quarantined.iter().all(|q| q.exists()));

    let done = sweep(&env, &[]);
    assert_eq!(len(&done, "raw"), 1);
    assert!(!old.exists(), "expired raw object deleted");
    assert!(fresh.exists(), "young raw object kept");
    assert!(
        quarantined.iter().all(|q| !q.exists()),
        "expired quarantine deleted"
    );
    assert_eq!(env.releases().len(), 1, "young release kept");

    // The record ledger outlives the raw object: the same records uploaded again (a new
    // object under the old name: a new ETag) publish nothing while their release lasts.
    std::fs::write(&old, &old_bytes).expect("restore raw object");
    let rerun = run_json(&env);
    assert_ne!(
        statuses(&rerun),
        ["published"],
        "a swept object's records stay released: {rerun}"
    );
    let report = &rerun["partitions"][0]["report"];
    assert!(
        report["already_released"].as_u64().unwrap_or(0) > 2000,
        "{report:#}"
    );
    assert_eq!(report["records_out"], 0, "{report:#}");
    assert_eq!(env.releases().len(), 1, "nothing new published");
    std::fs::remove_file(&old).expect("remove the restored object");

    // 731 days later the release expires: catalog entry and files go.
    let later = (chrono::Utc::now() + chrono::TimeDelta::days(731))
        .date_naive()
        .to_string();
    let preview = sweep(&env, &["--dry-run", "--as-of", &later]);
    assert_eq!(len(&preview, "releases"), 1, "{preview}");
    assert_eq!(env.releases().len(), 1, "a dry run removes nothing");
    assert!(!env.parquet_files().is_empty());
    let removed = sweep(&env, &["--as-of", &later]);
    assert_eq!(len(&removed, "releases"), 1);
    assert!(
        env.releases().is_empty(),
        "expired release left the catalog"
    );
    assert!(
        env.parquet_files().is_empty(),
        "its Parquet files are deleted"
    );
    assert!(
        walk(&env.path("curated"))
            .iter()
            .all(|p| !p.to_string_lossy().contains("release=")),
        "nothing of the release folder remains"
    );

    assert!(!fresh.exists(), "--as-of judges raw ages on that day too");
}
