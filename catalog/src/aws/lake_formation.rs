//! Lake Formation LF-tags: the tag keys `tenant`, `dataset` and `source`, created on demand
//! with the values seen, assigned to the catalog's tables, and tag-based grants.
//!
//! LF-tags attach to databases, tables and columns, not to partitions, and a resource
//! carries one value per key. So a tag expression can only select a tenant's data if that
//! data is a table of its own: [`GlueCatalog`](super::GlueCatalog) keeps, beside each
//! dataset table, one table per (dataset, tenant) over the same files, tagged
//! `dataset=…`, `tenant=…` (and `source=…` when all its data came from one source). The
//! dataset table is tagged `dataset=…` only, so `dataset=contacts AND tenant=t-0042`
//! selects exactly the tenant's table.
//!
//! The emulator does not evaluate tag expressions or enforce grants, so
//! [`LfTagExpression::matches`] is ours and tested here; grants are recorded through the
//! real API.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Mutex;

use aws_sdk_lakeformation::Client;
use aws_sdk_lakeformation::types::{
    DataLakePrincipal, LfTag, LfTagPair, LfTagPolicyResource, Permission, Resource, ResourceType,
    TableResource,
};

use super::sdk_error;
use crate::error::{Error, Result};

const SERVICE: &str = "lakeformation";

/// The LF-tag keys the catalog manages.
pub const TAG_KEYS: [&str; 3] = ["tenant", "dataset", "source"];

/// A conjunction of `key = one of values` terms, the shape of a Lake Formation tag
/// expression, e.g. `dataset=contacts AND tenant=t-0042` or `dataset=contacts,orders`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfTagExpression {
    terms: BTreeMap<String, BTreeSet<String>>,
}

impl LfTagExpression {
    /// Parses `key=v1,v2 AND key2=v3` (the `AND` is case-insensitive).
    pub fn parse(text: &str) -> Result<Self> {
        let mut terms = BTreeMap::new();
        // Terms are joined by the word AND, in any case.
        let mut term_texts: Vec<String> = vec![String::new()];
        for word in text.split_whitespace() {
            if word.eq_ignore_ascii_case("and") {
                term_texts.push(String::new());
            } else if let Some(last) = term_texts.last_mut() {
                last.push_str(word);
            }
        }
        for term in &term_texts {
            let (key, values) = term.trim().split_once('=').ok_or_else(|| {
                Error::Invalid(format!("tag expression term `{term}` is not key=value"))
            })?;
            let values: BTreeSet<String> = values
                .split(',')
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect();
            let key = key.trim();
            if key.is_empty() || values.is_empty() {
                return Err(Error::Invalid(format!(
                    "tag expression term `{term}` needs a key and at least one value"
                )));
            }
            if terms.insert(key.to_owned(), values).is_some() {
                return Err(Error::Invalid(format!(
                    "tag expression repeats the key `{key}`"
                )));
            }
        }
        if terms.is_empty() {
            return Err(Error::Invalid("empty tag expression".into()));
        }
        Ok(Self { terms })
    }

    /// Whether a resource with `tags` (key → its one value) is selected: every term's key
    /// must be on the resource with one of the term's values.
    #[must_use]
    pub fn matches(&self, tags: &BTreeMap<String, String>) -> bool {
        self.terms
            .iter()
            .all(|(key, values)| tags.get(key).is_some_and(|v| values.contains(v)))
    }

    fn to_lf_tags(&self) -> Result<Vec<LfTag>> {
        self.terms
            .iter()
            .map(|(key, values)| {
                LfTag::builder()
                    .tag_key(key)
                    .set_tag_values(Some(values.iter().cloned().collect()))
                    .build()
                    .map_err(|e| Error::Invalid(e.to_string()))
            })
            .collect()
    }
}

impl std::fmt::Display for LfTagExpression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let terms: Vec<String> = self
            .terms
            .iter()
            .map(|(k, v)| format!("{k}={}", v.iter().cloned().collect::<Vec<_>>().join(",")))
            .collect();
        f.write_str(&terms.join(" AND "))
    }
}

/// Those of `values` that `existing` lacks.
fn missing(values: &[String], existing: &[String]) -> Vec<String> {
    values
        .iter()
        .filter(|v| !existing.contains(v))
        .cloned()
        .collect()
}

/// The Lake Formation side of the catalog.
#[derive(Debug)]
pub struct LakeFormation {
    client: Client,
    /// (key, value) pairs known to exist, so steady-state publishing makes no tag calls.
    known: Mutex<HashSet<(String, String)>>,
}

