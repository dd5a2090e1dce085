//! `stackpro demo`: generated raw data, consent and a release on the embedded default.

use super::run::print_summary;
use super::*;
use pipeline::demo;

pub(super) async fn demo_cmd(cli: &Cli, args: &DemoArgs) -> Result<ExitCode, Failure> {
    let mut config = load_config(cli)?;
    config.raw = args.dir.join("raw").display().to_string();
    config.curated = args.dir.join("curated").display().to_string();
    config.quarantine = args.dir.join("quarantine").display().to_string();
    if cli.state.is_none() {
        config.state = args.dir.join("state");
    }
    if let Some(key) = demo::configure_key(&mut config)? {
        println!(
            "Using the demo hash key in {} (mode 0600; set {} to use your own).",
            key.display(),
            env::HASH_KEY
        );
    }
    let records = demo::generate_raw(&config, args.date, args.seed)?;
    println!(
        "Generated {records} raw records for {} tenants under {}",
        demo::TENANTS.len(),
        config.raw
    );
    let worker = Worker::open(config.clone()).await?;
    demo::grant_consents(worker.consent.as_ref()).await?;
    println!("Granted consent (t-0100 has not consented to contacts: it will be skipped).");
    let bar = progress_bar();
    let summary = worker.run(&bar).await?;
    print_summary(&summary);
    let curated_dir = worker.curated.local_dir.clone().unwrap_or_default();
    let verdict = pipeline::verify::verify_path(&curated_dir)?;
    println!(
        "verify: {} files, {} rows, {} releases, smallest class {} distinct subjects, {} raw identifiers found: {}",
        verdict.files,
        verdict.rows,
        verdict.releases.len(),
        verdict
            .releases
            .iter()
            .map(|r| r.smallest_class)
            .min()
            .unwrap_or(0),
        verdict.pii_findings,
        if verdict.ok() { "OK" } else { "VIOLATIONS" }
    );
    for v in &verdict.violations {
        println!("  violation: {v}");
    }
    let state = config.state.display();
    let key_hint = config
        .hash_key_file
        .as_ref()
        .map(|k| format!("{}={} ", env::HASH_KEY_FILE, k.display()))
        .unwrap_or_default();
    println!("\nWhere to look:");
    println!("  curated Parquet   {}", worker.curated.url);
    println!("  quarantine        {}", worker.quarantine.url);
    println!("  catalog, consent  {state}/catalog.sqlite, {state}/control-plane.sqlite");
    println!("  metrics           {}", config.metrics_path().display());
    println!("  releases          stackpro --state {state} releases");
    println!(
        "  SQL               stackpro --state {state} query \"SELECT tenant, age, count(*) FROM contacts GROUP BY 1, 2\""
    );
    println!(
        "  run again         {key_hint}stackpro --state {state} run --raw {} --curated {} --quarantine {}",
        config.raw, config.curated, config.quarantine
    );
    Ok(if summary.failed() || !verdict.ok() {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
