//! [`SqliteCatalog`]: the [`DataCatalog`] in one SQLite file.
//!
//! Tables (inspect with `sqlite3 catalog.sqlite`):
//! - `tables`: one row per dataset; columns, partition keys and parameters as JSON.
//! - `releases`: one row per published release; the report as JSON.
//! - `release_files`: the files of each release, in order; deleted with it.
//! - `released_objects`: the raw-object ledger, `object_key -> release_id`.
//!   It has no foreign key to `releases` on purpose: its rows outlive
//!   their release, so retention never makes a raw object releasable again.

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::{Db, Schema, format_time, get, get_json, get_time, get_u32, get_u64, to_i64};
use crate::data_catalog::DataCatalog;
use crate::error::{Error, Result};
use crate::model::{
    PublishOutcome, RawObjectRef, Release, ReleaseFile, ReleaseFilter, TableSchema,
};

const SCHEMA: Schema = Schema {
    name: "catalog",
    version: 1,
    ddl: r"
CREATE TABLE IF NOT EXISTS tables (
    dataset        TEXT NOT NULL PRIMARY KEY,
    location       TEXT NOT NULL,
    policy_id      TEXT NOT NULL,
    policy_hash    TEXT NOT NULL,
    k              INTEGER NOT NULL,
    partition_keys TEXT NOT NULL, -- JSON array of names
    columns        TEXT NOT NULL, -- JSON array of Column
    parameters     TEXT NOT NULL  -- JSON object
) STRICT;

CREATE TABLE IF NOT EXISTS releases (
    release_id        TEXT NOT NULL PRIMARY KEY,
    dataset           TEXT NOT NULL REFERENCES tables (dataset),
    tenant            TEXT NOT NULL,
    dt                TEXT NOT NULL,
    location          TEXT NOT NULL,
    policy_id         TEXT NOT NULL,
    policy_hash       TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    k                 INTEGER NOT NULL,
    records_in        INTEGER NOT NULL,
    records_out       INTEGER NOT NULL,
    suppressed        INTEGER NOT NULL,
    quarantined       INTEGER NOT NULL,
    k_anon_violations INTEGER NOT NULL,
    node              TEXT NOT NULL,
    report            TEXT NOT NULL, -- JSON release report
    published_at      TEXT NOT NULL  -- RFC 3339, fixed width, sorts chronologically
) STRICT;
CREATE INDEX IF NOT EXISTS releases_by_partition
    ON releases (dataset, tenant, dt, published_at);
CREATE INDEX IF NOT EXISTS releases_by_tenant ON releases (tenant);

CREATE TABLE IF NOT EXISTS release_files (
    release_id TEXT NOT NULL REFERENCES releases (release_id) ON DELETE CASCADE,
    ordinal    INTEGER NOT NULL,
    path       TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    row_count  INTEGER NOT NULL,
    PRIMARY KEY (release_id, ordinal)
) STRICT;

-- The ledger: no foreign key to releases, rows outlive their release.
CREATE TABLE IF NOT EXISTS released_objects (
    object_key  TEXT NOT NULL PRIMARY KEY,
    release_id  TEXT NOT NULL,
    ordinal     INTEGER NOT NULL,
    dataset     TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    e_tag       TEXT,
    released_at TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS released_objects_by_release
    ON released_objects (release_id, ordinal);
",
    upgrades: &[],
};

/// Keys per `IN (…)` list: well under SQLite's bound-parameter limit, and few
/// distinct statement shapes for the statement cache.
const IN_CHUNK: usize = 500;

/// The [`DataCatalog`] on an embedded SQLite file.
///
/// Several handles, in one process or many, may open the same file; publishes
/// are serialized by the database write lock. See the [module docs](super)
/// for the concurrency and durability guarantees.
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    db: Db,
}

impl SqliteCatalog {
    /// File name used by [`SqliteCatalog::open_in_state_dir`].
    pub const FILE_NAME: &'static str = "catalog.sqlite";

