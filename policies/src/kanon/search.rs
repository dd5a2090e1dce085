//! The lattice search: nodes evaluated against the base classes, decided by
//! monotonicity where possible, in parallel where not.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::histogram::QiHistogram;
use super::radix::{Buckets, sort_by_bits};
use crate::hierarchy::Hierarchy;
use crate::{Error, Result};

/// Per QI and level: the generalized values (computed once per distinct value) and each
/// base class's generalized id.
pub(super) struct LevelTables {
    /// [qi][level][generalized id] → the generalized value.
    pub(super) values: Vec<Vec<Vec<Option<Arc<str>>>>>,
    /// [qi][level][base class] → the class's generalized id at that level; empty where the
    /// level has a single value. A node's keys are then built column by column from a few
    /// arrays read in sequence, where looking each class's ids up took most of an
    /// evaluation (about 2.5 of 4 ms on 163,583 classes).
    pub(super) of_class: Vec<Vec<Vec<u32>>>,
    /// [qi][level][level-0 value id] → its generalized id at that level (for the
    /// per-value bounds of [`SafeLevels`]).
    pub(super) of_value: Vec<Vec<Vec<u32>>>,
}

impl LevelTables {
    /// Every level's values and base-class ids.
    #[cfg(test)]
    pub(super) fn build(
        hierarchies: &[Hierarchy],
        values: &[Vec<Option<Arc<str>>>],
        class_ids: &[u32],
    ) -> Self {
        let mut tables = Self::for_values(hierarchies, values);
        tables.fill_classes(class_ids, &vec![0; hierarchies.len()]);
        tables
    }

    /// The generalized values of each level, without the base classes' ids (see
    /// [`LevelTables::fill_classes`]). Each (QI, level) on its own rayon task: they are
    /// independent, and one QI with many distinct values would otherwise keep one core
    /// busy alone while the subject index is built.
    pub(super) fn for_values(hierarchies: &[Hierarchy], values: &[Vec<Option<Arc<str>>>]) -> Self {
        use rayon::prelude::*;
        let levels: Vec<(usize, usize)> = hierarchies
            .iter()
            .enumerate()
            .flat_map(|(q, h)| (0..h.height()).map(move |level| (q, level)))
            .collect();
        // In the order of `levels`: QI by QI, level by level.
        let mut built = levels
            .par_iter()
            .map(|&(q, level)| level_table(&hierarchies[q], &values[q], level))
            .collect::<Vec<_>>()
            .into_iter();
        let (mut generalized, mut of_class, mut of_value) = (Vec::new(), Vec::new(), Vec::new());
        for h in hierarchies {
            let (mut qi_values, mut qi_ids) = (Vec::new(), Vec::new());
            for _ in 0..h.height() {
                let (ids, level_values) = built.next().unwrap_or_default();
                qi_values.push(level_values);
                qi_ids.push(ids);
            }
            generalized.push(qi_values);
            of_class.push(vec![Vec::new(); h.height()]);
            of_value.push(qi_ids);
        }
        Self {
            values: generalized,
            of_class,
            of_value,
        }
    }

    /// Each base class's generalized id at every level at or above `floor` that has more
    /// than one value: the only levels the search can still ask about (see
    /// [`SafeLevels::floor`]). A QI whose values are unique per record at level 0 (an IP per
    /// visit) is never looked up there at all.
    pub(super) fn fill_classes(&mut self, class_ids: &[u32], floor: &[usize]) {
        use rayon::prelude::*;
        let n_qi = self.values.len();
        let wanted: Vec<(usize, usize)> = (0..n_qi)
            .flat_map(|q| (floor[q]..self.values[q].len()).map(move |level| (q, level)))
            .filter(|&(q, level)| self.values[q][level].len() > 1)
            .collect();
        let filled: Vec<Vec<u32>> = wanted
            .par_iter()
            .map(|&(q, level)| {
                let ids = &self.of_value[q][level];
                class_ids
                    .iter()
                    .skip(q)
                    .step_by(n_qi)
                    .map(|&id| ids[id as usize])
                    .collect()
            })
            .collect();
        for ((q, level), of_class) in wanted.into_iter().zip(filled) {
            self.of_class[q][level] = of_class;
        }
    }

    /// Distinct generalized values of a QI at a level.
    pub(super) fn cardinality(&self, q: usize, level: usize) -> u32 {
        self.values[q][level].len() as u32
    }
}

/// One QI's level: each level-0 value's generalized id, and the generalized values by id.
pub(super) fn level_table(
    h: &Hierarchy,
    values: &[Option<Arc<str>>],
    level: usize,
) -> (Vec<u32>, Vec<Option<Arc<str>>>) {
    if level == 0 {
        // The histogram's values are distinct already: each is its own id.
        return ((0..values.len() as u32).collect(), values.to_vec());
    }
    if level + 1 >= h.height() && !matches!(h, Hierarchy::Table(_)) {
        // The top of a computed hierarchy is one value for every input (a table's top
        // row may name several): no value needs generalizing, a million IPs parsed for
        // nothing took a tenth of a decision.
        return (
            vec![0; values.len()],
            vec![h.generalize(None, level).map(Arc::from)],
        );
    }
    // Generalized a chunk per core (a million distinct IPs are a million parses), each
    // chunk into distinct values of its own, then merged. A value is allocated only when
    // its chunk sees it first.
    use rayon::prelude::*;
    let chunk = values
        .len()
        .div_ceil(rayon::current_num_threads().max(1))
        .max(1 << 14);
    /// A chunk's ids into its own distinct values.
    type Part = (Vec<u32>, Vec<Option<Box<str>>>);
    let parts: Vec<Part> = values
        .par_chunks(chunk)
        .map(|values| {
            let mut dict: FxHashMap<Box<str>, u32> = FxHashMap::default();
            let mut null: Option<u32> = None;
            let mut distinct: Vec<Option<Box<str>>> = Vec::new();
            let mut buf = String::new();
            let ids = values
                .iter()
                .map(|v| {
                    if !h.generalize_into(v.as_deref(), level, &mut buf) {
                        return *null.get_or_insert_with(|| {
                            distinct.push(None);
                            (distinct.len() - 1) as u32
                        });
                    }
                    if let Some(&id) = dict.get(buf.as_str()) {
                        return id;
                    }
                    let id = distinct.len() as u32;
                    distinct.push(Some(buf.as_str().into()));
                    dict.insert(buf.as_str().into(), id);
                    id
                })
                .collect();
            (ids, distinct)
        })
        .collect();
    let mut dict: FxHashMap<Option<Box<str>>, u32> = FxHashMap::default();
    let mut distinct: Vec<Option<Arc<str>>> = Vec::new();
    let mut ids = Vec::with_capacity(values.len());
    for (local_ids, local_values) in parts {
        let global: Vec<u32> = local_values
            .into_iter()
            .map(|v| {
                let next = distinct.len() as u32;
                *dict.entry(v).or_insert_with_key(|v| {
                    distinct.push(v.as_deref().map(Arc::from));
                    next
                })
            })
            .collect();
        ids.extend(local_ids.iter().map(|&l| global[l as usize]));
    }
    (ids, distinct)
}

/// A lower bound on the records any node suppresses, from each quasi-identifier on its
/// own: a class at a node is part of the records sharing its value of one QI at that QI's
/// level, so where those records hold fewer than k subjects, the class is under k
/// whatever the other QIs do. Per base class, the lowest level of each QI at which its
/// value could reach k is kept; base classes with the same levels are counted together,
/// so a node's bound costs a pass over those few vectors, not over the classes.
///
/// Subjects per value are over-counted (a subject seen in several base classes of one
/// value counts once per class), which only weakens the bound: it never claims a record
/// that an exact count would keep.
pub(super) struct SafeLevels {
    /// Distinct per-QI lowest safe levels, with the records of their base classes.
    vectors: Vec<(Vec<u8>, u64)>,
    records: u64,
}

