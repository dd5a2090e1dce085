//! One release: the pending raw objects of one partition → k-anonymous curated Parquet.
//!
//! Steps, and the invariant each protects:
//! 1. **Pass 1** (blocking thread, all cores): stream every object, parse and transform each
//!    record under the policy; bad records go to a quarantine file with their reason
//!    (invariant 4). Transformed records are staged with their base equivalence class:
//!    in memory up to `staging_memory_bytes`, the rest in a local Arrow IPC spill file, so
//!    memory is bounded by the quasi-identifier histogram plus that budget.
//! 2. **Decide**: the k-anonymity engine chooses the node or withholds (invariant 1).
//! 3. **Pass 2**: take the staged rows back, generalize, drop suppressed records, write
//!    zstd Parquet parts under `release={id}/`, then the report beside them.
//! 4. **Publish**: only now the catalog entry is written, in one transaction with the ledger
//!    of consumed raw objects (invariants 2 and 3). A crash before this leaves files nobody
//!    can see; the release id is derived from the inputs, so the next run rewrites the same
//!    files and publishes them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use catalog::{Column, ColumnType, RawObjectRef, Release, ReleaseFile, TableSchema};
use futures::TryStreamExt;
use object_store::buffered::BufWriter as ObjectWriter;
use object_store::path::Path;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use policies::batch::staged_schema;
use policies::report::{ReleaseFacts, ReportFile};
use policies::{
    BatchBuilder, DatasetRules, KeyedHasher, Outcome, Policy, QiHistogram, ReleaseReport, Value,
};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::json_record::{FieldIndex, RecordParser};
use crate::ledger::{PriorLedger, RecordLedger};
use crate::sources::{self, Chunk, ChunkPool, Item, Line, Quarantined, RawObject};
use crate::{Error, Result};
use catalog::layout::{self, PartitionKey};
use catalog::storage::Location;

/// Parquet key-value metadata keys written into every curated file.
pub mod meta {
    pub const POLICY_ID: &str = "stackpro.policy_id";
    pub const POLICY_HASH: &str = "stackpro.policy_hash";
    pub const K: &str = "stackpro.k";
    pub const NODE: &str = "stackpro.node";
    pub const KEY_ID: &str = "stackpro.key_id";
    pub const RELEASE_ID: &str = "stackpro.release_id";
    pub const DATASET: &str = "stackpro.dataset";
    pub const TENANT: &str = "stackpro.tenant";
    pub const DT: &str = "stackpro.dt";
    /// Comma-separated quasi-identifier columns, policy order.
    pub const QUASI_IDENTIFIERS: &str = "stackpro.quasi_identifiers";
    /// The column whose distinct values are the data subjects (absent: one per row).
    pub const SUBJECT_COLUMN: &str = "stackpro.subject_column";
    /// What a pseudonym links: `class` or `release` (policies::PseudonymScope).
    pub const PSEUDONYM_SCOPE: &str = "stackpro.pseudonym_scope";
    /// The fingerprint of the release's own pseudonym key.
    pub const PSEUDONYM_KEY_ID: &str = "stackpro.pseudonym_key_id";
    /// The column holding the record id, released at most once.
    pub const RECORD_ID_COLUMN: &str = "stackpro.record_id_column";
    /// JSON object of the kept number columns' policy bounds: `{"lead_score":[0,100]}`.
    pub const BOUNDS: &str = "stackpro.bounds";
}

const CLASS_COLUMN: &str = "__stackpro_class";
/// Lines handed to the parallel parser at once.
const READ_CHUNK: usize = 16 * 1024;
/// Lines per parallel task.
const TASK_LINES: usize = 2048;
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Everything a release needs, shared by all releases of a run.
#[derive(Debug, Clone)]
pub struct ReleaseContext {
    pub policy: Arc<Policy>,
    pub hasher: KeyedHasher,
    pub raw: Location,
    pub curated: Location,
    pub quarantine: Location,
    pub max_line_bytes: usize,
    pub max_rows_per_file: usize,
    /// Bytes of transformed rows kept in memory between the passes before spilling.
    pub staging_memory_bytes: usize,
    pub csv_delimiter: u8,
    /// Called with the number of raw bytes read, for progress bars.
    pub on_bytes: Option<ByteCounter>,
}

/// A callback told how many raw bytes were read, for progress bars.
#[derive(Clone)]
pub struct ByteCounter(pub Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for ByteCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ByteCounter")
    }
}

/// A release computed and written, not yet published.
#[derive(Debug)]
pub struct Prepared {
    pub report: ReleaseReport,
    /// The catalog entry to publish (`None` when withheld or empty).
    pub release: Option<Release>,
    pub table: TableSchema,
}

