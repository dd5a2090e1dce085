//! Policy documents: versioned JSON, validated on load.
//!
//! A policy names, per dataset, every output field and its action. Fields it does not name
//! are dropped (deny by default) and listed in the release report. Loading validates the
//! whole document and refuses it with an error naming the path of the first bad field;
//! a loaded [`Policy`] is compiled and ready to apply.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hierarchy::{Hierarchy, HierarchySpec};
use crate::subject::SubjectKind;
use crate::{Error, Result};

/// The bundled default policy document.
pub const DEFAULT_V2_JSON: &str = include_str!("../default-v2.json");
const DEFAULT_V2_TABLES: &[(&str, &str)] = &[
    (
        "hierarchies/device.csv",
        include_str!("../hierarchies/device.csv"),
    ),
    (
        "hierarchies/country.csv",
        include_str!("../hierarchies/country.csv"),
    ),
];

/// A policy document as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    /// Stable identifier, such as `default-v2`. Releases record it.
    pub id: String,
    /// Free text for operators.
    #[serde(default)]
    pub description: String,
    /// Minimum number of distinct subjects in every equivalence class.
    pub k: u32,
    /// Largest share of a release's valid records that may be suppressed (0..1).
    #[serde(default = "default_max_suppression")]
    pub max_suppression: f64,
    /// How long data is kept.
    #[serde(default)]
    pub retention: Retention,
    /// What a published pseudonym links (see [`PseudonymScope`]).
    #[serde(default)]
    pub pseudonym_scope: PseudonymScope,
    /// Rules per dataset.
    pub datasets: BTreeMap<String, DatasetDoc>,
}

/// How far one person's published pseudonym reaches. Either way it is derived under a key
/// of the release's own, so no pseudonym links two releases (policies::hash).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PseudonymScope {
    /// Unique to its person within one equivalence class: a buyer can count a class's
    /// distinct people, but cannot tell that records in two classes are one person's.
    #[default]
    Class,
    /// One pseudonym per person across the release: a buyer can follow a person's
    /// records from class to class, and intersecting those classes can narrow the person
    /// down below k (the attack class scope prevents). For analyses that need it.
    Release,
}

impl PseudonymScope {
    pub fn as_str(&self) -> &'static str {
        match self {
            PseudonymScope::Class => "class",
            PseudonymScope::Release => "release",
        }
    }
}

fn default_max_suppression() -> f64 {
    0.05
}

/// Retention ages, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub raw_days: u32,
    pub curated_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw_days: 90,
            curated_days: 730,
        }
    }
}

/// The rules of one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetDoc {
    /// The input field that identifies a person; classes count distinct values of it.
    /// Without one, every record counts as its own subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// What the subject is, so that one person written many ways counts once:
    /// `{"kind": "email", …}` (canonical address; rules in [`crate::subject::EmailRules`])
    /// or `{"kind": "id"}` (an opaque id, the default). A value that is not one is
    /// quarantined as `invalid_subject`.
    #[serde(default)]
    pub subject_kind: Option<SubjectKind>,
    /// The input field that identifies a record (`event_id`, `order_id`) within its
    /// tenant and dataset: a record already released is never released again, under any
    /// object name (the ledger of released records). Must be a kept string field.
    #[serde(default)]
    pub record_id: Option<String>,
    /// Every field the dataset may carry, with its action.
    pub fields: Vec<FieldDoc>,
}

