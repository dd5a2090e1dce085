//! `stackpro worker --queue URL` (feature `aws`): releases triggered by S3 event
//! notifications on an SQS queue.
//!
//! Each message is handled on its own: its events are mapped onto partitions of the raw
//! root (keys elsewhere are ignored with a log line), the partitions are released under
//! their leases while a heartbeat keeps the message invisible, and the message is deleted
//! only once every partition's outcome is durable (published, or nothing to publish). A
//! partition another worker holds (`busy`) returns its message to the queue soon; a failed
//! release, or a body that is no S3 notification (a poison message), is left alone, so
//! the queue redelivers it and, past its redrive policy's receive count, moves it to the
//! dead-letter queue. The failure is logged either way.

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::Client;

use crate::worker::{Status, Worker};
use crate::{Error, Result};

/// How the consumer polls.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// Long-poll wait (at most 20 s).
    pub wait: Duration,
    /// Visibility of a received message; renewed at a third of it while releasing.
    pub visibility: Duration,
    /// Stop after this long without a message (`None`: run until stopped).
    pub idle_exit: Option<Duration>,
    /// Sweep the whole raw root this often (`None`: never). Window batching needs it: a
    /// day seals with time, not with an event, so its last message may have come and gone
    /// (deleted as `waiting`) before the seal.
    pub sweep_every: Option<Duration>,
}

/// What the consumer did, for its exit report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    pub messages: u64,
    pub deleted: u64,
    pub returned: u64,
    pub poison: u64,
    pub published: u64,
    pub sweeps: u64,
}

fn aws(op: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Catalog(catalog::Error::Aws {
        service: "sqs",
        message: op.to_owned(),
        retryable: true,
        source: Some(Box::new(e)),
    })
}

/// Consumes `queue_url` until `stop` resolves (or the idle limit passes). A stop finishes
/// the release in progress (its message is then deleted or left as usual) and hands the
/// rest of the received batch back to the queue at once.
///
/// # Errors
/// The queue cannot be read at all; a failure of one message is logged and left to the
/// queue.
pub async fn consume(
    worker: &Worker,
    client: &Client,
    queue_url: &str,
    holder: &str,
    settings: QueueSettings,
    stop: impl Future<Output = ()>,
) -> Result<QueueStats> {
    let mut stats = QueueStats::default();
    let visibility = i32::try_from(settings.visibility.as_secs().max(1)).unwrap_or(300);
    let mut idle_since = std::time::Instant::now();
    let mut last_sweep: Option<std::time::Instant> = None;
    tokio::pin!(stop);
    // Once `stop` has resolved it is not polled again.
    let mut stopping = false;
    loop {
        if stopping {
            break;
        }
        if let Some(every) = settings.sweep_every
            && last_sweep.is_none_or(|t| t.elapsed() >= every)
        {
            last_sweep = Some(std::time::Instant::now());
            stats.sweeps += 1;
            match worker.sweep(holder).await {
                Ok(summary) => stats.published += summary.count(Status::Published) as u64,
                // The next sweep, or the next message, tries again.
                Err(e) => tracing::error!(error = %e, "sweep failed"),
            }
        }
        if settings
            .idle_exit
            .is_some_and(|limit| idle_since.elapsed() >= limit)
        {
            break;
        }
        let received = tokio::select! {
            () = &mut stop => break,
            r = client
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(i32::try_from(settings.wait.as_secs().min(20)).unwrap_or(20))
                .visibility_timeout(visibility)
                .send() => r.map_err(|e| aws("ReceiveMessage", e))?,
        };
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        // Every message of the batch stays invisible until it is handled: the batch is
        // handled one message at a time, and a message waiting its turn must not go back
        // to the queue (another worker would take it, and its receipt here go stale).
        let live: std::sync::Arc<std::sync::Mutex<Vec<String>>> =
            std::sync::Arc::new(std::sync::Mutex::new(
                messages
                    .iter()
                    .filter_map(|m| m.receipt_handle().map(str::to_owned))
                    .collect(),
            ));
        let heartbeat = {
            let (client, queue, live) = (client.clone(), queue_url.to_owned(), live.clone());
            let every = (settings.visibility / 3).max(Duration::from_secs(1));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let receipts = live.lock().map(|l| l.clone()).unwrap_or_default();
                    for receipt in receipts {
                        // Handled since the copy (handed back, deleted): leave it be.
                        if !live.lock().is_ok_and(|l| l.contains(&receipt)) {
                            continue;
                        }
                        let _ = client
                            .change_message_visibility()
                            .queue_url(&queue)
                            .receipt_handle(&receipt)
                            .visibility_timeout(visibility)
                            .send()
                            .await;
                    }
                }
            })
        };
        let done = |receipt: &str| {
            if let Ok(mut l) = live.lock() {
                l.retain(|r| r != receipt);
            }
        };
        for m in messages {
            let (Some(body), Some(receipt)) = (m.body(), m.receipt_handle()) else {
                continue;
            };
            if !stopping {
                stopping = tokio::select! {
                    biased;
                    () = &mut stop => true,
                    () = std::future::ready(()) => false,
                };
            }
            if stopping {
                // Stopping: the rest of the batch goes straight back to the queue for
                // another worker, untouched.
                done(receipt);
                let _ = client
                    .change_message_visibility()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await;
                stats.returned += 1;
                continue;
            }
            stats.messages += 1;
            let events = match super::events::parse(body) {
                Ok(e) => e,
                Err(e) => {
                    // Left on the queue: its redrive policy moves it to the dead-letter queue.
                    tracing::error!(message = m.message_id().unwrap_or(""), error = %e, "poison message left to the dead-letter queue");
                    stats.poison += 1;
                    done(receipt);
                    continue;
                }
            };
            let partitions = super::partitions_under_root(&worker.raw.url, &events);
            let outcome = worker.release_pending(&partitions, holder).await;
            // Handled: the heartbeat lets it go (a message left alone comes back after its
            // visibility timeout).
            done(receipt);
            let summary = match outcome {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "release failed; the message stays on the queue");
                    continue;
                }
            };
            stats.published += summary.count(Status::Published) as u64;
            let busy = summary.partitions.iter().any(|p| p.status == Status::Busy);
            let failed = summary.failed();
            if failed {
                tracing::error!(
                    message = m.message_id().unwrap_or(""),
                    "a release failed; the message stays on the queue"
                );
            } else if busy {
                // Another worker is on it: back soon, to find its work in the ledger.
                stats.returned += 1;
                if let Err(e) = client
                    .change_message_visibility()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(2)
                    .send()
                    .await
                {
                    // It comes back at its visibility timeout instead.
                    tracing::warn!(error = %catalog::chain(&aws("ChangeMessageVisibility", e)), "could not return a message early");
                }
            } else {
                match client
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                {
                    Ok(_) => stats.deleted += 1,
                    // Redelivered later, it finds its work in the ledger: nothing twice.
                    Err(e) => {
                        tracing::warn!(error = %catalog::chain(&aws("DeleteMessage", e)), "could not delete a handled message");
                    }
                }
            }
        }
        heartbeat.abort();
        // Idle time counts from the end of the work, not from the receive.
        idle_since = std::time::Instant::now();
    }
    Ok(stats)
}
