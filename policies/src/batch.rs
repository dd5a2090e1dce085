//! Applying a dataset's rules to records, building Arrow columns.
//!
//! [`BatchBuilder::push`] transforms one record all-or-nothing: either every output value
//! is produced and appended, or the record is rejected with a [`Rejection`] naming the
//! field and reason (the caller quarantines it). Quasi-identifiers are kept at level 0
//! beside the batch for the k-anonymity engine; they are generalized only once the
//! release's node is chosen.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Date32Builder, FixedSizeBinaryArray,
    FixedSizeBinaryBuilder, Float64Builder, Int64Builder, StringArray, StringBuilder, UInt32Array,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::hash::{KeyedHasher, subject_key};
use crate::hierarchy::truncate_timestamp;
use crate::kanon::{Decision, QiKeys};
use crate::policy::{DatasetRules, FieldType, OnInvalid, OutputKind};
use crate::value::Value;
use crate::{Result, pii};

/// Why a record cannot be released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The input field at fault.
    pub field: String,
    /// A stable, short reason (`invalid ip`, `missing subject`, …).
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// The Arrow type of an output column as published.
pub fn output_type(kind: &OutputKind) -> DataType {
    match kind {
        OutputKind::Keep { data_type, .. } => match data_type {
            FieldType::String => DataType::Utf8,
            FieldType::Int64 => DataType::Int64,
            FieldType::Float64 => DataType::Float64,
            FieldType::Bool => DataType::Boolean,
        },
        OutputKind::Day => DataType::Date32,
        OutputKind::Hash | OutputKind::Level0(_) | OutputKind::QuasiIdentifier(_) => DataType::Utf8,
    }
}

/// The schema of the curated files of a dataset (policy order).
pub fn curated_schema(rules: &DatasetRules) -> SchemaRef {
    Arc::new(Schema::new(
        rules
            .outputs
            .iter()
            .map(|o| Field::new(&o.column, output_type(&o.kind), true))
            .collect::<Vec<_>>(),
    ))
}

/// The bytes of a keyed hash as staged: hex-encoded only when published.
const DIGEST_BYTES: i32 = 32;

/// The Arrow type of a (non-QI) output between the passes.
fn staged_type(o: &crate::policy::OutputRule) -> DataType {
    match o.kind {
        OutputKind::Hash => DataType::FixedSizeBinary(DIGEST_BYTES),
        _ => output_type(&o.kind),
    }
}

/// The schema of staged batches: every output but the quasi-identifiers. Keyed hashes are
/// staged as their 32 bytes, half the size of their hex text: staged rows are the bulk
/// of a release's memory, and each fresh page of it costs a page fault.
pub fn staged_schema(rules: &DatasetRules) -> SchemaRef {
    Arc::new(Schema::new(
        rules
            .outputs
            .iter()
            .filter(|o| !matches!(o.kind, OutputKind::QuasiIdentifier(_)))
            .map(|o| Field::new(&o.column, staged_type(o), true))
            .collect::<Vec<_>>(),
    ))
}

/// The published rows of staged records under a decision, in curated column order:
/// suppressed records dropped, quasi-identifiers generalized. `staged` starts with the
/// columns of [`staged_schema`] (more may follow, such as a stored class column);
/// `classes` holds each record's base class.
pub fn release_batch(
    rules: &DatasetRules,
    decision: &Decision,
    staged: &RecordBatch,
    classes: &UInt32Array,
) -> Result<RecordBatch> {
    let (keep, qi_columns) = decision.release_columns(classes)?;
    let staged_outputs = || {
        rules
            .outputs
            .iter()
            .filter(|o| !matches!(o.kind, OutputKind::QuasiIdentifier(_)))
            .enumerate()
    };
    // Hashes are hex-encoded from the kept rows directly; the other columns filtered.
    let filtered: Vec<usize> = staged_outputs()
        .filter(|(_, o)| !matches!(o.kind, OutputKind::Hash))
        .map(|(i, _)| i)
        .collect();
    let kept = filter_record_batch(&staged.project(&filtered)?, &keep)?;
    let mut kept_columns = kept.columns().iter().cloned();
    let mut staged_columns = Vec::new();
    for (i, o) in staged_outputs() {
        staged_columns.push(if matches!(o.kind, OutputKind::Hash) {
            hex_of_kept(staged.column(i), &keep)?
        } else {
            kept_columns.next().ok_or_else(|| {
                crate::Error::Capacity("staged rows do not match the dataset's outputs".into())
            })?
        });
    }
    let (mut from_staged, mut from_qi) = (staged_columns.into_iter(), qi_columns.into_iter());
    let columns = rules
        .outputs
        .iter()
        .map(|o| match o.kind {
            OutputKind::QuasiIdentifier(_) => from_qi.next(),
            _ => from_staged.next(),
        })
        .collect::<Option<Vec<ArrayRef>>>()
        .ok_or_else(|| {
            crate::Error::Capacity("staged rows do not match the dataset's outputs".into())
        })?;
    Ok(RecordBatch::try_new_with_options(
        curated_schema(rules),
        columns,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(kept.num_rows())),
    )?)
}

