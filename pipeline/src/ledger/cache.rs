//! The ledger cache: a local folder per tenant-dataset holding copies of its releases'
//! runs and one filter over them (a *segment*), so a release reads the window's filter
//! back in one sequential pass instead of rebuilding it from every run.
//!
//! ```text
//! {root}/dataset={d}/tenant={t}/runs/{release_id}.fp    a run, as the curated root has it
//! {root}/dataset={d}/tenant={t}/segment-{seq}.qf        a filter over some of the runs
//! ```
//!
//! The catalog stays the only truth; the cache only saves work. A run is copied once its
//! release is listed as published (its file is final then), checked (magic, order), and
//! written whole (temp file, fsync, rename): a copy is never partial. A segment is written
//! under a temp name and renamed too, but not fsynced: its checksum, checked on every
//! read, finds one a crash tore, and the runs rebuild it. A segment names its
//! runs by release id; a release reads the newest segment and *masks* every run of it the
//! window does not list (expired, or never published), so what the segment holds beyond
//! the window changes no answer. The window's runs the segment lacks make a second
//! filter, built in memory from their local copies (about 10 ms a million fingerprints).
//! A new segment is written by the *upkeep* after a publish ([`LedgerCache::maintain`],
//! which `Worker` runs once the release is published, off the next release's path):
//! once `FOLD_AT` of the window's runs are outside the segment, or runs out of the window
//! hold a fifth of its keys. The fold works in the segment's own arrays (one pass forward
//! drops the masked runs' keys, one backward makes room for the new runs' and places them),
//! then writes the file front to back with its checksum. A release's own load folds only
//! when the upkeep fell far behind (`LOAD_FOLD_AT` runs, or masked runs past a quarter).
//!
//! Processes may share a cache: every file is written under a temp name and renamed, two
//! writers of one segment number both write a valid segment (the later rename wins), and
//! a segment deleted while another process reads it stays readable to that process. A
//! cache folder that cannot be used (read-only, full) costs a warning and the uncached
//! path (`RecordLedger::load`), never a wrong answer.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::MAGIC;
use super::prior::{
    IndexedRun, LedgerError, PriorLedger, Run, TableRun, build_filter, scan_run, write_segment,
};
use catalog::layout::PartitionKey;

/// Runs outside the segment before the fold after a publish ([`LedgerCache::maintain`])
/// writes a new one.
pub const FOLD_AT: usize = 4;

/// Runs outside the segment before a release's own load folds them: only when the folds
/// after publishing fell behind (they failed, or another process published).
pub const LOAD_FOLD_AT: usize = 16;

/// A segment file name's prefix and suffix.
const SEGMENT: (&str, &str) = ("segment-", ".qf");

/// One tenant-dataset's folder in the ledger cache.
#[derive(Debug, Clone)]
pub struct LedgerCache {
    dir: PathBuf,
}

/// What loading from the cache did, for logs and the bench.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheLoad {
    /// Runs found in the segment and in the window.
    pub from_segment: usize,
    /// Runs of the window the segment lacked.
    pub added: usize,
    /// Whether a new segment was written, and how.
    pub folded: Fold,
}

/// How a load wrote a new segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fold {
    /// It wrote none: the segment (if any) and an in-memory filter of the rest.
    #[default]
    No,
    /// The segment's kept keys copied bucket by bucket, the new runs merged in.
    Merged,
    /// Every run read again (no segment before, or the bucket bits changed).
    Rebuilt,
}

impl LedgerCache {
    /// The cache folder of `partition`'s tenant and dataset under `root`, created if
    /// missing.
    pub fn open(root: &Path, partition: &PartitionKey) -> io::Result<Self> {
        let dir = root
            .join(format!("dataset={}", partition.dataset))
            .join(format!("tenant={}", partition.tenant));
        fs::create_dir_all(dir.join("runs"))?;
        Ok(Self { dir })
    }