/// One field rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDoc {
    /// Input field name.
    pub name: String,
    pub action: Action,
    /// Output column name (defaults to `name`; `hash` requires a distinct one).
    #[serde(default)]
    pub output: Option<String>,
    /// For `keep`: the column type.
    #[serde(default, rename = "type")]
    pub data_type: Option<FieldType>,
    /// For `keep` strings: longest accepted value in characters (default 256).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// For `keep` strings: what the text is (`text`, the default, or `url_path`: a URL or
    /// path of which only the path is kept; query strings and fragments are where tokens
    /// and emails travel).
    #[serde(default)]
    pub format: TextFormat,
    /// For `keep` numbers (required there): the smallest accepted value. Numbers are where
    /// phone numbers (`4155550134`) and packed IPv4 addresses (`3405803833`) hide.
    #[serde(default)]
    pub min: Option<f64>,
    /// For `keep` numbers (required there): the largest accepted value.
    #[serde(default)]
    pub max: Option<f64>,
    /// For `keep` float64 numbers (required there): the most decimal places accepted
    /// (`amount`: 2). Without it a bounded number still carries a phone number in its
    /// fraction (`415555.1234`).
    #[serde(default)]
    pub decimals: Option<u8>,
    /// For `mask`, `truncate` and `generalize`.
    #[serde(default)]
    pub hierarchy: Option<HierarchySpec>,
    /// Whether a masked or truncated field also counts as a quasi-identifier
    /// (`generalize` always does).
    #[serde(default)]
    pub quasi_identifier: bool,
    /// What to do with a value that cannot be read: quarantine the record (default) or
    /// publish null.
    #[serde(default)]
    pub on_invalid: OnInvalid,
    /// Why the field is published the way it is: for reviewers, not applied.
    #[serde(default)]
    pub why: Option<String>,
}

/// Field actions, as in DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Drop,
    Keep,
    Hash,
    Mask,
    Truncate,
    Generalize,
}

/// Types of kept columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Int64,
    Float64,
    Bool,
}

/// What a kept string holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextFormat {
    #[default]
    Text,
    /// A URL or path: published as its path only (`/pricing?email=…#x` → `/pricing`).
    UrlPath,
}

/// Handling of unreadable values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalid {
    #[default]
    Quarantine,
    Null,
}

/// A validated, compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    /// SHA-256 of the document and the tables it references: two releases with the same
    /// hash ran under exactly the same rules.
    pub hash: String,
    pub k: u32,
    pub max_suppression: f64,
    pub retention: Retention,
    pub pseudonym_scope: PseudonymScope,
    pub datasets: BTreeMap<String, DatasetRules>,
}

/// The compiled rules of one dataset.
#[derive(Debug, Clone)]
pub struct DatasetRules {
    pub name: String,
    /// Input field names the policy knows, in policy order; [`crate::Value`] slots follow it.
    pub inputs: Vec<String>,
    /// Input fields the policy drops on purpose.
    pub dropped: Vec<String>,
    /// Output columns, in policy order.
    pub outputs: Vec<OutputRule>,
    /// Indexes into `outputs` of the quasi-identifiers, in policy order.
    pub quasi_identifiers: Vec<usize>,
    /// Index into `inputs` of the subject field.
    pub subject: Option<usize>,
    /// How the subject is canonicalized before it is counted and keyed.
    pub subject_kind: SubjectKind,
    /// Index into `inputs` of the record id field.
    pub record_id: Option<usize>,
    /// The policy's pseudonym scope, here for whoever holds only the dataset's rules.
    pub pseudonym_scope: PseudonymScope,
}

/// How one output column is produced.
#[derive(Debug, Clone)]
pub struct OutputRule {
    /// Output column name.
    pub column: String,
    /// Input field name.
    pub field: String,
    /// Index into [`DatasetRules::inputs`].
    pub input: usize,
    pub kind: OutputKind,
    pub on_invalid: OnInvalid,
}

/// The transform of an output column.
#[derive(Debug, Clone)]
pub enum OutputKind {
    Keep {
        data_type: FieldType,
        max_length: usize,
        format: TextFormat,
        /// For numbers: the inclusive range accepted.
        bounds: Option<(f64, f64)>,
        /// For float64 numbers: the most decimal places accepted.
        decimals: Option<u8>,
    },
    Hash,
    /// Truncation of a timestamp to a day (a date column).
    Day,
    /// A masked/truncated field published at level 0 only (not a QI).
    Level0(Hierarchy),
    /// A quasi-identifier, generalized by the k-anonymity engine.
    QuasiIdentifier(Hierarchy),
}

impl OutputRule {
    /// The hierarchy of a quasi-identifier column.
    pub fn hierarchy(&self) -> Option<&Hierarchy> {
        match &self.kind {
            OutputKind::QuasiIdentifier(h) => Some(h),
            _ => None,
        }
    }
}

