//! Batching modes (`[datasets.NAME] release = …`): per object, per manifest, per sealed
//! day. Whatever the mode, each raw record is released once and every release verifies.

use std::collections::HashSet;

use super::linkage::column_by_release;
use super::*;

/// Generates `records` contacts records of `tenant` into partition `dt` as `file`.
fn gen_into(env: &Env, tenant: &str, dt: &str, file: &str, records: u64, seed: u64) -> PathBuf {
    env.generate_at("contacts", tenant, dt, records, file, 0.0, seed)
}

fn configure(env: &Env, mode: &str) {
    std::fs::write(
        env.path("stackpro.toml"),
        format!("[datasets.contacts]\nrelease = \"{mode}\"\ngrace_secs = 3600\n"),
    )
    .expect("config");
}

fn folder(env: &Env, tenant: &str, dt: &str) -> PathBuf {
    env.path(&format!(
        "raw/tenant={tenant}/dataset=contacts/source=test/dt={dt}"
    ))
}

/// Status and message of the one partition a run summary holds.
fn only(summary: &serde_json::Value) -> (String, String) {
    let parts = summary["partitions"].as_array().expect("partitions");
    assert_eq!(parts.len(), 1, "{summary:#}");
    (
        parts[0]["status"].as_str().expect("status").to_owned(),
        parts[0]["message"].as_str().unwrap_or("").to_owned(),
    )
}

/// No `event_id` appears in two releases (or twice in one).
fn assert_released_once(env: &Env) -> usize {
    let mut seen = HashSet::new();
    for (_, values) in column_by_release(env, "contacts", None, "event_id") {
        for (id, _) in values {
            assert!(seen.insert(id.clone()), "record {id} released twice");
        }
    }
    seen.len()
}

