//! The fingerprints of earlier releases, kept compact: exact membership for the record
//! ledger (`RecordLedger`, ledger.rs) at about 3.5 bytes a fingerprint of filter instead
//! of the 16 of one sorted array.
//!
//! Each published release leaves a file of its record fingerprints (`MAGIC`, then sorted,
//! distinct u128s, 16 bytes little-endian each): a *run*. A new release must skip every
//! record whose fingerprint is in any run of the retention window: at a million records a
//! day over 90 days that is 90M fingerprints, 1.4 GiB as one sorted array. So the runs
//! stay on disk and a filter over them answers first:
//!
//! - The filter is a quotient filter: the top `b` bits of a fingerprint name its bucket
//!   (`b` chosen for 8 to 16 keys a bucket; one u32 offset a bucket, 0.25 to 0.5 bytes a
//!   key), and each key keeps the next 16 bits (its remainder, a u16) and the ordinal of
//!   its run (a u8 up to 256 runs, a u16 up to 65,536, else a u32). Each run adds its
//!   sparse index: the top 64 bits of every 64th value (0.125 bytes a key).
//! - [`PriorLedger::contains`] scans the bucket of the fingerprint for its remainder; a
//!   match is a candidate, confirmed exactly in its run: the sparse index names one block
//!   of 64 values (1 KiB), read with one `pread` and binary-searched. A fingerprint in two
//!   runs is fine: either confirms it.
//! - [`PriorLedgerBuilder`] builds a filter in memory over runs streamed into a temp file
//!   (the uncached path). The ledger cache (cache.rs) keeps one filter per tenant-dataset
//!   in a file (a *segment*, laid out as [`Layout`] says) over its local copies of the
//!   runs, and reads it back in one sequential pass instead of rebuilding it: it masks
//!   the segment's runs that left the window, and adds the runs the segment lacks as a
//!   second, small filter until a fold ([`write_segment`]) merges them in, in the
//!   segment's own arrays, and writes a new segment file.
//!
//! Costs, for up to 256 runs: 3 + 4/k + 0.125 bytes a key of filter in memory (k, the keys a bucket,
//! is between 8 and 16: about 3.5 bytes a key at 90M; one byte more from 257 runs to
//! 65,536) and 16 bytes a key of runs on disk (their pages in the page cache while warm).
//! A probe of a fresh fingerprint reads one bucket offset and one run of about k
//! remainders, two cache misses and no disk; it is a false candidate (one `pread`) with a
//! chance of k / 2^16, about 2e-4. A probe of a present fingerprint costs one `pread` of
//! 1 KiB. Fingerprints are keyed SipHash-128, uniformly random: were they not, buckets
//! would be uneven and probes slower, never wrong.
//!
//! The filter has no false negatives (every key of a run it holds is in its bucket) and
//! the confirmation in the run has no false positives, so [`PriorLedger::contains`] is
//! exact for the runs it holds.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

/// The header of a ledger file (a run).
pub const MAGIC: &[u8; 8] = b"SPRL\x01\0\0\0";
/// The header of a filter's file (a segment).
const SEGMENT_MAGIC: &[u8; 8] = b"SPLS\x01\0\0\0";
/// Bytes of a filter's header.
const HEADER: usize = 64;
/// Every array of a segment file starts on a multiple of this.
const ALIGN: usize = 64;

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

/// Why a ledger file or a cached filter was refused.
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
    /// A cached filter (segment) is not one this build wrote whole.
    Damaged(String),
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
            Self::Damaged(why) => write!(f, "cached record ledger filter unusable: {why}"),
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

/// One run's values: in a file of its own (a cached run, after its magic) or in a shared
/// temp file.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    source: Source,
    /// Byte offset of its first value.
    offset: u64,
    /// Its values.
    len: u64,
}

/// Where a run's bytes are.
#[derive(Debug, Clone)]
enum Source {
    /// The uncached path's temp file, shared by all its runs.
    Shared(Arc<File>),
    /// A cached run's own file, opened on its first read. A window can hold thousands of
    /// runs: at most `KEPT_OPEN` of them (process-wide) stay open, the others are opened
    /// for each read.
    Cached {
        path: Arc<PathBuf>,
        open: Arc<OnceLock<File>>,
    },
}

/// Cached run files kept open at once, in the whole process.
const KEPT_OPEN: usize = 256;
static OPEN_RUNS: AtomicUsize = AtomicUsize::new(0);

impl Run {
    /// A cached run file whose size says it holds `len` values (checked when written).
    pub(crate) fn cached(path: PathBuf, len: u64) -> Option<Self> {
        let bytes = std::fs::metadata(&path).ok()?.len();
        (bytes == MAGIC.len() as u64 + 16 * len).then(|| Self {
            source: Source::Cached {
                path: Arc::new(path),
                open: Arc::new(OnceLock::new()),
            },
            offset: MAGIC.len() as u64,
            len,
        })
    }

