//! Quasi-identifier keys: a record's level-0 values encoded and hashed once, where the
//! record is transformed.

/// The level-0 quasi-identifier values of a run of records, one byte key per record, with
/// its hash: what [`QiHistogram::add_all`](super::QiHistogram::add_all) takes. Building keys and hashing them is done
/// where records are transformed (in parallel), so the histogram does one lookup per record.
///
/// Encoding, per value in policy order: `0` for null; a value of up to 253 bytes as one
/// byte `1 + length`, then its UTF-8 bytes; a longer one as `255`, its length as a u32
/// (little-endian), then its bytes. It is unambiguous, so equal keys mean equal values,
/// and short: the class table holds every base class's key (`class_table::ClassTable`).
#[derive(Debug, Default, Clone)]
pub struct QiKeys {
    pub(super) bytes: Vec<u8>,
    pub(super) ends: Vec<usize>,
    pub(super) hashes: Vec<u64>,
}

impl QiKeys {
    /// Room for `records` keys of about `key_bytes` bytes each before growing.
    pub fn with_capacity(records: usize, key_bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(records * key_bytes),
            ends: Vec::with_capacity(records),
            hashes: Vec::with_capacity(records),
        }
    }

    /// Records whose key is complete.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub(super) fn start(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Appends the next value of the current record.
    pub fn push_value(&mut self, value: Option<&str>) {
        match value {
            None => self.bytes.push(0),
            Some(v) => {
                match u8::try_from(v.len() + 1) {
                    Ok(tag) if tag < LONG_VALUE => self.bytes.push(tag),
                    _ => {
                        self.bytes.push(LONG_VALUE);
                        // Values are bounded by the line limit, far below 4 GiB.
                        self.bytes
                            .extend_from_slice(&(v.len() as u32).to_le_bytes());
                    }
                }
                self.bytes.extend_from_slice(v.as_bytes());
            }
        }
    }

    /// Completes the current record's key.
    pub fn end_record(&mut self) {
        let start = self.start();
        self.hashes.push(key_hash(&self.bytes[start..]));
        self.ends.push(self.bytes.len());
    }

    /// The keys of the records whose `keep` flag is set, in order.
    pub fn retain(&self, keep: &[bool]) -> QiKeys {
        let mut out = QiKeys::with_capacity(keep.len(), 0);
        let mut start = 0;
        for ((&end, &hash), &k) in self.ends.iter().zip(&self.hashes).zip(keep) {
            if k {
                out.bytes.extend_from_slice(&self.bytes[start..end]);
                out.ends.push(out.bytes.len());
                out.hashes.push(hash);
            }
            start = end;
        }
        out
    }

    /// Drops the values pushed since the last completed record (a rejected record).
    pub fn discard_record(&mut self) {
        let start = self.start();
        self.bytes.truncate(start);
    }

    /// The key of record `row`.
    pub fn key(&self, row: usize) -> &[u8] {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.bytes[start..self.ends[row]]
    }

    pub fn hash(&self, row: usize) -> u64 {
        self.hashes[row]
    }

    /// The values of record `row`, in policy order.
    pub fn record(&self, row: usize) -> impl Iterator<Item = Option<&str>> {
        Self::values(self.key(row))
    }

    /// Decodes a key. Keys come from [`QiKeys::push_value`] only; should one be malformed
    /// the values stop early, which the histogram reports as an error.
    pub(super) fn values(key: &[u8]) -> impl Iterator<Item = Option<&str>> {
        let mut rest = key;
        std::iter::from_fn(move || {
            let (&tag, mut tail) = rest.split_first()?;
            let len = match tag {
                0 => {
                    rest = tail;
                    return Some(None);
                }
                LONG_VALUE => {
                    let len = u32::from_le_bytes(tail.get(..4)?.try_into().ok()?) as usize;
                    tail = &tail[4..];
                    len
                }
                short => usize::from(short - 1),
            };
            let value = std::str::from_utf8(tail.get(..len)?).ok()?;
            rest = &tail[len..];
            Some(Some(value))
        })
    }
}

/// The tag of a value longer than 253 bytes in an encoded key (see [`QiKeys`]).
pub(super) const LONG_VALUE: u8 = 255;

/// The hash of an encoded key: SipHash with keys drawn once per process (std's
/// `RandomState`). Producers are untrusted, and values they craft to collide would turn
/// each histogram lookup into a scan. FxHash, seeded or not, is not built to resist
/// chosen collisions; keyed SipHash is, at some tens of nanoseconds a key, spent on the
/// rayon workers where records are transformed.
pub(super) fn key_hash(key: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    static STATE: std::sync::LazyLock<std::hash::RandomState> =
        std::sync::LazyLock::new(std::hash::RandomState::new);
    STATE.hash_one(key)
}
