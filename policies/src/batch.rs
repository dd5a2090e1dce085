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
    Array, ArrayRef, BooleanBuilder, Date32Builder, FixedSizeBinaryArray, FixedSizeBinaryBuilder,
    Float64Builder, Int64Builder, StringArray, StringBuilder, UInt32Array,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::hash::{KeyedHasher, PSEUDONYM_BYTES, Pseudonymizer, subject_key};
use crate::hierarchy::truncate_timestamp;
use crate::kanon::{Decision, QiKeys};
use crate::policy::{DatasetRules, FieldType, OnInvalid, OutputKind, PseudonymScope, TextFormat};
use crate::subject::{SubjectKind, canonical_subject_into};
use crate::value::Value;
use crate::{Result, pii};

/// Why a record cannot be released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The input field at fault; `None` when the record as a whole could not be read
    /// (not JSON, not UTF-8).
    pub field: Option<String>,
    /// A stable, short reason (`invalid ip`, `missing subject`, …), fit for a published
    /// report: it never quotes the record.
    pub reason: String,
}

impl Rejection {
    /// A rejection of the record as a whole, no field at fault.
    pub fn record(reason: impl Into<String>) -> Self {
        Self {
            field: None,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
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

/// Where a published row comes from: (index of its staged batch, row within it).
pub type Pick = (usize, usize);

/// The published rows of one staged batch under a decision, in staged order: see
/// [`release_rows`], of which this is the one-batch case.
pub fn release_batch(
    rules: &DatasetRules,
    decision: &Decision,
    staged: &RecordBatch,
    classes: &UInt32Array,
    pseudonyms: &Pseudonymizer,
    scope: PseudonymScope,
) -> Result<RecordBatch> {
    let picks: Vec<Pick> = (0..classes.len())
        .filter(|&row| !decision.is_suppressed(classes.value(row)))
        .map(|row| (0, row))
        .collect();
    release_rows(
        rules,
        decision,
        std::slice::from_ref(staged),
        &[classes],
        &picks,
        pseudonyms,
        scope,
    )
}

/// The sort keys of the published rows of staged batch `batch` (index `batch_index` of
/// its file), as (key, row): suppressed rows are left out. Pass 2 writes each file's rows
/// in the order of these keys ([`Pseudonymizer::row_order`]), not the producer's: a
/// producer that sends each person's records side by side (or one object per person)
/// would otherwise let a buyer pair a person's rows across classes by their positions,
/// undoing the class scope of pseudonyms.
pub fn release_order_keys(
    rules: &DatasetRules,
    decision: &Decision,
    staged: &RecordBatch,
    classes: &UInt32Array,
    batch_index: u32,
    pseudonyms: &Pseudonymizer,
    scope: PseudonymScope,
) -> Result<Vec<(u64, u32)>> {
    let subject = match rules.subject_column() {
        Some(column) => Some(
            staged
                .column_by_name(column)
                .and_then(|c| c.as_any().downcast_ref::<FixedSizeBinaryArray>())
                .ok_or_else(|| {
                    crate::Error::Capacity("a staged subject column is not binary".into())
                })?,
        ),
        None => None,
    };
    let base = classes.values();
    let mut keys = Vec::with_capacity(base.len());
    for (row, &class) in base.iter().enumerate() {
        if decision.is_suppressed(class) {
            continue;
        }
        let digest = match subject {
            Some(digests) if !digests.is_null(row) => Some(
                <&[u8; DIGEST_BYTES as usize]>::try_from(digests.value(row))
                    .map_err(|_| crate::Error::Capacity("a staged hash is malformed".into()))?,
            ),
            _ => None,
        };
        let scope = match scope {
            PseudonymScope::Class => Some(decision.class_of(class)),
            PseudonymScope::Release => None,
        };
        let position = (u64::from(batch_index) << 32) | row as u64;
        keys.push((pseudonyms.row_order(scope, digest, position), row as u32));
    }
    Ok(keys)
}

/// The published rows at `picks` of a file's staged batches, in that order and in curated
/// column order: quasi-identifiers generalized, keyed digests replaced by the release's
/// pseudonyms in the policy's scope. Each staged batch starts with the columns of
/// [`staged_schema`] (more may follow, such as a stored class column); `classes[b]` holds
/// the base class of each record of batch `b`. Picks name published rows only: the
/// caller leaves suppressed ones out ([`release_order_keys`]). Each column is gathered
/// once, straight from the staged batches.
pub fn release_rows(
    rules: &DatasetRules,
    decision: &Decision,
    staged: &[RecordBatch],
    classes: &[&UInt32Array],
    picks: &[Pick],
    pseudonyms: &Pseudonymizer,
    scope: PseudonymScope,
) -> Result<RecordBatch> {
    let malformed =
        || crate::Error::Capacity("staged rows do not match the dataset's outputs".into());
    if staged.len() != classes.len()
        || staged
            .iter()
            .zip(classes)
            .any(|(b, c)| b.num_rows() != c.len())
    {
        return Err(malformed());
    }
    let base: Vec<u32> = picks
        .iter()
        .map(|&(b, row)| {
            classes
                .get(b)
                .filter(|c| row < c.len())
                .map(|c| c.value(row))
                .ok_or_else(malformed)
        })
        .collect::<Result<_>>()?;
    let scope_of = |pick: usize| match scope {
        PseudonymScope::Class => Some(decision.class_of(base[pick])),
        PseudonymScope::Release => None,
    };
    let staged_outputs = rules
        .outputs
        .iter()
        .filter(|o| !matches!(o.kind, OutputKind::QuasiIdentifier(_)))
        .enumerate();
    let mut staged_columns = Vec::new();
    for (i, o) in staged_outputs {
        let arrays: Vec<&dyn Array> = staged
            .iter()
            .map(|b| (i < b.num_columns()).then(|| b.column(i).as_ref()))
            .collect::<Option<_>>()
            .ok_or_else(malformed)?;
        staged_columns.push(if matches!(o.kind, OutputKind::Hash) {
            hex_text(&pseudonyms_of(&arrays, picks, &scope_of, pseudonyms)?)?
        } else {
            arrow::compute::interleave(&arrays, picks)?
        });
    }
    let rows: Vec<u32> = (0..picks.len() as u32).collect();
    let qi_columns = decision.qi_columns(&rows, &base)?;
    let (mut from_staged, mut from_qi) = (staged_columns.into_iter(), qi_columns.into_iter());
    let columns = rules
        .outputs
        .iter()
        .map(|o| match o.kind {
            OutputKind::QuasiIdentifier(_) => from_qi.next(),
            _ => from_staged.next(),
        })
        .collect::<Option<Vec<ArrayRef>>>()
        .ok_or_else(malformed)?;
    Ok(RecordBatch::try_new_with_options(
        curated_schema(rules),
        columns,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(picks.len())),
    )?)
}

/// The pseudonyms of the staged digests at `picks`, each in the scope `scope_of(pick)`
/// gives. The digests themselves never leave.
///
/// Files are written in their keyed row order, which puts the rows of one person within
/// one scope side by side (see `Pseudonymizer::row_order`), so a run of equal (scope,
/// digest) pairs takes one HMAC: on `gen` data a person's records share a class, and about
/// five HMACs in six were repeats.
fn pseudonyms_of(
    digests: &[&dyn Array],
    picks: &[Pick],
    scope_of: &dyn Fn(usize) -> Option<u32>,
    pseudonyms: &Pseudonymizer,
) -> Result<Vec<Option<[u8; PSEUDONYM_BYTES]>>> {
    let digests = digests
        .iter()
        .map(|d| d.as_any().downcast_ref::<FixedSizeBinaryArray>())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| crate::Error::Capacity("a staged hash column is not binary".into()))?;
    let mut out = Vec::with_capacity(picks.len());
    let mut last: Option<(Option<u32>, &[u8], [u8; PSEUDONYM_BYTES])> = None;
    for (pick, &(b, row)) in picks.iter().enumerate() {
        let digests = digests[b];
        if digests.is_null(row) {
            out.push(None);
            continue;
        }
        let scope = scope_of(pick);
        let value = digests.value(row);
        if let Some((s, d, p)) = &last
            && *s == scope
            && *d == value
        {
            out.push(Some(*p));
            continue;
        }
        let digest: &[u8; DIGEST_BYTES as usize] = value
            .try_into()
            .map_err(|_| crate::Error::Capacity("a staged hash is malformed".into()))?;
        let pseudonym = pseudonyms.pseudonym(scope, digest);
        last = Some((scope, value, pseudonym));
        out.push(Some(pseudonym));
    }
    Ok(out)
}

/// Pseudonyms as lowercase hex text: written back to back into one buffer, checked as
/// UTF-8 once for the batch rather than once per value.
fn hex_text(values: &[Option<[u8; PSEUDONYM_BYTES]>]) -> Result<ArrayRef> {
    const HEX: usize = 2 * PSEUDONYM_BYTES;
    let mut text = vec![0u8; values.len() * HEX];
    for (out, value) in text.chunks_exact_mut(HEX).zip(values) {
        // A null's slot holds zeros; its text is masked by the null below.
        if let Some(p) = value {
            hex::encode_to_slice(p, out)
                .map_err(|e| crate::Error::Capacity(format!("a pseudonym is malformed: {e}")))?;
        }
    }
    let nulls = values
        .iter()
        .any(Option::is_none)
        .then(|| NullBuffer::from_iter(values.iter().map(Option::is_some)));
    Ok(Arc::new(StringArray::try_new(
        OffsetBuffer::from_lengths(std::iter::repeat_n(HEX, values.len())),
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
    /// Per record: the fingerprint of its record id (empty when the dataset names none).
    pub record_ids: Vec<u128>,
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
    record_ids: Vec<u128>,
    /// Where each quasi-identifier's level-0 value is written before it joins the key.
    scratch: String,
    /// Where a hashed value's canonical form is written before it is keyed.
    canonical: String,
    /// The partition's day (days since the Unix epoch), when known: a truncated
    /// timestamp must fall within a day of it.
    partition_day: Option<i32>,
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
            record_ids: Vec::with_capacity(if rules.record_id.is_some() {
                records
            } else {
                0
            }),
            scratch: String::new(),
            canonical: String::new(),
            partition_day: None,
        }
    }

    /// Timestamps must fall within a day (either side, for time zones) of the partition's
    /// day: a date column is not a quasi-identifier, so an arbitrary date in it (a birth
    /// date sent as `submitted_at`) would single a record out. Others are quarantined.
    pub fn with_partition_day(mut self, day: Option<chrono::NaiveDate>) -> Self {
        self.partition_day =
            day.map(|d| chrono::Datelike::num_days_from_ce(&d) - UNIX_EPOCH_DAYS_FROM_CE);
        self
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
                field: Some(rule.field.clone()),
                reason,
            };
            let produced: Result<Cell, String> = match &rule.kind {
                OutputKind::Keep {
                    data_type,
                    max_length,
                    format,
                    bounds,
                    decimals,
                } => keep(raw, *data_type, *max_length, *format, *bounds, *decimals),
                OutputKind::Hash => match raw {
                    v if v.is_missing() => Ok(Cell::Null),
                    Value::Str(s) => {
                        // One person written many ways is one subject: the canonical
                        // form is counted and keyed (policies::subject).
                        let is_subject = Some(rule.input) == self.rules.subject;
                        let kind = if is_subject {
                            &self.rules.subject_kind
                        } else {
                            &SubjectKind::Id
                        };
                        if canonical_subject_into(kind, s, &mut self.canonical) {
                            let digest = self.hasher.digest(&self.canonical);
                            if is_subject {
                                subject = Some(subject_key(&digest));
                            }
                            Ok(Cell::Digest(digest))
                        } else if is_subject {
                            Err("invalid_subject".to_string())
                        } else {
                            Err("invalid identifier".to_string())
                        }
                    }
                    other => Err(format!("expected a string, got {}", other.type_name())),
                },
                OutputKind::Day => match raw {
                    v if v.is_missing() => Ok(Cell::Null),
                    Value::Str(s) => match truncate_timestamp(s)
                        .map(|d| chrono::Datelike::num_days_from_ce(&d) - UNIX_EPOCH_DAYS_FROM_CE)
                    {
                        None => Err("invalid timestamp".to_string()),
                        Some(day) if self.partition_day.is_some_and(|p| (day - p).abs() > 1) => {
                            Err("outside its partition's day".to_string())
                        }
                        Some(day) => Ok(Cell::Date(day)),
                    },
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
                field: Some(self.rules.inputs[s].clone()),
                reason: "missing subject".into(),
            });
        }
        let record_id = match self.rules.record_id {
            None => None,
            // Two spellings of one id are one record (`EV-1`, `ev‐1`, `ev-١`): the
            // fingerprint is of the folded form, so a re-export in another case or with
            // look-alike dashes or digits is no new record.
            Some(r) => match values.get(r).and_then(Value::as_str).map(str::trim) {
                // Printable ASCII folds to its lowercase: in the scratch buffer, with no
                // allocation per record (the common case).
                Some(id) if !id.is_empty() && id.bytes().all(|b| (0x20..0x7f).contains(&b)) => {
                    self.canonical.clear();
                    self.canonical.push_str(id);
                    self.canonical.make_ascii_lowercase();
                    Some(self.hasher.record_fingerprint(&self.canonical))
                }
                Some(id) if !id.is_empty() => Some(
                    self.hasher
                        .record_fingerprint(&crate::text::fold_identity(id)),
                ),
                _ => {
                    return Err(Rejection {
                        field: Some(self.rules.inputs[r].clone()),
                        reason: "missing record id".into(),
                    });
                }
            },
        };
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
        self.record_ids.extend(record_id);
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
            record_ids: std::mem::take(&mut self.record_ids),
        })
    }
}

