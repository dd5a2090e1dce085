//! Detection of raw personal identifiers in free text.
//!
//! Two callers rely on this module: the ingest worker quarantines a record whose
//! kept free-text field looks like it carries PII, and `stackpro verify` scans
//! every string column of published Parquet and fails on any finding. A missed
//! identifier leaks personal data, so the rules lean towards recall; a false
//! alarm fails verification of clean data, so every rule below also names the
//! look-alikes it deliberately leaves alone.
//!
//! # What is read
//! Producers are untrusted, so the rules below read the text the way a person reads it:
//! normalized by [`crate::text::normalize`] (NFKC, so fullwidth `ａｎａ＠example.com`
//! and `４１５` are plain ASCII, and no-break spaces are spaces; invisible code points
//! such as `\u{200B}`, the soft hyphen, the BOM and NUL removed, so they split
//! nothing), and with the decimal digits of every script (Unicode general category
//! `Nd`: Arabic-Indic `٤١٥`, Devanagari `४१५`, Thai…) read as the ASCII digits of the
//! same value. Wherever the rules say "digit" they mean that; "letter" in an edge rule
//! still means an ASCII letter.
//!
//! Findings are byte ranges into the text given, always on char boundaries, so they are
//! valid `str` slice bounds of it. A finding covers the characters it was read from:
//! invisible characters inside it are part of it (`ana\u{200B}@example.com` is one
//! finding), and where normalization changed a character the range takes that whole
//! character. [`find_all_pii`] returns non-overlapping findings in text order (on
//! overlap the earlier, then the longer one wins: `::ffff:203.0.113.9` is one IPv6
//! finding, not an IPv6 and an IPv4 one).
//!
//! # Email
//! `local@domain.tld`, case-insensitive: a local part of letters (any script,
//! `ÉLODIE@exemple.fr`), marks, digits and `._%+-`; a domain of one or more
//! dot-separated labels (letters and digits of any script, inner marks and hyphens)
//! followed by a top-level label that is either ASCII letters (2 to 63, ending at an
//! ASCII word boundary), punycode (`ana@xn--e1afmkfd.xn--p1ai`) or letters of any
//! script (`ana@пример.рф`, `user@例え.テスト`, ending at a word boundary). The local
//! part may also be quoted (`"a b"@example.com`: up to 64 characters other than `"`, `\`
//! and line breaks, at least one a letter or digit). Not findings: `user@localhost` (no
//! dot), `npm@1.2.3` (numeric TLD), `a***@example.com`-style masks whose visible local
//! part is empty (and `"***"@example.com`), and retina asset names such as `logo@2x.png`
//! (the "TLDs" `png`, `jpg`, `jpeg`, `gif`, `svg`, `webp` are file extensions).
//!
//! The `@` and the dots may be spelled out: before the scan, a shadow of the text reads
//! `%40` percent-encoded up to three times (`%40`, `%2540`, `%252540`; a fourth level is
//! left alone), the HTML references `&#64;` and `&#x40;` (either case, any leading
//! zeros, the `;` optional when the number ends there: `&#640;` is another character)
//! and `&commat;`, and the obfuscations `(at)`, `[at]`, `{at}`, `<at>` as `@` and
//! `(dot)`, `[dot]`, `{dot}`, `<dot>` as `.` (any case, spaces and tabs around and inside
//! them taken along): `ana%40x.com`, `ana&#64;x.com`, `ana [at] x [dot] com` are
//! findings, whose range covers the spelling in the text given. The same rules then
//! apply, so `ana(at)localhost` is no finding, and neither is a bare word `at`
//! (`ana at example dot com` reads as prose and is left alone) nor a lone `(at)` with no
//! address around it.
//!
//! # Percent-escapes
//! Object names are checked per path segment as they are stored, so their characters may
//! be percent-escaped: besides the text given, its reading with every `%XX` escape of a
//! printable ASCII character decoded (`%20`, `%2E`, `%2D`, `%2F`, `%3A`…; decoded again
//! up to three levels, so `%2520` is a space) is checked by all the rules, and its
//! findings cover the escapes they were read from: `+1%20404%20936%201074.ndjson` is a
//! phone, `203%2E0%2E113%2E57` an IPv4 address, `ana%40x%2Ecom` an email. `%40` and its
//! re-encodings are left to the email rule (at most three levels, as above). A finding of
//! the text given that starts or ends inside a decoded escape read its hex digits as
//! digits and is dropped (`report%202026-11-24.csv` is a space and a date, no phone).
//! Escapes of other bytes (`%00`, `%C3%A9`) are not decoded.
//!
//! # Phone
//! A *core* is a run of digit groups joined by separators: a single `.`, `_` or `,`, or
//! one to five bytes of space, tab, `-`, `(`, `)`, no-break spaces and dashes (the hyphen
//! U+2010 that NFKC makes of the non-breaking hyphen, the figure and en dashes). A
//! `+` and/or `(` directly in front of the first digit belongs to the core. A core is
//! a phone when
//! - it holds 7 to 15 digits (E.164 allows at most 15);
//! - if a `,` joins two of its groups, it is grouped like a phone (`415,555,1234`,
//!   `+1,415,555,1234`: at least three groups, the first of 1 to 4 digits, the middle
//!   ones of 3 or 4, the last of 4, not all of 4), not like a number in thousands
//!   (`1,234,567`) or a list (`10,20,30,40`, `2019,2020,2021`);
//! - it is not blocked on the left: the character before it is not a digit, currency
//!   sign (`$€£¥`) or a `.` that is not glued to a word (a decimal point: `.1234567`),
//!   nor a `:` unless that `:` ends a label word (`tel:+14155550134`, `Phone:415…`: no
//!   clock field or IPv6 group is 7+ digits long, so only the label case is let
//!   through);
//! - it is not blocked on the right: the character after its last digit is not a `:`
//!   followed by more than a space (`4155550134:30`); a sentence full stop after a
//!   number (`call 415.555.0134.`) is fine, and so is an extension (`x12`, `ext. 12`, or a
//!   bare `x` or `ext` ending the word);
//! - if it is *glued* (on the left an ASCII letter, `_` or `/`, or a `-` or `.` right
//!   after a word: `tel4155550134`, `lead_4155550134`, `/4155550134`, `ORD-4155550134`,
//!   `x.4155550134`; on the right a letter, a `_`, or a `/`, `-` or `.` followed by a
//!   word: `4155550134y`, `4155550134-x`, `4155550134.txt`; or a `_` among its
//!   separators: `415_555_0134`), it is not joined by dots (then it is a version:
//!   `Chrome/120.0.6099.109`, `v1.2.3.4155550134`) and not a date stamp (`YYYYMMDD`,
//!   optionally followed, directly or after a `_` or `-`, by `hhmm` or `hhmmss`:
//!   `Gecko/20100101`, `backup_20241124_153000`, `build-20241124`, `20261124.csv`);
//! - its last group, if of one or two digits parted from the rest by a space (or tab,
//!   no-break space, en dash, `,`), is not glued to a word on the right: that is a word
//!   of its own (`415-555-0134 9pm`, `… 2nd floor`), and the rest is judged alone;
//! - it is not inside an id: the word of ASCII letters and digits around its first or
//!   last digit is not made only of hex digits and at least 16 long (HMAC and SHA
//!   digests, the 16 hex digits of `v-8f3a…` visitor ids), not 26 Crockford base32
//!   characters (a ULID: `evt_01JD3K…`), and not a group of a UUID-shaped token
//!   (`8-4-4-4-12` hex digits of either case, in any text, whatever it is glued to);
//! - it is not an ISO date `YYYY-MM-DD` (also `YYYY.MM.DD`, `YYYY_MM_DD`,
//!   `DD.MM.YYYY`, `MM-DD-YYYY`: three groups, one repeated separator, plausible month
//!   and day, whatever follows: `2026-11-24T15:04:05Z`), not a dotted IPv4 address (four
//!   dot-separated groups of 1-3 digits, each at most 255: those are judged by the IPv4
//!   rule), not a plain decimal (`1234567.89`) and not a ZIP+4 code (`94110-1234`,
//!   `CA-94110-1234`).
//!
//! A glued core joined by dots is still a phone when grouped like one rather than like a
//! version: after an optional country code of 1 to 3 digits (when 4+ groups), at least
//! three groups of 2 to 4 digits, the last of 4, 9 digits or more (`a404.936.1074`,
//! `x-404.936.1074`, `404.936.1074-x1`, `1.404.936.1074-a`; not `Chrome/120.0.6099.109`,
//! `v1.2.3.4155550134`, `lib-1.2.3.4155`, nor when a date is among the groups:
//! `build-2024.11.24.1530`). Two groups joined by one `,` are a phone when
//! the first has 6 or 7 digits and the last 4 and no list goes on around them
//! (`404936,1074`; not `12345,1234`, `10,20,404936,1074`).
//!
//! Digit groups joined by one repeated `/`, `\`, `|`, `:`, `~` or `·` (U+00B7) are a
//! phone when there are 3 or more groups of 2 to 4 digits each (after a `+`, the first
//! may be a country code of 1 to 3: `+1/404/936/1074`), 7 to 15 digits in all:
//! `404/936/1074`, `/call/404/936/1074`, `404|936|1074`, `404:936:1074`, `404·936·1074`.
//! Not findings: a run glued to a letter or digit, or to a `.`, `,`, `-` or `_` before
//! more digits; dates among the groups (`11/24/2026`, `2026/11/24`, EXIF
//! `2026:11:24`); joined by `:`, groups of two digits each (clock times and timecodes,
//! decimal MAC addresses: `10:15:30:45`, `00:11:22:33:44:55`) or a run beside another
//! `:` group (IPv6 `2001:4860:4860::`); paths of numeric ids with a group outside 2-4
//! digits (`/users/12345/orders/678`); four groups joined by `/` that are octets (see
//! IPv4: `98/207/58/0` is a truncated address, no phone).
//!
//! Words and punctuation glued to a number do not hide it: `-`, `.` and letters on
//! either side are exempt only through the id, version, date and date-stamp rules, not
//! as such. Digit runs inside hex strings (HMAC digests, `v-…` visitor ids), ULIDs and
//! UUIDs therefore never count because they are ids, and masked phones (`+* (***)
//! ***-0134`, `***-***-**34`, `+*********5678`) show at most 4 digits. A random 64-hex
//! digest holds a 10-digit run about half the time, so the id rule, not luck, keeps
//! digests clean; the price is that a phone hidden in a 16+ hex-digit word
//! (`deadbeef4155550134`) or a ULID-shaped word is missed, while a shorter hex word, or a
//! word with letters beyond `a-f`, is text (`ab4155550134`, `abc1234567de`,
//! `4155550134xyz` are found). If a whole core fails (more than 15 digits, or a bad
//! edge such as a following `:` in `415-555-0134 10:30`), its parts between separators
//! that contain a space (or a `,`) are examined on their own, so two numbers separated
//! by a space, a list of numbers, or a phone followed by a clock time, are not missed; a
//! part that is itself a date, decimal or IPv4-shaped is never merged with a neighbour.
//! Known accepted noise: any free-standing or glued 7-15 digit number (an epoch
//! timestamp, `order #12345678`, `order_12345678`, `ORD-12345678`, `o-123456789012`,
//! `/products/12345678`, a 9-10 digit IPv4 integer such as `E-ipint-167838211`) counts
//! as a phone, as the rule says, and so does a comma list shaped like one
//! (`100,250,1000`).
//!
//! # IPv4
//! Four dot-separated decimal octets 0-255 (1-3 digits each, leading zeros
//! allowed: `010.001.002.003` is ambiguous but clearly an address) inside a run
//! of `[0-9.]` bounded by other characters; a sentence dot before or after the
//! run is ignored, and so is what it is glued to (`ip_203.0.113.57`,
//! `host203.0.113.57`, `a/203.0.113.57/b`). Only a *full* address is a finding: one
//! whose last octet is not 0. The truncated forms published by `default-v2` (`203.0.113.0` for /24,
//! `203.0.0.0` for /16) are allowed, and so are 5-part version numbers.
//!
//! Also an address written with another separator: four octets 0-255 (1-3 digits) joined
//! by one repeated `-` or `_` (`10-1-2-3`, `ip-10-1-2-3.ec2.internal`, `10_1_2_3`),
//! whatever letters they are glued to, but not joined by `-_.,` to more digits on either
//! side, the last octet not 0. Dates are never such (their year has four digits:
//! `2026-11-24`), nor UUID groups (four hex digits each), nor `Mac OS X 10_15_7` (three
//! parts). And a 32-bit hex literal: `0x` (or `0X`) and exactly 8 hex digits, not inside
//! a word, its last byte not 0 (`0x0a010203` is 10.1.2.3; `0x0a010200` is truncated).
//! Known accepted noise: any other 32-bit hex constant (`0xdeadbeef`) reads as an address.
//! A decimal IPv4 integer (`167838211`) is 9-10 digits, which the phone rule finds.
//!
//! Also an address in path form: exactly four octets 0-255 (1-3 digits) joined directly by
//! `/`, not glued to a letter or digit (`/ip/98/207/58/39`); the last octet 0 is a
//! truncated address and allowed (`/ip/98/207/58/0`). Known accepted noise: any other
//! four such numbers in a path (`/v/1/2/3/4`).
//!
//! # Payment card
//! 13 to 19 digits passing the Luhn check, written as one run (`4111111111111111`) or in
//! groups of four, the last of 1 to 4 (or Amex `4-6-5`, Diners `4-6-4`), joined by one
//! repeated space or `-` (`4111 1111 1111 1111`, `4111-1111-1111-1111`), kind `card`. Not
//! glued: no letter or digit beside it, no `.`, `,`, `-` or `_` before a letter or digit
//! (`1.4111111111111111`, `ORD-4111111111111111`), and a single run that is a date stamp
//! (`20241124153000`) is none. A card that is also phone-shaped (13-15 digits) is reported
//! as a card. Hex digests, ULIDs and UUIDs never hold one: their digit runs are glued to
//! letters, or joined by dashes into other groupings. Known accepted noise: one in ten
//! free-standing 16-19 digit numbers (an order number, a nanosecond timestamp) passes
//! Luhn.
//!
//! # IBAN
//! Two letters of a country that issues IBANs, two check digits, then letters and digits
//! up to that country's length (15 to 34 in all: `DE` 22, `GB` 22, `FR` 27…), either as
//! one word or in groups of four joined by single spaces (`DE89370400440532013000`,
//! `DE89 3704 0044 0532 0130 00`), passing the ISO 7064 mod-97 check, not glued to a
//! letter or digit on either side; kind `iban`. The country's length, not any length from
//! 15 to 34, keeps hex words clean: a 16+ hex digest beginning `BE12…` has one chance in
//! 97 to pass the check, but only as a whole word of exactly that length. An unknown
//! country code (`XX89…`) is no finding.
//!
//! # Device UUID
//! A canonical UUID (`8-4-4-4-12` hex digits, either case) of version 1 or 2 (the first
//! digit of its third group) with the RFC 4122 variant (`8`, `9`, `a` or `b` first in its
//! fourth group) carries the time it was made and the MAC address of the device that made
//! it: the whole UUID is a finding of kind `device_uuid`, also inside text and names
//! (`evt_…`, `{…}`, `id=…;`), but not inside a longer word of letters and digits or a
//! longer dash-joined hex run. Other versions are clean: 4 is random, 3
//! and 5 are hashes, 7 (`018f3e4a-7b2c-7d3e-…`) carries only a millisecond timestamp and
//! is left alone, as are 6 and 8 and UUIDs of other variants.
//!
//! # IPv6
//! Text is split into tokens on whitespace and `,;"'<>()[]{}`. A token with at
//! least two `:` is a candidate after dropping trailing `.!?`, anything up to a
//! `=` (`ip=2001:db8::1`) and a `%zone` or `/prefix` suffix; it must parse as
//! [`std::net::Ipv6Addr`]. It is a finding when any bit after the first 48 is
//! set, so the published /48 and /32 forms (`2001:db8:85a3::`, `fe80::`, `::`)
//! are allowed while `::1`, `fe80::1%eth0` and full addresses are not.
//! IPv4-mapped addresses (`::ffff:203.0.113.9`) and 6to4 addresses (`2002:cb00:7139::`,
//! which carry 203.0.113.57) are also judged by the IPv4 rule on the address they carry.
//! An address is also found inside a path (`/geo/2001:db8::1`), after a label of its own
//! (`ip:2001:db8::1`) or before a colon.
//! Clock times (`15:04:05`), MAC addresses and `std::net` paths do not parse
//! and are not findings. Deliberately left alone: an address written as 32 hex digits
//! without colons (`20010db8000000000000000000000001`), which cannot be told from an MD5
//! digest or a UUID without dashes.

