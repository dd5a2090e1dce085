//! DynamoDB: the `ConsentSettings` control-plane table and the table helper `stackpro setup`
//! uses for every DynamoDB table (on-demand billing, string hash and range keys).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use chrono::{DateTime, SecondsFormat, Utc};

use super::{Change, sdk_error};
use crate::consent::ConsentStore;
use crate::error::{Error, Result};
use crate::model::ConsentSetting;

const SERVICE: &str = "dynamodb";

/// Creates `table` (on-demand, string keys `hash_key` and `range_key`) unless it exists,
/// and waits until it is active. An existing table with other keys is an error: we never
/// silently write into a table of a different shape.
pub async fn ensure_dynamodb_table(
    client: &Client,
    table: &str,
    hash_key: &str,
    range_key: &str,
) -> Result<Change> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => {
            let keys: Vec<(String, KeyType)> = out
                .table()
                .map(|t| {
                    t.key_schema()
                        .iter()
                        .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
                        .collect()
                })
                .unwrap_or_default();
            let want = vec![
                (hash_key.to_owned(), KeyType::Hash),
                (range_key.to_owned(), KeyType::Range),
            ];
            if keys != want {
                return Err(Error::Invalid(format!(
                    "DynamoDB table `{table}` exists with keys {keys:?}, expected {want:?}"
                )));
            }
            return Ok(Change::Unchanged);
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_not_found_exception()) => {}
        Err(e) => return Err(sdk_error(SERVICE, "DescribeTable", e)),
    }
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| Error::Invalid(e.to_string()))
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| Error::Invalid(e.to_string()))
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(hash_key)?)
        .attribute_definitions(attr(range_key)?)
        .key_schema(key(hash_key, KeyType::Hash)?)
        .key_schema(key(range_key, KeyType::Range)?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        // Another `setup` won the race: fine, the table exists.
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception()) => {}
        Err(e) => return Err(sdk_error(SERVICE, "CreateTable", e)),
    }
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "DescribeTable", e))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(Change::Created);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(Error::Aws {
        service: SERVICE,
        message: format!("table `{table}` did not become ACTIVE within 60 s"),
        retryable: true,
        source: None,
    })
}

/// Reads a string attribute.
pub(crate) fn s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Result<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(Error::Invalid(format!(
            "DynamoDB item lacks string attribute `{name}`"
        ))),
    }
}

/// [`ConsentStore`] on the DynamoDB table `ConsentSettings` (hash key `tenant`, range key
/// `dataset`), one item per pair, so a last-write-wins upsert is one `PutItem`.
#[derive(Debug, Clone)]
pub struct DynamoConsentStore {
    client: Client,
    table: String,
}

impl DynamoConsentStore {
    /// Hash key attribute.
    pub const HASH_KEY: &'static str = "tenant";
    /// Range key attribute.
    pub const RANGE_KEY: &'static str = "dataset";

    /// A store on an existing table (see [`DynamoConsentStore::ensure_table`]).
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Creates the table if missing (used by `stackpro setup`).
    pub async fn ensure_table(&self) -> Result<Change> {
        ensure_dynamodb_table(&self.client, &self.table, Self::HASH_KEY, Self::RANGE_KEY).await
    }

    /// The table name.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }
}

fn decode(item: &HashMap<String, AttributeValue>) -> Result<ConsentSetting> {
    let granted = match item.get("granted") {
        Some(AttributeValue::Bool(b)) => *b,
        _ => {
            return Err(Error::Invalid(
                "consent item lacks boolean `granted`".into(),
            ));
        }
    };
    let updated_at = DateTime::parse_from_rfc3339(s(item, "updated_at")?)
        .map_err(|e| Error::Invalid(format!("consent item `updated_at`: {e}")))?
        .with_timezone(&Utc);
    Ok(ConsentSetting {
        tenant: s(item, DynamoConsentStore::HASH_KEY)?.to_owned(),
        dataset: s(item, DynamoConsentStore::RANGE_KEY)?.to_owned(),
        granted,
        updated_at,
        updated_by: s(item, "updated_by")?.to_owned(),
        // Items written before revenue sharing existed lack the attribute: not opted in.
        revenue_share: matches!(item.get("revenue_share"), Some(AttributeValue::Bool(true))),
    })
}

#[async_trait]
impl ConsentStore for DynamoConsentStore {
    async fn set_consent(&self, setting: &ConsentSetting) -> Result<()> {
        if setting.tenant.is_empty() || setting.dataset.is_empty() {
            return Err(Error::Invalid(
                "tenant and dataset must not be empty".into(),
            ));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .item(Self::HASH_KEY, AttributeValue::S(setting.tenant.clone()))
            .item(Self::RANGE_KEY, AttributeValue::S(setting.dataset.clone()))
            .item("granted", AttributeValue::Bool(setting.granted))
            .item(
                "updated_at",
                AttributeValue::S(
                    setting
                        .updated_at
                        .to_rfc3339_opts(SecondsFormat::AutoSi, true),
                ),
            )
            .item("updated_by", AttributeValue::S(setting.updated_by.clone()))
            .item("revenue_share", AttributeValue::Bool(setting.revenue_share))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "PutItem", e))?;
        Ok(())
    }

    async fn consent(&self, tenant: &str, dataset: &str) -> Result<Option<ConsentSetting>> {
        if tenant.is_empty() || dataset.is_empty() {
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(Self::HASH_KEY, AttributeValue::S(tenant.to_owned()))
            .key(Self::RANGE_KEY, AttributeValue::S(dataset.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "GetItem", e))?;
        out.item().map(decode).transpose()
    }

    async fn consents(&self) -> Result<Vec<ConsentSetting>> {
        let items = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error(SERVICE, "Scan", e))?;
        let mut all = items.iter().map(decode).collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| (&a.tenant, &a.dataset).cmp(&(&b.tenant, &b.dataset)));
        Ok(all)
    }
}
