//! Metadata for the StackPro Data Platform: the data catalog (table schemas,
//! published releases, the raw-object ledger) and the control plane (consent).
//!
//! Each concern is a small trait — [`DataCatalog`], [`ConsentStore`] — with an
//! embedded SQLite implementation beside it ([`SqliteCatalog`],
//! [`SqliteConsentStore`]) and an AWS one behind the `aws` feature (`aws::GlueCatalog`:
//! Glue tables and partitions, Lake Formation tags, a DynamoDB ledger;
//! `aws::DynamoConsentStore`). Both pass the same conformance suites (`conformance`, built
//! for this crate's tests and with the `testing` feature), and [`storage`] opens the object
//! stores every crate reads and writes.
//!
//! # Guarantees
//!
//! - **Atomic publish.** A release, its files and its ledger rows become
//!   visible together or not at all; a crash leaves nothing half-published.
//! - **Idempotence.** Publishing an already published release id returns
//!   [`PublishOutcome::AlreadyPublished`] and changes nothing, so reruns are safe.
//! - **Ledger: a raw record is released at most once.** Every raw object a
//!   release consumes is recorded against that release. A release reusing a
//!   recorded object is refused with [`Error::Conflict`] and writes nothing;
//!   ledger rows survive [`DataCatalog::remove_release`] (retention).
//! - **Default-deny consent.** No stored [`ConsentSetting`] means not granted
//!   ([`ConsentStoreExt::is_granted`]).
//!
//! # Example
//!
//! ```
//! use catalog::{ConsentStoreExt, DataCatalog, ReleaseFilter, SqliteCatalog, SqliteConsentStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> catalog::Result<()> {
//! let state = tempfile::tempdir()?;
//! let catalog = SqliteCatalog::open_in_state_dir(state.path())?;
//! let consent = SqliteConsentStore::open_in_state_dir(state.path())?;
//!
//! assert!(catalog.releases(&ReleaseFilter::default()).await?.is_empty());
//! assert!(!consent.is_granted("t-0042", "contacts").await?); // default deny
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "aws")]
pub mod aws;
pub mod aws_settings;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod connect;
pub mod consent;
pub mod data_catalog;
pub mod error;
pub mod flags;
pub mod layout;
pub mod lease;
pub mod market;
pub mod metrics;
pub mod model;
pub mod sqlite;
pub mod storage;

pub use aws_settings::{AwsSettings, Backend};
pub use consent::*;
pub use data_catalog::*;
pub use error::{Error, Result, chain};
pub use model::*;
pub use sqlite::*;
