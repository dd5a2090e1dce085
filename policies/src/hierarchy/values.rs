//! Value primitives of the hierarchies: phone masking, ZIP prefixes, timestamps to days.

use super::InvalidValue;

/// Characters a phone number may contain besides digits.
pub(super) fn is_phone_separator(c: char) -> bool {
    matches!(c, ' ' | '+' | '-' | '(' | ')' | '.' | '/')
}

/// Masks all digits but the last `keep`, keeping the layout. 7–15 digits, no letters.
pub fn mask_phone(s: &str, keep: usize) -> Result<String, InvalidValue> {
    let mut out = String::with_capacity(s.len());
    mask_phone_into(s, keep, &mut out)?;
    Ok(out)
}

/// [`mask_phone`], appended to `out`.
pub(super) fn mask_phone_into(s: &str, keep: usize, out: &mut String) -> Result<(), InvalidValue> {
    let mut digits = 0usize;
    // Bytes, not chars: every allowed character is ASCII, and any byte of a multi-byte
    // character is neither a digit nor a separator.
    for b in s.bytes() {
        if b.is_ascii_digit() {
            digits += 1;
        } else if !is_phone_separator(char::from(b)) {
            return Err(InvalidValue::new("invalid phone"));
        }
    }
    if !(7..=15).contains(&digits) {
        return Err(InvalidValue::new("invalid phone"));
    }
    remask_phone_into(s, digits, keep, out);
    Ok(())
}

/// Masks every digit except the last `keep` visible digits.
pub(super) fn remask_phone(s: &str, keep: usize) -> String {
    let mut out = String::with_capacity(s.len());
    let visible = s.bytes().filter(u8::is_ascii_digit).count();
    remask_phone_into(s, visible, keep, &mut out);
    out
}

/// Masks the first `visible - keep` of the `visible` digits of `s` into `out` (the caller
/// has counted them).
pub(super) fn remask_phone_into(s: &str, visible: usize, keep: usize, out: &mut String) {
    let mut to_mask = visible.saturating_sub(keep);
    // A character at a time: a phone is a few ASCII bytes, and copying the text between
    // digits as slices cost a call per piece.
    out.reserve(s.len());
    for c in s.chars() {
        if to_mask > 0 && c.is_ascii_digit() {
            out.push('*');
            to_mask -= 1;
        } else {
            out.push(c);
        }
    }
}

/// The 5-digit ZIP of `94110` or `94110-1234`.
pub(super) fn parse_zip(s: &str) -> Option<&str> {
    let (zip5, plus4) = match s.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
    (digits(zip5, 5) && plus4.is_none_or(|p| digits(p, 4))).then_some(zip5)
}

pub(super) fn zip_prefix(zip5: &str, keep: usize) -> String {
    let mut out = String::with_capacity(zip5.len());
    push_zip_prefix(zip5, keep, &mut out);
    out
}

pub(super) fn push_zip_prefix(zip5: &str, keep: usize, out: &mut String) {
    let keep = keep.min(zip5.len());
    out.push_str(&zip5[..keep]);
    for _ in keep..zip5.len() {
        out.push('*');
    }
}

/// The UTC day of an RFC 3339 timestamp (offsets honoured).
pub fn truncate_timestamp(s: &str) -> Option<chrono::NaiveDate> {
    let s = s.trim();
    if let Some(day) = utc_second_day(s.as_bytes()) {
        return Some(day);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc).date_naive())
}

/// The day of `YYYY-MM-DDTHH:MM:SSZ`, the form nearly every producer writes, when every
/// field is in range; `None` leaves the timestamp to chrono (other forms, offsets,
/// fractions, leap seconds, and every invalid one). chrono's general parser took about
/// a tenth of a record's transforms; this takes a few nanoseconds.
/// `the_common_utc_form_agrees_with_chrono` holds it to chrono.
pub(super) fn utc_second_day(b: &[u8]) -> Option<chrono::NaiveDate> {
    const SEPARATORS: [(usize, u8); 6] = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ];
    if b.len() != 20 || SEPARATORS.iter().any(|&(at, c)| b[at] != c) {
        return None;
    }
    let field = |at: std::ops::Range<usize>| {
        b[at].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    if field(11..13)? > 23 || field(14..16)? > 59 || field(17..19)? > 59 {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(
        i32::try_from(field(0..4)?).ok()?,
        field(5..7)?,
        field(8..10)?,
    )
}
