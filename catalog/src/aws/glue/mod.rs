//! [`DataCatalog`] on AWS: Glue holds what query engines read (one table per dataset, one
//! per (dataset, tenant) for Lake Formation tags, a partition per release); DynamoDB holds
//! what must be transactional (release metadata and the raw-object ledger).
//!
//! # Publishing
//!
//! Glue has no transactions or conditional writes, so it cannot keep "a raw object is
//! released at most once" under concurrent workers. The commit point is one DynamoDB
//! `TransactWriteItems`: the release item and one ledger item per input, each conditional
//! on not existing yet, plus a *pending* marker. Only then are the Glue partitions created
//! and the tenant table tagged, and the marker deleted. Athena and Spark therefore never
//! see an uncommitted release; a crash between commit and Glue leaves a marker that
//! [`DataCatalog::reconcile`] (run by every worker at start) completes.
//!
//! A transaction holds at most 100 items, so a release consumes at most
//! [`GlueCatalog::MAX_INPUTS`] raw objects; the worker splits larger partitions.
//!
//! # DynamoDB items (hash key `pk`, range key `sk`)
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | release | `release` | release id | `json` (the [`Release`]), `dataset`, `tenant`, `dt` |
//! | ledger row | `object#{ledger key}` (the raw URL, `#etag=…` appended when known) (`object#sha256:{hex}` past 1,500 bytes) | `ledger` | `key`, `release_id`, `size`, `e_tag` |
//! | pending projection | `pending` | release id | — |

mod ledger;
mod provision;
mod tables;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};

use self::tables::{
    KIND_DATASET, P_PREFIX, owned_parameters, same_table, table_input, table_schema,
};
use super::dynamodb::s;
use super::lake_formation::LakeFormation;
use super::sdk_error;
use crate::aws_settings::AwsSettings;
use crate::data_catalog::DataCatalog;
use crate::error::{Error, Result};
use crate::model::{PublishOutcome, Release, ReleaseFilter, TableSchema};

pub(super) const GLUE: &str = "glue";
pub(super) const DYNAMODB: &str = "dynamodb";

/// Glue + Lake Formation + DynamoDB catalog.
#[derive(Debug)]
pub struct GlueCatalog {
    pub(super) glue: aws_sdk_glue::Client,
    pub(super) ddb: aws_sdk_dynamodb::Client,
    pub(super) lf: LakeFormation,
    pub(super) database: String,
    pub(super) ledger_table: String,
}

impl GlueCatalog {
    /// Most raw objects one release may consume (a transaction holds 100 items: these, the
    /// release item and the pending marker).
    pub const MAX_INPUTS: usize = 98;

    /// A catalog over existing resources (see [`GlueCatalog::ensure_resources`]).
    #[must_use]
    pub fn new(sdk: &SdkConfig, settings: &AwsSettings) -> Self {
        Self {
            glue: aws_sdk_glue::Client::new(sdk),
            ddb: aws_sdk_dynamodb::Client::new(sdk),
            lf: LakeFormation::new(aws_sdk_lakeformation::Client::new(sdk)),
            database: settings.glue_database.clone(),
            ledger_table: settings.catalog_table.clone(),
        }
    }

    /// The Glue database name.
    #[must_use]
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The Lake Formation side (tags and grants).
    #[must_use]
    pub fn lake_formation(&self) -> &LakeFormation {
        &self.lf
    }

    /// The Glue table holding `tenant`'s releases of `dataset`: lowercase (Glue lowercases
    /// names), with characters other than letters and digits as `_`.
    #[must_use]
    pub fn tenant_table_name(dataset: &str, tenant: &str) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!("{}__{}", clean(dataset), clean(tenant))
    }
}

#[async_trait]
impl DataCatalog for GlueCatalog {
    async fn upsert_table(&self, schema: &TableSchema) -> Result<()> {
        schema.validate()?;
        if schema.dataset != schema.dataset.to_ascii_lowercase() || schema.dataset.contains("__") {
            return Err(Error::Invalid(format!(
                "dataset {:?}: Glue table names are lowercase, and `__` is reserved for tenant tables",
                schema.dataset
            )));
        }
        if let Some((k, _)) = schema
            .parameters
            .iter()
            .find(|(k, _)| k.starts_with(P_PREFIX))
        {
            return Err(Error::Invalid(format!(
                "table parameter {k:?}: the `{P_PREFIX}` prefix is reserved"
            )));
        }
        let mut parameters: HashMap<String, String> = schema
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        parameters.extend(owned_parameters(schema, KIND_DATASET));
        let input = table_input(
            &schema.dataset,
            &schema.columns,
            &schema.partition_keys,
            &schema.location,
            parameters,
        )?;
        let existing = self.glue_table(&schema.dataset).await?;
        // Every release upserts its table: write only on change, since each UpdateTable
        // adds a table version and Glue caps versions per table.
        if existing.as_ref().is_some_and(|t| same_table(t, &input)) {
            return Ok(());
        }
        self.put_glue_table(input, existing.is_some()).await?;
        if existing.is_none() {
            let dataset = BTreeMap::from([("dataset".to_owned(), schema.dataset.clone())]);
            self.lf
                .ensure_tag("dataset", std::slice::from_ref(&schema.dataset))
                .await?;
            self.lf
                .tag_table(&self.database, &schema.dataset, &dataset)
                .await?;
        }
        Ok(())
    }