impl LakeFormation {
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self {
            client,
            known: Mutex::new(HashSet::new()),
        }
    }

    /// The values of tag `key`, or `None` if the key does not exist.
    pub async fn tag_values(&self, key: &str) -> Result<Option<Vec<String>>> {
        match self.client.get_lf_tag().tag_key(key).send().await {
            // A tag key always has at least one value, so an empty answer means "no such
            // key" (moto answers that way instead of EntityNotFound).
            Ok(out) => Ok(Some(out.tag_values().to_vec()).filter(|v| !v.is_empty())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_entity_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(SERVICE, "GetLFTag", e)),
        }
    }

    /// Makes sure tag `key` exists with at least `values`, creating the key or adding
    /// the missing values. Returns whether anything changed.
    pub async fn ensure_tag(&self, key: &str, values: &[String]) -> Result<bool> {
        let missing_locally: Vec<String> = {
            let known = self
                .known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            values
                .iter()
                .filter(|v| !known.contains(&(key.to_owned(), (*v).clone())))
                .cloned()
                .collect()
        };
        if missing_locally.is_empty() && !values.is_empty() {
            return Ok(false);
        }
        let changed = match self.tag_values(key).await? {
            None => {
                // A key needs at least one value; `setup` creates keys before any data
                // exists, so it seeds them with the value `none`.
                let initial: Vec<String> = if values.is_empty() {
                    vec!["none".to_owned()]
                } else {
                    values.iter().take(50).cloned().collect()
                };
                let created = self
                    .client
                    .create_lf_tag()
                    .tag_key(key)
                    .set_tag_values(Some(initial))
                    .send()
                    .await;
                match created {
                    Ok(_) => {
                        self.add_values(key, values.get(50..).unwrap_or_default())
                            .await?;
                        true
                    }
                    // The API models no "already exists" error: if another worker created
                    // the key meanwhile, add our values to it; otherwise report the failure.
                    Err(e) => match self.tag_values(key).await? {
                        Some(existing) => {
                            self.add_values(key, &missing(values, &existing)).await?;
                            true
                        }
                        None => return Err(sdk_error(SERVICE, "CreateLFTag", e)),
                    },
                }
            }
            Some(existing) => {
                let to_add = missing(values, &existing);
                if to_add.is_empty() {
                    false
                } else {
                    self.add_values(key, &to_add).await?;
                    true
                }
            }
        };
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        known.extend(values.iter().map(|v| (key.to_owned(), v.clone())));
        Ok(changed)
    }

    async fn add_values(&self, key: &str, values: &[String]) -> Result<()> {
        // UpdateLFTag takes at most 50 values per call.
        for batch in values.chunks(50) {
            self.client
                .update_lf_tag()
                .tag_key(key)
                .set_tag_values_to_add(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "UpdateLFTag", e))?;
        }
        Ok(())
    }

    /// Removes the assignment `key=value` from a table.
    pub async fn untag_table(
        &self,
        database: &str,
        table: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        let pair = LfTagPair::builder()
            .tag_key(key)
            .tag_values(value)
            .build()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        self.client
            .remove_lf_tags_from_resource()
            .resource(Self::table_resource(database, table)?)
            .lf_tags(pair)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "RemoveLFTagsFromResource", e))?;
        Ok(())
    }

    fn table_resource(database: &str, table: &str) -> Result<Resource> {
        Ok(Resource::builder()
            .table(
                TableResource::builder()
                    .database_name(database)
                    .name(table)
                    .build()
                    .map_err(|e| Error::Invalid(e.to_string()))?,
            )
            .build())
    }

    /// Assigns `tags` to a table in one call (values must exist: see [`Self::ensure_tag`]).
    pub async fn tag_table(
        &self,
        database: &str,
        table: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        let pairs = tags
            .iter()
            .map(|(k, v)| {
                LfTagPair::builder()
                    .tag_key(k)
                    .tag_values(v)
                    .build()
                    .map_err(|e| Error::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .client
            .add_lf_tags_to_resource()
            .resource(Self::table_resource(database, table)?)
            .set_lf_tags(Some(pairs))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "AddLFTagsToResource", e))?;
        if let Some(failure) = out.failures().first() {
            return Err(Error::Aws {
                service: SERVICE,
                message: format!("AddLFTagsToResource on {database}.{table}: {failure:?}"),
                retryable: false,
                source: None,
            });
        }
        Ok(())
    }

    /// The tags on a table, key → value.
    pub async fn table_tags(
        &self,
        database: &str,
        table: &str,
    ) -> Result<BTreeMap<String, String>> {
        let out = self
            .client
            .get_resource_lf_tags()
            .resource(Self::table_resource(database, table)?)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "GetResourceLFTags", e))?;
        Ok(out
            .lf_tags_on_table()
            .iter()
            .filter_map(|pair| {
                pair.tag_values()
                    .first()
                    .map(|v| (pair.tag_key().to_owned(), v.clone()))
            })
            .collect())
    }

    /// Grants `principal` (an IAM ARN) `SELECT` and `DESCRIBE` on every table matching
    /// `expression` — the tag-based grant the marketplace issues for a data contract.
    pub async fn grant_select(&self, principal: &str, expression: &LfTagExpression) -> Result<()> {
        let policy = LfTagPolicyResource::builder()
            .resource_type(ResourceType::Table)
            .set_expression(Some(expression.to_lf_tags()?))
            .build()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        self.client
            .grant_permissions()
            .principal(
                DataLakePrincipal::builder()
                    .data_lake_principal_identifier(principal)
                    .build(),
            )
            .resource(Resource::builder().lf_tag_policy(policy).build())
            .permissions(Permission::Select)
            .permissions(Permission::Describe)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "GrantPermissions", e))?;
        Ok(())
    }

    /// Revokes what [`LakeFormation::grant_select`] granted for `expression`.
    pub async fn revoke_select(&self, principal: &str, expression: &LfTagExpression) -> Result<()> {
        let policy = LfTagPolicyResource::builder()
            .resource_type(ResourceType::Table)
            .set_expression(Some(expression.to_lf_tags()?))
            .build()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        self.client
            .revoke_permissions()
            .principal(
                DataLakePrincipal::builder()
                    .data_lake_principal_identifier(principal)
                    .build(),
            )
            .resource(Resource::builder().lf_tag_policy(policy).build())
            .permissions(Permission::Select)
            .permissions(Permission::Describe)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "RevokePermissions", e))?;
        Ok(())
    }

    /// The tag expressions granted to `principal` (as recorded by Lake Formation).
    pub async fn granted_expressions(&self, principal: &str) -> Result<Vec<String>> {
        // ListPermissions filters by principal only together with a resource, so list
        // everything and filter here.
        let pages = self
            .client
            .list_permissions()
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error(SERVICE, "ListPermissions", e))?;
        let expressions = pages
            .iter()
            .flat_map(|out| out.principal_resource_permissions())
            .filter(|p| {
                p.principal()
                    .and_then(|p| p.data_lake_principal_identifier())
                    == Some(principal)
            })
            .filter_map(|p| p.resource().and_then(|r| r.lf_tag_policy()))
            .map(|policy| {
                policy
                    .expression()
                    .iter()
                    .map(|t| format!("{}={}", t.tag_key(), t.tag_values().join(",")))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            })
            .collect();
        Ok(expressions)
    }
}

