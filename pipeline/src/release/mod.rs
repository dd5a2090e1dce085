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

mod pass2;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::datatypes::DataType;
use catalog::{Column, ColumnType, RawObjectRef, Release, TableSchema};
use object_store::ObjectStoreExt;
use policies::report::{ReleaseFacts, ReportFile};
use policies::{DatasetRules, Outcome, Policy, ReleaseReport};
use sha2::{Digest, Sha256};

use self::pass2::pass2;
use crate::Result;
use crate::context::ReleaseContext;
use crate::ledger::RecordLedger;
use crate::sinks::quarantine::upload_file;
use crate::sources::RawObject;
use crate::transforms::pass1;
use catalog::layout::{self, PartitionKey};
use catalog::storage::Location;

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
    manifests: &[RawObject],
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
    let mut inputs: Vec<(String, u64)> = objects
        .iter()
        .chain(manifests)
        .map(|o| (o.ledger_key(), o.size))
        .collect();
    inputs.sort_unstable();
    for (key, size) in inputs {
        h.update(key.as_bytes());
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

/// Computes and writes one release (files, report and record ledger), without publishing
/// it. `ledger` holds the records already released for the partition's tenant and
/// dataset ([`RecordLedger::load`]): those are skipped.
pub async fn prepare(
    ctx: &ReleaseContext,
    partition: &PartitionKey,
    objects: Vec<RawObject>,
    manifests: Vec<RawObject>,
    ledger: RecordLedger,
) -> Result<Prepared> {
    let rules = ctx.policy.dataset(&partition.dataset)?.clone();
    let id = release_id(
        &ctx.policy,
        ctx.hasher.key_id(),
        partition,
        &objects,
        &manifests,
    );
    let table = table_schema(&ctx.policy, &rules, &ctx.curated);
    let pseudonyms = ctx.hasher.release_pseudonyms(&id);

    let started = std::time::Instant::now();
    let mut staged = {
        let ctx = ctx.clone();
        let rules = rules.clone();
        let objects = objects.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || pass1(&ctx, &rules, &objects, ledger, &handle))
            .await??
    };
    let (already_released, admitted) = (
        staged.already_released,
        std::mem::take(&mut staged.admitted),
    );
    let decision_bytes = staged
        .histogram
        .decision_bytes(policies::kanon::decision_threads());
    tracing::debug!(
        partition = %partition,
        histogram_mib = staged.histogram.heap_bytes() >> 20,
        histogram_parts = %staged.histogram.heap_parts().iter().map(|(name, b)| format!("{name}={}", b >> 20)).collect::<Vec<_>>().join(" "),
        subjects = staged.histogram.subjects(),
        ledger_mib = staged.pass1_ledger_bytes >> 20,
        staged_in_memory_mib = staged.rows.memory_bytes() >> 20,
        decision_mib = decision_bytes >> 20,
        peak_rss_mib = crate::memory::peak_rss_mib(),
        "pass 1 memory"
    );
    // The class table and value dictionaries only served pass 1's lookups.
    staged.histogram.seal();
    // Before the decision allocates: a release too large for its memory stops here, with
    // its figures, rather than being killed in the search.
    let mut held = crate::transforms::held(&staged.histogram, admitted.heap_bytes(), &staged.rows);
    held.bytes += decision_bytes;
    ctx.memory.check("the decision", held)?;
    let pass1_done = std::time::Instant::now();
    let decision = staged
        .histogram
        .decide(ctx.policy.k, ctx.policy.max_suppression)?;
    tracing::info!(
        partition = %partition, release = %id, records = decision.records, outcome = ?decision.outcome,
        node = %policies::report::node_label(&rules, &decision.node), suppressed = decision.suppressed_records,
        base_classes = staged.histogram.base_classes(), nodes_evaluated = decision.nodes_evaluated,
        spilled = staged.rows.spilled(), memory_estimate_mib = held.bytes >> 20,
        pass1_ms = (pass1_done - started).as_millis() as u64,
        decide_ms = pass1_done.elapsed().as_millis() as u64,
        floor = ?decision.floor, search_classes = decision.search_classes,
        peak_rss_mib = crate::memory::peak_rss_mib(),
        decide_phases = %decision.phases.iter().map(|(name, d)| format!("{name}={}", d.as_millis())).collect::<Vec<_>>().join(" "),
        "release decided"
    );
    // The decision holds what pass 2 needs of the histogram (at 20M records, 3.3M base
    // classes, the histogram is 512 MiB more).
    drop(staged.histogram);

    let facts = ReleaseFacts {
        release_id: id.clone(),
        tenant: partition.tenant.clone(),
        dt: partition.dt.clone(),
        key_id: ctx.hasher.key_id().to_string(),
        pseudonym_key_id: pseudonyms.key_id().to_string(),
        already_released,
        quarantine_reasons: staged.quarantine_reasons.clone(),
        unknown_fields: publishable_field_names(&staged.unknown_fields),
        // Relative to the raw root: the operator's folder names are no buyer's business.
        inputs: objects
            .iter()
            .chain(&manifests)
            .map(|o| o.path.to_string())
            .collect(),
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
    // Sorted beside pass 2: on the critical path it cost a 1M release about 60 ms.
    let ledger_file = tokio::task::spawn_blocking(move || admitted.sort());
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
    let sorted = ledger_file
        .await
        .map_err(|e| crate::Error::Task(format!("sorting the record ledger stopped: {e}")))??;
    // Into memory only now that pass 2 has freed its own (16 bytes a record).
    let ledger_file = tokio::task::spawn_blocking(move || sorted.into_file())
        .await
        .map_err(|e| crate::Error::Task(format!("reading the record ledger stopped: {e}")))??;
    RecordLedger::put_file(&ctx.curated, partition, &id, ledger_file).await?;
    tracing::info!(
        partition = %partition, release = %id,
        pass2_ms = pass2_started.elapsed().as_millis() as u64,
        files = files.len(), peak_rss_mib = crate::memory::peak_rss_mib(),
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
            .chain(&manifests)
            .map(|o| RawObjectRef {
                key: o.ledger_key(),
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
pub(crate) fn publishable_field_names(names: &BTreeSet<String>) -> Vec<String> {
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
}
