//! `stackpro query`: DataFusion SQL over the published releases.

use super::*;

pub(super) async fn query_cmd(cli: &Cli, args: &QueryArgs) -> Result<ExitCode, Failure> {
    let config = load_config(cli)?;
    let catalog = catalog::connect::connect(&config.backend_settings())
        .await?
        .catalog;
    let stores = catalog::storage::url_stores(&config.curated, &config.aws)?;
    let bar = ticking_bar("{spinner} [{elapsed_precise}] querying");
    let batches = pipeline::query::sql(Arc::clone(&catalog), stores, &args.sql).await;
    bar.finish_and_clear();
    println!("{}", arrow::util::pretty::pretty_format_batches(&batches?)?);
    Ok(ExitCode::SUCCESS)
}
