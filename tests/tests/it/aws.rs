//! The AWS backends against an emulator (`moto_server` on 127.0.0.1; `.ci/run` starts it
//! and sets `STACKPRO_TEST_AWS_ENDPOINT`). Built without the variable, the tests that need
//! it are reported as ignored, with the reason (see build.rs).
//!
//! The emulator does not enforce Lake Formation permissions, KMS, lifecycle expiry or
//! tag expressions: those rules are ours and are checked in our code, here and in unit
//! tests; the emulator proves the API calls and what they store.

use std::collections::BTreeMap;
use std::process::Command;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use catalog::AwsSettings;
use catalog::aws::{
    DynamoConsentStore, DynamoDbClient, DynamoMarketStore, GlueCatalog, LfTagExpression,
};
use catalog::conformance::{
    consent_store_suite, data_catalog_suite, market_store_suite, sample_release, sample_table,
};
use catalog::{DataCatalog, PublishOutcome};

use super::{Env, KEY, stackpro_bin, stdout_of_success, tenant_statuses, walk};

/// Why the emulator tests are ignored in a build without it.
const NEEDS_EMULATOR: &str = "needs moto_server: set STACKPRO_TEST_AWS_ENDPOINT=http://127.0.0.1:PORT when building the tests (bash .ci/run does)";

/// The emulator endpoint (tests using it are ignored in builds without one).
pub(super) fn emulator() -> String {
    std::env::var("STACKPRO_TEST_AWS_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| panic!("{NEEDS_EMULATOR}"))
}

/// A name no other test or run uses: lowercase letters, digits and `_`.
pub(super) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    // In letters: a long digit run in a tenant id or object name reads as a phone number
    // to the PII check of raw names, and such objects are left unread.
    let mut n = nanos % 10_000_000_000_000;
    let mut letters = String::new();
    while n > 0 {
        letters.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
    }
    format!("{prefix}{letters}")
}

pub(super) async fn sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

fn settings(endpoint: &str, unique: &str) -> AwsSettings {
    AwsSettings {
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.into()),
        glue_database: format!("db_{unique}"),
        catalog_table: format!("releases_{unique}"),
        consent_table: format!("consent_{unique}"),
        marketplace_table: format!("market_{unique}"),
        kms_key_id: None,
        disable_retries: true,
    }
}

#[tokio::test]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn glue_catalog_passes_the_data_catalog_suite() {
    let endpoint = emulator();
    let unique = unique("g");
    let sdk = sdk(&endpoint).await;
    let catalog = GlueCatalog::new(&sdk, &settings(&endpoint, &unique));
    catalog.ensure_resources().await.expect("ensure resources");
    data_catalog_suite(&catalog, &unique).await;
}

#[tokio::test]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn dynamodb_passes_the_market_store_suite() {
    let endpoint = emulator();
    let unique = unique("m");
    let sdk = sdk(&endpoint).await;
    let store = DynamoMarketStore::new(DynamoDbClient::new(&sdk), format!("market_{unique}"));
    assert_eq!(
        store.ensure_table().await.expect("create"),
        catalog::aws::Change::Created
    );
    assert_eq!(
        store.ensure_table().await.expect("again"),
        catalog::aws::Change::Unchanged
    );
    market_store_suite(&store, &unique).await;
    market_store_suite(&store, &format!("{unique}b")).await;
}

#[tokio::test]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn dynamodb_passes_the_consent_store_suite() {
    let endpoint = emulator();
    let unique = unique("c");
    let sdk = sdk(&endpoint).await;
    let store = DynamoConsentStore::new(DynamoDbClient::new(&sdk), format!("consent_{unique}"));
    assert_eq!(
        store.ensure_table().await.expect("create"),
        catalog::aws::Change::Created
    );
    assert_eq!(
        store.ensure_table().await.expect("again"),
        catalog::aws::Change::Unchanged
    );
    consent_store_suite(&store, &unique).await;
}

