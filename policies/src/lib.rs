//! The StackPro release policy: model, field transforms, k-anonymity engine, release report.
//!
//! Pure: no I/O but reading a policy file and its hierarchy tables. The pipeline streams raw
//! records through a [`BatchBuilder`] (deny-by-default field rules, keyed hashing, masking,
//! truncation, level-0 quasi-identifiers), feeds a [`QiHistogram`], asks it for a
//! [`Decision`], and publishes only what the decision releases.
//!
//! Guarantees:
//! - A field the policy does not name is never output.
//! - A hashed field is an HMAC-SHA256 under a secret key, never a bare digest.
//! - A released decision's classes all hold at least k distinct subjects; otherwise the
//!   release is withheld.
//!
//! ```
//! use policies::{Policy, hierarchy::Hierarchy, Value};
//! let policy = Policy::default_v2().unwrap();
//! let contacts = policy.dataset("contacts").unwrap();
//! let ip = contacts.qi_rules().find(|r| r.column == "ip").unwrap();
//! let h: &Hierarchy = ip.hierarchy().unwrap();
//! assert_eq!(h.apply(&Value::Str("203.0.113.57".into()), "ip", 1).unwrap().as_deref(), Some("203.0.0.0"));
//! ```

pub mod batch;
pub mod error;
pub mod hash;
pub mod hierarchy;
pub mod ip;
pub mod kanon;
pub mod pii;
pub mod policy;
pub mod report;
pub mod subject;
pub mod text;
pub mod value;

pub use batch::{
    BatchBuilder, Pick, Rejection, StagedBatch, curated_schema, release_batch, release_order_keys,
    release_rows,
};
pub use error::{Error, Result};
pub use hash::{KeyedHasher, Pseudonymizer};
pub use kanon::{Decision, FilePlan, Outcome, QiHistogram, QiKeys};
pub use policy::{DatasetRules, Policy};
pub use report::ReleaseReport;
pub use value::Value;

#[cfg(test)]
mod golden;

#[cfg(test)]
mod proptests;
