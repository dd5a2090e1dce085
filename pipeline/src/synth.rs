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

use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use chrono::{Datelike, NaiveDate};
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
    /// Size of the person pool; default `max(records / 6, 50)`.
    pub people: Option<u64>,
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

const CONTACTS_FIELDS: &[&str] = &[
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
const WEB_EVENTS_FIELDS: &[&str] = &[
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
const ORDERS_FIELDS: &[&str] = &[
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
    let people = opts.people.unwrap_or((opts.records / 6).max(50));
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
        pool: Pool::new(opts.seed, people),
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
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

const FLUSH_AT: usize = 128 * 1024;

struct Sink<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    bytes: u64,
}

impl Sink<'_> {
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.bytes += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ datasets

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dataset {
    Contacts,
    WebEvents,
    Orders,
}

impl Dataset {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "contacts" => Some(Dataset::Contacts),
            "web_events" => Some(Dataset::WebEvents),
            "orders" => Some(Dataset::Orders),
            _ => None,
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            Dataset::Contacts => CONTACTS_FIELDS,
            Dataset::WebEvents => WEB_EVENTS_FIELDS,
            Dataset::Orders => ORDERS_FIELDS,
        }
    }
}

/// The one defect a bad record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dirt {
    /// `{"event_id": "abc", broken` (NDJSON).
    NotJson,
    /// A row with too few fields (CSV's stand-in for "not JSON").
    RaggedRow,
    /// A string where a number belongs.
    WrongType,
    /// No email / visitor_id / customer_email.
    MissingSubject,
    /// `999.1.2.3`, `010.001.002.003`, `not-an-ip`.
    BadIp,
    /// `n/a`.
    BadPhone,
    /// `SW1A 1AA`, `9411`.
    BadZip,
    /// Raw bytes 0xff 0xfe inside a string value (NDJSON only).
    InvalidUtf8,
    /// The person's email or phone inside `message` and `interest`.
    PiiInText,
}

fn dirt_kinds(dataset: Dataset, format: RawFormat) -> &'static [Dirt] {
    use Dirt::*;
    match (dataset, format) {
        (Dataset::Contacts, RawFormat::Ndjson) => &[
            NotJson,
            WrongType,
            MissingSubject,
            BadIp,
            BadPhone,
            BadZip,
            InvalidUtf8,
            PiiInText,
        ],
        (Dataset::Contacts, RawFormat::Csv) => &[
            RaggedRow,
            WrongType,
            MissingSubject,
            BadIp,
            BadPhone,
            BadZip,
            PiiInText,
        ],
        (Dataset::WebEvents, RawFormat::Ndjson) => {
            &[NotJson, WrongType, MissingSubject, BadIp, InvalidUtf8]
        }
        (Dataset::WebEvents, RawFormat::Csv) => &[RaggedRow, WrongType, MissingSubject, BadIp],
        (Dataset::Orders, RawFormat::Ndjson) => {
            &[NotJson, WrongType, MissingSubject, BadZip, InvalidUtf8]
        }
        (Dataset::Orders, RawFormat::Csv) => &[RaggedRow, WrongType, MissingSubject, BadZip],
    }
}

const BAD_IPS: [&str; 3] = ["999.1.2.3", "010.001.002.003", "not-an-ip"];
const BAD_ZIPS: [&str; 2] = ["SW1A 1AA", "9411"];
const INVALID_UTF8: &[u8] = b"\xff\xfe";

// ------------------------------------------------------------------ generator

struct Generator {
    dataset: Dataset,
    csv: bool,
    tenant: String,
    clock: Clock,
    pool: Pool,
    rng: StdRng,
    scratch: String,
    kinds: &'static [Dirt],
    dirt_seen: u64,
}

/// (kind, how many bad records of this kind came before) — the second part
/// picks a variant (`age` vs `lead_score`, which bad IP, …).
type DirtPick = Option<(Dirt, u64)>;

impl Generator {
    fn record(&mut self, dirt: DirtPick, buf: &mut Vec<u8>) {
        match self.dataset {
            Dataset::Contacts => self.contact(dirt, buf),
            Dataset::WebEvents => self.web_event(dirt, buf),
            Dataset::Orders => self.order(dirt, buf),
        }
    }

    /// Writes the whole-line defects; true if the line is done.
    fn whole_line_dirt(&self, dirt: DirtPick, id_field: &str, buf: &mut Vec<u8>) -> bool {
        match dirt {
            Some((Dirt::NotJson, _)) => {
                buf.extend_from_slice(b"{\"");
                buf.extend_from_slice(id_field.as_bytes());
                buf.extend_from_slice(b"\": \"abc\", broken\n");
                true
            }
            Some((Dirt::RaggedRow, _)) => {
                buf.extend_from_slice(b"abc,");
                buf.extend_from_slice(self.tenant.as_bytes());
                buf.extend_from_slice(b",broken\n");
                true
            }
            _ => false,
        }
    }

