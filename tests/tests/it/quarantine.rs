//! Bad input is quarantined with its reason and raw bytes, never dropped.

use super::*;

#[test]
fn garbage_truncated_gzip_and_oversized_lines_are_quarantined_with_reasons() {
    let env = Env::new();
    env.generate("contacts", "t-1", 2500, "good.ndjson", 0.05);
    let dir = env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-24");
    // A gzip object cut in the middle.
    let good = std::fs::read(dir.join("good.ndjson")).expect("good");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&good[..good.len() / 2]).expect("gzip");
    let gz = gz.finish().expect("gzip");
    std::fs::write(dir.join("cut.ndjson.gz"), &gz[..gz.len() * 2 / 3]).expect("write");
    // Garbage and an oversized line.
    let mut junk = File::create(dir.join("junk.ndjson")).expect("junk");
    writeln!(junk, "this is not json").expect("w");
    writeln!(
        junk,
        "{{\"email\": \"a@b.io\", \"message\": \"{}\"}}",
        "x".repeat(3 << 20)
    )
    .expect("w");
    junk.write_all(b"{\"email\": \"\xff\xfe@b.io\"}\n")
        .expect("w");
    drop(junk);
    env.grant("t-1", "contacts");

    let summary = run_json(&env);
    assert_eq!(statuses(&summary), ["published"], "{summary:#}");
    let report = &summary["partitions"][0]["report"];
    let quarantined = report["quarantined"].as_u64().expect("quarantined");
    let reasons = report["quarantine_reasons"].as_object().expect("reasons");
    let reason_text = serde_json::to_string(reasons).expect("json");
    for expected in [
        "not valid JSON",
        "exceeds the limit",
        "invalid UTF-8",
        "truncated or corrupt",
        "invalid ip",
        "missing subject",
    ] {
        assert!(
            reason_text.contains(expected),
            "no `{expected}` among {reason_text}"
        );
    }
    // The cut gzip object repeats the first half of good.ndjson: those records are
    // released once, and counted as already released the second time.
    let already = report["already_released"]
        .as_u64()
        .expect("already released");
    assert!(already > 0, "{report:#}");
    assert_eq!(
        report["records_in"].as_u64(),
        Some(report["records_valid"].as_u64().expect("valid") + quarantined + already),
        "every record is counted"
    );
    // The quarantine file keeps each record with its reason and position.
    let qfiles: Vec<PathBuf> = walk(&env.path("quarantine"));
    assert_eq!(qfiles.len(), 1, "{qfiles:?}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&qfiles[0])
        .expect("quarantine")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len() as u64, quarantined);
    assert!(
        lines
            .iter()
            .all(|l| l["reason"].is_string() && l["object"].is_string() && l["line"].is_u64())
    );
    assert!(
        lines.iter().any(|l| l["raw_truncated"] == true),
        "the oversized line is kept, cut"
    );
    assert!(
        lines.iter().any(|l| l["raw_hex"].is_string()),
        "invalid UTF-8 is kept as hex"
    );
    assert!(
        env.ok(&["verify", env.path("curated").to_str().expect("utf8")])
            .contains("OK")
    );
}

#[test]
fn a_quarantined_record_keeps_its_own_line_number_and_bytes_deep_into_a_large_object() {
    // Records are transformed in parallel tasks of a few thousand lines; a rejection late
    // in a chunk must still point at its own line, not at a line of the first task.
    let env = Env::new();
    env.generate("contacts", "t-1", 6000, "big.ndjson", 0.0);
    let path = env.path("raw/tenant=t-1/dataset=contacts/source=test/dt=2026-11-24/big.ndjson");
    let text = std::fs::read_to_string(&path).expect("raw");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let bad = [(3001_usize, "late garbage one"), (5999, "late garbage two")];
    for (number, garbage) in bad {
        lines[number - 1] = garbage.to_owned();
    }
    std::fs::write(&path, lines.join("\n") + "\n").expect("rewrite");
    env.grant("t-1", "contacts");
    assert_eq!(statuses(&run_json(&env)), ["published"]);

    let mut found: Vec<(u64, String)> = walk(&env.path("quarantine"))
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("quarantine file")
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("quarantine json"))
                .collect::<Vec<_>>()
        })
        .map(|q| {
            (
                q["line"].as_u64().expect("line"),
                q["raw"].as_str().expect("raw").to_owned(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        bad.iter()
            .map(|(n, g)| (*n as u64, (*g).to_owned()))
            .collect::<Vec<_>>(),
        "each quarantined record carries its own line number and raw bytes"
    );
}
