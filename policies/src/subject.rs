//! The canonical form of a data subject, before it is counted or keyed.
//!
//! k-anonymity counts **distinct subjects**, so every spelling of one identifier must reach
//! the counter as one string. A producer (or an attacker who wants a class of "20 subjects"
//! made of one person) can write one address as `Ana.Ruiz+1@Example.com`,
//! `ana.ruiz\u{200B}@example.com`, `ana.ruiz＠example.com`, `mailto:ana.ruiz@example.com`,
//! `Ana Ruiz <ana.ruiz@example.com>`, `ana.ruiz@example.com.`, or with `é` composed or
//! decomposed; [`canonical_subject_into`] maps all of them to `ana.ruiz@example.com`, and
//! refuses (returns `false`, the record is quarantined as `invalid_subject`) a value that is
//! no subject of its kind at all, such as `x` in an email field.
//!
//! Guarantee: two inputs that differ only by the forms above (Unicode compatibility forms
//! and normalization, invisible code points, surrounding whitespace, case, a `mailto:` or
//! `Name <…>` wrapper, a trailing root dot, a `+tag` subaddress, Unicode vs punycode domain
//! labels, and the provider rules the policy names) have one canonical form, and the
//! canonical form of a canonical form is itself.
//!
//! Limit: this merges spellings of **one mailbox**, never mailboxes. Two real mailboxes of
//! one person (`ana@work.example`, `ana.ruiz@home.example`) are two subjects; merging them
//! takes knowledge of the person this crate does not have. Provider rules (dots ignored by
//! a provider, its alias domains) merge only what the policy says that provider merges.
//!
//! Hot path: it runs once per record. Printable ASCII input (nearly every record) is
//! trimmed, unwrapped and split by slicing and written lowercased straight into the
//! caller's buffer: no allocation. Only non-ASCII input, or a domain with `xn--` labels,
//! takes the Unicode normalization or IDNA path.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::text::normalize;

/// The longest local part accepted, in bytes (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_BYTES: usize = 64;
/// The longest domain accepted, in bytes, without a root dot (RFC 1035 §2.3.4).
pub const MAX_DOMAIN_BYTES: usize = 253;
/// The longest domain label accepted, in bytes (RFC 1035 §2.3.4).
pub const MAX_LABEL_BYTES: usize = 63;
/// The longest opaque identifier accepted, in characters.
pub const MAX_ID_CHARS: usize = 256;

/// How email subjects are canonicalized: policy data, embedded in the policy JSON under the
/// subject. `{}` is the default: `+tag` subaddresses removed, no provider rules.
///
/// Call [`EmailRules::validate`] when loading a policy: the canonical form is idempotent
/// only under valid rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailRules {
    /// Remove a `+tag` subaddress from the local part (`ana+news` → `ana`; `a+b+c` → `a`:
    /// everything from the first `+`). Default `true`: a `+tag` is delivered to the same
    /// mailbox by the major providers, and it is the cheapest way to forge distinct
    /// subjects.
    pub strip_subaddress: bool,
    /// Per-provider rules, applied after the generic steps when the domain is one a rule
    /// names. No domain may be named by two rules. Default: none.
    pub providers: Vec<ProviderRule>,
}

impl Default for EmailRules {
    fn default() -> Self {
        Self {
            strip_subaddress: true,
            providers: Vec::new(),
        }
    }
}

/// What one mail provider treats as the same mailbox, e.g. Gmail:
/// `{"domains": ["gmail.com", "googlemail.com"], "canonical_domain": "gmail.com",
/// "ignore_dots": true}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRule {
    /// The provider's domains, in lowercase ASCII (punycode for an internationalized
    /// domain), without a trailing dot. Required and non-empty.
    pub domains: Vec<String>,
    /// The domain written for every domain of [`ProviderRule::domains`] (`googlemail.com`
    /// → `gmail.com`). When it is itself a provider domain it must be one of this rule's.
    /// Default: none (each domain stays as written).
    #[serde(default)]
    pub canonical_domain: Option<String>,
    /// Remove every `.` from the local part (`a.n.a` → `ana`): the provider delivers those
    /// spellings to one mailbox. Default `false`: for most providers `a.na` and `an.a` are
    /// different people.
    #[serde(default)]
    pub ignore_dots: bool,
}

