//! [`DynamoLeaseStore`]: leases as items of the control-plane (marketplace) table
//! (`pk = LEASE#{name}`, `sk = LEASE`), taken by a conditional `PutItem` (free, or
//! expired), renewed and released by conditional writes on the token.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeDelta, Utc};

use super::sdk_error;
use crate::error::Result;
use crate::lease::{Lease, LeaseStore, new_token};

const SERVICE: &str = "dynamodb";

/// The [`LeaseStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoLeaseStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn millis(t: &DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(t.timestamp_millis().to_string())
}

fn failed<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

impl DynamoLeaseStore {
    /// Leases in `table` (created by `stackpro setup` as the marketplace table).
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl LeaseStore for DynamoLeaseStore {
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>> {
        let lease = Lease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            token: new_token(),
            expires_at: now + ttl,
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("LEASE#{name}")))
            .item("sk", s("LEASE"))
            .item("holder", s(holder))
            .item("token", s(&lease.token))
            .item("expires_at", millis(&lease.expires_at))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", millis(&now))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Some(lease)),
            Err(e) if failed(&e) => Ok(None),
            Err(e) => Err(sdk_error(SERVICE, "PutItem", e)),
        }
    }

    async fn renew(
        &self,
        lease: &Lease,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease>> {
        let renewed = Lease {
            expires_at: now + ttl,
            ..lease.clone()
        };
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("LEASE#{}", lease.name)))
            .key("sk", s("LEASE"))
            .update_expression("SET expires_at = :until")
            .condition_expression("#token = :token AND expires_at > :now")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":until", millis(&renewed.expires_at))
            .expression_attribute_values(":token", s(&lease.token))
            .expression_attribute_values(":now", millis(&now))
            .send()
            .await;
        match update {
            Ok(_) => Ok(Some(renewed)),
            Err(e) if failed(&e) => Ok(None),
            Err(e) => Err(sdk_error(SERVICE, "UpdateItem", e)),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<bool> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("LEASE#{}", lease.name)))
            .key("sk", s("LEASE"))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(&lease.token))
            .send()
            .await;
        match delete {
            Ok(_) => Ok(true),
            Err(e) if failed(&e) => Ok(false),
            Err(e) => Err(sdk_error(SERVICE, "DeleteItem", e)),
        }
    }
}
