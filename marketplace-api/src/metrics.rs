//! `/metrics` in the Prometheus text format: request counts and latencies by route,
//! method and status (prometheus-client), and on the embedded default the pipeline's
//! release metrics, the latest value of each series in its JSON-lines metrics file.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    route: String,
    method: String,
}

/// The API's request metrics and where the pipeline's figures are.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    /// The embedded metrics sink's file, if any.
    release_metrics: Option<PathBuf>,
}

/// How much of the end of the JSON-lines file is read: the latest datapoints are there.
const TAIL_BYTES: u64 = 4 << 20;

impl Metrics {
    #[must_use]
    pub fn new(release_metrics: Option<PathBuf>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            // 0.5 ms to ~4 s.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0005, 2.0, 14,
            ))
        });
        registry.register(
            "stackpro_http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "stackpro_http_request_duration_seconds",
            "Time to answer, by route and method",
            latency.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            release_metrics,
        }
    }

    /// Counts one answered request.
    pub fn observe(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                route: route.to_owned(),
                method: method.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The whole text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        {
            let registry = self
                .registry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if prometheus_client::encoding::text::encode_registry(&mut out, &registry).is_err() {
                out.clear();
            }
        }
        if let Some(path) = &self.release_metrics {
            out.push_str(&release_gauges(path));
        }
        out.push_str("# EOF\n");
        out
    }
}

/// A Prometheus metric name from a CloudWatch one: `KAnonViolations` →
/// `stackpro_release_k_anon_violations`.
fn metric_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::from("stackpro_release_");
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            out.push('_');
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            // A word starts at an upper-case letter after a lower-case one or a digit
            // (`RecordsIn`), or at the last capital of a run before lower case (`KAnon`).
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Gauges of the latest value of each (metric, dimensions) series in the file's tail.
fn release_gauges(path: &PathBuf) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    // The tail may start inside a character: only the cut first line is lost.
    let text = String::from_utf8_lossy(&bytes);
    // The first line of a tail may be cut.
    let lines = text.lines().skip(usize::from(start > 0));
    let mut latest: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for line in lines {
        let Ok(point) = serde_json::from_str::<catalog::metrics::Datapoint>(line) else {
            continue;
        };
        let labels = point
            .dimensions
            .iter()
            .map(|(k, v)| {
                let key: String = k
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("{key}=\"{}\"", label_value(v))
            })
            .collect::<Vec<_>>()
            .join(",");
        latest
            .entry(metric_name(&point.name))
            .or_default()
            .insert(labels, point.value);
    }
    let mut out = String::new();
    for (name, series) in latest {
        out.push_str(&format!(
            "# HELP {name} Latest value of the pipeline's release metric, per series.\n# TYPE {name} gauge\n"
        ));
        for (labels, value) in series {
            out.push_str(&format!("{name}{{{labels}}} {value}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_series_follow_the_latest_datapoint() {
        assert_eq!(
            metric_name("KAnonViolations"),
            "stackpro_release_k_anon_violations"
        );
        assert_eq!(metric_name("RecordsIn"), "stackpro_release_records_in");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metrics.jsonl");
        let point = |v: f64| {
            serde_json::to_string(&catalog::metrics::Datapoint {
                namespace: catalog::metrics::NAMESPACE.into(),
                name: "KAnonViolations".into(),
                value: v,
                unit: "Count".into(),
                dimensions: vec![
                    ("Tenant".into(), "t-1".into()),
                    ("Dataset".into(), "contacts".into()),
                ],
                timestamp: "2026-12-04T00:00:00Z".into(),
            })
            .expect("json")
        };
        std::fs::write(&path, format!("{}\n{}\nnot json\n", point(3.0), point(0.0)))
            .expect("write");
        let m = Metrics::new(Some(path));
        m.observe("/datasets", "GET", 200, Duration::from_millis(2));
        let text = m.render();
        assert!(
            text.contains(
                "stackpro_release_k_anon_violations{tenant=\"t-1\",dataset=\"contacts\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "stackpro_http_requests_total{route=\"/datasets\",method=\"GET\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
