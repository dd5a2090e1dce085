//! Encoders: one record as an NDJSON line or a CSV row, through one reused buffer.

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
            push_json_str(self.buf, value.as_bytes());
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
            self.buf.push(b'"');
            push_json_inner(self.buf, value.as_bytes());
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

pub(super) fn push_json_str(buf: &mut Vec<u8>, s: &[u8]) {
    buf.push(b'"');
    push_json_inner(buf, s);
    buf.push(b'"');
}

pub(super) fn push_json_inner(buf: &mut Vec<u8>, s: &[u8]) {
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

pub(super) const LO_BYTES: u64 = 0x0101_0101_0101_0101;
pub(super) const HI_BITS: u64 = 0x8080_8080_8080_8080;

pub(super) fn load8(chunk: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(chunk);
    u64::from_le_bytes(a)
}

/// Non-zero iff some byte of `x` equals `b` (exact as a yes/no answer).
pub(super) fn swar_has_byte(x: u64, b: u8) -> u64 {
    let y = x ^ (LO_BYTES * u64::from(b));
    y.wrapping_sub(LO_BYTES) & !y & HI_BITS
}

/// Does any of the eight bytes need JSON escaping (`"`, `\`, < 0x20)?
pub(super) fn swar_any_json_special(x: u64) -> bool {
    let control = x.wrapping_sub(LO_BYTES * 0x20) & !x & HI_BITS;
    (control | swar_has_byte(x, b'"') | swar_has_byte(x, b'\\')) != 0
}

/// Does any of the eight bytes force CSV quoting (`,`, `"`, CR, LF)?
pub(super) fn swar_any_csv_special(x: u64) -> bool {
    (swar_has_byte(x, b',')
        | swar_has_byte(x, b'"')
        | swar_has_byte(x, b'\n')
        | swar_has_byte(x, b'\r'))
        != 0
}

pub(super) fn csv_needs_quotes(s: &[u8]) -> bool {
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

pub(super) fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
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

pub(super) fn push_2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10 % 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

pub(super) const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

pub(super) fn push_hex_u64(buf: &mut Vec<u8>, v: u64) {
    for shift in (0..16).rev() {
        buf.push(HEX_DIGITS[((v >> (shift * 4)) & 0xf) as usize]);
    }
}

/// A random (version 4, RFC 4122 variant) UUID in canonical form.
pub(super) fn push_uuid(buf: &mut Vec<u8>, raw: u128) {
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