#[tokio::test]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn publishing_tags_tenant_tables_and_reconcile_completes_an_interrupted_publish() {
    let endpoint = emulator();
    let unique = unique("t");
    let sdk = sdk(&endpoint).await;
    let settings = settings(&endpoint, &unique);
    let catalog = GlueCatalog::new(&sdk, &settings);
    catalog.ensure_resources().await.expect("resources");
    let dataset = format!("ds_{unique}");
    catalog
        .upsert_table(&sample_table(&dataset))
        .await
        .expect("table");
    let (t1, t2) = (format!("t-{unique}-a"), format!("t-{unique}-b"));
    let key = |n: u32, source: &str| {
        format!("s3://raw/tenant=x/dataset=d/source={source}/dt=2026-11-24/{unique}-{n}")
    };
    let (k1, k2, k3) = (key(1, "web-form"), key(2, "web-form"), key(3, "chat"));
    let r1 = sample_release(&format!("r-{unique}-1"), &dataset, &t1, &[&k1]);
    let r2 = sample_release(&format!("r-{unique}-2"), &dataset, &t2, &[&k2, &k3]);
    for r in [&r1, &r2] {
        assert_eq!(
            catalog.publish_release(r).await.expect("publish"),
            PublishOutcome::Published
        );
    }

    // Glue: one partition per release on the dataset table and on the tenant's table.
    assert_eq!(
        catalog
            .partition_values(&dataset)
            .await
            .expect("partitions"),
        vec![
            vec![t1.clone(), r1.dt.clone(), r1.release_id.clone()],
            vec![t2.clone(), r2.dt.clone(), r2.release_id.clone()],
        ]
    );
    let t1_table = GlueCatalog::tenant_table_name(&dataset, &t1);
    assert_eq!(
        catalog
            .partition_values(&t1_table)
            .await
            .expect("tenant partitions"),
        vec![vec![r1.dt.clone(), r1.release_id.clone()]]
    );

    // Lake Formation: tags as stored, read back with the SDK; the expression selects
    // exactly the tenant's table.
    let lf = aws_sdk_lakeformation::Client::new(&sdk);
    let tags_of = |table: String| {
        let lf = lf.clone();
        let db = settings.glue_database.clone();
        async move {
            let out = lf
                .get_resource_lf_tags()
                .resource(
                    aws_sdk_lakeformation::types::Resource::builder()
                        .table(
                            aws_sdk_lakeformation::types::TableResource::builder()
                                .database_name(db)
                                .name(table)
                                .build()
                                .expect("table resource"),
                        )
                        .build(),
                )
                .send()
                .await
                .expect("get_resource_lf_tags");
            out.lf_tags_on_table()
                .iter()
                .map(|p| (p.tag_key().to_owned(), p.tag_values().join(",")))
                .collect::<BTreeMap<String, String>>()
        }
    };
    assert_eq!(
        tags_of(t1_table.clone()).await,
        BTreeMap::from([
            ("dataset".into(), dataset.clone()),
            ("source".into(), "web-form".into()),
            ("tenant".into(), t1.clone()),
        ]),
        "a tenant table carries its dataset, tenant and (single) source"
    );
    assert_eq!(
        tags_of(GlueCatalog::tenant_table_name(&dataset, &t2)).await,
        BTreeMap::from([
            ("dataset".into(), dataset.clone()),
            ("tenant".into(), t2.clone())
        ]),
        "two sources: no source tag (a resource has one value per key)"
    );
    assert_eq!(
        tags_of(dataset.clone()).await,
        BTreeMap::from([("dataset".into(), dataset.clone())])
    );
    let source_values = lf
        .get_lf_tag()
        .tag_key("source")
        .send()
        .await
        .expect("source tag");
    for s in ["web-form", "chat"] {
        assert!(
            source_values.tag_values().iter().any(|v| v == s),
            "tag values are created on demand: {s}"
        );
    }
    let expr = LfTagExpression::parse(&format!("dataset={dataset} AND tenant={t1}")).expect("expr");
    assert_eq!(
        catalog.tables_matching(&expr).await.expect("match"),
        vec![t1_table.clone()]
    );
    let principal = format!("arn:aws:iam::123456789012:role/buyer-{unique}");
    catalog
        .lake_formation()
        .grant_select(&principal, &expr)
        .await
        .expect("grant");
    assert_eq!(
        catalog
            .lake_formation()
            .granted_expressions(&principal)
            .await
            .expect("grants"),
        vec![format!("dataset={dataset} AND tenant={t1}")]
    );
    // The marketplace's access grants, mirrored: granted, then revoked.
    let buyer = format!("arn:aws:iam::123456789012:role/market-{unique}");
    let lake: &dyn catalog::market::LakeGrants = catalog.lake_formation();
    let expression = format!("dataset={dataset} AND tenant={t1}");
    lake.grant(&buyer, &expression)
        .await
        .expect("grant dataset");
    let held = lake.granted(&buyer).await.expect("grants");
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        catalog::market::expression_terms(&held[0]),
        catalog::market::expression_terms(&expression)
    );
    lake.revoke(&buyer, &held[0]).await.expect("revoke dataset");
    assert!(
        lake.granted(&buyer).await.expect("grants").is_empty(),
        "a revoked grant leaves no permission"
    );

    // A publish interrupted after the DynamoDB commit: the partition is missing and the
    // pending marker is there. reconcile() completes it.
    let glue = aws_sdk_glue::Client::new(&sdk);
    glue.delete_partition()
        .database_name(&settings.glue_database)
        .table_name(&dataset)
        .set_partition_values(Some(vec![t1.clone(), r1.dt.clone(), r1.release_id.clone()]))
        .send()
        .await
        .expect("delete partition");
    aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(&settings.catalog_table)
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("pending".into()),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(r1.release_id.clone()),
        )
        .send()
        .await
        .expect("pending marker");
    assert_eq!(
        catalog.partition_values(&dataset).await.expect("p").len(),
        1
    );
    assert_eq!(catalog.reconcile().await.expect("reconcile"), 1);
    assert_eq!(
        catalog.partition_values(&dataset).await.expect("p").len(),
        2
    );
    assert_eq!(catalog.reconcile().await.expect("reconcile again"), 0);

    // More inputs than one DynamoDB transaction holds are refused, not half-written.
    let keys: Vec<String> = (0..=GlueCatalog::MAX_INPUTS)
        .map(|n| format!("s3://raw/{unique}/many-{n}"))
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let big = sample_release(&format!("r-{unique}-big"), &dataset, &t1, &refs);
    assert!(matches!(
        catalog.publish_release(&big).await,
        Err(catalog::Error::Invalid(_))
    ));
    assert!(
        catalog
            .released_objects(&keys)
            .await
            .expect("ledger")
            .is_empty()
    );
}

