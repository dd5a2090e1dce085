//! Independent verification of published Parquet.
//!
//! Recomputes from the files alone, trusting nothing the pipeline recorded elsewhere:
//! - per file, and per release (files grouped by their `stackpro.release_id` metadata),
//!   the smallest equivalence class over the quasi-identifier columns, counted in
//!   **distinct subjects** (values of the subject column; rows when the dataset has none),
//!   which must be ≥ k: a buyer may be handed a single file;
//! - every string value of every column, scanned for raw emails, phone numbers and full
//!   IP addresses.
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

use crate::release::meta;
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
        return Err(Error::Config(format!(
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
    classes: HashMap<Vec<Option<String>>, HashSet<u64>>,
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
        let acc = releases.entry(release_id).or_default();
        acc.k = acc.k.max(k);
        acc.files += 1;
        // This file's classes alone; merged into its release's below.
        let mut file_classes: HashMap<Vec<Option<String>>, HashSet<u64>> = HashMap::new();
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
            for row in 0..batch.num_rows() {
                let key: Vec<Option<String>> = qis
                    .iter()
                    .map(|a| (!a.is_null(row)).then(|| a.value(row).to_string()))
                    .collect();
                let subject = match &subjects {
                    Some(s) if !s.is_null(row) => fingerprint(s.value(row)),
                    // No subject column: every row is its own subject.
                    _ => acc.rows + row as u64,
                };
                file_classes.entry(key).or_default().insert(subject);
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
        if let Some(smallest) = file_classes.values().map(|s| s.len() as u64).min()
            && smallest < k
        {
            report.violations.push(format!(
                "{shown}: smallest class holds {smallest} distinct subjects, under k={k}"
            ));
        }
        for (key, subjects) in file_classes {
            acc.classes.entry(key).or_default().extend(subjects);
        }
    }
    for (id, acc) in releases {
        let smallest = acc
            .classes
            .values()
            .map(|s| s.len() as u64)
            .min()
            .unwrap_or(0);
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
        });
    }
    if report.pii_findings > 0 {
        report.violations.push(format!(
            "{} values look like raw emails, phone numbers or IP addresses",
            report.pii_findings
        ));
    }
    Ok(report)
}
