//! [`DynamoMarketStore`]: the marketplace's control-plane tables on DynamoDB.
//!
//! One table (hash key `pk`, range key `sk`, both strings), each logical table of the
//! design an item kind under its own key prefix — the single-table layout DynamoDB
//! recommends when writes must span kinds in one transaction (a quota counter, its usage
//! event and the request's id; a grant and the contract it needs):
//!
//! | logical table | `pk` | `sk` |
//! |---|---|---|
//! | buyers | `BUYER` | buyer id |
//! | API keys | `KEY` | key id |
//! | Datasets: listing | `DATASET#{dataset}` | `LISTING` (TTL attribute `expires_at_epoch`) |
//! | Datasets: versions | `DATASET#{dataset}` | `V#{version, 20 digits}` |
//! | Datasets: release covered | `DATASET#{dataset}` | `R#{release id}` |
//! | DataContracts | `CONTRACT` | contract id |
//! | AccessGrants | `GRANT#{buyer}` | dataset |
//! | UsageEvents | `EVENT#{buyer}` | `{time}#{request id}` |
//! | request ids | `REQUEST#{request id}` | `REQUEST` |
//! | quota counters | `QUOTA#{contract}` | window start |
//! | RevenueShare | `REVENUE#{period}` | `{contract}#{tenant}` |
//!
//! Each item keeps its record as JSON in `doc`, plus the attributes its conditions test.
//! Races are settled by conditional writes and `TransactWriteItems`; reads are strongly
//! consistent. The listing's TTL attribute is the later of its expiry and the end of the
//! contracts created for it, so DynamoDB's TTL never deletes a listing a contract covers.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, TimeToLiveSpecification, TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Change, ensure_dynamodb_table, sdk_error};
use crate::error::{Error, Result};
use crate::market::{
    AccessGrant, ApiKey, Buyer, Contract, ContractStatus, DatasetVersion, Listing, MarketStore,
    QuotaCharge, QuotaState, RevenueShareLine, Role, UsageEvent, UsageOutcome, VersionRelease,
};

const SERVICE: &str = "dynamodb";
const TTL_ATTRIBUTE: &str = "expires_at_epoch";

type Item = HashMap<String, AttributeValue>;

/// The marketplace store on one DynamoDB table (see the module docs).
#[derive(Debug, Clone)]
pub struct DynamoMarketStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn version_key(v: u64) -> String {
    format!("V#{v:020}")
}

fn doc<T: DeserializeOwned>(item: &Item) -> Result<T> {
    match item.get("doc") {
        Some(AttributeValue::S(text)) => serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("marketplace item does not decode: {e}"))),
        _ => Err(Error::Invalid("marketplace item lacks `doc`".into())),
    }
}

fn item(pk: &str, sk: &str, record: &impl Serialize) -> Result<Item> {
    Ok(HashMap::from([
        ("pk".to_owned(), s(pk)),
        ("sk".to_owned(), s(sk)),
        ("doc".to_owned(), s(serde_json::to_string(record)?)),
    ]))
}

fn build<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::Invalid(e.to_string()))
}

/// Whether an SDK error is a failed condition (of a single write).
fn condition_failed<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// The cancellation codes of a cancelled transaction, one per item (`None` if the error
/// was something else).
fn cancellation_codes(
    e: &aws_smithy_runtime_api::client::result::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_smithy_runtime_api::http::Response,
    >,
) -> Option<Vec<String>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match e.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(c) => Some(
            c.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_owned())
                .collect(),
        ),
        _ => None,
    }
}

