//! The quasi-identifier histogram: base classes and their distinct subjects, counted as
//! records arrive, and the decision searched over them.

#[cfg(test)]
use super::search::every_node;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use rustc_hash::FxHashMap;

use super::class_table::ClassTable;
use super::keys::QiKeys;
use super::search::{
    ClassCounts, EvalContext, Known, LevelTables, Nesting, NodeEval, SafeLevels, Search,
    SubjectIndex,
};
use super::{Decision, Outcome};
use crate::hierarchy::Hierarchy;
use crate::policy::DatasetRules;
use crate::{Error, Result};

/// Where a decision's time went, phase by phase (for its log line).
#[derive(Default)]
struct PhaseClock {
    last: Option<std::time::Instant>,
    laps: Vec<(&'static str, std::time::Duration)>,
}

impl PhaseClock {
    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        if let Some(last) = self.last {
            self.laps.push((name, now - last));
        }
        self.last = Some(now);
    }
}

/// Interned quasi-identifier values and per-class subject sets of one release.
#[derive(Debug)]
pub struct QiHistogram {
    pub(super) names: Vec<String>,
    pub(super) hierarchies: Vec<Hierarchy>,
    /// Per QI: level-0 value → id. Id 0 is null.
    pub(super) dicts: Vec<FxHashMap<Arc<str>, u32>>,
    /// Per QI: id → level-0 value.
    pub(super) values: Vec<Vec<Option<Arc<str>>>>,
    /// Base classes, found by their encoded key (see [`QiKeys`]).
    pub(super) classes: ClassTable,
    /// Per class, per QI (stride `names.len()`): the level-0 value id.
    pub(super) class_ids: Vec<u32>,
    pub(super) class_records: Vec<u64>,
    /// Per subject key: its base class while it has been seen in one only; once seen in
    /// several, [`SEVERAL`] plus the index of its classes in `subject_classes`. Memory
    /// follows the distinct subjects, not the records, and the decision needs no sort.
    /// FxHash suits these keys where it does not suit QI keys: a subject key is cut from
    /// a keyed HMAC (or is a record number), so producers cannot choose colliding ones.
    pub(super) subject_class: FxHashMap<u64, u32>,
    /// The classes of each subject seen in several (deduplicated when small).
    pub(super) subject_classes: Vec<Vec<u32>>,
    pub(super) counts_subjects: bool,
    /// Counting has ended ([`QiHistogram::seal`]): the lookup tables are gone.
    pub(super) sealed: bool,
    pub(super) records: u64,
    /// Heap bytes of the interned values' strings, and of the lists in `subject_classes`:
    /// kept as they grow, so that [`QiHistogram::heap_bytes`] costs no pass.
    pub(super) value_bytes: usize,
    pub(super) multi_bytes: usize,
}

/// The threads a decision counts on (and [`QiHistogram::decision_bytes`] is asked about).
pub fn decision_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Heap bytes of a std or hashbrown hash table of this capacity holding entries of
/// `entry` bytes: its buckets (a power of two, at most seven eighths full) of one entry
/// and one control byte each.
pub fn hash_table_bytes(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    (capacity * 8 / 7).next_power_of_two() * (entry + 1)
}

fn map_bytes<K, V>(capacity: usize) -> usize {
    hash_table_bytes(capacity, std::mem::size_of::<(K, V)>())
}

/// The highest number of base classes or distinct values per quasi-identifier: class ids
/// leave the top bit free for [`SEVERAL`].
pub(super) const MAX_IDS: usize = (1 << 31) - 1;