/// A kept value, checked by its type: text is normalized (what is checked is what is
/// published) and PII-scanned, numbers must lie within the policy's bounds.
fn keep<'v>(
    raw: &'v Value<'_>,
    data_type: FieldType,
    max_length: usize,
    format: TextFormat,
    bounds: Option<(f64, f64)>,
    decimals: Option<u8>,
) -> Result<Cell<'v>, String> {
    if matches!(raw, Value::Null) {
        return Ok(Cell::Null);
    }
    let within = |v: f64| -> Result<(), String> {
        match bounds {
            Some((min, max)) if !(min..=max).contains(&v) => {
                Err(format!("out of bounds [{min}, {max}]"))
            }
            _ => Ok(()),
        }
    };
    match data_type {
        FieldType::String => match raw {
            Value::Str(s) => {
                let text = crate::text::normalize(s.as_ref());
                let text = match format {
                    TextFormat::Text => text,
                    TextFormat::UrlPath => {
                        let path = url_path(text);
                        // `javascript:…`, `mailto:…` or a bare word: no page of a site.
                        if !path.is_empty() && !path.starts_with('/') {
                            return Err("not a URL path".to_string());
                        }
                        path
                    }
                };
                // A string of at most `max_length` bytes has at most that many characters.
                if text.len() > max_length && text.chars().count() > max_length {
                    return Err(format!("longer than {max_length} characters"));
                }
                if let Some(found) = pii::find_pii(&text) {
                    return Err(format!("looks like a raw {}", found.kind.as_str()));
                }
                if format == TextFormat::UrlPath
                    && let Some(decoded) = percent_decoded(&text)
                    && let Some(found) = pii::find_pii(&decoded)
                {
                    return Err(format!("looks like a raw {}", found.kind.as_str()));
                }
                Ok(Cell::Str(text))
            }
            other => Err(format!("expected a string, got {}", other.type_name())),
        },
        FieldType::Int64 if raw.is_missing() => Ok(Cell::Null),
        FieldType::Int64 => {
            let v = raw
                .to_i64()
                .ok_or_else(|| "expected an integer".to_string())?;
            within(v as f64)?;
            Ok(Cell::Int(v))
        }
        FieldType::Float64 if raw.is_missing() => Ok(Cell::Null),
        FieldType::Float64 => {
            let v = raw
                .to_f64()
                .filter(|v| v.is_finite())
                .ok_or_else(|| "expected a number".to_string())?;
            within(v)?;
            let v = match decimals {
                None => v,
                Some(d) => {
                    // Published at the policy's decimals exactly: what lies past them
                    // (`19.990000001`, `999999.9900000404`) is either float noise, rounded
                    // away, or digits riding along, refused.
                    let scale = 10f64.powi(i32::from(d));
                    let units = v * scale;
                    if (units - units.round()).abs() > 1e-6 {
                        return Err(format!("more than {d} decimal places"));
                    }
                    units.round() / scale
                }
            };
            // `-0.0` publishes as `0`.
            Ok(Cell::Float(if v == 0.0 { 0.0 } else { v }))
        }
        FieldType::Bool => match raw {
            Value::Bool(b) => Ok(Cell::Bool(*b)),
            Value::Str(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Cell::Bool(true)),
            Value::Str(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Cell::Bool(false)),
            v if v.is_missing() => Ok(Cell::Null),
            _ => Err("expected a boolean".to_string()),
        },
    }
}