    /// Opens the catalog at `path`, creating the file and its schema if missing.
    ///
    /// # Errors
    /// The file cannot be opened, or holds a schema version this build does not read.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            db: Db::open(path, &SCHEMA)?,
        })
    }

    /// Opens `dir/catalog.sqlite`, creating `dir` if missing.
    ///
    /// # Errors
    /// As [`SqliteCatalog::open`], or `dir` cannot be created.
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
impl DataCatalog for SqliteCatalog {
    async fn upsert_table(&self, schema: &TableSchema) -> Result<()> {
        schema.validate()?;
        let schema = schema.clone();
        self.db.call(move |conn| upsert_table(conn, &schema)).await
    }

    async fn table(&self, dataset: &str) -> Result<Option<TableSchema>> {
        let dataset = dataset.to_owned();
        self.db
            .call(move |conn| {
                let mut tables = load_tables(conn, Some(&dataset))?;
                Ok(tables.pop())
            })
            .await
    }

    async fn tables(&self) -> Result<Vec<TableSchema>> {
        self.db.call(|conn| load_tables(conn, None)).await
    }

    async fn publish_release(&self, release: &Release) -> Result<PublishOutcome> {
        release.validate()?;
        let release = release.clone();
        self.db.call(move |conn| publish(conn, &release)).await
    }

    async fn release(&self, release_id: &str) -> Result<Option<Release>> {
        let selector = Selector {
            release_id: Some(release_id.to_owned()),
            ..Selector::default()
        };
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                Ok(load_releases(&tx, &selector)?.pop())
            })
            .await
    }

    async fn releases(&self, filter: &ReleaseFilter) -> Result<Vec<Release>> {
        let selector = Selector {
            release_id: None,
            dataset: filter.dataset.clone(),
            tenant: filter.tenant.clone(),
        };
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                load_releases(&tx, &selector)
            })
            .await
    }

    async fn released_objects(&self, keys: &[String]) -> Result<HashMap<String, String>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let keys = keys.to_vec();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                ledger_lookup(&tx, &keys)
            })
            .await
    }

    async fn remove_release(&self, release_id: &str) -> Result<bool> {
        let release_id = release_id.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                // Files first, so removal does not depend on the cascade being enabled.
                tx.execute(
                    "DELETE FROM release_files WHERE release_id = ?1",
                    [&release_id],
                )?;
                let removed =
                    tx.execute("DELETE FROM releases WHERE release_id = ?1", [&release_id])?;
                tx.commit()?;
                Ok(removed > 0)
            })
            .await
    }
}

fn upsert_table(conn: &Connection, schema: &TableSchema) -> Result<()> {
    conn.execute(
        "INSERT INTO tables
             (dataset, location, policy_id, policy_hash, k, partition_keys, columns, parameters)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (dataset) DO UPDATE SET
             location = excluded.location,
             policy_id = excluded.policy_id,
             policy_hash = excluded.policy_hash,
             k = excluded.k,
             partition_keys = excluded.partition_keys,
             columns = excluded.columns,
             parameters = excluded.parameters",
        params![
            schema.dataset,
            schema.location,
            schema.policy_id,
            schema.policy_hash,
            schema.k,
            serde_json::to_string(&schema.partition_keys)?,
            serde_json::to_string(&schema.columns)?,
            serde_json::to_string(&schema.parameters)?,
        ],
    )?;
    Ok(())
}

fn load_tables(conn: &Connection, dataset: Option<&str>) -> Result<Vec<TableSchema>> {
    let mut stmt = conn.prepare_cached(
        "SELECT dataset, location, policy_id, policy_hash, k, partition_keys, columns, parameters
         FROM tables
         WHERE ?1 IS NULL OR dataset = ?1
         ORDER BY dataset",
    )?;
    let mut rows = stmt.query([dataset])?;
    let mut tables = Vec::new();
    while let Some(row) = rows.next()? {
        tables.push(TableSchema {
            dataset: get(row, "dataset")?,
            columns: get_json(row, "columns")?,
            partition_keys: get_json(row, "partition_keys")?,
            location: get(row, "location")?,
            policy_id: get(row, "policy_id")?,
            policy_hash: get(row, "policy_hash")?,
            k: get_u32(row, "k")?,
            parameters: get_json(row, "parameters")?,
        });
    }
    Ok(tables)
}