/// Sums of the `StackPro/DataPlatform` metrics of `tenant` (dataset `contacts`) over the
/// last hour, read back with the CloudWatch SDK.
async fn cloudwatch_sums(sdk: &SdkConfig, tenant: &str, dataset: &str) -> Vec<(String, f64)> {
    let cw = aws_sdk_cloudwatch::Client::new(sdk);
    let end = std::time::SystemTime::now() + std::time::Duration::from_secs(600);
    let start = end - std::time::Duration::from_secs(7200);
    let mut out = Vec::new();
    for name in [
        "KAnonViolations",
        "SuppressedRecords",
        "RecordsIn",
        "RecordsOut",
        "QuarantinedRecords",
    ] {
        let stats = cw
            .get_metric_statistics()
            .namespace(catalog::metrics::NAMESPACE)
            .metric_name(name)
            .dimensions(
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name("Tenant")
                    .value(tenant)
                    .build(),
            )
            .dimensions(
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name("Dataset")
                    .value(dataset)
                    .build(),
            )
            .start_time(aws_smithy_types::DateTime::from(start))
            .end_time(aws_smithy_types::DateTime::from(end))
            .period(86_400)
            .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
            .send()
            .await
            .expect("get_metric_statistics");
        let sum: f64 = stats.datapoints().iter().filter_map(|d| d.sum()).sum();
        if !stats.datapoints().is_empty() {
            out.push((name.to_owned(), sum));
        }
    }
    out
}