impl SafeLevels {
    pub(super) fn build(
        hist: &QiHistogram,
        tables: &LevelTables,
        subjects: &SubjectIndex,
        k: u64,
    ) -> Self {
        let n_qi = hist.names.len();
        let heights: Vec<usize> = hist.hierarchies.iter().map(Hierarchy::height).collect();
        if n_qi == 0 || heights.iter().any(|&h| h > 255) {
            // Too many to pack: no bound (every node is counted).
            return Self {
                vectors: Vec::new(),
                records: 0,
            };
        }
        // Subjects of a base class, at most: its own plus those seen elsewhere too.
        let upper: Vec<u64> = subjects
            .per_class
            .iter()
            .enumerate()
            .map(|(c, counts)| {
                counts.subjects + subjects.shared.get(c).map_or(0, |&n| u64::from(n))
            })
            .collect();
        // Per base class, its safe levels as one mixed-radix number (digit q: 0..=height),
        // so that classes with the same levels are counted in an array, not a map.
        let cells = heights.iter().try_fold(1usize, |n, &h| {
            n.checked_mul(h + 1).filter(|&n| n <= 1 << 22)
        });
        let Some(cells) = cells else {
            return Self {
                vectors: Vec::new(),
                records: 0,
            };
        };
        // Per QI (each on its own rayon task: on a million base classes each is a pass over
        // them), per level-0 value: its lowest safe level.
        use rayon::prelude::*;
        let safe: Vec<Vec<u32>> = heights
            .par_iter()
            .enumerate()
            .map(|(q, &height)| {
                let mut of_value = vec![0u64; hist.values[q].len()];
                for (c, &up) in upper.iter().enumerate() {
                    of_value[hist.class_ids[c * n_qi + q] as usize] += up;
                }
                // `height` stands for "under k even fully generalized".
                let mut safe = vec![height as u32; of_value.len()];
                for level in 0..height {
                    let ids = &tables.of_value[q][level];
                    let mut of_id = vec![0u64; tables.cardinality(q, level) as usize];
                    for (v, &n) in of_value.iter().enumerate() {
                        of_id[ids[v] as usize] += n;
                    }
                    for (v, s) in safe.iter_mut().enumerate() {
                        if *s as usize == height && of_id[ids[v] as usize] >= k {
                            *s = level as u32;
                        }
                    }
                }
                safe
            })
            .collect();
        let cell: Vec<u32> = hist
            .class_ids
            .par_chunks(n_qi)
            .map(|ids| {
                ids.iter()
                    .zip(&safe)
                    .zip(&heights)
                    .fold(0u32, |cell, ((&id, safe), &height)| {
                        cell * (height as u32 + 1) + safe[id as usize]
                    })
            })
            .collect();
        let mut counted = vec![0u64; cells];
        for (&c, &records) in cell.iter().zip(&hist.class_records) {
            counted[c as usize] += records;
        }
        let vectors = counted
            .iter()
            .enumerate()
            .filter(|&(_, &records)| records > 0)
            .map(|(mut c, &records)| {
                let mut levels = vec![0u8; n_qi];
                for (q, &height) in heights.iter().enumerate().rev() {
                    levels[q] = (c % (height + 1)) as u8;
                    c /= height + 1;
                }
                (levels, records)
            })
            .collect();
        Self {
            vectors,
            records: hist.records,
        }
    }

    /// The lowest level of each QI at which a node may still fit: below it, that QI's
    /// values alone suppress more than `limit` records. Every node worth evaluating lies
    /// above this one.
    pub(super) fn floor(&self, heights: &[usize], limit: u64) -> Vec<usize> {
        let top: Vec<usize> = heights.iter().map(|h| h - 1).collect();
        (0..heights.len())
            .map(|q| {
                (0..heights[q])
                    .find(|&level| {
                        let mut node = top.clone();
                        node[q] = level;
                        self.suppressed_at_least(&node) <= limit
                    })
                    .unwrap_or(top[q])
            })
            .collect()
    }

    /// Records the node suppresses at least.
    pub(super) fn suppressed_at_least(&self, node: &[usize]) -> u64 {
        let safe: u64 = self
            .vectors
            .iter()
            .filter(|(levels, _)| levels.iter().zip(node).all(|(&s, &n)| usize::from(s) <= n))
            .map(|&(_, records)| records)
            .sum();
        self.records.saturating_sub(safe)
    }
}

/// Distinct subjects per base class, arranged for counting at any node.
pub(super) struct SubjectIndex {
    /// Per base class: its records and the subjects seen in that class only.
    pub(super) per_class: Vec<ClassCounts>,
    /// Per base class: the subjects seen in it and in others too (empty when there are
    /// none). A group holds at most its classes' own subjects plus these.
    pub(super) shared: Vec<u32>,
    /// Subjects seen in several base classes: their classes, back to back (ends below).
    pub(super) multi_classes: Vec<u32>,
    pub(super) multi_ends: Vec<usize>,
    /// Distinct subjects of the release (records, when each is its own subject).
    pub(super) distinct: u64,
}

impl SubjectIndex {
    /// The index of the classes of a node evaluated over these: where no subject is seen
    /// in several classes, the evaluation's counts are the classes' own, and the pass over
    /// the classes below is saved (a sixth of a search on UCI Adult went to rolling up).
    pub(super) fn of_node(&self, eval: &NodeEval) -> SubjectIndex {
        if !self.multi_ends.is_empty() {
            return self.rolled_up(&eval.class_of_base, eval.subjects.len());
        }
        SubjectIndex {
            per_class: eval
                .records
                .iter()
                .zip(&eval.subjects)
                .map(|(&records, &subjects)| ClassCounts { records, subjects })
                .collect(),
            shared: Vec::new(),
            multi_classes: Vec::new(),
            multi_ends: Vec::new(),
            distinct: self.distinct,
        }
    }

    /// The index of a node's classes, given each class's class there (`class_of`): records
    /// add up, and a subject seen in several classes that fall into one becomes its own.
    pub(super) fn rolled_up(&self, class_of: &[u32], classes: usize) -> SubjectIndex {
        let mut per_class = vec![ClassCounts::default(); classes];
        for (c, &g) in class_of.iter().enumerate() {
            let class = &self.per_class[c];
            let group = &mut per_class[g as usize];
            group.records += class.records;
            group.subjects += class.subjects;
        }
        let (mut shared, mut multi_classes, mut multi_ends) = (Vec::new(), Vec::new(), Vec::new());
        if !self.multi_ends.is_empty() {
            shared = vec![0u32; classes];
        }
        let mut start = 0;
        let mut own: Vec<u32> = Vec::new();
        for &end in &self.multi_ends {
            own.clear();
            own.extend(
                self.multi_classes[start..end]
                    .iter()
                    .map(|&b| class_of[b as usize]),
            );
            own.sort_unstable();
            own.dedup();
            if let [only] = own[..] {
                per_class[only as usize].subjects += 1;
            } else {
                for &g in &own {
                    shared[g as usize] += 1;
                }
                multi_classes.extend_from_slice(&own);
                multi_ends.push(multi_classes.len());
            }
            start = end;
        }
        SubjectIndex {
            per_class,
            shared,
            multi_classes,
            multi_ends,
            distinct: self.distinct,
        }
    }
}

