//! Record ledger harness: builds the ledger of earlier releases a new release loads
//! (default 90 runs of 1,000,000 fingerprints: a million records a day over a 90-day
//! window; env `LEDGER_RUNS`, `LEDGER_PER_RUN`) and prints its build time, memory (heap
//! and peak RSS over the run) and the cost of a probe, for fresh records and for records
//! released before. Ledger files are generated in memory, as `RecordLedger::write` writes
//! them (sorted keyed fingerprints, uniformly random bits).
//!
//! Then the same window through the ledger cache (`pipeline::ledger::LedgerCache`, as a
//! release with the default config loads it): the first load, which copies every run and
//! writes the segment, and `LEDGER_DAYS` (default 12) days after it, each adding its
//! release's run and dropping the oldest from the window, with each load's time, how it
//! loaded (segment plus runs added, or a fold) and its memory.
//!
//! `cargo bench -p benches --bench ledger`

use std::time::Instant;

use benches::{human_bytes, peak_rss_bytes};
use pipeline::ledger::{
    FOLD_AT, LOAD_FOLD_AT, LedgerCache, PriorLedger, PriorLedgerBuilder, ledger_file_bytes,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// SplitMix64: fingerprints as uniform as the keyed SipHash-128 ones.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fingerprint(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let runs = env("LEDGER_RUNS", 90);
    let per_run = env("LEDGER_PER_RUN", 1_000_000);
    let probes = 1_000_000usize;
    let mut rng = SplitMix(42);
    let stride = (runs * per_run / probes).max(1);
    let mut present: Vec<u128> = Vec::with_capacity(probes + runs);
    let mut values: Vec<u128> = Vec::with_capacity(per_run);
    let before = peak_rss_bytes();
    let mut builder = PriorLedgerBuilder::new()?;
    let (mut generate, mut add) = (0.0, 0.0);
    for _ in 0..runs {
        let t = Instant::now();
        values.clear();
        values.extend((0..per_run).map(|_| rng.fingerprint()));
        values.sort_unstable();
        values.dedup();
        present.extend(values.iter().step_by(stride));
        let file = ledger_file_bytes(&values);
        generate += t.elapsed().as_secs_f64();
        let t = Instant::now();
        builder.add_run(&file[..])?;
        add += t.elapsed().as_secs_f64();
    }
    drop(values);
    present.truncate(probes);
    let t = Instant::now();
    let ledger = builder.finish()?;
    let finish = t.elapsed().as_secs_f64();
    let fresh: Vec<u128> = (0..probes).map(|_| rng.fingerprint()).collect();
    println!(
        "ledger: {runs} runs x {per_run} fingerprints ({} in all)",
        ledger.len()
    );
    println!(
        "  build           {:.2} s (reading runs {add:.2} s, filter {finish:.2} s; generating them {generate:.2} s, not counted)",
        add + finish
    );
    println!(
        "  memory          {} heap, {:.2} bytes a fingerprint",
        human_bytes(ledger.heap_bytes() as u64),
        ledger.heap_bytes() as f64 / ledger.len().max(1) as f64
    );
    probe(&ledger, &fresh, &present)?;
    if let (Some(peak), Some(before)) = (peak_rss_bytes(), before) {
        println!(
            "  peak memory     {} (before: {}; the probe lists and one run's buffers included)",
            human_bytes(peak),
            human_bytes(before)
        );
    }
    drop(ledger);
    cached(runs, per_run, &mut rng, &present, &fresh)
}

/// Times a probe of every fresh and every released fingerprint, and checks the answers.
fn probe(ledger: &PriorLedger, fresh: &[u128], present: &[u128]) -> anyhow::Result<()> {
    for (name, fps, want) in [("fresh", fresh, false), ("released", present, true)] {
        let t = Instant::now();
        let mut found = 0usize;
        for &f in fps {
            found += usize::from(ledger.contains(f)?);
        }
        let ns = t.elapsed().as_nanos() as f64 / fps.len() as f64;
        println!(
            "  probe {name:<9} {ns:.0} ns each ({found} of {} found)",
            fps.len()
        );
        anyhow::ensure!(
            found == if want { fps.len() } else { 0 },
            "the ledger answered wrong: {found} of {} {name} probes found",
            fps.len()
        );
    }
    Ok(())
}

