//! The CloudWatch metrics sink: `PutMetricData` with the datapoints of
//! [`crate::metrics`], in batches the API accepts.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use super::sdk_error;
use crate::metrics::{Datapoint, MetricsSink};
use crate::{Error, Result};

/// CloudWatch `PutMetricData`, batched within the API limits (1,000 datums per call).
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchMetrics {
    /// Datums per `PutMetricData` call (the API allows 1,000 and 1 MB; ours are small).
    pub const BATCH: usize = 1000;

    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_cloudwatch::Client::new(sdk),
        }
    }
}

fn datum(d: &Datapoint) -> Result<MetricDatum> {
    let timestamp = aws_smithy_types::DateTime::from_str(
        &d.timestamp,
        aws_smithy_types::date_time::Format::DateTime,
    )
    .map_err(|e| Error::Invalid(format!("metric timestamp {:?}: {e}", d.timestamp)))?;
    Ok(MetricDatum::builder()
        .metric_name(&d.name)
        .value(d.value)
        .unit(StandardUnit::from(d.unit.as_str()))
        .timestamp(timestamp)
        .set_dimensions(Some(
            d.dimensions
                .iter()
                .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                .collect(),
        ))
        .build())
}

#[async_trait]
impl MetricsSink for CloudWatchMetrics {
    async fn put(&self, datapoints: &[Datapoint]) -> Result<()> {
        let mut by_namespace: HashMap<&str, Vec<MetricDatum>> = HashMap::new();
        for d in datapoints {
            by_namespace
                .entry(&d.namespace)
                .or_default()
                .push(datum(d)?);
        }
        for (namespace, data) in by_namespace {
            for batch in data.chunks(Self::BATCH) {
                self.client
                    .put_metric_data()
                    .namespace(namespace)
                    .set_metric_data(Some(batch.to_vec()))
                    .send()
                    .await
                    .map_err(|e| sdk_error("cloudwatch", "PutMetricData", e))?;
            }
        }
        Ok(())
    }
}
