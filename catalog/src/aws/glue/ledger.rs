//! The DynamoDB side of the Glue catalog: release items, the raw-object ledger and the
//! pending markers of the commit, as items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{DYNAMODB, GlueCatalog};
use crate::aws::dynamodb::s;
use crate::aws::sdk_error;
use crate::error::{Error, Result};
use crate::model::Release;

impl GlueCatalog {
    pub(super) async fn delete_item(&self, pk: &str, sk: &str) -> Result<()> {
        self.ddb
            .delete_item()
            .table_name(&self.ledger_table)
            .set_key(Some(Self::item_key(pk, sk)))
            .send()
            .await
            .map_err(|e| sdk_error(DYNAMODB, "DeleteItem", e))?;
        Ok(())
    }

    pub(super) async fn has_pending_marker(&self, release_id: &str) -> Result<bool> {
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
    pub(super) fn ledger_pk(url: &str) -> String {
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

    pub(super) fn item_key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
            ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
        ])
    }

    pub(super) async fn query_partition(
        &self,
        pk: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>> {
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

    pub(super) fn release_item(release: &Release) -> Result<HashMap<String, AttributeValue>> {
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

    pub(super) fn decode_release(item: &HashMap<String, AttributeValue>) -> Result<Release> {
        serde_json::from_str(s(item, "json")?)
            .map_err(|e| Error::Invalid(format!("release item does not decode: {e}")))
    }
}
