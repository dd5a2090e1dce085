//! [`SqliteLeaseStore`]: leases in the control-plane SQLite file, each acquisition one
//! `BEGIN IMMEDIATE` transaction (the file's write lock settles races between processes).
//!
//! A lease whose holder process died is free at once, not only at expiry: the holder
//! keeps an exclusive OS file lock (`flock`) on `{state}/leases/{token}.lock` from before
//! its row is written until it releases the lease, and the operating system drops that
//! lock when the process ends, however it ends. An acquirer that finds the lease held
//! tries that lock: taken, the holder is gone and the lease is its. A `stackpro run`
//! killed mid-release so frees its tenant-dataset for the next run at once. A holder
//! whose lock file is missing (written by another build, or a file system without locks)
//! keeps the lease until it expires: in doubt, the lease is held.

use std::collections::HashMap;
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::control_plane::SCHEMA;
use super::{Db, format_time};
use crate::error::Result;
use crate::lease::{Lease, LeaseStore, new_token};

const DDL: &str = r"
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT NOT NULL PRIMARY KEY,
    holder     TEXT NOT NULL,
    token      TEXT NOT NULL,
    expires_at TEXT NOT NULL -- RFC 3339, fixed width: compares as text
) STRICT;
";

/// The [`LeaseStore`] on the control-plane file.
#[derive(Debug, Clone)]
pub struct SqliteLeaseStore {
    db: Db,
    /// `{state}/leases`: one lock file per lease held.
    locks: PathBuf,
    /// The lock files of the leases this store holds, by token: open, so locked.
    held: Arc<Mutex<HashMap<String, File>>>,
}

/// The lock file of the lease acquired with `token`.
fn lock_path(dir: &Path, token: &str) -> PathBuf {
    dir.join(format!("{token}.lock"))
}

/// Whether the holder of the lease acquired with `token` is certainly gone: its lock file
/// exists and its lock can be taken (the lock taken is dropped again at once).
fn holder_gone(dir: &Path, token: &str) -> bool {
    // Tokens are ours (hex); anything else names no file of ours.
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    match File::open(lock_path(dir, token)) {
        Ok(file) => match file.try_lock() {
            Ok(()) => true,
            Err(TryLockError::WouldBlock | TryLockError::Error(_)) => false,
        },
        Err(_) => false,
    }
}

impl SqliteLeaseStore {
    /// Opens `dir/control-plane.sqlite`, creating `dir`, the file and the table.
    ///
    /// # Errors
    /// The file cannot be opened or holds a schema this build does not read.
    pub fn open_in_state_dir(dir: &Path) -> Result<Self> {
        let db = Db::open(
            &super::state_file(dir, super::SqliteConsentStore::FILE_NAME)?,
            &SCHEMA,
        )?;
        db.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .execute_batch(DDL)?;
        let locks = dir.join("leases");
        fs::create_dir_all(&locks)?;
        Ok(Self {
            db,
            locks,
            held: Arc::default(),
        })
    }

    /// Creates and locks the lock file of a lease about to be written under `token`.
    fn lock(&self, token: &str) -> Result<File> {
        let file = File::create(lock_path(&self.locks, token))?;
        file.lock()?;
        Ok(file)
    }

    /// Drops the lock of `token` (if this store holds it) and removes its file.
    fn unlock(&self, token: &str) {
        let file = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
        if file.is_some() {
            let _ = fs::remove_file(lock_path(&self.locks, token));
        }
    }
}