impl EmailRules {
    /// Checks the rules: every provider domain and canonical domain is a valid lowercase
    /// ASCII domain, no domain is named by two rules, a rule names at least one domain, and
    /// a canonical domain is named by no other rule (otherwise a second pass would map it
    /// again and the canonical form would not be idempotent). The error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen: Vec<&str> = Vec::new();
        for (i, rule) in self.providers.iter().enumerate() {
            if rule.domains.is_empty() {
                return Err(format!("email provider rule {i} names no domain"));
            }
            for d in &rule.domains {
                if !is_rule_domain(d) {
                    return Err(format!(
                        "email provider domain `{d}` is not a lowercase ASCII domain"
                    ));
                }
                if seen.contains(&d.as_str()) {
                    return Err(format!("email provider domain `{d}` is named twice"));
                }
                seen.push(d);
            }
        }
        for (i, rule) in self.providers.iter().enumerate() {
            let Some(c) = &rule.canonical_domain else {
                continue;
            };
            if !is_rule_domain(c) {
                return Err(format!(
                    "email canonical domain `{c}` is not a lowercase ASCII domain"
                ));
            }
            let elsewhere = self
                .providers
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && other.domains.iter().any(|d| d == c));
            if elsewhere {
                return Err(format!(
                    "email canonical domain `{c}` is a domain of another provider rule"
                ));
            }
        }
        Ok(())
    }

    /// The rule naming `domain` (any ASCII case), if any.
    fn provider(&self, domain: &str) -> Option<&ProviderRule> {
        self.providers
            .iter()
            .find(|r| r.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
    }
}

/// A rule's domain is compared with the canonical (lowercase, punycode) domain, so it must
/// be in that form itself.
fn is_rule_domain(d: &str) -> bool {
    !d.bytes().any(|b| b.is_ascii_uppercase()) && is_valid_domain(d)
}

/// The kind of a dataset's subject field, as the policy names it.
///
/// Serialized internally tagged by `kind`, in snake case, with the email rules beside it:
/// `{"kind": "email"}` (default rules), `{"kind": "email", "strip_subaddress": false}`,
/// `{"kind": "id"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SubjectKind {
    /// An email address, canonicalized by these rules (see [`canonical_email`]).
    Email(EmailRules),
    /// An opaque identifier (a visitor id): normalized text (NFKC, invisible code points
    /// removed), trimmed, non-empty, at most [`MAX_ID_CHARS`] characters. Case is kept:
    /// an opaque id may be case-sensitive.
    Id,
}

/// Writes the canonical form of `raw`, a subject of this `kind`, into `out` (cleared
/// first). Returns `false`, leaving `out` empty, when `raw` is no valid subject of that
/// kind: the caller quarantines the record as `invalid_subject`.
///
/// Reuse one `out` across records: printable ASCII input is then canonicalized without
/// allocating.
///
/// ```
/// use policies::subject::{canonical_subject_into, EmailRules, SubjectKind};
/// let kind = SubjectKind::Email(EmailRules::default());
/// let mut out = String::new();
/// assert!(canonical_subject_into(&kind, "Ana Ruiz <Ana.Ruiz+news@Example.com>", &mut out));
/// assert_eq!(out, "ana.ruiz@example.com");
/// assert!(!canonical_subject_into(&kind, "x", &mut out));
/// assert!(canonical_subject_into(&SubjectKind::Id, " Visitor-42 ", &mut out));
/// assert_eq!(out, "Visitor-42");
/// ```
pub fn canonical_subject_into(kind: &SubjectKind, raw: &str, out: &mut String) -> bool {
    match kind {
        SubjectKind::Email(rules) => email_into(raw, rules, out),
        SubjectKind::Id => id_into(raw, out),
    }
}

/// The canonical form of the email address `raw` under `rules`, or `None` when it is no
/// email address. Allocates the result; the per-record path is [`canonical_subject_into`].
///
/// ```
/// use policies::subject::{canonical_email, EmailRules};
/// let rules = EmailRules::default();
/// assert_eq!(canonical_email("mailto:ANA.RUIZ+a+b@EXAMPLE.COM.", &rules).as_deref(), Some("ana.ruiz@example.com"));
/// assert_eq!(canonical_email("ana@пример.рф", &rules).as_deref(), Some("ana@xn--e1afmkfd.xn--p1ai"));
/// assert_eq!(canonical_email("ana.ruiz", &rules), None);
/// ```
pub fn canonical_email(raw: &str, rules: &EmailRules) -> Option<String> {
    let mut out = String::new();
    email_into(raw, rules, &mut out).then_some(out)
}

/// Bytes that need no Unicode normalization: printable ASCII, tab, newline and carriage
/// return (exactly what [`normalize`] returns borrowed). Anything else may hide an
/// invisible or compatibility character.
fn is_plain_ascii(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
}

fn id_into(raw: &str, out: &mut String) -> bool {
    out.clear();
    let normalized = normalize(raw);
    let id = normalized.trim();
    // Counting characters only when the bytes could exceed the limit: ASCII ids are
    // decided by their length.
    if id.is_empty() || (id.len() > MAX_ID_CHARS && id.chars().nth(MAX_ID_CHARS).is_some()) {
        return false;
    }
    out.push_str(id);
    true
}

