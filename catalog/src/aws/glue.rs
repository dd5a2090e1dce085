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
//! | ledger row | `object#{raw url}` (`object#sha256:{hex}` past 1,500 bytes) | `ledger` | `key` (the URL), `release_id`, `size`, `e_tag` |
//! | pending projection | `pending` | release id | — |

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use aws_sdk_glue::types::{
    Column as GlueColumn, DatabaseInput, PartitionInput, SerDeInfo, StorageDescriptor, Table,
    TableInput,
};

use super::dynamodb::{ensure_dynamodb_table, s};
use super::lake_formation::LakeFormation;
use super::{Change, sdk_error};
use crate::aws_settings::AwsSettings;
use crate::data_catalog::DataCatalog;
use crate::error::{Error, Result};
use crate::model::{Column, ColumnType, PublishOutcome, Release, ReleaseFilter, TableSchema};

const GLUE: &str = "glue";
const DYNAMODB: &str = "dynamodb";

const PARQUET_INPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
const PARQUET_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";

/// Table parameters the catalog owns (stripped from [`TableSchema::parameters`] on read).
const P_PREFIX: &str = "stackpro.";
const P_KIND: &str = "stackpro.kind";
const P_POLICY_ID: &str = "stackpro.policy_id";
const P_POLICY_HASH: &str = "stackpro.policy_hash";
const P_K: &str = "stackpro.k";
const P_DATASET: &str = "stackpro.dataset";
const P_TENANT: &str = "stackpro.tenant";
const P_SOURCES: &str = "stackpro.sources";
const KIND_DATASET: &str = "dataset";
const KIND_TENANT: &str = "tenant";

/// Glue + Lake Formation + DynamoDB catalog.
#[derive(Debug)]
pub struct GlueCatalog {
    glue: aws_sdk_glue::Client,
    ddb: aws_sdk_dynamodb::Client,
    lf: LakeFormation,
    database: String,
    ledger_table: String,
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

