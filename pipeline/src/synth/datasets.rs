//! The three datasets, and the defects a dirty record of each may carry.

use super::{CONTACTS_FIELDS, ORDERS_FIELDS, RawFormat, WEB_EVENTS_FIELDS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dataset {
    Contacts,
    WebEvents,
    Orders,
}

impl Dataset {
    pub(super) fn parse(name: &str) -> Option<Self> {
        match name {
            "contacts" => Some(Dataset::Contacts),
            "web_events" => Some(Dataset::WebEvents),
            "orders" => Some(Dataset::Orders),
            _ => None,
        }
    }

    pub(super) fn fields(self) -> &'static [&'static str] {
        match self {
            Dataset::Contacts => CONTACTS_FIELDS,
            Dataset::WebEvents => WEB_EVENTS_FIELDS,
            Dataset::Orders => ORDERS_FIELDS,
        }
    }
}

/// The one defect a bad record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dirt {
    /// `{"event_id": "abc", broken` (NDJSON).
    NotJson,
    /// A row with too few fields (CSV's stand-in for "not JSON").
    RaggedRow,
    /// A string where a number belongs.
    WrongType,
    /// No email / visitor_id / customer_email.
    MissingSubject,
    /// `999.1.2.3`, `010.001.002.003`, `not-an-ip`.
    BadIp,
    /// `n/a`.
    BadPhone,
    /// `SW1A 1AA`, `9411`.
    BadZip,
    /// Raw bytes 0xff 0xfe inside a string value (NDJSON only).
    InvalidUtf8,
    /// The person's email or phone inside `message` and `interest`.
    PiiInText,
}

pub(super) fn dirt_kinds(dataset: Dataset, format: RawFormat) -> &'static [Dirt] {
    use Dirt::*;
    match (dataset, format) {
        (Dataset::Contacts, RawFormat::Ndjson) => &[
            NotJson,
            WrongType,
            MissingSubject,
            BadIp,
            BadPhone,
            BadZip,
            InvalidUtf8,
            PiiInText,
        ],
        (Dataset::Contacts, RawFormat::Csv) => &[
            RaggedRow,
            WrongType,
            MissingSubject,
            BadIp,
            BadPhone,
            BadZip,
            PiiInText,
        ],
        (Dataset::WebEvents, RawFormat::Ndjson) => {
            &[NotJson, WrongType, MissingSubject, BadIp, InvalidUtf8]
        }
        (Dataset::WebEvents, RawFormat::Csv) => &[RaggedRow, WrongType, MissingSubject, BadIp],
        (Dataset::Orders, RawFormat::Ndjson) => {
            &[NotJson, WrongType, MissingSubject, BadZip, InvalidUtf8]
        }
        (Dataset::Orders, RawFormat::Csv) => &[RaggedRow, WrongType, MissingSubject, BadZip],
    }
}

pub(super) const BAD_IPS: [&str; 3] = ["999.1.2.3", "010.001.002.003", "not-an-ip"];
pub(super) const BAD_ZIPS: [&str; 2] = ["SW1A 1AA", "9411"];
pub(super) const INVALID_UTF8: &[u8] = b"\xff\xfe";