    fn contact(&mut self, dirt: DirtPick, buf: &mut Vec<u8>) {
        let rng = &mut self.rng;
        let uuid: u128 = rng.r#gen();
        let ts = self.clock.draw(rng);
        let pi = self.pool.pick(rng);
        let email_style = EmailStyle::draw(rng);
        let p = &self.pool.people[pi];
        let ua = if rng.gen_ratio(1, 10) {
            pick_weighted(rng, HUMAN_UA_WEIGHTS)
        } else {
            usize::from(p.ua)
        };
        let source = pick_weighted(rng, SOURCE_WEIGHTS);
        let interest = pick_weighted(rng, INTEREST_WEIGHTS);
        let lead = lead_score(rng, interest);
        compose_message(rng, interest, &mut self.scratch);
        let kind = dirt.map(|(k, _)| k);
        let variant = dirt.map_or(0, |(_, v)| v);
        if self.whole_line_dirt(dirt, "event_id", buf) {
            return;
        }

        let mut w = Rec::begin(buf, self.csv);
        w.with("event_id", |b| push_uuid(b, uuid));
        w.str("tenant_id", &self.tenant);
        w.with("submitted_at", |b| self.clock.push(b, ts));
        if kind == Some(Dirt::InvalidUtf8) {
            w.str_with_raw("name", &p.name, INVALID_UTF8);
        } else {
            w.plain("name", &p.name);
        }
        if kind == Some(Dirt::MissingSubject) {
            w.missing("email");
        } else {
            let csv = w.csv;
            w.with("email", |b| email_style.push(b, &p.email, csv));
        }
        if kind == Some(Dirt::BadPhone) {
            w.plain("phone", "n/a");
        } else {
            w.plain("phone", &p.phone);
        }
        if kind == Some(Dirt::BadIp) {
            w.plain("ip", BAD_IPS[(variant % 3) as usize]);
        } else {
            w.plain("ip", &p.ip);
        }
        w.plain("user_agent", USER_AGENTS[ua].0);
        if kind == Some(Dirt::BadZip) {
            w.plain("zip", BAD_ZIPS[(variant % 2) as usize]);
        } else {
            w.plain("zip", &p.zip);
        }
        if kind == Some(Dirt::WrongType) && variant.is_multiple_of(2) {
            w.str("age", "thirty");
        } else {
            w.int("age", u64::from(p.age));
        }
        w.plain("gender", GENDERS[usize::from(p.gender)]);
        w.plain("country", COUNTRIES[usize::from(p.country)].code);
        w.plain("source", SOURCES[source]);
        if kind == Some(Dirt::PiiInText) {
            // Planted in the kept `interest` too, so the record is refused
            // whichever free-text field the policy keeps.
            let pii: &str = if variant.is_multiple_of(2) {
                p.email.trim()
            } else {
                &p.phone
            };
            w.with_text("interest", |t| {
                t.push_str(INTERESTS[interest]);
                t.push_str(" - reach me at ");
                t.push_str(pii);
            });
            let message = &self.scratch;
            w.with_text("message", |t| {
                t.push_str(message);
                t.push_str(" You can reach me at ");
                t.push_str(pii);
                t.push('.');
            });
        } else {
            w.plain("interest", INTERESTS[interest]);
            w.str("message", &self.scratch);
        }
        if kind == Some(Dirt::WrongType) && variant % 2 == 1 {
            w.str("lead_score", "high");
        } else {
            w.int("lead_score", u64::from(lead));
        }
        w.end();
    }

    fn web_event(&mut self, dirt: DirtPick, buf: &mut Vec<u8>) {
        let rng = &mut self.rng;
        let uuid: u128 = rng.r#gen();
        let ts = self.clock.draw(rng);
        let pi = self.pool.pick(rng);
        let bot = rng.gen_ratio(3, 100);
        let bot_ua = pick_weighted(rng, BOT_UA_WEIGHTS);
        let bot_id: u64 = rng.gen_range(0..BOT_VISITORS);
        let bot_host: u8 = rng.gen_range(1..=254);
        let other_ua = rng.gen_ratio(1, 5);
        let random_ua = pick_weighted(rng, HUMAN_UA_WEIGHTS);
        let page = pick_weighted(rng, PAGE_WEIGHTS);
        let referrer = pick_weighted(rng, REFERRER_WEIGHTS);
        let (u1, u2, u3): (f64, f64, f64) = (rng.r#gen(), rng.r#gen(), rng.r#gen());
        let p = &self.pool.people[pi];

        let (visitor, ua, country) = if bot {
            (self.pool.bot_visitor(bot_id), bot_ua, "US")
        } else {
            let ua = if other_ua {
                random_ua
            } else {
                usize::from(p.ua)
            };
            (p.visitor, ua, COUNTRIES[usize::from(p.country)].code)
        };
        let duration = if bot {
            50 + (u1 * 750.0) as u64
        } else {
            200 + (u1 * u2 * u3 * 600_000.0) as u64
        };
        let kind = dirt.map(|(k, _)| k);
        let variant = dirt.map_or(0, |(_, v)| v);
        if self.whole_line_dirt(dirt, "event_id", buf) {
            return;
        }

        let mut w = Rec::begin(buf, self.csv);
        w.with("event_id", |b| push_uuid(b, uuid));
        w.str("tenant_id", &self.tenant);
        w.with("occurred_at", |b| self.clock.push(b, ts));
        if kind == Some(Dirt::MissingSubject) {
            w.missing("visitor_id");
        } else {
            w.with("visitor_id", |b| {
                b.extend_from_slice(b"v-");
                push_hex_u64(b, visitor);
            });
        }
        if kind == Some(Dirt::BadIp) {
            w.plain("ip", BAD_IPS[(variant % 3) as usize]);
        } else if bot {
            w.with("ip", |b| {
                b.extend_from_slice(b"66.249.66.");
                push_u64(b, u64::from(bot_host));
            });
        } else {
            w.plain("ip", &p.ip);
        }
        if kind == Some(Dirt::InvalidUtf8) {
            w.str_with_raw("user_agent", USER_AGENTS[ua].0, INVALID_UTF8);
        } else {
            w.plain("user_agent", USER_AGENTS[ua].0);
        }
        w.plain("page", PAGES[page]);
        w.plain("referrer", REFERRERS[referrer]);
        w.plain("country", country);
        w.plain("device", USER_AGENTS[ua].1);
        if kind == Some(Dirt::WrongType) {
            w.str("duration_ms", "long");
        } else {
            w.int("duration_ms", duration);
        }
        w.end();
    }

    fn order(&mut self, dirt: DirtPick, buf: &mut Vec<u8>) {
        let rng = &mut self.rng;
        let id: u64 = rng.r#gen();
        let ts = self.clock.draw(rng);
        let pi = self.pool.pick(rng);
        let email_style = EmailStyle::draw(rng);
        let category = pick_weighted(rng, CATEGORY_WEIGHTS);
        let (u1, u2): (f64, f64) = (rng.r#gen(), rng.r#gen());
        let (lo, hi) = CATEGORY_PRICES[category];
        // Skewed towards cheap items; integer cents, so no float formatting.
        let cents = lo + ((hi - lo) as f64 * u1 * u2) as u64;
        let cents = cents - cents % 100 + [99, 0, 50, 95][(cents % 4) as usize];
        let p = &self.pool.people[pi];
        let currency = COUNTRIES[usize::from(p.country)].currency;
        let kind = dirt.map(|(k, _)| k);
        if self.whole_line_dirt(dirt, "order_id", buf) {
            return;
        }

        let mut w = Rec::begin(buf, self.csv);
        w.with("order_id", |b| push_order_id(b, id));
        w.str("tenant_id", &self.tenant);
        w.with("ordered_at", |b| self.clock.push(b, ts));
        if kind == Some(Dirt::MissingSubject) {
            w.missing("customer_email");
        } else {
            let csv = w.csv;
            w.with("customer_email", |b| email_style.push(b, &p.email, csv));
        }
        if kind == Some(Dirt::WrongType) {
            w.str("amount", "lots");
        } else {
            w.with_raw("amount", |b| {
                push_u64(b, cents / 100);
                b.push(b'.');
                push_2(b, (cents % 100) as u32);
            });
        }
        w.plain("currency", currency);
        if kind == Some(Dirt::BadZip) {
            w.plain("zip", BAD_ZIPS[(dirt.map_or(0, |(_, v)| v) % 2) as usize]);
        } else {
            w.plain("zip", &p.zip);
        }
        if kind == Some(Dirt::InvalidUtf8) {
            w.str_with_raw("product_category", CATEGORIES[category], INVALID_UTF8);
        } else {
            w.plain("product_category", CATEGORIES[category]);
        }
        w.end();
    }
}

// ------------------------------------------------------------------ record writer

/// Writes one record as a JSON object or a CSV row into the shared buffer.
struct Rec<'b> {
    buf: &'b mut Vec<u8>,
    csv: bool,
    first: bool,
    /// Reused for values assembled from pieces (CSV quoting needs the whole).
    tmp: Vec<u8>,
}

impl<'b> Rec<'b> {
    fn begin(buf: &'b mut Vec<u8>, csv: bool) -> Self {
        if !csv {
            buf.push(b'{');
        }
        Rec {
            buf,
            csv,
            first: true,
            tmp: Vec::new(),
        }
    }

