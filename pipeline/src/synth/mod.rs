//! Realistic synthetic raw data for the three datasets (`contacts`,
//! `web_events`, `orders`), used by `stackpro gen`, `stackpro demo` and the
//! benchmarks.
//!
//! Guarantees:
//! - **Deterministic**: the same [`GenOptions`], format and crate version give
//!   byte-identical output on every platform (the RNG is `StdRng` seeded from
//!   `seed`; no floating-point transcendental functions are used). The record
//!   stream is seeded from `seed`, dataset, tenant and date, so those never
//!   share event ids; the person pool from `seed` alone, so the same people
//!   appear in every dataset, tenant and day generated with one seed.
//! - **Shape of a clean record**: exactly the fields listed in [`fields`], with
//!   JSON types as in DESIGN.md (`age`, `lead_score`, `duration_ms` integers,
//!   `amount` a number with two decimals, everything else strings). Every
//!   timestamp is RFC 3339 and falls on `date` in UTC, though some carry a
//!   `-05:00`, `+02:00` or `+05:30` offset (so the local date may differ).
//!   Free text that the policy may keep (`message`, `interest`, `source`,
//!   `page`, `referrer`, `user_agent`) never contains an email, phone or IP.
//! - **People recur**: records draw from a pool of `people` persons (default
//!   `max(records / 6, 50)`) with a skew, so some people submit many times. A
//!   person has a stable email (shown in varied case, sometimes padded with
//!   spaces: it normalizes to the same subject), name, phone, zip, age, gender,
//!   country, device and home IP, and a stable `visitor_id`. Zips follow a
//!   Zipf-like law over 60 US zips in 12 three-digit prefixes (5% as ZIP+4);
//!   home IPs come from a handful of /16 and /24 networks (the number scales
//!   with the pool, aiming at ~40 persons per /24) so that generalizing the ip
//!   quasi-identifier can reach k=20 distinct people; ~10% are IPv6 in a few
//!   /48s of three /32s, some IPv4-mapped (`::ffff:a.b.c.d`), a few link-local
//!   with a zone id.
//! - **Dirty records**: each record is independently replaced by a bad one with
//!   probability `dirty` (the good record is still drawn, so the clean records
//!   of a dirty run equal those of a clean run at the same positions). Bad
//!   records cycle through the kinds that the dataset and format can express:
//!   not JSON at all (CSV: a row with the wrong number of fields), a wrong
//!   type, a missing subject, an unparseable IP, an invalid phone, an invalid
//!   zip, invalid UTF-8 (NDJSON only) and an email/phone planted in `message`
//!   and `interest`. Each bad record carries exactly one defect. Lines are
//!   never oversized. Kinds per dataset (NDJSON; CSV drops invalid UTF-8 and
//!   uses a ragged row instead of broken JSON):
//!
//!   | dataset | wrong type | missing subject | other |
//!   |---|---|---|---|
//!   | contacts | `age`:`"thirty"` / `lead_score`:`"high"` | `email` | bad ip, phone `n/a`, zip `SW1A 1AA` / `9411`, PII in text |
//!   | web_events | `duration_ms`:`"long"` | `visitor_id` | bad ip |
//!   | orders | `amount`:`"lots"` | `customer_email` | bad zip |
//!
//! Output is written through one reused buffer; a clean record costs no heap
//! allocation (only the person pool is allocated up front). CSV `message`
//! values may hold a quoted line break, so count CSV records with a CSV reader,
//! not by lines.
//!
//! `gen` is a reserved word in edition 2024: the module is declared as
//! `pub mod r#gen;` and used as `pipeline::r#gen::generate`.

mod clock;
mod datasets;
mod encode;
mod generator;
mod people;
mod vocab;

use std::io::{self, Write};

