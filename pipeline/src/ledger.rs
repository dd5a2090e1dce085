//! The ledger of released records: each raw record is released at most once (DESIGN
//! invariant 2), whatever object name, partition or day it comes back under.
//!
//! A record's identity is its policy-named id field (`event_id`, `order_id`) within its
//! tenant and dataset, fingerprinted under a key derived from the master key
//! ([`policies::KeyedHasher::record_fingerprint`], 128 bits: a collision between two
//! records is negligible). Each published release leaves a file of the sorted
//! fingerprints of every record it consumed (published or suppressed) under the curated
//! root, `_ledger/dataset={d}/tenant={t}/release={id}.fp`, written before the release is
//! published. Only releases the catalog lists as published count: the file of a release
//! that crashed before its publish is ignored, so its rerun does not skip its own records.
//!
//! A release loads the fingerprints of the tenant-dataset's releases published within the
//! retention window (the longer of raw and curated retention) into one sorted array (16
//! bytes a record) and skips, in pass 1, every
//! record found there or seen earlier in the same release; the report counts them as
//! `already_released`. The skipped records are not quarantined: they were not bad, they
//! were released before.
//!
//! Cost: one hash-set insert per record (the release's own fingerprints), one binary
//! search per record when earlier releases exist, and 16 bytes per record of the window
//! in memory. At a million records a day over a 90-day window that array is 1.4 GiB,
//! past the memory target; the README states the limit.

use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use catalog::{DataCatalog, ReleaseFilter};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use policies::StagedBatch;
use rustc_hash::FxHashSet;

use crate::location::Location;
use crate::sources::PartitionKey;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"SPRL\x01\0\0\0";

/// Where a release's fingerprints live under the curated root.
pub fn ledger_path(partition: &PartitionKey, release_id: &str) -> Path {
    Path::from(format!(
        "_ledger/dataset={}/tenant={}/release={release_id}.fp",
        partition.dataset, partition.tenant
    ))
}

/// The fingerprints of records already released for one tenant-dataset, and of those
/// admitted to the release being made.
#[derive(Debug, Default)]
pub struct RecordLedger {
    /// Sorted fingerprints of earlier releases.
    prior: Arc<Vec<u128>>,
    /// This release's records so far.
    seen: FxHashSet<u128>,
    /// Records skipped as already released or repeated.
    pub skipped: u64,
}

impl RecordLedger {
    /// The ledger for a new release of `partition`: the fingerprints of every release of
    /// its tenant and dataset published in the last `window_days` days, but `release_id`
    /// itself (a rerun of a release completes it; it must not skip its own records).
    pub async fn load(
        catalog: &dyn DataCatalog,
        curated: &Location,
        partition: &PartitionKey,
        release_id: &str,
        window_days: u32,
    ) -> Result<Self> {
        let since = chrono::Utc::now() - chrono::Duration::days(i64::from(window_days));
        let releases = catalog
            .releases(&ReleaseFilter {
                dataset: Some(partition.dataset.clone()),
                tenant: Some(partition.tenant.clone()),
            })
            .await?;
        let mut prior: Vec<u128> = Vec::new();
        for r in releases
            .iter()
            .filter(|r| r.release_id != release_id && r.published_at >= since)
        {
            let path = ledger_path(partition, &r.release_id);
            let bytes = match curated.store.get(&path).await {
                Ok(got) => got.bytes().await?,
                // A release published before records had a ledger (or by a policy that
                // names no record id) has no file: it adds nothing.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            prior.extend(parse(&bytes).ok_or_else(|| {
                Error::Task(format!(
                    "the record ledger of release {} is corrupt",
                    r.release_id
                ))
            })?);
        }
        prior.sort_unstable();
        prior.dedup();
        Ok(Self {
            prior: Arc::new(prior),
            seen: FxHashSet::default(),
            skipped: 0,
        })
    }

    /// Whether a record of this fingerprint is new: neither released before nor already
    /// admitted to this release. Admits it.
    fn admit_one(&mut self, fingerprint: u128) -> bool {
        let fresh =
            self.prior.binary_search(&fingerprint).is_err() && self.seen.insert(fingerprint);
        if !fresh {
            self.skipped += 1;
        }
        fresh
    }

    /// The records of `staged` that are new (see [`RecordLedger::admit_one`]), in order.
    /// A batch without record ids (the dataset names none) passes whole.
    pub fn admit(&mut self, staged: StagedBatch) -> Result<StagedBatch> {
        if staged.record_ids.is_empty() {
            return Ok(staged);
        }
        let keep: Vec<bool> = staged
            .record_ids
            .iter()
            .map(|&f| self.admit_one(f))
            .collect();
        if keep.iter().all(|&k| k) {
            return Ok(staged);
        }
        let mask = BooleanArray::from(keep.clone());
        fn pick<T: Copy>(v: &[T], keep: &[bool]) -> Vec<T> {
            v.iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| *x)
                .collect()
        }
        Ok(StagedBatch {
            batch: filter_record_batch(&staged.batch, &mask)?,
            quasi_identifiers: staged.quasi_identifiers.retain(&keep),
            subjects: pick(&staged.subjects, &keep),
            record_ids: pick(&staged.record_ids, &keep),
        })
    }

    /// Records admitted to this release.
    pub fn admitted(&self) -> usize {
        self.seen.len()
    }

    /// Writes this release's fingerprints (sorted) where later releases look for them.
    pub async fn write(
        &self,
        curated: &Location,
        partition: &PartitionKey,
        release_id: &str,
    ) -> Result<()> {
        let mut fps: Vec<u128> = self.seen.iter().copied().collect();
        fps.sort_unstable();
        let mut bytes = Vec::with_capacity(MAGIC.len() + fps.len() * 16);
        bytes.extend_from_slice(MAGIC);
        for f in fps {
            bytes.extend_from_slice(&f.to_le_bytes());
        }
        curated
            .store
            .put(&ledger_path(partition, release_id), bytes.into())
            .await?;
        Ok(())
    }
}

fn parse(bytes: &[u8]) -> Option<impl Iterator<Item = u128> + '_> {
    let body = bytes.strip_prefix(MAGIC.as_slice())?;
    if body.len() % 16 != 0 {
        return None;
    }
    Some(
        body.chunks_exact(16)
            .map(|c| u128::from_le_bytes(c.try_into().unwrap_or([0; 16]))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_prior_records_are_skipped_and_counted() {
        let mut ledger = RecordLedger {
            prior: Arc::new(vec![5, 9]),
            ..Default::default()
        };
        let admitted: Vec<bool> = [1, 5, 1, 2, 9, 3]
            .into_iter()
            .map(|f| ledger.admit_one(f))
            .collect();
        assert_eq!(admitted, [true, false, false, true, false, true]);
        assert_eq!((ledger.skipped, ledger.admitted()), (3, 3));
    }

    #[test]
    fn a_ledger_file_reads_back_and_a_damaged_one_is_refused() {
        let mut bytes = MAGIC.to_vec();
        for f in [1u128, u128::MAX] {
            bytes.extend_from_slice(&f.to_le_bytes());
        }
        assert_eq!(
            parse(&bytes).map(Iterator::collect::<Vec<_>>),
            Some(vec![1, u128::MAX])
        );
        assert!(parse(&bytes[..bytes.len() - 1]).is_none());
        assert!(parse(b"not a ledger").is_none());
    }
}
