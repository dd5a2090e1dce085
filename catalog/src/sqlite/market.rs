//! [`SqliteMarketStore`]: the [`MarketStore`] in the control-plane SQLite file.
//!
//! Writes that must not race run in `BEGIN IMMEDIATE` transactions, which hold the file's
//! write lock from their first statement: the quota check and its event, a version bump,
//! a grant checked against its contract. Several processes (API instances, the CLI) may
//! open the file at once; their writes serialize on that lock.

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::control_plane::{MARKET_DDL, SCHEMA};
use super::{Db, format_time, get, get_json, get_time, get_u64, to_i64};
use crate::error::{Error, Result};
use crate::market::{
    AccessGrant, ApiKey, Buyer, Contract, ContractStatus, DatasetVersion, Listing, MarketStore,
    QuotaCharge, QuotaState, RevenueShareLine, Role, UsageEvent, UsageOutcome, VersionRelease,
};

/// The [`MarketStore`] on the embedded control-plane file (`control-plane.sqlite`).
///
/// Usage events are written by one writer thread per handle, on its own connection, with
/// group commit: the
/// requests waiting when a transaction starts are decided one after the other inside it
/// (each its own savepoint, so a duplicate request id fails alone) and committed
/// together, so one fsync serves a whole batch. Every answer is given after the commit;
/// a failed commit fails every request of the batch, and none of them was recorded.
#[derive(Debug, Clone)]
pub struct SqliteMarketStore {
    db: Db,
    usage: std::sync::mpsc::Sender<PendingUsage>,
}

/// A `record_usage` call waiting for the writer.
#[derive(Debug)]
struct PendingUsage {
    event: UsageEvent,
    charge: QuotaCharge,
    reply: tokio::sync::oneshot::Sender<Result<UsageOutcome>>,
}

/// Most requests one usage transaction decides.
const MAX_USAGE_BATCH: usize = 256;

/// The writer: runs until every handle is dropped.
fn usage_writer(db: &Db, queue: &std::sync::mpsc::Receiver<PendingUsage>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_USAGE_BATCH {
            match queue.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let mut conn = db
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outcomes = record_batch(&mut conn, &batch);
        drop(conn);
        match outcomes {
            Ok(outcomes) => {
                for (p, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = p.reply.send(outcome);
                }
            }
            Err(e) => {
                let message = e.to_string();
                let retryable = e.is_retryable();
                for p in batch {
                    let err = if retryable {
                        Error::Sqlite(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some(message.clone()),
                        ))
                    } else {
                        Error::Io(std::io::Error::other(message.clone()))
                    };
                    let _ = p.reply.send(Err(err));
                }
            }
        }
    }
}

/// Decides and records a batch in one transaction; the outer error means the commit
/// failed and nothing was recorded.
fn record_batch(
    conn: &mut Connection,
    batch: &[PendingUsage],
) -> Result<Vec<Result<UsageOutcome>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for p in batch {
        let sp = tx.savepoint()?;
        let outcome = record_one(&sp, &p.event, &p.charge);
        if matches!(outcome, Ok(UsageOutcome::Recorded(_))) {
            sp.commit()?;
        } else {
            drop(sp); // rolls back to the savepoint
        }
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(outcomes)
}

/// One request: the quota check, the event and the counter.
fn record_one(conn: &Connection, e: &UsageEvent, charge: &QuotaCharge) -> Result<UsageOutcome> {
    let limit = to_i64(charge.limit, "quota")?;
    let (start, end) = charge.period.window(e.at);
    let window = format_time(&start);
    let used: i64 = conn
        .prepare_cached(
            "SELECT coalesce((SELECT used FROM quota_counters
                              WHERE contract_id = ?1 AND window_start = ?2), 0)",
        )?
        .query_row(params![charge.contract_id, window], |r| r.get(0))?;
    let state = |used: i64| QuotaState {
        window_start: start,
        window_end: end,
        used: u64::try_from(used).unwrap_or(0),
        limit: charge.limit,
    };
    if used >= limit {
        return Ok(UsageOutcome::QuotaExceeded(state(used)));
    }
    conn.prepare_cached(
        "INSERT INTO usage_events (request_id, buyer, dataset, contract_id, version,
             releases, files, bytes, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        e.request_id,
        e.buyer,
        e.dataset,
        e.contract_id,
        to_i64(e.version, "version")?,
        serde_json::to_string(&e.releases)?,
        to_i64(e.files, "files")?,
        to_i64(e.bytes, "bytes")?,
        format_time(&e.at)
    ])
    .map_err(|err| conflict_on_unique(err, &format!("request {}", e.request_id)))?;
    conn.prepare_cached(
        "INSERT INTO quota_counters (contract_id, window_start, used) VALUES (?1, ?2, 1)
         ON CONFLICT (contract_id, window_start) DO UPDATE SET used = used + 1",
    )?
    .execute(params![charge.contract_id, window])?;
    Ok(UsageOutcome::Recorded(state(used + 1)))
}

