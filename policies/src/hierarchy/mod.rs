//! Field transforms and generalization hierarchies.
//!
//! Every transform that keeps a trace of an identifier is a hierarchy of levels: level 0 is
//! the published form when the field is not generalized further (the masked phone, the
//! truncated IP), higher levels are coarser, the top level is `*`. A hierarchy works in two
//! steps so that the k-anonymity engine can reason over distinct values only:
//!
//! 1. [`Hierarchy::level0`] validates and normalizes one raw value (once per record);
//!    an invalid value is an [`InvalidValue`] and its record is quarantined.
//! 2. [`Hierarchy::generalize`] maps a level-0 value to any level (once per distinct value).
//!
//! Null inputs stay null below the top level, and become `*` at the top.

mod spec;
mod values;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use crate::ip::{parse_ip, truncate_ip, truncate_ip_into};
use crate::value::Value;
use rustc_hash::FxHashMap;

pub use self::spec::{HierarchySpec, TimeUnit};
pub use self::values::{mask_phone, truncate_timestamp};
use self::values::{mask_phone_into, parse_zip, push_zip_prefix, remask_phone, zip_prefix};

/// The published form of the top level of every hierarchy.
pub const TOP: &str = "*";

/// A value that cannot be read for its field. The record holding it is quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// Stable reason, such as `invalid ip` or `invalid age`.
    pub reason: String,
}

impl InvalidValue {
    pub(super) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// A generalization table loaded from CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct TableHierarchy {
    /// Number of levels, including level 0 (the value itself).
    pub levels: usize,
    /// Fx, not std's SipHash: looked up once per record, and the values are policy data.
    pub(super) rows: FxHashMap<String, Vec<String>>,
}

