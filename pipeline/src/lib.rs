//! The StackPro ingest worker: raw records → policy release → curated Parquet → catalog.
//!
//! Data flows sources → transforms → sinks:
//! - [`sources`] lists raw objects by partition and decodes NDJSON / CSV (gzip, zstd),
//!   quarantining what cannot be read; [`json_record`] turns an NDJSON line into the
//!   policy's input slots;
//! - [`release`] runs a release: policy transforms ([`policies`]), the k-anonymity decision,
//!   zstd Parquet parts and the report, then the catalog entry (atomic publish);
//! - [`worker`] plans a run: pending partitions, consent, retries, metrics ([`metrics`]).
//!
//! [`query`] exposes published releases to DataFusion SQL, [`verify`] re-checks published
//! files from scratch, [`synth`] makes realistic raw data and [`demo`] ties it together.
//! [`retention`] sweeps expired objects and releases; with the `aws` feature, `aws` adds
//! `s3://` locations, CloudWatch metrics and `stackpro setup`.

pub mod config;
pub mod context;
pub mod demo;
pub mod error;
pub mod ledger;
pub mod query;
pub mod release;
pub mod retention;
#[cfg(feature = "aws")]
pub mod setup;
pub mod sinks;
pub mod sources;
pub mod synth;
pub mod transforms;
pub mod verify;
pub mod worker;

pub use config::Config;
pub use error::{Error, Result};
pub use worker::{RunSummary, Status, Worker};
