//! Reusable conformance suites: every [`DataCatalog`], [`ConsentStore`], [`MarketStore`]
//! and [`MetricsSink`]
//! implementation must pass them (SQLite always, AWS against the emulator).
//!
//! The suites panic with a message naming the broken guarantee. They only
//! create names containing `unique` and filter list results to those names, so
//! they can run against a shared backend next to other runs and data; give each
//! run its own `unique` (lowercase letters, digits and `_`, which every backend
//! accepts in table names). They do not clean up: ledger rows are permanent by
//! design.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};

use crate::consent::{ConsentStore, ConsentStoreExt};
use crate::data_catalog::DataCatalog;
use crate::error::Error;
use crate::market::{
    AccessGrant, ApiKey, Buyer, Contract, ContractStatus, Denial, Entitlement, Listing,
    MarketStore, QuotaCharge, QuotaPeriod, RevenueShareLine, Role, UsageEvent, UsageOutcome,
    UsagePlan, VersionRelease,
};
use crate::metrics::{Datapoint, MetricsSink, NAMESPACE};
use crate::model::{
    Column, ColumnType, ConsentSetting, PublishOutcome, RawObjectRef, Release, ReleaseFile,
    ReleaseFilter, TableSchema,
};

/// A fixed instant (2026-11-24T15:00:00Z) so results never depend on the
/// clock; whole seconds, so backends storing coarser timestamps still round-trip.
fn base_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_532_400, 0).expect("constant timestamp is valid")
}

/// A plausible `contacts`-like table schema for `dataset`.
#[must_use]
pub fn sample_table(dataset: &str) -> TableSchema {
    TableSchema {
        dataset: dataset.to_owned(),
        columns: vec![
            Column {
                name: "event_id".into(),
                data_type: ColumnType::String,
                comment: None,
            },
            Column {
                name: "email_hash".into(),
                data_type: ColumnType::String,
                comment: Some("HMAC-SHA256 of the normalized email".into()),
            },
            Column {
                name: "age".into(),
                data_type: ColumnType::String,
                comment: Some("generalized band".into()),
            },
            Column {
                name: "submitted_at".into(),
                data_type: ColumnType::Date,
                comment: None,
            },
        ],
        partition_keys: crate::layout::PARTITION_KEYS
            .iter()
            .map(|k| (*k).to_owned())
            .collect(),
        location: format!("file:///curated/dataset={dataset}/"),
        policy_id: "default-v2".into(),
        policy_hash: "sha256:0f1e2d".into(),
        k: 20,
        parameters: BTreeMap::from([("classification".into(), "parquet".into())]),
    }
}

/// A release of `dataset` for `tenant` on 2026-11-24 consuming `input_keys`,
/// with two files and a small report.
#[must_use]
pub fn sample_release(
    release_id: &str,
    dataset: &str,
    tenant: &str,
    input_keys: &[&str],
) -> Release {
    let dt = "2026-11-24";
    let location =
        format!("file:///curated/dataset={dataset}/tenant={tenant}/dt={dt}/release={release_id}/");
    Release {
        release_id: release_id.to_owned(),
        dataset: dataset.to_owned(),
        tenant: tenant.to_owned(),
        dt: dt.to_owned(),
        files: (0..2_u64)
            .map(|n| ReleaseFile {
                path: format!("{location}part-{n}.parquet"),
                size_bytes: 4096 + n,
                rows: 100 + n,
            })
            .collect(),
        location,
        inputs: (0_u64..)
            .zip(input_keys)
            .map(|(n, key)| RawObjectRef {
                key: (*key).to_owned(),
                size: 1000 + n,
                e_tag: (n % 2 == 0).then(|| format!("\"etag-{n}\"")),
            })
            .collect(),
        policy_id: "default-v2".into(),
        policy_hash: "sha256:0f1e2d".into(),
        key_id: "hmac-key-1".into(),
        k: 20,
        records_in: 210,
        records_out: 201,
        suppressed: 6,
        quarantined: 3,
        k_anon_violations: 1,
        node: "zip=1,age=2,gender=0".into(),
        report: serde_json::json!({
            "release_id": release_id,
            "node": {"zip": 1, "age": 2, "gender": 0},
            "classes": {"count": 9, "min_size": 20},
            "dropped_fields": ["name", "message"],
            "information_loss": 0.25,
        }),
        published_at: base_time(),
    }
}

/// Ids of `releases` that belong to this run, in the order returned.
fn own_ids(releases: &[Release], own: &[&String]) -> Vec<String> {
    releases
        .iter()
        .filter(|r| own.contains(&&r.release_id))
        .map(|r| r.release_id.clone())
        .collect()
}

