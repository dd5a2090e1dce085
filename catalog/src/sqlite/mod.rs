//! Embedded SQLite implementations: [`SqliteCatalog`] (`catalog.sqlite`) and
//! [`SqliteConsentStore`] (`control-plane.sqlite`).
//!
//! # Guarantees and design
//!
//! - Every multi-row write is one SQLite transaction; publishing uses
//!   `BEGIN IMMEDIATE`, so the check for conflicting inputs and the writes run
//!   under the database write lock, even when several processes (the CLI, a
//!   worker, tests) open the same file. Multi-statement reads run in one read
//!   transaction and see a consistent snapshot.
//! - Files use WAL journaling (readers do not block the writer), a 5 s busy
//!   timeout (contention past it surfaces as a retryable [`Error`]), and
//!   enforced foreign keys.
//! - The schema is created with `CREATE TABLE IF NOT EXISTS` and versioned with
//!   `PRAGMA user_version`; a file written by a newer version is refused with
//!   [`Error::Invalid`] rather than misread.
//! - Structured fields are plain columns, so the files can be inspected with
//!   the `sqlite3` CLI; the release report, table columns and parameters are
//!   JSON text. Rows that do not decode yield [`Error::Invalid`], never a panic.
//! - Each handle owns one connection behind a mutex. Calls run on Tokio's
//!   blocking pool (`spawn_blocking`), so a busy wait never stalls an async
//!   worker thread; the methods must therefore be called within a Tokio runtime.
//!   Handles are cheap to clone and clones share the connection.

mod catalog;
mod consent;
mod control_plane;
mod lease;
mod market;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::FromSql;
use rusqlite::{Connection, Row, TransactionBehavior};

use crate::error::{Error, Result};

pub use self::catalog::SqliteCatalog;
pub use self::consent::SqliteConsentStore;
pub use self::lease::SqliteLeaseStore;
pub use self::market::SqliteMarketStore;

/// How long a statement waits for another connection's lock before failing
/// with a retryable `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A versioned schema for one database file.
struct Schema {
    /// What the file holds, for error messages.
    name: &'static str,
    /// The `PRAGMA user_version` this code writes and understands.
    version: i32,
    /// Idempotent DDL (`CREATE … IF NOT EXISTS`) creating that version.
    ddl: &'static str,
    /// `upgrades[i]` brings a file from version `i + 1` to `i + 2`; the last one reaches
    /// `version`.
    upgrades: &'static [&'static str],
}

/// One SQLite connection shared by the clones of a handle.
#[derive(Clone)]
struct Db {
    path: Arc<PathBuf>,
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if missing) the database at `path` and brings its
    /// schema to `schema.version`.
    fn open(path: &Path, schema: &Schema) -> Result<Self> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Returns the resulting mode; a filesystem without WAL support keeps the
        // rollback journal, which is slower under concurrency but still correct.
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate(&mut conn, schema)?;
        Ok(Self {
            path: Arc::new(path.to_path_buf()),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking thread pool.
    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let task = tokio::task::spawn_blocking(move || {
            // A panic while the lock was held unwound through any open
            // `Transaction`, which rolled back on drop: the connection is sound.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        });
        match task.await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => Err(Error::Io(std::io::Error::other(format!(
                "sqlite task for {} did not run: {err}",
                self.path.display()
            )))),
        }
    }
}

/// Creates the schema in a fresh file, upgrades older versions in one transaction, accepts
/// the current version, refuses newer ones.
fn migrate(conn: &mut Connection, schema: &Schema) -> Result<()> {
    let current = |conn: &Connection| -> Result<i32> {
        Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
    };
    if current(conn)? == schema.version {
        return Ok(());
    }
    // IMMEDIATE: two processes opening a fresh file must not both create it.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    match current(&tx)? {
        0 => {
            tx.execute_batch(schema.ddl)?;
            tx.pragma_update(None, "user_version", schema.version)?;
        }
        v if v == schema.version => {}
        v if v > 0 && v < schema.version => {
            for step in
                (v..schema.version).map(|from| usize::try_from(from - 1).unwrap_or(usize::MAX))
            {
                let ddl = schema.upgrades.get(step).ok_or_else(|| {
                    Error::Invalid(format!(
                        "{} schema: no upgrade from version {}",
                        schema.name,
                        step + 1
                    ))
                })?;
                tx.execute_batch(ddl)?;
            }
            tx.pragma_update(None, "user_version", schema.version)?;
        }
        v => {
            return Err(Error::Invalid(format!(
                "{} schema version {v} is not supported (this build reads version {})",
                schema.name, schema.version
            )));
        }
    }
    tx.commit()?;
    Ok(())
}