/// The deterministic id of a release of these inputs under this policy and key.
pub fn release_id(
    policy: &Policy,
    key_id: &str,
    partition: &PartitionKey,
    objects: &[RawObject],
) -> String {
    let mut h = Sha256::new();
    for part in [
        &policy.hash,
        key_id,
        &partition.dataset,
        &partition.tenant,
        &partition.dt,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let mut inputs: Vec<(&str, u64)> = objects.iter().map(|o| (o.url.as_str(), o.size)).collect();
    inputs.sort_unstable();
    for (url, size) in inputs {
        h.update(url.as_bytes());
        h.update(size.to_le_bytes());
    }
    format!("r{}", &hex::encode(h.finalize())[..20])
}

/// The catalog schema of a dataset's curated table.
pub fn table_schema(policy: &Policy, rules: &DatasetRules, curated: &Location) -> TableSchema {
    let columns = policies::curated_schema(rules)
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: match f.data_type() {
                DataType::Int64 => ColumnType::Int64,
                DataType::Float64 => ColumnType::Float64,
                DataType::Boolean => ColumnType::Boolean,
                DataType::Date32 => ColumnType::Date,
                _ => ColumnType::String,
            },
            comment: None,
        })
        .collect();
    let mut parameters = BTreeMap::new();
    parameters.insert(
        "quasi_identifiers".to_string(),
        rules
            .qi_rules()
            .map(|r| r.column.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    if let Some(s) = rules.subject_column() {
        parameters.insert("subject_column".to_string(), s.to_string());
    }
    TableSchema {
        dataset: rules.name.clone(),
        columns,
        partition_keys: vec!["tenant".into(), "dt".into(), "release".into()],
        location: curated.url_of(&layout::dataset_dir(&rules.name)),
        policy_id: policy.id.clone(),
        policy_hash: policy.hash.clone(),
        k: policy.k,
        parameters,
    }
}

/// What pass 1 leaves behind.
struct Staged {
    histogram: QiHistogram,
    ledger: RecordLedger,
    rows: StagedRows,
    quarantine: tempfile::NamedTempFile,
    quarantine_reasons: BTreeMap<String, u64>,
    unknown_fields: BTreeSet<String>,
}

/// Computes and writes one release (files, report and record ledger), without publishing
/// it. `ledger` holds the records already released for the partition's tenant and
/// dataset ([`RecordLedger::load`]): those are skipped.
pub async fn prepare(
    ctx: &ReleaseContext,
    partition: &PartitionKey,
    objects: Vec<RawObject>,
    ledger: RecordLedger,
) -> Result<Prepared> {
    let rules = ctx.policy.dataset(&partition.dataset)?.clone();
    let id = release_id(&ctx.policy, ctx.hasher.key_id(), partition, &objects);
    let table = table_schema(&ctx.policy, &rules, &ctx.curated);
    let pseudonyms = ctx.hasher.release_pseudonyms(&id);

    let started = std::time::Instant::now();
    let staged = {
        let ctx = ctx.clone();
        let rules = rules.clone();
        let objects = objects.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || pass1(&ctx, &rules, &objects, ledger, &handle))
            .await??
    };
    let pass1_done = std::time::Instant::now();
    let decision = staged
        .histogram
        .decide(ctx.policy.k, ctx.policy.max_suppression)?;
    tracing::info!(
        partition = %partition, release = %id, records = decision.records, outcome = ?decision.outcome,
        node = %policies::report::node_label(&rules, &decision.node), suppressed = decision.suppressed_records,
        base_classes = staged.histogram.base_classes(), nodes_evaluated = decision.nodes_evaluated,
        spilled = staged.rows.spilled(),
        pass1_ms = (pass1_done - started).as_millis() as u64,
        decide_ms = pass1_done.elapsed().as_millis() as u64,
        "release decided"
    );

    let facts = ReleaseFacts {
        release_id: id.clone(),
        tenant: partition.tenant.clone(),
        dt: partition.dt.clone(),
        key_id: ctx.hasher.key_id().to_string(),
        pseudonym_key_id: pseudonyms.key_id().to_string(),
        already_released: staged.ledger.skipped,
        quarantine_reasons: staged.quarantine_reasons.clone(),
        unknown_fields: publishable_field_names(&staged.unknown_fields),
        // Relative to the raw root: the operator's folder names are no buyer's business.
        inputs: objects.iter().map(|o| o.path.to_string()).collect(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let mut report = ReleaseReport::new(&ctx.policy, &rules, &decision, facts);

    if report.quarantined > 0 {
        let path = layout::quarantine_path(partition, &id);
        upload_file(&ctx.quarantine, &path, staged.quarantine.path()).await?;
    }

    let dir = layout::release_dir(partition, &id);
    if decision.outcome != Outcome::Release {
        // Beside the quarantine, not the curated files: its figures describe records
        // under k (a class of 10 people), and buyers read the curated root.
        let path = layout::withheld_report_path(partition, &id);
        ctx.quarantine
            .store
            .put(&path, serde_json::to_vec_pretty(&report)?.into())
            .await?;
        return Ok(Prepared {
            report,
            release: None,
            table,
        });
    }

    let pass2_started = std::time::Instant::now();
    let files = pass2(
        ctx,
        &rules,
        staged.rows,
        Arc::new(decision),
        Arc::new(pseudonyms),
        &report,
        &dir,
    )
    .await?;
    // Before the publish, so a published release always has its ledger (a crash between
    // leaves a file no published release names: ignored).
    staged.ledger.write(&ctx.curated, partition, &id).await?;
    tracing::info!(
        partition = %partition, release = %id,
        pass2_ms = pass2_started.elapsed().as_millis() as u64,
        files = files.len(),
        "release files written"
    );
    report.files = files
        .iter()
        .map(|f| ReportFile {
            path: f.path.clone(),
            rows: f.rows,
            bytes: f.size_bytes,
        })
        .collect();
    debug_assert_eq!(
        files.iter().map(|f| f.rows).sum::<u64>(),
        report.records_out
    );
    ctx.curated
        .store
        .put(
            &dir.clone().join(layout::REPORT_FILE),
            serde_json::to_vec_pretty(&report)?.into(),
        )
        .await?;

    let release = Release {
        release_id: id,
        dataset: partition.dataset.clone(),
        tenant: partition.tenant.clone(),
        dt: partition.dt.clone(),
        location: ctx.curated.url_of(&dir),
        files,
        inputs: objects
            .iter()
            .map(|o| RawObjectRef {
                key: o.url.clone(),
                size: o.size,
                e_tag: o.e_tag.clone(),
            })
            .collect(),
        policy_id: ctx.policy.id.clone(),
        policy_hash: ctx.policy.hash.clone(),
        key_id: ctx.hasher.key_id().to_string(),
        k: ctx.policy.k,
        records_in: report.records_in,
        records_out: report.records_out,
        suppressed: report.suppressed,
        quarantined: report.quarantined,
        k_anon_violations: report.k_anon_violations,
        node: report.node_label.clone(),
        report: serde_json::to_value(&report)?,
        published_at: chrono::Utc::now(),
    };
    Ok(Prepared {
        report,
        release: Some(release),
        table,
    })
}

/// Unknown input field names as they may appear in the (published) report: producers are
/// untrusted, so a key that is not a plain identifier, or that looks like an email, phone or
/// IP, is never echoed; it is counted instead.
fn publishable_field_names(names: &BTreeSet<String>) -> Vec<String> {
    let plain = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
            && policies::pii::find_pii(n).is_none()
    };
    let mut out: Vec<String> = names.iter().filter(|n| plain(n)).cloned().collect();
    let hidden = names.len() - out.len();
    if hidden > 0 {
        out.push(format!(
            "({hidden} field names withheld: not plain identifiers)"
        ));
    }
    out
}

/// Quarantined records as JSON lines, with a count per reason. The first write error is
/// kept and reported by [`QuarantineLog::finish`]: a record must not be lost silently.
struct QuarantineLog<W: Write> {
    out: W,
    reasons: BTreeMap<String, u64>,
    error: Option<std::io::Error>,
}

impl<W: Write> QuarantineLog<W> {
    fn new(out: W) -> Self {
        Self {
            out,
            reasons: BTreeMap::new(),
            error: None,
        }
    }

    fn record(&mut self, q: &Quarantined) {
        *self.reasons.entry(q.reason_key()).or_default() += 1;
        if let Err(e) = serde_json::to_writer(&mut self.out, &q.to_json())
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
        {
            self.error.get_or_insert(e);
        }
    }

    /// Adds the lines and counts of a log written to a temporary file.
    fn append(&mut self, other: QuarantineLog<BufWriter<std::fs::File>>) {
        for (reason, n) in other.reasons {
            *self.reasons.entry(reason).or_default() += n;
        }
        if let Some(e) = other.error {
            self.error.get_or_insert(e);
        }
        let copied = other
            .out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)
            .and_then(|mut file| {
                std::io::Seek::rewind(&mut file)?;
                std::io::copy(&mut file, &mut self.out)
            });
        if let Err(e) = copied {
            self.error.get_or_insert(e);
        }
    }

    /// Flushes the lines; returns the count per reason.
    fn finish(mut self) -> Result<BTreeMap<String, u64>> {
        if let Some(e) = self.error.take() {
            return Err(e.into());
        }
        self.out.flush()?;
        Ok(self.reasons)
    }
}

