//! A release end to end through the binary: published, verified, rerun, crashed, withheld, spilled, split into files, and other inputs.

use super::*;

#[test]
fn demo_publishes_verified_releases_and_skips_tenants_without_consent() {
    let env = Env::new();
    let out = env
        .cmd(&["demo", "--dir", "data"])
        .env_remove("STACKPRO_HASH_KEY")
        .env_remove("STACKPRO_STATE")
        .output()
        .expect("demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("verify:") && stdout.contains(": OK"),
        "{stdout}"
    );
    assert!(
        stdout.contains("NoConsent"),
        "t-0100 contacts must be skipped: {stdout}"
    );
    let key = env.path("data/state/hash.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the demo key file must be private");
    }
    let key_text = std::fs::read_to_string(&key).expect("key");
    let curated = env.path("data/curated");
    assert!(
        !curated.join("dataset=contacts/tenant=t-0100").exists(),
        "no consent, no files"
    );
    let mut seen_datasets = std::collections::BTreeSet::new();
    for f in walk(&curated) {
        let bytes = std::fs::read(&f).expect("read");
        assert!(
            !contains(&bytes, key_text.trim().as_bytes()),
            "{} contains the hash key",
            f.display()
        );
        if f.extension().is_some_and(|e| e == "parquet") {
            let dataset = f
                .to_string_lossy()
                .split("dataset=")
                .nth(1)
                .and_then(|s| s.split('/').next())
                .map(str::to_string);
            seen_datasets.insert(dataset.expect("dataset in path"));
        }
    }
    assert_eq!(
        seen_datasets.into_iter().collect::<Vec<_>>(),
        ["contacts", "orders", "web_events"]
    );
}