/// Access grants mirrored as tag-based `SELECT` grants on the dataset's tables.
#[async_trait::async_trait]
impl crate::market::LakeGrants for LakeFormation {
    async fn granted(&self, principal: &str) -> Result<Vec<String>> {
        self.granted_expressions(principal).await
    }

    async fn grant(&self, principal: &str, expression: &str) -> Result<()> {
        self.grant_select(principal, &LfTagExpression::parse(expression)?)
            .await
    }

    async fn revoke(&self, principal: &str, expression: &str) -> Result<()> {
        self.revoke_select(principal, &LfTagExpression::parse(expression)?)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn expression_selects_exactly_the_tenant_table() {
        let expr = LfTagExpression::parse("dataset=contacts AND tenant=t-0042").expect("parse");
        assert!(expr.matches(&tags(&[("dataset", "contacts"), ("tenant", "t-0042")])));
        assert!(expr.matches(&tags(&[
            ("dataset", "contacts"),
            ("tenant", "t-0042"),
            ("source", "web-form")
        ])));
        // The dataset table has no tenant tag; other tenants and datasets differ.
        assert!(!expr.matches(&tags(&[("dataset", "contacts")])));
        assert!(!expr.matches(&tags(&[("dataset", "contacts"), ("tenant", "t-0043")])));
        assert!(!expr.matches(&tags(&[("dataset", "orders"), ("tenant", "t-0042")])));
        assert_eq!(expr.to_string(), "dataset=contacts AND tenant=t-0042");
    }

    #[test]
    fn expression_values_are_alternatives() {
        let expr = LfTagExpression::parse("dataset=contacts,orders").expect("parse");
        assert!(expr.matches(&tags(&[("dataset", "orders")])));
        assert!(!expr.matches(&tags(&[("dataset", "web_events")])));
    }

    #[test]
    fn malformed_expressions_are_refused() {
        for bad in ["", "dataset", "=x", "dataset=", "a=1 AND a=2"] {
            assert!(
                LfTagExpression::parse(bad).is_err(),
                "{bad:?} must be refused"
            );
        }
    }
}