    fn with_file<R>(&self, f: impl FnOnce(&File) -> io::Result<R>) -> io::Result<R> {
        match &self.source {
            Source::Shared(file) => f(file),
            Source::Cached { path, open } => {
                if let Some(file) = open.get() {
                    return f(file);
                }
                let file = File::open(path.as_path())?;
                if OPEN_RUNS.fetch_add(1, Ordering::Relaxed) < KEPT_OPEN {
                    match open.set(file) {
                        Ok(()) => f(open.get().expect("just set")),
                        Err(file) => {
                            OPEN_RUNS.fetch_sub(1, Ordering::Relaxed);
                            f(&file)
                        }
                    }
                } else {
                    OPEN_RUNS.fetch_sub(1, Ordering::Relaxed);
                    f(&file)
                }
            }
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        self.with_file(|f| f.read_exact_at(buf, at))
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Source::Cached { open, .. } = self
            && Arc::strong_count(open) == 1
            && open.get().is_some()
        {
            OPEN_RUNS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Run {
    /// Whether `fp` is one of this run's values. `index` holds the top 64 bits of values
    /// 0, block, 2 * block, ...
    fn contains(&self, index: &[u64], fp: u128, block: usize) -> io::Result<bool> {
        let top = (fp >> 64) as u64;
        // Blocks before `lo` end below fp; blocks from `hi` on start above it. Equal tops
        // (values sharing their top 64 bits) can make the range wider than one block.
        let lo = index.partition_point(|&t| t < top).saturating_sub(1);
        let hi = index.partition_point(|&t| t <= top);
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
            self.read_exact_at(&mut buf[..16], self.offset + m * 16)?;
            match value(&buf[..16]).cmp(&fp) {
                std::cmp::Ordering::Equal => return Ok(true),
                std::cmp::Ordering::Less => a = m + 1,
                std::cmp::Ordering::Greater => e = m,
            }
        }
        let n = (e - a) as usize;
        self.read_exact_at(&mut buf[..n * 16], self.offset + a * 16)?;
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
    fn for_each(&self, buf: &mut [u8], mut f: impl FnMut(u128)) -> io::Result<()> {
        self.with_file(|file| {
            let mut pos = self.offset;
            let end = self.offset + self.len * 16;
            while pos < end {
                let n = (end - pos).min(buf.len() as u64) as usize;
                file.read_exact_at(&mut buf[..n], pos)?;
                buf[..n].chunks_exact(16).for_each(|c| f(value(c)));
                pos += n as u64;
            }
            Ok(())
        })
    }
}

/// A run with its sparse index, ready to be built into a filter.
#[derive(Debug)]
pub(crate) struct IndexedRun {
    run: Run,
    index: Vec<u64>,
}

impl IndexedRun {
    /// A cached run file, read once to check it and index it.
    pub(crate) fn open(path: PathBuf) -> Result<Self, LedgerError> {
        let file = File::open(&path)?;
        let mut reader = io::BufReader::with_capacity(CHUNK, &file);
        let (len, index) = scan_run(&mut reader, BLOCK, |_| Ok(()))?;
        let run = Run::cached(path, len)
            .ok_or_else(|| LedgerError::Damaged("a cached run changed while it was read".into()))?;
        Ok(Self { run, index })
    }
}

/// Reads one ledger file from `reader`, checking its magic, length and order, and passes
/// its value bytes to `sink` a chunk at a time. Returns the values' count and the sparse
/// index (the top 64 bits of every `block`th value).
pub(crate) fn scan_run(
    reader: &mut impl Read,
    block: usize,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<(u64, Vec<u64>), LedgerError> {
    let mut magic = [0u8; 8];
    if fill(reader, &mut magic)? < magic.len() || &magic != MAGIC {
        return Err(LedgerError::BadMagic);
    }
    let (mut count, mut prev) = (0u64, None::<u128>);
    let mut index = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = fill(reader, &mut buf)?;
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
            if count % block as u64 == 0 {
                index.push((v >> 64) as u64);
            }
            prev = Some(v);
            count += 1;
        }
        sink(&buf[..n])?;
        if n < buf.len() {
            break;
        }
    }
    index.shrink_to_fit();
    Ok((count, index))
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

/// The bucket of a fingerprint: its top `bits` bits.
fn bucket(fp: u128, bits: u32) -> usize {
    ((fp >> 64) as u64).checked_shr(64 - bits).unwrap_or(0) as usize
}

/// The 16 bits after the bucket's.
fn remainder(fp: u128, bits: u32) -> u16 {
    ((fp >> 64) as u64 >> (48 - bits)) as u16
}

/// Bucket bits for `n` keys: 8 to 16 keys a bucket.
fn bits_for(n: u64, per_bucket: usize) -> u32 {
    (n / per_bucket as u64).max(1).ilog2().min(32)
}

/// Bytes of a run ordinal for `runs` runs.
fn width_for(runs: usize) -> usize {
    if runs <= 1 << 8 {
        1
    } else if runs <= 1 << 16 {
        2
    } else {
        4
    }
}

/// One run in a filter's run table: its id (a release id in a segment, empty in a
/// filter of the uncached path) and its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TableRun {
    pub id: String,
    pub len: u64,
}

/// Where each part of a segment file is: the header (magic, total bytes, bucket bits,
/// ordinal width, keys, block, run table bytes, then the CRC-32 of every byte after the
/// header, written last), the run table (JSON), the runs' sparse
/// indexes one after the other (u64), the bucket offsets (u32, one past the last bucket),
/// the remainders (u16) and the ordinals (u8, u16 or u32).
#[derive(Debug, Clone, PartialEq)]
struct Layout {
    bits: u32,
    n: u64,
    width: usize,
    block: usize,
    table: Range<usize>,
    index: Range<usize>,
    offsets: Range<usize>,
    rems: Range<usize>,
    ords: Range<usize>,
    total: usize,
}

impl Layout {
    fn new(bits: u32, width: usize, block: usize, table_len: usize, runs: &[TableRun]) -> Self {
        let n: u64 = runs.iter().map(|r| r.len).sum();
        let index_len: usize = runs
            .iter()
            .map(|r| (r.len as usize).div_ceil(block) * 8)
            .sum();
        let mut at = HEADER;
        let mut next = |len: usize| {
            let start = at.next_multiple_of(ALIGN);
            at = start + len;
            start..at
        };
        let table = next(table_len);
        let index = next(index_len);
        let offsets = next(((1usize << bits) + 1) * 4);
        let rems = next(n as usize * 2);
        let ords = next(n as usize * width);
        let total = at.next_multiple_of(ALIGN);
        Self {
            bits,
            n,
            width,
            block,
            table,
            index,
            offsets,
            rems,
            ords,
            total,
        }
    }

    fn header(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..8].copy_from_slice(SEGMENT_MAGIC);
        h[8..16].copy_from_slice(&(self.total as u64).to_le_bytes());
        h[16..20].copy_from_slice(&self.bits.to_le_bytes());
        h[20..24].copy_from_slice(&(self.width as u32).to_le_bytes());
        h[24..32].copy_from_slice(&self.n.to_le_bytes());
        h[32..40].copy_from_slice(&(self.block as u64).to_le_bytes());
        h[40..48].copy_from_slice(&(self.table.len() as u64).to_le_bytes());
        h
    }

    /// The layout a segment file's header and run table describe, checked against the
    /// file's size.
    /// Its checksum is the body's, which [`BodyReader`] checks as it reads.
    fn read(file: &File) -> Result<(Self, Vec<TableRun>, u32), LedgerError> {
        let damaged = |why: &str| LedgerError::Damaged(why.to_string());
        let size = file.metadata()?.len();
        let mut h = [0u8; HEADER];
        if size < HEADER as u64 {
            return Err(damaged("bad magic"));
        }
        file.read_exact_at(&mut h, 0)?;
        if &h[..8] != SEGMENT_MAGIC {
            return Err(damaged("bad magic"));
        }
        let u64_at = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8"));
        let u32_at = |at: usize| u32::from_le_bytes(h[at..at + 4].try_into().expect("4"));
        let (total, bits, width) = (u64_at(8), u32_at(16), u32_at(20) as usize);
        let (block, table_len) = (u64_at(32) as usize, u64_at(40));
        if total != size {
            return Err(damaged("its length is not the one written"));
        }
        if bits > 31 || ![1, 2, 4].contains(&width) || block == 0 || block > MAX_BLOCK {
            return Err(damaged("bad header"));
        }
        let start = HEADER.next_multiple_of(ALIGN) as u64;
        if start + table_len > size {
            return Err(damaged("run table past the end"));
        }
        let mut table = vec![0u8; table_len as usize];
        file.read_exact_at(&mut table, start)?;
        let runs: Vec<TableRun> =
            serde_json::from_slice(&table).map_err(|e| damaged(&format!("run table: {e}")))?;
        if width < width_for(runs.len()) {
            return Err(damaged("ordinals too narrow for its runs"));
        }
        let layout = Self::new(bits, width, block, table.len(), &runs);
        if layout.n != u64_at(24) || layout.total as u64 != size || layout.header()[..48] != h[..48]
        {
            return Err(damaged("header and run table disagree"));
        }
        Ok((layout, runs, u32_at(48)))
    }
}

/// Reads a segment's body front to back once: the arrays it is asked for, in file order,
/// and the checksum of every byte on the way (the arrays, the table and the padding).
struct BodyReader<'a> {
    file: &'a File,
    pos: usize,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
}

impl<'a> BodyReader<'a> {
    /// A reader of the body from byte `pos` on.
    fn at(file: &'a File, pos: usize) -> Self {
        Self {
            file,
            pos,
            buf: vec![0u8; CHUNK],
            crc: crc32fast::Hasher::new(),
        }
    }

