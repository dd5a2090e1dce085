//! The backends a process needs, chosen by configuration: the data catalog, the consent
//! store and the metrics sink ([`connect`]), and the object stores of its roots
//! ([`Stores::open`]). The worker, the marketplace and the app all start here, so a
//! backend is picked the same way in each.
//!
//! Embedded: SQLite files in the state folder and a JSON-lines metrics file. AWS: Glue +
//! Lake Formation + DynamoDB and CloudWatch (needs the `aws` feature).

use std::path::Path;
use std::sync::Arc;

use crate::market::MarketStore;
use crate::metrics::{JsonLinesMetrics, MetricsSink};
use crate::storage::Location;
use crate::{AwsSettings, Backend, ConsentStore, DataCatalog, Error, Result};
use crate::{SqliteCatalog, SqliteConsentStore, SqliteMarketStore};

/// What [`connect`] reads of a process's configuration.
#[derive(Debug, Clone)]
pub struct Settings<'a> {
    pub backend: Backend,
    /// The embedded backend's folder (SQLite files).
    pub state: &'a Path,
    /// The embedded metrics sink's JSON-lines file.
    pub metrics_file: std::path::PathBuf,
    pub aws: &'a AwsSettings,
}

/// The catalog, control plane and metrics sink the configuration selects.
#[derive(Debug, Clone)]
pub struct Backends {
    pub catalog: Arc<dyn DataCatalog>,
    pub consent: Arc<dyn ConsentStore>,
    pub metrics: Arc<dyn MetricsSink>,
    /// The marketplace's tables (SQLite, or the DynamoDB marketplace table). An `Option`
    /// for backends that may lack them; both built-in backends have them.
    pub market: Option<Arc<dyn MarketStore>>,
    /// Where access grants are mirrored (Lake Formation on AWS; none embedded).
    pub lake_grants: Option<Arc<dyn crate::market::LakeGrants>>,
    /// Partition leases of triggered workers.
    pub leases: Arc<dyn crate::lease::LeaseStore>,
}

/// Opens the backends `settings` names.
pub async fn connect(settings: &Settings<'_>) -> Result<Backends> {
    match settings.backend {
        Backend::Embedded => Ok(Backends {
            catalog: Arc::new(SqliteCatalog::open_in_state_dir(settings.state)?),
            consent: Arc::new(SqliteConsentStore::open_in_state_dir(settings.state)?),
            metrics: Arc::new(JsonLinesMetrics::new(settings.metrics_file.clone())),
            market: Some(Arc::new(SqliteMarketStore::open_in_state_dir(
                settings.state,
            )?)),
            lake_grants: None,
            leases: Arc::new(crate::SqliteLeaseStore::open_in_state_dir(settings.state)?),
        }),
        #[cfg(feature = "aws")]
        Backend::Aws => {
            let sdk = crate::aws::sdk_config(settings.aws).await;
            Ok(Backends {
                catalog: Arc::new(crate::aws::GlueCatalog::new(&sdk, settings.aws)),
                consent: Arc::new(crate::aws::DynamoConsentStore::new(
                    crate::aws::DynamoDbClient::new(&sdk),
                    &settings.aws.consent_table,
                )),
                metrics: Arc::new(crate::aws::CloudWatchMetrics::new(&sdk)),
                market: Some(Arc::new(crate::aws::DynamoMarketStore::new(
                    crate::aws::DynamoDbClient::new(&sdk),
                    &settings.aws.marketplace_table,
                ))),
                lake_grants: Some(Arc::new(crate::aws::LakeFormation::new(
                    aws_sdk_lakeformation::Client::new(&sdk),
                ))),
                leases: Arc::new(crate::aws::DynamoLeaseStore::new(
                    crate::aws::DynamoDbClient::new(&sdk),
                    &settings.aws.marketplace_table,
                )),
            })
        }
        #[cfg(not(feature = "aws"))]
        Backend::Aws => Err(Error::needs_aws("backend = \"aws\"")),
    }
}

/// The object stores of a process's three roots.
#[derive(Debug, Clone)]
pub struct Stores {
    pub raw: Location,
    pub curated: Location,
    pub quarantine: Location,
}

impl Stores {
    /// Opens the raw, curated and quarantine roots (folders or URLs, see
    /// [`Location::open`]); local folders are created when missing.
    pub fn open(raw: &str, curated: &str, quarantine: &str, aws: &AwsSettings) -> Result<Self> {
        let open = |what: &str, spec: &str| {
            Location::open(spec, aws).map_err(|e| match e {
                Error::Config(m) => Error::Config(format!("{what} location: {m}")),
                other => other,
            })
        };
        Ok(Self {
            raw: open("raw", raw)?,
            curated: open("curated", curated)?,
            quarantine: open("quarantine", quarantine)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_embedded_default_opens_sqlite_and_a_metrics_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let metrics_file = dir.path().join("m.jsonl");
        let settings = Settings {
            backend: Backend::Embedded,
            state: dir.path(),
            metrics_file: metrics_file.clone(),
            aws: &AwsSettings::default(),
        };
        let backends = connect(&settings).await.expect("embedded");
        assert!(
            backends
                .catalog
                .releases(&crate::ReleaseFilter::default())
                .await
                .expect("releases")
                .is_empty()
        );
        assert!(dir.path().join(SqliteCatalog::FILE_NAME).is_file());
        assert!(dir.path().join(SqliteConsentStore::FILE_NAME).is_file());
        assert!(
            !metrics_file.exists(),
            "the sink writes only when given datapoints"
        );
        backends.metrics.put(&[]).await.expect("put nothing");
        let point = crate::metrics::Datapoint {
            namespace: crate::metrics::NAMESPACE.into(),
            name: "RecordsIn".into(),
            value: 1.0,
            unit: "Count".into(),
            dimensions: Vec::new(),
            timestamp: "2026-11-25T00:00:00Z".into(),
        };
        backends.metrics.put(&[point]).await.expect("put");
        assert_eq!(
            std::fs::read_to_string(&metrics_file)
                .expect("metrics file")
                .lines()
                .count(),
            1
        );
    }

    #[test]
    fn a_bad_root_names_which_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = dir.path().display().to_string();
        let err = Stores::open(&ok, "gs://bucket", &ok, &AwsSettings::default())
            .expect_err("unknown scheme");
        assert!(
            matches!(&err, Error::Config(m) if m.starts_with("curated location:")),
            "{err}"
        );
    }
}