impl DynamoMarketStore {
    /// A store on an existing table (see [`DynamoMarketStore::ensure_table`]).
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table if missing and turns TTL on for listings (`stackpro setup`).
    pub async fn ensure_table(&self) -> Result<Change> {
        let change = ensure_dynamodb_table(&self.client, &self.table, "pk", "sk").await?;
        let ttl = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "DescribeTimeToLive", e))?;
        let on = ttl
            .time_to_live_description()
            .and_then(|d| d.attribute_name())
            == Some(TTL_ATTRIBUTE);
        if on {
            return Ok(change);
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(build(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build(),
            )?)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "UpdateTimeToLive", e))?;
        Ok(if change == Change::Created {
            Change::Created
        } else {
            Change::Updated
        })
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "GetItem", e))?;
        Ok(out.item)
    }

    async fn get_doc<T: DeserializeOwned>(&self, pk: &str, sk: &str) -> Result<Option<T>> {
        self.get(pk, sk).await?.as_ref().map(doc).transpose()
    }

    /// Items of `pk` with `sk` in `[from, to]` (or all), in key order.
    async fn query(&self, pk: &str, range: Option<(String, String)>) -> Result<Vec<Item>> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_values(":pk", s(pk));
        q = match range {
            Some((from, to)) => q
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(to)),
            None => q.key_condition_expression("pk = :pk"),
        };
        q.into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error(SERVICE, "Query", e))
    }

    async fn query_docs<T: DeserializeOwned>(
        &self,
        pk: &str,
        range: Option<(String, String)>,
    ) -> Result<Vec<T>> {
        self.query(pk, range).await?.iter().map(doc).collect()
    }

    /// Writes `item` if no item has its key.
    async fn put_new(&self, item: Item, what: &str) -> Result<()> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => {
                Err(Error::Conflict(format!("{what} already exists")))
            }
            Err(e) => Err(sdk_error(SERVICE, "PutItem", e)),
        }
    }

    /// Replaces `item` if its `doc` is still `old_doc` (optimistic concurrency); whether
    /// it was replaced.
    async fn replace_if_unchanged(&self, item: Item, old_doc: &str) -> Result<bool> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("doc = :old")
            .expression_attribute_values(":old", s(old_doc))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk_error(SERVICE, "PutItem", e)),
        }
    }

    /// Read-modify-write of the record at (`pk`, `sk`): `change` returns the new record,
    /// or `None` to leave it; retried when another writer got there first. Whether it
    /// changed the record.
    async fn modify<T, F>(&self, pk: &str, sk: &str, change: F) -> Result<bool>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(T) -> Option<T> + Send + Sync,
    {
        for _ in 0..16 {
            let Some(current) = self.get(pk, sk).await? else {
                return Ok(false);
            };
            let old = match current.get("doc") {
                Some(AttributeValue::S(d)) => d.clone(),
                _ => return Err(Error::Invalid("marketplace item lacks `doc`".into())),
            };
            let Some(new) = change(doc(&current)?) else {
                return Ok(false);
            };
            let mut next = current.clone();
            next.insert("doc".into(), s(serde_json::to_string(&new)?));
            if self.replace_if_unchanged(next, &old).await? {
                return Ok(true);
            }
        }
        Err(Error::Aws {
            service: SERVICE,
            message: format!("{pk}/{sk} kept changing under an update"),
            retryable: true,
            source: None,
        })
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> std::result::Result<
        (),
        aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
            aws_smithy_runtime_api::http::Response,
        >,
    > {
        self.transact_once(items, None).await
    }

    /// One `TransactWriteItems`; with `token`, idempotent for 10 minutes (a retry after
    /// an ambiguous failure is not applied twice).
    async fn transact_once(
        &self,
        items: Vec<TransactWriteItem>,
        token: Option<String>,
    ) -> std::result::Result<
        (),
        aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
            aws_smithy_runtime_api::http::Response,
        >,
    > {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .set_client_request_token(token)
            .send()
            .await
            .map(drop)
    }

    fn put_item(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(c) = condition {
            put = put.condition_expression(c);
        }
        Ok(TransactWriteItem::builder()
            .put(build(put.build())?)
            .build())
    }

    fn exists_check(&self, pk: &str, sk: &str) -> Result<TransactWriteItem> {
        Ok(TransactWriteItem::builder()
            .condition_check(build(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(sk))
                    .condition_expression("attribute_exists(pk)")
                    .build(),
            )?)
            .build())
    }

    async fn contracts_in_force_for(
        &self,
        dataset: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Contract>> {
        Ok(self
            .contracts(None)
            .await?
            .into_iter()
            .filter(|c| c.dataset == dataset && c.in_force(now))
            .collect())
    }

    async fn offered(&self, listing: Listing, now: DateTime<Utc>) -> Result<Option<Listing>> {
        if listing.expires_at.is_none_or(|e| e > now)
            || !self
                .contracts_in_force_for(&listing.dataset, now)
                .await?
                .is_empty()
        {
            Ok(Some(listing))
        } else {
            Ok(None)
        }
    }
}