#[tokio::test]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn cloudwatch_passes_the_metrics_sink_suite() {
    let endpoint = emulator();
    let sdk = sdk(&endpoint).await;
    let sink = catalog::aws::CloudWatchMetrics::new(&sdk);
    let tenant = unique("t-cw-");
    catalog::conformance::metrics_sink_suite(&sink, &tenant, |tenant| {
        let sdk = sdk.clone();
        async move { cloudwatch_sums(&sdk, &tenant, "contacts").await }
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn s3_passes_the_object_layout_suite() {
    let endpoint = emulator();
    let bucket = unique("layout-");
    let sdk = sdk(&endpoint).await;
    s3_client(&sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    // Built like `s3_location`, with the test's static credentials.
    for prefix in ["", "/curated"] {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&bucket)
            .with_region("us-east-1")
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .expect("s3 store");
        let store: std::sync::Arc<dyn object_store::ObjectStore> = if prefix.is_empty() {
            std::sync::Arc::new(store)
        } else {
            std::sync::Arc::new(object_store::prefix::PrefixStore::new(
                store,
                prefix.trim_start_matches('/'),
            ))
        };
        let location = catalog::storage::Location {
            store,
            url: format!("s3://{bucket}{prefix}"),
            local_dir: None,
        };
        catalog::storage::layout_suite(&location, "suite").await;
    }
}

pub(super) fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// The CLI against the emulator: a config file naming this test's resources, dummy
/// credentials in the environment.
pub(super) struct AwsEnv {
    pub(super) env: Env,
    pub(super) endpoint: String,
    pub(super) unique: String,
    pub(super) config: std::path::PathBuf,
}

impl AwsEnv {
    pub(super) fn new(endpoint: &str) -> Self {
        let env = Env::new();
        let unique = unique("e");
        let config = env.path("stackpro.toml");
        let bucket = |kind: &str| format!("s3://stackpro-{kind}-{unique}");
        std::fs::write(
            &config,
            format!(
                "backend = \"aws\"\nraw = \"{}\"\ncurated = \"{}\"\nquarantine = \"{}/held\"\n\
                 [aws]\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\nglue_database = \"db_{unique}\"\n\
                 catalog_table = \"releases_{unique}\"\nconsent_table = \"consent_{unique}\"\n\
                 kms_key_id = \"alias/stackpro-curated\"\ndisable_retries = true\n",
                bucket("raw"),
                bucket("curated"),
                bucket("quarantine"),
            ),
        )
        .expect("config");
        Self {
            env,
            endpoint: endpoint.to_owned(),
            unique,
            config,
        }
    }
    pub(super) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(stackpro_bin());
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(self.env.path(""))
            .env("STACKPRO_HASH_KEY", KEY)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("STACKPRO_CONFIG")
            .env_remove("STACKPRO_BACKEND")
            .env_remove("STACKPRO_RAW")
            .env_remove("STACKPRO_CURATED")
            .env_remove("STACKPRO_QUARANTINE")
            .env_remove("STACKPRO_FAULT");
        c
    }
    pub(super) fn ok(&self, args: &[&str]) -> String {
        stdout_of_success(self.cmd(args), args)
    }
    pub(super) fn bucket(&self, kind: &str) -> String {
        format!("stackpro-{kind}-{}", self.unique)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn setup_then_a_release_from_s3_to_s3_is_read_back_with_the_sdk() {
    let endpoint = emulator();
    let aws = AwsEnv::new(&endpoint);
    let sdk = sdk(&aws.endpoint).await;
    let s3 = s3_client(&sdk);

    // setup creates everything once; a second run changes nothing.
    let first = aws.ok(&["setup"]);
    assert!(first.contains("created"), "{first}");
    let second = aws.ok(&["setup"]);
    assert!(
        second.contains(" 0 changed"),
        "second setup must change nothing:\n{second}"
    );
    assert!(
        !second.contains("created") && !second.contains("updated"),
        "{second}"
    );

    let curated = aws.bucket("curated");
    let raw = aws.bucket("raw");
    let versioning = match s3.get_bucket_versioning().bucket(&curated).send().await {
        Ok(out) => out.status() == Some(&aws_sdk_s3::types::BucketVersioningStatus::Enabled),
        // moto's answer has a root element the SDK refuses; its body still says the truth.
        Err(e) => e
            .raw_response()
            .and_then(|r| r.body().bytes())
            .is_some_and(|b| String::from_utf8_lossy(b).contains("<Status>Enabled</Status>")),
    };
    assert!(versioning, "the curated bucket is versioned");
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&curated)
        .send()
        .await
        .expect("sse");
    let rule = encryption
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .expect("default encryption");
    assert_eq!(
        rule.sse_algorithm(),
        &aws_sdk_s3::types::ServerSideEncryption::AwsKms
    );
    assert_eq!(rule.kms_master_key_id(), Some("alias/stackpro-curated"));
    let expiry = |bucket: String| {
        let s3 = s3.clone();
        async move {
            let out = s3
                .get_bucket_lifecycle_configuration()
                .bucket(bucket)
                .send()
                .await
                .expect("lifecycle");
            let mut rules: Vec<(String, i32)> = out
                .rules()
                .iter()
                .map(|r| {
                    (
                        r.filter()
                            .and_then(|f| f.prefix())
                            .unwrap_or_default()
                            .to_owned(),
                        r.expiration().and_then(|e| e.days()).unwrap_or_default(),
                    )
                })
                .collect();
            rules.sort();
            rules
        }
    };
    assert_eq!(
        expiry(curated.clone()).await,
        vec![(String::new(), 731)],
        "730 days and one day of grace, so the sweep removes the catalog entry first"
    );
    assert_eq!(expiry(raw.clone()).await, vec![(String::new(), 90)]);
    assert_eq!(
        expiry(aws.bucket("quarantine")).await,
        vec![("held/".to_owned(), 90)],
        "a root under a prefix gets a rule for that prefix only"
    );

    // Raw data for two tenants; only one consents.
    // Tenants unique to this run: the emulator's metrics outlive a test.
    let (t1, t2) = (format!("t-{}-1", aws.unique), format!("t-{}-2", aws.unique));
    for (tenant, file) in [(t1.as_str(), "a.ndjson"), (t2.as_str(), "b.ndjson")] {
        let local = aws.env.path(file);
        aws.env.ok(&[
            "gen",
            "--dataset",
            "contacts",
            "--records",
            "3000",
            "--tenant",
            tenant,
            "--out",
            local.to_str().expect("utf8"),
            "--dirty",
            "0.01",
            "--seed",
            "5",
        ]);
        s3.put_object()
            .bucket(&raw)
            .key(format!(
                "tenant={tenant}/dataset=contacts/source=web-form/dt=2026-11-24/{file}"
            ))
            .body(std::fs::read(&local).expect("raw file").into())
            .send()
            .await
            .expect("upload raw");
    }
    aws.ok(&["consent", "grant", "--tenant", &t1, "--dataset", "contacts"]);
    let summary: serde_json::Value =
        serde_json::from_str(&aws.ok(&["run", "--json"])).expect("summary");
    assert_eq!(
        tenant_statuses(&summary),
        vec![
            (t1.clone(), "published".to_owned()),
            (t2.clone(), "no_consent".to_owned()),
        ],
        "{summary}"
    );
    let records_out = summary["partitions"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["status"] == "published"))
        .map(|p| p["report"]["records_out"].as_u64().expect("records_out"))
        .expect("published partition");

    // DynamoDB consent rows, read with the SDK.
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let consent = ddb
        .get_item()
        .table_name(format!("consent_{}", aws.unique))
        .key(
            "tenant",
            aws_sdk_dynamodb::types::AttributeValue::S(t1.clone()),
        )
        .key(
            "dataset",
            aws_sdk_dynamodb::types::AttributeValue::S("contacts".into()),
        )
        .send()
        .await
        .expect("consent item");
    assert_eq!(
        consent.item().and_then(|i| i.get("granted")),
        Some(&aws_sdk_dynamodb::types::AttributeValue::Bool(true))
    );

    // Glue: exactly the published release, as a partition of the dataset table.
    let glue = aws_sdk_glue::Client::new(&sdk);
    let db = format!("db_{}", aws.unique);
    let table = glue
        .get_table()
        .database_name(&db)
        .name("contacts")
        .send()
        .await
        .expect("glue table");
    let table = table.table().expect("table");
    let params = table.parameters().expect("parameters");
    assert_eq!(
        params.get("stackpro.policy_id").map(String::as_str),
        Some("default-v2")
    );
    assert_eq!(params.get("stackpro.k").map(String::as_str), Some("20"));
    assert_eq!(
        table
            .storage_descriptor()
            .and_then(|sd| sd.serde_info())
            .and_then(|s| s.serialization_library()),
        Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
    );
    let partitions = glue
        .get_partitions()
        .database_name(&db)
        .table_name("contacts")
        .send()
        .await
        .expect("partitions");
    let partitions = partitions.partitions();
    assert_eq!(
        partitions.len(),
        1,
        "one release, one partition: {partitions:?}"
    );
    let values = partitions[0].values();
    assert_eq!(&values[..2], [t1.as_str(), "2026-11-24"]);
    let location = partitions[0]
        .storage_descriptor()
        .and_then(|sd| sd.location())
        .expect("partition location");
    assert!(
        location.starts_with(&format!(
            "s3://{curated}/dataset=contacts/tenant={t1}/dt=2026-11-24/release="
        )),
        "{location}"
    );

    // Lake Formation tags on the tenant's table.
    let lf = aws_sdk_lakeformation::Client::new(&sdk);
    let tags = lf
        .get_resource_lf_tags()
        .resource(
            aws_sdk_lakeformation::types::Resource::builder()
                .table(
                    aws_sdk_lakeformation::types::TableResource::builder()
                        .database_name(&db)
                        .name(GlueCatalog::tenant_table_name("contacts", &t1))
                        .build()
                        .expect("resource"),
                )
                .build(),
        )
        .send()
        .await
        .expect("tags");
    let tags: BTreeMap<String, String> = tags
        .lf_tags_on_table()
        .iter()
        .map(|p| (p.tag_key().to_owned(), p.tag_values().join(",")))
        .collect();
    assert_eq!(
        tags,
        BTreeMap::from([
            ("dataset".into(), "contacts".into()),
            ("source".into(), "web-form".into()),
            ("tenant".into(), t1.clone()),
        ])
    );

    // CloudWatch datapoints of the release.
    let sums = cloudwatch_sums(&sdk, &t1, "contacts").await;
    let get = |name: &str| sums.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(get("RecordsOut"), Some(records_out as f64), "{sums:?}");
    assert_eq!(get("RecordsIn"), Some(3000.0), "{sums:?}");
    assert!(get("KAnonViolations").is_some() && get("QuarantinedRecords").is_some());
    assert!(cloudwatch_sums(&sdk, &t2, "contacts").await.is_empty());

    // S3: the curated files of the tenant without consent do not exist; the published
    // Parquet downloads and passes `verify`.
    let listed = s3
        .list_objects_v2()
        .bucket(&curated)
        .send()
        .await
        .expect("list curated");
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert!(keys.iter().all(|k| !k.contains(t2.as_str())), "{keys:?}");
    let parquet: Vec<&String> = keys.iter().filter(|k| k.ends_with(".parquet")).collect();
    assert!(!parquet.is_empty(), "{keys:?}");
    let download = aws.env.path("download");
    for key in &parquet {
        let body = s3
            .get_object()
            .bucket(&curated)
            .key(key.as_str())
            .send()
            .await
            .expect("get parquet")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        let path = download.join(key.as_str());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, body).expect("write");
    }
    assert_eq!(walk(&download).len(), parquet.len());
    aws.ok(&["verify", download.to_str().expect("utf8")]);

    // SQL over the published release reads the S3 files through the catalog.
    let counted = aws.ok(&["query", "SELECT count(*) AS n FROM contacts"]);
    assert!(
        counted.contains(&format!("| {records_out}")),
        "the query counts the published rows ({records_out}):\n{counted}"
    );

    // A second run publishes nothing new.
    let again: serde_json::Value =
        serde_json::from_str(&aws.ok(&["run", "--json"])).expect("summary");
    assert!(
        again["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .all(|p| p["status"] != "published"),
        "{again}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn s3_presigned_urls_download_the_object_and_only_until_expiry() {
    let endpoint = emulator();
    let bucket = unique("presign-").replace('_', "-");
    let sdk = sdk(&endpoint).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let key = "dataset=contacts/tenant=t-1/dt=2026-11-24/release=r-1/part-00000.parquet";
    let body: Vec<u8> = (0..5000_u32).map(|i| (i % 251) as u8).collect();
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(body.clone().into())
        .send()
        .await
        .expect("put");
    // The presigner reads credentials from the standard chain, as the API would.
    let settings = settings(&endpoint, "presign");
    let presigner = temp_env_credentials(|| {
        catalog::storage::s3::Presigner::new(&format!("s3://{bucket}"), &settings)
            .expect("presigner")
    });
    let url = presigner
        .presign_get(
            &format!("s3://{bucket}/{key}"),
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("presign");
    assert!(
        url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=60"),
        "{url}"
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let got = http.get(&url).send().await.expect("GET");
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.expect("bytes").to_vec(), body);
    let ranged = http
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .expect("range");
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.bytes().await.expect("bytes").to_vec(),
        body[10..20].to_vec()
    );
    let other = presigner
        .presign_get(
            &format!("s3://other-{bucket}/{key}"),
            std::time::Duration::from_secs(60),
        )
        .await;
    assert!(other.is_err(), "a URL for another bucket is refused");
}

/// Runs `f` once the standard credential chain can find keys (the emulator takes any;
/// `.ci/run` exports dummies, as the object stores of this process read them there).
fn temp_env_credentials<T>(f: impl FnOnce() -> T) -> T {
    assert!(
        std::env::var_os("AWS_ACCESS_KEY_ID").is_some(),
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values for the emulator; bash .ci/run does)"
    );
    f()
}

#[tokio::test]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn dynamodb_passes_the_lease_store_suite() {
    let endpoint = emulator();
    let unique = unique("l");
    let sdk = sdk(&endpoint).await;
    let table = format!("market_{unique}");
    DynamoMarketStore::new(DynamoDbClient::new(&sdk), &table)
        .ensure_table()
        .await
        .expect("table");
    let a = catalog::aws::DynamoLeaseStore::new(DynamoDbClient::new(&sdk), &table);
    let b = catalog::aws::DynamoLeaseStore::new(DynamoDbClient::new(&sdk), &table);
    catalog::conformance::lease_store_suite(&a, &b, &unique).await;
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn a_queue_worker_releases_each_partition_once_and_leaves_poison_to_the_dead_letter_queue() {
    let endpoint = emulator();
    let aws = AwsEnv::new(&endpoint);
    let sdk = sdk(&aws.endpoint).await;
    let s3 = s3_client(&sdk);
    aws.ok(&["setup"]);
    let raw = aws.bucket("raw");
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dlq = sqs
        .create_queue()
        .queue_name(format!("dlq-{}", aws.unique))
        .send()
        .await
        .expect("dlq")
        .queue_url
        .expect("dlq url");
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("dlq attributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("dlq arn");
    let queue = sqs
        .create_queue()
        .queue_name(format!("raw-events-{}", aws.unique))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}).to_string(),
        )
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");

    let tenants: Vec<String> = (1..=3).map(|i| format!("t-{}-{i}", aws.unique)).collect();
    let mut bodies = Vec::new();
    for (i, tenant) in tenants.iter().enumerate() {
        let local = aws.env.path(&format!("o{i}.ndjson"));
        aws.env.ok(&[
            "gen",
            "--dataset",
            "contacts",
            "--records",
            "1500",
            "--tenant",
            tenant,
            "--out",
            local.to_str().expect("utf8"),
            "--seed",
            "9",
        ]);
        let key =
            format!("tenant={tenant}/dataset=contacts/source=web-form/dt=2026-11-24/o{i}.ndjson");
        s3.put_object()
            .bucket(&raw)
            .key(&key)
            .body(std::fs::read(&local).expect("raw file").into())
            .send()
            .await
            .expect("upload raw");
        aws.ok(&[
            "consent",
            "grant",
            "--tenant",
            tenant,
            "--dataset",
            "contacts",
        ]);
        // What S3 sends: the key URL-encoded.
        let direct = serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "eventTime": "2026-11-24T12:00:00.000Z",
            "s3": {"bucket": {"name": raw}, "object": {"key": key.replace('=', "%3D"), "size": 1}}
        }]})
        .to_string();
        // Delivered twice, once wrapped by SNS.
        let sns = serde_json::json!({"Type": "Notification", "Message": direct}).to_string();
        bodies.push(direct);
        bodies.push(sns);
    }
    bodies.push(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"raw"}"#.to_owned());
    bodies.push("this is not an event".to_owned());
    for body in &bodies {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }

    let out = aws.ok(&[
        "worker",
        "--queue",
        &queue,
        "--wait-secs",
        "1",
        "--visibility-secs",
        "2",
        "--idle-exit-secs",
        "6",
    ]);
    let stats: serde_json::Value = serde_json::from_str(out.trim()).expect("stats");
    assert_eq!(stats["published"], 3, "{stats}");
    assert!(stats["poison"].as_u64().is_some_and(|p| p >= 1), "{stats}");
    let releases: Vec<serde_json::Value> =
        serde_json::from_str(&aws.ok(&["releases", "--json"])).expect("releases");
    let mut released: Vec<String> = releases
        .iter()
        .filter(|r| tenants.iter().any(|t| r["tenant"] == t.as_str()))
        .map(|r| r["tenant"].as_str().unwrap_or("").to_owned())
        .collect();
    released.sort();
    assert_eq!(released, tenants, "each partition released exactly once");

    // The poison message went to the dead-letter queue; nothing else is left.
    let mut dead = Vec::new();
    for _ in 0..5 {
        let got = sqs
            .receive_message()
            .queue_url(&dlq)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("dlq receive");
        dead.extend(
            got.messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.body),
        );
        if !dead.is_empty() {
            break;
        }
    }
    assert_eq!(dead, vec!["this is not an event".to_owned()]);
    let left = sqs
        .receive_message()
        .queue_url(&queue)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    assert!(
        left.messages.unwrap_or_default().is_empty(),
        "every other message was deleted"
    );
}

