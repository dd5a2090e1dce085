//! Email addresses, written plainly or spelled out (`ana at example dot com`).

use std::sync::LazyLock;

use regex::Regex;

use super::{Finding, PiiKind};

pub(super) static EMAIL_RE: LazyLock<Regex> = LazyLock::new(|| {
    // The top-level label, in order of preference: punycode (before plain letters, or
    // `xn` would end the match at its `--`); ASCII letters ending at an ASCII word
    // boundary, as ever (`ana@example.com电话` ends at `com`); letters of any script
    // ending at a word boundary (`пример.рф`, `例え.テスト`). Marks belong to labels of
    // scripts that write vowels with them (`उदाहरण.भारत`).
    // A quoted local part (`"a b"@example.com`) may hold spaces and most punctuation.
    Regex::new(concat!(
        r#"(?i)(?:"[^"\\\r\n]{1,64}"|[\p{L}\p{M}\p{N}._%+\-]+)@"#,
        r"(?:[\p{L}\p{N}](?:[\p{L}\p{M}\p{N}\-]{0,61}[\p{L}\p{M}\p{N}])?\.)+",
        r"(xn--[a-z0-9\-]{1,59}\b|[a-z]{2,63}(?-u:\b)|\p{L}[\p{L}\p{M}]{1,62}\b)",
    ))
    .expect("the email pattern is a valid regex")
});

/// "TLDs" that are really file extensions (`logo@2x.png`).
pub(super) const FILE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "gif", "svg", "webp"];

/// Spellings of `@` and `.` that a reader decodes: `%40` percent-encoded up to three
/// times (`%2540`, `%252540`), the HTML references `&#64;`, `&#x40;` (any leading zeros,
/// the `;` optional) and `&commat;`, and `(at)`, `[at]`, `{at}`, `<at>` and their `dot`
/// forms, any case, with the spaces and tabs around them.
pub(super) static SPELLED_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)%(?:25){0,2}40",
        r"|&#(x)?0*(?:40|64)(;)?",
        r"|&commat;",
        r"|[ \t]*[(\[{<][ \t]*(at|dot)[ \t]*[)\]}>][ \t]*",
    ))
    .expect("the spelled-out pattern is a valid regex")
});

/// A text with the spellings of [`SPELLED_RE`] replaced by `@` and `.`, and where each
/// replacement came from.
pub(super) struct Spelled {
    pub(super) text: String,
    /// Per replacement, where it ends in `text` and where the spelling it replaced ends in
    /// the original; ascending. Between replacements the text is the original's.
    pub(super) replaced: Vec<(usize, usize)>,
}

impl Spelled {
    /// `text` with its spellings of `@` and `.` decoded, or `None` if it has none.
    pub(super) fn of(text: &str) -> Option<Spelled> {
        let b = text.as_bytes();
        let mut out = Spelled {
            text: String::new(),
            replaced: Vec::new(),
        };
        let mut copied = 0;
        for caps in SPELLED_RE.captures_iter(text) {
            let Some(whole) = caps.get(0) else {
                continue;
            };
            let with = match caps.get(3).map(|w| w.as_str().len()) {
                Some(3) => '.',
                Some(_) => '@',
                None if whole.as_str().starts_with("&#") => {
                    // `&#64` and `&#x40` without their `;` only if the number ends there
                    // (`&#640;` is another character); `&#40;` and `&#x64;` are other
                    // characters too.
                    let hex = caps.get(1).is_some();
                    let digits = whole.as_str().trim_end_matches(';');
                    let value_ok = if hex {
                        digits.ends_with("40")
                    } else {
                        digits.ends_with("64")
                    };
                    let next = b.get(whole.end()).copied();
                    let ended = caps.get(2).is_some()
                        || next.is_none_or(|c| {
                            if hex {
                                !c.is_ascii_hexdigit()
                            } else {
                                !c.is_ascii_digit()
                            }
                        });
                    if !(value_ok && ended) {
                        continue;
                    }
                    '@'
                }
                None => '@',
            };
            out.text.push_str(&text[copied..whole.start()]);
            out.text.push(with);
            out.replaced.push((out.text.len(), whole.end()));
            copied = whole.end();
        }
        if out.replaced.is_empty() {
            return None;
        }
        out.text.push_str(&text[copied..]);
        Some(out)
    }

    /// An offset of the decoded text as one of the original: the start of a replacement
    /// maps to the start of its spelling, its end to the spelling's end.
    pub(super) fn original(&self, offset: usize) -> usize {
        // The text after the last replacement that ends at or before `offset` is the
        // original's, so offsets there differ by a constant; with no such replacement, by 0.
        let i = self.replaced.partition_point(|&(end, _)| end <= offset);
        match i.checked_sub(1).and_then(|j| self.replaced.get(j)) {
            Some(&(end, original_end)) => original_end + (offset - end),
            None => offset,
        }
    }
}

pub(super) fn scan_emails(text: &str, out: &mut Vec<Finding>) {
    match Spelled::of(text) {
        Some(spelled) => {
            let at = out.len();
            scan_email_text(&spelled.text, out);
            for f in &mut out[at..] {
                f.start = spelled.original(f.start);
                f.end = spelled.original(f.end);
            }
        }
        None if text.contains('@') => scan_email_text(text, out),
        None => {}
    }
}

pub(super) fn scan_email_text(text: &str, out: &mut Vec<Finding>) {
    for caps in EMAIL_RE.captures_iter(text) {
        let (Some(whole), Some(tld)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        if FILE_EXTENSIONS
            .iter()
            .any(|ext| tld.as_str().eq_ignore_ascii_case(ext))
        {
            continue;
        }
        // A quoted local part names someone only if it holds a letter or digit (not a
        // mask: `"***"@example.com`).
        if let Some(quoted) = whole.as_str().strip_prefix('"')
            && !quoted
                .split('"')
                .next()
                .is_some_and(|local| local.chars().any(char::is_alphanumeric))
        {
            continue;
        }
        out.push(Finding {
            kind: PiiKind::Email,
            start: whole.start(),
            end: whole.end(),
        });
    }
}
