//! Times the lattice decision alone on UCI Adult (ARX's hierarchies, k=20, 5%), phase by
//! phase: `cargo run --release -p policies --example decide_adult [-- RUNS]`. The
//! throughput harness measures the whole release; this isolates the search.

use std::path::Path;
use std::time::Instant;

use policies::Policy;
use policies::kanon::QiHistogram;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/data/adult");
    let policy = Policy::load(&data.join("policy.json")).expect("adult policy");
    let rules = policy.dataset("adult").expect("adult dataset");
    let text = std::fs::read_to_string(data.join("adult.csv")).expect("adult.csv");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(';')
        .map(|c| c.replace('-', "_"))
        .collect();
    let mut h = QiHistogram::new(rules);
    let columns: Vec<usize> = rules
        .qi_rules()
        .map(|r| &r.field)
        .map(|n| {
            header
                .iter()
                .position(|c| *c == n.replace('-', "_"))
                .expect("a QI column")
        })
        .collect();
    for line in lines {
        let cells: Vec<&str> = line.split(';').collect();
        let qi: Vec<Option<&str>> = columns.iter().map(|&c| Some(cells[c])).collect();
        h.add(&qi, None).expect("add");
    }
    let (k, max_suppression) = (policy.k, policy.max_suppression);
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let d = h.decide(k, max_suppression).expect("decide");
        times.push(start.elapsed());
        last = Some(d);
    }
    let d = last.expect("at least one run");
    times.sort();
    println!(
        "{} records, {} base classes: node {:?}, {} suppressed, {} nodes evaluated",
        h.records(),
        h.base_classes(),
        d.node,
        d.suppressed_records,
        d.nodes_evaluated
    );
    println!(
        "decide over {runs} runs: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        times[0].as_secs_f64() * 1e3,
        times[runs / 2].as_secs_f64() * 1e3,
        times[runs - 1].as_secs_f64() * 1e3
    );
    let phases: Vec<String> = d
        .phases
        .iter()
        .map(|(name, t)| format!("{name}={:.1}ms", t.as_secs_f64() * 1e3))
        .collect();
    println!("last run's phases: {}", phases.join(" "));
}
