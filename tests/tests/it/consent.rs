//! Consent: without it nothing is published and the raw data stays.

use super::*;

#[test]
fn without_consent_nothing_is_published_and_raw_data_stays() {
    let env = Env::new();
    env.generate("contacts", "t-9", 2000, "a.ndjson", 0.0);
    let summary = run_json(&env);
    assert_eq!(statuses(&summary), ["no_consent"]);
    assert!(env.parquet_files().is_empty());
    assert!(
        env.path("raw/tenant=t-9/dataset=contacts/source=test/dt=2026-11-24/a.ndjson")
            .exists()
    );
    env.ok(&[
        "consent",
        "grant",
        "--tenant",
        "t-9",
        "--dataset",
        "contacts",
    ]);
    env.ok(&[
        "consent",
        "revoke",
        "--tenant",
        "t-9",
        "--dataset",
        "contacts",
    ]);
    assert_eq!(
        statuses(&run_json(&env)),
        ["no_consent"],
        "a revoked consent is no consent"
    );
}
