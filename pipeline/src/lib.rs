//! The StackPro ingest worker: raw records → policy release → curated Parquet → catalog.
//!
//! Data flows sources → transforms → release → sinks:
//! - [`sources`] lists raw objects by partition and decodes NDJSON / CSV (gzip, zstd);
//!   [`sources::json_record`] turns an NDJSON line into the policy's input slots;
//! - [`transforms`] is pass 1: policy transforms ([`policies`]), the record ledger
//!   ([`ledger`]), the quasi-identifier histogram and the staged rows;
//! - [`release`] decides (the k-anonymity engine), runs pass 2 and writes the report;
//! - [`sinks`] write curated Parquet, the quarantine and the metrics datapoints;
//! - [`worker`] plans a run: pending partitions, consent, retries, and publishes each
//!   release in the catalog (atomic publish). [`context`] is what a run's releases share.
//!
//! [`triggers`] are the event-driven entry points (S3 notifications, a watched folder),
//! each partition under a lease ([`worker::Worker::release_pending`]).
//!
//! [`query`] exposes published releases to DataFusion SQL, [`verify`] re-checks published
//! files from scratch, [`synth`] makes realistic raw data and [`demo`] ties it together.
//! [`retention`] sweeps expired objects and releases; with the `aws` feature, `setup`
//! creates or updates every AWS resource. Storage, the object layout and backend wiring
//! are `catalog`'s (`catalog::storage`, `catalog::layout`, `catalog::connect`).

pub mod batching;
pub mod config;
pub mod context;
pub mod demo;
pub mod error;
pub mod ledger;
pub mod memory;
pub mod query;
pub mod release;
pub mod retention;
#[cfg(feature = "aws")]
pub mod setup;
pub mod sinks;
pub mod sources;
pub mod synth;
pub mod transforms;
pub mod triggers;
pub mod verify;
pub mod worker;

pub use config::Config;
pub use error::{Error, Result};
pub use worker::{RunSummary, Status, Worker};
