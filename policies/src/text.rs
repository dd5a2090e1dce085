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
//!
//! [`fold_identity`] goes further, for record ids only: two spellings of one id
//! (`EV-000001`, `ev\u{2010}000001`, `ev-\u{0660}\u{0660}\u{0660}\u{0660}\u{0660}1`) fold to one
//! form, so the record ledger counts them as one record.

use std::borrow::Cow;

use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};

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

/// The form two spellings of one record id share, for the record ledger: [`normalize`]d,
/// lowercased, every dash (general category `Pd`, and U+2212 MINUS SIGN, U+FE63, U+FF0D)
/// made `-`, every decimal digit of any script (category `Nd`) made its ASCII digit, and
/// leading and trailing whitespace trimmed. `EV-000001`, `ev\u{2010}000001`,
/// `ev\u{2212}000001`, `ev\u{2014}000001` and `ev-\u{0660}\u{0660}\u{0660}\u{0660}\u{0660}1` all fold to
/// `ev-000001`. Folding twice changes nothing. Printable ASCII costs one allocation.
pub fn fold_identity(text: &str) -> String {
    let normal = normalize(text);
    let trimmed = normal.trim();
    if trimmed.is_ascii() {
        // NFKC and invisible-free already, and ASCII holds no other dash or digit.
        return trimmed.to_ascii_lowercase();
    }
    let mut folded = fold_normal(trimmed);
    // Lowercasing can leave text that NFKC composes further (`\u{038F}\u{0345}` lowercases
    // to `\u{03CE}\u{0345}`, which composes to `\u{1FF4}`): folded again until nothing
    // changes, so that folding is idempotent. Rare, and one round more is enough for
    // every case known; the bound only guards against a loop.
    for _ in 0..4 {
        let Cow::Owned(again) = normalize(&folded) else {
            break;
        };
        folded = fold_normal(again.trim());
    }
    folded
}

/// Normalized, trimmed text lowercased, its dashes `-` and its digits ASCII.
fn fold_normal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_dash(c) {
            out.push('-');
        } else if let Some(d) = foreign_digit_value(c) {
            out.push(char::from(b'0' + d));
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Whether `c` is a dash to [`fold_identity`]: general category `Pd`, or U+2212 MINUS
/// SIGN (`Sm`), U+FE63 SMALL HYPHEN-MINUS or U+FF0D FULLWIDTH HYPHEN-MINUS.
fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2212}' | '\u{FE63}' | '\u{FF0D}')
        || (!c.is_ascii()
            && CodePointMapData::<GeneralCategory>::new().get(c)
                == GeneralCategory::DashPunctuation)
}

/// The value of `c` if it is a decimal digit (general category `Nd`) other than ASCII.
pub(crate) fn foreign_digit_value(c: char) -> Option<u8> {
    if c.is_ascii() {
        return None;
    }
    let category = CodePointMapData::<GeneralCategory>::new();
    let is_digit = |c: char| category.get(c) == GeneralCategory::DecimalNumber;
    if !is_digit(c) {
        return None;
    }
    // Unicode encodes every set of decimal digits as one run of ten code points, 0 to 9
    // (a stability policy); sets can abut (the mathematical digits are five sets in a
    // row), so the value is the distance from the first of the consecutive digits,
    // modulo 10. At most 49 steps back, and only for digits outside ASCII.
    let mut first = c;
    while let Some(before) = u32::from(first).checked_sub(1).and_then(char::from_u32) {
        if !is_digit(before) {
            break;
        }
        first = before;
    }
    u8::try_from((u32::from(c) - u32::from(first)) % 10).ok()
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

    #[test]
    fn spellings_of_one_record_id_fold_together() {
        for raw in [
            "EV-000001",
            "Ev-000001",
            "ev-000001",
            "ev\u{2010}000001",
            "ev\u{2011}000001",
            "ev\u{2212}000001",
            "ev\u{2014}000001",
            "ev\u{2013}000001",
            "ev\u{FE63}000001",
            "ev\u{FF0D}000001",
            "ev-\u{0660}\u{0660}\u{0660}\u{0660}\u{0660}1",
            "ev-\u{0966}\u{0966}\u{0966}\u{0966}\u{0966}\u{0967}",
            "\u{FF25}\u{FF36}-\u{FF10}\u{FF10}\u{FF10}\u{FF10}\u{FF10}\u{FF11}",
            "  EV-000001\t",
            "\u{a0}ev-000001\u{3000}",
            "e\u{200B}v-000001",
        ] {
            assert_eq!(fold_identity(raw), "ev-000001", "{raw:?}");
        }
        for (raw, want) in [
            ("", ""),
            ("   ", ""),
            ("Élodie-42", "élodie-42"),
            ("ORD_1", "ord_1"),
            ("a b", "a b"),
            ("\u{0130}d", "i\u{307}d"),
            ("\u{212A}-1", "k-1"),
            ("\u{03A9}\u{0345}\u{0301}", "\u{1FF4}"),
        ] {
            assert_eq!(fold_identity(raw), want, "{raw:?}");
        }
        // Different ids stay different.
        assert_ne!(fold_identity("ev-000001"), fold_identity("ev-000002"));
        assert_ne!(fold_identity("ev-000001"), fold_identity("ev_000001"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4_000, ..Default::default() })]

        #[test]
        fn folding_an_identity_twice_changes_nothing(text in "\\PC{0,24}") {
            let once = fold_identity(&text);
            proptest::prop_assert_eq!(fold_identity(&once), once.clone(), "{:?}", text);
        }

        #[test]
        fn folding_tricky_identities_twice_changes_nothing(
            chars in proptest::collection::vec(proptest::sample::select(IDENTITY_ALPHABET.chars().collect::<Vec<_>>()), 0..16)
        ) {
            let text: String = chars.into_iter().collect();
            let once = fold_identity(&text);
            proptest::prop_assert_eq!(fold_identity(&once), once.clone(), "{:?}", text);
        }
    }

    /// Case mappings, compositions, dashes and digits that could make a second fold differ.
    const IDENTITY_ALPHABET: &str = "aZ0-_ \t\u{0130}\u{0131}\u{0307}\u{0301}\u{0323}\u{0345}\u{03A9}\u{1FFC}\u{212A}\u{2126}\u{00DF}\u{1E9E}\u{FB01}\u{01C5}\u{2160}\u{24B6}\u{13A0}\u{AB70}\u{2010}\u{2011}\u{2212}\u{2014}\u{FE63}\u{FF0D}\u{30A0}\u{0660}\u{0966}\u{FF11}\u{1D7DC}\u{200B}\u{00AD}\u{a0}\u{3000}\u{0049}\u{0399}\u{0390}\u{1F88}\u{10400}";
}