/// Calls `f` on each slot of `out` with its class's id in `of_class`: the class's own, or
/// over a snapshot (`rep`) its representative's.
#[inline]
fn for_each_id<T>(out: &mut [T], of_class: &[u32], rep: Option<&[u32]>, f: impl Fn(&mut T, u32)) {
    match rep {
        None => out.iter_mut().zip(of_class).for_each(|(o, &id)| f(o, id)),
        Some(rep) => out
            .iter_mut()
            .zip(rep)
            .for_each(|(o, &c)| f(o, of_class[c as usize])),
    }
}

/// Adds each class's counts into its group's, in class order: the classes' counts are
/// read in sequence, where reading them in sorted order misses the cache on most.
fn add_in_class_order(counts: &mut [ClassCounts], class_of: &[u32], per_class: &[ClassCounts]) {
    for (&g, class) in class_of.iter().zip(per_class) {
        let group = &mut counts[g as usize];
        group.records += class.records;
        group.subjects += class.subjects;
    }
}

/// Buffers an evaluation works in, kept from one to the next by each thread.
#[derive(Default)]
pub(super) struct Scratch {
    key: Vec<u32>,
    group_of: Vec<u32>,
    keyed: Vec<u64>,
    sorted: Vec<u64>,
    counts: Vec<ClassCounts>,
    shared: Vec<u64>,
}

/// Records and distinct subjects, side by side: node evaluation adds both into its group
/// of each base class, one cache miss instead of two.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ClassCounts {
    pub(super) records: u64,
    /// Of a base class: the subjects seen in it only. Of a group: those summed, then
    /// each subject seen in several base classes once.
    pub(super) subjects: u64,
}

/// What a node is evaluated over: the base classes, or the classes of a lower node they
/// were rolled up to ([`EvalContext::roll_up`]), which every node the search still asks
/// about lies above.
#[derive(Clone, Copy)]
pub(super) struct EvalContext<'a> {
    pub(super) hist: &'a QiHistogram,
    pub(super) tables: &'a LevelTables,
    /// [qi][level][class] → the class's generalized id (see [`LevelTables::of_class`]);
    /// empty where the level has a single value, or lies below the rolled-up node.
    pub(super) of_class: &'a [Vec<Vec<u32>>],
    pub(super) subjects: &'a SubjectIndex,
    /// Classes evaluated over.
    pub(super) classes: usize,
    /// Evaluating over a [`Snapshot`]: per class, one class of `of_class` in it (whose ids
    /// are the class's, where the hierarchies nest).
    pub(super) rep: Option<&'a [u32]>,
    /// Classes `of_class` is indexed by.
    pub(super) indexed: usize,
    pub(super) k: u64,
}

/// The classes of a node, arranged as base classes are, to evaluate nodes above it from
/// them: Incognito's roll-up. A node's classes are unions of the classes of any node
/// below it, so their records add up; a subject seen in several classes below may fall
/// into one above, and is then counted as that class's own.
pub(super) struct RolledUp {
    pub(super) of_class: Vec<Vec<Vec<u32>>>,
    pub(super) subjects: SubjectIndex,
    /// Per base class: its class at `node`.
    pub(super) of_base: Vec<u32>,
}

pub(super) struct NodeEval {
    pub(super) k: u64,
    pub(super) distinct_subjects: u64,
    pub(super) suppressed: u64,
    pub(super) violations: u64,
    pub(super) class_of_base: Vec<u32>,
    pub(super) subjects: Vec<u64>,
    /// Per class of the node: its records.
    pub(super) records: Vec<u64>,
}

impl<'a> EvalContext<'a> {
    /// Evaluation over the base classes.
    pub(super) fn over_base(
        hist: &'a QiHistogram,
        tables: &'a LevelTables,
        subjects: &'a SubjectIndex,
        k: u64,
    ) -> Self {
        Self {
            hist,
            tables,
            of_class: &tables.of_class,
            subjects,
            classes: hist.class_records.len(),
            rep: None,
            indexed: hist.class_records.len(),
            k,
        }
    }

    /// Evaluation over the classes of a lower node.
    pub(super) fn over(&self, rolled: &'a RolledUp) -> Self {
        Self {
            hist: self.hist,
            tables: self.tables,
            of_class: &rolled.of_class,
            subjects: &rolled.subjects,
            classes: rolled.subjects.per_class.len(),
            rep: None,
            indexed: rolled.subjects.per_class.len(),
            k: self.k,
        }
    }

    /// Evaluation over the classes of a snapshot taken over this context's classes.
    pub(super) fn over_snapshot(&self, snapshot: &'a Snapshot) -> Self {
        Self {
            hist: self.hist,
            tables: self.tables,
            of_class: self.of_class,
            subjects: &snapshot.subjects,
            classes: snapshot.rep.len(),
            rep: Some(&snapshot.rep),
            indexed: self.classes,
            k: self.k,
        }
    }

    /// The classes of `node` (over base classes), ready to evaluate the nodes above it;
    /// `None` when some hierarchy does not nest above `node` ([`Nesting`]): a node's
    /// classes are then no unions of the lower node's, and counting from those would
    /// overstate them.
    pub(super) fn roll_up(
        &self,
        node: &[usize],
        eval: NodeEval,
        nesting: &Nesting<'_>,
    ) -> Option<RolledUp> {
        if !nesting.nests_above(node) {
            return None;
        }
        let classes = eval.subjects.len();
        let index = self.subjects;
        let mut representative = vec![u32::MAX; classes];
        for (c, &g) in eval.class_of_base.iter().enumerate() {
            if representative[g as usize] == u32::MAX {
                representative[g as usize] = c as u32;
            }
        }
        let mut of_class: Vec<Vec<Vec<u32>>> = Vec::with_capacity(node.len());
        for (levels, &floor) in self.of_class.iter().zip(node) {
            let mut qi = Vec::with_capacity(levels.len());
            for (level, ids) in levels.iter().enumerate() {
                if level < floor || ids.is_empty() {
                    qi.push(Vec::new());
                    continue;
                }
                qi.push(representative.iter().map(|&c| ids[c as usize]).collect());
            }
            of_class.push(qi);
        }
        let subjects = index.of_node(&eval);
        Some(RolledUp {
            of_class,
            subjects,
            of_base: eval.class_of_base,
        })
    }