    async fn table(&self, dataset: &str) -> Result<Option<TableSchema>> {
        if dataset.is_empty() || dataset.contains('/') {
            return Ok(None);
        }
        match self.glue_table(dataset).await? {
            Some(t) => table_schema(&t),
            None => Ok(None),
        }
    }

    async fn tables(&self) -> Result<Vec<TableSchema>> {
        let mut all = Vec::new();
        for t in self.glue_tables().await? {
            if let Some(schema) = table_schema(&t)? {
                all.push(schema);
            }
        }
        all.sort_by(|a, b| a.dataset.cmp(&b.dataset));
        Ok(all)
    }

    async fn publish_release(&self, release: &Release) -> Result<PublishOutcome> {
        release.validate()?;
        if release.inputs.len() > Self::MAX_INPUTS {
            return Err(Error::Invalid(format!(
                "release {}: {} inputs; one release may consume at most {} raw objects on AWS",
                release.release_id,
                release.inputs.len(),
                Self::MAX_INPUTS
            )));
        }
        for n in [
            release.records_in,
            release.records_out,
            release.suppressed,
            release.quarantined,
            release.k_anon_violations,
        ] {
            if i64::try_from(n).is_err() {
                return Err(Error::Invalid(format!(
                    "release {}: count {n} is out of range",
                    release.release_id
                )));
            }
        }
        if self.release(&release.release_id).await?.is_some() {
            // Committed earlier; finish its projection if that was interrupted.
            if self.has_pending_marker(&release.release_id).await? {
                self.project_after_commit(release, None).await;
            }
            return Ok(PublishOutcome::AlreadyPublished);
        }
        let Some(schema) = self.table(&release.dataset).await? else {
            return Err(Error::Invalid(format!(
                "release {}: dataset {} has no table",
                release.release_id, release.dataset
            )));
        };
        // Before the commit, so that what can fail for good (a tenant table name taken by
        // another tenant, tag limits) fails with nothing published. An empty tenant table
        // shows no rows.
        let tenant_table = self.ensure_tenant_table(&schema, release).await?;

        let put = |item: HashMap<String, AttributeValue>, condition: Option<&str>| {
            Put::builder()
                .table_name(&self.ledger_table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| Error::Invalid(e.to_string()))
        };
        let mut items = vec![
            put(
                Self::release_item(release)?,
                Some("attribute_not_exists(pk)"),
            )?,
            put(Self::item_key("pending", &release.release_id), None)?,
        ];
        for input in &release.inputs {
            let mut item = Self::item_key(&Self::ledger_pk(&input.key), "ledger");
            item.insert("key".into(), AttributeValue::S(input.key.clone()));
            item.insert(
                "release_id".into(),
                AttributeValue::S(release.release_id.clone()),
            );
            item.insert("size".into(), AttributeValue::N(input.size.to_string()));
            if let Some(tag) = &input.e_tag {
                item.insert("e_tag".into(), AttributeValue::S(tag.clone()));
            }
            items.push(put(item, Some("attribute_not_exists(pk)"))?);
        }
        // The token makes an SDK retry of a transaction that did commit a no-op success.
        let token = {
            use sha2::Digest;
            let digest = hex::encode(sha2::Sha256::digest(release.release_id.as_bytes()));
            digest[..36].to_owned()
        };
        let committed = self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(token)
            .send()
            .await;
        if let Err(e) = committed {
            let condition_failed = e.as_service_error().is_some_and(|se| match se {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let reasons = c.cancellation_reasons();
                    // moto may omit the reasons; the re-reads below then decide.
                    reasons.is_empty()
                        || reasons
                            .iter()
                            .any(|r| r.code() == Some("ConditionalCheckFailed"))
                }
                _ => false,
            });
            if !condition_failed {
                // Throttling, a transaction conflict, validation: not a ledger conflict.
                return Err(sdk_error(DYNAMODB, "TransactWriteItems", e));
            }
            // A condition failed: the release itself (published concurrently) or an input.
            if self.release(&release.release_id).await?.is_some() {
                return Ok(PublishOutcome::AlreadyPublished);
            }
            let keys: Vec<String> = release.inputs.iter().map(|i| i.key.clone()).collect();
            let taken = self.released_objects(&keys).await?;
            let mut taken: Vec<String> = taken
                .into_iter()
                .map(|(k, r)| format!("{k} (release {r})"))
                .collect();
            taken.sort();
            return Err(Error::Conflict(format!(
                "release {}: inputs already released: {}",
                release.release_id,
                taken.join(", ")
            )));
        }
        self.project_after_commit(release, Some((&schema, &tenant_table)))
            .await;
        Ok(PublishOutcome::Published)
    }

    async fn release(&self, release_id: &str) -> Result<Option<Release>> {
        if release_id.is_empty() {
            return Ok(None);
        }
        let out = self
            .ddb
            .get_item()
            .table_name(&self.ledger_table)
            .set_key(Some(Self::item_key("release", release_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(DYNAMODB, "GetItem", e))?;
        out.item().map(Self::decode_release).transpose()
    }

    async fn releases(&self, filter: &ReleaseFilter) -> Result<Vec<Release>> {
        let mut all = Vec::new();
        for item in self.query_partition("release").await? {
            let matches = |attr: &str, want: &Option<String>| {
                want.as_ref()
                    .is_none_or(|w| matches!(item.get(attr), Some(AttributeValue::S(v)) if v == w))
            };
            if matches("dataset", &filter.dataset) && matches("tenant", &filter.tenant) {
                all.push(Self::decode_release(&item)?);
            }
        }
        all.sort_by(|a, b| {
            (&a.dataset, &a.tenant, &a.dt, a.published_at, &a.release_id).cmp(&(
                &b.dataset,
                &b.tenant,
                &b.dt,
                b.published_at,
                &b.release_id,
            ))
        });
        Ok(all)
    }

    async fn released_objects(&self, keys: &[String]) -> Result<HashMap<String, String>> {
        let unique: BTreeSet<&String> = keys.iter().collect();
        let unique: Vec<&String> = unique.into_iter().collect();
        let mut found = HashMap::new();
        // BatchGetItem reads at most 100 keys per call.
        for chunk in unique.chunks(100) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(
                        chunk
                            .iter()
                            .map(|k| Self::item_key(&Self::ledger_pk(k), "ledger"))
                            .collect(),
                    ))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::Invalid(e.to_string()))?,
            );
            let mut rounds = 0;
            while let Some(req) = request.take() {
                rounds += 1;
                let out = self
                    .ddb
                    .batch_get_item()
                    .request_items(&self.ledger_table, req)
                    .send()
                    .await
                    .map_err(|e| sdk_error(DYNAMODB, "BatchGetItem", e))?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.ledger_table))
                    .into_iter()
                    .flatten()
                {
                    let key = s(item, "key")?.to_owned();
                    found.insert(key, s(item, "release_id")?.to_owned());
                }
                // Unprocessed keys (throttling) are asked again, with a short back-off.
                request = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.ledger_table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
                if request.is_some() {
                    if rounds > 10 {
                        return Err(Error::Aws {
                            service: DYNAMODB,
                            message: "BatchGetItem kept returning unprocessed keys".into(),
                            retryable: true,
                            source: None,
                        });
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 << rounds.min(5))).await;
                }
            }
        }
        Ok(found)
    }

    async fn remove_release(&self, release_id: &str) -> Result<bool> {
        let Some(release) = self.release(release_id).await? else {
            return Ok(false);
        };
        // Glue first: if we stop halfway, the release is still listed and removal can be
        // retried; the reverse would leave partitions nobody knows to delete.
        let values = [
            release.tenant.clone(),
            release.dt.clone(),
            release.release_id.clone(),
        ];
        self.delete_partition(&release.dataset, &values).await?;
        let tenant_table = Self::tenant_table_name(&release.dataset, &release.tenant);
        self.delete_partition(&tenant_table, &values[1..]).await?;
        for pk in ["release", "pending"] {
            self.delete_item(pk, release_id).await?;
        }
        Ok(true)
    }

    async fn reconcile(&self) -> Result<u64> {
        let mut completed = 0;
        for item in self.query_partition("pending").await? {
            let id = s(&item, "sk")?;
            let done = match self.release(id).await? {
                Some(release) => self.project(&release).await,
                // Removed after commit: nothing to project, drop the marker.
                None => self.delete_item("pending", id).await,
            };
            match done {
                Ok(()) => completed += 1,
                // One release Glue refuses must not stop every later run: it stays pending
                // (committed, listed by `releases`, not yet in Glue) and is retried next time.
                Err(e) => tracing::error!(
                    release = %id,
                    error = %e,
                    "could not complete the Glue side of a committed release"
                ),
            }
        }
        Ok(completed)
    }

    fn max_inputs_per_release(&self) -> Option<usize> {
        Some(Self::MAX_INPUTS)
    }
}
