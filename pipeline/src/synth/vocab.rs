//! Vocabularies and weights: countries, names, domains, zips, user agents, pages, texts.

use rand::Rng;
use rand::rngs::StdRng;

pub(super) fn pick_weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
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

pub(super) fn pick_weighted_pairs<T>(rng: &mut StdRng, items: &[(T, u32)]) -> usize {
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

pub(super) struct Country {
    pub(super) code: &'static str,
    pub(super) currency: &'static str,
}

pub(super) const COUNTRIES: [Country; 6] = [
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
pub(super) const COUNTRY_WEIGHTS: &[u32] = &[880, 40, 30, 20, 20, 10];

pub(super) const GENDERS: [&str; 3] = ["F", "M", "X"];
pub(super) const GENDER_WEIGHTS: &[u32] = &[48, 48, 4];

/// (display name, ASCII form for emails).
pub(super) const FIRST_NAMES: &[(&str, &str)] = &[
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
pub(super) const LAST_NAMES: &[(&str, &str)] = &[
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
pub(super) const EMAIL_DOMAINS: &[(&str, u32)] = &[
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
pub(super) const ZIPS: [&str; 60] = [
    "94110", "10001", "60614", "90012", "98101", "02139", "78701", "30303", "33125", "80202",
    "19103", "97201", "94103", "10011", "60657", "90026", "98103", "02134", "78704", "30306",
    "33130", "80205", "19104", "97205", "94117", "10016", "60622", "90034", "98109", "02118",
    "78745", "30309", "33139", "80210", "19106", "97209", "94122", "10025", "60647", "90045",
    "98115", "02115", "78751", "30318", "33145", "80218", "19123", "97214", "94109", "10003",
    "60618", "90066", "98122", "02143", "78758", "30324", "33133", "80220", "19147", "97217",
];
pub(super) const ZIP_WEIGHTS: [u32; 60] = {
    let mut w = [0u32; 60];
    let mut i = 0;
    while i < 60 {
        w[i] = 60_000 / (i as u32 + 1);
        i += 1;
    }
    w
};
/// Area code by zip prefix (same order as a row of `ZIPS`).
pub(super) const AREA_CODES: [u16; 12] =
    [415, 212, 312, 213, 206, 617, 512, 404, 305, 303, 215, 503];

/// (user agent, device). Versions are the reduced `x.0.0.0` forms, and no
/// UA holds a free-standing digit run that could read as a phone or IP.
pub(super) const USER_AGENTS: &[(&str, &str)] = &[
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
pub(super) const HUMAN_UA_WEIGHTS: &[u32] = &[22, 12, 8, 6, 3, 5, 20, 12, 6, 4, 2, 0, 0, 0];
/// Weights over `USER_AGENTS` for crawlers.
pub(super) const BOT_UA_WEIGHTS: &[u32] = &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 3, 1];

pub(super) const SOURCES: [&str; 3] = ["web-form", "chat", "landing-page"];
pub(super) const SOURCE_WEIGHTS: &[u32] = &[55, 25, 20];
pub(super) const INTERESTS: [&str; 4] = ["pricing", "demo", "support", "partnership"];
pub(super) const INTEREST_WEIGHTS: &[u32] = &[40, 30, 20, 10];

pub(super) fn lead_score(rng: &mut StdRng, interest: usize) -> u8 {
    let base: i32 = [62, 70, 35, 55][interest];
    let noise: i32 = (0..3).map(|_| rng.gen_range(-12..=12)).sum();
    (base + noise).clamp(0, 100) as u8
}

pub(super) const OPENINGS: &[&str] = &["Hi,", "Hello!", "Hey team,", "Good morning,", "Hola,", ""];
pub(super) const BODIES: [&[&str]; 4] = [
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
pub(super) const CLOSINGS: &[&str] = &[
    "Thanks!",
    "Cheers",
    "Merci 🙏",
    "Best regards",
    "",
    "",
    "\nSent from my tablet",
];

/// Free text without any identifier: fixed phrases and small numbers only.
pub(super) fn compose_message(rng: &mut StdRng, interest: usize, out: &mut String) {
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

pub(super) const PAGES: [&str; 12] = [
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
pub(super) const PAGE_WEIGHTS: &[u32] = &[25, 18, 10, 6, 4, 8, 6, 7, 8, 5, 1, 2];
pub(super) const REFERRERS: [&str; 8] = [
    "",
    "https://www.google.com/",
    "https://www.bing.com/search?q=stackpro+pricing",
    "https://duckduckgo.com/",
    "https://www.linkedin.com/feed/",
    "https://t.co/xK3pQ9zLm",
    "https://news.ycombinator.com/",
    "https://stackpro.example/blog/",
];
pub(super) const REFERRER_WEIGHTS: &[u32] = &[25, 35, 6, 5, 8, 5, 4, 12];

pub(super) const CATEGORIES: [&str; 5] = ["apparel", "books", "electronics", "home", "toys"];
pub(super) const CATEGORY_WEIGHTS: &[u32] = &[28, 18, 20, 22, 12];
/// Price range in cents per category.
pub(super) const CATEGORY_PRICES: [(u64, u64); 5] = [
    (1_500, 25_000),
    (800, 6_000),
    (2_500, 150_000),
    (1_000, 40_000),
    (800, 12_000),
];
