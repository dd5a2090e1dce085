//! The object layout, written once: where raw records land, where curated releases and
//! their ledger go, and where quarantined records wait. Producers (the app) write raw keys
//! with it, the worker reads raw and writes curated keys with it, the marketplace reads
//! curated keys with it.
//!
//! ```text
//! raw         tenant={t}/dataset={d}/source={s}/dt={YYYY-MM-DD}/{object}.{ndjson|jsonl|json|csv}[.gz|.zst]
//! curated     dataset={d}/tenant={t}/dt={dt}/release={id}/part-{n:05}.parquet, …/_report.json
//! ledger      _ledger/dataset={d}/tenant={t}/release={id}.fp        (under the curated root)
//! quarantine  dataset={d}/tenant={t}/dt={dt}/release={id}.ndjson
//!             _withheld/dataset={d}/tenant={t}/dt={dt}/release={id}.json
//! ```
//!
//! Paths are relative to their root ([`crate::storage::Location`]).

use chrono::NaiveDate;
use object_store::path::Path;

/// The Hive-style partition keys of every curated dataset, outermost first,
/// matching `{curated}/dataset={dataset}/tenant={tenant}/dt={dt}/release={release_id}/`.
pub const PARTITION_KEYS: [&str; 3] = ["tenant", "dt", "release"];

/// The name of a release's report beside its Parquet files (Hive, Athena and Spark
/// readers skip names that start with `_`).
pub const REPORT_FILE: &str = "_report.json";

/// A release partition: one tenant's records of one dataset on one day.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct PartitionKey {
    pub dataset: String,
    pub tenant: String,
    pub dt: String,
}

impl std::fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dataset={}/tenant={}/dt={}",
            self.dataset, self.tenant, self.dt
        )
    }
}

/// A partition day, `YYYY-MM-DD` exactly (zero-padded, a real date): the one parser of
/// `dt=` values, for raw paths and releases alike. `2026-1-5` is refused (chrono's `%m`
/// alone would take it, and two spellings of one day would be two partitions).
pub fn parse_partition_day(dt: &str) -> Option<NaiveDate> {
    let b = dt.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    NaiveDate::from_ymd_opt(
        dt[0..4].parse().ok()?,
        dt[5..7].parse().ok()?,
        dt[8..10].parse().ok()?,
    )
}

/// Whether `s` may be a tenant, dataset or source id in a path: 1 to 128 ASCII letters,
/// digits, `-`, `_` or `.`, not starting with `.` (so never `..`).
pub fn is_safe_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !s.starts_with('.')
}

/// The raw record format an object name declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

/// The compression an object name declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The format extensions of raw objects, each optionally followed by `.gz` or `.zst`.
pub const RAW_FORMATS: [(&str, Format); 4] = [
    (".csv", Format::Csv),
    (".ndjson", Format::Ndjson),
    (".jsonl", Format::Ndjson),
    (".json", Format::Ndjson),
];

/// `name` without its format and compression extensions, and the encoding they name
/// (`a.ndjson.gz` → `a`, NDJSON in gzip); the name as it is and `None` when it names no
/// raw format.
pub fn split_encoding(name: &str) -> (&str, Option<(Format, Compression)>) {
    let (stem, compression) = if let Some(s) = name.strip_suffix(".gz") {
        (s, Compression::Gzip)
    } else if let Some(s) = name.strip_suffix(".zst") {
        (s, Compression::Zstd)
    } else {
        (name, Compression::None)
    };
    RAW_FORMATS
        .into_iter()
        .find_map(|(ext, format)| Some((stem.strip_suffix(ext)?, Some((format, compression)))))
        .unwrap_or((name, None))
}

/// The encoding an object name declares, if it is a raw format.
pub fn encoding_of(name: &str) -> Option<(Format, Compression)> {
    split_encoding(name).1
}

/// A raw object's place in the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPath {
    pub partition: PartitionKey,
    /// The producer (`web-form`, `shop`, …).
    pub source: String,
}

