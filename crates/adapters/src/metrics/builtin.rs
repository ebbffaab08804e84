//! The built-in router's telemetry as a metric source: per version, over a recent window,
//! the error rate, availability, latency quantiles and request count.
//!
//! Queries are names: `error_rate`, `availability`, `latency_p50`, `latency_p95`,
//! `latency_p99`, `requests`, `rps`. Fewer requests than the minimum in the window make a
//! ratio or a quantile `NoData`: a stage without traffic is inconclusive, never a pass.

use std::sync::Arc;
use std::time::Duration;

use crate::{MetricSource, Reading};

/// The window judged when the plan does not say.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

pub struct BuiltinMetrics {
    telemetry: Arc<proxy::Telemetry>,
    window: Duration,
    min_requests: u64,
}

impl BuiltinMetrics {
    pub fn new(
        telemetry: Arc<proxy::Telemetry>,
        window: Option<Duration>,
        min_requests: Option<u64>,
    ) -> BuiltinMetrics {
        BuiltinMetrics {
            telemetry,
            window: window.unwrap_or(DEFAULT_WINDOW),
            min_requests: min_requests.unwrap_or(1).max(1),
        }
    }

    /// The reading for one query, now.
    pub fn read_now(&self, query: &str, version: &str) -> Reading {
        let Some(query) = BuiltinQuery::parse(query) else {
            return Reading::Error {
                reason: format!(
                    "`{}` is not a built-in metric ({})",
                    query.trim(),
                    BuiltinQuery::NAMES.join(", ")
                ),
            };
        };
        let Some(stats) = self.telemetry.window(version, self.window) else {
            return Reading::Error {
                reason: format!("the built-in router has no version `{version}`"),
            };
        };
        match query {
            BuiltinQuery::Requests => return Reading::Value(stats.requests as f64),
            BuiltinQuery::Rps => {
                let secs = stats.covered.as_secs_f64();
                return if secs > 0.0 {
                    Reading::Value(stats.requests as f64 / secs)
                } else {
                    Reading::NoData {
                        reason: "the router has not measured a full second yet".into(),
                    }
                };
            }
            _ => {}
        }
        if stats.requests < self.min_requests {
            return Reading::NoData {
                reason: format!(
                    "only {} request(s) to `{version}` in the last {:?}, need {} to judge",
                    stats.requests, stats.covered, self.min_requests
                ),
            };
        }
        let value = match query {
            BuiltinQuery::ErrorRate => stats.error_rate_percent,
            BuiltinQuery::Availability => stats.availability_percent,
            BuiltinQuery::LatencyP50 => stats.p50_ms,
            BuiltinQuery::LatencyP95 => stats.p95_ms,
            BuiltinQuery::LatencyP99 => stats.p99_ms,
            BuiltinQuery::Requests | BuiltinQuery::Rps => None,
        };
        match value {
            Some(v) if v.is_finite() => Reading::Value(v),
            _ => Reading::NoData {
                reason: format!("no requests to `{version}` in the window"),
            },
        }
    }
}

/// What the built-in telemetry can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinQuery {
    /// Percent of requests answered 5xx (by the backend or the router itself).
    ErrorRate,
    /// 100 − error rate.
    Availability,
    LatencyP50,
    LatencyP95,
    LatencyP99,
    /// Requests completed in the window.
    Requests,
    /// Requests per second over the window.
    Rps,
}

impl BuiltinQuery {
    pub const NAMES: [&'static str; 7] = [
        "error_rate",
        "availability",
        "latency_p50",
        "latency_p95",
        "latency_p99",
        "requests",
        "rps",
    ];

    pub fn parse(text: &str) -> Option<BuiltinQuery> {
        Some(match text.trim() {
            "error_rate" => BuiltinQuery::ErrorRate,
            "availability" => BuiltinQuery::Availability,
            "latency_p50" => BuiltinQuery::LatencyP50,
            "latency_p95" => BuiltinQuery::LatencyP95,
            "latency_p99" => BuiltinQuery::LatencyP99,
            "requests" => BuiltinQuery::Requests,
            "rps" => BuiltinQuery::Rps,
            _ => return None,
        })
    }
}

#[async_trait::async_trait]
impl MetricSource for BuiltinMetrics {
    async fn read(&self, query: &str, version: &str) -> Reading {
        self.read_now(query, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_traffic_is_no_data_and_unknown_names_are_errors() {
        let telemetry = Arc::new(proxy::Telemetry::new(["stable", "canary"]));
        let source = BuiltinMetrics::new(telemetry, None, Some(10));
        assert!(matches!(
            source.read_now("error_rate", "canary"),
            Reading::NoData { .. }
        ));
        assert!(matches!(
            source.read_now("error_rate", "blue"),
            Reading::Error { .. }
        ));
        assert!(matches!(
            source.read_now("cpu", "canary"),
            Reading::Error { reason } if reason.contains("not a built-in metric")
        ));
        for name in BuiltinQuery::NAMES {
            assert!(BuiltinQuery::parse(name).is_some(), "{name}");
        }
        assert_eq!(source.read_now("requests", "canary"), Reading::Value(0.0));
    }
}