mod email;
mod escapes;
mod ids;
mod net;
mod phone;

use std::borrow::Cow;

use self::email::{Spelled, scan_emails};
use self::ids::{is_device_uuid, scan_cards, scan_device_uuids, scan_ibans};
use self::net::{scan_ipv4, scan_ipv4_hex, scan_ipv4_joined, scan_ipv6};
use self::phone::{MIN_PHONE_DIGITS, is_phone_joiner, scan_other_joiners, scan_phones};
use crate::text::foreign_digit_value;

/// The kind of personal identifier found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiKind {
    Email,
    Phone,
    Ipv4,
    Ipv6,
    /// A payment card number (Luhn-valid).
    Card,
    /// An IBAN (mod-97-valid).
    Iban,
    /// A version 1 or 2 UUID, which carries the device's MAC address.
    DeviceUuid,
}

impl PiiKind {
    /// Stable lowercase name, used in quarantine reasons and verify output.
    pub fn as_str(&self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::Ipv4 => "ipv4",
            PiiKind::Ipv6 => "ipv6",
            PiiKind::Card => "card",
            PiiKind::Iban => "iban",
            PiiKind::DeviceUuid => "device_uuid",
        }
    }
}

impl std::fmt::Display for PiiKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One identifier found in a text: its kind and byte range `start..end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

/// The first identifier in `text` (lowest start offset), if any. Its range is into
/// `text` itself (see the module docs on what is read).
pub fn find_pii(text: &str) -> Option<Finding> {
    find_all_pii(text).into_iter().next()
}

// Byte classes for the pre-check of [`find_all_pii`].
pub(super) const DIGIT: u16 = 1;
pub(super) const DOT: u16 = 2;
pub(super) const AT: u16 = 4;
pub(super) const COLON: u16 = 8;
/// A digit, or a byte that may join digit groups in a phone core (see [`scan_phones`]):
/// the pre-check must never rule out a core the scanner would judge.
pub(super) const IN_PHONE: u16 = 16;
/// A byte outside printable ASCII, tab, newline and CR: the text may change under
/// normalization or hold digits of another script, so it takes the slow path.
pub(super) const NOT_PLAIN: u16 = 32;
/// `-` or `_`, which join the octets of an IPv4 address written `10-1-2-3`.
pub(super) const IPV4_JOIN: u16 = 64;
/// `x` or `X`, of a hex literal (`0x0a010203`).
pub(super) const HEX_MARK: u16 = 128;
/// A byte that starts a spelling of `@` (`%40`, `&#64;`, `(at)`, `[at]`, `{at}`, `<at>`).
pub(super) const AT_HINT: u16 = 256;
/// A byte of a separator that [`scan_other_joiners`] reads: `/`, `\`, `|`, `:`, `~`, and the
/// second byte of `·`.
pub(super) const OTHER_JOIN: u16 = 512;