    fn key(&mut self, name: &str) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        if !self.csv {
            self.buf.push(b'"');
            self.buf.extend_from_slice(name.as_bytes());
            self.buf.extend_from_slice(b"\":");
        }
    }

    fn str(&mut self, name: &str, value: &str) {
        self.key(name);
        if self.csv {
            push_csv(self.buf, value.as_bytes());
        } else {
            push_json_str(self.buf, value.as_bytes());
        }
    }

    /// A string this module generated from its own tables (names, phones,
    /// IPs, user agents, enums): never needs JSON escaping, so skip the scan.
    fn plain(&mut self, name: &str, value: &str) {
        debug_assert!(
            !value.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\'),
            "{value:?}"
        );
        self.key(name);
        if self.csv {
            push_csv(self.buf, value.as_bytes());
        } else {
            self.buf.push(b'"');
            self.buf.extend_from_slice(value.as_bytes());
            self.buf.push(b'"');
        }
    }

    /// A string value whose bytes come from `f` (which must write text that
    /// needs no escaping: hex, digits, timestamps, …).
    fn with(&mut self, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        self.key(name);
        if self.csv {
            // Only escaping-free text comes through here, except emails with
            // padding spaces, which `EmailStyle::push` quotes itself.
            f(self.buf);
        } else {
            self.buf.push(b'"');
            f(self.buf);
            self.buf.push(b'"');
        }
    }

    /// A string value assembled from pieces that may need escaping.
    fn with_text(&mut self, name: &str, f: impl FnOnce(&mut String)) {
        let mut s = String::from_utf8(std::mem::take(&mut self.tmp)).unwrap_or_default();
        s.clear();
        f(&mut s);
        self.str(name, &s);
        self.tmp = s.into_bytes();
    }

    /// A JSON number (or CSV cell) whose text comes from `f`.
    fn with_raw(&mut self, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        self.key(name);
        f(self.buf);
    }

    fn int(&mut self, name: &str, value: u64) {
        self.key(name);
        push_u64(self.buf, value);
    }

    /// `value` followed by raw (possibly invalid UTF-8) bytes inside the
    /// same JSON string. NDJSON only: CSV never asks for it.
    fn str_with_raw(&mut self, name: &str, value: &str, raw: &[u8]) {
        self.key(name);
        if self.csv {
            push_csv(self.buf, value.as_bytes());
        } else {
            self.buf.push(b'"');
            push_json_inner(self.buf, value.as_bytes());
            self.buf.extend_from_slice(raw);
            self.buf.push(b'"');
        }
    }

    /// An absent field: omitted from JSON, an empty CSV cell.
    fn missing(&mut self, name: &str) {
        if self.csv {
            self.key(name);
        }
    }

    fn end(self) {
        if !self.csv {
            self.buf.push(b'}');
        }
        self.buf.push(b'\n');
    }
}

