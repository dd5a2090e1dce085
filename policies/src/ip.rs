//! IP addresses as the policy reads them: the textual forms accepted, the IPv4 address an
//! IPv6 one carries, and truncation to a prefix. A leaf module: the hierarchies generalize
//! with it and the PII scan finds addresses with it, neither through the other.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses every valid textual IP form: IPv4 dotted quads without leading zeros (they are
/// octal in some parsers, so ambiguous), IPv6 in any notation, with or without a zone id.
/// IPv4-mapped and 6to4 IPv6 addresses come back as the IPv4 address they carry (see
/// [`embedded_ipv4`]).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if s.contains(':') {
        let addr = s
            .split_once('%')
            .map_or(s, |(a, zone)| if zone.is_empty() { "" } else { a });
        // An embedded dotted quad follows the IPv4 rules too.
        if let Some((_, tail)) = addr.rsplit_once(':')
            && tail.contains('.')
            && parse_ipv4_strict(tail).is_none()
        {
            return None;
        }
        let v6: Ipv6Addr = addr.parse().ok()?;
        Some(match embedded_ipv4(&v6) {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        })
    } else {
        parse_ipv4_strict(s).map(IpAddr::V4)
    }
}

/// The IPv4 address an IPv6 one stands for: IPv4-mapped (`::ffff:203.0.113.9`), and 6to4
/// (`2002:cb00:7139::/48`, RFC 3056), whose bits 16..48 are the IPv4 address of its site.
/// Cut as IPv6 at /48, a 6to4 address would publish the whole IPv4 address, so both are
/// truncated as the IPv4 address they carry.
pub fn embedded_ipv4(v6: &Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let bits = u128::from(*v6);
    (bits >> 112 == 0x2002).then(|| Ipv4Addr::from((bits >> 80) as u32))
}

fn parse_ipv4_strict(s: &str) -> Option<Ipv4Addr> {
    // std takes exactly four decimal octets of at most 255 and, since Rust 1.55, refuses
    // leading zeros.
    s.parse().ok()
}

/// Zeroes the host bits beyond the prefix and prints the canonical form.
pub fn truncate_ip(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> String {
    let mut out = String::new();
    truncate_ip_into(ip, v4_prefix, v6_prefix, &mut out);
    out
}

/// [`truncate_ip`], appended to `out`.
pub fn truncate_ip_into(ip: IpAddr, v4_prefix: u8, v6_prefix: u8, out: &mut String) {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if v4_prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(v4_prefix.min(32)))
            };
            for (i, octet) in (bits & mask).to_be_bytes().iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(itoa::Buffer::new().format(*octet));
            }
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if v6_prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(v6_prefix.min(128)))
            };
            // Canonical RFC 5952 text, as `Display` writes it. Writing to a String
            // cannot fail.
            let _ = write!(out, "{}", Ipv6Addr::from(bits & mask));
        }
    }
}
