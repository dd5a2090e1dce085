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
//! A release loads the ledger files of the tenant-dataset's releases published within the
//! retention window (the longer of raw and curated retention) into a [`PriorLedger`]: the
//! fingerprints go to a local temp file (16 bytes a record, on disk) and only a compact
//! filter over them stays in memory (about 3.5 bytes a record: 315 MiB at a million
//! records a day over 90 days, where one sorted array of them took 1.4 GiB). Pass 1 skips
//! every record found there or seen earlier in the same release; the report counts them
//! as `already_released`. The skipped records are not quarantined: they were not bad,
//! they were released before.
//!
//! With a ledger cache (cache.rs, `{state}/ledger-cache` by default) a release copies only
//! the runs it has not seen before and reads back the filter (a segment) that the upkeep
//! after an earlier publish ([`RecordLedger::maintain_cache`]) left; without one it
//! rebuilds the filter from every run of the window.
//!
//! Cost per record: one probe of the filter, on the transform stage's cores (for a fresh
//! record it reads one small bucket in memory, about 0.2 us at 90M fingerprints; a record
//! found there is confirmed in its run with one read of 1 KiB from the temp file, about
//! 1 to 2.5 us), then one hash-set insert on the counting thread (the release's own
//! fingerprints, in order: the first occurrence wins). `cargo bench -p benches --bench
//! ledger` measures the filter; see the `prior` module for its layout.

mod cache;
mod prior;

use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use catalog::{DataCatalog, ReleaseFilter};
use object_store::ObjectStoreExt;
use policies::StagedBatch;
use rustc_hash::FxHashSet;

pub use cache::{CacheLoad, FOLD_AT, Fold, LOAD_FOLD_AT, LedgerCache};
pub use prior::{LedgerError, PriorLedger, PriorLedgerBuilder};

use crate::{Error, Result};
use catalog::layout::{PartitionKey, ledger_path};
use catalog::storage::Location;

use prior::MAGIC;

/// A ledger file: the magic, then `sorted` (ascending, distinct) as 16 bytes each,
/// little-endian.
pub fn ledger_file_bytes(sorted: &[u128]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(MAGIC.len() + sorted.len() * 16);
    bytes.extend_from_slice(MAGIC);
    for f in sorted {
        bytes.extend_from_slice(&f.to_le_bytes());
    }
    bytes
}

/// Runs `f` on a blocking thread (file I/O and the filter's passes must not stall the
/// runtime); a task that stopped (panicked) is an error naming `what`.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(format!("{what} stopped: {e}")))
}

/// The fingerprints of records already released for one tenant-dataset, and of those
/// admitted to the release being made.
#[derive(Debug, Default)]
pub struct RecordLedger {
    /// Fingerprints of earlier releases.
    prior: Arc<PriorLedger>,
    /// This release's records so far.
    seen: FingerprintSet,
    /// Records skipped as already released or repeated.
    pub skipped: u64,
}

impl RecordLedger {
    /// The ledger for a new release of `partition`: the fingerprints of every release of
    /// its tenant and dataset published in the last `window_days` days, but `release_id`
    /// itself (a rerun of a release completes it; it must not skip its own records).
    /// With `cache` (a ledger cache root), the filter comes from there when it can; a
    /// cache that fails costs a warning and the uncached load.
    pub async fn load(
        catalog: &dyn DataCatalog,
        curated: &Location,
        partition: &PartitionKey,
        release_id: &str,
        window_days: u32,
        cache: Option<&std::path::Path>,
    ) -> Result<Self> {
        let window = Self::window(catalog, partition, Some(release_id), window_days).await?;
        let started = std::time::Instant::now();
        let mut from_cache = None;
        if let Some(root) = cache {
            match Self::load_cached(curated, partition, &window, root).await {
                Ok(got) => from_cache = Some(got),
                Err(Error::Ledger(e))
                    if !matches!(e, LedgerError::Io(_) | LedgerError::Damaged(_)) =>
                {
                    // A run of the curated root is bad: the uncached load says which.
                    tracing::debug!(error = %e, "record ledger cache refused a run");
                }
                Err(e) => {
                    tracing::warn!(cache = %root.display(), error = %catalog::chain(&e), "record ledger cache unusable; loading without it");
                }
            }
        }
        let (prior, load) = match from_cache {
            Some((prior, load)) => (prior, Some(load)),
            None => (
                Self::load_uncached(curated, partition, &window).await?,
                None,
            ),
        };
        tracing::debug!(
            runs = prior.runs(),
            fingerprints = prior.len(),
            heap_bytes = prior.heap_bytes(),
            cache = ?load,
            load_ms = started.elapsed().as_millis() as u64,
            "record ledger loaded"
        );
        Ok(Self {
            prior: Arc::new(prior),
            seen: FingerprintSet::default(),
            skipped: 0,
        })
    }

