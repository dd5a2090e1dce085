//! `stackpro releases`: the catalog's published releases.

use super::*;

pub(super) async fn releases_cmd(cli: &Cli, args: &ReleasesArgs) -> Result<ExitCode, Failure> {
    let config = load_config(cli)?;
    let catalog = catalog::connect::connect(&config.backend_settings())
        .await?
        .catalog;
    let releases = catalog
        .releases(&ReleaseFilter {
            dataset: args.dataset.clone(),
            tenant: args.tenant.clone(),
        })
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&releases)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = new_table([
        "release",
        "dataset",
        "tenant",
        "dt",
        "in",
        "out",
        "suppressed",
        "quarantined",
        "k",
        "node",
        "files",
        "published",
    ]);
    for r in &releases {
        table.add_row([
            r.release_id.clone(),
            r.dataset.clone(),
            r.tenant.clone(),
            r.dt.clone(),
            r.records_in.to_string(),
            r.records_out.to_string(),
            r.suppressed.to_string(),
            r.quarantined.to_string(),
            r.k.to_string(),
            r.node.clone(),
            r.files.len().to_string(),
            r.published_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ]);
    }
    println!("{table}\n{} published releases", releases.len());
    Ok(ExitCode::SUCCESS)
}
