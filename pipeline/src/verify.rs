//! Independent verification of published Parquet.
//!
//! Recomputes from the files alone, trusting nothing the pipeline recorded elsewhere:
//! - per file, and per release (files grouped by their `stackpro.release_id` metadata),
//!   the smallest equivalence class over the quasi-identifier columns, counted in
//!   **distinct subjects** (values of the subject column; rows when the dataset has none),
//!   which must be ≥ k: a buyer may be handed a single file;
//! - every string value of every column, scanned for raw emails, phone numbers and full
//!   IP addresses;
//! - linkage, across every release read: no pseudonym (the subject column's values) in
//!   two releases, and under class scope (`stackpro.pseudonym_scope`) none in two classes;
//!   no record id (`stackpro.record_id_column`) twice; every kept number within the bounds
//!   its metadata states (`stackpro.bounds`).
//!
//! Per release it prints a risk summary: prosecutor risk (1 / smallest class), the
//! average risk over records (each 1 / its class's subjects), and the share of records in
//! classes under 2k.
//!
//! Findings name the file, column, row and kind, never the value: a verification log must
//! not become a leak of its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use policies::pii::find_pii;
use serde::Serialize;

use crate::sinks::parquet::meta;
use crate::{Error, Result};

/// One release's k figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReleaseCheck {
    pub release_id: String,
    pub k: u64,
    pub rows: u64,
    pub classes: u64,
    pub smallest_class: u64,
    pub files: usize,
    /// 1 / smallest class (0 for an empty release).
    pub prosecutor_risk: f64,
    /// Average over rows of 1 / the row's class size in subjects.
    pub average_risk: f64,
    /// Share of rows in classes of fewer than 2k subjects.
    pub small_class_share: f64,
}

/// A raw identifier found in a published value.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PiiFinding {
    pub file: String,
    pub column: String,
    pub row: u64,
    pub kind: String,
}

/// The verdict.
#[derive(Debug, Clone, Serialize, Default)]
pub struct VerifyReport {
    pub files: usize,
    pub rows: u64,
    pub releases: Vec<ReleaseCheck>,
    pub pii_findings: u64,
    /// Pseudonym values found in more than one release.
    pub pseudonyms_in_two_releases: u64,
    /// Under class scope: pseudonym values found in more than one class of a release.
    pub pseudonyms_in_two_classes: u64,
    /// Record ids found more than once.
    pub repeated_record_ids: u64,
    /// Kept numbers outside their stated bounds.
    pub out_of_bounds: u64,
    /// The first findings (at most 20).
    pub examples: Vec<PiiFinding>,
    pub violations: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

fn parquet_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "{} is neither a Parquet file nor a folder",
            path.display()
        )));
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[derive(Default)]
struct ReleaseAcc {
    k: u64,
    rows: u64,
    files: usize,
    /// Per class: its subjects and its rows.
    classes: HashMap<Vec<Option<String>>, (HashSet<u64>, u64)>,
}

/// Where each pseudonym and record id was seen, across every file read.
#[derive(Default)]
struct Linkage {
    /// Pseudonym fingerprint → (release number, class fingerprint).
    pseudonyms: HashMap<u64, (usize, u64)>,
    /// Fingerprints of (tenant, dataset, record id).
    record_ids: HashSet<u64>,
}

fn fingerprint_of<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

