//! `stackpro watch`: releases triggered by files appearing in a local raw folder.
//!
//! Events from the OS (inotify through the `notify` crate) are collected until the folder
//! has been quiet for `settle` (a producer writing a file in several steps, or many files
//! at once, makes one release per partition, not one per event); each partition touched
//! is then released under its lease with everything pending in it. What was pending when
//! the watch started is released first, so nothing written while no watcher ran waits.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::worker::{RunSummary, Worker};
use crate::{Error, Result};

/// How often a watch sweeps the raw folder when a dataset uses window batching.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

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
    let initial = worker.sweep(holder).await?;
    if !initial.partitions.is_empty() {
        report(&initial);
    }

    // A window seals with no file event to announce it: with window batching, sweep on a
    // timer too.
    let mut sweeps = tokio::time::interval(SWEEP_EVERY);
    sweeps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sweeps.reset();
    let windows = worker.config.has_windows();
    tokio::pin!(stop);
    loop {
        let first = tokio::select! {
            () = &mut stop => break,
            _ = sweeps.tick(), if windows => {
                match worker.sweep(holder).await {
                    Ok(swept) => {
                        if swept.partitions.iter().any(|p| p.status != crate::worker::Status::NothingNew && p.status != crate::worker::Status::Waiting) {
                            report(&swept);
                        }
                    }
                    // A passing outage must not end the watcher: the next sweep retries.
                    Err(e) => tracing::error!(error = %catalog::chain(&e), "sweep failed"),
                }
                continue;
            }
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
        // A folder made and filled at once (`mkdir -p` then a rename, a copied partition)
        // is filled before the OS watch on it exists: its files raise no event of their
        // own, so the folder's event stands for what is in it.
        let touched: Vec<PathBuf> = touched.into_iter().flat_map(files_at).collect();
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

/// `path` itself when it is not a folder; else every file below it. Symlinks are
/// neither followed nor listed (a raw root never follows one).
fn files_at(path: PathBuf) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = Vec::new();
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => folders.push(path),
        Ok(m) if m.file_type().is_symlink() => {}
        // A file, or gone already: its name still says which partition it touched.
        _ => files.push(path),
    }
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => folders.push(entry.path()),
                Ok(t) if t.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files
}
