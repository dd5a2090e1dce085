//! AWS pieces of the worker (feature `aws`): the CloudWatch metrics sink, and `stackpro
//! setup`, which creates or updates every AWS resource idempotently. `s3://` locations
//! live in `catalog::storage::s3`.

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use catalog::aws::{Change, DynamoConsentStore, GlueCatalog};
use catalog::storage::s3::split_s3_url;

use crate::{Config, Error, Result};

/// An S3 call's failure, classified like every AWS failure (throttling and 5xx answers are
/// retryable, a refused request is not).
fn aws_error<E, R>(service: &'static str, op: &str, e: aws_sdk_s3::error::SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    catalog::aws::sdk_error(service, op, e).into()
}

/// One line of the setup report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupStep {
    pub resource: String,
    pub change: Change,
}

/// Retention of a bucket prefix: expire current objects after `days`, and (on versioned
/// buckets) noncurrent versions after `days` too.
struct Retention<'a> {
    prefix: &'a str,
    days: i32,
    versioned: bool,
}

/// Days a noncurrent version of a curated object is kept.
const NONCURRENT_DAYS: i32 = 7;

/// Extra days the curated lifecycle rule waits past `retention.curated_days`: files are
/// written just before their release is published, so expiring them exactly at the age
/// could delete a release's files before `retention sweep` takes it out of the catalog.
/// The rule is the backstop; the sweep (catalog first, then files) is the normal path.
const CURATED_GRACE_DAYS: i32 = 1;

/// The S3 side of setup.
struct S3Setup {
    client: aws_sdk_s3::Client,
    region: Option<String>,
}

impl S3Setup {
    async fn ensure_bucket(&self, bucket: &str) -> Result<Change> {
        match self.client.head_bucket().bucket(bucket).send().await {
            Ok(_) => return Ok(Change::Unchanged),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => {}
            Err(e) => return Err(aws_error("s3", "HeadBucket", e)),
        }
        let mut create = self.client.create_bucket().bucket(bucket);
        if let Some(region) = self.region.as_deref().filter(|r| *r != "us-east-1") {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(Change::Created),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_bucket_already_owned_by_you()) =>
            {
                Ok(Change::Unchanged)
            }
            Err(e) => Err(aws_error("s3", "CreateBucket", e)),
        }
    }

    async fn ensure_versioning(&self, bucket: &str) -> Result<Change> {
        let enabled = match self
            .client
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => out.status() == Some(&BucketVersioningStatus::Enabled),
            // A successful answer whose root element the SDK refuses: moto names it
            // `GetBucketVersioningResponse` instead of `VersioningConfiguration`. Read the
            // status element ourselves; anything else counts as not enabled (enabling is
            // idempotent).
            Err(e) if e.raw_response().is_some_and(|r| r.status().is_success()) => e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .is_some_and(|body| {
                    String::from_utf8_lossy(body).contains("<Status>Enabled</Status>")
                }),
            Err(e) => return Err(aws_error("s3", "GetBucketVersioning", e)),
        };
        if enabled {
            return Ok(Change::Unchanged);
        }
        self.client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_error("s3", "PutBucketVersioning", e))?;
        Ok(Change::Updated)
    }

    async fn ensure_kms_encryption(&self, bucket: &str, key: Option<&str>) -> Result<Change> {
        let current = match self
            .client
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => out
                .server_side_encryption_configuration()
                .map(|c| c.rules().to_vec())
                .unwrap_or_default(),
            Err(e)
                if e.as_service_error().and_then(|se| se.code())
                    == Some("ServerSideEncryptionConfigurationNotFoundError") =>
            {
                Vec::new()
            }
            Err(e) => return Err(aws_error("s3", "GetBucketEncryption", e)),
        };
        let matches = current.iter().any(|rule| {
            rule.apply_server_side_encryption_by_default()
                .is_some_and(|d| {
                    d.sse_algorithm() == &ServerSideEncryption::AwsKms
                        && d.kms_master_key_id() == key
                })
        });
        if matches {
            return Ok(Change::Unchanged);
        }
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .set_kms_master_key_id(key.map(str::to_owned))
            .build()
            .map_err(|e| Error::Invariant(format!("an S3 request we built is incomplete: {e}")))?;
        let config = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(default)
                    // S3 Bucket Keys cut KMS request costs by orders of magnitude.
                    .bucket_key_enabled(true)
                    .build(),
            )
            .build()
            .map_err(|e| Error::Invariant(format!("an S3 request we built is incomplete: {e}")))?;
        self.client
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map_err(|e| aws_error("s3", "PutBucketEncryption", e))?;
        Ok(if current.is_empty() {
            Change::Created
        } else {
            Change::Updated
        })
    }

    /// One rule id per root prefix (roots never overlap: see `Config::validate`).
    fn rule_id(prefix: &str) -> String {
        if prefix.is_empty() {
            "stackpro-retention".into()
        } else {
            format!("stackpro-retention:{prefix}")
        }
    }

    /// Sets our expiration rule(s) for the given prefixes, keeping every other rule.
    async fn ensure_lifecycle(&self, bucket: &str, wanted: &[Retention<'_>]) -> Result<Change> {
        let current = match self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => out.rules().to_vec(),
            Err(e)
                if e.as_service_error().and_then(|se| se.code())
                    == Some("NoSuchLifecycleConfiguration") =>
            {
                Vec::new()
            }
            Err(e) => return Err(aws_error("s3", "GetBucketLifecycleConfiguration", e)),
        };
        let shape = |r: &LifecycleRule| {
            (
                r.id().map(str::to_owned),
                r.status().clone(),
                r.filter().and_then(|f| f.prefix()).map(str::to_owned),
                r.expiration().and_then(|e| e.days()),
                r.noncurrent_version_expiration()
                    .and_then(|n| n.noncurrent_days()),
            )
        };
        let mut ours = Vec::new();
        for w in wanted {
            let prefix = if w.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", w.prefix)
            };
            let mut rule = LifecycleRule::builder()
                .id(Self::rule_id(w.prefix))
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
                .expiration(LifecycleExpiration::builder().days(w.days).build());
            if w.versioned {
                // Versions replaced or deleted (by the sweep or this rule) stay a week, to
                // recover from a bad overwrite, then go: retention must not double.
                rule = rule.noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(NONCURRENT_DAYS.min(w.days))
                        .build(),
                );
            }
            ours.push(rule.build().map_err(|e| {
                Error::Invariant(format!("an S3 request we built is incomplete: {e}"))
            })?);
        }
        let our_ids: Vec<Option<String>> = ours.iter().map(|r| r.id().map(str::to_owned)).collect();
        let unchanged = ours
            .iter()
            .all(|want| current.iter().any(|have| shape(have) == shape(want)));
        if unchanged {
            return Ok(Change::Unchanged);
        }
        let mut rules: Vec<LifecycleRule> = current
            .iter()
            .filter(|r| !our_ids.contains(&r.id().map(str::to_owned)))
            .cloned()
            .collect();
        rules.extend(ours);
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .set_rules(Some(rules))
                    .build()
                    .map_err(|e| {
                        Error::Invariant(format!("an S3 request we built is incomplete: {e}"))
                    })?,
            )
            .send()
            .await
            .map_err(|e| aws_error("s3", "PutBucketLifecycleConfiguration", e))?;
        Ok(if current.is_empty() {
            Change::Created
        } else {
            Change::Updated
        })
    }
}