    /// The node's classes, every one counted (for the decision and its report).
    pub(super) fn evaluate_exactly(&self, node: &[usize]) -> Result<NodeEval> {
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
    pub(super) fn evaluate(
        &self,
        node: &[usize],
        stop_above: Option<u64>,
    ) -> Result<Option<NodeEval>> {
        self.evaluate_in(node, stop_above, &mut Scratch::default())
    }

    /// [`EvalContext::evaluate`] with buffers kept from earlier evaluations: fresh ones
    /// of this size cost page faults and zeroing that took a third of a search on UCI
    /// Adult.
    pub(super) fn evaluate_in(
        &self,
        node: &[usize],
        stop_above: Option<u64>,
        scratch: &mut Scratch,
    ) -> Result<Option<NodeEval>> {
        let Scratch {
            key,
            group_of,
            keyed,
            sorted,
            counts,
            shared,
        } = scratch;
        let hist = self.hist;
        // Pack the generalized key of a base class into a u128: bits per QI from the
        // cardinality of its level (ids run 0..cardinality). A QI generalized to a single
        // value takes no bits and is not looked up at all.
        let packed: Vec<(u32, &[u32], u32)> = node
            .iter()
            .enumerate()
            .map(|(q, &l)| {
                let cardinality = self.tables.cardinality(q, l);
                let width = u32::BITS - cardinality.saturating_sub(1).leading_zeros();
                (width, self.of_class[q][l].as_slice(), cardinality)
            })
            .filter(|&(width, _, _)| width > 0)
            .collect();
        if packed.iter().any(|&(_, ids, _)| ids.len() != self.indexed) {
            return Err(Error::Capacity(format!(
                "node {node:?} lies below the classes it was to be evaluated from"
            )));
        }
        let key_bits: u32 = packed.iter().map(|&(width, _, _)| width).sum();
        if key_bits > 128 {
            return Err(Error::Capacity(format!(
                "quasi-identifiers of `{}` have too many distinct values to index",
                hist.names.join(", ")
            )));
        }
        let base_classes = self.classes;
        let rep = self.rep;
        let packed_key = |c: usize| -> u128 {
            let c = rep.map_or(c, |rep| rep[c] as usize);
            let mut out: u128 = 0;
            for &(width, of_class, _) in &packed {
                out = (out << width) | u128::from(of_class[c]);
            }
            out
        };
        let index = self.subjects;
        let mut class_of_base = vec![0u32; base_classes];
        let class_bits = usize::BITS - base_classes.leading_zeros();
        // Per group: records, and distinct subjects (single-class ones so far).
        counts.clear();
        // The keys a node can have: the product of its levels' cardinalities.
        let space = packed
            .iter()
            .try_fold(1usize, |n, &(_, _, cardinality)| {
                n.checked_mul(cardinality as usize)
            })
            .filter(|&space| space <= (4 * base_classes).max(1 << 12) && space <= 1 << 24);
        if let Some(space) = space {
            // Few possible keys (a node high in the lattice; on UCI Adult most nodes the
            // search counts): each class's key, mixed radix in the packed key's order,
            // indexes an array directly. Three passes in sequence and two lookups in an
            // array the size of the key space, where a sort took most of an evaluation.
            key.clear();
            key.resize(base_classes, 0);
            for &(_, of_class, cardinality) in &packed {
                for_each_id(key, of_class, rep, |key, id| *key = *key * cardinality + id);
            }
            group_of.clear();
            group_of.resize(space, u32::MAX);
            for &k in key.iter() {
                group_of[k as usize] = 0;
            }
            // Groups numbered in key order, as the sort numbers them.
            let mut groups = 0u32;
            for g in group_of.iter_mut().filter(|g| **g == 0) {
                *g = groups;
                groups += 1;
            }
            counts.resize(groups as usize, ClassCounts::default());
            for ((c, &k), class) in key.iter().enumerate().zip(&index.per_class) {
                let g = group_of[k as usize];
                class_of_base[c] = g;
                let group = &mut counts[g as usize];
                group.records += class.records;
                group.subjects += class.subjects;
            }
            if let Some(limit) = stop_above {
                // Given up on, as the sort path does, once the groups under k even if
                // each shared subject were another pass the limit: the subjects seen in
                // several classes are then never walked.
                shared.clear();
                shared.resize(groups as usize, 0);
                for (&g, &n) in class_of_base.iter().zip(&index.shared) {
                    shared[g as usize] += u64::from(n);
                }
                let certainly_suppressed: u64 = counts
                    .iter()
                    .zip(shared.iter())
                    .filter(|&(group, &shared)| group.subjects + shared < self.k)
                    .map(|(group, _)| group.records)
                    .sum();
                if certainly_suppressed > limit {
                    return Ok(None);
                }
            }
        } else if key_bits + class_bits <= 64 {
            // Key and class id share one u64; sorting groups equal keys. A sort streams
            // through memory where a hash table of this size misses the cache on every
            // insert, and this loop runs for every node the search evaluates.
            // Column by column: each pass reads one array in sequence.
            keyed.clear();
            keyed.extend(0..base_classes as u64);
            let mut shift = class_bits + key_bits;
            for &(width, of_class, _) in &packed {
                shift -= width;
                for_each_id(keyed, of_class, rep, |key, id| {
                    *key |= u64::from(id) << shift
                });
            }
            let buckets = Buckets::count(keyed, class_bits, key_bits);
            // A node the search evaluates usually fails by far, which its first buckets
            // show: those are placed first, and the rest only if the count goes on.
            let first = if stop_above.is_some() {
                buckets.holding(keyed.len() / 16)
            } else {
                buckets.len()
            };
            sorted.clear();
            sorted.resize(keyed.len(), 0);
            let mask = (1u64 << class_bits) - 1;
            // Records of groups under k even if each shared subject of each of their
            // classes were another subject: suppressed whatever the exact count.
            let mut certainly_suppressed = 0u64;
            let mut groups = 0u32;
            for digits in [0..first, first..buckets.len()] {
                buckets.scatter(keyed, sorted, digits.clone());
                for d in digits {
                    let bucket = &mut sorted[buckets.range(d)];
                    if key_bits > buckets.digit {
                        sort_by_bits(bucket, class_bits, key_bits);
                    }
                    if stop_above.is_none() {
                        // Counted exactly: only the groups here, their counts below in
                        // class order (reading the classes' counts in sorted order
                        // misses the cache on most of them).
                        for run in bucket.chunk_by(|a, b| a >> class_bits == b >> class_bits) {
                            let g = groups;
                            groups += 1;
                            for &v in run {
                                class_of_base[(v & mask) as usize] = g;
                            }
                        }
                        continue;
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
            if stop_above.is_none() {
                counts.resize(groups as usize, ClassCounts::default());
                add_in_class_order(counts, &class_of_base, &index.per_class);
            }
        } else {
            let mut gen_ids: FxHashMap<u128, u32> = FxHashMap::default();
            gen_ids.reserve(base_classes);
            for (c, group) in class_of_base.iter_mut().enumerate() {
                let next = gen_ids.len() as u32;
                *group = *gen_ids.entry(packed_key(c)).or_insert(next);
            }
            counts.resize(gen_ids.len(), ClassCounts::default());
            add_in_class_order(counts, &class_of_base, &index.per_class);
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
        let records = counts.iter().map(|c| c.records).collect();
        Ok(Some(NodeEval {
            k: self.k,
            distinct_subjects: self.subjects.distinct,
            suppressed,
            violations,
            class_of_base,
            subjects,
            records,
        }))
    }
}

/// The lattice search, remembering what it learned: generalizing never suppresses more,
/// so a node above one that fits fits too, and a node below one that fails fails too.
/// Those nodes are decided without counting their classes, and so are nodes whose
/// per-QI bound ([`SafeLevels`]) already suppresses too much. Nodes are counted from the
/// smallest [`Snapshot`] below them where one is kept.
pub(super) struct Search<'a, 'c> {
    pub(super) ctx: &'a EvalContext<'c>,
    pub(super) bounds: &'a SafeLevels,
    pub(super) heights: &'a [usize],
    pub(super) limit: u64,
    pub(super) threads: usize,
    /// Nodes known to fail or fit without counting them.
    pub(super) known: Known,
    /// Nodes counted and found to fit.
    pub(super) fits: Vec<Vec<usize>>,
    /// The best fitting node evaluated so far (least level sum, then fewest suppressed,
    /// then first in lexicographic order), with its evaluation and whether that was
    /// counted from a snapshot: the tie rule needs it, and a node that fits is not counted
    /// twice. One evaluation is kept, not one per fit: each holds an id per class.
    pub(super) best: Option<(Vec<usize>, NodeEval, bool)>,
    pub(super) evaluated: usize,
    pub(super) nesting: &'a Nesting<'a>,
    /// Kept snapshots, fewest classes first.
    pub(super) snapshots: Vec<Arc<Snapshot>>,
    /// Bytes the snapshots may hold together (see [`Search::snapshot_budget`]).
    pub(super) snapshot_budget: usize,
    /// Bytes they hold.
    pub(super) snapshot_bytes: usize,
    /// Evaluation buffers, one per thread at work.
    pub(super) scratch: std::sync::Mutex<Vec<Scratch>>,
}

/// What monotonicity tells of lattice nodes: at or below a node that failed, a node fails;
/// at or above one that fit, it fits. Marked as nodes are counted, each node once (a bit
/// per fact in a byte per node), so asking costs a lookup: checking every candidate
/// against every failed node took a seventh of the search on UCI Adult (12,960 nodes,
/// thousands of failures). Lattices too large for a byte per node keep the lists.
pub(super) struct Known {
    heights: Vec<usize>,
    /// Per QI: how far apart in `marks` two nodes one level apart on it lie.
    strides: Vec<usize>,
    /// Per node (mixed radix over the levels): [`Known::FAILS`] and [`Known::FITS`] bits.
    marks: Vec<u8>,
    /// For lattices past [`Known::MAX_DENSE`] nodes.
    failed: Vec<Vec<usize>>,
    fitted: Vec<Vec<usize>>,
}

impl Known {
    const FAILS: u8 = 1;
    const FITS: u8 = 2;
    /// 4 MiB of marks; marking a node's cone costs each node of it once.
    const MAX_DENSE: usize = 1 << 22;

    pub(super) fn new(heights: &[usize]) -> Self {
        Self::with_max_dense(heights, Self::MAX_DENSE)
    }

    /// Marks in a byte per node up to `max_dense` nodes, lists past it.
    pub(super) fn with_max_dense(heights: &[usize], max_dense: usize) -> Self {
        let nodes = heights
            .iter()
            .try_fold(1usize, |n, &h| n.checked_mul(h))
            .filter(|&n| n <= max_dense);
        let mut strides = vec![1; heights.len()];
        for q in (0..heights.len().saturating_sub(1)).rev() {
            strides[q] = strides[q + 1] * heights[q + 1];
        }
        Self {
            heights: heights.to_vec(),
            strides,
            marks: nodes.map_or_else(Vec::new, |n| vec![0; n]),
            failed: Vec::new(),
            fitted: Vec::new(),
        }
    }

    fn index(&self, node: &[usize]) -> usize {
        node.iter()
            .zip(&self.heights)
            .fold(0, |i, (&level, &h)| i * h + level)
    }

    pub(super) fn fails(&self, node: &[usize]) -> bool {
        if self.marks.is_empty() {
            return self.failed.iter().any(|f| at_or_below(node, f));
        }
        self.marks[self.index(node)] & Self::FAILS != 0
    }

    pub(super) fn fits(&self, node: &[usize]) -> bool {
        if self.marks.is_empty() {
            return self.fitted.iter().any(|f| at_or_below(f, node));
        }
        self.marks[self.index(node)] & Self::FITS != 0
    }

    /// `node` and everything below it fail.
    pub(super) fn mark_fail(&mut self, node: &[usize]) {
        self.mark(node, Self::FAILS, false);
    }

    /// `node` and everything above it fit.
    pub(super) fn mark_fit(&mut self, node: &[usize]) {
        self.mark(node, Self::FITS, true);
    }

    /// Marks `node` and its cone (above it, or below), a neighbour one level away at a
    /// time; a node already marked has its cone marked.
    fn mark(&mut self, node: &[usize], bit: u8, up: bool) {
        if self.marks.is_empty() {
            // Lists: a node the list already implies adds nothing.
            let implied = if up {
                self.fits(node)
            } else {
                self.fails(node)
            };
            if !implied {
                let list = if up {
                    &mut self.fitted
                } else {
                    &mut self.failed
                };
                list.push(node.to_vec());
            }
            return;
        }
        let start = self.index(node);
        if self.marks[start] & bit != 0 {
            return;
        }
        self.marks[start] |= bit;
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            for (&stride, &height) in self.strides.iter().zip(&self.heights) {
                let level = (i / stride) % height;
                let next = if up {
                    (level + 1 < height).then(|| i + stride)
                } else {
                    (level > 0).then(|| i - stride)
                };
                if let Some(j) = next
                    && self.marks[j] & bit == 0
                {
                    self.marks[j] |= bit;
                    stack.push(j);
                }
            }
        }
    }
}

/// A node's levels in one word, five bits each: four for the level, and a guard bit that
/// a subtraction borrows from only where the other node's level is higher. Nodes of up to
/// 12 QIs with levels under 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PackedLevels {
    levels: u64,
    guards: u64,
}

impl PackedLevels {
    pub(super) fn of(node: &[usize]) -> Option<Self> {
        if node.len() > 12 || node.iter().any(|&l| l > 15) {
            return None;
        }
        let levels = node.iter().fold(0u64, |p, &l| (p << 5) | l as u64);
        let guards = (0..node.len()).fold(0u64, |g, _| (g << 5) | 16);
        Some(Self { levels, guards })
    }

    /// [`at_or_below`] on packed levels (of as many QIs): each field of `upper` with its
    /// guard set is 16 + its level, and keeps the guard after subtracting ours exactly
    /// when ours is no higher; no field borrows from the next.
    pub(super) fn at_or_below(self, upper: Self) -> bool {
        ((upper.levels | self.guards) - self.levels) & self.guards == self.guards
    }
}

/// Whether `a` is at or below `b` in the lattice (no level higher).
pub(super) fn at_or_below(a: &[usize], b: &[usize]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y)
}

/// Which levels a count may be rolled up across: per QI, whether a level's generalized
/// values are unions of a lower level's (each value of the lower level maps to one value
/// above), over the values the release holds. A table may split a group again higher up,
/// and counting a node from the classes of one below it would then merge what must stay
/// apart.
pub(super) struct Nesting<'a> {
    tables: &'a LevelTables,
    floor: Vec<usize>,
    /// [qi][lower level][upper level], decided when first asked: a pass over the QI's
    /// values each, and a tall hierarchy over a million values has many pairs.
    unions: std::sync::Mutex<Vec<Vec<Vec<Option<bool>>>>>,
}

impl<'a> Nesting<'a> {
    /// Over the level tables, for the levels at or above `floor` (the only ones the search
    /// counts).
    pub(super) fn of(tables: &'a LevelTables, floor: &[usize]) -> Self {
        let unions = tables
            .values
            .iter()
            .map(|levels| vec![vec![None; levels.len()]; levels.len()])
            .collect();
        Self {
            tables,
            floor: floor.to_vec(),
            unions: std::sync::Mutex::new(unions),
        }
    }