    /// Creates what the catalog needs, idempotently: the Glue database, the DynamoDB
    /// release/ledger table and the LF-tag keys. Returns each step and what it did.
    pub async fn ensure_resources(&self) -> Result<Vec<(String, Change)>> {
        let mut steps = Vec::new();
        let db = match self.glue.get_database().name(&self.database).send().await {
            Ok(_) => Change::Unchanged,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_entity_not_found_exception()) =>
            {
                let input = DatabaseInput::builder()
                    .name(&self.database)
                    .description("StackPro curated, k-anonymous datasets (one table per dataset, one per dataset and tenant)")
                    .build()
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                match self
                    .glue
                    .create_database()
                    .database_input(input)
                    .send()
                    .await
                {
                    Ok(_) => Change::Created,
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|se| se.is_already_exists_exception()) =>
                    {
                        Change::Unchanged
                    }
                    Err(e) => return Err(sdk_error(GLUE, "CreateDatabase", e)),
                }
            }
            Err(e) => return Err(sdk_error(GLUE, "GetDatabase", e)),
        };
        steps.push((format!("glue database {}", self.database), db));
        let ledger = ensure_dynamodb_table(&self.ddb, &self.ledger_table, "pk", "sk").await?;
        steps.push((format!("dynamodb table {}", self.ledger_table), ledger));
        for key in super::TAG_KEYS {
            let changed = self.lf.ensure_tag(key, &[]).await?;
            steps.push((
                format!("lake formation tag key {key}"),
                if changed {
                    Change::Created
                } else {
                    Change::Unchanged
                },
            ));
        }
        Ok(steps)
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

    /// Names of the database's tables whose LF-tags match `expression` (evaluated by us,
    /// from the tags Lake Formation stores).
    pub async fn tables_matching(
        &self,
        expression: &super::LfTagExpression,
    ) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for table in self.glue_tables().await? {
            let tags = self.lf.table_tags(&self.database, table.name()).await?;
            if expression.matches(&tags) {
                names.push(table.name().to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    async fn glue_table(&self, name: &str) -> Result<Option<Table>> {
        match self
            .glue
            .get_table()
            .database_name(&self.database)
            .name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.table().cloned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_entity_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(GLUE, "GetTable", e)),
        }
    }

    async fn glue_tables(&self) -> Result<Vec<Table>> {
        let pages = self
            .glue
            .get_tables()
            .database_name(&self.database)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error(GLUE, "GetTables", e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.table_list().iter().cloned())
            .collect())
    }

    /// Creates or updates a Glue table so it equals `input`.
    async fn put_glue_table(&self, input: TableInput, exists: bool) -> Result<()> {
        if exists {
            self.glue
                .update_table()
                .database_name(&self.database)
                .table_input(input)
                .send()
                .await
                .map_err(|e| sdk_error(GLUE, "UpdateTable", e))?;
        } else {
            match self
                .glue
                .create_table()
                .database_name(&self.database)
                .table_input(input.clone())
                .send()
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_already_exists_exception()) =>
                {
                    // Created concurrently: converge on ours.
                    self.glue
                        .update_table()
                        .database_name(&self.database)
                        .table_input(input)
                        .send()
                        .await
                        .map_err(|e| sdk_error(GLUE, "UpdateTable", e))?;
                }
                Err(e) => return Err(sdk_error(GLUE, "CreateTable", e)),
            }
        }
        Ok(())
    }

    /// Creates (or brings up to date) the tenant table of a release and tags it.
    async fn ensure_tenant_table(&self, schema: &TableSchema, release: &Release) -> Result<String> {
        let name = Self::tenant_table_name(&release.dataset, &release.tenant);
        let existing = self.glue_table(&name).await?;
        if let Some(t) = &existing {
            let params = t.parameters().cloned().unwrap_or_default();
            if params.get(P_TENANT) != Some(&release.tenant)
                || params.get(P_DATASET) != Some(&release.dataset)
            {
                return Err(Error::Conflict(format!(
                    "Glue table {name} belongs to another (dataset, tenant) whose names clean to the same table name"
                )));
            }
        }
        let mut parameters: HashMap<String, String> = schema
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        parameters.extend(owned_parameters(schema, KIND_TENANT));
        parameters.insert(P_DATASET.into(), release.dataset.clone());
        parameters.insert(P_TENANT.into(), release.tenant.clone());
        let location = format!(
            "{}/tenant={}/",
            schema.location.trim_end_matches('/'),
            release.tenant
        );
        let input = table_input(
            &name,
            &schema.columns,
            &crate::layout::PARTITION_KEYS[1..],
            &location,
            parameters,
        )?;
        // Sources over the table's whole history: a table carries one value per tag key, so
        // it is tagged `source=…` only while every release in it came from one source, and
        // the tag is removed for good once a second source arrives.
        let previous: BTreeSet<String> = existing
            .as_ref()
            .and_then(|t| t.parameters())
            .and_then(|p| p.get(P_SOURCES))
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mut sources = previous.clone();
        sources.extend(release.inputs.iter().filter_map(|i| source_of(&i.key)));
        let mut input = input;
        if let Some(params) = input.parameters.as_mut() {
            params.insert(
                P_SOURCES.into(),
                sources.iter().cloned().collect::<Vec<_>>().join(","),
            );
        }
        let up_to_date = existing.as_ref().is_some_and(|t| same_table(t, &input));
        if !up_to_date {
            self.put_glue_table(input, existing.is_some()).await?;
        }
        let mut tags = BTreeMap::from([
            ("dataset".to_owned(), release.dataset.clone()),
            ("tenant".to_owned(), release.tenant.clone()),
        ]);
        if let [only] = sources.iter().collect::<Vec<_>>()[..] {
            tags.insert("source".to_owned(), only.clone());
        }
        for (key, value) in &tags {
            self.lf.ensure_tag(key, std::slice::from_ref(value)).await?;
        }
        if sources.len() > 1 {
            self.lf
                .ensure_tag("source", &sources.iter().cloned().collect::<Vec<_>>())
                .await?;
            if let [was] = previous.iter().collect::<Vec<_>>()[..] {
                self.lf
                    .untag_table(&self.database, &name, "source", was)
                    .await?;
            }
        }
        // Every time, not only on creation: assigning is idempotent, and a table whose
        // tagging once failed must not stay unreachable through grants.
        self.lf.tag_table(&self.database, &name, &tags).await?;
        Ok(name)
    }

    /// Makes the Glue side of a committed release exist: tenant table, tags, partitions;
    /// then deletes its pending marker.
    async fn project(&self, release: &Release) -> Result<()> {
        let schema = self.table(&release.dataset).await?.ok_or_else(|| {
            Error::Invalid(format!(
                "release {}: dataset table {} is missing from Glue",
                release.release_id, release.dataset
            ))
        })?;
        let tenant_table = self.ensure_tenant_table(&schema, release).await?;
        self.project_partitions(release, &schema, &tenant_table)
            .await
    }

    /// The partitions of a release whose tenant table is ready, then its marker.
    async fn project_partitions(
        &self,
        release: &Release,
        schema: &TableSchema,
        tenant_table: &str,
    ) -> Result<()> {
        let values = [
            release.tenant.clone(),
            release.dt.clone(),
            release.release_id.clone(),
        ];
        self.create_partition(&release.dataset, schema, release, &values)
            .await?;
        self.create_partition(tenant_table, schema, release, &values[1..])
            .await?;
        // Retention may have removed the release while we projected it: never leave
        // partitions pointing at deleted files.
        if self.release(&release.release_id).await?.is_none() {
            self.delete_partition(&release.dataset, &values).await?;
            self.delete_partition(tenant_table, &values[1..]).await?;
        }
        self.delete_item("pending", &release.release_id).await
    }

    /// Projects a just-committed release, retrying briefly. If Glue stays unavailable the
    /// release is still committed: its pending marker stays and the next `reconcile`
    /// (every worker run) completes it, so this never fails the publish.
    async fn project_after_commit(&self, release: &Release, ready: Option<(&TableSchema, &str)>) {
        for attempt in 1..=3_u32 {
            let projected = match ready {
                // Prepared before the commit: only the partitions are left.
                Some((schema, tenant_table)) if attempt == 1 => {
                    self.project_partitions(release, schema, tenant_table).await
                }
                _ => self.project(release).await,
            };
            match projected {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(
                        release = %release.release_id,
                        attempt,
                        error = %e,
                        "release committed but its Glue partitions are not written yet"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(250 << attempt)).await;
                }
            }
        }
    }

    async fn delete_item(&self, pk: &str, sk: &str) -> Result<()> {
        self.ddb
            .delete_item()
            .table_name(&self.ledger_table)
            .set_key(Some(Self::item_key(pk, sk)))
            .send()
            .await
            .map_err(|e| sdk_error(DYNAMODB, "DeleteItem", e))?;
        Ok(())
    }

    async fn has_pending_marker(&self, release_id: &str) -> Result<bool> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.ledger_table)
            .set_key(Some(Self::item_key("pending", release_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(DYNAMODB, "GetItem", e))?;
        Ok(out.item().is_some())
    }

    /// The ledger item key of a raw object URL. DynamoDB partition keys hold 2,048 bytes:
    /// longer URLs are keyed by their SHA-256 (the item keeps the URL in `key`).
    fn ledger_pk(url: &str) -> String {
        if url.len() <= 1500 {
            format!("object#{url}")
        } else {
            use sha2::Digest;
            format!(
                "object#sha256:{}",
                hex::encode(sha2::Sha256::digest(url.as_bytes()))
            )
        }
    }

    async fn create_partition(
        &self,
        table: &str,
        schema: &TableSchema,
        release: &Release,
        values: &[String],
    ) -> Result<()> {
        let input = PartitionInput::builder()
            .set_values(Some(values.to_vec()))
            .storage_descriptor(storage_descriptor(&schema.columns, &release.location)?)
            .parameters("stackpro.release_id", &release.release_id)
            .parameters("stackpro.policy_id", &release.policy_id)
            .parameters("stackpro.key_id", &release.key_id)
            .parameters("stackpro.k", release.k.to_string())
            .parameters("stackpro.records", release.records_out.to_string())
            .build();
        match self
            .glue
            .create_partition()
            .database_name(&self.database)
            .table_name(table)
            .partition_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(GLUE, "CreatePartition", e)),
        }
    }

    async fn delete_partition(&self, table: &str, values: &[String]) -> Result<()> {
        match self
            .glue
            .delete_partition()
            .database_name(&self.database)
            .table_name(table)
            .set_partition_values(Some(values.to_vec()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_entity_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(GLUE, "DeletePartition", e)),
        }
    }

    /// Partition values of the Glue partitions of `table` (for checks and operators).
    pub async fn partition_values(&self, table: &str) -> Result<Vec<Vec<String>>> {
        let pages = self
            .glue
            .get_partitions()
            .database_name(&self.database)
            .table_name(table)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error(GLUE, "GetPartitions", e))?;
        let mut all: Vec<Vec<String>> = pages
            .iter()
            .flat_map(|p| p.partitions().iter().map(|p| p.values().to_vec()))
            .collect();
        all.sort();
        Ok(all)
    }

    fn item_key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
            ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
        ])
    }

    async fn query_partition(&self, pk: &str) -> Result<Vec<HashMap<String, AttributeValue>>> {
        self.ddb
            .query()
            .table_name(&self.ledger_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error(DYNAMODB, "Query", e))
    }

    fn release_item(release: &Release) -> Result<HashMap<String, AttributeValue>> {
        let json = serde_json::to_string(release)?;
        // DynamoDB items hold 400 KB; leave room for the key and the other attributes.
        if json.len() > 380_000 {
            return Err(Error::Invalid(format!(
                "release {}: metadata of {} bytes exceeds what one DynamoDB item holds",
                release.release_id,
                json.len()
            )));
        }
        let mut item = Self::item_key("release", &release.release_id);
        item.insert("json".into(), AttributeValue::S(json));
        item.insert("dataset".into(), AttributeValue::S(release.dataset.clone()));
        item.insert("tenant".into(), AttributeValue::S(release.tenant.clone()));
        item.insert("dt".into(), AttributeValue::S(release.dt.clone()));
        Ok(item)
    }

    fn decode_release(item: &HashMap<String, AttributeValue>) -> Result<Release> {
        serde_json::from_str(s(item, "json")?)
            .map_err(|e| Error::Invalid(format!("release item does not decode: {e}")))
    }
}

