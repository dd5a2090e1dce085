//! Percent-escapes, decoded so that what they hide is scanned too.

use super::email::Spelled;

impl Spelled {
    /// `text` with its percent-escapes of printable ASCII (`%20`, `%2E`, `%2D`, `%2F`,
    /// `%40`…) decoded once, or `None` if it has none.
    pub(super) fn percent_decoded(text: &str) -> Option<Spelled> {
        let b = text.as_bytes();
        let hex = |c: u8| char::from(c).to_digit(16);
        let mut out = Spelled {
            text: String::new(),
            replaced: Vec::new(),
        };
        let mut copied = 0;
        let mut i = 0;
        while let Some(k) = b
            .get(i..)
            .and_then(|rest| rest.iter().position(|&c| c == b'%'))
        {
            let at = i + k;
            i = at + 1;
            // `%40` and its re-encodings (`%2540`…) are the email rule's, which decodes
            // them up to three times.
            let mut j = at + 1;
            while b.get(j..j + 2) == Some(b"25") {
                j += 2;
            }
            if b.get(j..j + 2) == Some(b"40") {
                i = j + 2;
                continue;
            }
            let (Some(hi), Some(lo)) = (
                b.get(at + 1).copied().and_then(hex),
                b.get(at + 2).copied().and_then(hex),
            ) else {
                continue;
            };
            let Some(c) = char::from_u32(hi * 16 + lo).filter(|c| matches!(c, ' '..='~')) else {
                continue;
            };
            out.text.push_str(&text[copied..at]);
            out.text.push(c);
            out.replaced.push((out.text.len(), at + 3));
            copied = at + 3;
            i = copied;
        }
        if out.replaced.is_empty() {
            return None;
        }
        out.text.push_str(&text[copied..]);
        Some(out)
    }
}