pub(super) const BYTE_CLASS: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        let class = match b as u8 {
            b'0'..=b'9' => DIGIT | IN_PHONE,
            b'.' => DOT | IN_PHONE,
            b'_' | b'-' => IPV4_JOIN | IN_PHONE,
            b',' => IN_PHONE,
            b'(' => AT_HINT | IN_PHONE,
            b'x' | b'X' => HEX_MARK,
            b'%' | b'&' | b'[' | b'{' | b'<' => AT_HINT,
            joiner if is_phone_joiner(joiner) => IN_PHONE,
            b'@' => AT,
            b':' => COLON | OTHER_JOIN,
            b'/' | b'\\' | b'|' | b'~' | 0xB7 => OTHER_JOIN,
            _ => 0,
        };
        table[b] = match b as u8 {
            0x20..=0x7e | b'\t' | b'\n' | b'\r' => class,
            _ => class | NOT_PLAIN,
        };
        b += 1;
    }
    table
};

/// Every identifier in `text`, non-overlapping, ordered by start offset. Ranges are
/// into `text` itself, although the rules read its normalized form (see the module
/// docs).
pub fn find_all_pii(text: &str) -> Vec<Finding> {
    // The ids of most producers' events are UUIDs, kept and checked on every record, and
    // a third of random ones hold a run of 7+ digits across a dash that the phone rule
    // must judge (see `random_uuids_are_clean`). By the rules above a canonical UUID holds
    // no identifier but itself, when of version 1 or 2 (no card: its digit groups are
    // joined into 32 digits or fewer than 13; no IBAN: no 15 letters and digits in a row): it has no `@`, `.`, `:`, `x` or spelled `@`, no run of four octets
    // (its groups are 4 hex digits or more), and each of its digit runs either fills all
    // 32 hex digits (too many for a phone) or starts or ends in a group of that
    // UUID-shaped token (an id). Answered from its shape, it costs a tenth.
    // `canonical_uuids_hold_no_identifier` holds the scanners to that on digit-heavy ones.
    // Versions 1 and 2 carry the device's MAC address: the whole id is the finding.
    if is_canonical_uuid(text.as_bytes()) {
        return if is_device_uuid(text.as_bytes()) {
            vec![Finding {
                kind: PiiKind::DeviceUuid,
                start: 0,
                end: text.len(),
            }]
        } else {
            Vec::new()
        };
    }
    scan_all(text)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits of either case.
pub(super) fn is_canonical_uuid(b: &[u8]) -> bool {
    // Without a branch per byte: digits and letters alternate at random in ids.
    let hex = |g: &[u8]| g.iter().fold(true, |ok, c| ok & c.is_ascii_hexdigit());
    b.len() == 36
        && [8, 13, 18, 23].iter().all(|&at| b[at] == b'-')
        && [&b[..8], &b[9..13], &b[14..18], &b[19..23], &b[24..]]
            .iter()
            .all(|group| hex(group))
}

/// [`find_all_pii`] without its shortcut: every scanner the pre-check lets through, on
/// the normalized text.
pub(super) fn scan_all(text: &str) -> Vec<Finding> {
    scan_all_at(text, 0)
}

/// Percent-escapes are decoded up to this many times (`%2520` is a space).
pub(super) const PERCENT_LEVELS: usize = 3;

/// [`scan_all`] of a text that is `depth` percent-decodings from the one given.
pub(super) fn scan_all_at(text: &str, depth: usize) -> Vec<Finding> {
    let pre = PreCheck::of(text.as_bytes());
    let mut found = if pre.seen & NOT_PLAIN == 0 {
        // Printable ASCII is its own normal form and holds only ASCII digits: scanned as
        // it is, with no copy and no second pass.
        run_scanners(text, &pre)
    } else {
        scan_unicode(text, &pre)
    };
    // Object names spell characters as percent-escapes (`+1%20404%20936%201074`): the
    // decoded text is read too, its findings mapped onto the escapes they came from.
    if depth < PERCENT_LEVELS
        && pre.seen & AT_HINT != 0
        && let Some(decoded) = Spelled::percent_decoded(text)
    {
        // A finding that starts or ends inside an escape read its hex digits as digits
        // (`%202026-11-24` is a space and a date): the decoded reading stands instead.
        let cuts = |f: &Finding| {
            decoded.replaced.iter().any(|&(_, escape_end)| {
                let inner = escape_end - 2..escape_end;
                inner.contains(&f.start) || inner.contains(&f.end)
            })
        };
        let before = found.len();
        found.retain(|f| !cuts(f));
        let more = scan_all_at(&decoded.text, depth + 1);
        if !more.is_empty() || found.len() != before {
            found.extend(more.into_iter().map(|f| Finding {
                kind: f.kind,
                start: decoded.original(f.start),
                end: decoded.original(f.end),
            }));
            found = merge(found);
        }
    }
    found
}

/// `found` sorted by start (the longer first on a tie) without overlaps: the earlier
/// finding wins.
pub(super) fn merge(mut found: Vec<Finding>) -> Vec<Finding> {
    if found.len() > 1 {
        found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
        for f in found {
            match kept.last() {
                Some(last) if f.start < last.end => {}
                _ => kept.push(f),
            }
        }
        found = kept;
    }
    found
}

/// What one pass of counting over the bytes says about which scanners can match.
pub(super) struct PreCheck {
    pub(super) digits: usize,
    pub(super) dots: usize,
    pub(super) longest_run: usize,
    pub(super) seen: u16,
}

impl PreCheck {
    pub(super) fn of(bytes: &[u8]) -> PreCheck {
        // A phone needs seven digits joined only by separators, an IPv4 address three
        // dots, an email `@`, an IPv6 address `:`. One table lookup per byte and no
        // branches: ids and hex digests mix digits and letters at random, and a branch
        // per byte would be mispredicted half the time.
        let (mut digits, mut dots, mut seen) = (0usize, 0usize, 0u16);
        let (mut run, mut longest_run) = (0usize, 0usize);
        for &b in bytes {
            let class = BYTE_CLASS[usize::from(b)];
            let digit = usize::from(class & DIGIT);
            // Digits add to the run, separators keep it, anything else ends it. A mask,
            // not a multiplication: the run is a chain through every byte, and a
            // multiply's latency is three cycles where an `and` takes one.
            let keeps_run = usize::from(class & IN_PHONE != 0).wrapping_neg();
            run = (run + digit) & keeps_run;
            longest_run = longest_run.max(run);
            digits += digit;
            dots += usize::from(class & DOT != 0);
            seen |= class;
        }
        PreCheck {
            digits,
            dots,
            longest_run,
            seen,
        }
    }
}

/// The scanners `pre` (counted over `text`) lets through, merged into non-overlapping
/// findings in text order.
pub(super) fn run_scanners(text: &str, pre: &PreCheck) -> Vec<Finding> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    if pre.digits >= 1 && pre.seen & IPV4_JOIN != 0 && bytes.len() >= 36 {
        scan_device_uuids(bytes, &mut found);
    }
    if pre.seen & (AT | AT_HINT) != 0 {
        scan_emails(text, &mut found);
    }
    if pre.digits >= 13 {
        // Before phones: a card number that is also phone-shaped is reported as a card.
        scan_cards(bytes, &mut found);
    }
    if pre.digits >= 2 && bytes.len() >= 15 {
        scan_ibans(bytes, &mut found);
    }
    if pre.longest_run >= MIN_PHONE_DIGITS {
        scan_phones(bytes, &mut found);
    }
    if pre.digits >= 4 && pre.seen & OTHER_JOIN != 0 {
        scan_other_joiners(bytes, &mut found);
    }
    if pre.digits >= 4 && pre.dots >= 3 {
        scan_ipv4(bytes, &mut found);
    }
    if pre.digits >= 4 && pre.seen & IPV4_JOIN != 0 {
        scan_ipv4_joined(bytes, &mut found);
    }
    if pre.digits >= 1 && pre.seen & HEX_MARK != 0 {
        scan_ipv4_hex(bytes, &mut found);
    }
    if pre.seen & COLON != 0 {
        scan_ipv6(text, &mut found);
    }
    merge(found)
}

/// Text with bytes outside printable ASCII: scanned in its normalized form, digits of
/// other scripts folded to ASCII, and the findings mapped back onto `text`.
pub(super) fn scan_unicode(text: &str, pre: &PreCheck) -> Vec<Finding> {
    // Most such text is already normal and has only ASCII digits (names with accents,
    // CJK labels): it is scanned as it is, and only the rest pays for a copy.
    if matches!(crate::text::normalize(text), Cow::Borrowed(_))
        && !text.chars().any(|c| foreign_digit_value(c).is_some())
    {
        return run_scanners(text, pre);
    }
    let shadow = Shadow::of(text);
    let found = run_scanners(&shadow.text, &PreCheck::of(shadow.text.as_bytes()));
    let mut mapped: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        let f = shadow.original(f, text.len());
        // Two findings read from one character (both halves of a `ﬁ`) would overlap once
        // widened to it; the earlier one stands for both.
        if mapped.last().is_none_or(|last| last.end <= f.start) {
            mapped.push(f);
        }
    }
    mapped
}

/// The normalized, digit-folded form of a text, with where each part came from.
///
/// The text is cut into segments that normalize independently: a segment starts at a
/// character that nothing before it can combine with under NFKC: a visible ASCII
/// character, a decimal digit, or a character whose NFKC form starts with ASCII
/// (fullwidth forms, no-break spaces, ligatures). None of these is the second half of
/// any composition and each starts with a starter, so NFKC of the whole is the
/// concatenation of NFKC of the segments (`shadow_is_the_normalized_text` checks it).
/// Invisible characters never start a segment: removing them lets their neighbours
/// compose (`e\u{200B}\u{0301}` → `é`), as [`crate::text::normalize`] does.
pub(super) struct Shadow {
    pub(super) text: String,
    /// One per segment that reads as something, in order; `shadow` offsets ascending.
    pub(super) pieces: Vec<Piece>,
}

