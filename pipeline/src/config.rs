//! Configuration: one TOML file plus `STACKPRO_*` environment overrides; command-line flags
//! override both. The defaults run locally under `./data`.
//!
//! Secrets (the hashing key) never live in this file: they come from the environment
//! (`STACKPRO_HASH_KEY`) or from a key file the file names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use catalog::{AwsSettings, Backend};
use policies::KeyedHasher;
use serde::Deserialize;

use crate::{Error, Result};

/// Environment variable names.
pub mod env {
    pub const CONFIG: &str = "STACKPRO_CONFIG";
    pub const RAW: &str = "STACKPRO_RAW";
    pub const CURATED: &str = "STACKPRO_CURATED";
    pub const QUARANTINE: &str = "STACKPRO_QUARANTINE";
    pub const STATE: &str = "STACKPRO_STATE";
    pub const POLICY: &str = "STACKPRO_POLICY";
    pub const METRICS_FILE: &str = "STACKPRO_METRICS_FILE";
    pub const HASH_KEY: &str = "STACKPRO_HASH_KEY";
    pub const HASH_KEY_FILE: &str = "STACKPRO_HASH_KEY_FILE";
    pub const MAX_LINE_BYTES: &str = "STACKPRO_MAX_LINE_BYTES";
    pub const MAX_ROWS_PER_FILE: &str = "STACKPRO_MAX_ROWS_PER_FILE";
    pub const STAGING_MEMORY_BYTES: &str = "STACKPRO_STAGING_MEMORY_BYTES";
    /// A count, or `auto` for the default.
    pub const RELEASE_MEMORY_BYTES: &str = "STACKPRO_RELEASE_MEMORY_BYTES";
    pub const LEDGER_CACHE: &str = "STACKPRO_LEDGER_CACHE";
    pub const LEASE_TTL_SECS: &str = "STACKPRO_LEASE_TTL_SECS";
    pub const AWS_REGION: &str = "STACKPRO_AWS_REGION";
    pub const AWS_ENDPOINT: &str = "STACKPRO_AWS_ENDPOINT";
    pub const AWS_GLUE_DATABASE: &str = "STACKPRO_AWS_GLUE_DATABASE";
    pub const AWS_CATALOG_TABLE: &str = "STACKPRO_AWS_CATALOG_TABLE";
    pub const AWS_CONSENT_TABLE: &str = "STACKPRO_AWS_CONSENT_TABLE";
    pub const AWS_MARKETPLACE_TABLE: &str = "STACKPRO_AWS_MARKETPLACE_TABLE";
    pub const AWS_KMS_KEY_ID: &str = "STACKPRO_AWS_KMS_KEY_ID";
    /// The ETL feature flag: `false` keeps triggered workers (`watch`) from starting.
    pub const ETL_ENABLED: &str = catalog::flags::ETL_ENABLED;
    /// `embedded` (SQLite, the default) or `aws` (Glue, Lake Formation, DynamoDB, CloudWatch).
    pub const BACKEND: &str = "STACKPRO_BACKEND";
    /// Test-only fault injection, honoured by debug builds only: `after-files` aborts the
    /// process after a release's files are written and before its catalog entry, to prove
    /// atomic publish; `slow-publish` waits 2 s before each publish, so another process
    /// can race a release held open.
    pub const FAULT: &str = "STACKPRO_FAULT";
}

