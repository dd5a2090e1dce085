//! The attacks of a buyer who links what releases publish, and of a tenant or producer who
//! crafts what it uploads (issue 16): each ended with a release `stackpro verify` called
//! OK before the fix. End to end through the binary.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use arrow::array::{Array, AsArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Env, run_json, statuses};

/// Writes NDJSON lines as a raw object of a partition.
fn put_lines(env: &Env, tenant: &str, dataset: &str, dt: &str, name: &str, lines: &[String]) {
    let dir = env.path(&format!(
        "raw/tenant={tenant}/dataset={dataset}/source=test/dt={dt}"
    ));
    std::fs::create_dir_all(&dir).expect("raw dir");
    std::fs::write(dir.join(name), lines.join("\n") + "\n").expect("raw object");
}

/// A valid contacts record; `tweak` edits it before it is written.
fn contact(i: usize, email: &str, tweak: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v = serde_json::json!({
        "event_id": format!("evt-{i:06}"),
        "submitted_at": "2026-11-24T10:00:00Z",
        "email": email,
        "phone": "+1 (415) 555-0134",
        "ip": "203.0.113.57",
        "zip": "94110",
        "age": 34,
        "gender": "F",
        "country": "US",
        "source": "web-form",
        "interest": "pricing",
        "lead_score": 50,
    });
    tweak(&mut v);
    v.to_string()
}

/// Column `name` of every published file of `dataset` (optionally of one tenant), per
/// release id, as (value, class key) pairs.
pub(crate) fn column_by_release(
    env: &Env,
    dataset: &str,
    tenant: Option<&str>,
    name: &str,
) -> HashMap<String, Vec<(String, String)>> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for file in env.parquet_files() {
        let shown = file.to_string_lossy().to_string();
        if !shown.contains(&format!("dataset={dataset}/"))
            || tenant.is_some_and(|t| !shown.contains(&format!("tenant={t}/")))
        {
            continue;
        }
        let release = shown
            .split("release=")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .expect("release in path")
            .to_string();
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).expect("open"))
                .expect("parquet");
        let qis: Vec<String> = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|kv| kv.key == "stackpro.quasi_identifiers"))
            .and_then(|kv| kv.value.clone())
            .expect("qi list")
            .split(',')
            .map(str::to_string)
            .collect();
        for batch in builder.build().expect("reader") {
            let batch = batch.expect("batch");
            let text = |c: &str| {
                arrow::compute::cast(
                    batch.column_by_name(c).expect(c),
                    &arrow::datatypes::DataType::Utf8,
                )
                .expect("cast")
                .as_string::<i32>()
                .clone()
            };
            let values = text(name);
            let qi_columns: Vec<_> = qis.iter().map(|c| text(c)).collect();
            for row in 0..batch.num_rows() {
                let class: Vec<&str> = qi_columns
                    .iter()
                    .map(|c| if c.is_null(row) { "" } else { c.value(row) })
                    .collect();
                out.entry(release.clone())
                    .or_default()
                    .push((values.value(row).to_string(), class.join("|")));
            }
        }
    }
    out
}

fn raw_emails(path: &Path, n: usize) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("raw")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["email"].as_str().map(str::to_string))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .take(n)
        .collect()
}

#[test]
fn a_tenant_uploading_guessed_emails_learns_no_pseudonym_of_another_tenant() {
    let env = Env::new();
    env.generate("contacts", "t-victim", 3000, "a.ndjson", 0.0);
    let guessed = raw_emails(
        &env.path("raw/tenant=t-victim/dataset=contacts/source=test/dt=2026-11-24/a.ndjson"),
        30,
    );
    assert_eq!(guessed.len(), 30);
    // The attacker's own "leads": the guessed addresses, all with equal quasi-identifiers,
    // so they form one class of 30 and are published.
    let lines: Vec<String> = guessed
        .iter()
        .enumerate()
        .map(|(i, e)| contact(i, e, |_| {}))
        .collect();
    put_lines(
        &env,
        "t-attacker",
        "contacts",
        "2026-11-24",
        "leads.ndjson",
        &lines,
    );
    env.grant("t-victim", "contacts");
    env.grant("t-attacker", "contacts");
    let summary = run_json(&env);
    assert_eq!(
        statuses(&summary),
        ["published", "published"],
        "{summary:#}"
    );
    let victim: HashSet<String> =
        column_by_release(&env, "contacts", Some("t-victim"), "email_hash")
            .into_values()
            .flatten()
            .map(|(v, _)| v)
            .collect();
    let attacker = column_by_release(&env, "contacts", Some("t-attacker"), "email_hash");
    let attacker: Vec<String> = attacker.into_values().flatten().map(|(v, _)| v).collect();
    assert_eq!(attacker.len(), 30);
    assert!(
        attacker.iter().all(|p| !victim.contains(p)),
        "a guessed address's pseudonym matched the victim's release"
    );
    env.assert_verified();
}