impl DatasetRules {
    /// The output rules of the quasi-identifiers, in policy order.
    pub fn qi_rules(&self) -> impl Iterator<Item = &OutputRule> {
        self.quasi_identifiers.iter().map(|&i| &self.outputs[i])
    }

    /// The output column holding the hashed subject, if the subject is hashed.
    pub fn subject_column(&self) -> Option<&str> {
        let subject = self.subject?;
        self.outputs
            .iter()
            .find(|o| o.input == subject && matches!(o.kind, OutputKind::Hash))
            .map(|o| o.column.as_str())
    }
}

impl Policy {
    /// The bundled `default-v2` policy.
    pub fn default_v2() -> Result<Self> {
        Self::from_json(DEFAULT_V2_JSON, &mut |name| {
            DEFAULT_V2_TABLES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| format!("no bundled table `{name}`"))
        })
    }

    /// Loads a policy file; hierarchy tables are read relative to its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Self::from_json(&text, &mut |name| {
            let p = base.join(name);
            std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        })
    }

    /// Parses and validates a policy document; `load_table` returns the text of a
    /// referenced table file.
    pub fn from_json(
        text: &str,
        load_table: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let doc: PolicyDoc = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            Error::invalid(
                if path == "." {
                    "(document)".into()
                } else {
                    path
                },
                e.into_inner().to_string(),
            )
        })?;
        let mut hasher = Sha256::new();
        hasher.update(text.as_bytes());
        let mut tables = Vec::new();
        let mut load = |name: &str| -> Result<String, String> {
            let t = load_table(name)?;
            tables.push((name.to_string(), t.clone()));
            Ok(t)
        };
        let policy = compile(&doc, &mut load)?;
        tables.sort();
        for (name, t) in &tables {
            hasher.update(b"\0table\0");
            hasher.update(name.as_bytes());
            hasher.update(b"\0");
            hasher.update(t.as_bytes());
        }
        Ok(Policy {
            hash: format!("sha256:{}", hex::encode(hasher.finalize())),
            ..policy
        })
    }

    /// The rules of `dataset`, or an error saying the policy does not cover it.
    pub fn dataset(&self, dataset: &str) -> Result<&DatasetRules> {
        self.datasets
            .get(dataset)
            .ok_or_else(|| Error::UnknownDataset {
                policy: self.id.clone(),
                dataset: dataset.to_string(),
            })
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.as_bytes()[0].is_ascii_lowercase()
}