fn publish(conn: &mut Connection, release: &Release) -> Result<PublishOutcome> {
    // IMMEDIATE takes the write lock now, so no other writer can slip in
    // between the checks below and the inserts.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let exists = tx
        .query_row(
            "SELECT 1 FROM releases WHERE release_id = ?1",
            [&release.release_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if exists {
        return Ok(PublishOutcome::AlreadyPublished);
    }
    let table_exists = tx
        .query_row(
            "SELECT 1 FROM tables WHERE dataset = ?1",
            [&release.dataset],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !table_exists {
        return Err(Error::Invalid(format!(
            "release {}: dataset {} has no table; upsert_table first",
            release.release_id, release.dataset
        )));
    }

    let keys: Vec<String> = release.inputs.iter().map(|i| i.key.clone()).collect();
    let taken = ledger_lookup(&tx, &keys)?;
    if !taken.is_empty() {
        return Err(conflict(release, taken));
    }

    tx.execute(
        "INSERT INTO releases
             (release_id, dataset, tenant, dt, location, policy_id, policy_hash, key_id, k,
              records_in, records_out, suppressed, quarantined, k_anon_violations,
              node, report, published_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            release.release_id,
            release.dataset,
            release.tenant,
            release.dt,
            release.location,
            release.policy_id,
            release.policy_hash,
            release.key_id,
            release.k,
            to_i64(release.records_in, "records_in")?,
            to_i64(release.records_out, "records_out")?,
            to_i64(release.suppressed, "suppressed")?,
            to_i64(release.quarantined, "quarantined")?,
            to_i64(release.k_anon_violations, "k_anon_violations")?,
            release.node,
            serde_json::to_string(&release.report)?,
            format_time(&release.published_at),
        ],
    )?;
    {
        let mut insert_file = tx.prepare_cached(
            "INSERT INTO release_files (release_id, ordinal, path, size_bytes, row_count)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (ordinal, file) in (0_i64..).zip(&release.files) {
            insert_file.execute(params![
                release.release_id,
                ordinal,
                file.path,
                to_i64(file.size_bytes, "file size_bytes")?,
                to_i64(file.rows, "file rows")?,
            ])?;
        }
        let released_at = format_time(&release.published_at);
        let mut insert_input = tx.prepare_cached(
            "INSERT INTO released_objects
                 (object_key, release_id, ordinal, dataset, tenant, size, e_tag, released_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (ordinal, input) in (0_i64..).zip(&release.inputs) {
            insert_input.execute(params![
                input.key,
                release.release_id,
                ordinal,
                release.dataset,
                release.tenant,
                to_i64(input.size, "input size")?,
                input.e_tag,
                released_at,
            ])?;
        }
    }
    tx.commit()?;
    Ok(PublishOutcome::Published)
}

/// The error for a release whose inputs are already in the ledger.
fn conflict(release: &Release, taken: HashMap<String, String>) -> Error {
    const SHOWN: usize = 5;
    let mut taken: Vec<(String, String)> = taken.into_iter().collect();
    taken.sort();
    let shown: Vec<String> = taken
        .iter()
        .take(SHOWN)
        .map(|(key, by)| {
            if *by == release.release_id {
                format!("{key} (by this release id, since removed)")
            } else {
                format!("{key} (by release {by})")
            }
        })
        .collect();
    let more = taken.len().saturating_sub(SHOWN);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Error::Conflict(format!(
        "release {}: {} input object(s) already released: {}{more}",
        release.release_id,
        taken.len(),
        shown.join(", ")
    ))
}

/// Ledger entries for `keys`, looked up in chunks of [`IN_CHUNK`].
fn ledger_lookup(conn: &Connection, keys: &[String]) -> Result<HashMap<String, String>> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(IN_CHUNK) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT object_key, release_id FROM released_objects WHERE object_key IN ({placeholders})"
        ))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(chunk))?;
        while let Some(row) = rows.next()? {
            found.insert(get(row, "object_key")?, get(row, "release_id")?);
        }
    }
    Ok(found)
}

