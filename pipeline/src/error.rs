//! The pipeline's error type.

/// Errors of the ingest worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operator must fix the configuration; retrying never helps.
    #[error("configuration error: {0}")]
    Config(String),
    #[error(transparent)]
    Policy(#[from] policies::Error),
    /// A catalog, control-plane or object-store failure; its causes are its source chain.
    #[error(transparent)]
    Catalog(catalog::Error),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A record ledger file (a run) or the local ledger cache is unusable.
    #[error("record ledger: {0}")]
    Ledger(#[from] crate::ledger::LedgerError),
    /// An argument names something that cannot be used (a path that is neither a file nor
    /// a folder); the caller must fix it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The catalog and the object stores disagree (a release located outside the curated
    /// root): an operator must look before anything is deleted or published.
    #[error("inconsistent state: {0}")]
    Inconsistent(String),
    /// A broken internal invariant: a bug, never bad input.
    #[error("internal error (a bug): {0}")]
    Invariant(String),
    /// A release would hold more memory than its budget allows
    /// ([`MemoryBudget`](crate::memory::MemoryBudget)): it stopped before the machine ran
    /// out, and publishes nothing.
    #[error("release too large for its memory: {0}")]
    MemoryBudget(String),
    /// A background task failed.
    #[error("worker task failed: {0}")]
    Task(String),
}

impl Error {
    /// Whether retrying the same work may succeed (throttling, timeouts, busy databases).
    /// Bad data never surfaces here: it is quarantined.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Catalog(e) => e.is_retryable(),
            Error::ObjectStore(e) => catalog::storage::is_retryable(e),
            Error::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }
}

/// A catalog error keeps its kind: a configuration fault (say, a location with an unknown
/// scheme) stays [`Error::Config`] and an object-store failure [`Error::ObjectStore`], so
/// exit codes and retries do not depend on which crate found them.
impl From<catalog::Error> for Error {
    fn from(e: catalog::Error) -> Self {
        match e {
            catalog::Error::Config(message) => Error::Config(message),
            catalog::Error::ObjectStore(e) => Error::ObjectStore(e),
            other => Error::Catalog(other),
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Task(e.to_string())
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
