//! `stackpro watch`: release raw objects as they appear in a local raw folder.

use super::*;

#[derive(Args, Debug)]
pub(super) struct WatchArgs {
    #[command(flatten)]
    pub(super) roots: RootArgs,
    /// Quiet time, in milliseconds, after the last file event before a batch is released.
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// One JSON run summary per batch on stdout (default: a table).
    #[arg(long)]
    json: bool,
}

pub(super) async fn watch_cmd(config: Config, args: &WatchArgs) -> Result<ExitCode, Failure> {
    if !config.etl_enabled {
        return Err(pipeline::Error::Config(format!(
            "the ETL is disabled ({}=false): the watcher does not start",
            env::ETL_ENABLED
        ))
        .into());
    }
    let raw = catalog::storage::Location::open_existing(&config.raw, &config.aws)?;
    let Some(root) = raw.local_dir.clone() else {
        return Err(pipeline::Error::InvalidArgument(
            "watch needs a local raw folder; an s3:// raw root is triggered by its S3 event notifications"
                .into(),
        )
        .into());
    };
    let worker = Worker::open(config).await?;
    let holder = format!("watch-{}", std::process::id());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    let json = args.json;
    eprintln!("watching {} (Ctrl-C to stop)", root.display());
    pipeline::triggers::watch::watch(
        &worker,
        &root,
        &holder,
        std::time::Duration::from_millis(args.settle_ms),
        stop,
        |summary| {
            if json {
                if let Ok(text) = serde_json::to_string(summary) {
                    println!("{text}");
                }
            } else {
                super::run::print_summary(summary);
            }
        },
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub(super) struct WorkerArgs {
    #[command(flatten)]
    pub(super) roots: RootArgs,
    /// The SQS queue URL receiving the raw bucket's S3 event notifications.
    #[arg(long)]
    queue: String,
    /// Long-poll wait per receive, seconds (at most 20).
    #[arg(long, default_value_t = 20)]
    wait_secs: u64,
    /// Visibility timeout of a received message, seconds (renewed while releasing).
    #[arg(long, default_value_t = 300)]
    visibility_secs: u64,
    /// Exit after this many seconds without a message (default: run until stopped).
    #[arg(long)]
    idle_exit_secs: Option<u64>,
    /// Sweep the whole raw root every this many seconds, releasing what has become
    /// releasable without an event (a sealed `window` day). Default: 60 when a dataset
    /// uses `window` batching, else no sweeps; 0 turns sweeps off.
    #[arg(long)]
    sweep_every_secs: Option<u64>,
}

#[cfg(feature = "aws")]
pub(super) async fn worker_cmd(config: Config, args: &WorkerArgs) -> Result<ExitCode, Failure> {
    if !config.etl_enabled {
        eprintln!(
            "the ETL is disabled ({}=false): messages are left untouched on the queue",
            env::ETL_ENABLED
        );
        return Ok(ExitCode::SUCCESS);
    }
    let sdk = catalog::aws::sdk_config(&config.aws).await;
    let client = aws_sdk_sqs::Client::new(&sdk);
    let sweep_every = match args.sweep_every_secs {
        Some(0) => None,
        Some(s) => Some(std::time::Duration::from_secs(s)),
        None => config
            .has_windows()
            .then_some(pipeline::triggers::watch::SWEEP_EVERY),
    };
    let worker = Worker::open(config).await?;
    let holder = format!("worker-{}", std::process::id());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // SIGTERM: the release in progress finishes (its message is deleted or left), the
    // rest of the batch goes back to the queue, so nothing is half published.
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    let stats = pipeline::triggers::queue::consume(
        &worker,
        &client,
        &args.queue,
        &holder,
        pipeline::triggers::queue::QueueSettings {
            wait: std::time::Duration::from_secs(args.wait_secs),
            visibility: std::time::Duration::from_secs(args.visibility_secs),
            idle_exit: args.idle_exit_secs.map(std::time::Duration::from_secs),
            sweep_every,
        },
        stop,
    )
    .await?;
    println!(
        "{}",
        serde_json::json!({
            "messages": stats.messages, "deleted": stats.deleted, "returned": stats.returned,
            "poison": stats.poison, "published": stats.published, "sweeps": stats.sweeps,
        })
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "aws"))]
pub(super) async fn worker_cmd(config: Config, args: &WorkerArgs) -> Result<ExitCode, Failure> {
    let _ = (
        config,
        &args.queue,
        args.wait_secs,
        args.visibility_secs,
        args.idle_exit_secs,
        args.sweep_every_secs,
    );
    Err(pipeline::Error::from(catalog::Error::needs_aws("stackpro worker --queue")).into())
}
