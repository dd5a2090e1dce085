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
