//! The record stream: each record drawn from the person pool, the clock and the
//! vocabularies, clean or dirty, and written by the encoders.

use super::Profile;
use super::clock::Clock;
use super::datasets::{BAD_IPS, BAD_ZIPS, Dataset, Dirt, INVALID_UTF8};
use super::encode::{Rec, push_2, push_hex_u64, push_order_id, push_u64, push_uuid};
use super::people::push_fresh_ip;
use super::people::{BOT_VISITORS, EmailStyle, Pool};
use super::vocab::{
    BOT_UA_WEIGHTS, CATEGORIES, CATEGORY_PRICES, CATEGORY_WEIGHTS, COUNTRIES, GENDERS,
    HUMAN_UA_WEIGHTS, INTEREST_WEIGHTS, INTERESTS, PAGE_WEIGHTS, PAGES, REFERRER_WEIGHTS,
    REFERRERS, SOURCE_WEIGHTS, SOURCES, USER_AGENTS, compose_message, lead_score, pick_weighted,
};
use rand::Rng;
use rand::rngs::StdRng;

pub(super) struct Generator {
    pub(super) dataset: Dataset,
    pub(super) csv: bool,
    pub(super) tenant: String,
    pub(super) clock: Clock,
    pub(super) pool: Pool,
    pub(super) rng: StdRng,
    pub(super) scratch: String,
    pub(super) kinds: &'static [Dirt],
    pub(super) dirt_seen: u64,
    pub(super) profile: Profile,
    /// The fresh address of the current record (near-unique profile).
    pub(super) ip_buf: String,
}

/// (kind, how many bad records of this kind came before) — the second part
/// picks a variant (`age` vs `lead_score`, which bad IP, …).
pub(super) type DirtPick = Option<(Dirt, u64)>;

impl Generator {
    pub(super) fn record(&mut self, dirt: DirtPick, buf: &mut Vec<u8>) {
        match self.dataset {
            Dataset::Contacts => self.contact(dirt, buf),
            Dataset::WebEvents => self.web_event(dirt, buf),
            Dataset::Orders => self.order(dirt, buf),
        }
    }

    /// Writes the whole-line defects; true if the line is done.
    pub(super) fn whole_line_dirt(
        &self,
        dirt: DirtPick,
        id_field: &str,
        buf: &mut Vec<u8>,
    ) -> bool {
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

    pub(super) fn contact(&mut self, dirt: DirtPick, buf: &mut Vec<u8>) {
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
        let fresh_ip = self.profile == Profile::NearUnique;
        if fresh_ip {
            push_fresh_ip(rng, &mut self.ip_buf);
        }
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
        } else if fresh_ip {
            w.plain("ip", &self.ip_buf);
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

    pub(super) fn web_event(&mut self, dirt: DirtPick, buf: &mut Vec<u8>) {
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
        let fresh_ip = self.profile == Profile::NearUnique;
        if fresh_ip {
            push_fresh_ip(rng, &mut self.ip_buf);
        }
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
        } else if fresh_ip {
            w.plain("ip", &self.ip_buf);
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

    pub(super) fn order(&mut self, dirt: DirtPick, buf: &mut Vec<u8>) {
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
