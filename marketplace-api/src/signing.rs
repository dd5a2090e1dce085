//! Download URLs for curated files: HMAC-signed URLs the API serves itself (local curated
//! roots, the embedded default), or S3 presigned GETs (`s3://` roots, feature `aws`).
//!
//! A local URL is `{public base}/files/{path}?exp={unix seconds}&kid={key id}&sig={hex}`,
//! the signature covering the key id, the expiry and the path relative to the curated
//! root (see [`UrlKeys::sign`]): it opens one file until one instant, and no other.

#[cfg(feature = "aws")]
use std::sync::Arc;
#[cfg(feature = "aws")]
use std::time::Duration;

use catalog::storage::Location;
use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult};
use crate::secrets::UrlKeys;

/// Makes the download URLs of curated files.
#[derive(Debug, Clone)]
pub enum UrlSigner {
    /// Files under a local curated root, served by `GET /files/...`.
    Local {
        /// The root the files live under.
        curated: Location,
        /// The public base URL of the API, without a trailing `/`.
        base: String,
        keys: UrlKeys,
    },
    /// Objects in S3, presigned.
    #[cfg(feature = "aws")]
    S3 {
        presigner: Arc<catalog::storage::s3::Presigner>,
    },
}

impl UrlSigner {
    /// The signer for `curated`: local roots get API-served URLs under `base`, `s3://`
    /// roots presigned GETs.
    ///
    /// # Errors
    /// An `s3://` root in a build without `aws`, or an S3 client that cannot be built.
    pub fn for_root(
        curated: Location,
        base: String,
        keys: UrlKeys,
        aws: &catalog::AwsSettings,
    ) -> catalog::Result<Self> {
        if curated.local_dir.is_some() {
            return Ok(Self::Local {
                curated,
                base,
                keys,
            });
        }
        #[cfg(feature = "aws")]
        {
            let presigner = catalog::storage::s3::Presigner::new(&curated.url, aws)?;
            Ok(Self::S3 {
                presigner: Arc::new(presigner),
            })
        }
        #[cfg(not(feature = "aws"))]
        {
            let _ = (aws, keys, base);
            Err(catalog::Error::needs_aws(
                "signed URLs for an s3:// curated root",
            ))
        }
    }

    /// The URL opening the file at `file_url` (a [`catalog::ReleaseFile::path`]) until
    /// `expires_at`.
    pub async fn url_for(&self, file_url: &str, expires_at: DateTime<Utc>) -> ApiResult<String> {
        match self {
            Self::Local {
                curated,
                base,
                keys,
            } => {
                let path =
                    crate::service::curated_relative(curated, file_url).ok_or_else(|| {
                        ApiError::internal(&std::io::Error::other(format!(
                            "release file {file_url} is not under the curated root {}",
                            curated.url
                        )))
                    })?;
                let exp = expires_at.timestamp();
                let (kid, sig) = keys.sign(&path, exp);
                Ok(format!("{base}/files/{path}?exp={exp}&kid={kid}&sig={sig}"))
            }
            #[cfg(feature = "aws")]
            Self::S3 { presigner } => {
                let left = (expires_at - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::from_secs(1));
                Ok(presigner
                    .presign_get(file_url, left.max(Duration::from_secs(1)))
                    .await?)
            }
        }
    }

    /// The local root and keys, when the API serves the files itself.
    #[must_use]
    pub fn local(&self) -> Option<(&Location, &UrlKeys)> {
        match self {
            Self::Local { curated, keys, .. } => Some((curated, keys)),
            #[cfg(feature = "aws")]
            Self::S3 { .. } => None,
        }
    }
}
