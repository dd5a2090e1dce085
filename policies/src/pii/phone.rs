//! Phone numbers: digit runs of a phone's length and shape, however they are joined.

use super::decimal;
use super::net::parse_ipv4_octets;
use super::{Finding, PiiKind};

pub(super) const MIN_PHONE_DIGITS: usize = 7;

/// Bytes that may join digit groups of a phone core, one to five at a time (a single
/// `.`, `_` or `,` joins too, between digits). Shared with the pre-check's byte classes.
pub(super) const fn is_phone_joiner(b: u8) -> bool {
    // Besides ASCII: a tab, and the UTF-8 bytes of the dashes (U+2010-U+2013) that word
    // processors put into phone numbers; the non-breaking hyphen U+2011 reads as U+2010
    // after NFKC, which also makes the no-break spaces (U+00A0, U+202F) spaces (their
    // bytes stay joiners all the same). A few other characters made only of these bytes
    // join too (`†`, `①`, U+2000): rare between digits, and the rule leans towards
    // recall.
    matches!(
        b,
        b' ' | b'\t'
            | b'-'
            | b'('
            | b')'
            | 0xC2
            | 0xA0
            | 0xE2
            | 0x80
            | 0x90
            | 0x91
            | 0x92
            | 0x93
            | 0xAF
    )
}

/// Joiner bytes between two digit groups, at most: a space, an en dash (three bytes)
/// and a space.
pub(super) const MAX_JOINER_BYTES: usize = 5;

pub(super) const MAX_PHONE_DIGITS: usize = 15;

/// A maximal run of ASCII digits, `start..end`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Group {
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Group {
    pub(super) fn len(&self) -> usize {
        self.end - self.start
    }
}

pub(super) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

pub(super) fn scan_phones(b: &[u8], out: &mut Vec<Finding>) {
    let n = b.len();
    let mut groups: smallvec::SmallVec<[Group; 8]> = smallvec::SmallVec::new();
    let mut i = 0;
    while i < n {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        groups.clear();
        let mut p = i;
        loop {
            let gs = p;
            while p < n && b[p].is_ascii_digit() {
                p += 1;
            }
            groups.push(Group { start: gs, end: p });
            if p + 1 < n && matches!(b[p], b'.' | b'_' | b',') && b[p + 1].is_ascii_digit() {
                p += 1;
                continue;
            }
            let mut k = p;
            while k < n && k - p < MAX_JOINER_BYTES && is_phone_joiner(b[k]) {
                k += 1;
            }
            if k > p && k < n && b[k].is_ascii_digit() {
                p = k;
                continue;
            }
            break;
        }
        // No part of a core with fewer digits than a phone can be one.
        if groups.iter().map(Group::len).sum::<usize>() >= MIN_PHONE_DIGITS {
            judge_core(b, &groups, out);
        }
        i = p;
    }
}

/// Judges one core (`groups` joined by separators): the whole core first,
/// then, if it fails, its space-separated parts.
pub(super) fn judge_core(b: &[u8], groups: &[Group], out: &mut Vec<Finding>) {
    let last = groups.len() - 1;
    if let Some(f) = judge_run(b, groups, 0, last) {
        out.push(f);
        return;
    }
    // Parts: maximal sub-runs whose separators hold nothing but `-`, `.`, `_`, `(` and `)`;
    // a space, a tab, a no-break space or an en dash parts them. Most cores that fail
    // whole have no such separator (an id's digit groups joined by dashes, a third of
    // random UUIDs): they are done without building the list.
    let spaced = |g: usize| parts_at(&b[groups[g].end..groups[g + 1].start]);
    if !(0..last).any(spaced) {
        return;
    }
    let mut parts: Vec<(usize, usize)> = Vec::new();
    let mut first = 0;
    for g in 0..last {
        if spaced(g) {
            parts.push((first, g));
            first = g + 1;
        }
    }
    parts.push((first, last));
    let barrier: Vec<bool> = parts
        .iter()
        .map(|&(a, z)| excluded_shape(b, &groups[a..=z], false))
        .collect();
    let mut pi = 0;
    while pi < parts.len() {
        let mut found = None;
        if !barrier[pi] {
            // The longest run of parts from `pi` within the digit limit.
            let mut pj = pi;
            let mut digits: usize = (parts[pi].0..=parts[pi].1).map(|g| groups[g].len()).sum();
            while pj + 1 < parts.len() && !barrier[pj + 1] {
                let more: usize = (parts[pj + 1].0..=parts[pj + 1].1)
                    .map(|g| groups[g].len())
                    .sum();
                if digits + more > MAX_PHONE_DIGITS {
                    break;
                }
                digits += more;
                pj += 1;
            }
            let mut end = pj;
            loop {
                if let Some(f) = judge_run(b, groups, parts[pi].0, parts[end].1) {
                    found = Some((f, end));
                    break;
                }
                if end == pi {
                    break;
                }
                end -= 1;
            }
        }
        match found {
            Some((f, end)) => {
                out.push(f);
                pi = end + 1;
            }
            None => pi += 1,
        }
    }
}

