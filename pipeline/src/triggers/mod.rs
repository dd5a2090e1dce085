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

/// `name` as logs may show it: an email, phone or IP in it replaced by its kind (object
/// names are the producer's, and may carry what they name), as the raw listing shows them.
fn loggable(name: &str) -> String {
    crate::sources::redacted_name(name).map_or_else(|| name.to_owned(), |(r, _)| r)
}

/// The partition of an object named `name` under the raw root, if it is a raw object of
/// the layout; anything else is logged (redacted) and skipped, never an error loop.
#[must_use]
pub fn partition_of(name: &str) -> Option<PartitionKey> {
    match object_store::path::Path::parse(name) {
        Ok(path) => match parse_raw_path(&path) {
            Ok(raw) => Some(raw.partition),
            Err(_) => {
                tracing::info!(object = %loggable(name), "ignored: not a raw object of the layout");
                None
            }
        },
        Err(_) => {
            tracing::info!("ignored an object whose name is not a valid object path");
            None
        }
    }
}

/// The partitions of the objects `events` announce under the raw root `root` (a URL);
/// objects elsewhere are logged (redacted) and skipped. The one mapping the queue worker
/// and the Lambda handler share.
#[must_use]
pub fn partitions_under_root(root: &str, events: &[events::ObjectEvent]) -> BTreeSet<PartitionKey> {
    let root = root.trim_end_matches('/');
    let mut names = Vec::with_capacity(events.len());
    for e in events {
        let url = e.url();
        match url.strip_prefix(root).and_then(|r| r.strip_prefix('/')) {
            Some(name) => names.push(name.to_owned()),
            None => {
                tracing::info!(bucket = %e.bucket, object = %loggable(&e.key), root, "ignored: outside the raw root")
            }
        }
    }
    partitions_of(names.iter().map(String::as_str))
}

/// The partitions of `names`, deduplicated.
#[must_use]
pub fn partitions_of<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<PartitionKey> {
    names.into_iter().filter_map(partition_of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(bucket: &str, key: &str) -> events::ObjectEvent {
        events::ObjectEvent {
            bucket: bucket.into(),
            key: key.into(),
            event_name: "ObjectCreated:Put".into(),
            size: None,
            e_tag: None,
            version_id: None,
            at: None,
        }
    }

    #[test]
    fn only_objects_under_the_root_map_to_partitions() {
        let key = "tenant=t-1/dataset=contacts/source=web/dt=2026-11-24/a.ndjson";
        let evs = [
            event("raw", &format!("pre/{key}")),
            event("raw", &format!("other/{key}")),
            event("raw2", &format!("pre/{key}")),
            event("raw", "pre/not/the/layout.ndjson"),
        ];
        let got = partitions_under_root("s3://raw/pre/", &evs);
        assert_eq!(got.len(), 1);
        let p = got.into_iter().next().expect("one");
        assert_eq!(
            (p.tenant.as_str(), p.dataset.as_str(), p.dt.as_str()),
            ("t-1", "contacts", "2026-11-24")
        );
        assert_eq!(
            partitions_under_root("s3://raw", &[event("raw", key)]).len(),
            1
        );
    }

    #[test]
    fn logged_names_carry_no_raw_identifier() {
        let shown = loggable("tenant=t-1/dataset=contacts/jane.doe@example.com.ndjson");
        assert!(!shown.contains("jane.doe@example.com"), "{shown}");
    }
}