use self::clock::Clock;
use self::datasets::{Dataset, dirt_kinds};
use self::generator::Generator;
use self::people::Pool;
use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Raw object encodings a producer may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFormat {
    /// One JSON object per line.
    Ndjson,
    /// RFC 4180 CSV with a header row, comma-delimited, `\n` line ends.
    Csv,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// `"contacts"`, `"web_events"` or `"orders"` (see [`DATASETS`]).
    pub dataset: String,
    /// Number of records (lines; CSV adds a header row).
    pub records: u64,
    /// RNG seed; the output is a pure function of the options.
    pub seed: u64,
    /// Fraction (0..=1) of deliberately bad records.
    pub dirty: f64,
    /// Written verbatim into `tenant_id`, e.g. `"t-0042"`.
    pub tenant: String,
    /// The UTC day every timestamp falls on.
    pub date: NaiveDate,
    /// Size of the person pool; default from the profile.
    pub people: Option<u64>,
    /// How people and their quasi-identifiers recur (see [`Profile`]).
    pub profile: Profile,
}

/// How much the quasi-identifiers of the records repeat: the shape that decides how many
/// base classes a release has, and so what the lattice search costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Profile {
    /// People recur (a pool of `records / 6`, skewed: some submit many times) from home
    /// networks of about 40 people per /24: about 164,000 base classes per million records.
    #[default]
    Recurring,
    /// Traffic as a busy site sees it: a fresh IP per record drawn from the whole public
    /// address space (so nearly every /24 is seen once), a phone per person, people drawn
    /// uniformly from a pool as large as the records (about 1.6 records per distinct
    /// person): base classes ≈ records.
    NearUnique,
}

impl Profile {
    /// The names `stackpro gen --profile` takes.
    pub const NAMES: [&'static str; 2] = ["recurring", "near-unique"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "recurring" => Some(Self::Recurring),
            "near-unique" => Some(Self::NearUnique),
            _ => None,
        }
    }

    /// The person pool when none is given.
    pub fn default_people(self, records: u64) -> u64 {
        match self {
            Self::Recurring => (records / 6).max(50),
            Self::NearUnique => records.max(50),
        }
    }
}

