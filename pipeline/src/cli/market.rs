//! `stackpro serve` and the marketplace's operator commands (`buyer`, `key`, `listing`,
//! `contract`, `grant`, `revenue`): each admin endpoint of the API as a command, through
//! the same [`Marketplace`] operations.

use std::net::SocketAddr;

use catalog::market::{QuotaPeriod, Role, UsagePlan};
use catalog::storage::Location;
use chrono::{DateTime, Utc};
use marketplace_api::service::NewContract;
use marketplace_api::{AppState, Marketplace};

use super::*;

#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    /// Address to listen on (overrides marketplace.listen and $STACKPRO_LISTEN); port 0
    /// picks a free one. The address is printed on stdout once listening.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Base URL of download links (overrides marketplace.public_url).
    #[arg(long)]
    public_url: Option<String>,
    /// Seconds between syncs of dataset versions with the catalog.
    #[arg(long, default_value_t = 10)]
    sync_every: u64,
}

#[derive(Subcommand, Debug)]
pub(super) enum BuyerAction {
    /// Register a data buyer.
    Create {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// The buyer's IAM principal (ARN): on AWS its grants become Lake Formation grants.
        #[arg(long)]
        aws_principal: Option<String>,
    },
    /// List buyers.
    List,
}

#[derive(Subcommand, Debug)]
pub(super) enum KeyAction {
    /// Issue an API key; it is printed once and only its hash is stored.
    Create {
        /// The buyer the key is for.
        #[arg(long, conflicts_with = "admin", required_unless_present = "admin")]
        buyer: Option<String>,
        /// Issue an admin key for this operator name instead.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Revoke a key by its id: it stops working on the next request.
    Revoke { key_id: String },
    /// List the keys of a buyer or operator (ids and dates, never secrets).
    List {
        #[arg(long)]
        owner: String,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum ListingAction {
    /// Create or update a dataset's marketplace listing.
    Put {
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        description: String,
        /// When the listing stops being offered (RFC 3339); kept while a contract is in force.
        #[arg(long)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// List the listings offered now, with their latest versions.
    List,
    /// Add dataset versions for releases published since the last sync.
    Sync {
        /// Only this dataset (default: every listed one).
        #[arg(long)]
        dataset: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum ContractAction {
    /// Record a data contract with its usage plan; prints it as JSON.
    Create(ContractArgs),
    /// End a contract now: its grants stop giving URLs on the next request.
    End { id: String },
    /// List contracts.
    List {
        #[arg(long)]
        buyer: Option<String>,
    },
}

#[derive(Args, Debug)]
pub(super) struct ContractArgs {
    /// Contract id (default: generated).
    #[arg(long)]
    id: Option<String>,
    #[arg(long)]
    buyer: String,
    #[arg(long)]
    dataset: String,
    #[arg(long, default_value = "StackPro standard data licence")]
    terms: String,
    /// Price per calendar month in force, in minor units (cents).
    #[arg(long)]
    price_minor: u64,
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// Start (RFC 3339; default now).
    #[arg(long)]
    start: Option<DateTime<Utc>>,
    /// End (RFC 3339).
    #[arg(long)]
    end: DateTime<Utc>,
    /// Sustained requests per second.
    #[arg(long, default_value_t = 10)]
    rate: u32,
    /// Burst size.
    #[arg(long, default_value_t = 20)]
    burst: u32,
    /// Signed-URL requests per period.
    #[arg(long, default_value_t = 10_000)]
    quota: u64,
    /// day, week or month.
    #[arg(long, default_value = "month")]
    period: String,
}

#[derive(Subcommand, Debug)]
pub(super) enum GrantAction {
    /// Grant a buyer access to a dataset under its contract in force.
    Create {
        #[arg(long)]
        buyer: String,
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// Revoke it: no new URLs from the next request on.
    Revoke {
        #[arg(long)]
        buyer: String,
        #[arg(long)]
        dataset: String,
    },
    /// List a buyer's grants.
    List {
        #[arg(long)]
        buyer: String,
    },
}

#[derive(Subcommand, Debug)]
pub(super) enum RevenueAction {
    /// Compute and store every contract's revenue shares for a month.
    Compute {
        /// YYYY-MM.
        #[arg(long)]
        period: String,
    },
    /// Show the stored shares of a month.
    Show {
        #[arg(long)]
        period: String,
        #[arg(long)]
        json: bool,
    },
}

/// The marketplace on the configured backends.
async fn open(config: &Config) -> Result<Marketplace, Failure> {
    let backends = catalog::connect::connect(&config.backend_settings()).await?;
    let store = backends.market.ok_or_else(|| {
        pipeline::Error::Config(
            "the aws backend has no marketplace tables yet: run the marketplace on the embedded backend"
                .into(),
        )
    })?;
    let curated = Location::open(&config.curated, &config.aws)?;
    let settings = &config.marketplace;
    let hash_key = config.hash_key().ok();
    let (keys, urls) = settings
        .secrets(|k| std::env::var(k).ok(), hash_key.as_deref())
        .map_err(|e| pipeline::Error::Config(e.to_string()))?;
    Ok(Marketplace::new(
        store,
        backends.consent,
        backends.catalog,
        curated,
        settings,
        keys,
        urls,
        &config.aws,
    )
    .map_err(|e| pipeline::Error::Config(e.to_string()))?
    .with_lake_grants(backends.lake_grants))
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(super) async fn serve_cmd(cli: &Cli, args: &ServeArgs) -> Result<ExitCode, Failure> {
    let mut config = load_config(cli)?;
    if !config.marketplace.enabled {
        return Err(pipeline::Error::Config(format!(
            "the marketplace is disabled ({}=false or marketplace.enabled = false): serve does not start",
            marketplace_api::settings::env::ENABLED
        ))
        .into());
    }
    if let Some(listen) = args.listen {
        config.marketplace.listen = listen;
    }
    if let Some(url) = &args.public_url {
        config.marketplace.public_url = Some(url.clone());
    }
    let listener = tokio::net::TcpListener::bind(config.marketplace.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.marketplace.listen))?;
    // With port 0 the links must name the port actually bound.
    config.marketplace.listen = listener.local_addr()?;
    let market = open(&config).await?;
    let release_metrics =
        (config.backend == catalog::Backend::Embedded).then(|| config.metrics_path());
    let state = AppState {
        market,
        metrics: Arc::new(marketplace_api::metrics::Metrics::new(release_metrics)),
        max_page_size: config.marketplace.max_page_size.max(1),
    };
    println!("listening on http://{}", config.marketplace.listen);
    tracing::info!(listen = %config.marketplace.listen, "marketplace API started");
    // Ctrl-C or SIGTERM: stop accepting, finish the requests in flight.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    };
    marketplace_api::serve(
        state,
        listener,
        std::time::Duration::from_secs(args.sync_every.max(1)),
        shutdown,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn buyer_cmd(cli: &Cli, action: &BuyerAction) -> Result<ExitCode, Failure> {
    let market = open(&load_config(cli)?).await?;
    match action {
        BuyerAction::Create {
            id,
            name,
            aws_principal,
        } => print_json(
            &market
                .create_buyer(id, name, aws_principal.as_deref())
                .await?,
        )?,
        BuyerAction::List => {
            let mut table = new_table(["buyer", "name", "created"]);
            for b in market.store.buyers().await? {
                table.add_row([b.id, b.name, b.created_at.to_rfc3339()]);
            }
            println!("{table}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn key_cmd(cli: &Cli, action: &KeyAction) -> Result<ExitCode, Failure> {
    let market = open(&load_config(cli)?).await?;
    match action {
        KeyAction::Create { buyer, admin } => {
            let (owner, role) = match (buyer, admin) {
                (Some(b), _) => (b.as_str(), Role::Buyer),
                (None, Some(a)) => (a.as_str(), Role::Admin),
                (None, None) => unreachable!("clap requires one"),
            };
            let (issued, key) = market.issue_key(owner, role).await?;
            eprintln!(
                "API key {} for {} ({}): shown once, store it now",
                key.key_id,
                key.owner,
                role.as_str()
            );
            println!("{}", issued.token);
        }
        KeyAction::Revoke { key_id } => {
            market.revoke_key(key_id).await?;
            println!("revoked: {key_id}");
        }
        KeyAction::List { owner } => {
            let mut table = new_table(["key id", "owner", "role", "created", "revoked"]);
            for k in market.store.api_keys(owner).await? {
                table.add_row([
                    k.key_id,
                    k.owner,
                    k.role.as_str().to_owned(),
                    k.created_at.to_rfc3339(),
                    k.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn listing_cmd(cli: &Cli, action: &ListingAction) -> Result<ExitCode, Failure> {
    let market = open(&load_config(cli)?).await?;
    match action {
        ListingAction::Put {
            dataset,
            title,
            description,
            expires_at,
        } => {
            let listing = market
                .put_listing(catalog::market::Listing {
                    dataset: dataset.clone(),
                    title: title.clone(),
                    description: description.clone(),
                    expires_at: *expires_at,
                    updated_at: Utc::now(),
                })
                .await?;
            print_json(&listing)?;
        }
        ListingAction::List => {
            let mut table = new_table(["dataset", "title", "version", "expires"]);
            for l in market.store.listings(Utc::now()).await? {
                let version = market.store.latest_version(&l.dataset).await?;
                table.add_row([
                    l.dataset,
                    l.title,
                    version.to_string(),
                    l.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                ]);
            }
            println!("{table}");
        }
        ListingAction::Sync { dataset } => {
            let added = match dataset {
                Some(d) => market.sync_versions(d).await?,
                None => market.sync_all_versions().await?,
            };
            println!("versions added: {added}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn contract_cmd(cli: &Cli, action: &ContractAction) -> Result<ExitCode, Failure> {
    let market = open(&load_config(cli)?).await?;
    match action {
        ContractAction::Create(a) => {
            let period = QuotaPeriod::parse(&a.period)
                .map_err(|e| pipeline::Error::InvalidArgument(e.to_string()))?;
            let contract = market
                .create_contract(NewContract {
                    id: a.id.clone(),
                    buyer: a.buyer.clone(),
                    dataset: a.dataset.clone(),
                    terms: a.terms.clone(),
                    price_minor: a.price_minor,
                    currency: a.currency.clone(),
                    start: a.start.unwrap_or_else(Utc::now),
                    end: a.end,
                    plan: UsagePlan {
                        rate_per_sec: a.rate,
                        burst: a.burst,
                        quota: a.quota,
                        period,
                    },
                })
                .await?;
            print_json(&contract)?;
        }
        ContractAction::End { id } => print_json(&market.end_contract(id).await?)?,
        ContractAction::List { buyer } => {
            let mut table = new_table([
                "contract", "buyer", "dataset", "status", "start", "end", "price", "plan",
            ]);
            for c in market.store.contracts(buyer.as_deref()).await? {
                table.add_row([
                    c.id,
                    c.buyer,
                    c.dataset,
                    c.status.as_str().to_owned(),
                    c.start.to_rfc3339(),
                    c.end.to_rfc3339(),
                    format!("{} {}/month", c.price_minor, c.currency),
                    format!(
                        "{}/s burst {}, {} per {}",
                        c.plan.rate_per_sec,
                        c.plan.burst,
                        c.plan.quota,
                        c.plan.period.as_str()
                    ),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn grant_cmd(cli: &Cli, action: &GrantAction) -> Result<ExitCode, Failure> {
    let market = open(&load_config(cli)?).await?;
    match action {
        GrantAction::Create {
            buyer,
            dataset,
            expires_at,
        } => print_json(&market.grant(buyer, dataset, *expires_at).await?)?,
        GrantAction::Revoke { buyer, dataset } => {
            market.revoke_grant(buyer, dataset).await?;
            println!("revoked: {buyer} on {dataset}");
        }
        GrantAction::List { buyer } => {
            let mut table = new_table([
                "buyer", "dataset", "contract", "granted", "expires", "revoked",
            ]);
            for g in market.store.grants(buyer).await? {
                table.add_row([
                    g.buyer,
                    g.dataset,
                    g.contract_id,
                    g.granted_at.to_rfc3339(),
                    g.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    g.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn revenue_cmd(cli: &Cli, action: &RevenueAction) -> Result<ExitCode, Failure> {
    let market = open(&load_config(cli)?).await?;
    let (lines, json) = match action {
        RevenueAction::Compute { period } => (market.compute_revenue(period).await?, false),
        RevenueAction::Show { period, json } => (market.revenue(period).await?, *json),
    };
    if json {
        return print_json(&lines).map(|()| ExitCode::SUCCESS);
    }
    let mut table = new_table(["contract", "period", "tenant", "records", "amount"]);
    for l in lines {
        table.add_row([
            l.contract_id,
            l.period,
            l.tenant,
            l.records.to_string(),
            format!("{} {}", l.amount_minor, l.currency),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}