impl SqliteMarketStore {
    /// Opens the store at `path`, creating the file, its schema and the market tables.
    ///
    /// # Errors
    /// The file cannot be opened, or holds a schema version this build does not read.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Db::open(path, &SCHEMA)?;
        {
            let conn = db
                .conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            conn.execute_batch(MARKET_DDL)?;
        }
        let (usage, queue) = std::sync::mpsc::channel();
        // A connection of its own: reads on `db` never wait behind a batch's fsync (WAL
        // readers do not block on the writer).
        let writer_db = Db::open(path, &SCHEMA)?;
        std::thread::Builder::new()
            .name("usage-writer".into())
            .spawn(move || usage_writer(&writer_db, &queue))?;
        Ok(Self { db, usage })
    }

    /// Opens `dir/control-plane.sqlite` (the consent store's file), creating `dir`.
    ///
    /// # Errors
    /// As [`SqliteMarketStore::open`], or `dir` cannot be created.
    pub fn open_in_state_dir(dir: &Path) -> Result<Self> {
        Self::open(&super::state_file(
            dir,
            super::SqliteConsentStore::FILE_NAME,
        )?)
    }
}

fn opt_time(t: Option<&DateTime<Utc>>) -> Option<String> {
    t.map(format_time)
}

fn get_opt_time(row: &Row<'_>, col: &str) -> Result<Option<DateTime<Utc>>> {
    let text: Option<String> = get(row, col)?;
    text.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| Error::Invalid(format!("stored column {col} is not a timestamp: {e}")))
    })
    .transpose()
}

/// Maps a primary-key clash to [`Error::Conflict`].
fn conflict_on_unique(err: rusqlite::Error, what: &str) -> Error {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => {
            Error::Conflict(format!("{what} already exists"))
        }
        _ => Error::Sqlite(err),
    }
}

fn buyer_of(row: &Row<'_>) -> Result<Buyer> {
    Ok(Buyer {
        id: get(row, "id")?,
        name: get(row, "name")?,
        aws_principal: get(row, "aws_principal")?,
        created_at: get_time(row, "created_at")?,
    })
}

fn key_of(row: &Row<'_>) -> Result<ApiKey> {
    Ok(ApiKey {
        key_id: get(row, "key_id")?,
        owner: get(row, "owner")?,
        role: Role::parse(&get::<String>(row, "role")?)?,
        secret_hash: get(row, "secret_hash")?,
        created_at: get_time(row, "created_at")?,
        revoked_at: get_opt_time(row, "revoked_at")?,
    })
}