/// Whether the separator `sep` between two digit groups parts a core (see
/// [`judge_core`]): it holds something other than `-`, `.`, `_`, `(` and `)`: a space, a
/// tab, a no-break space, an en dash or a `,` (a list).
pub(super) fn parts_at(sep: &[u8]) -> bool {
    sep.iter()
        .any(|c| !matches!(c, b'-' | b'.' | b'_' | b'(' | b')'))
}

/// Is `groups[a..=z]` (plus any `+`/`(` prefix) a phone?
pub(super) fn judge_run(b: &[u8], groups: &[Group], a: usize, z: usize) -> Option<Finding> {
    let run = &groups[a..=z];
    let digits: usize = run.iter().map(Group::len).sum();
    if !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits) {
        return None;
    }
    let mut start = run[0].start;
    if start > 0 && b[start - 1] == b'(' {
        start -= 1;
    }
    if start > 0 && b[start - 1] == b'+' {
        start -= 1;
    }
    let has_prefix = start != run[0].start;
    let end = run[run.len() - 1].end;
    let sep = |w: &[Group]| &b[w[0].end..w[1].start];
    // A list goes on past the run (`1234567,1234,567` judged in parts).
    let listed = (b.get(end) == Some(&b',') && b.get(end + 1).is_some_and(u8::is_ascii_digit))
        || (run[0].start >= 2
            && b[run[0].start - 1] == b','
            && b[run[0].start - 2].is_ascii_digit());
    if run.windows(2).any(|w| sep(w) == b",") && !is_comma_grouped_phone(run, listed) {
        return None;
    }
    let (left, right) = (left_edge(b, start), right_edge(b, end));
    if left == Edge::Blocked || right == Edge::Blocked {
        return None;
    }
    // A last group of one or two digits parted from the rest and glued to a word is a
    // word of its own (`415-555-0134 9pm`, `… 2nd floor`): the parts are judged instead.
    if let [.., before, last] = run
        && right == Edge::Glued
        && b.get(end).is_some_and(u8::is_ascii_alphabetic)
        && last.len() <= 2
        && parts_at(&b[before.end..last.start])
    {
        return None;
    }
    let glued =
        left == Edge::Glued || right == Edge::Glued || run.windows(2).any(|w| sep(w) == b"_");
    if glued
        && ((run.windows(2).any(|w| sep(w) == b".") && !is_dotted_phone(b, run))
            || is_date_stamp(b, run))
    {
        return None;
    }
    if excluded_shape(b, run, has_prefix) || in_id(b, run[0].start) || in_id(b, end - 1) {
        return None;
    }
    Some(Finding {
        kind: PiiKind::Phone,
        start,
        end,
    })
}