/// A run of the shadow text and the original characters it was read from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Piece {
    /// Where the piece starts in the shadow text.
    pub(super) shadow: usize,
    /// The first and past-the-last visible original byte it was read from.
    pub(super) start: usize,
    pub(super) end: usize,
    /// The piece is the original bytes unchanged, so offsets inside map one to one.
    pub(super) same: bool,
}

impl Shadow {
    pub(super) fn of(text: &str) -> Shadow {
        let mut shadow = Shadow {
            text: String::with_capacity(text.len()),
            pieces: Vec::new(),
        };
        let mut segment_start = 0;
        for (i, c) in text.char_indices() {
            if i > segment_start && starts_segment(c) {
                shadow.push_segment(text, segment_start, i);
                segment_start = i;
            }
        }
        shadow.push_segment(text, segment_start, text.len());
        shadow
    }

    pub(super) fn push_segment(&mut self, text: &str, start: usize, end: usize) {
        let Some(segment) = text.get(start..end) else {
            return;
        };
        let at = self.text.len();
        let mut same = true;
        match crate::text::normalize(segment) {
            Cow::Borrowed(s) => self.push_folded(s, &mut same),
            Cow::Owned(s) => {
                same = false;
                self.push_folded(&s, &mut same);
            }
        }
        if self.text.len() == at {
            // Only invisible characters: they read as nothing, and no finding is mapped
            // onto them.
            return;
        }
        // The visible characters it was read from: a finding ending here does not take
        // the invisible ones after it.
        let visible = |&(_, c): &(usize, char)| !crate::text::is_invisible(c);
        let first = segment.char_indices().find(visible).map_or(0, |(i, _)| i);
        let last = segment
            .char_indices()
            .rev()
            .find(visible)
            .map_or(segment.len(), |(i, c)| i + c.len_utf8());
        let piece = Piece {
            shadow: at,
            start: start + first,
            end: start + last,
            same,
        };
        match self.pieces.last_mut() {
            // Unchanged text on both sides of a cut maps one to one: one piece.
            Some(prev) if same && prev.same && prev.end == piece.start => prev.end = piece.end,
            _ => self.pieces.push(piece),
        }
    }

    pub(super) fn push_folded(&mut self, normal: &str, same: &mut bool) {
        for c in normal.chars() {
            match foreign_digit_value(c) {
                Some(d) => {
                    self.text.push(char::from(b'0' + d));
                    *same = false;
                }
                None => self.text.push(c),
            }
        }
    }

    /// `f`, found in the shadow text, as a range of the original text (`len` bytes):
    /// inside unchanged text exactly, elsewhere widened to the characters read.
    pub(super) fn original(&self, f: Finding, len: usize) -> Finding {
        let piece_at = |offset: usize| {
            let i = self.pieces.partition_point(|p| p.shadow <= offset);
            i.checked_sub(1).and_then(|i| self.pieces.get(i))
        };
        let (Some(first), Some(last)) =
            (piece_at(f.start), f.end.checked_sub(1).and_then(piece_at))
        else {
            // Unreachable (a finding is a non-empty range of text that pieces cover);
            // the whole text is the safe answer.
            return Finding {
                kind: f.kind,
                start: 0,
                end: len,
            };
        };
        let start = if first.same {
            first.start + (f.start - first.shadow)
        } else {
            first.start
        };
        let end = if last.same {
            last.start + (f.end - last.shadow)
        } else {
            last.end
        };
        Finding {
            kind: f.kind,
            start,
            end,
        }
    }
}

/// Whether a segment of the shadow starts at `c` (see [`Shadow`]).
pub(super) fn starts_segment(c: char) -> bool {
    if c.is_ascii() {
        return matches!(c, ' '..='~' | '\t' | '\n' | '\r');
    }
    if crate::text::is_invisible(c) {
        return false;
    }
    if foreign_digit_value(c).is_some() {
        return true;
    }
    let mut buf = [0u8; 4];
    crate::text::normalize(c.encode_utf8(&mut buf))
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii)
}