/// Creates or updates, idempotently, every AWS resource the configuration names: the
/// `s3://` buckets (curated: versioned, SSE-KMS by default; all: retention lifecycle from
/// the policy), the Glue database, the DynamoDB tables and the Lake Formation tag keys.
/// A second run reports every step `unchanged`.
pub async fn setup(config: &Config) -> Result<Vec<SetupStep>> {
    let policy = config.load_policy()?;
    let sdk = catalog::aws::sdk_config(&config.aws).await;
    let s3 = S3Setup {
        client: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        ),
        region: sdk.region().map(ToString::to_string),
    };
    let mut steps = Vec::new();
    let mut step = |resource: String, change: Change| {
        steps.push(SetupStep { resource, change });
    };

    // Buckets, in order raw, quarantine, curated; several roots may share a bucket.
    let raw_days = i32::try_from(policy.retention.raw_days).unwrap_or(i32::MAX);
    let curated_days = i32::try_from(policy.retention.curated_days)
        .unwrap_or(i32::MAX)
        .saturating_add(CURATED_GRACE_DAYS);
    // bucket → its roots: (key prefix, expiry days, curated?)
    type Roots = Vec<(String, i32, bool)>;
    let mut buckets: Vec<(String, Roots)> = Vec::new();
    for (url, days, curated) in [
        (&config.raw, raw_days, false),
        (&config.quarantine, raw_days, false),
        (&config.curated, curated_days, true),
    ] {
        if catalog::storage::Scheme::of(url.trim()).ok() != Some(catalog::storage::Scheme::S3) {
            continue;
        }
        let (bucket, prefix) = split_s3_url(url)?;
        match buckets.iter_mut().find(|(b, _)| *b == bucket) {
            Some((_, prefixes)) => prefixes.push((prefix, days, curated)),
            None => buckets.push((bucket, vec![(prefix, days, curated)])),
        }
    }
    for (bucket, prefixes) in &buckets {
        step(
            format!("s3 bucket {bucket}"),
            s3.ensure_bucket(bucket).await?,
        );
        let curated = prefixes.iter().any(|(_, _, c)| *c);
        if curated {
            step(
                format!("s3 bucket {bucket}: versioning"),
                s3.ensure_versioning(bucket).await?,
            );
            step(
                format!("s3 bucket {bucket}: default encryption SSE-KMS"),
                s3.ensure_kms_encryption(bucket, config.aws.kms_key_id.as_deref())
                    .await?,
            );
        }
        let wanted: Vec<Retention<'_>> = prefixes
            .iter()
            .map(|(prefix, days, _)| Retention {
                prefix,
                days: *days,
                versioned: curated,
            })
            .collect();
        let days: Vec<String> = prefixes
            .iter()
            .map(|(p, d, _)| {
                format!(
                    "{}{d} days",
                    if p.is_empty() {
                        String::new()
                    } else {
                        format!("{p}/: ")
                    }
                )
            })
            .collect();
        step(
            format!("s3 bucket {bucket}: lifecycle expiry ({})", days.join(", ")),
            s3.ensure_lifecycle(bucket, &wanted).await?,
        );
    }

    let catalog = GlueCatalog::new(&sdk, &config.aws);
    for (resource, change) in catalog.ensure_resources().await? {
        step(resource, change);
    }
    let consent = DynamoConsentStore::new(
        catalog::aws::DynamoDbClient::new(&sdk),
        &config.aws.consent_table,
    );
    step(
        format!("dynamodb table {}", consent.table()),
        consent.ensure_table().await?,
    );
    let market = catalog::aws::DynamoMarketStore::new(
        catalog::aws::DynamoDbClient::new(&sdk),
        &config.aws.marketplace_table,
    );
    step(
        format!("dynamodb table {} (TTL on listings)", market.table()),
        market.ensure_table().await?,
    );
    Ok(steps)
}