/// A `Read` that reports how many bytes passed through it.
struct Counting<R> {
    inner: R,
    on_bytes: Option<ByteCounter>,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Failing to fetch the bytes is told apart from failing to decode them (see
        // [`sources::StoreReadError`]).
        let n = self
            .inner
            .read(buf)
            .map_err(|e| std::io::Error::new(e.kind(), sources::StoreReadError(e)))?;
        if let Some(f) = &self.on_bytes {
            (f.0)(n as u64);
        }
        Ok(n)
    }
}

/// Pass 1: reads, parses and transforms every record, counting the quasi-identifier
/// histogram and staging the transformed rows (see [`StagedRows`]).
///
/// Three stages overlap, joined by bounded channels: this thread reads and splits lines; a
/// transform thread has rayon parse and transform each chunk in parallel; a counting
/// thread adds each transformed batch to the histogram and stages it. The histogram is
/// the only state that must be updated in order, so it gets a thread of its own.
fn pass1(
    ctx: &ReleaseContext,
    rules: &DatasetRules,
    objects: &[RawObject],
    ledger: RecordLedger,
    handle: &tokio::runtime::Handle,
) -> Result<Staged> {
    let index = FieldIndex::new(rules);
    let base = staged_schema(rules);
    let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(CLASS_COLUMN, DataType::UInt32, false));
    let rows_schema = Arc::new(Schema::new(fields));
    let rows = StagedRows::new(rows_schema.clone(), ctx.staging_memory_bytes);
    let histogram = QiHistogram::new(rules);
    let quarantine = tempfile::NamedTempFile::new()?;
    let mut quarantined = QuarantineLog::new(BufWriter::new(quarantine.reopen()?));
    let mut unknown_fields = BTreeSet::new();

    // Two transformed chunks in flight at most: bounded memory, and the transform stage
    // goes on with the next chunk while this one is counted.
    let (to_counter, from_reader) = std::sync::mpsc::sync_channel::<Vec<Screened>>(2);
    // Probed on the transform stage's cores: a probe of a large ledger misses the cache
    // (about 0.2 us), too much for the one counting thread.
    let prior = ledger.prior();
    let (histogram, rows, ledger, read_result) = std::thread::scope(|scope| {
        let counter = scope.spawn({
            let rows_schema = rows_schema.clone();
            move || -> Result<_> {
                let mut histogram = histogram;
                let mut rows = rows;
                let mut ledger = ledger;
                for (staged, released_before) in from_reader.into_iter().flatten() {
                    // In order, on this one thread: the first occurrence of a record wins,
                    // whatever the parallel stages did.
                    let staged = ledger.admit(staged, &released_before)?;
                    let classes = histogram.add_all(&staged.quasi_identifiers, &staged.subjects)?;
                    let mut columns: Vec<ArrayRef> = staged.batch.columns().to_vec();
                    columns.push(Arc::new(UInt32Array::from(classes)));
                    rows.push(RecordBatch::try_new(rows_schema.clone(), columns)?)?;
                }
                Ok((histogram, rows, ledger))
            }
        });
        let (to_transform, from_reader) = std::sync::mpsc::sync_channel::<Chunk>(2);
        let pool = ChunkPool::default();
        let transformer = scope.spawn({
            let index = &index;
            let pool = pool.clone();
            let prior = &prior;
            move || {
                transform_all(
                    ctx,
                    rules,
                    objects,
                    index,
                    prior,
                    from_reader,
                    to_counter,
                    &pool,
                )
            }
        });
        let mut record_quarantine = |q: Quarantined| quarantined.record(&q);
        let read_result = read_all(
            ctx,
            rules,
            objects,
            handle,
            &to_transform,
            &pool,
            &mut record_quarantine,
            &mut unknown_fields,
        );
        // Closing the channels ends the transforming, then the counting thread. Their own
        // errors explain best why the reader could not send, so they come first.
        drop(to_transform);
        let transformed = transformer
            .join()
            .unwrap_or_else(|_| Err(Error::Task("the transform thread panicked".into())));
        let counted = counter
            .join()
            .unwrap_or_else(|_| Err(Error::Task("the histogram thread panicked".into())));
        let (histogram, rows, ledger) = counted?;
        let (rejected, unknown) = transformed?;
        quarantined.append(rejected);
        unknown_fields.extend(unknown);
        Ok::<_, Error>((histogram, rows, ledger, read_result))
    })?;
    read_result?;
    let mut rows = rows;
    rows.finish()?;
    let quarantine_reasons = quarantined.finish()?;
    Ok(Staged {
        histogram,
        ledger,
        rows,
        quarantine,
        quarantine_reasons,
        unknown_fields,
    })
}

