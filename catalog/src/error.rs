//! The crate's error type.
//!
//! Backend errors (SQLite today, AWS SDK errors later) map into [`Error`], and
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
    /// throttling, timeouts and 5xx answers.
    #[error("aws {service}: {message}")]
    Aws {
        service: &'static str,
        message: String,
        retryable: bool,
    },
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
            _ => false,
        }
    }
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
    }
}
