//! Throughput harness: generates N `contacts` records (default 1,000,000; env
//! `THROUGHPUT_RECORDS`; people from a pool of `THROUGHPUT_PEOPLE`, default a sixth of
//! the records) as one raw NDJSON object, then times a full release through the
//! worker (read, parse, transform, k-anonymity, Parquet, catalog) and prints records/s,
//! MB/s of raw input and peak memory.
//!
//! `cargo bench -p benches --bench throughput`; `THROUGHPUT_KEEP=1` keeps the raw, curated
//! and state folders afterwards and prints where they are.

use std::sync::Arc;
use std::time::Instant;

use benches::{cpu_seconds, human_bytes, peak_rss_bytes};
use catalog::ConsentSetting;
use pipeline::synth::{GenOptions, RawFormat, generate};
use pipeline::worker::NoProgress;
use pipeline::{Config, Worker};

// The same allocator as the `stackpro` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // RUST_LOG=pipeline=info shows per-phase timings of the release (pass 1, decide, pass 2).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .compact()
        .init();
    // `cargo bench` passes `--bench`; this harness takes no other arguments.
    let records: u64 = std::env::var("THROUGHPUT_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let raw_file = dir
        .path()
        .join("raw/tenant=t-bench/dataset=contacts/source=bench/dt=2026-11-24/part-0000.ndjson");
    std::fs::create_dir_all(
        raw_file
            .parent()
            .ok_or_else(|| anyhow::anyhow!("no parent"))?,
    )?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&raw_file)?);
    // The person pool: `gen`'s default (a sixth of the records, people recur), or
    // `THROUGHPUT_PEOPLE` (as many as the records: nearly every subject once).
    let people: Option<u64> = std::env::var("THROUGHPUT_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok());
    let opts = GenOptions {
        dirty: 0.01,
        tenant: "t-bench".into(),
        people,
        ..GenOptions::new("contacts", records, 42)
    };
    let gen_start = Instant::now();
    let stats = generate(&opts, RawFormat::Ndjson, &mut out)?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    eprintln!(
        "generated {} records ({}) in {:.2?}",
        stats.records,
        human_bytes(stats.bytes),
        gen_start.elapsed()
    );

    // SAFETY-free: the harness is single-threaded here, before the runtime starts.
    let config = Config {
        raw: dir.path().join("raw").display().to_string(),
        curated: dir.path().join("curated").display().to_string(),
        quarantine: dir.path().join("quarantine").display().to_string(),
        state: dir.path().join("state"),
        hash_key_file: Some({
            let key = dir.path().join("key");
            std::fs::write(&key, "benchmark-key-0123456789abcdef")?;
            key
        }),
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let before = peak_rss_bytes();
    let cpu_before = cpu_seconds();
    let (elapsed, summary) = runtime.block_on(async {
        let worker = Worker::open(config).await?;
        worker
            .consent
            .set_consent(&ConsentSetting {
                tenant: "t-bench".into(),
                dataset: "contacts".into(),
                granted: true,
                updated_at: chrono_now(),
                updated_by: "bench".into(),
                revenue_share: false,
            })
            .await?;
        let worker = Arc::new(worker);
        let start = Instant::now();
        let summary = worker.run(&NoProgress).await?;
        anyhow::Ok((start.elapsed(), summary))
    })?;
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|((u1, s1), (u0, s0))| (u1 - u0, s1 - s0));
    let report = summary
        .partitions
        .first()
        .and_then(|p| p.report.clone())
        .ok_or_else(|| anyhow::anyhow!("no release"))?;
    let secs = elapsed.as_secs_f64();
    println!(
        "throughput: contacts, {} records, {} raw NDJSON",
        report.records_in,
        human_bytes(stats.bytes)
    );
    println!(
        "  status          {:?} (node {}, {} out, {} suppressed, {} quarantined)",
        summary.partitions[0].status,
        report.node_label,
        report.records_out,
        report.suppressed,
        report.quarantined
    );
    println!(
        "  curated         {} Parquet in {} file(s)",
        human_bytes(report.files.iter().map(|f| f.bytes).sum()),
        report.files.len()
    );
    println!("  elapsed         {secs:.2} s");
    println!("  records/s       {:.0}", report.records_in as f64 / secs);
    println!("  MB/s (raw)      {:.1}", stats.bytes as f64 / 1e6 / secs);
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
    if std::env::var_os("THROUGHPUT_KEEP").is_some() {
        println!("  kept            {}", dir.keep().display());
    }
    Ok(())
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
