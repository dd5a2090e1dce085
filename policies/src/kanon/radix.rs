//! A most-significant-digit radix sort of 64-bit keys, for grouping classes at a node.

/// Key bits [`Buckets`] sorts on, in one pass, at most.
const TOP_BITS: u32 = 11;

/// Keys in buckets by the top bits of their bits `low..low + bits` (the bits above must be
/// zero), for a most-significant-digit sort: each bucket is then small enough to sort in
/// cache and to count before the next is sorted, so an evaluation can stop early. At most
/// [`TOP_BITS`] of them, and about two keys per bucket: over a snapshot's thousand classes
/// the 2,048 buckets' counts, zeroed and summed, cost more than the keys themselves. When
/// `bits <= digit` the buckets come out sorted.
pub(super) struct Buckets {
    pub(super) shift: u32,
    /// The key bits the buckets split on.
    pub(super) digit: u32,
    /// Where each bucket ends in the bucketed keys.
    pub(super) ends: Vec<usize>,
}

impl Buckets {
    /// One counting pass.
    pub(super) fn count(keys: &[u64], low: u32, bits: u32) -> Self {
        let per_bucket = usize::BITS - keys.len().leading_zeros();
        let digit = bits.min(TOP_BITS).min(per_bucket.saturating_sub(1).max(1));
        let shift = low + bits - digit;
        let mut ends = vec![0usize; 1 << digit];
        for &k in keys {
            ends[(k >> shift) as usize] += 1;
        }
        let mut sum = 0;
        for end in ends.iter_mut() {
            sum += *end;
            *end = sum;
        }
        Self { shift, digit, ends }
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn range(&self, d: usize) -> std::ops::Range<usize> {
        let start = if d == 0 { 0 } else { self.ends[d - 1] };
        start..self.ends[d]
    }

    /// The fewest leading buckets that hold at least `keys` keys (at least one bucket).
    pub(super) fn holding(&self, keys: usize) -> usize {
        self.ends.partition_point(|&end| end < keys).max(1)
    }

    /// Places the keys of the buckets `digits` (one pass over all keys) in `out`.
    pub(super) fn scatter(&self, keys: &[u64], out: &mut [u64], digits: std::ops::Range<usize>) {
        if digits.is_empty() {
            return;
        }
        let mut next: Vec<usize> = digits.clone().map(|d| self.range(d).start).collect();
        let (first, last) = (digits.start as u64, digits.end as u64);
        for &k in keys {
            let d = k >> self.shift;
            if d >= first && d < last {
                let slot = &mut next[(d - first) as usize];
                out[*slot] = k;
                *slot += 1;
            }
        }
    }
}

/// Sorts `keys` by bits `low..low + bits` (the bits above must be zero). An LSD radix sort,
/// 11 bits a pass, skipping digits all keys share, for large slices: on ~10^5 keys it
/// takes a few passes over memory where a comparison sort takes ~17 rounds of branchy
/// compares. Hand-written: the sort is 20 lines and the crates that offer one bring far
/// more.
pub(super) fn sort_by_bits(keys: &mut [u64], low: u32, bits: u32) {
    const DIGIT: u32 = 11;
    const MASK: u64 = (1 << DIGIT) - 1;
    if keys.len() < 1 << 12 {
        keys.sort_unstable_by_key(|k| k >> low);
        return;
    }
    let mut scratch = vec![0u64; keys.len()];
    // Whether the keys are in `scratch` after the last pass that moved them.
    let mut in_scratch = false;
    let mut shift = low;
    while shift < low + bits {
        let (from, to): (&[u64], &mut [u64]) = if in_scratch {
            (&scratch, keys)
        } else {
            (keys, &mut scratch)
        };
        let mut starts = vec![0usize; 1 << DIGIT];
        for &k in from {
            starts[((k >> shift) & MASK) as usize] += 1;
        }
        if !starts.contains(&from.len()) {
            let mut sum = 0;
            for start in starts.iter_mut() {
                let n = *start;
                *start = sum;
                sum += n;
            }
            for &k in from {
                let digit = ((k >> shift) & MASK) as usize;
                to[starts[digit]] = k;
                starts[digit] += 1;
            }
            in_scratch = !in_scratch;
        }
        shift += DIGIT;
    }
    if in_scratch {
        keys.copy_from_slice(&scratch);
    }
}
