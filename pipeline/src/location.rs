//! Where objects live: a local folder or URL, resolved to an `object_store` backend.
//!
//! Backends are chosen by URL scheme, never by code: a plain path or `file://` URL is a
//! local folder; `s3://` needs the `aws` feature.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::{Error, Result};

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
    /// Resolves a folder path or URL. Local folders are created when missing.
    pub fn parse(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(Error::Config("an empty location was given".into()));
        }
        if let Some((scheme, _)) = spec.split_once("://") {
            return match scheme {
                "file" => Self::local(FsPath::new(&spec["file://".len()..])),
                "s3" => Err(Error::Config(format!(
                    "`{spec}`: s3:// locations need a build with the `aws` feature (cargo build --features aws)"
                ))),
                other => Err(Error::Config(format!(
                    "`{spec}`: unsupported scheme `{other}://` (use a folder, file:// or s3://)"
                ))),
            };
        }
        Self::local(FsPath::new(spec))
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
    pub fn path_of(&self, url: &str) -> Option<Path> {
        url.strip_prefix(&self.url)
            .map(|rest| rest.trim_start_matches('/'))
            .and_then(|rest| Path::parse(rest).ok())
    }
}