/// The value of a run of ASCII digits (saturating: only ever compared with small
/// numbers).
fn decimal(digits: &[u8]) -> u32 {
    digits.iter().fold(0u32, |acc, d| {
        acc.saturating_mul(10)
            .saturating_add(u32::from(d.wrapping_sub(b'0')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use PiiKind::{Card, DeviceUuid, Email, Iban, Ipv4, Ipv6, Phone};

    /// (text, expected first finding as (kind, matched substring)).
    const CASES: &[(&str, Option<(PiiKind, &str)>)] = &[
        // Email
        (
            "Ana.Ruiz@Example.com",
            Some((Email, "Ana.Ruiz@Example.com")),
        ),
        (
            "write to ana.ruiz@example.com, thanks",
            Some((Email, "ana.ruiz@example.com")),
        ),
        (
            "Contact: BOB+news@mail.example.co.uk.",
            Some((Email, "BOB+news@mail.example.co.uk")),
        ),
        (
            "(j_doe-1@sub.example.io)",
            Some((Email, "j_doe-1@sub.example.io")),
        ),
        (" bob@x.io ", Some((Email, "bob@x.io"))),
        ("ÉLODIE@Exemple.fr", Some((Email, "ÉLODIE@Exemple.fr"))),
        ("mail me at ana at example dot com", None),
        ("user@localhost", None),
        ("npm i lodash@4.17.21", None),
        ("logo@2x.png and icon@3x.webp", None),
        ("meet @ 5pm", None),
        ("a***@example", None),
        // Spellings of `@` (and `.`) that a reader decodes.
        ("ana%40x.com", Some((Email, "ana%40x.com"))),
        ("ana%2540x.com", Some((Email, "ana%2540x.com"))),
        ("ana%252540x.com", Some((Email, "ana%252540x.com"))),
        // Encoded four times it is no longer read as an email (its digits are a phone).
        ("ana%25252540x.com", Some((Phone, "25252540"))),
        ("/track?u=ana%40x.com&x=1", Some((Email, "ana%40x.com"))),
        ("ana&#64;x.com", Some((Email, "ana&#64;x.com"))),
        ("ana&#064;x.com", Some((Email, "ana&#064;x.com"))),
        ("ana&#x40;x.com", Some((Email, "ana&#x40;x.com"))),
        ("ana&#X40;x.com", Some((Email, "ana&#X40;x.com"))),
        ("ana&#64x.com", Some((Email, "ana&#64x.com"))),
        ("ana&commat;x.com", Some((Email, "ana&commat;x.com"))),
        ("ana&#640;x.com", None),
        ("ana&#40;x.com", None),
        ("ana&#x64;x.com", None),
        ("ana&#x40a.com", None),
        ("ana(at)x.com", Some((Email, "ana(at)x.com"))),
        (
            "ana [at] x [dot] com",
            Some((Email, "ana [at] x [dot] com")),
        ),
        (
            "ANA {AT} X {DOT} COM",
            Some((Email, "ANA {AT} X {DOT} COM")),
        ),
        ("ana <at> x.com", Some((Email, "ana <at> x.com"))),
        (
            "write to ana.ruiz (at) example (dot) com, thanks",
            Some((Email, "ana.ruiz (at) example (dot) com")),
        ),
        (
            "ana\u{FF06}\u{FF03}\u{FF16}\u{FF14}\u{FF1B}x.com",
            Some((Email, "ana\u{FF06}\u{FF03}\u{FF16}\u{FF14}\u{FF1B}x.com")),
        ),
        ("\"a b\"@x.com", Some((Email, "\"a b\"@x.com"))),
        (
            "mail \"Ana Ruiz\"@example.com now",
            Some((Email, "\"Ana Ruiz\"@example.com")),
        ),
        ("\"***\"@x.com", None),
        ("say \"hi\" @ x.com", None),
        ("ana(at)localhost", None),
        ("ana%40localhost", None),
        ("see (at) 5.3 and [dot] points", None),
        ("logo(at)2x.png", None),
        // Phone
        ("+1 (415) 555-0134", Some((Phone, "+1 (415) 555-0134"))),
        ("(415) 555-0134", Some((Phone, "(415) 555-0134"))),
        ("415-555-0134", Some((Phone, "415-555-0134"))),
        ("415.555.0134", Some((Phone, "415.555.0134"))),
        ("4155550134", Some((Phone, "4155550134"))),
        ("+4915112345678", Some((Phone, "+4915112345678"))),
        ("+44 20 7946 0958", Some((Phone, "+44 20 7946 0958"))),
        ("Phone: 415-555-0134.", Some((Phone, "415-555-0134"))),
        (
            "call me on 415 555 0134 after 6",
            Some((Phone, "415 555 0134")),
        ),
        ("415-555-0134 10:30", Some((Phone, "415-555-0134"))),
        ("at 10:30 415-555-0134", Some((Phone, "415-555-0134"))),
        ("415-555-0134 415-555-0199", Some((Phone, "415-555-0134"))),
        ("2026-11-24 4155550134", Some((Phone, "4155550134"))),
        ("电话4155550134", Some((Phone, "4155550134"))),
        ("tel:+1-415-555-0134", Some((Phone, "+1-415-555-0134"))),
        ("Phone:4155550134", Some((Phone, "4155550134"))),
        ("10:4155550134", None),
        ("sha256:1234567890123", None),
        ("555-01", None),
        ("+* (***) ***-0134", None),
        ("+* (***) ***-**34", None),
        ("***-***-**34", None),
        ("***-***-0134", None),
        ("+*********5678", None),
        ("+** ** **** 0958", None),
        ("72", None),
        ("lead score 72 of 100", None),
        ("2026-11-24", None),
        ("2026-11-24T15:04:05Z", None),
        ("2026-11-24T23:30:00-05:00", None),
        ("2026-11-24 15:04:05", None),
        ("24.11.2026", None),
        ("1234567.89", None),
        ("total $1234567", None),
        ("94110-1234", None),
        // Phones joined by other separators, and dotted ones glued to a word.
        ("404/936/1074", Some((Phone, "404/936/1074"))),
        ("/call/404/936/1074", Some((Phone, "404/936/1074"))),
        ("404\\936\\1074", Some((Phone, "404\\936\\1074"))),
        ("404|936|1074", Some((Phone, "404|936|1074"))),
        ("404:936:1074", Some((Phone, "404:936:1074"))),
        ("404~936~1074", Some((Phone, "404~936~1074"))),
        (
            "404\u{B7}936\u{B7}1074",
            Some((Phone, "404\u{B7}936\u{B7}1074")),
        ),
        ("404936,1074", Some((Phone, "404936,1074"))),
        ("+1/404/936/1074", Some((Phone, "+1/404/936/1074"))),
        ("a404.936.1074", Some((Phone, "404.936.1074"))),
        ("x-404.936.1074", Some((Phone, "404.936.1074"))),
        ("404.936.1074-x1", Some((Phone, "404.936.1074"))),
        ("1.404.936.1074-a", Some((Phone, "1.404.936.1074"))),
        ("11/24/2026", None),
        ("due 2026/11/24 ok", None),
        ("2026:11:24 15:04:05", None),
        ("10:15:30", None),
        ("00:11:22:33:44:55", None),
        ("/users/12345/orders/678", None),
        ("2001:4860:4860::", None),
        ("Chrome/120.0.6099.109 x", None),
        ("lib-1.2.3.4155", None),
        ("build-2024.11.24.1530-rc", None),
        ("/blog/2026/11/24/1530", None),
        ("12345,1234", None),
        ("10,20,404936,1074", None),
        // IPv4 in path form.
        ("/ip/98/207/58/39", Some((Ipv4, "98/207/58/39"))),
        ("/ip/98/207/58/0", None),
        ("/ip/98/207/0/0", None),
        // Card numbers (Luhn).
        ("4111111111111111", Some((Card, "4111111111111111"))),
        (
            "card 4111 1111 1111 1111.",
            Some((Card, "4111 1111 1111 1111")),
        ),
        ("4111-1111-1111-1111", Some((Card, "4111-1111-1111-1111"))),
        ("amex 3782 822463 10005", Some((Card, "3782 822463 10005"))),
        ("4111111111111112", None),
        ("1.4111111111111111", None),
        ("ORD-4111111111111111", None),
        (
            "evt_123e4567-e89b-12d3-a456-a26614174000",
            Some((DeviceUuid, "123e4567-e89b-12d3-a456-a26614174000")),
        ),
        ("x123e4567-e89b-12d3-a456-a26614174000", None),
        ("404:936:1074 at 10:15:30:45", Some((Phone, "404:936:1074"))),
        ("10:15:30:45", None),
        // IBAN (mod 97).
        (
            "DE89370400440532013000",
            Some((Iban, "DE89370400440532013000")),
        ),
        (
            "IBAN DE89 3704 0044 0532 0130 00.",
            Some((Iban, "DE89 3704 0044 0532 0130 00")),
        ),
        (
            "to GB82 WEST 1234 5698 7654 32",
            Some((Iban, "GB82 WEST 1234 5698 7654 32")),
        ),
        ("DE89370400440532013001", None),
        ("XDE89370400440532013000", None),
        // UUIDs of version 1 and 2 carry a MAC address; version 4 and 7 do not.
        (
            "123e4567-e89b-12d3-a456-426614174000",
            Some((DeviceUuid, "123e4567-e89b-12d3-a456-426614174000")),
        ),
        (
            "event 123E4567-E89B-22D3-A456-426614174000 ok",
            Some((DeviceUuid, "123E4567-E89B-22D3-A456-426614174000")),
        ),
        ("018f3e4a-7b2c-7d3e-8f4a-123456789abc", None),
        ("id 018f3e4a-7b2c-4d3e-8f4a-123456789abc", None),
        // Percent-escapes in object names.
        (
            "+1%20404%20936%201074.ndjson",
            Some((Phone, "+1%20404%20936%201074")),
        ),
        (
            "ip%3D203%2E0%2E113%2E57",
            Some((Ipv4, "203%2E0%2E113%2E57")),
        ),
        ("ana%40x%2Ecom", Some((Email, "ana%40x%2Ecom"))),
        ("report%202026-11-24.csv", None),
        ("203%2E0%2E113%2E0", None),
        ("30-34", None),
        ("export 20261124.csv", None),
        ("Mozilla/5.0 (X11; Linux x86_64)", None),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
            None,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
            None,
        ),
        (
            "9f8a64fddfed3e3107e1d6dae3523b8c510564fddfc88e90e737e9dac4b140b3",
            None,
        ),
        (
            "f275fb456d89f3e3ba7a3a5289349491558af04f5dfd9e98cc1cbc54869a9d3d",
            None,
        ),
        ("123e4567-e89b-42d3-a456-426614174000", None),
        ("c0ffee00-a4bc-4f00-8abc-426614174000", None),
        ("12345678-e89b-42d3-a456-42661417400a", None),
        ("v-1234567890abcdef", None),
        ("ord_k3x9q2m7z4ab", None),
        ("o-123456789012", Some((Phone, "123456789012"))),
        // IPv4
        ("203.0.113.57", Some((Ipv4, "203.0.113.57"))),
        ("from 203.0.113.57.", Some((Ipv4, "203.0.113.57"))),
        ("ip=198.51.100.7:8080", Some((Ipv4, "198.51.100.7"))),
        ("010.001.002.003", Some((Ipv4, "010.001.002.003"))),
        ("203.0.113.0", None),
        ("203.0.0.0", None),
        ("999.1.2.3", None),
        ("1.2.3.4.5", None),
        ("Chrome/120.0.0.0", None),
        // Octets joined by `-` or `_`, and a 32-bit hex literal.
        ("10-1-2-3", Some((Ipv4, "10-1-2-3"))),
        ("10_1_2_3", Some((Ipv4, "10_1_2_3"))),
        ("ip-10-1-2-3.ec2.internal", Some((Ipv4, "10-1-2-3"))),
        ("host_203_0_113_57:8080", Some((Ipv4, "203_0_113_57"))),
        ("0x0a010203", Some((Ipv4, "0x0a010203"))),
        ("ip=0XCB007139;", Some((Ipv4, "0XCB007139"))),
        ("2026-11-24", None),
        ("on 2026-11-24 at 10", None),
        ("10-1-2-0", None),
        ("10-1-2-3-4", None),
        ("10-1_2-3", None),
        ("256-1-2-3", None),
        ("1.10-1-2-3", None),
        ("10-1-2-3.4", None),
        ("0x0a010200", None),
        ("0xcafe0a0102bb", None),
        ("0x0a0102", None),
        ("a0x0a010203", None),
        ("0x0a010203g", None),
        // A 32-hex-digit IPv6 address without colons reads as an MD5 digest or a UUID
        // without dashes: left alone.
        ("20010db8000000000000000000000001", None),
        // IPv6
        ("2001:db8::1", Some((Ipv6, "2001:db8::1"))),
        ("::1", Some((Ipv6, "::1"))),
        ("fe80::1%eth0", Some((Ipv6, "fe80::1%eth0"))),
        (
            "2001:DB8:85A3:8D3:1319:8A2E:370:7348",
            Some((Ipv6, "2001:DB8:85A3:8D3:1319:8A2E:370:7348")),
        ),
        ("ip=2001:db8::1.", Some((Ipv6, "2001:db8::1"))),
        ("http://[2001:db8::42]:8080/", Some((Ipv6, "2001:db8::42"))),
        ("2001:db8::1/128", Some((Ipv6, "2001:db8::1/128"))),
        ("::ffff:203.0.113.9", Some((Ipv6, "::ffff:203.0.113.9"))),
        ("::ffff:203.0.113.0", None),
        ("2001:db8:85a3::", None),
        ("2001:db8::", None),
        ("2001:db8::/32", None),
        // Phones with an extension, a closing colon, tabs, no-break spaces or en dashes,
        // and dotted like an IPv4 address that is not one.
        ("415-555-0134x12", Some((Phone, "415-555-0134"))),
        ("415-555-0134 ext. 12", Some((Phone, "415-555-0134"))),
        ("4155550134: mornings", Some((Phone, "4155550134"))),
        ("415\t555\t0134", Some((Phone, "415\t555\t0134"))),
        (
            "415\u{a0}555\u{a0}0134",
            Some((Phone, "415\u{a0}555\u{a0}0134")),
        ),
        (
            "415 \u{2013} 555 \u{2013} 0134",
            Some((Phone, "415 \u{2013} 555 \u{2013} 0134")),
        ),
        ("079.555.12.34", Some((Phone, "079.555.12.34"))),
        ("4155550134xyz", Some((Phone, "4155550134"))),
        // Two numbers, or a number and a time, parted by a tab, no-break space or dash.
        ("4155550134\t4155550135", Some((Phone, "4155550134"))),
        ("415-555-0134\u{a0}9:30", Some((Phone, "415-555-0134"))),
        ("415-555-0134\u{2013}9pm", Some((Phone, "415-555-0134"))),
        ("415 555 0134\t9am", Some((Phone, "415 555 0134"))),
        ("4155550134:30", None),
        // 6to4 carries the IPv4 address 203.0.113.57 in bits 16..48.
        ("2002:cb00:7139::", Some((Ipv6, "2002:cb00:7139::"))),
        ("2002:cb00:7139::1", Some((Ipv6, "2002:cb00:7139::1"))),
        ("2002:cb00:7100::", None),
        ("/geo/2001:db8::1", Some((Ipv6, "2001:db8::1"))),
        ("/geo/2001:db8::/32", None),
        ("ip:2001:db8::1", Some((Ipv6, "2001:db8::1"))),
        ("2001:db8::1: down", Some((Ipv6, "2001:db8::1"))),
        ("fe80::1%eth0:", Some((Ipv6, "fe80::1%eth0:"))),
        ("fe80::", None),
        ("::", None),
        ("15:04:05", None),
        ("00:1a:2b:3c:4d:5e", None),
        ("use std::net::Ipv6Addr;", None),
        // What an attacker got through before the text was read normalized: invisible
        // characters inside an address, compatibility forms, digits of other scripts.
        // The range covers the original characters, invisible ones inside included.
        (
            "ana.ruiz\u{200B}@example.com",
            Some((Email, "ana.ruiz\u{200B}@example.com")),
        ),
        (
            "ana.ruiz@exam\u{00AD}ple.com",
            Some((Email, "ana.ruiz@exam\u{00AD}ple.com")),
        ),
        (
            "ana\u{0}@example.com",
            Some((Email, "ana\u{0}@example.com")),
        ),
        ("\u{FEFF}ana@example.com", Some((Email, "ana@example.com"))),
        ("ana@example.com\u{200B}", Some((Email, "ana@example.com"))),
        (
            "a\u{2060}n\u{200D}a@example.com",
            Some((Email, "a\u{2060}n\u{200D}a@example.com")),
        ),
        (
            "ana\u{FF20}example.com",
            Some((Email, "ana\u{FF20}example.com")),
        ),
        (
            "mail: \u{FF41}\u{FF4E}\u{FF41}\u{FF20}example.com",
            Some((Email, "\u{FF41}\u{FF4E}\u{FF41}\u{FF20}example.com")),
        ),
        (
            "\u{FF14}\u{FF11}\u{FF15} \u{FF15}\u{FF15}\u{FF15} \u{FF10}\u{FF11}\u{FF13}\u{FF14}",
            Some((
                Phone,
                "\u{FF14}\u{FF11}\u{FF15} \u{FF15}\u{FF15}\u{FF15} \u{FF10}\u{FF11}\u{FF13}\u{FF14}",
            )),
        ),
        (
            "415\u{200B}555\u{200B}0134",
            Some((Phone, "415\u{200B}555\u{200B}0134")),
        ),
        (
            "415\u{2011}555\u{2011}0134",
            Some((Phone, "415\u{2011}555\u{2011}0134")),
        ),
        (
            "415\u{202F}555\u{202F}0134",
            Some((Phone, "415\u{202F}555\u{202F}0134")),
        ),
        (
            "\u{0664}\u{0661}\u{0665}\u{0665}\u{0665}\u{0665}\u{0660}\u{0661}\u{0663}\u{0664}",
            Some((
                Phone,
                "\u{0664}\u{0661}\u{0665}\u{0665}\u{0665}\u{0665}\u{0660}\u{0661}\u{0663}\u{0664}",
            )),
        ),
        (
            "tel \u{0664}\u{0661}\u{0665}\u{0665}\u{0665}\u{0665}\u{0660}\u{0661}\u{0663}\u{0664}",
            Some((
                Phone,
                "\u{0664}\u{0661}\u{0665}\u{0665}\u{0665}\u{0665}\u{0660}\u{0661}\u{0663}\u{0664}",
            )),
        ),
        (
            "\u{096A}\u{0967}\u{096B}-\u{096B}\u{096B}\u{096B}-\u{0966}\u{0967}\u{0969}\u{096A}",
            Some((
                Phone,
                "\u{096A}\u{0967}\u{096B}-\u{096B}\u{096B}\u{096B}-\u{0966}\u{0967}\u{0969}\u{096A}",
            )),
        ),
        (
            "\u{0E54}\u{0E51}\u{0E55}\u{0E55}\u{0E55}\u{0E55}\u{0E50}\u{0E51}\u{0E53}\u{0E54}",
            Some((
                Phone,
                "\u{0E54}\u{0E51}\u{0E55}\u{0E55}\u{0E55}\u{0E55}\u{0E50}\u{0E51}\u{0E53}\u{0E54}",
            )),
        ),
        (
            "415-\u{06F5}\u{06F5}\u{06F5}-0134",
            Some((Phone, "415-\u{06F5}\u{06F5}\u{06F5}-0134")),
        ),
        (
            "\u{0662}\u{0660}\u{0663}.\u{0660}.\u{0661}\u{0661}\u{0663}.\u{0665}\u{0667}",
            Some((
                Ipv4,
                "\u{0662}\u{0660}\u{0663}.\u{0660}.\u{0661}\u{0661}\u{0663}.\u{0665}\u{0667}",
            )),
        ),
        (
            "2001\u{FF1A}db8\u{FF1A}\u{FF1A}1",
            Some((Ipv6, "2001\u{FF1A}db8\u{FF1A}\u{FF1A}1")),
        ),
        // Look-alikes stay clean in any script or width.
        (
            "\u{0662}\u{0660}\u{0662}\u{0664}-\u{0661}\u{0661}-\u{0662}\u{0664}",
            None,
        ),
        (
            "\u{0662}\u{0660}\u{0663}.\u{0660}.\u{0661}\u{0661}\u{0663}.\u{0660}",
            None,
        ),
        (
            "+\u{FF0A} (\u{FF0A}\u{FF0A}\u{FF0A}) \u{FF0A}\u{FF0A}\u{FF0A}-\u{FF10}\u{FF11}\u{FF13}\u{FF14}",
            None,
        ),
        (
            "\u{FF12}\u{FF10}\u{FF12}\u{FF16}-\u{FF11}\u{FF11}-\u{FF12}\u{FF14}",
            None,
        ),
        // Domains and top-level labels of any script, and their punycode.
        (
            "ana@\u{043F}\u{0440}\u{0438}\u{043C}\u{0435}\u{0440}.\u{0440}\u{0444}",
            Some((
                Email,
                "ana@\u{043F}\u{0440}\u{0438}\u{043C}\u{0435}\u{0440}.\u{0440}\u{0444}",
            )),
        ),
        (
            "write ana@пример.рф, thanks",
            Some((Email, "ana@пример.рф")),
        ),
        ("user@例え.テスト", Some((Email, "user@例え.テスト"))),
        ("ana@उदाहरण.भारत", Some((Email, "ana@उदाहरण.भारत"))),
        (
            "ana@xn--e1afmkfd.xn--p1ai",
            Some((Email, "ana@xn--e1afmkfd.xn--p1ai")),
        ),
        ("ana@example.com电话", Some((Email, "ana@example.com"))),
        ("ana@пример", None),
        ("@例え.テスト", None),
        // Phones glued to a word, an underscore or a path.
        ("415_555_0134", Some((Phone, "415_555_0134"))),
        ("lead_4155550134", Some((Phone, "4155550134"))),
        ("lead_4155550134_mobile", Some((Phone, "4155550134"))),
        ("/4155550134", Some((Phone, "4155550134"))),
        ("/leads/4155550134/edit", Some((Phone, "4155550134"))),
        ("tel4155550134", Some((Phone, "4155550134"))),
        ("tel+14155550134", Some((Phone, "+14155550134"))),
        ("4155550134x", Some((Phone, "4155550134"))),
        ("4155550134ext", Some((Phone, "4155550134"))),
        ("call_+1-415-555-0134", Some((Phone, "+1-415-555-0134"))),
        ("ab4155550134", Some((Phone, "4155550134"))),
        (
            "lead_\u{0664}\u{0661}\u{0665}\u{0665}\u{0665}\u{0665}\u{0660}\u{0661}\u{0663}\u{0664}",
            Some((
                Phone,
                "\u{0664}\u{0661}\u{0665}\u{0665}\u{0665}\u{0665}\u{0660}\u{0661}\u{0663}\u{0664}",
            )),
        ),
        ("ip_203.0.113.57", Some((Ipv4, "203.0.113.57"))),
        ("host203.0.113.57", Some((Ipv4, "203.0.113.57"))),
        ("a/203.0.113.57/b", Some((Ipv4, "203.0.113.57"))),
        // Glued, but a version, a date stamp, an id, or a word going on.
        ("4155550134xyz_", Some((Phone, "4155550134"))),
        ("lead-4155550134", Some((Phone, "4155550134"))),
        ("Chrome/120.0.6099.109", None),
        ("Gecko/20100101", None),
        ("build_20241124", None),
        ("backup_20241124_153000", None),
        ("/archive/20241124153000/", None),
        ("2024_11_24", None),
        ("Mac OS X 10_15_7", None),
        ("v-8f3a0c1234567890", None),
        ("v-8f3a0c1234567890/4155550134", Some((Phone, "4155550134"))),
        (
            "sha256_9f8a64fddfed3e3107e1d6dae3523b8c510564fddfc88e90e737e9dac4b1234567",
            None,
        ),
        (
            "/9f8a64fddfed3e3107e1d6dae3523b8c510564fddfc88e90e737e9dac4b1234567",
            None,
        ),
        (
            "9F8A64FDDFED3E3107E1D6DAE3523B8C510564FDDFC88E90E737E9DAC4B1234567",
            None,
        ),
        ("deadbeefcafe4155550134", None),
        ("evt_01JD3KQ7XWABCDEF4155550134", None),
        ("evt_01jd3kq7xwabcdef4155550134", None),
        ("01JD3KQ7XW4155550134X12345", None),
        ("evt_123e4567-e89b-42d3-a456-a26614174000", None),
        ("id=123E4567-E89B-42D3-A456-A26614174000;", None),
        ("{123e4567-e89b-42d3-a456-b26614174000}", None),
        // Glued by a `-` or `.` on the left, or followed by a letter or a `-`: a phone all
        // the same (what an adversarial tester got through).
        ("x-4155551234", Some((Phone, "4155551234"))),
        ("x.4155551234", Some((Phone, "4155551234"))),
        ("lead-+14155551234", Some((Phone, "+14155551234"))),
        ("x-415-555-1234", Some((Phone, "415-555-1234"))),
        ("4155551234y", Some((Phone, "4155551234"))),
        ("4155551234Z", Some((Phone, "4155551234"))),
        ("x4155551234y", Some((Phone, "4155551234"))),
        ("4155551234-x", Some((Phone, "4155551234"))),
        (
            "ord-\u{0664}\u{0661}\u{0665}\u{0665}\u{0665}\u{0665}\u{0661}\u{0662}\u{0663}\u{0664}",
            Some((
                Phone,
                "\u{0664}\u{0661}\u{0665}\u{0665}\u{0665}\u{0665}\u{0661}\u{0662}\u{0663}\u{0664}",
            )),
        ),
        ("/u/x-4155551234", Some((Phone, "4155551234"))),
        ("E-phone-4155551234", Some((Phone, "4155551234"))),
        ("ORD-4155551234", Some((Phone, "4155551234"))),
        ("call me.4155551234 today", Some((Phone, "4155551234"))),
        ("4155551234.txt", Some((Phone, "4155551234"))),
        ("abc1234567de", Some((Phone, "1234567"))),
        ("E-ipint-167838211", Some((Phone, "167838211"))),
        // Grouped by commas like a phone, not like thousands or a list.
        ("415 555 1234y", Some((Phone, "415 555 1234"))),
        ("415-555-0134 10am", Some((Phone, "415-555-0134"))),
        ("415,555,1234", Some((Phone, "415,555,1234"))),
        ("+1,415,555,1234", Some((Phone, "+1,415,555,1234"))),
        ("call 415,555,1234.", Some((Phone, "415,555,1234"))),
        ("10,20,30,4155551234", Some((Phone, "4155551234"))),
        ("4155551234,20,30", Some((Phone, "4155551234"))),
        ("1,234,567", None),
        ("1,234,567,890", None),
        ("$1,234,567", None),
        ("10,20,30,40", None),
        ("2019,2020,2021", None),
        ("1,2,3,4,5,6,7,8", None),
        // Glued the same ways, but a date, a date stamp, a version, a ZIP+4 code or an id.
        ("build-20241124", None),
        ("release-20241124-153000", None),
        ("photo.20241124", None),
        ("2026-11-24T15:04:05Z", None),
        ("20261124T153000Z", None),
        ("report-2026-11-24-final", None),
        ("CA-94110-1234", None),
        ("v1.2.3.4155551234", None),
        (".1234567", None),
        ("v-8f3a0c1234567890-x", None),
        ("sid-1234567890abcdef", None),
        ("event 123E4567-E89B-42D3-A456-426614174000 ok", None),
        ("x-12345678-1234-4234-8234-123456789012-y", None),
        ("x-1234abcd-1234-5678-90ab-123456789abc", None),
        ("/u/01JD3KQ7XW4155550134X12345", None),
        // Clean published-looking values
        ("", None),
        ("pricing", None),
        ("web-form", None),
        ("941**", None),
        ("*", None),
    ];

    #[test]
    fn table() {
        assert!(CASES.len() >= 40);
        let mut failures = Vec::new();
        for &(text, expected) in CASES {
            let got = find_pii(text).map(|f| (f.kind, &text[f.start..f.end]));
            if got != expected {
                failures.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn finds_every_identifier_in_a_sentence() {
        let text = "Hi, I'm Ana (ana.ruiz@example.com, +1 (415) 555-0134), \
                    writing from 203.0.113.57 and 2001:db8::1; backup 415.555.0199.";
        let all = find_all_pii(text);
        let got: Vec<(PiiKind, &str)> = all
            .iter()
            .map(|f| (f.kind, &text[f.start..f.end]))
            .collect();
        assert_eq!(
            got,
            vec![
                (Email, "ana.ruiz@example.com"),
                (Phone, "+1 (415) 555-0134"),
                (Ipv4, "203.0.113.57"),
                (Ipv6, "2001:db8::1"),
                (Phone, "415.555.0199"),
            ]
        );
        assert_eq!(find_pii(text), all.first().cloned());
    }

    #[test]
    fn spelled_out_emails_slice_the_original() {
        let text = "ana [at] x [dot] com; 415-555-0134 \u{FF41}&#64;b.io and bo%40c.de \
                    then ana@d.org (at) home";
        let got: Vec<(PiiKind, &str)> = find_all_pii(text)
            .iter()
            .map(|f| (f.kind, &text[f.start..f.end]))
            .collect();
        assert_eq!(
            got,
            vec![
                (Email, "ana [at] x [dot] com"),
                (Phone, "415-555-0134"),
                (Email, "\u{FF41}&#64;b.io"),
                (Email, "bo%40c.de"),
                (Email, "ana@d.org"),
            ]
        );
    }

    #[test]
    fn long_space_separated_digit_runs_are_split() {
        // 20 digits cannot be one phone; the parts still are phones.
        let text = "415 555 0134 415 555 0199";
        let all = find_all_pii(text);
        assert!(
            !all.is_empty() && all.iter().all(|f| f.kind == Phone),
            "{all:?}"
        );
        assert_eq!(all[0].start, 0);
        // A 16-digit number written without separators is no phone (this one is a card).
        assert_eq!(find_pii("4111111111111111").map(|f| f.kind), Some(Card));
        assert_eq!(find_pii("4111111111111112"), None);
    }

    #[test]
    fn overlapping_findings_are_merged() {
        let text = "4155550134@sms.example.com";
        let all = find_all_pii(text);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].kind, Email);
    }

    #[test]
    fn kind_names() {
        assert_eq!(Email.as_str(), "email");
        assert_eq!(Phone.as_str(), "phone");
        assert_eq!(Ipv4.as_str(), "ipv4");
        assert_eq!(Ipv6.as_str(), "ipv6");
        assert_eq!(Ipv6.to_string(), "ipv6");
        assert_eq!(Card.as_str(), "card");
        assert_eq!(Iban.as_str(), "iban");
        assert_eq!(DeviceUuid.as_str(), "device_uuid");
    }

    const HEX: &[u8; 16] = b"0123456789abcdef";

    #[test]
    fn random_hex_digests_are_clean() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0001);
        let mut s = String::with_capacity(64);
        for _ in 0..10_000 {
            s.clear();
            for _ in 0..64 {
                s.push(char::from(HEX[rng.gen_range(0..16)]));
            }
            assert_eq!(find_pii(&s), None, "{s}");
        }
    }

    #[test]
    fn random_uuids_are_clean() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0002);
        let mut s = String::with_capacity(36);
        for _ in 0..10_000 {
            let mut bytes: [u8; 16] = rng.r#gen();
            bytes[6] = (bytes[6] & 0x0f) | 0x40;
            bytes[8] = (bytes[8] & 0x3f) | 0x80;
            s.clear();
            for (i, byte) in bytes.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    s.push('-');
                }
                s.push(char::from(HEX[usize::from(byte >> 4)]));
                s.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
            assert_eq!(find_pii(&s), None, "{s}");
            // Also as a token inside text, the way it appears in logs.
            let line = format!("event {s} ok");
            assert_eq!(find_pii(&line), None, "{line}");
        }
    }

    /// What the shortcut of `find_all_pii` rests on: the scanners find nothing in any
    /// canonical UUID, here with digits far likelier than in random ones (long digit
    /// runs, all-digit groups, all-digit UUIDs) and letters of either case.
    #[test]
    fn canonical_uuids_hold_no_identifier() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0004);
        let mut s = String::with_capacity(36);
        for round in 0..50_000 {
            let digit_share = [0.5, 0.8, 0.95, 1.0][round % 4];
            s.clear();
            for i in 0..36 {
                s.push(match i {
                    8 | 13 | 18 | 23 => '-',
                    _ if rng.gen_bool(digit_share) => char::from(b'0' + rng.gen_range(0..10)),
                    _ => char::from(b"abcdefABCDEF"[rng.gen_range(0..12)]),
                });
            }
            assert!(is_canonical_uuid(s.as_bytes()), "{s}");
            // Versions 1 and 2 (RFC variant) are one finding, the whole UUID.
            let want = if is_device_uuid(s.as_bytes()) {
                vec![Finding {
                    kind: DeviceUuid,
                    start: 0,
                    end: 36,
                }]
            } else {
                Vec::new()
            };
            assert_eq!(scan_all(&s), want, "{s}");
        }
        // Near misses are not canonical, so the scanners judge them.
        for text in [
            "12345678-1234-1234-1234-12345678901",
            "12345678-1234-1234-1234-1234567890123",
            "12345678 1234-1234-1234-123456789012",
            "1234567g-1234-1234-1234-123456789012",
            "{2345678-1234-1234-1234-12345678901}",
        ] {
            assert!(!is_canonical_uuid(text.as_bytes()), "{text}");
        }
        assert_eq!(
            find_pii("12345678 1234-1234-1234-123456789012").map(|f| f.kind),
            Some(Phone)
        );
    }

    #[test]
    fn random_text_never_panics_and_findings_are_ordered() {
        let alphabet: Vec<char> = "0123456789 -.()+:@/%_abcfxz,;é€".chars().collect();
        let mut rng = StdRng::seed_from_u64(0x5eed_0003);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..48);
            let text: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let all = find_all_pii(&text);
            let mut prev_end = 0;
            for f in &all {
                assert!(f.start >= prev_end && f.start < f.end, "{text:?}: {all:?}");
                assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
                prev_end = f.end;
            }
            assert_eq!(find_pii(&text), all.first().cloned());
        }
    }

    #[test]
    fn byte_ranges_are_char_boundaries() {
        let text = "Zoë écrit à zoë.müller@exemple.fr — tél. +33 1 23 45 67 89 ✓";
        for f in find_all_pii(text) {
            assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        }
        assert_eq!(find_all_pii(text).len(), 2);
    }

    /// Characters that stress the normalized reading: combining marks, Hangul jamo that
    /// compose, an Oriya vowel sign that composes as a starter, invisible characters,
    /// compatibility forms, no-break spaces and dashes, digits of other scripts.
    const UNICODE_ALPHABET: &str = "aeAZ19 -._/:@+()x\u{0301}\u{0323}\u{0338}=\u{200B}\u{00AD}\u{0}\
        \u{FEFF}\u{2060}\u{FB01}\u{FF21}\u{FF20}\u{FF14}\u{FF0E}\u{FF1A}\u{a0}\u{202F}\u{2011}\
        \u{2013}\u{1100}\u{1161}\u{11A8}\u{AC00}\u{0B47}\u{0B3E}\u{0664}\u{0660}\u{096A}\
        \u{06F5}\u{0E54}\u{1D7DC}\u{212B}\u{01C5}\u{2460}\u{00B2}\u{00E9}\u{0440}\u{4F8B}";

    fn fold_digits(s: &str) -> String {
        s.chars()
            .map(|c| foreign_digit_value(c).map_or(c, |d| char::from(b'0' + d)))
            .collect()
    }

    /// What the segment-wise copy rests on: normalizing segment by segment is
    /// normalizing the whole, and its pieces cover the text in order.
    #[test]
    fn shadow_is_the_normalized_text() {
        let alphabet: Vec<char> = UNICODE_ALPHABET.chars().collect();
        let mut rng = StdRng::seed_from_u64(0x5eed_0005);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..24);
            let text: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let shadow = Shadow::of(&text);
            assert_eq!(
                shadow.text,
                fold_digits(&crate::text::normalize(&text)),
                "{text:?}"
            );
            let mut prev: Option<Piece> = None;
            for piece in &shadow.pieces {
                assert!(
                    piece.start < piece.end && piece.end <= text.len(),
                    "{text:?}"
                );
                assert!(text.is_char_boundary(piece.start) && text.is_char_boundary(piece.end));
                if let Some(prev) = prev {
                    assert!(
                        prev.shadow < piece.shadow && prev.end <= piece.start,
                        "{text:?}"
                    );
                }
                prev = Some(*piece);
            }
            assert_eq!(
                shadow.pieces.first().map(|p| p.shadow),
                (!shadow.text.is_empty()).then_some(0)
            );
        }
        // Composition across what would be cuts elsewhere: an invisible character, a
        // jamo, a vowel sign.
        for (raw, want) in [
            ("e\u{200B}\u{0301}", "\u{00E9}"),
            ("e\u{0}\u{0301}", "\u{00E9}"),
            ("\u{1100}\u{1161}\u{11A8}", "\u{AC01}"),
            ("\u{0B47}\u{0B3E}", "\u{0B4B}"),
            ("=\u{0338}", "\u{2260}"),
            ("\u{212B}", "\u{00C5}"),
        ] {
            assert_eq!(Shadow::of(raw).text, want, "{raw:?}");
        }
    }

    #[test]
    fn digits_of_every_script_have_their_value() {
        for (c, want) in [
            ('\u{0664}', 4),
            ('\u{06F5}', 5),
            ('\u{096A}', 4),
            ('\u{0E54}', 4),
            ('\u{1D7DC}', 4),
            ('\u{1D7FF}', 9),
            ('\u{FF14}', 4),
        ] {
            assert_eq!(foreign_digit_value(c), Some(want), "{c:?}");
        }
        for c in ['4', 'a', '\u{00B2}', '\u{2463}', '\u{216B}', '\u{4E94}'] {
            assert_eq!(foreign_digit_value(c), None, "{c:?}");
        }
        // Every decimal digit outside ASCII is one of a run 0..=9 of consecutive code
        // points: each 0 is followed by 1 to 9, each other digit follows its predecessor.
        let mut count = 0;
        for c in (0x80..=0x10_FFFF).filter_map(char::from_u32) {
            let Some(d) = foreign_digit_value(c) else {
                continue;
            };
            count += 1;
            if d > 0 {
                let before = char::from_u32(u32::from(c) - 1).and_then(foreign_digit_value);
                assert_eq!(before, Some(d - 1), "{c:?}");
            }
            if d < 9 {
                let after = char::from_u32(u32::from(c) + 1).and_then(foreign_digit_value);
                assert_eq!(after, Some(d + 1), "{c:?}");
            }
        }
        assert!(count >= 600 && count % 10 == 0, "{count}");
    }

    #[test]
    fn only_printable_ascii_is_scanned_in_place() {
        for b in 0..=255u8 {
            let plain = matches!(b, 0x20..=0x7e | b'\t' | b'\n' | b'\r');
            assert_eq!(BYTE_CLASS[usize::from(b)] & NOT_PLAIN == 0, plain, "{b:#x}");
        }
    }

    #[test]
    fn random_unicode_text_gives_ordered_findings_on_its_own_boundaries() {
        let alphabet: Vec<char> = UNICODE_ALPHABET.chars().collect();
        let mut rng = StdRng::seed_from_u64(0x5eed_0006);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..40);
            let text: String = (0..len)
                .map(|_| {
                    // Digits often enough to make phones and addresses.
                    if rng.gen_bool(0.4) {
                        char::from(b'0' + rng.gen_range(0..10))
                    } else {
                        alphabet[rng.gen_range(0..alphabet.len())]
                    }
                })
                .collect();
            let all = find_all_pii(&text);
            let mut prev_end = 0;
            for f in &all {
                assert!(f.start >= prev_end && f.start < f.end, "{text:?}: {all:?}");
                assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
                prev_end = f.end;
            }
            assert_eq!(find_pii(&text), all.first().cloned());
            // The reading is that of the normalized text: the same kinds are found in it.
            let normal = fold_digits(&crate::text::normalize(&text));
            let kinds = |fs: &[Finding]| fs.iter().map(|f| f.kind).collect::<Vec<_>>();
            assert_eq!(kinds(&all), kinds(&find_all_pii(&normal)), "{text:?}");
        }
    }

    #[test]
    fn findings_in_mixed_text_slice_the_original() {
        let text = "Zoë\u{200B}: ＡＮＡ＠пример.рф, \u{0664}\u{0661}\u{0665}\u{a0}\u{0665}\u{0665}\u{0665}\u{a0}\u{0660}\u{0661}\u{0663}\u{0664} \
                    ip_\u{0662}\u{0660}\u{0663}.0.113.57 lead_4155550199";
        let got: Vec<(PiiKind, &str)> = find_all_pii(text)
            .iter()
            .map(|f| (f.kind, &text[f.start..f.end]))
            .collect();
        assert_eq!(
            got,
            vec![
                (Email, "ＡＮＡ＠пример.рф"),
                (
                    Phone,
                    "\u{0664}\u{0661}\u{0665}\u{a0}\u{0665}\u{0665}\u{0665}\u{a0}\u{0660}\u{0661}\u{0663}\u{0664}"
                ),
                (Ipv4, "\u{0662}\u{0660}\u{0663}.0.113.57"),
                (Phone, "4155550199"),
            ]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2_000, ..Default::default() })]

        /// Ids are never findings, however many digits they hold and whatever they are
        /// glued into: hex digests of any length from 16, UUIDs, ULIDs, `v-` visitor ids.
        #[test]
        fn random_ids_are_never_findings(
            seed: u64,
            digit_share in 0.3f64..1.0,
            len in 16usize..=128,
            upper: bool,
            prefix in proptest::sample::select(vec!["", "v-", "sha256_", "evt_", "/", "id=", "event ", "x/", "hmac:"]),
            suffix in proptest::sample::select(vec!["", " ok", "/", "_x", ",", ".", "/edit"]),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let case = |s: String| if upper { s.to_ascii_uppercase() } else { s };
            // Digit-heavy: random ids hold long digit runs far less often.
            let mut pick = |alphabet: &[u8]| loop {
                let c = alphabet[rng.gen_range(0..alphabet.len())];
                if c.is_ascii_digit() == rng.gen_bool(digit_share) {
                    break char::from(c);
                }
            };
            let mut digest: String = case((0..len).map(|_| pick(HEX)).collect());
            // Up to 19 digits and no letter is a number, which may be a card: a digest
            // holds a letter (one of that length and none is one in 10^12).
            if digest.len() <= 19 && digest.bytes().all(|c| c.is_ascii_digit()) {
                digest.pop();
                digest.push_str(&case("a".to_string()));
            }
            // Of version 1 or 2, a UUID holds a MAC address (`device_uuid` cases).
            let uuid: String = case(
                (0..36)
                    .map(|i| match i {
                        8 | 13 | 18 | 23 => '-',
                        14 => loop {
                            let c = pick(HEX);
                            if !matches!(c, '1' | '2') {
                                break c;
                            }
                        },
                        _ => pick(HEX),
                    })
                    .collect(),
            );
            const CROCKFORD: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
            let ulid: String = case(
                // The first character holds the top bits of a 48-bit time: 0 to 7.
                std::iter::once(pick(b"01234567"))
                    .chain((1..26).map(|_| pick(CROCKFORD)))
                    .collect(),
            );
            let visitor = format!("v-{}", case((0..16).map(|_| pick(HEX)).collect()));
            for id in [digest, uuid, ulid, visitor] {
                let text = format!("{prefix}{id}{suffix}");
                proptest::prop_assert_eq!(find_pii(&text), None, "{}", text);
            }
        }
    }
}
