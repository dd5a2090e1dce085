//! Curated Parquet: the metadata every file carries and the writer that encodes row
//! groups on all cores and streams them to the store.

use arrow::array::RecordBatch;
use catalog::ReleaseFile;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter as ObjectWriter;
use object_store::path::Path;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

use crate::context::ReleaseContext;
use crate::{Error, Result};

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

/// One curated Parquet file being written. Each row group's columns are encoded in
/// parallel (rayon, off the async runtime), then appended and streamed to the store:
/// encoding and compressing is the costly part of writing, and columns are independent.
/// Columns differ a lot in size (a keyed hash takes 64 bytes a row, a gender one), so one
/// row group alone leaves cores idle while its largest column finishes: the next row group
/// is encoded meanwhile, and row groups are appended in order.
pub(crate) struct PartWriter {
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

pub(crate) type EncodingRowGroup = tokio::task::JoinHandle<
    parquet::errors::Result<Vec<parquet::arrow::arrow_writer::ArrowColumnChunk>>,
>;

/// Row groups encoded at once: enough to fill both cores between the largest column of
/// one and the next, while memory holds at most this many row groups of output.
pub(crate) const ROW_GROUPS_IN_FLIGHT: usize = 2;

impl PartWriter {
    pub(crate) fn new(
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
    pub(crate) async fn write_row_group(&mut self, batches: Vec<RecordBatch>) -> Result<()> {
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
    pub(crate) async fn append_oldest(&mut self) -> Result<()> {
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
    pub(crate) async fn drain(&mut self) -> Result<()> {
        self.file.flush()?;
        // Cleared, not taken: the buffer keeps its capacity for the next row group, which
        // otherwise grew it again by doubling (copying, and faulting in fresh pages).
        let bytes = self.file.inner_mut();
        tokio::io::AsyncWriteExt::write_all(&mut self.out, bytes).await?;
        bytes.clear();
        Ok(())
    }

    pub(crate) async fn close(mut self, ctx: &ReleaseContext) -> Result<ReleaseFile> {
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
