//! Criterion benchmarks per transform: hashing, phone masking, IP truncation, ZIP, age
//! bands, timestamp truncation, the PII check of kept text, parsing an NDJSON line, a
//! whole record through the batch builder, and the k-anonymity decision.
//! `cargo bench -p benches --bench transforms`

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use policies::hierarchy::Hierarchy;
use policies::policy::OutputKind;
use policies::{BatchBuilder, KeyedHasher, Policy, QiHistogram, Value};

fn hierarchy(policy: &Policy, column: &str) -> Hierarchy {
    let rules = policy.dataset("contacts").expect("contacts");
    match &rules
        .outputs
        .iter()
        .find(|o| o.column == column)
        .expect("column")
        .kind
    {
        OutputKind::QuasiIdentifier(h) | OutputKind::Level0(h) => h.clone(),
        _ => Hierarchy::Timestamp,
    }
}

fn transforms(c: &mut Criterion) {
    let policy = Policy::default_v2().expect("policy");
    let hasher = KeyedHasher::new(b"bench-key-0123456789").expect("key");
    c.bench_function("hash/email", |b| {
        b.iter(|| hasher.hash(black_box(" Ana.Ruiz@Example.com ")))
    });
    // The subject's canonical form, once per record: the policy's own email rules, on an
    // address of the kind most records carry, then one its Gmail rule rewrites.
    let contacts = policy.dataset("contacts").expect("contacts");
    let kind = contacts.subject_kind.clone();
    for address in ["omar18@outlook.com", "Kim.Grace.33645+news@googlemail.com"] {
        let mut out = String::new();
        c.bench_function(&format!("subject/{address}"), |b| {
            b.iter(|| {
                policies::subject::canonical_subject_into(&kind, black_box(address), &mut out)
            })
        });
    }
    for (column, input, level) in [
        ("phone", "+1 (415) 555-0134", 1),
        ("ip", "203.0.113.57", 1),
        ("ip", "2001:DB8:85A3:8D3:1319:8A2E:370:7348", 1),
        ("zip", "94110-1234", 1),
        ("submitted_at", "2026-11-24T23:30:00-05:00", 0),
        ("submitted_at", "2026-11-24T15:04:05Z", 0),
    ] {
        let h = hierarchy(&policy, column);
        let v = Value::Str(Cow::Borrowed(input));
        c.bench_function(&format!("{column}/{input}"), |b| {
            b.iter(|| h.apply(black_box(&v), column, level))
        });
    }
    // The PII check of kept text: a random UUID, a third of which hold a phone-length
    // run of digits and dashes that the phone scanner must judge and reject.
    for id in [
        "3e2392bc-7431-4f9f-a4a9-6946bbff2831",
        "e14c219f-9d25-4567-8901-f99e0852d974",
    ] {
        c.bench_function(&format!("pii/{id}"), |b| {
            b.iter(|| policies::pii::find_all_pii(black_box(id)))
        });
    }
    let age = hierarchy(&policy, "age");
    c.bench_function("age/34", |b| {
        b.iter(|| age.apply(black_box(&Value::Int(34)), "age", 2))
    });

    let rules = policy.dataset("contacts").expect("contacts");
    let idx = |name: &str| rules.inputs.iter().position(|n| n == name).expect("field");
    let mut rec = vec![Value::Null; rules.inputs.len()];
    for (f, v) in [
        ("event_id", "3e2392bc-7431-4f9f-a4a9-6946bbff2831"),
        ("submitted_at", "2026-11-24T15:04:05Z"),
        ("email", "Ana.Ruiz@Example.com"),
        ("phone", "+1 (415) 555-0134"),
        ("ip", "203.0.113.57"),
        ("zip", "94110"),
        ("gender", "F"),
        ("country", "US"),
        ("source", "web-form"),
        ("interest", "pricing"),
    ] {
        rec[idx(f)] = Value::Str(Cow::Borrowed(v));
    }
    rec[idx("age")] = Value::Int(34);
    rec[idx("lead_score")] = Value::Int(72);
    c.bench_function("record/contacts", |b| {
        let mut builder = BatchBuilder::new(rules, &hasher);
        b.iter(|| {
            builder.push(black_box(&rec)).expect("valid");
            if builder.len() >= 4096 {
                black_box(builder.finish().expect("batch"));
            }
        })
    });

    // One raw NDJSON line into the policy's input slots (the scanner's path).
    let fields = pipeline::sources::json_record::FieldIndex::new(rules);
    let line = br#"{"event_id":"e14c219f-9d25-456d-a271-f99e0852d974","tenant_id":"t-0042","submitted_at":"2026-11-24T12:43:01Z","name":"Omar Martin","email":"omar18@outlook.com","phone":"+1 (404) 405-2011","ip":"73.162.14.168","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36","zip":"30303","age":39,"gender":"M","country":"US","source":"chat","interest":"support","message":"Hey team, getting a \"403\" when I open the dashboard, any ideas?","lead_score":37}"#;
    c.bench_function("ndjson/contacts line", |b| {
        let mut parser = pipeline::sources::json_record::RecordParser::new(&fields);
        let (mut slots, mut unknown) = (Vec::new(), std::collections::BTreeSet::new());
        b.iter(|| {
            parser
                .parse(black_box(line), &mut slots, &mut unknown)
                .expect("valid");
            black_box(&slots);
        })
    });

    // The lattice search over 20,000 records from 4,000 people.
    let mut hist = QiHistogram::new(rules);
    for i in 0..20_000u64 {
        let p = i % 4000;
        let phone = format!("***-***-{:04}", p);
        let ip = format!("10.{}.{}.0", p % 7, p % 250);
        let zip = format!("941{:02}", p % 40);
        let age = (20 + p % 50).to_string();
        let qi = [
            Some(phone.as_str()),
            Some(ip.as_str()),
            Some(zip.as_str()),
            Some(age.as_str()),
            Some(if p % 2 == 0 { "F" } else { "M" }),
            Some("US"),
        ];
        hist.add(&qi, Some(p)).expect("add");
    }
    c.bench_function("kanon/decide 20k records 4k people", |b| {
        b.iter(|| hist.decide(20, 0.05).expect("decide"))
    });
}