#[test]
fn no_pseudonym_links_two_days_two_datasets_or_two_classes() {
    let env = Env::new();
    for dt in ["2026-11-24", "2026-11-25"] {
        let out = env.path(&format!(
            "raw/tenant=t-1/dataset=contacts/source=test/dt={dt}/a.ndjson"
        ));
        env.ok(&[
            "gen",
            "--dataset",
            "contacts",
            "--records",
            "4000",
            "--tenant",
            "t-1",
            "--out",
            out.to_str().expect("utf8"),
            "--seed",
            "7",
            "--date",
            dt,
        ]);
    }
    env.generate("orders", "t-1", 4000, "o.ndjson", 0.0);
    env.grant("t-1", "contacts");
    env.grant("t-1", "orders");
    let summary = run_json(&env);
    assert_eq!(
        statuses(&summary),
        ["published", "published", "published"],
        "{summary:#}"
    );
    let mut home: HashMap<String, (String, String)> = HashMap::new();
    let mut total = 0;
    for (dataset, column) in [("contacts", "email_hash"), ("orders", "customer_hash")] {
        for (release, values) in column_by_release(&env, dataset, None, column) {
            for (pseudonym, class) in values {
                total += 1;
                assert_eq!(pseudonym.len(), 32, "a 128-bit pseudonym");
                match home.get(&pseudonym) {
                    None => {
                        home.insert(pseudonym, (release.clone(), class));
                    }
                    Some((r, c)) => {
                        assert_eq!(r, &release, "{pseudonym} links two releases");
                        assert_eq!(c, &class, "{pseudonym} links two classes");
                    }
                }
            }
        }
    }
    // People recur (the same seed on both days; customers are contacts), yet no value does.
    assert!(
        total > 6000 && home.len() < total,
        "{total} rows, {} values",
        home.len()
    );
    env.assert_verified();
}

#[test]
fn country_is_generalized_as_a_quasi_identifier() {
    let env = Env::new();
    env.generate("contacts", "t-1", 6000, "a.ndjson", 0.0);
    env.grant("t-1", "contacts");
    assert_eq!(statuses(&run_json(&env)), ["published"]);
    let file = env.first_file_of("contacts");
    let qis = file
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == "stackpro.quasi_identifiers"))
        .and_then(|kv| kv.value.clone())
        .expect("qi list");
    assert!(qis.split(',').any(|c| c == "country"), "{qis}");
    env.assert_verified();
}

#[test]
fn one_person_written_twenty_ways_counts_once_and_a_non_email_is_quarantined() {
    let env = Env::new();
    let variants = [
        "ana.ruiz@example.com",
        "Ana.Ruiz@Example.com",
        "ana.ruiz+1@example.com",
        "ana.ruiz+2@example.com",
        "ana.ruiz+news@example.com",
        "ana.ruiz\u{200B}@example.com",
        "ana.ruiz@exam\u{00AD}ple.com",
        "\u{FEFF}ana.ruiz@example.com",
        "ana.ruiz\u{FF20}example.com",
        "\u{FF21}\u{FF2E}\u{FF21}.ruiz@example.com",
        "ana.ruiz@example.com.",
        "mailto:ana.ruiz@example.com",
        "Ana Ruiz <ana.ruiz@example.com>",
        "ANA.RUIZ@EXAMPLE.COM",
        " ana.ruiz@example.com ",
        "ana.ruiz+a+b@example.com",
        "ana.ruiz\u{2060}@example.com",
        "ana.ruiz@EXAMPLE.com",
        "ana.ruiz+20@example.com",
        "MAILTO:Ana.Ruiz+x@Example.COM.",
    ];
    // Ten real people plus Ana written twenty ways: 11 subjects, under k=20 whatever the
    // generalization (all share every quasi-identifier), so nothing may be published.
    let mut lines: Vec<String> = (0..10)
        .map(|i| contact(i, &format!("person{i}@example.org"), |_| {}))
        .collect();
    lines.extend(
        variants
            .iter()
            .enumerate()
            .map(|(i, e)| contact(100 + i, e, |_| {})),
    );
    lines.push(contact(999, "x", |_| {}));
    put_lines(&env, "t-1", "contacts", "2026-11-24", "a.ndjson", &lines);
    env.grant("t-1", "contacts");
    let summary = run_json(&env);
    assert_eq!(statuses(&summary), ["withheld"], "{summary:#}");
    let report = &summary["partitions"][0]["report"];
    assert_eq!(report["distinct_subjects"], 11, "{report:#}");
    assert_eq!(
        report["quarantine_reasons"]["email: invalid_subject"], 1,
        "{report:#}"
    );
    assert!(env.parquet_files().is_empty());
    // The withheld report (figures of a class under k) is kept out of the curated root.
    assert!(super::walk(&env.path("curated")).is_empty());
    assert!(
        super::walk(&env.path("quarantine"))
            .iter()
            .any(|p| p.to_string_lossy().contains("_withheld/dataset=contacts"))
    );
}

