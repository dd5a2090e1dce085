//! `stackpro verify` on files made by hand: raw identifiers and small classes fail it.

use super::*;

#[test]
fn verify_fails_on_raw_identifiers_and_small_classes() {
    use arrow::array::{ArrayRef, StringArray};
    use arrow::record_batch::RecordBatch;
    use std::sync::Arc;

    let env = Env::new();
    let write =
        |name: &str, release: &str, zip: Vec<&str>, subject: Vec<String>, note: Vec<&str>| {
            let batch = RecordBatch::try_from_iter([
                ("zip", Arc::new(StringArray::from(zip)) as ArrayRef),
                (
                    "email_hash",
                    Arc::new(StringArray::from(subject)) as ArrayRef,
                ),
                ("note", Arc::new(StringArray::from(note)) as ArrayRef),
            ])
            .expect("batch");
            let path = env.path(&format!("{name}.parquet"));
            write_parquet(
                &path,
                &batch,
                &[
                    ("stackpro.release_id", release),
                    ("stackpro.k", "20"),
                    ("stackpro.quasi_identifiers", "zip"),
                    ("stackpro.subject_column", "email_hash"),
                ],
            );
            path
        };
    let n = 25;
    let good = write(
        "good",
        "good",
        vec!["941**"; n],
        (0..n).map(|i| format!("s{i}")).collect(),
        vec!["pricing"; n],
    );
    assert!(
        env.ok(&["verify", good.to_str().expect("utf8")])
            .contains("OK")
    );
    // 25 rows but only 5 people: under k in distinct subjects.
    let few = write(
        "few",
        "few",
        vec!["941**"; n],
        (0..n).map(|i| format!("s{}", i % 5)).collect(),
        vec!["pricing"; n],
    );
    let out = env.run(&["verify", few.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 distinct subjects"));
    let mut notes = vec!["pricing"; n];
    notes[3] = "reach me at ana.ruiz@example.com";
    let leak = write(
        "leak",
        "leak",
        vec!["941**"; n],
        (0..n).map(|i| format!("s{i}")).collect(),
        notes,
    );
    let out = env.run(&["verify", leak.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("raw email") && !text.contains("ana.ruiz"),
        "the finding is named, the value is not: {text}"
    );
    // One release of 25 people in two files of 12 and 13: k holds for the release as a
    // whole but not in either file, and a buyer may be handed one file.
    let split = env.path("split");
    std::fs::create_dir_all(&split).expect("dir");
    for (file, people) in [("split/a", 0..12), ("split/b", 12..25)] {
        let rows = people.len();
        write(
            file,
            "split",
            vec!["941**"; rows],
            people.map(|i| format!("s{i}")).collect(),
            vec!["pricing"; rows],
        );
    }
    let out = env.run(&["verify", split.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("12 distinct subjects") && text.contains("13 distinct subjects"),
        "{text}"
    );

    // Text in other Arrow string layouts is scanned too.
    let mut notes: Vec<&str> = vec!["pricing"; n];
    notes[7] = "call 415-555-0134";
    let large = env.path("large.parquet");
    let batch = RecordBatch::try_from_iter([
        (
            "zip",
            Arc::new(StringArray::from(vec!["941**"; n])) as ArrayRef,
        ),
        (
            "note",
            Arc::new(arrow::array::LargeStringArray::from(notes.clone())) as ArrayRef,
        ),
        (
            "tag",
            Arc::new(
                arrow::array::DictionaryArray::<arrow::datatypes::Int32Type>::from_iter(
                    notes.iter().copied(),
                ),
            ) as ArrayRef,
        ),
        (
            "blob",
            Arc::new(arrow::array::BinaryArray::from_iter_values(
                notes.iter().map(|n| n.as_bytes()),
            )) as ArrayRef,
        ),
    ])
    .expect("batch");
    write_parquet(
        &large,
        &batch,
        &[
            ("stackpro.release_id", "large"),
            ("stackpro.k", "20"),
            ("stackpro.quasi_identifiers", "zip"),
        ],
    );
    let out = env.run(&["verify", large.to_str().expect("utf8"), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdict["pii_findings"], 3, "{verdict:#}");

    // A file that does not say which columns are quasi-identifiers cannot pass.
    let unlisted = env.path("unlisted.parquet");
    let batch = RecordBatch::try_from_iter([(
        "zip",
        Arc::new(StringArray::from(vec!["94110"; n])) as ArrayRef,
    )])
    .expect("batch");
    write_parquet(
        &unlisted,
        &batch,
        &[("stackpro.release_id", "unlisted"), ("stackpro.k", "20")],
    );
    let out = env.run(&["verify", unlisted.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no quasi-identifier list"));
}
