//! The control-plane file's schema (`control-plane.sqlite`), shared by
//! [`SqliteConsentStore`](super::SqliteConsentStore) and
//! [`SqliteMarketStore`](super::SqliteMarketStore): one file, one version, so the
//! marketplace's quota check and a consent read can never see different schema versions.
//!
//! Each table mirrors a DynamoDB table of the AWS control plane: ConsentSettings,
//! Datasets (listings and versions), DataContracts, AccessGrants, UsageEvents (with the
//! quota counters) and RevenueShare; buyers and API keys are the API's own.

use super::Schema;

pub(super) const SCHEMA: Schema = Schema {
    name: "control plane",
    version: 2,
    ddl: r"
CREATE TABLE IF NOT EXISTS consent_settings (
    tenant        TEXT NOT NULL,
    dataset       TEXT NOT NULL,
    granted       INTEGER NOT NULL CHECK (granted IN (0, 1)),
    updated_at    TEXT NOT NULL, -- RFC 3339, fixed width
    updated_by    TEXT NOT NULL,
    revenue_share INTEGER NOT NULL DEFAULT 0 CHECK (revenue_share IN (0, 1)),
    PRIMARY KEY (tenant, dataset)
) STRICT;
",
    upgrades: &[UPGRADE_1_TO_2],
};

/// Version 1 held consent settings only.
const UPGRADE_1_TO_2: &str = r"
ALTER TABLE consent_settings ADD COLUMN
    revenue_share INTEGER NOT NULL DEFAULT 0 CHECK (revenue_share IN (0, 1));
";

/// The marketplace tables: created by every open (idempotent), so that a version-2 file
/// made by the consent store alone gains them too.
pub(super) const MARKET_DDL: &str = r"
CREATE TABLE IF NOT EXISTS buyers (
    id            TEXT NOT NULL PRIMARY KEY,
    name          TEXT NOT NULL,
    aws_principal TEXT,
    created_at    TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT NOT NULL PRIMARY KEY,
    owner       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('buyer', 'admin')),
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS api_keys_by_owner ON api_keys (owner, created_at);

CREATE TABLE IF NOT EXISTS listings (
    dataset     TEXT NOT NULL PRIMARY KEY,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    expires_at  TEXT,
    updated_at  TEXT NOT NULL
) STRICT;

-- One row per version: version n adds one release; it covers the rows 1..=n.
CREATE TABLE IF NOT EXISTS dataset_versions (
    dataset    TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    release_id TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    dt         TEXT NOT NULL,
    records    INTEGER NOT NULL,
    files      TEXT NOT NULL, -- JSON array of ReleaseFile
    created_at TEXT NOT NULL,
    PRIMARY KEY (dataset, version),
    UNIQUE (dataset, release_id)
) STRICT;

CREATE TABLE IF NOT EXISTS contracts (
    id          TEXT NOT NULL PRIMARY KEY,
    buyer       TEXT NOT NULL REFERENCES buyers (id),
    dataset     TEXT NOT NULL,
    terms       TEXT NOT NULL,
    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
    currency    TEXT NOT NULL,
    start_at    TEXT NOT NULL,
    end_at      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'ended')),
    plan        TEXT NOT NULL, -- JSON UsagePlan
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS contracts_by_buyer ON contracts (buyer, dataset, start_at);

CREATE TABLE IF NOT EXISTS access_grants (
    buyer       TEXT NOT NULL,
    dataset     TEXT NOT NULL,
    contract_id TEXT NOT NULL REFERENCES contracts (id),
    granted_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT,
    PRIMARY KEY (buyer, dataset)
) STRICT;

CREATE TABLE IF NOT EXISTS usage_events (
    request_id  TEXT NOT NULL PRIMARY KEY,
    buyer       TEXT NOT NULL,
    dataset     TEXT NOT NULL,
    contract_id TEXT NOT NULL,
    version     INTEGER NOT NULL,
    releases    TEXT NOT NULL, -- JSON array of release ids
    files       INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    at          TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS usage_events_by_buyer ON usage_events (buyer, at);
CREATE INDEX IF NOT EXISTS usage_events_by_time ON usage_events (at);

CREATE TABLE IF NOT EXISTS quota_counters (
    contract_id  TEXT NOT NULL,
    window_start TEXT NOT NULL,
    used         INTEGER NOT NULL CHECK (used >= 0),
    PRIMARY KEY (contract_id, window_start)
) STRICT;

CREATE TABLE IF NOT EXISTS revenue_shares (
    contract_id  TEXT NOT NULL,
    period       TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    records      INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    PRIMARY KEY (contract_id, period, tenant)
) STRICT;
";
