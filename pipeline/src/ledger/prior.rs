//! The fingerprints of earlier releases, kept compact: exact membership for the record
//! ledger (`RecordLedger`, ledger.rs) at about 3.5 bytes a fingerprint of memory instead of
//! the 16 of one sorted array.
//!
//! Each published release leaves a file of its record fingerprints (`MAGIC`, then sorted,
//! distinct u128s, 16 bytes little-endian each). A new release must skip every record
//! whose fingerprint is in any file of the retention window: at a million records a day
//! over 90 days that is 90M fingerprints, 1.4 GiB as one sorted array, past the memory
//! target. So the fingerprints go to disk and only a filter stays in memory:
//!
//! - [`PriorLedgerBuilder::add_run`] streams one file (a *run*) into an unnamed temp file,
//!   checking its magic, its length and its order, and keeps the top 64 bits of every
//!   64th value (the run's sparse index: 0.125 bytes a fingerprint).
//! - [`PriorLedgerBuilder::finish`] reads the temp file twice (count, then place) and
//!   builds a quotient filter over all runs: the top `b` bits of a fingerprint name its
//!   bucket (`b` chosen for 8 to 16 keys a bucket; one u32 offset a bucket, 0.25 to 0.5
//!   bytes a key), and each key keeps the next 16 bits (its remainder, a u16) and the
//!   ordinal of its run (a u8 up to 256 runs, a u16 up to 65,536, else a u32).
//! - [`PriorLedger::contains`] scans the bucket of the fingerprint for its remainder; a
//!   match is a candidate, confirmed exactly in its run: the sparse index names one block
//!   of 64 values (1 KiB), read with one `pread` and binary-searched. A fingerprint in two
//!   runs is fine: either confirms it.
//!
//! Costs, for up to 256 runs: 3 + 4/k + 0.125 bytes a key in memory (k, the keys a
//! bucket, is between 8 and 16: about 3.5 bytes a key at 90M; one byte more from 257 runs
//! to 65,536), 16 bytes a key
//! of temp file on disk (its pages in the page cache while warm). A probe of a fresh
//! fingerprint reads one bucket offset and one run of about k remainders, two cache misses
//! and no disk; it is a false candidate (one `pread`) with a chance of k / 2^16, about
//! 2e-4. A probe of a present fingerprint costs one `pread` of 1 KiB (from the page cache
//! while warm, from disk when not). Measured at 90 runs of 1M (`measure` below, warm,
//! 2 cores): 0.15 us a fresh probe and 2.5 us a present one (one `pread` is about 1 us of
//! that), against 1.2 us for either in today's sorted array; build 6 s, 315 MiB peak.
//! Fingerprints are keyed SipHash-128, uniformly random: were they not, buckets would be
//! uneven and probes slower, never wrong.
//!
//! The in-memory filter has no false negatives (every key is in its bucket) and the
//! confirmation in the run has no false positives, so [`PriorLedger::contains`] is exact.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The header of a ledger file.
pub const MAGIC: &[u8; 8] = b"SPRL\x01\0\0\0";

/// Values a block of a run: the sparse index keeps one entry a block, a probe reads one.
const BLOCK: usize = 64;
/// The most values one confirmation reads at once (the stack buffer's size).
const MAX_BLOCK: usize = 256;
/// The fewest keys a bucket on average (there are at most twice as many).
const PER_BUCKET: usize = 8;
/// Runs start on page boundaries in the temp file, so a block rarely spans two pages.
const PAGE: u64 = 4096;
/// Bytes read or written at once while building.
const CHUNK: usize = 1 << 20;

/// Why a ledger file was refused.
#[derive(Debug)]
pub enum LedgerError {
    /// Reading the file or writing the temp file failed.
    Io(io::Error),
    /// The file does not start with `MAGIC` (or is shorter than it).
    BadMagic,
    /// The values after the magic are `len` bytes, not a whole number of 16.
    Truncated { len: u64 },
    /// Value number `at` (from 0) is smaller than the one before it.
    Unsorted { at: u64 },
    /// Value number `at` (from 0) repeats the one before it.
    Duplicate { at: u64 },
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "reading a record ledger: {e}"),
            Self::BadMagic => f.write_str("not a record ledger file (bad magic)"),
            Self::Truncated { len } => write!(
                f,
                "record ledger truncated: {len} bytes of fingerprints is not a multiple of 16"
            ),
            Self::Unsorted { at } => write!(f, "record ledger unsorted at fingerprint {at}"),
            Self::Duplicate { at } => write!(f, "record ledger repeats fingerprint {at}"),
        }
    }
}