    fn check_id(id: &str) -> io::Result<()> {
        // Release ids are hex digests; anything else must not name a path.
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{id:?} is no release id"),
            ));
        }
        Ok(())
    }

    /// A run's file: its release id and its count of values, so that a copy whose length
    /// changed (cut, or grown) is never read as a smaller run.
    fn run_path(&self, id: &str, len: u64) -> PathBuf {
        self.dir.join("runs").join(format!("{id}.{len}.fp"))
    }

    /// The runs the cache holds: release id to values and file. A copy whose size is not
    /// the one its name gives is removed (the next load fetches it again) and reported.
    pub fn runs(&self) -> Result<HashMap<String, (u64, PathBuf)>, LedgerError> {
        let mut found = HashMap::new();
        let mut damaged = None;
        for entry in fs::read_dir(self.dir.join("runs"))? {
            let entry = entry?;
            let name = entry.file_name();
            let Some((id, len)) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".fp"))
                .and_then(|n| n.rsplit_once('.'))
                .and_then(|(id, len)| Some((id.to_string(), len.parse::<u64>().ok()?)))
            else {
                continue;
            };
            let size = entry.metadata()?.len();
            if size != MAGIC.len() as u64 + 16 * len {
                let _ = fs::remove_file(entry.path());
                damaged = Some(id);
                continue;
            }
            found.insert(id, (len, entry.path()));
        }
        match damaged {
            Some(id) => Err(LedgerError::Damaged(format!(
                "the cached run of release {id} changed length; removed"
            ))),
            None => Ok(found),
        }
    }

    /// Keeps the run of release `id` (a ledger file's bytes, checked first; a release
    /// with no ledger file keeps an empty run, `MAGIC` alone).
    pub fn put_run(&self, id: &str, bytes: &[u8]) -> Result<(), LedgerError> {
        Self::check_id(id)?;
        let (len, _) = scan_run(&mut &bytes[..], 1 << 20, |_| Ok(()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(self.dir.join("runs"))?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.run_path(id, len)).map_err(|e| e.error)?;
        Ok(())
    }

    /// The segments present, newest first, with their numbers.
    fn segments(&self) -> io::Result<Vec<(u64, PathBuf)>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_prefix(SEGMENT.0))
                .and_then(|n| n.strip_suffix(SEGMENT.1))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            found.push((seq, self.dir.join(name)));
        }
        found.sort_unstable_by(|a, b| b.cmp(a));
        Ok(found)
    }

    /// The newest segment that opens, its runs masked to `window`, with its number and
    /// run table.
    fn newest_segment(
        &self,
        window: &HashSet<&str>,
        runs: &HashMap<String, (u64, PathBuf)>,
    ) -> io::Result<Option<(u64, PriorLedger, Vec<TableRun>)>> {
        for (seq, path) in self.segments()? {
            let file = match File::open(&path) {
                Ok(f) => f,
                // Replaced by a newer one since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let opened = PriorLedger::of_segment(&file, |t| {
                if !window.contains(t.id.as_str()) {
                    return None;
                }
                resolve(runs, t)
            });
            match opened {
                Ok(ledger) => {
                    let table = ledger.table().to_vec();
                    return Ok(Some((seq, ledger, table)));
                }
                Err(e) => {
                    tracing::warn!(segment = %path.display(), error = %e, "ignoring a damaged record ledger segment");
                }
            }
        }
        Ok(None)
    }

    /// The ledger of the runs of `window` (release ids, each with a run in the cache):
    /// the newest segment, masked to the window, plus the window's runs it lacks; or a new
    /// segment over all of them once `fold_at` runs are missing from it, or runs out of
    /// the window hold a quarter of its keys.
    pub fn prior(
        &self,
        window: &[String],
        fold_at: usize,
    ) -> Result<(PriorLedger, CacheLoad), LedgerError> {
        self.load(window, fold_at, false)
    }

    /// Upkeep between releases (after a publish, off the next release's path): writes a
    /// new segment when `fold_at` of `window`'s runs are missing from the newest one, or
    /// runs out of the window hold a fifth of its keys (before a load's quarter), so that
    /// the next release reads a segment and folds nothing. Only the segment's header is
    /// read to decide. What was written, if anything.
    pub fn maintain(
        &self,
        window: &[String],
        fold_at: usize,
    ) -> Result<Option<CacheLoad>, LedgerError> {
        let wanted: HashSet<&str> = window.iter().map(String::as_str).collect();
        let table = match self.segments()?.first() {
            Some((_, path)) => match File::open(path) {
                Ok(file) => PriorLedger::segment_table(&file).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e.into()),
            },
            None => Vec::new(),
        };
        let covered: HashSet<&str> = table.iter().map(|t| t.id.as_str()).collect();
        let missing = wanted.iter().filter(|id| !covered.contains(*id)).count();
        let total: u64 = table.iter().map(|t| t.len).sum();
        let masked: u64 = table
            .iter()
            .filter(|t| !wanted.contains(t.id.as_str()))
            .map(|t| t.len)
            .sum();
        if missing < fold_at && masked * 5 <= total {
            return Ok(None);
        }
        let (_, load) = self.load(window, fold_at, true)?;
        Ok(Some(load))
    }

    fn load(
        &self,
        window: &[String],
        fold_at: usize,
        force: bool,
    ) -> Result<(PriorLedger, CacheLoad), LedgerError> {
        let wanted: HashSet<&str> = window.iter().map(String::as_str).collect();
        let runs = self.runs()?;
        let segment = self.newest_segment(&wanted, &runs)?;
        let (seq, base, table) = match segment {
            Some((seq, base, table)) => (seq, Some(base), table),
            None => (0, None, Vec::new()),
        };
        // The segment's runs still in the window, by ordinal.
        let keep: Vec<usize> = (0..table.len())
            .filter(|&o| base.as_ref().is_some_and(|b| b.holds_run(o)))
            .collect();
        let covered: HashSet<&str> = keep.iter().map(|&o| table[o].id.as_str()).collect();
        let missing: Vec<&String> = {
            let mut seen = HashSet::new();
            window
                .iter()
                .filter(|id| !covered.contains(id.as_str()) && seen.insert(id.as_str()))
                .collect()
        };
        let added = missing
            .iter()
            .map(|id| match runs.get(id.as_str()) {
                Some((_, path)) => IndexedRun::open(path.clone()),
                None => Err(LedgerError::Damaged(format!(
                    "the run of release {id} is not in the cache"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let total: u64 = table.iter().map(|t| t.len).sum();
        let kept: u64 = keep.iter().map(|&o| table[o].len).sum();
        let mut load = CacheLoad {
            from_segment: keep.len(),
            added: added.len(),
            folded: Fold::No,
        };
        let must_fold = force || added.len() >= fold_at || (total - kept) * 4 > total;
        if added.is_empty() && !must_fold {
            return Ok((base.unwrap_or_default(), load));
        }
        if !must_fold {
            let ids = missing.iter().map(|id| id.to_string()).collect();
            let extra = build_filter(&added, ids)?;
            return Ok((base.unwrap_or_default().with(extra), load));
        }
        let ids: Vec<String> = keep
            .iter()
            .map(|&o| table[o].id.clone())
            .chain(missing.iter().map(|id| id.to_string()))
            .collect();
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        let (ledger, merged) = write_segment(tmp.as_file(), base, &keep, &added, ids, |t| {
            resolve(&runs, t)
        })?;
        // Past every number present, a damaged segment's too (the prune removes it).
        let seq = self.segments()?.first().map_or(seq, |(s, _)| seq.max(*s));
        let path = self
            .dir
            .join(format!("{}{:012}{}", SEGMENT.0, seq + 1, SEGMENT.1));
        tmp.persist(&path).map_err(|e| e.error)?;
        load.folded = if merged { Fold::Merged } else { Fold::Rebuilt };
        self.prune(seq + 1, &wanted, &runs);
        Ok((ledger, load))
    }

    /// Removes segments older than `newest` and runs neither in the window nor touched
    /// in the last two days (a run newer than this process's listing of the window may
    /// be another process's). Failures only leave files behind.
    fn prune(&self, newest: u64, window: &HashSet<&str>, runs: &HashMap<String, (u64, PathBuf)>) {
        for (seq, path) in self.segments().unwrap_or_default() {
            if seq < newest {
                let _ = fs::remove_file(path);
            }
        }
        let stale = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        for (id, (_, path)) in runs {
            let old = fs::metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < stale);
            if !window.contains(id.as_str()) && old {
                let _ = fs::remove_file(path);
            }
        }
    }
}

/// The cached run a segment's table names, when the cache holds it with that count.
fn resolve(runs: &HashMap<String, (u64, PathBuf)>, t: &TableRun) -> Option<Run> {
    match runs.get(&t.id) {
        Some((len, path)) if *len == t.len => Run::cached(path.clone(), t.len),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::ledger_file_bytes;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn partition() -> PartitionKey {
        PartitionKey {
            dataset: "contacts".into(),
            tenant: "t-0001".into(),
            dt: "2026-12-01".into(),
        }
    }

    fn run_bytes(values: &BTreeSet<u128>) -> Vec<u8> {
        ledger_file_bytes(&values.iter().copied().collect::<Vec<_>>())
    }

    /// One release in a history: its fingerprints, and whether the window lists it.
    #[derive(Debug, Clone)]
    struct Step {
        values: BTreeSet<u128>,
        listed: bool,
        /// Releases (by position) that leave the window at this step.
        expire: Vec<usize>,
    }

    fn step() -> impl Strategy<Value = Step> {
        (
            prop::collection::btree_set(
                prop_oneof![
                    any::<u128>(),
                    (0u128..400),
                    (0u128..40).prop_map(|v| v << 120)
                ],
                0..300,
            ),
            prop::bool::weighted(0.85),
            prop::collection::vec(0usize..40, 0..2),
        )
            .prop_map(|(values, listed, expire)| Step {
                values,
                listed,
                expire,
            })
    }

    /// Replays `steps` against one cache folder: before each release, the cache's ledger
    /// must answer exactly as the union of the window's runs does.
    /// Replays `steps`; with `maintain`, each publish is followed by the upkeep a worker
    /// runs after it ([`LedgerCache::maintain`]).
    fn replay(
        steps: &[Step],
        fold_at: usize,
        maintain: bool,
        probes: &[u128],
    ) -> Result<(), TestCaseError> {
        let root = tempfile::tempdir().expect("temp dir");
        let cache = LedgerCache::open(root.path(), &partition()).expect("open");
        let mut published: Vec<(String, BTreeSet<u128>)> = Vec::new();
        let mut expired: BTreeSet<usize> = BTreeSet::new();
        for (i, s) in steps.iter().enumerate() {
            for &e in &s.expire {
                if e < published.len() {
                    expired.insert(e);
                }
            }
            let window: Vec<(String, &BTreeSet<u128>)> = published
                .iter()
                .enumerate()
                .filter(|(j, _)| !expired.contains(j))
                .map(|(_, (id, v))| (id.clone(), v))
                .collect();
            let held = cache.runs().expect("list");
            for (id, v) in &window {
                if !held.contains_key(id) {
                    cache.put_run(id, &run_bytes(v)).expect("put");
                }
            }
            let ids: Vec<String> = window.iter().map(|(id, _)| id.clone()).collect();
            let (ledger, load) = cache.prior(&ids, fold_at).expect("prior");
            prop_assert_eq!(load.from_segment + load.added, ids.len());
            let all: BTreeSet<u128> = window.iter().flat_map(|(_, v)| v.iter().copied()).collect();
            prop_assert_eq!(ledger.runs(), ids.len());
            let near = all.iter().flat_map(|&v| [v, v.wrapping_add(1)]);
            for fp in near
                .chain(probes.iter().copied())
                .chain(s.values.iter().copied())
            {
                prop_assert_eq!(
                    ledger.contains(fp).expect("read"),
                    all.contains(&fp),
                    "step {} fp {:#x}",
                    i,
                    fp
                );
            }
            let id = format!("r{i:04}");
            if s.listed {
                if maintain {
                    cache.put_run(&id, &run_bytes(&s.values)).expect("put");
                    let after: Vec<String> = ids.iter().cloned().chain([id.clone()]).collect();
                    cache.maintain(&after, fold_at).expect("maintain");
                }
                published.push((id, s.values.clone()));
            } else {
                // Published never: its run may be cached by a crashed attempt, and must
                // count for nothing.
                cache.put_run(&id, &run_bytes(&s.values)).expect("put");
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn the_cached_ledger_answers_as_the_window_does(
            steps in prop::collection::vec(step(), 1..14),
            fold_at in 1usize..5,
            maintain in any::<bool>(),
            probes in prop::collection::vec(any::<u128>(), 0..50),
        ) {
            replay(&steps, fold_at, maintain, &probes)?;
        }
    }

    fn values(seed: u64, n: usize) -> BTreeSet<u128> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                u128::from(x) << 64 | u128::from(x.rotate_left(17))
            })
            .collect()
    }

    /// A cache holding `count` runs of `size` values each, named `{prefix}{i}`.
    fn cache_of(
        prefix: &str,
        count: u64,
        seed: u64,
        size: usize,
    ) -> (
        tempfile::TempDir,
        LedgerCache,
        Vec<(String, BTreeSet<u128>)>,
    ) {
        let root = tempfile::tempdir().expect("temp dir");
        let cache = LedgerCache::open(root.path(), &partition()).expect("open");
        let runs: Vec<(String, BTreeSet<u128>)> = (0..count)
            .map(|i| (format!("{prefix}{i}"), values(seed + i, size)))
            .collect();
        for (id, v) in &runs {
            cache.put_run(id, &run_bytes(v)).expect("put");
        }
        (root, cache, runs)
    }

    #[test]
    fn a_fold_writes_a_segment_later_loads_read_back() {
        let (_root, cache, runs) = cache_of("r", 6, 0, 5000);
        let ids = |n: usize| {
            runs[..n]
                .iter()
                .map(|(id, _)| id.clone())
                .collect::<Vec<_>>()
        };
        // Under the fold threshold: an in-memory filter, no segment.
        let (_, load) = cache.prior(&ids(2), 3).expect("prior");
        assert_eq!(
            load,
            CacheLoad {
                from_segment: 0,
                added: 2,
                folded: Fold::No
            }
        );
        assert!(cache.segments().expect("list").is_empty());
        let (_, load) = cache.prior(&ids(3), 3).expect("prior");
        assert_eq!(
            load,
            CacheLoad {
                from_segment: 0,
                added: 3,
                folded: Fold::Rebuilt
            }
        );
        // The next load reads the segment and adds only what is new.
        let (ledger, load) = cache.prior(&ids(5), 3).expect("prior");
        assert_eq!(
            load,
            CacheLoad {
                from_segment: 3,
                added: 2,
                folded: Fold::No
            }
        );
        assert!(
            runs[..5]
                .iter()
                .all(|(_, v)| v.iter().all(|&f| ledger.contains(f).expect("read")))
        );
        assert!(!runs[5].1.iter().any(|&f| ledger.contains(f).expect("read")));
        // Twice the keys: one more bucket bit, so every run is read again.
        let (_, load) = cache.prior(&ids(6), 3).expect("prior");
        assert_eq!(
            load,
            CacheLoad {
                from_segment: 3,
                added: 3,
                folded: Fold::Rebuilt
            }
        );
        assert_eq!(
            cache.segments().expect("list").len(),
            1,
            "older segments pruned"
        );
        // A window that lost most of the segment's runs rewrites it without them.
        let late = vec![runs[5].0.clone()];
        let (ledger, load) = cache.prior(&late, 3).expect("prior");
        assert_eq!(
            load,
            CacheLoad {
                from_segment: 1,
                added: 0,
                folded: Fold::Rebuilt
            }
        );
        assert_eq!(ledger.len(), 5000);
        assert!(!runs[0].1.iter().any(|&f| ledger.contains(f).expect("read")));
    }

    /// The upkeep after a publish folds once `fold_at` runs are outside the segment, or
    /// expired runs hold a fifth of it, so that the loads between fold nothing.
    #[test]
    fn upkeep_after_a_publish_folds_so_that_loads_only_read() {
        let (_root, cache, runs) = cache_of("m", 4, 70, 300);
        let ids: Vec<String> = runs.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(cache.maintain(&ids[..1], 2).expect("maintain"), None);
        let folded = cache.maintain(&ids[..2], 2).expect("maintain");
        assert_eq!(folded.map(|l| l.folded), Some(Fold::Rebuilt));
        let (_, load) = cache.prior(&ids[..2], LOAD_FOLD_AT).expect("prior");
        assert_eq!(
            (load.from_segment, load.added, load.folded),
            (2, 0, Fold::No)
        );
        assert_eq!(cache.maintain(&ids[..3], 2).expect("maintain"), None);
        let (_, load) = cache.prior(&ids[..3], LOAD_FOLD_AT).expect("prior");
        assert_eq!(
            (load.from_segment, load.added, load.folded),
            (2, 1, Fold::No)
        );
        let folded = cache.maintain(&ids, 2).expect("maintain");
        assert!(folded.is_some_and(|l| l.folded != Fold::No));
        let (ledger, load) = cache.prior(&ids, LOAD_FOLD_AT).expect("prior");
        assert_eq!(
            (load.from_segment, load.added, load.folded),
            (4, 0, Fold::No)
        );
        for (_, values) in &runs {
            for &v in values {
                assert!(ledger.contains(v).expect("probe"), "{v:#x}");
            }
        }
        // The first run expires: a quarter of the keys, past the upkeep's fifth.
        let folded = cache.maintain(&ids[1..], 2).expect("maintain");
        assert!(folded.is_some_and(|l| l.folded != Fold::No));
        let (ledger, load) = cache.prior(&ids[1..], LOAD_FOLD_AT).expect("prior");
        assert_eq!(
            (load.from_segment, load.added, load.folded),
            (3, 0, Fold::No)
        );
        for &v in &runs[0].1 {
            assert!(!ledger.contains(v).expect("probe"), "expired {v:#x}");
        }
    }

    #[test]
    fn a_fold_at_the_same_bucket_bits_merges_and_answers_alike() {
        // 40,000 keys, then 48,000 and 8,000 expired: 2^12 buckets throughout.
        let (_root, cache, runs) = cache_of("m", 6, 100, 8000);
        let ids: Vec<String> = runs.iter().map(|(id, _)| id.clone()).collect();
        let (_, load) = cache.prior(&ids[..5], 1).expect("prior");
        assert_eq!(load.folded, Fold::Rebuilt);
        let (ledger, load) = cache.prior(&ids[1..], 1).expect("prior");
        assert_eq!(
            load,
            CacheLoad {
                from_segment: 4,
                added: 1,
                folded: Fold::Merged
            }
        );
        for (i, (_, v)) in runs.iter().enumerate() {
            let want = i >= 1;
            assert!(
                v.iter().all(|&f| ledger.contains(f).expect("read") == want),
                "run {i}"
            );
        }
        // The merged segment reads back the same.
        let (again, load) = cache.prior(&ids[1..], 1).expect("prior");
        assert_eq!(
            load,
            CacheLoad {
                from_segment: 5,
                added: 0,
                folded: Fold::No
            }
        );
        assert_eq!(again.len(), 40_000);
        assert!(runs[0].1.iter().all(|&f| !again.contains(f).expect("read")));
        assert!(runs[5].1.iter().all(|&f| again.contains(f).expect("read")));
    }

    #[test]
    fn a_damaged_segment_or_run_is_never_trusted() {
        let (_root, cache, runs) = cache_of("r", 3, 10, 3000);
        let ids: Vec<String> = runs.iter().map(|(id, _)| id.clone()).collect();
        cache.prior(&ids, 1).expect("fold");
        let (seq, path) = cache.segments().expect("list").remove(0);
        // Cut short, then a later segment of garbage: both ignored, the runs rebuilt.
        let bytes = fs::read(&path).expect("read");
        fs::write(&path, &bytes[..bytes.len() / 2]).expect("cut");
        let garbage = cache.dir.join(format!("segment-{:012}.qf", seq + 1));
        fs::write(&garbage, b"SPLS\x01\0\0\0 not a segment").expect("write");
        let (ledger, load) = cache.prior(&ids, 1).expect("prior");
        assert_eq!(
            load,
            CacheLoad {
                from_segment: 0,
                added: 3,
                folded: Fold::Rebuilt
            }
        );
        assert!(
            runs.iter()
                .all(|(_, v)| v.iter().all(|&f| ledger.contains(f).expect("read")))
        );
        // One flipped bit past the header (a torn write the rename made visible): the
        // checksum refuses the segment, and the runs rebuild it.
        let (_, path) = cache.segments().expect("list").remove(0);
        let mut bytes = fs::read(&path).expect("read");
        let at = bytes.len() - 100;
        bytes[at] ^= 0x10;
        fs::write(&path, &bytes).expect("flip");
        let (ledger, load) = cache.prior(&ids, 1).expect("prior");
        assert_eq!(
            load,
            CacheLoad {
                from_segment: 0,
                added: 3,
                folded: Fold::Rebuilt
            }
        );
        assert!(
            runs.iter()
                .all(|(_, v)| v.iter().all(|&f| ledger.contains(f).expect("read")))
        );
        // A copy cut to a shorter, well-formed run is caught by its length, removed (the
        // next load fetches it again) and never answered from.
        let (_, run) = cache.runs().expect("list").remove("r1").expect("cached");
        let bytes = fs::read(&run).expect("read");
        fs::write(&run, &bytes[..bytes.len() - 16]).expect("cut");
        let err = cache.prior(&ids, 1).expect_err("a cut run is refused");
        assert!(matches!(err, LedgerError::Damaged(_)), "{err}");
        assert!(!cache.runs().expect("list").contains_key("r1"));
        cache
            .put_run("r1", &run_bytes(&runs[1].1))
            .expect("put again");
        let (ledger, _) = cache.prior(&ids, 1).expect("prior");
        assert!(
            runs.iter()
                .all(|(_, v)| v.iter().all(|&f| ledger.contains(f).expect("read")))
        );
        // Bad copies never enter the cache.
        assert!(cache.put_run("r9", b"SPRL\x01\0\0\0short").is_err());
        assert!(!cache.runs().expect("list").contains_key("r9"));
        assert!(
            cache
                .put_run("../escape", &run_bytes(&values(1, 3)))
                .is_err()
        );
    }

    #[test]
    fn writers_folding_one_cache_at_once_leave_a_good_segment() {
        let (_root, cache, runs) = cache_of("r", 8, 20, 4000);
        let ids: Vec<String> = runs.iter().map(|(id, _)| id.clone()).collect();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (cache, ids, runs) = (cache.clone(), &ids, &runs);
                s.spawn(move || {
                    for round in 0..5 {
                        let n = 4 + (t + round) % 5;
                        let (ledger, _) = cache.prior(&ids[..n], 1).expect("prior");
                        for (i, (_, v)) in runs.iter().enumerate() {
                            let want = i < n;
                            assert!(
                                v.iter()
                                    .take(200)
                                    .all(|&f| ledger.contains(f).expect("read") == want)
                            );
                        }
                    }
                });
            }
        });
        let (ledger, load) = cache.prior(&ids, 8).expect("prior");
        assert_eq!(
            ledger.len(),
            runs.iter().map(|(_, v)| v.len()).sum::<usize>()
        );
        assert_eq!(load.from_segment + load.added, 8);
    }
}
