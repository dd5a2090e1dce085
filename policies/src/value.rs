//! A raw field value as producers send it, before any policy rule touches it.
//!
//! Producers are untrusted: a field may be missing, of the wrong JSON type or a nested
//! document. Readers (NDJSON, CSV) turn each field into a [`Value`] borrowing from the
//! input line where they can, so transforms run without copying.

use std::borrow::Cow;

/// One raw field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Missing, JSON `null`, or an empty CSV cell.
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    /// An object or array: never a valid scalar field.
    Nested,
}

impl Value<'_> {
    /// The value as text when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the value is absent (null, missing, or a blank string).
    pub fn is_missing(&self) -> bool {
        match self {
            Value::Null => true,
            // Most values start with a visible ASCII character: no need to trim them.
            Value::Str(s) => match s.as_bytes().first() {
                Some(b) if b.is_ascii_graphic() => false,
                _ => s.trim().is_empty(),
            },
            _ => false,
        }
    }

    /// A short name of the JSON type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Nested => "object or array",
        }
    }

    /// An integer reading: JSON integers, integral floats and decimal strings.
    pub fn to_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A finite floating-point reading: JSON numbers and decimal strings.
    pub fn to_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|f: &f64| f.is_finite())
    }
}
