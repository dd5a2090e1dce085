//! The data catalog: table schemas, published releases and the raw-object ledger.
//!
//! # Guarantees every implementation upholds
//!
//! - **Atomic publish.** [`DataCatalog::publish_release`] writes the release,
//!   its files and its ledger rows together or not at all. A reader never sees
//!   a release without its files, or ledger rows without their release.
//! - **Idempotence.** Publishing a release id that is already published
//!   returns [`PublishOutcome::AlreadyPublished`] and changes nothing, so a
//!   rerun of the same trigger is harmless.
//! - **Released at most once.** The ledger maps every raw object key to the
//!   one release that consumed it. A publish whose inputs are already in the
//!   ledger under another release fails with [`Error::Conflict`](crate::Error::Conflict)
//!   and writes nothing. Ledger rows outlive their release:
//!   [`DataCatalog::remove_release`] (retention) keeps them, so a removed
//!   release's raw objects can never be released again — not even by
//!   re-publishing the removed release id.

use std::collections::HashMap;

use crate::error::Result;
use crate::model::{PublishOutcome, Release, ReleaseFilter, TableSchema};

/// Metadata store for curated datasets: embedded SQLite ([`crate::SqliteCatalog`]), or
/// Glue + Lake Formation + DynamoDB with the `aws` feature (`aws::GlueCatalog`).
#[async_trait::async_trait]
pub trait DataCatalog: Send + Sync + std::fmt::Debug {
    /// Creates or replaces the schema of `schema.dataset`.
    ///
    /// Fails with `Invalid` if the dataset name is empty or a column name
    /// repeats (including a column named like a partition key, which Glue rejects).
    async fn upsert_table(&self, schema: &TableSchema) -> Result<()>;

    /// The schema of `dataset`, if the table exists.
    async fn table(&self, dataset: &str) -> Result<Option<TableSchema>>;

    /// All table schemas, sorted by dataset.
    async fn tables(&self) -> Result<Vec<TableSchema>>;

    /// Publishes `release` atomically: the release, its files and its ledger
    /// rows (input key -> release id) become visible together.
    ///
    /// - `Ok(AlreadyPublished)` if `release.release_id` is already published;
    ///   the stored release is kept as is (the argument is not compared).
    /// - `Err(Conflict)` if any input key is already in the ledger (released
    ///   by another release, or by this id before it was removed); nothing is written.
    /// - `Err(Invalid)` if the dataset's table does not exist, or the release
    ///   is malformed (empty id, a partition value that is not a single path
    ///   segment, `dt` not `YYYY-MM-DD`, a duplicated input key, a count over
    ///   `i64::MAX`); nothing is written.
    async fn publish_release(&self, release: &Release) -> Result<PublishOutcome>;

    /// The published release `release_id`, if any.
    async fn release(&self, release_id: &str) -> Result<Option<Release>>;

    /// Published releases matching `filter`, sorted by
    /// (dataset, tenant, dt, published_at), ties broken by release id.
    async fn releases(&self, filter: &ReleaseFilter) -> Result<Vec<Release>>;

    /// For those of `keys` that are in the ledger, the id of the release that
    /// consumed them. Keys never released are absent from the map. Handles
    /// thousands of keys per call.
    async fn released_objects(&self, keys: &[String]) -> Result<HashMap<String, String>>;

    /// Removes a release and its files from the catalog (retention), keeping
    /// its ledger rows so its raw objects are never released again. Returns
    /// whether the release existed.
    async fn remove_release(&self, release_id: &str) -> Result<bool>;

    /// Completes publishes that committed but stopped before every projection of the
    /// release was written (on AWS: the Glue partitions and Lake Formation tags). Workers
    /// call it before planning. Returns how many releases it completed. Backends whose
    /// publish is a single transaction have nothing to do.
    async fn reconcile(&self) -> Result<u64> {
        Ok(0)
    }

    /// The most raw objects one release may consume, if the backend has a limit (a
    /// DynamoDB transaction holds 100 items); the worker splits larger partitions.
    fn max_inputs_per_release(&self) -> Option<usize> {
        None
    }
}