/// The reading stage of pass 1: decodes every object and sends its lines, in chunks, to
/// the transform thread. Records the reader itself rejects (oversized, not UTF-8, broken
/// compression) are quarantined here.
#[allow(clippy::too_many_arguments)]
fn read_all(
    ctx: &ReleaseContext,
    rules: &DatasetRules,
    objects: &[RawObject],
    handle: &tokio::runtime::Handle,
    to_transform: &std::sync::mpsc::SyncSender<Chunk>,
    pool: &ChunkPool,
    record_quarantine: &mut dyn FnMut(Quarantined),
    unknown_fields: &mut BTreeSet<String>,
) -> Result<()> {
    for (object_index, object) in objects.iter().enumerate() {
        let Some((format, compression)) = object.encoding() else {
            continue;
        };
        let get = handle.block_on(ctx.raw.store.get(&object.path))?;
        // A local object comes as an open file: read it directly. Its stream would come in
        // 8 KiB pieces, each a hop through tokio's blocking pool, costing more than parsing.
        let range = get.range.clone();
        let inner: Box<dyn std::io::Read + Send> = match get.payload {
            GetResultPayload::File(mut file, _) => {
                // Exactly the object as listed, even if it grows meanwhile.
                std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(range.start))?;
                Box::new(std::io::Read::take(file, range.end - range.start))
            }
            GetResultPayload::Stream(stream) => Box::new(SyncIoBridge::new_with_handle(
                StreamReader::new(stream.map_err(std::io::Error::other)),
                handle.clone(),
            )),
        };
        let counted = Counting {
            inner,
            on_bytes: ctx.on_bytes.clone(),
        };
        let mut reader = match sources::decoder(Box::new(counted), compression) {
            Ok(r) => r,
            Err(e) => {
                record_quarantine(Quarantined {
                    object: object.url.clone(),
                    line: 0,
                    reason: format!("unreadable object: {e}"),
                    field: None,
                    raw: Vec::new(),
                    raw_len: 0,
                });
                continue;
            }
        };
        let mut on_chunk = |chunk: Chunk| -> Result<()> {
            to_transform
                .send(chunk)
                .map_err(|_| Error::Task("the transform thread stopped".into()))
        };
        sources::read_object(
            reader.as_mut(),
            format,
            object_index as u32,
            &object.url,
            &rules.inputs,
            ctx.csv_delimiter,
            ctx.max_line_bytes,
            READ_CHUNK,
            pool,
            &mut on_chunk,
            record_quarantine,
            unknown_fields,
        )?;
    }
    Ok(())
}

/// The transform stage of pass 1: parses and transforms each chunk of lines on rayon and
/// sends the batches on, in order. Returns the records it rejected (to quarantine) and
/// the unknown field names it saw.
///
/// Two chunks are in flight: when the last tasks of one leave a core idle, the tasks of
/// the next fill it, instead of every chunk ending on a barrier.
#[allow(clippy::too_many_arguments)]
fn transform_all(
    ctx: &ReleaseContext,
    rules: &DatasetRules,
    objects: &[RawObject],
    index: &FieldIndex,
    prior: &PriorLedger,
    from_reader: std::sync::mpsc::Receiver<Chunk>,
    to_counter: std::sync::mpsc::SyncSender<Vec<Screened>>,
    pool: &ChunkPool,
) -> Result<(QuarantineLog<BufWriter<std::fs::File>>, BTreeSet<String>)> {
    const CHUNKS_IN_FLIGHT: usize = 2;
    type Transformed = (Chunk, Result<Vec<ChunkOut>>);
    // Written out as they come, while rayon transforms: serializing them all once pass 1
    // is done would leave a core idle.
    // In a file, not in memory: an object of nothing but bad lines must not need its own
    // size in memory.
    let mut rejected_records =
        QuarantineLog::new(BufWriter::with_capacity(1 << 16, tempfile::tempfile()?));
    let mut unknown = BTreeSet::new();
    // Every object of a release is of one partition.
    let day = objects
        .first()
        .and_then(|o| layout::parse_partition_day(&o.partition.dt));
    let mut send_on = |(chunk, outputs): Transformed| -> Result<()> {
        let mut batches = Vec::new();
        // Part `i` of `par_chunks` starts at line `i * TASK_LINES`.
        for (part, out) in outputs?.into_iter().enumerate() {
            for (line_index, reason) in out.rejected {
                let line = &chunk.lines[part * TASK_LINES + line_index];
                let raw = chunk.raw(line).to_vec();
                rejected_records.record(&Quarantined {
                    object: objects[chunk.object as usize].url.clone(),
                    line: line.number,
                    reason: reason.1,
                    field: reason.0,
                    raw_len: raw.len() as u64,
                    raw,
                });
            }
            unknown.extend(out.unknown);
            batches.push((out.staged, out.released_before));
        }
        pool.give(chunk);
        to_counter
            .send(batches)
            .map_err(|_| Error::Task("the histogram thread stopped".into()))
    };
    // The scope runs on this thread; only the chunks' tasks go to rayon's workers.
    rayon::in_place_scope(|scope| -> Result<()> {
        let mut in_flight: std::collections::VecDeque<std::sync::mpsc::Receiver<Transformed>> =
            std::collections::VecDeque::new();
        let done = |rx: std::sync::mpsc::Receiver<Transformed>| {
            rx.recv()
                .map_err(|_| Error::Task("a transform task panicked".into()))
        };
        for chunk in from_reader {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            scope.spawn(move |_| {
                let outputs = chunk
                    .lines
                    .par_chunks(TASK_LINES)
                    .map(|part| {
                        transform_lines(rules, &ctx.hasher, day, index, prior, &chunk.text, part)
                    })
                    .collect::<Result<Vec<_>>>();
                // The receiver is gone only if this stage already failed.
                let _ = tx.send((chunk, outputs));
            });
            in_flight.push_back(rx);
            if in_flight.len() == CHUNKS_IN_FLIGHT
                && let Some(oldest) = in_flight.pop_front()
            {
                send_on(done(oldest)?)?;
            }
        }
        while let Some(rx) = in_flight.pop_front() {
            send_on(done(rx)?)?;
        }
        Ok(())
    })?;
    Ok((rejected_records, unknown))
}

/// NDJSON lines lie back to back in the chunk: their span, validated as UTF-8 once (one
/// SIMD pass instead of a call per line), with its offset in `text`. `None` for CSV
/// records, or when some byte of the span is not UTF-8.
fn utf8_span<'t>(text: &'t [u8], lines: &[Line]) -> Option<(usize, &'t str)> {
    let (Some(Item::Json(first)), Some(Item::Json(last))) = (
        lines.first().map(|l| &l.item),
        lines.last().map(|l| &l.item),
    ) else {
        return None;
    };
    let span = simdutf8::basic::from_utf8(&text[first.start..last.end]).ok()?;
    Some((first.start, span))
}

/// A transformed batch, and which of its records the ledger of earlier releases holds
/// (see [`RecordLedger::admit`]).
type Screened = (policies::StagedBatch, Vec<bool>);

struct ChunkOut {
    staged: policies::StagedBatch,
    /// Per record: released before (empty when there were no earlier releases).
    released_before: Vec<bool>,
    /// (index into the chunk's lines, (field, reason)).
    rejected: Vec<(usize, (Option<String>, String))>,
    unknown: BTreeSet<String>,
}