#[test]
fn a_snapshot_resent_under_a_new_name_releases_only_its_new_records() {
    let env = Env::new();
    env.generate("contacts", "t-1", 3000, "day1.ndjson", 0.0);
    env.grant("t-1", "contacts");
    let first = run_json(&env);
    assert_eq!(statuses(&first), ["published"]);
    let first_valid = first["partitions"][0]["report"]["records_valid"]
        .as_u64()
        .expect("valid");
    // The producer re-sends its snapshot, old records and new, under another name and day.
    let old = std::fs::read_to_string(
        env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-24/day1.ndjson"),
    )
    .expect("old");
    let fresh_path = env.path("fresh.ndjson");
    env.ok(&[
        "gen",
        "--dataset",
        "contacts",
        "--records",
        "3000",
        "--tenant",
        "t-1",
        "--out",
        fresh_path.to_str().expect("utf8"),
        "--seed",
        "12",
    ]);
    let fresh = std::fs::read_to_string(&fresh_path).expect("fresh");
    let dir = env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-25");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("snapshot.ndjson"), format!("{old}{fresh}")).expect("snapshot");
    let second = run_json(&env);
    assert_eq!(
        statuses(&second),
        ["nothing_new", "published"],
        "{second:#}"
    );
    let report = &second["partitions"][1]["report"];
    assert_eq!(
        report["already_released"].as_u64(),
        Some(first_valid),
        "{report:#}"
    );
    let ids = column_by_release(&env, "contacts", None, "event_id");
    assert_eq!(ids.len(), 2);
    let mut seen = HashSet::new();
    for (_, values) in ids {
        for (id, _) in values {
            assert!(seen.insert(id.clone()), "record {id} released twice");
        }
    }
    env.assert_verified();
}

/// Three `stackpro run` processes start at once on two days of one tenant-dataset whose
/// second day re-sends the first day's records. The record ledger a release loads holds
/// only what was published before it started, so two days released at once would both
/// publish the re-sent records; the tenant-dataset's lease (the one every trigger takes)
/// lets one release at a time, and the others report `busy`. A last `run` releases what
/// was left, and no record id is in two releases.
#[test]
fn racing_runs_never_release_a_resent_record_twice() {
    let env = Env::new();
    env.generate("contacts", "t-1", 8000, "day1.ndjson", 0.0);
    env.grant("t-1", "contacts");
    let old = std::fs::read_to_string(
        env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-24/day1.ndjson"),
    )
    .expect("old");
    env.generate_at(
        "contacts",
        "t-1",
        "2026-11-25",
        8000,
        "fresh.ndjson",
        0.0,
        12,
    );
    let dir = env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-25");
    let fresh = std::fs::read_to_string(dir.join("fresh.ndjson")).expect("fresh");
    std::fs::remove_file(dir.join("fresh.ndjson")).expect("rm");
    std::fs::write(dir.join("snapshot.ndjson"), format!("{old}{fresh}")).expect("snapshot");
    let racers: Vec<_> = (0..3)
        .map(|_| {
            env.cmd(&["run", "--json"])
                // Each publish waits 2 s: the releases overlap however fast they are.
                .env("STACKPRO_FAULT", "slow-publish")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn run")
        })
        .collect();
    let mut published = Vec::new();
    let mut seen_statuses = Vec::new();
    for racer in racers {
        let out = racer.wait_with_output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        for p in summary["partitions"].as_array().expect("partitions") {
            let status = p["status"].as_str().expect("status").to_string();
            if status == "published" {
                published.push(p.clone());
            }
            seen_statuses.push(status);
        }
    }
    assert!(
        seen_statuses.iter().all(
            |s| ["published", "already_published", "busy", "nothing_new"].contains(&s.as_str())
        ),
        "{seen_statuses:?}"
    );
    let last = run_json(&env);
    for p in last["partitions"].as_array().expect("partitions") {
        if p["status"] == "published" {
            published.push(p.clone());
        }
    }
    let mut days: Vec<&str> = published
        .iter()
        .map(|p| p["partition"]["dt"].as_str().expect("dt"))
        .collect();
    days.sort_unstable();
    assert_eq!(
        days,
        ["2026-11-24", "2026-11-25"],
        "each day published once"
    );
    let skipped: u64 = published
        .iter()
        .map(|p| {
            p["report"]["already_released"]
                .as_u64()
                .expect("already_released")
        })
        .sum();
    let day1_valid = published
        .iter()
        .find(|p| p["partition"]["dt"] == "2026-11-24")
        .and_then(|p| p["report"]["records_valid"].as_u64())
        .expect("day 1 valid");
    assert_eq!(
        skipped, day1_valid,
        "the re-sent records are skipped once, by whichever day came second"
    );
    let mut seen = HashSet::new();
    for (_, values) in column_by_release(&env, "contacts", None, "event_id") {
        for (id, _) in values {
            assert!(seen.insert(id.clone()), "record {id} released twice");
        }
    }
    env.assert_verified();
}