/// Exercises every [`DataCatalog`] guarantee; panics on the first violation.
pub async fn data_catalog_suite(catalog: &dyn DataCatalog, unique: &str) {
    let ds_a = format!("cf_{unique}_a");
    let ds_b = format!("cf_{unique}_b");
    let t1 = format!("t-{unique}-1");
    let t2 = format!("t-{unique}-2");
    let key = |n: u32| format!("file:///raw/{unique}/obj-{n}.ndjson");
    let rid = |n: u32| format!("r-{unique}-{n}");
    let (k1, k2, k3, k4, k5, k6, k9) = (key(1), key(2), key(3), key(4), key(5), key(6), key(9));
    let (r1_id, r2_id, r3_id, r4_id, r5_id, r6_id, r9_id) =
        (rid(1), rid(2), rid(3), rid(4), rid(5), rid(6), rid(9));
    let own = [&r1_id, &r2_id, &r3_id, &r4_id, &r5_id, &r6_id, &r9_id];
    let list = |filter: ReleaseFilter| async move {
        let releases = catalog
            .releases(&filter)
            .await
            .unwrap_or_else(|e| panic!("releases({filter:?}) failed: {e}"));
        own_ids(&releases, &own)
    };
    let ledger = |keys: Vec<String>| async move {
        catalog
            .released_objects(&keys)
            .await
            .unwrap_or_else(|e| panic!("released_objects() failed: {e}"))
    };

    // Tables: upsert, read back, update, list.
    assert_eq!(
        catalog
            .table(&ds_a)
            .await
            .expect("table() of a missing dataset"),
        None,
        "a dataset that was never upserted must not exist"
    );
    let mut table_a = sample_table(&ds_a);
    catalog
        .upsert_table(&table_a)
        .await
        .expect("upsert_table(new)");
    assert_eq!(
        catalog.table(&ds_a).await.expect("table()"),
        Some(table_a.clone()),
        "table() must return the upserted schema unchanged"
    );
    table_a.columns.push(Column {
        name: "lead_score".into(),
        data_type: ColumnType::Int64,
        comment: Some("0-100".into()),
    });
    table_a.columns[2].data_type = ColumnType::Int64;
    table_a.policy_hash = "sha256:a1b2c3".into();
    table_a.parameters.insert("version".into(), "2".into());
    catalog
        .upsert_table(&table_a)
        .await
        .expect("upsert_table(update)");
    assert_eq!(
        catalog.table(&ds_a).await.expect("table()"),
        Some(table_a.clone()),
        "upsert_table() of an existing dataset must replace its columns and parameters"
    );
    let table_b = sample_table(&ds_b);
    catalog
        .upsert_table(&table_b)
        .await
        .expect("upsert_table(b)");
    let tables = catalog.tables().await.expect("tables()");
    assert!(
        tables.windows(2).all(|w| w[0].dataset <= w[1].dataset),
        "tables() must be sorted by dataset"
    );
    let own_tables: Vec<TableSchema> = tables
        .into_iter()
        .filter(|t| t.dataset == ds_a || t.dataset == ds_b)
        .collect();
    assert_eq!(
        own_tables,
        vec![table_a, table_b],
        "tables() must list each upserted table once, updated"
    );

    // Publish: visible everywhere at once.
    let mut r1 = sample_release(&r1_id, &ds_a, &t1, &[&k1, &k2]);
    r1.published_at = base_time() + TimeDelta::minutes(10);
    assert_eq!(
        catalog
            .publish_release(&r1)
            .await
            .expect("publish_release(r1)"),
        PublishOutcome::Published,
        "a new release must be Published"
    );
    assert_eq!(
        catalog.release(&r1_id).await.expect("release(r1)"),
        Some(r1.clone()),
        "release() must return the published release unchanged, files and inputs in order"
    );
    assert_eq!(
        list(ReleaseFilter::default()).await,
        vec![r1_id.clone()],
        "releases() must list the published release"
    );
    assert_eq!(
        ledger(vec![k1.clone(), k2.clone(), k3.clone()]).await,
        HashMap::from([(k1.clone(), r1_id.clone()), (k2.clone(), r1_id.clone())]),
        "released_objects() must map exactly the release's inputs to it"
    );

    // Idempotence: same id again changes nothing.
    let mut rerun = r1.clone();
    rerun.published_at += TimeDelta::hours(1);
    rerun.files.truncate(1);
    rerun.records_out = 0;
    assert_eq!(
        catalog
            .publish_release(&rerun)
            .await
            .expect("publish_release(r1 again)"),
        PublishOutcome::AlreadyPublished,
        "re-publishing a published release id must return AlreadyPublished"
    );
    assert_eq!(
        catalog.release(&r1_id).await.expect("release(r1)"),
        Some(r1.clone()),
        "an AlreadyPublished publish must not change the stored release"
    );
    assert_eq!(
        list(ReleaseFilter::default()).await,
        vec![r1_id.clone()],
        "an AlreadyPublished publish must not duplicate the release"
    );

    // Conflict: an input already released by another release writes nothing.
    let r2 = sample_release(&r2_id, &ds_a, &t1, &[&k3, &k2]);
    match catalog.publish_release(&r2).await {
        Err(Error::Conflict(_)) => {}
        other => panic!("publishing an already-released input must be a Conflict, got {other:?}"),
    }
    assert_eq!(
        catalog.release(&r2_id).await.expect("release(r2)"),
        None,
        "a conflicting release must not be visible"
    );
    assert_eq!(
        list(ReleaseFilter::default()).await,
        vec![r1_id.clone()],
        "a conflicting release must not be listed"
    );
    assert_eq!(
        ledger(vec![k2.clone(), k3.clone()]).await,
        HashMap::from([(k2.clone(), r1_id.clone())]),
        "a conflicting release must not write ledger rows, not even for its fresh inputs"
    );

    // A release needs its table.
    let orphan = sample_release(&r9_id, &format!("cf_{unique}_missing"), &t1, &[&k9]);
    match catalog.publish_release(&orphan).await {
        Err(Error::Invalid(_)) => {}
        other => panic!("publishing into a missing table must be Invalid, got {other:?}"),
    }
    assert!(
        ledger(vec![k9.clone()]).await.is_empty(),
        "a refused release must not write ledger rows"
    );

    // Filters and ordering: (dataset, tenant, dt, published_at).
    let mut r3 = sample_release(&r3_id, &ds_a, &t2, &[&k4]);
    r3.dt = "2026-11-25".into();
    let r4 = sample_release(&r4_id, &ds_b, &t1, &[&k5]);
    // Same partition as r1, published earlier: must sort before it.
    let r5 = sample_release(&r5_id, &ds_a, &t1, &[&k6]);
    for r in [&r3, &r4, &r5] {
        assert_eq!(
            catalog
                .publish_release(r)
                .await
                .unwrap_or_else(|e| panic!("publish_release({}) failed: {e}", r.release_id)),
            PublishOutcome::Published,
            "a release with fresh inputs must be Published"
        );
    }
    let all = catalog
        .releases(&ReleaseFilter::default())
        .await
        .expect("releases()");
    assert!(
        all.windows(2).all(|w| {
            (&w[0].dataset, &w[0].tenant, &w[0].dt, w[0].published_at)
                <= (&w[1].dataset, &w[1].tenant, &w[1].dt, w[1].published_at)
        }),
        "releases() must be sorted by (dataset, tenant, dt, published_at)"
    );
    let filter = |dataset: Option<&String>, tenant: Option<&String>| ReleaseFilter {
        dataset: dataset.cloned(),
        tenant: tenant.cloned(),
    };
    assert_eq!(
        list(filter(None, None)).await,
        vec![r5_id.clone(), r1_id.clone(), r3_id.clone(), r4_id.clone()],
        "releases() must sort by (dataset, tenant, dt, published_at)"
    );
    assert_eq!(
        list(filter(Some(&ds_a), None)).await,
        vec![r5_id.clone(), r1_id.clone(), r3_id.clone()],
        "releases() must filter by dataset"
    );
    assert_eq!(
        list(filter(None, Some(&t1))).await,
        vec![r5_id.clone(), r1_id.clone(), r4_id.clone()],
        "releases() must filter by tenant"
    );
    assert_eq!(
        list(filter(Some(&ds_a), Some(&t1))).await,
        vec![r5_id.clone(), r1_id.clone()],
        "releases() must filter by dataset and tenant together"
    );
    assert_eq!(
        catalog
            .releases(&filter(Some(&format!("cf_{unique}_none")), None))
            .await
            .expect("releases(unknown dataset)"),
        Vec::new(),
        "releases() of an unknown dataset must be empty"
    );
    assert_eq!(
        catalog.release(&r3_id).await.expect("release(r3)"),
        Some(r3),
        "release() must round-trip every field"
    );

    // The ledger answers for thousands of keys at once.
    let mut many: Vec<String> = (0..2500)
        .map(|n| format!("file:///raw/{unique}/never-{n}.ndjson"))
        .collect();
    many.insert(1234, k6.clone());
    many.push(k1.clone());
    assert_eq!(
        ledger(many).await,
        HashMap::from([(k1.clone(), r1_id.clone()), (k6.clone(), r5_id.clone())]),
        "released_objects() must find released keys among thousands"
    );
    assert!(
        ledger(Vec::new()).await.is_empty(),
        "released_objects(&[]) must be empty"
    );

    // Retention removes the release but keeps the ledger.
    assert!(
        catalog
            .remove_release(&r1_id)
            .await
            .expect("remove_release(r1)"),
        "remove_release() of a published release must return true"
    );
    assert_eq!(
        catalog.release(&r1_id).await.expect("release(r1)"),
        None,
        "a removed release must not be visible"
    );
    assert_eq!(
        list(ReleaseFilter::default()).await,
        vec![r5_id.clone(), r3_id.clone(), r4_id.clone()],
        "a removed release must not be listed"
    );
    assert_eq!(
        ledger(vec![k1.clone(), k2.clone()]).await,
        HashMap::from([(k1.clone(), r1_id.clone()), (k2.clone(), r1_id.clone())]),
        "remove_release() must keep the ledger rows"
    );
    assert!(
        !catalog
            .remove_release(&r1_id)
            .await
            .expect("remove_release(r1 again)"),
        "remove_release() of a missing release must return false"
    );
    let r6 = sample_release(&r6_id, &ds_a, &t1, &[&k1]);
    match catalog.publish_release(&r6).await {
        Err(Error::Conflict(_)) => {}
        other => panic!("inputs of a removed release must stay released (Conflict), got {other:?}"),
    }
    match catalog.publish_release(&r1).await {
        Err(Error::Conflict(_)) => {}
        other => panic!("re-publishing a removed release must be a Conflict, got {other:?}"),
    }
    assert_eq!(
        catalog.release(&r1_id).await.expect("release(r1)"),
        None,
        "a removed release must stay removed"
    );
}

