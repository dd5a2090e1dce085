//! [`Marketplace`]: every marketplace operation, written once and called by the HTTP
//! handlers and by the `stackpro` operator commands alike.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use catalog::market::{
    self, AccessGrant, ApiKey, Buyer, Contract, ContractStatus, DatasetVersion, Denial,
    Entitlement, LakeGrants, Listing, MarketStore, QuotaCharge, RevenueShareLine, Role, UsageEvent,
    UsageOutcome, UsagePlan,
};
use catalog::storage::Location;
use catalog::{ConsentSetting, ConsentStore, DataCatalog};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::limits::RateLimiter;
use crate::secrets::{IssuedKey, KeyHasher};
use crate::signing::UrlSigner;

/// Who a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The buyer id (buyer keys) or operator name (admin keys).
    pub owner: String,
    pub role: Role,
    pub key_id: String,
}

/// The backends and secrets the marketplace runs on.
#[derive(Debug, Clone)]
pub struct Marketplace {
    pub store: Arc<dyn MarketStore>,
    pub consent: Arc<dyn ConsentStore>,
    pub catalog: Arc<dyn DataCatalog>,
    pub signer: UrlSigner,
    pub keys: KeyHasher,
    pub limiter: Arc<RateLimiter>,
    /// Lifetime of a URL when the request names none.
    pub url_ttl: Duration,
    /// The longest lifetime a request may ask for.
    pub max_url_ttl: Duration,
    /// Dataset versions read so far. A version never changes once written (versions are
    /// append-only), so it is safe to keep; only "which is the latest" is read each time.
    pub versions: Arc<VersionCache>,
    /// Where grants are mirrored for the buyer's own query engines (Lake Formation).
    pub lake_grants: Option<Arc<dyn LakeGrants>>,
}

/// One column of a dataset's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ColumnView {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

/// What the buyer holds on a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessView {
    /// `licensed` (contract in force and live grant) or the refusal code a signed-URL
    /// request would get: `no_contract`, `contract_not_in_force`, `no_grant`,
    /// `grant_revoked`.
    pub status: String,
    pub contract_id: Option<String>,
    pub contract_end: Option<DateTime<Utc>>,
}

/// A listed dataset, as a buyer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub policy_id: String,
    /// Minimum distinct people per equivalence class.
    pub k: u32,
    pub schema: Vec<ColumnView>,
    /// The latest version (0: nothing published yet).
    pub version: u64,
    /// Releases and records of the latest version a download would return now (tenants
    /// whose consent stands).
    pub releases: u64,
    pub records: u64,
    /// Tenants contributing to those releases.
    pub tenants: u64,
    pub expires_at: Option<DateTime<Utc>>,
    pub access: AccessView,
}

/// A page of datasets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetPage {
    pub datasets: Vec<DatasetView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// One downloadable file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedFile {
    pub url: String,
    pub release_id: String,
    pub dt: String,
    pub size_bytes: u64,
    pub rows: u64,
}

/// A quota window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaView {
    pub contract_id: String,
    pub dataset: String,
    /// `day`, `week` or `month`.
    pub period: String,
    pub limit: u64,
    pub used: u64,
    pub remaining: u64,
    pub resets_at: DateTime<Utc>,
}

/// The answer of getDataSignedUrl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedUrls {
    pub dataset: String,
    pub version: u64,
    pub expires_at: DateTime<Utc>,
    pub files: Vec<SignedFile>,
    pub quota: QuotaView,
    pub request_id: String,
}

/// Usage of one dataset on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageDay {
    pub date: String,
    pub dataset: String,
    pub requests: u64,
    pub files: u64,
    pub bytes: u64,
}

/// The answer of getUsage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub days: Vec<UsageDay>,
    /// The current windows of the buyer's contracts in force.
    pub quotas: Vec<QuotaView>,
}

