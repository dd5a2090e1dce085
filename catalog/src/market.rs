//! The marketplace's control-plane tables: buyers and their API keys, dataset listings and
//! versions, data contracts with their usage plans, access grants, usage events with the
//! quota counters, and revenue shares. One trait, [`MarketStore`], with the embedded
//! implementation [`crate::SqliteMarketStore`] (the control-plane SQLite file, beside the
//! consent settings) and one conformance suite (`conformance::market_store_suite`).
//!
//! # Guarantees every implementation upholds
//!
//! - **Quotas are never oversold.** [`MarketStore::record_usage`] counts a request against
//!   its quota and appends its [`UsageEvent`] in one atomic step: of any number of
//!   concurrent callers (threads, processes, API instances on one control plane) exactly
//!   `limit` succeed per quota window, and a refused request leaves no event.
//! - **Versions are gapless.** A dataset's versions are 1, 2, 3, …: each
//!   [`MarketStore::append_version`] adds one release; two writers racing for the same
//!   version number get one success and one [`Error::Conflict`].
//!   A release is covered by one version only, so re-syncing is harmless.
//! - **Grants follow contracts.** A grant is only created under an active contract of the
//!   same buyer and dataset; an ended contract ends what it covers at once
//!   ([`MarketStore::entitlement`] checks both on every call).
//! - **Listings that expire never expire under a live contract**: a listing past its
//!   `expires_at` is still listed while an active contract covers its dataset, and moving
//!   `expires_at` before the end of such a contract is refused.
//! - **Keys are stored hashed.** The store holds a key's id and the hash the API computed;
//!   the secret itself is never written.

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::ReleaseFile;

/// A data buyer: an organisation that signs contracts and holds API keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Buyer {
    /// Stable id ([`crate::layout::is_safe_id`]).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The buyer's IAM principal (ARN) on AWS: its grants also become Lake Formation
    /// grants.
    #[serde(default)]
    pub aws_principal: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A buyer's key: lists, licenses and downloads what the buyer's grants allow.
    Buyer,
    /// An operator's key: the admin endpoints.
    Admin,
}

impl Role {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buyer => "buyer",
            Self::Admin => "admin",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "buyer" => Ok(Self::Buyer),
            "admin" => Ok(Self::Admin),
            other => Err(Error::Invalid(format!("unknown role {other:?}"))),
        }
    }
}

/// An API key as stored: its public id and the keyed hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The public part of the key, unique.
    pub key_id: String,
    /// The buyer the key belongs to (admin keys: the operator's name).
    pub owner: String,
    pub role: Role,
    /// Hex of the keyed hash of the secret (computed by the API, never the secret).
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    /// Set when the key was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A dataset's marketplace listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    /// The dataset (the catalog's table name).
    pub dataset: String,
    pub title: String,
    pub description: String,
    /// When the listing stops being offered (the DynamoDB TTL attribute); kept while an
    /// active contract covers the dataset.
    pub expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// One release as a dataset version covers it: what a buyer gets URLs for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionRelease {
    pub release_id: String,
    /// The contributing tenant (its consent is checked on every request).
    pub tenant: String,
    pub dt: String,
    /// Records the release published.
    pub records: u64,
    /// Its curated files (full URLs under the curated root).
    pub files: Vec<ReleaseFile>,
}

/// A dataset version: version `n` covers the releases added by versions `1..=n`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetVersion {
    pub dataset: String,
    pub version: u64,
    /// The releases this version covers, in the order they were added.
    pub releases: Vec<VersionRelease>,
    pub created_at: DateTime<Utc>,
}

/// The window a usage plan's quota counts in (as API Gateway's usage plans define it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

