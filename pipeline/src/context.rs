//! What every release of a run shares: the policy, the keyed hasher, the roots and the
//! limits of the configuration. A leaf of the release flow: pass 1 (`transforms`), pass 2
//! (`release`) and the sinks read it, and it reads none of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use catalog::storage::Location;
use policies::{KeyedHasher, Policy};

/// Everything a release needs, shared by all releases of a run.
#[derive(Debug, Clone)]
pub struct ReleaseContext {
    pub policy: Arc<Policy>,
    pub hasher: KeyedHasher,
    pub raw: Location,
    pub curated: Location,
    pub quarantine: Location,
    pub max_line_bytes: usize,
    pub max_rows_per_file: usize,
    /// Bytes of transformed rows kept in memory between the passes before spilling (at
    /// most half of `memory`).
    pub staging_memory_bytes: usize,
    /// What a release may hold in memory.
    pub memory: crate::memory::MemoryBudget,
    /// The field delimiter of CSV objects, per dataset of the policy
    /// ([`Config::csv_delimiter`](crate::Config::csv_delimiter)).
    pub csv_delimiters: BTreeMap<String, u8>,
    /// Called with the number of raw bytes read, for progress bars.
    pub on_bytes: Option<ByteCounter>,
}

impl ReleaseContext {
    /// The field delimiter of `dataset`'s CSV objects (`,` for a dataset the policy does
    /// not name, which no release reads).
    pub fn csv_delimiter(&self, dataset: &str) -> u8 {
        self.csv_delimiters.get(dataset).copied().unwrap_or(b',')
    }
}

/// A callback told how many raw bytes were read, for progress bars.
#[derive(Clone)]
pub struct ByteCounter(pub Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for ByteCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ByteCounter")
    }
}
