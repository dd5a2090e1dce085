//! Identifiers with a checksum or a hardware address: card numbers (Luhn), IBANs (mod 97)
//! and v1/v2 UUIDs, which carry a MAC address.

use super::phone::{Group, is_date_stamp};
use super::{Finding, PiiKind, is_canonical_uuid};

/// Payment card numbers: 13 to 19 digits, written as one run or in groups of four (the
/// last of one to four, or Amex's `4-6-5`) joined by one repeated space or `-`, passing
/// the Luhn check, not glued to a word or number on either side.
pub(super) fn scan_cards(b: &[u8], out: &mut Vec<Finding>) {
    let n = b.len();
    let mut i = 0;
    let mut groups: smallvec::SmallVec<[Group; 8]> = smallvec::SmallVec::new();
    while i < n {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        groups.clear();
        let mut p = i;
        loop {
            let start = p;
            while p < n && b[p].is_ascii_digit() {
                p += 1;
            }
            groups.push(Group { start, end: p });
            if p + 1 < n && matches!(b[p], b' ' | b'-') && b[p + 1].is_ascii_digit() {
                p += 1;
                continue;
            }
            break;
        }
        if let Some(f) = judge_card(b, &groups) {
            out.push(f);
        }
        i = p;
    }
}

pub(super) fn judge_card(b: &[u8], groups: &[Group]) -> Option<Finding> {
    let (first, last) = (groups[0], groups[groups.len() - 1]);
    let digits: usize = groups.iter().map(Group::len).sum();
    if !(13..=19).contains(&digits) {
        return None;
    }
    if let [_, rest @ ..] = groups
        && let Some(sep) = rest.first().map(|g| b[g.start - 1])
    {
        let lens: smallvec::SmallVec<[usize; 8]> = groups.iter().map(Group::len).collect();
        let [body @ .., tail] = &lens[..] else {
            return None;
        };
        let fours = body.iter().all(|&l| l == 4) && (1..=4).contains(tail);
        if rest.iter().any(|g| b[g.start - 1] != sep)
            || !(fours || lens[..] == [4, 6, 5] || lens[..] == [4, 6, 4])
        {
            return None;
        }
    } else if is_date_stamp(b, groups) {
        return None;
    }
    // Not glued: no letter or digit beside it, no decimal point or dash before more
    // digits (`1.4111111111111111`, `4111111111111111.5`).
    let near = |c: Option<u8>, beyond: Option<u8>| {
        c.is_some_and(|c| c.is_ascii_alphanumeric())
            || (matches!(c, Some(b'.' | b',' | b'-' | b'_'))
                && beyond.is_some_and(|d| d.is_ascii_alphanumeric()))
    };
    let before = |k: usize| first.start.checked_sub(k).map(|k| b[k]);
    if near(before(1), before(2)) || near(b.get(last.end).copied(), b.get(last.end + 1).copied()) {
        return None;
    }
    // Luhn: from the right, every second digit doubled.
    let mut sum = 0u32;
    let mut k = 0usize;
    for g in groups.iter().rev() {
        for &d in b[g.start..g.end].iter().rev() {
            let mut v = u32::from(d - b'0');
            if k % 2 == 1 {
                v *= 2;
                if v > 9 {
                    v -= 9;
                }
            }
            sum += v;
            k += 1;
        }
    }
    sum.is_multiple_of(10).then_some(Finding {
        kind: PiiKind::Card,
        start: first.start,
        end: last.end,
    })
}

// ---------------------------------------------------------------- IBAN

/// The length of an IBAN of the country `cc` (uppercase), if the country issues them.
pub(super) fn iban_length(cc: [u8; 2]) -> Option<usize> {
    const LENGTHS: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
    ];
    LENGTHS.iter().find(|(c, _)| **c == cc).map(|&(_, len)| len)
}

/// IBANs: a country code, two check digits and the account, as one word or in groups of
/// four joined by single spaces, of the country's length and passing the mod-97 check.
pub(super) fn scan_ibans(b: &[u8], out: &mut Vec<Finding>) {
    let n = b.len();
    let mut i = 0;
    while i + 15 <= n {
        if let Some(end) = iban_at(b, i) {
            out.push(Finding {
                kind: PiiKind::Iban,
                start: i,
                end,
            });
            i = end;
        } else {
            i += 1;
        }
    }
}

pub(super) fn iban_at(b: &[u8], i: usize) -> Option<usize> {
    let head = b.get(i..i + 4)?;
    if !(head[0].is_ascii_alphabetic()
        && head[1].is_ascii_alphabetic()
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit())
        || (i > 0 && b[i - 1].is_ascii_alphanumeric())
    {
        return None;
    }
    let len = iban_length([head[0].to_ascii_uppercase(), head[1].to_ascii_uppercase()])?;
    let mut compact = [0u8; 34];
    let (mut count, mut p, mut spaced) = (0usize, i, None);
    while count < len {
        let c = *b.get(p)?;
        if count > 0 && count.is_multiple_of(4) && spaced.is_none_or(|s| s) {
            let space = c == b' ';
            if *spaced.get_or_insert(space) != space {
                return None;
            }
            if space {
                p += 1;
            }
        }
        let c = *b.get(p)?;
        if !c.is_ascii_alphanumeric() {
            return None;
        }
        compact[count] = c.to_ascii_uppercase();
        count += 1;
        p += 1;
    }
    if b.get(p).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut rem = 0u32;
    for &c in compact[4..len].iter().chain(&compact[..4]) {
        rem = if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    (rem == 1).then_some(p)
}

// ---------------------------------------------------------------- device UUID

/// A canonical UUID of version 1 or 2 (and the RFC 4122 variant): it carries the time it
/// was made and the MAC address of the device that made it.
pub(super) fn is_device_uuid(u: &[u8]) -> bool {
    is_canonical_uuid(u)
        && matches!(u[14], b'1' | b'2')
        && matches!(u[19], b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
}

pub(super) fn scan_device_uuids(b: &[u8], out: &mut Vec<Finding>) {
    // Not part of a longer hex word or dash-joined hex run on either side.
    let free = |near: Option<u8>, beyond: Option<u8>| match near {
        None => true,
        Some(c) if c.is_ascii_alphanumeric() => false,
        Some(b'-') => !beyond.is_some_and(|d| d.is_ascii_hexdigit()),
        _ => true,
    };
    let mut i = 0;
    while i + 36 <= b.len() {
        let end = i + 36;
        let before = |k: usize| i.checked_sub(k).map(|k| b[k]);
        if is_device_uuid(&b[i..end])
            && free(before(1), before(2))
            && free(b.get(end).copied(), b.get(end + 1).copied())
        {
            out.push(Finding {
                kind: PiiKind::DeviceUuid,
                start: i,
                end,
            });
            i = end;
        } else {
            i += 1;
        }
    }
}