    /// Reads bytes up to `end` a chunk at a time, each chunk checksummed and handed to
    /// `take` while it is in cache.
    fn read_to(&mut self, end: usize, mut take: impl FnMut(&[u8])) -> io::Result<()> {
        while self.pos < end {
            let n = (end - self.pos).min(CHUNK);
            self.file
                .read_exact_at(&mut self.buf[..n], self.pos as u64)?;
            self.crc.update(&self.buf[..n]);
            take(&self.buf[..n]);
            self.pos += n;
        }
        Ok(())
    }

    /// The array at `range` (after every array read before it).
    fn array<T: Le>(&mut self, range: Range<usize>) -> io::Result<Vec<T>> {
        self.read_to(range.start, |_| {})?;
        let mut out = Vec::with_capacity(range.len() / T::SIZE);
        self.read_to(range.end, |chunk| {
            out.extend(chunk.chunks_exact(T::SIZE).map(T::take));
        })?;
        Ok(out)
    }

    /// The checksum of what was read, after reading on to `end`.
    fn crc_to(mut self, end: usize) -> io::Result<crc32fast::Hasher> {
        self.read_to(end, |_| {})?;
        Ok(self.crc)
    }
}

/// The run of each key, as narrow as the number of runs allows.
#[derive(Debug)]
enum Ordinals {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Ordinals {
    fn new(width: usize, n: usize) -> Self {
        match width {
            1 => Self::U8(vec![0; n]),
            2 => Self::U16(vec![0; n]),
            _ => Self::U32(vec![0; n]),
        }
    }