    /// The releases of `partition`'s tenant and dataset published in the last
    /// `window_days` days, but `except`.
    async fn window(
        catalog: &dyn DataCatalog,
        partition: &PartitionKey,
        except: Option<&str>,
        window_days: u32,
    ) -> Result<Vec<String>> {
        let since = chrono::Utc::now() - chrono::Duration::days(i64::from(window_days));
        let releases = catalog
            .releases(&ReleaseFilter {
                dataset: Some(partition.dataset.clone()),
                tenant: Some(partition.tenant.clone()),
            })
            .await?;
        Ok(releases
            .iter()
            .filter(|r| Some(r.release_id.as_str()) != except && r.published_at >= since)
            .map(|r| r.release_id.clone())
            .collect())
    }

    /// The ledger cache's upkeep after a publish ([`LedgerCache::maintain`]): the window
    /// as it is now (the new release in it) folded into a new segment once `FOLD_AT` of
    /// its runs are outside the newest one, so that the next release's load only reads.
    /// What was written, if anything.
    pub async fn maintain_cache(
        catalog: &dyn DataCatalog,
        curated: &Location,
        partition: &PartitionKey,
        window_days: u32,
        root: &std::path::Path,
    ) -> Result<Option<CacheLoad>> {
        let window = Self::window(catalog, partition, None, window_days).await?;
        let cache = Self::cache_with_runs(curated, partition, &window, root).await?;
        Ok(blocking("folding the record ledger", move || {
            cache.maintain(&window, FOLD_AT)
        })
        .await??)
    }