/// The path of a URL or path: scheme and host dropped, query string and fragment cut.
fn url_path(text: Cow<'_, str>) -> Cow<'_, str> {
    let s: &str = &text;
    let start = s.find("://").map_or(0, |i| {
        let host = i + 3;
        s[host..].find('/').map_or(s.len(), |j| host + j)
    });
    let end = s[start..].find(['?', '#']).map_or(s.len(), |j| start + j);
    if start == 0 && end == s.len() {
        return text;
    }
    match text {
        Cow::Borrowed(b) => Cow::Borrowed(&b[start..end]),
        Cow::Owned(o) => Cow::Owned(o[start..end].to_string()),
    }
}

/// The text with `%XX` escapes decoded (lossy UTF-8) until none is left (at most three
/// rounds: `%2540` is `%40` is `@`), or `None` when it has none: a path such as
/// `/u/ana%40example.com` carries an email a buyer decodes at once.
fn percent_decoded(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let mut decoded = percent_decoded_once(text);
    for _ in 0..2 {
        if !decoded.contains('%') {
            break;
        }
        decoded = percent_decoded_once(&decoded);
    }
    Some(decoded)
}

fn percent_decoded_once(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    crate::text::normalize(&String::from_utf8_lossy(&out)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn s(v: &str) -> Value<'_> {
        Value::Str(Cow::Borrowed(v))
    }

    #[test]
    fn a_record_id_is_fingerprinted_in_its_folded_form_on_either_path() {
        let policy = Policy::default_v2().expect("policy");
        let rules = policy.dataset("orders").expect("orders");
        let hasher = KeyedHasher::new(b"test-key-0123456789").expect("key");
        let idx = |name: &str| rules.inputs.iter().position(|n| n == name).expect("field");
        let mut b = BatchBuilder::new(rules, &hasher);
        for id in [
            "Ord-0001 A",
            "ORD\u{2010}0001 a",
            "ord-\u{0660}\u{0660}\u{0660}1 A",
        ] {
            let mut rec = vec![Value::Null; rules.inputs.len()];
            rec[idx("order_id")] = s(id);
            rec[idx("customer_email")] = s("ana@example.com");
            b.push(&rec).expect("valid");
        }
        let staged = b.finish().expect("batch");
        let want = hasher.record_fingerprint(&crate::text::fold_identity("ORD-0001 A"));
        assert_eq!(staged.record_ids, [want; 3]);
    }

    #[test]
    fn kept_fields_are_checked_by_type() {
        let text = |v: &str, format| {
            keep(&s(v), FieldType::String, 256, format, None, None).map(|c| match c {
                Cell::Str(t) => t.into_owned(),
                _ => unreachable!("a string cell"),
            })
        };
        assert_eq!(
            text("/pricing?email=ana@example.com#top", TextFormat::UrlPath).as_deref(),
            Ok("/pricing")
        );
        assert_eq!(
            text("https://shop.example/a/b?x=1", TextFormat::UrlPath).as_deref(),
            Ok("/a/b")
        );
        assert!(text("/u/ana%40example.com", TextFormat::UrlPath).is_err());
        assert!(text("/u/ana%2540example.com", TextFormat::UrlPath).is_err());
        assert!(text("javascript:alert(1)", TextFormat::UrlPath).is_err());
        assert!(text("/u/4155550134", TextFormat::UrlPath).is_err());
        // What is checked is what is published: the normalized text.
        assert_eq!(
            text("pric\u{200B}ing", TextFormat::Text).as_deref(),
            Ok("pricing")
        );
        assert_eq!(
            text("ＰＲＩＣＩＮＧ", TextFormat::Text).as_deref(),
            Ok("PRICING")
        );
        let score = |v: Value<'_>| {
            keep(
                &v,
                FieldType::Int64,
                0,
                TextFormat::Text,
                Some((0.0, 100.0)),
                None,
            )
            .is_ok()
        };
        assert!(score(Value::Int(72)) && score(Value::Int(0)) && score(Value::Int(100)));
        for packed in [4_155_550_134, 3_405_803_833, -1, 101] {
            assert_eq!(
                keep(
                    &Value::Int(packed),
                    FieldType::Int64,
                    0,
                    TextFormat::Text,
                    Some((0.0, 100.0)),
                    None,
                )
                .err()
                .as_deref(),
                Some("out of bounds [0, 100]"),
                "{packed}"
            );
        }
        let amount = |v: f64| {
            keep(
                &Value::Float(v),
                FieldType::Float64,
                0,
                TextFormat::Text,
                Some((0.0, 1e6)),
                Some(2),
            )
            .is_ok()
        };
        assert!(
            amount(12.5)
                && amount(0.1 + 0.2)
                && amount(999_999.99)
                && !amount(4_155_550_134.0)
                && !amount(f64::NAN)
                && !amount(-0.5)
        );
        for smuggled in [
            415_555.123_4,
            41.555_512_34,
            0.415_555_123_4,
            10.010_002_003,
            999_999.990_000_040_4,
        ] {
            assert!(!amount(smuggled), "{smuggled}");
        }
        // What survives is published at two decimals exactly: no digit rides past them.
        for (sent, published) in [(19.990_000_001, 19.99), (0.1 + 0.2, 0.3)] {
            let sent_value = Value::Float(sent);
            let cell = keep(
                &sent_value,
                FieldType::Float64,
                0,
                TextFormat::Text,
                Some((0.0, 1e6)),
                Some(2),
            );
            assert!(
                matches!(cell, Ok(Cell::Float(p)) if p == published),
                "{sent}"
            );
        }
    }

    #[test]
    fn staged_digests_are_published_as_pseudonyms_for_kept_rows_only() {
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
        let hasher = KeyedHasher::new(b"test-key-0123456789").expect("key");
        let pseudonyms = hasher.release_pseudonyms("r-test");
        let rows = [0u32, 1, 3];
        let picks: Vec<Pick> = rows.iter().map(|&r| (0, r as usize)).collect();
        let derived = pseudonyms_of(
            &[digests.as_ref()],
            &picks,
            &|pick| Some(rows[pick]),
            &pseudonyms,
        )
        .expect("pseudonyms");
        let text = hex_text(&derived).expect("hex");
        let text = text.as_any().downcast_ref::<StringArray>().expect("utf8");
        let want =
            |byte: u8, class: u32| hex::encode(pseudonyms.pseudonym(Some(class), &[byte; 32]));
        assert_eq!(
            text.iter().collect::<Vec<_>>(),
            vec![
                Some(want(0x01, 0).as_str()),
                None,
                Some(want(0xf0, 3).as_str())
            ]
        );
        assert!(
            text.iter()
                .flatten()
                .all(|p| p.len() == 32 && !p.contains("0101"))
        );
    }

    #[test]
    fn a_run_of_one_person_takes_one_pseudonym_per_scope_and_others_their_own() {
        // Rows 0, 1 and 4 are one person; 2 another; 3 has no subject. Picks run the
        // person's rows side by side in scope 7, then once more in scope 8, as the keyed
        // order puts them, with the other person and a null in between.
        let digests: ArrayRef = Arc::new(
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                [
                    Some([0x11u8; 32]),
                    Some([0x11u8; 32]),
                    Some([0x22u8; 32]),
                    None,
                    Some([0x11u8; 32]),
                ]
                .into_iter(),
                32,
            )
            .expect("digests"),
        );
        let hasher = KeyedHasher::new(b"test-key-0123456789").expect("key");
        let pseudonyms = hasher.release_pseudonyms("r-test");
        let picks: Vec<Pick> = [0usize, 1, 4, 2, 3, 0].iter().map(|&r| (0, r)).collect();
        let scopes = [7u32, 7, 7, 7, 7, 8];
        let derived = pseudonyms_of(
            &[digests.as_ref()],
            &picks,
            &|pick| Some(scopes[pick]),
            &pseudonyms,
        )
        .expect("pseudonyms");
        let fresh = |byte: u8, class: u32| Some(pseudonyms.pseudonym(Some(class), &[byte; 32]));
        assert_eq!(
            derived,
            vec![
                fresh(0x11, 7),
                fresh(0x11, 7),
                fresh(0x11, 7),
                fresh(0x22, 7),
                None,
                fresh(0x11, 8),
            ]
        );
        assert_ne!(derived[0], derived[5], "a new scope, a new pseudonym");
        assert_ne!(derived[0], derived[3], "another person, another pseudonym");
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
