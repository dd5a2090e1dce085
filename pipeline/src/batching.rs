//! When a partition's raw objects make a release: the dataset's [`Batching`] mode applied
//! to what a listing found and the ledger has not released yet. Pure decisions, shared by
//! `stackpro run` and every trigger, so the rules cannot differ between them.

use std::collections::BTreeSet;

use catalog::layout::parse_partition_day;
use chrono::{DateTime, TimeDelta, Utc};

use crate::config::Batching;
use crate::sources::RawObject;

/// The largest manifest read: a manifest names objects, it does not carry data.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// The most manifests one plan consumes: they are inputs of its last release, and the
/// catalog bounds a release's inputs (DynamoDB: one transaction), so objects keep room.
pub const MAX_MANIFESTS_PER_PLAN: usize = 32;

/// What a partition does now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Release these data objects; `manifests` are recorded in the ledger with them (they
    /// announce the batch, they are not read as data).
    Release {
        objects: Vec<RawObject>,
        manifests: Vec<RawObject>,
    },
    /// Pending objects the mode holds back, and why.
    Wait(String),
    /// Nothing pending.
    NothingNew,
}

/// When a `dt` partition's window seals: the end of its day (UTC) plus `grace`.
#[must_use]
pub fn seal_time(dt: &str, grace: TimeDelta) -> Option<DateTime<Utc>> {
    let next_day = parse_partition_day(dt)?.succ_opt()?;
    next_day
        .and_hms_opt(0, 0, 0)?
        .and_utc()
        .checked_add_signed(grace)
}

/// The object names a manifest lists: `{"objects": ["a.ndjson", …]}`, plain file names in
/// the manifest's own folder.
///
/// # Errors
/// Not that shape, too large, or a name that is not a plain file name (no `/`, `..`, or
/// leading `.`/`_`): the manifest is ignored with this reason, never half-applied.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Manifest {
        objects: Vec<String>,
    }
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(format!("manifest larger than {MAX_MANIFEST_BYTES} bytes"));
    }
    // The error names its kind and place, never its text: serde quotes the offending
    // value, and a producer's manifest may hold anything.
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "manifest is not {{\"objects\": [names]}}: {:?} error at line {}, column {}",
            e.classify(),
            e.line(),
            e.column()
        )
    })?;
    if m.objects.is_empty() {
        return Err("manifest names no object".into());
    }
    for name in &m.objects {
        let plain = !name.is_empty()
            && !name.contains(['/', '\\'])
            && !name.starts_with(['.', '_'])
            && !name.chars().any(char::is_control);
        if !plain {
            return Err(
                "manifest names an object that is not a plain file name in its folder".into(),
            );
        }
    }
    Ok(m.objects)
}

/// The path `name` has beside `manifest` (same folder).
fn beside(manifest: &RawObject, name: &str) -> String {
    let path = manifest.path.as_ref();
    match path.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{name}"),
        None => name.to_owned(),
    }
}

/// A pending manifest as read: the object, and what it lists (or why it is unusable).
pub struct ReadManifest {
    pub object: RawObject,
    pub names: Result<Vec<String>, String>,
}

/// Applies `mode` to a partition.
///
/// - `listed`: every data object the listing found in the partition (released or not).
/// - `pending`: those of them the ledger has not released.
/// - `manifests`: the partition's unreleased manifests, read (manifest mode only).
///
/// Returns the plan and the manifests to report as ignored (unusable), with their reason.
#[must_use]
pub fn plan(
    mode: Batching,
    grace: TimeDelta,
    now: DateTime<Utc>,
    dt: &str,
    listed: &[RawObject],
    pending: Vec<RawObject>,
    manifests: Vec<ReadManifest>,
) -> (Plan, Vec<(RawObject, String)>) {
    match mode {
        Batching::Object => (release_or_nothing(pending), Vec::new()),
        Batching::Window => {
            if pending.is_empty() {
                return (Plan::NothingNew, Vec::new());
            }
            match seal_time(dt, grace) {
                Some(seal) if now < seal => (
                    Plan::Wait(format!(
                        "window open: {} object(s) wait for the day to seal at {}",
                        pending.len(),
                        seal.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )),
                    Vec::new(),
                ),
                Some(_) => (release_or_nothing(pending), Vec::new()),
                // No seal time to be had: never released early.
                None => (
                    Plan::Wait(format!(
                        "window never seals: no seal time for dt={dt} with this grace"
                    )),
                    Vec::new(),
                ),
            }
        }
        Batching::Manifest => plan_manifests(listed, pending, manifests),
    }
}

fn release_or_nothing(pending: Vec<RawObject>) -> Plan {
    if pending.is_empty() {
        Plan::NothingNew
    } else {
        Plan::Release {
            objects: pending,
            manifests: Vec::new(),
        }
    }
}