fn listing_of(row: &Row<'_>) -> Result<Listing> {
    Ok(Listing {
        dataset: get(row, "dataset")?,
        title: get(row, "title")?,
        description: get(row, "description")?,
        expires_at: get_opt_time(row, "expires_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn contract_of(row: &Row<'_>) -> Result<Contract> {
    Ok(Contract {
        id: get(row, "id")?,
        buyer: get(row, "buyer")?,
        dataset: get(row, "dataset")?,
        terms: get(row, "terms")?,
        price_minor: get_u64(row, "price_minor")?,
        currency: get(row, "currency")?,
        start: get_time(row, "start_at")?,
        end: get_time(row, "end_at")?,
        status: ContractStatus::parse(&get::<String>(row, "status")?)?,
        plan: get_json(row, "plan")?,
        created_at: get_time(row, "created_at")?,
    })
}

fn grant_of(row: &Row<'_>) -> Result<AccessGrant> {
    Ok(AccessGrant {
        buyer: get(row, "buyer")?,
        dataset: get(row, "dataset")?,
        contract_id: get(row, "contract_id")?,
        granted_at: get_time(row, "granted_at")?,
        expires_at: get_opt_time(row, "expires_at")?,
        revoked_at: get_opt_time(row, "revoked_at")?,
    })
}

fn event_of(row: &Row<'_>) -> Result<UsageEvent> {
    Ok(UsageEvent {
        request_id: get(row, "request_id")?,
        buyer: get(row, "buyer")?,
        dataset: get(row, "dataset")?,
        contract_id: get(row, "contract_id")?,
        version: get_u64(row, "version")?,
        releases: get_json(row, "releases")?,
        files: get_u64(row, "files")?,
        bytes: get_u64(row, "bytes")?,
        at: get_time(row, "at")?,
    })
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// The contract rows of `dataset` in force at `now`, latest end first.
fn latest_live_contract_end(
    conn: &Connection,
    dataset: &str,
    now: &DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let now = format_time(now);
    let end: Option<String> = conn
        .prepare_cached(
            "SELECT max(end_at) FROM contracts
             WHERE dataset = ?1 AND status = 'active' AND start_at <= ?2 AND end_at > ?2",
        )?
        .query_row(params![dataset, now], |row| row.get(0))?;
    end.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| Error::Invalid(format!("stored contract end: {e}")))
    })
    .transpose()
}

/// Listings offered at `now`: unexpired, or covered by a contract in force.
const LISTINGS_OFFERED: &str = "SELECT l.* FROM listings l
     WHERE (?1 IS NULL OR l.dataset = ?1)
       AND (l.expires_at IS NULL OR l.expires_at > ?2
            OR EXISTS (SELECT 1 FROM contracts c
                       WHERE c.dataset = l.dataset AND c.status = 'active'
                         AND c.start_at <= ?2 AND c.end_at > ?2))
     ORDER BY l.dataset";

#[async_trait]
impl MarketStore for SqliteMarketStore {
    async fn create_buyer(&self, buyer: &Buyer) -> Result<()> {
        if !crate::layout::is_safe_id(&buyer.id) {
            return Err(Error::Invalid(format!(
                "buyer id {:?} is not a valid id",
                buyer.id
            )));
        }
        let buyer = buyer.clone();
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO buyers (id, name, aws_principal, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![buyer.id, buyer.name, buyer.aws_principal, format_time(&buyer.created_at)],
                )
                .map_err(|e| conflict_on_unique(e, &format!("buyer {}", buyer.id)))?;
                Ok(())
            })
            .await
    }

    async fn buyer(&self, id: &str) -> Result<Option<Buyer>> {
        let id = id.to_owned();
        self.db
            .call(move |conn| {
                Ok(collect(conn, "SELECT * FROM buyers WHERE id = ?1", [id], buyer_of)?.pop())
            })
            .await
    }

    async fn buyers(&self) -> Result<Vec<Buyer>> {
        self.db
            .call(|conn| collect(conn, "SELECT * FROM buyers ORDER BY id", [], buyer_of))
            .await
    }

    async fn create_api_key(&self, key: &ApiKey) -> Result<()> {
        if !crate::layout::is_safe_id(&key.key_id) || key.secret_hash.is_empty() {
            return Err(Error::Invalid("an API key needs an id and a hash".into()));
        }
        let key = key.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if key.role == Role::Buyer {
                    let known: bool = tx
                        .prepare_cached("SELECT EXISTS (SELECT 1 FROM buyers WHERE id = ?1)")?
                        .query_row([&key.owner], |r| r.get(0))?;
                    if !known {
                        return Err(Error::Invalid(format!("no buyer {}", key.owner)));
                    }
                }
                tx.execute(
                    "INSERT INTO api_keys (key_id, owner, role, secret_hash, created_at, revoked_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        key.key_id,
                        key.owner,
                        key.role.as_str(),
                        key.secret_hash,
                        format_time(&key.created_at),
                        opt_time(key.revoked_at.as_ref()),
                    ],
                )
                .map_err(|e| conflict_on_unique(e, &format!("API key {}", key.key_id)))?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKey>> {
        let id = key_id.to_owned();
        self.db
            .call(move |conn| {
                Ok(collect(
                    conn,
                    "SELECT * FROM api_keys WHERE key_id = ?1",
                    [id],
                    key_of,
                )?
                .pop())
            })
            .await
    }

    async fn api_keys(&self, owner: &str) -> Result<Vec<ApiKey>> {
        let owner = owner.to_owned();
        self.db
            .call(move |conn| {
                collect(
                    conn,
                    "SELECT * FROM api_keys WHERE owner = ?1 ORDER BY created_at, key_id",
                    [owner],
                    key_of,
                )
            })
            .await
    }

    async fn revoke_api_key(&self, key_id: &str, at: DateTime<Utc>) -> Result<bool> {
        let id = key_id.to_owned();
        self.db
            .call(move |conn| {
                Ok(conn.execute(
                    "UPDATE api_keys SET revoked_at = ?2 WHERE key_id = ?1 AND revoked_at IS NULL",
                    params![id, format_time(&at)],
                )? == 1)
            })
            .await
    }

    async fn put_listing(&self, listing: &Listing, now: DateTime<Utc>) -> Result<()> {
        if !crate::layout::is_safe_id(&listing.dataset) {
            return Err(Error::Invalid(format!(
                "dataset {:?} is not a valid id",
                listing.dataset
            )));
        }
        let listing = listing.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if let Some(expires) = listing.expires_at
                    && let Some(end) = latest_live_contract_end(&tx, &listing.dataset, &now)?
                    && expires < end
                {
                    return Err(Error::Conflict(format!(
                        "listing {} cannot expire at {expires} before a contract in force ends ({end})",
                        listing.dataset
                    )));
                }
                tx.execute(
                    "INSERT INTO listings (dataset, title, description, expires_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (dataset) DO UPDATE SET
                         title = excluded.title, description = excluded.description,
                         expires_at = excluded.expires_at, updated_at = excluded.updated_at",
                    params![
                        listing.dataset,
                        listing.title,
                        listing.description,
                        opt_time(listing.expires_at.as_ref()),
                        format_time(&listing.updated_at),
                    ],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn listing(&self, dataset: &str, now: DateTime<Utc>) -> Result<Option<Listing>> {
        let dataset = dataset.to_owned();
        self.db
            .call(move |conn| {
                Ok(collect(
                    conn,
                    LISTINGS_OFFERED,
                    params![dataset, format_time(&now)],
                    listing_of,
                )?
                .pop())
            })
            .await
    }

    async fn listings(&self, now: DateTime<Utc>) -> Result<Vec<Listing>> {
        self.db
            .call(move |conn| {
                collect(
                    conn,
                    LISTINGS_OFFERED,
                    params![None::<String>, format_time(&now)],
                    listing_of,
                )
            })
            .await
    }

    async fn append_version(
        &self,
        dataset: &str,
        version: u64,
        release: &VersionRelease,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let dataset = dataset.to_owned();
        let release = release.clone();
        let version_i = to_i64(version, "version")?;
        let records = to_i64(release.records, "records")?;
        let files = serde_json::to_string(&release.files)?;
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let latest: i64 = tx
                    .prepare_cached(
                        "SELECT coalesce(max(version), 0) FROM dataset_versions WHERE dataset = ?1",
                    )?
                    .query_row([&dataset], |r| r.get(0))?;
                if version_i != latest + 1 {
                    return Err(Error::Conflict(format!(
                        "dataset {dataset}: version {version} is not next (latest is {latest})"
                    )));
                }
                tx.execute(
                    "INSERT INTO dataset_versions
                         (dataset, version, release_id, tenant, dt, records, files, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        dataset,
                        version_i,
                        release.release_id,
                        release.tenant,
                        release.dt,
                        records,
                        files,
                        format_time(&at)
                    ],
                )
                .map_err(|e| {
                    conflict_on_unique(
                        e,
                        &format!("release {} in dataset {dataset}", release.release_id),
                    )
                })?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn latest_version(&self, dataset: &str) -> Result<u64> {
        let dataset = dataset.to_owned();
        self.db
            .call(move |conn| {
                let latest: i64 = conn
                    .prepare_cached(
                        "SELECT coalesce(max(version), 0) FROM dataset_versions WHERE dataset = ?1",
                    )?
                    .query_row([dataset], |r| r.get(0))?;
                Ok(u64::try_from(latest).unwrap_or(0))
            })
            .await
    }

    async fn version(&self, dataset: &str, version: Option<u64>) -> Result<Option<DatasetVersion>> {
        let dataset = dataset.to_owned();
        let wanted = version.map(|v| to_i64(v, "version")).transpose()?;
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let row: Option<(i64, String)> = tx
                    .prepare_cached(
                        "SELECT version, created_at FROM dataset_versions
                         WHERE dataset = ?1 AND (?2 IS NULL OR version = ?2)
                         ORDER BY version DESC LIMIT 1",
                    )?
                    .query_row(params![dataset, wanted], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((version, created_at)) = row else {
                    return Ok(None);
                };
                let releases = collect(
                    &tx,
                    "SELECT release_id, tenant, dt, records, files FROM dataset_versions
                     WHERE dataset = ?1 AND version <= ?2 ORDER BY version",
                    params![dataset, version],
                    |row| {
                        Ok(VersionRelease {
                            release_id: get(row, "release_id")?,
                            tenant: get(row, "tenant")?,
                            dt: get(row, "dt")?,
                            records: get_u64(row, "records")?,
                            files: get_json(row, "files")?,
                        })
                    },
                )?;
                let created_at = DateTime::parse_from_rfc3339(&created_at)
                    .map_err(|e| Error::Invalid(format!("stored version time: {e}")))?
                    .with_timezone(&Utc);
                Ok(Some(DatasetVersion {
                    dataset,
                    version: u64::try_from(version).unwrap_or(0),
                    releases,
                    created_at,
                }))
            })
            .await
    }

    async fn covered_releases(&self, dataset: &str) -> Result<Vec<String>> {
        let dataset = dataset.to_owned();
        self.db
            .call(move |conn| {
                collect(
                    conn,
                    "SELECT release_id FROM dataset_versions WHERE dataset = ?1 ORDER BY version",
                    [dataset],
                    |row| get(row, "release_id"),
                )
            })
            .await
    }

    async fn create_contract(&self, contract: &Contract) -> Result<()> {
        contract.validate()?;
        let c = contract.clone();
        let plan = serde_json::to_string(&c.plan)?;
        let price = to_i64(c.price_minor, "price")?;
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let known: bool = tx
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM buyers WHERE id = ?1)")?
                    .query_row([&c.buyer], |r| r.get(0))?;
                if !known {
                    return Err(Error::Invalid(format!("no buyer {}", c.buyer)));
                }
                tx.execute(
                    "INSERT INTO contracts (id, buyer, dataset, terms, price_minor, currency,
                         start_at, end_at, status, plan, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        c.id,
                        c.buyer,
                        c.dataset,
                        c.terms,
                        price,
                        c.currency,
                        format_time(&c.start),
                        format_time(&c.end),
                        c.status.as_str(),
                        plan,
                        format_time(&c.created_at),
                    ],
                )
                .map_err(|e| conflict_on_unique(e, &format!("contract {}", c.id)))?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn contract(&self, id: &str) -> Result<Option<Contract>> {
        let id = id.to_owned();
        self.db
            .call(move |conn| {
                Ok(collect(
                    conn,
                    "SELECT * FROM contracts WHERE id = ?1",
                    [id],
                    contract_of,
                )?
                .pop())
            })
            .await
    }

    async fn contracts(&self, buyer: Option<&str>) -> Result<Vec<Contract>> {
        let buyer = buyer.map(str::to_owned);
        self.db
            .call(move |conn| {
                collect(
                    conn,
                    "SELECT * FROM contracts WHERE ?1 IS NULL OR buyer = ?1
                     ORDER BY buyer, dataset, start_at, id",
                    [buyer],
                    contract_of,
                )
            })
            .await
    }

    async fn end_contract(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let id = id.to_owned();
        self.db
            .call(move |conn| {
                // The end moves to `at` if that is earlier, so the record says when it ended.
                Ok(conn.execute(
                    "UPDATE contracts SET status = 'ended', end_at = min(end_at, ?2)
                     WHERE id = ?1 AND status = 'active'",
                    params![id, format_time(&at)],
                )? == 1)
            })
            .await
    }

    async fn put_grant(&self, grant: &AccessGrant) -> Result<()> {
        let g = grant.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let contract = collect(
                    &tx,
                    "SELECT * FROM contracts WHERE id = ?1",
                    [&g.contract_id],
                    contract_of,
                )?
                .pop()
                .ok_or_else(|| Error::Invalid(format!("no contract {}", g.contract_id)))?;
                if contract.buyer != g.buyer || contract.dataset != g.dataset {
                    return Err(Error::Invalid(format!(
                        "contract {} is for {} on {}, not {} on {}",
                        contract.id, contract.buyer, contract.dataset, g.buyer, g.dataset
                    )));
                }
                if !contract.in_force(g.granted_at) {
                    return Err(Error::Invalid(format!(
                        "contract {} is not in force",
                        contract.id
                    )));
                }
                tx.execute(
                    "INSERT INTO access_grants
                         (buyer, dataset, contract_id, granted_at, expires_at, revoked_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (buyer, dataset) DO UPDATE SET
                         contract_id = excluded.contract_id, granted_at = excluded.granted_at,
                         expires_at = excluded.expires_at, revoked_at = excluded.revoked_at",
                    params![
                        g.buyer,
                        g.dataset,
                        g.contract_id,
                        format_time(&g.granted_at),
                        opt_time(g.expires_at.as_ref()),
                        opt_time(g.revoked_at.as_ref()),
                    ],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn grant(&self, buyer: &str, dataset: &str) -> Result<Option<AccessGrant>> {
        let (buyer, dataset) = (buyer.to_owned(), dataset.to_owned());
        self.db
            .call(move |conn| {
                Ok(collect(
                    conn,
                    "SELECT * FROM access_grants WHERE buyer = ?1 AND dataset = ?2",
                    [buyer, dataset],
                    grant_of,
                )?
                .pop())
            })
            .await
    }

    async fn grants(&self, buyer: &str) -> Result<Vec<AccessGrant>> {
        let buyer = buyer.to_owned();
        self.db
            .call(move |conn| {
                collect(
                    conn,
                    "SELECT * FROM access_grants WHERE buyer = ?1 ORDER BY dataset",
                    [buyer],
                    grant_of,
                )
            })
            .await
    }

    async fn revoke_grant(&self, buyer: &str, dataset: &str, at: DateTime<Utc>) -> Result<bool> {
        let (buyer, dataset) = (buyer.to_owned(), dataset.to_owned());
        self.db
            .call(move |conn| {
                Ok(conn.execute(
                    "UPDATE access_grants SET revoked_at = ?3
                     WHERE buyer = ?1 AND dataset = ?2 AND revoked_at IS NULL",
                    params![buyer, dataset, format_time(&at)],
                )? == 1)
            })
            .await
    }

    async fn record_usage(&self, event: &UsageEvent, charge: &QuotaCharge) -> Result<UsageOutcome> {
        // Validate before queueing, so a bad event fails alone.
        to_i64(charge.limit, "quota")?;
        to_i64(event.files, "files")?;
        to_i64(event.bytes, "bytes")?;
        to_i64(event.version, "version")?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.usage
            .send(PendingUsage {
                event: event.clone(),
                charge: charge.clone(),
                reply,
            })
            .map_err(|_| Error::Io(std::io::Error::other("the usage writer has stopped")))?;
        answer
            .await
            .map_err(|_| Error::Io(std::io::Error::other("the usage writer dropped a request")))?
    }

    async fn quota_state(&self, charge: &QuotaCharge, at: DateTime<Utc>) -> Result<QuotaState> {
        let charge = charge.clone();
        self.db
            .call(move |conn| {
                let (start, end) = charge.period.window(at);
                let used: i64 = conn
                    .prepare_cached(
                        "SELECT coalesce((SELECT used FROM quota_counters
                                          WHERE contract_id = ?1 AND window_start = ?2), 0)",
                    )?
                    .query_row(params![charge.contract_id, format_time(&start)], |r| {
                        r.get(0)
                    })?;
                Ok(QuotaState {
                    window_start: start,
                    window_end: end,
                    used: u64::try_from(used).unwrap_or(0),
                    limit: charge.limit,
                })
            })
            .await
    }

    async fn usage_events(
        &self,
        buyer: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<UsageEvent>> {
        let buyer = buyer.map(str::to_owned);
        self.db
            .call(move |conn| {
                collect(
                    conn,
                    "SELECT * FROM usage_events
                     WHERE (?1 IS NULL OR buyer = ?1) AND at >= ?2 AND at < ?3
                     ORDER BY at, request_id",
                    params![buyer, format_time(&from), format_time(&to)],
                    event_of,
                )
            })
            .await
    }

    async fn put_revenue_shares(
        &self,
        contract_id: &str,
        period: &str,
        lines: &[RevenueShareLine],
    ) -> Result<()> {
        crate::market::check_revenue_lines(contract_id, period, lines)?;
        let (contract_id, period, lines) =
            (contract_id.to_owned(), period.to_owned(), lines.to_vec());
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute(
                    "DELETE FROM revenue_shares WHERE contract_id = ?1 AND period = ?2",
                    params![contract_id, period],
                )?;
                for l in &lines {
                    tx.execute(
                        "INSERT INTO revenue_shares
                             (contract_id, period, tenant, records, amount_minor, currency)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            l.contract_id,
                            l.period,
                            l.tenant,
                            to_i64(l.records, "records")?,
                            to_i64(l.amount_minor, "amount")?,
                            l.currency
                        ],
                    )
                    .map_err(|e| {
                        conflict_on_unique(e, &format!("revenue line for {}", l.tenant))
                    })?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn revenue_shares(&self, period: &str) -> Result<Vec<RevenueShareLine>> {
        let period = period.to_owned();
        self.db
            .call(move |conn| {
                collect(
                    conn,
                    "SELECT * FROM revenue_shares WHERE period = ?1 ORDER BY contract_id, tenant",
                    [period],
                    |row| {
                        Ok(RevenueShareLine {
                            contract_id: get(row, "contract_id")?,
                            period: get(row, "period")?,
                            tenant: get(row, "tenant")?,
                            records: get_u64(row, "records")?,
                            amount_minor: get_u64(row, "amount_minor")?,
                            currency: get(row, "currency")?,
                        })
                    },
                )
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    #[tokio::test]
    async fn conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteMarketStore::open_in_state_dir(dir.path()).expect("open");
        conformance::market_store_suite(&store, "sqlite").await;
        conformance::market_store_suite(&store, "again").await;
    }

    #[tokio::test]
    async fn a_version_one_control_plane_is_upgraded_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control-plane.sqlite");
        {
            let conn = Connection::open(&path).expect("raw open");
            conn.execute_batch(
                "CREATE TABLE consent_settings (tenant TEXT NOT NULL, dataset TEXT NOT NULL,
                     granted INTEGER NOT NULL CHECK (granted IN (0, 1)), updated_at TEXT NOT NULL,
                     updated_by TEXT NOT NULL, PRIMARY KEY (tenant, dataset)) STRICT;
                 INSERT INTO consent_settings VALUES
                     ('t-1', 'contacts', 1, '2026-11-24T15:00:00.000000000Z', 'ops');
                 PRAGMA user_version = 1;",
            )
            .expect("version-1 file");
        }
        let market = SqliteMarketStore::open(&path).expect("upgrade");
        let consent = crate::SqliteConsentStore::open(&path).expect("same file");
        let kept = crate::ConsentStore::consent(&consent, "t-1", "contacts")
            .await
            .expect("read")
            .expect("kept");
        assert!(kept.granted && !kept.revenue_share, "{kept:?}");
        assert!(market.buyers().await.expect("market tables").is_empty());
    }
}
