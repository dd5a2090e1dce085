//! Throughput harness: one full release (read, parse, transform, k-anonymity, Parquet,
//! catalog) per data profile and input encoding, each in a process of its own so that
//! its peak memory is its own, printing records/s, MB/s of raw input, the release's
//! phases and peak memory.
//!
//! Profiles (`--profile`, repeatable; default all three):
//! - `recurring`: `stackpro gen`'s default contacts, people recur from home networks
//!   (about 164,000 base classes per million records);
//! - `near-unique`: `stackpro gen --profile near-unique` contacts, a fresh IP per record
//!   and about 1.6 records per person (base classes ≈ records);
//! - `adult`: UCI Adult with ARX's hierarchies (`benches/data/adult`, 30,162 records, 9
//!   quasi-identifiers, k=20, 5%), the public benchmark for the lattice search.
//!
//! `cargo bench -p benches --bench throughput -- [--profile P] [--records N]
//! [--encoding ndjson|ndjson.gz|ndjson.zst] [--compare duckdb] [--keep]`.
//! `--compare duckdb` also runs the same policy in DuckDB SQL (`benches/duckdb/kanon.py`,
//! DuckDB from PyPI in a venv the harness creates) on each generated profile and checks
//! both chose the same node and output rows. `THROUGHPUT_RECORDS` is the default of
//! `--records` (1,000,000).
//!
//! `THROUGHPUT_LEDGER_DAYS=N` puts N earlier releases of the tenant-dataset in the catalog
//! first, each with a record ledger of `THROUGHPUT_LEDGER_PER_DAY` (default 1,000,000)
//! fresh fingerprints, and runs the ledger cache's upkeep over them, so that
//! the measured release loads and probes the ledger of a long-lived tenant-dataset (a
//! million records a day over 90 days: `THROUGHPUT_LEDGER_DAYS=90`). Not timed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use benches::{cpu_seconds, human_bytes, peak_rss_bytes};
use catalog::ConsentSetting;
use clap::Parser;
use pipeline::config::DatasetConfig;
use pipeline::synth::{GenOptions, Profile};
use pipeline::worker::NoProgress;
use pipeline::{Config, Worker};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

// The same allocator as the `stackpro` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TENANT: &str = "t-bench";
const DATE: &str = "2026-11-24";
const PROFILES: [&str; 3] = ["recurring", "near-unique", "adult"];

