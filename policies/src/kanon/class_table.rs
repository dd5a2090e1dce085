//! The base classes by encoded key, in a table tuned for the histogram's access pattern.

use super::keys::key_hash;

/// The base classes by encoded key: open addressing, linear probing over slots of 8 bytes
/// (the class id and a tag from the key's hash), the keys themselves back to back in
/// class order.
///
/// Written here rather than using hashbrown's table for one reason: a batch's slots, then
/// the keys they point to, are first loaded in tight loops of independent loads
/// ([`ClassTable::warm`]), so that their cache misses overlap, before the lookups that
/// compare keys. That needs a key's slot before the lookup, which hashbrown keeps private.
///
/// Slots used to be a cache line each, holding the key when it fitted (52 bytes): one
/// miss a lookup, but 64 bytes a slot at most three quarters full, so 512 MiB of 748 in
/// the histogram of a 20M-record release (3.3M base classes, 8M slots). Keys back to back
/// take their own length (about 45 bytes for `contacts`) and 8 for their end: at 3.3M
/// classes 276 MiB with the vectors' slack (slots 64, keys 180, ends 32).
#[derive(Debug)]
pub(super) struct ClassTable {
    pub(super) slots: Vec<ClassSlot>,
    /// 64 minus log2 of the slot count: a hash's top bits pick its first slot.
    pub(super) shift: u32,
    /// Every class's key, back to back, in class order.
    keys: Vec<u8>,
    /// Where each class's key ends in `keys`: class `c`'s key is
    /// `keys[key_ends[c - 1]..key_ends[c]]`.
    key_ends: Vec<u64>,
}

/// A base class as [`ClassTable`] holds it.
#[derive(Debug, Clone, Copy)]
pub(super) struct ClassSlot {
    /// The class id; `u32::MAX` (never a class, see [`MAX_IDS`](super::histogram::MAX_IDS))
    /// marks an empty slot.
    pub(super) class: u32,
    /// The low 32 bits of the key's hash: most slots of other keys are passed over
    /// without reading their key.
    pub(super) tag: u32,
}

impl ClassSlot {
    const EMPTY: Self = Self {
        class: u32::MAX,
        tag: 0,
    };

    fn is_empty(&self) -> bool {
        self.class == Self::EMPTY.class
    }
}

impl ClassTable {
    pub(super) const INITIAL_SLOTS: usize = 1024;

    pub(super) fn with_slots(slots: usize) -> Self {
        debug_assert!(slots.is_power_of_two());
        Self {
            slots: vec![ClassSlot::EMPTY; slots],
            shift: 64 - slots.trailing_zeros(),
            keys: Vec::new(),
            key_ends: Vec::new(),
        }
    }

    /// Classes held.
    pub(super) fn len(&self) -> usize {
        self.key_ends.len()
    }

    /// Bytes held on the heap, from the capacities.
    pub(super) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.slots.capacity() * size_of::<ClassSlot>()
            + self.keys.capacity()
            + self.key_ends.capacity() * size_of::<u64>()
    }

    fn first_slot(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }

    /// The key of class `class`.
    pub(super) fn key(&self, class: u32) -> &[u8] {
        let c = class as usize;
        let start = if c == 0 { 0 } else { self.key_ends[c - 1] };
        &self.keys[start as usize..self.key_ends[c] as usize]
    }

    /// Loads the first slot of each hash into the cache, then the key that slot points to
    /// where its tag matches (most lookups end at their first slot). Each loop's loads are
    /// independent, so the CPU overlaps their misses, where lookups one after the other
    /// would each wait on their own.
    pub(super) fn warm(&self, hashes: &[u64]) {
        let mut any = 0u64;
        for &hash in hashes {
            any ^= u64::from(self.slots[self.first_slot(hash)].class);
        }
        for &hash in hashes {
            let slot = self.slots[self.first_slot(hash)];
            if !slot.is_empty() && slot.tag == hash as u32 {
                any ^= self.key_ends[slot.class as usize];
            }
        }
        for &hash in hashes {
            let slot = self.slots[self.first_slot(hash)];
            if !slot.is_empty() && slot.tag == hash as u32 {
                any ^= u64::from(self.key(slot.class).first().copied().unwrap_or(0));
            }
        }
        std::hint::black_box(any);
    }

    pub(super) fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = self.first_slot(hash);
        loop {
            let slot = self.slots[i];
            if slot.is_empty() {
                return None;
            }
            if slot.tag == hash as u32 && self.key(slot.class) == key {
                return Some(slot.class);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds a key that is not in the table, as the next class (ids follow insertion:
    /// [`ClassTable::len`] before the call). Growing rehashes the keys: a few times per
    /// release, where keeping every class's hash would cost 8 bytes a class for the whole
    /// release.
    pub(super) fn insert(&mut self, hash: u64, key: &[u8]) -> u32 {
        let class = self.key_ends.len() as u32;
        // At most three quarters full: a miss probes about 8 slots, a hit 2.5.
        if (self.len() + 1) * 4 > self.slots.len() * 3 {
            let slots = self.slots.len() * 2;
            self.slots = vec![ClassSlot::EMPTY; slots];
            self.shift = 64 - slots.trailing_zeros();
            for c in 0..class {
                self.place(key_hash(self.key(c)), c);
            }
        }
        self.keys.extend_from_slice(key);
        self.key_ends.push(self.keys.len() as u64);
        self.place(hash, class);
        class
    }

    fn place(&mut self, hash: u64, class: u32) {
        let mask = self.slots.len() - 1;
        let mut i = self.first_slot(hash);
        while !self.slots[i].is_empty() {
            i = (i + 1) & mask;
        }
        self.slots[i] = ClassSlot {
            class,
            tag: hash as u32,
        };
    }
}