    /// Whether the classes of every node above `node` are unions of `node`'s.
    pub(super) fn nests_above(&self, node: &[usize]) -> bool {
        node.iter().enumerate().all(|(q, &lower)| {
            (lower..self.tables.values[q].len()).all(|upper| self.unions(q, lower, upper))
        })
    }

    /// Whether `upper`'s classes are unions of `lower`'s.
    pub(super) fn rolls_up(&self, lower: &[usize], upper: &[usize]) -> bool {
        lower
            .iter()
            .zip(upper)
            .enumerate()
            .all(|(q, (&l, &u))| self.unions(q, l, u))
    }

    fn unions(&self, q: usize, lower: usize, upper: usize) -> bool {
        if upper == lower {
            return true;
        }
        if upper < lower || lower < self.floor[q] {
            return false;
        }
        if let Some(known) = self.unions.lock().ok().and_then(|u| u[q][lower][upper]) {
            return known;
        }
        let tables = self.tables;
        // Level 0 holds each value apart; a single value holds them all.
        let unions = lower == 0 || tables.cardinality(q, upper) == 1 || {
            let mut above = vec![u32::MAX; tables.cardinality(q, lower) as usize];
            let (l_ids, u_ids) = (&tables.of_value[q][lower], &tables.of_value[q][upper]);
            l_ids.iter().zip(u_ids).all(|(&l, &u)| {
                let slot = &mut above[l as usize];
                if *slot == u32::MAX {
                    *slot = u;
                }
                *slot == u
            })
        };
        if let Ok(mut cache) = self.unions.lock() {
            cache[q][lower][upper] = Some(unions);
        }
        unions
    }
}

/// A node's classes, kept to count the nodes above it from (ARX's history): where the
/// hierarchies nest, every node above has classes that are unions of these, so it is
/// counted over these few instead of every class of the search. On UCI Adult a node at
/// level sum 9 has about 2,000 classes against 19,502 base classes.
pub(super) struct Snapshot {
    pub(super) node: Vec<usize>,
    pub(super) packed: Option<PackedLevels>,
    /// Per class: one class of the search's context in it, whose generalized ids it has.
    pub(super) rep: Vec<u32>,
    pub(super) subjects: SubjectIndex,
}

impl Snapshot {
    /// What it holds, in bytes.
    pub(super) fn bytes(&self) -> usize {
        let s = &self.subjects;
        4 * self.rep.len()
            + std::mem::size_of::<ClassCounts>() * s.per_class.len()
            + 4 * (s.shared.len() + s.multi_classes.len())
            + std::mem::size_of::<usize>() * s.multi_ends.len()
    }
}

impl EvalContext<'_> {
    /// The classes of `node` as `eval` (over this context) found them.
    pub(super) fn snapshot(&self, node: &[usize], eval: &NodeEval) -> Snapshot {
        let classes = eval.subjects.len();
        let mut rep = vec![u32::MAX; classes];
        for (c, &g) in eval.class_of_base.iter().enumerate() {
            let slot = &mut rep[g as usize];
            if *slot == u32::MAX {
                *slot = self.rep.map_or(c as u32, |rep| rep[c]);
            }
        }
        Snapshot {
            node: node.to_vec(),
            packed: PackedLevels::of(node),
            rep,
            subjects: self.subjects.of_node(eval),
        }
    }
}