impl TableHierarchy {
    /// Parses `value;level1;…` rows. Every row must have the same number of columns (≥ 2)
    /// and values must be unique. Blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Self, String> {
        let table = Self::parse_unchecked(text)?;
        table.check_nesting()?;
        Ok(table)
    }

    /// The rows, without the nesting check (tests build tables the parser refuses).
    pub(crate) fn parse_unchecked(text: &str) -> Result<Self, String> {
        let mut rows = FxHashMap::default();
        let mut levels = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<String> = line.split(';').map(|c| c.trim().to_string()).collect();
            if cols.len() < 2 || cols.iter().any(|c| c.is_empty()) {
                return Err(format!(
                    "line {}: a row needs a value and at least one non-empty level",
                    n + 1
                ));
            }
            match levels {
                None => levels = Some(cols.len()),
                Some(l) if l != cols.len() => {
                    return Err(format!(
                        "line {}: {} columns, but earlier rows have {l}",
                        n + 1,
                        cols.len()
                    ));
                }
                Some(_) => {}
            }
            let value = cols[0].clone();
            if rows.insert(value.clone(), cols).is_some() {
                return Err(format!("line {}: value `{value}` appears twice", n + 1));
            }
        }
        let levels = levels.ok_or_else(|| "the table has no rows".to_string())?;
        Ok(Self { levels, rows })
    }

    fn check_nesting(&self) -> Result<(), String> {
        let (levels, rows) = (self.levels, &self.rows);
        // Each level merges whole groups of the one below. The lattice search assumes that
        // generalizing never suppresses more, and a level that splits a lower group again
        // breaks it: it would prune nodes that fit, and count nodes from classes that are
        // not their parts. (Rows sorted, so the error names the same rows each time.)
        let mut ordered: Vec<&Vec<String>> = rows.values().collect();
        ordered.sort();
        for level in 2..levels {
            let mut above: FxHashMap<&str, &str> = FxHashMap::default();
            for row in &ordered {
                let (group, parent) = (row[level - 1].as_str(), row[level].as_str());
                match above.insert(group, parent) {
                    Some(other) if other != parent => {
                        return Err(format!(
                            "level {} splits `{group}` of level {} into `{other}` and `{parent}`: \
                             each level must merge whole groups of the level below",
                            level,
                            level - 1
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// A compiled hierarchy, ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Hierarchy {
    Phone {
        keep: Vec<usize>,
    },
    Ip {
        v4: Vec<u8>,
        v6: Vec<u8>,
    },
    Zip {
        keep: Vec<usize>,
    },
    Bands {
        min: i64,
        max: i64,
        widths: Vec<i64>,
    },
    Suppress,
    Prefix {
        keep: Vec<usize>,
    },
    Table(Arc<TableHierarchy>),
    Timestamp,
}

impl Hierarchy {
    /// Number of levels, the top (`*`) included.
    pub fn height(&self) -> usize {
        match self {
            Hierarchy::Phone { keep } => keep.len() + 1,
            Hierarchy::Ip { v4, .. } => v4.len() + 1,
            Hierarchy::Zip { keep } => keep.len() + 1,
            Hierarchy::Bands { widths, .. } => widths.len() + 2,
            Hierarchy::Suppress => 2,
            Hierarchy::Prefix { keep } => keep.len() + 2,
            Hierarchy::Table(t) => t.levels,
            Hierarchy::Timestamp => 1,
        }
    }

    /// Validates and normalizes a raw value to level 0. `Ok(None)` for a missing value.
    pub fn level0(&self, raw: &Value<'_>, field: &str) -> Result<Option<String>, InvalidValue> {
        let mut out = String::new();
        Ok(self.level0_into(raw, field, &mut out)?.then_some(out))
    }

    /// [`Hierarchy::level0`] written into `out` (cleared first), so that a caller
    /// transforming many records reuses one buffer. `Ok(false)` for a missing value.
    pub fn level0_into(
        &self,
        raw: &Value<'_>,
        field: &str,
        out: &mut String,
    ) -> Result<bool, InvalidValue> {
        out.clear();
        if matches!(raw, Value::Null) {
            return Ok(false);
        }
        let text = || raw.as_str().map(str::trim);
        match self {
            Hierarchy::Phone { keep } => {
                let s = text().ok_or_else(|| InvalidValue::new("invalid phone"))?;
                if s.is_empty() {
                    return Ok(false);
                }
                mask_phone_into(s, keep[0], out)?;
            }
            Hierarchy::Ip { v4, v6 } => {
                let s = text().ok_or_else(|| InvalidValue::new("invalid ip"))?;
                if s.is_empty() {
                    return Ok(false);
                }
                let ip = parse_ip(s).ok_or_else(|| InvalidValue::new("invalid ip"))?;
                truncate_ip_into(ip, v4[0], v6[0], out);
            }
            Hierarchy::Zip { keep } => {
                let invalid = || InvalidValue::new("invalid zip");
                if raw.is_missing() {
                    return Ok(false);
                }
                match raw {
                    Value::Str(s) => {
                        push_zip_prefix(parse_zip(s.trim()).ok_or_else(invalid)?, keep[0], out);
                    }
                    // An integer ZIP is its five digits, leading zeros restored (rare).
                    Value::Int(i) if (0..100_000).contains(i) => {
                        push_zip_prefix(&format!("{i:05}"), keep[0], out);
                    }
                    _ => return Err(invalid()),
                }
            }
            Hierarchy::Bands { min, max, .. } => {
                if raw.is_missing() {
                    return Ok(false);
                }
                let v = raw
                    .to_i64()
                    .filter(|v| (*min..=*max).contains(v))
                    .ok_or_else(|| InvalidValue::new(format!("invalid {field}")))?;
                out.push_str(itoa::Buffer::new().format(v));
            }
            Hierarchy::Suppress | Hierarchy::Prefix { .. } => match raw {
                _ if raw.is_missing() => return Ok(false),
                // Published as it is at level 0, so it gets the PII check of kept text;
                // but digit runs are what a prefix rule's codes are made of (`100-0001`,
                // `01310-100`, account numbers), so there only emails and IPs count.
                Value::Str(s) => match crate::pii::find_all_pii(s.trim()).into_iter().find(|f| {
                    !(matches!(self, Hierarchy::Prefix { .. })
                        && f.kind == crate::pii::PiiKind::Phone)
                }) {
                    Some(found) => {
                        return Err(InvalidValue::new(format!(
                            "invalid {field}: looks like a raw {}",
                            found.kind.as_str()
                        )));
                    }
                    None => out.push_str(s.trim()),
                },
                Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
                Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                _ => return Err(InvalidValue::new(format!("invalid {field}"))),
            },
            Hierarchy::Table(table) => {
                let s = text().ok_or_else(|| InvalidValue::new(format!("invalid {field}")))?;
                if s.is_empty() {
                    return Ok(false);
                }
                if !table.rows.contains_key(s) {
                    return Err(InvalidValue::new(format!(
                        "invalid {field}: not in hierarchy"
                    )));
                }
                out.push_str(s);
            }
            Hierarchy::Timestamp => {
                let s = text().ok_or_else(|| InvalidValue::new("invalid timestamp"))?;
                if s.is_empty() {
                    return Ok(false);
                }
                let day =
                    truncate_timestamp(s).ok_or_else(|| InvalidValue::new("invalid timestamp"))?;
                let _ = write!(out, "{}", day.format("%Y-%m-%d"));
            }
        }
        Ok(true)
    }

    /// Maps a level-0 value (from [`Hierarchy::level0`]) to `level`. Levels at or above
    /// the top give `*`.
    pub fn generalize(&self, level0: Option<&str>, level: usize) -> Option<String> {
        if matches!(self, Hierarchy::Timestamp) {
            // A truncated timestamp has one level: the day itself.
            return level0.map(str::to_string);
        }
        let top = self.height().saturating_sub(1);
        if level >= top {
            return Some(match self {
                Hierarchy::Table(t) => level0
                    .and_then(|v| t.rows.get(v))
                    .and_then(|row| row.last().cloned())
                    .unwrap_or_else(|| TOP.to_string()),
                _ => TOP.to_string(),
            });
        }
        let v = level0?;
        if level == 0 {
            return Some(v.to_string());
        }
        Some(match self {
            Hierarchy::Phone { keep } => remask_phone(v, keep[level]),
            Hierarchy::Ip { v4, v6 } => match v.parse::<IpAddr>() {
                Ok(ip) => truncate_ip(ip, v4[level], v6[level]),
                Err(_) => TOP.to_string(),
            },
            Hierarchy::Zip { keep } => {
                let digits: String = v.chars().filter(char::is_ascii_digit).collect();
                zip_prefix(&digits, keep[level])
            }
            Hierarchy::Bands { widths, .. } => match v.parse::<i64>() {
                Ok(n) => {
                    let w = widths[level - 1];
                    let lo = n.div_euclid(w) * w;
                    format!("{lo}-{}", lo + w - 1)
                }
                Err(_) => TOP.to_string(),
            },
            Hierarchy::Table(t) => t
                .rows
                .get(v)
                .and_then(|row| row.get(level).cloned())
                .unwrap_or_else(|| TOP.to_string()),
            Hierarchy::Prefix { keep } => {
                let keep = keep[level - 1];
                v.chars()
                    .enumerate()
                    .map(|(i, c)| if i < keep { c } else { '*' })
                    .collect()
            }
            Hierarchy::Suppress | Hierarchy::Timestamp => TOP.to_string(),
        })
    }

    /// [`Hierarchy::generalize`] written into `out` (cleared first), `false` for `None`: a
    /// caller generalizing many distinct values allocates only for the new results.
    pub fn generalize_into(&self, level0: Option<&str>, level: usize, out: &mut String) -> bool {
        out.clear();
        if let (Hierarchy::Ip { v4, v6 }, Some(v)) = (self, level0)
            && level > 0
            && level + 1 < self.height()
        {
            match v.parse::<IpAddr>() {
                Ok(ip) => truncate_ip_into(ip, v4[level], v6[level], out),
                Err(_) => out.push_str(TOP),
            }
            return true;
        }
        match self.generalize(level0, level) {
            Some(g) => {
                out.push_str(&g);
                true
            }
            None => false,
        }
    }

    /// Validates `raw` and returns it at `level`: what the golden vectors describe.
    pub fn apply(
        &self,
        raw: &Value<'_>,
        field: &str,
        level: usize,
    ) -> Result<Option<String>, InvalidValue> {
        let v0 = self.level0(raw, field)?;
        Ok(self.generalize(v0.as_deref(), level))
    }
}

#[cfg(test)]
mod tests {
    use super::values::utc_second_day;
    use super::*;
    use std::borrow::Cow;

    fn s(v: &str) -> Value<'_> {
        Value::Str(Cow::Borrowed(v))
    }

    fn phone() -> Hierarchy {
        Hierarchy::Phone { keep: vec![4, 2] }
    }
    fn ip() -> Hierarchy {
        Hierarchy::Ip {
            v4: vec![24, 16],
            v6: vec![48, 32],
        }
    }

    #[test]
    fn remasking_agrees_with_masking_char_by_char() {
        let naive = |s: &str, keep: usize| {
            let mut to_mask = s
                .chars()
                .filter(char::is_ascii_digit)
                .count()
                .saturating_sub(keep);
            s.chars()
                .map(|c| {
                    if c.is_ascii_digit() && to_mask > 0 {
                        to_mask -= 1;
                        '*'
                    } else {
                        c
                    }
                })
                .collect::<String>()
        };
        // Short, long (past the stack copy) and non-ASCII layouts.
        for s in [
            "+1 (415) 555-0134",
            "4 1 5 5 5 5 0 1 3 4 9 9 9 9 9 9 9 9 9 9 9 9",
            "☎ 415-555-0134",
            "",
            "12",
        ] {
            for keep in [0, 2, 4, 40] {
                assert_eq!(remask_phone(s, keep), naive(s, keep), "{s} keeping {keep}");
            }
        }
    }

    #[test]
    fn ip_edge_forms() {
        let cases: &[(&str, Option<&str>)] = &[
            ("203.0.113.57", Some("203.0.113.0")),
            (" 203.0.113.57 ", Some("203.0.113.0")),
            ("::1", Some("::")),
            ("2001:DB8::1", Some("2001:db8::")),
            ("::ffff:203.0.113.9", Some("203.0.113.0")),
            // 6to4: the site's IPv4 address is bits 16..48, so it is cut as IPv4.
            ("2002:cb00:7139::1", Some("203.0.113.0")),
            ("2002:CB00:7139:0:1::9", Some("203.0.113.0")),
            ("::FFFF:203.0.113.9", Some("203.0.113.0")),
            ("fe80::1%eth0", Some("fe80::")),
            ("fe80::1%", None),
            ("::ffff:010.0.113.9", None),
            ("010.001.002.003", None),
            ("1.2.3", None),
            ("1.2.3.4.5", None),
            ("256.1.1.1", None),
            ("0.0.0.0", Some("0.0.0.0")),
            ("1.2.3.04", None),
            ("203.0.113.57/24", None),
            ("[::1]", None),
            ("", None),
        ];
        for (input, want) in cases {
            let got = ip().apply(&s(input), "ip", 0);
            match want {
                Some(w) => assert_eq!(got, Ok(Some(w.to_string())), "{input}"),
                None if input.is_empty() => assert_eq!(got, Ok(None)),
                None => assert_eq!(
                    got.map_err(|e| e.reason),
                    Err("invalid ip".to_string()),
                    "{input}"
                ),
            }
        }
    }

    #[test]
    fn phone_rejects_letters_and_wrong_lengths() {
        for bad in [
            "n/a",
            "555-01",
            "1234567890123456",
            "+1 415 555 CALL",
            "415*555*0134",
        ] {
            assert!(phone().apply(&s(bad), "phone", 0).is_err(), "{bad}");
        }
        assert_eq!(
            phone()
                .apply(&Value::Int(4155550134), "phone", 0)
                .map_err(|e| e.reason),
            Err("invalid phone".into())
        );
        assert_eq!(
            phone().apply(&s("555-0134"), "phone", 0),
            Ok(Some("***-0134".into()))
        );
    }

    #[test]
    fn a_suppress_only_value_is_published_as_it_is_unless_it_looks_like_pii() {
        let h = Hierarchy::Suppress;
        assert_eq!(h.apply(&s(" f "), "gender", 0), Ok(Some("f".into())));
        assert_eq!(h.apply(&s("f"), "gender", 1), Ok(Some("*".into())));
        for (raw, kind) in [
            ("203.0.113.57", "ip"),
            ("ana@example.com", "email"),
            ("415-555-0134", "phone"),
        ] {
            let got = h.apply(&s(raw), "gender", 0).expect_err(raw);
            assert!(
                got.reason.starts_with("invalid gender: looks like a raw")
                    && !got.reason.contains(raw),
                "{raw} ({kind}): {}",
                got.reason
            );
        }
    }

    #[test]
    fn a_prefix_rule_keeps_leading_characters_level_by_level() {
        let spec: HierarchySpec =
            serde_json::from_str(r#"{"type":"prefix","keep_chars":[4,2]}"#).expect("spec");
        let h = spec
            .compile(&mut |_| Err("no tables".into()))
            .expect("valid");
        assert_eq!(h.height(), 4);
        for (raw, levels) in [
            ("SW1A 1AA", ["SW1A 1AA", "SW1A****", "SW******", "*"]),
            (" 75008 ", ["75008", "7500*", "75***", "*"]),
            ("Zürich", ["Zürich", "Züri**", "Zü****", "*"]),
            ("ab", ["ab", "ab", "ab", "*"]),
        ] {
            for (level, want) in levels.iter().enumerate() {
                assert_eq!(
                    h.apply(&s(raw), "postcode", level),
                    Ok(Some(want.to_string())),
                    "{raw} at {level}"
                );
            }
        }
        assert_eq!(
            h.apply(&Value::Int(75008), "postcode", 2),
            Ok(Some("75***".into()))
        );
        assert_eq!(h.apply(&Value::Null, "postcode", 1), Ok(None));
        assert!(h.apply(&s("ana@example.com"), "postcode", 0).is_err());
        assert!(h.apply(&s("203.0.113.57"), "postcode", 0).is_err());
        for code in ["100-0001", "01310-100", "8320000", "4155550134"] {
            assert_eq!(
                h.apply(&s(code), "postcode", 0),
                Ok(Some(code.to_string())),
                "digits are a code's content"
            );
        }
        for bad in [r#"[]"#, r#"[2,4]"#, r#"[2,0]"#, r#"[3,3]"#] {
            let spec: HierarchySpec =
                serde_json::from_str(&format!(r#"{{"type":"prefix","keep_chars":{bad}}}"#))
                    .expect("spec");
            assert!(
                spec.compile(&mut |_| Err("no tables".into())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn nulls_stay_null_below_the_top() {
        for h in [
            phone(),
            ip(),
            Hierarchy::Suppress,
            Hierarchy::Zip { keep: vec![5, 3] },
        ] {
            let top = h.height() - 1;
            for level in 0..top {
                assert_eq!(h.apply(&Value::Null, "f", level), Ok(None));
            }
            assert_eq!(h.apply(&Value::Null, "f", top), Ok(Some("*".into())));
        }
    }

    #[test]
    fn timestamps_truncate_to_the_utc_day() {
        let day = |t| truncate_timestamp(t).map(|d| d.to_string());
        assert_eq!(day("2026-11-24T15:04:05Z").as_deref(), Some("2026-11-24"));
        assert_eq!(
            day("2026-11-24T23:30:00-05:00").as_deref(),
            Some("2026-11-25")
        );
        assert_eq!(
            day("2026-11-24T15:04:05.123456+00:00").as_deref(),
            Some("2026-11-24")
        );
        assert_eq!(day("2026-11-24 15:04:05"), None);
        assert_eq!(day("yesterday"), None);
    }

    /// The fast path of `truncate_timestamp` answers only where chrono gives the same
    /// day, and answers for every valid timestamp of its form without a leap second.
    #[test]
    fn the_common_utc_form_agrees_with_chrono() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x7157);
        let chrono_day = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc).date_naive())
        };
        let mut answered = 0;
        for _ in 0..200_000 {
            // Digits anywhere in range of their field and somewhat past it: months 00-19,
            // days 00-39 (29 February of every kind of year), hours 00-29, minutes and
            // seconds 00-69; now and then a letter in a digit's place.
            let mut t = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                rng.gen_range(0..10_000),
                rng.gen_range(0..20),
                rng.gen_range(0..40),
                rng.gen_range(0..30),
                rng.gen_range(0..70),
                rng.gen_range(0..70),
            );
            if rng.gen_ratio(1, 50) {
                let at = [0, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18][rng.gen_range(0..12)];
                t.replace_range(at..=at, "x");
            }
            let fast = utc_second_day(t.as_bytes());
            let slow = chrono_day(&t);
            if fast.is_some() {
                answered += 1;
                assert_eq!(fast, slow, "{t}");
            } else {
                let second: u32 = t[17..19].parse().unwrap_or(99);
                assert!(
                    slow.is_none() || second == 60,
                    "{t} left to chrono: {slow:?}"
                );
            }
        }
        assert!(answered > 50_000, "the fast path answered {answered}");
        for (t, day) in [
            ("2024-02-29T23:59:59Z", Some("2024-02-29")),
            ("2023-02-29T00:00:00Z", None),
            ("2000-02-29T12:00:00Z", Some("2000-02-29")),
            ("1900-02-29T12:00:00Z", None),
            ("2026-11-24T24:00:00Z", None),
            ("2026-11-24T15:04:05z", Some("2026-11-24")),
            ("2026-11-24t15:04:05Z", Some("2026-11-24")),
            ("2026-12-31T23:59:60Z", Some("2026-12-31")),
            (" 2026-11-24T15:04:05Z ", Some("2026-11-24")),
        ] {
            assert_eq!(
                truncate_timestamp(t).map(|d| d.to_string()).as_deref(),
                day,
                "{t}"
            );
        }
    }

    #[test]
    fn tables_parse_and_generalize() {
        let t = TableHierarchy::parse("# devices\ndesktop;computer;*\nmobile;handheld;*\n")
            .expect("table");
        let h = Hierarchy::Table(Arc::new(t));
        assert_eq!(h.height(), 3);
        assert_eq!(
            h.apply(&s("mobile"), "device", 1),
            Ok(Some("handheld".into()))
        );
        assert_eq!(h.apply(&s("mobile"), "device", 2), Ok(Some("*".into())));
        assert!(h.apply(&s("toaster"), "device", 0).is_err());
        assert!(TableHierarchy::parse("a;b\nc;d;e").is_err());
        assert!(TableHierarchy::parse("a;b\na;c").is_err());
        assert!(TableHierarchy::parse("").is_err());
        // Level 2 splits level 1's `X` (a and b) into P and Q.
        let split = TableHierarchy::parse("a;X;P\nb;X;Q\nc;Y;P").expect_err("split");
        assert!(split.contains("level 2 splits `X` of level 1"), "{split}");
        assert!(TableHierarchy::parse("a;X;P\nb;X;P\nc;Y;P").is_ok());
    }

    /// The bundled `country` table: every ISO 3166-1 alpha-2 code, under its UN M49
    /// sub-region and region.
    #[test]
    fn the_country_table_covers_iso_3166_under_m49() {
        let text = include_str!("../../hierarchies/country.csv");
        let t = TableHierarchy::parse(text).expect("country table");
        assert_eq!(t.levels, 4);
        assert_eq!(
            t.rows.len(),
            249,
            "officially assigned ISO 3166-1 alpha-2 codes"
        );
        let mut sub_regions = std::collections::BTreeSet::new();
        let mut regions = std::collections::BTreeSet::new();
        for (code, row) in &t.rows {
            assert!(
                code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()),
                "{code}"
            );
            assert_eq!(row[3], TOP, "{code}");
            sub_regions.insert(row[1].as_str());
            regions.insert(row[2].as_str());
        }
        // M49: 17 sub-regions in 5 regions, plus Antarctica, which has neither.
        assert_eq!(sub_regions.len(), 18, "{sub_regions:?}");
        assert_eq!(
            regions.into_iter().collect::<Vec<_>>(),
            [
                "Africa",
                "Americas",
                "Antarctica",
                "Asia",
                "Europe",
                "Oceania"
            ]
        );
        // A sub-region lies in one region only (a misspelt region would split it).
        let mut region_of = std::collections::HashMap::new();
        for row in t.rows.values() {
            let region = region_of.entry(row[1].as_str()).or_insert(row[2].as_str());
            assert_eq!(*region, row[2], "{}", row[1]);
        }

        let h = Hierarchy::Table(Arc::new(t));
        assert_eq!(h.height(), 4);
        for (code, sub_region, region) in [
            ("US", "Northern America", "Americas"),
            ("DE", "Western Europe", "Europe"),
            ("JP", "Eastern Asia", "Asia"),
            ("BR", "Latin America and the Caribbean", "Americas"),
            ("NG", "Sub-Saharan Africa", "Africa"),
            ("AU", "Australia and New Zealand", "Oceania"),
            ("AQ", "Antarctica", "Antarctica"),
            ("BV", "Latin America and the Caribbean", "Americas"),
            ("NR", "Micronesia", "Oceania"),
        ] {
            let v0 = h.level0(&s(code), "country").expect(code);
            assert_eq!(v0.as_deref(), Some(code));
            for (level, want) in [code, sub_region, region, TOP].iter().enumerate() {
                assert_eq!(
                    h.generalize(v0.as_deref(), level).as_deref(),
                    Some(*want),
                    "{code} at {level}"
                );
            }
        }
        assert_eq!(h.level0(&s(" FR "), "country"), Ok(Some("FR".into())));
        for bad in ["XX", "us", "USA", "U"] {
            assert_eq!(
                h.level0(&s(bad), "country").map_err(|e| e.reason),
                Err("invalid country: not in hierarchy".to_string()),
                "{bad} is quarantined"
            );
        }
    }

    #[test]
    fn spec_validation_names_the_field() {
        let mut no_tables = |_: &str| -> Result<String, String> { Err("no".into()) };
        let bad = HierarchySpec::Bands {
            min: 0,
            max: 10,
            widths: vec![5, 7],
        };
        assert_eq!(
            bad.compile(&mut no_tables).map_err(|e| e.0),
            Err("widths".to_string())
        );
        let bad = HierarchySpec::Ip {
            ipv4_prefix: vec![24, 16],
            ipv6_prefix: vec![48],
        };
        assert_eq!(
            bad.compile(&mut no_tables).map_err(|e| e.0),
            Err("ipv6_prefix".to_string())
        );
    }
}
