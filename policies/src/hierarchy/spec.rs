//! Hierarchies as a policy writes them (serde), checked and built into the runtime
//! [`Hierarchy`](super::Hierarchy).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Hierarchy, TableHierarchy};

/// A hierarchy as written in a policy document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HierarchySpec {
    /// Phone masking: every digit but the last `keep_last_digits[level]` becomes `*`,
    /// layout kept. Valid phones have 7 to 15 digits and no letters.
    Phone { keep_last_digits: Vec<u8> },
    /// IP truncation to a network prefix per level; IPv4-mapped IPv6 is treated as IPv4.
    Ip {
        ipv4_prefix: Vec<u8>,
        ipv6_prefix: Vec<u8>,
    },
    /// US ZIP codes (`94110` or `94110-1234`): keep the first `keep_digits[level]` digits.
    Zip { keep_digits: Vec<u8> },
    /// Integers in `min..=max`: exact at level 0, then bands aligned to multiples of each width.
    Bands {
        min: i64,
        max: i64,
        widths: Vec<u32>,
    },
    /// Value at level 0, `*` above.
    Suppress,
    /// Any code whose leading characters are the coarser grouping (postal codes of any
    /// country, SKUs, account numbers): the value at level 0, then at level `l` its first
    /// `keep_chars[l-1]` characters with a `*` for each one after, then `*`.
    Prefix { keep_chars: Vec<u16> },
    /// An explicit table, one row per value: `value;level1;level2;…` (ARX's format), in a
    /// CSV file beside the policy.
    Table { file: String },
    /// RFC 3339 timestamps truncated to the UTC day (published as a date, never a QI).
    Timestamp { to: TimeUnit },
}

/// The unit a timestamp is truncated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    Day,
}

impl HierarchySpec {
    /// Validates the spec and compiles it; `load_table` reads a table file by its policy-relative
    /// name. Errors are `(field path suffix, message)`.
    pub fn compile(
        &self,
        load_table: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<Hierarchy, (String, String)> {
        fn err<T>(path: &str, msg: impl Into<String>) -> Result<T, (String, String)> {
            Err((path.to_string(), msg.into()))
        }
        fn strictly_decreasing(v: &[u8]) -> bool {
            v.windows(2).all(|w| w[0] > w[1])
        }
        match self {
            HierarchySpec::Phone { keep_last_digits } => {
                if keep_last_digits.is_empty()
                    || !strictly_decreasing(keep_last_digits)
                    || keep_last_digits[0] > 4
                {
                    return err(
                        "keep_last_digits",
                        "must be a non-empty, strictly decreasing list of digit counts, at most 4",
                    );
                }
                Ok(Hierarchy::Phone {
                    keep: keep_last_digits.iter().map(|&d| usize::from(d)).collect(),
                })
            }
            HierarchySpec::Ip {
                ipv4_prefix,
                ipv6_prefix,
            } => {
                if ipv4_prefix.is_empty()
                    || !strictly_decreasing(ipv4_prefix)
                    || ipv4_prefix[0] > 24
                {
                    return err(
                        "ipv4_prefix",
                        "must be a non-empty, strictly decreasing list of prefix lengths, at most 24",
                    );
                }
                if ipv6_prefix.len() != ipv4_prefix.len() {
                    return err("ipv6_prefix", "must have as many levels as ipv4_prefix");
                }
                if !ipv6_prefix.windows(2).all(|w| w[0] >= w[1]) || ipv6_prefix[0] > 64 {
                    return err(
                        "ipv6_prefix",
                        "must be a non-increasing list of prefix lengths, at most 64",
                    );
                }
                Ok(Hierarchy::Ip {
                    v4: ipv4_prefix.clone(),
                    v6: ipv6_prefix.clone(),
                })
            }
            HierarchySpec::Zip { keep_digits } => {
                if keep_digits.is_empty() || !strictly_decreasing(keep_digits) || keep_digits[0] > 5
                {
                    return err(
                        "keep_digits",
                        "must be a non-empty, strictly decreasing list, at most 5",
                    );
                }
                Ok(Hierarchy::Zip {
                    keep: keep_digits.iter().map(|&d| usize::from(d)).collect(),
                })
            }
            HierarchySpec::Bands { min, max, widths } => {
                if min > max {
                    return err("min", "must not exceed max");
                }
                if widths.is_empty()
                    || widths[0] < 2
                    || !widths.windows(2).all(|w| w[1] > w[0] && w[1] % w[0] == 0)
                {
                    return err(
                        "widths",
                        "must be increasing band widths (at least 2), each a multiple of the one before, so bands nest",
                    );
                }
                Ok(Hierarchy::Bands {
                    min: *min,
                    max: *max,
                    widths: widths.iter().map(|&w| i64::from(w)).collect(),
                })
            }
            HierarchySpec::Suppress => Ok(Hierarchy::Suppress),
            HierarchySpec::Prefix { keep_chars } => {
                if keep_chars.is_empty()
                    || !keep_chars.windows(2).all(|w| w[0] > w[1])
                    || keep_chars.last() == Some(&0)
                {
                    return err(
                        "keep_chars",
                        "must be a non-empty, strictly decreasing list of character counts, at least 1",
                    );
                }
                Ok(Hierarchy::Prefix {
                    keep: keep_chars.iter().map(|&c| usize::from(c)).collect(),
                })
            }
            HierarchySpec::Table { file } => {
                let text = load_table(file).map_err(|e| ("file".to_string(), e))?;
                let table = TableHierarchy::parse(&text)
                    .map_err(|e| ("file".to_string(), format!("{file}: {e}")))?;
                Ok(Hierarchy::Table(Arc::new(table)))
            }
            HierarchySpec::Timestamp { to: TimeUnit::Day } => Ok(Hierarchy::Timestamp),
        }
    }
}