impl std::error::Error for LedgerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for LedgerError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// One ledger file's values in the temp file.
#[derive(Debug)]
struct Run {
    /// Byte offset of its first value.
    offset: u64,
    /// Its values.
    len: u64,
    /// The top 64 bits of values 0, block, 2 * block, ...
    index: Vec<u64>,
}

impl Run {
    /// Whether `fp` is one of this run's values.
    fn contains(&self, file: &File, fp: u128, block: usize) -> io::Result<bool> {
        let top = (fp >> 64) as u64;
        // Blocks before `lo` end below fp; blocks from `hi` on start above it. Equal tops
        // (values sharing their top 64 bits) can make the range wider than one block.
        let lo = self.index.partition_point(|&t| t < top).saturating_sub(1);
        let hi = self.index.partition_point(|&t| t <= top);
        if hi <= lo {
            return Ok(false);
        }
        let (mut a, mut e) = (
            lo as u64 * block as u64,
            self.len.min(hi as u64 * block as u64),
        );
        let mut buf = [0u8; 16 * MAX_BLOCK];
        // Bisect on disk until the range fits one read (only for wide ranges).
        while e - a > MAX_BLOCK as u64 {
            let m = a + (e - a) / 2;
            file.read_exact_at(&mut buf[..16], self.offset + m * 16)?;
            match value(&buf[..16]).cmp(&fp) {
                std::cmp::Ordering::Equal => return Ok(true),
                std::cmp::Ordering::Less => a = m + 1,
                std::cmp::Ordering::Greater => e = m,
            }
        }
        let n = (e - a) as usize;
        file.read_exact_at(&mut buf[..n * 16], self.offset + a * 16)?;
        let (mut a, mut e) = (0, n);
        while a < e {
            let m = (a + e) / 2;
            match value(&buf[m * 16..m * 16 + 16]).cmp(&fp) {
                std::cmp::Ordering::Equal => return Ok(true),
                std::cmp::Ordering::Less => a = m + 1,
                std::cmp::Ordering::Greater => e = m,
            }
        }
        Ok(false)
    }

    /// Calls `f` with each value of the run, in order.
    fn for_each(&self, file: &File, buf: &mut [u8], mut f: impl FnMut(u128)) -> io::Result<()> {
        let mut pos = self.offset;
        let end = self.offset + self.len * 16;
        while pos < end {
            let n = (end - pos).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], pos)?;
            buf[..n].chunks_exact(16).for_each(|c| f(value(c)));
            pos += n as u64;
        }
        Ok(())
    }
}

fn value(bytes: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(bytes);
    u128::from_le_bytes(b)
}

/// Reads into `buf` until it is full or the stream ends; returns the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Collects ledger files ([`PriorLedgerBuilder::add_run`]) into a [`PriorLedger`].
#[derive(Debug)]
pub struct PriorLedgerBuilder {
    file: File,
    runs: Vec<Run>,
    /// End of the last run in the temp file.
    end: u64,
    /// Values in all runs.
    len: u64,
    block: usize,
    per_bucket: usize,
}

impl PriorLedgerBuilder {
    /// A builder whose temp file is in the system's temp directory.
    pub fn new() -> io::Result<Self> {
        Self::with_file(tempfile::tempfile()?)
    }

    /// A builder whose temp file is in `dir` (it needs 16 bytes a fingerprint).
    pub fn new_in(dir: impl AsRef<Path>) -> io::Result<Self> {
        Self::with_file(tempfile::tempfile_in(dir)?)
    }

    fn with_file(file: File) -> io::Result<Self> {
        Ok(Self {
            file,
            runs: Vec::new(),
            end: 0,
            len: 0,
            block: BLOCK,
            per_bucket: PER_BUCKET,
        })
    }

