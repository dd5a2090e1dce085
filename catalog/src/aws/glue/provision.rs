//! `stackpro setup`'s part of the Glue catalog: the database, the ledger table and the
//! Lake Formation tags, created or updated idempotently.

use aws_sdk_glue::types::DatabaseInput;

use super::{GLUE, GlueCatalog};
use crate::aws::dynamodb::ensure_dynamodb_table;
use crate::aws::{Change, sdk_error};
use crate::error::{Error, Result};

impl GlueCatalog {
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
        for key in crate::aws::TAG_KEYS {
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
}
