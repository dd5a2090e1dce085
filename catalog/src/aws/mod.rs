//! AWS backends (feature `aws`): [`GlueCatalog`] (Glue tables and partitions, Lake
//! Formation tags, a DynamoDB release ledger), [`DynamoConsentStore`] and
//! [`CloudWatchMetrics`].
//!
//! Every client is built from one [`SdkConfig`] loaded by [`sdk_config`]: the standard
//! credential chain, the configured region, and an endpoint override so the same code runs
//! against `moto_server` in tests.

mod cloudwatch;
mod dynamodb;
mod glue;
mod lake_formation;
mod lease;
mod market;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use self::cloudwatch::CloudWatchMetrics;
pub use self::dynamodb::{DynamoConsentStore, ensure_dynamodb_table};
pub use self::glue::GlueCatalog;
pub use self::lake_formation::{LakeFormation, LfTagExpression, TAG_KEYS};
pub use self::lease::DynamoLeaseStore;
pub use self::market::DynamoMarketStore;
/// Re-exported so callers build clients without depending on the SDK crates themselves.
pub use aws_sdk_dynamodb::Client as DynamoDbClient;

use crate::aws_settings::AwsSettings;
use crate::error::Error;

/// What an idempotent `ensure_*` step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
        })
    }
}

/// Loads the shared SDK configuration: region and endpoint from `settings`, credentials
/// from the standard chain, retries off when `settings.disable_retries`.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = settings.effective_endpoint() {
        loader = loader.endpoint_url(endpoint);
    }
    if settings.disable_retries {
        loader = loader.retry_config(aws_config::retry::RetryConfig::disabled());
    }
    loader.load().await
}

/// Error codes that mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalServiceException",
    "InternalFailure",
    "ServiceUnavailable",
    "ConcurrentModificationException",
];

/// Maps an SDK error of `service`'s operation `op` into the crate's error. Dispatch
/// failures, timeouts and throttling are retryable; everything else is not. Public so
/// every crate that calls AWS classifies its failures the same way.
pub fn sdk_error<E, R>(
    service: &'static str,
    op: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => e.err().code().is_some_and(|c| RETRYABLE_CODES.contains(&c)),
        _ => false,
    };
    Error::Aws {
        service,
        message: op.to_owned(),
        retryable,
        source: Some(Box::new(err)),
    }
}
