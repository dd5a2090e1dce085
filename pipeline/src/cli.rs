//! Command definitions and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use catalog::{ConsentSetting, ReleaseFilter};
use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use pipeline::worker::{PartitionResult, Progress, Status};
use pipeline::{Config, Worker, config::env, demo, synth};

/// Exit codes.
const EXIT_FAILED: u8 = 1;
const EXIT_CONFIG: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "stackpro",
    version,
    about = "StackPro Data Platform: turn tenants' raw records into k-anonymous, sellable datasets.",
    after_help = "Exit codes: 0 success; 1 a release failed or verification found a violation; 2 bad usage or configuration.\n\
                  Configuration: --config FILE (or STACKPRO_CONFIG, or ./stackpro.toml), then STACKPRO_* variables, then flags."
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = env::CONFIG)]
    config: Option<PathBuf>,
    /// Folder of the embedded catalog and control plane.
    #[arg(long, global = true, env = env::STATE)]
    state: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More logs (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate sample data for a few tenants and all datasets, grant consent, run, verify,
    /// and print a summary (local folders under ./data by default).
    Demo(DemoArgs),
    /// Process every pending raw partition under the policy and publish curated releases.
    Run(RunArgs),
    /// Manage tenants' consent to publishing a dataset (default: denied).
    Consent {
        #[command(subcommand)]
        action: ConsentAction,
    },
    /// Generate realistic synthetic raw records.
    Gen(GenArgs),
    /// Policy documents.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Recompute k (in distinct subjects) and scan for raw identifiers, from Parquet alone.
    Verify(VerifyArgs),
    /// List published releases with their figures.
    Releases(ReleasesArgs),
    /// Run SQL over the published releases (each dataset is a table).
    Query(QueryArgs),
    /// Create or update every AWS resource the configuration names (buckets with
    /// versioning, SSE-KMS and lifecycle rules; Glue database; LF-tag keys; DynamoDB
    /// tables). Idempotent. Needs the `aws` feature.
    Setup(SetupArgs),
    /// Retention: remove what the policy's ages say has expired.
    Retention {
        #[command(subcommand)]
        action: RetentionAction,
    },
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Base folder for raw/, curated/, quarantine/ and state/.
    #[arg(long, default_value = "./data")]
    dir: PathBuf,
    /// Day of the generated records (YYYY-MM-DD).
    #[arg(long, default_value = "2026-11-24")]
    date: chrono::NaiveDate,
    /// Seed of the generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// The object roots and policy a command works on (flags override the configuration).
#[derive(Args, Debug)]
struct RootArgs {
    /// Raw records root (folder, file:// or s3:// URL).
    #[arg(long, env = env::RAW)]
    raw: Option<String>,
    /// Curated Parquet root.
    #[arg(long, env = env::CURATED)]
    curated: Option<String>,
    /// Quarantine root.
    #[arg(long, env = env::QUARANTINE)]
    quarantine: Option<String>,
    /// Policy document (default: the bundled default-v2).
    #[arg(long, env = env::POLICY)]
    policy: Option<PathBuf>,
}

impl RootArgs {
    fn apply(&self, config: &mut Config) {
        if let Some(v) = &self.raw {
            config.raw = v.clone();
        }
        if let Some(v) = &self.curated {
            config.curated = v.clone();
        }
        if let Some(v) = &self.quarantine {
            config.quarantine = v.clone();
        }
        if let Some(v) = &self.policy {
            config.policy = Some(v.clone());
        }
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    roots: RootArgs,
    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct SetupArgs {
    #[command(flatten)]
    roots: RootArgs,
}

#[derive(Subcommand, Debug)]
enum RetentionAction {
    /// Delete raw and quarantined objects past `retention.raw_days` and releases past
    /// `retention.curated_days` (catalog entry, then files), and report what was removed.
    Sweep(SweepArgs),
}

#[derive(Args, Debug)]
struct SweepArgs {
    #[command(flatten)]
    roots: RootArgs,
    /// Only report what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Judge ages as of this day instead of now (preview a future sweep with --dry-run).
    #[arg(long)]
    as_of: Option<chrono::NaiveDate>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum ConsentAction {
    /// Allow publishing this tenant's records of this dataset.
    Grant(ConsentArgs),
    /// Stop publishing (already published releases stay until retention removes them).
    Revoke(ConsentArgs),
    /// List consent settings, optionally of one tenant and/or dataset.
    List(ConsentFilter),
}

#[derive(Args, Debug)]
struct ConsentFilter {
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long)]
    dataset: Option<String>,
}

#[derive(Args, Debug)]
struct ConsentArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    dataset: String,
}

#[derive(Args, Debug)]
struct GenArgs {
    /// contacts, web_events or orders.
    #[arg(long)]
    dataset: String,
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// Output file (.ndjson, .ndjson.gz, .ndjson.zst, .csv, …) or, without such an
    /// extension, a raw root to write into the raw layout.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraction of deliberately bad records (0..=1).
    #[arg(long, default_value_t = 0.0)]
    dirty: f64,
    #[arg(long, default_value = "t-0042")]
    tenant: String,
    #[arg(long, default_value = "2026-11-24")]
    date: chrono::NaiveDate,
    /// Size of the person pool (default records/6).
    #[arg(long)]
    people: Option<u64>,
}

#[derive(Subcommand, Debug)]
enum PolicyAction {
    /// Validate a policy document and summarize it.
    Check {
        /// The policy JSON file (hierarchy tables are read relative to it).
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// A Parquet file or a folder of them (searched recursively).
    path: PathBuf,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ReleasesArgs {
    #[arg(long)]
    dataset: Option<String>,
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct QueryArgs {
    /// The SQL statement, e.g. "SELECT tenant, count(*) FROM contacts GROUP BY tenant".
    sql: String,
}

/// An error that maps to an exit code.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let error = e.into();
        let config = error
            .downcast_ref::<pipeline::Error>()
            .is_some_and(|e| matches!(e, pipeline::Error::Config(_) | pipeline::Error::Policy(_)))
            || error.downcast_ref::<policies::Error>().is_some();
        Failure {
            code: if config { EXIT_CONFIG } else { EXIT_FAILED },
            error,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn init_logging(cli: &Cli) {
    let default = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.compact().init(),
    }
}

fn load_config(cli: &Cli) -> Result<Config, Failure> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(state) = &cli.state {
        config.state = state.clone();
    }
    Ok(config)
}

async fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Demo(args) => demo_cmd(&cli, args).await,
        Command::Run(args) => {
            let mut config = load_config(&cli)?;
            args.roots.apply(&mut config);
            // Refuse before touching anything when no key is configured.
            config.hasher()?;
            run_cmd(config, args.json).await
        }
        Command::Consent { action } => consent_cmd(&cli, action).await,
        Command::Gen(args) => gen_cmd(args),
        Command::Policy {
            action: PolicyAction::Check { file },
        } => policy_check(file),
        Command::Verify(args) => verify_cmd(args),
        Command::Releases(args) => releases_cmd(&cli, args).await,
        Command::Query(args) => query_cmd(&cli, args).await,
        Command::Setup(args) => {
            let mut config = load_config(&cli)?;
            args.roots.apply(&mut config);
            setup_cmd(config).await
        }
        Command::Retention {
            action: RetentionAction::Sweep(args),
        } => {
            let mut config = load_config(&cli)?;
            args.roots.apply(&mut config);
            sweep_cmd(config, args).await
        }
    }
}

/// A progress bar over raw bytes, drawn only on a terminal.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, partitions: usize, bytes: u64) {
        self.0.set_length(bytes);
        self.0.set_message(format!("{partitions} partitions"));
    }
    fn bytes(&self, n: u64) {
        self.0.inc(n);
    }
    fn partition_done(&self, r: &PartitionResult) {
        self.0
            .println(format!("{:<18} {}", format!("{:?}", r.status), r.partition));
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn progress_bar() -> Bar {
    Bar(ticking_bar(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
    ))
}

/// A progress bar on stderr (hidden when it is not a terminal) drawn by `template`,
/// ticking on its own so that a long step still shows it is alive.
fn ticking_bar(template: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

async fn run_cmd(config: Config, json: bool) -> Result<ExitCode, Failure> {
    // A mistyped raw folder would otherwise be created empty, and the run would succeed
    // with nothing to do. (Other commands, such as `retention sweep`, need none.)
    catalog::storage::Location::open_existing(&config.raw, &config.aws)
        .map_err(|e| pipeline::Error::Config(format!("raw location: {e}")))?;
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

fn print_summary(summary: &pipeline::RunSummary) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
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
        "{} published, {} withheld, {} without consent, {} nothing new, {} failed",
        summary.count(Status::Published),
        summary.count(Status::Withheld),
        summary.count(Status::NoConsent),
        summary.count(Status::NothingNew),
        summary.count(Status::Failed)
    );
}

async fn demo_cmd(cli: &Cli, args: &DemoArgs) -> Result<ExitCode, Failure> {
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

async fn consent_cmd(cli: &Cli, action: &ConsentAction) -> Result<ExitCode, Failure> {
    let config = load_config(cli)?;
    let consent = catalog::connect::connect(&config.backend_settings())
        .await?
        .consent;
    let set = |args: &ConsentArgs, granted: bool| ConsentSetting {
        tenant: args.tenant.clone(),
        dataset: args.dataset.clone(),
        granted,
        updated_at: chrono::Utc::now(),
        updated_by: std::env::var("USER").unwrap_or_else(|_| "stackpro cli".into()),
    };
    match action {
        ConsentAction::Grant(a) => {
            consent.set_consent(&set(a, true)).await?;
            println!("granted: {} may publish {}", a.tenant, a.dataset);
        }
        ConsentAction::Revoke(a) => {
            consent.set_consent(&set(a, false)).await?;
            println!("revoked: {} will not publish {}", a.tenant, a.dataset);
        }
        ConsentAction::List(filter) => {
            let mut table = Table::new();
            table
                .load_preset(UTF8_FULL_CONDENSED)
                .set_header(["tenant", "dataset", "granted", "updated", "by"]);
            let wanted =
                |value: &str, filter: &Option<String>| filter.as_deref().is_none_or(|f| f == value);
            for c in consent.consents().await?.into_iter().filter(|c| {
                wanted(&c.tenant, &filter.tenant) && wanted(&c.dataset, &filter.dataset)
            }) {
                table.add_row([
                    c.tenant,
                    c.dataset,
                    c.granted.to_string(),
                    c.updated_at.to_rfc3339(),
                    c.updated_by,
                ]);
            }
            println!("{table}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn gen_cmd(args: &GenArgs) -> Result<ExitCode, Failure> {
    if !synth::DATASETS.contains(&args.dataset.as_str()) {
        return Err(pipeline::Error::Config(format!(
            "unknown dataset `{}` (one of {:?})",
            args.dataset,
            synth::DATASETS
        ))
        .into());
    }
    let opts = synth::GenOptions {
        dataset: args.dataset.clone(),
        records: args.records,
        seed: args.seed,
        dirty: args.dirty,
        tenant: args.tenant.clone(),
        date: args.date,
        people: args.people,
    };
    let name = args
        .out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let path = if catalog::layout::encoding_of(name).is_some() {
        args.out.clone()
    } else {
        let partition = catalog::layout::PartitionKey {
            dataset: args.dataset.clone(),
            tenant: args.tenant.clone(),
            dt: args.date.to_string(),
        };
        let object = format!("part-{:016x}.ndjson", args.seed);
        args.out
            .join(catalog::layout::raw_path(&partition, "gen", &object).as_ref())
    };
    let bar =
        ticking_bar("{spinner} [{elapsed_precise}] {bytes} of records ({bytes_per_sec}) {msg}");
    let stats = demo::write_raw_object_with(&path, &opts, &|n| bar.inc(n));
    bar.finish_and_clear();
    let stats = stats.with_context(|| format!("writing {}", path.display()))?;
    println!(
        "wrote {} records ({} deliberately bad, {} bytes) to {}",
        stats.records,
        stats.dirty,
        stats.bytes,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn policy_check(file: &std::path::Path) -> Result<ExitCode, Failure> {
    let policy = policies::Policy::load(file)?;
    println!("policy {} ({}) is valid", policy.id, policy.hash);
    println!(
        "k = {}, max suppression = {:.1}%",
        policy.k,
        policy.max_suppression * 100.0
    );
    println!(
        "retention: raw {} days, curated {} days",
        policy.retention.raw_days, policy.retention.curated_days
    );
    for (name, rules) in &policy.datasets {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header([
            "field",
            "column",
            "transform",
            "levels",
        ]);
        for o in &rules.outputs {
            let (what, levels) = match &o.kind {
                policies::policy::OutputKind::Keep { data_type, .. } => {
                    (format!("keep ({data_type:?})"), String::new())
                }
                policies::policy::OutputKind::Hash => ("hash (HMAC-SHA256)".into(), String::new()),
                policies::policy::OutputKind::Day => ("truncate to day".into(), String::new()),
                policies::policy::OutputKind::Level0(_) => ("mask/truncate".into(), String::new()),
                policies::policy::OutputKind::QuasiIdentifier(h) => {
                    ("quasi-identifier".into(), h.height().to_string())
                }
            };
            table.add_row([o.field.clone(), o.column.clone(), what, levels]);
        }
        for d in &rules.dropped {
            table.add_row([d.clone(), String::new(), "drop".into(), String::new()]);
        }
        println!(
            "\ndataset {name}: subject {}, unnamed fields are dropped\n{table}",
            rules
                .subject
                .map(|s| rules.inputs[s].as_str())
                .unwrap_or("(none: one per record)")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn verify_cmd(args: &VerifyArgs) -> Result<ExitCode, Failure> {
    let bar = ticking_bar("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} files {msg}");
    let verdict = pipeline::verify::verify_path_with(&args.path, &|done, all| {
        bar.set_length(all as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let verdict = verdict?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&verdict)?);
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header([
            "release",
            "files",
            "rows",
            "classes",
            "smallest class",
            "k",
            "prosecutor risk",
            "average risk",
            "rows in classes < 2k",
        ]);
        for r in &verdict.releases {
            table.add_row([
                r.release_id.clone(),
                r.files.to_string(),
                r.rows.to_string(),
                r.classes.to_string(),
                r.smallest_class.to_string(),
                r.k.to_string(),
                format!("{:.4}", r.prosecutor_risk),
                format!("{:.4}", r.average_risk),
                format!("{:.1}%", 100.0 * r.small_class_share),
            ]);
        }
        println!("{table}");
        for e in &verdict.examples {
            println!(
                "raw {} in {} column {} row {}",
                e.kind, e.file, e.column, e.row
            );
        }
        for v in &verdict.violations {
            println!("VIOLATION: {v}");
        }
        println!(
            "{} files, {} rows: {}",
            verdict.files,
            verdict.rows,
            if verdict.ok() {
                "OK (k holds, no raw identifiers, nothing links releases or classes)"
            } else {
                "FAILED"
            }
        );
    }
    Ok(if verdict.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

async fn releases_cmd(cli: &Cli, args: &ReleasesArgs) -> Result<ExitCode, Failure> {
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
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
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

async fn query_cmd(cli: &Cli, args: &QueryArgs) -> Result<ExitCode, Failure> {
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

#[cfg(feature = "aws")]
async fn setup_cmd(config: Config) -> Result<ExitCode, Failure> {
    let steps = pipeline::setup::setup(&config).await?;
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["resource", "change"]);
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
async fn setup_cmd(_config: Config) -> Result<ExitCode, Failure> {
    Err(pipeline::Error::from(catalog::Error::needs_aws(
        "`stackpro setup` creates AWS resources (the embedded default needs no setup) and",
    ))
    .into())
}

async fn sweep_cmd(config: Config, args: &SweepArgs) -> Result<ExitCode, Failure> {
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
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["kind", "what", "age reference"]);
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