/// A small Lambda Runtime API (`/2018-06-01/runtime/...`) on 127.0.0.1 handing out
/// recorded payloads and keeping what the function answers.
#[derive(Default)]
struct RuntimeApi {
    events: std::sync::Mutex<std::collections::VecDeque<(String, serde_json::Value)>>,
    answers: std::sync::Mutex<Vec<(String, String, serde_json::Value)>>,
}

async fn runtime_api(api: std::sync::Arc<RuntimeApi>) -> std::net::SocketAddr {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    type Api = State<std::sync::Arc<RuntimeApi>>;
    async fn next(State(api): Api) -> axum::response::Response {
        let event = api.events.lock().expect("lock").pop_front();
        let Some((id, payload)) = event else {
            // No more invocations: hold the function here until the test ends it.
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            return StatusCode::NO_CONTENT.into_response();
        };
        let deadline = chrono::Utc::now().timestamp_millis() + 120_000;
        (
            [
                ("lambda-runtime-aws-request-id", id),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:etl-anonymize".to_owned(),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-5e1b4151-5ac6c58f5e7bde7f0f1c12a2".to_owned(),
                ),
                ("content-type", "application/json".to_owned()),
            ],
            payload.to_string(),
        )
            .into_response()
    }
    async fn answer(
        kind: &'static str,
        api: std::sync::Arc<RuntimeApi>,
        id: String,
        body: String,
    ) -> StatusCode {
        let value = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
        api.answers
            .lock()
            .expect("lock")
            .push((id, kind.to_owned(), value));
        StatusCode::ACCEPTED
    }
    let app = axum::Router::new()
        .route(
            "/2018-06-01/runtime/invocation/next",
            axum::routing::get(next),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            axum::routing::post(
                |State(api): Api, UrlPath(id): UrlPath<String>, body: String| {
                    answer("response", api, id, body)
                },
            ),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            axum::routing::post(
                |State(api): Api, UrlPath(id): UrlPath<String>, body: String| {
                    answer("error", api, id, body)
                },
            ),
        )
        .route(
            "/2018-06-01/runtime/init/error",
            axum::routing::post(|State(api): Api, body: String| {
                answer("init-error", api, "init".into(), body)
            }),
        )
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn the_lambda_handler_answers_s3_events_and_sqs_batches_with_partial_failures() {
    let endpoint = emulator();
    let aws = AwsEnv::new(&endpoint);
    let sdk = sdk(&aws.endpoint).await;
    let s3 = s3_client(&sdk);
    aws.ok(&["setup"]);
    let raw = aws.bucket("raw");
    let mut notifications = Vec::new();
    for i in 0..2 {
        let tenant = format!("t-{}-{i}", aws.unique);
        let local = aws.env.path(&format!("l{i}.ndjson"));
        aws.env.ok(&[
            "gen",
            "--dataset",
            "contacts",
            "--records",
            "1500",
            "--tenant",
            &tenant,
            "--out",
            local.to_str().expect("utf8"),
            "--seed",
            "3",
        ]);
        let key = format!("tenant={tenant}/dataset=contacts/source=chat/dt=2026-11-24/l{i}.ndjson");
        s3.put_object()
            .bucket(&raw)
            .key(&key)
            .body(std::fs::read(&local).expect("raw").into())
            .send()
            .await
            .expect("upload");
        aws.ok(&[
            "consent",
            "grant",
            "--tenant",
            &tenant,
            "--dataset",
            "contacts",
        ]);
        notifications.push(serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "eventTime": "2026-11-24T12:00:00.000Z",
            "s3": {"bucket": {"name": raw}, "object": {"key": key.replace('=', "%3D"), "size": 1}}
        }]}));
    }
    let api = std::sync::Arc::new(RuntimeApi::default());
    api.events.lock().expect("lock").extend([
        (
            "inv-sqs".to_owned(),
            serde_json::json!({"Records": [
                {"messageId": "m-good", "eventSource": "aws:sqs", "body": notifications[0].to_string()},
                {"messageId": "m-poison", "eventSource": "aws:sqs", "body": "not an event"},
            ]}),
        ),
        ("inv-s3".to_owned(), notifications[1].clone()),
    ]);
    let addr = runtime_api(api.clone()).await;
    let bin =
        stackpro_bin().with_file_name(format!("etl-anonymize{}", std::env::consts::EXE_SUFFIX));
    // The same environment `stackpro` gets (credentials, hash key), and the config file.
    let cmd = aws.cmd(&[]);
    let mut child = std::process::Command::new(&bin)
        .envs(
            cmd.get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env("STACKPRO_CONFIG", &aws.config)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "etl-anonymize")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test-group")
        .current_dir(aws.env.path(""))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while api.answers.lock().expect("lock").len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let answers = api.answers.lock().expect("lock").clone();
    assert_eq!(
        answers,
        vec![
            (
                "inv-sqs".to_owned(),
                "response".to_owned(),
                serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m-poison"}]})
            ),
            (
                "inv-s3".to_owned(),
                "response".to_owned(),
                serde_json::json!({"published": 1})
            ),
        ],
        "only the poison record is reported failed; the S3 event publishes"
    );
    let releases: Vec<serde_json::Value> =
        serde_json::from_str(&aws.ok(&["releases", "--json"])).expect("releases");
    let ours = releases
        .iter()
        .filter(|r| {
            r["tenant"]
                .as_str()
                .is_some_and(|t| t.contains(&aws.unique))
        })
        .count();
    assert_eq!(ours, 2, "both partitions released once");
}