/// Whether dotted digit groups glued to a word are grouped like a phone rather than a
/// version (`a404.936.1074`, `1.404.936.1074-a`; not `Chrome/120.0.6099.109`,
/// `v1.2.3.4155550134`, `2024.11.24.1530-rc`): after an optional country code of 1 to 3 digits (with 4 or more
/// groups), at least three groups of 2 to 4 digits, the last of 4, at least 9 digits.
/// Whether three consecutive groups of `groups` are a date: `YYYY MM DD`, `DD MM YYYY` or
/// `MM DD YYYY` (plausible year, month and day), whatever joins them.
pub(super) fn has_date(b: &[u8], groups: &[Group]) -> bool {
    let num = |g: &Group| decimal(&b[g.start..g.end]);
    let month = |m: u32| (1..=12).contains(&m);
    let day = |d: u32| (1..=31).contains(&d);
    let year = |y: u32| (1900..=2099).contains(&y);
    groups
        .windows(3)
        .any(|w| match (w[0].len(), w[1].len(), w[2].len()) {
            (4, 2, 2) => year(num(&w[0])) && month(num(&w[1])) && day(num(&w[2])),
            (2, 2, 4) => {
                let (x, y) = (num(&w[0]), num(&w[1]));
                year(num(&w[2])) && ((day(x) && month(y)) || (month(x) && day(y)))
            }
            _ => false,
        })
}

pub(super) fn is_dotted_phone(b: &[u8], run: &[Group]) -> bool {
    let body = match run {
        [cc, rest @ ..] if rest.len() >= 3 && (1..=3).contains(&cc.len()) => rest,
        _ => run,
    };
    body.len() >= 3
        && body.iter().all(|g| (2..=4).contains(&g.len()))
        && body.last().is_some_and(|g| g.len() == 4)
        && body.iter().map(Group::len).sum::<usize>() >= 9
        && !has_date(b, run)
}

/// Whether digit groups joined by `,` among other separators are shaped like a grouped
/// phone (`415,555,1234`, `+1,415,555,1234`) rather than a number grouped in thousands
/// (`1,234,567`: the last group has 3 digits) or a list (`10,20,30,40`,
/// `2019,2020,2021`): at least 3 groups, the first of 1 to 4 digits, the middle ones of 3
/// or 4, the last of 4, and not all of 4.
pub(super) fn is_comma_grouped_phone(run: &[Group], listed: bool) -> bool {
    // A subscriber number split once before its last four digits (`404936,1074`), not
    // part of a longer list.
    if let [head, tail] = run {
        return !listed && matches!(head.len(), 6 | 7) && tail.len() == 4;
    }
    let [first, middle @ .., last] = run else {
        return false;
    };
    !middle.is_empty()
        && (1..=4).contains(&first.len())
        && middle.iter().all(|g| matches!(g.len(), 3 | 4))
        && last.len() == 4
        && !run.iter().all(|g| g.len() == 4)
}

/// How a core meets the text beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Edge {
    /// Nothing word-like: a space, punctuation, a label's `:`, the end of the text.
    Free,
    /// A word or path the number is glued to (`tel4155550134`, `lead_…`, `/…`): still a
    /// phone, unless it reads as a version or date stamp (see the module docs).
    Glued,
    /// Part of something that is no phone (a version, an amount, a clock, a word).
    Blocked,
}

pub(super) fn left_edge(b: &[u8], start: usize) -> Edge {
    if start == 0 {
        return Edge::Free;
    }
    let c = b[start - 1];
    // A label such as `tel:` or `Phone:` is no reason to doubt the number
    // (IPv6 groups and clock fields are never 7 digits long); a `:` after a
    // digit (`10:4155550134`, `sha256:…`) is.
    if c == b':' {
        return if start >= 2 && b[start - 2].is_ascii_alphabetic() {
            Edge::Free
        } else {
            Edge::Blocked
        };
    }
    // A prefix glued on (`tel4155550134`, `lead_4155550134`, `/4155550134`,
    // `lead-4155550134`, `x.4155550134`) hides no number: ids that are all digits and
    // letters are told apart by `in_id`, UUID groups by `in_uuid`, versions and date
    // stamps by `judge_run`.
    if c.is_ascii_alphabetic() || matches!(c, b'_' | b'/') {
        return Edge::Glued;
    }
    if c.is_ascii_digit() || c == b'$' {
        return Edge::Blocked;
    }
    let word_before = start >= 2 && (is_word_byte(b[start - 2]) || b[start - 2] >= 0x80);
    if c == b'-' && word_before {
        return Edge::Glued;
    }
    // A `.` after a word ends it (`x.4155550134`); any other is a decimal point
    // (`.1234567`) or a version's.
    if c == b'.' {
        return if word_before && !b[start - 2].is_ascii_digit() {
            Edge::Glued
        } else {
            Edge::Blocked
        };
    }
    // Multi-byte currency signs: € (E2 82 AC), £ (C2 A3), ¥ (C2 A5).
    let before = &b[..start];
    if before.ends_with("€".as_bytes())
        || before.ends_with("£".as_bytes())
        || before.ends_with("¥".as_bytes())
    {
        return Edge::Blocked;
    }
    Edge::Free
}

