//! Property tests of the privacy invariants, over generated records of random size and skew:
//! every released class holds ≥ k distinct subjects, suppression stays within the limit
//! (or the release is withheld), and no raw email, phone or IP reaches any output column.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use arrow::array::{Array, AsArray, UInt32Array};
use proptest::prelude::*;

use crate::pii::find_pii;
use crate::{BatchBuilder, KeyedHasher, Outcome, Policy, QiHistogram, Value};

#[derive(Debug, Clone)]
struct Person {
    email: String,
    phone: String,
    ip: String,
    zip: String,
    age: i64,
    gender: &'static str,
}

fn person() -> impl Strategy<Value = Person> {
    (
        0u32..100_000,
        prop::sample::select(vec![
            "+1 (415) 555-{}",
            "415-555-{}",
            "+44 20 7946 {}",
            "+49151123{}",
        ]),
        0u32..10_000,
        prop::sample::select(vec![
            "203.0.{}.{}",
            "198.51.{}.{}",
            "2001:db8:{}::{}",
            "::ffff:192.0.{}.{}",
        ]),
        (0u32..4, 1u32..255),
        prop::sample::select(vec![
            "94110",
            "94112",
            "94103",
            "10001",
            "10002-1234",
            "02139",
        ]),
        0i64..=110,
        prop::sample::select(vec!["F", "M", "X"]),
    )
        .prop_map(
            |(id, phone_fmt, last4, ip_fmt, (net, host), zip, age, gender)| Person {
                email: format!("Person.{id}@Example.com"),
                phone: phone_fmt.replace("{}", &format!("{last4:04}")),
                ip: ip_fmt
                    .replacen("{}", &net.to_string(), 1)
                    .replacen("{}", &host.to_string(), 1),
                zip: zip.to_string(),
                age,
                gender,
            },
        )
}

/// A pool of people and a skewed list of which person each record belongs to.
fn dataset() -> impl Strategy<Value = (Vec<Person>, Vec<usize>, u32)> {
    (
        prop::collection::vec(person(), 1..120),
        1usize..1500,
        2u32..25,
    )
        .prop_flat_map(|(people, n, k)| {
            let len = people.len();
            // Squaring a uniform index skews records toward the first people.
            let picks = prop::collection::vec(
                (0..len * len).prop_map(move |i| ((i as f64).sqrt() as usize).min(len - 1)),
                n,
            );
            (Just(people), picks, Just(k))
        })
}