fn fingerprint(s: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// The values of a text column of any Arrow string layout (a file need not come from
/// this pipeline's writer: `Utf8View`, `LargeUtf8` and dictionaries of strings too), and
/// of byte columns read as UTF-8 with replacement (another writer's unannotated
/// `BYTE_ARRAY` reads back as `Binary`), as `Utf8`; `None` for other columns. Nested
/// columns (lists, structs, maps) are not scanned.
fn text_of(column: &arrow::array::ArrayRef) -> Result<Option<arrow::array::StringArray>> {
    let is_text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    let is_bytes = |t: &DataType| {
        matches!(
            t,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
    };
    let value_type = match column.data_type() {
        DataType::Dictionary(_, values) => values.as_ref(),
        t => t,
    };
    if is_text(value_type) {
        return Ok(Some(
            arrow::compute::cast(column, &DataType::Utf8)?
                .as_string::<i32>()
                .clone(),
        ));
    }
    if is_bytes(value_type) {
        let bytes = arrow::compute::cast(column, &DataType::Binary)?;
        return Ok(Some(
            bytes
                .as_binary::<i32>()
                .iter()
                .map(|v| v.map(String::from_utf8_lossy))
                .collect(),
        ));
    }
    Ok(None)
}

/// Verifies a Parquet file or every `.parquet` file under a folder.
pub fn verify_path(path: &Path) -> Result<VerifyReport> {
    verify_path_with(path, &|_, _| {})
}

/// [`verify_path`], telling `on_file` (files done, files in all) as it goes.
pub fn verify_path_with(path: &Path, on_file: &dyn Fn(usize, usize)) -> Result<VerifyReport> {
    let files = parquet_files(path)?;
    let mut report = VerifyReport {
        files: files.len(),
        ..Default::default()
    };
    if files.is_empty() {
        report
            .violations
            .push(format!("no Parquet files under {}", path.display()));
        return Ok(report);
    }
    let mut releases: BTreeMap<String, ReleaseAcc> = BTreeMap::new();
    let mut release_numbers: HashMap<String, usize> = HashMap::new();
    let mut linkage = Linkage::default();
    for (done, file) in files.iter().enumerate() {
        on_file(done, files.len());
        let shown = file.display().to_string();
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(file)?)?;
        let kv: HashMap<String, String> = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .map(|kvs| {
                kvs.iter()
                    .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        let release_id = kv.get(meta::RELEASE_ID).cloned();
        let k: Option<u64> = kv.get(meta::K).and_then(|k| k.parse().ok());
        let (Some(release_id), Some(k)) = (release_id, k) else {
            report.violations.push(format!(
                "{shown}: no StackPro release metadata (release id and k), so k cannot be checked"
            ));
            continue;
        };
        // Absent, every row would fall into one class and pass: a file without its list
        // cannot be checked. (A dataset without quasi-identifiers has an empty list.)
        // Its text is still scanned.
        let qi_list = kv.get(meta::QUASI_IDENTIFIERS).cloned().unwrap_or_else(|| {
            report.violations.push(format!(
                "{shown}: no quasi-identifier list in its metadata, so k cannot be checked"
            ));
            String::new()
        });
        let qi_columns: Vec<String> = qi_list
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let subject_column = kv.get(meta::SUBJECT_COLUMN).cloned();
        let class_scope = kv.get(meta::PSEUDONYM_SCOPE).is_none_or(|s| s != "release");
        let record_id_column = kv.get(meta::RECORD_ID_COLUMN).cloned();
        // A record's identity is its id within its tenant and dataset (the ledger's).
        let record_scope = (
            kv.get(meta::TENANT).cloned().unwrap_or_default(),
            kv.get(meta::DATASET).cloned().unwrap_or_default(),
        );
        let bounds: BTreeMap<String, (f64, f64)> = match kv.get(meta::BOUNDS) {
            None => BTreeMap::new(),
            Some(text) => serde_json::from_str(text).unwrap_or_else(|_| {
                report.violations.push(format!(
                    "{shown}: its number bounds metadata cannot be read, so they cannot be checked"
                ));
                BTreeMap::new()
            }),
        };
        let next = release_numbers.len();
        let release_number = *release_numbers.entry(release_id.clone()).or_insert(next);
        let acc = releases.entry(release_id).or_default();
        acc.k = acc.k.max(k);
        acc.files += 1;
        // This file's classes alone; merged into its release's below.
        let mut file_classes: HashMap<Vec<Option<String>>, (HashSet<u64>, u64)> = HashMap::new();
        let reader = builder.with_batch_size(64 * 1024).build()?;
        for batch in reader {
            let batch = batch?;
            let schema = batch.schema();
            let strings = |name: &str| -> Result<Option<arrow::array::StringArray>> {
                match batch.column_by_name(name) {
                    None => Ok(None),
                    Some(c) => Ok(Some(
                        arrow::compute::cast(c, &DataType::Utf8)?
                            .as_string::<i32>()
                            .clone(),
                    )),
                }
            };
            let mut qis = Vec::new();
            for c in &qi_columns {
                match strings(c)? {
                    Some(a) => qis.push(a),
                    None => report
                        .violations
                        .push(format!("{shown}: quasi-identifier column `{c}` is missing")),
                }
            }
            let subjects = match &subject_column {
                Some(s) => strings(s)?,
                None => None,
            };
            let record_ids = match &record_id_column {
                Some(c) => strings(c)?,
                None => None,
            };
            for row in 0..batch.num_rows() {
                let key: Vec<Option<String>> = qis
                    .iter()
                    .map(|a| (!a.is_null(row)).then(|| a.value(row).to_string()))
                    .collect();
                let subject = match &subjects {
                    Some(s) if !s.is_null(row) => {
                        let p = fingerprint(s.value(row));
                        let class = fingerprint_of(&key);
                        match linkage.pseudonyms.get(&p) {
                            None => {
                                linkage.pseudonyms.insert(p, (release_number, class));
                            }
                            Some(&(r, _)) if r != release_number => {
                                report.pseudonyms_in_two_releases += 1;
                            }
                            Some(&(_, c)) if class_scope && c != class => {
                                report.pseudonyms_in_two_classes += 1;
                            }
                            Some(_) => {}
                        }
                        p
                    }
                    // No subject column: every row is its own subject.
                    _ => acc.rows + row as u64,
                };
                if let Some(ids) = &record_ids
                    && !ids.is_null(row)
                    && !linkage.record_ids.insert(fingerprint_of(&(
                        &record_scope,
                        policies::text::fold_identity(ids.value(row)),
                    )))
                {
                    report.repeated_record_ids += 1;
                }
                let class = file_classes.entry(key).or_default();
                class.0.insert(subject);
                class.1 += 1;
            }
            for (column, &(min, max)) in &bounds {
                let Some(c) = batch.column_by_name(column) else {
                    continue;
                };
                let values = arrow::compute::cast(c, &DataType::Float64)?;
                report.out_of_bounds += values
                    .as_primitive::<arrow::datatypes::Float64Type>()
                    .iter()
                    .flatten()
                    .filter(|v| !(min..=max).contains(v))
                    .count() as u64;
            }
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                let Some(values) = text_of(column)? else {
                    continue;
                };
                for (row, v) in values.iter().enumerate() {
                    if let Some(found) = v.and_then(find_pii) {
                        report.pii_findings += 1;
                        if report.examples.len() < 20 {
                            report.examples.push(PiiFinding {
                                file: shown.clone(),
                                column: field.name().clone(),
                                row: report.rows + row as u64,
                                kind: found.kind.as_str().to_string(),
                            });
                        }
                    }
                }
            }
            acc.rows += batch.num_rows() as u64;
            report.rows += batch.num_rows() as u64;
        }
        if let Some(smallest) = file_classes.values().map(|s| s.0.len() as u64).min()
            && smallest < k
        {
            report.violations.push(format!(
                "{shown}: smallest class holds {smallest} distinct subjects, under k={k}"
            ));
        }
        for (key, (subjects, rows)) in file_classes {
            let class = acc.classes.entry(key).or_default();
            class.0.extend(subjects);
            class.1 += rows;
        }
    }
    for (id, acc) in releases {
        let smallest = acc
            .classes
            .values()
            .map(|s| s.0.len() as u64)
            .min()
            .unwrap_or(0);
        let per_row = |x: f64| {
            if acc.rows == 0 {
                0.0
            } else {
                x / acc.rows as f64
            }
        };
        let risk_sum: f64 = acc
            .classes
            .values()
            .map(|(subjects, rows)| *rows as f64 / subjects.len().max(1) as f64)
            .sum();
        let small_rows: u64 = acc
            .classes
            .values()
            .filter(|(subjects, _)| (subjects.len() as u64) < 2 * acc.k)
            .map(|(_, rows)| rows)
            .sum();
        if acc.rows > 0 && smallest < acc.k {
            report.violations.push(format!(
                "release {id}: smallest class holds {smallest} distinct subjects, under k={}",
                acc.k
            ));
        }
        report.releases.push(ReleaseCheck {
            release_id: id,
            k: acc.k,
            rows: acc.rows,
            classes: acc.classes.len() as u64,
            smallest_class: smallest,
            files: acc.files,
            prosecutor_risk: if smallest == 0 {
                0.0
            } else {
                1.0 / smallest as f64
            },
            average_risk: per_row(risk_sum),
            small_class_share: per_row(small_rows as f64),
        });
    }
    for (count, what) in [
        (
            report.pseudonyms_in_two_releases,
            "pseudonym values appear in two releases: a buyer can link them",
        ),
        (
            report.pseudonyms_in_two_classes,
            "pseudonym values appear in two classes under class scope: a buyer can intersect them",
        ),
        (
            report.repeated_record_ids,
            "record ids appear more than once: a record was released twice",
        ),
        (
            report.out_of_bounds,
            "kept numbers lie outside their policy bounds",
        ),
    ] {
        if count > 0 {
            report.violations.push(format!("{count} {what}"));
        }
    }
    if report.pii_findings > 0 {
        report.violations.push(format!(
            "{} values look like raw emails, phone numbers or IP addresses",
            report.pii_findings
        ));
    }
    Ok(report)
}