impl GenOptions {
    /// Clean records for tenant `t-0042` on 2026-11-24 with the default pool.
    pub fn new(dataset: &str, records: u64, seed: u64) -> Self {
        GenOptions {
            dataset: dataset.to_string(),
            records,
            seed,
            dirty: 0.0,
            tenant: "t-0042".to_string(),
            date: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap_or_default(),
            people: None,
            profile: Profile::Recurring,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Records written (clean and dirty; the CSV header is not a record).
    pub records: u64,
    /// How many of them are deliberately bad.
    pub dirty: u64,
    /// Bytes written to the output.
    pub bytes: u64,
}

/// The datasets [`generate`] knows.
pub const DATASETS: [&str; 3] = ["contacts", "web_events", "orders"];

pub(super) const CONTACTS_FIELDS: &[&str] = &[
    "event_id",
    "tenant_id",
    "submitted_at",
    "name",
    "email",
    "phone",
    "ip",
    "user_agent",
    "zip",
    "age",
    "gender",
    "country",
    "source",
    "interest",
    "message",
    "lead_score",
];
pub(super) const WEB_EVENTS_FIELDS: &[&str] = &[
    "event_id",
    "tenant_id",
    "occurred_at",
    "visitor_id",
    "ip",
    "user_agent",
    "page",
    "referrer",
    "country",
    "device",
    "duration_ms",
];
pub(super) const ORDERS_FIELDS: &[&str] = &[
    "order_id",
    "tenant_id",
    "ordered_at",
    "customer_email",
    "amount",
    "currency",
    "zip",
    "product_category",
];

/// The field names of a clean record of `dataset`, in output (and CSV header)
/// order, or `None` for an unknown dataset.
pub fn fields(dataset: &str) -> Option<&'static [&'static str]> {
    Dataset::parse(dataset).map(Dataset::fields)
}

/// Writes `opts.records` records of `opts.dataset` to `out` in `format`.
///
/// Errors: `InvalidInput` for an unknown dataset, a `dirty` fraction outside
/// 0..=1, an empty person pool or a date without neighbours; otherwise only
/// the errors of `out`.
pub fn generate(opts: &GenOptions, format: RawFormat, out: &mut dyn Write) -> io::Result<GenStats> {
    let dataset = Dataset::parse(&opts.dataset).ok_or_else(|| {
        invalid(format!(
            "unknown dataset {:?} (expected one of {})",
            opts.dataset,
            DATASETS.join(", ")
        ))
    })?;
    if !(opts.dirty.is_finite() && (0.0..=1.0).contains(&opts.dirty)) {
        return Err(invalid(format!(
            "dirty fraction must be within 0..=1, got {}",
            opts.dirty
        )));
    }
    let people = opts
        .people
        .unwrap_or(opts.profile.default_people(opts.records));
    if people == 0 {
        return Err(invalid("the person pool must not be empty".to_string()));
    }
    let people =
        usize::try_from(people).map_err(|_| invalid(format!("person pool too large: {people}")))?;
    let clock = Clock::new(opts.date)?;

    let mut g = Generator {
        dataset,
        csv: format == RawFormat::Csv,
        tenant: opts.tenant.clone(),
        clock,
        pool: Pool::new(opts.seed, people, opts.profile),
        profile: opts.profile,
        ip_buf: String::with_capacity(48),
        // The record stream also depends on what is generated, so two
        // datasets, days or tenants never share event ids; the person pool
        // depends on the seed alone, so people recur across all of them.
        rng: StdRng::seed_from_u64(
            opts.seed
                ^ fnv1a(&[
                    opts.dataset.as_bytes(),
                    opts.tenant.as_bytes(),
                    opts.date.to_string().as_bytes(),
                ]),
        ),
        scratch: String::with_capacity(256),
        kinds: dirt_kinds(dataset, format),
        dirt_seen: 0,
    };

    let mut sink = Sink {
        out,
        buf: Vec::with_capacity(FLUSH_AT + 4096),
        bytes: 0,
    };
    if g.csv {
        for (i, name) in dataset.fields().iter().enumerate() {
            if i > 0 {
                sink.buf.push(b',');
            }
            sink.buf.extend_from_slice(name.as_bytes());
        }
        sink.buf.push(b'\n');
    }
    let mut stats = GenStats::default();
    for _ in 0..opts.records {
        // Always drawn, so dirtiness does not shift the clean records.
        let roll: f64 = g.rng.r#gen();
        let dirt = if roll < opts.dirty && !g.kinds.is_empty() {
            let kind = g.kinds[(g.dirt_seen % g.kinds.len() as u64) as usize];
            stats.dirty += 1;
            Some((kind, g.dirt_seen / g.kinds.len() as u64))
        } else {
            None
        };
        g.record(dirt, &mut sink.buf);
        if dirt.is_some() {
            g.dirt_seen += 1;
        }
        stats.records += 1;
        if sink.buf.len() >= FLUSH_AT {
            sink.flush()?;
        }
    }
    sink.flush()?;
    sink.out.flush()?;
    stats.bytes = sink.bytes;
    Ok(stats)
}

/// FNV-1a over the parts (with a separator), for seed derivation.
pub(super) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

pub(super) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

pub(super) const FLUSH_AT: usize = 128 * 1024;

pub(super) struct Sink<'a> {
    pub(super) out: &'a mut dyn Write,
    pub(super) buf: Vec<u8>,
    pub(super) bytes: u64,
}