/// One walk up the lattice from a node (Flash's paths): at each step the quasi-identifier
/// least generalized relative to its height goes up a level, until the top. Along a path
/// suppression only falls, so the first node that fits is found by bisection, and the
/// last one that fails marks everything below it as failing: on UCI Adult a climb from a
/// node at level sum 9 ends on a failure at sum 11 to 13, which decides hundreds of nodes
/// the search would otherwise count one by one.
pub(super) struct Climb {
    path: Vec<Vec<usize>>,
    /// The first fitting node lies in `lo..=hi` (`hi == path.len()`: none may fit).
    lo: usize,
    hi: usize,
    /// Whether the start has been decided (it is counted first: it may fit).
    started: bool,
    /// Once the path's first fit is known: the highest failure found so far, raised a QI
    /// at a time while that still fails, and the next QI to try raising it on.
    widening: Option<(Vec<usize>, usize)>,
    heights: Vec<usize>,
    /// Whether [`Climb::next`] has nothing left to count.
    done: bool,
}

impl Climb {
    pub(super) fn new(start: Vec<usize>, heights: &[usize]) -> Self {
        let mut path = vec![start.clone()];
        let mut node = start;
        while let Some(q) = (0..node.len())
            .filter(|&q| node[q] + 1 < heights[q])
            .min_by(|&a, &b| (node[a] * (heights[b] - 1)).cmp(&(node[b] * (heights[a] - 1))))
        {
            node[q] += 1;
            path.push(node.clone());
        }
        Self {
            hi: path.len(),
            path,
            lo: 0,
            started: false,
            widening: None,
            heights: heights.to_vec(),
            done: false,
        }
    }

    /// The next node to count, or `None` once the climb is over: the path's first
    /// fitting node is known, and its last failure has been raised to a failure whose
    /// every neighbour above fits.
    pub(super) fn next(&mut self, known: &Known) -> Option<Vec<usize>> {
        while self.lo < self.hi {
            let mid = if self.started {
                (self.lo + self.hi) / 2
            } else {
                self.lo
            };
            if known.fails(&self.path[mid]) {
                self.lo = mid + 1;
            } else if known.fits(&self.path[mid]) {
                self.hi = mid;
            } else {
                return Some(self.path[mid].clone());
            }
            self.started = true;
        }
        // Widening: a failure marks everything below it, so the higher it lies the more
        // it decides. The path's last failure is raised on any QI where the node above
        // still fails, until every node above it fits (a maximal failure). Those nodes
        // lie above the path's counted nodes and are counted from their few classes,
        // where each candidate left undecided would start a climb counted from the
        // search's classes (on UCI Adult, 474 of them at level sum 9 before this).
        if self.widening.is_none() {
            let last = self.lo.checked_sub(1)?;
            self.widening = Some((self.path[last].clone(), 0));
        }
        let (failure, q) = self.widening.as_mut()?;
        while *q < failure.len() {
            if failure[*q] + 1 >= self.heights[*q] {
                *q += 1;
                continue;
            }
            let mut above = failure.clone();
            above[*q] += 1;
            if known.fails(&above) {
                *failure = above;
                *q = 0;
            } else if known.fits(&above) {
                *q += 1;
            } else {
                return Some(above);
            }
        }
        None
    }
}

/// The climbs of [`Search::climb`] under way, shared by its threads.
struct Climbs<'s, 'a, 'c> {
    search: &'s mut Search<'a, 'c>,
    sum: usize,
    /// What each count may give up past.
    limit: Option<u64>,
    /// Candidates yet to start a climb.
    pending: std::vec::IntoIter<Vec<usize>>,
    /// Each climb, and the node of it being counted (a node is counted for one climb at
    /// a time).
    climbs: Vec<(Climb, Option<Vec<usize>>)>,
    /// Whether a node of the sum fits.
    found: bool,
}

/// A node for a thread to count, the snapshot to count it from, whether the budget has
/// room for a snapshot of its own classes, and the limit past which it gives up.
struct Task {
    node: Vec<usize>,
    source: Option<Arc<Snapshot>>,
    room: bool,
    limit: Option<u64>,
}

/// What a thread of [`drive`] does next.
enum Next {
    Count(Task),
    /// Nothing to count until a count under way is recorded.
    Wait,
    /// Nothing more to count.
    Done,
}

/// A thread's evaluation buffers, back to the pool when it is done (see
/// [`EvalContext::evaluate_in`]).
struct ScratchGuard<'p>(&'p std::sync::Mutex<Vec<Scratch>>, Scratch);

impl Drop for ScratchGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.0.lock() {
            pool.push(std::mem::take(&mut self.1));
        }
    }
}

/// Nodes to count, handed to the threads of [`drive`] one at a time.
trait Feed: Send {
    fn next(&mut self) -> Next;
    /// Records a count; `true` ends the drive (the answer is known).
    fn counted(&mut self, task: &Task, counted: Counted) -> bool;
}