/// Rounds of the Unicode path before a form that keeps changing is refused (see
/// [`email_unicode_into`]); real input settles in the first.
const MAX_UNICODE_ROUNDS: usize = 3;

fn email_into(raw: &str, rules: &EmailRules, out: &mut String) -> bool {
    if is_plain_ascii(raw) {
        email_core(raw, rules, out)
    } else {
        email_unicode_into(raw, rules, out)
    }
}

/// The Unicode path: normalize, lowercase, then the common steps. Lowercasing, removing a
/// `+tag` or provider dots, or joining the parts can leave a string that normalizes
/// differently (`e.\u{301}` with dots ignored becomes `e\u{301}`, which NFKC composes), so
/// the result is run again until it is stable: the canonical form is then a fixed point by
/// construction. A form that does not settle within [`MAX_UNICODE_ROUNDS`] is refused
/// rather than given two canonical forms.
fn email_unicode_into(raw: &str, rules: &EmailRules, out: &mut String) -> bool {
    if !email_core(&lowercase_normalized(raw), rules, out) {
        return false;
    }
    for _ in 0..MAX_UNICODE_ROUNDS {
        // ASCII output reruns through the ASCII path, which changes nothing it produced.
        if out.is_ascii() {
            return true;
        }
        // What a second call would produce from `out`: when it is `out`, `out` is final.
        let mut again = String::with_capacity(out.len());
        if !email_core(&lowercase_normalized(out), rules, &mut again) {
            break;
        }
        if again == *out {
            return true;
        }
        *out = again;
    }
    out.clear();
    false
}

/// `s` normalized, lowercased (`str::to_lowercase`: final sigma and all) and normalized
/// again: lowercasing is not guaranteed to keep a string in NFKC.
fn lowercase_normalized(s: &str) -> String {
    let lower = normalize(s).to_lowercase();
    let renormalized = match normalize(&lower) {
        Cow::Owned(n) => Some(n),
        Cow::Borrowed(_) => None,
    };
    renormalized.unwrap_or(lower)
}

/// Removes surrounding whitespace and any `mailto:` and `Name <addr>` wrappers, in any
/// order (`Ana <mailto:a@b.c>`, `mailto:<a@b.c>`), by slicing: repeated until nothing
/// changes, so no wrapper is left for a second pass to remove.
fn unwrap_address(mut s: &str) -> &str {
    loop {
        let before = s.len();
        s = s.trim();
        // `Name <addr>`: the part inside the last `<…>`, the address of a display name
        // that itself holds `<` (`"a <b" <c@d.e>`).
        if let Some(inner) = s.strip_suffix('>')
            && let Some(open) = inner.rfind('<')
        {
            s = &inner[open + 1..];
        }
        if let Some(prefix) = s.get(..7)
            && prefix.eq_ignore_ascii_case("mailto:")
        {
            s = &s[7..];
        }
        if s.len() == before {
            return s;
        }
    }
}

/// The steps common to both paths, on text that is either printable ASCII (any case) or
/// already normalized and lowercased: unwrap, split, remove the `+tag`, convert and check
/// the domain, apply the provider rule, check the local part, and write
/// `local@domain` lowercased into `out`.
fn email_core(text: &str, rules: &EmailRules, out: &mut String) -> bool {
    out.clear();
    let address = unwrap_address(text);
    // Bytes, not chars, are searched: `@` and `+` are ASCII, so a byte's position is a
    // char boundary, and a char searcher set up per call costs more than scanning
    // addresses this short.
    let Some(at) = memchr::memchr(b'@', address.as_bytes()) else {
        return false;
    };
    let (local, domain) = (&address[..at], &address[at + 1..]);
    if memchr::memchr(b'@', domain.as_bytes()).is_some() {
        return false;
    }
    let local = match memchr::memchr(b'+', local.as_bytes()) {
        Some(plus) if rules.strip_subaddress => &local[..plus],
        _ => local,
    };

    // An ASCII domain without `xn--` labels is its own punycode form: it is only checked.
    // A Unicode domain is converted; an `xn--` label is run through IDNA too, which
    // refuses a label that does not decode to a valid, mapped (normalized, lowercase)
    // name, so one Unicode domain has one ASCII spelling.
    let ascii: Cow<'_, str> = if domain.is_ascii() && !has_punycode_label(domain) {
        Cow::Borrowed(domain)
    } else {
        match idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::EMPTY) {
            Ok(d) => d,
            Err(_) => return false,
        }
    };
    // A trailing dot names the DNS root: the same domain. Removed after IDNA, which maps
    // the ideographic full stop `。` to `.`.
    let domain = ascii.strip_suffix('.').unwrap_or(&ascii);
    let provider = rules.provider(domain);
    let domain = provider
        .and_then(|p| p.canonical_domain.as_deref())
        .unwrap_or(domain);
    let ignore_dots = provider.is_some_and(|p| p.ignore_dots);
    // A dot-atom: no leading, trailing or doubled dot (`.ana`, `ana..ruiz` are no
    // mailboxes, and would count as people of their own).
    if local.starts_with('.') || local.ends_with('.') {
        return false;
    }

    if local.is_ascii() {
        // One pass, byte by byte, as `is_local_char` decides for ASCII (whitespace and
        // controls are the bytes up to space, and DEL): the usual case, without decoding
        // characters. It checks, finds a doubled dot and writes the lowercase form.
        let mut previous = 0u8;
        for b in local.bytes() {
            if !is_local_byte(b) || (b == b'.' && previous == b'.') {
                out.clear();
                return false;
            }
            previous = b;
            if !(ignore_dots && b == b'.') {
                out.push(char::from(b.to_ascii_lowercase()));
            }
        }
    } else {
        if local.contains("..") {
            return false;
        }
        for c in local.chars() {
            if ignore_dots && c == '.' {
                continue;
            }
            if !is_local_char(c) {
                out.clear();
                return false;
            }
            out.push(c.to_ascii_lowercase());
        }
    }
    if out.is_empty() || out.len() > MAX_LOCAL_BYTES || !is_valid_domain(domain) {
        out.clear();
        return false;
    }
    out.push('@');
    let at = out.len();
    out.push_str(domain);
    out[at..].make_ascii_lowercase();
    true
}

