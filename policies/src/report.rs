//! The release report: what a release did, in figures, written beside its files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kanon::{Decision, Outcome};
use crate::policy::{DatasetRules, Policy};

/// The level chosen for one quasi-identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLevel {
    pub column: String,
    pub level: usize,
    /// The top level of its hierarchy (`*`).
    pub top: usize,
}

/// One written file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFile {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// Figures of one release, published or withheld.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseReport {
    pub release_id: String,
    pub dataset: String,
    pub tenant: String,
    pub dt: String,
    pub policy_id: String,
    pub policy_hash: String,
    /// Fingerprint of the master hashing key (never the key).
    pub key_id: String,
    /// What a published pseudonym links: `class` or `release`.
    pub pseudonym_scope: String,
    /// Fingerprint of the release's own pseudonym key, derived from the master key.
    pub pseudonym_key_id: String,
    pub k: u32,
    pub max_suppression: f64,
    pub outcome: Outcome,
    /// Records read: valid plus quarantined plus already released.
    pub records_in: u64,
    /// Records skipped because their record id was released before (or came twice).
    #[serde(default)]
    pub already_released: u64,
    pub records_valid: u64,
    pub records_out: u64,
    pub suppressed: u64,
    pub quarantined: u64,
    /// Quarantined records per reason.
    pub quarantine_reasons: BTreeMap<String, u64>,
    pub node: Vec<NodeLevel>,
    /// `column=level` pairs, the catalog's short form of the node.
    pub node_label: String,
    /// Classes under k at the chosen node (all suppressed).
    pub k_anon_violations: u64,
    pub classes: u64,
    pub distinct_subjects: u64,
    /// Smallest published class, in distinct subjects.
    pub smallest_class: u64,
    /// Average published class size, in distinct subjects.
    pub average_class: f64,
    /// Mean generalization height over quasi-identifiers (0 exact … 1 all `*`).
    pub information_loss: f64,
    /// Highest re-identification risk, prosecutor model: 1 / smallest class.
    pub prosecutor_risk: f64,
    /// Prosecutor risk averaged over published records.
    pub average_risk: f64,
    /// Share of published records in classes under 2k subjects.
    pub small_class_share: f64,
    pub nodes_evaluated: usize,
    /// Input fields never written: those the policy drops and those it does not name.
    pub dropped_fields: Vec<String>,
    pub inputs: Vec<String>,
    pub files: Vec<ReportFile>,
    pub created_at: String,
}

/// The short form of a node, such as `phone=2,ip=1,zip=1,age=3,gender=0`.
pub fn node_label(rules: &DatasetRules, node: &[usize]) -> String {
    rules
        .qi_rules()
        .zip(node)
        .map(|(r, l)| format!("{}={l}", r.column))
        .collect::<Vec<_>>()
        .join(",")
}

/// What the pipeline knows about a release besides the decision.
#[derive(Debug, Clone, Default)]
pub struct ReleaseFacts {
    pub release_id: String,
    pub tenant: String,
    pub dt: String,
    pub key_id: String,
    pub pseudonym_key_id: String,
    pub already_released: u64,
    pub quarantine_reasons: BTreeMap<String, u64>,
    /// Input field names seen that the policy does not name.
    pub unknown_fields: Vec<String>,
    pub inputs: Vec<String>,
    pub created_at: String,
}

impl ReleaseReport {
    /// Assembles the report of a decided release (files are added once written).
    pub fn new(
        policy: &Policy,
        rules: &DatasetRules,
        decision: &Decision,
        facts: ReleaseFacts,
    ) -> Self {
        let quarantined: u64 = facts.quarantine_reasons.values().sum();
        let mut dropped: Vec<String> = rules
            .dropped
            .iter()
            .cloned()
            .chain(facts.unknown_fields)
            .collect();
        dropped.sort();
        dropped.dedup();
        let published = decision.outcome == Outcome::Release;
        Self {
            release_id: facts.release_id,
            dataset: rules.name.clone(),
            tenant: facts.tenant,
            dt: facts.dt,
            policy_id: policy.id.clone(),
            policy_hash: policy.hash.clone(),
            key_id: facts.key_id,
            pseudonym_scope: policy.pseudonym_scope.as_str().to_string(),
            pseudonym_key_id: facts.pseudonym_key_id,
            k: policy.k,
            max_suppression: policy.max_suppression,
            outcome: decision.outcome.clone(),
            records_in: decision.records + quarantined + facts.already_released,
            already_released: facts.already_released,
            records_valid: decision.records,
            records_out: if published {
                decision.records - decision.suppressed_records
            } else {
                0
            },
            suppressed: decision.suppressed_records,
            quarantined,
            quarantine_reasons: facts.quarantine_reasons,
            node: rules
                .qi_rules()
                .zip(&decision.node)
                .map(|(r, &level)| NodeLevel {
                    column: r.column.clone(),
                    level,
                    top: r.hierarchy().map_or(0, |h| h.height() - 1),
                })
                .collect(),
            node_label: node_label(rules, &decision.node),
            k_anon_violations: decision.violations,
            classes: decision.classes,
            distinct_subjects: decision.distinct_subjects,
            smallest_class: decision.smallest_class,
            average_class: decision.average_class,
            information_loss: decision.information_loss,
            prosecutor_risk: decision.prosecutor_risk,
            average_risk: decision.average_risk,
            small_class_share: decision.small_class_share,
            nodes_evaluated: decision.nodes_evaluated,
            dropped_fields: dropped,
            inputs: facts.inputs,
            files: Vec::new(),
            created_at: facts.created_at,
        }
    }
}
