//! Pass 1 of a release: every raw record read, parsed and transformed under the policy,
//! counted in the quasi-identifier histogram and staged ([`staging`]); what cannot be
//! read or transformed is quarantined with its reason.

pub mod staging;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufWriter;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use futures::TryStreamExt;
use object_store::GetResultPayload;
use policies::batch::staged_schema;
use policies::{BatchBuilder, DatasetRules, KeyedHasher, QiHistogram, Rejection, Value};
use rayon::prelude::*;
use tokio_util::io::{StreamReader, SyncIoBridge};

use self::staging::{CLASS_COLUMN, StagedRows};
use crate::context::{ByteCounter, ReleaseContext};
use crate::ledger::{AdmittedRecords, PriorLedger, RecordLedger};
use crate::sinks::quarantine::QuarantineLog;
use crate::sources::RawObject;
use crate::sources::decode::{self, Chunk, ChunkPool, Item, Line, Quarantined};
use crate::sources::json_record::{FieldIndex, RecordParser};
use crate::{Error, Result};
use catalog::layout::{self};

/// Lines handed to the parallel parser at once.
pub(crate) const READ_CHUNK: usize = 16 * 1024;
/// Lines per parallel task.
pub(crate) const TASK_LINES: usize = 2048;

/// What pass 1 leaves behind.
pub(crate) struct Staged {
    pub(crate) histogram: QiHistogram,
    /// The fingerprints of the records admitted: the earlier releases' filter (about 300
    /// MiB at a million records a day over 90 days) and the set's lookups are done with.
    pub(crate) admitted: AdmittedRecords,
    /// Records skipped as already released or repeated.
    pub(crate) already_released: u64,
    /// What the record ledger held at the end of pass 1, its own fingerprint set and the
    /// earlier releases' filter (for the log).
    pub(crate) pass1_ledger_bytes: usize,
    pub(crate) rows: StagedRows,
    pub(crate) quarantine: tempfile::NamedTempFile,
    pub(crate) quarantine_reasons: BTreeMap<String, u64>,
    pub(crate) unknown_fields: BTreeSet<String>,
}

/// A `Read` that reports how many bytes passed through it.
pub(crate) struct Counting<R> {
    inner: R,
    on_bytes: Option<ByteCounter>,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Failing to fetch the bytes is told apart from failing to decode them (see
        // [`decode::StoreReadError`]).
        let n = self
            .inner
            .read(buf)
            .map_err(|e| std::io::Error::new(e.kind(), decode::StoreReadError(e)))?;
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
pub(crate) fn pass1(
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
                    // Added up once a batch: the histogram's and the ledger's part decide
                    // whether the staged rows give their memory back, then the check.
                    let mut used = held(&histogram, ledger.heap_bytes(), &rows);
                    used.bytes -= rows.yield_memory(used.bytes - rows.memory_bytes())?;
                    ctx.memory.check("pass 1", used)?;
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
        already_released: ledger.skipped,
        pass1_ledger_bytes: ledger.heap_bytes(),
        admitted: ledger.into_admitted()?,
        rows,
        quarantine,
        quarantine_reasons,
        unknown_fields,
    })
}

/// What a release holds between batches of pass 1 and until its decision: the histogram,
/// the record ledger and the staged rows in memory.
/// `ledger_bytes` is what the record ledger holds ([`RecordLedger::heap_bytes`], then the
/// admitted records').
pub(crate) fn held(
    histogram: &QiHistogram,
    ledger_bytes: usize,
    rows: &StagedRows,
) -> crate::memory::MemoryUse {
    crate::memory::MemoryUse {
        bytes: histogram.heap_bytes() + ledger_bytes + rows.memory_bytes(),
        records: histogram.records(),
        base_classes: histogram.base_classes(),
        subjects: histogram.subjects(),
    }
}

/// The reading stage of pass 1: decodes every object and sends its lines, in chunks, to
/// the transform thread. Records the reader itself rejects (oversized, not UTF-8, broken
/// compression) are quarantined here.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_all(
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
        // The version the plan listed (and the ledger will record): an object rewritten
        // since fails the read, and the next plan takes the new version as a new input.
        let get = handle.block_on(ctx.raw.store.get_opts(
            &object.path,
            object_store::GetOptions {
                if_match: object.e_tag.clone(),
                ..Default::default()
            },
        ))?;
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
        let mut reader = match decode::decoder(Box::new(counted), compression) {
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
        decode::read_object(
            reader.as_mut(),
            format,
            object_index as u32,
            &object.url,
            &rules.inputs,
            ctx.csv_delimiter(&rules.name),
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
pub(crate) fn transform_all(
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
            for (line_index, rejection) in out.rejected {
                let line = &chunk.lines[part * TASK_LINES + line_index];
                let raw = chunk.raw(line).to_vec();
                rejected_records.record(&Quarantined {
                    object: objects[chunk.object as usize].url.clone(),
                    line: line.number,
                    reason: rejection.reason,
                    field: rejection.field,
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
pub(crate) fn utf8_span<'t>(text: &'t [u8], lines: &[Line]) -> Option<(usize, &'t str)> {
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
pub(crate) type Screened = (policies::StagedBatch, Vec<bool>);

pub(crate) struct ChunkOut {
    staged: policies::StagedBatch,
    /// Per record: released before (empty when there were no earlier releases).
    released_before: Vec<bool>,
    /// (index into the chunk's lines, (field, reason)).
    rejected: Vec<(usize, Rejection)>,
    unknown: BTreeSet<String>,
}

/// Parses and transforms a slice of lines (runs on a rayon worker).
pub(crate) fn transform_lines(
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
                .and_then(|()| builder.push(&slots))
            }
            Item::Fields { values, .. } => {
                slots.clear();
                slots.extend(
                    values
                        .iter()
                        .map(|v| v.as_deref().map_or(Value::Null, |s| Value::Str(s.into()))),
                );
                builder.push(&slots)
            }
        };
        if let Err(rejection) = result {
            rejected.push((i, rejection));
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

#[cfg(test)]
mod tests {
    use super::*;

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
            .map(|(i, rejection)| (*i, rejection.reason.as_str()))
            .collect();
        assert_eq!(rejected, [(1, "invalid UTF-8"), (2, "invalid UTF-8")]);
        assert_eq!(out.staged.batch.num_rows(), 2, "lines 1 and 4 are staged");
    }
}
