//! Sources: finding raw objects and decoding them into records.
//!
//! Raw layout: `{raw}/tenant={t}/dataset={d}/source={s}/dt={YYYY-MM-DD}/{object}`, NDJSON
//! (optionally `.gz` / `.zst`) or CSV with a header. Objects are streamed: a line is read
//! with a size limit (an oversized line is skipped without being buffered), so memory does
//! not grow with the object. Producers are untrusted; whatever cannot be decoded becomes a
//! [`decode::Quarantined`] entry with the object, line number, reason and raw bytes.

pub mod decode;
pub mod json_record;

use std::collections::BTreeMap;

use object_store::path::Path;

use crate::Result;
use catalog::layout::{
    Compression, Format, PartitionKey, encoding_of, parse_raw_path, split_encoding,
};
use catalog::storage::Location;

/// One raw object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawObject {
    pub path: Path,
    pub url: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub source: String,
    pub partition: PartitionKey,
}

impl RawObject {
    /// The object's identity in the raw-object ledger: its URL and, when the store reports
    /// one, its ETag (`{url}#etag={etag}`). An object rewritten under the same name is a new
    /// input; its records released before are still skipped by the record ledger.
    #[must_use]
    pub fn ledger_key(&self) -> String {
        match self.e_tag.as_deref().map(|t| t.trim_matches('"')) {
            Some(tag) if !tag.is_empty() => format!("{}#etag={tag}", self.url),
            _ => self.url.clone(),
        }
    }

    /// Format and compression from the file name (`.ndjson`, `.json`, `.jsonl`, `.csv`,
    /// each optionally `.gz` or `.zst`).
    pub fn encoding(&self) -> Option<(Format, Compression)> {
        encoding_of(self.path.filename()?)
    }
}

/// The name of an object under the raw root with every email, phone or IP it carries
/// replaced by its kind (`…/<email>.ndjson`), and the first kind; `None` for a clean name.
/// Each segment is judged on its own and without the extensions: a `/` before a number,
/// or a `.ndjson` after it, would read as a path, version or file name to the PII check,
/// where here they only bound a name.
pub(crate) fn redacted_name(name_in_root: &str) -> Option<(String, policies::pii::PiiKind)> {
    let judged = split_encoding(name_in_root).0;
    let mut findings = Vec::new();
    let mut segment_start = 0;
    for segment in judged.split('/') {
        findings.extend(
            policies::pii::find_all_pii(segment)
                .into_iter()
                .map(|mut f| {
                    f.start += segment_start;
                    f.end += segment_start;
                    f
                }),
        );
        segment_start += segment.len() + 1;
    }
    let first = findings.first()?.kind;
    let mut redacted = String::with_capacity(name_in_root.len());
    let mut at = 0;
    for f in &findings {
        redacted.push_str(&judged[at..f.start]);
        redacted.push('<');
        redacted.push_str(f.kind.as_str());
        redacted.push('>');
        at = f.end;
    }
    redacted.push_str(&name_in_root[at..]);
    Some((redacted, first))
}

/// An object under the raw root that is not a raw object of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub url: String,
    pub reason: String,
}

/// What a listing of the raw root found.
#[derive(Debug, Default)]
pub struct RawListing {
    /// Raw data objects by partition, sorted by URL.
    pub partitions: BTreeMap<PartitionKey, Vec<RawObject>>,
    /// Manifest objects (`_manifest*.json`, for `manifest` batching) by partition.
    pub manifests: BTreeMap<PartitionKey, Vec<RawObject>>,
    /// Objects that are not raw objects of the layout, with the reason.
    pub ignored: Vec<Ignored>,
}

/// Whether `name` (a file name) is a batch manifest: `_manifest.json`, `_manifest-….json`.
#[must_use]
pub fn is_manifest_name(name: &str) -> bool {
    name.starts_with("_manifest") && name.ends_with(".json")
}