#[test]
fn a_second_run_publishes_nothing_new_and_output_reads_back() {
    let env = Env::new();
    env.generate("contacts", "t-1", 3000, "a.ndjson", 0.0);
    env.generate("orders", "t-1", 2000, "b.csv", 0.0);
    env.grant("t-1", "contacts");
    env.grant("t-1", "orders");
    let first = run_json(&env);
    assert_eq!(statuses(&first), ["published", "published"], "{first:#}");
    let releases = env.releases();
    assert_eq!(releases.len(), 2);
    let files_before: Vec<(PathBuf, std::time::SystemTime)> = env
        .parquet_files()
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p)
                .expect("meta")
                .modified()
                .expect("mtime");
            (p, m)
        })
        .collect();

    let second = run_json(&env);
    assert_eq!(
        statuses(&second),
        ["nothing_new", "nothing_new"],
        "{second:#}"
    );
    assert_eq!(env.releases(), releases, "the catalog is unchanged");
    let files_after: Vec<(PathBuf, std::time::SystemTime)> = env
        .parquet_files()
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p)
                .expect("meta")
                .modified()
                .expect("mtime");
            (p, m)
        })
        .collect();
    assert_eq!(files_before, files_after, "no file was rewritten");

    // Read back with the parquet crate, as a buyer would.
    let builder = env.first_file_of("contacts");
    let kv: HashMap<String, String> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .expect("metadata")
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
        .collect();
    assert_eq!(
        kv.get("stackpro.policy_id").map(String::as_str),
        Some("default-v2")
    );
    assert_eq!(kv.get("stackpro.k").map(String::as_str), Some("20"));
    assert!(
        kv.get("stackpro.key_id")
            .is_some_and(|k| k.starts_with("hmac-sha256:") && !k.contains(KEY))
    );
    let release = releases
        .iter()
        .find(|r| r["dataset"] == "contacts")
        .expect("contacts release");
    for (key, field) in [
        ("stackpro.release_id", "release_id"),
        ("stackpro.node", "node"),
        ("stackpro.policy_hash", "policy_hash"),
    ] {
        assert_eq!(
            kv.get(key).map(String::as_str),
            release[field].as_str(),
            "{key} against the catalog's {field}"
        );
    }
    assert!(
        kv.get("stackpro.policy_hash")
            .and_then(|h| h.strip_prefix("sha256:"))
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit())),
        "{kv:?}"
    );
    for row_group in builder.metadata().row_groups() {
        for column in row_group.columns() {
            assert!(
                matches!(column.compression(), parquet::basic::Compression::ZSTD(_)),
                "{} is {:?}",
                column.column_path(),
                column.compression()
            );
        }
    }
    let columns: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    for forbidden in ["email", "name", "message", "user_agent", "tenant_id"] {
        assert!(
            !columns.contains(&forbidden.to_string()),
            "{forbidden} was published: {columns:?}"
        );
    }
    let rows: usize = builder
        .build()
        .expect("reader")
        .map(|b| {
            let b = b.expect("batch");
            let hashes = b
                .column_by_name("email_hash")
                .expect("email_hash")
                .as_string::<i32>()
                .clone();
            assert!(
                hashes
                    .iter()
                    .flatten()
                    .all(|h| h.len() == 32 && h.bytes().all(|c| c.is_ascii_hexdigit())),
                "pseudonyms are 128 bits in hex"
            );
            b.num_rows()
        })
        .sum();
    let out: u64 = releases
        .iter()
        .find(|r| r["dataset"] == "contacts")
        .and_then(|r| r["records_out"].as_u64())
        .expect("records_out");
    assert_eq!(rows as u64, out);
    assert!(out > 2500, "most records are released: {out}");
    env.assert_verified();

    // One datapoint per release figure, with the report's value.
    let metrics = std::fs::read_to_string(env.path("state/metrics.jsonl")).expect("metrics");
    let points: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).expect("metrics json"))
        .collect();
    for release in &releases {
        let dataset = release["dataset"].as_str().expect("dataset");
        for (name, field) in [
            ("RecordsIn", "records_in"),
            ("RecordsOut", "records_out"),
            ("SuppressedRecords", "suppressed"),
            ("QuarantinedRecords", "quarantined"),
            ("KAnonViolations", "k_anon_violations"),
        ] {
            let values: Vec<f64> = points
                .iter()
                .filter(|p| {
                    p["name"] == name
                        && p["namespace"] == "StackPro/DataPlatform"
                        && p["dimensions"]
                            .as_array()
                            .is_some_and(|d| d.contains(&serde_json::json!(["Dataset", dataset])))
                })
                .filter_map(|p| p["value"].as_f64())
                .collect();
            let want = release[field]
                .as_u64()
                .unwrap_or_else(|| panic!("{field}: {release:#}"));
            assert_eq!(values, [want as f64], "{dataset} {name}");
        }
    }

    // SQL sees exactly the published rows.
    env.assert_query_counts(
        "SELECT count(*) AS n FROM contacts WHERE tenant = 't-1'",
        out,
    );
}

#[test]
fn a_crash_before_the_catalog_entry_leaves_nothing_visible_and_the_next_run_completes_it() {
    let env = Env::new();
    env.generate("contacts", "t-1", 2000, "a.ndjson", 0.0);
    env.grant("t-1", "contacts");
    let crashed = env
        .cmd(&["run"])
        .env("STACKPRO_FAULT", "after-files")
        .output()
        .expect("run");
    assert!(!crashed.status.success(), "the fault must stop the process");
    assert!(
        !env.parquet_files().is_empty(),
        "files were written before the crash"
    );
    assert!(env.releases().is_empty(), "nothing was published");
    assert_eq!(
        env.query_count("SELECT count(*) AS n FROM contacts"),
        0,
        "no rows visible"
    );

    let rerun = run_json(&env);
    assert_eq!(statuses(&rerun), ["published"], "{rerun:#}");
    let releases = env.releases();
    assert_eq!(releases.len(), 1);
    let release_dirs: std::collections::BTreeSet<PathBuf> = env
        .parquet_files()
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    assert_eq!(
        release_dirs.len(),
        1,
        "the rerun rewrote the same release: {release_dirs:?}"
    );
    assert!(
        env.ok(&["verify", env.path("curated").to_str().expect("utf8")])
            .contains("OK")
    );
}