/// Exercises every [`ConsentStore`] guarantee; panics on the first violation.
pub async fn consent_store_suite(store: &dyn ConsentStore, unique: &str) {
    let t1 = format!("t-{unique}-1");
    let t2 = format!("t-{unique}-2");
    let contacts = format!("cf_{unique}_contacts");
    let orders = format!("cf_{unique}_orders");
    let granted = |tenant: &String, dataset: &String| {
        let (tenant, dataset) = (tenant.clone(), dataset.clone());
        async move {
            store
                .is_granted(&tenant, &dataset)
                .await
                .unwrap_or_else(|e| panic!("is_granted({tenant}, {dataset}) failed: {e}"))
        }
    };

    assert_eq!(
        store.consent(&t1, &contacts).await.expect("consent()"),
        None,
        "no setting may exist before one is set"
    );
    assert!(
        !granted(&t1, &contacts).await,
        "consent must default to deny"
    );

    let grant = ConsentSetting {
        tenant: t1.clone(),
        dataset: contacts.clone(),
        granted: true,
        updated_at: base_time(),
        updated_by: format!("admin@{unique}"),
        revenue_share: true,
    };
    store.set_consent(&grant).await.expect("set_consent(grant)");
    assert_eq!(
        store.consent(&t1, &contacts).await.expect("consent()"),
        Some(grant.clone()),
        "consent() must return the stored setting unchanged"
    );
    assert!(granted(&t1, &contacts).await, "a grant must be granted");
    assert!(
        !granted(&t1, &orders).await,
        "a grant must not extend to other datasets"
    );
    assert!(
        !granted(&t2, &contacts).await,
        "a grant must not extend to other tenants"
    );

    let revoke = ConsentSetting {
        granted: false,
        updated_at: base_time() + TimeDelta::hours(1),
        updated_by: format!("owner@{unique}"),
        revenue_share: false,
        ..grant
    };
    store
        .set_consent(&revoke)
        .await
        .expect("set_consent(revoke)");
    assert_eq!(
        store.consent(&t1, &contacts).await.expect("consent()"),
        Some(revoke.clone()),
        "set_consent() must replace the setting for the same tenant and dataset"
    );
    assert!(!granted(&t1, &contacts).await, "a revoked grant must deny");

    let other_dataset = ConsentSetting {
        dataset: orders.clone(),
        granted: true,
        ..revoke.clone()
    };
    let other_tenant = ConsentSetting {
        tenant: t2.clone(),
        granted: true,
        ..revoke.clone()
    };
    for setting in [&other_tenant, &other_dataset] {
        store
            .set_consent(setting)
            .await
            .expect("set_consent(other)");
    }
    let all = store.consents().await.expect("consents()");
    assert!(
        all.windows(2)
            .all(|w| (&w[0].tenant, &w[0].dataset) <= (&w[1].tenant, &w[1].dataset)),
        "consents() must be sorted by (tenant, dataset)"
    );
    let own: Vec<ConsentSetting> = all
        .into_iter()
        .filter(|c| [&t1, &t2].contains(&&c.tenant))
        .collect();
    assert_eq!(
        own,
        vec![revoke.clone(), other_dataset, other_tenant.clone()],
        "consents() must list one setting per (tenant, dataset), latest value"
    );
    let of_contacts: Vec<ConsentSetting> = store
        .dataset_consents(&contacts)
        .await
        .expect("dataset_consents()")
        .into_iter()
        .filter(|c| [&t1, &t2].contains(&&c.tenant))
        .collect();
    assert_eq!(
        of_contacts,
        vec![revoke, other_tenant],
        "dataset_consents() must list that dataset's settings, by tenant"
    );
}

