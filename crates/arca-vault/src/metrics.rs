//! Prometheus metrics, served as text at `/metrics`. One registry per process; nothing here
//! carries an account, a token or a secret: requests are labelled by route template, never by
//! path.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `arca_vault_http_requests_total` | counter | `route`, `method`, `status` |
//! | `arca_vault_http_request_duration_seconds` | histogram | `route` |
//! | `arca_vault_guesses_charged_total` | counter | `kind` (`record`, `unknown`) |
//! | `arca_vault_logins_finished_total` | counter | `result` (`success`, `failure`) |
//! | `arca_vault_records_destroyed_total` | counter | — |
//! | `arca_vault_storage_failures_total` | counter | — (requests answered 503) |
//! | `arca_vault_database_errors_total` | counter | `kind` (`serialization`, `connection`, `timeout`, `other`) |
//! | `arca_vault_database_connections` | gauge | `state` (`idle`, `busy`) |

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    pub guesses_charged: IntCounterVec,
    pub logins_finished: IntCounterVec,
    pub records_destroyed: IntCounter,
    pub storage_failures: IntCounter,
    pub database_errors: IntCounterVec,
    pub database_connections: IntGaugeVec,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    let http_latency = HistogramVec::new(
        HistogramOpts::new(
            "arca_vault_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route.",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]),
        &["route"],
    )
    .expect("valid metric");
    r.register(Box::new(http_latency.clone()))
        .expect("registered once");
    let database_connections = IntGaugeVec::new(
        Opts::new(
            "arca_vault_database_connections",
            "PostgreSQL connections held by this node's pool.",
        ),
        &["state"],
    )
    .expect("valid metric");
    r.register(Box::new(database_connections.clone()))
        .expect("registered once");
    let m = Metrics {
        http_requests: counter_vec(
            &r,
            "arca_vault_http_requests_total",
            "Requests answered, by route template, method and status.",
            &["route", "method", "status"],
        ),
        http_latency,
        guesses_charged: counter_vec(
            &r,
            "arca_vault_guesses_charged_total",
            "Guesses charged at login starts: `record` for a registered account, `unknown` for a phantom counter.",
            &["kind"],
        ),
        logins_finished: counter_vec(
            &r,
            "arca_vault_logins_finished_total",
            "Login finishes that verified (`success`) or did not (`failure`).",
            &["result"],
        ),
        records_destroyed: counter(
            &r,
            "arca_vault_records_destroyed_total",
            "Records destroyed because their guesses were used up.",
        ),
        storage_failures: counter(
            &r,
            "arca_vault_storage_failures_total",
            "Requests answered 503 because the database failed or could not be reached.",
        ),
        database_errors: counter_vec(
            &r,
            "arca_vault_database_errors_total",
            "PostgreSQL errors, including those retried (serialization failures).",
            &["kind"],
        ),
        database_connections,
        registry: r,
    };
    // Every series of a fixed label set exists from the start, at 0, so rates work at once.
    for k in ["record", "unknown"] {
        m.guesses_charged.with_label_values(&[k]);
    }
    for k in ["success", "failure"] {
        m.logins_finished.with_label_values(&[k]);
    }
    for k in ["serialization", "connection", "timeout", "other"] {
        m.database_errors.with_label_values(&[k]);
    }
    m
});

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// All metrics in the Prometheus text format.
pub fn render() -> String {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&METRICS.registry.gather(), &mut out)
        .expect("the text encoder writes to a Vec");
    String::from_utf8(out).expect("the text format is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        metrics()
            .guesses_charged
            .with_label_values(&["record"])
            .inc();
        metrics().records_destroyed.inc();
        metrics()
            .http_requests
            .with_label_values(&["/healthz", "GET", "200"])
            .inc();
        metrics()
            .http_latency
            .with_label_values(&["/healthz"])
            .observe(0.001);
        metrics()
            .database_errors
            .with_label_values(&["connection"])
            .inc();
        let text = render();
        for name in [
            "arca_vault_http_requests_total",
            "arca_vault_http_request_duration_seconds_bucket",
            "arca_vault_guesses_charged_total",
            "arca_vault_records_destroyed_total",
            "arca_vault_database_errors_total",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