/// Parses `tenant=…/dataset=…/source=…/dt=…/{object}`; the error says which part is
/// wrong, without echoing the path.
pub fn parse_raw_path(path: &Path) -> Result<RawPath, String> {
    let parts: Vec<&str> = path.as_ref().split('/').collect();
    if parts.len() != 5 {
        return Err("not under tenant=/dataset=/source=/dt=/".into());
    }
    let field = |i: usize, key: &str| -> Result<String, String> {
        parts[i]
            .strip_prefix(key)
            .and_then(|v| v.strip_prefix('='))
            .filter(|v| is_safe_id(v))
            .map(str::to_string)
            .ok_or_else(|| format!("segment {} should be `{key}=<id>`", i + 1))
    };
    let tenant = field(0, "tenant")?;
    let dataset = field(1, "dataset")?;
    let source = field(2, "source")?;
    let dt = field(3, "dt")?;
    if parse_partition_day(&dt).is_none() {
        return Err(format!("dt `{dt}` is not a YYYY-MM-DD date"));
    }
    Ok(RawPath {
        partition: PartitionKey {
            dataset,
            tenant,
            dt,
        },
        source,
    })
}

/// The path of a raw object under the raw root; `object` is its file name. Refuses what
/// [`parse_raw_path`] would not read back (a tenant, dataset or source that is no safe id,
/// a `dt` that is no `YYYY-MM-DD` day, an object name with a `/` or none at all): a
/// producer handed such a key would write an object the worker ignores, or one that
/// lands in another tenant's folder.
pub fn raw_path(partition: &PartitionKey, source: &str, object: &str) -> crate::Result<Path> {
    for (what, id) in [
        ("tenant", partition.tenant.as_str()),
        ("dataset", partition.dataset.as_str()),
        ("source", source),
    ] {
        if !is_safe_id(id) {
            return Err(crate::Error::Invalid(format!(
                "{what} {id:?} is not an id (1 to 128 ASCII letters, digits, `-`, `_` or `.`, not starting with `.`)"
            )));
        }
    }
    if parse_partition_day(&partition.dt).is_none() {
        return Err(crate::Error::Invalid(format!(
            "dt {:?} is not a YYYY-MM-DD day",
            partition.dt
        )));
    }
    if object.is_empty() || object.contains('/') || object.starts_with('.') {
        return Err(crate::Error::Invalid(format!(
            "object name {object:?} must be one path segment, not starting with `.`"
        )));
    }
    let path = Path::from(format!(
        "tenant={}/dataset={}/source={source}/dt={}/{object}",
        partition.tenant, partition.dataset, partition.dt
    ));
    // A name `Path` had to escape (a control character, `%`) would not read back as given.
    if path.filename() != Some(object) {
        return Err(crate::Error::Invalid(format!(
            "object name {object:?} is not a plain path segment"
        )));
    }
    Ok(path)
}

/// The folder of a dataset under the curated root (its table's location).
pub fn dataset_dir(dataset: &str) -> Path {
    Path::from(format!("dataset={dataset}"))
}

/// The folder of a release under the curated root.
pub fn release_dir(partition: &PartitionKey, release_id: &str) -> Path {
    Path::from(format!(
        "dataset={}/tenant={}/dt={}/release={release_id}",
        partition.dataset, partition.tenant, partition.dt
    ))
}

/// The name of a release's `n`-th Parquet file, in its folder.
pub fn part_file(n: usize) -> String {
    format!("part-{n:05}.parquet")
}

/// Where a release's record fingerprints live under the curated root.
pub fn ledger_path(partition: &PartitionKey, release_id: &str) -> Path {
    Path::from(format!(
        "_ledger/dataset={}/tenant={}/release={release_id}.fp",
        partition.dataset, partition.tenant
    ))
}

/// Where a release's quarantined records go under the quarantine root.
pub fn quarantine_path(partition: &PartitionKey, release_id: &str) -> Path {
    Path::from(format!(
        "dataset={}/tenant={}/dt={}/release={release_id}.ndjson",
        partition.dataset, partition.tenant, partition.dt
    ))
}

