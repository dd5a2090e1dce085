//! The crate's error type.
//!
//! Backend errors (SQLite, object stores, and the AWS SDK with the `aws` feature) map into
//! [`Error`], and
//! [`Error::is_retryable`] tells the worker whether trying again can help:
//! contention is transient, a [`Error::Conflict`] or [`Error::Invalid`] is not.

/// Everything that can go wrong in the catalog crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The embedded SQLite backend failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A value could not be encoded to (or decoded from) JSON.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A filesystem operation failed (for example creating the state directory).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The write contradicts what is already stored, for example a raw object
    /// that already belongs to another release. Nothing was written.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An AWS service call failed (only with the `aws` feature). `retryable` is set for
    /// throttling, timeouts and 5xx answers; `source` is the SDK's error, with its chain.
    #[error("aws {service}: {message}")]
    Aws {
        service: &'static str,
        message: String,
        retryable: bool,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The operator must fix the configuration (an unknown scheme, a folder that cannot be
    /// created, a backend this build lacks); retrying never helps.
    #[error("configuration error: {0}")]
    Config(String),
    /// An object store call failed.
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// The request or the stored data is malformed: a missing table, a value out
    /// of range, a row that does not decode. Nothing was written.
    #[error("invalid: {0}")]
    Invalid(String),
}

impl Error {
    /// Whether retrying the same call may succeed.
    ///
    /// Only lock contention (`SQLITE_BUSY`, `SQLITE_LOCKED`, e.g. another process
    /// holding the write lock past the busy timeout) is retryable; conflicts,
    /// invalid input and corrupt data fail the same way every time.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            Self::Aws { retryable, .. } => *retryable,
            Self::ObjectStore(e) => crate::storage::is_retryable(e),
            _ => false,
        }
    }

    /// The error for a feature of a build without the `aws` feature, `what` naming it
    /// (written once, so every such refusal tells the operator the same fix).
    #[must_use]
    pub fn needs_aws(what: &str) -> Self {
        Self::Config(format!(
            "{what} needs a build with the `aws` feature (cargo build --features aws)"
        ))
    }
}

/// `e` and every error of its source chain, joined by `: `: what a log line or a report
/// should carry of an error (its `Display` alone drops the causes).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_failure(code: i32) -> Error {
        Error::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }

    #[test]
    fn only_contention_is_retryable() {
        assert!(sqlite_failure(rusqlite::ffi::SQLITE_BUSY).is_retryable());
        assert!(sqlite_failure(rusqlite::ffi::SQLITE_LOCKED).is_retryable());
        assert!(!sqlite_failure(rusqlite::ffi::SQLITE_CONSTRAINT).is_retryable());
        assert!(!sqlite_failure(rusqlite::ffi::SQLITE_CORRUPT).is_retryable());
        assert!(!Error::Conflict("x".into()).is_retryable());
        assert!(!Error::Invalid("x".into()).is_retryable());
        assert!(!Error::Io(std::io::Error::other("x")).is_retryable());
        assert!(!Error::Config("x".into()).is_retryable());
    }

    #[test]
    fn an_aws_failure_keeps_its_cause_and_the_chain_shows_it() {
        let cause = std::io::Error::other("ThrottlingException: rate exceeded");
        let e = Error::Aws {
            service: "glue",
            message: "CreateTable".into(),
            retryable: true,
            source: Some(Box::new(cause)),
        };
        assert!(e.is_retryable());
        assert_eq!(e.to_string(), "aws glue: CreateTable");
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            chain(&e),
            "aws glue: CreateTable: ThrottlingException: rate exceeded"
        );
    }
}
