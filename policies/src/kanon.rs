//! The k-anonymity engine.
//!
//! It works in two passes over a release so that memory is bounded by the
//! quasi-identifier histogram, not by the data:
//!
//! 1. [`QiHistogram::add_all`] takes records' level-0 quasi-identifier values (encoded and
//!    hashed as [`QiKeys`] where the records were transformed) and subject keys, and
//!    returns each record's *base class* (its equivalence class at level 0). The caller
//!    stores that class id beside the record. [`QiHistogram::add`] does the same for one
//!    record given as plain values.
//! 2. [`QiHistogram::decide`] searches the generalization lattice for the least
//!    generalized node (lowest sum of levels; ties: fewest suppressed records, then the
//!    lexicographically smallest level vector in the policy's QI order) at which the
//!    records of classes holding fewer than k **distinct subjects** stay within the
//!    suppression limit. Then [`Decision::is_suppressed`] tells which stored records to
//!    keep, and [`Decision::qi_columns`] turns their class ids into the published
//!    (generalized) columns.
//!
//! Guarantee: every class of a released [`Decision`] holds at least k distinct subjects;
//! when no node fits, the decision is [`Outcome::Withheld`] and nothing may be published.
//!
//! Search: generalizing merges classes, so the number of suppressed records never grows
//! along a lattice edge. Hence "some node with level sum s fits" is monotone in s, and the
//! least level sum is found by binary search. The same monotonicity decides many nodes
//! without counting: a node above one that fits fits, a node below one that fails fails.
//! Only at the least sum is every undecided node counted, for the tie rule.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray, UInt32Array};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::hierarchy::Hierarchy;
use crate::policy::DatasetRules;
use crate::{Error, Result};

/// What a release may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum Outcome {
    /// Publish the records of the classes that meet k.
    Release,
    /// No lattice node meets k within the suppression limit: publish nothing.
    Withheld(String),
    /// No valid records: nothing to publish.
    Empty,
}

/// The engine's verdict on a release.
#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: Outcome,
    /// Chosen generalization level per quasi-identifier (the top node when withheld).
    pub node: Vec<usize>,
    pub records: u64,
    pub distinct_subjects: u64,
    pub suppressed_records: u64,
    /// Classes under k at the chosen node (all of them suppressed): `KAnonViolations`.
    pub violations: u64,
    /// Classes published.
    pub classes: u64,
    /// Smallest published class, in distinct subjects (0 when nothing is published).
    pub smallest_class: u64,
    /// Average published class size, in distinct subjects.
    pub average_class: f64,
    /// Mean over quasi-identifiers of level / top level: 0 is exact, 1 fully suppressed.
    pub information_loss: f64,
    /// Re-identification risk under the prosecutor model (an adversary who knows a
    /// person is in the release): the highest, 1 / the smallest class in subjects.
    pub prosecutor_risk: f64,
    /// The same risk averaged over published records (each 1 / its class's subjects).
    pub average_risk: f64,
    /// Share of published records in classes of fewer than 2k subjects.
    pub small_class_share: f64,
    pub nodes_evaluated: usize,
    /// Per QI: the distinct generalized values at the chosen level, indexed by
    /// `class_values`.
    published_values: Vec<ArrayRef>,
    /// Per QI, per base class: the index of the class's generalized value.
    class_values: Vec<Vec<u32>>,
    /// Per base class: its class at the chosen node.
    class_of_base: Vec<u32>,
    /// Per class at the chosen node: the records it publishes, 0 when it is suppressed
    /// (every class of a withheld release). A base class is suppressed exactly when its
    /// class publishes nothing.
    published_records: Vec<u64>,
}

/// Which file of a release each published record goes to: every file holds whole
/// classes of the chosen node, so each file on its own is k-anonymous (DESIGN invariant
/// 1), not only the release as a whole. A buyer may be handed one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePlan {
    /// Per base class: its file, or [`FilePlan::SUPPRESSED`].
    file_of_base: Vec<u32>,
    /// Per file: the records it holds.
    pub rows: Vec<u64>,
}

impl FilePlan {
    /// The file of a suppressed base class: none.
    pub const SUPPRESSED: u32 = u32::MAX;

    /// The file of the records of this base class, `None` when they are suppressed.
    pub fn file_of(&self, class: u32) -> Option<u32> {
        match self.file_of_base.get(class as usize) {
            Some(&f) if f != Self::SUPPRESSED => Some(f),
            _ => None,
        }
    }

    /// Files of the release (0 when nothing is published).
    pub fn files(&self) -> usize {
        self.rows.len()
    }
}

impl Decision {
    /// The class at the chosen node of the records of a base class (the scope of their
    /// pseudonyms under class scope).
    pub fn class_of(&self, base: u32) -> u32 {
        self.class_of_base
            .get(base as usize)
            .copied()
            .unwrap_or(u32::MAX)
    }

    /// Whether the records of this base class are suppressed.
    pub fn is_suppressed(&self, class: u32) -> bool {
        self.class_of_base
            .get(class as usize)
            .and_then(|&g| self.published_records.get(g as usize))
            .is_none_or(|&records| records == 0)
    }