/// A producer re-sends its whole, growing snapshot every day for six days. With the ledger
/// cache (the default, `{state}/ledger-cache`: it copies runs, keeps a filter between runs
/// and folds every fourth new run) and without it (`STACKPRO_LEDGER_CACHE=off`), every
/// release skips exactly the records released before, so no record id is published
/// twice; a cache damaged between two runs (a run cut short, a segment of garbage) changes
/// nothing either.
#[test]
fn the_ledger_cache_skips_what_the_catalog_released_even_when_damaged() {
    let (cached, uncached) = (Env::new(), Env::new());
    let mut snapshot = String::new();
    let mut reports: Vec<Vec<(u64, u64)>> = vec![Vec::new(), Vec::new()];
    for day in 0..6u64 {
        let dt = format!("2026-11-{:02}", 20 + day);
        for (e, env) in [&cached, &uncached].into_iter().enumerate() {
            let fresh = env.generate_at(
                "contacts",
                "t-1",
                &dt,
                800,
                "snapshot.ndjson",
                0.0,
                40 + day,
            );
            let new = std::fs::read_to_string(&fresh).expect("fresh");
            if e == 0 {
                snapshot.push_str(&new);
            }
            std::fs::write(&fresh, &snapshot).expect("snapshot");
            if day == 0 {
                env.grant("t-1", "contacts");
            }
            if e == 0 && day == 4 {
                let tenant = env.path("state/ledger-cache/dataset=contacts/tenant=t-1");
                let runs: Vec<_> = std::fs::read_dir(tenant.join("runs"))
                    .expect("cached runs")
                    .map(|e| e.expect("entry").path())
                    .collect();
                // A run is copied once its release is published (the upkeep after the
                // publish copies it): the first four days'.
                assert_eq!(runs.len(), 4, "one run per release published: {runs:?}");
                let bytes = std::fs::read(&runs[0]).expect("run");
                std::fs::write(&runs[0], &bytes[..bytes.len() - 32]).expect("cut");
                std::fs::write(
                    tenant.join("segment-000000000099.qf"),
                    b"SPLS\x01\0\0\0junk",
                )
                .expect("garbage");
            }
            let mut cmd = env.cmd(&["run", "--json"]);
            if e == 1 {
                cmd.env("STACKPRO_LEDGER_CACHE", "off");
            }
            let summary: serde_json::Value =
                serde_json::from_str(&super::stdout_of_success(cmd, &["run", "--json"]))
                    .expect("summary");
            let published: Vec<&serde_json::Value> = summary["partitions"]
                .as_array()
                .expect("partitions")
                .iter()
                .filter(|p| p["status"] == "published")
                .collect();
            assert_eq!(published.len(), 1, "{summary:#}");
            let report = &published[0]["report"];
            reports[e].push((
                report["already_released"].as_u64().expect("already"),
                report["records_valid"].as_u64().expect("valid"),
            ));
        }
    }
    assert_eq!(
        reports[0], reports[1],
        "cached and uncached ledgers skip alike"
    );
    // Each day's snapshot holds every earlier day's records again: all of them skipped.
    for (day, &(already, _)) in reports[0].iter().enumerate().skip(1) {
        let before: u64 = reports[0][..day].iter().map(|(a, v)| v - a).sum();
        assert!(
            already >= before,
            "day {day}: {already} skipped, {before} released before"
        );
    }
    for env in [&cached, &uncached] {
        let mut seen = HashSet::new();
        for (_, values) in column_by_release(env, "contacts", None, "event_id") {
            for (id, _) in values {
                assert!(seen.insert(id.clone()), "record {id} released twice");
            }
        }
        env.assert_verified();
    }
    assert!(
        !uncached
            .path("state/ledger-cache/dataset=contacts")
            .exists()
    );
}

