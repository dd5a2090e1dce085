//! Where objects live: a local folder or URL, resolved to an `object_store` backend.
//!
//! Backends are chosen by URL scheme, never by code, and the scheme is read in one place
//! ([`Scheme::of`]): a plain path or `file://` URL is a local folder; `s3://` needs the
//! `aws` feature (the `s3` module). Every crate that reads or writes raw, curated or quarantined
//! objects (the worker, the marketplace, the app) opens its roots here.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::{AwsSettings, Error, Result};

#[cfg(feature = "aws")]
pub mod s3;

/// The kind of store a location string names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme<'a> {
    /// A plain folder path or a `file://` URL: the folder.
    Local(&'a str),
    /// An `s3://bucket[/prefix]` URL.
    S3,
}

impl<'a> Scheme<'a> {
    /// The scheme of a location string (trimmed); an unknown scheme is a configuration
    /// error that names the ones supported.
    pub fn of(spec: &'a str) -> Result<Self> {
        match spec.split_once("://") {
            None => Ok(Self::Local(spec)),
            Some(("file", path)) => Ok(Self::Local(path)),
            Some(("s3", _)) => Ok(Self::S3),
            Some((other, _)) => Err(Error::Config(format!(
                "`{spec}`: unsupported scheme `{other}://` (use a folder, file:// or s3://)"
            ))),
        }
    }
}

/// An object-store root: the store and the URL its paths are relative to.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// The root as a URL without a trailing slash, such as `file:///srv/data/curated`.
    pub url: String,
    /// For local roots, the folder.
    pub local_dir: Option<PathBuf>,
}

impl Location {
    /// Resolves a folder path or URL with the default AWS settings (region, endpoint and
    /// credentials from the environment). Local folders are created when missing.
    pub fn parse(spec: &str) -> Result<Self> {
        Self::open(spec, &AwsSettings::default())
    }

    /// Resolves a folder path or URL; `s3://` URLs use `aws` for region and endpoint.
    pub fn open(spec: &str, aws: &AwsSettings) -> Result<Self> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(Error::Config("an empty location was given".into()));
        }
        match Scheme::of(spec)? {
            Scheme::Local(dir) => Self::local(FsPath::new(dir)),
            #[cfg(feature = "aws")]
            Scheme::S3 => s3::location(spec, aws),
            #[cfg(not(feature = "aws"))]
            Scheme::S3 => {
                let _ = aws;
                Err(Error::needs_aws(&format!("`{spec}`: s3:// locations")))
            }
        }
    }

    /// Like [`Location::open`], for a location that is read: a local folder that does not
    /// exist is a configuration error (a mistyped `--raw` would otherwise be created empty,
    /// and a run over it would find nothing and succeed).
    pub fn open_existing(spec: &str, aws: &AwsSettings) -> Result<Self> {
        if let Ok(Scheme::Local(dir)) = Scheme::of(spec.trim())
            && !dir.is_empty()
            && !FsPath::new(dir).is_dir()
        {
            return Err(Error::Config(format!("folder {dir} does not exist")));
        }
        Self::open(spec, aws)
    }

    /// A local folder root.
    pub fn local(dir: &FsPath) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Config(format!("cannot create folder {}: {e}", dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| Error::Config(format!("cannot resolve folder {}: {e}", dir.display())))?;
        let store = LocalFileSystem::new_with_prefix(&dir)?;
        Ok(Self {
            store: Arc::new(store),
            url: format!("file://{}", dir.display()),
            local_dir: Some(dir),
        })
    }

    /// The URL of a path under this root.
    pub fn url_of(&self, path: &Path) -> String {
        if path.as_ref().is_empty() {
            self.url.clone()
        } else {
            format!("{}/{}", self.url, path)
        }
    }

    /// The path under this root of a URL produced by [`Location::url_of`].
    ///
    /// `None` for URLs outside the root (including siblings that merely share a prefix,
    /// such as `s3://b2/…` under `s3://b`) and for the root itself.
    pub fn path_of(&self, url: &str) -> Option<Path> {
        url.strip_prefix(&self.url)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(|rest| rest.trim_start_matches('/'))
            .filter(|rest| !rest.is_empty())
            .and_then(|rest| Path::parse(rest).ok())
    }
}

/// The stores a reader that resolves full object URLs (DataFusion) needs for a root, each
/// with the URL it answers for: none for a local folder (the reader's own file system
/// serves it), the whole bucket for `s3://`.
pub fn url_stores(spec: &str, aws: &AwsSettings) -> Result<Vec<(String, Arc<dyn ObjectStore>)>> {
    match Scheme::of(spec.trim())? {
        Scheme::Local(_) => Ok(Vec::new()),
        #[cfg(feature = "aws")]
        Scheme::S3 => Ok(vec![s3::bucket_store(spec.trim(), aws)?]),
        #[cfg(not(feature = "aws"))]
        Scheme::S3 => {
            let _ = aws;
            Err(Error::needs_aws(&format!(
                "`{}`: s3:// locations",
                spec.trim()
            )))
        }
    }
}