fn push_json_str(buf: &mut Vec<u8>, s: &[u8]) {
    buf.push(b'"');
    push_json_inner(buf, s);
    buf.push(b'"');
}

fn push_json_inner(buf: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut last = 0;
    let mut i = 0;
    while i < s.len() {
        // Skip eight ordinary bytes at a time.
        if let Some(chunk) = s.get(i..i + 8)
            && !swar_any_json_special(load8(chunk))
        {
            i += 8;
            continue;
        }
        let c = s[i];
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        buf.extend_from_slice(&s[last..i]);
        if esc.is_empty() {
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(c >> 4)]);
            buf.push(HEX[usize::from(c & 0xf)]);
        } else {
            buf.extend_from_slice(esc);
        }
        i += 1;
        last = i;
    }
    buf.extend_from_slice(&s[last..]);
}

const LO_BYTES: u64 = 0x0101_0101_0101_0101;
const HI_BITS: u64 = 0x8080_8080_8080_8080;

fn load8(chunk: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(chunk);
    u64::from_le_bytes(a)
}

/// Non-zero iff some byte of `x` equals `b` (exact as a yes/no answer).
fn swar_has_byte(x: u64, b: u8) -> u64 {
    let y = x ^ (LO_BYTES * u64::from(b));
    y.wrapping_sub(LO_BYTES) & !y & HI_BITS
}

/// Does any of the eight bytes need JSON escaping (`"`, `\`, < 0x20)?
fn swar_any_json_special(x: u64) -> bool {
    let control = x.wrapping_sub(LO_BYTES * 0x20) & !x & HI_BITS;
    (control | swar_has_byte(x, b'"') | swar_has_byte(x, b'\\')) != 0
}

/// Does any of the eight bytes force CSV quoting (`,`, `"`, CR, LF)?
fn swar_any_csv_special(x: u64) -> bool {
    (swar_has_byte(x, b',')
        | swar_has_byte(x, b'"')
        | swar_has_byte(x, b'\n')
        | swar_has_byte(x, b'\r'))
        != 0
}

fn csv_needs_quotes(s: &[u8]) -> bool {
    if s.first().is_some_and(u8::is_ascii_whitespace)
        || s.last().is_some_and(u8::is_ascii_whitespace)
    {
        return true;
    }
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        if swar_any_csv_special(load8(chunk)) {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&c| matches!(c, b',' | b'"' | b'\n' | b'\r'))
}

fn push_csv(buf: &mut Vec<u8>, s: &[u8]) {
    if !csv_needs_quotes(s) {
        buf.extend_from_slice(s);
        return;
    }
    buf.push(b'"');
    let mut rest = s;
    while let Some(q) = rest.iter().position(|&c| c == b'"') {
        buf.extend_from_slice(&rest[..=q]);
        buf.push(b'"');
        rest = &rest[q + 1..];
    }
    buf.extend_from_slice(rest);
    buf.push(b'"');
}

fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn push_2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10 % 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn push_hex_u64(buf: &mut Vec<u8>, v: u64) {
    for shift in (0..16).rev() {
        buf.push(HEX_DIGITS[((v >> (shift * 4)) & 0xf) as usize]);
    }
}

/// A random (version 4, RFC 4122 variant) UUID in canonical form.
fn push_uuid(buf: &mut Vec<u8>, raw: u128) {
    let v =
        (raw & !(0xf000u128 << 64) & !(0xc000u128 << 48)) | (0x4000u128 << 64) | (0x8000u128 << 48);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            buf.push(b'-');
        }
        buf.push(HEX_DIGITS[((v >> (124 - 4 * i)) & 0xf) as usize]);
    }
}

/// `ord_` + 12 base32 characters that start with a letter and never hold
/// more than two digits in a row, so no part of it reads as a phone number.
fn push_order_id(buf: &mut Vec<u8>, mut v: u64) {
    const LETTERS: &[u8; 26] = b"abcdefghijklmnopqrstuvwxyz";
    const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    buf.extend_from_slice(b"ord_");
    let mut digits_in_row = 2;
    for _ in 0..12 {
        let c = BASE32[(v & 31) as usize];
        v = v.rotate_right(5);
        let c = if c.is_ascii_digit() && digits_in_row >= 2 {
            LETTERS[usize::from(c - b'0')]
        } else {
            c
        };
        digits_in_row = if c.is_ascii_digit() {
            digits_in_row + 1
        } else {
            0
        };
        buf.push(c);
    }
}

// ------------------------------------------------------------------ time

/// Timestamps on one UTC day, written in RFC 3339 with an occasional offset.
struct Clock {
    /// `YYYY-MM-DD` for the day before, the day, and the day after.
    days: [[u8; 10]; 3],
}

/// (UTC second of the day, offset in minutes east of UTC).
type Stamp = (u32, i32);

/// Offsets (minutes) and weights: mostly `Z`.
const OFFSETS: &[(i32, u32)] = &[(0, 82), (-300, 10), (120, 6), (330, 2)];
/// Activity by UTC hour: US business hours dominate.
const HOUR_WEIGHTS: &[u32] = &[
    6, 5, 4, 3, 2, 2, 2, 2, 3, 4, 5, 6, 7, 9, 11, 13, 14, 14, 13, 12, 11, 10, 9, 7,
];