/// A new contract, as an operator enters it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewContract {
    /// Chosen by the operator, or generated (`c-` and 16 hex digits).
    pub id: Option<String>,
    pub buyer: String,
    pub dataset: String,
    pub terms: String,
    /// Per calendar month in force, minor units.
    pub price_minor: u64,
    pub currency: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub plan: UsagePlan,
}

/// A bounded map of dataset versions by (dataset, version).
#[derive(Debug, Default)]
pub struct VersionCache {
    entries: std::sync::Mutex<HashMap<(String, u64), Arc<DatasetVersion>>>,
}

impl VersionCache {
    /// Versions kept; past it the cache starts over (versions are cheap to read again).
    const CAPACITY: usize = 256;

    fn get(&self, dataset: &str, version: u64) -> Option<Arc<DatasetVersion>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(&(dataset.to_owned(), version)).cloned()
    }

    fn put(&self, v: Arc<DatasetVersion>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= Self::CAPACITY {
            entries.clear();
        }
        entries.insert((v.dataset.clone(), v.version), v);
    }
}

/// The relative path of `url` under the curated root `root_url` (no leading `/`).
fn relative_to(root_url: &str, url: &str) -> Option<String> {
    url.strip_prefix(root_url)?
        .strip_prefix('/')
        .map(str::to_owned)
}

fn denial_error(denial: Denial, dataset: &str) -> ApiError {
    match denial {
        Denial::NoContract => ApiError::forbidden(
            "no_contract",
            format!("no data contract covers dataset {dataset}"),
        ),
        Denial::ContractNotInForce => ApiError::forbidden(
            "contract_not_in_force",
            format!("the data contract for {dataset} is not in force"),
        ),
        Denial::NoGrant => ApiError::forbidden(
            "no_grant",
            format!("no access grant for {dataset} under the contract"),
        ),
        Denial::GrantRevoked => ApiError::forbidden(
            "grant_revoked",
            format!("the access grant for {dataset} was revoked or has expired"),
        ),
    }
}

fn denial_code(denial: Denial) -> &'static str {
    denial_error(denial, "").code
}

fn quota_view(contract: &Contract, state: &catalog::market::QuotaState) -> QuotaView {
    QuotaView {
        contract_id: contract.id.clone(),
        dataset: contract.dataset.clone(),
        period: contract.plan.period.as_str().to_owned(),
        limit: state.limit,
        used: state.used,
        remaining: state.limit.saturating_sub(state.used),
        resets_at: state.window_end,
    }
}

fn charge_of(contract: &Contract) -> QuotaCharge {
    QuotaCharge {
        contract_id: contract.id.clone(),
        period: contract.plan.period,
        limit: contract.plan.quota,
    }
}