/// An object rewritten under the same name (a producer appending to its file) is a new
/// input: its new records are released, its old ones skipped; the same bytes again are not.
#[test]
fn an_object_rewritten_in_place_is_a_new_input_and_releases_only_its_new_records() {
    let env = Env::new();
    env.generate("contacts", "t-1", 3000, "feed.ndjson", 0.0);
    env.grant("t-1", "contacts");
    let first = run_json(&env);
    assert_eq!(statuses(&first), ["published"]);
    let first_valid = first["partitions"][0]["report"]["records_valid"]
        .as_u64()
        .expect("valid");
    let path = env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-24/feed.ndjson");
    let old = std::fs::read_to_string(&path).expect("old");
    let fresh_path = env.path("fresh.ndjson");
    env.ok(&[
        "gen",
        "--dataset",
        "contacts",
        "--records",
        "3000",
        "--tenant",
        "t-1",
        "--out",
        fresh_path.to_str().expect("utf8"),
        "--seed",
        "13",
    ]);
    let fresh = std::fs::read_to_string(&fresh_path).expect("fresh");
    // The file system's ETag has the modification time in it: make sure it moves.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&path, format!("{old}{fresh}")).expect("rewrite");
    let second = run_json(&env);
    assert_eq!(statuses(&second), ["published"], "{second:#}");
    let report = &second["partitions"][0]["report"];
    assert_eq!(
        report["already_released"].as_u64(),
        Some(first_valid),
        "{report:#}"
    );
    let third = run_json(&env);
    assert_eq!(statuses(&third), ["nothing_new"], "{third:#}");
    let ids = column_by_release(&env, "contacts", None, "event_id");
    assert_eq!(ids.len(), 2);
    let mut seen = HashSet::new();
    for (_, values) in ids {
        for (id, _) in values {
            assert!(seen.insert(id.clone()), "record {id} released twice");
        }
    }
    env.assert_verified();
}

#[cfg(unix)]
#[test]
fn a_symlinked_tenant_folder_is_not_followed() {
    let env = Env::new();
    env.generate("contacts", "t-0043", 3000, "a.ndjson", 0.0);
    std::os::unix::fs::symlink(env.path("raw/tenant=t-0043"), env.path("raw/tenant=t-0045"))
        .expect("symlink");
    env.grant("t-0043", "contacts");
    env.grant("t-0045", "contacts");
    let summary = run_json(&env);
    assert_eq!(statuses(&summary), ["published"], "{summary:#}");
    assert_eq!(summary["partitions"][0]["partition"]["tenant"], "t-0043");
    let ignored = summary["ignored"].to_string();
    assert!(
        ignored.contains("tenant=t-0045") && ignored.contains("symbolic or hard link"),
        "{ignored}"
    );
    assert!(!env.path("curated/dataset=contacts/tenant=t-0045").exists());
}

#[test]
fn identifiers_hidden_in_kept_fields_are_quarantined() {
    let env = Env::new();
    let attacks: Vec<(&str, serde_json::Value)> = vec![
        ("lead_score", serde_json::json!(4155550134u64)),
        ("lead_score", serde_json::json!(3405803833u64)),
        (
            "interest",
            serde_json::json!("ana.ruiz\u{200B}@example.com"),
        ),
        ("interest", serde_json::json!("ana\u{00AD}@example.com")),
        ("interest", serde_json::json!("ana\u{0000}@example.com")),
        (
            "interest",
            serde_json::json!(
                "\u{FF14}\u{FF11}\u{FF15}\u{FF15}\u{FF15}\u{FF15}\u{FF10}\u{FF11}\u{FF13}\u{FF14}"
            ),
        ),
        (
            "interest",
            serde_json::json!(
                "\u{0664}\u{0661}\u{0665}\u{0665}\u{0665}\u{0665}\u{0660}\u{0661}\u{0663}\u{0664}"
            ),
        ),
        ("interest", serde_json::json!("ana@пример.рф")),
        ("interest", serde_json::json!("415_555_0134")),
        ("interest", serde_json::json!("lead_4155550134")),
        ("source", serde_json::json!("ana.ruiz\u{200B}@example.com")),
        (
            "event_id",
            serde_json::json!("ana.ruiz\u{200B}@example.com"),
        ),
    ];
    let mut lines: Vec<String> = (0..25)
        .map(|i| contact(i, &format!("person{i}@example.org"), |_| {}))
        .collect();
    for (n, (field, value)) in attacks.iter().enumerate() {
        lines.push(contact(1000 + n, &format!("attack{n}@example.org"), |v| {
            v[*field] = value.clone();
        }));
    }
    put_lines(&env, "t-1", "contacts", "2026-11-24", "a.ndjson", &lines);
    env.grant("t-1", "contacts");
    let summary = run_json(&env);
    assert_eq!(statuses(&summary), ["published"], "{summary:#}");
    let report = &summary["partitions"][0]["report"];
    assert_eq!(
        report["quarantined"].as_u64(),
        Some(attacks.len() as u64),
        "{report:#}"
    );
    assert_eq!(report["records_out"].as_u64(), Some(25), "{report:#}");
    env.assert_verified();
}