/// Parses and transforms a slice of lines (runs on a rayon worker).
fn transform_lines(
    rules: &DatasetRules,
    hasher: &KeyedHasher,
    day: Option<chrono::NaiveDate>,
    index: &FieldIndex,
    prior: &PriorLedger,
    text: &[u8],
    lines: &[Line],
) -> Result<ChunkOut> {
    let mut builder =
        BatchBuilder::with_capacity(rules, hasher, lines.len()).with_partition_day(day);
    let mut rejected = Vec::new();
    let mut unknown = BTreeSet::new();
    let mut slots: Vec<Value<'_>> = Vec::with_capacity(index.inputs());
    let mut parser = RecordParser::new(index);
    // `str::get` checks that both ends of a line are character boundaries, so a line that
    // is not UTF-8 on its own (a character split across two lines) is never taken from
    // the span: it goes, like every line of a span with invalid bytes, to the line's own
    // validation, which rejects it.
    let span = utf8_span(text, lines);
    // Rejections are indexed by position in `lines`, this task's slice of the chunk; the
    // caller adds the slice's offset.
    for (i, line) in lines.iter().enumerate() {
        let result = match &line.item {
            Item::Json(range) => {
                match span.and_then(|(at, span)| span.get(range.start - at..range.end - at)) {
                    Some(line) => parser.parse_str(line, &mut slots, &mut unknown),
                    None => parser.parse(&text[range.clone()], &mut slots, &mut unknown),
                }
                .map_err(|reason| (None, reason))
                .and_then(|()| builder.push(&slots).map_err(|r| (Some(r.field), r.reason)))
            }
            Item::Fields { values, .. } => {
                slots.clear();
                slots.extend(
                    values
                        .iter()
                        .map(|v| v.as_deref().map_or(Value::Null, |s| Value::Str(s.into()))),
                );
                builder.push(&slots).map_err(|r| (Some(r.field), r.reason))
            }
        };
        if let Err(reason) = result {
            rejected.push((i, reason));
        }
    }
    let staged = builder.finish()?;
    let released_before = if prior.is_empty() {
        Vec::new()
    } else {
        staged
            .record_ids
            .iter()
            .map(|&f| prior.contains(f))
            .collect::<std::io::Result<_>>()?
    };
    Ok(ChunkOut {
        staged,
        released_before,
        rejected,
        unknown,
    })
}

