//! Unicode normalization of untrusted text, shared by every check that reads it.
//!
//! Producers are untrusted: `ana.ruiz\u{200B}@example.com`, `ＡＮＡ＠example.com` and
//! `ana.ruiz@exam\u{00AD}ple.com` all render as one address. Each check (the PII scan of
//! kept text, the canonical form of a subject) therefore reads the text in one form:
//! NFKC (compatibility forms folded: fullwidth letters and digits, ligatures, `＠`), with
//! the default-ignorable code points removed (zero-width spaces and joiners, soft hyphens,
//! the byte order mark, variation selectors, bidi controls) and NUL and the other C0/C1
//! controls but tab, newline and carriage return removed too. What is published is this
//! normalized form, so what was checked is what a buyer reads.

use std::borrow::Cow;

use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::{CodePointSetData, props::DefaultIgnorableCodePoint};

/// Whether `c` is removed by [`normalize`]: default-ignorable, or a control character
/// other than tab, newline and carriage return.
pub fn is_invisible(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// `text` in NFKC with invisible code points removed (see the module docs). Borrows when
/// the text is already in that form, which printable ASCII always is.
pub fn normalize(text: &str) -> Cow<'_, str> {
    // Printable ASCII (and tab, newline, CR) is NFKC and holds nothing invisible: the
    // common case costs one pass over the bytes.
    if text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return Cow::Borrowed(text);
    }
    // Invisible characters go before and after NFKC: NFKC can produce none that the
    // first pass left, but removing them first lets NFKC compose across them
    // (`e\u{200B}\u{0301}` → `é`).
    let visible: Cow<'_, str> = if text.chars().any(is_invisible) {
        Cow::Owned(text.chars().filter(|&c| !is_invisible(c)).collect())
    } else {
        Cow::Borrowed(text)
    };
    let nfkc = ComposingNormalizerBorrowed::new_nfkc();
    match visible {
        Cow::Borrowed(s) => match nfkc.normalize(s) {
            Cow::Borrowed(_) => Cow::Borrowed(s),
            Cow::Owned(n) => Cow::Owned(strip_invisible(n)),
        },
        Cow::Owned(s) => Cow::Owned(strip_invisible(nfkc.normalize(&s).into_owned())),
    }
}

fn strip_invisible(s: String) -> String {
    if s.chars().any(is_invisible) {
        s.chars().filter(|&c| !is_invisible(c)).collect()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ascii_is_borrowed_unchanged() {
        let s = "Ana.Ruiz@Example.com /pricing?x=1\t";
        assert!(matches!(normalize(s), Cow::Borrowed(b) if b == s));
    }

    #[test]
    fn invisible_and_compatibility_forms_are_folded() {
        for (raw, want) in [
            ("ana.ruiz\u{200B}@example.com", "ana.ruiz@example.com"),
            ("ana.ruiz@exam\u{00AD}ple.com", "ana.ruiz@example.com"),
            ("\u{FEFF}ana@example.com", "ana@example.com"),
            ("ana\u{0000}@example.com", "ana@example.com"),
            ("ana\u{2060}\u{200D}@example.com", "ana@example.com"),
            ("ana\u{FF20}example.com", "ana@example.com"),
            ("\u{FF21}\u{FF2E}\u{FF21}", "ANA"),
            ("\u{FF14}\u{FF11}\u{FF15}", "415"),
            ("e\u{0301}", "\u{00E9}"),
            ("e\u{200B}\u{0301}", "\u{00E9}"),
            ("\u{FB01}le", "file"),
        ] {
            assert_eq!(normalize(raw), want, "{raw:?}");
        }
        // Other scripts' digits are digits, not compatibility forms: NFKC keeps them
        // (the PII scan reads them as digits on its own).
        assert_eq!(
            normalize("\u{0664}\u{0661}\u{0665}"),
            "\u{0664}\u{0661}\u{0665}"
        );
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for s in [
            "x\u{200B}\u{FF21}",
            "Élodie",
            "\u{1E9B}\u{0323}",
            "a\u{00AD}\u{00AD}b",
        ] {
            let once = normalize(s).into_owned();
            assert_eq!(normalize(&once), once.as_str());
        }
    }
}
