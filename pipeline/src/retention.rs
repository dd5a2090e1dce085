//! Retention on any backend: deletes raw and quarantined objects older than the policy's
//! `retention.raw_days`, and curated releases older than `retention.curated_days` (catalog
//! entry first, then files), plus curated objects that no live release owns once they are
//! past the curated age (files of a crashed or withheld release).
//!
//! On AWS, `stackpro setup` also writes the same ages as S3 lifecycle rules, so objects
//! expire even if no sweeper runs; the sweep keeps the catalog in step with them.

use chrono::{DateTime, TimeDelta, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::Serialize;

use crate::worker::Worker;
use crate::{Error, Result};

/// One removed (or, in a dry run, expired) object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiredObject {
    pub url: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// One removed (or expired) release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiredRelease {
    pub release_id: String,
    pub dataset: String,
    pub tenant: String,
    pub dt: String,
    pub published_at: DateTime<Utc>,
    pub files: usize,
}

/// What a sweep removed (or would remove, when `dry_run`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    pub dry_run: bool,
    pub raw_cutoff: Option<DateTime<Utc>>,
    pub curated_cutoff: Option<DateTime<Utc>>,
    pub raw: Vec<ExpiredObject>,
    pub quarantine: Vec<ExpiredObject>,
    pub releases: Vec<ExpiredRelease>,
    /// Curated objects past the curated age that belong to no live release.
    pub curated_orphans: Vec<ExpiredObject>,
}

impl SweepReport {
    /// Bytes of all objects listed.
    pub fn bytes(&self) -> u64 {
        self.raw
            .iter()
            .chain(&self.quarantine)
            .chain(&self.curated_orphans)
            .map(|o| o.size)
            .sum()
    }
}

fn cutoff(now: DateTime<Utc>, days: u32) -> Result<DateTime<Utc>> {
    TimeDelta::try_days(i64::from(days))
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| Error::Config(format!("retention of {days} days is out of range")))
}

/// Objects under `store` last modified before `cutoff`, except those under `keep`.
async fn expired(
    location: &catalog::storage::Location,
    cutoff: DateTime<Utc>,
    keep: &[Path],
) -> Result<Vec<(Path, ExpiredObject)>> {
    let mut out = Vec::new();
    let mut listing = location.store.list(None);
    while let Some(meta) = listing.try_next().await? {
        if meta.last_modified >= cutoff || keep.iter().any(|k| meta.location.prefix_matches(k)) {
            continue;
        }
        out.push((
            meta.location.clone(),
            ExpiredObject {
                url: location.url_of(&meta.location),
                size: meta.size,
                last_modified: meta.last_modified,
            },
        ));
    }
    out.sort_by(|a, b| a.1.url.cmp(&b.1.url));
    Ok(out)
}

/// Sweeps the worker's locations and catalog as of `now`.
pub async fn sweep(worker: &Worker, now: DateTime<Utc>, dry_run: bool) -> Result<SweepReport> {
    let retention = &worker.policy.retention;
    let raw_cutoff = cutoff(now, retention.raw_days)?;
    let curated_cutoff = cutoff(now, retention.curated_days)?;
    let mut report = SweepReport {
        dry_run,
        raw_cutoff: Some(raw_cutoff),
        curated_cutoff: Some(curated_cutoff),
        ..SweepReport::default()
    };

    for (location, list) in [
        (&worker.raw, &mut report.raw),
        (&worker.quarantine, &mut report.quarantine),
    ] {
        for (path, object) in expired(location, raw_cutoff, &[]).await? {
            if !dry_run {
                delete(location, &path).await?;
            }
            list.push(object);
        }
    }

    // Releases: the catalog entry goes first, so no reader is ever pointed at deleted files.
    let releases = worker
        .catalog
        .releases(&catalog::ReleaseFilter::default())
        .await?;
    let mut live = Vec::new();
    for release in releases {
        let prefix = worker.curated.path_of(&release.location).ok_or_else(|| {
            Error::Inconsistent(format!(
                "release {} lives at {}, outside the curated root {}",
                release.release_id, release.location, worker.curated.url
            ))
        })?;
        // In a dry run an expired release's files stay, so they are not "unowned" either.
        if release.published_at >= curated_cutoff || dry_run {
            live.push(prefix.clone());
        }
        if release.published_at >= curated_cutoff {
            continue;
        }
        if !dry_run {
            worker.catalog.remove_release(&release.release_id).await?;
            let mut listing = worker.curated.store.list(Some(&prefix));
            let mut paths = Vec::new();
            while let Some(meta) = listing.try_next().await? {
                paths.push(meta.location);
            }
            for path in paths {
                delete(&worker.curated, &path).await?;
            }
        }
        report.releases.push(ExpiredRelease {
            release_id: release.release_id.clone(),
            dataset: release.dataset.clone(),
            tenant: release.tenant.clone(),
            dt: release.dt.clone(),
            published_at: release.published_at,
            files: release.files.len(),
        });
    }
    for (path, object) in expired(&worker.curated, curated_cutoff, &live).await? {
        if !dry_run {
            delete(&worker.curated, &path).await?;
        }
        report.curated_orphans.push(object);
    }
    Ok(report)
}

async fn delete(location: &catalog::storage::Location, path: &Path) -> Result<()> {
    match location.store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