/// Counts the nodes `feed` hands out on every thread at once: each thread takes a node,
/// counts it, and has the feed record what it found, the feed under a lock held only for
/// its bookkeeping. Counted in batches, one node per core, a thread that had counted a
/// snapshot's thousand classes waited for the one counting a climb's start over every
/// class, and then both for the bookkeeping (on UCI Adult the two cores were busy 1.3 of
/// 2).
fn drive<F: Feed>(
    ctx: EvalContext<'_>,
    threads: usize,
    buffers: &std::sync::Mutex<Vec<Scratch>>,
    feed: F,
) -> Result<F> {
    let state = std::sync::Mutex::new((feed, false, None::<Error>));
    let wake = std::sync::Condvar::new();
    let work = || {
        let pooled = buffers.lock().ok().and_then(|mut pool| pool.pop());
        let mut scratch = ScratchGuard(buffers, pooled.unwrap_or_default());
        let scratch = &mut scratch.1;
        let Ok(mut guard) = state.lock() else { return };
        loop {
            let (feed, stop, _) = &mut *guard;
            if *stop {
                return;
            }
            let task = match feed.next() {
                Next::Count(task) => task,
                Next::Wait => {
                    match wake.wait(guard) {
                        Ok(next) => guard = next,
                        Err(_) => return,
                    }
                    continue;
                }
                Next::Done => {
                    wake.notify_all();
                    return;
                }
            };
            drop(guard);
            let counted = count_one(
                &ctx,
                &task.node,
                task.source.as_deref(),
                task.limit,
                task.room,
                scratch,
            );
            let Ok(next) = state.lock() else { return };
            guard = next;
            let (feed, stop, error) = &mut *guard;
            match counted {
                Ok(counted) => *stop |= feed.counted(&task, counted),
                Err(e) => {
                    *stop = true;
                    error.get_or_insert(e);
                }
            }
            wake.notify_all();
        }
    };
    rayon::scope(|s| {
        for _ in 1..threads {
            s.spawn(|_| work());
        }
        work();
    });
    let (feed, _, error) = state
        .into_inner()
        .map_err(|_| Error::Capacity("a lattice worker panicked".into()))?;
    match error {
        Some(e) => Err(e),
        None => Ok(feed),
    }
}

impl Feed for Climbs<'_, '_, '_> {
    /// The next node of a climb with none being counted, starting climbs from the pending
    /// candidates to keep a few per core.
    fn next(&mut self) -> Next {
        let threads = self.search.threads;
        let search = &mut *self.search;
        loop {
            // Finished climbs go, unless a node of theirs is still being counted, and
            // pending candidates take their place.
            self.climbs
                .retain(|(climb, counting)| counting.is_some() || !climb.done);
            while self.climbs.len() < CLIMBS_PER_CORE * threads {
                let Some(node) = self.pending.next() else {
                    break;
                };
                if !search.known.fails(&node) {
                    self.climbs.push((Climb::new(node, search.heights), None));
                }
            }
            let mut finished_any = false;
            for at in 0..self.climbs.len() {
                if self.climbs[at].1.is_some() || self.climbs[at].0.done {
                    continue;
                }
                let mut finished = true;
                while let Some(node) = self.climbs[at].0.next(&search.known) {
                    if search.bounds.suppressed_at_least(&node) > search.limit {
                        search.known.mark_fail(&node);
                        continue;
                    }
                    if self.climbs.iter().any(|(_, c)| c.as_ref() == Some(&node)) {
                        // Another climb's count will decide it.
                        finished = false;
                        break;
                    }
                    self.climbs[at].1 = Some(node.clone());
                    return Next::Count(search.task(node, self.limit));
                }
                self.climbs[at].0.done = finished;
                finished_any |= finished;
            }
            if !finished_any {
                // Every climb waits on a count, or none is left.
                return if self.climbs.iter().any(|(_, c)| c.is_some()) {
                    Next::Wait
                } else {
                    Next::Done
                };
            }
        }
    }

    /// Records the count of a climb's node.
    fn counted(&mut self, task: &Task, counted: Counted) -> bool {
        let node = task.node.as_slice();
        if let Some((_, counting)) = self
            .climbs
            .iter_mut()
            .find(|(_, counting)| counting.as_deref() == Some(node))
        {
            *counting = None;
        }
        self.search.record(task, counted);
        // Once found, a later count (of a node that fails) does not unfind it.
        self.found |= node.iter().sum::<usize>() == self.sum && self.search.known.fits(node);
        self.found
    }
}

/// Candidates of one level sum counted in turn, until one fits.
struct Each<'s, 'a, 'c> {
    search: &'s mut Search<'a, 'c>,
    pending: std::vec::IntoIter<Vec<usize>>,
    limit: Option<u64>,
    found: bool,
}

impl Feed for Each<'_, '_, '_> {
    fn next(&mut self) -> Next {
        let search = &*self.search;
        match self.pending.by_ref().find(|n| !search.known.fails(n)) {
            Some(node) => Next::Count(search.task(node, self.limit)),
            None => Next::Done,
        }
    }

    fn counted(&mut self, task: &Task, counted: Counted) -> bool {
        self.search.record(task, counted);
        self.found |= self.search.known.fits(&task.node);
        self.found
    }
}

/// The candidates of [`Search::best_at`], each counted while it can still beat the best
/// fit found.
struct Ties<'s, 'a, 'c> {
    search: &'s mut Search<'a, 'c>,
    sum: usize,
    pending: std::vec::IntoIter<Vec<usize>>,
}

impl Feed for Ties<'_, '_, '_> {
    /// The next candidate that may still beat the best fit, given up on as soon as it
    /// cannot.
    fn next(&mut self) -> Next {
        let search = &*self.search;
        for node in self.pending.by_ref() {
            if search.known.fails(&node) {
                continue;
            }
            let Some(limit) = search.tie_limit(&node, self.sum) else {
                continue;
            };
            if search.bounds.suppressed_at_least(&node) <= limit {
                return Next::Count(search.task(node, Some(limit)));
            }
        }
        Next::Done
    }

    fn counted(&mut self, task: &Task, counted: Counted) -> bool {
        self.search.record(task, counted);
        false
    }
}

/// Candidates per core past which [`Search::exists_at`] climbs instead of counting each.
const CLIMB_PAST: usize = 4;

/// Classes past which a climb's counts stop early where they surely fail (no snapshot
/// then, but no full count of a node that fails by far either).
const CLIMB_EXACT_PAST: usize = 1 << 18;

/// Climbs under way per core: a node of each is counted at a time, and a few per core
/// keep every thread busy while a climb waits on its count.
const CLIMBS_PER_CORE: usize = 2;

impl Search<'_, '_> {
    /// Bytes the snapshots may hold together: those of twice the search's classes at
    /// 24 bytes each (a representative, the counts and a shared count), and at least
    /// 24 MiB.
    pub(super) fn snapshot_budget(classes: usize) -> usize {
        24 * (2 * classes).max(1 << 20)
    }

    /// Nodes with this level sum not already known to fail, the likeliest to fit first
    /// (least bound; ties in lexicographic order).
    pub(super) fn candidates(&self, sum: usize) -> Vec<Vec<usize>> {
        let mut nodes: Vec<(u64, Vec<usize>)> = nodes_with_sum(self.heights, sum)
            .into_iter()
            .filter(|n| !self.known.fails(n))
            .map(|n| (self.bounds.suppressed_at_least(&n), n))
            .filter(|&(bound, _)| bound <= self.limit)
            .collect();
        nodes.sort_by_key(|&(bound, _)| bound);
        nodes.into_iter().map(|(_, n)| n).collect()
    }

    /// The snapshot with the fewest classes that `node` can be counted from. Asked under
    /// the climbs' lock for each node counted, of hundreds of snapshots: their levels are
    /// compared packed in a word where they fit.
    fn source_for(&self, node: &[usize]) -> Option<Arc<Snapshot>> {
        let packed = PackedLevels::of(node);
        self.snapshots
            .iter()
            .find(|s| {
                let below = match (s.packed, packed) {
                    (Some(lower), Some(upper)) => lower.at_or_below(upper),
                    _ => at_or_below(&s.node, node),
                };
                below && self.nesting.rolls_up(&s.node, node)
            })
            .cloned()
    }

    fn keep(&mut self, snapshot: Snapshot) {
        let classes = snapshot.rep.len();
        let at = self.snapshots.partition_point(|s| s.rep.len() <= classes);
        self.snapshot_bytes += snapshot.bytes();
        self.snapshots.insert(at, Arc::new(snapshot));
        // Past the budget the largest go first: they save the least.
        while self.snapshot_bytes > self.snapshot_budget {
            let Some(s) = self.snapshots.pop() else { break };
            self.snapshot_bytes -= s.bytes();
        }
    }