    /// The generalized quasi-identifier columns (policy order) of the records at `rows`
    /// (in that order), whose base classes `classes` holds.
    pub fn qi_columns(&self, rows: &[u32], classes: &[u32]) -> Result<Vec<ArrayRef>> {
        Ok(self
            .published_values
            .iter()
            .zip(&self.class_values)
            .map(|(values, of_class)| {
                let indices = UInt32Array::from_iter_values(
                    rows.iter().map(|&r| of_class[classes[r as usize] as usize]),
                );
                arrow::compute::take(values.as_ref(), &indices, None)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// Splits the published records into files of at most `max_rows_per_file` records,
    /// each holding whole classes: classes are taken in the order the evaluation numbered
    /// them (that of their generalized keys where it sorts them), and a new file starts
    /// when the next class would overflow the current one. A
    /// class with more records than that alone gets a file of its own, over the limit:
    /// cutting it would leave parts under k.
    pub fn file_plan(&self, max_rows_per_file: u64) -> FilePlan {
        let mut file_of_class = vec![FilePlan::SUPPRESSED; self.published_records.len()];
        let mut rows: Vec<u64> = Vec::new();
        for (class, &records) in self.published_records.iter().enumerate() {
            if records == 0 {
                continue;
            }
            match rows.last_mut() {
                Some(last) if *last + records <= max_rows_per_file.max(1) => *last += records,
                _ => rows.push(records),
            }
            file_of_class[class] = (rows.len() - 1) as u32;
        }
        // A suppressed class publishes no records, so it kept `SUPPRESSED` above.
        let file_of_base = self
            .class_of_base
            .iter()
            .map(|&class| file_of_class[class as usize])
            .collect();
        FilePlan { file_of_base, rows }
    }
}

/// Interned quasi-identifier values and per-class subject sets of one release.
#[derive(Debug)]
pub struct QiHistogram {
    names: Vec<String>,
    hierarchies: Vec<Hierarchy>,
    /// Per QI: level-0 value → id. Id 0 is null.
    dicts: Vec<FxHashMap<Arc<str>, u32>>,
    /// Per QI: id → level-0 value.
    values: Vec<Vec<Option<Arc<str>>>>,
    /// Base classes, found by their encoded key (see [`QiKeys`]).
    classes: ClassTable,
    /// The keys too long to sit in their [`ClassSlot`], back to back.
    long_keys: Vec<u8>,
    /// Per class, per QI (stride `names.len()`): the level-0 value id.
    class_ids: Vec<u32>,
    class_records: Vec<u64>,
    /// Per subject key: its base class while it has been seen in one only; once seen in
    /// several, [`SEVERAL`] plus the index of its classes in `subject_classes`. Memory
    /// follows the distinct subjects, not the records, and the decision needs no sort.
    /// FxHash suits these keys where it does not suit QI keys: a subject key is cut from
    /// a keyed HMAC (or is a record number), so producers cannot choose colliding ones.
    subject_class: FxHashMap<u64, u32>,
    /// The classes of each subject seen in several (deduplicated when small).
    subject_classes: Vec<Vec<u32>>,
    counts_subjects: bool,
    records: u64,
}

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
struct ClassTable {
    slots: Vec<ClassSlot>,
    /// 64 minus log2 of the slot count: a hash's top bits pick its first slot.
    shift: u32,
    len: usize,
}

impl ClassTable {
    const INITIAL_SLOTS: usize = 1024;

    fn with_slots(slots: usize) -> Self {
        debug_assert!(slots.is_power_of_two());
        Self {
            slots: vec![ClassSlot::EMPTY; slots],
            shift: 64 - slots.trailing_zeros(),
            len: 0,
        }
    }

    fn first_slot(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }

    /// Loads the first slot of each hash into the cache. The loads are independent, so
    /// the CPU overlaps their misses, where lookups one after the other would each wait
    /// on their own.
    fn warm(&self, hashes: &[u64]) {
        let mut any = 0u32;
        for &hash in hashes {
            any ^= self.slots[self.first_slot(hash)].class;
        }
        std::hint::black_box(any);
    }

    fn find(&self, hash: u64, key: &[u8], long_keys: &[u8]) -> Option<u32> {
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
    fn insert(&mut self, hash: u64, slot: ClassSlot, long_keys: &[u8]) {
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

    fn place(&mut self, hash: u64, slot: ClassSlot) {
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
struct ClassSlot {
    /// The class id; `u32::MAX` (never a class, see [`MAX_IDS`]) marks an empty slot.
    class: u32,
    /// The low 32 bits of the key's hash: most slots of other keys are passed over
    /// without comparing keys.
    tag: u32,
    len: u32,
    /// The key when `len <= INLINE_KEY`; else its start in `long_keys` (8 bytes, LE).
    inline: [u8; INLINE_KEY],
}

/// Key bytes a [`ClassSlot`] holds itself: what is left of a cache line. A `contacts`
/// key (five values: masked phone, IP prefix, ZIP, age, gender) takes about 45.
const INLINE_KEY: usize = 52;

impl ClassSlot {
    const EMPTY: Self = Self {
        class: u32::MAX,
        tag: 0,
        len: 0,
        inline: [0; INLINE_KEY],
    };

    fn new(class: u32, hash: u64, key: &[u8], long_keys: &mut Vec<u8>) -> Self {
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

    fn key<'a>(&'a self, long_keys: &'a [u8]) -> &'a [u8] {
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

/// The highest number of base classes or distinct values per quasi-identifier: class ids
/// leave the top bit free for [`SEVERAL`].
const MAX_IDS: usize = (1 << 31) - 1;

/// Marks a subject seen in several base classes (see `QiHistogram::subject_class`).
const SEVERAL: u32 = 1 << 31;

impl QiHistogram {
    /// An empty histogram over the dataset's quasi-identifiers.
    pub fn new(rules: &DatasetRules) -> Self {
        let hierarchies: Vec<Hierarchy> = rules
            .qi_rules()
            .filter_map(|r| r.hierarchy().cloned())
            .collect();
        let n = hierarchies.len();
        Self {
            names: rules.qi_rules().map(|r| r.column.clone()).collect(),
            hierarchies,
            dicts: vec![FxHashMap::default(); n],
            values: vec![vec![None]; n],
            classes: ClassTable::with_slots(ClassTable::INITIAL_SLOTS),
            long_keys: Vec::new(),
            class_ids: Vec::new(),
            class_records: Vec::new(),
            subject_class: FxHashMap::default(),
            subject_classes: Vec::new(),
            counts_subjects: rules.subject.is_some(),
            records: 0,
        }
    }

    /// Records added so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Distinct base classes so far.
    pub fn base_classes(&self) -> usize {
        self.class_records.len()
    }

    /// Adds one record: its level-0 QI values (policy order) and subject key (`None`
    /// when the dataset has no subject field). Returns its base class.
    pub fn add(&mut self, qi: &[Option<&str>], subject: Option<u64>) -> Result<u32> {
        debug_assert_eq!(qi.len(), self.names.len());
        let mut keys = QiKeys::default();
        for v in qi {
            keys.push_value(*v);
        }
        keys.end_record();
        Ok(self.add_all(&keys, &[subject])?[0])
    }

    /// Adds every record of a batch of encoded keys (as [`QiKeys`] builds them, hashes
    /// included: that work is done where the records are transformed, in parallel).
    /// Returns each record's base class.
    pub fn add_all(&mut self, keys: &QiKeys, subjects: &[Option<u64>]) -> Result<Vec<u32>> {
        debug_assert_eq!(keys.len(), subjects.len());
        self.classes.warm(&keys.hashes);
        // Sized up front: collecting `Result`s gives no size hint, and the vector grew by
        // doubling, copying as it went.
        let mut classes = Vec::with_capacity(keys.len());
        for row in 0..keys.len() {
            classes.push(self.class_of(keys.key(row), keys.hash(row))?);
        }
        // Counted after the lookups, in loops of their own: the increments do not depend
        // on each other, so their cache misses overlap instead of following each lookup's.
        for &class in &classes {
            self.class_records[class as usize] += 1;
        }
        if self.counts_subjects {
            // A record without a subject is a subject of its own (its 1-based number).
            let first = self.records + 1;
            for (n, (&class, subject)) in (first..).zip(classes.iter().zip(subjects)) {
                self.note_subject(subject.unwrap_or(n), class)?;
            }
        }
        self.records += classes.len() as u64;
        Ok(classes)
    }

    /// The base class of an encoded key, new if the key is.
    fn class_of(&mut self, key: &[u8], hash: u64) -> Result<u32> {
        match self.classes.find(hash, key, &self.long_keys) {
            Some(class) => Ok(class),
            None => self.new_class(key, hash),
        }
    }

    /// Interns a key seen for the first time: its values get ids, it gets a class.
    fn new_class(&mut self, key: &[u8], hash: u64) -> Result<u32> {
        let c = self.class_records.len();
        if c >= MAX_IDS {
            return Err(Error::Capacity("too many equivalence classes".into()));
        }
        let mut count = 0;
        for (q, v) in QiKeys::values(key).enumerate() {
            count += 1;
            let id = match v {
                None => 0,
                Some(v) => match self.dicts[q].get(v) {
                    Some(id) => *id,
                    None => {
                        let id = self.values[q].len();
                        if id >= MAX_IDS {
                            return Err(Error::Capacity(format!(
                                "too many distinct values of `{}`",
                                self.names[q]
                            )));
                        }
                        let v: Arc<str> = Arc::from(v);
                        self.dicts[q].insert(v.clone(), id as u32);
                        self.values[q].push(Some(v));
                        id as u32
                    }
                },
            };
            self.class_ids.push(id);
        }
        if count != self.names.len() {
            self.class_ids.truncate(c * self.names.len());
            return Err(Error::Capacity(format!(
                "a record has {count} quasi-identifier values where the policy names {}",
                self.names.len()
            )));
        }
        let slot = ClassSlot::new(c as u32, hash, key, &mut self.long_keys);
        self.class_records.push(0);
        self.classes.insert(hash, slot, &self.long_keys);
        Ok(c as u32)
    }

    /// Records that a subject was seen in a base class.
    fn note_subject(&mut self, subject: u64, class: u32) -> Result<()> {
        match self.subject_class.entry(subject) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(class);
            }
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let seen = *e.get();
                if seen == class {
                    return Ok(());
                }
                if seen & SEVERAL == 0 {
                    if self.subject_classes.len() >= MAX_IDS {
                        return Err(Error::Capacity(
                            "too many subjects seen in several classes".into(),
                        ));
                    }
                    *e.get_mut() = SEVERAL | self.subject_classes.len() as u32;
                    self.subject_classes.push(vec![seen, class]);
                    return Ok(());
                }
                let classes = &mut self.subject_classes[(seen & !SEVERAL) as usize];
                if classes.len() < 32 {
                    if !classes.contains(&class) {
                        classes.push(class);
                    }
                } else {
                    // A subject in many classes: deduplicated each time its list doubles.
                    classes.push(class);
                    if classes.len().is_power_of_two() {
                        classes.sort_unstable();
                        classes.dedup();
                    }
                }
            }
        }
        Ok(())
    }

    /// Who counts where: subjects seen in one base class only are counted per class; the
    /// (few) subjects seen in several keep their list of classes, and each of those
    /// classes counts them as shared.
    fn subject_index(&self) -> SubjectIndex {
        let mut single = vec![0u32; self.class_records.len()];
        let mut shared = Vec::new();
        let mut multi_ends = Vec::new();
        let mut multi_classes = Vec::new();
        if self.counts_subjects {
            for &class in self.subject_class.values() {
                if class & SEVERAL == 0 {
                    single[class as usize] += 1;
                }
            }
            if !self.subject_classes.is_empty() {
                shared = vec![0u32; self.class_records.len()];
            }
            let mut own = Vec::new();
            for classes in &self.subject_classes {
                own.clone_from(classes);
                own.sort_unstable();
                own.dedup();
                for &class in &own {
                    shared[class as usize] += 1;
                }
                multi_classes.extend_from_slice(&own);
                multi_ends.push(multi_classes.len());
            }
        }
        let distinct = if self.counts_subjects {
            self.subject_class.len() as u64
        } else {
            self.records
        };
        let per_class = self
            .class_records
            .iter()
            .zip(&single)
            .map(|(&records, &single)| ClassCounts {
                records,
                // Without a subject field each record is a subject of its own.
                subjects: if self.counts_subjects {
                    u64::from(single)
                } else {
                    records
                },
            })
            .collect();
        SubjectIndex {
            per_class,
            shared,
            multi_ends,
            multi_classes,
            distinct,
        }
    }

    /// Searches the lattice and decides the release.
    pub fn decide(&self, k: u32, max_suppression: f64) -> Result<Decision> {
        let heights: Vec<usize> = self.hierarchies.iter().map(Hierarchy::height).collect();
        // Independent, and each a sizeable share of a decision on a large release.
        let (tables, subjects) = std::thread::scope(|s| {
            let subjects = s.spawn(|| self.subject_index());
            let tables = LevelTables::build(&self.hierarchies, &self.values, &self.class_ids);
            subjects
                .join()
                .map(|subjects| (tables, subjects))
                .map_err(|_| Error::Capacity("the subject index worker panicked".into()))
        })?;
        let ctx = EvalContext {
            hist: self,
            tables: &tables,
            subjects: &subjects,
            k: u64::from(k),
        };
        let limit = (max_suppression * self.records as f64).floor() as u64;
        let top: Vec<usize> = heights.iter().map(|h| h - 1).collect();
        let max_sum: usize = top.iter().sum();

        if self.records == 0 {
            let eval = ctx.evaluate_exactly(&top)?;
            return Ok(self.decision(Outcome::Empty, top, &eval, &tables, 1));
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut search = Search {
            ctx: &ctx,
            heights: &heights,
            limit,
            threads,
            fits: Vec::new(),
            fails: Vec::new(),
            best: None,
            evaluated: 0,
        };
        if !search.exists_at(max_sum)? {
            // The search gave up on the top node as soon as it was sure to fail; the
            // report wants its exact figures.
            let eval = ctx.evaluate_exactly(&top)?;
            let reason = format!(
                "no generalization meets k={k} within the suppression limit of {limit} records \
                 ({} distinct subjects; fully generalized, {} records would be suppressed)",
                eval.distinct_subjects, eval.suppressed
            );
            let evaluated = search.evaluated + 1;
            return Ok(self.decision(Outcome::Withheld(reason), top, &eval, &tables, evaluated));
        }
        let (mut lo, mut hi) = (0usize, max_sum);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if search.exists_at(mid)? {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let (node, eval) = search.best_at(lo)?;
        let evaluated = search.evaluated;
        Ok(self.decision(Outcome::Release, node, &eval, &tables, evaluated))
    }

    /// Every lattice node with the records it suppresses under `k`, each counted
    /// directly: what the pruned search must agree with (tests only).
    #[cfg(test)]
    pub(crate) fn suppressed_at_every_node(&self, k: u32) -> Vec<(Vec<usize>, u64)> {
        let heights: Vec<usize> = self.hierarchies.iter().map(Hierarchy::height).collect();
        let max: usize = heights.iter().map(|h| h - 1).sum();
        let tables = LevelTables::build(&self.hierarchies, &self.values, &self.class_ids);
        let subjects = self.subject_index();
        let ctx = EvalContext {
            hist: self,
            tables: &tables,
            subjects: &subjects,
            k: u64::from(k),
        };
        (0..=max)
            .flat_map(|s| nodes_with_sum(&heights, s))
            .map(|node| {
                let suppressed = ctx
                    .evaluate_exactly(&node)
                    .map_or(u64::MAX, |e| e.suppressed);
                (node, suppressed)
            })
            .collect()
    }

    fn decision(
        &self,
        outcome: Outcome,
        node: Vec<usize>,
        eval: &NodeEval,
        tables: &LevelTables,
        evaluated: usize,
    ) -> Decision {
        let k_ok = |g: usize| eval.subjects[g] >= eval.k;
        let released: Vec<u64> = (0..eval.subjects.len())
            .filter(|&g| k_ok(g))
            .map(|g| eval.subjects[g])
            .collect();
        let publishing = outcome == Outcome::Release;
        let mut published_records = vec![0u64; eval.subjects.len()];
        if publishing {
            for (&g, &records) in eval.class_of_base.iter().zip(&self.class_records) {
                if k_ok(g as usize) {
                    published_records[g as usize] += records;
                }
            }
        }
        let n_qi = self.names.len();
        let mut published_values: Vec<ArrayRef> = Vec::with_capacity(n_qi);
        let mut class_values = Vec::with_capacity(n_qi);
        for (q, &level) in node.iter().enumerate() {
            published_values.push(Arc::new(StringArray::from_iter(
                tables.values[q][level].iter().map(Option::as_deref),
            )));
            let of_class = &tables.of_class[q][level];
            // A level with a single value keeps no column: every class has id 0.
            class_values.push(if of_class.is_empty() {
                vec![0; self.class_records.len()]
            } else {
                of_class.clone()
            });
        }
        let (mut risk_sum, mut small, mut out) = (0.0f64, 0u64, 0u64);
        for (g, &records) in published_records.iter().enumerate() {
            if records > 0 {
                let subjects = eval.subjects[g].max(1);
                risk_sum += records as f64 / subjects as f64;
                out += records;
                if subjects < 2 * eval.k {
                    small += records;
                }
            }
        }
        let per_record = |x: f64| if out == 0 { 0.0 } else { x / out as f64 };
        let information_loss = if node.is_empty() {
            0.0
        } else {
            node.iter()
                .zip(&self.hierarchies)
                .map(|(&l, h)| l as f64 / (h.height() - 1).max(1) as f64)
                .sum::<f64>()
                / node.len() as f64
        };
        Decision {
            outcome,
            node,
            records: self.records,
            distinct_subjects: eval.distinct_subjects,
            suppressed_records: if publishing {
                eval.suppressed
            } else {
                self.records
            },
            violations: eval.violations,
            classes: if publishing { released.len() as u64 } else { 0 },
            smallest_class: if publishing {
                released.iter().copied().min().unwrap_or(0)
            } else {
                0
            },
            average_class: if publishing && !released.is_empty() {
                released.iter().sum::<u64>() as f64 / released.len() as f64
            } else {
                0.0
            },
            information_loss,
            prosecutor_risk: match released.iter().copied().min() {
                Some(smallest) if publishing && smallest > 0 => 1.0 / smallest as f64,
                _ => 0.0,
            },
            average_risk: per_record(risk_sum),
            small_class_share: per_record(small as f64),
            nodes_evaluated: evaluated,
            published_values,
            class_values,
            class_of_base: eval.class_of_base.clone(),
            published_records,
        }
    }
}

/// Per QI and level: the generalized values (computed once per distinct value) and each
/// base class's generalized id.
struct LevelTables {
    /// [qi][level][generalized id] → the generalized value.
    values: Vec<Vec<Vec<Option<Arc<str>>>>>,
    /// [qi][level][base class] → the class's generalized id at that level; empty where the
    /// level has a single value. A node's keys are then built column by column from a few
    /// arrays read in sequence, where looking each class's ids up took most of an
    /// evaluation (about 2.5 of 4 ms on 163,583 classes).
    of_class: Vec<Vec<Vec<u32>>>,
}

impl LevelTables {
    /// Each (QI, level) on its own rayon task: they are independent, and one QI with many
    /// distinct values (masked phones) would otherwise keep one core busy alone while the
    /// subject index is built.
    fn build(
        hierarchies: &[Hierarchy],
        values: &[Vec<Option<Arc<str>>>],
        class_ids: &[u32],
    ) -> Self {
        use rayon::prelude::*;
        let n_qi = hierarchies.len();
        let levels: Vec<(usize, usize)> = hierarchies
            .iter()
            .enumerate()
            .flat_map(|(q, h)| (0..h.height()).map(move |level| (q, level)))
            .collect();
        // In the order of `levels`: QI by QI, level by level.
        let mut built = levels
            .par_iter()
            .map(|&(q, level)| {
                let (ids, generalized) = level_table(&hierarchies[q], &values[q], level);
                let of_class = if generalized.len() > 1 {
                    class_ids
                        .iter()
                        .skip(q)
                        .step_by(n_qi)
                        .map(|&id| ids[id as usize])
                        .collect()
                } else {
                    Vec::new()
                };
                (generalized, of_class)
            })
            .collect::<Vec<_>>()
            .into_iter();
        let (mut generalized, mut of_class) = (Vec::new(), Vec::new());
        for h in hierarchies {
            let (mut qi_values, mut qi_classes) = (Vec::new(), Vec::new());
            for _ in 0..h.height() {
                let (level_values, level_classes) = built.next().unwrap_or_default();
                qi_values.push(level_values);
                qi_classes.push(level_classes);
            }
            generalized.push(qi_values);
            of_class.push(qi_classes);
        }
        Self {
            values: generalized,
            of_class,
        }
    }

    /// Distinct generalized values of a QI at a level.
    fn cardinality(&self, q: usize, level: usize) -> u32 {
        self.values[q][level].len() as u32
    }
}

/// One QI's level: each level-0 value's generalized id, and the generalized values by id.
fn level_table(
    h: &Hierarchy,
    values: &[Option<Arc<str>>],
    level: usize,
) -> (Vec<u32>, Vec<Option<Arc<str>>>) {
    if level == 0 {
        // The histogram's values are distinct already: each is its own id.
        return ((0..values.len() as u32).collect(), values.to_vec());
    }
    let mut dict: FxHashMap<Option<String>, u32> = FxHashMap::default();
    let mut distinct = Vec::new();
    let ids = values
        .iter()
        .map(|v| {
            *dict
                .entry(h.generalize(v.as_deref(), level))
                .or_insert_with_key(|g| {
                    distinct.push(g.as_deref().map(Arc::from));
                    (distinct.len() - 1) as u32
                })
        })
        .collect();
    (ids, distinct)
}

/// Distinct subjects per base class, arranged for counting at any node.
struct SubjectIndex {
    /// Per base class: its records and the subjects seen in that class only.
    per_class: Vec<ClassCounts>,
    /// Per base class: the subjects seen in it and in others too (empty when there are
    /// none). A group holds at most its classes' own subjects plus these.
    shared: Vec<u32>,
    /// Subjects seen in several base classes: their classes, back to back (ends below).
    multi_classes: Vec<u32>,
    multi_ends: Vec<usize>,
    /// Distinct subjects of the release (records, when each is its own subject).
    distinct: u64,
}

/// Records and distinct subjects, side by side: node evaluation adds both into its group
/// of each base class, one cache miss instead of two.
#[derive(Debug, Clone, Copy, Default)]
struct ClassCounts {
    records: u64,
    /// Of a base class: the subjects seen in it only. Of a group: those summed, then
    /// each subject seen in several base classes once.
    subjects: u64,
}

struct EvalContext<'a> {
    hist: &'a QiHistogram,
    tables: &'a LevelTables,
    subjects: &'a SubjectIndex,
    k: u64,
}

struct NodeEval {
    k: u64,
    distinct_subjects: u64,
    suppressed: u64,
    violations: u64,
    class_of_base: Vec<u32>,
    subjects: Vec<u64>,
}

impl EvalContext<'_> {
    /// The node's classes, every one counted (for the decision and its report).
    fn evaluate_exactly(&self, node: &[usize]) -> Result<NodeEval> {
        self.evaluate(node, None)?
            .ok_or_else(|| Error::Capacity("an evaluation without a limit stopped".into()))
    }

    /// Classes of the generalized node: records and distinct subjects per class. With
    /// `stop_above`, gives up (`None`) as soon as more records than that are certain to be
    /// suppressed: the search only needs to know that such a node fails, and most nodes of
    /// a large release fail by far (every record of a node with exact phone digits).
    ///
    /// Cost: the base classes are put in buckets by the top bits of their generalized key,
    /// then each bucket is sorted and its groups counted, in key order; plus one step per
    /// class of each subject seen in more than one base class. Subjects of a single base
    /// class are pre-counted.
    fn evaluate(&self, node: &[usize], stop_above: Option<u64>) -> Result<Option<NodeEval>> {
        let hist = self.hist;
        // Pack the generalized key of a base class into a u128: bits per QI from the
        // cardinality of its level (ids run 0..cardinality). A QI generalized to a single
        // value takes no bits and is not looked up at all.
        let packed: Vec<(u32, &[u32])> = node
            .iter()
            .enumerate()
            .map(|(q, &l)| {
                let largest_id = self.tables.cardinality(q, l).saturating_sub(1);
                let width = u32::BITS - largest_id.leading_zeros();
                (width, self.tables.of_class[q][l].as_slice())
            })
            .filter(|&(width, _)| width > 0)
            .collect();
        let key_bits: u32 = packed.iter().map(|&(width, _)| width).sum();
        if key_bits > 128 {
            return Err(Error::Capacity(format!(
                "quasi-identifiers of `{}` have too many distinct values to index",
                hist.names.join(", ")
            )));
        }
        let base_classes = hist.class_records.len();
        let packed_key = |c: usize| -> u128 {
            let mut out: u128 = 0;
            for &(width, of_class) in &packed {
                out = (out << width) | u128::from(of_class[c]);
            }
            out
        };
        let index = self.subjects;
        let mut class_of_base = vec![0u32; base_classes];
        let class_bits = usize::BITS - base_classes.leading_zeros();
        // Per group: records, and distinct subjects (single-class ones so far).
        let mut counts: Vec<ClassCounts> = Vec::new();
        if key_bits + class_bits <= 64 {
            // Key and class id share one u64; sorting groups equal keys. A sort streams
            // through memory where a hash table of this size misses the cache on every
            // insert, and this loop runs for every node the search evaluates.
            // Column by column: each pass reads one array in sequence.
            let mut keyed: Vec<u64> = (0..base_classes as u64).collect();
            let mut shift = class_bits + key_bits;
            for &(width, of_class) in &packed {
                shift -= width;
                for (key, &id) in keyed.iter_mut().zip(of_class) {
                    *key |= u64::from(id) << shift;
                }
            }
            let buckets = Buckets::count(&keyed, class_bits, key_bits);
            // A node the search evaluates usually fails by far, which its first buckets
            // show: those are placed first, and the rest only if the count goes on.
            let first = if stop_above.is_some() {
                buckets.holding(keyed.len() / 16)
            } else {
                buckets.len()
            };
            let mut sorted = vec![0u64; keyed.len()];
            let mask = (1u64 << class_bits) - 1;
            // Records of groups under k even if each shared subject of each of their
            // classes were another subject: suppressed whatever the exact count.
            let mut certainly_suppressed = 0u64;
            for digits in [0..first, first..buckets.len()] {
                buckets.scatter(&keyed, &mut sorted, digits.clone());
                for d in digits {
                    let bucket = &mut sorted[buckets.range(d)];
                    if key_bits > TOP_BITS {
                        sort_by_bits(bucket, class_bits, key_bits);
                    }
                    for run in bucket.chunk_by(|a, b| a >> class_bits == b >> class_bits) {
                        let g = counts.len() as u32;
                        let mut group = ClassCounts::default();
                        let mut shared = 0u64;
                        for &v in run {
                            let c = (v & mask) as usize;
                            class_of_base[c] = g;
                            let class = &index.per_class[c];
                            group.records += class.records;
                            group.subjects += class.subjects;
                            if let Some(&n) = index.shared.get(c) {
                                shared += u64::from(n);
                            }
                        }
                        if group.subjects + shared < self.k {
                            certainly_suppressed += group.records;
                            if stop_above.is_some_and(|limit| certainly_suppressed > limit) {
                                return Ok(None);
                            }
                        }
                        counts.push(group);
                    }
                }
            }
        } else {
            let mut gen_ids: FxHashMap<u128, u32> = FxHashMap::default();
            gen_ids.reserve(base_classes);
            for (c, group) in class_of_base.iter_mut().enumerate() {
                let next = gen_ids.len() as u32;
                *group = *gen_ids.entry(packed_key(c)).or_insert(next);
            }
            counts = vec![ClassCounts::default(); gen_ids.len()];
            // In class order: the per-class counts are read in sequence.
            for (&g, class) in class_of_base.iter().zip(&index.per_class) {
                let group = &mut counts[g as usize];
                group.records += class.records;
                group.subjects += class.subjects;
            }
        }
        let mut seen: Vec<u32> = Vec::new();
        let mut start = 0;
        for &end in &index.multi_ends {
            seen.clear();
            let bases = &index.multi_classes[start..end];
            if bases.len() <= 16 {
                // A subject's classes are usually few: a linear check beats a set.
                for &base in bases {
                    let g = class_of_base[base as usize];
                    if !seen.contains(&g) {
                        seen.push(g);
                        counts[g as usize].subjects += 1;
                    }
                }
            } else {
                seen.extend(bases.iter().map(|&b| class_of_base[b as usize]));
                seen.sort_unstable();
                seen.dedup();
                for &g in &seen {
                    counts[g as usize].subjects += 1;
                }
            }
            start = end;
        }
        let mut suppressed = 0;
        let mut violations = 0;
        for group in counts.iter().filter(|c| c.subjects < self.k) {
            suppressed += group.records;
            violations += 1;
        }
        let subjects = counts.iter().map(|c| c.subjects).collect();
        Ok(Some(NodeEval {
            k: self.k,
            distinct_subjects: self.subjects.distinct,
            suppressed,
            violations,
            class_of_base,
            subjects,
        }))
    }
}

/// The lattice search, remembering what it learned: generalizing never suppresses more,
/// so a node above one that fits fits too, and a node below one that fails fails too.
/// Those nodes are decided without counting their classes.
struct Search<'a, 'c> {
    ctx: &'a EvalContext<'c>,
    heights: &'a [usize],
    limit: u64,
    threads: usize,
    fits: Vec<Vec<usize>>,
    fails: Vec<Vec<usize>>,
    /// The best fitting node evaluated so far (least level sum, then fewest suppressed,
    /// then first in lexicographic order), with its evaluation: the tie rule needs it,
    /// and a node that fits is not counted twice. One evaluation is kept, not one per fit:
    /// each holds an id per base class.
    best: Option<(Vec<usize>, NodeEval)>,
    evaluated: usize,
}

/// Whether `a` is at or below `b` in the lattice (no level higher).
fn at_or_below(a: &[usize], b: &[usize]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y)
}

impl Search<'_, '_> {
    fn known_to_fail(&self, node: &[usize]) -> bool {
        self.fails.iter().any(|f| at_or_below(node, f))
    }

    /// Nodes with this level sum not already known to fail, in lexicographic order.
    fn candidates(&self, sum: usize) -> Vec<Vec<usize>> {
        nodes_with_sum(self.heights, sum)
            .into_iter()
            .filter(|n| !self.known_to_fail(n))
            .collect()
    }

    /// Evaluates a batch of nodes (one per core), remembers which fit, and says whether
    /// any did.
    fn evaluate(&mut self, batch: &[Vec<usize>]) -> Result<bool> {
        let evals = evaluate_all(self.ctx, batch, self.limit)?;
        self.evaluated += batch.len();
        let mut any = false;
        for (node, eval) in batch.iter().zip(evals) {
            match eval {
                Some(eval) if eval.suppressed <= self.limit => {
                    self.fits.push(node.clone());
                    let rank = |n: &[usize], e: &NodeEval| (n.iter().sum::<usize>(), e.suppressed);
                    if self
                        .best
                        .as_ref()
                        .is_none_or(|(b, be)| (rank(node, &eval), node) < (rank(b, be), b))
                    {
                        self.best = Some((node.clone(), eval));
                    }
                    any = true;
                }
                _ => self.fails.push(node.clone()),
            }
        }
        Ok(any)
    }

    /// Whether some node with this level sum fits, evaluating as few as needed.
    fn exists_at(&mut self, sum: usize) -> Result<bool> {
        if nodes_with_sum(self.heights, sum)
            .iter()
            .any(|n| self.fits.iter().any(|f| at_or_below(f, n)))
        {
            return Ok(true);
        }
        for batch in self.candidates(sum).chunks(self.threads) {
            if self.evaluate(batch)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The best node with this level sum: fewest suppressed records, then the first in
    /// lexicographic order. Some node with this sum must fit.
    fn best_at(&mut self, sum: usize) -> Result<(Vec<usize>, NodeEval)> {
        // Nodes found to fit on the way here are not counted again.
        let pending: Vec<Vec<usize>> = self
            .candidates(sum)
            .into_iter()
            .filter(|n| !self.fits.contains(n))
            .collect();
        for batch in pending.chunks(self.threads) {
            self.evaluate(batch)?;
        }
        // No fit has a lower sum (this is the least that fits), so the best is at `sum`.
        self.best
            .take()
            .filter(|(node, _)| node.iter().sum::<usize>() == sum)
            .ok_or_else(|| Error::Capacity(format!("no node with level sum {sum} fits")))
    }
}

/// Evaluates nodes, each on a thread of its own, giving up on those sure to suppress more
/// than `limit` records: the search hands over one node per core at a time (the engine is
/// CPU-bound and nodes are independent).
fn evaluate_all(
    ctx: &EvalContext<'_>,
    nodes: &[Vec<usize>],
    limit: u64,
) -> Result<Vec<Option<NodeEval>>> {
    if nodes.len() < 2 {
        return nodes.iter().map(|n| ctx.evaluate(n, Some(limit))).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|node| s.spawn(move || ctx.evaluate(node, Some(limit))))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Capacity("a lattice worker panicked".into())))
            })
            .collect()
    })
}

/// Key bits [`Buckets`] sorts on, in one pass.
const TOP_BITS: u32 = 11;

/// Keys in buckets by the top [`TOP_BITS`] of their bits `low..low + bits` (the bits above
/// must be zero), for a most-significant-digit sort: each bucket is then small enough to
/// sort in cache and to count before the next is sorted, so an evaluation can stop early.
/// When `bits <= TOP_BITS` the buckets come out sorted.
struct Buckets {
    shift: u32,
    /// Where each bucket ends in the bucketed keys.
    ends: Vec<usize>,
}

impl Buckets {
    /// One counting pass.
    fn count(keys: &[u64], low: u32, bits: u32) -> Self {
        let digit = bits.min(TOP_BITS);
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
        Self { shift, ends }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn range(&self, d: usize) -> std::ops::Range<usize> {
        let start = if d == 0 { 0 } else { self.ends[d - 1] };
        start..self.ends[d]
    }

    /// The fewest leading buckets that hold at least `keys` keys (at least one bucket).
    fn holding(&self, keys: usize) -> usize {
        self.ends.partition_point(|&end| end < keys).max(1)
    }

    /// Places the keys of the buckets `digits` (one pass over all keys) in `out`.
    fn scatter(&self, keys: &[u64], out: &mut [u64], digits: std::ops::Range<usize>) {
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
fn sort_by_bits(keys: &mut [u64], low: u32, bits: u32) {
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

/// All level vectors with the given sum, in lexicographic order.
fn nodes_with_sum(heights: &[usize], sum: usize) -> Vec<Vec<usize>> {
    fn go(heights: &[usize], sum: usize, prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        let Some((&h, rest)) = heights.split_first() else {
            if sum == 0 {
                out.push(prefix.clone());
            }
            return;
        };
        let rest_max: usize = rest.iter().map(|h| h - 1).sum();
        for level in 0..h {
            if level > sum {
                break;
            }
            if sum - level > rest_max {
                continue;
            }
            prefix.push(level);
            go(rest, sum - level, prefix, out);
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    go(heights, sum, &mut Vec::new(), &mut out);
    out
}

/// The level-0 quasi-identifier values of a run of records, one byte key per record, with
/// its hash: what [`QiHistogram::add_all`] takes. Building keys and hashing them is done
/// where records are transformed (in parallel), so the histogram does one lookup per record.
///
/// Encoding, per value in policy order: `0` for null; a value of up to 253 bytes as one
/// byte `1 + length`, then its UTF-8 bytes; a longer one as `255`, its length as a u32
/// (little-endian), then its bytes. It is unambiguous, so equal keys mean equal values,
/// and short, so that most keys fit a [`ClassSlot`].
#[derive(Debug, Default, Clone)]
pub struct QiKeys {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    hashes: Vec<u64>,
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

    fn start(&self) -> usize {
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
    fn values(key: &[u8]) -> impl Iterator<Item = Option<&str>> {
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
const LONG_VALUE: u8 = 255;

/// The hash of an encoded key: SipHash with keys drawn once per process (std's
/// `RandomState`). Producers are untrusted, and values they craft to collide would turn
/// each histogram lookup into a scan. FxHash, seeded or not, is not built to resist
/// chosen collisions; keyed SipHash is, at some tens of nanoseconds a key, spent on the
/// rayon workers where records are transformed.
fn key_hash(key: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    static STATE: std::sync::LazyLock<std::hash::RandomState> =
        std::sync::LazyLock::new(std::hash::RandomState::new);
    STATE.hash_one(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    #[test]
    fn lattice_levels_are_enumerated_in_order() {
        assert_eq!(nodes_with_sum(&[2, 3], 1), vec![vec![0, 1], vec![1, 0]]);
        assert_eq!(nodes_with_sum(&[2, 3], 3), vec![vec![1, 2]]);
        assert!(nodes_with_sum(&[2, 3], 4).is_empty());
        let all: usize = (0..=3).map(|s| nodes_with_sum(&[2, 3], s).len()).sum();
        assert_eq!(all, 6);
    }

    fn orders() -> DatasetRules {
        Policy::default_v2()
            .expect("policy")
            .dataset("orders")
            .expect("orders")
            .clone()
    }

    #[test]
    fn distinct_subjects_not_rows_are_counted() {
        // 25 records in one zip but from only 3 people: under k=20 at every level.
        let mut h = QiHistogram::new(&orders());
        for i in 0..25u64 {
            h.add(&[Some("94110")], Some(i % 3)).expect("add");
        }
        let d = h.decide(20, 0.05).expect("decide");
        assert!(matches!(d.outcome, Outcome::Withheld(_)), "{d:?}");
        assert_eq!(d.suppressed_records, 25);
    }

    #[test]
    fn a_subject_in_several_classes_counts_once_where_they_merge() {
        // `spread` zips under 941**, each record of a person in every zip: at level 0 each
        // zip holds all 25 people; merged into 941** they are still 25 people, not
        // 25 × spread. Spreads of 2 and 20 take both paths of the per-subject count.
        for spread in [2u64, 20] {
            let mut h = QiHistogram::new(&orders());
            for person in 0..25u64 {
                for z in 0..spread {
                    let zip = format!("941{z:02}");
                    h.add(&[Some(&zip)], Some(person)).expect("add");
                }
            }
            let d = h.decide(25, 0.0).expect("decide");
            assert_eq!(
                (d.outcome.clone(), d.node.clone()),
                (Outcome::Release, vec![0])
            );
            assert_eq!((d.smallest_class, d.distinct_subjects), (25, 25));
            let d = h.decide(26, 0.0).expect("decide");
            assert!(
                matches!(d.outcome, Outcome::Withheld(_)),
                "spread {spread}: {d:?}"
            );
        }
    }

    #[test]
    fn keys_round_trip_and_tell_null_from_empty() {
        let mut keys = QiKeys::default();
        keys.push_value(Some("94110"));
        keys.push_value(None);
        keys.end_record();
        keys.push_value(Some(""));
        keys.discard_record();
        keys.push_value(Some(""));
        keys.push_value(Some("x"));
        keys.end_record();
        // Lengths on both sides of the one-byte form's limit (253 bytes).
        let (short, long) = ("s".repeat(253), "l".repeat(254));
        keys.push_value(Some(&short));
        keys.push_value(Some(&long));
        keys.end_record();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys.record(0).collect::<Vec<_>>(), [Some("94110"), None]);
        assert_eq!(keys.record(1).collect::<Vec<_>>(), [Some(""), Some("x")]);
        assert_eq!(
            keys.record(2).collect::<Vec<_>>(),
            [Some(short.as_str()), Some(long.as_str())]
        );
        assert_ne!(keys.key(0), keys.key(1));
    }

    #[test]
    fn the_class_table_finds_every_key_through_growth_and_shared_hashes() {
        let keys: Vec<Vec<u8>> = (0..5000usize)
            .map(|i| format!("key-{i}-{}", "x".repeat(i % 70)).into_bytes())
            .collect();
        // Fills `table` with every key under `hash_of`; checks each is new, then found.
        let fill = |mut table: ClassTable, hash_of: &dyn Fn(usize) -> u64| {
            let (mut hashes, mut long_keys) = (Vec::new(), Vec::new());
            for (i, key) in keys.iter().enumerate() {
                let hash = hash_of(i);
                assert_eq!(table.find(hash, key, &long_keys), None, "key {i} is new");
                hashes.push(hash);
                let slot = ClassSlot::new(i as u32, hash, key, &mut long_keys);
                table.insert(hash, slot, &long_keys);
            }
            table.warm(&hashes);
            for (i, key) in keys.iter().enumerate() {
                assert_eq!(table.find(hash_of(i), key, &long_keys), Some(i as u32));
            }
            assert_eq!(table.len, keys.len());
            assert!(table.slots.len() * 3 >= keys.len() * 4, "at most 3/4 full");
            table
        };
        // Every fourth key has the hash of the one before: same tag, same first slot. (In
        // a table large enough not to grow: growing rehashes each key from its bytes.)
        let shared = |i: usize| key_hash(&keys[if i % 4 == 3 { i - 1 } else { i }]);
        fill(ClassTable::with_slots(8192), &shared);
        // From the smallest table, through every growth.
        let grown = fill(ClassTable::with_slots(ClassTable::INITIAL_SLOTS), &|i| {
            key_hash(&keys[i])
        });
        assert!(
            grown.slots.len() > ClassTable::INITIAL_SLOTS,
            "the table grew"
        );
    }

    #[test]
    fn keys_too_long_to_sit_in_the_table_find_their_class() {
        let mut rules = orders();
        rules.subject = None;
        let mut h = QiHistogram::new(&rules);
        let long: Vec<String> = (0..3).map(|i| format!("{i}{}", "z".repeat(80))).collect();
        let first: Vec<u32> = long
            .iter()
            .map(|v| h.add(&[Some(v)], None).expect("add"))
            .collect();
        let again: Vec<u32> = long
            .iter()
            .map(|v| h.add(&[Some(v)], None).expect("add"))
            .collect();
        assert_eq!(first, again);
        let classes = first;
        assert_eq!(classes, [0, 1, 2]);
        assert_eq!(h.add(&[Some("94110")], None).expect("add"), 3);
        assert_eq!((h.base_classes(), h.records()), (4, 7));
    }

    #[test]
    fn least_generalized_node_is_chosen() {
        let mut h = QiHistogram::new(&orders());
        // 20 people in 94110, 20 in 94112: k holds at level 0.
        for i in 0..40u64 {
            let zip = if i < 20 { "94110" } else { "94112" };
            h.add(&[Some(zip)], Some(i)).expect("add");
        }
        let d = h.decide(20, 0.0).expect("decide");
        assert_eq!(
            (d.outcome.clone(), d.node.clone()),
            (Outcome::Release, vec![0])
        );
        assert_eq!((d.smallest_class, d.classes), (20, 2));
        // One more person alone in 94199: needs 941** unless suppressing 1 of 41 is allowed.
        h.add(&[Some("94199")], Some(99)).expect("add");
        assert_eq!(h.decide(20, 0.0).expect("decide").node, vec![1]);
        let d = h.decide(20, 0.05).expect("decide");
        assert_eq!(
            (d.node.clone(), d.suppressed_records, d.violations),
            (vec![0], 1, 1)
        );
        let classes = [0, 1, 2];
        let keep: Vec<bool> = classes.iter().map(|&c| !d.is_suppressed(c)).collect();
        assert_eq!(keep, [true, true, false]);
        let cols = d.qi_columns(&[0, 1], &classes).expect("columns");
        let zips = cols[0]
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8");
        assert_eq!(
            zips.iter().collect::<Vec<_>>(),
            vec![Some("94110"), Some("94112")]
        );
    }

    #[test]
    fn a_file_plan_keeps_each_published_class_in_one_file() {
        let mut h = QiHistogram::new(&orders());
        // Base classes 0..=3 in the order first seen: 60, 40 and 25 records of 20, 20 and
        // 25 people, then one person alone (suppressed within the limit).
        let mut person = 0u64;
        for (zip, people, each) in [("94110", 20, 3), ("94112", 20, 2), ("94113", 25, 1)] {
            for _ in 0..people {
                for _ in 0..each {
                    h.add(&[Some(zip)], Some(person)).expect("add");
                }
                person += 1;
            }
        }
        h.add(&[Some("94199")], Some(person)).expect("add");
        let d = h.decide(20, 0.05).expect("decide");
        assert_eq!((d.node.clone(), d.suppressed_records), (vec![0], 1));
        let records = [60u64, 40, 25];

        let one = d.file_plan(1_000);
        assert_eq!(one.rows, vec![125]);
        assert_eq!(one.file_of(3), None, "suppressed records go to no file");
        assert!((0..3).all(|c| one.file_of(c) == Some(0)));

        for max in [1u64, 60, 65, 70, 100, 124] {
            let plan = d.file_plan(max);
            assert_eq!(plan.file_of(3), None);
            assert_eq!(plan.rows.iter().sum::<u64>(), 125, "max {max}");
            // Each file's rows are exactly those of the classes assigned to it, and a file
            // over the limit holds a single class.
            for (f, &rows) in plan.rows.iter().enumerate() {
                let classes: Vec<usize> = (0..3)
                    .filter(|&c| plan.file_of(c as u32) == Some(f as u32))
                    .collect();
                assert_eq!(
                    classes.iter().map(|&c| records[c]).sum::<u64>(),
                    rows,
                    "max {max}"
                );
                assert!(
                    rows <= max || classes.len() == 1,
                    "max {max}: file {f} holds {rows} rows of {classes:?}"
                );
            }
        }
        assert_eq!(d.file_plan(1).files(), 3, "a class alone over the limit");
        assert_eq!(d.file_plan(100).files(), 2);
        assert_eq!(
            h.decide(200, 0.05).expect("decide").file_plan(10).files(),
            0
        );
    }

    #[test]
    fn radix_sort_groups_keys_as_a_comparison_sort_does() {
        // A xorshift stream: keys in bits 18..38, distinct class ids below.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for n in [0usize, 1, 100, 5000, 70_000] {
            let mut keys: Vec<u64> = (0..n as u64)
                .map(|c| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    ((x % 3000) << 18) | c
                })
                .collect();
            let mut expected = keys.clone();
            expected.sort_unstable();
            sort_by_bits(&mut keys, 18, 20);
            // Also where a pass count leaves the keys in the scratch buffer: one digit.
            let mut low_digit: Vec<u64> = expected.iter().map(|k| k & ((1 << 29) - 1)).collect();
            let mut low_expected = low_digit.clone();
            low_expected.sort_unstable_by_key(|k| k >> 18);
            sort_by_bits(&mut low_digit, 18, 11);
            assert_eq!(
                low_digit.iter().map(|k| k >> 18).collect::<Vec<_>>(),
                low_expected.iter().map(|k| k >> 18).collect::<Vec<_>>()
            );
            assert_eq!(
                keys.iter().map(|k| k >> 18).collect::<Vec<_>>(),
                expected.iter().map(|k| k >> 18).collect::<Vec<_>>()
            );
            keys.sort_unstable();
            assert_eq!(keys, expected, "the same keys, each once");
        }
    }

    #[test]
    fn an_evaluation_stops_early_only_on_nodes_that_fail() {
        use crate::batch::BatchBuilder;
        use crate::hash::KeyedHasher;
        use crate::value::Value;
        use std::borrow::Cow;

        let policy = Policy::default_v2().expect("policy");
        let rules = policy.dataset("contacts").expect("contacts");
        let hasher = KeyedHasher::new(b"test-key-0123456789").expect("key");
        let idx = |name: &str| rules.inputs.iter().position(|n| n == name).expect("field");
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        // 1,500 people over skewed pools of values; a fifth of the records come from
        // another address, so many people are seen in several base classes.
        let people: Vec<[String; 6]> = (0..1500)
            .map(|p| {
                let zips = next(60) + 1;
                [
                    format!("person{p}@example.com"),
                    format!("+1 415 555 {:04}", next(40) * 37),
                    format!("203.0.{}.{}", next(20), next(250)),
                    format!("9{:04}", next(zips) * 13),
                    (18 + next(60)).to_string(),
                    ["female", "male", "nonbinary"][next(3) as usize].to_string(),
                ]
            })
            .collect();
        let mut builder = BatchBuilder::new(rules, &hasher);
        for i in 0..12_000u64 {
            let p = &people[(next(1500) * next(1500) / 1500) as usize];
            let ip = if next(5) == 0 {
                format!("198.51.{}.7", next(30))
            } else {
                p[2].clone()
            };
            let event = format!("evt-{i}");
            let mut rec = vec![Value::Null; rules.inputs.len()];
            let s = |v: &str| Value::Str(Cow::Owned(v.to_string()));
            rec[idx("event_id")] = s(&event);
            rec[idx("email")] = s(&p[0]);
            rec[idx("phone")] = s(&p[1]);
            rec[idx("ip")] = s(&ip);
            rec[idx("zip")] = s(&p[3]);
            rec[idx("age")] = s(&p[4]);
            rec[idx("gender")] = s(&p[5]);
            builder.push(&rec).expect("valid record");
        }
        let staged = builder.finish().expect("batch");
        let mut h = QiHistogram::new(rules);
        h.add_all(&staged.quasi_identifiers, &staged.subjects)
            .expect("add");

        let subjects = h.subject_index();
        assert!(
            subjects.multi_ends.len() > 100,
            "people seen in several classes"
        );
        let tables = LevelTables::build(&h.hierarchies, &h.values, &h.class_ids);
        let heights: Vec<usize> = h.hierarchies.iter().map(Hierarchy::height).collect();
        let max: usize = heights.iter().map(|h| h - 1).sum();
        let (mut stopped, mut counted) = (0, 0);
        for k in [2u64, 5, 20] {
            let ctx = EvalContext {
                hist: &h,
                tables: &tables,
                subjects: &subjects,
                k,
            };
            for node in (0..=max).flat_map(|s| nodes_with_sum(&heights, s)) {
                let exact = ctx.evaluate_exactly(&node).expect("exact");
                for limit in [0, h.records / 100, h.records / 20, h.records / 2] {
                    match ctx.evaluate(&node, Some(limit)).expect("evaluate") {
                        None => {
                            stopped += 1;
                            assert!(
                                exact.suppressed > limit,
                                "{node:?} stopped under k={k}, limit {limit}, but suppresses {}",
                                exact.suppressed
                            );
                        }
                        Some(eval) => {
                            counted += 1;
                            assert_eq!(
                                (eval.suppressed, eval.violations, &eval.subjects),
                                (exact.suppressed, exact.violations, &exact.subjects),
                                "{node:?}"
                            );
                        }
                    }
                }
            }
        }
        assert!(
            stopped > 100 && counted > 100,
            "{stopped} stopped, {counted} counted"
        );
    }

    #[test]
    fn empty_releases_publish_nothing() {
        let h = QiHistogram::new(&orders());
        assert_eq!(h.decide(20, 0.05).expect("decide").outcome, Outcome::Empty);
    }
}
