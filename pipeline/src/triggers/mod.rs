//! Event-driven entry points: what announces new raw objects, mapped onto the worker's
//! [`Worker::release_pending`](crate::Worker::release_pending) (the same release code as
//! `stackpro run`, each partition under its lease).
//!
//! - [`events`]: S3 notifications in their direct, SNS-wrapped and EventBridge forms.
//! - [`watch`]: a local raw folder, on the embedded default.
//! - `queue` (feature `aws`): S3 notifications on an SQS queue.

pub mod events;
#[cfg(feature = "aws")]
pub mod lambda;
#[cfg(feature = "aws")]
pub mod queue;
pub mod watch;

use std::collections::BTreeSet;

use catalog::layout::{PartitionKey, parse_raw_path};

/// The partition of an object named `name` under the raw root, if it is a raw object of
/// the layout; anything else is logged and skipped, never an error loop.
#[must_use]
pub fn partition_of(name: &str) -> Option<PartitionKey> {
    match object_store::path::Path::parse(name) {
        Ok(path) => match parse_raw_path(&path) {
            Ok(raw) => Some(raw.partition),
            Err(reason) => {
                tracing::info!(object = name, %reason, "ignored: not a raw object of the layout");
                None
            }
        },
        Err(_) => {
            tracing::info!("ignored an object whose name is not a valid object path");
            None
        }
    }
}

/// The partitions of `names`, deduplicated.
#[must_use]
pub fn partitions_of<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<PartitionKey> {
    names.into_iter().filter_map(partition_of).collect()
}
