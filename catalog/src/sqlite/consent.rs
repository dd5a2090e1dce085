//! [`SqliteConsentStore`]: the [`ConsentStore`] in the control-plane SQLite file.
//!
//! Table `consent_settings` (inspect with `sqlite3 control-plane.sqlite`): one
//! row per (tenant, dataset), mirroring the DynamoDB `ConsentSettings` items. The schema
//! is the control plane's ([`control_plane`](super::control_plane)).

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::control_plane::SCHEMA;
use super::{Db, format_time, get, get_time};
use crate::consent::ConsentStore;
use crate::error::{Error, Result};
use crate::model::ConsentSetting;

/// The [`ConsentStore`] on an embedded SQLite file (`control-plane.sqlite`).
///
/// Several handles, in one process or many, may open the same file. See the
/// [module docs](super) for the concurrency and durability guarantees.
#[derive(Debug, Clone)]
pub struct SqliteConsentStore {
    db: Db,
}

impl SqliteConsentStore {
    /// File name used by [`SqliteConsentStore::open_in_state_dir`].
    pub const FILE_NAME: &'static str = "control-plane.sqlite";

    /// Opens the store at `path`, creating the file and its schema if missing.
    ///
    /// # Errors
    /// The file cannot be opened, or holds a schema version this build does not read.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            db: Db::open(path, &SCHEMA)?,
        })
    }

    /// Opens `dir/control-plane.sqlite`, creating `dir` if missing.
    ///
    /// # Errors
    /// As [`SqliteConsentStore::open`], or `dir` cannot be created.
    pub fn open_in_state_dir(dir: &Path) -> Result<Self> {
        Self::open(&super::state_file(dir, Self::FILE_NAME)?)
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.db.path
    }
}

#[async_trait]
impl ConsentStore for SqliteConsentStore {
    async fn set_consent(&self, setting: &ConsentSetting) -> Result<()> {
        if setting.tenant.is_empty() || setting.dataset.is_empty() {
            return Err(Error::Invalid(
                "consent setting needs a tenant and a dataset".into(),
            ));
        }
        let setting = setting.clone();
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO consent_settings
                         (tenant, dataset, granted, updated_at, updated_by, revenue_share)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (tenant, dataset) DO UPDATE SET
                         granted = excluded.granted,
                         updated_at = excluded.updated_at,
                         updated_by = excluded.updated_by,
                         revenue_share = excluded.revenue_share",
                    params![
                        setting.tenant,
                        setting.dataset,
                        setting.granted,
                        format_time(&setting.updated_at),
                        setting.updated_by,
                        setting.revenue_share,
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn consent(&self, tenant: &str, dataset: &str) -> Result<Option<ConsentSetting>> {
        let key = Some((tenant.to_owned(), dataset.to_owned()));
        self.db.call(move |conn| Ok(load(conn, key)?.pop())).await
    }

    async fn consents(&self) -> Result<Vec<ConsentSetting>> {
        self.db.call(|conn| load(conn, None)).await
    }

    async fn dataset_consents(&self, dataset: &str) -> Result<Vec<ConsentSetting>> {
        let dataset = dataset.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT tenant, dataset, granted, updated_at, updated_by, revenue_share
                     FROM consent_settings WHERE dataset = ?1 ORDER BY tenant",
                )?;
                let mut rows = stmt.query([dataset])?;
                let mut settings = Vec::new();
                while let Some(row) = rows.next()? {
                    settings.push(setting_of(row)?);
                }
                Ok(settings)
            })
            .await
    }
}

/// The setting for `key` (tenant, dataset), or all settings, sorted.
fn load(conn: &Connection, key: Option<(String, String)>) -> Result<Vec<ConsentSetting>> {
    let (tenant, dataset) = key.unzip();
    let mut stmt = conn.prepare_cached(
        "SELECT tenant, dataset, granted, updated_at, updated_by, revenue_share
         FROM consent_settings
         WHERE ?1 IS NULL OR (tenant = ?1 AND dataset = ?2)
         ORDER BY tenant, dataset",
    )?;
    let mut rows = stmt.query(params![tenant, dataset])?;
    let mut settings = Vec::new();
    while let Some(row) = rows.next()? {
        settings.push(setting_of(row)?);
    }
    Ok(settings)
}

fn setting_of(row: &rusqlite::Row<'_>) -> Result<ConsentSetting> {
    Ok(ConsentSetting {
        tenant: get(row, "tenant")?,
        dataset: get(row, "dataset")?,
        granted: get(row, "granted")?,
        updated_at: get_time(row, "updated_at")?,
        updated_by: get(row, "updated_by")?,
        revenue_share: get(row, "revenue_share")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;
    use crate::consent::ConsentStoreExt;

    #[tokio::test]
    async fn conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteConsentStore::open_in_state_dir(dir.path()).expect("open");
        assert_eq!(store.path(), dir.path().join("control-plane.sqlite"));
        conformance::consent_store_suite(&store, "sqlite").await;
        conformance::consent_store_suite(&store, "again").await;
    }

    #[tokio::test]
    async fn consent_survives_reopen_and_is_shared_between_handles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = SqliteConsentStore::open_in_state_dir(dir.path()).expect("open a");
        let b = SqliteConsentStore::open_in_state_dir(dir.path()).expect("open b");
        let setting = ConsentSetting {
            tenant: "t-1".into(),
            dataset: "contacts".into(),
            granted: true,
            updated_at: chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("valid"),
            updated_by: "admin".into(),
            revenue_share: true,
        };
        a.set_consent(&setting).await.expect("grant");
        assert!(b.is_granted("t-1", "contacts").await.expect("read via b"));
        drop((a, b));
        let reopened = SqliteConsentStore::open_in_state_dir(dir.path()).expect("reopen");
        assert_eq!(reopened.consents().await.expect("list"), vec![setting]);
    }

    #[tokio::test]
    async fn hand_edited_timestamp_is_invalid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteConsentStore::open_in_state_dir(dir.path()).expect("open");
        let raw = Connection::open(store.path()).expect("raw open");
        // The CHECK constraint keeps this out; a hand-edited timestamp is possible.
        raw.execute(
            "INSERT INTO consent_settings VALUES ('t', 'd', 1, 'soon', 'x', 0)",
            [],
        )
        .expect("insert");
        let err = store.consent("t", "d").await.expect_err("bad timestamp");
        assert!(matches!(err, Error::Invalid(_)), "{err}");
    }
}