/// Where the report of a withheld release goes under the quarantine root: its figures
/// describe classes under k, so it never sits where buyers read.
pub fn withheld_report_path(partition: &PartitionKey, release_id: &str) -> Path {
    Path::from(format!(
        "_withheld/dataset={}/tenant={}/dt={}/release={release_id}.json",
        partition.dataset, partition.tenant, partition.dt
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition() -> PartitionKey {
        PartitionKey {
            dataset: "contacts".into(),
            tenant: "t-1".into(),
            dt: "2026-11-24".into(),
        }
    }

    #[test]
    fn partition_days_are_strict() {
        use super::parse_partition_day as day;
        assert!(day("2026-11-24").is_some() && day("2024-02-29").is_some());
        for bad in [
            "2026-1-5",
            "2026-01-5",
            "2026-02-30",
            "2025-02-29",
            "26-11-24",
            "2026-11-24 ",
            "2026/11/24",
            "+026-11-24",
            "２０２６-11-24",
        ] {
            assert!(day(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn raw_paths_follow_the_layout() {
        let ok =
            Path::from("tenant=t-1/dataset=contacts/source=web-form/dt=2026-11-24/part-0.ndjson");
        let RawPath {
            partition: p,
            source,
        } = parse_raw_path(&ok).expect("layout");
        assert_eq!(
            (
                p.tenant.as_str(),
                p.dataset.as_str(),
                p.dt.as_str(),
                source.as_str()
            ),
            ("t-1", "contacts", "2026-11-24", "web-form")
        );
        for bad in [
            "tenant=t-1/dataset=contacts/dt=2026-11-24/x.ndjson",
            "tenant=t-1/dataset=contacts/source=s/dt=2026-13-01/x.ndjson",
            "tenant=../dataset=contacts/source=s/dt=2026-11-24/x.ndjson",
        ] {
            assert!(parse_raw_path(&Path::from(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            encoding_of("a.ndjson.gz"),
            Some((Format::Ndjson, Compression::Gzip))
        );
        assert_eq!(
            encoding_of("a.csv.zst"),
            Some((Format::Csv, Compression::Zstd))
        );
        assert_eq!(encoding_of("a.parquet"), None);
    }

    #[test]
    fn raw_paths_written_here_parse_back() {
        let path = raw_path(&partition(), "web-form", "part-0.ndjson.gz").expect("a raw path");
        assert_eq!(
            path.as_ref(),
            "tenant=t-1/dataset=contacts/source=web-form/dt=2026-11-24/part-0.ndjson.gz"
        );
        let parsed = parse_raw_path(&path).expect("parses");
        assert_eq!(parsed.partition, partition());
        assert_eq!(parsed.source, "web-form");
        assert_eq!(
            encoding_of(path.filename().expect("name")),
            Some((Format::Ndjson, Compression::Gzip))
        );
    }

    #[test]
    fn raw_paths_that_would_not_read_back_are_refused() {
        let p = partition();
        let with = |tenant: &str, dt: &str| PartitionKey {
            tenant: tenant.into(),
            dt: dt.into(),
            ..p.clone()
        };
        for (partition, source, object) in [
            (with("../t-2", "2026-11-24"), "web", "a.ndjson"),
            (with("t-1/x", "2026-11-24"), "web", "a.ndjson"),
            (with("", "2026-11-24"), "web", "a.ndjson"),
            (with("t-1", "2026-1-5"), "web", "a.ndjson"),
            (with("t-1", "2026-11-24"), "../web", "a.ndjson"),
            (with("t-1", "2026-11-24"), "web", "x/a.ndjson"),
            (with("t-1", "2026-11-24"), "web", ".."),
            (with("t-1", "2026-11-24"), "web", ""),
            (with("t-1", "2026-11-24"), "web", "a\u{0}.ndjson"),
        ] {
            assert!(
                matches!(
                    raw_path(&partition, source, object),
                    Err(crate::Error::Invalid(_))
                ),
                "{partition:?} {source:?} {object:?}"
            );
        }
        // `Path` escapes `%` (and the other characters it keeps out of keys): refused.
        assert!(raw_path(&p, "web", "a%41.ndjson").is_err());
        let path = raw_path(&p, "web", "a b.ndjson").expect("a space is a plain character");
        assert_eq!(path.filename(), Some("a b.ndjson"));
        assert_eq!(
            parse_raw_path(&path).map(|r| r.partition),
            Ok(p),
            "an accepted path reads back"
        );
    }

    #[test]
    fn curated_paths_share_the_release_folder() {
        let dir = release_dir(&partition(), "r1");
        assert_eq!(
            dir.as_ref(),
            "dataset=contacts/tenant=t-1/dt=2026-11-24/release=r1"
        );
        assert!(dir.as_ref().starts_with(dataset_dir("contacts").as_ref()));
        assert_eq!(
            dir.clone().join(part_file(3)).as_ref(),
            "dataset=contacts/tenant=t-1/dt=2026-11-24/release=r1/part-00003.parquet"
        );
        assert_eq!(
            ledger_path(&partition(), "r1").as_ref(),
            "_ledger/dataset=contacts/tenant=t-1/release=r1.fp"
        );
        assert_eq!(
            withheld_report_path(&partition(), "r1").as_ref(),
            "_withheld/dataset=contacts/tenant=t-1/dt=2026-11-24/release=r1.json"
        );
    }
}