/// Whether `c` may be in a local part. Quoted local parts (`"a b"@c.d`) are not accepted,
/// so `"` is refused; an apostrophe is kept (`o'brien@example.com` is a real address).
/// RFC 5322's specials are refused too: a comment (`ana.ruiz(0)@…`, `(c)ana.ruiz@…`) or a
/// backslash escape (`ana\.ruiz@…`) would otherwise make one mailbox as many subjects as
/// there are comments.
fn is_local_char(c: char) -> bool {
    !(c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '@' | '<' | '>' | '"' | '(' | ')' | ',' | ':' | ';' | '[' | ']' | '\\'
        ))
}

/// [`is_local_char`] for an ASCII byte.
fn is_local_byte(b: u8) -> bool {
    b > b' '
        && b != 0x7f
        && !matches!(
            b,
            b'@' | b'<' | b'>' | b'"' | b'(' | b')' | b',' | b':' | b';' | b'[' | b']' | b'\\'
        )
}

/// Whether a label of `domain` starts with `xn--` (any case): an IDNA-encoded label.
fn has_punycode_label(domain: &str) -> bool {
    // Most domains have no hyphen at all: one scan settles them.
    domain.as_bytes().contains(&b'-')
        && domain.as_bytes().split(|&b| b == b'.').any(|label| {
            label
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"xn--"))
        })
}

