//! `stackpro retention sweep`: expired raw, quarantined and curated data removed.

use super::*;

pub(super) async fn sweep_cmd(config: Config, args: &SweepArgs) -> Result<ExitCode, Failure> {
    let now = match args.as_of {
        Some(day) => day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .context("--as-of is out of range")?,
        None => chrono::Utc::now(),
    };
    let worker = Worker::open(config).await?;
    let report = pipeline::retention::sweep(&worker, now, args.dry_run).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut table = new_table(["kind", "what", "age reference"]);
    for (kind, list) in [
        ("raw", &report.raw),
        ("quarantine", &report.quarantine),
        ("curated (no release)", &report.curated_orphans),
    ] {
        for o in list {
            table.add_row([
                kind.to_string(),
                o.url.clone(),
                o.last_modified
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ]);
        }
    }
    for r in &report.releases {
        table.add_row([
            "release".to_string(),
            format!(
                "{} ({} {} {}, {} files)",
                r.release_id, r.dataset, r.tenant, r.dt, r.files
            ),
            r.published_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ]);
    }
    if table.row_count() > 0 {
        println!("{table}");
    }
    println!(
        "{verb}: {} raw objects, {} quarantined objects, {} releases, {} unowned curated objects ({} bytes of objects)",
        report.raw.len(),
        report.quarantine.len(),
        report.releases.len(),
        report.curated_orphans.len(),
        report.bytes()
    );
    Ok(ExitCode::SUCCESS)
}
