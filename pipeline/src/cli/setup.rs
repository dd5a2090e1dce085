//! `stackpro setup`: every AWS resource created or updated, idempotently.

use super::*;

#[cfg(feature = "aws")]
pub(super) async fn setup_cmd(config: Config) -> Result<ExitCode, Failure> {
    let steps = pipeline::setup::setup(&config).await?;
    let mut table = new_table(["resource", "change"]);
    for s in &steps {
        table.add_row([s.resource.clone(), s.change.to_string()]);
    }
    println!("{table}");
    let changed = steps
        .iter()
        .filter(|s| s.change != catalog::aws::Change::Unchanged)
        .count();
    println!("{} resources, {changed} changed", steps.len());
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "aws"))]
pub(super) async fn setup_cmd(_config: Config) -> Result<ExitCode, Failure> {
    Err(pipeline::Error::from(catalog::Error::needs_aws(
        "`stackpro setup` creates AWS resources (the embedded default needs no setup) and",
    ))
    .into())
}