/// The window through the ledger cache: a first load, then a day at a time.
fn cached(
    runs: usize,
    per_run: usize,
    rng: &mut SplitMix,
    present: &[u128],
    fresh: &[u128],
) -> anyhow::Result<()> {
    let days = env("LEDGER_DAYS", 12);
    let root = tempfile::tempdir()?;
    let partition = catalog::layout::PartitionKey {
        dataset: "contacts".into(),
        tenant: "t-bench".into(),
        dt: "2026-12-01".into(),
    };
    let cache = LedgerCache::open(root.path(), &partition)?;
    // The same fingerprints as above: regenerated from the same seed.
    let mut again = SplitMix(42);
    let run = |rng: &mut SplitMix| {
        let mut values: Vec<u128> = (0..per_run).map(|_| rng.fingerprint()).collect();
        values.sort_unstable();
        values.dedup();
        ledger_file_bytes(&values)
    };
    let mut window: Vec<String> = Vec::new();
    let t = Instant::now();
    for i in 0..runs {
        let id = format!("r{i:05}");
        cache.put_run(&id, &run(&mut again))?;
        window.push(id);
    }
    let copy = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (ledger, load) = cache.prior(&window, LOAD_FOLD_AT)?;
    println!(
        "cached: the same window through the ledger cache (upkeep folds at {FOLD_AT} runs outside the segment, a load at {LOAD_FOLD_AT})"
    );
    println!(
        "  first load      {:.2} s ({load:?}; copying the runs {copy:.2} s, not counted), {} heap",
        t.elapsed().as_secs_f64(),
        human_bytes(ledger.heap_bytes() as u64)
    );
    probe(&ledger, fresh, present)?;
    drop(ledger);
    // Each day: the oldest run leaves the window, a release loads the ledger (what its
    // pass 1 waits for), then publishes its run, and the upkeep after the publish folds
    // the cache when four runs are outside the segment (off the next release's path).
    let mut times = Vec::new();
    let mut upkeep = Vec::new();
    for day in 0..days {
        window.remove(0);
        let t = Instant::now();
        let (ledger, load) = cache.prior(&window, LOAD_FOLD_AT)?;
        let s = t.elapsed().as_secs_f64();
        times.push(s);
        let (heap, len) = (ledger.heap_bytes() as u64, ledger.len());
        drop(ledger);
        let id = format!("d{day:05}");
        cache.put_run(&id, &run(rng))?;
        window.push(id);
        let t = Instant::now();
        let folded = cache.maintain(&window, FOLD_AT)?;
        let u = t.elapsed().as_secs_f64();
        let after = match folded {
            Some(f) => {
                upkeep.push(u);
                format!("; then upkeep {u:.3} s ({:?})", f.folded)
            }
            None => String::new(),
        };
        println!(
            "  day {:<3}         load {:.3} s ({load:?}), {} heap, {len} fingerprints{after}",
            day + 1,
            s,
            human_bytes(heap),
        );
    }
    let stats = |mut v: Vec<f64>| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        v.sort_by(f64::total_cmp);
        format!(
            "mean {mean:.3} s, median {:.3} s, max {:.3} s over {}",
            v[v.len() / 2],
            v[v.len() - 1],
            v.len()
        )
    };
    if !times.is_empty() {
        println!("  load per day    {} days", stats(times));
    }
    if !upkeep.is_empty() {
        println!("  upkeep folds    {} folds", stats(upkeep));
    }
    if let Some(peak) = peak_rss_bytes() {
        println!("  peak memory     {} (the whole bench)", human_bytes(peak));
    }
    Ok(())
}
