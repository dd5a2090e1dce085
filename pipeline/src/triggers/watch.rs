//! `stackpro watch`: releases triggered by files appearing in a local raw folder.
//!
//! Events from the OS (inotify through the `notify` crate) are collected until the folder
//! has been quiet for `settle` (a producer writing a file in several steps, or many files
//! at once, makes one release per partition, not one per event); each partition touched
//! is then released under its lease with everything pending in it. What was pending when
//! the watch started is released first, so nothing written while no watcher ran waits.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use catalog::layout::PartitionKey;
use notify::{RecursiveMode, Watcher};

use crate::worker::{RunSummary, Worker};
use crate::{Error, Result};

/// Watches `root` until `stop` resolves; `report` is told each batch's results.
///
/// # Errors
/// The folder cannot be watched, or a release step fails for a reason no retry cures
/// (a per-partition failure is reported, not returned).
pub async fn watch(
    worker: &Worker,
    root: &Path,
    holder: &str,
    settle: Duration,
    stop: impl Future<Output = ()>,
    mut report: impl FnMut(&RunSummary),
) -> Result<()> {
    let root = root
        .canonicalize()
        .map_err(|e| Error::Config(format!("cannot watch {}: {e}", root.display())))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(e) if !e.kind.is_access() && !e.kind.is_remove() => {
                for p in e.paths {
                    let _ = tx.send(p);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "folder watch error"),
        })
        .map_err(|e| Error::Config(format!("cannot watch {}: {e}", root.display())))?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|e| Error::Config(format!("cannot watch {}: {e}", root.display())))?;
    tracing::info!(root = %root.display(), "watching for raw objects");

    // What is already there.
    let (pending, _) = crate::sources::list_raw(&worker.raw).await?;
    let initial: BTreeSet<PartitionKey> = pending.into_keys().collect();
    if !initial.is_empty() {
        report(&worker.release_pending(&initial, holder).await?);
    }

    tokio::pin!(stop);
    loop {
        let first = tokio::select! {
            () = &mut stop => break,
            p = rx.recv() => match p { Some(p) => p, None => break },
        };
        let mut touched = vec![first];
        // Until quiet for `settle`.
        loop {
            tokio::select! {
                () = &mut stop => return Ok(()),
                p = tokio::time::timeout(settle, rx.recv()) => match p {
                    Ok(Some(p)) => touched.push(p),
                    Ok(None) | Err(_) => break,
                },
            }
        }
        let names: Vec<String> = touched
            .iter()
            .filter_map(|p| p.strip_prefix(&root).ok())
            .filter_map(|p| p.to_str().map(str::to_owned))
            .collect();
        let partitions = super::partitions_of(names.iter().map(String::as_str));
        if partitions.is_empty() {
            continue;
        }
        report(&worker.release_pending(&partitions, holder).await?);
    }
    Ok(())
}