#[test]
fn window_mode_holds_an_open_day_releases_a_sealed_one_and_late_arrivals_make_a_further_release() {
    let env = Env::new();
    configure(&env, "window");
    env.grant("t-1", "contacts");
    let today = chrono::Utc::now().date_naive().to_string();
    gen_into(&env, "t-1", &today, "today.ndjson", 2000, 3);
    gen_into(&env, "t-1", "2026-11-24", "a.ndjson", 2000, 4);

    let first = run_json(&env);
    let by_dt: HashMap<String, (String, String)> = first["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p["partition"]["dt"].as_str().expect("dt").to_owned(),
                (
                    p["status"].as_str().expect("status").to_owned(),
                    p["message"].as_str().unwrap_or("").to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(by_dt["2026-11-24"].0, "published", "{first:#}");
    let (status, why) = &by_dt[&today];
    assert_eq!(status, "waiting", "{first:#}");
    assert!(why.contains("window open"), "{why}");
    assert_eq!(env.releases().len(), 1);

    // The table says so too, and waiting is no failure.
    let table = env.ok(&["run"]);
    assert!(table.contains("1 waiting"), "{table}");

    // A late object in the sealed day: a further release of that day, of it alone.
    gen_into(&env, "t-1", "2026-11-24", "late.ndjson", 2000, 5);
    let second = run_json(&env);
    let published: Vec<&serde_json::Value> = second["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .filter(|p| p["status"] == "published")
        .collect();
    assert_eq!(published.len(), 1, "{second:#}");
    assert_eq!(published[0]["partition"]["dt"], "2026-11-24");
    assert_eq!(published[0]["objects"], 1, "{second:#}");
    assert_eq!(env.releases().len(), 2);
    assert!(assert_released_once(&env) > 0);
    env.assert_verified();
}

#[test]
fn a_short_grace_seals_yesterday_while_a_long_one_keeps_it_open() {
    let env = Env::new();
    let yesterday = (chrono::Utc::now() - chrono::TimeDelta::days(1))
        .date_naive()
        .to_string();
    gen_into(&env, "t-1", &yesterday, "a.ndjson", 2000, 6);
    env.grant("t-1", "contacts");
    // Two days of grace: yesterday is still open.
    std::fs::write(
        env.path("stackpro.toml"),
        "[datasets.contacts]\nrelease = \"window\"\ngrace_secs = 172800\n",
    )
    .expect("config");
    assert_eq!(only(&run_json(&env)).0, "waiting");
    // No grace: yesterday ended, it is sealed.
    std::fs::write(
        env.path("stackpro.toml"),
        "[datasets.contacts]\nrelease = \"window\"\ngrace_secs = 0\n",
    )
    .expect("config");
    assert_eq!(only(&run_json(&env)).0, "published");
    env.assert_verified();
}

#[test]
fn manifest_mode_releases_a_batch_once_its_manifest_and_every_object_it_names_are_there() {
    let env = Env::new();
    configure(&env, "manifest");
    env.grant("t-1", "contacts");
    let dt = "2026-11-24";
    let dir = folder(&env, "t-1", dt);
    gen_into(&env, "t-1", dt, "a.ndjson", 1500, 7);

    // Objects no manifest names wait.
    let (status, why) = only(&run_json(&env));
    assert_eq!(status, "waiting");
    assert!(why.contains("wait for a manifest"), "{why}");

    // A manifest naming an object still being written: the whole batch waits.
    std::fs::write(
        dir.join("_manifest-1.json"),
        r#"{"objects": ["a.ndjson", "b.ndjson"]}"#,
    )
    .expect("manifest");
    let (status, why) = only(&run_json(&env));
    assert_eq!(status, "waiting");
    assert!(why.contains("not yet arrived"), "{why}");
    assert!(env.releases().is_empty());

    // A malformed manifest is ignored with its reason, and blocks nothing.
    std::fs::write(
        dir.join("_manifest-bad.json"),
        b"{\"objects\": \"a.ndjson\"",
    )
    .expect("bad manifest");
    // One naming a path outside its folder is refused whole.
    std::fs::write(
        dir.join("_manifest-escape.json"),
        r#"{"objects": ["../dt=2026-11-25/x.ndjson"]}"#,
    )
    .expect("escaping manifest");

    gen_into(&env, "t-1", dt, "b.ndjson", 1500, 8);
    gen_into(&env, "t-1", dt, "c.ndjson", 1500, 9);
    let summary = run_json(&env);
    assert_eq!(only(&summary).0, "published", "{summary:#}");
    assert_eq!(summary["partitions"][0]["objects"], 2, "{summary:#}");
    let ignored = summary["ignored"].to_string();
    assert!(
        ignored.contains("_manifest-bad.json") && ignored.contains("is not {"),
        "{ignored}"
    );
    assert!(
        ignored.contains("_manifest-escape.json") && ignored.contains("plain file name"),
        "{ignored}"
    );
    let releases = env.releases();
    assert_eq!(releases.len(), 1);
    let inputs = releases[0]["inputs"].to_string();
    for name in ["a.ndjson", "b.ndjson", "_manifest-1.json"] {
        assert!(inputs.contains(name), "{name} not an input: {inputs}");
    }
    assert!(!inputs.contains("c.ndjson"), "{inputs}");

    // c waits for its own manifest; a replay of the first publishes nothing.
    let (status, why) = only(&run_json(&env));
    assert_eq!(status, "waiting");
    assert!(why.contains("1 object(s) wait for a manifest"), "{why}");
    std::fs::write(dir.join("_manifest-2.json"), r#"{"objects": ["c.ndjson"]}"#)
        .expect("manifest 2");
    assert_eq!(only(&run_json(&env)).0, "published");
    assert_eq!(only(&run_json(&env)).0, "nothing_new");
    assert_eq!(env.releases().len(), 2);
    assert!(assert_released_once(&env) > 0);
    env.assert_verified();
}

#[test]
fn an_unknown_batching_mode_is_a_configuration_error() {
    let env = Env::new();
    configure(&env, "hourly");
    let out = env.run(&["run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hourly") || err.contains("unknown variant"),
        "{err}"
    );
}
