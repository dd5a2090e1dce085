//! The ingest worker: finds pending partitions, checks consent, releases and publishes.
//!
//! A partition's pending objects are those not yet in the catalog's ledger. A tenant
//! without consent for a dataset is skipped with a logged reason and its raw data is left
//! untouched. A withheld release consumes nothing, so later data can complete it.

use std::sync::Arc;
use std::time::Duration;

use catalog::{ConsentStore, ConsentStoreExt, DataCatalog, PublishOutcome};
use policies::{Outcome, Policy, ReleaseReport};
use serde::Serialize;

use crate::Result;
use crate::batching::{self, Plan};
use crate::config::Batching;
use crate::config::{Config, env};
use crate::context::{ByteCounter, ReleaseContext};
use crate::ledger::RecordLedger;
use crate::release;
use crate::sinks::metrics::release_datapoints;
use crate::sources::{self, Ignored, RawObject};
use catalog::connect::{Backends, Stores};
use catalog::layout::PartitionKey;
use catalog::metrics::MetricsSink;
use catalog::storage::Location;

fn waiting(key: &PartitionKey, why: String) -> PartitionResult {
    tracing::info!(partition = %key, reason = %why, "waiting: the batching mode holds the partition");
    PartitionResult {
        partition: key.clone(),
        status: Status::Waiting,
        objects: 0,
        report: None,
        message: Some(why),
    }
}

/// Whether a chunk's inputs are now in the ledger.
fn published(status: &Status) -> bool {
    matches!(status, Status::Published | Status::AlreadyPublished)
}

fn nothing_new(key: &PartitionKey) -> PartitionResult {
    PartitionResult {
        partition: key.clone(),
        status: Status::NothingNew,
        objects: 0,
        report: None,
        message: None,
    }
}

/// What happened to one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Published,
    /// Already published by an earlier run: nothing new.
    AlreadyPublished,
    /// Under k at every generalization: nothing published, inputs stay pending.
    Withheld,
    /// No valid record in the pending objects.
    Empty,
    /// The tenant has not consented to this dataset.
    NoConsent,
    /// The policy has no rules for this dataset.
    NoPolicy,
    /// Every object is already released.
    NothingNew,
    /// Pending objects the dataset's batching mode holds back (a window not sealed yet,
    /// a batch whose manifest has not arrived or names objects still missing).
    Waiting,
    /// Another worker holds the partition's lease: it is releasing it now (a trigger
    /// leaves its message to come back).
    Busy,
    Failed,
}

/// One partition's result.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionResult {
    pub partition: PartitionKey,
    pub status: Status,
    pub objects: usize,
    pub report: Option<ReleaseReport>,
    pub message: Option<String>,
}

/// A run's results.
#[derive(Debug, Default, Serialize)]
pub struct RunSummary {
    pub partitions: Vec<PartitionResult>,
    pub ignored: Vec<IgnoredObject>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IgnoredObject {
    pub url: String,
    pub reason: String,
}

impl From<Ignored> for IgnoredObject {
    fn from(i: Ignored) -> Self {
        Self {
            url: i.url,
            reason: i.reason,
        }
    }
}

impl RunSummary {
    pub fn count(&self, status: Status) -> usize {
        self.partitions
            .iter()
            .filter(|p| p.status == status)
            .count()
    }

    pub fn failed(&self) -> bool {
        self.count(Status::Failed) > 0
    }
}

/// Progress hooks for the CLI.
pub trait Progress: Send + Sync {
    /// Work planned: partitions and raw bytes to read.
    fn start(&self, partitions: usize, bytes: u64);
    /// Raw bytes read.
    fn bytes(&self, n: u64);
    /// A partition is done.
    fn partition_done(&self, result: &PartitionResult);
    fn finish(&self);
}

/// Progress that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: usize, _: u64) {}
    fn bytes(&self, _: u64) {}
    fn partition_done(&self, _: &PartitionResult) {}
    fn finish(&self) {}
}

/// The worker and its backends.
#[derive(Debug, Clone)]
pub struct Worker {
    pub config: Config,
    pub policy: Arc<Policy>,
    pub raw: Location,
    pub curated: Location,
    pub quarantine: Location,
    pub catalog: Arc<dyn DataCatalog>,
    pub consent: Arc<dyn ConsentStore>,
    pub metrics: Arc<dyn MetricsSink>,
    /// The marketplace's tables, when the backend has them: each run adds a dataset
    /// version per new release (see [`catalog::market::sync_versions`]).
    pub market: Option<Arc<dyn catalog::market::MarketStore>>,
    /// Leases per tenant-dataset, so that two triggered workers never release one at once.
    pub leases: Arc<dyn catalog::lease::LeaseStore>,
}