#[derive(Parser, Debug)]
#[command(about = "End-to-end release throughput per data profile")]
struct Args {
    /// `recurring`, `near-unique` or `adult` (repeatable; default: all three).
    #[arg(long = "profile")]
    profiles: Vec<String>,
    /// Records per generated profile (Adult always has its 30,162); default
    /// `THROUGHPUT_RECORDS`, else 1,000,000.
    #[arg(long)]
    records: Option<u64>,
    /// Raw encodings of the generated profiles: `ndjson`, `ndjson.gz`, `ndjson.zst`
    /// (repeatable; default `ndjson`).
    #[arg(long = "encoding")]
    encodings: Vec<String>,
    /// Also run the same policy in another engine: `duckdb`.
    #[arg(long)]
    compare: Option<String>,
    /// Keep the raw, curated and state folders and print where they are (also when
    /// `THROUGHPUT_KEEP` is set).
    #[arg(long)]
    keep: bool,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
    /// Internal: run one release over this prepared folder and print its figures.
    #[arg(long, hide = true)]
    child: Option<PathBuf>,
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if let Some(dir) = &args.child {
        let profile = args.profiles.first().context("a child needs its profile")?;
        child(dir, profile)?;
        return Ok(ExitCode::SUCCESS);
    }
    let profiles: Vec<&str> = if args.profiles.is_empty() {
        PROFILES.to_vec()
    } else {
        args.profiles.iter().map(String::as_str).collect()
    };
    let encodings: Vec<&str> = if args.encodings.is_empty() {
        vec!["ndjson"]
    } else {
        args.encodings.iter().map(String::as_str).collect()
    };
    for e in &encodings {
        if !["ndjson", "ndjson.gz", "ndjson.zst"].contains(e) {
            bail!("unknown encoding `{e}` (ndjson, ndjson.gz or ndjson.zst)");
        }
    }
    let duckdb = match args.compare.as_deref() {
        None => None,
        Some("duckdb") => Some(duckdb_python()?),
        Some(other) => bail!("unknown engine to compare with: `{other}` (duckdb)"),
    };
    let records = args.records.unwrap_or_else(|| {
        std::env::var("THROUGHPUT_RECORDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    });
    let keep = args.keep || std::env::var_os("THROUGHPUT_KEEP").is_some();
    let mut failed = false;
    for profile in profiles {
        let generated = profile != "adult";
        for encoding in if generated {
            &encodings[..]
        } else {
            &["csv"][..]
        } {
            let dir = tempfile::tempdir()?;
            // Compared with another engine, the records are clean: quarantine rules are
            // this project's own, and the other engine gets no say in them.
            let dirty = if duckdb.is_some() { 0.0 } else { 0.01 };
            let input = prepare(dir.path(), profile, records, encoding, dirty)?;
            let outcome = run_child(dir.path(), profile)?;
            if let (Some(python), true, &"ndjson") = (&duckdb, generated, encoding) {
                failed |= !compare_duckdb(python, &input, &outcome)?;
            }
            if keep {
                println!("  kept            {}", dir.keep().display());
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes the profile's raw object into `dir/raw` and returns its path.
fn prepare(
    dir: &Path,
    profile: &str,
    records: u64,
    encoding: &str,
    dirty: f64,
) -> anyhow::Result<PathBuf> {
    if profile == "adult" {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/adult");
        let part = dir.join(format!(
            "raw/tenant={TENANT}/dataset=adult/source=uci/dt={DATE}"
        ));
        std::fs::create_dir_all(&part)?;
        let file = part.join("adult.csv");
        std::fs::copy(data.join("adult.csv"), &file).context("benches/data/adult/adult.csv")?;
        return Ok(file);
    }
    let profile_kind = Profile::parse(profile)
        .with_context(|| format!("unknown profile `{profile}` (one of {PROFILES:?})"))?;
    let part = dir.join(format!(
        "raw/tenant={TENANT}/dataset=contacts/source=bench/dt={DATE}"
    ));
    std::fs::create_dir_all(&part)?;
    let file = part.join(format!("part-0000.{encoding}"));
    let opts = GenOptions {
        dirty,
        tenant: TENANT.into(),
        profile: profile_kind,
        ..GenOptions::new("contacts", records, 42)
    };
    let started = Instant::now();
    let stats = pipeline::demo::write_raw_object(&file, &opts)?;
    eprintln!(
        "generated {} {profile} records ({} as {encoding}) in {:.2?}",
        stats.records,
        human_bytes(std::fs::metadata(&file)?.len()),
        started.elapsed()
    );
    Ok(file)
}

/// What the parent needs of a child's run to compare it with another engine.
#[derive(Debug, Default)]
struct Outcome {
    node: String,
    records_out: u64,
    elapsed_s: f64,
}

/// Runs the release over `dir` in a fresh process (this binary, `--child`), streaming
/// its figures.
fn run_child(dir: &Path, profile: &str) -> anyhow::Result<Outcome> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg("--child")
        .arg(dir)
        .args(["--profile", profile])
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    if !out.status.success() {
        bail!("the release of profile {profile} failed ({})", out.status);
    }
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    Ok(Outcome {
        node: field("node "),
        records_out: field("records out ").parse().unwrap_or_default(),
        elapsed_s: field("elapsed ")
            .trim_end_matches(" s")
            .parse()
            .unwrap_or_default(),
    })
}

/// The release's own phases, read off its tracing events.
#[derive(Default)]
struct Phases(Mutex<BTreeMap<String, u64>>);

struct PhaseLayer(Arc<Phases>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PhaseLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Visit<'a>(&'a mut BTreeMap<String, u64>);
        impl tracing::field::Visit for Visit<'_> {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                self.0.insert(field.name().to_string(), value);
            }
            fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
                self.record_u64(field, value.max(0) as u64);
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        if let Ok(mut map) = self.0.0.lock() {
            event.record(&mut Visit(&mut map));
        }
    }
}

/// One release over a prepared folder, in this process: the figures a user would quote.
fn child(dir: &Path, profile: &str) -> anyhow::Result<()> {
    let phases = Arc::new(Phases::default());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .compact()
                .with_filter(tracing_subscriber::EnvFilter::from_default_env()),
        )
        .with(
            PhaseLayer(phases.clone()).with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("pipeline::release", tracing::Level::INFO),
            ),
        )
        .init();
    let adult = profile == "adult";
    let dataset = if adult { "adult" } else { "contacts" };
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/adult");
    let raw_bytes: u64 = walk_files(&dir.join("raw"))?
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let encoding = walk_files(&dir.join("raw"))?
        .first()
        .and_then(|f| {
            f.file_name()?
                .to_str()?
                .split_once('.')
                .map(|(_, e)| e.to_string())
        })
        .unwrap_or_default();
    let key = dir.join("key");
    std::fs::write(&key, "benchmark-key-0123456789abcdef")?;
    let config = Config {
        raw: dir.join("raw").display().to_string(),
        curated: dir.join("curated").display().to_string(),
        quarantine: dir.join("quarantine").display().to_string(),
        state: dir.join("state"),
        hash_key_file: Some(key),
        policy: adult.then(|| data.join("policy.json")),
        datasets: if adult {
            BTreeMap::from([(
                "adult".to_string(),
                DatasetConfig {
                    csv_delimiter: ';',
                    ..DatasetConfig::default()
                },
            )])
        } else {
            BTreeMap::new()
        },
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut before = peak_rss_bytes();
    let mut cpu_before = cpu_seconds();
    let (elapsed, summary) = runtime.block_on(async {
        let worker = Worker::open(config).await?;
        worker
            .consent
            .set_consent(&ConsentSetting {
                tenant: TENANT.into(),
                dataset: dataset.into(),
                granted: true,
                updated_at: chrono::Utc::now(),
                updated_by: "bench".into(),
                revenue_share: false,
            })
            .await?;
        if let Some(days) = env_usize("THROUGHPUT_LEDGER_DAYS").filter(|&d| d > 0) {
            let per_day = env_usize("THROUGHPUT_LEDGER_PER_DAY").unwrap_or(1_000_000);
            let t = Instant::now();
            seed_ledger_history(&worker, &dir.join("curated"), dataset, days, per_day).await?;
            eprintln!(
                "history: {days} earlier releases of {per_day} records each, seeded in {:.1} s (not timed)",
                t.elapsed().as_secs_f64()
            );
            // Nor is the seeding's writeback: its gigabyte or so of files would otherwise be
            // flushed by the kernel while the release runs, on the same two cores.
            let synced = std::process::Command::new("sync").status();
            if !synced.as_ref().is_ok_and(|s| s.success()) {
                eprintln!("history: `sync` failed ({synced:?}); the seeding's writeback may overlap the release");
            }
            // Neither the seeding's CPU nor its memory is the release's: the peak is reset
            // (Linux: 5 to clear_refs resets VmHWM) and both are taken again.
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            before = peak_rss_bytes();
            cpu_before = cpu_seconds();
        }
        let worker = Arc::new(worker);
        let start = Instant::now();
        let summary = worker.run(&NoProgress).await?;
        anyhow::Ok((start.elapsed(), summary))
    })?;
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|((u1, s1), (u0, s0))| (u1 - u0, s1 - s0));
    let partition = summary.partitions.first().context("no partition")?;
    let report = partition.report.clone().context("no release")?;
    let phases = phases.0.lock().map(|m| m.clone()).unwrap_or_default();
    let phase = |name: &str| phases.get(name).map_or("n/a".into(), u64::to_string);
    let secs = elapsed.as_secs_f64();
    println!(
        "throughput: {profile} ({dataset}), {} records, {} raw {encoding}",
        report.records_in,
        human_bytes(raw_bytes)
    );
    println!("  status          {:?}", partition.status);
    println!("  node            {}", report.node_label);
    println!("  records out     {}", report.records_out);
    println!(
        "  suppressed      {} ({} quarantined)",
        report.suppressed, report.quarantined
    );
    println!(
        "  phases          pass1_ms={} decide_ms={} pass2_ms={} ({} base classes, {} nodes evaluated{})",
        phase("pass1_ms"),
        phase("decide_ms"),
        phase("pass2_ms"),
        phase("base_classes"),
        report.nodes_evaluated,
        if phases.get("spilled").is_some_and(|&s| s > 0) {
            ", spilled"
        } else {
            ""
        }
    );
    println!(
        "  curated         {} Parquet in {} file(s)",
        human_bytes(report.files.iter().map(|f| f.bytes).sum()),
        report.files.len()
    );
    println!("  elapsed         {secs:.2} s");
    println!("  records/s       {:.0}", report.records_in as f64 / secs);
    println!("  MB/s (raw)      {:.1}", raw_bytes as f64 / 1e6 / secs);
    if let Some((user, system)) = cpu {
        println!(
            "  CPU time        {:.2} s (user {user:.2}, system {system:.2}); {:.0} records per CPU-second",
            user + system,
            report.records_in as f64 / (user + system)
        );
    }
    println!(
        "  peak memory     {} (before the run: {})",
        peak_rss_bytes().map_or("n/a".into(), human_bytes),
        before.map_or("n/a".into(), human_bytes)
    );
    println!(
        "  machine         {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
}

/// `days` published releases of `dataset` for the bench's tenant, each with a ledger file
/// of `per_day` uniformly random fingerprints (as keyed SipHash gives: none matches the
/// measured release's records), then the ledger cache's upkeep over them, as the worker
/// runs it after each publish.
async fn seed_ledger_history(
    worker: &Worker,
    curated: &Path,
    dataset: &str,
    days: usize,
    per_day: usize,
) -> anyhow::Result<()> {
    let partition = catalog::layout::PartitionKey {
        dataset: dataset.into(),
        tenant: TENANT.into(),
        dt: "2026-01-01".into(),
    };
    worker
        .catalog
        .upsert_table(&catalog::conformance::sample_table(dataset))
        .await?;
    let mut state = 0x5eed_u64;
    let mut next = move || {
        // SplitMix64.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let now = chrono::Utc::now();
    for day in 0..days {
        let id = format!("rhistory{day:05}");
        let mut fps: Vec<u128> = (0..per_day)
            .map(|_| (u128::from(next()) << 64) | u128::from(next()))
            .collect();
        fps.sort_unstable();
        fps.dedup();
        let file = curated.join(catalog::layout::ledger_path(&partition, &id).as_ref());
        std::fs::create_dir_all(file.parent().context("a ledger folder")?)?;
        std::fs::write(&file, pipeline::ledger::ledger_file_bytes(&fps))?;
        let key = format!("tenant={TENANT}/dataset={dataset}/source=history/dt=2026-01-01/{id}");
        let mut release = catalog::conformance::sample_release(&id, dataset, TENANT, &[&key]);
        release.published_at = now - chrono::Duration::hours((days - day) as i64);
        worker.catalog.publish_release(&release).await?;
    }
    if let Some(root) = worker.config.ledger_cache_dir() {
        pipeline::ledger::RecordLedger::maintain_cache(
            worker.catalog.as_ref(),
            &worker.curated,
            &partition,
            730,
            &root,
        )
        .await?;
    }
    Ok(())
}

fn walk_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A Python with DuckDB from PyPI: a venv of the harness's own, made on first use.
fn duckdb_python() -> anyhow::Result<PathBuf> {
    let venv = std::env::temp_dir().join("stackpro-bench-duckdb-venv");
    let python = venv.join("bin/python3");
    let has_duckdb = |p: &Path| {
        Command::new(p)
            .args(["-c", "import duckdb"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has_duckdb(&python) {
        eprintln!("creating {} with duckdb from PyPI", venv.display());
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()?
            .success()
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "duckdb==2.0.0"])
                .status()?
                .success();
        if !ok || !has_duckdb(&python) {
            bail!("could not install duckdb into {}", venv.display());
        }
    }
    Ok(python)
}

/// Runs `benches/duckdb/kanon.py` on the same raw object and prints both timings; false
/// when the engines disagree on the node or the rows published.
fn compare_duckdb(python: &Path, input: &Path, ours: &Outcome) -> anyhow::Result<bool> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();
    let out = Command::new(python)
        .arg(root.join("duckdb/kanon.py"))
        .arg("--input")
        .arg(input)
        .arg("--policy")
        .arg(root.join("../policies/default-v2.json"))
        .args(["--dataset", "contacts"])
        .stderr(Stdio::inherit())
        .output()?;
    let wall = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("duckdb/kanon.py failed ({})", out.status);
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let theirs: serde_json::Value =
        serde_json::from_str(line.trim()).context("duckdb/kanon.py printed no JSON line")?;
    let node = theirs["node"].as_str().unwrap_or_default();
    let rows = theirs["rows_out"].as_u64().unwrap_or_default();
    let same = node == ours.node && rows == ours.records_out;
    let total = theirs["total_s"].as_f64().unwrap_or_default();
    println!(
        "  duckdb          node {node}, {rows} out; load {:.2} s, decision {:.2} s, total {total:.2} s ({wall:.2} s with the interpreter)",
        theirs["load_s"].as_f64().unwrap_or_default(),
        theirs["decide_s"].as_f64().unwrap_or_default(),
    );
    println!(
        "  vs duckdb       stackpro {:.2} s, duckdb {total:.2} s: {:.1}x{}",
        ours.elapsed_s,
        total / ours.elapsed_s.max(1e-9),
        if same {
            ": same node and rows"
        } else {
            ": DIFFERENT from stackpro"
        }
    );
    Ok(same)
}