/// Metrics sink suite: the five release metrics of a report arrive with their values and
/// `Tenant`/`Dataset` dimensions, also when a call carries more than one API batch.
/// `read` returns the sums per metric name that the sink's store holds for a tenant.
pub async fn metrics_sink_suite<F, Fut>(sink: &dyn MetricsSink, tenant: &str, read: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Vec<(String, f64)>>,
{
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let point = |name: &str, value: f64| Datapoint {
        namespace: NAMESPACE.into(),
        name: name.into(),
        value,
        unit: "Count".into(),
        dimensions: vec![
            ("Tenant".into(), tenant.to_owned()),
            ("Dataset".into(), "contacts".into()),
        ],
        timestamp: now.clone(),
    };
    let mut points = vec![
        point("KAnonViolations", 3.0),
        point("SuppressedRecords", 41.0),
        point("RecordsIn", 1000.0),
        point("RecordsOut", 950.0),
        point("QuarantinedRecords", 9.0),
    ];
    // 1,200 more RecordsIn datapoints of 1: more than one PutMetricData call holds.
    points.extend((0..1200).map(|_| point("RecordsIn", 1.0)));
    sink.put(&points).await.expect("put metrics");
    let mut seen = read(tenant.to_owned()).await;
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            ("KAnonViolations".to_owned(), 3.0),
            ("QuarantinedRecords".to_owned(), 9.0),
            ("RecordsIn".to_owned(), 2200.0),
            ("RecordsOut".to_owned(), 950.0),
            ("SuppressedRecords".to_owned(), 41.0),
        ],
        "every metric arrives with its value (sums per metric) for the tenant"
    );
}