impl Worker {
    /// Opens every backend the configuration names.
    pub async fn open(config: Config) -> Result<Self> {
        let policy = Arc::new(config.load_policy()?);
        let Backends {
            catalog,
            consent,
            metrics,
            market,
            lake_grants: _,
            leases,
        } = catalog::connect::connect(&config.backend_settings()).await?;
        let Stores {
            raw,
            curated,
            quarantine,
        } = Stores::open(
            &config.raw,
            &config.curated,
            &config.quarantine,
            &config.aws,
        )?;
        Ok(Self {
            raw,
            curated,
            quarantine,
            metrics,
            policy,
            catalog,
            consent,
            market,
            leases,
            config,
        })
    }

    /// How long a partition lease lasts without renewal (`lease_ttl_secs`): a worker
    /// killed while holding one frees its partition after this.
    fn lease_ttl(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(i64::try_from(self.config.lease_ttl_secs).unwrap_or(300))
    }

    /// What `key`'s batching mode makes of what the listing found in it: `objects` (its
    /// data objects) and `manifests`. Unusable manifests come back as ignored objects.
    async fn plan_partition(
        &self,
        key: &PartitionKey,
        objects: Vec<RawObject>,
        manifests: Vec<RawObject>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Plan, Vec<IgnoredObject>)> {
        let settings = self.config.dataset(&key.dataset);
        // Rows written before identities had an ETag are keyed by the bare URL: such an
        // object stays released (it is not re-read as new after an upgrade).
        let keys: Vec<String> = objects
            .iter()
            .chain(&manifests)
            .flat_map(|o| [o.ledger_key(), o.url.clone()])
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect();
        let released = self.catalog.released_objects(&keys).await?;
        let is_released =
            |o: &RawObject| released.contains_key(&o.ledger_key()) || released.contains_key(&o.url);
        let pending: Vec<RawObject> = objects
            .iter()
            .filter(|o| !is_released(o))
            .cloned()
            .collect();
        let mut read = Vec::new();
        if settings.release == Batching::Manifest {
            for m in manifests {
                if is_released(&m) {
                    continue;
                }
                let names = if usize::try_from(m.size).unwrap_or(usize::MAX)
                    > batching::MAX_MANIFEST_BYTES
                {
                    Err(format!(
                        "manifest larger than {} bytes",
                        batching::MAX_MANIFEST_BYTES
                    ))
                } else {
                    // The listed version, and no more than a manifest may hold: one
                    // rewritten since the listing is read by the next plan.
                    let options = object_store::GetOptions {
                        if_match: m.e_tag.clone(),
                        range: Some((0..batching::MAX_MANIFEST_BYTES as u64 + 1).into()),
                        ..Default::default()
                    };
                    let got = match self.raw.store.get_opts(&m.path, options).await {
                        Ok(got) => got.bytes().await,
                        Err(e) => Err(e),
                    };
                    match got {
                        Ok(bytes) => batching::parse_manifest(&bytes),
                        // Deleted or rewritten since it was listed: as if it never came.
                        Err(
                            object_store::Error::NotFound { .. }
                            | object_store::Error::Precondition { .. },
                        ) => continue,
                        // Unreadable (archived, access denied): ignored with the reason,
                        // the rest of the partition and of the run go on.
                        Err(e) => Err(format!("manifest unreadable: {e}")),
                    }
                };
                read.push(batching::ReadManifest { object: m, names });
            }
        }
        // `grace_secs` is validated to at most MAX_GRACE_SECS when the config loads.
        let grace =
            chrono::TimeDelta::try_seconds(i64::try_from(settings.grace_secs).unwrap_or(i64::MAX))
                .unwrap_or(chrono::TimeDelta::MAX);
        let (plan, unusable) = batching::plan(
            settings.release,
            grace,
            now,
            &key.dt,
            &objects,
            pending,
            read,
        );
        let ignored = unusable
            .into_iter()
            .map(|(m, reason)| {
                tracing::warn!(partition = %key, manifest = %m.path, %reason, "ignored manifest");
                IgnoredObject { url: m.url, reason }
            })
            .collect();
        Ok((plan, ignored))
    }