/// The lowercase hex text of the staged digests of the kept rows: written back to back
/// into one buffer, checked as UTF-8 once for the batch rather than once per value.
fn hex_of_kept(digests: &ArrayRef, keep: &BooleanArray) -> Result<ArrayRef> {
    const HEX: usize = 2 * DIGEST_BYTES as usize;
    let digests = digests
        .as_any()
        .downcast_ref::<FixedSizeBinaryArray>()
        .ok_or_else(|| crate::Error::Capacity("a staged hash column is not binary".into()))?;
    let kept: Vec<usize> = keep.values().set_indices().collect();
    let mut text = vec![0u8; kept.len() * HEX];
    for (out, &row) in text.chunks_exact_mut(HEX).zip(&kept) {
        // A null row's slot holds zeros; its text is masked by the null below.
        hex::encode_to_slice(digests.value(row), out)
            .map_err(|e| crate::Error::Capacity(format!("a staged hash is malformed: {e}")))?;
    }
    let nulls = digests
        .nulls()
        .map(|n| NullBuffer::from_iter(kept.iter().map(|&row| n.is_valid(row))));
    Ok(Arc::new(StringArray::try_new(
        OffsetBuffer::from_lengths(std::iter::repeat_n(HEX, kept.len())),
        Buffer::from_vec(text),
        nulls,
    )?))
}

/// Transformed records: the non-QI columns, the QIs at level 0 and the subject keys.
#[derive(Debug)]
pub struct StagedBatch {
    pub batch: RecordBatch,
    /// Per record: the level-0 quasi-identifier values (policy order), as histogram keys.
    pub quasi_identifiers: QiKeys,
    /// Per record: the subject key (`None` when the dataset has no subject field).
    pub subjects: Vec<Option<u64>>,
}

enum Column {
    Str(StringBuilder),
    Digest(FixedSizeBinaryBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
}

enum Cell<'v> {
    Null,
    Str(Cow<'v, str>),
    /// A keyed hash, hex-encoded only when appended (no allocation per record).
    Digest([u8; 32]),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(i32),
}

/// Builds staged batches for one dataset.
pub struct BatchBuilder<'a> {
    rules: &'a DatasetRules,
    hasher: &'a KeyedHasher,
    schema: SchemaRef,
    columns: Vec<Column>,
    qi: QiKeys,
    subjects: Vec<Option<u64>>,
    /// Where each quasi-identifier's level-0 value is written before it joins the key.
    scratch: String,
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

impl<'a> BatchBuilder<'a> {
    pub fn new(rules: &'a DatasetRules, hasher: &'a KeyedHasher) -> Self {
        Self::with_capacity(rules, hasher, 1024)
    }

    /// A builder with room for `records` records before its columns grow.
    pub fn with_capacity(rules: &'a DatasetRules, hasher: &'a KeyedHasher, records: usize) -> Self {
        let columns = rules
            .outputs
            .iter()
            .filter(|o| !matches!(o.kind, OutputKind::QuasiIdentifier(_)))
            .map(|o| match staged_type(o) {
                DataType::Int64 => Column::Int(Int64Builder::with_capacity(records)),
                DataType::Float64 => Column::Float(Float64Builder::with_capacity(records)),
                DataType::Boolean => Column::Bool(BooleanBuilder::with_capacity(records)),
                DataType::Date32 => Column::Date(Date32Builder::with_capacity(records)),
                DataType::FixedSizeBinary(bytes) => {
                    Column::Digest(FixedSizeBinaryBuilder::with_capacity(records, bytes))
                }
                _ => {
                    // A guess at the average size: kept strings are often ids near their
                    // limit, or short codes.
                    let bytes = match &o.kind {
                        OutputKind::Keep { max_length, .. } => (*max_length).min(40),
                        _ => 16,
                    };
                    Column::Str(StringBuilder::with_capacity(records, records * bytes))
                }
            })
            .collect();
        Self {
            rules,
            hasher,
            schema: staged_schema(rules),
            columns,
            // A guess: a tag byte and about 8 bytes of value per QI.
            qi: QiKeys::with_capacity(records, 9 * rules.qi_rules().count()),
            subjects: Vec::with_capacity(records),
            scratch: String::new(),
        }
    }