#[async_trait]
impl MarketStore for DynamoMarketStore {
    async fn create_buyer(&self, buyer: &Buyer) -> Result<()> {
        if !crate::layout::is_safe_id(&buyer.id) {
            return Err(Error::Invalid(format!(
                "buyer id {:?} is not a valid id",
                buyer.id
            )));
        }
        self.put_new(
            item("BUYER", &buyer.id, buyer)?,
            &format!("buyer {}", buyer.id),
        )
        .await
    }

    async fn buyer(&self, id: &str) -> Result<Option<Buyer>> {
        self.get_doc("BUYER", id).await
    }

    async fn buyers(&self) -> Result<Vec<Buyer>> {
        self.query_docs("BUYER", None).await
    }

    async fn create_api_key(&self, key: &ApiKey) -> Result<()> {
        if !crate::layout::is_safe_id(&key.key_id) || key.secret_hash.is_empty() {
            return Err(Error::Invalid("an API key needs an id and a hash".into()));
        }
        let mut record = item("KEY", &key.key_id, key)?;
        record.insert("owner".into(), s(&key.owner));
        if key.role == Role::Admin {
            return self
                .put_new(record, &format!("API key {}", key.key_id))
                .await;
        }
        let items = vec![
            self.exists_check("BUYER", &key.owner)?,
            self.put_item(record, Some("attribute_not_exists(pk)"))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(e) => match cancellation_codes(&e).as_deref() {
                Some([buyer, _]) if buyer == "ConditionalCheckFailed" => {
                    Err(Error::Invalid(format!("no buyer {}", key.owner)))
                }
                Some([_, k]) if k == "ConditionalCheckFailed" => Err(Error::Conflict(format!(
                    "API key {} already exists",
                    key.key_id
                ))),
                _ => Err(sdk_error(SERVICE, "TransactWriteItems", e)),
            },
        }
    }

    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKey>> {
        self.get_doc("KEY", key_id).await
    }

    async fn api_keys(&self, owner: &str) -> Result<Vec<ApiKey>> {
        let mut keys: Vec<ApiKey> = self.query_docs("KEY", None).await?;
        keys.retain(|k| k.owner == owner);
        keys.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
        Ok(keys)
    }

    async fn revoke_api_key(&self, key_id: &str, at: DateTime<Utc>) -> Result<bool> {
        self.modify("KEY", key_id, |mut k: ApiKey| {
            k.revoked_at.is_none().then(|| {
                k.revoked_at = Some(at);
                k
            })
        })
        .await
    }