impl QuotaPeriod {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            other => Err(Error::Invalid(format!(
                "quota period {other:?}: expected day, week or month"
            ))),
        }
    }

    /// The window holding `at`, as `[start, end)` in UTC: a calendar day, an ISO week
    /// (from Monday) or a calendar month.
    #[must_use]
    pub fn window(self, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let day = at.date_naive();
        let (start, end) = match self {
            Self::Day => (day, day + Days::new(1)),
            Self::Week => {
                let monday = day - Days::new(u64::from(day.weekday().num_days_from_monday()));
                (monday, monday + Days::new(7))
            }
            Self::Month => {
                let first = day.with_day(1).unwrap_or(day);
                (first, next_month(first))
            }
        };
        (midnight(start), midnight(end))
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// The first day of the month after `first`'s.
fn next_month(first: NaiveDate) -> NaiveDate {
    let (y, m) = if first.month() == 12 {
        (first.year() + 1, 1)
    } else {
        (first.year(), first.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(first)
}

/// A usage plan: a token bucket (rate per second, burst) and a quota per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsagePlan {
    /// Sustained requests per second.
    pub rate_per_sec: u32,
    /// Requests allowed in one burst (the bucket's size).
    pub burst: u32,
    /// Signed-URL requests per period.
    pub quota: u64,
    pub period: QuotaPeriod,
}

impl UsagePlan {
    /// Refuses plans that would allow nothing or overflow.
    pub fn validate(&self) -> Result<()> {
        if self.rate_per_sec == 0 || self.burst == 0 || self.quota == 0 {
            return Err(Error::Invalid(
                "usage plan: rate, burst and quota must be at least 1".into(),
            ));
        }
        if i64::try_from(self.quota).is_err() {
            return Err(Error::Invalid("usage plan: quota is too large".into()));
        }
        Ok(())
    }
}

/// The state of a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContractStatus {
    Active,
    /// Ended early by an operator, or past its end.
    Ended,
}

impl ContractStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(Self::Active),
            "ended" => Ok(Self::Ended),
            other => Err(Error::Invalid(format!("unknown contract status {other:?}"))),
        }
    }
}

/// A data contract between a buyer and the platform for one dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    pub id: String,
    pub buyer: String,
    pub dataset: String,
    /// The terms, as agreed (free text or a document reference).
    pub terms: String,
    /// Price per calendar month the contract is active, in minor units (cents).
    pub price_minor: u64,
    /// ISO 4217 code, three upper-case letters.
    pub currency: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: ContractStatus,
    pub plan: UsagePlan,
    pub created_at: DateTime<Utc>,
}

impl Contract {
    /// Whether the contract is in force at `now`: active and `start <= now < end`.
    #[must_use]
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.status == ContractStatus::Active && self.start <= now && now < self.end
    }

    /// Refuses malformed contracts before any backend is touched.
    pub fn validate(&self) -> Result<()> {
        for (what, id) in [
            ("contract id", &self.id),
            ("buyer", &self.buyer),
            ("dataset", &self.dataset),
        ] {
            if !crate::layout::is_safe_id(id) {
                return Err(Error::Invalid(format!("{what} {id:?} is not a valid id")));
            }
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Error::Invalid(format!(
                "currency {:?} is not an ISO 4217 code",
                self.currency
            )));
        }
        if self.end <= self.start {
            return Err(Error::Invalid("contract ends before it starts".into()));
        }
        if i64::try_from(self.price_minor).is_err() {
            return Err(Error::Invalid("price is too large".into()));
        }
        self.plan.validate()
    }
}

/// A buyer's access to a dataset, under a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessGrant {
    pub buyer: String,
    pub dataset: String,
    /// The contract the grant was made under.
    pub contract_id: String,
    pub granted_at: DateTime<Utc>,
    /// Optional expiry, earlier than the contract's end.
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl AccessGrant {
    /// Whether the grant is live at `now`.
    #[must_use]
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// A buyer's right to a dataset at one instant: the contract in force and its live grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    pub contract: Contract,
    pub grant: AccessGrant,
}

/// Why a buyer has no entitlement to a dataset (each has a stable API error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// No contract for (buyer, dataset) at all.
    NoContract,
    /// The only contracts ended, were ended, or have not started.
    ContractNotInForce,
    /// A contract is in force but no grant was made under it.
    NoGrant,
    /// The grant was revoked or has expired.
    GrantRevoked,
}

/// One append-only usage event: a signed-URL request that was served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageEvent {
    /// Unique per request (the API's request id); a repeat is refused.
    pub request_id: String,
    pub buyer: String,
    pub dataset: String,
    pub contract_id: String,
    pub version: u64,
    /// The releases whose files the request returned.
    pub releases: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    pub at: DateTime<Utc>,
}

/// The quota a [`MarketStore::record_usage`] call counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaCharge {
    /// The contract whose plan holds the quota.
    pub contract_id: String,
    pub period: QuotaPeriod,
    /// Requests allowed in the window.
    pub limit: u64,
}

/// A quota window's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaState {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub used: u64,
    pub limit: u64,
}