async fn pass2(
    ctx: &ReleaseContext,
    rules: &DatasetRules,
    rows: StagedRows,
    decision: Arc<policies::Decision>,
    pseudonyms: Arc<policies::Pseudonymizer>,
    report: &ReleaseReport,
    dir: &Path,
) -> Result<Vec<ReleaseFile>> {
    let schema = policies::curated_schema(rules);
    let mut kv = vec![
        KeyValue::new(meta::POLICY_ID.into(), report.policy_id.clone()),
        KeyValue::new(meta::POLICY_HASH.into(), report.policy_hash.clone()),
        KeyValue::new(meta::K.into(), report.k.to_string()),
        KeyValue::new(meta::NODE.into(), report.node_label.clone()),
        KeyValue::new(meta::KEY_ID.into(), report.key_id.clone()),
        KeyValue::new(meta::RELEASE_ID.into(), report.release_id.clone()),
        KeyValue::new(meta::DATASET.into(), report.dataset.clone()),
        KeyValue::new(meta::TENANT.into(), report.tenant.clone()),
        KeyValue::new(meta::DT.into(), report.dt.clone()),
        KeyValue::new(
            meta::QUASI_IDENTIFIERS.into(),
            rules
                .qi_rules()
                .map(|r| r.column.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    if let Some(s) = rules.subject_column() {
        kv.push(KeyValue::new(meta::SUBJECT_COLUMN.into(), s.to_string()));
    }
    kv.push(KeyValue::new(
        meta::PSEUDONYM_SCOPE.into(),
        report.pseudonym_scope.clone(),
    ));
    kv.push(KeyValue::new(
        meta::PSEUDONYM_KEY_ID.into(),
        report.pseudonym_key_id.clone(),
    ));
    if let Some(r) = rules.record_id
        && let Some(o) = rules.outputs.iter().find(|o| o.input == r)
    {
        kv.push(KeyValue::new(
            meta::RECORD_ID_COLUMN.into(),
            o.column.clone(),
        ));
    }
    let bounds: serde_json::Map<String, serde_json::Value> = rules
        .outputs
        .iter()
        .filter_map(|o| match o.kind {
            policies::policy::OutputKind::Keep {
                bounds: Some((min, max)),
                ..
            } => Some((o.column.clone(), serde_json::json!([min, max]))),
            _ => None,
        })
        .collect();
    if !bounds.is_empty() {
        kv.push(KeyValue::new(
            meta::BOUNDS.into(),
            serde_json::Value::Object(bounds).to_string(),
        ));
    }
    let mut props = WriterProperties::builder()
        // Level 1: on 1M contacts records it wrote 51.9 MiB in about half the time level 3
        // took for 52.4 MiB (hashes and ids are near-random; longer match searches find
        // nothing more).
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(kv))
        .set_created_by("stackpro pipeline".into());
    // Keyed hashes are uniform: the min and max of any page or row group span nearly the
    // whole range, so they could never prune a read, and computing them compares every
    // 64-byte value.
    for o in &rules.outputs {
        if matches!(o.kind, policies::policy::OutputKind::Hash) {
            props = props.set_column_statistics_enabled(
                parquet::schema::types::ColumnPath::from(o.column.as_str()),
                parquet::file::properties::EnabledStatistics::None,
            );
        }
        // Pseudonyms and record ids are (nearly) one a row: a dictionary never pays off,
        // and building one until it overflows interned and compared every value of a row
        // group's first megabyte.
        if matches!(o.kind, policies::policy::OutputKind::Hash) || rules.record_id == Some(o.input)
        {
            props = props.set_column_dictionary_enabled(
                parquet::schema::types::ColumnPath::from(o.column.as_str()),
                false,
            );
        }
    }
    // A string column whose values overflow its dictionary (keyed hashes, ids) falls back
    // to DELTA_LENGTH_BYTE_ARRAY: the lengths apart, then the values back to back. PLAIN
    // puts a 4-byte length before every value, and on 64-character hashes zstd's match
    // finder keeps stopping at those words: it compressed such pages 2.7 times slower
    // (225 against 600 MB/s) for the same size. Columns that fit their dictionary are
    // unchanged.
    for field in schema.fields() {
        if field.data_type() == &arrow::datatypes::DataType::Utf8 {
            props = props.set_column_encoding(
                parquet::schema::types::ColumnPath::from(field.name().as_str()),
                parquet::basic::Encoding::DELTA_LENGTH_BYTE_ARRAY,
            );
        }
    }
    let props = props.build();

    let rules = Arc::new(rules.clone());
    // Every file holds whole classes of the chosen node, so that each file on its own is
    // k-anonymous (DESIGN invariant 1): a buyer may be handed a single file. A release of
    // one file writes its staged rows as they are; a larger one first routes them to its
    // files (one more pass over the staged rows, within the same memory budget).
    let plan = decision.file_plan(ctx.max_rows_per_file as u64);
    let per_file = if plan.files() <= 1 {
        vec![rows]
    } else {
        tokio::task::spawn_blocking(move || rows.route(&plan))
            .await
            .map_err(|e| Error::Task(format!("routing rows to files stopped: {e}")))??
    };
    let mut files = Vec::with_capacity(per_file.len());
    for (n, rows) in per_file.into_iter().enumerate() {
        // The file's staged rows (a spilled release reads its part here), and the order
        // its published rows are written in (see `policies::release_order_keys`), on all
        // cores, off the async runtime.
        let (staged, order) = tokio::task::spawn_blocking({
            let (rules, decision, pseudonyms) =
                (rules.clone(), decision.clone(), pseudonyms.clone());
            move || -> Result<_> {
                let staged = rows.into_batches()?.collect::<Result<Vec<_>>>()?;
                let order = file_order(&rules, &decision, &pseudonyms, &staged)?;
                Ok((Arc::new(staged), Arc::new(order)))
            }
        })
        .await
        .map_err(|e| Error::Task(format!("ordering rows stopped: {e}")))??;
        let mut part = Part::new(ctx, dir, n, schema.clone(), props.clone());
        // A row group at a time, gathered and generalized on all cores while the one
        // before is encoded.
        for at in (0..order.len()).step_by(ROW_GROUP_ROWS) {
            let published = tokio::task::spawn_blocking({
                let (rules, decision, pseudonyms, staged, order) = (
                    rules.clone(),
                    decision.clone(),
                    pseudonyms.clone(),
                    staged.clone(),
                    order.clone(),
                );
                move || -> Result<Vec<RecordBatch>> {
                    let classes = staged
                        .iter()
                        .map(staged_classes)
                        .collect::<Result<Vec<_>>>()?;
                    order[at..order.len().min(at + ROW_GROUP_ROWS)]
                        .par_chunks(RELEASE_TASK_ROWS)
                        .map(|picks| {
                            Ok(policies::release_rows(
                                &rules,
                                &decision,
                                &staged,
                                &classes,
                                picks,
                                &pseudonyms,
                                rules.pseudonym_scope,
                            )?)
                        })
                        .collect()
                }
            })
            .await
            .map_err(|e| Error::Task(format!("preparing rows stopped: {e}")))??;
            for batch in published {
                part.write(batch).await?;
            }
        }
        files.extend(part.finish().await?);
    }
    Ok(files)
}

/// Published rows generalized per task of pass 2: a row group is cut into this many
/// rows a task, so that both cores share it.
const RELEASE_TASK_ROWS: usize = 16 * 1024;

/// The published rows of a file's staged batches in the order they are written: by
/// their keys (`policies::release_order_keys`), sorted. The whole file is ordered, not
/// each batch: batches follow the objects.
fn file_order(
    rules: &DatasetRules,
    decision: &policies::Decision,
    pseudonyms: &policies::Pseudonymizer,
    staged: &[RecordBatch],
) -> Result<Vec<policies::Pick>> {
    let keyed = staged
        .par_iter()
        .enumerate()
        .map(|(b, batch)| {
            let keys = policies::release_order_keys(
                rules,
                decision,
                batch,
                staged_classes(batch)?,
                b as u32,
                pseudonyms,
                rules.pseudonym_scope,
            )?;
            Ok(keys
                .into_iter()
                .map(|(key, row)| (key, b as u32, row))
                .collect::<Vec<_>>())
        })
        .collect::<Result<Vec<_>>>()?;
    let mut keyed: Vec<(u64, u32, u32)> = keyed.into_iter().flatten().collect();
    // Ties (one person's rows within a scope) keep their staged order.
    keyed.par_sort_unstable();
    Ok(keyed
        .into_iter()
        .map(|(_, b, row)| (b as usize, row as usize))
        .collect())
}

/// The base class of each staged row (the column pass 1 stored beside the outputs).
fn staged_classes(staged: &RecordBatch) -> Result<&UInt32Array> {
    staged
        .column_by_name(CLASS_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
        .ok_or_else(|| Error::Task("staged rows lost their class column".into()))
}

/// One curated file of a release (`part-00000.parquet`, …) as its rows arrive, in row
/// groups of `ROW_GROUP_ROWS` rows. No file is made for no rows.
struct Part<'a> {
    ctx: &'a ReleaseContext,
    path: Path,
    schema: arrow::datatypes::SchemaRef,
    props: WriterProperties,
    writer: Option<PartWriter>,
    /// Rows of the row group being gathered (encoded once it is full).
    pending: Vec<RecordBatch>,
    pending_rows: usize,
}

impl<'a> Part<'a> {
    fn new(
        ctx: &'a ReleaseContext,
        dir: &Path,
        n: usize,
        schema: arrow::datatypes::SchemaRef,
        props: WriterProperties,
    ) -> Self {
        Self {
            ctx,
            path: dir.clone().join(layout::part_file(n)),
            schema,
            props,
            writer: None,
            pending: Vec::new(),
            pending_rows: 0,
        }
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let writer = match self.writer.as_mut() {
                Some(w) => w,
                None => self.writer.insert(PartWriter::new(
                    self.ctx,
                    self.path.clone(),
                    &self.schema,
                    &self.props,
                )?),
            };
            let take = (ROW_GROUP_ROWS - self.pending_rows).min(batch.num_rows() - offset);
            self.pending.push(batch.slice(offset, take));
            self.pending_rows += take;
            offset += take;
            if self.pending_rows == ROW_GROUP_ROWS {
                writer
                    .write_row_group(std::mem::take(&mut self.pending))
                    .await?;
                self.pending_rows = 0;
            }
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<Option<ReleaseFile>> {
        let Some(mut writer) = self.writer.take() else {
            return Ok(None);
        };
        if !self.pending.is_empty() {
            writer
                .write_row_group(std::mem::take(&mut self.pending))
                .await?;
        }
        Ok(Some(writer.close(self.ctx).await?))
    }
}

/// The transformed rows of a release between its passes, each with its base class: in
/// memory up to a budget, the rest in a local Arrow IPC spill file. Memory stays bounded
/// whatever the size of the release, and a release that fits makes no local I/O.
struct StagedRows {
    schema: arrow::datatypes::SchemaRef,
    budget: usize,
    memory: Vec<RecordBatch>,
    memory_bytes: usize,
    /// An anonymous temporary file (deleted when closed): one file handle each, as a
    /// release of many files holds one per file while its rows are routed.
    spill: Option<FileWriter<BufWriter<std::fs::File>>>,
}

/// Staged batches in the order they were staged.
type StagedBatches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

impl StagedRows {
    fn new(schema: arrow::datatypes::SchemaRef, budget: usize) -> Self {
        Self {
            schema,
            budget,
            memory: Vec::new(),
            memory_bytes: 0,
            spill: None,
        }
    }

    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let in_memory = self.spill.is_none()
            && self.memory_bytes + batch.get_array_memory_size() <= self.budget;
        self.push_to(batch, in_memory)
    }

    /// Adds a batch to memory or to the spill file, as the caller's budget says.
    fn push_to(&mut self, batch: RecordBatch, in_memory: bool) -> Result<()> {
        if in_memory {
            self.memory_bytes += batch.get_array_memory_size();
            self.memory.push(batch);
            return Ok(());
        }
        let writer = match &mut self.spill {
            Some(writer) => writer,
            None => {
                let writer =
                    FileWriter::try_new(BufWriter::new(tempfile::tempfile()?), &self.schema)?;
                tracing::debug!(
                    in_memory_bytes = self.memory_bytes,
                    "staged rows spill to disk"
                );
                self.spill.insert(writer)
            }
        };
        writer.write(&batch)?;
        Ok(())
    }

    /// Completes the spill file, if any.
    fn finish(&mut self) -> Result<()> {
        if let Some(writer) = &mut self.spill {
            writer.finish()?;
        }
        Ok(())
    }

    /// Whether some rows went to the spill file.
    fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    /// The published rows of each file of `plan`, in the plan's order; suppressed rows
    /// are left out. Routed rows stay in memory while they and the staged rows not yet
    /// routed fit the budget together, and spill to a file per part past it (one open
    /// file per part: a release of thousands of files needs as many file handles).
    fn route(self, plan: &policies::FilePlan) -> Result<Vec<StagedRows>> {
        let mut files: Vec<StagedRows> = (0..plan.files())
            .map(|_| StagedRows::new(self.schema.clone(), self.budget))
            .collect();
        let budget = self.budget;
        // Bytes of staged batches still held in memory, and of routed ones.
        let (mut held, mut routed) = (self.memory_bytes, 0usize);
        let in_memory = self.memory.len();
        for (i, batch) in self.into_batches()?.enumerate() {
            let batch = batch?;
            let staged_bytes = if i < in_memory {
                batch.get_array_memory_size()
            } else {
                0
            };
            for (file, rows) in split_by_file(&batch, plan)? {
                let bytes = rows.get_array_memory_size();
                // Not sticky: a part that spilled while the staged rows still held the
                // budget takes later pieces in memory again (making them all spill cost
                // pass 2 about 0.7 s more at 4M records). Rows within a file come out
                // memory first, so their order depends on the budget; it is the same for
                // the same input and configuration, and files promise no order.
                let fits = held + routed + bytes <= budget;
                if fits {
                    routed += bytes;
                }
                files[file].push_to(rows, fits)?;
            }
            held -= staged_bytes;
        }
        for file in &mut files {
            file.finish()?;
        }
        Ok(files)
    }

    /// Every staged batch, in order: those held in memory came first.
    fn into_batches(self) -> Result<StagedBatches> {
        let memory = self.memory.into_iter().map(Ok);
        let Some(writer) = self.spill else {
            return Ok(Box::new(memory));
        };
        let mut file = writer
            .into_inner()?
            .into_inner()
            .map_err(|e| Error::Io(e.into_error()))?;
        std::io::Seek::rewind(&mut file)?;
        // The reader owns the temporary file, which is deleted once the batches are read.
        let reader = FileReader::try_new(std::io::BufReader::new(file), None)?;
        Ok(Box::new(
            memory.chain(reader.map(|b| b.map_err(Error::from))),
        ))
    }
}

/// The rows of a staged batch per file of `plan` (files in order, those with rows only),
/// each in the batch's order; suppressed rows are left out.
fn split_by_file(
    batch: &RecordBatch,
    plan: &policies::FilePlan,
) -> Result<Vec<(usize, RecordBatch)>> {
    let classes = staged_classes(batch)?;
    let mut rows_of: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (row, &class) in classes.values().iter().enumerate() {
        if let Some(file) = plan.file_of(class) {
            rows_of.entry(file).or_default().push(row as u32);
        }
    }
    rows_of
        .into_iter()
        .map(|(file, rows)| {
            let rows = arrow::compute::take_record_batch(batch, &UInt32Array::from(rows))?;
            Ok((file as usize, rows))
        })
        .collect()
}

/// One curated Parquet file being written. Each row group's columns are encoded in
/// parallel (rayon, off the async runtime), then appended and streamed to the store:
/// encoding and compressing is the costly part of writing, and columns are independent.
/// Columns differ a lot in size (a keyed hash takes 64 bytes a row, a gender one), so one
/// row group alone leaves cores idle while its largest column finishes: the next row group
/// is encoded meanwhile, and row groups are appended in order.
struct PartWriter {
    path: Path,
    schema: arrow::datatypes::SchemaRef,
    file: parquet::file::writer::SerializedFileWriter<Vec<u8>>,
    factory: parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory,
    out: ObjectWriter,
    /// Rows handed to the file, encoded or still encoding.
    rows: usize,
    /// Row groups handed to the file, encoded or still encoding.
    row_groups: usize,
    /// Row groups being encoded, oldest first.
    encoding: std::collections::VecDeque<EncodingRowGroup>,
}

type EncodingRowGroup = tokio::task::JoinHandle<
    parquet::errors::Result<Vec<parquet::arrow::arrow_writer::ArrowColumnChunk>>,
>;

/// Row groups encoded at once: enough to fill both cores between the largest column of
/// one and the next, while memory holds at most this many row groups of output.
const ROW_GROUPS_IN_FLIGHT: usize = 2;

impl PartWriter {
    fn new(
        ctx: &ReleaseContext,
        path: Path,
        schema: &arrow::datatypes::SchemaRef,
        props: &WriterProperties,
    ) -> Result<Self> {
        // `ArrowWriter` sets up the file as usual (Arrow schema in the footer metadata);
        // its lower-level halves then let columns be encoded separately.
        let (file, factory) =
            parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone()))?
                .into_serialized_writer()?;
        Ok(Self {
            out: ObjectWriter::new(ctx.curated.store.clone(), path.clone()),
            path,
            schema: schema.clone(),
            file,
            factory,
            rows: 0,
            row_groups: 0,
            encoding: std::collections::VecDeque::new(),
        })
    }

    /// Starts encoding a row group; appends the oldest ones once enough are in flight.
    async fn write_row_group(&mut self, batches: Vec<RecordBatch>) -> Result<()> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let writers = self.factory.create_column_writers(self.row_groups)?;
        let schema = self.schema.clone();
        self.encoding
            .push_back(tokio::task::spawn_blocking(move || {
                // Flat schema: one leaf, hence one writer, per field.
                let mut columns: Vec<_> = writers
                    .into_iter()
                    .zip(schema.fields().to_vec())
                    .enumerate()
                    .collect();
                // Largest first, each column a task of its own: started last, the keyed
                // hash column of the final row group kept one core compressing alone for
                // about 100 ms after the other had finished everything else.
                columns.sort_by_cached_key(|(i, _)| {
                    std::cmp::Reverse(
                        batches
                            .iter()
                            .map(|b| b.column(*i).get_buffer_memory_size())
                            .sum::<usize>(),
                    )
                });
                let mut chunks = columns
                    .into_par_iter()
                    .with_max_len(1)
                    .map(|(i, (mut writer, field))| {
                        for batch in &batches {
                            for leaf in parquet::arrow::arrow_writer::compute_leaves(
                                &field,
                                batch.column(i),
                            )? {
                                writer.write(&leaf)?;
                            }
                        }
                        writer.close().map(|chunk| (i, chunk))
                    })
                    .collect::<parquet::errors::Result<Vec<_>>>()?;
                // Chunks are appended in schema order.
                chunks.sort_by_key(|(i, _)| *i);
                Ok(chunks.into_iter().map(|(_, chunk)| chunk).collect())
            }));
        self.row_groups += 1;
        self.rows += rows;
        while self.encoding.len() >= ROW_GROUPS_IN_FLIGHT {
            self.append_oldest().await?;
        }
        Ok(())
    }

    /// Waits for the oldest row group being encoded and appends it to the file.
    async fn append_oldest(&mut self) -> Result<()> {
        let Some(encoding) = self.encoding.pop_front() else {
            return Ok(());
        };
        let chunks = encoding
            .await
            .map_err(|e| Error::Task(format!("parquet encoding stopped: {e}")))??;
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.drain().await
    }

    /// Streams what the file writer has produced so far to the store.
    async fn drain(&mut self) -> Result<()> {
        self.file.flush()?;
        // Cleared, not taken: the buffer keeps its capacity for the next row group, which
        // otherwise grew it again by doubling (copying, and faulting in fresh pages).
        let bytes = self.file.inner_mut();
        tokio::io::AsyncWriteExt::write_all(&mut self.out, bytes).await?;
        bytes.clear();
        Ok(())
    }

    async fn close(mut self, ctx: &ReleaseContext) -> Result<ReleaseFile> {
        while !self.encoding.is_empty() {
            self.append_oldest().await?;
        }
        self.file.finish()?;
        self.drain().await?;
        tokio::io::AsyncWriteExt::shutdown(&mut self.out).await?;
        let head = ctx.curated.store.head(&self.path).await?;
        Ok(ReleaseFile {
            path: ctx.curated.url_of(&self.path),
            size_bytes: head.size,
            rows: self.rows as u64,
        })
    }
}