/// The worker's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Root of the raw records: a folder, `file://` or `s3://` URL.
    pub raw: String,
    /// Root of the curated Parquet releases.
    pub curated: String,
    /// Root of quarantined records (treat like raw: it holds raw lines).
    pub quarantine: String,
    /// Folder of the embedded catalog and control plane (SQLite files).
    pub state: PathBuf,
    /// A policy document; the bundled `default-v2` when absent.
    pub policy: Option<PathBuf>,
    /// JSON-lines metrics file; `{state}/metrics.jsonl` when absent.
    pub metrics_file: Option<PathBuf>,
    /// File holding the hashing key (its UTF-8 bytes, trailing newline ignored). The
    /// `STACKPRO_HASH_KEY` environment variable takes precedence.
    pub hash_key_file: Option<PathBuf>,
    /// Longest raw line accepted; longer lines are quarantined without being buffered.
    pub max_line_bytes: usize,
    /// Rows per curated Parquet file before a new part starts.
    pub max_rows_per_file: usize,
    /// Transformed rows a release keeps in memory between its two passes; past this
    /// many bytes they are spilled to a local temporary file.
    pub staging_memory_bytes: usize,
    /// Bytes a release may hold in memory (histogram, record ledger, staged rows, the
    /// decision's working memory); past it the release stops with a
    /// [`MemoryBudget`](crate::Error::MemoryBudget) error instead of being killed. Absent:
    /// three quarters of what the process may use ([`crate::memory::MemoryBudget`]).
    /// Staged rows get at most half of it.
    pub release_memory_bytes: Option<u64>,
    /// Local folder where the record ledger's runs and filter are cached between
    /// releases (`pipeline::ledger::LedgerCache`): empty for `{state}/ledger-cache`, `off`
    /// to rebuild the filter from the curated root on every release.
    pub ledger_cache: String,
    /// Per-dataset input settings.
    pub datasets: BTreeMap<String, DatasetConfig>,
    /// Where the catalog, control plane and metrics live: `embedded` or `aws`.
    pub backend: Backend,
    /// Names and endpoint of the AWS resources (used by `s3://` locations and the `aws`
    /// backend).
    pub aws: AwsSettings,
    /// The marketplace API (`stackpro serve`) and its operator commands.
    pub marketplace: marketplace_api::Settings,
    /// The ETL feature flag (`ETL_ENABLED`): triggered workers start only when true.
    pub etl_enabled: bool,
    /// How long a partition lease lasts without renewal (renewed at a third of it while
    /// its release runs): a worker killed while holding one frees its partition after this.
    pub lease_ttl_secs: u64,
}

/// The longest `window` grace: a day held open longer than a month is a mistake, and
/// the seal time stays well inside what dates can hold.
pub const MAX_GRACE_SECS: u64 = 30 * 86_400;

/// Input settings of one dataset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetConfig {
    /// Field delimiter of CSV raw objects.
    pub csv_delimiter: char,
    /// When a partition's raw objects make a release (see [`Batching`]).
    pub release: Batching,
    /// `window` batching: how long after the end of its day (UTC) a `dt` partition stays
    /// open for late objects before it is sealed and released.
    pub grace_secs: u64,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            csv_delimiter: ',',
            release: Batching::Object,
            grace_secs: 3600,
        }
    }
}

/// When a partition's raw objects make a release. Whatever the mode, each raw record is
/// released at most once, and a batch under k stays pending until later objects complete
/// it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Batching {
    /// Each object as it arrives: a trigger releases what is pending in its partition
    /// (the new object, with any batch withheld under k before).
    #[default]
    Object,
    /// Per manifest: a producer writes its batch's objects, then a manifest object
    /// (`_manifest*.json` in the same folder, `{"objects": ["a.ndjson", …]}`) naming
    /// them; the batch is released once the manifest and every object it names are there.
    /// Objects no manifest names wait.
    Manifest,
    /// Per sealed day: a `dt` partition is released once its day (UTC) plus
    /// `grace_secs` has passed; objects arriving later make a further release of that day.
    Window,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            raw: "./data/raw".into(),
            curated: "./data/curated".into(),
            quarantine: "./data/quarantine".into(),
            state: PathBuf::from("./data/state"),
            policy: None,
            metrics_file: None,
            hash_key_file: None,
            max_line_bytes: 1 << 20,
            max_rows_per_file: 1_000_000,
            // About 1.6M `contacts` records (156 MiB a million): a release of up to that
            // size makes no local I/O between its passes. Past it the rows spill, and at
            // 20M records (3.3M base classes) the 512 MiB this was held a quarter of the
            // peak while saving a twentieth of the spill's writes.
            staging_memory_bytes: 256 << 20,
            release_memory_bytes: None,
            ledger_cache: String::new(),
            datasets: BTreeMap::new(),
            backend: Backend::Embedded,
            aws: AwsSettings::default(),
            marketplace: marketplace_api::Settings::default(),
            etl_enabled: true,
            lease_ttl_secs: 300,
        }
    }
}