    /// Adds one ledger file, read as a stream. A refused file adds nothing: the builder
    /// stays as it was.
    pub fn add_run(&mut self, mut reader: impl Read) -> Result<(), LedgerError> {
        let mut magic = [0u8; 8];
        if fill(&mut reader, &mut magic)? < magic.len() || &magic != MAGIC {
            return Err(LedgerError::BadMagic);
        }
        let offset = self.end.next_multiple_of(PAGE);
        let (mut pos, mut count, mut prev) = (offset, 0u64, None::<u128>);
        let mut index = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = fill(&mut reader, &mut buf)?;
            if n % 16 != 0 {
                return Err(LedgerError::Truncated {
                    len: count * 16 + n as u64,
                });
            }
            for c in buf[..n].chunks_exact(16) {
                let v = value(c);
                match prev {
                    Some(p) if v == p => return Err(LedgerError::Duplicate { at: count }),
                    Some(p) if v < p => return Err(LedgerError::Unsorted { at: count }),
                    _ => {}
                }
                if count % self.block as u64 == 0 {
                    index.push((v >> 64) as u64);
                }
                prev = Some(v);
                count += 1;
            }
            // Positional writes: a run refused halfway leaves bytes past `end` only, which
            // the next run overwrites.
            self.file.write_all_at(&buf[..n], pos)?;
            pos += n as u64;
            if n < buf.len() {
                break;
            }
        }
        if self.len + count > u64::from(u32::MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "more than 4,294,967,295 prior fingerprints",
            )
            .into());
        }
        index.shrink_to_fit();
        self.runs.push(Run {
            offset,
            len: count,
            index,
        });
        self.end = pos;
        self.len += count;
        Ok(())
    }

    /// Builds the in-memory filter over every run added.
    pub fn finish(self) -> io::Result<PriorLedger> {
        let n = self.len as usize;
        if n == 0 {
            return Ok(PriorLedger {
                runs: self.runs,
                ..PriorLedger::default()
            });
        }
        let bits = (n / self.per_bucket).max(1).ilog2().min(32);
        let buckets = 1usize << bits;
        let mut offsets = vec![0u32; buckets + 1];
        let mut buf = vec![0u8; CHUNK];
        for run in &self.runs {
            run.for_each(&self.file, &mut buf, |v| offsets[bucket(v, bits)] += 1)?;
        }
        // Each offset becomes the end of its bucket, then is moved down as keys are
        // placed, ending as its start; offsets[buckets] stays n.
        let mut sum = 0u32;
        for o in &mut offsets[..buckets] {
            sum += *o;
            *o = sum;
        }
        offsets[buckets] = sum;
        let mut rems = vec![0u16; n];
        let mut ords = Ordinals::new(self.runs.len(), n);
        for (r, run) in self.runs.iter().enumerate() {
            run.for_each(&self.file, &mut buf, |v| {
                let b = bucket(v, bits);
                offsets[b] -= 1;
                let at = offsets[b] as usize;
                rems[at] = remainder(v, bits);
                ords.set(at, r);
            })?;
        }
        Ok(PriorLedger {
            file: Some(self.file),
            runs: self.runs,
            bits,
            offsets,
            rems,
            ords,
            block: self.block,
        })
    }
}

/// The bucket of a fingerprint: its top `bits` bits.
fn bucket(fp: u128, bits: u32) -> usize {
    ((fp >> 64) as u64).checked_shr(64 - bits).unwrap_or(0) as usize
}

/// The 16 bits after the bucket's.
fn remainder(fp: u128, bits: u32) -> u16 {
    ((fp >> 64) as u64 >> (48 - bits)) as u16
}

/// The run of each key, as narrow as the number of runs allows.
#[derive(Debug)]
enum Ordinals {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Ordinals {
    fn new(runs: usize, n: usize) -> Self {
        if runs <= 1 << 8 {
            Self::U8(vec![0; n])
        } else if runs <= 1 << 16 {
            Self::U16(vec![0; n])
        } else {
            Self::U32(vec![0; n])
        }
    }

    /// Only called with `r` below the run count `new` was given, which fits.
    fn set(&mut self, at: usize, r: usize) {
        match self {
            Self::U8(v) => v[at] = r as u8,
            Self::U16(v) => v[at] = r as u16,
            Self::U32(v) => v[at] = r as u32,
        }
    }