impl Sink<'_> {
    pub(super) fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.bytes += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::encode::{push_csv, push_json_str};
    use super::people::{BOT_VISITORS, Pool};

    use super::*;
    use policies::pii::PiiKind;
    use std::collections::HashSet;

    fn opts(dataset: &str, records: u64, seed: u64, dirty: f64) -> GenOptions {
        GenOptions {
            dirty,
            ..GenOptions::new(dataset, records, seed)
        }
    }

    fn run(o: &GenOptions, f: RawFormat) -> (Vec<u8>, GenStats) {
        let mut out = Vec::new();
        let stats = generate(o, f, &mut out).expect("generate");
        (out, stats)
    }

    fn lines(bytes: &[u8]) -> Vec<&[u8]> {
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        for ds in DATASETS {
            for f in [RawFormat::Ndjson, RawFormat::Csv] {
                let o = opts(ds, 2_000, 7, 0.1);
                let (a, sa) = run(&o, f);
                let (b, sb) = run(&o, f);
                assert_eq!(a, b, "{ds} {f:?}");
                assert_eq!(sa, sb);
                assert_eq!(sa.bytes, a.len() as u64);
                let (c, _) = run(&opts(ds, 2_000, 8, 0.1), f);
                assert_ne!(a, c, "{ds} {f:?}");
            }
        }
    }

    #[test]
    fn clean_ndjson_lines_have_the_documented_fields_and_types() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        for ds in DATASETS {
            let (out, stats) = run(&opts(ds, 3_000, 42, 0.0), RawFormat::Ndjson);
            assert_eq!(stats.records, 3_000);
            assert_eq!(stats.dirty, 0);
            let text = std::str::from_utf8(&out).expect("clean output is UTF-8");
            let mut offsets = HashSet::new();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect(line);
                let obj = v.as_object().expect("object");
                let names: Vec<&str> = obj.keys().map(String::as_str).collect();
                let mut expected = fields(ds).expect("known").to_vec();
                expected.sort_unstable();
                let mut names_sorted = names.clone();
                names_sorted.sort_unstable();
                assert_eq!(names_sorted, expected, "{line}");
                let ts_field = ["submitted_at", "occurred_at", "ordered_at"]
                    .into_iter()
                    .find(|f| obj.contains_key(*f))
                    .expect("timestamp field");
                let ts_text = obj[ts_field].as_str().expect("ts string");
                let ts = chrono::DateTime::parse_from_rfc3339(ts_text).expect(ts_text);
                assert_eq!(ts.naive_utc().date(), date, "{ts_text}");
                offsets.insert(ts.offset().local_minus_utc());
                assert_eq!(obj["tenant_id"], "t-0042");
                match ds {
                    "contacts" => {
                        let age = obj["age"].as_u64().expect("age int");
                        assert!((18..=80).contains(&age));
                        assert!(obj["lead_score"].as_u64().expect("int") <= 100);
                        assert!(["F", "M", "X"].contains(&obj["gender"].as_str().expect("g")));
                        assert!(obj["email"].as_str().expect("email").contains('@'));
                        let id = obj["event_id"].as_str().expect("id");
                        assert_eq!(id.len(), 36);
                        assert_eq!(&id[14..15], "4");
                        for f in ["message", "interest", "source", "user_agent"] {
                            let s = obj[f].as_str().expect(f);
                            assert_eq!(policies::pii::find_pii(s), None, "{f}: {s}");
                        }
                    }
                    "web_events" => {
                        let vid = obj["visitor_id"].as_str().expect("vid");
                        assert!(vid.starts_with("v-") && vid.len() == 18, "{vid}");
                        assert!(obj["duration_ms"].is_u64());
                        let dev = obj["device"].as_str().expect("device");
                        assert!(["desktop", "mobile", "tablet", "bot"].contains(&dev));
                        for f in ["page", "referrer", "user_agent", "visitor_id", "event_id"] {
                            let s = obj[f].as_str().expect(f);
                            assert_eq!(policies::pii::find_pii(s), None, "{f}: {s}");
                        }
                    }
                    _ => {
                        let id = obj["order_id"].as_str().expect("order id");
                        assert!(id.starts_with("ord_") && id.len() == 16, "{id}");
                        assert!(id[4..].bytes().any(|b| b.is_ascii_lowercase()));
                        assert_eq!(policies::pii::find_pii(id), None, "{id}");
                        assert!(obj["amount"].is_f64());
                        let amount = line.split("\"amount\":").nth(1).expect("amount");
                        let amount = amount.split(',').next().expect("amount");
                        assert_eq!(amount.split('.').nth(1).map(str::len), Some(2), "{amount}");
                        assert!(
                            ["USD", "EUR", "GBP"].contains(&obj["currency"].as_str().expect("c"))
                        );
                    }
                }
            }
            assert!(
                offsets.contains(&0) && offsets.len() >= 2,
                "{ds}: {offsets:?}"
            );
        }
    }

    #[test]
    fn dirty_fraction_is_honoured_and_every_kind_appears() {
        for ds in DATASETS {
            for f in [RawFormat::Ndjson, RawFormat::Csv] {
                let o = opts(ds, 20_000, 3, 0.1);
                let (out, stats) = run(&o, f);
                let frac = stats.dirty as f64 / stats.records as f64;
                assert!((frac - 0.1).abs() <= 0.02, "{ds} {f:?}: {frac}");
                if f == RawFormat::Ndjson {
                    // Count what a strict reader refuses: not UTF-8, not JSON,
                    // or missing the subject, wrong types, bad values.
                    let bad = lines(&out)
                        .iter()
                        .filter(|l| {
                            let Ok(s) = std::str::from_utf8(l) else {
                                return true;
                            };
                            serde_json::from_str::<serde_json::Value>(s).is_err()
                        })
                        .count();
                    assert!(bad > 0 && (bad as u64) < stats.dirty, "{ds}: {bad}");
                }
            }
        }
        let (_, stats) = run(&opts("contacts", 1_000, 3, 1.0), RawFormat::Ndjson);
        assert_eq!(stats.dirty, 1_000);
        let (_, stats) = run(&opts("contacts", 1_000, 3, 0.0), RawFormat::Ndjson);
        assert_eq!(stats.dirty, 0);
    }

    #[test]
    fn contacts_dirty_kinds_look_as_documented() {
        let (out, stats) = run(&opts("contacts", 4_000, 11, 0.2), RawFormat::Ndjson);
        let all = lines(&out);
        let clean = lines(&run(&opts("contacts", 4_000, 11, 0.0), RawFormat::Ndjson).0)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect::<HashSet<_>>();
        let dirty: Vec<&[u8]> = all
            .iter()
            .copied()
            .filter(|l| !clean.contains(*l))
            .collect();
        assert_eq!(
            dirty.len() as u64,
            stats.dirty,
            "each bad record differs from its clean twin"
        );
        let has = |needle: &[u8]| {
            dirty
                .iter()
                .any(|l| l.windows(needle.len()).any(|w| w == needle))
        };
        assert!(has(b"{\"event_id\": \"abc\", broken"));
        assert!(has(b"\"age\":\"thirty\""));
        assert!(has(b"\"lead_score\":\"high\""));
        assert!(has(b"\"ip\":\"999.1.2.3\""));
        assert!(has(b"\"ip\":\"010.001.002.003\""));
        assert!(has(b"\"ip\":\"not-an-ip\""));
        assert!(has(b"\"phone\":\"n/a\""));
        assert!(has(b"\"zip\":\"SW1A 1AA\""));
        assert!(has(b"\xff\xfe"));
        assert!(
            dirty
                .iter()
                .any(|l| !l.windows(8).any(|w| w == b"\"email\":"))
        );
        // Planted PII is what the detector catches.
        let planted = dirty
            .iter()
            .filter_map(|l| std::str::from_utf8(l).ok())
            .filter_map(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .filter(|v| {
                v["interest"]
                    .as_str()
                    .is_some_and(|s| policies::pii::find_pii(s).is_some())
            })
            .count();
        assert!(planted > 0);
    }

    #[test]
    fn clean_records_are_the_same_with_or_without_dirt() {
        let (clean, _) = run(&opts("orders", 2_000, 5, 0.0), RawFormat::Ndjson);
        let (dirty, _) = run(&opts("orders", 2_000, 5, 0.3), RawFormat::Ndjson);
        let (c, d) = (lines(&clean), lines(&dirty));
        assert_eq!(c.len(), d.len());
        let same = c.iter().zip(&d).filter(|(a, b)| a == b).count();
        assert!(same > 1_200 && same < 1_600, "{same}");
    }

    /// A small RFC 4180 reader: rows of fields.
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut row = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut field)),
                (false, '\n') => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (false, c) => field.push(c),
            }
        }
        assert!(
            !quoted && field.is_empty() && row.is_empty(),
            "trailing partial row"
        );
        rows
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_record() {
        for ds in DATASETS {
            let o = opts(ds, 3_000, 9, 0.05);
            let (out, stats) = run(&o, RawFormat::Csv);
            let text = std::str::from_utf8(&out).expect("CSV output is UTF-8");
            let rows = parse_csv(text);
            assert_eq!(rows[0], fields(ds).expect("known").to_vec());
            assert_eq!(rows.len() as u64 - 1, stats.records, "{ds}");
            let ragged = rows.iter().filter(|r| r.len() != rows[0].len()).count() as u64;
            assert!(ragged > 0 && ragged < stats.dirty, "{ds}: {ragged}");
            // Same person data as NDJSON: the clean rows parse back to the JSON values.
            let (json, _) = run(&opts(ds, 3_000, 9, 0.0), RawFormat::Ndjson);
            let first: serde_json::Value = serde_json::from_slice(lines(&json)[0]).expect("json");
            let csv_clean = parse_csv(
                std::str::from_utf8(&run(&opts(ds, 3_000, 9, 0.0), RawFormat::Csv).0)
                    .expect("utf8"),
            );
            for (i, name) in csv_clean[0].iter().enumerate() {
                match &first[name.as_str()] {
                    serde_json::Value::String(s) => assert_eq!(&csv_clean[1][i], s, "{ds}.{name}"),
                    other => {
                        let cell: f64 = csv_clean[1][i].parse().expect("number");
                        assert_eq!(Some(cell), other.as_f64(), "{ds}.{name}");
                    }
                }
            }
        }
    }

    #[test]
    fn people_recur_and_normalize_to_stable_subjects() {
        let (out, _) = run(&opts("contacts", 20_000, 1, 0.0), RawFormat::Ndjson);
        let mut raw = HashSet::new();
        let mut subjects = HashSet::new();
        let mut ips = std::collections::HashMap::<String, HashSet<String>>::new();
        let mut v6 = 0;
        for line in lines(&out) {
            let v: serde_json::Value = serde_json::from_slice(line).expect("json");
            let email = v["email"].as_str().expect("email");
            raw.insert(email.to_string());
            let subject = email.trim().to_lowercase();
            let ip = v["ip"].as_str().expect("ip");
            if ip.contains(':') {
                v6 += 1;
            } else {
                let net: Vec<&str> = ip.split('.').take(2).collect();
                ips.entry(net.join("."))
                    .or_default()
                    .insert(subject.clone());
            }
            subjects.insert(subject);
        }
        assert!(subjects.len() < 20_000 / 4, "{}", subjects.len());
        assert!(subjects.len() > 1_000, "{}", subjects.len());
        assert!(
            raw.len() > subjects.len(),
            "case/space variants of one subject"
        );
        assert!((1_000..4_500).contains(&v6), "{v6}");
        // Every /16 gathers well over k=20 distinct people.
        assert!(
            ips.values().all(|s| s.len() >= 20),
            "{:?}",
            ips.values().map(HashSet::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn generated_identifiers_are_caught_by_the_pii_detector() {
        // Every phone and IP a person has must be recognisable as PII (a
        // detector miss would let it leak through free text).
        let pool = Pool::new(17, 5_000, Profile::Recurring);
        for p in &pool.people {
            for (value, kinds) in [
                (&*p.phone, &[PiiKind::Phone][..]),
                (&*p.ip, &[PiiKind::Ipv4, PiiKind::Ipv6][..]),
                (&*p.email, &[PiiKind::Email][..]),
            ] {
                let f = policies::pii::find_pii(value).expect(value);
                assert!(kinds.contains(&f.kind), "{value}: {f:?}");
                assert_eq!((f.start, f.end), (0, value.len()), "{value}");
            }
            assert_eq!(policies::pii::find_pii(&p.name), None, "{}", p.name);
            assert_eq!(policies::pii::find_pii(&p.zip), None, "{}", p.zip);
        }
    }

    #[test]
    fn the_near_unique_profile_gives_nearly_every_record_its_own_network() {
        let field = |bytes: &[u8], name: &str| -> Vec<String> {
            lines(bytes)
                .iter()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_slice(l).expect("json");
                    v[name].as_str().expect("a string").to_string()
                })
                .collect()
        };
        let near = GenOptions {
            profile: Profile::NearUnique,
            ..opts("contacts", 20_000, 5, 0.0)
        };
        let (out, stats) = run(&near, RawFormat::Ndjson);
        assert_eq!(stats.records, 20_000);
        let ips = field(&out, "ip");
        // A /24 (IPv4) or /48 (IPv6) per record, almost never shared.
        let networks: HashSet<String> = ips
            .iter()
            .map(|ip| match ip.parse::<std::net::IpAddr>().expect(ip) {
                std::net::IpAddr::V4(v4) => policies::ip::truncate_ip(v4.into(), 24, 48),
                v6 => policies::ip::truncate_ip(v6, 24, 48),
            })
            .collect();
        assert!(networks.len() > 19_900, "{} networks", networks.len());
        for ip in ips.iter().take(2_000) {
            let f = policies::pii::find_pii(ip).expect(ip);
            assert_eq!(
                (f.start, f.end),
                (0, ip.len()),
                "{ip} is an address as a whole"
            );
        }
        // About 1.6 records per distinct person (a uniform pick from a pool of 20,000).
        let emails: HashSet<String> = field(&out, "email")
            .iter()
            .map(|e| e.trim().to_lowercase())
            .collect();
        let per_person = 20_000.0 / emails.len() as f64;
        assert!(
            (1.45..1.75).contains(&per_person),
            "{per_person} records per person"
        );
        // The default profile keeps its home networks: few /24s.
        let (home, _) = run(&opts("contacts", 20_000, 5, 0.0), RawFormat::Ndjson);
        let home_ips: HashSet<String> = field(&home, "ip").into_iter().collect();
        assert!(
            home_ips.len() < 15_000,
            "{} distinct home IPs",
            home_ips.len()
        );
        assert_eq!(Profile::parse("near-unique"), Some(Profile::NearUnique));
        assert_eq!(Profile::parse("recurring"), Some(Profile::Recurring));
        assert_eq!(Profile::parse("unique"), None);
    }

    #[test]
    fn web_events_and_orders_reuse_the_person_pool() {
        let o = |ds| GenOptions {
            people: Some(300),
            ..opts(ds, 5_000, 21, 0.0)
        };
        let (web, _) = run(&o("web_events"), RawFormat::Ndjson);
        let visitors: HashSet<String> = lines(&web)
            .iter()
            .map(|l| {
                serde_json::from_slice::<serde_json::Value>(l).expect("json")["visitor_id"]
                    .to_string()
            })
            .collect();
        assert!(
            visitors.len() <= 300 + BOT_VISITORS as usize,
            "{}",
            visitors.len()
        );
        let (orders, _) = run(&o("orders"), RawFormat::Ndjson);
        let (contacts, _) = run(&o("contacts"), RawFormat::Ndjson);
        let emails = |bytes: &[u8], field: &str| -> HashSet<String> {
            lines(bytes)
                .iter()
                .map(|l| {
                    serde_json::from_slice::<serde_json::Value>(l).expect("json")[field]
                        .as_str()
                        .expect("email")
                        .trim()
                        .to_lowercase()
                })
                .collect()
        };
        let order_emails = emails(&orders, "customer_email");
        let contact_emails = emails(&contacts, "email");
        assert!(order_emails.len() <= 300);
        assert!(order_emails.intersection(&contact_emails).count() > 200);
    }

    #[test]
    fn escaping_matches_serde_json_and_csv_rules() {
        let mut rng = StdRng::seed_from_u64(99);
        let alphabet: Vec<char> = "ab,\"\\\n\r\t\u{1}\u{1f} é🙏x".chars().collect();
        let mut buf = Vec::new();
        for _ in 0..5_000 {
            let len = rng.gen_range(0..40);
            let s: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            buf.clear();
            push_json_str(&mut buf, &s);
            let back: String = serde_json::from_slice(&buf).expect("valid JSON string");
            assert_eq!(back, s);
            buf.clear();
            push_csv(&mut buf, s.as_bytes());
            let text = std::str::from_utf8(&buf).expect("utf8");
            let quoted = text.starts_with('"');
            let plain_ok = !s.contains([',', '"', '\n', '\r'])
                && !s.starts_with(|c: char| c.is_ascii_whitespace())
                && !s.ends_with(|c: char| c.is_ascii_whitespace());
            assert_eq!(quoted, !plain_ok, "{s:?}");
            let mut row = text.to_string();
            row.push('\n');
            assert_eq!(parse_csv(&row), vec![vec![s.clone()]]);
        }
    }

    #[test]
    fn bad_options_are_invalid_input() {
        let mut sink = Vec::new();
        for o in [
            opts("nope", 1, 1, 0.0),
            opts("contacts", 1, 1, 1.5),
            opts("contacts", 1, 1, -0.1),
            opts("contacts", 1, 1, f64::NAN),
            GenOptions {
                people: Some(0),
                ..opts("contacts", 1, 1, 0.0)
            },
        ] {
            let err = generate(&o, RawFormat::Ndjson, &mut sink).expect_err("invalid");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        assert!(sink.is_empty());
    }
}