#[async_trait]
impl LeaseStore for SqliteLeaseStore {
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>> {
        let lease = Lease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            token: new_token(),
            expires_at: now + ttl,
        };
        // Locked before the row exists: a row is never without its holder's lock.
        let file = self.lock(&lease.token)?;
        let (locks, token) = (self.locks.clone(), lease.token.clone());
        let won = self
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let held: Option<(String, String)> = tx
                    .prepare_cached("SELECT expires_at, token FROM leases WHERE name = ?1")?
                    .query_row([&lease.name], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                // Whether the previous holder's process is gone (its lock is free).
                let gone = held.as_ref().is_some_and(|(_, t)| holder_gone(&locks, t));
                if held
                    .as_ref()
                    .is_some_and(|(until, _)| *until > format_time(&now))
                    && !gone
                {
                    return Ok(None);
                }
                tx.execute(
                    "INSERT INTO leases (name, holder, token, expires_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                         token = excluded.token, expires_at = excluded.expires_at",
                    params![
                        lease.name,
                        lease.holder,
                        lease.token,
                        format_time(&lease.expires_at)
                    ],
                )?;
                tx.commit()?;
                if let (Some((_, token)), true) = (held, gone) {
                    // The dead holder's file; a live one that lost its lease to expiry
                    // removes its own when it releases.
                    let _ = fs::remove_file(lock_path(&locks, &token));
                }
                Ok(Some(lease))
            })
            .await;
        match won {
            Ok(Some(lease)) => {
                self.held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(lease.token.clone(), file);
                Ok(Some(lease))
            }
            other => {
                drop(file);
                let _ = fs::remove_file(lock_path(&self.locks, &token));
                other
            }
        }
    }

    async fn renew(
        &self,
        lease: &Lease,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>> {
        let renewed = Lease {
            expires_at: now + ttl,
            ..lease.clone()
        };
        self.db
            .call(move |conn| {
                let n = conn.execute(
                    "UPDATE leases SET expires_at = ?3
                     WHERE name = ?1 AND token = ?2 AND expires_at > ?4",
                    params![
                        renewed.name,
                        renewed.token,
                        format_time(&renewed.expires_at),
                        format_time(&now)
                    ],
                )?;
                Ok((n == 1).then_some(renewed))
            })
            .await
    }

    async fn release(&self, lease: &Lease) -> Result<bool> {
        let (name, token) = (lease.name.clone(), lease.token.clone());
        let released = self
            .db
            .call(move |conn| {
                Ok(conn.execute(
                    "DELETE FROM leases WHERE name = ?1 AND token = ?2",
                    params![name, token],
                )? == 1)
            })
            .await;
        // After the row: the lock is never gone while its row says held.
        self.unlock(&lease.token);
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = SqliteLeaseStore::open_in_state_dir(dir.path()).expect("open");
        let b = SqliteLeaseStore::open_in_state_dir(dir.path()).expect("second handle");
        crate::conformance::lease_store_suite(&a, &b, "sqlite").await;
    }

    /// A holder that ends without releasing (the OS closes its files, so drops its lock)
    /// frees the lease at once; while it lives, the lease stays held until expiry.
    #[tokio::test]
    async fn a_lease_of_a_holder_that_ended_is_free_before_it_expires() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc::now();
        let ttl = TimeDelta::seconds(300);
        let other = SqliteLeaseStore::open_in_state_dir(dir.path()).expect("open");
        let held = {
            let holder = SqliteLeaseStore::open_in_state_dir(dir.path()).expect("open");
            let held = holder
                .acquire("tenant=t-1/dataset=contacts", "run-1", ttl, now)
                .await
                .expect("acquire")
                .expect("free");
            assert!(
                other
                    .acquire("tenant=t-1/dataset=contacts", "run-2", ttl, now)
                    .await
                    .expect("acquire")
                    .is_none(),
                "held while its holder lives"
            );
            held
            // `holder` ends here without releasing, as a killed process would.
        };
        let taken = other
            .acquire("tenant=t-1/dataset=contacts", "run-2", ttl, now)
            .await
            .expect("acquire")
            .expect("free once its holder is gone, long before expiry");
        assert_ne!(taken.token, held.token);
        assert!(
            !dir.path()
                .join("leases")
                .join(format!("{}.lock", held.token))
                .exists(),
            "the dead holder's lock file is removed"
        );
        assert!(other.release(&taken).await.expect("release"));
        let left: Vec<_> = fs::read_dir(dir.path().join("leases"))
            .expect("leases dir")
            .collect();
        assert!(left.is_empty(), "a released lease leaves no file: {left:?}");
    }
}