/// Marks a subject seen in several base classes (see `QiHistogram::subject_class`).
pub(super) const SEVERAL: u32 = 1 << 31;

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
            class_ids: Vec::new(),
            class_records: Vec::new(),
            subject_class: FxHashMap::default(),
            subject_classes: Vec::new(),
            counts_subjects: rules.subject.is_some(),
            sealed: false,
            records: 0,
            value_bytes: 0,
            multi_bytes: 0,
        }
    }

    /// Distinct subjects so far (records, when the dataset names no subject field).
    pub fn subjects(&self) -> u64 {
        if self.counts_subjects {
            self.subject_class.len() as u64
        } else {
            self.records
        }
    }

    /// Bytes the histogram holds on the heap, from its tables' capacities: constant time,
    /// so a release can check its memory after every batch. An estimate within the
    /// allocator's rounding.
    pub fn heap_bytes(&self) -> usize {
        self.heap_parts().iter().map(|&(_, bytes)| bytes).sum()
    }

    /// [`QiHistogram::heap_bytes`] part by part (for a log line that says what grew).
    pub fn heap_parts(&self) -> [(&'static str, usize); 5] {
        use std::mem::size_of;
        let dicts: usize = self
            .dicts
            .iter()
            .map(|d| map_bytes::<Arc<str>, u32>(d.capacity()))
            .sum();
        let values: usize = self
            .values
            .iter()
            .map(|v| v.capacity() * size_of::<Option<Arc<str>>>())
            .sum();
        [
            ("classes", self.classes.heap_bytes()),
            ("class_ids", self.class_ids.capacity() * size_of::<u32>()),
            (
                "class_records",
                self.class_records.capacity() * size_of::<u64>(),
            ),
            (
                "subjects",
                map_bytes::<u64, u32>(self.subject_class.capacity())
                    + self.subject_classes.capacity() * size_of::<Vec<u32>>()
                    + self.multi_bytes,
            ),
            ("values", dicts + values + self.value_bytes),
        ]
    }

    /// Bytes the decision is expected to allocate over this histogram, at most, on
    /// `threads` threads, and the [`Decision`] keeps through pass 2: per base class its
    /// subject counts, its generalized id per QI level, an evaluation's buffers per
    /// thread, the snapshots' share, the floor's classes when the search rolls up to
    /// them, and the decision's per-class ids. Checked before the decision starts, so a
    /// release too large for its memory stops with a reason instead of being killed.
    pub fn decision_bytes(&self, threads: usize) -> usize {
        let n_qi = self.names.len();
        // Levels with more than one value (a hierarchy's top is one value).
        let levels: usize = self
            .hierarchies
            .iter()
            .map(|h| h.height().saturating_sub(1))
            .sum();
        let counts = 16 + 4 + 4; // ClassCounts, single and shared subject counts
        let tables = 4 * levels;
        let evaluation = 4 + 8 + 8 + 16; // class map, subjects, records, radix buffers
        let snapshots = 48;
        let decision = 4 + 4 * n_qi + 8;
        let floor = (counts + tables) * 3 / 4;
        let per_class = counts + tables + evaluation * (threads + 1) + snapshots + decision + floor;
        self.class_records.len() * per_class
    }

    /// Ends the counting: frees what only finding a record's class needs, the class table
    /// with its keys and the value dictionaries, which the decision does not read (at 20M
    /// `contacts` records, 276 MiB of the histogram's 512, freed before the decision
    /// allocates its own). Adding records afterwards is an error ([`Error::Sealed`]).
    pub fn seal(&mut self) {
        self.sealed = true;
        self.classes = ClassTable::with_slots(ClassTable::INITIAL_SLOTS);
        for dict in &mut self.dicts {
            *dict = FxHashMap::default();
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
        if self.sealed {
            return Err(Error::Sealed);
        }
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
    pub(super) fn class_of(&mut self, key: &[u8], hash: u64) -> Result<u32> {
        match self.classes.find(hash, key) {
            Some(class) => Ok(class),
            None => self.new_class(key, hash),
        }
    }

    /// Interns a key seen for the first time: its values get ids, it gets a class.
    pub(super) fn new_class(&mut self, key: &[u8], hash: u64) -> Result<u32> {
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
                        // An `Arc<str>`: two counts and the bytes, in 8-byte steps.
                        self.value_bytes += (16 + v.len()).next_multiple_of(8);
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
        self.class_records.push(0);
        let class = self.classes.insert(hash, key);
        debug_assert_eq!(class as usize, c, "class ids follow the table's");
        Ok(class)
    }

    /// Records that a subject was seen in a base class.
    pub(super) fn note_subject(&mut self, subject: u64, class: u32) -> Result<()> {
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
                    let classes = vec![seen, class];
                    self.multi_bytes += classes.capacity() * 4;
                    self.subject_classes.push(classes);
                    return Ok(());
                }
                let classes = &mut self.subject_classes[(seen & !SEVERAL) as usize];
                let capacity = classes.capacity();
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
                self.multi_bytes += (classes.capacity() - capacity) * 4;
            }
        }
        Ok(())
    }

    /// Who counts where: subjects seen in one base class only are counted per class; the
    /// (few) subjects seen in several keep their list of classes, and each of those
    /// classes counts them as shared.
    pub(super) fn subject_index(&self) -> SubjectIndex {
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
        // On one of rayon's threads: the search hands batches of a few nodes, tens of
        // microseconds each, to the pool, and from outside it every hand-over wakes a worker
        // and then the caller again (a fifth of the CPU time on UCI Adult went to the
        // scheduler). From inside, the searching thread counts a share itself.
        rayon::scope(|_| self.decide_on_pool(k, max_suppression))
    }

    fn decide_on_pool(&self, k: u32, max_suppression: f64) -> Result<Decision> {
        let heights: Vec<usize> = self.hierarchies.iter().map(Hierarchy::height).collect();
        // Independent, and each a sizeable share of a decision on a large release.
        let mut clock = PhaseClock::default();
        clock.lap("start");
        let (mut tables, subjects) = std::thread::scope(|s| {
            let subjects = s.spawn(|| self.subject_index());
            let tables = LevelTables::for_values(&self.hierarchies, &self.values);
            subjects
                .join()
                .map(|subjects| (tables, subjects))
                .map_err(|_| Error::Capacity("the subject index worker panicked".into()))
        })?;
        let limit = (max_suppression * self.records as f64).floor() as u64;
        let top: Vec<usize> = heights.iter().map(|h| h - 1).collect();
        let max_sum: usize = top.iter().sum();
        clock.lap("index");
        let bounds = SafeLevels::build(self, &tables, &subjects, u64::from(k));
        // Every node the search may evaluate lies above the floor: the base classes' ids
        // are needed only from there up.
        let floor = bounds.floor(&heights, limit);
        clock.lap("bounds");
        tables.fill_classes(&self.class_ids, &floor);
        clock.lap("tables");
        let ctx = EvalContext::over_base(self, &tables, &subjects, u64::from(k));

        if self.records == 0 {
            let eval = ctx.evaluate_exactly(&top)?;
            return Ok(self.decision(Outcome::Empty, top, &eval, &tables, 1));
        }
        let threads = decision_threads();
        let nesting = Nesting::of(&tables, &floor);
        // When the floor's classes are markedly fewer than the base classes, the search
        // counts from them.
        let rolled = if floor.iter().any(|&l| l > 0) && nesting.nests_above(&floor) {
            let eval = ctx.evaluate_exactly(&floor)?;
            if eval.subjects.len() * 4 < self.class_records.len() * 3 {
                ctx.roll_up(&floor, eval, &nesting)
            } else {
                None
            }
        } else {
            None
        };
        let view = rolled.as_ref().map(|r| ctx.over(r));
        clock.lap("floor");
        let search_classes = view.as_ref().unwrap_or(&ctx).classes;
        let mut search = Search {
            ctx: view.as_ref().unwrap_or(&ctx),
            bounds: &bounds,
            heights: &heights,
            limit,
            threads,
            fits: Vec::new(),
            known: Known::new(&heights),
            best: None,
            evaluated: 0,
            nesting: &nesting,
            snapshots: Vec::new(),
            snapshot_budget: Search::snapshot_budget(search_classes),
            snapshot_bytes: 0,
            scratch: Default::default(),
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
        let (node, mut eval) = search.best_at(lo)?;
        clock.lap("search");
        let evaluated = search.evaluated + usize::from(rolled.is_some());
        if let Some(rolled) = &rolled {
            // From the floor's classes back to the base classes.
            eval.class_of_base = rolled
                .of_base
                .iter()
                .map(|&g| eval.class_of_base[g as usize])
                .collect();
        }
        let mut decision = self.decision(Outcome::Release, node, &eval, &tables, evaluated);
        clock.lap("decision");
        decision.phases = clock.laps;
        decision.floor = floor;
        decision.search_classes = search_classes;
        Ok(decision)
    }

    /// Every lattice node with the records it suppresses under `k`, each counted
    /// directly: what the pruned search must agree with (tests only).
    #[cfg(test)]
    pub(crate) fn suppressed_at_every_node(&self, k: u32) -> Vec<(Vec<usize>, u64)> {
        let heights: Vec<usize> = self.hierarchies.iter().map(Hierarchy::height).collect();
        let tables = LevelTables::build(&self.hierarchies, &self.values, &self.class_ids);
        let subjects = self.subject_index();
        let ctx = EvalContext::over_base(self, &tables, &subjects, u64::from(k));
        every_node(&heights)
            .into_iter()
            .map(|node| {
                let suppressed = ctx
                    .evaluate_exactly(&node)
                    .map_or(u64::MAX, |e| e.suppressed);
                (node, suppressed)
            })
            .collect()
    }

    pub(super) fn decision(
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
            phases: Vec::new(),
            floor: Vec::new(),
            search_classes: self.class_records.len(),
            published_values,
            class_values,
            class_of_base: eval.class_of_base.clone(),
            published_records,
        }
    }
}
