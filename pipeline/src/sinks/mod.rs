//! Where a release's outputs go: curated Parquet ([`parquet`]), the quarantine
//! ([`quarantine`]) and the metrics datapoints of its report ([`metrics`]; the sinks
//! themselves are `catalog::metrics`).

pub mod metrics;
pub mod parquet;
pub mod quarantine;
