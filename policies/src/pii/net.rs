//! IPv4 and IPv6 addresses in text, in every form a producer may write them.

use std::net::Ipv6Addr;

use super::decimal;
use super::{Finding, PiiKind};

pub(super) fn scan_ipv4(b: &[u8], out: &mut Vec<Finding>) {
    let n = b.len();
    let mut i = 0;
    while i < n {
        if !(b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
            continue;
        }
        let run_start = i;
        while i < n && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let (mut s, mut e) = (run_start, i);
        while s < e && b[s] == b'.' {
            s += 1;
        }
        while e > s && b[e - 1] == b'.' {
            e -= 1;
        }
        if let Some(last_octet) = parse_ipv4_octets(&b[s..e])
            && last_octet != 0
        {
            out.push(Finding {
                kind: PiiKind::Ipv4,
                start: s,
                end: e,
            });
        }
    }
}

/// Four octets joined by one repeated `-` or `_` (`10-1-2-3`, `ip_10_1_2_3`): a run of
/// digit groups joined by that separator, not joined on either side to more digits by
/// any of `-_.,`, with four groups of 1-3 digits, each at most 255, the last not 0. A
/// date is never one: its year has four digits.
pub(super) fn scan_ipv4_joined(b: &[u8], out: &mut Vec<Finding>) {
    let n = b.len();
    let joins_digits = |c: u8| matches!(c, b'-' | b'_' | b'.' | b',');
    let mut i = 0;
    while i < n {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut sep = None;
        let mut octets = 0usize;
        let mut last;
        let mut all_octets = true;
        let mut p = i;
        loop {
            let group_start = p;
            while p < n && b[p].is_ascii_digit() {
                p += 1;
            }
            last = decimal(&b[group_start..p]);
            all_octets &= p - group_start <= 3 && last <= 255;
            octets += 1;
            if p + 1 < n
                && matches!(b[p], b'-' | b'_')
                && sep.is_none_or(|s| s == b[p])
                && b[p + 1].is_ascii_digit()
            {
                sep = Some(b[p]);
                p += 1;
                continue;
            }
            break;
        }
        i = p;
        let joined_before =
            start >= 2 && joins_digits(b[start - 1]) && b[start - 2].is_ascii_digit();
        let joined_after = p + 1 < n && joins_digits(b[p]) && b[p + 1].is_ascii_digit();
        if sep.is_some()
            && octets == 4
            && all_octets
            && last != 0
            && !joined_before
            && !joined_after
        {
            out.push(Finding {
                kind: PiiKind::Ipv4,
                start,
                end: p,
            });
        }
    }
}

/// A hex literal of 32 bits (`0x0a010203`, `0X0A010203`): `0x` and exactly 8 hex digits,
/// not inside a word (no ASCII letter or digit right before the `0` or after the last
/// digit). Like the dotted form, one whose last octet is 0 is a truncated address.
pub(super) fn scan_ipv4_hex(b: &[u8], out: &mut Vec<Finding>) {
    const HEX_DIGITS: usize = 8;
    let n = b.len();
    let mut i = 0;
    while i + 2 + HEX_DIGITS <= n {
        if !(b[i] == b'0' && matches!(b[i + 1], b'x' | b'X')) {
            i += 1;
            continue;
        }
        let end = i + 2 + HEX_DIGITS;
        let free_before = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let free_after = b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
        let digits = &b[i + 2..end];
        if free_before
            && free_after
            && digits.iter().all(u8::is_ascii_hexdigit)
            && !digits[HEX_DIGITS - 2..].iter().all(|&c| c == b'0')
        {
            out.push(Finding {
                kind: PiiKind::Ipv4,
                start: i,
                end,
            });
            i = end;
        } else {
            i += 2;
        }
    }
}

/// Parses `a.b.c.d` (1-3 digit octets, each <= 255); returns the last octet.
pub(super) fn parse_ipv4_octets(s: &[u8]) -> Option<u8> {
    let mut count = 0;
    let mut last = 0u8;
    for part in s.split(|&c| c == b'.') {
        if part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = part
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        last = u8::try_from(v).ok()?;
        count += 1;
        if count > 4 {
            return None;
        }
    }
    (count == 4).then_some(last)
}

// ---------------------------------------------------------------- IPv6

pub(super) const IPV6_TOKEN_BREAKS: &[char] =
    &[',', ';', '"', '\'', '<', '>', '(', ')', '[', ']', '{', '}'];

pub(super) fn scan_ipv6(text: &str, out: &mut Vec<Finding>) {
    let mut token_start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if c.is_whitespace() || IPV6_TOKEN_BREAKS.contains(&c) {
            if let Some(s) = token_start.take() {
                judge_ipv6_token(text, s, i, out);
            }
        } else if token_start.is_none() {
            token_start = Some(i);
        }
    }
}

pub(super) fn judge_ipv6_token(
    text: &str,
    mut start: usize,
    mut end: usize,
    out: &mut Vec<Finding>,
) {
    let Some(token) = text.get(start..end) else {
        return;
    };
    if token.bytes().filter(|&c| c == b':').count() < 2 {
        return;
    }
    let trimmed = token.trim_end_matches(['.', '!', '?']);
    end = start + trimmed.len();
    let mut candidate = trimmed;
    if let Some(eq) = candidate.rfind('=') {
        candidate = &candidate[eq + 1..];
        start = end - candidate.len();
    }
    let whole = candidate
        .find(['%', '/'])
        .map_or(candidate, |cut| &candidate[..cut]);
    if is_full_ipv6(whole) {
        out.push(Finding {
            kind: PiiKind::Ipv6,
            start,
            end,
        });
        return;
    }
    // An address further on: in a path (`/geo/2001:db8::1`), after a label of its own
    // (`ip:2001:db8::1`) or before a colon (`2001:db8::1: down`).
    let mut piece_start = start;
    for piece in candidate.split('/') {
        let address = piece.split_once('%').map_or(piece, |(a, _)| a);
        let address = match address.strip_suffix(':') {
            Some(a) if !a.ends_with(':') => a,
            _ => address,
        };
        let found = if is_full_ipv6(address) {
            Some((piece_start, address.len()))
        } else {
            address
                .split_once(':')
                .filter(|(label, _)| label.bytes().any(|b| !b.is_ascii_hexdigit()))
                .filter(|(_, rest)| is_full_ipv6(rest))
                .map(|(label, rest)| (piece_start + label.len() + 1, rest.len()))
        };
        if let Some((at, len)) = found {
            out.push(Finding {
                kind: PiiKind::Ipv6,
                start: at,
                end: at + len,
            });
            return;
        }
        piece_start += piece.len() + 1;
    }
}

/// Whether `text` is an IPv6 address that identifies a host: some bit after the first
/// 48 set, or, for an address that carries an IPv4 one (IPv4-mapped, 6to4), a full IPv4
/// address (by the IPv4 rule: last octet not 0).
pub(super) fn is_full_ipv6(text: &str) -> bool {
    if text.bytes().filter(|&c| c == b':').count() < 2 {
        return false;
    }
    let Ok(addr) = text.parse::<Ipv6Addr>() else {
        return false;
    };
    if let Some(v4) = addr.to_ipv4_mapped() {
        return v4.octets()[3] != 0;
    }
    let host_bits = u128::from(addr) & ((1u128 << 80) - 1) != 0;
    match crate::ip::embedded_ipv4(&addr) {
        Some(v4) => host_bits || v4.octets()[3] != 0,
        None => host_bits,
    }
}