    async fn put_listing(&self, listing: &Listing, now: DateTime<Utc>) -> Result<()> {
        if !crate::layout::is_safe_id(&listing.dataset) {
            return Err(Error::Invalid(format!(
                "dataset {:?} is not a valid id",
                listing.dataset
            )));
        }
        let contracts: Vec<Contract> = self
            .contracts(None)
            .await?
            .into_iter()
            .filter(|c| c.dataset == listing.dataset && c.status == ContractStatus::Active)
            .collect();
        let in_force_end = contracts
            .iter()
            .filter(|c| c.in_force(now))
            .map(|c| c.end)
            .max();
        // The TTL attribute outlives every active contract, future ones included.
        let latest_end = contracts.iter().map(|c| c.end).max();
        if let (Some(expires), Some(end)) = (listing.expires_at, in_force_end)
            && expires < end
        {
            return Err(Error::Conflict(format!(
                "listing {} cannot expire at {expires} before a contract in force ends ({end})",
                listing.dataset
            )));
        }
        let mut record = item(&format!("DATASET#{}", listing.dataset), "LISTING", listing)?;
        if let Some(expires) = listing.expires_at {
            let until = latest_end.map_or(expires, |end| end.max(expires));
            record.insert(
                TTL_ATTRIBUTE.into(),
                n(u64::try_from(until.timestamp()).unwrap_or(0)),
            );
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "PutItem", e))?;
        Ok(())
    }

    async fn listing(&self, dataset: &str, now: DateTime<Utc>) -> Result<Option<Listing>> {
        match self
            .get_doc(&format!("DATASET#{dataset}"), "LISTING")
            .await?
        {
            Some(l) => self.offered(l, now).await,
            None => Ok(None),
        }
    }

    async fn listings(&self, now: DateTime<Utc>) -> Result<Vec<Listing>> {
        let items = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression("sk = :listing AND begins_with(pk, :ds)")
            .expression_attribute_values(":listing", s("LISTING"))
            .expression_attribute_values(":ds", s("DATASET#"))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error(SERVICE, "Scan", e))?;
        let mut out = Vec::new();
        for i in &items {
            if let Some(l) = self.offered(doc(i)?, now).await? {
                out.push(l);
            }
        }
        out.sort_by(|a, b| a.dataset.cmp(&b.dataset));
        Ok(out)
    }

    async fn append_version(
        &self,
        dataset: &str,
        version: u64,
        release: &VersionRelease,
        at: DateTime<Utc>,
    ) -> Result<()> {
        if version == 0 {
            return Err(Error::Conflict("versions start at 1".into()));
        }
        let pk = format!("DATASET#{dataset}");
        let entry = DatasetVersion {
            dataset: dataset.to_owned(),
            version,
            releases: vec![release.clone()],
            created_at: at,
        };
        let mut items = Vec::new();
        if version > 1 {
            items.push(self.exists_check(&pk, &version_key(version - 1))?);
        }
        items.push(self.put_item(
            item(&pk, &version_key(version), &entry)?,
            Some("attribute_not_exists(pk)"),
        )?);
        items.push(self.put_item(
            item(&pk, &format!("R#{}", release.release_id), &version)?,
            Some("attribute_not_exists(pk)"),
        )?);
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(e) if cancellation_codes(&e).is_some() => Err(Error::Conflict(format!(
                "dataset {dataset}: version {version} is not next, or release {} is covered",
                release.release_id
            ))),
            Err(e) => Err(sdk_error(SERVICE, "TransactWriteItems", e)),
        }
    }

    async fn latest_version(&self, dataset: &str) -> Result<u64> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
            .expression_attribute_values(":pk", s(format!("DATASET#{dataset}")))
            .expression_attribute_values(":v", s("V#"))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "Query", e))?;
        match out.items().first() {
            Some(i) => Ok(doc::<DatasetVersion>(i)?.version),
            None => Ok(0),
        }
    }

    async fn version(&self, dataset: &str, version: Option<u64>) -> Result<Option<DatasetVersion>> {
        let wanted = match version {
            Some(v) => v,
            None => self.latest_version(dataset).await?,
        };
        if wanted == 0 {
            return Ok(None);
        }
        let parts: Vec<DatasetVersion> = self
            .query_docs(
                &format!("DATASET#{dataset}"),
                Some((version_key(1), version_key(wanted))),
            )
            .await?;
        let Some(last) = parts.last().filter(|l| l.version == wanted) else {
            return Ok(None);
        };
        Ok(Some(DatasetVersion {
            dataset: dataset.to_owned(),
            version: wanted,
            created_at: last.created_at,
            releases: parts.into_iter().flat_map(|p| p.releases).collect(),
        }))
    }

    async fn covered_releases(&self, dataset: &str) -> Result<Vec<String>> {
        Ok(match self.version(dataset, None).await? {
            Some(v) => v.releases.into_iter().map(|r| r.release_id).collect(),
            None => Vec::new(),
        })
    }

    async fn create_contract(&self, contract: &Contract) -> Result<()> {
        contract.validate()?;
        let mut record = item("CONTRACT", &contract.id, contract)?;
        record.insert("buyer".into(), s(&contract.buyer));
        let items = vec![
            self.exists_check("BUYER", &contract.buyer)?,
            self.put_item(record, Some("attribute_not_exists(pk)"))?,
        ];
        match self.transact(items).await {
            Ok(()) => {}
            Err(e) => {
                return match cancellation_codes(&e).as_deref() {
                    Some([b, _]) if b == "ConditionalCheckFailed" => {
                        Err(Error::Invalid(format!("no buyer {}", contract.buyer)))
                    }
                    Some([_, c]) if c == "ConditionalCheckFailed" => Err(Error::Conflict(format!(
                        "contract {} already exists",
                        contract.id
                    ))),
                    _ => Err(sdk_error(SERVICE, "TransactWriteItems", e)),
                };
            }
        }
        // Keep the listing's TTL past the contract's end.
        let end = u64::try_from(contract.end.timestamp()).unwrap_or(0);
        let bumped = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("DATASET#{}", contract.dataset)))
            .key("sk", s("LISTING"))
            .update_expression("SET #ttl = :end")
            .condition_expression("attribute_exists(#ttl) AND #ttl < :end")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":end", n(end))
            .send()
            .await;
        match bumped {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk_error(SERVICE, "UpdateItem", e)),
        }
    }

    async fn contract(&self, id: &str) -> Result<Option<Contract>> {
        self.get_doc("CONTRACT", id).await
    }

    async fn contracts(&self, buyer: Option<&str>) -> Result<Vec<Contract>> {
        let mut all: Vec<Contract> = self.query_docs("CONTRACT", None).await?;
        all.retain(|c| buyer.is_none_or(|b| c.buyer == b));
        all.sort_by(|a, b| {
            (&a.buyer, &a.dataset, a.start, &a.id).cmp(&(&b.buyer, &b.dataset, b.start, &b.id))
        });
        Ok(all)
    }

    async fn end_contract(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        self.modify("CONTRACT", id, |mut c: Contract| {
            (c.status == ContractStatus::Active).then(|| {
                c.status = ContractStatus::Ended;
                c.end = c.end.min(at);
                c
            })
        })
        .await
    }

    async fn put_grant(&self, grant: &AccessGrant) -> Result<()> {
        let current = self
            .get("CONTRACT", &grant.contract_id)
            .await?
            .ok_or_else(|| Error::Invalid(format!("no contract {}", grant.contract_id)))?;
        let contract: Contract = doc(&current)?;
        if contract.buyer != grant.buyer || contract.dataset != grant.dataset {
            return Err(Error::Invalid(format!(
                "contract {} is for {} on {}, not {} on {}",
                contract.id, contract.buyer, contract.dataset, grant.buyer, grant.dataset
            )));
        }
        if !contract.in_force(grant.granted_at) {
            return Err(Error::Invalid(format!(
                "contract {} is not in force",
                contract.id
            )));
        }
        let old_doc = match current.get("doc") {
            Some(AttributeValue::S(d)) => d.clone(),
            _ => return Err(Error::Invalid("contract item lacks `doc`".into())),
        };
        // The contract must be unchanged (not ended meanwhile) when the grant is written.
        let check = TransactWriteItem::builder()
            .condition_check(build(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .key("pk", s("CONTRACT"))
                    .key("sk", s(&grant.contract_id))
                    .condition_expression("doc = :doc")
                    .expression_attribute_values(":doc", s(old_doc))
                    .build(),
            )?)
            .build();
        let put = self.put_item(
            item(&format!("GRANT#{}", grant.buyer), &grant.dataset, grant)?,
            None,
        )?;
        match self.transact(vec![check, put]).await {
            Ok(()) => Ok(()),
            Err(e) if cancellation_codes(&e).is_some() => Err(Error::Conflict(format!(
                "contract {} changed while granting; retry",
                grant.contract_id
            ))),
            Err(e) => Err(sdk_error(SERVICE, "TransactWriteItems", e)),
        }
    }

    async fn grant(&self, buyer: &str, dataset: &str) -> Result<Option<AccessGrant>> {
        self.get_doc(&format!("GRANT#{buyer}"), dataset).await
    }

    async fn grants(&self, buyer: &str) -> Result<Vec<AccessGrant>> {
        self.query_docs(&format!("GRANT#{buyer}"), None).await
    }

    async fn revoke_grant(&self, buyer: &str, dataset: &str, at: DateTime<Utc>) -> Result<bool> {
        self.modify(&format!("GRANT#{buyer}"), dataset, |mut g: AccessGrant| {
            g.revoked_at.is_none().then(|| {
                g.revoked_at = Some(at);
                g
            })
        })
        .await
    }

    async fn record_usage(&self, event: &UsageEvent, charge: &QuotaCharge) -> Result<UsageOutcome> {
        let (start, end) = charge.period.window(event.at);
        let quota_pk = format!("QUOTA#{}", charge.contract_id);
        let window = time(&start);
        let count = TransactWriteItem::builder()
            .update(build(
                Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(&quota_pk))
                    .key("sk", s(&window))
                    .update_expression("ADD used :one")
                    .condition_expression("attribute_not_exists(used) OR used < :limit")
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":limit", n(charge.limit))
                    .build(),
            )?)
            .build();
        let marker = self.put_item(
            item(
                &format!("REQUEST#{}", event.request_id),
                "REQUEST",
                &event.buyer,
            )?,
            Some("attribute_not_exists(pk)"),
        )?;
        let record = self.put_item(
            item(
                &format!("EVENT#{}", event.buyer),
                &format!("{}#{}", time(&event.at), event.request_id),
                event,
            )?,
            None,
        )?;
        // The request id names the transaction: a retry after an ambiguous failure (a
        // timeout, a 5xx) is not applied twice.
        let token = {
            use sha2::Digest;
            hex::encode(&sha2::Sha256::digest(event.request_id.as_bytes())[..16])
        };
        let items = vec![count, marker, record];
        let mut attempt = 0_u32;
        loop {
            let result = self.transact_once(items.clone(), Some(token.clone())).await;
            let e = match result {
                Ok(()) => {
                    // Committed: the request is charged, so it must be answered. If the
                    // counter cannot be read back, report the window as used up to the
                    // limit (an under-estimate of what is left, never an error).
                    let state = match self.quota_state(charge, event.at).await {
                        Ok(state) => state,
                        Err(e) => {
                            tracing::warn!(error = %crate::chain(&e), "quota counter not read back after a recorded request");
                            QuotaState {
                                window_start: start,
                                window_end: end,
                                used: charge.limit,
                                limit: charge.limit,
                            }
                        }
                    };
                    return Ok(UsageOutcome::Recorded(state));
                }
                Err(e) => e,
            };
            let codes = cancellation_codes(&e);
            match codes.as_deref() {
                Some([q, ..]) if q == "ConditionalCheckFailed" => {
                    return Ok(UsageOutcome::QuotaExceeded(QuotaState {
                        window_start: start,
                        window_end: end,
                        used: charge.limit,
                        limit: charge.limit,
                    }));
                }
                Some([_, m, _]) if m == "ConditionalCheckFailed" => {
                    return Err(Error::Conflict(format!(
                        "request {} already exists",
                        event.request_id
                    )));
                }
                _ => {}
            }
            // Another transaction on the same quota counter (TransactionConflict), or a
            // server error: the counter is contended, not wrong. Retry with backoff.
            let contended = codes.is_some_and(|c| c.iter().any(|c| c == "TransactionConflict"))
                || e.raw_response()
                    .is_some_and(|r| r.status().is_server_error())
                || e.as_service_error().is_some_and(|se| {
                    matches!(
                        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(se),
                        Some("TransactionConflictException" | "TransactionInProgressException")
                    )
                });
            if !contended || attempt >= 12 {
                return Err(sdk_error(SERVICE, "TransactWriteItems", e));
            }
            attempt += 1;
            let jitter = u64::from(
                event.request_id.bytes().fold(attempt, |h, b| {
                    h.wrapping_mul(31).wrapping_add(u32::from(b))
                }) % 20,
            );
            tokio::time::sleep(std::time::Duration::from_millis(
                5 * u64::from(attempt) + jitter,
            ))
            .await;
        }
    }

    async fn quota_state(&self, charge: &QuotaCharge, at: DateTime<Utc>) -> Result<QuotaState> {
        let (start, end) = charge.period.window(at);
        let used = match self
            .get(&format!("QUOTA#{}", charge.contract_id), &time(&start))
            .await?
        {
            Some(i) => match i.get("used") {
                Some(AttributeValue::N(v)) => v
                    .parse()
                    .map_err(|_| Error::Invalid(format!("quota counter {v:?} is not a count")))?,
                _ => 0,
            },
            None => 0,
        };
        Ok(QuotaState {
            window_start: start,
            window_end: end,
            used,
            limit: charge.limit,
        })
    }

    async fn usage_events(
        &self,
        buyer: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<UsageEvent>> {
        let mut events: Vec<UsageEvent> = match buyer {
            Some(b) => {
                // `~` sorts after every request id character, so `to#~` bounds the range.
                self.query_docs(
                    &format!("EVENT#{b}"),
                    Some((time(&from), format!("{}#~", time(&to)))),
                )
                .await?
            }
            None => {
                let items = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .filter_expression("begins_with(pk, :e)")
                    .expression_attribute_values(":e", s("EVENT#"))
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "Scan", e))?;
                items.iter().map(doc).collect::<Result<_>>()?
            }
        };
        events.retain(|e| e.at >= from && e.at < to);
        events.sort_by(|a, b| (a.at, &a.request_id).cmp(&(b.at, &b.request_id)));
        Ok(events)
    }

    async fn put_revenue_shares(
        &self,
        contract_id: &str,
        period: &str,
        lines: &[RevenueShareLine],
    ) -> Result<()> {
        crate::market::check_revenue_lines(contract_id, period, lines)?;
        let pk = format!("REVENUE#{period}");
        let prefix = format!("{contract_id}#");
        let old = self
            .query(&pk, Some((prefix.clone(), format!("{prefix}~"))))
            .await?;
        let mut writes = Vec::new();
        let new_keys: Vec<String> = lines
            .iter()
            .map(|l| format!("{prefix}{}", l.tenant))
            .collect();
        for o in &old {
            if let Some(AttributeValue::S(sk)) = o.get("sk")
                && !new_keys.contains(sk)
            {
                writes.push(
                    TransactWriteItem::builder()
                        .delete(build(
                            aws_sdk_dynamodb::types::Delete::builder()
                                .table_name(&self.table)
                                .key("pk", s(&pk))
                                .key("sk", s(sk))
                                .build(),
                        )?)
                        .build(),
                );
            }
        }
        for (line, sk) in lines.iter().zip(&new_keys) {
            writes.push(self.put_item(item(&pk, sk, line)?, None)?);
        }
        // One transaction holds 100 items: a contract's month has one line per tenant.
        for chunk in writes.chunks(100) {
            self.transact(chunk.to_vec())
                .await
                .map_err(|e| sdk_error(SERVICE, "TransactWriteItems", e))?;
        }
        Ok(())
    }

    async fn revenue_shares(&self, period: &str) -> Result<Vec<RevenueShareLine>> {
        let mut lines: Vec<RevenueShareLine> =
            self.query_docs(&format!("REVENUE#{period}"), None).await?;
        lines.sort_by(|a, b| (&a.contract_id, &a.tenant).cmp(&(&b.contract_id, &b.tenant)));
        Ok(lines)
    }
}
