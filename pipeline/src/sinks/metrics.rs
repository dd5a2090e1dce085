//! A release's privacy and volume figures as metrics datapoints, for the sink the
//! configuration selects (`catalog::metrics`).

use catalog::metrics::{Datapoint, NAMESPACE};
use policies::ReleaseReport;

/// The datapoints of one release: `KAnonViolations`, `SuppressedRecords`, `RecordsIn`,
/// `RecordsOut`, `QuarantinedRecords`, dimensioned by `Tenant` and `Dataset`.
pub fn release_datapoints(report: &ReleaseReport) -> Vec<Datapoint> {
    let dims = vec![
        ("Tenant".to_string(), report.tenant.clone()),
        ("Dataset".to_string(), report.dataset.clone()),
    ];
    [
        ("KAnonViolations", report.k_anon_violations),
        ("SuppressedRecords", report.suppressed),
        ("RecordsIn", report.records_in),
        ("RecordsOut", report.records_out),
        ("QuarantinedRecords", report.quarantined),
    ]
    .into_iter()
    .map(|(name, value)| Datapoint {
        namespace: NAMESPACE.to_string(),
        name: name.to_string(),
        value: value as f64,
        unit: "Count".to_string(),
        dimensions: dims.clone(),
        timestamp: report.created_at.clone(),
    })
    .collect()
}
