//! End to end through the `stackpro` binary on the embedded default (local folders,
//! SQLite): what an operator does, checked the way a buyer would read the output.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::AsArray;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "aws")]
mod aws_triggers;
mod batching;
mod cli;
mod consent;
mod crash;
mod linkage;
mod marketplace;
mod quarantine;
mod releases;
mod retention;
mod verify;
mod watch;

const KEY: &str = "e2e-test-key-0123456789abcdef";

/// The `stackpro` binary built beside this test (cargo test --workspace builds it).
fn stackpro_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("stackpro{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so the CLI is built",
        bin.display()
    );
    bin
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(stackpro_bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env("STACKPRO_STATE", self.path("state"))
            .env("STACKPRO_RAW", self.path("raw"))
            .env("STACKPRO_CURATED", self.path("curated"))
            .env("STACKPRO_QUARANTINE", self.path("quarantine"))
            .env("STACKPRO_HASH_KEY", KEY)
            .env_remove("STACKPRO_CONFIG")
            .env_remove("STACKPRO_BACKEND")
            .env_remove("STACKPRO_FAULT")
            .env_remove("RUST_LOG");
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run stackpro")
    }
    fn ok(&self, args: &[&str]) -> String {
        stdout_of_success(self.cmd(args), args)
    }
    fn generate(&self, dataset: &str, tenant: &str, records: u64, file: &str, dirty: f64) {
        self.generate_at(dataset, tenant, "2026-11-24", records, file, dirty, 11);
    }
    /// `stackpro gen` into the raw layout under this folder (partition `dt`, source
    /// `test`), dated `dt`; returns the file's path.
    #[allow(clippy::too_many_arguments)]
    fn generate_at(
        &self,
        dataset: &str,
        tenant: &str,
        dt: &str,
        records: u64,
        file: &str,
        dirty: f64,
        seed: u64,
    ) -> PathBuf {
        let out = self.path(&format!(
            "raw/tenant={tenant}/dataset={dataset}/source=test/dt={dt}/{file}"
        ));
        self.ok(&[
            "gen",
            "--dataset",
            dataset,
            "--records",
            &records.to_string(),
            "--tenant",
            tenant,
            "--date",
            dt,
            "--out",
            out.to_str().expect("utf8"),
            "--dirty",
            &dirty.to_string(),
            "--seed",
            &seed.to_string(),
        ]);
        out
    }
    fn grant(&self, tenant: &str, dataset: &str) {
        self.ok(&["consent", "grant", "--tenant", tenant, "--dataset", dataset]);
    }
    fn releases(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["releases", "--json"])).expect("releases json")
    }
    /// `stackpro verify` over the whole curated folder passes.
    fn assert_verified(&self) {
        let verify = self.ok(&["verify", self.path("curated").to_str().expect("utf8")]);
        assert!(verify.contains("OK"), "{verify}");
    }
    /// `stackpro query` of a single count prints exactly `n`.
    fn assert_query_counts(&self, sql: &str, n: u64) {
        assert_eq!(self.query_count(sql), n, "{sql}");
    }
    /// The single number `stackpro query` prints for a one-row, one-column query.
    fn query_count(&self, sql: &str) -> u64 {
        let q = self.ok(&["query", sql]);
        match query_rows(&q).as_slice() {
            [value] => value.parse().unwrap_or_else(|_| panic!("not a count: {q}")),
            _ => panic!("not one row of one column: {q}"),
        }
    }
    /// A reader of the first published file of `dataset`, as a buyer would open it.
    fn first_file_of(&self, dataset: &str) -> ParquetRecordBatchReaderBuilder<File> {
        let file = self
            .parquet_files()
            .into_iter()
            .find(|p| p.to_string_lossy().contains(&format!("dataset={dataset}")))
            .unwrap_or_else(|| panic!("no {dataset} file"));
        ParquetRecordBatchReaderBuilder::try_new(File::open(&file).expect("open")).expect("parquet")
    }
    fn parquet_files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = walk(&self.path("curated"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        out.sort();
        out
    }
}

/// Runs `cmd` (stackpro with `args`), asserts it succeeded and returns its stdout.
fn stdout_of_success(cmd: Command, args: &[&str]) -> String {
    String::from_utf8_lossy(&output_of_success(cmd, args).stdout).into_owned()
}

/// Runs `cmd` (stackpro with `args`), asserts it succeeded and returns what it printed.
fn output_of_success(mut cmd: Command, args: &[&str]) -> Output {
    let out = cmd.output().expect("run stackpro");
    assert!(
        out.status.success(),
        "stackpro {args:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The rows of a table `stackpro query` printed, header excluded, each row's cells as
/// printed between the outer bars.
fn query_rows(printed: &str) -> Vec<String> {
    printed
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(1)
        .map(|l| l.trim_matches('|').trim().to_owned())
        .collect()
}

fn run_json(env: &Env) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["run", "--json"])).expect("run summary json")
}

/// Each partition's (tenant, status) in a run summary, sorted.
fn tenant_statuses(summary: &serde_json::Value) -> Vec<(String, String)> {
    let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let mut seen: Vec<(String, String)> = summary["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| (field(&p["partition"]["tenant"]), field(&p["status"])))
        .collect();
    seen.sort();
    seen
}

fn statuses(summary: &serde_json::Value) -> Vec<String> {
    summary["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["status"].as_str().expect("status").to_string())
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Writes `batch` as a Parquet file with these key-value metadata, as another writer might.
fn write_parquet(path: &Path, batch: &arrow::record_batch::RecordBatch, metadata: &[(&str, &str)]) {
    use parquet::file::metadata::KeyValue;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(
            metadata
                .iter()
                .map(|(k, v)| KeyValue::new(k.to_string(), v.to_string()))
                .collect(),
        ))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        File::create(path).expect("create"),
        batch.schema(),
        Some(props),
    )
    .expect("writer");
    w.write(batch).expect("write");
    w.close().expect("close");
}