    /// The releases a plan makes: its objects in chunks the catalog accepts in one
    /// release, the manifests with the last chunk (recorded once the batch is out).
    fn chunks(
        &self,
        objects: Vec<RawObject>,
        manifests: Vec<RawObject>,
    ) -> Vec<(Vec<RawObject>, Vec<RawObject>)> {
        let per_release = self
            .catalog
            .max_inputs_per_release()
            .unwrap_or(usize::MAX)
            .saturating_sub(manifests.len())
            .max(1);
        let mut out: Vec<(Vec<RawObject>, Vec<RawObject>)> = objects
            .chunks(per_release)
            .map(|c| (c.to_vec(), Vec::new()))
            .collect();
        if let Some(last) = out.last_mut() {
            last.1 = manifests;
        }
        out
    }

    /// The trigger entry point (folder watch, queue, Lambda): releases what is pending in
    /// each of `partitions`, as the dataset's batching mode allows, under its tenant and
    /// dataset's lease. A partition whose lease another worker holds (for any day of that
    /// tenant and dataset) is [`Status::Busy`] and left alone; duplicates of an event find [`Status::NothingNew`]. `holder` names this
    /// worker in the lease.
    pub async fn release_pending(
        &self,
        partitions: &std::collections::BTreeSet<PartitionKey>,
        holder: &str,
    ) -> Result<RunSummary> {
        let mut summary = RunSummary::default();
        let ctx = self.release_context(None)?;
        for key in partitions {
            let (results, ignored) = self.release_leased(&ctx, key, holder).await?;
            summary.partitions.extend(results);
            summary.ignored.extend(ignored);
        }
        self.sync_versions(&summary).await;
        Ok(summary)
    }

    /// Releases what is pending in `key` under its tenant and dataset's lease (held by
    /// `holder`, renewed while the release runs): the partition is listed and planned
    /// again once the lease is held, so what another worker released before is in the
    /// catalog and the record ledger. Without the lease, the partition is
    /// [`Status::Busy`]. The results of its chunks, and the objects its plan ignored.
    async fn release_leased(
        &self,
        ctx: &ReleaseContext,
        key: &PartitionKey,
        holder: &str,
    ) -> Result<(Vec<PartitionResult>, Vec<IgnoredObject>)> {
        let ttl = self.lease_ttl();
        let mut results = Vec::new();
        // One lease per tenant-dataset, not per day: the record ledger a release loads
        // holds only what was published before it started, so two days of one
        // tenant-dataset released at once could both publish a record re-sent in both.
        let name = format!("tenant={}/dataset={}", key.tenant, key.dataset);
        let Some(mut lease) = self
            .leases
            .acquire(&name, holder, ttl, chrono::Utc::now())
            .await?
        else {
            tracing::info!(partition = %key, "busy: another worker holds the lease");
            results.push(PartitionResult {
                partition: key.clone(),
                status: Status::Busy,
                objects: 0,
                report: None,
                message: Some(
                    "another worker holds the lease of this partition's tenant and dataset".into(),
                ),
            });
            return Ok((results, Vec::new()));
        };
        // Listed under the lease: what another worker released before is in the ledger.
        let listing = sources::list_raw_under(&self.raw, &name).await;
        let planned = match listing {
            Ok(mut listing) => {
                let objects = listing.partitions.remove(key).unwrap_or_default();
                let manifests = listing.manifests.remove(key).unwrap_or_default();
                self.plan_partition(key, objects, manifests, chrono::Utc::now())
                    .await
            }
            Err(e) => Err(e),
        };
        let (plan, ignored) = match planned {
            Ok(planned) => planned,
            Err(e) => {
                self.leases.release(&lease).await?;
                return Err(e);
            }
        };
        let (objects, manifests) = match plan {
            Plan::Release { objects, manifests } => (objects, manifests),
            Plan::Wait(why) => {
                results.push(waiting(key, why));
                self.leases.release(&lease).await?;
                return Ok((results, ignored));
            }
            Plan::NothingNew => {
                results.push(nothing_new(key));
                self.leases.release(&lease).await?;
                return Ok((results, ignored));
            }
        };
        let mut earlier_published = true;
        for (chunk, manifests) in self.chunks(objects, manifests) {
            // Manifests only with a batch whose every chunk is out: recorded with the last
            // chunk after an earlier one failed, they would strand that chunk's objects.
            // Kept pending, the next plan releases those objects under them.
            let manifests = if earlier_published {
                manifests
            } else {
                Vec::new()
            };
            // The lease is renewed while the release runs, however long it takes.
            let work = self.release_partition(ctx, key, chunk, manifests);
            tokio::pin!(work);
            let mut lost = false;
            let result = loop {
                tokio::select! {
                    r = &mut work => break r,
                    () = tokio::time::sleep((ttl / 3).to_std().unwrap_or(Duration::from_secs(1))) => {
                        match self.leases.renew(&lease, ttl, chrono::Utc::now()).await {
                            Ok(Some(renewed)) => lease = renewed,
                            Ok(None) => lost = true,
                            Err(e) => tracing::warn!(partition = %key, error = %catalog::chain(&e), "could not renew the lease"),
                        }
                    }
                }
            };
            earlier_published &= published(&result.status);
            results.push(result);
            if !lost {
                match self.leases.renew(&lease, ttl, chrono::Utc::now()).await? {
                    Some(renewed) => lease = renewed,
                    None => lost = true,
                }
            }
            if lost {
                // Another worker may hold it now: stop here. Whatever both publish
                // is settled by the catalog (one release of the same inputs wins),
                // and the next holder finds this one's releases in the ledger.
                tracing::warn!(partition = %key, "lease lost during the release; stopping here");
                break;
            }
        }
        self.leases.release(&lease).await?;
        Ok((results, ignored))
    }

