//! Names and endpoints of the AWS backends. Always compiled (no SDK types), so a
//! configuration file naming them parses in every build; using them needs the `aws`
//! feature.

use serde::Deserialize;

/// Which backends hold the catalog and the control plane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite files in the state folder.
    #[default]
    Embedded,
    /// Glue + Lake Formation + DynamoDB (needs the `aws` feature).
    Aws,
}

/// Settings of the AWS backends. Credentials never live here: they come from the
/// standard AWS chain (environment, profile, SSO, instance or task role).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsSettings {
    /// Region; the standard chain (`AWS_REGION`, profile) when absent.
    pub region: Option<String>,
    /// Endpoint override for every client (an emulator such as `http://127.0.0.1:5000`);
    /// `AWS_ENDPOINT_URL` is honoured too when absent.
    pub endpoint: Option<String>,
    /// Glue database of the curated tables.
    pub glue_database: String,
    /// DynamoDB table of release metadata and the raw-object ledger.
    pub catalog_table: String,
    /// DynamoDB table of consent settings.
    pub consent_table: String,
    /// DynamoDB table of the marketplace (listings and versions, contracts, grants, usage
    /// and quotas, revenue shares, buyers and API keys; see `aws::DynamoMarketStore`).
    pub marketplace_table: String,
    /// KMS key (id, alias or ARN) for the curated buckets' default SSE-KMS encryption;
    /// the AWS-managed `aws/s3` key when absent.
    pub kms_key_id: Option<String>,
    /// Turns SDK retries off (tests against an emulator want fast, exact failures).
    pub disable_retries: bool,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint: None,
            glue_database: "stackpro-catalog".into(),
            catalog_table: "StackProReleases".into(),
            consent_table: "ConsentSettings".into(),
            marketplace_table: "StackProMarketplace".into(),
            kms_key_id: None,
            disable_retries: false,
        }
    }
}

impl AwsSettings {
    /// The endpoint to use: the configured one, else `AWS_ENDPOINT_URL`.
    #[must_use]
    pub fn effective_endpoint(&self) -> Option<String> {
        self.endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .filter(|e| !e.trim().is_empty())
    }
}