#[test]
fn too_few_people_withhold_the_release() {
    let env = Env::new();
    let out = env.path("raw/tenant=t-2/dataset=orders/source=test/dt=2026-11-24/few.ndjson");
    env.ok(&[
        "gen",
        "--dataset",
        "orders",
        "--records",
        "500",
        "--people",
        "10",
        "--tenant",
        "t-2",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    env.grant("t-2", "orders");
    let summary = run_json(&env);
    assert_eq!(statuses(&summary), ["withheld"], "{summary:#}");
    assert!(
        env.parquet_files().is_empty(),
        "a withheld release writes no Parquet"
    );
    assert!(env.releases().is_empty());
    let metrics = std::fs::read_to_string(env.path("state/metrics.jsonl")).expect("metrics");
    assert!(metrics.contains("\"KAnonViolations\""), "{metrics}");
}

#[test]
fn a_release_whose_staged_rows_spill_to_disk_publishes_what_one_held_in_memory_does() {
    // The same raw data and key, staged in memory (the default budget) and with no memory
    // budget at all, so every transformed batch goes through the spill file.
    let release = |config: Option<&str>| {
        let env = Env::new();
        if let Some(config) = config {
            std::fs::write(env.path("stackpro.toml"), config).expect("config");
        }
        env.generate("contacts", "t-1", 6000, "a.ndjson", 0.02);
        env.grant("t-1", "contacts");
        let mut run = env.cmd(&["run", "--json"]);
        run.env("RUST_LOG", "pipeline::transforms=debug");
        let out = output_of_success(run, &["run", "--json"]);
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
        assert_eq!(statuses(&summary), ["published"], "{summary:#}");
        let spilled = String::from_utf8_lossy(&out.stderr).contains("staged rows spill to disk");
        let rows: Vec<arrow::record_batch::RecordBatch> = env
            .parquet_files()
            .iter()
            .flat_map(|f| {
                ParquetRecordBatchReaderBuilder::try_new(File::open(f).expect("open"))
                    .expect("parquet")
                    .build()
                    .expect("reader")
                    .map(|b| b.expect("batch"))
            })
            .collect();
        let report = &env.releases()[0];
        let figures = [
            "records_in",
            "records_out",
            "suppressed",
            "quarantined",
            "node",
        ]
        .map(|f| report[f].clone());
        (
            spilled,
            figures,
            arrow::compute::concat_batches(&rows[0].schema(), &rows).expect("concat"),
        )
    };
    let (in_memory_spilled, in_memory_figures, in_memory_rows) = release(None);
    let (spilled, figures, rows) = release(Some("staging_memory_bytes = 0\n"));
    assert!(
        !in_memory_spilled,
        "6000 records fit the default staging budget"
    );
    assert!(
        spilled,
        "with no staging budget the rows go through the spill file"
    );
    assert_eq!(figures, in_memory_figures);
    assert!(rows.num_rows() > 5000, "{} rows", rows.num_rows());
    let sorted = |batch: &arrow::record_batch::RecordBatch| {
        let fields = batch
            .schema()
            .fields()
            .iter()
            .map(|f| arrow::row::SortField::new(f.data_type().clone()))
            .collect();
        let converter = arrow::row::RowConverter::new(fields).expect("converter");
        let rows = converter.convert_columns(batch.columns()).expect("rows");
        let mut rows: Vec<Vec<u8>> = rows.iter().map(|r| r.as_ref().to_vec()).collect();
        rows.sort();
        rows
    };
    // Pseudonyms are keyed by release id, which names the inputs' folder (another temp
    // folder here): equal up to a renaming of their values. Rows come out in the keyed
    // order of their pseudonyms, so the order differs with the key too; the rows do not.
    assert_eq!(
        sorted(&same_up_to_pseudonyms(&rows)),
        sorted(&same_up_to_pseudonyms(&in_memory_rows)),
        "the same rows"
    );

    // In several files as well: the rows are routed to their files through spill files
    // of their own. Each file holds whole classes, so the order differs; the rows do not.
    let (_, split_figures, split_rows) =
        release(Some("staging_memory_bytes = 0\nmax_rows_per_file = 1500\n"));
    assert_eq!(split_figures, in_memory_figures);
    assert_eq!(
        sorted(&same_up_to_pseudonyms(&split_rows)),
        sorted(&same_up_to_pseudonyms(&in_memory_rows))
    );
}

#[test]
fn a_release_past_its_memory_budget_stops_with_its_figures_and_loses_nothing() {
    // 2 MiB cannot hold 60,000 records' histogram, ledger and decision (the staged rows
    // spill and give their memory back): the release stops with the figures that made it
    // grow (instead of the kernel killing the worker), and publishes nothing. With the
    // default budget the same run publishes every record.
    let env = Env::new();
    env.generate("contacts", "t-1", 60_000, "a.ndjson", 0.0);
    env.grant("t-1", "contacts");
    let mut run = env.cmd(&["run", "--json"]);
    run.env("STACKPRO_RELEASE_MEMORY_BYTES", "2097152");
    let out = run.output().expect("run stackpro");
    assert_eq!(out.status.code(), Some(1), "a failed release exits 1");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(statuses(&summary), ["failed"], "{summary:#}");
    let message = summary["partitions"][0]["message"]
        .as_str()
        .expect("message");
    for part in [
        "release too large for its memory",
        "records (",
        "base classes",
        "distinct subjects",
        "past the release's memory budget of 2.0 MiB (2097152 bytes, release_memory_bytes)",
        "raw objects stay pending",
    ] {
        assert!(message.contains(part), "{part:?} missing: {message}");
    }
    assert!(env.parquet_files().is_empty(), "nothing written");
    assert!(env.releases().is_empty(), "nothing published");

    let summary = run_json(&env);
    assert_eq!(statuses(&summary), ["published"], "{summary:#}");
    let report = &env.releases()[0];
    assert_eq!(report["records_in"], 60_000, "{report:#}");
    assert_eq!(
        report["report"]["already_released"], 0,
        "the stopped release marked nothing released: {report:#}"
    );
}

#[test]
fn a_partition_past_its_memory_budget_leaves_the_others_of_the_run_to_publish() {
    // Partitions are per tenant and fail alone: a tenant whose release is too large for
    // the budget stops with its figures, and another tenant's release in the same run
    // publishes (an out-of-memory kill of the worker would have ended both). The small
    // one fits 4 MiB on any number of cores (the decision counts its buffers per thread).
    // The stopped one publishes whole in a later run with room, and the other is not
    // released again.
    let env = Env::new();
    env.generate("contacts", "t-big", 80_000, "a.ndjson", 0.0);
    env.generate("contacts", "t-small", 300, "a.ndjson", 0.0);
    env.grant("t-big", "contacts");
    env.grant("t-small", "contacts");
    let mut run = env.cmd(&["run", "--json"]);
    run.env("STACKPRO_RELEASE_MEMORY_BYTES", "4194304");
    let out = run.output().expect("run stackpro");
    assert_eq!(out.status.code(), Some(1), "a failed release exits 1");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    let of = |tenant: &str| {
        summary["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .find(|p| p["partition"]["tenant"] == tenant)
            .unwrap_or_else(|| panic!("no partition of {tenant}: {summary:#}"))
            .clone()
    };
    let (big, small) = (of("t-big"), of("t-small"));
    assert_eq!(big["status"], "failed", "{summary:#}");
    assert!(
        big["message"]
            .as_str()
            .is_some_and(|m| m.contains("release too large for its memory")),
        "{summary:#}"
    );
    assert_eq!(small["status"], "published", "{summary:#}");
    let releases = env.releases();
    assert_eq!(releases.len(), 1, "{releases:#?}");
    assert_eq!(
        (
            releases[0]["tenant"].as_str(),
            releases[0]["records_in"].as_u64()
        ),
        (Some("t-small"), Some(300))
    );

    let summary = run_json(&env);
    assert_eq!(
        tenant_statuses(&summary),
        [
            ("t-big".to_owned(), "published".to_owned()),
            ("t-small".to_owned(), "nothing_new".to_owned())
        ],
        "only t-big was pending: {summary:#}"
    );
    let releases = env.releases();
    let big = releases
        .iter()
        .find(|r| r["tenant"] == "t-big")
        .expect("t-big published");
    assert_eq!(big["records_in"], 80_000, "{big:#}");
    assert_eq!(big["report"]["already_released"], 0, "{big:#}");
    assert_eq!(releases.len(), 2);
    env.assert_verified();
}

#[test]
fn a_release_memory_budget_is_a_count_of_at_least_a_mebibyte_or_auto() {
    let env = Env::new();
    env.generate("contacts", "t-1", 3000, "a.ndjson", 0.0);
    env.grant("t-1", "contacts");
    for (value, expected) in [("12", 2), ("lots", 2), ("auto", 0), ("67108864", 0)] {
        let mut run = env.cmd(&["run", "--json"]);
        run.env("STACKPRO_RELEASE_MEMORY_BYTES", value);
        let out = run.output().expect("run stackpro");
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if expected == 2 {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("STACKPRO_RELEASE_MEMORY_BYTES")
                    || String::from_utf8_lossy(&out.stderr).contains("release_memory_bytes"),
                "{value}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// `batch` with each pseudonym (`email_hash`) replaced by the smallest `event_id` among
/// its rows: two releases of the same records agree on this, in any row order, though
/// their pseudonym keys differ.
fn same_up_to_pseudonyms(
    batch: &arrow::record_batch::RecordBatch,
) -> arrow::record_batch::RecordBatch {
    let column = batch.schema().index_of("email_hash").expect("email_hash");
    let pseudonyms = batch.column(column).as_string::<i32>();
    let ids = batch
        .column_by_name("event_id")
        .expect("event_id")
        .as_string::<i32>();
    let mut first: HashMap<&str, &str> = HashMap::new();
    for (p, id) in pseudonyms.iter().zip(ids.iter()) {
        if let (Some(p), Some(id)) = (p, id) {
            let e = first.entry(p).or_insert(id);
            if id < *e {
                *e = id;
            }
        }
    }
    let renamed: arrow::array::StringArray = pseudonyms
        .iter()
        .map(|v| v.map(|v| format!("p:{}", first[v])))
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[column] = std::sync::Arc::new(renamed);
    arrow::record_batch::RecordBatch::try_new(batch.schema(), columns).expect("batch")
}

#[test]
fn a_release_over_max_rows_per_file_is_split_into_readable_parts() {
    let env = Env::new();
    std::fs::write(env.path("stackpro.toml"), "max_rows_per_file = 700\n").expect("config");
    env.generate("contacts", "t-1", 3000, "a.ndjson", 0.0);
    env.grant("t-1", "contacts");
    let summary = run_json(&env);
    assert_eq!(statuses(&summary), ["published"], "{summary:#}");
    let releases = env.releases();
    let out = releases[0]["records_out"].as_u64().expect("records_out");
    let files = env.parquet_files();
    assert!(files.len() as u64 >= out.div_ceil(700), "{files:?}");
    let mut total = 0u64;
    // Generalized quasi-identifier values → the file holding that class.
    let mut file_of_class: HashMap<Vec<Option<String>>, usize> = HashMap::new();
    for (i, file) in files.iter().enumerate() {
        assert!(
            file.ends_with(format!("part-{i:05}.parquet")),
            "{}",
            file.display()
        );
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(file).expect("open"))
            .expect("parquet");
        let declared = reader.metadata().file_metadata().num_rows() as u64;
        let mut rows = 0u64;
        for batch in reader.build().expect("reader") {
            let batch = batch.expect("batch");
            let qis: Vec<_> = ["phone", "ip", "zip", "age", "gender"]
                .iter()
                .map(|c| {
                    arrow::compute::cast(
                        batch.column_by_name(c).expect("qi column"),
                        &arrow::datatypes::DataType::Utf8,
                    )
                    .expect("cast")
                })
                .collect();
            for row in 0..batch.num_rows() {
                let key: Vec<Option<String>> = qis
                    .iter()
                    .map(|a| {
                        let a = a.as_string::<i32>();
                        arrow::array::Array::is_valid(a, row).then(|| a.value(row).to_string())
                    })
                    .collect();
                let holder = *file_of_class.entry(key.clone()).or_insert(i);
                assert_eq!(holder, i, "class {key:?} is in two files");
            }
            rows += batch.num_rows() as u64;
        }
        assert_eq!(rows, declared);
        // At most 700 rows, unless a single class has more (a class is never cut).
        let classes_here = file_of_class.values().filter(|&&f| f == i).count();
        assert!(
            rows > 0 && (rows <= 700 || classes_here == 1),
            "{} holds {rows} rows",
            file.display()
        );
        // Each file on its own is k-anonymous: a buyer may be handed one file.
        let verify = env.ok(&["verify", file.to_str().expect("utf8")]);
        assert!(verify.contains("OK"), "{}: {verify}", file.display());
        total += rows;
    }
    assert!(files.len() > 1, "the test needs a release of several files");
    assert_eq!(total, out, "every published row is in exactly one part");
    let listed: Vec<u64> = releases[0]["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["rows"].as_u64().expect("rows"))
        .collect();
    assert_eq!(listed.iter().sum::<u64>(), out);
    env.assert_verified();
}

#[test]
fn ids_too_many_for_a_dictionary_are_written_delta_length_encoded_and_read_back_exactly() {
    // 40,000 distinct event ids overflow a column chunk's dictionary (1 MiB holds about
    // 26,000 of them): the rest of the chunk is in the fallback encoding, which a buyer's
    // reader must decode to exactly the raw ids.
    let env = Env::new();
    env.generate("contacts", "t-1", 40_000, "a.ndjson", 0.0);
    env.grant("t-1", "contacts");
    let summary = run_json(&env);
    assert_eq!(statuses(&summary), ["published"], "{summary:#}");
    let raw = std::fs::read_to_string(
        env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-24/a.ndjson"),
    )
    .expect("raw");
    let raw_ids: std::collections::HashSet<String> = raw
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["event_id"].as_str().expect("event_id").to_string()
        })
        .collect();

    let mut published = Vec::new();
    let mut encodings = std::collections::BTreeSet::new();
    for file in env.parquet_files() {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&file).expect("open"))
            .expect("parquet");
        for rg in builder.metadata().row_groups() {
            for column in rg.columns() {
                if column.column_path().string() == "event_id" {
                    encodings.extend(column.encodings().map(|e| format!("{e:?}")));
                }
            }
        }
        for batch in builder.build().expect("reader") {
            let batch = batch.expect("batch");
            let ids = batch.column_by_name("event_id").expect("event_id");
            published.extend(ids.as_string::<i32>().iter().flatten().map(str::to_string));
        }
    }
    assert!(
        encodings.contains("DELTA_LENGTH_BYTE_ARRAY"),
        "the dictionary overflowed into the fallback encoding: {encodings:?}"
    );
    let out = env.releases()[0]["records_out"]
        .as_u64()
        .expect("records_out");
    assert!(out > 35_000, "{out} records out");
    assert_eq!(published.len() as u64, out);
    let distinct: std::collections::HashSet<&String> = published.iter().collect();
    assert_eq!(distinct.len(), published.len(), "every event id once");
    assert!(
        published.iter().all(|id| raw_ids.contains(id)),
        "every published id is a raw id, byte for byte"
    );
    env.assert_verified();
    env.assert_query_counts(
        "SELECT count(DISTINCT event_id) AS n FROM contacts WHERE length(email_hash) = 32",
        out,
    );
}

#[test]
fn zstd_objects_other_delimiters_flags_and_a_policy_without_subjects_publish() {
    let env = Env::new();
    // Contacts as zstd-compressed NDJSON.
    env.generate("contacts", "t-1", 3000, "a.ndjson.zst", 0.0);
    // Orders as CSV with `;`, which the configuration names for that dataset.
    env.generate("orders", "t-1", 2000, "b.csv", 0.0);
    let csv = env.path("raw/tenant=t-1/dataset=orders/source=test/dt=2026-11-24/b.csv");
    let text = std::fs::read_to_string(&csv).expect("csv");
    // No `;` in the data and no `,` inside a field: each line has the header's commas.
    let commas = |l: &str| l.matches(',').count();
    let header_commas = commas(text.lines().next().expect("header"));
    assert!(!text.contains(';') && text.lines().all(|l| commas(l) == header_commas));
    std::fs::write(&csv, text.replace(',', ";")).expect("rewrite");
    std::fs::write(
        env.path("stackpro.toml"),
        "[datasets.orders]\ncsv_delimiter = \";\"\n",
    )
    .expect("config");
    // A policy of our own, in which orders name no subject: each record counts as its
    // own subject.
    let mut policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies/default-v2.json"
        ))
        .expect("policy"),
    )
    .expect("policy json");
    policy["id"] = "test-no-subject".into();
    policy["datasets"]["orders"]
        .as_object_mut()
        .expect("orders")
        .remove("subject");
    policy["datasets"]["orders"]
        .as_object_mut()
        .expect("orders")
        .remove("subject_kind");
    let policy_file = env.path("policy.json");
    std::fs::write(&policy_file, policy.to_string()).expect("policy file");
    // Hierarchy tables are read beside the policy.
    std::fs::create_dir_all(env.path("hierarchies")).expect("hierarchies");
    for table in ["device.csv", "country.csv"] {
        std::fs::copy(
            format!(
                "{}/../policies/hierarchies/{table}",
                env!("CARGO_MANIFEST_DIR")
            ),
            env.path(&format!("hierarchies/{table}")),
        )
        .expect("hierarchy table");
    }

    // The state folder by flag alone.
    let state = env.path("elsewhere");
    let with_state = |args: &[&str]| {
        let mut cmd = env.cmd(&[]);
        cmd.env_remove("STACKPRO_STATE")
            .arg("--state")
            .arg(&state)
            .args(args);
        stdout_of_success(cmd, args)
    };
    for dataset in ["contacts", "orders"] {
        with_state(&["consent", "grant", "--tenant", "t-1", "--dataset", dataset]);
    }
    with_state(&["consent", "grant", "--tenant", "t-2", "--dataset", "orders"]);
    let listed = with_state(&["consent", "list", "--tenant", "t-1"]);
    assert!(
        listed.contains("contacts") && listed.contains("orders") && !listed.contains("t-2"),
        "{listed}"
    );
    let listed = with_state(&["consent", "list", "--dataset", "contacts"]);
    assert!(
        listed.contains("t-1") && !listed.contains("orders"),
        "{listed}"
    );

    let summary: serde_json::Value = serde_json::from_str(&with_state(&[
        "run",
        "--policy",
        policy_file.to_str().expect("utf8"),
        "--json",
    ]))
    .expect("summary");
    assert_eq!(
        statuses(&summary),
        ["published", "published"],
        "{summary:#}"
    );
    assert!(state.join("catalog.sqlite").exists());
    let releases: Vec<serde_json::Value> =
        serde_json::from_str(&with_state(&["releases", "--json"])).expect("releases");
    for (dataset, records) in [("contacts", 3000), ("orders", 2000)] {
        let r = releases
            .iter()
            .find(|r| r["dataset"] == dataset)
            .expect(dataset);
        assert_eq!(r["records_in"], records, "{dataset}: {r:#}");
        assert_eq!(r["quarantined"], 0, "{dataset}: {r:#}");
        assert_eq!(r["policy_id"], "test-no-subject", "{dataset}: {r:#}");
        assert!(
            r["records_out"].as_u64().expect("out") > 0,
            "{dataset}: {r:#}"
        );
    }
    // Without a subject, the orders file names none, and k holds over rows.
    let builder = env.first_file_of("orders");
    let keys: Vec<&str> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .expect("metadata")
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert!(!keys.contains(&"stackpro.subject_column"), "{keys:?}");
    env.assert_verified();
}