/// The catalog-owned parameters of a table of `kind`.
fn owned_parameters(schema: &TableSchema, kind: &str) -> [(String, String); 4] {
    [
        (P_KIND.into(), kind.into()),
        (P_POLICY_ID.into(), schema.policy_id.clone()),
        (P_POLICY_HASH.into(), schema.policy_hash.clone()),
        (P_K.into(), schema.k.to_string()),
    ]
}

/// The `source=` segment of a raw object URL, if any.
fn source_of(url: &str) -> Option<String> {
    url.split('/')
        .find_map(|seg| seg.strip_prefix("source="))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn glue_columns(columns: &[Column]) -> Result<Vec<GlueColumn>> {
    columns
        .iter()
        .map(|c| {
            GlueColumn::builder()
                .name(&c.name)
                .r#type(c.data_type.glue_type())
                .set_comment(c.comment.clone())
                .build()
                .map_err(|e| Error::Invalid(e.to_string()))
        })
        .collect()
}

fn storage_descriptor(columns: &[Column], location: &str) -> Result<StorageDescriptor> {
    Ok(StorageDescriptor::builder()
        .set_columns(Some(glue_columns(columns)?))
        .location(location)
        .input_format(PARQUET_INPUT)
        .output_format(PARQUET_OUTPUT)
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(PARQUET_SERDE)
                .parameters("serialization.format", "1")
                .build(),
        )
        .build())
}