    /// A ledger file of the curated root, or an empty one for a release that has none
    /// (published before records had a ledger, or by a policy that names no record id).
    async fn fetch_run(
        curated: &Location,
        partition: &PartitionKey,
        id: &str,
    ) -> Result<Option<bytes::Bytes>> {
        match curated.store.get(&ledger_path(partition, id)).await {
            Ok(got) => Ok(Some(got.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn load_cached(
        curated: &Location,
        partition: &PartitionKey,
        window: &[String],
        root: &std::path::Path,
    ) -> Result<(PriorLedger, CacheLoad)> {
        let cache = Self::cache_with_runs(curated, partition, window, root).await?;
        let window = window.to_vec();
        Ok(blocking("loading the record ledger", move || {
            cache.prior(&window, LOAD_FOLD_AT)
        })
        .await??)
    }

    /// `partition`'s ledger cache under `root`, holding a copy of the run of every
    /// release of `window` (those it lacked fetched from the curated root).
    async fn cache_with_runs(
        curated: &Location,
        partition: &PartitionKey,
        window: &[String],
        root: &std::path::Path,
    ) -> Result<LedgerCache> {
        let cache = {
            let (root, partition) = (root.to_path_buf(), partition.clone());
            blocking("opening the ledger cache", move || {
                LedgerCache::open(&root, &partition)
            })
            .await?
            .map_err(LedgerError::Io)?
        };
        let held = {
            let cache = cache.clone();
            blocking("listing the ledger cache", move || cache.runs()).await??
        };
        for id in window {
            if held.contains_key(id) {
                continue;
            }
            let bytes = Self::fetch_run(curated, partition, id)
                .await?
                .unwrap_or_else(|| bytes::Bytes::from_static(MAGIC));
            let (cache, id) = (cache.clone(), id.clone());
            blocking("caching a record ledger", move || {
                cache.put_run(&id, &bytes)
            })
            .await??;
        }
        Ok(cache)
    }

    async fn load_uncached(
        curated: &Location,
        partition: &PartitionKey,
        window: &[String],
    ) -> Result<PriorLedger> {
        let mut prior = PriorLedgerBuilder::new()?;
        for id in window {
            let Some(bytes) = Self::fetch_run(curated, partition, id).await? else {
                continue;
            };
            prior.add_run(&bytes[..]).map_err(|e| {
                Error::Task(format!(
                    "the record ledger of release {id} is unusable: {e}"
                ))
            })?;
        }
        blocking("loading the record ledger", move || prior.finish())
            .await?
            .map_err(Error::from)
    }

    /// The fingerprints of earlier releases, to probe ([`PriorLedger::contains`]) where
    /// the records are transformed, on every core, before [`RecordLedger::admit`].
    pub fn prior(&self) -> Arc<PriorLedger> {
        self.prior.clone()
    }

    /// Whether a record of this fingerprint is new: neither released before nor already
    /// admitted to this release. Admits it.
    fn admit_one(&mut self, fingerprint: u128, released_before: bool) -> bool {
        let fresh = !released_before && self.seen.insert(fingerprint);
        if !fresh {
            self.skipped += 1;
        }
        fresh
    }

    /// The records of `staged` that are new (a record is new when no earlier release holds it and it did not come earlier in this release), in order.
    /// `released_before` holds, per record, whether [`RecordLedger::prior`] contains it
    /// (or is empty when it holds nothing). A batch without record ids (the dataset names
    /// none) passes whole.
    pub fn admit(&mut self, staged: StagedBatch, released_before: &[bool]) -> Result<StagedBatch> {
        if staged.record_ids.is_empty() {
            return Ok(staged);
        }
        if !released_before.is_empty() && released_before.len() != staged.record_ids.len() {
            return Err(Error::Task(
                "the ledger was probed for another batch's records".into(),
            ));
        }
        let keep: Vec<bool> = staged
            .record_ids
            .iter()
            .enumerate()
            .map(|(i, &f)| self.admit_one(f, released_before.get(i).copied().unwrap_or(false)))
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

    /// Bytes held on the heap: the release's own fingerprints and the earlier releases'
    /// filter.
    pub fn heap_bytes(&self) -> usize {
        self.seen.heap_bytes() + self.prior.heap_bytes()
    }

    /// Records admitted to this release.
    pub fn admitted(&self) -> usize {
        self.seen.len
    }

    /// This release's fingerprints once its pass 1 is done, out of memory: each shard of
    /// the set is written to a temporary file, then freed (see `FingerprintSet`).
    pub fn into_admitted(self) -> Result<AdmittedRecords> {
        use std::io::Write as _;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, tempfile::tempfile()?);
        let mut ends = Vec::with_capacity(SHARDS);
        let (mut end, mut run) = (0u64, Vec::new());
        for shard in self.seen.shards {
            run.clear();
            run.extend(shard.iter().copied());
            drop(shard);
            file.write_all(zerocopy::IntoBytes::as_bytes(run.as_slice()))?;
            end += (run.len() * std::mem::size_of::<u128>()) as u64;
            ends.push(end);
        }
        let file = file.into_inner().map_err(|e| Error::Io(e.into_error()))?;
        Ok(AdmittedRecords {
            file: Some(file),
            ends,
            len: self.seen.len,
        })
    }

    /// Writes a release's ledger file ([`SortedRecords::into_file`]) where later releases
    /// look for it.
    pub async fn put_file(
        curated: &Location,
        partition: &PartitionKey,
        release_id: &str,
        file: Vec<u8>,
    ) -> Result<()> {
        curated
            .store
            .put(&ledger_path(partition, release_id), file.into())
            .await?;
        Ok(())
    }
}

/// Shards of [`FingerprintSet`]: one per value of a fingerprint's top byte.
const SHARDS: usize = 256;

/// A release's own fingerprints as pass 1 admits them: a hash set per value of the top
/// byte.
///
/// Fingerprints are uniform, so the shards fill alike; sharding buys that a shard grows
/// alone (one set doubling held 1.5 times the whole set for a moment: 816 MiB at 20M
/// records, where the set is 544), and that after pass 1 the set goes to disk a shard at
/// a time, and the ledger file is made shard by shard, in order (shard `i` holds exactly
/// the fingerprints of top byte `i`). Held in memory after pass 1, as an array, they were
/// 305 MiB of the decision's and pass 2's peak at 20M records.
#[derive(Debug)]
struct FingerprintSet {
    shards: Vec<FxHashSet<u128>>,
    len: usize,
}

impl Default for FingerprintSet {
    fn default() -> Self {
        Self {
            // Empty sets allocate nothing.
            shards: vec![FxHashSet::default(); SHARDS],
            len: 0,
        }
    }
}

impl FingerprintSet {
    fn insert(&mut self, fingerprint: u128) -> bool {
        let new = self.shards[(fingerprint >> 120) as usize].insert(fingerprint);
        self.len += usize::from(new);
        new
    }

    fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| policies::kanon::hash_table_bytes(s.capacity(), std::mem::size_of::<u128>()))
            .sum::<usize>()
            + self.shards.capacity() * std::mem::size_of::<FxHashSet<u128>>()
    }
}

/// The fingerprints of the records a release admitted ([`RecordLedger::into_admitted`]),
/// in an anonymous temporary file (deleted when closed), shard after shard, each in no
/// order.
#[derive(Debug, Default)]
pub struct AdmittedRecords {
    file: Option<std::fs::File>,
    /// Per shard: where its fingerprints end in `file`.
    ends: Vec<u64>,
    len: usize,
}

impl AdmittedRecords {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held on the heap: the shards' ends.
    pub fn heap_bytes(&self) -> usize {
        self.ends.capacity() * std::mem::size_of::<u64>()
    }

    /// Sorts the fingerprints into a temporary file laid out as the ledger file later
    /// releases read ([`ledger_file_bytes`]), a shard at a time: a release does it beside
    /// its pass 2, in memory of one shard (1.2 MiB at 20M records).
    pub fn sort(self) -> Result<SortedRecords> {
        use std::io::{Read as _, Seek as _, Write as _};
        let mut out = std::io::BufWriter::with_capacity(1 << 20, tempfile::tempfile()?);
        out.write_all(MAGIC)?;
        if let Some(mut file) = self.file {
            file.rewind()?;
            let (mut start, mut run) = (0u64, Vec::<u128>::new());
            for &end in &self.ends {
                let n = usize::try_from(end - start).map_err(|_| {
                    Error::Invariant("a record ledger shard past the address space".into())
                })? / std::mem::size_of::<u128>();
                run.clear();
                run.resize(n, 0);
                file.read_exact(zerocopy::IntoBytes::as_mut_bytes(run.as_mut_slice()))?;
                run.sort_unstable();
                // The file is little-endian: a no-op where the machine is.
                for f in &mut run {
                    *f = f.to_le();
                }
                out.write_all(zerocopy::IntoBytes::as_bytes(run.as_slice()))?;
                start = end;
            }
        }
        let file = out.into_inner().map_err(|e| Error::Io(e.into_error()))?;
        Ok(SortedRecords {
            file,
            bytes: MAGIC.len() + self.len * std::mem::size_of::<u128>(),
        })
    }
}

/// A release's ledger file, made ([`AdmittedRecords::sort`]) and waiting in a temporary
/// file until the release's Parquet files are written.
#[derive(Debug)]
pub struct SortedRecords {
    file: std::fs::File,
    bytes: usize,
}

impl SortedRecords {
    /// The file's bytes, read back once pass 2 has freed its memory (16 bytes a record).
    pub fn into_file(mut self) -> Result<Vec<u8>> {
        use std::io::{Read as _, Seek as _};
        self.file.rewind()?;
        let mut bytes = Vec::with_capacity(self.bytes);
        self.file.read_to_end(&mut bytes)?;
        if bytes.len() != self.bytes {
            return Err(Error::Invariant(format!(
                "the sorted record ledger has {} bytes where {} were written",
                bytes.len(),
                self.bytes
            )));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_prior_records_are_skipped_and_counted() {
        let mut prior = PriorLedgerBuilder::new().expect("temp file");
        prior.add_run(&ledger_file_bytes(&[5])[..]).expect("run");
        prior
            .add_run(&ledger_file_bytes(&[9, u128::MAX])[..])
            .expect("run");
        let mut ledger = RecordLedger {
            prior: Arc::new(prior.finish().expect("ledger")),
            ..Default::default()
        };
        let prior = ledger.prior();
        let admitted: Vec<bool> = [1, 5, 1, 2, 9, 3, u128::MAX]
            .into_iter()
            .map(|f| ledger.admit_one(f, prior.contains(f).expect("probe")))
            .collect();
        assert_eq!(admitted, [true, false, false, true, false, true, false]);
        assert_eq!((ledger.skipped, ledger.admitted()), (4, 3));
    }

    #[test]
    fn the_admitted_records_make_the_file_of_their_sorted_fingerprints() {
        // Edge values, then uniform ones (about 1,200 a shard), with repeats.
        let mut fps = vec![u128::MAX, 7, 5 << 120, 1 << 100, 3, 7, 0, (5 << 120) + 1];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            // SplitMix64.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        for _ in 0..300_000 {
            fps.push(u128::from(next()) << 64 | u128::from(next()));
        }
        fps.extend(fps[1000..2000].to_vec());
        let expected: std::collections::BTreeSet<u128> = fps.iter().copied().collect();

        let mut ledger = RecordLedger::default();
        let admitted: usize = fps
            .iter()
            .map(|&f| usize::from(ledger.admit_one(f, false)))
            .sum();
        assert_eq!(admitted, expected.len(), "each fingerprint admitted once");
        assert_eq!(ledger.skipped as usize, fps.len() - expected.len());
        let admitted = ledger.into_admitted().expect("written");
        assert_eq!(admitted.len(), expected.len());
        assert!(admitted.heap_bytes() <= 256 * 8, "on disk, not in memory");
        let file = admitted.sort().expect("sort").into_file().expect("file");
        let expected: Vec<u128> = expected.into_iter().collect();
        assert!(
            file == ledger_file_bytes(&expected),
            "the sorted fingerprints"
        );
        let mut prior = PriorLedgerBuilder::new().expect("temp file");
        prior.add_run(&file[..]).expect("a later release reads it");
        let prior = prior.finish().expect("ledger");
        assert_eq!(prior.len(), expected.len());
        assert!(prior.contains(5 << 120).expect("probe") && !prior.contains(8).expect("probe"));
    }

    #[test]
    fn a_release_writes_the_file_a_later_one_reads_and_a_damaged_one_is_refused() {
        let mut prior = PriorLedgerBuilder::new().expect("temp file");
        prior
            .add_run(&ledger_file_bytes(&[1, u128::MAX])[..])
            .expect("a sorted run");
        let bytes = ledger_file_bytes(&[1, 2]);
        assert!(
            prior.add_run(&bytes[..bytes.len() - 1]).is_err(),
            "truncated"
        );
        assert!(prior.add_run(&b"not a ledger"[..]).is_err(), "no magic");
        assert!(
            prior.add_run(&ledger_file_bytes(&[2, 1])[..]).is_err(),
            "unsorted"
        );
        let prior = prior.finish().expect("ledger");
        assert_eq!(prior.len(), 2, "refused files add nothing");
        assert!(prior.contains(1).expect("probe") && prior.contains(u128::MAX).expect("probe"));
        assert!(!prior.contains(2).expect("probe"));
    }
}