/// Copies a local file to an object store path, streaming (multipart where supported).
async fn upload_file(to: &Location, path: &Path, file: &std::path::Path) -> Result<()> {
    // Read a MiB at a time: each read of a tokio file is a hop through the blocking pool,
    // and `tokio::io::copy` asks for 8 KiB. The quarantine of 1M contacts records (10,000
    // lines) took about 27 ms to upload that way, 7-9 ms this way.
    let mut src = tokio::io::BufReader::with_capacity(1 << 20, tokio::fs::File::open(file).await?);
    let mut dst = object_store::buffered::BufWriter::new(
        to.store.clone() as Arc<dyn ObjectStore>,
        path.clone(),
    );
    tokio::io::copy_buf(&mut src, &mut dst).await?;
    tokio::io::AsyncWriteExt::shutdown(&mut dst).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_from_producers_never_leak_identifiers() {
        let names: BTreeSet<String> = ["extra", "ana.ruiz@example.com", "4155550134", "utm_source"]
            .map(String::from)
            .into();
        assert_eq!(
            publishable_field_names(&names),
            [
                "extra",
                "utm_source",
                "(2 field names withheld: not plain identifiers)"
            ]
        );
    }

    #[test]
    fn a_character_split_across_two_lines_rejects_both_though_their_span_is_utf8() {
        let policy = policies::Policy::default_v2().expect("policy");
        let rules = policy.dataset("contacts").expect("contacts");
        let hasher = KeyedHasher::new(b"unit-test-key-0123456789").expect("key");
        let index = FieldIndex::new(rules);
        let record = |email: &str, name: &str| {
            format!(
                r#"{{"event_id":"e-1","submitted_at":"2026-11-24T12:00:00Z","email":"{email}","phone":"+1 415 555 0134","ip":"203.0.113.9","zip":"94110","age":34,"gender":"F","country":"US","source":"web","interest":"x","lead_score":1,"name":"{name}"}}"#
            )
            .into_bytes()
        };
        // Line 2 ends with the first byte of `é` (C3 A9) and line 3 starts with the second:
        // back to back in the chunk their span is valid UTF-8, but neither line is.
        let mut second = record("b@example.com", "x");
        second.push(0xC3);
        let mut third = vec![0xA9];
        third.extend(record("c@example.com", "x"));
        let (mut text, mut lines) = (Vec::new(), Vec::new());
        for (n, line) in [
            record("a@example.com", "Ana"),
            second,
            third,
            record("d@example.com", "Zoë"),
        ]
        .into_iter()
        .enumerate()
        {
            let start = text.len();
            text.extend(line);
            lines.push(Line {
                number: n as u64 + 1,
                item: Item::Json(start..text.len()),
            });
        }
        assert!(std::str::from_utf8(&text).is_ok(), "the span is UTF-8");
        let out = transform_lines(
            rules,
            &hasher,
            None,
            &index,
            &PriorLedger::default(),
            &text,
            &lines,
        )
        .expect("transform");
        let rejected: Vec<(usize, &str)> = out
            .rejected
            .iter()
            .map(|(i, (_, reason))| (*i, reason.as_str()))
            .collect();
        assert_eq!(rejected, [(1, "invalid UTF-8"), (2, "invalid UTF-8")]);
        assert_eq!(out.staged.batch.num_rows(), 2, "lines 1 and 4 are staged");
    }
}