impl Clock {
    fn new(date: NaiveDate) -> io::Result<Self> {
        let (Some(prev), Some(next)) = (date.pred_opt(), date.succ_opt()) else {
            return Err(invalid(format!("date {date} is out of range")));
        };
        if !(1..=9999).contains(&prev.year()) || !(1..=9999).contains(&next.year()) {
            return Err(invalid(format!(
                "date {date} must be within years 1..=9999"
            )));
        }
        let fmt = |d: NaiveDate| {
            let mut out = [0u8; 10];
            let y = d.year() as u32;
            let digits = [
                y / 1000,
                y / 100 % 10,
                y / 10 % 10,
                y % 10,
                10,
                d.month() / 10,
                d.month() % 10,
                10,
                d.day() / 10,
                d.day() % 10,
            ];
            for (o, v) in out.iter_mut().zip(digits) {
                *o = if v == 10 { b'-' } else { b'0' + v as u8 };
            }
            out
        };
        Ok(Clock {
            days: [fmt(prev), fmt(date), fmt(next)],
        })
    }

    fn draw(&self, rng: &mut StdRng) -> Stamp {
        let hour = pick_weighted(rng, HOUR_WEIGHTS) as u32;
        let sec = hour * 3600 + rng.gen_range(0..3600);
        let offset = OFFSETS[pick_weighted_pairs(rng, OFFSETS)].0;
        (sec, offset)
    }

    fn push(&self, buf: &mut Vec<u8>, (utc, offset): Stamp) {
        let local = i64::from(utc) + i64::from(offset) * 60;
        let day = (1 + local.div_euclid(86_400)) as usize;
        let s = local.rem_euclid(86_400) as u32;
        buf.extend_from_slice(&self.days[day.min(2)]);
        buf.push(b'T');
        push_2(buf, s / 3600);
        buf.push(b':');
        push_2(buf, s / 60 % 60);
        buf.push(b':');
        push_2(buf, s % 60);
        if offset == 0 {
            buf.push(b'Z');
        } else {
            buf.push(if offset < 0 { b'-' } else { b'+' });
            let m = offset.unsigned_abs();
            push_2(buf, m / 60);
            buf.push(b':');
            push_2(buf, m % 60);
        }
    }
}

// ------------------------------------------------------------------ people

struct Person {
    name: Box<str>,
    /// Canonical presentation (its case style is the person's habit).
    email: Box<str>,
    phone: Box<str>,
    zip: Box<str>,
    ip: Box<str>,
    visitor: u64,
    age: u8,
    gender: u8,
    country: u8,
    ua: u8,
}

struct Pool {
    people: Vec<Person>,
    bot_seed: u64,
}

const BOT_VISITORS: u64 = 8;

impl Pool {
    fn new(seed: u64, size: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x7065_6f70_6c65_2d70); // "people-p"
        let nets = Networks::for_pool(size);
        let mut name = String::new();
        let mut people = Vec::with_capacity(size);
        for idx in 0..size {
            let first = rng.gen_range(0..FIRST_NAMES.len());
            let last = rng.gen_range(0..LAST_NAMES.len());
            let country = pick_weighted(&mut rng, COUNTRY_WEIGHTS);
            name.clear();
            name.push_str(FIRST_NAMES[first].0);
            name.push(' ');
            name.push_str(LAST_NAMES[last].0);
            let email = make_email(&mut rng, idx, FIRST_NAMES[first].1, LAST_NAMES[last].1);
            let zip_idx = pick_weighted(&mut rng, &ZIP_WEIGHTS);
            let zip = if rng.gen_ratio(1, 20) {
                format!("{}-{:04}", ZIPS[zip_idx], rng.gen_range(0..10_000))
            } else {
                ZIPS[zip_idx].to_string()
            };
            let phone = make_phone(&mut rng, COUNTRIES[country].code, zip_idx);
            let ip = nets.draw(&mut rng);
            // Bell-shaped age: mean 38, sd ~13, within 18..=80.
            let bell: f64 = (0..4).map(|_| rng.r#gen::<f64>()).sum::<f64>() - 2.0;
            let age = (38.0 + bell * 22.0).round().clamp(18.0, 80.0) as u8;
            let gender = pick_weighted(&mut rng, GENDER_WEIGHTS) as u8;
            let ua = pick_weighted(&mut rng, HUMAN_UA_WEIGHTS) as u8;
            people.push(Person {
                name: name.as_str().into(),
                email: email.into(),
                phone: phone.into(),
                zip: zip.into(),
                ip: ip.into(),
                visitor: rng.r#gen(),
                age,
                gender,
                country: country as u8,
                ua,
            });
        }
        Pool {
            people,
            bot_seed: rng.r#gen(),
        }
    }

    /// A person, skewed: index `n * u^2` gives the first persons many records
    /// and the last ones few.
    fn pick(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.r#gen();
        ((u * u * self.people.len() as f64) as usize).min(self.people.len() - 1)
    }