fn s(v: &str) -> Value<'_> {
    Value::Str(Cow::Borrowed(v))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn releases_are_k_anonymous_and_carry_no_raw_identifiers((people, picks, k) in dataset(), max_suppression in 0.0f64..0.2) {
        let policy = Policy::default_v2().expect("policy");
        let rules = policy.dataset("contacts").expect("contacts");
        let hasher = KeyedHasher::new(b"proptest-key-0123456789").expect("key");
        let idx = |name: &str| rules.inputs.iter().position(|n| n == name).expect("field");
        let mut builder = BatchBuilder::new(rules, &hasher);
        for (i, &p) in picks.iter().enumerate() {
            let p = &people[p];
            let mut rec = vec![Value::Null; rules.inputs.len()];
            let event = format!("evt-{i}");
            rec[idx("event_id")] = s(&event);
            rec[idx("submitted_at")] = s("2026-11-24T10:00:00Z");
            rec[idx("email")] = s(&p.email);
            rec[idx("phone")] = s(&p.phone);
            rec[idx("ip")] = s(&p.ip);
            rec[idx("zip")] = s(&p.zip);
            rec[idx("age")] = Value::Int(p.age);
            rec[idx("gender")] = s(p.gender);
            rec[idx("name")] = s("Ana Ruiz");
            rec[idx("message")] = s("call me at +1 415 555 0134");
            builder.push(&rec).expect("generated records are valid");
        }
        let staged = builder.finish().expect("batch");
        let mut hist = QiHistogram::new(rules);
        let classes = hist.add_all(&staged.quasi_identifiers, &staged.subjects).expect("add");
        let decision = hist.decide(k, max_suppression).expect("decide");
        let n = picks.len() as u64;
        let limit = (max_suppression * n as f64).floor() as u64;

        // The pruned search agrees with counting every node: the least level sum that
        // fits, then the fewest suppressed, then the first in lexicographic order.
        let exhaustive = hist
            .suppressed_at_every_node(k)
            .into_iter()
            .map(|(node, suppressed)| (node.iter().sum::<usize>(), suppressed, node))
            .filter(|(_, suppressed, _)| *suppressed <= limit)
            .min();
        match exhaustive {
            Some((_, suppressed, node)) => {
                prop_assert_eq!(&decision.outcome, &Outcome::Release);
                prop_assert_eq!((&decision.node, decision.suppressed_records), (&node, suppressed));
            }
            None => prop_assert!(matches!(decision.outcome, Outcome::Withheld(_))),
        }
        if decision.outcome != Outcome::Release {
            prop_assert!(matches!(decision.outcome, Outcome::Withheld(_)));
            return Ok(());
        }
        prop_assert!(decision.suppressed_records <= limit, "suppressed {} > limit {}", decision.suppressed_records, limit);

        let classes = UInt32Array::from(classes);
        let pseudonyms = hasher.release_pseudonyms("r-prop-1");
        let out = crate::batch::release_batch(rules, &decision, &staged.batch, &classes, &pseudonyms, crate::policy::PseudonymScope::Class).expect("release");
        prop_assert_eq!(out.num_rows() as u64, n - decision.suppressed_records);
        // Rows gathered from two staged batches in any order (pass 2 writes a file's rows
        // in a keyed order) are the rows of the one-batch release, moved.
        let half = staged.batch.num_rows() / 2;
        let parts = [staged.batch.slice(0, half), staged.batch.slice(half, staged.batch.num_rows() - half)];
        let part_classes = [classes.slice(0, half), classes.slice(half, classes.len() - half)];
        let published: Vec<usize> = (0..classes.len()).filter(|&r| !decision.is_suppressed(classes.value(r))).collect();
        let picks: Vec<crate::batch::Pick> = published.iter().rev().map(|&r| if r < half { (0, r) } else { (1, r - half) }).collect();
        let moved = crate::batch::release_rows(rules, &decision, &parts, &[&part_classes[0], &part_classes[1]], &picks, &pseudonyms, crate::policy::PseudonymScope::Class).expect("release rows");
        let reversed: Vec<usize> = (0..out.num_rows()).rev().collect();
        let expected = arrow::compute::take_record_batch(&out, &UInt32Array::from(reversed.iter().map(|&r| r as u32).collect::<Vec<_>>())).expect("take");
        prop_assert_eq!(moved, expected);
        // The same records released again (another release id) share no pseudonym with
        // the first, in either scope.
        for scope in [crate::policy::PseudonymScope::Class, crate::policy::PseudonymScope::Release] {
            let again = crate::batch::release_batch(rules, &decision, &staged.batch, &classes, &hasher.release_pseudonyms("r-prop-2"), scope).expect("release");
            let first: HashSet<&str> = out.column_by_name("email_hash").expect("subject").as_string::<i32>().iter().flatten().collect();
            let second = again.column_by_name("email_hash").expect("subject").as_string::<i32>().clone();
            prop_assert!(second.iter().flatten().all(|p| !first.contains(p)), "a pseudonym links two releases");
        }

        // k over distinct subjects, recomputed from the output alone.
        let qi_names: Vec<&str> = rules.qi_rules().map(|r| r.column.as_str()).collect();
        let subject = out.column_by_name("email_hash").expect("subject").as_string::<i32>().clone();
        let mut groups: HashMap<Vec<Option<String>>, HashSet<String>> = HashMap::new();
        for row in 0..out.num_rows() {
            let key = qi_names
                .iter()
                .map(|c| {
                    let a = out.column_by_name(c).expect("qi").as_string::<i32>();
                    (!a.is_null(row)).then(|| a.value(row).to_string())
                })
                .collect();
            groups.entry(key).or_default().insert(subject.value(row).to_string());
        }
        for (key, subjects) in &groups {
            prop_assert!(subjects.len() >= k as usize, "class {:?} has {} < k={}", key, subjects.len(), k);
        }
        // Class scope: no pseudonym appears in two classes, though people recur across them.
        let mut class_of_pseudonym: HashMap<&str, &Vec<Option<String>>> = HashMap::new();
        for (key, subjects) in &groups {
            for p in subjects {
                let seen = class_of_pseudonym.insert(p.as_str(), key);
                prop_assert!(seen.is_none(), "pseudonym {} in two classes", p);
            }
        }

        // No raw identifier in any string column.
        let raw: HashSet<String> = people.iter().flat_map(|p| [p.email.to_lowercase(), p.phone.clone(), p.ip.clone()]).collect();
        for (field, col) in out.schema().fields().iter().zip(out.columns()) {
            prop_assert!(!["name", "message", "email", "user_agent"].contains(&field.name().as_str()));
            if let Some(values) = col.as_string_opt::<i32>() {
                for v in values.iter().flatten() {
                    prop_assert!(find_pii(v).is_none(), "{} holds {:?}", field.name(), v);
                    prop_assert!(!raw.contains(v) && !raw.contains(&v.to_lowercase()), "{} holds a raw value", field.name());
                }
            }
        }
    }
}
