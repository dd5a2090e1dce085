//! The memory a release may hold, and the check that stops a release past it.
//!
//! A release keeps its quasi-identifier histogram, its record ledger and (up to
//! `staging_memory_bytes`) its staged rows in memory, and the decision allocates per base
//! class on top (README, *How memory grows*). Past what the machine or the container
//! allows, the kernel kills the process: the operator finds a dead worker, a trigger that
//! retries the same batch, and no reason. So a release adds up what it holds after every
//! batch of pass 1, and what the decision will need before it starts, and stops past its
//! budget with the figures that made it grow. Nothing is published and the raw objects
//! stay pending, as after any failed release.
//!
//! The figures come from the structures' capacities (constant time per check), not from
//! the process's resident size: the same input and configuration fail or pass alike on
//! every run, whatever else the process holds.

use crate::{Error, Result};

/// Share of the process's memory limit a release may hold by default: the rest is the
/// allocator's slack, the read and write buffers, and what the estimates leave out.
const DEFAULT_SHARE: (u64, u64) = (3, 4);

/// What a release may hold in memory, and where that figure came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryBudget {
    bytes: u64,
    origin: String,
}

/// What a release holds at one of its checks.
#[derive(Debug, Clone, Copy)]
pub struct MemoryUse {
    /// Bytes held (or about to be allocated).
    pub bytes: usize,
    pub records: u64,
    pub base_classes: usize,
    pub subjects: u64,
}

impl MemoryBudget {
    /// `configured` bytes (`release_memory_bytes`), else three quarters of the memory the
    /// process may use ([`process_memory_limit`]), else no limit.
    pub fn resolve(configured: Option<u64>) -> Self {
        if let Some(bytes) = configured {
            return Self {
                bytes,
                origin: "release_memory_bytes".into(),
            };
        }
        match process_memory_limit() {
            Some((limit, source)) => Self {
                bytes: limit / DEFAULT_SHARE.1 * DEFAULT_SHARE.0,
                origin: format!(
                    "three quarters of the {} this process may use ({source}); set \
                     release_memory_bytes to change it",
                    mib(limit)
                ),
            },
            None => Self {
                bytes: u64::MAX,
                origin: "no memory limit found".into(),
            },
        }
    }

    /// A budget of exactly `bytes` (tests, benchmarks).
    pub fn of(bytes: u64) -> Self {
        Self::resolve(Some(bytes))
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Where the figure came from, for logs and errors.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The staged rows' share: at most half the budget, so that the histogram, the
    /// ledger and the decision keep the other half.
    pub fn staging_bytes(&self, configured: usize) -> usize {
        usize::try_from(self.bytes / 2).map_or(configured, |half| configured.min(half))
    }

    /// Fails with [`Error::MemoryBudget`] when `used` passes the budget; `stage` says
    /// what was being done (`pass 1`, `the decision`).
    pub fn check(&self, stage: &str, used: MemoryUse) -> Result<()> {
        if used.bytes as u64 <= self.bytes {
            return Ok(());
        }
        Err(Error::MemoryBudget(format!(
            "{stage} needs about {} ({} bytes) after {} records ({} base classes, {} \
             distinct subjects), past the release's memory budget of {} ({} bytes, {}). \
             Nothing was published \
             and the raw objects stay pending: give the release more memory, or release the \
             partition's objects in smaller batches (`release = \"object\"` for the dataset)",
            mib(used.bytes as u64),
            used.bytes,
            used.records,
            used.base_classes,
            used.subjects,
            mib(self.bytes),
            self.bytes,
            self.origin
        )))
    }
}

/// The process's peak resident memory so far (`VmHWM`), where the system says (Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// [`peak_rss_bytes`] in MiB, for log fields (0 where unknown).
pub fn peak_rss_mib() -> u64 {
    peak_rss_bytes().unwrap_or(0) >> 20
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// The memory this process may use and where the figure came from: the tightest of its
/// cgroup's `memory.max` (v2, this cgroup and every parent) or `memory.limit_in_bytes`
/// (v1), and the machine's `MemTotal`. `None` where none can be read (not Linux).
pub fn process_memory_limit() -> Option<(u64, &'static str)> {
    let mut found: Vec<(u64, &'static str)> = Vec::new();
    if let Some(total) = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .as_deref()
        .and_then(meminfo_total)
    {
        found.push((total, "MemTotal"));
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    if let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) {
        // This cgroup and its parents: a limit anywhere above applies too.
        let mut dir = std::path::PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'));
        loop {
            if let Some(limit) = std::fs::read_to_string(dir.join("memory.max"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
            {
                found.push((limit, "its cgroup's memory.max"));
            }
            if dir == std::path::Path::new("/sys/fs/cgroup") || !dir.pop() {
                break;
            }
        }
    }
    if let Some(limit) = std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        // v1 writes a huge number for "no limit"; MemTotal is smaller then and wins.
        found.push((limit, "its cgroup's memory.limit_in_bytes"));
    }
    found.into_iter().min_by_key(|&(bytes, _)| bytes)
}

/// `MemTotal` of a `/proc/meminfo`, in bytes.
fn meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_gives_bytes() {
        let text = "MemTotal:       24591408 kB\nMemFree:        23000000 kB\n";
        assert_eq!(meminfo_total(text), Some(24_591_408 * 1024));
        assert_eq!(meminfo_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn the_default_is_three_quarters_of_a_limit_that_this_machine_has() {
        let budget = MemoryBudget::resolve(None);
        if cfg!(target_os = "linux") {
            let (limit, _) = process_memory_limit().expect("Linux has MemTotal");
            assert_eq!(budget.bytes(), limit / 4 * 3);
            assert!(
                budget.origin().contains("three quarters"),
                "{}",
                budget.origin()
            );
        }
        assert_eq!(MemoryBudget::of(1000).bytes(), 1000);
    }

    #[test]
    fn staged_rows_get_at_most_half() {
        let budget = MemoryBudget::of(100 << 20);
        assert_eq!(budget.staging_bytes(512 << 20), 50 << 20);
        assert_eq!(budget.staging_bytes(10 << 20), 10 << 20);
    }

    #[test]
    fn past_the_budget_the_error_names_the_figures_and_the_way_out() {
        let budget = MemoryBudget::of(64 << 20);
        let used = MemoryUse {
            bytes: 64 << 20,
            records: 1_000,
            base_classes: 10,
            subjects: 900,
        };
        budget
            .check("pass 1", used)
            .expect("at the budget is within it");
        let err = budget
            .check(
                "pass 1",
                MemoryUse {
                    bytes: (64 << 20) + 1,
                    ..used
                },
            )
            .expect_err("past it");
        let text = err.to_string();
        for part in [
            "pass 1 needs about 64.0 MiB (67108865 bytes) after 1000 records (10 base classes, 900 distinct subjects)",
            "memory budget of 64.0 MiB (67108864 bytes, release_memory_bytes)",
            "raw objects stay pending",
        ] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!err.is_retryable());
    }
}
