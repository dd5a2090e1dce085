//! The lattice search: nodes evaluated against the base classes, decided by
//! monotonicity where possible, in parallel where not.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::histogram::QiHistogram;
use super::radix::{Buckets, TOP_BITS, sort_by_bits};
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
}

impl LevelTables {
    /// Each (QI, level) on its own rayon task: they are independent, and one QI with many
    /// distinct values (masked phones) would otherwise keep one core busy alone while the
    /// subject index is built.
    pub(super) fn build(
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

/// Records and distinct subjects, side by side: node evaluation adds both into its group
/// of each base class, one cache miss instead of two.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ClassCounts {
    pub(super) records: u64,
    /// Of a base class: the subjects seen in it only. Of a group: those summed, then
    /// each subject seen in several base classes once.
    pub(super) subjects: u64,
}

pub(super) struct EvalContext<'a> {
    pub(super) hist: &'a QiHistogram,
    pub(super) tables: &'a LevelTables,
    pub(super) subjects: &'a SubjectIndex,
    pub(super) k: u64,
}

pub(super) struct NodeEval {
    pub(super) k: u64,
    pub(super) distinct_subjects: u64,
    pub(super) suppressed: u64,
    pub(super) violations: u64,
    pub(super) class_of_base: Vec<u32>,
    pub(super) subjects: Vec<u64>,
}

impl EvalContext<'_> {
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
pub(super) struct Search<'a, 'c> {
    pub(super) ctx: &'a EvalContext<'c>,
    pub(super) heights: &'a [usize],
    pub(super) limit: u64,
    pub(super) threads: usize,
    pub(super) fits: Vec<Vec<usize>>,
    pub(super) fails: Vec<Vec<usize>>,
    /// The best fitting node evaluated so far (least level sum, then fewest suppressed,
    /// then first in lexicographic order), with its evaluation: the tie rule needs it,
    /// and a node that fits is not counted twice. One evaluation is kept, not one per fit:
    /// each holds an id per base class.
    pub(super) best: Option<(Vec<usize>, NodeEval)>,
    pub(super) evaluated: usize,
}

/// Whether `a` is at or below `b` in the lattice (no level higher).
pub(super) fn at_or_below(a: &[usize], b: &[usize]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y)
}

impl Search<'_, '_> {
    pub(super) fn known_to_fail(&self, node: &[usize]) -> bool {
        self.fails.iter().any(|f| at_or_below(node, f))
    }

    /// Nodes with this level sum not already known to fail, in lexicographic order.
    pub(super) fn candidates(&self, sum: usize) -> Vec<Vec<usize>> {
        nodes_with_sum(self.heights, sum)
            .into_iter()
            .filter(|n| !self.known_to_fail(n))
            .collect()
    }

    /// Evaluates a batch of nodes (one per core), remembers which fit, and says whether
    /// any did.
    pub(super) fn evaluate(&mut self, batch: &[Vec<usize>]) -> Result<bool> {
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
    pub(super) fn exists_at(&mut self, sum: usize) -> Result<bool> {
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
    pub(super) fn best_at(&mut self, sum: usize) -> Result<(Vec<usize>, NodeEval)> {
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
pub(super) fn evaluate_all(
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