#[test]
fn names_that_carry_identifiers_never_reach_the_report_and_inputs_are_relative() {
    let env = Env::new();
    let lines: Vec<String> = (0..25)
        .map(|i| {
            contact(i, &format!("person{i}@example.org"), |v| {
                v["notes_4155550134"] = serde_json::json!("x");
            })
        })
        .collect();
    put_lines(&env, "t-1", "contacts", "2026-11-24", "a.ndjson", &lines);
    put_lines(
        &env,
        "t-1",
        "contacts",
        "2026-11-24",
        "lead_4155550134.ndjson",
        &lines[..1],
    );
    env.grant("t-1", "contacts");
    let summary = run_json(&env);
    assert_eq!(statuses(&summary), ["published"], "{summary:#}");
    let text = summary.to_string();
    assert!(!text.contains("4155550134"), "{text}");
    let report = &summary["partitions"][0]["report"];
    let root = env.path("raw").to_string_lossy().to_string();
    for input in report["inputs"].as_array().expect("inputs") {
        let input = input.as_str().expect("text");
        assert!(
            input.starts_with("tenant=t-1/") && !input.contains(&root),
            "{input}"
        );
    }
    let report_file = std::fs::read_to_string(
        super::walk(&env.path("curated"))
            .into_iter()
            .find(|p| p.ends_with("_report.json"))
            .expect("report"),
    )
    .expect("read");
    assert!(
        !report_file.contains("4155550134") && !report_file.contains(&root),
        "{report_file}"
    );
}

#[test]
fn a_sloppy_partition_day_is_ignored_and_leaves_no_files() {
    let env = Env::new();
    let lines: Vec<String> = (0..25)
        .map(|i| contact(i, &format!("person{i}@example.org"), |_| {}))
        .collect();
    put_lines(&env, "t-1", "contacts", "2026-1-5", "a.ndjson", &lines);
    env.grant("t-1", "contacts");
    let summary = run_json(&env);
    assert!(statuses(&summary).is_empty(), "{summary:#}");
    assert!(
        summary["ignored"].to_string().contains("2026-1-5"),
        "{summary:#}"
    );
    assert!(super::walk(&env.path("curated")).is_empty());
}

#[test]
fn verify_fails_on_pseudonyms_or_record_ids_that_link_and_on_numbers_out_of_bounds() {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::record_batch::RecordBatch;
    use std::sync::Arc;

    let env = Env::new();
    // A file of 25 people in one class (zip) or two (zip + age), with record ids and a
    // kept number, under class scope.
    let write = |dir: &str,
                 release: &str,
                 first_person: usize,
                 first_id: usize,
                 ages: &[&str],
                 score: i64| {
        let n = ages.len();
        let batch = RecordBatch::try_from_iter([
            (
                "event_id",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("e{}", first_id + i)),
                )) as ArrayRef,
            ),
            (
                "zip",
                Arc::new(StringArray::from(vec!["941**"; n])) as ArrayRef,
            ),
            (
                "age",
                Arc::new(StringArray::from(ages.to_vec())) as ArrayRef,
            ),
            (
                "email_hash",
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("p{}", first_person + i % 25)),
                )) as ArrayRef,
            ),
            (
                "lead_score",
                Arc::new(Int64Array::from(vec![score; n])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let folder = env.path(dir);
        std::fs::create_dir_all(&folder).expect("dir");
        super::write_parquet(
            &folder.join(format!("{release}.parquet")),
            &batch,
            &[
                ("stackpro.release_id", release),
                ("stackpro.k", "20"),
                ("stackpro.quasi_identifiers", "zip,age"),
                ("stackpro.subject_column", "email_hash"),
                ("stackpro.pseudonym_scope", "class"),
                ("stackpro.record_id_column", "event_id"),
                ("stackpro.bounds", r#"{"lead_score":[0.0,100.0]}"#),
            ],
        );
    };
    let verify = |dir: &str| {
        let out = env.run(&["verify", env.path(dir).to_str().expect("utf8")]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let one_class = ["30-39"; 25];
    write("good", "r1", 0, 0, &one_class, 50);
    write("good", "r2", 100, 100, &one_class, 50);
    let (code, text) = verify("good");
    assert_eq!(code, Some(0), "{text}");
    // Risk: one class of 25 people per release, 1/25 for everyone, all under 2k = 40.
    assert!(text.contains("0.0400") && text.contains("100.0%"), "{text}");

    // The same pseudonyms in two releases.
    write("two_releases", "r1", 0, 0, &one_class, 50);
    write("two_releases", "r2", 0, 100, &one_class, 50);
    let (code, text) = verify("two_releases");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("appear in two releases"), "{text}");

    // One release whose people recur in two classes (25 in 30-39, the same 25 in 40-49).
    let two_classes: Vec<&str> = (0..50)
        .map(|i| if i < 25 { "30-39" } else { "40-49" })
        .collect();
    write("two_classes", "r1", 0, 0, &two_classes, 50);
    let (code, text) = verify("two_classes");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("appear in two classes"), "{text}");

    // A record released twice.
    write("twice", "r1", 0, 0, &one_class, 50);
    write("twice", "r2", 100, 0, &one_class, 50);
    let (code, text) = verify("twice");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("record ids appear more than once"), "{text}");

    // A phone number in a kept number.
    write("bounds", "r1", 0, 0, &one_class, 4_155_550_134);
    let (code, text) = verify("bounds");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("outside their policy bounds"), "{text}");
}

