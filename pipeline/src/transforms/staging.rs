//! The transformed rows of a release between its passes.

use std::collections::BTreeMap;
use std::io::BufWriter;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;

use crate::{Error, Result};

/// The column staged beside each record's outputs: its base class.
pub(crate) const CLASS_COLUMN: &str = "__stackpro_class";

/// The transformed rows of a release between its passes, each with its base class: in
/// memory up to a budget, the rest in a local Arrow IPC spill file. Memory stays bounded
/// whatever the size of the release, and a release that fits makes no local I/O.
pub(crate) struct StagedRows {
    schema: arrow::datatypes::SchemaRef,
    budget: usize,
    memory: Vec<RecordBatch>,
    memory_bytes: usize,
    /// An anonymous temporary file (deleted when closed): one file handle each, as a
    /// release of many files holds one per file while its rows are routed.
    spill: Option<FileWriter<BufWriter<std::fs::File>>>,
}

/// Staged batches in the order they were staged.
pub(crate) type StagedBatches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

impl StagedRows {
    pub(crate) fn new(schema: arrow::datatypes::SchemaRef, budget: usize) -> Self {
        Self {
            schema,
            budget,
            memory: Vec::new(),
            memory_bytes: 0,
            spill: None,
        }
    }

    pub(crate) fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let in_memory = self.spill.is_none()
            && self.memory_bytes + batch.get_array_memory_size() <= self.budget;
        self.push_to(batch, in_memory)
    }

    /// Adds a batch to memory or to the spill file, as the caller's budget says.
    pub(crate) fn push_to(&mut self, batch: RecordBatch, in_memory: bool) -> Result<()> {
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

    /// Gives the staged rows' memory back once the release's other structures (the
    /// histogram and the record ledger, `others` bytes) have outgrown the staging budget
    /// while rows already spill: the batches held in memory go to the spill file, and the
    /// rows staged later follow them. A large release then holds its histogram and ledger
    /// at its peak, not a budget of rows as well (at 20M `contacts` records, 255 MiB of
    /// 1.3 GiB, for 255 MiB more of the spill's several GB of writes); a release whose
    /// rows fit, or a middling one, keeps them. The spill file then holds the batches out
    /// of their staging order, which nothing depends on (pass 2 orders each file's rows by
    /// a keyed hash); it is the same order for the same input and configuration.
    /// Returns the bytes given back.
    pub(crate) fn yield_memory(&mut self, others: usize) -> Result<usize> {
        let Some(writer) = &mut self.spill else {
            return Ok(0);
        };
        if self.memory.is_empty() || others < self.budget {
            return Ok(0);
        }
        let batches = self.memory.len();
        for batch in self.memory.drain(..) {
            writer.write(&batch)?;
        }
        tracing::debug!(
            batches,
            bytes = self.memory_bytes,
            others,
            "staged rows in memory moved to the spill file"
        );
        self.memory.shrink_to_fit();
        Ok(std::mem::take(&mut self.memory_bytes))
    }

    /// Completes the spill file, if any.
    pub(crate) fn finish(&mut self) -> Result<()> {
        if let Some(writer) = &mut self.spill {
            writer.finish()?;
        }
        Ok(())
    }

    /// Bytes of the rows held in memory.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    /// Whether some rows went to the spill file.
    pub(crate) fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    /// The published rows of each file of `plan`, in the plan's order; suppressed rows
    /// are left out. Routed rows stay in memory while they and the staged rows not yet
    /// routed fit the budget together, and spill to a file per part past it (one open
    /// file per part: a release of thousands of files needs as many file handles).
    pub(crate) fn route(self, plan: &policies::FilePlan) -> Result<Vec<StagedRows>> {
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
    pub(crate) fn into_batches(self) -> Result<StagedBatches> {
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
pub(crate) fn split_by_file(
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

/// The base class of each staged row (the column pass 1 stored beside the outputs).
pub(crate) fn staged_classes(staged: &RecordBatch) -> Result<&UInt32Array> {
    staged
        .column_by_name(CLASS_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
        .ok_or_else(|| Error::Invariant("staged rows lost their class column".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(schema: &arrow::datatypes::SchemaRef, from: i64) -> RecordBatch {
        let values: Vec<i64> = (from..from + 100).collect();
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))])
            .expect("batch")
    }

    fn values(rows: StagedRows) -> Vec<i64> {
        let mut out: Vec<i64> = rows
            .into_batches()
            .expect("batches")
            .flat_map(|b| {
                let b = b.expect("batch");
                let column = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("i64");
                column.values().to_vec()
            })
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn staged_rows_give_their_memory_back_only_to_a_large_release_that_spills() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let one = batch(&schema, 0).get_array_memory_size();
        let mut rows = StagedRows::new(schema.clone(), 3 * one);
        for i in 0..3 {
            rows.push(batch(&schema, i * 100)).expect("push");
        }
        assert_eq!(
            rows.yield_memory(usize::MAX).expect("nothing spills yet"),
            0
        );
        assert_eq!(
            rows.memory_bytes(),
            3 * one,
            "rows that fit keep their memory"
        );
        rows.push(batch(&schema, 300)).expect("push");
        assert!(rows.spilled());
        assert_eq!(rows.yield_memory(3 * one - 1).expect("small others"), 0);
        assert_eq!(
            rows.memory_bytes(),
            3 * one,
            "the histogram is still smaller"
        );
        assert_eq!(
            rows.yield_memory(3 * one).expect("yield"),
            3 * one,
            "given back"
        );
        assert_eq!(rows.memory_bytes(), 0);
        rows.push(batch(&schema, 400)).expect("push");
        assert_eq!(rows.memory_bytes(), 0, "later rows spill too");
        rows.finish().expect("finish");
        assert_eq!(
            values(rows),
            (0..500).collect::<Vec<i64>>(),
            "every row, once"
        );
    }
}
