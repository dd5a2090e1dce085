//! Helpers shared by the benchmarks.

pub use pipeline::memory::peak_rss_bytes;

/// Human-readable bytes.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// CPU time this process has used so far, user and system, in seconds, where /proc
/// exposes it: how much work a run took, beside how long. On this project's shared machine
/// it swings with the wall time (4.3 to 5.9 s for the same build), so it is quoted beside
/// records/s, not instead of them.
pub fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces, so fields are counted after its `)`.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    // utime and stime, in USER_HZ ticks: 100 per second on Linux whatever the kernel's
    // own tick rate (see proc(5)).
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user / 100.0, system / 100.0))
}
