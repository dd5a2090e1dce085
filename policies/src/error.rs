//! The policy crate's error type.

/// Errors raised while loading a policy or running a release computation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The policy document is malformed or inconsistent; `path` names the offending field
    /// (for example `datasets.contacts.fields[3].hierarchy.widths`).
    #[error("invalid policy at `{path}`: {message}")]
    InvalidPolicy { path: String, message: String },
    /// A file referenced by the policy (a hierarchy table) could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The hashing key is missing or too weak.
    #[error("invalid hash key: {0}")]
    InvalidKey(String),
    /// The policy has no rules for this dataset, so nothing of it may be released.
    #[error("the policy `{policy}` has no rules for dataset `{dataset}`")]
    UnknownDataset { policy: String, dataset: String },
    /// A quasi-identifier has more distinct values than the engine can index.
    #[error("capacity exceeded: {0}")]
    Capacity(String),
    /// A record was added to a histogram whose counting had ended
    /// ([`QiHistogram::seal`](crate::QiHistogram::seal)).
    #[error("records added to a sealed histogram")]
    Sealed,
    /// Building Arrow arrays failed.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

impl Error {
    /// Whether retrying may help: only when reading a policy's file was interrupted.
    /// Everything else is a fault of the policy or key, which fails the same way again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::Interrupted)
    }

    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidPolicy {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