fn table_input(
    name: &str,
    columns: &[Column],
    partition_keys: &[impl AsRef<str>],
    location: &str,
    parameters: HashMap<String, String>,
) -> Result<TableInput> {
    let keys = partition_keys
        .iter()
        .map(|k| {
            GlueColumn::builder()
                .name(k.as_ref())
                .r#type("string")
                .build()
                .map_err(|e| Error::Invalid(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    TableInput::builder()
        .name(name)
        .table_type("EXTERNAL_TABLE")
        .storage_descriptor(storage_descriptor(columns, location)?)
        .set_partition_keys(Some(keys))
        .set_parameters(Some(parameters))
        .build()
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// Whether a stored table already equals what `input` would write.
fn same_table(table: &Table, input: &TableInput) -> bool {
    let sd = |c: Option<&StorageDescriptor>| {
        c.map(|sd| {
            (
                sd.columns()
                    .iter()
                    .map(|c| (c.name().to_owned(), c.r#type().map(str::to_owned)))
                    .collect::<Vec<_>>(),
                sd.location().map(str::to_owned),
            )
        })
    };
    table.parameters() == input.parameters()
        && sd(table.storage_descriptor()) == sd(input.storage_descriptor())
        && table.partition_keys().len() == input.partition_keys().len()
}

fn column_type(glue: &str) -> Result<ColumnType> {
    Ok(match glue {
        "string" => ColumnType::String,
        "bigint" => ColumnType::Int64,
        "double" => ColumnType::Float64,
        "boolean" => ColumnType::Boolean,
        "date" => ColumnType::Date,
        other => {
            return Err(Error::Invalid(format!(
                "Glue column type `{other}` is not one the catalog writes"
            )));
        }
    })
}

/// Reads a dataset table back into a [`TableSchema`]; `None` for other tables.
fn table_schema(table: &Table) -> Result<Option<TableSchema>> {
    let params = table.parameters().cloned().unwrap_or_default();
    if params.get(P_KIND).map(String::as_str) != Some(KIND_DATASET) {
        return Ok(None);
    }
    let get = |k: &str| {
        params.get(k).cloned().ok_or_else(|| {
            Error::Invalid(format!(
                "Glue table {}: parameter {k} missing",
                table.name()
            ))
        })
    };
    let sd = table.storage_descriptor();
    let columns = sd
        .map(|sd| sd.columns())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            Ok(Column {
                name: c.name().to_owned(),
                data_type: column_type(c.r#type().unwrap_or_default())?,
                comment: c.comment().map(str::to_owned),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(TableSchema {
        dataset: table.name().to_owned(),
        columns,
        partition_keys: table
            .partition_keys()
            .iter()
            .map(|c| c.name().to_owned())
            .collect(),
        location: sd
            .and_then(|sd| sd.location())
            .unwrap_or_default()
            .to_owned(),
        policy_id: get(P_POLICY_ID)?,
        policy_hash: get(P_POLICY_HASH)?,
        k: get(P_K)?.parse().map_err(|_| {
            Error::Invalid(format!(
                "Glue table {}: {P_K} is not a number",
                table.name()
            ))
        })?,
        parameters: params
            .into_iter()
            .filter(|(k, _)| !k.starts_with(P_PREFIX))
            .collect(),
    }))
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