#[test]
fn comments_stray_dates_smuggled_fractions_and_a_bom_are_handled() {
    let env = Env::new();
    let mut lines: Vec<String> = (0..25)
        .map(|i| contact(i, &format!("person{i}@example.org"), |_| {}))
        .collect();
    // One mailbox written with RFC 5322 comments would be as many subjects as comments.
    lines.push(contact(900, "ana.ruiz(0)@example.com", |_| {}));
    // A date column is no quasi-identifier: an arbitrary day in it singles a record out.
    lines.push(contact(901, "ana.ruiz@example.com", |v| {
        v["submitted_at"] = "1987-03-14T00:00:00Z".into();
    }));
    let dir = env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-24");
    std::fs::create_dir_all(&dir).expect("dir");
    // A byte order mark before the first record is no part of it.
    std::fs::write(
        dir.join("a.ndjson"),
        format!("\u{FEFF}{}\n", lines.join("\n")),
    )
    .expect("raw");
    let order = |i: usize, amount: serde_json::Value| {
        serde_json::json!({
            "order_id": format!("ord-{i:05}"), "ordered_at": "2026-11-24T09:00:00Z",
            "customer_email": format!("buyer{i}@example.org"), "zip": "94110",
            "amount": amount, "currency": "USD", "product_category": "books",
        })
        .to_string()
    };
    let mut orders: Vec<String> = (0..25).map(|i| order(i, 12.5.into())).collect();
    orders.push(order(99, 415_555.123_4.into()));
    put_lines(&env, "t-1", "orders", "2026-11-24", "o.ndjson", &orders);
    env.grant("t-1", "contacts");
    env.grant("t-1", "orders");
    let summary = run_json(&env);
    assert_eq!(
        statuses(&summary),
        ["published", "published"],
        "{summary:#}"
    );
    let contacts = &summary["partitions"][0]["report"];
    assert_eq!(
        contacts["records_out"], 25,
        "the first record, behind a BOM, is kept: {contacts:#}"
    );
    let reasons = &contacts["quarantine_reasons"];
    assert_eq!(reasons["email: invalid_subject"], 1, "{contacts:#}");
    assert_eq!(
        reasons["submitted_at: outside its partition's day"], 1,
        "{contacts:#}"
    );
    let orders = &summary["partitions"][1]["report"];
    assert_eq!(
        orders["quarantine_reasons"]["amount: more than 2 decimal places"], 1,
        "{orders:#}"
    );
    env.assert_verified();
}

