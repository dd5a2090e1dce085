//! `stackpro run`: release every pending partition, with a progress bar and a summary table.

use super::*;

pub(super) async fn run_cmd(config: Config, json: bool) -> Result<ExitCode, Failure> {
    // A mistyped raw folder would otherwise be created empty, and the run would succeed
    // with nothing to do. (Other commands, such as `retention sweep`, need none.)
    catalog::storage::Location::open_existing(&config.raw, &config.aws).map_err(|e| match e {
        catalog::Error::Config(m) => pipeline::Error::Config(format!("raw location: {m}")),
        other => other.into(),
    })?;
    let worker = Worker::open(config).await?;
    let bar = progress_bar();
    let summary = worker.run(&bar).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(if summary.failed() {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

pub(super) fn print_summary(summary: &pipeline::RunSummary) {
    let mut table = new_table([
        "dataset",
        "tenant",
        "dt",
        "status",
        "in",
        "out",
        "suppressed",
        "quarantined",
        "k-violations",
        "node",
    ]);
    for p in &summary.partitions {
        let r = p.report.as_ref();
        let n = |f: fn(&policies::ReleaseReport) -> u64| {
            r.map(|r| f(r).to_string()).unwrap_or_default()
        };
        table.add_row([
            p.partition.dataset.clone(),
            p.partition.tenant.clone(),
            p.partition.dt.clone(),
            format!("{:?}", p.status)
                + &p.message
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default(),
            n(|r| r.records_in),
            n(|r| r.records_out),
            n(|r| r.suppressed),
            n(|r| r.quarantined),
            n(|r| r.k_anon_violations),
            r.map(|r| r.node_label.clone()).unwrap_or_default(),
        ]);
    }
    println!("{table}");
    for i in &summary.ignored {
        println!("ignored {}: {}", i.url, i.reason);
    }
    println!(
        "{} published, {} withheld, {} waiting, {} without consent, {} nothing new, {} busy, {} failed",
        summary.count(Status::Published),
        summary.count(Status::Withheld),
        summary.count(Status::Waiting),
        summary.count(Status::NoConsent),
        summary.count(Status::NothingNew),
        summary.count(Status::Busy),
        summary.count(Status::Failed)
    );
}