pub(super) fn right_edge(b: &[u8], end: usize) -> Edge {
    let Some(&c) = b.get(end) else {
        return Edge::Free;
    };
    let next_is_word = b.get(end + 1).is_some_and(|&d| is_word_byte(d));
    // A colon ending the number (`call 4155550134: mornings`), not a clock field.
    if c == b':' {
        return if b.get(end + 1).is_none_or(|d| d.is_ascii_whitespace()) {
            Edge::Free
        } else {
            Edge::Blocked
        };
    }
    // `4155550134_mobile`, `/leads/4155550134/edit`: a separator of names and paths.
    if c == b'_' || (c == b'/' && next_is_word) {
        return Edge::Glued;
    }
    // A word going on (`4155550134y`, `4155550134-x`, `20261124.csv`): glued, so a date
    // stamp or version still is none, and ids are told apart by `in_id`.
    if c.is_ascii_alphanumeric() {
        return if is_extension(&b[end..]) {
            Edge::Free
        } else {
            Edge::Glued
        };
    }
    if matches!(c, b'.' | b'-') && next_is_word {
        return Edge::Glued;
    }
    Edge::Free
}

/// Whether `rest` starts with a phone extension: `x12`, `ext 12`, `ext.12`, `X 12`, or a
/// bare `x` or `ext` that ends the word (`4155550134x`).
pub(super) fn is_extension(rest: &[u8]) -> bool {
    let lower = |i: usize| rest.get(i).map(u8::to_ascii_lowercase);
    let marker = match (lower(0), lower(1), lower(2)) {
        (Some(b'e'), Some(b'x'), Some(b't')) => 3,
        (Some(b'x'), ..) => 1,
        _ => return false,
    };
    // The number follows directly (`x12`) or after a `.` or space (`ext. 12`, `x 12`), or
    // the marker ends the word; only a word going on (`4155550134xyz`) is no extension.
    rest.get(marker)
        .is_none_or(|&c| c.is_ascii_digit() || !is_word_byte(c))
}

/// A hex word this long is an id: HMAC and SHA digests, the 16 hex digits of a `v-…`
/// visitor id. A random one of 64 digits holds a 10-digit run about half the time.
pub(super) const MIN_HEX_ID_LEN: usize = 16;

/// A ULID: 26 characters of Crockford base32.
pub(super) const ULID_LEN: usize = 26;

/// Whether the digit at `i` is part of an id (see the module docs): the word of ASCII
/// letters and digits around it is a long hex word or a ULID, or a group of a
/// UUID-shaped token.
pub(super) fn in_id(b: &[u8], i: usize) -> bool {
    let start = b[..i]
        .iter()
        .rposition(|c| !c.is_ascii_alphanumeric())
        .map_or(0, |p| p + 1);
    let end = b[i..]
        .iter()
        .position(|c| !c.is_ascii_alphanumeric())
        .map_or(b.len(), |p| i + p);
    let word = &b[start..end];
    let hex = word.iter().all(u8::is_ascii_hexdigit);
    (hex && word.len() >= MIN_HEX_ID_LEN)
        || (word.len() == ULID_LEN && word.iter().all(|&c| is_crockford_base32(c)))
        || (hex && in_uuid(b, start, end))
}

/// Crockford's base32 digits, either case: no `I`, `L`, `O` or `U`.
pub(super) fn is_crockford_base32(c: u8) -> bool {
    matches!(c.to_ascii_uppercase(), b'0'..=b'9' | b'A'..=b'H' | b'J' | b'K' | b'M' | b'N' | b'P'..=b'T' | b'V'..=b'Z')
}

