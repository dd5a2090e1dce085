//! The base classes by encoded key, in a table tuned for the histogram's access pattern.

use super::keys::key_hash;

/// The base classes by encoded key: open addressing, linear probing, one cache line per
/// slot holding the class id, a tag from the key's hash and, when it fits, the key.
///
/// Written here rather than using hashbrown's table for one reason: a batch's slots are
/// first loaded in a tight loop of independent loads ([`ClassTable::warm`]), so that
/// their cache misses overlap, before the lookups that compare keys. That needs a key's
/// slot before the lookup, which hashbrown keeps private. On 1M `contacts` records
/// (163k classes, a table of 16 MiB) the histogram thread took about a sixth less CPU
/// than with hashbrown holding the same slots.
#[derive(Debug)]
pub(super) struct ClassTable {
    pub(super) slots: Vec<ClassSlot>,
    /// 64 minus log2 of the slot count: a hash's top bits pick its first slot.
    pub(super) shift: u32,
    pub(super) len: usize,
}

impl ClassTable {
    pub(super) const INITIAL_SLOTS: usize = 1024;

    pub(super) fn with_slots(slots: usize) -> Self {
        debug_assert!(slots.is_power_of_two());
        Self {
            slots: vec![ClassSlot::EMPTY; slots],
            shift: 64 - slots.trailing_zeros(),
            len: 0,
        }
    }

    pub(super) fn first_slot(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }

    /// Loads the first slot of each hash into the cache. The loads are independent, so
    /// the CPU overlaps their misses, where lookups one after the other would each wait
    /// on their own.
    pub(super) fn warm(&self, hashes: &[u64]) {
        let mut any = 0u32;
        for &hash in hashes {
            any ^= self.slots[self.first_slot(hash)].class;
        }
        std::hint::black_box(any);
    }

    pub(super) fn find(&self, hash: u64, key: &[u8], long_keys: &[u8]) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = self.first_slot(hash);
        loop {
            let slot = &self.slots[i];
            if slot.class == ClassSlot::EMPTY.class {
                return None;
            }
            if slot.tag == hash as u32 && slot.key(long_keys) == key {
                return Some(slot.class);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds a class whose key is not in the table. Growing rehashes the keys (from their
    /// slots and `long_keys`): a few times per release, where keeping every class's hash
    /// would cost 8 bytes a class for the whole release.
    pub(super) fn insert(&mut self, hash: u64, slot: ClassSlot, long_keys: &[u8]) {
        // At most three quarters full: a miss probes about 8 slots, a hit 2.5.
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            let old = std::mem::replace(self, Self::with_slots(self.slots.len() * 2));
            for slot in old
                .slots
                .into_iter()
                .filter(|s| s.class != ClassSlot::EMPTY.class)
            {
                self.place(key_hash(slot.key(long_keys)), slot);
            }
        }
        self.place(hash, slot);
    }

    pub(super) fn place(&mut self, hash: u64, slot: ClassSlot) {
        let mask = self.slots.len() - 1;
        let mut i = self.first_slot(hash);
        while self.slots[i].class != ClassSlot::EMPTY.class {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
        self.len += 1;
    }
}

/// A base class as [`ClassTable`] holds it: one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
pub(super) struct ClassSlot {
    /// The class id; `u32::MAX` (never a class, see [`MAX_IDS`]) marks an empty slot.
    pub(super) class: u32,
    /// The low 32 bits of the key's hash: most slots of other keys are passed over
    /// without comparing keys.
    pub(super) tag: u32,
    pub(super) len: u32,
    /// The key when `len <= INLINE_KEY`; else its start in `long_keys` (8 bytes, LE).
    pub(super) inline: [u8; INLINE_KEY],
}

/// Key bytes a [`ClassSlot`] holds itself: what is left of a cache line. A `contacts`
/// key (five values: masked phone, IP prefix, ZIP, age, gender) takes about 45.
pub(super) const INLINE_KEY: usize = 52;

impl ClassSlot {
    pub(super) const EMPTY: Self = Self {
        class: u32::MAX,
        tag: 0,
        len: 0,
        inline: [0; INLINE_KEY],
    };

    pub(super) fn new(class: u32, hash: u64, key: &[u8], long_keys: &mut Vec<u8>) -> Self {
        let mut inline = [0u8; INLINE_KEY];
        if key.len() <= INLINE_KEY {
            inline[..key.len()].copy_from_slice(key);
        } else {
            inline[..8].copy_from_slice(&(long_keys.len() as u64).to_le_bytes());
            long_keys.extend_from_slice(key);
        }
        Self {
            class,
            tag: hash as u32,
            // Keys are bounded by the line limit, far below 4 GiB.
            len: key.len() as u32,
            inline,
        }
    }

    pub(super) fn key<'a>(&'a self, long_keys: &'a [u8]) -> &'a [u8] {
        let len = self.len as usize;
        if len <= INLINE_KEY {
            &self.inline[..len]
        } else {
            let mut start = [0u8; 8];
            start.copy_from_slice(&self.inline[..8]);
            let start = u64::from_le_bytes(start) as usize;
            &long_keys[start..start + len]
        }
    }
}