fn compile(
    doc: &PolicyDoc,
    load_table: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Policy> {
    if doc.id.trim().is_empty() {
        return Err(Error::invalid("id", "must not be empty"));
    }
    if doc.k < 2 {
        return Err(Error::invalid("k", "must be at least 2"));
    }
    if !(0.0..1.0).contains(&doc.max_suppression) {
        return Err(Error::invalid("max_suppression", "must be in [0, 1)"));
    }
    if doc.retention.raw_days == 0 || doc.retention.curated_days == 0 {
        return Err(Error::invalid("retention", "ages must be at least one day"));
    }
    if doc.datasets.is_empty() {
        return Err(Error::invalid("datasets", "the policy covers no dataset"));
    }
    let mut datasets = BTreeMap::new();
    for (name, ds) in &doc.datasets {
        let base = format!("datasets.{name}");
        if !is_identifier(name) {
            return Err(Error::invalid(
                &base,
                "dataset names are lowercase identifiers",
            ));
        }
        let mut rules = compile_dataset(name, ds, &base, load_table)?;
        rules.pseudonym_scope = doc.pseudonym_scope;
        datasets.insert(name.clone(), rules);
    }
    Ok(Policy {
        id: doc.id.clone(),
        hash: String::new(),
        k: doc.k,
        max_suppression: doc.max_suppression,
        retention: doc.retention,
        pseudonym_scope: doc.pseudonym_scope,
        datasets,
    })
}

fn compile_dataset(
    name: &str,
    ds: &DatasetDoc,
    base: &str,
    load_table: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<DatasetRules> {
    let mut inputs: Vec<String> = Vec::new();
    let mut dropped = Vec::new();
    let mut outputs: Vec<OutputRule> = Vec::new();
    let mut quasi_identifiers = Vec::new();
    for (i, f) in ds.fields.iter().enumerate() {
        let path = format!("{base}.fields[{i}]");
        if f.name.is_empty() {
            return Err(Error::invalid(format!("{path}.name"), "must not be empty"));
        }
        if inputs.contains(&f.name) {
            return Err(Error::invalid(
                format!("{path}.name"),
                format!("field `{}` is named twice", f.name),
            ));
        }
        let input = inputs.len();
        inputs.push(f.name.clone());
        let needs = |what: bool, key: &str, msg: &str| -> Result<()> {
            if what {
                Ok(())
            } else {
                Err(Error::invalid(format!("{path}.{key}"), msg.to_string()))
            }
        };
        let compile_hierarchy =
            |load_table: &mut dyn FnMut(&str) -> Result<String, String>| -> Result<Hierarchy> {
                let spec = f.hierarchy.as_ref().ok_or_else(|| {
                    Error::invalid(format!("{path}.hierarchy"), "is required for this action")
                })?;
                spec.compile(load_table)
                    .map_err(|(sub, msg)| Error::invalid(format!("{path}.hierarchy.{sub}"), msg))
            };
        let kind = match f.action {
            Action::Drop => {
                needs(
                    f.output.is_none(),
                    "output",
                    "a dropped field has no output",
                )?;
                needs(
                    f.hierarchy.is_none(),
                    "hierarchy",
                    "a dropped field has no hierarchy",
                )?;
                dropped.push(f.name.clone());
                continue;
            }
            Action::Keep => {
                needs(
                    f.hierarchy.is_none(),
                    "hierarchy",
                    "`keep` takes no hierarchy",
                )?;
                needs(
                    !f.quasi_identifier,
                    "quasi_identifier",
                    "use `generalize` for a quasi-identifier",
                )?;
                let data_type = f.data_type.unwrap_or(FieldType::String);
                needs(
                    f.max_length.is_none() || data_type == FieldType::String,
                    "max_length",
                    "applies to string fields only",
                )?;
                needs(
                    f.format == TextFormat::Text || data_type == FieldType::String,
                    "format",
                    "applies to string fields only",
                )?;
                let numeric = matches!(data_type, FieldType::Int64 | FieldType::Float64);
                let bounds = match (f.min, f.max) {
                    (Some(min), Some(max)) if numeric => {
                        needs(
                            min.is_finite() && max.is_finite() && min <= max,
                            "max",
                            "bounds must be finite with min <= max",
                        )?;
                        Some((min, max))
                    }
                    (None, None) if !numeric => None,
                    _ if !numeric => {
                        return Err(Error::invalid(
                            format!("{path}.min"),
                            "bounds apply to number fields only",
                        ));
                    }
                    _ => {
                        return Err(Error::invalid(
                            format!("{path}.min"),
                            "a kept number needs `min` and `max`: unbounded numbers carry phone numbers and packed IP addresses",
                        ));
                    }
                };
                needs(
                    (data_type == FieldType::Float64) == f.decimals.is_some()
                        && f.decimals.is_none_or(|d| d <= 9),
                    "decimals",
                    "a kept float64 needs `decimals` (at most 9), and other types take none: digits in a fraction carry phone numbers",
                )?;
                OutputKind::Keep {
                    data_type,
                    max_length: f.max_length.unwrap_or(256),
                    format: f.format,
                    bounds,
                    decimals: f.decimals,
                }
            }
            Action::Hash => {
                needs(
                    f.hierarchy.is_none(),
                    "hierarchy",
                    "`hash` takes no hierarchy",
                )?;
                needs(
                    f.output.as_deref().is_some_and(|o| o != f.name),
                    "output",
                    "a hashed field must be renamed (for example `email` → `email_hash`) so no column of the raw name is ever published",
                )?;
                OutputKind::Hash
            }
            Action::Mask | Action::Truncate | Action::Generalize => {
                needs(
                    f.data_type.is_none(),
                    "type",
                    "transformed fields are strings (or dates)",
                )?;
                let h = compile_hierarchy(load_table)?;
                let is_timestamp = matches!(h, Hierarchy::Timestamp);
                let allowed = match f.action {
                    Action::Mask => matches!(h, Hierarchy::Phone { .. }),
                    Action::Truncate => matches!(h, Hierarchy::Ip { .. } | Hierarchy::Timestamp),
                    _ => !is_timestamp,
                };
                needs(
                    allowed,
                    "hierarchy.type",
                    "this hierarchy type does not fit the action",
                )?;
                let qi = f.quasi_identifier || f.action == Action::Generalize;
                needs(
                    !(qi && is_timestamp),
                    "quasi_identifier",
                    "timestamps are truncated, not generalized",
                )?;
                if is_timestamp {
                    OutputKind::Day
                } else if qi {
                    quasi_identifiers.push(outputs.len());
                    OutputKind::QuasiIdentifier(h)
                } else {
                    OutputKind::Level0(h)
                }
            }
        };
        let column = f.output.clone().unwrap_or_else(|| f.name.clone());
        if !is_identifier(&column) {
            return Err(Error::invalid(
                format!("{path}.output"),
                format!("`{column}` is not a column name (lowercase letters, digits, _)"),
            ));
        }
        if outputs.iter().any(|o| o.column == column) {
            return Err(Error::invalid(
                format!("{path}.output"),
                format!("column `{column}` is produced twice"),
            ));
        }
        outputs.push(OutputRule {
            column,
            field: f.name.clone(),
            input,
            kind,
            on_invalid: f.on_invalid,
        });
    }
    if outputs.is_empty() {
        return Err(Error::invalid(
            format!("{base}.fields"),
            "the dataset publishes no field",
        ));
    }
    let subject = match &ds.subject {
        None => None,
        Some(s) => {
            let idx = inputs.iter().position(|n| n == s).ok_or_else(|| {
                Error::invalid(
                    format!("{base}.subject"),
                    format!("`{s}` is not one of the dataset's fields"),
                )
            })?;
            if !outputs
                .iter()
                .any(|o| o.input == idx && matches!(o.kind, OutputKind::Hash))
            {
                return Err(Error::invalid(
                    format!("{base}.subject"),
                    format!("the subject `{s}` must be a hashed field"),
                ));
            }
            Some(idx)
        }
    };
    if ds.subject_kind.is_some() && subject.is_none() {
        return Err(Error::invalid(
            format!("{base}.subject_kind"),
            "names the kind of a subject the dataset does not name",
        ));
    }
    let subject_kind = ds.subject_kind.clone().unwrap_or(SubjectKind::Id);
    if let SubjectKind::Email(rules) = &subject_kind {
        rules
            .validate()
            .map_err(|e| Error::invalid(format!("{base}.subject_kind"), e))?;
    }
    let record_id = match &ds.record_id {
        None => None,
        Some(r) => {
            let idx = inputs.iter().position(|n| n == r).ok_or_else(|| {
                Error::invalid(
                    format!("{base}.record_id"),
                    format!("`{r}` is not one of the dataset's fields"),
                )
            })?;
            if !outputs.iter().any(|o| {
                o.input == idx
                    && matches!(
                        o.kind,
                        OutputKind::Keep {
                            data_type: FieldType::String,
                            ..
                        }
                    )
            }) {
                return Err(Error::invalid(
                    format!("{base}.record_id"),
                    format!("the record id `{r}` must be a kept string field"),
                ));
            }
            Some(idx)
        }
    };
    Ok(DatasetRules {
        name: name.to_string(),
        inputs,
        dropped,
        outputs,
        quasi_identifiers,
        subject,
        subject_kind,
        record_id,
        pseudonym_scope: PseudonymScope::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_tables(_: &str) -> Result<String, String> {
        Err("no tables here".into())
    }

    fn err_path(json: &str) -> String {
        match Policy::from_json(json, &mut no_tables) {
            Err(Error::InvalidPolicy { path, .. }) => path,
            other => panic!("expected an invalid policy, got {other:?}"),
        }
    }

    #[test]
    fn the_bundled_policy_loads() {
        let p = Policy::default_v2().expect("default-v2");
        assert_eq!(p.id, "default-v2");
        assert_eq!(p.k, 20);
        let contacts = p.dataset("contacts").expect("contacts");
        let qis: Vec<&str> = contacts.qi_rules().map(|o| o.column.as_str()).collect();
        assert_eq!(qis, ["phone", "ip", "zip", "age", "gender", "country"]);
        assert_eq!(contacts.subject_column(), Some("email_hash"));
        assert!(
            contacts
                .outputs
                .iter()
                .all(|o| o.column != "email" && o.column != "name")
        );
        assert_eq!(contacts.dropped, ["name", "message", "user_agent"]);
        assert!(p.hash.starts_with("sha256:"));
        assert!(p.dataset("web_events").is_ok() && p.dataset("orders").is_ok());
        assert!(matches!(
            p.dataset("payroll"),
            Err(Error::UnknownDataset { .. })
        ));
    }

    #[test]
    fn errors_name_the_bad_field() {
        let base = |fields: &str| {
            format!(
                r#"{{"id":"p","k":5,"datasets":{{"d":{{"subject":"email","fields":[{{"name":"email","action":"hash","output":"email_hash"}},{fields}]}}}}}}"#
            )
        };
        assert_eq!(
            err_path(&base(r#"{"name":"age","action":"generalise"}"#)),
            "datasets.d.fields[1].action"
        );
        assert_eq!(
            err_path(&base(
                r#"{"name":"age","action":"generalize","hierarchy":{"type":"bands","min":0,"max":9,"widths":[5,7]}}"#
            )),
            "datasets.d.fields[1].hierarchy.widths"
        );
        assert_eq!(
            err_path(&base(r#"{"name":"age","action":"generalize"}"#)),
            "datasets.d.fields[1].hierarchy"
        );
        assert_eq!(
            err_path(&base(r#"{"name":"email","action":"keep"}"#)),
            "datasets.d.fields[1].name"
        );
        assert_eq!(
            err_path(&base(r#"{"name":"x","action":"keep","colour":"red"}"#)),
            "datasets.d.fields[1].colour"
        );
        assert_eq!(
            err_path(&base(
                r#"{"name":"d","action":"generalize","hierarchy":{"type":"table","file":"missing.csv"}}"#
            )),
            "datasets.d.fields[1].hierarchy.file"
        );
        assert_eq!(err_path(r#"{"id":"p","k":1,"datasets":{}}"#), "k");
        assert_eq!(
            err_path(
                r#"{"id":"p","k":5,"datasets":{"d":{"subject":"who","fields":[{"name":"a","action":"keep"}]}}}"#
            ),
            "datasets.d.subject"
        );
        assert_eq!(
            err_path(
                r#"{"id":"p","k":5,"datasets":{"d":{"fields":[{"name":"email","action":"hash"}]}}}"#
            ),
            "datasets.d.fields[0].output"
        );
    }

    #[test]
    fn the_hash_covers_tables() {
        let doc = r#"{"id":"p","k":5,"datasets":{"d":{"fields":[{"name":"dev","action":"generalize","hierarchy":{"type":"table","file":"t.csv"}}]}}}"#;
        let a = Policy::from_json(doc, &mut |_| Ok("a;*\n".into())).expect("a");
        let b = Policy::from_json(doc, &mut |_| Ok("b;*\n".into())).expect("b");
        assert_ne!(a.hash, b.hash);
        assert_eq!(a.dataset("d").expect("d").subject, None);
    }

    #[test]
    fn a_table_whose_levels_split_a_group_is_refused_by_name() {
        let doc = r#"{"id":"p","k":5,"datasets":{"d":{"fields":[{"name":"dev","action":"generalize","hierarchy":{"type":"table","file":"t.csv"}}]}}}"#;
        let err = Policy::from_json(doc, &mut |_| {
            Ok("phone;mobile;*\ntablet;mobile;handheld\n".into())
        })
        .expect_err("level 2 splits `mobile`");
        let text = err.to_string();
        assert!(
            text.contains("t.csv") && text.contains("level 2 splits `mobile` of level 1"),
            "{text}"
        );
    }
}