/// Whether the hex word `b[start..end]` is a group of `8-4-4-4-12` hex digits.
pub(super) fn in_uuid(b: &[u8], start: usize, end: usize) -> bool {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    if !SHAPE.contains(&(end - start)) {
        return false;
    }
    let hex_or_dash = |c: &u8| c.is_ascii_hexdigit() || *c == b'-';
    let span_start = b[..start]
        .iter()
        .rposition(|c| !hex_or_dash(c))
        .map_or(0, |p| p + 1);
    let span_end = b[end..]
        .iter()
        .position(|c| !hex_or_dash(c))
        .map_or(b.len(), |p| end + p);
    // The word is one of the span's dash-separated groups, since letters and digits
    // other than hex ones bound the span; `k` is its index.
    let mut lens: smallvec::SmallVec<[usize; 8]> = smallvec::SmallVec::new();
    let mut k = None;
    let mut at = span_start;
    for group in b[span_start..span_end].split(|&c| c == b'-') {
        if at == start {
            k = Some(lens.len());
        }
        lens.push(group.len());
        at += group.len() + 1;
    }
    let Some(k) = k else {
        return false;
    };
    (k.saturating_sub(4)..=k).any(|first| lens.get(first..first + 5) == Some(&SHAPE[..]))
}

/// A date stamp glued into a name: `YYYYMMDD`, optionally followed (directly or after a
/// `_`) by `hhmm` or `hhmmss` (`Gecko/20100101`, `backup_20241124_153000`).
pub(super) fn is_date_stamp(b: &[u8], run: &[Group]) -> bool {
    let fits = match run {
        [g] => matches!(g.len(), 8 | 12 | 14),
        [d, t] => d.len() == 8 && matches!(t.len(), 4 | 6),
        _ => false,
    };
    if !fits {
        return false;
    }
    let mut digits = [0u8; 14];
    let mut n = 0;
    for g in run {
        for &d in &b[g.start..g.end] {
            if let Some(slot) = digits.get_mut(n) {
                *slot = d;
            }
            n += 1;
        }
    }
    let field = |at: usize| decimal(&digits[at..at + 2]);
    (1900..=2099).contains(&decimal(&digits[..4]))
        && (1..=12).contains(&field(4))
        && (1..=31).contains(&field(6))
        && (n < 12 || (field(8) <= 23 && field(10) <= 59))
        && (n < 14 || field(12) <= 59)
}

/// Digit-group shapes that are not phones although they have enough digits:
/// dates (`-`, `.` or `_` between the parts), IPv4-shaped quads, plain decimals and
/// ZIP+4 codes.
pub(super) fn excluded_shape(b: &[u8], run: &[Group], has_prefix: bool) -> bool {
    let sep = |i: usize| &b[run[i].end..run[i + 1].start];
    let lens: Vec<usize> = run.iter().map(Group::len).collect();
    match run.len() {
        2 if !has_prefix => (sep(0) == b".") || (sep(0) == b"-" && lens[0] == 5 && lens[1] == 4),
        3 if !has_prefix => {
            let (s0, s1) = (sep(0), sep(1));
            if s0 != s1 || !(s0 == b"-" || s0 == b"." || s0 == b"_") {
                return false;
            }
            let num = |g: &Group| decimal(&b[g.start..g.end]);
            let (x, y, z) = (num(&run[0]), num(&run[1]), num(&run[2]));
            let month = |m: u32| (1..=12).contains(&m);
            let day = |d: u32| (1..=31).contains(&d);
            let year = |y: u32| (1900..=2099).contains(&y);
            match (lens[0], lens[1], lens[2]) {
                (4, 2, 2) => month(y) && day(z),
                (1 | 2, 1 | 2, 4) => year(z) && ((day(x) && month(y)) || (month(x) && day(y))),
                _ => false,
            }
        }
        // Left to the IPv4 rule only if it is an address (octets of at most 255):
        // `079.555.12.34` is not, so the phone rule judges it.
        4 => {
            (0..3).all(|i| sep(i) == b".")
                && parse_ipv4_octets(&b[run[0].start..run[3].end]).is_some()
        }
        _ => false,
    }
}

// ---------------------------------------------------------------- other joiners