/// A DNS host name in ASCII: at most [`MAX_DOMAIN_BYTES`], at least two labels of 1 to
/// [`MAX_LABEL_BYTES`] letters, digits and inner hyphens, and a top-level label that is
/// alphabetic or IDNA-encoded (`xn--…`), so `ana@10.0.0.1` is no email subject.
fn is_valid_domain(domain: &str) -> bool {
    if domain.len() > MAX_DOMAIN_BYTES {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for bytes in domain.as_bytes().split(|&b| b == b'.') {
        let ldh = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-');
        if bytes.is_empty()
            || bytes.len() > MAX_LABEL_BYTES
            || !ldh
            || bytes.first() == Some(&b'-')
            || bytes.last() == Some(&b'-')
        {
            return false;
        }
        labels += 1;
        last = bytes;
    }
    let tld_ok = last.iter().all(|b| b.is_ascii_alphabetic())
        || last
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"xn--"));
    labels >= 2 && tld_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gmail() -> EmailRules {
        EmailRules {
            strip_subaddress: true,
            providers: vec![ProviderRule {
                domains: vec!["gmail.com".into(), "googlemail.com".into()],
                canonical_domain: Some("gmail.com".into()),
                ignore_dots: true,
            }],
        }
    }

    fn email(raw: &str) -> Option<String> {
        canonical_email(raw, &EmailRules::default())
    }

    #[test]
    fn every_attack_form_is_one_subject() {
        for raw in [
            "ana.ruiz@example.com",
            "Ana.Ruiz@Example.com",
            "ANA.RUIZ@EXAMPLE.COM",
            "  ana.ruiz@example.com \t\r\n",
            "ana.ruiz+1@example.com",
            "ana.ruiz+20@example.com",
            "ana.ruiz+@example.com",
            "ana.ruiz+a+b+c@example.com",
            "ana.ruiz\u{200B}@example.com",
            "a\u{200D}na.r\u{2060}uiz@exa\u{200C}mple.com",
            "ana.ruiz@exam\u{00AD}ple.com",
            "\u{FEFF}ana.ruiz@example.com",
            "ana.ruiz\u{FF20}example.com",
            "\u{FF21}\u{FF2E}\u{FF21}.ruiz@example.com",
            "ana.ruiz@\u{FF45}xample.com",
            "ana.ruiz@example\u{FF0E}com",
            "mailto:ana.ruiz@example.com",
            "MailTo:ana.ruiz@example.com",
            "mailto: ana.ruiz@example.com",
            "Ana Ruiz <ana.ruiz@example.com>",
            "\"Ruiz, Ana\" <Ana.Ruiz+news@Example.com>",
            "\"a <b\" <ana.ruiz@example.com>",
            "<ana.ruiz@example.com>",
            "Ana <mailto:ana.ruiz@example.com>",
            "mailto:<ana.ruiz@example.com>",
            "mailto:mailto:ana.ruiz@example.com",
            "ana.ruiz@example.com.",
            "ana.ruiz@example.com\u{3002}",
            "\u{00A0}ana.ruiz@example.com\u{3000}",
            "ana.ruiz\u{0000}@example.com",
            "\u{FEFF}mailto:Ana.Ruiz+x\u{00AD}@EXAMPLE.COM.",
        ] {
            assert_eq!(
                email(raw).as_deref(),
                Some("ana.ruiz@example.com"),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn composed_and_decomposed_are_one_subject() {
        let nfc = email("\u{E9}lodie@exemple.fr");
        assert_eq!(nfc.as_deref(), Some("\u{E9}lodie@exemple.fr"));
        assert_eq!(email("e\u{0301}lodie@exemple.fr"), nfc);
        assert_eq!(email("E\u{0301}LODIE@Exemple.fr"), nfc);
        assert_eq!(email("\u{C9}lodie@exemple.fr"), nfc);
        assert_eq!(email("e\u{200B}\u{0301}lodie@exemple.fr"), nfc);
        // A Unicode domain is written in punycode, whichever way it was written.
        assert_eq!(
            email("ana@exe\u{0301}mple.fr"),
            email("ana@ex\u{E9}mple.fr")
        );
        assert_eq!(email("ana@EX\u{C9}MPLE.fr"), email("ana@xn--exmple-cva.fr"));
        assert_eq!(
            email("ana@\u{43F}\u{440}\u{438}\u{43C}\u{435}\u{440}.\u{440}\u{444}").as_deref(),
            Some("ana@xn--e1afmkfd.xn--p1ai")
        );
        assert_eq!(
            email("ana@XN--E1AFMKFD.XN--P1AI").as_deref(),
            Some("ana@xn--e1afmkfd.xn--p1ai")
        );
    }

    #[test]
    fn what_is_no_email_is_refused() {
        for raw in [
            "",
            "   ",
            "\u{200B}",
            "x",
            "ana.ruiz",
            "@example.com",
            "ana@",
            "ana@@example.com",
            "ana@b@example.com",
            "ana ruiz@example.com",
            "ana\truiz@example.com",
            "\"ana\"@example.com",
            "ana<@example.com",
            "+tag@example.com",
            "ana@example",
            "ana@localhost",
            "ana@10.0.0.1",
            "ana@example.c0m",
            "ana@example..com",
            "ana@.example.com",
            "ana@example.com..",
            "ana@-example.com",
            "ana@example-.com",
            "ana@exa_mple.com",
            "ana@exa mple.com",
            "ana@example.com>",
            "Ana Ruiz <ana.ruiz@example.com",
            "Ana Ruiz <>",
            "mailto:",
            "ana@example.com?subject=hi",
            // An `xn--` label that is not valid punycode.
            "ana@xn--.com",
            "ana@xn--0.aa",
            "ana@xn--a-ecp.xn--zz",
        ] {
            assert_eq!(email(raw), None, "{raw:?}");
            let mut out = String::from("stale");
            let kind = SubjectKind::Email(EmailRules::default());
            assert!(!canonical_subject_into(&kind, raw, &mut out), "{raw:?}");
            assert!(out.is_empty(), "{raw:?} left {out:?}");
        }
    }

    #[test]
    fn lengths_are_limited() {
        let local = "a".repeat(MAX_LOCAL_BYTES);
        assert!(email(&format!("{local}@example.com")).is_some());
        assert!(email(&format!("{local}a@example.com")).is_none());
        // The limit is in bytes of the canonical form, after the `+tag` is removed.
        assert!(email(&format!("{local}+tag@example.com")).is_some());
        let label = "b".repeat(MAX_LABEL_BYTES);
        assert!(email(&format!("a@{label}.com")).is_some());
        assert!(email(&format!("a@{label}b.com")).is_none());
        // 3 × 63 + 3 dots + 61 = 253 bytes.
        let long = format!("{label}.{label}.{label}.{}", "c".repeat(61));
        assert_eq!(long.len(), MAX_DOMAIN_BYTES);
        assert!(email(&format!("a@{long}")).is_some());
        assert!(email(&format!("a@{long}.")).is_some());
        assert!(email(&format!("a@{long}c")).is_none());
    }

    #[test]
    fn comments_escapes_and_stray_dots_are_no_mailbox() {
        for raw in [
            "ana.ruiz(0)@example.com",
            "(c)ana.ruiz@example.com",
            "ana\\.ruiz@example.com",
            "ana,ruiz@example.com",
            "ana[1]@example.com",
            ".ana.ruiz@example.com",
            "ana.ruiz.@example.com",
            "ana..ruiz@example.com",
        ] {
            assert_eq!(email(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn the_local_part_keeps_its_unicode_and_punctuation() {
        for (raw, want) in [
            ("\u{C9}LODIE@exemple.fr", "\u{E9}lodie@exemple.fr"),
            ("O'Brien@example.ie", "o'brien@example.ie"),
            ("first_last-x.y@example.com", "first_last-x.y@example.com"),
            (
                "\u{3A3}\u{39F}\u{3A6}\u{399}\u{391}@example.gr",
                "\u{3C3}\u{3BF}\u{3C6}\u{3B9}\u{3B1}@example.gr",
            ),
        ] {
            assert_eq!(email(raw).as_deref(), Some(want), "{raw:?}");
        }
    }

    #[test]
    fn subaddress_removal_is_configurable() {
        let keep = EmailRules {
            strip_subaddress: false,
            providers: Vec::new(),
        };
        assert_eq!(
            canonical_email("Ana+News@Example.com", &keep).as_deref(),
            Some("ana+news@example.com")
        );
        assert_eq!(
            email("Ana+News@Example.com").as_deref(),
            Some("ana@example.com")
        );
    }

    #[test]
    fn local_bytes_are_judged_as_local_characters() {
        for b in 0u8..=0x7f {
            assert_eq!(
                is_local_byte(b),
                is_local_char(char::from(b)),
                "byte {b:#04x}"
            );
        }
    }

    #[test]
    fn provider_rules_apply_only_when_configured() {
        let rules = gmail();
        assert!(rules.validate().is_ok());
        for raw in [
            "ana.ruiz@gmail.com",
            "anaruiz@gmail.com",
            "a.n.a.r.u.i.z@gmail.com",
            "Ana.Ruiz+news@GoogleMail.com",
            "ana.ruiz@gmail.com.",
            "mailto:Ana Ruiz <ana.ruiz@googlemail.com>",
        ] {
            assert_eq!(
                canonical_email(raw, &rules).as_deref(),
                Some("anaruiz@gmail.com"),
                "{raw:?}"
            );
        }
        // Other providers keep their dots under the same rules.
        assert_eq!(
            canonical_email("ana.ruiz@example.com", &rules).as_deref(),
            Some("ana.ruiz@example.com")
        );
        // A local part of dots only is empty once they are ignored.
        assert_eq!(canonical_email("...@gmail.com", &rules), None);
        // Not by default: `ana.ruiz` and `anaruiz` may be two people elsewhere, and the
        // default knows no provider.
        assert_eq!(
            email("ana.ruiz@gmail.com").as_deref(),
            Some("ana.ruiz@gmail.com")
        );
        assert_eq!(
            email("ana.ruiz@googlemail.com").as_deref(),
            Some("ana.ruiz@googlemail.com")
        );
    }

    #[test]
    fn invalid_provider_rules_are_refused() {
        let rule = |domains: &[&str], canonical: Option<&str>| ProviderRule {
            domains: domains.iter().map(|d| d.to_string()).collect(),
            canonical_domain: canonical.map(str::to_string),
            ignore_dots: false,
        };
        for providers in [
            vec![rule(&[], None)],
            vec![rule(&["Gmail.com"], None)],
            vec![rule(&["gmail"], None)],
            vec![rule(&["gmail.com."], None)],
            vec![rule(&["gmail.com"], Some("not a domain"))],
            vec![rule(&["a.com"], None), rule(&["a.com"], None)],
            // `a.com` → `b.com`, which another rule maps again: a second pass would move it.
            vec![
                rule(&["a.com"], Some("b.com")),
                rule(&["b.com"], Some("c.com")),
            ],
        ] {
            let rules = EmailRules {
                strip_subaddress: true,
                providers,
            };
            assert!(rules.validate().is_err(), "{rules:?}");
        }
        assert!(EmailRules::default().validate().is_ok());
        let ok = EmailRules {
            strip_subaddress: true,
            providers: vec![
                rule(&["a.com", "b.com"], Some("b.com")),
                rule(&["c.com"], Some("d.com")),
            ],
        };
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn rules_and_kinds_deserialize_from_policy_json() {
        let parse = |j: &str| serde_json::from_str::<SubjectKind>(j);
        assert_eq!(
            serde_json::from_str::<EmailRules>("{}").ok(),
            Some(EmailRules::default())
        );
        assert_eq!(
            parse(r#"{"kind": "email"}"#).ok(),
            Some(SubjectKind::Email(EmailRules::default()))
        );
        assert_eq!(parse(r#"{"kind": "id"}"#).ok(), Some(SubjectKind::Id));
        let with_gmail = r#"{"kind": "email", "providers": [{"domains": ["gmail.com", "googlemail.com"], "canonical_domain": "gmail.com", "ignore_dots": true}]}"#;
        assert_eq!(parse(with_gmail).ok(), Some(SubjectKind::Email(gmail())));
        assert_eq!(
            parse(r#"{"kind": "email", "strip_subaddress": false}"#).ok(),
            Some(SubjectKind::Email(EmailRules {
                strip_subaddress: false,
                providers: Vec::new()
            }))
        );
        // A misspelt field is an error, never a silently default rule.
        assert!(parse(r#"{"kind": "email", "strip_subadress": false}"#).is_err());
        assert!(
            parse(
                r#"{"kind": "email", "providers": [{"domains": ["a.com"], "ignore_dot": true}]}"#
            )
            .is_err()
        );
        assert!(parse(r#"{"kind": "email", "providers": [{}]}"#).is_err());
        assert!(parse(r#"{"kind": "phone"}"#).is_err());
        // What is serialized reads back as itself.
        let kind = SubjectKind::Email(gmail());
        let json = serde_json::to_string(&kind).unwrap_or_default();
        assert_eq!(parse(&json).ok(), Some(kind));
    }

    #[test]
    fn ids_are_trimmed_and_normalized_but_keep_their_case() {
        let mut out = String::new();
        for (raw, want) in [
            ("v-0042", "v-0042"),
            ("  Visitor-42\t", "Visitor-42"),
            ("Visitor\u{200B}-42", "Visitor-42"),
            ("\u{FEFF}\u{FF36}isitor-42", "Visitor-42"),
            ("e\u{0301}", "\u{E9}"),
            ("AbC dEf", "AbC dEf"),
        ] {
            assert!(
                canonical_subject_into(&SubjectKind::Id, raw, &mut out),
                "{raw:?}"
            );
            assert_eq!(out, want, "{raw:?}");
        }
        for raw in ["", " \t ", "\u{200B}\u{00AD}", "\u{0000}"] {
            assert!(
                !canonical_subject_into(&SubjectKind::Id, raw, &mut out),
                "{raw:?}"
            );
            assert!(out.is_empty());
        }
        let longest = "x".repeat(MAX_ID_CHARS);
        assert!(canonical_subject_into(&SubjectKind::Id, &longest, &mut out));
        assert!(!canonical_subject_into(
            &SubjectKind::Id,
            &format!("{longest}x"),
            &mut out
        ));
        // The limit counts characters, not bytes.
        let wide = "\u{E9}".repeat(MAX_ID_CHARS);
        assert!(canonical_subject_into(&SubjectKind::Id, &wide, &mut out));
        assert!(!canonical_subject_into(
            &SubjectKind::Id,
            &format!("{wide}\u{E9}"),
            &mut out
        ));
    }

    #[test]
    fn plain_ascii_reuses_the_buffer() {
        let kind = SubjectKind::Email(EmailRules::default());
        let mut out = String::with_capacity(64);
        let buffer = out.as_ptr();
        for raw in [
            "Ana.Ruiz+1@Example.com",
            "mailto:Kofi <kofi@example.org.>",
            "x",
        ] {
            canonical_subject_into(&kind, raw, &mut out);
            assert_eq!(out.as_ptr(), buffer, "{raw:?}");
        }
    }

    /// A dot-atom: no leading, trailing or doubled dot.
    fn local_part() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9_'-]{0,7}(\\.[a-z0-9_'-]{1,4}){0,2}"
    }

    fn domain() -> impl Strategy<Value = String> {
        (
            // `xn--…` labels are IDNA-encoded: most such strings are invalid punycode,
            // rightly refused, so plain labels never start with it.
            prop::collection::vec(
                "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
                    .prop_filter("an xn-- label", |l| !l.starts_with("xn--")),
                1..4,
            ),
            "[a-z]{2,6}",
        )
            .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
    }

    /// One way to write `local@domain`, from the choices a producer or attacker has.
    #[derive(Debug, Clone)]
    struct Variant {
        case_flips: Vec<bool>,
        tag: Option<String>,
        invisible: Option<(usize, char)>,
        fullwidth_at: bool,
        trailing_dot: bool,
        mailto: bool,
        display_name: Option<String>,
        padding: (String, String),
    }

    fn variant() -> impl Strategy<Value = Variant> {
        (
            prop::collection::vec(any::<bool>(), 0..40),
            prop::option::of("[a-zA-Z0-9.+-]{0,8}"),
            prop::option::of((
                any::<usize>(),
                prop::sample::select(vec!['\u{200B}', '\u{00AD}', '\u{FEFF}', '\u{2060}']),
            )),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop::option::of("[A-Za-z \"]{0,12}"),
            ("[ \t]{0,2}", "[ \t\r\n]{0,2}"),
        )
            .prop_map(
                |(
                    case_flips,
                    tag,
                    invisible,
                    fullwidth_at,
                    trailing_dot,
                    mailto,
                    display_name,
                    padding,
                )| {
                    Variant {
                        case_flips,
                        tag,
                        invisible,
                        fullwidth_at,
                        trailing_dot,
                        mailto,
                        display_name,
                        padding,
                    }
                },
            )
    }

    fn write(local: &str, domain: &str, v: &Variant) -> String {
        let flip = |s: &str, offset: usize| -> String {
            s.chars()
                .enumerate()
                .map(|(i, c)| {
                    if v.case_flips.get(i + offset).copied().unwrap_or(false) {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        };
        let mut local = flip(local, 0);
        if let Some(tag) = &v.tag {
            local.push('+');
            local.push_str(tag);
        }
        let at = if v.fullwidth_at { "\u{FF20}" } else { "@" };
        let mut domain = flip(domain, 20);
        if v.trailing_dot {
            domain.push('.');
        }
        let mut address = format!("{local}{at}{domain}");
        if let Some((at, c)) = v.invisible {
            let chars: Vec<char> = address.chars().collect();
            let at = at % (chars.len() + 1);
            address = chars[..at]
                .iter()
                .chain(std::iter::once(&c))
                .chain(&chars[at..])
                .collect();
        }
        if v.mailto {
            address = format!("mailto:{address}");
        }
        if let Some(name) = &v.display_name {
            address = format!("{name} <{address}>");
        }
        format!("{}{address}{}", v.padding.0, v.padding.1)
    }

    proptest! {
        #[test]
        fn every_variant_is_the_plain_address(local in local_part(), domain in domain(), v in variant()) {
            let plain = format!("{local}@{domain}");
            let want = email(&plain);
            prop_assert_eq!(want.as_deref(), Some(plain.as_str()));
            let written = write(&local, &domain, &v);
            prop_assert_eq!(email(&written), want, "{:?}", written);
        }

        #[test]
        fn gmail_variants_are_one_mailbox(local in "[a-z0-9]{1,6}(\\.[a-z0-9]{1,6}){0,3}", v in variant(), googlemail in any::<bool>()) {
            let rules = gmail();
            let host = if googlemail { "googlemail.com" } else { "gmail.com" };
            let want = format!("{}@gmail.com", local.replace('.', ""));
            let written = write(&local, host, &v);
            prop_assert_eq!(canonical_email(&written, &rules), Some(want), "{:?}", written);
        }

        #[test]
        fn canonical_email_is_idempotent(raw in prop_oneof![
            any::<String>(),
            "[ a-zA-Z0-9.+_<>@:\"'\u{e9}\u{301}\u{130}\u{3a3}\u{df}\u{200b}\u{ad}\u{ff20}\u{3002}]{0,30}",
            "[a-zA-Z\u{e9}\u{301}\u{130}\u{3a3}\u{df}\u{fb01}.+]{1,12}@[a-z\u{43f}\u{440}\u{3a3}\u{3c2}\u{df}\u{e9}\u{301}.-]{1,12}\\.(com|\u{440}\u{444}|XN--P1AI)\\.?",
        ], dots in any::<bool>()) {
            let rules = if dots { gmail() } else { EmailRules::default() };
            if let Some(canonical) = canonical_email(&raw, &rules) {
                let again = canonical_email(&canonical, &rules);
                prop_assert_eq!(again, Some(canonical), "{:?}", raw);
            }
        }

        #[test]
        fn canonical_id_is_idempotent(raw in any::<String>()) {
            let mut once = String::new();
            if canonical_subject_into(&SubjectKind::Id, &raw, &mut once) {
                let mut twice = String::new();
                prop_assert!(canonical_subject_into(&SubjectKind::Id, &once, &mut twice));
                prop_assert_eq!(twice, once);
            }
        }
    }
}
