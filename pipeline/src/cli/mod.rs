//! Command definitions (clap), dispatch, exit codes and the helpers every command
//! shares (progress bars, tables); each command lives in a file of its own.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use catalog::{ConsentSetting, ReleaseFilter};
use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use pipeline::worker::{PartitionResult, Progress, Status};
use pipeline::{Config, Worker, config::env, synth};

mod consent;
mod demo;
mod generate;
mod market;
mod policy;
mod query;
mod releases;
mod retention;
mod run;
mod setup;
mod verify;
mod watch;

use self::consent::consent_cmd;
use self::demo::demo_cmd;
use self::generate::gen_cmd;
use self::market::{
    BuyerAction, ContractAction, GrantAction, KeyAction, ListingAction, RevenueAction, ServeArgs,
    buyer_cmd, contract_cmd, grant_cmd, key_cmd, listing_cmd, revenue_cmd, serve_cmd,
};
use self::policy::policy_check;
use self::query::query_cmd;
use self::releases::releases_cmd;
use self::retention::sweep_cmd;
use self::run::run_cmd;
use self::setup::setup_cmd;
use self::verify::verify_cmd;
use self::watch::{WatchArgs, WorkerArgs, watch_cmd, worker_cmd};

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
    /// Configuration file (TOML); default $STACKPRO_CONFIG, else ./stackpro.toml.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Folder of the embedded catalog and control plane (overrides $STACKPRO_STATE).
    #[arg(long, global = true)]
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
    /// Release raw objects as they appear in a local raw folder (each partition under a
    /// lease, so several watchers never release one twice).
    Watch(WatchArgs),
    /// Release raw objects announced by S3 event notifications on an SQS queue (each
    /// partition under a lease; a message is deleted once its releases are durable).
    /// Needs the `aws` feature.
    Worker(WorkerArgs),
    /// Run the marketplace API (buyers' datasets, signed URLs, usage; the admin endpoints).
    Serve(ServeArgs),
    /// Marketplace: data buyers.
    Buyer {
        #[command(subcommand)]
        action: BuyerAction,
    },
    /// Marketplace: API keys of buyers and operators.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Marketplace: dataset listings and their versions.
    Listing {
        #[command(subcommand)]
        action: ListingAction,
    },
    /// Marketplace: data contracts and their usage plans.
    Contract {
        #[command(subcommand)]
        action: ContractAction,
    },
    /// Marketplace: buyers' access grants.
    Grant {
        #[command(subcommand)]
        action: GrantAction,
    },
    /// Marketplace: tenants' revenue shares per month.
    Revenue {
        #[command(subcommand)]
        action: RevenueAction,
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
    /// Raw records root (folder, file:// or s3:// URL; overrides $STACKPRO_RAW).
    #[arg(long)]
    raw: Option<String>,
    /// Curated Parquet root (overrides $STACKPRO_CURATED).
    #[arg(long)]
    curated: Option<String>,
    /// Quarantine root (overrides $STACKPRO_QUARANTINE).
    #[arg(long)]
    quarantine: Option<String>,
    /// Policy document (overrides $STACKPRO_POLICY; default: the bundled default-v2).
    #[arg(long)]
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
    /// The tenant takes part in the marketplace's revenue share for this dataset.
    #[arg(long)]
    revenue_share: bool,
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
    /// Size of the person pool (default: records/6 for `recurring`, records for
    /// `near-unique`).
    #[arg(long)]
    people: Option<u64>,
    /// How the quasi-identifiers repeat: `recurring` (people come back from home
    /// networks: about 164,000 base classes per million records) or `near-unique` (a
    /// fresh IP per record, a phone per person, about 1.6 records per person: nearly
    /// every record its own base class).
    #[arg(long, default_value = "recurring", value_parser = parse_profile)]
    profile: synth::Profile,
}

fn parse_profile(name: &str) -> Result<synth::Profile, String> {
    synth::Profile::parse(name).ok_or_else(|| {
        format!(
            "unknown profile `{name}` (one of {:?})",
            synth::Profile::NAMES
        )
    })
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
        let config = error.downcast_ref::<pipeline::Error>().is_some_and(|e| {
            matches!(
                e,
                pipeline::Error::Config(_)
                    | pipeline::Error::Policy(_)
                    | pipeline::Error::InvalidArgument(_)
            )
        }) || error.downcast_ref::<policies::Error>().is_some()
            // The operator's request was refused (unknown buyer, no contract, bad input).
            || error
                .downcast_ref::<marketplace_api::ApiError>()
                .is_some_and(|e| e.status.is_client_error());
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
        Command::Watch(args) => {
            let mut config = load_config(&cli)?;
            args.roots.apply(&mut config);
            config.hasher()?;
            watch_cmd(config, args).await
        }
        Command::Worker(args) => {
            let mut config = load_config(&cli)?;
            args.roots.apply(&mut config);
            config.hasher()?;
            worker_cmd(config, args).await
        }
        Command::Serve(args) => serve_cmd(&cli, args).await,
        Command::Buyer { action } => buyer_cmd(&cli, action).await,
        Command::Key { action } => key_cmd(&cli, action).await,
        Command::Listing { action } => listing_cmd(&cli, action).await,
        Command::Contract { action } => contract_cmd(&cli, action).await,
        Command::Grant { action } => grant_cmd(&cli, action).await,
        Command::Revenue { action } => revenue_cmd(&cli, action).await,
    }
}

/// A table for stdout with `header`, in the style every command prints.
fn new_table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    table
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
