//! S3 object-created notifications in every form a trigger receives them: the direct S3
//! form (`{"Records": [...]}`, as SQS or Lambda deliver it), wrapped in an SNS
//! notification (`{"Type": "Notification", "Message": "<json>"}`), and EventBridge's
//! (`{"source": "aws.s3", "detail-type": "Object Created", "detail": {...}}`).
//!
//! Parsing tolerates what real senders do: URL-encoded keys in the S3 form (`+` for a
//! space, `%2F`), event times with or without a zone, `s3:TestEvent` (no objects), and
//! removal or other events (skipped). A body that is none of these is an error naming
//! why, for the caller to log and leave to the queue's redrive policy.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

/// One object an event announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    pub bucket: String,
    /// The object key, decoded.
    pub key: String,
    /// `ObjectCreated:Put`, `Object Created`, ….
    pub event_name: String,
    pub size: Option<u64>,
    pub e_tag: Option<String>,
    pub version_id: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

impl ObjectEvent {
    /// `s3://{bucket}/{key}`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// Why a message body is not an S3 notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an S3 event notification: {0}")]
pub struct NotAnEvent(pub String);

/// The object-created events of one message body (empty for a test event or events of
/// other kinds).
///
/// # Errors
/// The body is not JSON, or JSON of none of the three forms.
pub fn parse(body: &str) -> Result<Vec<ObjectEvent>, NotAnEvent> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| NotAnEvent(format!("not JSON: {e}")))?;
    from_value(&value, 0)
}

fn from_value(value: &Value, depth: u8) -> Result<Vec<ObjectEvent>, NotAnEvent> {
    if depth > 2 {
        return Err(NotAnEvent("notifications nested too deep".into()));
    }
    if let Some(records) = value.get("Records") {
        let records = records
            .as_array()
            .ok_or_else(|| NotAnEvent("`Records` is not an array".into()))?;
        let mut out = Vec::new();
        for r in records {
            // An SQS batch handed to Lambda: each record's body is a notification.
            if r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs") {
                let body = r.get("body").and_then(Value::as_str).unwrap_or("");
                let inner: Value = serde_json::from_str(body)
                    .map_err(|e| NotAnEvent(format!("SQS record body is not JSON: {e}")))?;
                out.extend(from_value(&inner, depth + 1)?);
            } else if let Some(e) = s3_record(r)? {
                out.push(e);
            }
        }
        return Ok(out);
    }
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    if value.get("Type").and_then(Value::as_str) == Some("Notification") {
        let message = value
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| NotAnEvent("SNS notification without a Message".into()))?;
        let inner: Value = serde_json::from_str(message)
            .map_err(|e| NotAnEvent(format!("SNS Message is not JSON: {e}")))?;
        return from_value(&inner, depth + 1);
    }
    if value.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return eventbridge(value).map(|e| e.into_iter().collect());
    }
    Err(NotAnEvent(
        "no Records, SNS Message or EventBridge detail".into(),
    ))
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut at = v;
    for p in path {
        at = at.get(p)?;
    }
    at.as_str().map(str::to_owned)
}

fn number(v: &Value, path: &[&str]) -> Option<u64> {
    let mut at = v;
    for p in path {
        at = at.get(p)?;
    }
    at.as_u64()
}

/// An event time with a zone (RFC 3339) or without one (taken as UTC).
fn event_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

/// An S3 key as S3 notifications encode it: `+` for a space, `%XX` for other bytes.
fn decode_key(key: &str) -> Result<String, NotAnEvent> {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| NotAnEvent(format!("key {key:?} does not decode to UTF-8: {e}")))
}

fn s3_record(r: &Value) -> Result<Option<ObjectEvent>, NotAnEvent> {
    let name = text(r, &["eventName"]).unwrap_or_default();
    if !name.starts_with("ObjectCreated:") {
        return Ok(None);
    }
    let bucket = text(r, &["s3", "bucket", "name"])
        .ok_or_else(|| NotAnEvent("record without s3.bucket.name".into()))?;
    let key = text(r, &["s3", "object", "key"])
        .ok_or_else(|| NotAnEvent("record without s3.object.key".into()))?;
    Ok(Some(ObjectEvent {
        bucket,
        key: decode_key(&key)?,
        event_name: name,
        size: number(r, &["s3", "object", "size"]),
        e_tag: text(r, &["s3", "object", "eTag"]),
        version_id: text(r, &["s3", "object", "versionId"]),
        at: text(r, &["eventTime"]).as_deref().and_then(event_time),
    }))
}