/// The separator at `b[i]` that joins the digit groups of a phone or path-form IPv4
/// address outside [`scan_phones`]: `/`, `\`, `|`, `:`, `~` or the middle dot `·`
/// (U+00B7, two bytes).
pub(super) fn other_joiner(b: &[u8], i: usize) -> Option<&[u8]> {
    match b.get(i)? {
        b'/' | b'\\' | b'|' | b':' | b'~' => b.get(i..i + 1),
        0xC2 if b.get(i + 1) == Some(&0xB7) => b.get(i..i + 2),
        _ => None,
    }
}

/// Digit groups joined by one repeated [`other_joiner`]: a phone (`404/936/1074`,
/// `404|936|1074`, `404·936·1074`) or, joined by `/`, an IPv4 address in path form
/// (`/ip/98/207/58/39`). See the module docs.
pub(super) fn scan_other_joiners(b: &[u8], out: &mut Vec<Finding>) {
    let n = b.len();
    let mut i = 0;
    let mut groups: smallvec::SmallVec<[Group; 8]> = smallvec::SmallVec::new();
    while i < n {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        groups.clear();
        let mut sep: Option<&[u8]> = None;
        let mut p = i;
        loop {
            let start = p;
            while p < n && b[p].is_ascii_digit() {
                p += 1;
            }
            groups.push(Group { start, end: p });
            let Some(this) = other_joiner(b, p) else {
                break;
            };
            if sep.is_some_and(|s| s != this)
                || !b.get(p + this.len()).is_some_and(u8::is_ascii_digit)
            {
                break;
            }
            sep = Some(this);
            p += this.len();
        }
        if let Some(sep) = sep {
            judge_other_joined(b, &groups, sep, out);
        }
        i = p;
    }
}

pub(super) fn judge_other_joined(b: &[u8], groups: &[Group], sep: &[u8], out: &mut Vec<Finding>) {
    let (first, last) = (groups[0], groups[groups.len() - 1]);
    // Glued into a word or number: a letter or digit beside it, a decimal point or dash
    // before more digits, or for `:` a neighbouring `:` group (IPv6 `2001:4860::8888`).
    let blocked = |near: Option<u8>, beyond: Option<u8>| match near {
        None => false,
        Some(c) if c.is_ascii_alphanumeric() => true,
        Some(b'.' | b',' | b'-' | b'_') => beyond.is_some_and(|d| d.is_ascii_digit()),
        Some(b':') if sep == b":" => beyond.is_none_or(|d| d.is_ascii_hexdigit() || d == b':'),
        _ => false,
    };
    let at = |k: Option<usize>| k.and_then(|k| b.get(k).copied());
    if blocked(
        at(first.start.checked_sub(1)),
        at(first.start.checked_sub(2)),
    ) || blocked(b.get(last.end).copied(), b.get(last.end + 1).copied())
    {
        return;
    }
    let num = |g: &Group| decimal(&b[g.start..g.end]);
    // Four octets in path form: an address (unless truncated), never a phone.
    if sep == b"/"
        && groups.len() == 4
        && groups
            .iter()
            .all(|g| (1..=3).contains(&g.len()) && num(g) <= 255)
    {
        if num(&last) != 0 {
            out.push(Finding {
                kind: PiiKind::Ipv4,
                start: first.start,
                end: last.end,
            });
        }
        return;
    }
    let digits: usize = groups.iter().map(Group::len).sum();
    let plus = first.start > 0 && b[first.start - 1] == b'+';
    // After a `+`, a country code of 1 to 3 digits (`+1/404/936/1074`).
    let body = match groups {
        [cc, rest @ ..] if plus && rest.len() >= 3 && (1..=3).contains(&cc.len()) => rest,
        _ => groups,
    };
    if groups.len() < 3
        || !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits)
        || !body.iter().all(|g| (2..=4).contains(&g.len()))
        // Clock times and timecodes, MAC addresses of decimal digits.
        || (sep == b":" && groups.iter().all(|g| g.len() == 2))
    {
        return;
    }
    // A date among the groups (`11/24/2026`, `2026/11/24`, `2026:11:24`).
    if has_date(b, groups) {
        return;
    }
    let start = if plus { first.start - 1 } else { first.start };
    out.push(Finding {
        kind: PiiKind::Phone,
        start,
        end: last.end,
    });
}