/// Lists raw objects by partition, and what was ignored (with reasons).
pub async fn list_raw(raw: &Location) -> Result<RawListing> {
    list_raw_under(raw, "").await
}

/// As [`list_raw`], only below `prefix` (a folder of the layout such as
/// `tenant=t-1/dataset=contacts`, no leading or trailing `/`; empty for everything).
pub async fn list_raw_under(raw: &Location, prefix: &str) -> Result<RawListing> {
    let mut partitions: BTreeMap<PartitionKey, Vec<RawObject>> = BTreeMap::new();
    let mut manifests: BTreeMap<PartitionKey, Vec<RawObject>> = BTreeMap::new();
    let mut ignored = Vec::new();
    let listed = match &raw.local_dir {
        Some(root) => list_local(raw, root, prefix).await?,
        None => {
            let mut listed = Vec::new();
            let prefix = (!prefix.is_empty()).then(|| Path::from(prefix));
            let mut listing = raw.store.list(prefix.as_ref());
            while let Some(item) = futures::StreamExt::next(&mut listing).await {
                listed.push(match item {
                    Ok(meta) => Listed::Object(meta),
                    Err(object_store::Error::InvalidPath { .. }) => Listed::Unreadable,
                    Err(e) => return Err(e.into()),
                });
            }
            listed
        }
    };
    for item in listed {
        let meta = match item {
            Listed::Object(meta) => meta,
            // A name that is no object path (not UTF-8, a control character) cannot be
            // read; it stops no other object, and its text is never shown: it may carry
            // what it names.
            Listed::Unreadable => {
                tracing::warn!(root = %raw.url, "ignored a raw object whose name is not a valid object path");
                ignored.push(Ignored {
                    url: format!("{}/<unreadable name>", raw.url),
                    reason: "the object's name is not a valid object path (not UTF-8, or a control character): not read".into(),
                });
                continue;
            }
            Listed::Link(link) => {
                ignored.push(Ignored {
                    url: match redacted_name(&link) {
                        Some((redacted, _)) => format!("{}/{redacted}", raw.url),
                        None => format!("{}/{link}", raw.url),
                    },
                    reason:
                        "a symbolic or hard link: not followed (raw data is read from the raw root only)"
                            .into(),
                });
                continue;
            }
        };
        let name = meta.location.filename().unwrap_or_default();
        let manifest = is_manifest_name(name);
        if !manifest && (name.starts_with('.') || name.starts_with('_')) {
            continue;
        }
        let url = raw.url_of(&meta.location);
        // Object names end up in release reports, the catalog's ledger and logs. One that
        // carries an email, phone or IP is left unread (and pending) until it is renamed,
        // and is itself only shown with those parts redacted. The path under the root is
        // judged, not the root (`/mnt/10.1.2.3/raw` is the operator's).
        if let Some((redacted, kind)) = redacted_name(meta.location.as_ref()) {
            ignored.push(Ignored {
                url: format!("{}/{redacted}", raw.url),
                reason: format!(
                    "the object's name looks like it carries a raw {}: left unread until it is renamed",
                    kind.as_str()
                ),
            });
            continue;
        }
        match parse_raw_path(&meta.location) {
            Err(reason) => ignored.push(Ignored { url, reason }),
            Ok(catalog::layout::RawPath { partition, source }) => {
                if !manifest && encoding_of(name).is_none() {
                    ignored.push(Ignored {
                        url,
                        reason: "unknown format (expected .ndjson, .jsonl, .json or .csv, optionally .gz/.zst)".into(),
                    });
                    continue;
                }
                let into = if manifest {
                    &mut manifests
                } else {
                    &mut partitions
                };
                into.entry(partition.clone()).or_default().push(RawObject {
                    path: meta.location.clone(),
                    url,
                    size: meta.size,
                    e_tag: meta.e_tag.clone(),
                    source,
                    partition,
                });
            }
        }
    }
    for objects in partitions.values_mut().chain(manifests.values_mut()) {
        objects.sort_by(|a, b| a.url.cmp(&b.url));
    }
    Ok(RawListing {
        partitions,
        manifests,
        ignored,
    })
}