/// Counting records into the histogram (the counting thread of pass 1): keys built and
/// hashed beforehand, as the transform stage does, then added batch by batch to a fresh
/// histogram. `contacts`-shaped keys (six values, about 45 bytes), people recurring so
/// that a million records fall into about 164,000 base classes (the `recurring`
/// profile), and near-unique ones (a class a record).
fn counting(c: &mut Criterion) {
    let policy = Policy::default_v2().expect("policy");
    let rules = policy.dataset("contacts").expect("contacts");
    let mut group = c.benchmark_group("kanon/count");
    group.sample_size(10);
    for (name, records, classes) in [
        ("1M records 164k classes", 1_000_000u64, 164_000u64),
        ("1M records 1M classes", 1_000_000, 1_000_000),
    ] {
        // A multiplicative hash spreads the records over the classes in no order.
        let batches: Vec<(policies::QiKeys, Vec<Option<u64>>)> = (0..records)
            .collect::<Vec<_>>()
            .chunks(8192)
            .map(|chunk| {
                let mut keys = policies::QiKeys::with_capacity(chunk.len(), 48);
                let mut subjects = Vec::with_capacity(chunk.len());
                for &i in chunk {
                    let p = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % classes;
                    for v in [
                        format!("***-***-{:04}", p % 10_000),
                        format!("{}.{}.{}.0", 10 + p % 200, (p / 200) % 256, p % 7),
                        format!("941{:02}", p % 97),
                        format!("{}-{}", 20 + p % 8 * 5, 24 + p % 8 * 5),
                        if p % 2 == 0 { "F" } else { "M" }.to_string(),
                        ["US", "CA", "MX", "GB"][(p % 4) as usize].to_string(),
                    ] {
                        keys.push_value(Some(&v));
                    }
                    keys.end_record();
                    subjects.push(Some(p.wrapping_mul(31) ^ (i % 3)));
                }
                (keys, subjects)
            })
            .collect();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut hist = QiHistogram::new(rules);
                for (keys, subjects) in &batches {
                    black_box(hist.add_all(keys, subjects).expect("count"));
                }
                assert!(hist.base_classes() as u64 <= classes);
                hist
            })
        });
    }
    group.finish();
}

criterion_group!(benches, transforms, counting);
criterion_main!(benches);