    fn bot_visitor(&self, i: u64) -> u64 {
        splitmix64(self.bot_seed ^ i)
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn make_email(rng: &mut StdRng, idx: usize, first: &str, last: &str) -> String {
    let domain = EMAIL_DOMAINS[pick_weighted_pairs(rng, EMAIL_DOMAINS)].0;
    let initial = &first[..1];
    // The pool index makes every address unique.
    let local = match rng.gen_range(0..5) {
        0 => format!("{first}.{last}{idx}"),
        1 => format!("{initial}{last}{idx}"),
        2 => format!("{first}{idx}"),
        3 => format!("{last}.{first}.{idx}"),
        _ => format!("{first}_{last}{idx}"),
    };
    let email = format!("{local}@{domain}");
    match rng.gen_range(0..100) {
        // Capitalized words: Ana.Ruiz12@Gmail.com
        0..=11 => {
            let mut out = String::with_capacity(email.len());
            let mut up = true;
            for c in email.chars() {
                out.push(if up { c.to_ascii_uppercase() } else { c });
                up = !c.is_ascii_alphabetic();
            }
            out
        }
        12..=14 => email.to_ascii_uppercase(),
        _ => email,
    }
}

/// How one record shows the person's email: usually as is, sometimes padded
/// with spaces or shouted; all normalize (trim, lowercase) to one subject.
#[derive(Clone, Copy)]
enum EmailStyle {
    AsIs,
    Padded,
    Upper,
}

impl EmailStyle {
    fn draw(rng: &mut StdRng) -> Self {
        match rng.gen_range(0..100) {
            0..=3 => EmailStyle::Padded,
            4..=5 => EmailStyle::Upper,
            _ => EmailStyle::AsIs,
        }
    }

    /// Writes the email text (emails hold no characters that need JSON
    /// escaping; padded ones are quoted for CSV).
    fn push(self, buf: &mut Vec<u8>, email: &str, csv: bool) {
        match self {
            EmailStyle::AsIs => buf.extend_from_slice(email.as_bytes()),
            EmailStyle::Upper => buf.extend(email.bytes().map(|c| c.to_ascii_uppercase())),
            EmailStyle::Padded => {
                if csv {
                    buf.push(b'"');
                }
                buf.push(b' ');
                buf.extend_from_slice(email.as_bytes());
                buf.extend_from_slice(b"  ");
                if csv {
                    buf.push(b'"');
                }
            }
        }
    }
}

fn make_phone(rng: &mut StdRng, country: &str, zip_idx: usize) -> String {
    match country {
        "US" | "CA" => {
            let area = AREA_CODES[zip_idx % AREA_CODES.len()];
            let exchange = rng.gen_range(200..1000);
            let line = rng.gen_range(0..10_000);
            match rng.gen_range(0..100) {
                0..=29 => format!("+1 ({area}) {exchange}-{line:04}"),
                30..=59 => format!("{area}-{exchange}-{line:04}"),
                60..=74 => format!("{area}.{exchange}.{line:04}"),
                75..=89 => format!("({area}) {exchange}-{line:04}"),
                _ => format!("{area}{exchange}{line:04}"),
            }
        }
        "GB" => {
            if rng.gen_bool(0.5) {
                format!("+44 20 7946 {:04}", rng.gen_range(0..1000))
            } else {
                format!("+44 7700 900{:03}", rng.gen_range(0..1000))
            }
        }
        "DE" => {
            if rng.gen_bool(0.6) {
                format!("+49151{:08}", rng.gen_range(0..100_000_000))
            } else {
                format!("+49 30 {:08}", rng.gen_range(10_000_000..100_000_000))
            }
        }
        "MX" => format!(
            "+52 55 {:04} {:04}",
            rng.gen_range(1000..10_000),
            rng.gen_range(0..10_000)
        ),
        _ => format!(
            "+33 {} {:02} {:02} {:02} {:02}",
            rng.gen_range(1..=7),
            rng.gen_range(0..100),
            rng.gen_range(0..100),
            rng.gen_range(0..100),
            rng.gen_range(0..100)
        ),
    }
}

/// Home networks. The number of /24s scales with the pool (about 40 persons
/// each, at most 30), so generalizing to /24 or /16 gathers k=20 people.
struct Networks {
    v4_24s: Vec<[u8; 3]>,
    v4_weights: Vec<u32>,
}

/// /16s, each with five /24 third octets.
const V4_NETS: [([u8; 2], [u8; 5]); 6] = [
    ([73, 162], [14, 77, 130, 201, 245]),
    ([98, 207], [3, 58, 112, 190, 233]),
    ([24, 130], [9, 66, 121, 180, 250]),
    ([71, 198], [22, 47, 133, 164, 219]),
    ([68, 45], [5, 88, 140, 172, 230]),
    ([203, 0], [113, 114, 7, 60, 200]),
];
/// IPv6 /48s within three /32s (2001:db8::/32, 2600:1700::/32, 2a02:8108::/32).
const V6_48S: [[u16; 3]; 6] = [
    [0x2001, 0x0db8, 0x85a3],
    [0x2001, 0x0db8, 0x1f00],
    [0x2600, 0x1700, 0x07c0],
    [0x2600, 0x1700, 0x3b12],
    [0x2a02, 0x8108, 0x1240],
    [0x2a02, 0x8108, 0x0501],
];
const ZONES: [&str; 3] = ["eth0", "en0", "wlan0"];

impl Networks {
    fn for_pool(people: usize) -> Self {
        let want = (people / 40).clamp(1, 30);
        let per16 = want.div_ceil(V4_NETS.len()).clamp(1, 5);
        let n16 = want.div_ceil(per16).clamp(1, V4_NETS.len());
        let mut v4_24s = Vec::new();
        let mut v4_weights = Vec::new();
        for (i, (net16, thirds)) in V4_NETS.iter().take(n16).enumerate() {
            for (j, third) in thirds.iter().take(per16).enumerate() {
                v4_24s.push([net16[0], net16[1], *third]);
                // Mildly skewed: big networks first.
                v4_weights.push(60 / (i as u32 + 1) + 30 / (j as u32 + 1));
            }
        }
        Networks { v4_24s, v4_weights }
    }

    fn draw_v4(&self, rng: &mut StdRng) -> Ipv4Addr {
        let [a, b, c] = self.v4_24s[pick_weighted(rng, &self.v4_weights)];
        Ipv4Addr::new(a, b, c, rng.gen_range(1..=254))
    }

    fn draw(&self, rng: &mut StdRng) -> String {
        let roll = rng.gen_range(0..1000);
        let v4 = self.draw_v4(rng);
        let net = V6_48S[rng.gen_range(0..V6_48S.len())];
        let iid: [u16; 5] = [
            rng.r#gen(),
            rng.r#gen(),
            rng.r#gen(),
            rng.r#gen(),
            rng.r#gen::<u16>() | 1,
        ];
        let zone = ZONES[rng.gen_range(0..ZONES.len())];
        match roll {
            // IPv6 in a home /48, mostly compressed lowercase.
            0..=69 => Ipv6Addr::new(
                net[0], net[1], net[2], iid[0], iid[1], iid[2], iid[3], iid[4],
            )
            .to_string(),
            // ... sometimes shouted in full, as some producers do.
            70..=89 => {
                let groups = [
                    net[0], net[1], net[2], iid[0], iid[1], iid[2], iid[3], iid[4],
                ];
                let mut s = String::with_capacity(39);
                for (i, g) in groups.iter().enumerate() {
                    if i > 0 {
                        s.push(':');
                    }
                    s.push_str(&format!("{g:X}"));
                }
                s
            }
            90..=119 => format!("::ffff:{v4}"),
            120..=129 => {
                let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, iid[1], iid[2], iid[3], iid[4]);
                format!("{ll}%{zone}")
            }
            _ => v4.to_string(),
        }
    }
}

// ------------------------------------------------------------------ content

fn pick_weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

fn pick_weighted_pairs<T>(rng: &mut StdRng, items: &[(T, u32)]) -> usize {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (i, (_, w)) in items.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    items.len().saturating_sub(1)
}

struct Country {
    code: &'static str,
    currency: &'static str,
}

const COUNTRIES: [Country; 6] = [
    Country {
        code: "US",
        currency: "USD",
    },
    Country {
        code: "CA",
        currency: "USD",
    },
    Country {
        code: "GB",
        currency: "GBP",
    },
    Country {
        code: "DE",
        currency: "EUR",
    },
    Country {
        code: "MX",
        currency: "USD",
    },
    Country {
        code: "FR",
        currency: "EUR",
    },
];
const COUNTRY_WEIGHTS: &[u32] = &[880, 40, 30, 20, 20, 10];

const GENDERS: [&str; 3] = ["F", "M", "X"];
const GENDER_WEIGHTS: &[u32] = &[48, 48, 4];

/// (display name, ASCII form for emails).
const FIRST_NAMES: &[(&str, &str)] = &[
    ("Ana", "ana"),
    ("Bob", "bob"),
    ("Carlos", "carlos"),
    ("Chloé", "chloe"),
    ("David", "david"),
    ("Elena", "elena"),
    ("Émile", "emile"),
    ("Fatima", "fatima"),
    ("Grace", "grace"),
    ("Hiroshi", "hiroshi"),
    ("Isabel", "isabel"),
    ("James", "james"),
    ("Jamal", "jamal"),
    ("José", "jose"),
    ("Kate", "kate"),
    ("Lars", "lars"),
    ("Łukasz", "lukasz"),
    ("Maria", "maria"),
    ("Mei", "mei"),
    ("Michael", "michael"),
    ("Ngozi", "ngozi"),
    ("Olivia", "olivia"),
    ("Omar", "omar"),
    ("Priya", "priya"),
    ("Raj", "raj"),
    ("Sarah", "sarah"),
    ("Siobhán", "siobhan"),
    ("Tom", "tom"),
    ("Wei", "wei"),
    ("Zoë", "zoe"),
];
const LAST_NAMES: &[(&str, &str)] = &[
    ("Ruiz", "ruiz"),
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("García", "garcia"),
    ("Nguyen", "nguyen"),
    ("Müller", "mueller"),
    ("O'Brien", "obrien"),
    ("Kowalski", "kowalski"),
    ("Okafor", "okafor"),
    ("Patel", "patel"),
    ("Kim", "kim"),
    ("Chen", "chen"),
    ("Brown", "brown"),
    ("Williams", "williams"),
    ("Martin", "martin"),
    ("Rossi", "rossi"),
    ("Haddad", "haddad"),
    ("Tanaka", "tanaka"),
    ("Silva", "silva"),
    ("Novak", "novak"),
    ("Andersen", "andersen"),
    ("Dubois", "dubois"),
    ("Lopez", "lopez"),
    ("Walker", "walker"),
    ("Young", "young"),
];
const EMAIL_DOMAINS: &[(&str, u32)] = &[
    ("gmail.com", 40),
    ("yahoo.com", 10),
    ("outlook.com", 10),
    ("icloud.com", 8),
    ("hotmail.com", 5),
    ("proton.me", 3),
    ("fastmail.com", 2),
    ("example.com", 8),
    ("acme-corp.com", 5),
    ("bakery.example.org", 4),
    ("studio-north.co.uk", 3),
    ("firma.example.de", 2),
];

/// 60 zips in 12 three-digit prefixes, interleaved so that the Zipf ranks
/// spread over prefixes: rank r has weight 1/r.
const ZIPS: [&str; 60] = [
    "94110", "10001", "60614", "90012", "98101", "02139", "78701", "30303", "33125", "80202",
    "19103", "97201", "94103", "10011", "60657", "90026", "98103", "02134", "78704", "30306",
    "33130", "80205", "19104", "97205", "94117", "10016", "60622", "90034", "98109", "02118",
    "78745", "30309", "33139", "80210", "19106", "97209", "94122", "10025", "60647", "90045",
    "98115", "02115", "78751", "30318", "33145", "80218", "19123", "97214", "94109", "10003",
    "60618", "90066", "98122", "02143", "78758", "30324", "33133", "80220", "19147", "97217",
];
const ZIP_WEIGHTS: [u32; 60] = {
    let mut w = [0u32; 60];
    let mut i = 0;
    while i < 60 {
        w[i] = 60_000 / (i as u32 + 1);
        i += 1;
    }
    w
};
/// Area code by zip prefix (same order as a row of `ZIPS`).
const AREA_CODES: [u16; 12] = [415, 212, 312, 213, 206, 617, 512, 404, 305, 303, 215, 503];

/// (user agent, device). Versions are the reduced `x.0.0.0` forms, and no
/// UA holds a free-standing digit run that could read as a phone or IP.
const USER_AGENTS: &[(&str, &str)] = &[
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "desktop",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
        "desktop",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
        "mobile",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        "mobile",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        "mobile",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "tablet",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "tablet",
    ),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "bot",
    ),
    (
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "bot",
    ),
    (
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "bot",
    ),
];
/// Weights over `USER_AGENTS` for people (no bots).
const HUMAN_UA_WEIGHTS: &[u32] = &[22, 12, 8, 6, 3, 5, 20, 12, 6, 4, 2, 0, 0, 0];
/// Weights over `USER_AGENTS` for crawlers.
const BOT_UA_WEIGHTS: &[u32] = &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 3, 1];

