//! The `etl-anonymize` Lambda handler (feature `aws`): S3 events delivered directly, and
//! SQS batches of S3 notifications with partial batch failures (only the records that
//! failed are redelivered, so one bad object does not redeliver the rest), and EventBridge
//! scheduled events (`"detail-type": "Scheduled Event"`), which sweep the whole raw root so
//! a `window` day that sealed with time, not with an event, is released.

use serde_json::{Value, json};

use crate::worker::{Status, Worker};

/// Why an invocation failed as a whole (direct S3 events: Lambda retries the event).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvocationError(pub String);

/// The partitions a notification body names under the worker's raw root.
fn partitions_of_body(
    worker: &Worker,
    body: &str,
) -> Result<std::collections::BTreeSet<catalog::layout::PartitionKey>, String> {
    let events = super::events::parse(body).map_err(|e| e.to_string())?;
    Ok(super::partitions_under_root(&worker.raw.url, &events))
}

/// Whether every partition's outcome is durable (nothing to retry).
fn durable(summary: &crate::worker::RunSummary) -> bool {
    !summary.failed() && !summary.partitions.iter().any(|p| p.status == Status::Busy)
}

/// Handles one invocation's payload.
///
/// # Errors
/// A direct S3 event whose release failed (Lambda retries it); SQS batches never fail as
/// a whole, they list the failed records in `batchItemFailures`.
pub async fn handle(
    worker: &Worker,
    holder: &str,
    payload: Value,
) -> Result<Value, InvocationError> {
    if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        let summary = worker
            .sweep(holder)
            .await
            .map_err(|e| InvocationError(e.to_string()))?;
        // A busy partition is another invocation's; the next schedule sees what is left.
        if summary.failed() {
            return Err(InvocationError("a release of the sweep failed".into()));
        }
        return Ok(json!({
            "swept": summary.partitions.len(),
            "published": summary.count(Status::Published),
        }));
    }
    let records = payload.get("Records").and_then(Value::as_array);
    let is_sqs = records.is_some_and(|r| {
        r.iter()
            .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
    });
    if is_sqs {
        let mut failures = Vec::new();
        for r in records.into_iter().flatten() {
            let id = r
                .get("messageId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let body = r.get("body").and_then(Value::as_str).unwrap_or("");
            let ok = match partitions_of_body(worker, body) {
                Err(reason) => {
                    tracing::error!(message = %id, %reason, "poison record: left to the redrive policy");
                    false
                }
                Ok(partitions) => match worker.release_pending(&partitions, holder).await {
                    Ok(summary) => durable(&summary),
                    Err(e) => {
                        tracing::error!(message = %id, error = %e, "release failed");
                        false
                    }
                },
            };
            if !ok {
                failures.push(json!({"itemIdentifier": id}));
            }
        }
        return Ok(json!({"batchItemFailures": failures}));
    }
    let partitions = partitions_of_body(worker, &payload.to_string()).map_err(InvocationError)?;
    let summary = worker
        .release_pending(&partitions, holder)
        .await
        .map_err(|e| InvocationError(e.to_string()))?;
    if !durable(&summary) {
        return Err(InvocationError(
            "a release failed or a partition is busy: retry the event".into(),
        ));
    }
    Ok(json!({"published": summary.count(Status::Published)}))
}