/// EventBridge keys are not URL-encoded.
fn eventbridge(v: &Value) -> Result<Option<ObjectEvent>, NotAnEvent> {
    let kind = text(v, &["detail-type"]).unwrap_or_default();
    if kind != "Object Created" {
        return Ok(None);
    }
    let bucket = text(v, &["detail", "bucket", "name"])
        .ok_or_else(|| NotAnEvent("EventBridge event without detail.bucket.name".into()))?;
    let key = text(v, &["detail", "object", "key"])
        .ok_or_else(|| NotAnEvent("EventBridge event without detail.object.key".into()))?;
    Ok(Some(ObjectEvent {
        bucket,
        key,
        event_name: kind,
        size: number(v, &["detail", "object", "size"]),
        e_tag: text(v, &["detail", "object", "etag"]),
        version_id: text(v, &["detail", "object", "version-id"]),
        at: text(v, &["time"]).as_deref().and_then(event_time),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "tenant%3Dt-1/dataset%3Dcontacts/source%3Dweb/dt%3D2026-11-24/leads+of+monday%2B.ndjson";
    const DECODED: &str =
        "tenant=t-1/dataset=contacts/source=web/dt=2026-11-24/leads of monday+.ndjson";

    fn direct(key: &str, time: &str) -> String {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "eventTime": time,
            "s3": {"bucket": {"name": "raw"}, "object": {"key": key, "size": 42, "eTag": "abc", "versionId": "v1"}}
        }]})
        .to_string()
    }

    #[test]
    fn the_direct_form_decodes_keys_and_times() {
        let events = parse(&direct(KEY, "2026-11-24T12:00:00.000Z")).expect("parse");
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!((e.bucket.as_str(), e.key.as_str()), ("raw", DECODED));
        assert_eq!(
            (e.size, e.e_tag.as_deref(), e.version_id.as_deref()),
            (Some(42), Some("abc"), Some("v1"))
        );
        assert_eq!(e.url(), format!("s3://raw/{DECODED}"));
        let zoneless = parse(&direct(KEY, "2026-11-24T12:00:00.000")).expect("parse");
        assert_eq!(zoneless[0].at, e.at, "a time without a zone is UTC");
        let offset = parse(&direct(KEY, "2026-11-24T13:00:00+01:00")).expect("parse");
        assert_eq!(offset[0].at, e.at);
        let garbage_time = parse(&direct(KEY, "yesterday")).expect("parse");
        assert_eq!(garbage_time[0].at, None);
    }

    #[test]
    fn sns_eventbridge_and_sqs_batches_unwrap_to_the_same_event() {
        let inner = direct(KEY, "2026-11-24T12:00:00Z");
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": inner})
            .to_string();
        assert_eq!(parse(&sns).expect("sns")[0].key, DECODED);
        let sqs_batch = serde_json::json!({"Records": [
            {"eventSource": "aws:sqs", "messageId": "1", "body": inner},
            {"eventSource": "aws:sqs", "messageId": "2", "body": sns},
        ]})
        .to_string();
        let both = parse(&sqs_batch).expect("batch");
        assert_eq!(both.len(), 2);
        let eb = serde_json::json!({
            "version": "0", "source": "aws.s3", "detail-type": "Object Created",
            "time": "2026-11-24T12:00:00Z",
            "detail": {"bucket": {"name": "raw"}, "object": {"key": DECODED, "size": 42, "etag": "abc"}}
        })
        .to_string();
        let e = parse(&eb).expect("eventbridge");
        assert_eq!(
            (e[0].key.as_str(), e[0].size),
            (DECODED, Some(42)),
            "EventBridge keys are not encoded"
        );
    }

    #[test]
    fn test_events_removals_and_garbage() {
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-24T12:00:00Z","Bucket":"raw"}"#;
        assert_eq!(parse(test), Ok(Vec::new()));
        let removed = direct(KEY, "2026-11-24T12:00:00Z")
            .replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert_eq!(parse(&removed), Ok(Vec::new()));
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"Records": 3}"#,
            r#"{"Records": [{"eventName": "ObjectCreated:Put"}]}"#,
            r#"{"Type": "Notification", "Message": "{"}"#,
            r#"{"hello": "world"}"#,
            &direct("%FF%FE", "2026-11-24T12:00:00Z"),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