    /// A node to count under `limit`, from the smallest snapshot below it, keeping its
    /// own classes when they are at most half and the budget allows.
    fn task(&self, node: Vec<usize>, limit: Option<u64>) -> Task {
        Task {
            source: self.source_for(&node),
            room: self.snapshot_bytes < self.snapshot_budget,
            node,
            limit,
        }
    }

    /// Remembers what counting `node` under `limit` found: its snapshot, and whether it
    /// fits or fails (and so does every node above or below it).
    fn record(&mut self, task: &Task, counted: Counted) {
        let (node, limit, from_snapshot) = (&task.node, task.limit, task.source.is_some());
        let (eval, snapshot) = counted;
        self.evaluated += 1;
        if let Some(snapshot) = snapshot {
            self.keep(snapshot);
        }
        match eval {
            Some(eval) if eval.suppressed <= self.limit => {
                self.fits.push(node.to_vec());
                self.known.mark_fit(node);
                let rank = |n: &[usize], e: &NodeEval| (n.iter().sum::<usize>(), e.suppressed);
                if self
                    .best
                    .as_ref()
                    .is_none_or(|(b, be, _)| (rank(node, &eval), node) < (rank(b, be), b))
                {
                    self.best = Some((node.to_vec(), eval, from_snapshot));
                }
            }
            // Given up on under a tighter limit than the search's: it may still fit.
            None if limit.is_some_and(|l| l < self.limit) => {}
            _ => self.known.mark_fail(node),
        }
    }

    /// Whether some node with this level sum fits, evaluating as few as needed. With
    /// few candidates each is counted in turn; with many (most of them failing, near the
    /// least sum that fits), each starts a [`Climb`] whose last failure decides the
    /// candidates below it: a few climbs per core, a node of each counted at a time.
    pub(super) fn exists_at(&mut self, sum: usize) -> Result<bool> {
        if nodes_with_sum(self.heights, sum)
            .iter()
            .any(|n| self.known.fits(n))
        {
            return Ok(true);
        }
        let candidates = self.candidates(sum);
        if candidates.len() <= CLIMB_PAST * self.threads {
            let (ctx, threads, limit) = (*self.ctx, self.threads, Some(self.limit));
            let buffers = std::mem::take(&mut self.scratch);
            let each = Each {
                search: self,
                pending: candidates.into_iter(),
                limit,
                found: false,
            };
            let found = drive(ctx, threads, &buffers, each)?.found;
            self.scratch = buffers;
            return Ok(found);
        }
        self.climb(sum, candidates)
    }

    /// Climbs from `candidates` ([`Climb`]), a few per core, until a node with level sum
    /// `sum` fits (`true`) or every candidate is known to fail; each thread counts the next
    /// node of a climb that has none being counted ([`drive`]).
    fn climb(&mut self, sum: usize, candidates: Vec<Vec<usize>>) -> Result<bool> {
        // Counted exactly where the classes are few: a climb goes on from the classes of
        // the node it counted. Over many, a count that surely fails stops early.
        let limit = (self.ctx.classes > CLIMB_EXACT_PAST).then_some(self.limit);
        let (ctx, threads) = (*self.ctx, self.threads);
        let buffers = std::mem::take(&mut self.scratch);
        let found = drive(
            ctx,
            threads,
            &buffers,
            Climbs {
                search: self,
                sum,
                limit,
                pending: candidates.into_iter(),
                climbs: Vec::new(),
                found: false,
            },
        )?
        .found;
        self.scratch = buffers;
        Ok(found)
    }

    /// The most records `node` (with level sum `sum`) may suppress and still beat the best
    /// fit of that sum so far; `None` when it cannot beat it at all.
    fn tie_limit(&self, node: &[usize], sum: usize) -> Option<u64> {
        match &self.best {
            Some((best, eval, _)) if best.iter().sum::<usize>() == sum => {
                // An earlier node wins a tie on suppressed records; a later one must do better.
                let limit = if node < best.as_slice() {
                    Some(eval.suppressed)
                } else {
                    eval.suppressed.checked_sub(1)
                };
                limit.map(|l| l.min(self.limit))
            }
            _ => Some(self.limit),
        }
    }

    /// The best node with this level sum: fewest suppressed records, then the first in
    /// lexicographic order. Some node with this sum must fit. Branch and bound: a node is
    /// only counted while it can still beat the best found, and given up on as soon as
    /// it cannot. The evaluation returned is over the search's classes.
    pub(super) fn best_at(&mut self, sum: usize) -> Result<(Vec<usize>, NodeEval)> {
        // Nodes found to fit on the way here are not counted again.
        let pending: Vec<Vec<usize>> = self
            .candidates(sum)
            .into_iter()
            .filter(|n| !self.fits.contains(n))
            .collect();
        let (ctx, threads) = (*self.ctx, self.threads);
        let buffers = std::mem::take(&mut self.scratch);
        drive(
            ctx,
            threads,
            &buffers,
            Ties {
                search: self,
                sum,
                pending: pending.into_iter(),
            },
        )?;
        self.scratch = buffers;
        // No fit has a lower sum (this is the least that fits), so the best is at `sum`.
        let (node, eval, from_snapshot) = self
            .best
            .take()
            .filter(|(node, _, _)| node.iter().sum::<usize>() == sum)
            .ok_or_else(|| Error::Capacity(format!("no node with level sum {sum} fits")))?;
        let eval = if from_snapshot {
            // Counted over a snapshot's classes: the release needs each class's own, and
            // the two counts must agree (a release is never decided on a count it cannot
            // reproduce).
            let exact = self.ctx.evaluate_exactly(&node)?;
            if (exact.suppressed, exact.violations) != (eval.suppressed, eval.violations) {
                return Err(Error::Capacity(format!(
                    "node {node:?}: {} records suppressed counted from a snapshot, {} from the classes",
                    eval.suppressed, exact.suppressed
                )));
            }
            exact
        } else {
            eval
        };
        Ok((node, eval))
    }
}

/// What [`count_one`] gives per node: its evaluation (`None`: given up on), and a
/// snapshot of its classes when they are worth keeping.
type Counted = (Option<NodeEval>, Option<Snapshot>);

/// Counts `node` over `source` (the context's classes when `None`), giving up past
/// `limit`; a node counted exactly whose classes are at most half of those it was counted
/// from is snapshotted while the budget has `room`. A panic is an error, not the end of
/// the process.
fn count_one(
    ctx: &EvalContext<'_>,
    node: &[usize],
    source: Option<&Snapshot>,
    limit: Option<u64>,
    room: bool,
    scratch: &mut Scratch,
) -> Result<Counted> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let from = source.map_or(*ctx, |s| ctx.over_snapshot(s));
        let eval = from.evaluate_in(node, limit, scratch)?;
        let snapshot = match &eval {
            Some(eval) if room && eval.subjects.len() * 2 <= from.classes => {
                Some(from.snapshot(node, eval))
            }
            _ => None,
        };
        Ok((eval, snapshot))
    }))
    .unwrap_or_else(|_| Err(Error::Capacity("a lattice worker panicked".into())))
}

/// Every node of the lattice, by level sum, then in lexicographic order (tests compare the
/// search with counts at all of them).
#[cfg(test)]
pub(super) fn every_node(heights: &[usize]) -> Vec<Vec<usize>> {
    let max: usize = heights.iter().map(|h| h - 1).sum();
    (0..=max).flat_map(|s| nodes_with_sum(heights, s)).collect()
}

/// All level vectors with the given sum, in lexicographic order.
pub(super) fn nodes_with_sum(heights: &[usize], sum: usize) -> Vec<Vec<usize>> {
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