impl Config {
    /// The record ledger cache's root, unless it is `off`.
    pub fn ledger_cache_dir(&self) -> Option<PathBuf> {
        match self.ledger_cache.trim() {
            "off" => None,
            "" => Some(self.state.join("ledger-cache")),
            dir => Some(PathBuf::from(dir)),
        }
    }

    /// Loads `path`, else `$STACKPRO_CONFIG`, else `./stackpro.toml` if present, else the
    /// defaults; then applies environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let from_env = std::env::var_os(env::CONFIG).map(PathBuf::from);
        let candidate = path.map(Path::to_path_buf).or(from_env);
        let mut config = match candidate {
            Some(p) => Self::from_file(&p)?,
            None if Path::new("stackpro.toml").exists() => {
                Self::from_file(Path::new("stackpro.toml"))?
            }
            None => Self::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read config {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Applies `STACKPRO_*` overrides read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = get(env::RAW) {
            self.raw = v;
        }
        if let Some(v) = get(env::CURATED) {
            self.curated = v;
        }
        if let Some(v) = get(env::QUARANTINE) {
            self.quarantine = v;
        }
        if let Some(v) = get(env::STATE) {
            self.state = v.into();
        }
        if let Some(v) = get(env::POLICY) {
            self.policy = Some(v.into());
        }
        if let Some(v) = get(env::METRICS_FILE) {
            self.metrics_file = Some(v.into());
        }
        if let Some(v) = get(env::HASH_KEY_FILE) {
            self.hash_key_file = Some(v.into());
        }
        if let Some(v) = get(env::LEDGER_CACHE) {
            self.ledger_cache = v;
        }
        if let Some(v) = get(env::BACKEND) {
            self.backend = match v.as_str() {
                "embedded" => Backend::Embedded,
                "aws" => Backend::Aws,
                other => {
                    return Err(Error::Config(format!(
                        "{}={other:?}: expected `embedded` or `aws`",
                        env::BACKEND
                    )));
                }
            };
        }
        let count = |name: &str| -> Result<Option<usize>> {
            get(name)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| Error::Config(format!("{name}={v:?} is not a count")))
                })
                .transpose()
        };
        if let Some(n) = count(env::MAX_LINE_BYTES)? {
            self.max_line_bytes = n;
        }
        if let Some(n) = count(env::MAX_ROWS_PER_FILE)? {
            self.max_rows_per_file = n;
        }
        if let Some(n) = count(env::STAGING_MEMORY_BYTES)? {
            self.staging_memory_bytes = n;
        }
        match get(env::RELEASE_MEMORY_BYTES).as_deref().map(str::trim) {
            Some("auto") => self.release_memory_bytes = None,
            Some(_) => {
                self.release_memory_bytes = count(env::RELEASE_MEMORY_BYTES)?.map(|n| n as u64)
            }
            None => {}
        }
        if let Some(n) = count(env::LEASE_TTL_SECS)? {
            self.lease_ttl_secs = n as u64;
        }
        self.marketplace
            .apply_env(&get)
            .map_err(|e| Error::Config(e.to_string()))?;
        if let Some(v) = get(env::ETL_ENABLED) {
            self.etl_enabled =
                catalog::flags::parse_flag(env::ETL_ENABLED, &v).map_err(Error::Config)?;
        }
        let aws = &mut self.aws;
        for (name, slot) in [
            (env::AWS_REGION, &mut aws.region),
            (env::AWS_ENDPOINT, &mut aws.endpoint),
            (env::AWS_KMS_KEY_ID, &mut aws.kms_key_id),
        ] {
            // Set but empty means unset (`STACKPRO_AWS_ENDPOINT=` falls back to the chain).
            if let Some(v) = get(name) {
                *slot = Some(v).filter(|v| !v.trim().is_empty());
            }
        }
        for (name, slot) in [
            (env::AWS_GLUE_DATABASE, &mut aws.glue_database),
            (env::AWS_CATALOG_TABLE, &mut aws.catalog_table),
            (env::AWS_CONSENT_TABLE, &mut aws.consent_table),
            (env::AWS_MARKETPLACE_TABLE, &mut aws.marketplace_table),
        ] {
            if let Some(v) = get(name) {
                *slot = v;
            }
        }
        Ok(())
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<()> {
        if !(3..=86_400).contains(&self.lease_ttl_secs) {
            return Err(Error::Config(
                "lease_ttl_secs must be between 3 and 86400".into(),
            ));
        }
        for (name, d) in &self.datasets {
            if d.grace_secs > MAX_GRACE_SECS {
                return Err(Error::Config(format!(
                    "datasets.{name}.grace_secs must be at most {MAX_GRACE_SECS} (30 days)"
                )));
            }
        }
        if self.backend == Backend::Aws && !cfg!(feature = "aws") {
            return Err(catalog::Error::needs_aws("backend = \"aws\"").into());
        }
        if self.max_line_bytes < 256 {
            return Err(Error::Config("max_line_bytes must be at least 256".into()));
        }
        if self.release_memory_bytes.is_some_and(|n| n < 1 << 20) {
            return Err(Error::Config(
                "release_memory_bytes must be at least 1048576 (1 MiB), or absent for three \
                 quarters of the process's memory"
                    .into(),
            ));
        }
        if self.max_rows_per_file == 0 {
            return Err(Error::Config("max_rows_per_file must be positive".into()));
        }
        let roots = [
            ("raw", &self.raw),
            ("curated", &self.curated),
            ("quarantine", &self.quarantine),
        ];
        for (i, (name_a, a)) in roots.iter().enumerate() {
            for (name_b, b) in &roots[i + 1..] {
                let (ka, kb) = (root_key(a), root_key(b));
                if ka.starts_with(&kb) || kb.starts_with(&ka) {
                    return Err(Error::Config(format!(
                        "{name_a} ({a}) and {name_b} ({b}) overlap: each root needs its own \
                         folder or bucket prefix, or retention and listing would mix them"
                    )));
                }
            }
        }
        for (name, ds) in &self.datasets {
            if !ds.csv_delimiter.is_ascii() || ds.csv_delimiter == '"' || ds.csv_delimiter == '\n' {
                return Err(Error::Config(format!(
                    "datasets.{name}.csv_delimiter must be one ASCII character other than a quote or newline"
                )));
            }
        }
        Ok(())
    }

    /// The metrics file path.
    pub fn metrics_path(&self) -> PathBuf {
        self.metrics_file
            .clone()
            .unwrap_or_else(|| self.state.join("metrics.jsonl"))
    }

    /// What `catalog::connect::connect` reads to open this configuration's backends.
    pub fn backend_settings(&self) -> catalog::connect::Settings<'_> {
        catalog::connect::Settings {
            backend: self.backend,
            state: &self.state,
            metrics_file: self.metrics_path(),
            aws: &self.aws,
        }
    }

    /// The CSV delimiter of a dataset.
    /// The settings of `dataset` (the defaults when the file names none).
    #[must_use]
    pub fn dataset(&self, dataset: &str) -> DatasetConfig {
        self.datasets.get(dataset).cloned().unwrap_or_default()
    }

    /// Whether any dataset is released by sealed windows (triggers then sweep on a timer,
    /// since a window seals with no event to announce it).
    #[must_use]
    pub fn has_windows(&self) -> bool {
        self.datasets
            .values()
            .any(|d| d.release == Batching::Window)
    }

    pub fn csv_delimiter(&self, dataset: &str) -> u8 {
        self.datasets
            .get(dataset)
            .map_or(b',', |d| d.csv_delimiter as u8)
    }

    /// Loads the configured policy, or the bundled default.
    pub fn load_policy(&self) -> Result<policies::Policy> {
        Ok(match &self.policy {
            Some(p) => policies::Policy::load(p)?,
            None => policies::Policy::default_v2()?,
        })
    }

    /// The hashing key: `$STACKPRO_HASH_KEY`, else the configured key file. Without one the
    /// worker refuses to run: publishing unkeyed or default-keyed hashes would be reversible.
    pub fn hasher(&self) -> Result<KeyedHasher> {
        Ok(KeyedHasher::new(&self.hash_key()?)?)
    }

    /// The hashing key's bytes (see [`Config::hasher`]); the marketplace checks its own
    /// secrets differ from it.
    pub fn hash_key(&self) -> Result<Vec<u8>> {
        if let Ok(key) = std::env::var(env::HASH_KEY)
            && !key.is_empty()
        {
            return Ok(key.into_bytes());
        }
        if let Some(path) = &self.hash_key_file {
            let key = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!("cannot read hash key file {}: {e}", path.display()))
            })?;
            return Ok(key.trim_end_matches(['\r', '\n']).as_bytes().to_vec());
        }
        Err(Error::Config(format!(
            "no hash key configured: set {} (at least {} bytes) or {} / hash_key_file to a key file",
            env::HASH_KEY,
            policies::hash::MIN_KEY_BYTES,
            env::HASH_KEY_FILE
        )))
    }
}