/// Whether an object-store failure may pass if the same call is tried again: a missing
/// object, a bad path, a refused credential or an unsupported call fail the same way
/// every time; network and service faults may not.
pub fn is_retryable(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::InvalidPath { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::UnknownConfigurationKey { .. }
    )
}

/// The object-layout conformance suite: what the worker relies on from any [`Location`]
/// (local folder or `s3://`), checked the same way for each. Panics on the first
/// difference. Writes only under `{unique}/`.
#[cfg(any(test, feature = "testing"))]
pub async fn layout_suite(location: &Location, unique: &str) {
    use futures::TryStreamExt;
    use object_store::{ObjectStoreExt, PutPayload};

    let layout = format!("{unique}/dataset=contacts/tenant=t-1/dt=2026-11-24/release=r-1");
    let part = Path::from(format!("{layout}/part-0.parquet"));
    let report = Path::from(format!("{layout}/_report.json"));
    for (path, body) in [(&part, &b"PAR1...PAR1"[..]), (&report, &b"{}"[..])] {
        location
            .store
            .put(path, PutPayload::from(body.to_vec()))
            .await
            .unwrap_or_else(|e| panic!("put {path}: {e}"));
    }
    let url = location.url_of(&part);
    assert!(
        url.starts_with(&location.url) && url.ends_with(part.as_ref()),
        "url_of must append the path to the root URL: {url}"
    );
    assert_eq!(
        location.path_of(&url),
        Some(part.clone()),
        "path_of must invert url_of"
    );
    let body = location
        .store
        .get(&part)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("read body");
    assert_eq!(
        &body[..],
        b"PAR1...PAR1",
        "objects must read back byte for byte"
    );

    let mut listed: Vec<(String, u64)> = location
        .store
        .list(Some(&Path::from(unique)))
        .map_ok(|m| (m.location.to_string(), m.size))
        .try_collect()
        .await
        .expect("list");
    listed.sort();
    assert_eq!(
        listed,
        vec![(report.to_string(), 2), (part.to_string(), 11)],
        "list must return every object under the prefix, with sizes, as Hive-style paths"
    );
    let dirs = location
        .store
        .list_with_delimiter(Some(&Path::from(format!("{unique}/dataset=contacts"))))
        .await
        .expect("list_with_delimiter");
    assert_eq!(
        dirs.common_prefixes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![format!("{unique}/dataset=contacts/tenant=t-1")],
        "partition folders must list as common prefixes"
    );
    location.store.delete(&part).await.expect("delete");
    assert!(
        matches!(
            location.store.head(&part).await,
            Err(object_store::Error::NotFound { .. })
        ),
        "a deleted object must be NotFound"
    );
    location.store.delete(&report).await.expect("delete report");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_folders_pass_the_layout_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = Location::parse(&dir.path().display().to_string()).expect("local");
        layout_suite(&location, "suite").await;
        let file_url = format!("file://{}", dir.path().display());
        let again = Location::parse(&file_url).expect("file:// URL");
        assert_eq!(again.url, location.url);
    }

    #[test]
    fn path_of_only_maps_urls_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = Location::parse(&dir.path().join("b").display().to_string()).expect("local");
        let inside = format!("{}/dataset=x/part-0.parquet", location.url);
        assert_eq!(
            location.path_of(&inside),
            Some(Path::from("dataset=x/part-0.parquet"))
        );
        assert_eq!(
            location.path_of(&format!("{}2/dataset=x", location.url)),
            None
        );
        assert_eq!(location.path_of(&location.url), None);
        assert_eq!(location.path_of(&format!("{}/", location.url)), None);
    }

    #[test]
    fn unknown_schemes_are_configuration_errors() {
        for spec in ["gs://bucket", "http://x", ""] {
            assert!(
                matches!(Location::parse(spec), Err(Error::Config(_))),
                "{spec}"
            );
        }
    }

    #[test]
    fn the_scheme_is_read_once_for_every_form() {
        assert_eq!(Scheme::of("/srv/raw").ok(), Some(Scheme::Local("/srv/raw")));
        assert_eq!(
            Scheme::of("file:///srv/raw").ok(),
            Some(Scheme::Local("/srv/raw"))
        );
        assert_eq!(Scheme::of("s3://bucket/raw").ok(), Some(Scheme::S3));
        assert!(matches!(Scheme::of("gs://bucket"), Err(Error::Config(_))));
        assert!(
            url_stores("/srv/raw", &AwsSettings::default())
                .expect("local")
                .is_empty()
        );
    }
}