fn random_id(prefix: &str) -> String {
    use rand::RngCore;
    let mut bytes = [0_u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// Tenants whose consent for the dataset stands now.
fn consenting(settings: &[ConsentSetting]) -> HashSet<&str> {
    settings
        .iter()
        .filter(|c| c.granted)
        .map(|c| c.tenant.as_str())
        .collect()
}

impl Marketplace {
    /// The marketplace on these backends, serving or presigning the files of `curated`.
    ///
    /// # Errors
    /// Unusable URL lifetimes, or an `s3://` root this build cannot presign.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn MarketStore>,
        consent: Arc<dyn ConsentStore>,
        catalog: Arc<dyn DataCatalog>,
        curated: Location,
        settings: &crate::Settings,
        keys: KeyHasher,
        url_keys: crate::secrets::UrlKeys,
        aws: &catalog::AwsSettings,
    ) -> Result<Self, crate::settings::SettingsError> {
        let (url_ttl, max_url_ttl) = settings.url_ttls()?;
        let signer = UrlSigner::for_root(curated, settings.public_base(), url_keys, aws)
            .map_err(|e| crate::settings::SettingsError(e.to_string()))?;
        Ok(Self {
            store,
            consent,
            catalog,
            signer,
            keys,
            limiter: Arc::new(RateLimiter::default()),
            url_ttl,
            max_url_ttl,
            versions: Arc::default(),
            lake_grants: None,
        })
    }

    /// Version `version` (default: the latest) of `dataset`, from the cache when read before.
    async fn version(
        &self,
        dataset: &str,
        version: Option<u64>,
    ) -> ApiResult<Option<Arc<DatasetVersion>>> {
        let number = match version {
            Some(v) => v,
            None => self.store.latest_version(dataset).await?,
        };
        if number == 0 {
            return Ok(None);
        }
        if let Some(hit) = self.versions.get(dataset, number) {
            return Ok(Some(hit));
        }
        let Some(found) = self.store.version(dataset, Some(number)).await? else {
            return Ok(None);
        };
        let found = Arc::new(found);
        self.versions.put(Arc::clone(&found));
        Ok(Some(found))
    }

    /// Mirrors access grants into `lake_grants` for buyers with an AWS principal.
    #[must_use]
    pub fn with_lake_grants(mut self, lake_grants: Option<Arc<dyn LakeGrants>>) -> Self {
        self.lake_grants = lake_grants;
        self
    }

    /// Brings every mirrored buyer's data-lake permissions to what it may buy now (see
    /// [`Marketplace::reconcile_lake_grants_of`]); the API runs it periodically, so an
    /// expiry nobody acted on (a contract's end, a grant's `expires_at`) is mirrored too.
    pub async fn reconcile_lake_grants(&self) -> ApiResult<()> {
        if self.lake_grants.is_none() {
            return Ok(());
        }
        for buyer in self.store.buyers().await? {
            if buyer.aws_principal.is_some() {
                self.reconcile_lake_grants_of(&buyer.id).await?;
            }
        }
        Ok(())
    }

    /// Sets the buyer's data-lake permissions on each dataset to `dataset={d} AND
    /// tenant={consenting tenants}` while it is entitled, and to nothing otherwise:
    /// grants what is missing, revokes every other expression naming a dataset.
    pub async fn reconcile_lake_grants_of(&self, buyer: &str) -> ApiResult<()> {
        let Some((lake, principal)) = self.mirrored_principal(buyer).await? else {
            return Ok(());
        };
        let now = Utc::now();
        let mut wanted = Vec::new();
        for grant in self.store.grants(buyer).await? {
            if self
                .store
                .entitlement(buyer, &grant.dataset, now)
                .await?
                .is_err()
            {
                continue;
            }
            let consents = self.consent.dataset_consents(&grant.dataset).await?;
            let mut tenants: Vec<&str> = consenting(&consents).into_iter().collect();
            tenants.sort_unstable();
            if !tenants.is_empty() {
                wanted.push(format!(
                    "dataset={} AND tenant={}",
                    grant.dataset,
                    tenants.join(",")
                ));
            }
        }
        let held = lake.granted(&principal).await?;
        let terms = |e: &str| market::expression_terms(e);
        for expression in held.iter().filter(|h| terms(h).contains_key("dataset")) {
            if !wanted.iter().any(|w| terms(w) == terms(expression)) {
                lake.revoke(&principal, expression).await?;
                tracing::info!(buyer, %expression, "data-lake grant revoked");
            }
        }
        for expression in &wanted {
            if !held.iter().any(|h| terms(h) == terms(expression)) {
                lake.grant(&principal, expression).await?;
                tracing::info!(buyer, %expression, "data-lake grant made");
            }
        }
        Ok(())
    }

    /// The buyer's principal, when grants are mirrored and the buyer has one.
    async fn mirrored_principal(
        &self,
        buyer: &str,
    ) -> ApiResult<Option<(Arc<dyn LakeGrants>, String)>> {
        let Some(lake) = &self.lake_grants else {
            return Ok(None);
        };
        Ok(self
            .store
            .buyer(buyer)
            .await?
            .and_then(|b| b.aws_principal)
            .map(|p| (Arc::clone(lake), p)))
    }

    /// Checks a bearer token: the key exists, is not revoked, and the secret matches.
    pub async fn authenticate(&self, token: &str) -> ApiResult<Principal> {
        let (key_id, secret) = KeyHasher::parse(token)
            .ok_or_else(|| ApiError::unauthorized("invalid_api_key", "the API key is not valid"))?;
        let key = self.store.api_key(key_id).await?;
        let Some(key) = key.filter(|k| self.keys.verify(key_id, secret, &k.secret_hash)) else {
            return Err(ApiError::unauthorized(
                "invalid_api_key",
                "the API key is not valid",
            ));
        };
        if key.revoked_at.is_some() {
            return Err(ApiError::unauthorized(
                "revoked_api_key",
                "the API key was revoked",
            ));
        }
        Ok(Principal {
            owner: key.owner,
            role: key.role,
            key_id: key.key_id,
        })
    }

    // ---- operator actions ----

    pub async fn create_buyer(
        &self,
        id: &str,
        name: &str,
        aws_principal: Option<&str>,
    ) -> ApiResult<Buyer> {
        if aws_principal.is_some_and(|p| !p.starts_with("arn:")) {
            return Err(ApiError::bad_request(
                "invalid_request",
                "an AWS principal is an IAM ARN (arn:aws:iam::…)",
            ));
        }
        let buyer = Buyer {
            id: id.to_owned(),
            name: name.to_owned(),
            aws_principal: aws_principal.map(str::to_owned),
            created_at: Utc::now(),
        };
        self.store.create_buyer(&buyer).await?;
        tracing::info!(buyer = id, "buyer created");
        Ok(buyer)
    }

    /// Issues a key for `owner`: the token is returned once and only its hash is stored.
    pub async fn issue_key(&self, owner: &str, role: Role) -> ApiResult<(IssuedKey, ApiKey)> {
        if role == Role::Buyer && self.store.buyer(owner).await?.is_none() {
            return Err(ApiError::not_found(
                "buyer_not_found",
                format!("no buyer {owner}"),
            ));
        }
        let issued = self.keys.issue();
        let key = ApiKey {
            key_id: issued.key_id.clone(),
            owner: owner.to_owned(),
            role,
            secret_hash: issued.secret_hash.clone(),
            created_at: Utc::now(),
            revoked_at: None,
        };
        self.store.create_api_key(&key).await?;
        tracing::info!(owner, key_id = %key.key_id, role = role.as_str(), "API key issued");
        Ok((issued, key))
    }

    pub async fn revoke_key(&self, key_id: &str) -> ApiResult<()> {
        if self.store.revoke_api_key(key_id, Utc::now()).await? {
            tracing::info!(key_id, "API key revoked");
            Ok(())
        } else {
            Err(ApiError::not_found(
                "key_not_found",
                format!("no live API key {key_id}"),
            ))
        }
    }

    /// Creates or updates a listing (the dataset's table must exist in the catalog) and
    /// brings its versions up to date.
    pub async fn put_listing(&self, listing: Listing) -> ApiResult<Listing> {
        if self.catalog.table(&listing.dataset).await?.is_none() {
            return Err(ApiError::not_found(
                "dataset_not_found",
                format!("no curated table {}", listing.dataset),
            ));
        }
        self.store.put_listing(&listing, Utc::now()).await?;
        self.sync_versions(&listing.dataset).await?;
        Ok(listing)
    }

    /// Adds a version for each release not covered yet; returns how many.
    pub async fn sync_versions(&self, dataset: &str) -> ApiResult<u64> {
        let added = market::sync_versions(
            self.catalog.as_ref(),
            self.store.as_ref(),
            dataset,
            Utc::now(),
        )
        .await?;
        if added > 0 {
            tracing::info!(dataset, added, "dataset versions added");
        }
        Ok(added)
    }

    /// Syncs every listed dataset (the API does this periodically).
    pub async fn sync_all_versions(&self) -> ApiResult<u64> {
        let mut added = 0;
        for listing in self.store.listings(Utc::now()).await? {
            added += self.sync_versions(&listing.dataset).await?;
        }
        Ok(added)
    }

    pub async fn create_contract(&self, new: NewContract) -> ApiResult<Contract> {
        if self.store.buyer(&new.buyer).await?.is_none() {
            return Err(ApiError::not_found(
                "buyer_not_found",
                format!("no buyer {}", new.buyer),
            ));
        }
        if self.catalog.table(&new.dataset).await?.is_none() {
            return Err(ApiError::not_found(
                "dataset_not_found",
                format!("no curated table {}", new.dataset),
            ));
        }
        let contract = Contract {
            id: new.id.unwrap_or_else(|| random_id("c-")),
            buyer: new.buyer,
            dataset: new.dataset,
            terms: new.terms,
            price_minor: new.price_minor,
            currency: new.currency,
            start: new.start,
            end: new.end,
            status: ContractStatus::Active,
            plan: new.plan,
            created_at: Utc::now(),
        };
        self.store.create_contract(&contract).await?;
        tracing::info!(contract = %contract.id, buyer = %contract.buyer, dataset = %contract.dataset, "contract created");
        Ok(contract)
    }

    pub async fn end_contract(&self, id: &str) -> ApiResult<Contract> {
        if !self.store.end_contract(id, Utc::now()).await? {
            return Err(ApiError::not_found(
                "contract_not_found",
                format!("no active contract {id}"),
            ));
        }
        tracing::info!(contract = id, "contract ended");
        let contract = self.store.contract(id).await?.ok_or_else(|| {
            ApiError::not_found("contract_not_found", format!("no contract {id}"))
        })?;
        self.reconcile_lake_grants_of(&contract.buyer).await?;
        Ok(contract)
    }

    /// Grants `buyer` access to `dataset` under its contract in force (the latest-ending
    /// one).
    pub async fn grant(
        &self,
        buyer: &str,
        dataset: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> ApiResult<AccessGrant> {
        let now = Utc::now();
        let contract = self
            .store
            .contracts(Some(buyer))
            .await?
            .into_iter()
            .filter(|c| c.dataset == dataset && c.in_force(now))
            .max_by_key(|c| c.end)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "no_contract",
                    format!("{buyer} has no contract in force for {dataset}"),
                )
            })?;
        if expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::bad_request(
                "invalid_request",
                "a grant's expiry must be in the future",
            ));
        }
        let grant = AccessGrant {
            buyer: buyer.to_owned(),
            dataset: dataset.to_owned(),
            contract_id: contract.id,
            granted_at: now,
            expires_at: expires_at.map(|e| e.min(contract.end)),
            revoked_at: None,
        };
        self.store.put_grant(&grant).await?;
        // After the grant is stored; a failure here is reported and a retry is harmless
        // (both writes are idempotent).
        self.reconcile_lake_grants_of(buyer).await?;
        tracing::info!(buyer, dataset, contract = %grant.contract_id, "access granted");
        Ok(grant)
    }

    pub async fn revoke_grant(&self, buyer: &str, dataset: &str) -> ApiResult<()> {
        if self.store.revoke_grant(buyer, dataset, Utc::now()).await? {
            tracing::info!(buyer, dataset, "access grant revoked");
            self.reconcile_lake_grants_of(buyer).await?;
            Ok(())
        } else {
            Err(ApiError::not_found(
                "grant_not_found",
                format!("no live grant of {dataset} to {buyer}"),
            ))
        }
    }

    pub async fn set_consent(
        &self,
        tenant: &str,
        dataset: &str,
        granted: bool,
        revenue_share: bool,
        by: &str,
    ) -> ApiResult<ConsentSetting> {
        let setting = ConsentSetting {
            tenant: tenant.to_owned(),
            dataset: dataset.to_owned(),
            granted,
            updated_at: Utc::now(),
            updated_by: by.to_owned(),
            revenue_share,
        };
        self.consent.set_consent(&setting).await?;
        tracing::info!(tenant, dataset, granted, revenue_share, "consent set");
        self.reconcile_lake_grants().await?;
        Ok(setting)
    }

    /// Computes and stores the revenue shares of every contract for `period`
    /// (`YYYY-MM`); returns the lines.
    pub async fn compute_revenue(&self, period: &str) -> ApiResult<Vec<RevenueShareLine>> {
        let (from, to) = market::month_window(period)?;
        let events = self.store.usage_events(None, from, to).await?;
        let mut by_contract: HashMap<&str, HashSet<&str>> = HashMap::new();
        for e in &events {
            by_contract
                .entry(e.contract_id.as_str())
                .or_default()
                .extend(e.releases.iter().map(String::as_str));
        }
        let mut all = Vec::new();
        for contract in self.store.contracts(None).await? {
            if !(contract.start < to && contract.end > from) {
                continue;
            }
            let accessed = by_contract.remove(contract.id.as_str()).unwrap_or_default();
            let version = self.store.version(&contract.dataset, None).await?;
            let mut records: BTreeMap<&str, u64> = BTreeMap::new();
            if let Some(v) = &version {
                for r in v
                    .releases
                    .iter()
                    .filter(|r| accessed.contains(r.release_id.as_str()))
                {
                    *records.entry(r.tenant.as_str()).or_default() += r.records;
                }
            }
            let opted: HashSet<String> = self
                .consent
                .dataset_consents(&contract.dataset)
                .await?
                .into_iter()
                .filter(|c| c.revenue_share)
                .map(|c| c.tenant)
                .collect();
            let contributions: Vec<crate::revenue::Contribution> = records
                .iter()
                .map(|(tenant, &records)| crate::revenue::Contribution {
                    tenant: (*tenant).to_owned(),
                    records,
                    opted_in: opted.contains(*tenant),
                })
                .collect();
            let lines = crate::revenue::allocate(contract.price_minor, &contributions)
                .into_iter()
                .map(|share| RevenueShareLine {
                    contract_id: contract.id.clone(),
                    period: period.to_owned(),
                    tenant: share.tenant,
                    records: share.records,
                    amount_minor: share.amount_minor,
                    currency: contract.currency.clone(),
                })
                .collect::<Vec<_>>();
            self.store
                .put_revenue_shares(&contract.id, period, &lines)
                .await?;
            all.extend(lines);
        }
        Ok(all)
    }

    pub async fn revenue(&self, period: &str) -> ApiResult<Vec<RevenueShareLine>> {
        market::month_window(period)?;
        Ok(self.store.revenue_shares(period).await?)
    }

    // ---- buyer actions ----

    /// The listed datasets, `limit` from after `cursor`, with what `buyer` holds on each.
    pub async fn datasets(
        &self,
        buyer: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> ApiResult<DatasetPage> {
        let now = Utc::now();
        let listings = self.store.listings(now).await?;
        let mut page = Vec::new();
        let mut rest = listings
            .into_iter()
            .filter(|l| cursor.is_none_or(|c| l.dataset.as_str() > c))
            .peekable();
        while page.len() < limit {
            let Some(listing) = rest.next() else { break };
            let Some(table) = self.catalog.table(&listing.dataset).await? else {
                continue;
            };
            let version = self.version(&listing.dataset, None).await?;
            let consents = self.consent.dataset_consents(&listing.dataset).await?;
            let granted = consenting(&consents);
            let live: Vec<_> = version
                .iter()
                .flat_map(|v| v.releases.iter())
                .filter(|r| granted.contains(r.tenant.as_str()))
                .collect();
            let tenants: HashSet<&str> = live.iter().map(|r| r.tenant.as_str()).collect();
            let access = match self.store.entitlement(buyer, &listing.dataset, now).await? {
                Ok(Entitlement { contract, .. }) => AccessView {
                    status: "licensed".into(),
                    contract_id: Some(contract.id),
                    contract_end: Some(contract.end),
                },
                Err(d) => AccessView {
                    status: denial_code(d).into(),
                    contract_id: None,
                    contract_end: None,
                },
            };
            page.push(DatasetView {
                id: listing.dataset.clone(),
                title: listing.title,
                description: listing.description,
                policy_id: table.policy_id,
                k: table.k,
                schema: table
                    .columns
                    .iter()
                    .map(|c| ColumnView {
                        name: c.name.clone(),
                        data_type: c.data_type.glue_type().to_owned(),
                    })
                    .collect(),
                version: version.as_ref().map_or(0, |v| v.version),
                releases: live.len() as u64,
                records: live.iter().map(|r| r.records).sum(),
                tenants: tenants.len() as u64,
                expires_at: listing.expires_at,
                access,
            });
        }
        let next_cursor = if rest.peek().is_some() {
            page.last().map(|d| d.id.clone())
        } else {
            None
        };
        Ok(DatasetPage {
            datasets: page,
            next_cursor,
        })
    }

    /// getDataSignedUrl: URLs for the files of `version` (default: latest) of `dataset`,
    /// only of tenants whose consent stands, under the buyer's contract and grant; the
    /// request is counted against the plan's quota and recorded as a usage event.
    pub async fn signed_urls(
        &self,
        buyer: &str,
        dataset: &str,
        version: Option<u64>,
        ttl: Option<Duration>,
        request_id: &str,
    ) -> ApiResult<SignedUrls> {
        let now = Utc::now();
        let ttl = ttl.unwrap_or(self.url_ttl);
        if ttl.is_zero() || ttl > self.max_url_ttl {
            return Err(ApiError::bad_request(
                "invalid_expiry",
                format!(
                    "expiresIn must be between 1 and {} seconds",
                    self.max_url_ttl.as_secs()
                ),
            ));
        }
        if !catalog::layout::is_safe_id(dataset)
            || self.store.listing(dataset, now).await?.is_none()
        {
            return Err(ApiError::not_found(
                "dataset_not_found",
                format!("no listed dataset {dataset}"),
            ));
        }
        let Entitlement { contract, .. } = self
            .store
            .entitlement(buyer, dataset, now)
            .await?
            .map_err(|d| denial_error(d, dataset))?;
        if let Err(wait) = self.limiter.check(&contract.id, &contract.plan) {
            return Err(ApiError::rate_limited(wait.as_secs_f64().ceil() as u64));
        }
        let found = self.version(dataset, version).await?.ok_or_else(|| {
            ApiError::not_found(
                "version_not_found",
                match version {
                    Some(v) => format!("dataset {dataset} has no version {v}"),
                    None => format!("dataset {dataset} has no published release yet"),
                },
            )
        })?;
        let DatasetVersion {
            version, releases, ..
        } = found.as_ref();
        let version = *version;
        let consents = self.consent.dataset_consents(dataset).await?;
        let granted = consenting(&consents);
        let expires_at = now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::minutes(15));
        let mut files = Vec::new();
        let mut used_releases = Vec::new();
        for release in releases
            .iter()
            .filter(|r| granted.contains(r.tenant.as_str()))
        {
            used_releases.push(release.release_id.clone());
            for file in &release.files {
                let url = self.signer.url_for(&file.path, expires_at).await?;
                files.push(SignedFile {
                    url,
                    release_id: release.release_id.clone(),
                    dt: release.dt.clone(),
                    size_bytes: file.size_bytes,
                    rows: file.rows,
                });
            }
        }
        if files.is_empty() {
            // Every contributing tenant withdrew consent: nothing to sell, nothing charged.
            return Err(ApiError::not_found(
                "no_consenting_releases",
                format!(
                    "version {version} of {dataset} holds no release whose tenant's consent stands"
                ),
            ));
        }
        let event = UsageEvent {
            request_id: request_id.to_owned(),
            buyer: buyer.to_owned(),
            dataset: dataset.to_owned(),
            contract_id: contract.id.clone(),
            version,
            releases: used_releases,
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.size_bytes).sum(),
            at: now,
        };
        let state = match self
            .store
            .record_usage(&event, &charge_of(&contract))
            .await?
        {
            UsageOutcome::Recorded(state) => state,
            UsageOutcome::QuotaExceeded(state) => {
                return Err(ApiError::forbidden(
                    "quota_exceeded",
                    format!(
                        "the usage plan's quota of {} requests per {} is used up until {}",
                        state.limit,
                        contract.plan.period.as_str(),
                        state.window_end.to_rfc3339()
                    ),
                ));
            }
        };
        Ok(SignedUrls {
            dataset: dataset.to_owned(),
            version,
            expires_at,
            files,
            quota: quota_view(&contract, &state),
            request_id: request_id.to_owned(),
        })
    }

    /// getUsage: `buyer`'s requests, files and bytes per day and dataset in
    /// `[from, to)`, and the current quota windows of its contracts in force.
    pub async fn usage(
        &self,
        buyer: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> ApiResult<UsageReport> {
        if to <= from {
            return Err(ApiError::bad_request(
                "invalid_request",
                "`to` must be after `from`",
            ));
        }
        let events = self.store.usage_events(Some(buyer), from, to).await?;
        let mut days: BTreeMap<(String, String), UsageDay> = BTreeMap::new();
        for e in events {
            let date = e.at.date_naive().to_string();
            let day = days
                .entry((date.clone(), e.dataset.clone()))
                .or_insert_with(|| UsageDay {
                    date,
                    dataset: e.dataset.clone(),
                    requests: 0,
                    files: 0,
                    bytes: 0,
                });
            day.requests += 1;
            day.files += e.files;
            day.bytes += e.bytes;
        }
        let now = Utc::now();
        let mut quotas = Vec::new();
        for contract in self.store.contracts(Some(buyer)).await? {
            if contract.in_force(now) {
                let state = self.store.quota_state(&charge_of(&contract), now).await?;
                quotas.push(quota_view(&contract, &state));
            }
        }
        Ok(UsageReport {
            from,
            to,
            days: days.into_values().collect(),
            quotas,
        })
    }
}