    /// Records appended since the last [`BatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.subjects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    /// Transforms one record whose values follow [`DatasetRules::inputs`] order.
    pub fn push(&mut self, values: &[Value<'_>]) -> Result<(), Rejection> {
        let result = self.transform(values);
        if result.is_err() {
            self.qi.discard_record();
        }
        result
    }

    fn transform(&mut self, values: &[Value<'_>]) -> Result<(), Rejection> {
        // At most this many non-QI outputs per dataset stay on the stack.
        let mut cells: smallvec::SmallVec<[Cell<'_>; 16]> = smallvec::SmallVec::new();
        let mut subject = None;
        for rule in &self.rules.outputs {
            let raw = values.get(rule.input).unwrap_or(&Value::Null);
            let reject = |reason: String| Rejection {
                field: rule.field.clone(),
                reason,
            };
            let produced: Result<Cell, String> = match &rule.kind {
                OutputKind::Keep {
                    data_type,
                    max_length,
                } => keep(raw, *data_type, *max_length),
                OutputKind::Hash => match raw {
                    v if v.is_missing() => Ok(Cell::Null),
                    Value::Str(s) => {
                        let digest = self.hasher.digest(s);
                        if Some(rule.input) == self.rules.subject {
                            subject = Some(subject_key(&digest));
                        }
                        Ok(Cell::Digest(digest))
                    }
                    other => Err(format!("expected a string, got {}", other.type_name())),
                },
                OutputKind::Day => match raw {
                    v if v.is_missing() => Ok(Cell::Null),
                    Value::Str(s) => truncate_timestamp(s)
                        .map(|d| {
                            Cell::Date(
                                chrono::Datelike::num_days_from_ce(&d) - UNIX_EPOCH_DAYS_FROM_CE,
                            )
                        })
                        .ok_or_else(|| "invalid timestamp".to_string()),
                    _ => Err("invalid timestamp".to_string()),
                },
                OutputKind::Level0(h) => h
                    .level0(raw, &rule.field)
                    .map(|v| v.map_or(Cell::Null, |s| Cell::Str(Cow::Owned(s))))
                    .map_err(|e| e.reason),
                OutputKind::QuasiIdentifier(h) => {
                    match h.level0_into(raw, &rule.field, &mut self.scratch) {
                        Ok(present) => {
                            self.qi.push_value(present.then_some(self.scratch.as_str()));
                            continue;
                        }
                        Err(_) if rule.on_invalid == OnInvalid::Null => {
                            self.qi.push_value(None);
                            continue;
                        }
                        Err(e) => Err(e.reason),
                    }
                }
            };
            match produced {
                Ok(cell) => cells.push(cell),
                Err(_) if rule.on_invalid == OnInvalid::Null => cells.push(Cell::Null),
                Err(reason) => return Err(reject(reason)),
            }
        }
        if let Some(s) = self.rules.subject
            && subject.is_none()
        {
            return Err(Rejection {
                field: self.rules.inputs[s].clone(),
                reason: "missing subject".into(),
            });
        }
        for (col, cell) in self.columns.iter_mut().zip(cells) {
            match (col, cell) {
                (Column::Str(b), Cell::Str(s)) => b.append_value(s),
                (Column::Digest(b), Cell::Digest(d)) => {
                    if b.append_value(d).is_err() {
                        b.append_null();
                    }
                }
                (Column::Digest(b), _) => b.append_null(),
                (Column::Str(b), _) => b.append_null(),
                (Column::Int(b), Cell::Int(i)) => b.append_value(i),
                (Column::Int(b), _) => b.append_null(),
                (Column::Float(b), Cell::Float(f)) => b.append_value(f),
                (Column::Float(b), _) => b.append_null(),
                (Column::Bool(b), Cell::Bool(v)) => b.append_value(v),
                (Column::Bool(b), _) => b.append_null(),
                (Column::Date(b), Cell::Date(d)) => b.append_value(d),
                (Column::Date(b), _) => b.append_null(),
            }
        }
        self.qi.end_record();
        self.subjects.push(subject);
        Ok(())
    }

    /// Takes the records appended so far.
    pub fn finish(&mut self) -> Result<StagedBatch> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Column::Str(b) => Arc::new(b.finish()),
                    Column::Digest(b) => Arc::new(b.finish()),
                    Column::Int(b) => Arc::new(b.finish()),
                    Column::Float(b) => Arc::new(b.finish()),
                    Column::Bool(b) => Arc::new(b.finish()),
                    Column::Date(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        let rows = self.subjects.len();
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        Ok(StagedBatch {
            batch,
            quasi_identifiers: std::mem::take(&mut self.qi),
            subjects: std::mem::take(&mut self.subjects),
        })
    }
}

fn keep<'v>(
    raw: &'v Value<'_>,
    data_type: FieldType,
    max_length: usize,
) -> Result<Cell<'v>, String> {
    if matches!(raw, Value::Null) {
        return Ok(Cell::Null);
    }
    match data_type {
        FieldType::String => match raw {
            Value::Str(s) => {
                // A string of at most `max_length` bytes has at most that many characters.
                if s.len() > max_length && s.chars().count() > max_length {
                    return Err(format!("longer than {max_length} characters"));
                }
                if let Some(found) = pii::find_pii(s) {
                    return Err(format!("looks like a raw {}", found.kind.as_str()));
                }
                Ok(Cell::Str(Cow::Borrowed(s.as_ref())))
            }
            other => Err(format!("expected a string, got {}", other.type_name())),
        },
        FieldType::Int64 if raw.is_missing() => Ok(Cell::Null),
        FieldType::Int64 => raw
            .to_i64()
            .map(Cell::Int)
            .ok_or_else(|| "expected an integer".to_string()),
        FieldType::Float64 if raw.is_missing() => Ok(Cell::Null),
        FieldType::Float64 => raw
            .to_f64()
            .map(Cell::Float)
            .ok_or_else(|| "expected a number".to_string()),
        FieldType::Bool => match raw {
            Value::Bool(b) => Ok(Cell::Bool(*b)),
            Value::Str(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Cell::Bool(true)),
            Value::Str(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Cell::Bool(false)),
            v if v.is_missing() => Ok(Cell::Null),
            _ => Err("expected a boolean".to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn s(v: &str) -> Value<'_> {
        Value::Str(Cow::Borrowed(v))
    }

    #[test]
    fn staged_digests_are_published_as_hex_for_kept_rows_only() {
        let digests: ArrayRef = Arc::new(
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                [
                    Some([0x01u8; 32]),
                    None,
                    Some([0xabu8; 32]),
                    Some([0xf0u8; 32]),
                ]
                .into_iter(),
                32,
            )
            .expect("digests"),
        );
        let keep = BooleanArray::from(vec![true, true, false, true]);
        let text = hex_of_kept(&digests, &keep).expect("hex");
        let text = text.as_any().downcast_ref::<StringArray>().expect("utf8");
        assert_eq!(
            text.iter().collect::<Vec<_>>(),
            vec![
                Some("01".repeat(32).as_str()),
                None,
                Some("f0".repeat(32).as_str())
            ]
        );
    }

    #[test]
    fn a_record_is_transformed_or_rejected_whole() {
        let policy = Policy::default_v2().expect("policy");
        let rules = policy.dataset("orders").expect("orders");
        let hasher = KeyedHasher::new(b"test-key-0123456789").expect("key");
        let mut b = BatchBuilder::new(rules, &hasher);
        let idx = |name: &str| rules.inputs.iter().position(|n| n == name).expect("field");
        let mut rec = vec![Value::Null; rules.inputs.len()];
        rec[idx("order_id")] = s("ord_abc");
        rec[idx("ordered_at")] = s("2026-11-24T23:30:00-05:00");
        rec[idx("customer_email")] = s("Ana.Ruiz@Example.com");
        rec[idx("zip")] = s("94110-1234");
        rec[idx("amount")] = Value::Float(12.5);
        b.push(&rec).expect("valid record");

        let mut bad = rec.clone();
        bad[idx("amount")] = s("lots");
        assert_eq!(
            b.push(&bad).map_err(|r| r.to_string()),
            Err("amount: expected a number".into())
        );
        let mut bad = rec.clone();
        bad[idx("customer_email")] = s("  ");
        assert_eq!(
            b.push(&bad).map_err(|r| r.reason),
            Err("missing subject".into())
        );
        let mut bad = rec.clone();
        bad[idx("product_category")] = s("call me at +1 415 555 0134");
        assert!(b.push(&bad).is_err());

        let staged = b.finish().expect("batch");
        assert_eq!(
            staged.batch.num_rows(),
            1,
            "rejected records leave no trace"
        );
        assert_eq!(
            staged.quasi_identifiers.record(0).collect::<Vec<_>>(),
            vec![Some("94110")]
        );
        let hashes = staged
            .batch
            .column_by_name("customer_hash")
            .expect("column");
        let hashes = hashes
            .as_any()
            .downcast_ref::<FixedSizeBinaryArray>()
            .expect("staged as bytes");
        assert_eq!(
            hex::encode(hashes.value(0)),
            "9f8a64fddfed3e3107e1d6dae3523b8c510564fddfc88e90e737e9dac4b140b3"
        );
        let days = staged.batch.column_by_name("ordered_at").expect("column");
        let days = days
            .as_any()
            .downcast_ref::<arrow::array::Date32Array>()
            .expect("date");
        assert_eq!(
            days.value_as_date(0).map(|d| d.to_string()).as_deref(),
            Some("2026-11-25")
        );
    }
}