/// Which releases [`load_releases`] reads; `None` matches everything.
#[derive(Debug, Default)]
struct Selector {
    release_id: Option<String>,
    dataset: Option<String>,
    tenant: Option<String>,
}

impl Selector {
    /// A `WHERE` clause over alias `r` (the `releases` table) and its parameters.
    fn where_clause(&self) -> (String, Vec<&str>) {
        let conditions = [
            ("r.release_id", &self.release_id),
            ("r.dataset", &self.dataset),
            ("r.tenant", &self.tenant),
        ];
        let mut sql = Vec::new();
        let mut values = Vec::new();
        for (column, value) in conditions {
            if let Some(value) = value {
                sql.push(format!("{column} = ?"));
                values.push(value.as_str());
            }
        }
        if sql.is_empty() {
            (String::new(), values)
        } else {
            (format!("WHERE {}", sql.join(" AND ")), values)
        }
    }
}

/// Releases matching `selector` with their files and inputs, in listing order.
/// Three queries in the caller's transaction, whatever the number of releases.
fn load_releases(tx: &Transaction<'_>, selector: &Selector) -> Result<Vec<Release>> {
    let (filter, values) = selector.where_clause();

    let mut files: HashMap<String, Vec<ReleaseFile>> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT f.release_id AS release_id, f.path AS path,
                    f.size_bytes AS size_bytes, f.row_count AS row_count
             FROM release_files f JOIN releases r ON r.release_id = f.release_id
             {filter}
             ORDER BY f.release_id, f.ordinal"
        ))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(&values))?;
        while let Some(row) = rows.next()? {
            files
                .entry(get(row, "release_id")?)
                .or_default()
                .push(ReleaseFile {
                    path: get(row, "path")?,
                    size_bytes: get_u64(row, "size_bytes")?,
                    rows: get_u64(row, "row_count")?,
                });
        }
    }

    let mut inputs: HashMap<String, Vec<RawObjectRef>> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT o.release_id AS release_id, o.object_key AS object_key,
                    o.size AS size, o.e_tag AS e_tag
             FROM released_objects o JOIN releases r ON r.release_id = o.release_id
             {filter}
             ORDER BY o.release_id, o.ordinal"
        ))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(&values))?;
        while let Some(row) = rows.next()? {
            inputs
                .entry(get(row, "release_id")?)
                .or_default()
                .push(RawObjectRef {
                    key: get(row, "object_key")?,
                    size: get_u64(row, "size")?,
                    e_tag: get(row, "e_tag")?,
                });
        }
    }

    let mut stmt = tx.prepare_cached(&format!(
        "SELECT r.release_id AS release_id, r.dataset AS dataset, r.tenant AS tenant,
                r.dt AS dt, r.location AS location, r.policy_id AS policy_id,
                r.policy_hash AS policy_hash, r.key_id AS key_id, r.k AS k,
                r.records_in AS records_in, r.records_out AS records_out,
                r.suppressed AS suppressed, r.quarantined AS quarantined,
                r.k_anon_violations AS k_anon_violations, r.node AS node,
                r.report AS report, r.published_at AS published_at
         FROM releases r
         {filter}
         ORDER BY r.dataset, r.tenant, r.dt, r.published_at, r.release_id"
    ))?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&values))?;
    let mut releases = Vec::new();
    while let Some(row) = rows.next()? {
        let release_id: String = get(row, "release_id")?;
        releases.push(Release {
            files: files.remove(&release_id).unwrap_or_default(),
            inputs: inputs.remove(&release_id).unwrap_or_default(),
            dataset: get(row, "dataset")?,
            tenant: get(row, "tenant")?,
            dt: get(row, "dt")?,
            location: get(row, "location")?,
            policy_id: get(row, "policy_id")?,
            policy_hash: get(row, "policy_hash")?,
            key_id: get(row, "key_id")?,
            k: get_u32(row, "k")?,
            records_in: get_u64(row, "records_in")?,
            records_out: get_u64(row, "records_out")?,
            suppressed: get_u64(row, "suppressed")?,
            quarantined: get_u64(row, "quarantined")?,
            k_anon_violations: get_u64(row, "k_anon_violations")?,
            node: get(row, "node")?,
            report: get_json(row, "report")?,
            published_at: get_time(row, "published_at")?,
            release_id,
        });
    }
    Ok(releases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    fn open(dir: &Path) -> SqliteCatalog {
        SqliteCatalog::open_in_state_dir(dir).expect("open catalog")
    }

    #[tokio::test]
    async fn conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        conformance::data_catalog_suite(&open(dir.path()), "sqlite").await;
    }

    #[tokio::test]
    async fn suite_passes_twice_on_one_file() {
        // Shared-backend mode: a second run with another `unique` must not be
        // confused by the first run's rows.
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = open(dir.path());
        conformance::data_catalog_suite(&catalog, "run1").await;
        conformance::data_catalog_suite(&catalog, "run2").await;
    }

    #[tokio::test]
    async fn two_handles_see_each_others_publishes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = open(dir.path());
        let b = open(dir.path());
        let table = conformance::sample_table("handles");
        a.upsert_table(&table).await.expect("upsert via a");
        assert_eq!(b.table("handles").await.expect("table via b"), Some(table));

        let release = conformance::sample_release("r-a", "handles", "t-1", &["raw/a"]);
        assert_eq!(
            a.publish_release(&release).await.expect("publish via a"),
            PublishOutcome::Published
        );
        assert_eq!(
            b.release("r-a").await.expect("read via b"),
            Some(release.clone())
        );
        assert_eq!(
            b.publish_release(&release).await.expect("republish via b"),
            PublishOutcome::AlreadyPublished
        );
        let clash = conformance::sample_release("r-b", "handles", "t-1", &["raw/a"]);
        let err = b
            .publish_release(&clash)
            .await
            .expect_err("input taken via a");
        assert!(matches!(err, Error::Conflict(_)), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_publishes_of_one_release_publish_it_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = open(dir.path());
        let b = open(dir.path());
        a.upsert_table(&conformance::sample_table("race"))
            .await
            .expect("upsert");
        for i in 0..20 {
            let release = conformance::sample_release(
                &format!("r-{i}"),
                "race",
                "t-1",
                &[&format!("raw/{i}")],
            );
            let (ra, rb) = tokio::join!(a.publish_release(&release), b.publish_release(&release));
            let mut outcomes = [ra.expect("publish a"), rb.expect("publish b")];
            outcomes.sort_by_key(|o| *o == PublishOutcome::AlreadyPublished);
            assert_eq!(
                outcomes,
                [PublishOutcome::Published, PublishOutcome::AlreadyPublished]
            );
        }
        assert_eq!(
            a.releases(&ReleaseFilter::default())
                .await
                .expect("list")
                .len(),
            20
        );
    }

    #[tokio::test]
    async fn reopened_catalog_keeps_its_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = conformance::sample_table("kept");
        let release = conformance::sample_release("r-kept", "kept", "t-1", &["raw/kept"]);
        {
            let catalog = open(dir.path());
            catalog.upsert_table(&table).await.expect("upsert");
            catalog.publish_release(&release).await.expect("publish");
            assert!(catalog.remove_release("r-kept").await.expect("remove"));
            catalog
                .publish_release(&conformance::sample_release(
                    "r-kept-2",
                    "kept",
                    "t-1",
                    &["raw/kept-2"],
                ))
                .await
                .expect("publish second");
        }
        let catalog = open(dir.path());
        assert_eq!(catalog.path(), dir.path().join("catalog.sqlite"));
        assert_eq!(catalog.tables().await.expect("tables"), vec![table]);
        assert!(catalog.release("r-kept").await.expect("read").is_none());
        assert!(catalog.release("r-kept-2").await.expect("read").is_some());
        let ledger = catalog
            .released_objects(&["raw/kept".into(), "raw/kept-2".into()])
            .await
            .expect("ledger");
        assert_eq!(ledger.get("raw/kept").map(String::as_str), Some("r-kept"));
        assert_eq!(
            ledger.get("raw/kept-2").map(String::as_str),
            Some("r-kept-2")
        );
    }

    #[tokio::test]
    async fn open_in_state_dir_creates_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a/b/state");
        let catalog = open(&nested);
        assert!(nested.join(SqliteCatalog::FILE_NAME).is_file());
        assert!(catalog.tables().await.expect("tables").is_empty());
    }

    #[tokio::test]
    async fn malformed_rows_are_invalid_not_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = open(dir.path());
        catalog
            .upsert_table(&conformance::sample_table("bad"))
            .await
            .expect("upsert");
        catalog
            .publish_release(&conformance::sample_release(
                "r-bad",
                "bad",
                "t-1",
                &["raw/bad"],
            ))
            .await
            .expect("publish");

        let raw = Connection::open(catalog.path()).expect("raw open");
        raw.execute("UPDATE release_files SET row_count = -1", [])
            .expect("corrupt");
        let err = catalog.release("r-bad").await.expect_err("negative count");
        assert!(matches!(err, Error::Invalid(_)), "{err}");

        raw.execute("UPDATE release_files SET row_count = 1", [])
            .expect("fix");
        raw.execute("UPDATE releases SET report = '{not json'", [])
            .expect("corrupt");
        let err = catalog
            .releases(&ReleaseFilter::default())
            .await
            .expect_err("bad json");
        assert!(matches!(err, Error::Invalid(_)), "{err}");

        raw.execute(
            "UPDATE releases SET report = '{}', published_at = 'yesterday'",
            [],
        )
        .expect("corrupt");
        let err = catalog.release("r-bad").await.expect_err("bad timestamp");
        assert!(matches!(err, Error::Invalid(_)), "{err}");

        raw.execute("UPDATE tables SET columns = '[{\"name\":1}]'", [])
            .expect("corrupt");
        let err = catalog.table("bad").await.expect_err("bad columns");
        assert!(matches!(err, Error::Invalid(_)), "{err}");
    }

    #[tokio::test]
    async fn malformed_releases_are_refused_before_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = open(dir.path());
        catalog
            .upsert_table(&conformance::sample_table("v"))
            .await
            .expect("upsert");
        let good = conformance::sample_release("r-v", "v", "t-1", &["raw/v1", "raw/v2"]);

        let mut cases = Vec::new();
        let mut r = good.clone();
        r.release_id = String::new();
        cases.push(("empty id", r));
        let mut r = good.clone();
        r.tenant = "t/1".into();
        cases.push(("slash in tenant", r));
        let mut r = good.clone();
        r.dt = "2026-1-5".into();
        cases.push(("unpadded dt", r));
        let mut r = good.clone();
        r.dt = "2026-02-30".into();
        cases.push(("impossible dt", r));
        let mut r = good.clone();
        r.inputs.push(r.inputs[0].clone());
        cases.push(("duplicate input", r));
        let mut r = good.clone();
        r.records_in = u64::MAX;
        cases.push(("count over i64", r));

        for (what, release) in cases {
            let err = catalog.publish_release(&release).await.expect_err(what);
            assert!(matches!(err, Error::Invalid(_)), "{what}: {err}");
        }
        assert!(
            catalog
                .releases(&ReleaseFilter::default())
                .await
                .expect("list")
                .is_empty()
        );
        assert!(
            catalog
                .released_objects(&["raw/v1".into(), "raw/v2".into()])
                .await
                .expect("ledger")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn glue_incompatible_tables_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = open(dir.path());
        let mut table = conformance::sample_table("g");
        table.columns.push(crate::model::Column {
            name: "tenant".into(),
            data_type: crate::model::ColumnType::String,
            comment: None,
        });
        let err = catalog
            .upsert_table(&table)
            .await
            .expect_err("column shadows partition key");
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        assert!(catalog.table("g").await.expect("read").is_none());
    }
}