/// One entry of a raw listing.
enum Listed {
    Object(object_store::ObjectMeta),
    /// A name that is no valid object path.
    Unreadable,
    /// A symbolic link, or a file with more than one name, under the root (its path).
    Link(String),
}

/// The objects under a local raw root, walked here rather than by the object store's
/// listing, which follows symbolic links (`tenant=t-0045 -> tenant=t-0043` published a
/// tenant that never consented, under another's name, and a link can point outside the
/// root) and ends at the first name that is no valid path, hiding every object after it
/// (one bad name stopped other tenants). No link is followed, and a file with a second
/// name (a hard link, possibly to a file outside the root) is not read.
async fn list_local(raw: &Location, root: &std::path::Path, prefix: &str) -> Result<Vec<Listed>> {
    let root = root.to_path_buf();
    let prefix = prefix.to_owned();
    let (mut listed, files) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let mut out = Vec::new();
        let mut files = Vec::new();
        let mut stack = vec![prefix];
        while let Some(dir) = stack.pop() {
            let read = match std::fs::read_dir(root.join(&dir)) {
                Ok(r) => r,
                // Gone since it was listed (a producer moving files): nothing to read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in read {
                let entry = entry?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    out.push(Listed::Unreadable);
                    continue;
                };
                let rel = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                let Ok(path) = Path::parse(&rel) else {
                    out.push(Listed::Unreadable);
                    continue;
                };
                let meta = match std::fs::symlink_metadata(entry.path()) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                #[cfg(unix)]
                let extra_names = std::os::unix::fs::MetadataExt::nlink(&meta) > 1;
                #[cfg(not(unix))]
                let extra_names = false;
                if meta.file_type().is_symlink() || (meta.is_file() && extra_names) {
                    out.push(Listed::Link(rel));
                } else if meta.is_dir() {
                    stack.push(rel);
                } else if meta.is_file() {
                    files.push(path);
                }
            }
        }
        Ok((out, files))
    })
    .await
    .map_err(|e| crate::Error::Task(format!("listing the raw folder stopped: {e}")))??;
    // A file's metadata (size, e-tag) as the store gives it, as for any other store.
    for path in files {
        match object_store::ObjectStoreExt::head(raw.store.as_ref(), &path).await {
            Ok(meta) => listed.push(Listed::Object(meta)),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_named_with_an_identifier_are_left_unread_and_shown_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The root's own name is the operator's, not an object's.
        let root = dir.path().join("10.1.2.3");
        let partition = root.join("tenant=t-1/dataset=contacts/source=web/dt=2026-11-24");
        std::fs::create_dir_all(&partition).expect("partition");
        for name in [
            "part-0.ndjson",
            "ana.ruiz@example.com.ndjson",
            "from-203.0.113.57.ndjson",
            "4155550134.csv.gz",
        ] {
            std::fs::write(partition.join(name), "{}\n").expect("object");
        }
        let raw = Location::parse(&root.display().to_string()).expect("raw");
        let RawListing {
            partitions,
            ignored,
            ..
        } = list_raw(&raw).await.expect("list");
        let listed: Vec<&str> = partitions
            .values()
            .flatten()
            .map(|o| o.url.rsplit('/').next().unwrap_or_default())
            .collect();
        assert_eq!(listed, ["part-0.ndjson"]);
        let mut shown: Vec<&str> = ignored
            .iter()
            .map(|i| i.url.rsplit('/').next().unwrap_or_default())
            .collect();
        shown.sort();
        assert_eq!(
            shown,
            ["<email>.ndjson", "<phone>.csv.gz", "from-<ipv4>.ndjson"]
        );
        assert!(ignored.iter().all(|i| i.reason.contains("left unread")));
        assert_eq!(
            std::fs::read_dir(&partition).expect("dir").count(),
            4,
            "nothing moved"
        );
    }
}