/// Creates `dir` if missing and returns `dir/file`.
fn state_file(dir: &Path, file: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    Ok(dir.join(file))
}

/// Reads column `col`, reporting a value of the wrong type as [`Error::Invalid`].
fn get<T: FromSql>(row: &Row<'_>, col: &str) -> Result<T> {
    row.get(col).map_err(|err| match err {
        rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => {
            Error::Invalid(format!("stored column {col} does not decode: {err}"))
        }
        other => Error::Sqlite(other),
    })
}

/// Reads a non-negative integer column.
fn get_u64(row: &Row<'_>, col: &str) -> Result<u64> {
    let value: i64 = get(row, col)?;
    u64::try_from(value)
        .map_err(|_| Error::Invalid(format!("stored column {col} is negative: {value}")))
}

/// Reads an integer column that must fit a `u32`.
fn get_u32(row: &Row<'_>, col: &str) -> Result<u32> {
    let value: i64 = get(row, col)?;
    u32::try_from(value)
        .map_err(|_| Error::Invalid(format!("stored column {col} is out of range: {value}")))
}

/// Reads an RFC 3339 timestamp column.
fn get_time(row: &Row<'_>, col: &str) -> Result<DateTime<Utc>> {
    let text: String = get(row, col)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|err| Error::Invalid(format!("stored column {col} is not a timestamp: {err}")))
}

/// Reads a JSON text column into `T`.
fn get_json<T: serde::de::DeserializeOwned>(row: &Row<'_>, col: &str) -> Result<T> {
    let text: String = get(row, col)?;
    serde_json::from_str(&text)
        .map_err(|err| Error::Invalid(format!("stored column {col} is not valid JSON: {err}")))
}

/// Formats a timestamp with fixed width (nanoseconds, `Z`), so the text sorts
/// chronologically and round-trips exactly.
fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Converts a count to SQLite's signed integer, refusing values it cannot hold.
fn to_i64(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::Invalid(format!("{what} is too large: {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: Schema = Schema {
        name: "test",
        version: 1,
        ddl: "CREATE TABLE IF NOT EXISTS t (x INTEGER);",
        upgrades: &[],
    };

    #[test]
    fn newer_schema_version_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        Db::open(&path, &SCHEMA).expect("create");
        {
            let conn = Connection::open(&path).expect("raw open");
            conn.pragma_update(None, "user_version", 7)
                .expect("bump version");
        }
        let err = Db::open(&path, &SCHEMA).expect_err("must refuse newer schema");
        assert!(matches!(err, Error::Invalid(_)), "{err}");
    }

    #[test]
    fn files_use_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("db.sqlite"), &SCHEMA).expect("open");
        let conn = db.conn.lock().expect("lock");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal_mode");
        let fks: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .expect("foreign_keys");
        assert_eq!(mode.to_ascii_lowercase(), "wal");
        assert_eq!(fks, 1);
    }

    #[test]
    fn held_write_lock_surfaces_as_retryable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        Db::open(&path, &SCHEMA).expect("create");
        let mut holder = Connection::open(&path).expect("holder");
        let _tx = holder
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("take write lock");
        let other = Connection::open(&path).expect("other");
        other.busy_timeout(Duration::ZERO).expect("no wait");
        let err: Error = other
            .execute("INSERT INTO t (x) VALUES (1)", [])
            .expect_err("write lock is held")
            .into();
        assert!(err.is_retryable(), "{err}");
    }

    #[test]
    fn timestamps_sort_as_text_and_round_trip() {
        let a = DateTime::from_timestamp(1_790_000_000, 5).expect("valid");
        let b = DateTime::from_timestamp(1_790_000_000, 123_456_789).expect("valid");
        let (ta, tb) = (format_time(&a), format_time(&b));
        assert!(ta < tb, "{ta} < {tb}");
        let back = DateTime::parse_from_rfc3339(&ta).expect("parse");
        assert_eq!(back.with_timezone(&Utc), a);
    }
}
