//! Golden vectors: every transform at every level agrees with
//! `testdata/golden-default-v2.json` (copied from the team's shared vectors).

use std::borrow::Cow;

use serde_json::Value as Json;

use crate::hierarchy::Hierarchy;
use crate::policy::OutputKind;
use crate::subject::{EmailRules, SubjectKind, canonical_email, canonical_subject_into};
use crate::{KeyedHasher, Policy, Value};

const GOLDEN: &str = include_str!("../testdata/golden-default-v2.json");

fn golden() -> Json {
    serde_json::from_str(GOLDEN).expect("golden vectors parse")
}

fn to_value(j: &Json) -> Value<'static> {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
        Json::String(s) => Value::Str(Cow::Owned(s.clone())),
        _ => Value::Nested,
    }
}

/// The default-v2 hierarchy of a contacts column.
fn contacts_hierarchy(column: &str) -> Hierarchy {
    let policy = Policy::default_v2().expect("policy");
    let rules = policy.dataset("contacts").expect("contacts");
    let rule = rules
        .outputs
        .iter()
        .find(|o| o.column == column)
        .expect("column");
    match &rule.kind {
        OutputKind::QuasiIdentifier(h) | OutputKind::Level0(h) => h.clone(),
        OutputKind::Day => Hierarchy::Timestamp,
        other => panic!("{column} is not a hierarchy: {other:?}"),
    }
}

#[test]
fn hash_cases_agree() {
    let g = golden();
    let key = g["hash"]["key_utf8"].as_str().expect("key");
    let hasher = KeyedHasher::new(key.as_bytes()).expect("hasher");
    let cases = g["hash"]["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for c in cases {
        let input = c["in"].as_str().expect("in");
        assert_eq!(
            hasher.hash(input),
            c["out"].as_str().expect("out"),
            "hash of {input:?}"
        );
    }
}

#[test]
fn hierarchy_cases_agree_at_every_level() {
    let g = golden();
    let mut checked = 0;
    for field in ["phone", "ip", "age", "zip", "gender"] {
        let h = contacts_hierarchy(field);
        let levels = g[field]["levels"].as_array().map(Vec::len);
        assert_eq!(levels, Some(h.height()), "{field}: number of levels");
        for c in g[field]["cases"].as_array().expect("cases") {
            let input = to_value(&c["in"][0]);
            let level = c["in"][1].as_u64().expect("level") as usize;
            let got = h.apply(&input, field, level);
            match (c.get("out"), c.get("invalid")) {
                (Some(out), _) => assert_eq!(
                    got,
                    Ok(out.as_str().map(str::to_string)),
                    "{field} {:?} at level {level}",
                    c["in"][0]
                ),
                (None, Some(reason)) => {
                    let err = got.expect_err(&format!("{field} {:?} must be invalid", c["in"][0]));
                    assert_eq!(Some(err.reason.as_str()), reason.as_str(), "{field} reason");
                }
                _ => panic!("malformed golden case {c}"),
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} cases checked");
}

#[test]
fn timestamp_cases_agree() {
    let g = golden();
    let h = contacts_hierarchy("submitted_at");
    for c in g["submitted_at"]["cases"].as_array().expect("cases") {
        let got = h.apply(&to_value(&c["in"][0]), "submitted_at", 0);
        match (c.get("out"), c.get("invalid")) {
            (Some(out), _) => {
                assert_eq!(got, Ok(out.as_str().map(str::to_string)), "{}", c["in"][0])
            }
            (None, Some(reason)) => {
                assert_eq!(got.map_err(|e| e.reason).err().as_deref(), reason.as_str())
            }
            _ => panic!("malformed golden case {c}"),
        }
    }
}

#[test]
fn subject_email_cases_agree() {
    let g = golden();
    let rules = EmailRules::default();
    let cases = g["subject_email"]["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    let mut out = String::new();
    for c in cases {
        let input = c["in"].as_str().expect("in");
        // `canonical: null` is an invalid subject, quarantined.
        let want = match &c["canonical"] {
            Json::Null => None,
            Json::String(s) => Some(s.as_str()),
            other => panic!("malformed golden case {c}: canonical {other}"),
        };
        assert_eq!(
            canonical_email(input, &rules).as_deref(),
            want,
            "canonical email of {input:?}"
        );
        let valid = canonical_subject_into(&SubjectKind::Email(rules.clone()), input, &mut out);
        assert_eq!(valid.then_some(out.as_str()), want, "subject {input:?}");
    }
}

#[test]
fn every_golden_section_is_checked() {
    let g = golden();
    let sections: Vec<&String> = g
        .as_object()
        .expect("object")
        .keys()
        .filter(|k| *k != "about")
        .collect();
    for s in sections {
        assert!(
            [
                "hash",
                "phone",
                "ip",
                "age",
                "zip",
                "gender",
                "submitted_at",
                "subject_email"
            ]
            .contains(&s.as_str()),
            "golden section `{s}` has no test"
        );
    }
}