const SOURCES: [&str; 3] = ["web-form", "chat", "landing-page"];
const SOURCE_WEIGHTS: &[u32] = &[55, 25, 20];
const INTERESTS: [&str; 4] = ["pricing", "demo", "support", "partnership"];
const INTEREST_WEIGHTS: &[u32] = &[40, 30, 20, 10];

fn lead_score(rng: &mut StdRng, interest: usize) -> u8 {
    let base: i32 = [62, 70, 35, 55][interest];
    let noise: i32 = (0..3).map(|_| rng.gen_range(-12..=12)).sum();
    (base + noise).clamp(0, 100) as u8
}

const OPENINGS: &[&str] = &["Hi,", "Hello!", "Hey team,", "Good morning,", "Hola,", ""];
const BODIES: [&[&str]; 4] = [
    &[
        "what does the Team plan cost for {n} seats?",
        "do you offer annual billing or a nonprofit discount?",
        "we're comparing vendors, could you send a quote for {n} users?",
        "is there a free tier? We're a small shop, just {n} of us.",
        "¿tienen precios especiales para ONG?",
    ],
    &[
        "could we book a demo next week? Tuesday or Thursday afternoon works.",
        "I'd love a walkthrough of the reporting features.",
        "our team of {n} wants to see the chat widget in action.",
        "can you show how the \"smart forms\" handle file uploads?",
    ],
    &[
        "the form on our landing page stopped sending leads since yesterday.",
        "how do I export last month's contacts to CSV?",
        "getting a \"403\" when I open the dashboard, any ideas?",
        "the chat widget shows twice on mobile, see page /pricing.",
    ],
    &[
        "we run an agency with {n} clients and would like to resell StackPro.",
        "interested in an integration partnership, who should I talk to?",
        "we build Shopify themes and want to bundle your forms.",
    ],
];
const CLOSINGS: &[&str] = &[
    "Thanks!",
    "Cheers",
    "Merci 🙏",
    "Best regards",
    "",
    "",
    "\nSent from my tablet",
];