/// What [`MarketStore::record_usage`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageOutcome {
    /// Counted and recorded; the window's state after this request.
    Recorded(QuotaState),
    /// The window's quota was already used up: nothing was recorded.
    QuotaExceeded(QuotaState),
}

/// One tenant's share of one contract's revenue for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevenueShareLine {
    pub contract_id: String,
    /// `YYYY-MM`.
    pub period: String,
    /// The tenant, or [`PLATFORM`] for what no opted-in tenant receives.
    pub tenant: String,
    /// Records of the tenant's releases the buyer accessed in the period.
    pub records: u64,
    pub amount_minor: u64,
    pub currency: String,
}

/// The [`RevenueShareLine::tenant`] of the platform's line.
pub const PLATFORM: &str = "(platform)";

/// Where access grants are mirrored as data-lake permissions, so a buyer's own query
/// engine (Athena, Spark on Glue) sees what the API would sell it: Lake Formation on AWS
/// (`aws::LakeFormation`); the embedded default has no second access path.
///
/// Expressions are tag expressions in text, `key=v1,v2 AND key=v3`; the marketplace keeps
/// each entitled buyer at `dataset={d} AND tenant={the consenting tenants}`.
#[async_trait]
pub trait LakeGrants: Send + Sync + std::fmt::Debug {
    /// The tag expressions `principal` (an IAM ARN) holds.
    async fn granted(&self, principal: &str) -> Result<Vec<String>>;
    /// Lets `principal` read the tables matching `expression`.
    async fn grant(&self, principal: &str, expression: &str) -> Result<()>;
    /// Takes such a grant back.
    async fn revoke(&self, principal: &str, expression: &str) -> Result<()>;
}

/// A tag expression's terms, key → values, for comparing expressions whatever their
/// order of terms and values.
#[must_use]
pub fn expression_terms(
    expression: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    expression
        .split(" AND ")
        .filter_map(|term| term.split_once('='))
        .map(|(k, vs)| {
            (
                k.trim().to_owned(),
                vs.split(',')
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .collect(),
            )
        })
        .collect()
}

/// Storage for the marketplace's control-plane tables.
#[async_trait]
pub trait MarketStore: Send + Sync + std::fmt::Debug {
    /// Creates a buyer; `Conflict` if the id exists.
    async fn create_buyer(&self, buyer: &Buyer) -> Result<()>;
    async fn buyer(&self, id: &str) -> Result<Option<Buyer>>;
    /// All buyers, sorted by id.
    async fn buyers(&self) -> Result<Vec<Buyer>>;

    /// Stores a new key; `Conflict` if its id exists, `Invalid` if its owner is not a
    /// buyer (buyer keys).
    async fn create_api_key(&self, key: &ApiKey) -> Result<()>;
    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKey>>;
    /// Keys of `owner`, sorted by creation.
    async fn api_keys(&self, owner: &str) -> Result<Vec<ApiKey>>;
    /// Revokes a key at `at`; whether it existed unrevoked.
    async fn revoke_api_key(&self, key_id: &str, at: DateTime<Utc>) -> Result<bool>;

    /// Creates or updates a listing. `Conflict` if `expires_at` falls before the end of a
    /// contract in force at `now` for the dataset.
    async fn put_listing(&self, listing: &Listing, now: DateTime<Utc>) -> Result<()>;
    /// The listing, if it exists and is offered at `now`.
    async fn listing(&self, dataset: &str, now: DateTime<Utc>) -> Result<Option<Listing>>;
    /// Listings offered at `now`, sorted by dataset.
    async fn listings(&self, now: DateTime<Utc>) -> Result<Vec<Listing>>;