fn plan_manifests(
    listed: &[RawObject],
    pending: Vec<RawObject>,
    manifests: Vec<ReadManifest>,
) -> (Plan, Vec<(RawObject, String)>) {
    let present: BTreeSet<&str> = listed.iter().map(|o| o.path.as_ref()).collect();
    let mut unusable = Vec::new();
    let mut complete = Vec::new();
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut missing = 0usize;
    let mut incomplete = 0usize;
    let mut deferred = 0usize;
    let unreleased: BTreeSet<&str> = pending.iter().map(|o| o.path.as_ref()).collect();
    for m in manifests {
        match m.names {
            Err(reason) => unusable.push((m.object, reason)),
            Ok(names) => {
                let paths: Vec<String> = names.iter().map(|n| beside(&m.object, n)).collect();
                let absent = paths
                    .iter()
                    .filter(|p| !present.contains(p.as_str()))
                    .count();
                if absent > 0 {
                    // Its objects are still being written: the whole batch waits.
                    missing += absent;
                    incomplete += 1;
                } else if !paths.iter().any(|p| unreleased.contains(p.as_str())) {
                    // Naming only released objects: nothing to do, nothing to record.
                } else if complete.len() == MAX_MANIFESTS_PER_PLAN {
                    // The catalog bounds a release's inputs: the rest go in the next plan.
                    deferred += 1;
                } else {
                    wanted.extend(paths);
                    complete.push(m.object);
                }
            }
        }
    }
    let (batch, unnamed): (Vec<RawObject>, Vec<RawObject>) = pending
        .into_iter()
        .partition(|o| wanted.contains(o.path.as_ref()));
    let waiting = || {
        let mut why = Vec::new();
        if incomplete > 0 {
            why.push(format!(
                "{incomplete} manifest(s) name {missing} object(s) not yet arrived"
            ));
        }
        if !unnamed.is_empty() {
            why.push(format!(
                "{} object(s) wait for a manifest naming them",
                unnamed.len()
            ));
        }
        if deferred > 0 {
            why.push(format!("{deferred} manifest(s) left for the next plan"));
        }
        why.join("; ")
    };
    let plan = if !batch.is_empty() {
        Plan::Release {
            objects: batch,
            manifests: complete,
        }
    } else if incomplete > 0 || !unnamed.is_empty() {
        Plan::Wait(waiting())
    } else {
        // Complete manifests naming only released objects: nothing to publish (they are
        // re-read on the next trigger, a few bytes each).
        Plan::NothingNew
    };
    (plan, unusable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::layout::PartitionKey;
    use object_store::path::Path;

    fn object(name: &str) -> RawObject {
        let path = format!("tenant=t-1/dataset=contacts/source=web/dt=2026-11-24/{name}");
        RawObject {
            url: format!("file:///raw/{path}"),
            path: Path::from(path),
            size: 10,
            e_tag: None,
            source: "web".into(),
            partition: PartitionKey {
                tenant: "t-1".into(),
                dataset: "contacts".into(),
                dt: "2026-11-24".into(),
            },
        }
    }

    fn read(name: &str, names: &[&str]) -> ReadManifest {
        ReadManifest {
            object: object(name),
            names: Ok(names.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    #[test]
    fn a_window_seals_after_its_day_and_the_grace_period() {
        let grace = TimeDelta::hours(2);
        assert_eq!(
            seal_time("2026-11-24", grace),
            Some(at("2026-11-25T02:00:00Z"))
        );
        assert_eq!(seal_time("2026-2-30", grace), None);
        let pending = vec![object("a.ndjson")];
        let (open, _) = plan(
            Batching::Window,
            grace,
            at("2026-11-25T01:59:59Z"),
            "2026-11-24",
            &pending,
            pending.clone(),
            Vec::new(),
        );
        assert!(
            matches!(open, Plan::Wait(ref w) if w.contains("2026-11-25T02:00:00Z")),
            "{open:?}"
        );
        let (sealed, _) = plan(
            Batching::Window,
            grace,
            at("2026-11-25T02:00:00Z"),
            "2026-11-24",
            &pending,
            pending.clone(),
            Vec::new(),
        );
        assert!(matches!(sealed, Plan::Release { ref objects, .. } if objects.len() == 1));
        let (nothing, _) = plan(
            Batching::Window,
            grace,
            at("2026-11-24T00:00:00Z"),
            "2026-11-24",
            &pending,
            Vec::new(),
            Vec::new(),
        );
        assert_eq!(nothing, Plan::NothingNew);
    }

    #[test]
    fn a_manifest_releases_exactly_its_complete_batch() {
        let listed = vec![object("a.ndjson"), object("b.ndjson"), object("c.ndjson")];
        let now = at("2026-11-24T00:00:00Z");
        let go = |manifests: Vec<ReadManifest>, pending: Vec<RawObject>| {
            plan(
                Batching::Manifest,
                TimeDelta::zero(),
                now,
                "2026-11-24",
                &listed,
                pending,
                manifests,
            )
        };
        // a and b named by a complete manifest; c by none.
        let (p, bad) = go(
            vec![read("_manifest-1.json", &["a.ndjson", "b.ndjson"])],
            listed.clone(),
        );
        assert!(bad.is_empty());
        match p {
            Plan::Release { objects, manifests } => {
                let names: Vec<&str> = objects
                    .iter()
                    .map(|o| o.path.filename().unwrap_or(""))
                    .collect();
                assert_eq!(names, ["a.ndjson", "b.ndjson"]);
                assert_eq!(manifests.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        // A manifest naming an object not yet there waits, whole.
        let (p, _) = go(
            vec![read("_manifest-2.json", &["c.ndjson", "d.ndjson"])],
            vec![object("c.ndjson")],
        );
        assert!(
            matches!(p, Plan::Wait(ref w) if w.contains("1 manifest(s) name 1 object(s) not yet arrived")),
            "{p:?}"
        );
        // No manifest at all: the objects wait.
        let (p, _) = go(Vec::new(), vec![object("c.ndjson")]);
        assert!(
            matches!(p, Plan::Wait(ref w) if w.contains("wait for a manifest")),
            "{p:?}"
        );
        // A manifest naming only released objects publishes nothing.
        let (p, _) = go(vec![read("_manifest-1.json", &["a.ndjson"])], Vec::new());
        assert_eq!(p, Plan::NothingNew);
        // An unusable manifest is reported, and others still apply.
        let (p, bad) = go(
            vec![
                ReadManifest {
                    object: object("_manifest-x.json"),
                    names: Err("not a manifest".into()),
                },
                read("_manifest-3.json", &["c.ndjson"]),
            ],
            vec![object("c.ndjson")],
        );
        assert_eq!(bad.len(), 1);
        assert!(matches!(p, Plan::Release { ref objects, .. } if objects.len() == 1));
    }

    #[test]
    fn manifests_name_plain_files_only() {
        assert_eq!(
            parse_manifest(br#"{"objects": ["a.ndjson", "b.csv.gz"]}"#),
            Ok(vec!["a.ndjson".to_owned(), "b.csv.gz".to_owned()])
        );
        for bad in [
            &br#"{"objects": []}"#[..],
            br#"{"objects": ["../x.ndjson"]}"#,
            br#"{"objects": ["sub/x.ndjson"]}"#,
            br#"{"objects": [".hidden"]}"#,
            br#"{"objects": ["_manifest.json"]}"#,
            br#"{"objects": "a.ndjson"}"#,
            br#"{"objects": ["a"], "extra": 1}"#,
            b"not json",
        ] {
            assert!(
                parse_manifest(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_manifest(&vec![b' '; MAX_MANIFEST_BYTES + 1]).is_err());
    }

    #[test]
    fn one_plan_consumes_a_bounded_number_of_manifests_and_skips_stale_ones() {
        let names: Vec<String> = (0..40).map(|i| format!("o{i:02}.ndjson")).collect();
        let listed: Vec<RawObject> = names.iter().map(|n| object(n)).collect();
        let mut manifests: Vec<ReadManifest> = names
            .iter()
            .map(|n| read(&format!("_manifest-{n}.json"), &[n]))
            .collect();
        // One naming only an object already released: neither batched nor recorded.
        manifests.push(read("_manifest-stale.json", &["done.ndjson"]));
        let mut all = listed.clone();
        all.push(object("done.ndjson"));
        let (plan, unusable) = plan(
            Batching::Manifest,
            TimeDelta::zero(),
            at("2026-12-01T00:00:00Z"),
            "2026-11-24",
            &all,
            listed,
            manifests,
        );
        assert!(unusable.is_empty());
        let Plan::Release { objects, manifests } = plan else {
            panic!("{plan:?}")
        };
        assert_eq!(manifests.len(), MAX_MANIFESTS_PER_PLAN);
        assert_eq!(objects.len(), MAX_MANIFESTS_PER_PLAN);
        assert!(
            manifests
                .iter()
                .all(|m| !m.path.as_ref().ends_with("_manifest-stale.json"))
        );
    }

    #[test]
    fn a_window_whose_seal_time_overflows_waits() {
        let (plan, _) = plan(
            Batching::Window,
            TimeDelta::MAX,
            at("2026-12-01T00:00:00Z"),
            "2026-11-24",
            &[object("a.ndjson")],
            vec![object("a.ndjson")],
            Vec::new(),
        );
        assert!(matches!(plan, Plan::Wait(_)), "{plan:?}");
    }

    #[test]
    fn a_bad_manifest_is_refused_without_quoting_what_it_holds() {
        for bad in [
            &br#"{"objects": "jane.doe@example.com"}"#[..],
            br#"{"objects": ["a"], "jane.doe@example.com": 1}"#,
            br#"{"objects": [1]} jane.doe@example.com"#,
        ] {
            let err = parse_manifest(bad).expect_err("refused");
            assert!(err.starts_with("manifest is not"), "{err}");
            assert!(!err.contains("jane") && !err.contains('@'), "{err}");
        }
    }
}
