//! `etl-anonymize`: the Lambda function. Configured like `stackpro` (a `STACKPRO_CONFIG`
//! file and `STACKPRO_*` variables, `ETL_ENABLED`), it answers S3 events and SQS batches
//! through `lambda_runtime`'s loop (see `pipeline::triggers::lambda`).

use lambda_runtime::{LambdaEvent, service_fn};
use pipeline::{Config, Worker};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .json()
        .with_writer(std::io::stderr)
        .init();
    let config = Config::load(None)?;
    if !config.etl_enabled {
        tracing::warn!("the ETL is disabled (ETL_ENABLED=false): events are answered without work");
    }
    let enabled = config.etl_enabled;
    config.hasher()?;
    let worker = Worker::open(config).await?;
    let holder = format!(
        "lambda-{}",
        std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
            .unwrap_or_else(|_| std::process::id().to_string())
    );
    let worker = &worker;
    let holder = &holder;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        if !enabled {
            // Every record failed: the queue keeps them until the ETL is enabled again.
            return Ok::<Value, lambda_runtime::Error>(disabled_answer(&event.payload));
        }
        pipeline::triggers::lambda::handle(worker, holder, event.payload)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}

/// For SQS batches, every record as failed (kept on the queue); for S3 events, nothing.
fn disabled_answer(payload: &Value) -> Value {
    let failures: Vec<Value> = payload
        .get("Records")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("messageId"))
        .map(|id| serde_json::json!({"itemIdentifier": id}))
        .collect();
    serde_json::json!({"batchItemFailures": failures})
}