/// Free text without any identifier: fixed phrases and small numbers only.
fn compose_message(rng: &mut StdRng, interest: usize, out: &mut String) {
    out.clear();
    let opening = OPENINGS[rng.gen_range(0..OPENINGS.len())];
    let bodies = BODIES[interest];
    let body = bodies[rng.gen_range(0..bodies.len())];
    let closing = CLOSINGS[rng.gen_range(0..CLOSINGS.len())];
    let n: u32 = rng.gen_range(2..=500);
    if !opening.is_empty() {
        out.push_str(opening);
        out.push(' ');
    }
    match body.split_once("{n}") {
        Some((before, after)) => {
            out.push_str(before);
            let mut digits = [0u8; 3];
            let len = {
                let mut v = n;
                let mut i = 3;
                loop {
                    i -= 1;
                    digits[i] = b'0' + (v % 10) as u8;
                    v /= 10;
                    if v == 0 {
                        break;
                    }
                }
                digits.copy_within(i..3, 0);
                3 - i
            };
            for &d in &digits[..len] {
                out.push(char::from(d));
            }
            out.push_str(after);
        }
        None => out.push_str(body),
    }
    if !closing.is_empty() {
        if !closing.starts_with('\n') {
            out.push(' ');
        }
        out.push_str(closing);
    }
}

const PAGES: [&str; 12] = [
    "/",
    "/pricing",
    "/features",
    "/blog/k-anonymity-explained",
    "/blog/gdpr-checklist",
    "/docs/getting-started",
    "/contact",
    "/signup",
    "/login",
    "/product/widgets",
    "/careers",
    "/pricing?plan=team",
];
const PAGE_WEIGHTS: &[u32] = &[25, 18, 10, 6, 4, 8, 6, 7, 8, 5, 1, 2];
const REFERRERS: [&str; 8] = [
    "",
    "https://www.google.com/",
    "https://www.bing.com/search?q=stackpro+pricing",
    "https://duckduckgo.com/",
    "https://www.linkedin.com/feed/",
    "https://t.co/xK3pQ9zLm",
    "https://news.ycombinator.com/",
    "https://stackpro.example/blog/",
];
const REFERRER_WEIGHTS: &[u32] = &[25, 35, 6, 5, 8, 5, 4, 12];

const CATEGORIES: [&str; 5] = ["apparel", "books", "electronics", "home", "toys"];
const CATEGORY_WEIGHTS: &[u32] = &[28, 18, 20, 22, 12];
/// Price range in cents per category.
const CATEGORY_PRICES: [(u64, u64); 5] = [
    (1_500, 25_000),
    (800, 6_000),
    (2_500, 150_000),
    (1_000, 40_000),
    (800, 12_000),
];

#[cfg(test)]
mod tests {
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
        let pool = Pool::new(17, 5_000);
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
            push_json_str(&mut buf, s.as_bytes());
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