/// The curated root's relative path of a file URL, for the local signer.
pub(crate) fn curated_relative(curated: &Location, url: &str) -> Option<String> {
    relative_to(&curated.url, url)
}

/// The consenting tenants' release ids, for tests of the filter.
#[cfg(test)]
pub(crate) fn consenting_tenants(settings: &[ConsentSetting]) -> Vec<String> {
    let mut v: Vec<String> = consenting(settings)
        .into_iter()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_under_the_root() {
        let root = "file:///srv/curated";
        assert_eq!(
            relative_to(root, "file:///srv/curated/dataset=a/part-0.parquet").as_deref(),
            Some("dataset=a/part-0.parquet")
        );
        assert_eq!(relative_to(root, "file:///srv/curated2/x"), None);
        assert_eq!(relative_to(root, "file:///elsewhere/x"), None);
    }

    #[test]
    fn only_granted_tenants_consent() {
        let at = Utc::now();
        let s = |tenant: &str, granted| ConsentSetting {
            tenant: tenant.into(),
            dataset: "d".into(),
            granted,
            updated_at: at,
            updated_by: "x".into(),
            revenue_share: false,
        };
        assert_eq!(
            consenting_tenants(&[s("t-2", true), s("t-1", false), s("t-3", true)]),
            vec!["t-2".to_owned(), "t-3".to_owned()]
        );
    }
}