    /// Every partition of the raw root with something in it, through
    /// [`Worker::release_pending`]: what a trigger runs on a timer, so that a window that
    /// sealed with no new object to announce it is released.
    pub async fn sweep(&self, holder: &str) -> Result<RunSummary> {
        let listing = sources::list_raw(&self.raw).await?;
        let partitions: std::collections::BTreeSet<PartitionKey> = listing
            .partitions
            .into_keys()
            .chain(listing.manifests.into_keys())
            .collect();
        let mut summary = self.release_pending(&partitions, holder).await?;
        summary
            .ignored
            .extend(listing.ignored.into_iter().map(Into::into));
        Ok(summary)
    }

    /// Processes every pending partition, each under its tenant and dataset's lease as
    /// [`Worker::release_pending`] does (a partition another process is releasing is
    /// [`Status::Busy`]). Per-partition failures are reported in the summary (and make the
    /// CLI exit non-zero); configuration errors stop the run.
    pub async fn run(&self, progress: &dyn Progress) -> Result<RunSummary> {
        let completed = self.catalog.reconcile().await?;
        if completed > 0 {
            tracing::info!(
                releases = completed,
                "completed publishes interrupted after their commit"
            );
        }
        let listing = sources::list_raw(&self.raw).await?;
        for i in &listing.ignored {
            tracing::warn!(object = %i.url, reason = %i.reason, "ignored raw object");
        }
        let mut summary = RunSummary {
            ignored: listing.ignored.into_iter().map(Into::into).collect(),
            ..Default::default()
        };

        // Plan: each partition's batch, as its dataset's batching mode allows.
        let mut manifests = listing.manifests;
        let mut keys: std::collections::BTreeSet<PartitionKey> =
            listing.partitions.keys().cloned().collect();
        keys.extend(manifests.keys().cloned());
        let mut objects_of = listing.partitions;
        let now = chrono::Utc::now();
        let mut plan: Vec<(PartitionKey, Vec<RawObject>, Vec<RawObject>)> = Vec::new();
        for key in keys {
            let objects = objects_of.remove(&key).unwrap_or_default();
            let found = manifests.remove(&key).unwrap_or_default();
            let (decided, ignored) = self.plan_partition(&key, objects, found, now).await?;
            summary.ignored.extend(ignored);
            match decided {
                Plan::Release { objects, manifests } => {
                    for (chunk, manifests) in self.chunks(objects, manifests) {
                        plan.push((key.clone(), chunk, manifests));
                    }
                }
                Plan::Wait(why) => summary.partitions.push(waiting(&key, why)),
                Plan::NothingNew => summary.partitions.push(nothing_new(&key)),
            }
        }
        let bytes: u64 = plan
            .iter()
            .flat_map(|(_, o, _)| o.iter().map(|o| o.size))
            .sum();
        progress.start(plan.len(), bytes);

        let progress_ref: &dyn Progress = progress;
        // Readers run on blocking threads; they add to an atomic that a ticker forwards to
        // the caller's progress every 100 ms.
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let ctx = self.release_context(Some({
            let counter = counter.clone();
            ByteCounter(Arc::new(move |n| {
                counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }))
        }))?;
        // Each partition is released under its tenant and dataset's lease, as the triggers
        // release it (listed and planned again once held): a `run` beside a watcher or
        // another `run` never releases two days of one tenant-dataset at once.
        let holder = format!("run-{}", std::process::id());
        let keys: std::collections::BTreeSet<PartitionKey> =
            plan.into_iter().map(|(key, _, _)| key).collect();
        for key in keys {
            let ticker = {
                let counter = counter.clone();
                async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let n = counter.swap(0, std::sync::atomic::Ordering::Relaxed);
                        progress_ref.bytes(n);
                    }
                }
            };
            let work = self.release_leased(&ctx, &key, &holder);
            let (results, ignored) = tokio::select! {
                r = work => r?,
                () = ticker => unreachable!("the ticker never ends"),
            };
            progress.bytes(counter.swap(0, std::sync::atomic::Ordering::Relaxed));
            for result in results {
                progress.partition_done(&result);
                summary.partitions.push(result);
            }
            // The plan above reported what it ignored; only what is new since.
            for i in ignored {
                if !summary.ignored.iter().any(|o| o.url == i.url) {
                    summary.ignored.push(i);
                }
            }
        }
        progress.finish();
        self.sync_versions(&summary).await;
        Ok(summary)
    }

    /// Adds the marketplace versions of the datasets this run published to. Best effort:
    /// the releases are published whatever happens here, and the marketplace API syncs
    /// again on its own.
    async fn sync_versions(&self, summary: &RunSummary) {
        let Some(market) = &self.market else { return };
        let datasets: std::collections::BTreeSet<&str> = summary
            .partitions
            .iter()
            .filter(|p| p.status == Status::Published)
            .map(|p| p.partition.dataset.as_str())
            .collect();
        for dataset in datasets {
            match catalog::market::sync_versions(
                self.catalog.as_ref(),
                market.as_ref(),
                dataset,
                chrono::Utc::now(),
            )
            .await
            {
                Ok(added) => tracing::info!(dataset, added, "marketplace versions added"),
                Err(e) => {
                    tracing::warn!(dataset, error = %catalog::chain(&e), "could not add marketplace versions")
                }
            }
        }
    }

    /// What every release of this worker shares: the policy, the keyed hasher, the roots,
    /// the limits of the configuration, and `on_bytes`, told how many raw bytes were read.
    pub fn release_context(&self, on_bytes: Option<ByteCounter>) -> Result<ReleaseContext> {
        let memory = crate::memory::MemoryBudget::resolve(self.config.release_memory_bytes);
        tracing::debug!(
            bytes = memory.bytes(),
            origin = memory.origin(),
            "release memory budget"
        );
        Ok(ReleaseContext {
            policy: self.policy.clone(),
            hasher: self.config.hasher()?,
            raw: self.raw.clone(),
            curated: self.curated.clone(),
            quarantine: self.quarantine.clone(),
            max_line_bytes: self.config.max_line_bytes,
            max_rows_per_file: self.config.max_rows_per_file,
            staging_memory_bytes: memory.staging_bytes(self.config.staging_memory_bytes),
            memory,
            csv_delimiters: self
                .policy
                .datasets
                .keys()
                .map(|d| (d.clone(), self.config.csv_delimiter(d)))
                .collect(),
            on_bytes,
        })
    }

    /// Releases one partition's pending `objects` (with the `manifests` that announced
    /// them, recorded in the ledger beside them, not read as data): the release step of
    /// `run` and of every trigger. Checks that the policy covers the dataset and
    /// that the tenant's consent stands, then prepares the release, publishes it in one
    /// catalog transaction with its raw objects, and emits its metrics; retryable failures
    /// are tried up to three times. Never fails as a call: what happened, including a
    /// failure, is in the result's status and message. Objects must all belong to `key`
    /// and be unreleased ([`DataCatalog::released_objects`]); a release of the same inputs
    /// again is [`Status::AlreadyPublished`].
    pub async fn release_partition(
        &self,
        ctx: &ReleaseContext,
        key: &PartitionKey,
        objects: Vec<RawObject>,
        manifests: Vec<RawObject>,
    ) -> PartitionResult {
        let n = objects.len();
        let result = |status, report, message| PartitionResult {
            partition: key.clone(),
            status,
            objects: n,
            report,
            message,
        };
        if self.policy.dataset(&key.dataset).is_err() {
            tracing::warn!(partition = %key, policy = %self.policy.id, "skipped: the policy has no rules for this dataset");
            return result(
                Status::NoPolicy,
                None,
                Some(format!(
                    "policy `{}` has no rules for `{}`",
                    self.policy.id, key.dataset
                )),
            );
        }
        match self.consent.is_granted(&key.tenant, &key.dataset).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(partition = %key, "skipped: tenant has not consented to this dataset; raw data left untouched");
                return result(Status::NoConsent, None, Some("no consent".into()));
            }
            Err(e) => {
                return result(
                    Status::Failed,
                    None,
                    Some(format!("consent lookup failed: {}", catalog::chain(&e))),
                );
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .release_once(ctx, key, objects.clone(), manifests.clone())
                .await
            {
                Ok((status, report)) => return result(status, Some(report), None),
                Err(e) if e.is_retryable() && attempt < 3 => {
                    tracing::warn!(partition = %key, attempt, error = %catalog::chain(&e), "retrying release");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                Err(e) => {
                    tracing::error!(partition = %key, error = %catalog::chain(&e), "release failed");
                    return result(Status::Failed, None, Some(catalog::chain(&e)));
                }
            }
        }
    }

    async fn release_once(
        &self,
        ctx: &ReleaseContext,
        key: &PartitionKey,
        objects: Vec<RawObject>,
        manifests: Vec<RawObject>,
    ) -> Result<(Status, ReleaseReport)> {
        let id = release::release_id(&ctx.policy, ctx.hasher.key_id(), key, &objects, &manifests);
        // As long as a release stays published: a record re-released once the raw
        // window has passed would sit beside its first release, and link it.
        let window_days = ctx
            .policy
            .retention
            .raw_days
            .max(ctx.policy.retention.curated_days);
        let cache = self.config.ledger_cache_dir();
        let ledger = RecordLedger::load(
            self.catalog.as_ref(),
            &ctx.curated,
            key,
            &id,
            window_days,
            cache.as_deref(),
        )
        .await?;
        let prepared = release::prepare(ctx, key, objects, manifests, ledger).await?;
        let status = match (&prepared.report.outcome, &prepared.release) {
            (Outcome::Release, Some(rel)) => {
                // The table (schema only) may exist before any release: it shows no rows.
                self.catalog.upsert_table(&prepared.table).await?;
                // Debug builds only (the tests'): a release build never aborts on it.
                if cfg!(debug_assertions)
                    && std::env::var(env::FAULT).as_deref() == Ok("after-files")
                {
                    eprintln!(
                        "{}=after-files: aborting before publishing {}",
                        env::FAULT,
                        rel.release_id
                    );
                    std::process::abort();
                }
                // Debug builds only: holds the release open, for the tests that race
                // another process against it.
                if cfg!(debug_assertions)
                    && std::env::var(env::FAULT).as_deref() == Ok("slow-publish")
                {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                match self.catalog.publish_release(rel).await? {
                    PublishOutcome::Published => {
                        tracing::info!(partition = %key, release = %rel.release_id, rows = rel.records_out, "published");
                        Status::Published
                    }
                    PublishOutcome::AlreadyPublished => Status::AlreadyPublished,
                }
            }
            (Outcome::Withheld(reason), _) => {
                tracing::warn!(partition = %key, %reason, "release withheld: nothing published");
                Status::Withheld
            }
            _ => Status::Empty,
        };
        if let (Status::Published, Some(root)) = (&status, &cache) {
            // The ledger cache's fold, after the publish rather than in the next release's
            // load. Best effort: a cache that cannot fold costs the next load the fold.
            let started = std::time::Instant::now();
            match RecordLedger::maintain_cache(
                self.catalog.as_ref(),
                &ctx.curated,
                key,
                window_days,
                root,
            )
            .await
            {
                Ok(Some(load)) => {
                    tracing::info!(partition = %key, cache = ?load, fold_ms = started.elapsed().as_millis() as u64, "record ledger cache folded")
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(partition = %key, error = %catalog::chain(&e), "could not fold the record ledger cache")
                }
            }
        }
        // Metrics are best effort: a metrics outage must not undo a publish.
        if let Err(e) = self
            .metrics
            .put(&release_datapoints(&prepared.report))
            .await
        {
            tracing::error!(partition = %key, error = %catalog::chain(&e), "could not emit release metrics");
        }
        Ok((status, prepared.report))
    }
}