    /// Only called with `r` below the run count the width was chosen for, which fits.
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

/// Integers stored little-endian in a segment file.
trait Le: Copy + Default {
    const SIZE: usize;
    /// Writes the value into `out`, exactly `SIZE` bytes.
    fn put_at(self, out: &mut [u8]);
    fn take(bytes: &[u8]) -> Self;
}

macro_rules! le {
    ($($t:ty),*) => {$(
        impl Le for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put_at(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            fn take(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("sized chunk"))
            }
        }
    )*};
}
le!(u8, u16, u32, u64);

/// Buffered positional writes of one array of a segment file.
struct ArrayWriter<'a> {
    file: &'a File,
    pos: u64,
    buf: Vec<u8>,
    /// The checksum of every byte written.
    crc: crc32fast::Hasher,
}

impl<'a> ArrayWriter<'a> {
    fn new(file: &'a File, at: usize) -> Self {
        Self {
            file,
            pos: at as u64,
            buf: Vec::with_capacity(CHUNK),
            crc: crc32fast::Hasher::new(),
        }
    }

    /// `vs`, a buffer's worth at a time, converted in place.
    fn all<T: Le>(&mut self, vs: &[T]) -> io::Result<()> {
        for part in vs.chunks(CHUNK / T::SIZE) {
            let at = self.buf.len();
            self.buf.resize(at + part.len() * T::SIZE, 0);
            for (out, &v) in self.buf[at..].chunks_exact_mut(T::SIZE).zip(part) {
                v.put_at(out);
            }
            if self.buf.len() >= CHUNK {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Zeros up to byte `at` of the file (the padding before an array).
    fn pad_to(&mut self, at: usize) -> io::Result<()> {
        let end = self.pos as usize + self.buf.len();
        self.all(&vec![0u8; at.saturating_sub(end)])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.write_all_at(&self.buf, self.pos)?;
        self.crc.update(&self.buf);
        self.pos += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// A run ordinal as stored: u8, u16 or u32.
trait Ordinal: Copy + Default + TryFrom<usize> + Into<u64> {}
impl Ordinal for u8 {}
impl Ordinal for u16 {}
impl Ordinal for u32 {}

/// [`Filter::fold`] on the arrays: keeps the keys whose run `new_ord` maps (to its new
/// ordinal), then adds `added[k]` (bucket and remainder, in bucket order) under ordinal
/// `kept + k`, ending with `n` keys. False when the counts do not add up (a damaged run).
fn fold_keys<T: Ordinal>(
    offsets: &mut [u32],
    rems: &mut Vec<u16>,
    ords: &mut Vec<T>,
    new_ord: &[usize],
    kept: usize,
    added: &[Vec<(u32, u16)>],
    n: usize,
) -> bool {
    let buckets = offsets.len() - 1;
    if rems.len() != ords.len() || offsets[buckets] as usize != rems.len() {
        return false;
    }
    // Old ordinal to new, as stored; `None` for a run not kept.
    let map: Vec<Option<T>> = new_ord
        .iter()
        .map(|&o| {
            if o == usize::MAX {
                None
            } else {
                T::try_from(o).ok()
            }
        })
        .collect();
    if new_ord
        .iter()
        .zip(&map)
        .any(|(&o, m)| o != usize::MAX && m.is_none())
    {
        return false;
    }
    // Forward: drop the keys of runs not kept; a key only ever moves to a lower slot.
    let mut w = 0usize;
    for b in 0..buckets {
        let (lo, hi) = (offsets[b] as usize, offsets[b + 1] as usize);
        offsets[b] = w as u32;
        for i in lo..hi {
            let Some(&o) = map.get(Into::<u64>::into(ords[i]) as usize) else {
                return false;
            };
            if let Some(o) = o {
                rems[w] = rems[i];
                ords[w] = o;
                w += 1;
            }
        }
    }
    let total: usize = added.iter().map(Vec::len).sum();
    if w + total != n {
        return false;
    }
    rems.resize(n.max(rems.len()), 0);
    ords.resize(n.max(ords.len()), T::default());
    let Some(new_ords) = (0..added.len())
        .map(|k| T::try_from(kept + k).ok())
        .collect::<Option<Vec<T>>>()
    else {
        return false;
    };
    // Backward: each bucket's kept keys move up, as one block, by the new keys of it and
    // of every bucket before it, so a key is written only to its own slot or to one
    // already moved; the bucket's new keys go after them.
    let mut ends: Vec<usize> = added.iter().map(Vec::len).collect();
    let mut next = w;
    let mut w = n;
    for b in (0..buckets).rev() {
        let (lo, hi) = (offsets[b] as usize, next);
        for (k, keys) in added.iter().enumerate().rev() {
            while ends[k] > 0 && keys[ends[k] - 1].0 as usize == b {
                ends[k] -= 1;
                w -= 1;
                rems[w] = keys[ends[k]].1;
                ords[w] = new_ords[k];
            }
        }
        w -= hi - lo;
        if w != lo {
            rems.copy_within(lo..hi, w);
            ords.copy_within(lo..hi, w);
        }
        next = lo;
        offsets[b] = w as u32;
    }
    offsets[buckets] = n as u32;
    rems.truncate(n);
    ords.truncate(n);
    w == 0 && ends.iter().all(|&e| e == 0)
}

/// A filter over some runs.
#[derive(Debug)]
struct Filter {
    layout: Layout,
    table: Vec<TableRun>,
    /// The runs' sparse indexes, one after the other.
    index: Vec<u64>,
    /// Where each bucket starts in `rems` and `ords`, and the key count last.
    offsets: Vec<u32>,
    rems: Vec<u16>,
    ords: Ordinals,
    /// Per run ordinal: the run and its index's range in `index`, or None where the run
    /// is masked (out of the window): its keys are skipped.
    runs: Vec<Option<(Run, Range<usize>)>>,
}

impl Filter {
    /// Builds a filter over `runs` (ids in `table`): counts each bucket's keys, then
    /// places them, reading every run twice.
    fn build(layout: Layout, table: Vec<TableRun>, runs: &[&IndexedRun]) -> io::Result<Self> {
        let buckets = 1usize << layout.bits;
        let mut offsets = vec![0u32; buckets + 1];
        let mut buf = vec![0u8; CHUNK];
        for r in runs {
            r.run
                .for_each(&mut buf, |v| offsets[bucket(v, layout.bits)] += 1)?;
        }
        // Each offset becomes the end of its bucket, then is moved down as keys are
        // placed, ending as its start; offsets[buckets] stays n.
        let mut sum = 0u32;
        for o in &mut offsets[..buckets] {
            sum += *o;
            *o = sum;
        }
        offsets[buckets] = sum;
        let n = layout.n as usize;
        let mut rems = vec![0u16; n];
        let mut ords = Ordinals::new(layout.width, n);
        for (i, r) in runs.iter().enumerate() {
            r.run.for_each(&mut buf, |v| {
                let b = bucket(v, layout.bits);
                offsets[b] -= 1;
                let at = offsets[b] as usize;
                rems[at] = remainder(v, layout.bits);
                ords.set(at, i);
            })?;
        }
        let index = runs.iter().flat_map(|r| r.index.iter().copied()).collect();
        let runs = runs.iter().map(|r| Some(r.run.clone())).collect();
        Ok(Self::assemble(
            layout, table, index, offsets, rems, ords, runs,
        ))
    }

    fn assemble(
        layout: Layout,
        table: Vec<TableRun>,
        index: Vec<u64>,
        offsets: Vec<u32>,
        rems: Vec<u16>,
        ords: Ordinals,
        runs: Vec<Option<Run>>,
    ) -> Self {
        let mut at = 0;
        let runs = table
            .iter()
            .zip(runs)
            .map(|(t, run)| {
                let len = (t.len as usize).div_ceil(layout.block);
                let range = at..at + len;
                at += len;
                run.map(|r| (r, range))
            })
            .collect();
        Self {
            layout,
            table,
            index,
            offsets,
            rems,
            ords,
            runs,
        }
    }

    /// Writes the filter to `file` (a segment).
    fn write_to(&self, file: &File) -> io::Result<()> {
        file.set_len(self.layout.total as u64)?;
        let table = serde_json::to_vec(&self.table).expect("a run table serializes");
        file.write_all_at(&self.layout.header(), 0)?;
        // The body front to back, checksummed as it is written.
        let mut w = ArrayWriter::new(file, HEADER);
        w.pad_to(self.layout.table.start)?;
        w.all(&table)?;
        w.pad_to(self.layout.index.start)?;
        w.all(&self.index)?;
        w.pad_to(self.layout.offsets.start)?;
        w.all(&self.offsets)?;
        w.pad_to(self.layout.rems.start)?;
        w.all(&self.rems)?;
        w.pad_to(self.layout.ords.start)?;
        match &self.ords {
            Ordinals::U8(v) => w.all(v)?,
            Ordinals::U16(v) => w.all(v)?,
            Ordinals::U32(v) => w.all(v)?,
        }
        w.pad_to(self.layout.total)?;
        w.flush()?;
        file.write_all_at(&w.crc.finalize().to_le_bytes(), 48)
    }

    /// Reads a segment file whose runs `resolve` names (a run it gives none for is
    /// masked).
    fn read_from(
        file: &File,
        mut resolve: impl FnMut(&TableRun) -> Option<Run>,
    ) -> Result<Self, LedgerError> {
        let (layout, table, crc) = Layout::read(file)?;
        // The remainders (more than half the bytes) on a thread of their own, the rest on
        // this one: the read is copying and page faults, and a release loads its ledger
        // before its transforms start, while the cores are free. Each part checksums what
        // it reads; the parts' checksums combine in file order.
        let (head, rems, tail) = std::thread::scope(|s| {
            let rems = s.spawn(|| -> io::Result<_> {
                let mut body = BodyReader::at(file, layout.rems.start);
                let rems: Vec<u16> = body.array(layout.rems.clone())?;
                Ok((rems, body.crc))
            });
            let head = (|| -> io::Result<_> {
                let mut body = BodyReader::at(file, HEADER);
                let index: Vec<u64> = body.array(layout.index.clone())?;
                let offsets: Vec<u32> = body.array(layout.offsets.clone())?;
                Ok((index, offsets, body.crc_to(layout.rems.start)?))
            })();
            let tail = (|| -> io::Result<_> {
                let mut body = BodyReader::at(file, layout.rems.end);
                let ords = match layout.width {
                    1 => Ordinals::U8(body.array(layout.ords.clone())?),
                    2 => Ordinals::U16(body.array(layout.ords.clone())?),
                    _ => Ordinals::U32(body.array(layout.ords.clone())?),
                };
                Ok((ords, body.crc_to(layout.total)?))
            })();
            let rems = rems
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the remainders' reader stopped")));
            (head, rems, tail)
        });
        let ((index, offsets, mut sum), (rems, rems_sum), (ords, tail_sum)) = (head?, rems?, tail?);
        sum.combine(&rems_sum);
        sum.combine(&tail_sum);
        // Segments are not fsynced (a fold would spend seconds on it): one torn by a crash
        // fails here and is rebuilt from the runs, which are.
        if sum.finalize() != crc {
            return Err(LedgerError::Damaged("checksum mismatch".into()));
        }
        // Probes index by these: they must be in order and end at the key count.
        if offsets.windows(2).any(|w| w[0] > w[1]) || offsets.last() != Some(&(layout.n as u32)) {
            return Err(LedgerError::Damaged("bucket offsets out of order".into()));
        }
        let runs = table.iter().map(&mut resolve).collect();
        Ok(Self::assemble(
            layout, table, index, offsets, rems, ords, runs,
        ))
    }

    /// This filter over its runs in `keep` (its ordinals, in order) and then `runs`, laid
    /// out as `layout` (the same bucket bits and ordinal width as this one), made in this
    /// filter's own arrays: one pass forward drops the keys of the runs not kept (no key
    /// moves up), one pass backward makes room for the new runs' keys and places them (no
    /// key moves down past one not yet moved). No second filter is ever in memory; the
    /// new runs' keys are, as a bucket and a remainder each (8 bytes a key).
    fn fold(
        mut self,
        layout: Layout,
        table: Vec<TableRun>,
        keep: &[usize],
        runs: &[IndexedRun],
        resolve: impl FnMut(&TableRun) -> Option<Run>,
    ) -> io::Result<Self> {
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "record ledger filter: its runs hold other counts than its table says",
            )
        };
        let mut new_ord = vec![usize::MAX; self.runs.len()];
        for (i, &o) in keep.iter().enumerate() {
            new_ord[o] = i;
        }
        let mut added: Vec<Vec<(u32, u16)>> = Vec::with_capacity(runs.len());
        let mut buf = vec![0u8; CHUNK];
        for r in runs {
            let mut keys = Vec::with_capacity(r.run.len as usize);
            r.run.for_each(&mut buf, |v| {
                keys.push((bucket(v, layout.bits) as u32, remainder(v, layout.bits)));
            })?;
            added.push(keys);
        }
        let n = layout.n as usize;
        let ok = match &mut self.ords {
            Ordinals::U8(v) => fold_keys(
                &mut self.offsets,
                &mut self.rems,
                v,
                &new_ord,
                keep.len(),
                &added,
                n,
            ),
            Ordinals::U16(v) => fold_keys(
                &mut self.offsets,
                &mut self.rems,
                v,
                &new_ord,
                keep.len(),
                &added,
                n,
            ),
            Ordinals::U32(v) => fold_keys(
                &mut self.offsets,
                &mut self.rems,
                v,
                &new_ord,
                keep.len(),
                &added,
                n,
            ),
        };
        if !ok {
            return Err(bad());
        }
        drop(added);
        let mut index = Vec::with_capacity(self.index.len());
        for &o in keep {
            if let Some((_, range)) = &self.runs[o] {
                index.extend_from_slice(&self.index[range.clone()]);
            }
        }
        for r in runs {
            index.extend_from_slice(&r.index);
        }
        let resolved = table.iter().map(resolve).collect();
        Ok(Self::assemble(
            layout,
            table,
            index,
            self.offsets,
            self.rems,
            self.ords,
            resolved,
        ))
    }

    fn contains(&self, fp: u128) -> io::Result<bool> {
        let b = bucket(fp, self.layout.bits);
        let (lo, hi) = (self.offsets[b] as usize, self.offsets[b + 1] as usize);
        let rem = remainder(fp, self.layout.bits);
        // A run's keys are adjacent in a bucket: each run is tried once.
        let mut tried = usize::MAX;
        for (i, &r) in self.rems[lo..hi].iter().enumerate() {
            if r != rem {
                continue;
            }
            let ord = self.ords.get(lo + i);
            if ord == tried {
                continue;
            }
            tried = ord;
            let Some(Some((run, index))) = self.runs.get(ord) else {
                // Masked (or, in a damaged file, no run at all): nothing to confirm.
                continue;
            };
            if run.contains(&self.index[index.clone()], fp, self.layout.block)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Keys of the runs not masked.
    fn len(&self) -> usize {
        self.runs
            .iter()
            .flatten()
            .map(|(r, _)| r.len as usize)
            .sum()
    }

    fn heap_bytes(&self) -> usize {
        if self.layout.n == 0 {
            return 0;
        }
        self.offsets.capacity() * 4
            + self.rems.capacity() * 2
            + self.ords.heap_bytes()
            + self.index.capacity() * 8
            + self.runs.capacity() * std::mem::size_of::<Option<(Run, Range<usize>)>>()
    }
}

/// Offsets and counts are u32: a filter holds at most u32::MAX keys.
fn too_many() -> LedgerError {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "more than 4,294,967,295 prior fingerprints",
    )
    .into()
}

/// The layout of a filter over `table`'s runs.
fn layout_for(table: &[TableRun], per_bucket: usize, block: usize) -> Result<Layout, LedgerError> {
    let n: u64 = table.iter().map(|r| r.len).sum();
    if n > u64::from(u32::MAX) {
        return Err(too_many());
    }
    let table_len = serde_json::to_vec(table)
        .expect("a run table serializes")
        .len();
    Ok(Layout::new(
        bits_for(n, per_bucket),
        width_for(table.len()),
        block,
        table_len,
        table,
    ))
}

/// A filter over `runs` only, in memory: the runs a segment lacks. `ids` names them.
pub(crate) fn build_filter(
    runs: &[IndexedRun],
    ids: Vec<String>,
) -> Result<PriorLedger, LedgerError> {
    let table: Vec<TableRun> = ids
        .into_iter()
        .zip(runs)
        .map(|(id, r)| TableRun { id, len: r.run.len })
        .collect();
    let layout = layout_for(&table, PER_BUCKET, BLOCK)?;
    let all: Vec<&IndexedRun> = runs.iter().collect();
    Ok(PriorLedger {
        filters: vec![Filter::build(layout, table, &all)?],
    })
}

/// Writes a segment to `file` over the runs of `base` in `keep` (its ordinals, in order)
/// and then `runs`, named by `ids`, and returns it as a ledger whose runs `resolve` names.
/// Where the bucket bits stay those of `base`, its kept keys are copied bucket by bucket
/// and the new runs merged in, in one pass straight to the file (no second filter in
/// memory); otherwise every run is read again (re-bucketing needs bits a filter does not
/// keep). `base` is consumed: its memory is freed before the new segment is read.
/// Returns the ledger and whether it was merged (not rebuilt).
pub(crate) fn write_segment(
    file: &File,
    base: Option<PriorLedger>,
    keep: &[usize],
    runs: &[IndexedRun],
    ids: Vec<String>,
    resolve: impl FnMut(&TableRun) -> Option<Run>,
) -> Result<(PriorLedger, bool), LedgerError> {
    let base = base.and_then(|mut l| (!l.filters.is_empty()).then(|| l.filters.swap_remove(0)));
    let lens = keep
        .iter()
        .map(|&o| {
            base.as_ref()
                .and_then(|b| b.runs[o].as_ref())
                .map_or(0, |(r, _)| r.len)
        })
        .chain(runs.iter().map(|r| r.run.len));
    if ids.len() != keep.len() + runs.len() {
        return Err(LedgerError::Damaged("run names and runs disagree".into()));
    }
    let table: Vec<TableRun> = ids
        .into_iter()
        .zip(lens)
        .map(|(id, len)| TableRun { id, len })
        .collect();
    let layout = layout_for(&table, PER_BUCKET, BLOCK)?;
    match base {
        Some(b)
            if b.layout.bits == layout.bits
                && b.layout.block == layout.block
                && b.layout.width == layout.width =>
        {
            let filter = b.fold(layout, table, keep, runs, resolve)?;
            filter.write_to(file)?;
            Ok((
                PriorLedger {
                    filters: vec![filter],
                },
                true,
            ))
        }
        base => {
            let base_runs: Vec<IndexedRun> = match &base {
                Some(b) => keep
                    .iter()
                    .filter_map(|&o| b.runs[o].as_ref())
                    .map(|(run, index)| IndexedRun {
                        run: run.clone(),
                        index: b.index[index.clone()].to_vec(),
                    })
                    .collect(),
                None => Vec::new(),
            };
            drop(base);
            let all: Vec<&IndexedRun> = base_runs.iter().chain(runs).collect();
            let filter = Filter::build(layout, table, &all)?;
            filter.write_to(file)?;
            Ok((
                PriorLedger {
                    filters: vec![filter],
                },
                false,
            ))
        }
    }
}

/// Collects ledger files ([`PriorLedgerBuilder::add_run`]) into a [`PriorLedger`] of the
/// uncached path: the runs in one temp file, the filter in memory.
#[derive(Debug)]
pub struct PriorLedgerBuilder {
    file: Arc<File>,
    runs: Vec<IndexedRun>,
    /// End of the last run in the temp file.
    end: u64,
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
            file: Arc::new(file),
            runs: Vec::new(),
            end: 0,
            block: BLOCK,
            per_bucket: PER_BUCKET,
        })
    }

    /// Adds one ledger file, read as a stream. A refused file adds nothing: the builder
    /// stays as it was.
    pub fn add_run(&mut self, mut reader: impl Read) -> Result<(), LedgerError> {
        let offset = self.end.next_multiple_of(PAGE);
        let mut pos = offset;
        let file = self.file.clone();
        // Positional writes: a run refused halfway leaves bytes past `end` only, which the
        // next run overwrites.
        let (len, index) = scan_run(&mut reader, self.block, |bytes| {
            file.write_all_at(bytes, pos)?;
            pos += bytes.len() as u64;
            Ok(())
        })?;
        let held: u64 = self.runs.iter().map(|r| r.run.len).sum();
        if held + len > u64::from(u32::MAX) {
            return Err(too_many());
        }
        self.runs.push(IndexedRun {
            run: Run {
                source: Source::Shared(self.file.clone()),
                offset,
                len,
            },
            index,
        });
        self.end = pos;
        Ok(())
    }

    /// Builds the filter over every run added.
    pub fn finish(self) -> io::Result<PriorLedger> {
        let table: Vec<TableRun> = self
            .runs
            .iter()
            .map(|r| TableRun {
                id: String::new(),
                len: r.run.len,
            })
            .collect();
        let layout = layout_for(&table, self.per_bucket, self.block).map_err(|e| match e {
            LedgerError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        })?;
        let all: Vec<&IndexedRun> = self.runs.iter().collect();
        Ok(PriorLedger {
            filters: vec![Filter::build(layout, table, &all)?],
        })
    }
}

/// The fingerprints of earlier releases: exact membership from compact filters and the
/// runs on disk. The default is empty: it holds nothing and answers false.
#[derive(Debug, Default)]
pub struct PriorLedger {
    /// The cached segment first (when there is one), then a filter of the runs it lacks.
    filters: Vec<Filter>,
}

impl PriorLedger {
    /// The ledger of a segment file whose runs `resolve` names (a run it gives no file
    /// for is masked), and the segment's run table.
    pub(crate) fn of_segment(
        file: &File,
        resolve: impl FnMut(&TableRun) -> Option<Run>,
    ) -> Result<Self, LedgerError> {
        Ok(Self {
            filters: vec![Filter::read_from(file, resolve)?],
        })
    }