#[cfg(unix)]
#[test]
fn a_bad_object_name_or_a_hard_link_stops_no_other_tenant_and_is_not_echoed() {
    let env = Env::new();
    let lines: Vec<String> = (0..25)
        .map(|i| contact(i, &format!("person{i}@example.org"), |_| {}))
        .collect();
    put_lines(&env, "t-1", "contacts", "2026-11-24", "a.ndjson", &lines);
    put_lines(
        &env,
        "t-2",
        "contacts",
        "2026-11-24",
        "ana.ruiz@example.com\n.ndjson",
        &lines,
    );
    // A name that is not UTF-8, before other tenants' objects in the walk.
    {
        use std::os::unix::ffi::OsStrExt;
        let dir = env.path("raw/tenant=t-0/dataset=contacts/source=test/dt=2026-11-24");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join(std::ffi::OsStr::from_bytes(b"bad\xff.ndjson")),
            "x",
        )
        .expect("bad name");
    }
    put_lines(&env, "t-0", "contacts", "2026-11-24", "a.ndjson", &lines);
    put_lines(&env, "t-9", "contacts", "2026-11-24", "a.ndjson", &lines);
    // A hard link to a file outside the raw root.
    let outside = env.path("outside.ndjson");
    std::fs::write(&outside, lines.join("\n")).expect("outside");
    let linked = env.path("raw/tenant=t-3/dataset=contacts/source=test/dt=2026-11-24");
    std::fs::create_dir_all(&linked).expect("dir");
    std::fs::hard_link(&outside, linked.join("b.ndjson")).expect("hard link");
    for t in ["t-0", "t-1", "t-2", "t-3", "t-9"] {
        env.grant(t, "contacts");
    }
    let out = env.run(&["run", "--json"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(statuses(&summary), ["published"; 3], "{summary:#}");
    let tenants: Vec<&str> = summary["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["partition"]["tenant"].as_str().expect("tenant"))
        .collect();
    assert_eq!(tenants, ["t-0", "t-1", "t-9"]);
    let ignored = summary["ignored"].to_string();
    assert!(
        ignored.contains("<unreadable name>") && ignored.contains("hard link"),
        "{ignored}"
    );
    assert!(
        !stdout.contains("ana.ruiz") && !stderr.contains("ana.ruiz"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn rows_come_out_in_a_keyed_order_so_positions_pair_no_one_across_classes() {
    let env = Env::new();
    // A producer that groups each person's records: 40 people, each with one record in an
    // age-30 class and one in an age-60 class, sent side by side, the first 20 in one
    // object, the others in an object each (a batch each: ordering batches alone would
    // keep them paired).
    let mut lines = Vec::new();
    for p in 0..40 {
        if p >= 20 {
            let one = [
                contact(0, &format!("p{p}@example.org"), |v| {
                    v["age"] = 30.into();
                    v["event_id"] = format!("evt-{p:02}-a").into();
                }),
                contact(0, &format!("p{p}@example.org"), |v| {
                    v["age"] = 60.into();
                    v["event_id"] = format!("evt-{p:02}-b").into();
                }),
            ];
            put_lines(
                &env,
                "t-1",
                "contacts",
                "2026-11-24",
                &format!("user_{p}.ndjson"),
                &one,
            );
            continue;
        }
        for (side, age) in [("a", 30), ("b", 60)] {
            let mut line: serde_json::Value =
                serde_json::from_str(&contact(0, &format!("p{p}@example.org"), |v| {
                    v["age"] = age.into();
                }))
                .expect("json");
            line["event_id"] = format!("evt-{p:02}-{side}").into();
            lines.push(line.to_string());
        }
    }
    put_lines(&env, "t-1", "contacts", "2026-11-24", "a.ndjson", &lines);
    env.grant("t-1", "contacts");
    assert_eq!(statuses(&run_json(&env)), ["published"]);
    let ids: Vec<String> = column_by_release(&env, "contacts", None, "event_id")
        .into_values()
        .flatten()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids.len(), 80);
    // The rank of each person within each class, as a buyer reading the file sees it.
    let rank = |side: &str| -> HashMap<String, usize> {
        ids.iter()
            .filter(|id| id.ends_with(side))
            .enumerate()
            .map(|(r, id)| (id[..6].to_string(), r))
            .collect()
    };
    let (a, b) = (rank("-a"), rank("-b"));
    let same_rank = a.iter().filter(|(p, r)| b.get(*p) == Some(r)).count();
    // In input order all 40 would pair up; a random order pairs about one.
    assert!(
        same_rank < 8,
        "{same_rank} of 40 people keep their rank in both classes"
    );
    env.assert_verified();
}

#[test]
fn a_record_id_respelled_in_another_case_or_with_look_alike_dashes_is_no_new_record() {
    let env = Env::new();
    let mut lines: Vec<String> = (0..25)
        .map(|i| contact(i, &format!("person{i}@example.org"), |_| {}))
        .collect();
    // The same records re-exported: upper case, U+2010 and U+2212 dashes, Arabic-Indic digits.
    for (i, line) in lines.clone().iter().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).expect("json");
        let respelled = match i % 4 {
            0 => format!("EVT-{i:06}"),
            1 => format!("evt\u{2010}{i:06}"),
            2 => format!("evt\u{2212}{i:06}"),
            _ => format!("evt-{i:06}")
                .chars()
                .map(|c| {
                    c.to_digit(10)
                        .map_or(c, |d| char::from_u32(0x660 + d).unwrap_or(c))
                })
                .collect(),
        };
        v["event_id"] = respelled.into();
        lines.push(v.to_string());
    }
    put_lines(&env, "t-1", "contacts", "2026-11-24", "a.ndjson", &lines);
    env.grant("t-1", "contacts");
    let summary = run_json(&env);
    assert_eq!(statuses(&summary), ["published"], "{summary:#}");
    let report = &summary["partitions"][0]["report"];
    assert_eq!(report["already_released"], 25, "{report:#}");
    assert_eq!(report["records_out"], 25, "{report:#}");
}
