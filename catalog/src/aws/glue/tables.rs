//! The Glue side: dataset and tenant tables, their schema mapped to and from ours, and a
//! partition per release.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_glue::types::{
    Column as GlueColumn, PartitionInput, SerDeInfo, StorageDescriptor, Table, TableInput,
};

use super::{GLUE, GlueCatalog};
use crate::aws::sdk_error;
use crate::data_catalog::DataCatalog;
use crate::error::{Error, Result};
use crate::model::{Column, ColumnType, Release, TableSchema};

impl GlueCatalog {
    /// Names of the database's tables whose LF-tags match `expression` (evaluated by us,
    /// from the tags Lake Formation stores).
    pub async fn tables_matching(
        &self,
        expression: &crate::aws::LfTagExpression,
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

    pub(super) async fn glue_table(&self, name: &str) -> Result<Option<Table>> {
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

    pub(super) async fn glue_tables(&self) -> Result<Vec<Table>> {
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
    pub(super) async fn put_glue_table(&self, input: TableInput, exists: bool) -> Result<()> {
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
    pub(super) async fn ensure_tenant_table(
        &self,
        schema: &TableSchema,
        release: &Release,
    ) -> Result<String> {
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
    pub(super) async fn project(&self, release: &Release) -> Result<()> {
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
    pub(super) async fn project_partitions(
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
    pub(super) async fn project_after_commit(
        &self,
        release: &Release,
        ready: Option<(&TableSchema, &str)>,
    ) {
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

    pub(super) async fn create_partition(
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

    pub(super) async fn delete_partition(&self, table: &str, values: &[String]) -> Result<()> {
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
}

pub(super) const PARQUET_INPUT: &str =
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
pub(super) const PARQUET_OUTPUT: &str =
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
pub(super) const PARQUET_SERDE: &str =
    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";

/// Table parameters the catalog owns (stripped from [`TableSchema::parameters`] on read).
pub(super) const P_PREFIX: &str = "stackpro.";
pub(super) const P_KIND: &str = "stackpro.kind";
pub(super) const P_POLICY_ID: &str = "stackpro.policy_id";
pub(super) const P_POLICY_HASH: &str = "stackpro.policy_hash";
pub(super) const P_K: &str = "stackpro.k";
pub(super) const P_DATASET: &str = "stackpro.dataset";
pub(super) const P_TENANT: &str = "stackpro.tenant";
pub(super) const P_SOURCES: &str = "stackpro.sources";
pub(super) const KIND_DATASET: &str = "dataset";
pub(super) const KIND_TENANT: &str = "tenant";

/// The catalog-owned parameters of a table of `kind`.
pub(super) fn owned_parameters(schema: &TableSchema, kind: &str) -> [(String, String); 4] {
    [
        (P_KIND.into(), kind.into()),
        (P_POLICY_ID.into(), schema.policy_id.clone()),
        (P_POLICY_HASH.into(), schema.policy_hash.clone()),
        (P_K.into(), schema.k.to_string()),
    ]
}

/// The `source=` segment of a raw object URL, if any.
pub(super) fn source_of(url: &str) -> Option<String> {
    url.split('/')
        .find_map(|seg| seg.strip_prefix("source="))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub(super) fn glue_columns(columns: &[Column]) -> Result<Vec<GlueColumn>> {
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

pub(super) fn storage_descriptor(columns: &[Column], location: &str) -> Result<StorageDescriptor> {
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

pub(super) fn table_input(
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
pub(super) fn same_table(table: &Table, input: &TableInput) -> bool {
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

pub(super) fn column_type(glue: &str) -> Result<ColumnType> {
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
pub(super) fn table_schema(table: &Table) -> Result<Option<TableSchema>> {
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
