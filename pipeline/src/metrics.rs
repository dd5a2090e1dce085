//! Privacy and volume metrics per release.
//!
//! The embedded sink appends one JSON line per datapoint, shaped like a CloudWatch
//! `PutMetricData` datum (namespace, name, dimensions, value, unit, timestamp), so the AWS
//! sink and the local file carry the same facts.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use policies::ReleaseReport;
use serde::{Deserialize, Serialize};

use crate::Result;

/// The metrics namespace.
pub const NAMESPACE: &str = "StackPro/DataPlatform";

/// One metric datapoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Datapoint {
    pub namespace: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// Dimension name → value, such as `Tenant`, `Dataset`.
    pub dimensions: Vec<(String, String)>,
    pub timestamp: String,
}

/// Where metrics go.
#[async_trait]
pub trait MetricsSink: Send + Sync + std::fmt::Debug {
    async fn put(&self, datapoints: &[Datapoint]) -> Result<()>;
}

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

/// Appends datapoints to a JSON-lines file.
#[derive(Debug, Clone)]
pub struct JsonLinesMetrics {
    path: PathBuf,
}

impl JsonLinesMetrics {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

#[async_trait]
impl MetricsSink for JsonLinesMetrics {
    async fn put(&self, datapoints: &[Datapoint]) -> Result<()> {
        let mut text = Vec::new();
        for d in datapoints {
            serde_json::to_writer(&mut text, d)?;
            text.push(b'\n');
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // One write of whole lines with O_APPEND: concurrent workers never interleave lines.
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(&text)?;
            Ok(())
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn datapoints_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = JsonLinesMetrics::new(dir.path().join("m/metrics.jsonl"));
        let d = Datapoint {
            namespace: NAMESPACE.into(),
            name: "RecordsIn".into(),
            value: 3.0,
            unit: "Count".into(),
            dimensions: vec![("Tenant".into(), "t-1".into())],
            timestamp: "2026-11-25T00:00:00Z".into(),
        };
        sink.put(std::slice::from_ref(&d)).await.expect("put");
        sink.put(std::slice::from_ref(&d)).await.expect("put");
        let text = std::fs::read_to_string(dir.path().join("m/metrics.jsonl")).expect("read");
        let lines: Vec<Datapoint> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines, vec![d.clone(), d]);
    }
}