    /// The run table of a segment file, from its header only (no checksum: a reader of the
    /// whole file checks that).
    pub(crate) fn segment_table(file: &File) -> Result<Vec<TableRun>, LedgerError> {
        Layout::read(file).map(|(_, table, _)| table)
    }

    /// The run table of its first filter (a segment's runs, by ordinal).
    pub(crate) fn table(&self) -> &[TableRun] {
        self.filters.first().map_or(&[], |f| &f.table)
    }

    /// Whether the first filter's run of ordinal `ord` is held (not masked).
    pub(crate) fn holds_run(&self, ord: usize) -> bool {
        self.filters
            .first()
            .and_then(|f| f.runs.get(ord))
            .is_some_and(Option::is_some)
    }

    /// This ledger and `other`'s filters together: membership in either.
    pub(crate) fn with(mut self, other: PriorLedger) -> Self {
        self.filters.extend(other.filters);
        self
    }

    /// Whether `fp` is in any run not masked. Reads the runs only for candidates.
    pub fn contains(&self, fp: u128) -> io::Result<bool> {
        for f in &self.filters {
            if f.contains(fp)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Fingerprints in all runs held (one in two runs counts twice).
    pub fn len(&self) -> usize {
        self.filters.iter().map(Filter::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs held (not masked).
    pub fn runs(&self) -> usize {
        self.filters
            .iter()
            .map(|f| f.runs.iter().flatten().count())
            .sum()
    }

    /// Bytes of memory held (its vectors' capacities), for reports and tests.
    pub fn heap_bytes(&self) -> usize {
        self.filters.iter().map(Filter::heap_bytes).sum()
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
