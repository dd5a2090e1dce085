//! Metrics sinks: where the platform's figures go (a release's privacy and volume figures
//! today, the marketplace's usage next).
//!
//! The embedded sink appends one JSON line per datapoint, shaped like a CloudWatch
//! `PutMetricData` datum (namespace, name, dimensions, value, unit, timestamp), so the AWS
//! sink (`aws::CloudWatchMetrics`) and the local file carry the same facts.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

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
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
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

    #[tokio::test]
    async fn json_lines_file_passes_the_metrics_sink_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metrics.jsonl");
        let sink = JsonLinesMetrics::new(path.clone());
        crate::conformance::metrics_sink_suite(&sink, "t-file", |tenant| {
            let path = path.clone();
            async move {
                let mut sums: std::collections::BTreeMap<String, f64> = Default::default();
                for line in std::fs::read_to_string(&path)
                    .expect("metrics file")
                    .lines()
                {
                    let d: Datapoint = serde_json::from_str(line).expect("datapoint");
                    if d.dimensions.contains(&("Tenant".into(), tenant.clone())) {
                        *sums.entry(d.name).or_default() += d.value;
                    }
                }
                sums.into_iter().collect()
            }
        })
        .await;
    }
}