/// A root as a comparable string ending in `/`: the URL for `s3://`, the absolute path
/// for folders (so `./data/raw` and `data/raw` compare equal).
fn root_key(spec: &str) -> String {
    let spec = spec.trim();
    let key = match catalog::storage::Scheme::of(spec) {
        Ok(catalog::storage::Scheme::Local(dir)) => {
            std::path::absolute(dir).map_or_else(|_| dir.to_owned(), |p| p.display().to_string())
        }
        // A URL compares as written (an unknown scheme is refused when the root is opened).
        _ => spec.to_owned(),
    };
    let key = key.replace("/./", "/");
    format!("{}/", key.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_the_file() {
        let mut c: Config = toml::from_str(
            "raw = \"/r\"\nmax_line_bytes = 4096\n[datasets.contacts]\ncsv_delimiter = \";\"\n",
        )
        .expect("toml");
        c.apply_env(|k| (k == env::RAW).then(|| "/other".to_string()))
            .expect("env");
        assert_eq!(c.raw, "/other");
        let vars = [
            (env::MAX_ROWS_PER_FILE, "700"),
            (env::STAGING_MEMORY_BYTES, "0"),
            (env::AWS_REGION, "eu-west-1"),
            (env::AWS_ENDPOINT, "http://127.0.0.1:5000"),
            (env::AWS_GLUE_DATABASE, "db"),
            (env::AWS_CATALOG_TABLE, "releases"),
            (env::AWS_CONSENT_TABLE, "consent"),
            (env::AWS_MARKETPLACE_TABLE, "market"),
            (env::AWS_KMS_KEY_ID, "alias/k"),
            ("MARKETPLACE_ENABLED", "false"),
        ];
        let lookup = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        c.apply_env(lookup).expect("env");
        assert_eq!((c.max_rows_per_file, c.staging_memory_bytes), (700, 0));
        assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.aws.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(c.aws.kms_key_id.as_deref(), Some("alias/k"));
        assert_eq!(c.aws.marketplace_table, "market");
        assert!(
            !c.marketplace.enabled,
            "the feature flag is read with the others"
        );
        assert_eq!(
            (
                c.aws.glue_database.as_str(),
                c.aws.catalog_table.as_str(),
                c.aws.consent_table.as_str()
            ),
            ("db", "releases", "consent")
        );
        let bad = c.apply_env(|k| (k == env::MAX_ROWS_PER_FILE).then(|| "many".to_string()));
        assert!(
            matches!(&bad, Err(Error::Config(m)) if m.contains("STACKPRO_MAX_ROWS_PER_FILE")),
            "{bad:?}"
        );
        assert_eq!(c.max_line_bytes, 4096);
        assert_eq!(c.csv_delimiter("contacts"), b';');
        assert_eq!(c.csv_delimiter("orders"), b',');
    }

    #[test]
    fn overlapping_roots_are_refused() {
        let overlapping = [
            ("s3://b", "s3://b/curated", "s3://q"),
            ("./data", "./data/curated", "./q"),
            ("s3://b/raw", "s3://c", "s3://b/raw"),
        ];
        for (raw, curated, quarantine) in overlapping {
            let c = Config {
                raw: raw.into(),
                curated: curated.into(),
                quarantine: quarantine.into(),
                ..Config::default()
            };
            assert!(
                matches!(c.validate(), Err(Error::Config(m)) if m.contains("overlap")),
                "{raw} {curated} {quarantine}"
            );
        }
        let siblings = Config {
            raw: "s3://b/raw".into(),
            curated: "s3://b/raw-curated".into(),
            quarantine: "s3://b2".into(),
            ..Config::default()
        };
        siblings
            .validate()
            .expect("siblings sharing a name prefix do not overlap");
        Config::default()
            .validate()
            .expect("the defaults are valid");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("rawz = \"/r\"").is_err());
    }
}
