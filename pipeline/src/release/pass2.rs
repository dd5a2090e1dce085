//! Pass 2 of a release: the staged rows back, generalized under the decision, suppressed
//! rows left out, each file's rows in their keyed order, written as Parquet parts.

use std::sync::Arc;

use arrow::array::RecordBatch;
use catalog::ReleaseFile;
use object_store::path::Path;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use policies::{DatasetRules, ReleaseReport};
use rayon::prelude::*;

use crate::context::ReleaseContext;
use crate::sinks::parquet::{PartWriter, meta};
use crate::transforms::staging::{StagedRows, staged_classes};
use crate::{Error, Result};
use catalog::layout::{self};

pub(crate) const ROW_GROUP_ROWS: usize = 256 * 1024;

pub(crate) async fn pass2(
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
pub(crate) const RELEASE_TASK_ROWS: usize = 16 * 1024;

/// The published rows of a file's staged batches in the order they are written: by
/// their keys (`policies::release_order_keys`), sorted. The whole file is ordered, not
/// each batch: batches follow the objects.
pub(crate) fn file_order(
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

/// One curated file of a release (`part-00000.parquet`, …) as its rows arrive, in row
/// groups of `ROW_GROUP_ROWS` rows. No file is made for no rows.
pub(crate) struct Part<'a> {
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
