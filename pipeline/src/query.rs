//! SQL over published releases with DataFusion.
//!
//! [`CatalogSchema`] is a DataFusion schema provider over the data catalog, in the style of
//! the iceberg-rust and delta-rs integrations: each dataset is a table whose rows are the
//! files of its **published** releases only (files of an unpublished or withheld release
//! are invisible, exactly as for Glue/Athena), with the partition columns `tenant`, `dt`
//! and `release` added. Tables are resolved at query time, so a long-lived session sees
//! releases published after it started.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use catalog::{ColumnType, DataCatalog, ReleaseFilter, TableSchema};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
use datafusion::prelude::SessionContext;

use crate::Result;

/// A DataFusion schema whose tables are the catalog's datasets.
#[derive(Debug)]
pub struct CatalogSchema {
    catalog: Arc<dyn DataCatalog>,
    names: Vec<String>,
}

impl CatalogSchema {
    /// Snapshots the dataset names (DataFusion lists names synchronously).
    pub async fn try_new(catalog: Arc<dyn DataCatalog>) -> Result<Self> {
        let names = catalog
            .tables()
            .await?
            .into_iter()
            .map(|t| t.dataset)
            .collect();
        Ok(Self { catalog, names })
    }
}

/// The Arrow schema of a dataset's curated files.
pub fn file_schema(table: &TableSchema) -> SchemaRef {
    Arc::new(Schema::new(
        table
            .columns
            .iter()
            .map(|c| {
                let t = match c.data_type {
                    ColumnType::String => DataType::Utf8,
                    ColumnType::Int64 => DataType::Int64,
                    ColumnType::Float64 => DataType::Float64,
                    ColumnType::Boolean => DataType::Boolean,
                    ColumnType::Date => DataType::Date32,
                };
                Field::new(&c.name, t, true)
            })
            .collect::<Vec<_>>(),
    ))
}

fn df_err(e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::External(e.to_string().into())
}

#[async_trait]
impl SchemaProvider for CatalogSchema {
    fn table_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn table_exist(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let Some(table) = self.catalog.table(name).await.map_err(df_err)? else {
            return Ok(None);
        };
        let schema = file_schema(&table);
        let filter = ReleaseFilter {
            dataset: Some(name.to_string()),
            tenant: None,
        };
        let releases = self.catalog.releases(&filter).await.map_err(df_err)?;
        let mut plan: Option<LogicalPlanBuilder> = None;
        for release in releases.iter().filter(|r| !r.files.is_empty()) {
            let urls = release
                .files
                .iter()
                .map(|f| ListingTableUrl::parse(&f.path))
                .collect::<Result<Vec<_>, _>>()?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options)
                .with_schema(schema.clone());
            let provider = Arc::new(ListingTable::try_new(config)?);
            let mut exprs: Vec<_> = schema.fields().iter().map(|f| col(f.name())).collect();
            exprs.push(lit(release.tenant.clone()).alias("tenant"));
            exprs.push(lit(release.dt.clone()).alias("dt"));
            exprs.push(lit(release.release_id.clone()).alias("release"));
            let scan = LogicalPlanBuilder::scan(
                format!("{name}_{}", release.release_id),
                provider_as_source(provider),
                None,
            )?
            .project(exprs)?;
            plan = Some(match plan {
                None => scan,
                Some(p) => p.union(scan.build()?)?,
            });
        }
        let Some(plan) = plan else {
            let mut fields: Vec<Field> =
                schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.extend(
                catalog::layout::PARTITION_KEYS
                    .iter()
                    .map(|c| Field::new(*c, DataType::Utf8, false)),
            );
            return Ok(Some(Arc::new(EmptyTable::new(Arc::new(Schema::new(
                fields,
            ))))));
        };
        Ok(Some(Arc::new(ViewTable::new(plan.build()?, None))))
    }
}

/// Object stores the session reads release files from, by URL root (`s3://bucket`);
/// local files need none.
pub type Stores = Vec<(String, Arc<dyn object_store::ObjectStore>)>;

/// A session whose default schema is the catalog: `SELECT … FROM contacts` just works.
pub async fn session(catalog: Arc<dyn DataCatalog>, stores: Stores) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    for (root, store) in stores {
        let url = datafusion::execution::object_store::ObjectStoreUrl::parse(&root)?;
        ctx.register_object_store(url.as_ref(), store);
    }
    let schema = CatalogSchema::try_new(catalog).await?;
    let default_catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| DataFusionError::Plan("DataFusion has no default catalog".into()))?;
    default_catalog.register_schema("public", Arc::new(schema))?;
    Ok(ctx)
}

/// Runs one SQL statement and returns its batches.
pub async fn sql(
    catalog: Arc<dyn DataCatalog>,
    stores: Stores,
    query: &str,
) -> Result<Vec<arrow::record_batch::RecordBatch>> {
    let ctx = session(catalog, stores).await?;
    Ok(ctx.sql(query).await?.collect().await?)
}
