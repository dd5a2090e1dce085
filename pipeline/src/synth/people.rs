//! The person pool: stable emails, phones, zips, devices and home networks, with a skew
//! so that some people come back often.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Profile;
use super::vocab::{
    AREA_CODES, COUNTRIES, COUNTRY_WEIGHTS, EMAIL_DOMAINS, FIRST_NAMES, GENDER_WEIGHTS,
    HUMAN_UA_WEIGHTS, LAST_NAMES, ZIP_WEIGHTS, ZIPS, pick_weighted, pick_weighted_pairs,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub(super) struct Person {
    pub(super) name: Box<str>,
    /// Canonical presentation (its case style is the person's habit).
    pub(super) email: Box<str>,
    pub(super) phone: Box<str>,
    pub(super) zip: Box<str>,
    pub(super) ip: Box<str>,
    pub(super) visitor: u64,
    pub(super) age: u8,
    pub(super) gender: u8,
    pub(super) country: u8,
    pub(super) ua: u8,
}

pub(super) struct Pool {
    pub(super) people: Vec<Person>,
    pub(super) bot_seed: u64,
    /// Draws people uniformly instead of skewed (the near-unique profile).
    pub(super) uniform: bool,
}

pub(super) const BOT_VISITORS: u64 = 8;

impl Pool {
    pub(super) fn new(seed: u64, size: usize, profile: Profile) -> Self {
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
            uniform: profile == Profile::NearUnique,
        }
    }

    /// A person, skewed: index `n * u^2` gives the first persons many records
    /// and the last ones few.
    pub(super) fn pick(&self, rng: &mut StdRng) -> usize {
        if self.uniform {
            return rng.gen_range(0..self.people.len());
        }
        let u: f64 = rng.r#gen();
        ((u * u * self.people.len() as f64) as usize).min(self.people.len() - 1)
    }

    pub(super) fn bot_visitor(&self, i: u64) -> u64 {
        splitmix64(self.bot_seed ^ i)
    }
}

pub(super) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(super) fn make_email(rng: &mut StdRng, idx: usize, first: &str, last: &str) -> String {
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
pub(super) enum EmailStyle {
    AsIs,
    Padded,
    Upper,
}

impl EmailStyle {
    pub(super) fn draw(rng: &mut StdRng) -> Self {
        match rng.gen_range(0..100) {
            0..=3 => EmailStyle::Padded,
            4..=5 => EmailStyle::Upper,
            _ => EmailStyle::AsIs,
        }
    }

    /// Writes the email text (emails hold no characters that need JSON
    /// escaping; padded ones are quoted for CSV).
    pub(super) fn push(self, buf: &mut Vec<u8>, email: &str, csv: bool) {
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

pub(super) fn make_phone(rng: &mut StdRng, country: &str, zip_idx: usize) -> String {
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
pub(super) struct Networks {
    pub(super) v4_24s: Vec<[u8; 3]>,
    pub(super) v4_weights: Vec<u32>,
}

/// /16s, each with five /24 third octets.
pub(super) const V4_NETS: [([u8; 2], [u8; 5]); 6] = [
    ([73, 162], [14, 77, 130, 201, 245]),
    ([98, 207], [3, 58, 112, 190, 233]),
    ([24, 130], [9, 66, 121, 180, 250]),
    ([71, 198], [22, 47, 133, 164, 219]),
    ([68, 45], [5, 88, 140, 172, 230]),
    ([203, 0], [113, 114, 7, 60, 200]),
];
/// IPv6 /48s within three /32s (2001:db8::/32, 2600:1700::/32, 2a02:8108::/32).
pub(super) const V6_48S: [[u16; 3]; 6] = [
    [0x2001, 0x0db8, 0x85a3],
    [0x2001, 0x0db8, 0x1f00],
    [0x2600, 0x1700, 0x07c0],
    [0x2600, 0x1700, 0x3b12],
    [0x2a02, 0x8108, 0x1240],
    [0x2a02, 0x8108, 0x0501],
];
pub(super) const ZONES: [&str; 3] = ["eth0", "en0", "wlan0"];

impl Networks {
    pub(super) fn for_pool(people: usize) -> Self {
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

    pub(super) fn draw_v4(&self, rng: &mut StdRng) -> Ipv4Addr {
        let [a, b, c] = self.v4_24s[pick_weighted(rng, &self.v4_weights)];
        Ipv4Addr::new(a, b, c, rng.gen_range(1..=254))
    }

    pub(super) fn draw(&self, rng: &mut StdRng) -> String {
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

/// A visitor's address from anywhere on the public internet (the near-unique profile):
/// IPv4 with a first octet among the unicast /8s outside the private, loopback,
/// link-local and documentation ranges, the rest uniform; one in ten IPv6 within one of
/// 64 provider /32s, the rest uniform. Written into `out` (cleared first).
pub(super) fn push_fresh_ip(rng: &mut StdRng, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    if rng.gen_ratio(1, 10) {
        let net: u16 = rng.gen_range(0..64);
        let groups: [u16; 6] = rng.r#gen();
        let ip = Ipv6Addr::new(
            0x2400 + (net << 4),
            0x0100 + net,
            groups[0],
            groups[1],
            groups[2],
            groups[3],
            groups[4],
            groups[5] | 1,
        );
        let _ = write!(out, "{ip}");
        return;
    }
    let first = loop {
        let a: u8 = rng.gen_range(1..=223);
        if !matches!(a, 10 | 100 | 127 | 169 | 172 | 192 | 198 | 203) {
            break a;
        }
    };
    let [b, c, d]: [u8; 3] = rng.r#gen();
    let _ = write!(out, "{}", Ipv4Addr::new(first, b, c, d.max(1)));
}
