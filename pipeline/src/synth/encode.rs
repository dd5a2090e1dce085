//! Encoders: one record as an NDJSON line or a CSV row, through one reused buffer.

use std::io::Write as _;

/// Writes one record as a JSON object or a CSV row into the shared buffer.
pub(super) struct Rec<'b> {
    pub(super) buf: &'b mut Vec<u8>,
    pub(super) csv: bool,
    pub(super) first: bool,
    /// Reused for values assembled from pieces (CSV quoting needs the whole).
    pub(super) tmp: Vec<u8>,
}

impl<'b> Rec<'b> {
    pub(super) fn begin(buf: &'b mut Vec<u8>, csv: bool) -> Self {
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

    pub(super) fn key(&mut self, name: &str) {
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

    pub(super) fn str(&mut self, name: &str, value: &str) {
        self.key(name);
        if self.csv {
            push_csv(self.buf, value.as_bytes());
        } else {
            push_json_str(self.buf, value);
        }
    }

    /// A string this module generated from its own tables (names, phones,
    /// IPs, user agents, enums): never needs JSON escaping, so skip the scan.
    pub(super) fn plain(&mut self, name: &str, value: &str) {
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
    pub(super) fn with(&mut self, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
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
    pub(super) fn with_text(&mut self, name: &str, f: impl FnOnce(&mut String)) {
        let mut s = String::from_utf8(std::mem::take(&mut self.tmp)).unwrap_or_default();
        s.clear();
        f(&mut s);
        self.str(name, &s);
        self.tmp = s.into_bytes();
    }

    /// A JSON number (or CSV cell) whose text comes from `f`.
    pub(super) fn with_raw(&mut self, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        self.key(name);
        f(self.buf);
    }

    pub(super) fn int(&mut self, name: &str, value: u64) {
        self.key(name);
        push_u64(self.buf, value);
    }

    /// `value` followed by raw (possibly invalid UTF-8) bytes inside the
    /// same JSON string. NDJSON only: CSV never asks for it.
    pub(super) fn str_with_raw(&mut self, name: &str, value: &str, raw: &[u8]) {
        self.key(name);
        if self.csv {
            push_csv(self.buf, value.as_bytes());
        } else {
            // The string with its closing quote moved past the raw bytes.
            push_json_str(self.buf, value);
            self.buf.pop();
            self.buf.extend_from_slice(raw);
            self.buf.push(b'"');
        }
    }

    /// An absent field: omitted from JSON, an empty CSV cell.
    pub(super) fn missing(&mut self, name: &str) {
        if self.csv {
            self.key(name);
        }
    }

    pub(super) fn end(self) {
        if !self.csv {
            self.buf.push(b'}');
        }
        self.buf.push(b'\n');
    }
}

/// `s` as a JSON string, quoted and escaped (serde_json's escaper).
pub(super) fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, s);
}

/// Whether a CSV cell must be quoted: it holds a delimiter, quote or line break, or
/// starts or ends with whitespace (which readers may trim).
pub(super) fn csv_needs_quotes(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_whitespace)
        || s.last().is_some_and(u8::is_ascii_whitespace)
        || s.iter().any(|&c| matches!(c, b',' | b'"' | b'\n' | b'\r'))
}

pub(super) fn push_csv(buf: &mut Vec<u8>, s: &[u8]) {
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

pub(super) fn push_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

pub(super) fn push_2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10 % 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

/// `v` as 16 lowercase hex digits.
pub(super) fn push_hex_u64(buf: &mut Vec<u8>, v: u64) {
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "{v:016x}");
}

/// A random (version 4, RFC 4122 variant) UUID in canonical form, from 128 random bits.
pub(super) fn push_uuid(buf: &mut Vec<u8>, raw: u128) {
    let uuid = uuid::Builder::from_random_bytes(raw.to_be_bytes()).into_uuid();
    buf.extend_from_slice(
        uuid.hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .as_bytes(),
    );
}

/// `ord_` + 12 base32 characters that start with a letter and never hold
/// more than two digits in a row, so no part of it reads as a phone number.
pub(super) fn push_order_id(buf: &mut Vec<u8>, mut v: u64) {
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
