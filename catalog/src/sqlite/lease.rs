//! [`SqliteLeaseStore`]: leases in the control-plane SQLite file, each acquisition one
//! `BEGIN IMMEDIATE` transaction (the file's write lock settles races between processes).

use std::path::Path;

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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .execute_batch(DDL)?;
        Ok(Self { db })
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
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let held: Option<String> = tx
                    .prepare_cached("SELECT expires_at FROM leases WHERE name = ?1")?
                    .query_row([&lease.name], |r| r.get(0))
                    .optional()?;
                if held.is_some_and(|until| until > format_time(&now)) {
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
                Ok(Some(lease))
            })
            .await
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
        self.db
            .call(move |conn| {
                Ok(conn.execute(
                    "DELETE FROM leases WHERE name = ?1 AND token = ?2",
                    params![name, token],
                )? == 1)
            })
            .await
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
}