    fn get(&self, at: usize) -> usize {
        match self {
            Self::U8(v) => usize::from(v[at]),
            Self::U16(v) => usize::from(v[at]),
            Self::U32(v) => v[at] as usize,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Self::U8(v) => v.capacity(),
            Self::U16(v) => v.capacity() * 2,
            Self::U32(v) => v.capacity() * 4,
        }
    }
}

/// The fingerprints of earlier releases: exact membership from a compact in-memory filter
/// and the runs in a temp file. The default is empty: it holds nothing and answers false.
#[derive(Debug)]
pub struct PriorLedger {
    /// None when there are no fingerprints.
    file: Option<File>,
    runs: Vec<Run>,
    /// Bits of a fingerprint naming its bucket.
    bits: u32,
    /// Where each bucket starts in `rems` and `ords`, and `len()` last.
    offsets: Vec<u32>,
    rems: Vec<u16>,
    ords: Ordinals,
    block: usize,
}

impl Default for PriorLedger {
    fn default() -> Self {
        Self {
            file: None,
            runs: Vec::new(),
            bits: 0,
            offsets: Vec::new(),
            rems: Vec::new(),
            ords: Ordinals::U8(Vec::new()),
            block: BLOCK,
        }
    }
}

impl PriorLedger {
    /// Whether `fp` is in any run. Reads the temp file only for candidates.
    pub fn contains(&self, fp: u128) -> io::Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let b = bucket(fp, self.bits);
        let (lo, hi) = (self.offsets[b] as usize, self.offsets[b + 1] as usize);
        let rem = remainder(fp, self.bits);
        // A run's keys are adjacent in a bucket: each run is tried once.
        let mut tried = usize::MAX;
        for (i, &r) in self.rems[lo..hi].iter().enumerate() {
            if r == rem {
                let run = self.ords.get(lo + i);
                if run != tried {
                    tried = run;
                    if self.runs[run].contains(file, fp, self.block)? {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Fingerprints in all runs (one in two runs counts twice).
    pub fn len(&self) -> usize {
        self.rems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rems.is_empty()
    }

    /// Ledger files added.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Bytes of memory held (its vectors' capacities), for reports and tests.
    pub fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * 4
            + self.rems.capacity() * 2
            + self.ords.heap_bytes()
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + self
                .runs
                .iter()
                .map(|r| r.index.capacity() * 8)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn file_of(values: &[u128]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        values
            .iter()
            .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
        bytes
    }

    /// A reader handing out at most `step` bytes a call, to cut values across reads.
    struct Dribble<'a>(&'a [u8], usize);
    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn build(runs: &[Vec<u128>], block: usize, per_bucket: usize, step: usize) -> PriorLedger {
        let mut b = PriorLedgerBuilder::new().expect("temp file");
        b.block = block;
        b.per_bucket = per_bucket;
        for run in runs {
            b.add_run(Dribble(&file_of(run), step)).expect("a good run");
        }
        b.finish().expect("finish")
    }

    const SHARED_TOP: u128 = 0x0123_4567_89ab_cdef << 64;

    fn fingerprint() -> impl Strategy<Value = u128> {
        prop_oneof![
            any::<u128>(),
            // differing only in low bits
            (0u128..64).prop_map(|d| 0xdead_beef_u128 << 80 | d),
            // sharing the top 64 bits
            any::<u64>().prop_map(|lo| SHARED_TOP | u128::from(lo)),
            (0u64..32).prop_map(|lo| SHARED_TOP | u128::from(lo)),
            (0u128..16),
            (0u128..16).prop_map(|d| u128::MAX - d),
            Just(u128::MIN),
            Just(u128::MAX),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn membership_is_exact(
            runs in prop::collection::vec(prop::collection::vec(fingerprint(), 0..400), 0..6),
            probes in prop::collection::vec(fingerprint(), 0..200),
            block in prop::sample::select(vec![1usize, 2, 3, 16, 64, 256]),
            per_bucket in prop::sample::select(vec![1usize, 2, 8]),
            step in 1usize..40,
        ) {
            let runs: Vec<Vec<u128>> = runs
                .into_iter()
                .map(|r| r.into_iter().collect::<BTreeSet<_>>().into_iter().collect())
                .collect();
            let all: BTreeSet<u128> = runs.iter().flatten().copied().collect();
            let ledger = build(&runs, block, per_bucket, step);
            prop_assert_eq!(ledger.len(), runs.iter().map(Vec::len).sum::<usize>());
            prop_assert_eq!(ledger.runs(), runs.len());
            let near = all.iter().flat_map(|&v| [v, v.wrapping_add(1), v.wrapping_sub(1)]);
            for fp in near.chain(probes).chain([0, u128::MAX, SHARED_TOP]) {
                prop_assert_eq!(ledger.contains(fp).expect("read"), all.contains(&fp), "{:#x}", fp);
            }
        }
    }

    #[test]
    fn values_sharing_their_top_bits_across_many_blocks_are_found() {
        let run: Vec<u128> = (0..5000).map(|i| SHARED_TOP | (i * 3)).collect();
        let other: Vec<u128> = (0..300).map(|i| SHARED_TOP | (i * 7 + 1)).collect();
        let ledger = build(&[run.clone(), other.clone(), run.clone()], 4, 8, 1000);
        for i in 0..16000u128 {
            let fp = SHARED_TOP | i;
            let want = run.contains(&fp) || other.contains(&fp);
            assert_eq!(ledger.contains(fp).expect("read"), want, "{i}");
        }
    }

    #[test]
    fn damaged_files_are_refused_and_add_nothing() {
        let mut b = PriorLedgerBuilder::new().expect("temp file");
        let good = file_of(&[1, 2, 3]);
        let err = |b: &mut PriorLedgerBuilder, bytes: &[u8]| {
            b.add_run(Dribble(bytes, 5)).expect_err("refused")
        };
        assert!(matches!(
            err(&mut b, b"SPRL\x02\0\0\0"),
            LedgerError::BadMagic
        ));
        assert!(matches!(err(&mut b, b"SPRL"), LedgerError::BadMagic));
        assert!(matches!(err(&mut b, b""), LedgerError::BadMagic));
        for cut in 1..16 {
            let e = err(&mut b, &good[..good.len() - cut]);
            assert!(
                matches!(e, LedgerError::Truncated { len } if len == 48 - cut as u64),
                "{e}"
            );
        }
        assert!(matches!(
            err(&mut b, &file_of(&[10, 11, 5])),
            LedgerError::Unsorted { at: 2 }
        ));
        assert!(matches!(
            err(&mut b, &file_of(&[10, 11, 11])),
            LedgerError::Duplicate { at: 2 }
        ));
        assert!(matches!(
            err(&mut b, &file_of(&[7, 7])),
            LedgerError::Duplicate { at: 1 }
        ));
        let big: Vec<u128> = (0..200_000u128).map(|i| 1000 + i).chain([0]).collect();
        assert!(matches!(
            err(&mut b, &file_of(&big)),
            LedgerError::Unsorted { at: 200_000 }
        ));
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("gone"))
            }
        }
        let e = b.add_run(Broken).expect_err("refused");
        assert!(matches!(e, LedgerError::Io(_)) && std::error::Error::source(&e).is_some());
        // The refused runs left nothing behind.
        b.add_run(&good[..]).expect("a good run");
        b.add_run(&file_of(&[])[..]).expect("an empty run");
        let ledger = b.finish().expect("finish");
        assert_eq!((ledger.len(), ledger.runs()), (3, 2));
        for fp in [0, 1, 2, 3, 4, 5, 7, 10, 11, 1000, 1001] {
            assert_eq!(
                ledger.contains(fp).expect("read"),
                (1..=3).contains(&fp),
                "{fp}"
            );
        }
    }

    #[test]
    fn an_empty_ledger_costs_nothing_and_holds_nothing() {
        for ledger in [
            PriorLedger::default(),
            PriorLedgerBuilder::new()
                .expect("temp file")
                .finish()
                .expect("finish"),
        ] {
            assert_eq!(
                (ledger.len(), ledger.runs(), ledger.heap_bytes()),
                (0, 0, 0)
            );
            assert!(ledger.is_empty());
            for fp in [0, 1, u128::MAX] {
                assert!(!ledger.contains(fp).expect("no read"));
            }
        }
        let mut b = PriorLedgerBuilder::new().expect("temp file");
        b.add_run(&MAGIC[..]).expect("an empty run");
        let ledger = b.finish().expect("finish");
        assert_eq!((ledger.len(), ledger.runs()), (0, 1));
        assert!(!ledger.contains(0).expect("no read"));
    }
}