    /// Adds version `version` to `dataset`, covering `release` on top of the previous
    /// version. `Conflict` if the version exists or is not the next one, or if `release`
    /// is already covered. Returns the new version's number.
    async fn append_version(
        &self,
        dataset: &str,
        version: u64,
        release: &VersionRelease,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// The latest version number of `dataset` (0: none yet).
    async fn latest_version(&self, dataset: &str) -> Result<u64>;
    /// Version `version` of `dataset` (`None`: the latest), with the releases it covers.
    async fn version(&self, dataset: &str, version: Option<u64>) -> Result<Option<DatasetVersion>>;
    /// The release ids already covered by some version of `dataset`.
    async fn covered_releases(&self, dataset: &str) -> Result<Vec<String>>;

    /// Creates a contract; `Conflict` if the id exists.
    async fn create_contract(&self, contract: &Contract) -> Result<()>;
    async fn contract(&self, id: &str) -> Result<Option<Contract>>;
    /// Contracts, optionally of one buyer, sorted by (buyer, dataset, start).
    async fn contracts(&self, buyer: Option<&str>) -> Result<Vec<Contract>>;
    /// Ends a contract (and so what its grants allow); whether it was active.
    async fn end_contract(&self, id: &str, at: DateTime<Utc>) -> Result<bool>;

    /// Grants `grant.buyer` access to `grant.dataset` under `grant.contract_id`, replacing
    /// an earlier grant of the pair. `Invalid` unless that contract is in force at
    /// `grant.granted_at` for the same buyer and dataset.
    async fn put_grant(&self, grant: &AccessGrant) -> Result<()>;
    async fn grant(&self, buyer: &str, dataset: &str) -> Result<Option<AccessGrant>>;
    /// Grants of `buyer`, sorted by dataset.
    async fn grants(&self, buyer: &str) -> Result<Vec<AccessGrant>>;
    /// Revokes the pair's grant at `at`; whether a live grant was revoked.
    async fn revoke_grant(&self, buyer: &str, dataset: &str, at: DateTime<Utc>) -> Result<bool>;

    /// The buyer's entitlement to `dataset` at `now`, or why there is none.
    async fn entitlement(
        &self,
        buyer: &str,
        dataset: &str,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Entitlement, Denial>> {
        let Some(grant) = self.grant(buyer, dataset).await? else {
            let any = self
                .contracts(Some(buyer))
                .await?
                .into_iter()
                .filter(|c| c.dataset == dataset)
                .collect::<Vec<_>>();
            return Ok(Err(if any.is_empty() {
                Denial::NoContract
            } else if any.iter().any(|c| c.in_force(now)) {
                Denial::NoGrant
            } else {
                Denial::ContractNotInForce
            }));
        };
        let contract = self.contract(&grant.contract_id).await?;
        match contract {
            Some(contract) if contract.in_force(now) => {
                if grant.live(now) {
                    Ok(Ok(Entitlement { contract, grant }))
                } else {
                    Ok(Err(Denial::GrantRevoked))
                }
            }
            Some(_) => Ok(Err(Denial::ContractNotInForce)),
            None => Ok(Err(Denial::NoContract)),
        }
    }

    /// Counts `event` against `charge` and appends it, atomically (see the module docs).
    /// `Conflict` if the request id was recorded before.
    async fn record_usage(&self, event: &UsageEvent, charge: &QuotaCharge) -> Result<UsageOutcome>;
    /// The quota window of `charge` holding `at`, with what is used of it.
    async fn quota_state(&self, charge: &QuotaCharge, at: DateTime<Utc>) -> Result<QuotaState>;
    /// Usage events of `buyer` with `from <= at < to`, oldest first.
    async fn usage_events(
        &self,
        buyer: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<UsageEvent>>;

    /// Replaces the revenue-share lines of (`contract_id`, `period`) with `lines`.
    async fn put_revenue_shares(
        &self,
        contract_id: &str,
        period: &str,
        lines: &[RevenueShareLine],
    ) -> Result<()>;
    /// Stored lines of `period`, sorted by (contract, tenant).
    async fn revenue_shares(&self, period: &str) -> Result<Vec<RevenueShareLine>>;
}

/// Adds a version for every release of `dataset` in `catalog` that no version covers yet,
/// oldest published first; returns how many it added. Safe to run from several processes
/// at once (the worker after a publish, the API's periodic sync, `stackpro listing sync`):
/// a lost race for a version number is retried with the next one, and a release another
/// process covered meanwhile is skipped.
pub async fn sync_versions(
    catalog: &dyn crate::DataCatalog,
    store: &dyn MarketStore,
    dataset: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut covered: std::collections::HashSet<String> =
        store.covered_releases(dataset).await?.into_iter().collect();
    let mut releases = catalog
        .releases(&crate::ReleaseFilter {
            dataset: Some(dataset.to_owned()),
            tenant: None,
        })
        .await?;
    releases.retain(|r| !covered.contains(&r.release_id));
    releases.sort_by(|a, b| (a.published_at, &a.release_id).cmp(&(b.published_at, &b.release_id)));
    let mut added = 0;
    for release in releases {
        let entry = VersionRelease {
            release_id: release.release_id.clone(),
            tenant: release.tenant.clone(),
            dt: release.dt.clone(),
            records: release.records_out,
            files: release.files.clone(),
        };
        let mut attempts = 0;
        loop {
            let next = store.latest_version(dataset).await? + 1;
            match store.append_version(dataset, next, &entry, now).await {
                Ok(()) => {
                    added += 1;
                    break;
                }
                Err(Error::Conflict(_)) if attempts < 32 => {
                    attempts += 1;
                    covered = store.covered_releases(dataset).await?.into_iter().collect();
                    if covered.contains(&release.release_id) {
                        break;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(added)
}

/// Splits `revenue` among `weights` in proportion, exactly: each gets the floor of its
/// exact share, and the minor units left over go one each to the largest remainders
/// (ties: the earlier entry). The parts always add up to `revenue`; all-zero weights
/// (or none) give all zeros, and the caller books the revenue elsewhere.
#[must_use]
pub fn split_proportionally(revenue: u64, weights: &[u64]) -> Vec<u64> {
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given: u128 = 0;
    for (i, &w) in weights.iter().enumerate() {
        let exact = u128::from(revenue) * u128::from(w);
        let part = exact / total;
        given += part;
        parts.push(u64::try_from(part).unwrap_or(u64::MAX));
        remainders.push((exact % total, i));
    }
    let left = u128::from(revenue) - given;
    // Largest remainder first; ties to the earlier entry.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders
        .iter()
        .take(usize::try_from(left).unwrap_or(usize::MAX))
    {
        parts[i] += 1;
    }
    parts
}

/// Refuses revenue lines that do not belong to (`contract_id`, `period`), or a period that
/// is not `YYYY-MM`: what every [`MarketStore::put_revenue_shares`] checks first.
pub fn check_revenue_lines(
    contract_id: &str,
    period: &str,
    lines: &[RevenueShareLine],
) -> Result<()> {
    month_window(period)?;
    if let Some(bad) = lines
        .iter()
        .find(|l| l.contract_id != contract_id || l.period != period)
    {
        return Err(Error::Invalid(format!(
            "revenue line for {} {} given for {contract_id} {period}",
            bad.contract_id, bad.period
        )));
    }
    Ok(())
}

/// A `YYYY-MM` period's `[start, end)` in UTC.
pub fn month_window(period: &str) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let first = NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| period.len() == 7)
        .ok_or_else(|| Error::Invalid(format!("period {period:?} is not YYYY-MM")))?;
    Ok((midnight(first), midnight(next_month(first))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_windows_are_calendar_day_iso_week_and_month() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
            .single()
            .expect("valid");
        let (s, e) = QuotaPeriod::Day.window(at);
        assert_eq!(
            (s.to_rfc3339(), e.to_rfc3339()),
            (
                "2026-12-31T00:00:00+00:00".into(),
                "2027-01-01T00:00:00+00:00".into()
            )
        );
        // 2026-12-31 is a Thursday: its ISO week starts on Monday 28th.
        let (s, e) = QuotaPeriod::Week.window(at);
        assert_eq!((s.day(), e.day()), (28, 4));
        let (s, e) = QuotaPeriod::Month.window(at);
        assert_eq!((s.month(), e.year(), e.month()), (12, 2027, 1));
    }

    #[test]
    fn the_split_adds_up_and_gives_leftovers_to_the_largest_remainders() {
        assert_eq!(split_proportionally(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(split_proportionally(10, &[0, 5, 0]), vec![0, 10, 0]);
        assert_eq!(split_proportionally(7, &[]), Vec::<u64>::new());
        assert_eq!(split_proportionally(7, &[0, 0]), vec![0, 0]);
        assert_eq!(
            split_proportionally(u64::MAX, &[u64::MAX, 1])
                .iter()
                .map(|&x| u128::from(x))
                .sum::<u128>(),
            u128::from(u64::MAX)
        );
    }

    #[test]
    fn month_windows_parse_strictly() {
        let (s, e) = month_window("2026-12").expect("valid");
        assert_eq!((s.month(), e.month()), (12, 1));
        assert!(month_window("2026-13").is_err());
        assert!(month_window("2026-1").is_err());
        assert!(month_window("2026-12-01").is_err());
    }
}