/// A contract of `buyer` on `dataset` in force from one day before the suites' fixed instant (2026-11-24T15:00:00Z) for 30
/// days, with a plan of `quota` requests a day.
#[must_use]
pub fn sample_contract(id: &str, buyer: &str, dataset: &str, quota: u64) -> Contract {
    Contract {
        id: id.to_owned(),
        buyer: buyer.to_owned(),
        dataset: dataset.to_owned(),
        terms: "standard data licence v1".into(),
        price_minor: 100_000,
        currency: "EUR".into(),
        start: base_time() - TimeDelta::days(1),
        end: base_time() + TimeDelta::days(29),
        status: ContractStatus::Active,
        plan: UsagePlan {
            rate_per_sec: 10,
            burst: 20,
            quota,
            period: QuotaPeriod::Day,
        },
        created_at: base_time() - TimeDelta::days(1),
    }
}

/// Exercises every [`MarketStore`] guarantee; panics on the first violation.
pub async fn market_store_suite(store: &dyn MarketStore, unique: &str) {
    let now = base_time();
    let buyer = format!("b-{unique}");
    let other = format!("b-{unique}-other");
    let ds = format!("cf_{unique}_contacts");
    for id in [&buyer, &other] {
        store
            .create_buyer(&Buyer {
                id: id.clone(),
                name: format!("Buyer {id}"),
                aws_principal: Some(format!("arn:aws:iam::123456789012:role/{id}")),
                created_at: now,
            })
            .await
            .expect("create_buyer()");
    }
    let again = store
        .create_buyer(&Buyer {
            id: buyer.clone(),
            name: "dup".into(),
            aws_principal: None,
            created_at: now,
        })
        .await;
    assert!(
        matches!(again, Err(Error::Conflict(_))),
        "a buyer id is unique: {again:?}"
    );
    let stored = store.buyer(&buyer).await.expect("buyer()").expect("stored");
    assert_eq!(
        (stored.name, stored.aws_principal),
        (
            format!("Buyer {buyer}"),
            Some(format!("arn:aws:iam::123456789012:role/{buyer}"))
        )
    );

    // Keys: stored as given, unique, revocable once, only for known buyers.
    let key = ApiKey {
        key_id: format!("k-{unique}-1"),
        owner: buyer.clone(),
        role: Role::Buyer,
        secret_hash: "ab".repeat(32),
        created_at: now,
        revoked_at: None,
    };
    store.create_api_key(&key).await.expect("create_api_key()");
    assert_eq!(
        store.api_key(&key.key_id).await.expect("api_key()"),
        Some(key.clone())
    );
    assert!(matches!(
        store.create_api_key(&key).await,
        Err(Error::Conflict(_))
    ));
    let orphan = ApiKey {
        key_id: format!("k-{unique}-orphan"),
        owner: format!("b-{unique}-nobody"),
        ..key.clone()
    };
    assert!(
        matches!(store.create_api_key(&orphan).await, Err(Error::Invalid(_))),
        "a buyer key needs a buyer"
    );
    assert!(
        store
            .revoke_api_key(&key.key_id, now)
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_api_key(&key.key_id, now)
            .await
            .expect("revoke twice")
    );
    assert_eq!(
        store
            .api_key(&key.key_id)
            .await
            .expect("api_key()")
            .and_then(|k| k.revoked_at),
        Some(now)
    );
    assert_eq!(store.api_keys(&buyer).await.expect("api_keys()").len(), 1);

    // Versions: gapless, one release each, a release covered once.
    assert_eq!(store.latest_version(&ds).await.expect("latest"), 0);
    assert_eq!(store.version(&ds, None).await.expect("version"), None);
    let rel = |n: u32, tenant: &str| VersionRelease {
        release_id: format!("r-{unique}-{n}"),
        tenant: tenant.to_owned(),
        dt: "2026-11-24".into(),
        records: 100 * u64::from(n),
        files: sample_release(&format!("r-{unique}-{n}"), &ds, tenant, &[]).files,
    };
    store
        .append_version(&ds, 1, &rel(1, "t-1"), now)
        .await
        .expect("version 1");
    assert!(
        matches!(
            store.append_version(&ds, 1, &rel(2, "t-2"), now).await,
            Err(Error::Conflict(_))
        ),
        "two writers of version 1: one conflicts"
    );
    assert!(
        matches!(
            store.append_version(&ds, 3, &rel(2, "t-2"), now).await,
            Err(Error::Conflict(_))
        ),
        "versions have no gaps"
    );
    assert!(
        matches!(
            store.append_version(&ds, 2, &rel(1, "t-1"), now).await,
            Err(Error::Conflict(_))
        ),
        "a release is covered by one version only"
    );
    store
        .append_version(&ds, 2, &rel(2, "t-2"), now)
        .await
        .expect("version 2");
    assert_eq!(store.latest_version(&ds).await.expect("latest"), 2);
    let v1 = store
        .version(&ds, Some(1))
        .await
        .expect("v1")
        .expect("exists");
    let v2 = store
        .version(&ds, None)
        .await
        .expect("latest")
        .expect("exists");
    assert_eq!((v1.version, v1.releases.clone()), (1, vec![rel(1, "t-1")]));
    assert_eq!(
        (v2.version, v2.releases),
        (2, vec![rel(1, "t-1"), rel(2, "t-2")])
    );
    assert_eq!(store.version(&ds, Some(3)).await.expect("v3"), None);
    assert_eq!(
        store.covered_releases(&ds).await.expect("covered"),
        vec![rel(1, "t-1").release_id, rel(2, "t-2").release_id]
    );

    // Contracts, grants and entitlements.
    let denial = |r: std::result::Result<Entitlement, Denial>| r.err();
    assert_eq!(
        denial(
            store
                .entitlement(&buyer, &ds, now)
                .await
                .expect("entitlement")
        ),
        Some(Denial::NoContract)
    );
    let contract = sample_contract(&format!("c-{unique}-1"), &buyer, &ds, 3);
    store
        .create_contract(&contract)
        .await
        .expect("create_contract()");
    assert!(matches!(
        store.create_contract(&contract).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        store.contract(&contract.id).await.expect("contract()"),
        Some(contract.clone())
    );
    assert_eq!(
        denial(
            store
                .entitlement(&buyer, &ds, now)
                .await
                .expect("entitlement")
        ),
        Some(Denial::NoGrant)
    );
    let grant = AccessGrant {
        buyer: buyer.clone(),
        dataset: ds.clone(),
        contract_id: contract.id.clone(),
        granted_at: now,
        expires_at: None,
        revoked_at: None,
    };
    let wrong_buyer = AccessGrant {
        buyer: other.clone(),
        ..grant.clone()
    };
    assert!(
        matches!(store.put_grant(&wrong_buyer).await, Err(Error::Invalid(_))),
        "a grant needs a contract of the same buyer"
    );
    let too_late = AccessGrant {
        granted_at: contract.end,
        ..grant.clone()
    };
    assert!(
        matches!(store.put_grant(&too_late).await, Err(Error::Invalid(_))),
        "a grant needs a contract in force"
    );
    store.put_grant(&grant).await.expect("put_grant()");
    let ent = store
        .entitlement(&buyer, &ds, now)
        .await
        .expect("entitlement");
    assert_eq!(
        ent.as_ref().map(|e| e.contract.id.clone()).ok(),
        Some(contract.id.clone())
    );
    assert_eq!(
        denial(
            store
                .entitlement(&buyer, &ds, contract.end)
                .await
                .expect("entitlement")
        ),
        Some(Denial::ContractNotInForce),
        "a contract past its end entitles nothing"
    );
    assert_eq!(
        denial(
            store
                .entitlement(&other, &ds, now)
                .await
                .expect("entitlement")
        ),
        Some(Denial::NoContract),
        "another buyer's contract entitles nothing"
    );

    // Listings: TTL honoured on read, kept under a contract in force.
    let listing = Listing {
        dataset: ds.clone(),
        title: "Contacts".into(),
        description: "k-anonymous contact form submissions".into(),
        expires_at: Some(now + TimeDelta::days(60)),
        updated_at: now,
    };
    store
        .put_listing(&listing, now)
        .await
        .expect("put_listing()");
    assert_eq!(
        store.listing(&ds, now).await.expect("listing()"),
        Some(listing.clone())
    );
    let early = Listing {
        expires_at: Some(now + TimeDelta::days(1)),
        ..listing.clone()
    };
    assert!(
        matches!(
            store.put_listing(&early, now).await,
            Err(Error::Conflict(_))
        ),
        "a listing may not expire before a contract in force ends"
    );
    let lone = format!("cf_{unique}_lone");
    let expiring = Listing {
        dataset: lone.clone(),
        expires_at: Some(now + TimeDelta::hours(1)),
        ..listing.clone()
    };
    store
        .put_listing(&expiring, now)
        .await
        .expect("put_listing(lone)");
    let offered = |ls: Vec<Listing>| {
        ls.into_iter()
            .map(|l| l.dataset)
            .filter(|d| d.contains(unique))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        offered(store.listings(now).await.expect("listings")),
        vec![ds.clone(), lone.clone()]
    );
    let later = now + TimeDelta::hours(2);
    assert_eq!(
        offered(store.listings(later).await.expect("listings")),
        vec![ds.clone()],
        "an expired listing is not offered"
    );
    assert_eq!(store.listing(&lone, later).await.expect("listing()"), None);

    // Usage: quota counted atomically, refused requests leave no event.
    let charge = QuotaCharge {
        contract_id: contract.id.clone(),
        period: QuotaPeriod::Day,
        limit: 3,
    };
    let event = |n: u32| UsageEvent {
        request_id: format!("req-{unique}-{n}"),
        buyer: buyer.clone(),
        dataset: ds.clone(),
        contract_id: contract.id.clone(),
        version: 2,
        releases: vec![rel(1, "t-1").release_id],
        files: 2,
        bytes: 8193,
        at: now + TimeDelta::seconds(i64::from(n)),
    };
    let outcomes = futures::future::join_all((0..8).map(|n| {
        let e = event(n);
        let charge = charge.clone();
        async move {
            store
                .record_usage(&e, &charge)
                .await
                .expect("record_usage()")
        }
    }))
    .await;
    let recorded = outcomes
        .iter()
        .filter(|o| matches!(o, UsageOutcome::Recorded(_)))
        .count();
    assert_eq!(recorded, 3, "exactly the quota succeeds: {outcomes:?}");
    let state = store
        .quota_state(&charge, now)
        .await
        .expect("quota_state()");
    assert_eq!((state.used, state.limit), (3, 3));
    let events = store
        .usage_events(Some(&buyer), now, now + TimeDelta::days(1))
        .await
        .expect("usage_events()");
    assert_eq!(events.len(), 3, "refused requests record nothing");
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
    let next_day = QuotaCharge {
        limit: 3,
        ..charge.clone()
    };
    let tomorrow = UsageEvent {
        at: now + TimeDelta::days(1),
        request_id: format!("req-{unique}-tomorrow"),
        ..event(0)
    };
    assert!(
        matches!(store.record_usage(&tomorrow, &next_day).await.expect("tomorrow"), UsageOutcome::Recorded(s) if s.used == 1),
        "a new window starts at zero"
    );
    let dup = store.record_usage(&tomorrow, &next_day).await;
    assert!(
        matches!(dup, Err(Error::Conflict(_))),
        "a request id is recorded once: {dup:?}"
    );

    // Ending a contract ends the entitlement at once.
    assert!(
        store
            .end_contract(&contract.id, now)
            .await
            .expect("end_contract()")
    );
    assert_eq!(
        denial(
            store
                .entitlement(&buyer, &ds, now)
                .await
                .expect("entitlement")
        ),
        Some(Denial::ContractNotInForce)
    );

    // Revenue shares: replaced per (contract, period).
    let period = "2026-11";
    let line = |tenant: &str, amount: u64| RevenueShareLine {
        contract_id: contract.id.clone(),
        period: period.into(),
        tenant: tenant.into(),
        records: amount,
        amount_minor: amount,
        currency: "EUR".into(),
    };
    store
        .put_revenue_shares(&contract.id, period, &[line("t-1", 60), line("t-2", 40)])
        .await
        .expect("put_revenue_shares()");
    store
        .put_revenue_shares(&contract.id, period, &[line("t-1", 100)])
        .await
        .expect("replace");
    let own = |ls: Vec<RevenueShareLine>| {
        ls.into_iter()
            .filter(|l| l.contract_id == contract.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        own(store.revenue_shares(period).await.expect("shares")),
        vec![line("t-1", 100)]
    );
    assert!(
        store
            .put_revenue_shares(&contract.id, "2026-13", &[])
            .await
            .is_err()
    );
}

/// Exercises every [`LeaseStore`](crate::lease::LeaseStore) guarantee with two handles
/// on one backend (two workers); panics on the first violation.
pub async fn lease_store_suite(
    a: &dyn crate::lease::LeaseStore,
    b: &dyn crate::lease::LeaseStore,
    unique: &str,
) {
    let now = base_time();
    let ttl = TimeDelta::seconds(30);
    let name = format!("contacts/t-{unique}/2026-11-24");

    // Racers on a free lease: exactly one wins.
    let racers = futures::future::join_all((0..8).map(|i| {
        let store = if i % 2 == 0 { a } else { b };
        let holder = format!("w{i}");
        let name = name.clone();
        async move {
            store
                .acquire(&name, &holder, ttl, now)
                .await
                .expect("acquire()")
        }
    }))
    .await;
    let winners: Vec<_> = racers.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "one holder: {winners:?}");
    let held = winners.into_iter().next().expect("a winner");
    assert_eq!(held.expires_at, now + ttl);
    assert!(
        b.acquire(&name, "late", ttl, now + TimeDelta::seconds(29))
            .await
            .expect("acquire()")
            .is_none(),
        "a held lease is not taken before it expires"
    );
    // Renewal by the holder extends it; a forged token renews nothing.
    let renewed = a
        .renew(&held, ttl, now + TimeDelta::seconds(20))
        .await
        .expect("renew()")
        .expect("still held");
    assert_eq!(renewed.expires_at, now + TimeDelta::seconds(50));
    let forged = crate::lease::Lease {
        token: "forged".into(),
        ..held.clone()
    };
    assert!(b.renew(&forged, ttl, now).await.expect("renew()").is_none());
    assert!(
        !b.release(&forged).await.expect("release()"),
        "a forged token releases nothing"
    );
    // Expiry: a lease not renewed is free, and the old holder is fenced out.
    let taken = b
        .acquire(&name, "next", ttl, now + TimeDelta::seconds(51))
        .await
        .expect("acquire()")
        .expect("free after expiry");
    assert_ne!(taken.token, held.token);
    assert!(
        a.renew(&renewed, ttl, now + TimeDelta::seconds(52))
            .await
            .expect("renew()")
            .is_none(),
        "the expired holder cannot renew the new holder's lease"
    );
    assert!(!a.release(&renewed).await.expect("release()"));
    assert!(b.release(&taken).await.expect("release()"));
    assert!(
        a.acquire(&name, "again", ttl, now + TimeDelta::seconds(53))
            .await
            .expect("acquire()")
            .is_some(),
        "a released lease is free at once"
    );
}
