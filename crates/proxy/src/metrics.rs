//! The admin listener: `/healthz`, `/metrics` (Prometheus text exposition of the
//! per-version telemetry, weights and backend health) and `/weights` (JSON read-back).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::router::{RouterBody, Shared};
use crate::telemetry::{ProxyErrorKind, Totals, VersionId, bucket_bounds};

/// Upper bounds (seconds) of the exported latency histogram. The telemetry keeps finer
/// buckets (±1.6 %); a fine bucket is counted under the first bound at or above its
/// upper edge, so a count can land one bound late by at most that bucket's width.
const EXPORTED_BOUNDS_SECONDS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

pub(crate) fn admin<B>(shared: &Arc<Shared>, request: &Request<B>) -> Response<RouterBody> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/metrics" => {
            let mut registry = Registry::default();
            registry.register_collector(Box::new(RouterCollector {
                shared: shared.clone(),
            }));
            let mut body = String::new();
            match prometheus_client::encoding::prometheus_text::encode(&mut body, &registry) {
                Ok(()) => text(
                    StatusCode::OK,
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    body,
                ),
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "metrics encoding failed\n".into(),
                ),
            }
        }
        "/weights" => {
            let weights = shared.table.load().weights().clone();
            let body = serde_json::to_string(&weights).unwrap_or_else(|_| "{}".into());
            text(StatusCode::OK, "application/json", body + "\n")
        }
        "/backends" => {
            let backends: Vec<serde_json::Value> = shared
                .groups
                .iter()
                .flat_map(|group| {
                    group.backends.iter().map(|backend| {
                        serde_json::json!({
                            "version": group.version,
                            "address": backend.address,
                            "healthy": backend.healthy.load(Ordering::Relaxed),
                        })
                    })
                })
                .collect();
            let body = serde_json::Value::Array(backends).to_string();
            text(StatusCode::OK, "application/json", body + "\n")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "admin paths: /healthz /metrics /weights /backends\n".into(),
        ),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<RouterBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

struct RouterCollector {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RouterCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouterCollector")
    }
}

/// Exported histogram buckets (non-cumulative, `+Inf` last) from the fine telemetry ones.
fn exported_buckets(totals: &Totals) -> Vec<(f64, u64)> {
    let mut buckets: Vec<(f64, u64)> = EXPORTED_BOUNDS_SECONDS
        .iter()
        .map(|bound| (*bound, 0))
        .chain([(f64::INFINITY, 0)])
        .collect();
    for (index, &count) in totals.latency_buckets.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let (low, width) = bucket_bounds(index);
        let upper_edge_seconds = (low + width - 1) as f64 / 1e6;
        let slot = EXPORTED_BOUNDS_SECONDS
            .iter()
            .position(|bound| upper_edge_seconds <= *bound)
            .unwrap_or(EXPORTED_BOUNDS_SECONDS.len());
        buckets[slot].1 += count;
    }
    buckets
}

impl Collector for RouterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let telemetry = &self.shared.telemetry;
        let versions: Vec<(String, Totals)> = telemetry
            .version_names()
            .enumerate()
            .map(|(index, name)| (name.to_string(), telemetry.totals(VersionId(index))))
            .collect();

        let mut requests = encoder.encode_descriptor(
            "golive_router_requests",
            "Requests completed, per version (backend responses plus proxy errors).",
            None,
            MetricType::Counter,
        )?;
        for (version, totals) in &versions {
            requests
                .encode_family(&[("version", version.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&totals.requests(), None)?;
        }

        let mut responses = encoder.encode_descriptor(
            "golive_router_responses",
            "Backend responses, per version and status class.",
            None,
            MetricType::Counter,
        )?;
        for (version, totals) in &versions {
            for (class, count) in Totals::CLASS_LABELS.iter().zip(totals.responses_by_class) {
                responses
                    .encode_family(&[("version", version.as_str()), ("class", class)])?
                    .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
            }
        }

        let mut proxy_errors = encoder.encode_descriptor(
            "golive_router_proxy_errors",
            "Requests the router answered itself with a 5xx (connect failure 502, timeout \
             504, no healthy backend 503, broken backend connection 502), per version.",
            None,
            MetricType::Counter,
        )?;
        for (version, totals) in &versions {
            for (kind, count) in ProxyErrorKind::ALL.iter().zip(totals.proxy_errors) {
                proxy_errors
                    .encode_family(&[("version", version.as_str()), ("kind", kind.as_str())])?
                    .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
            }
        }

        let mut latency = encoder.encode_descriptor(
            "golive_router_request_duration_seconds",
            "Time from receiving a request to sending the response headers, per version.",
            None,
            MetricType::Histogram,
        )?;
        for (version, totals) in &versions {
            latency
                .encode_family(&[("version", version.as_str())])?
                .encode_histogram::<NoLabelSet>(
                    totals.latency_sum_micros as f64 / 1e6,
                    totals.requests(),
                    &exported_buckets(totals),
                    None,
                )?;
        }

        let weights = self.shared.table.load();
        let mut weight = encoder.encode_descriptor(
            "golive_router_weight_percent",
            "Share of traffic (percent) routed to each version now.",
            None,
            MetricType::Gauge,
        )?;
        for (version, percent) in weights.weights() {
            weight
                .encode_family(&[("version", version.as_str())])?
                .encode_gauge(&i64::from(*percent))?;
        }

        let mut healthy = encoder.encode_descriptor(
            "golive_router_backend_healthy",
            "1 when the backend passes health checks and takes traffic, else 0.",
            None,
            MetricType::Gauge,
        )?;
        for group in self.shared.groups.iter() {
            for backend in group.backends.iter() {
                healthy
                    .encode_family(&[
                        ("version", group.version.as_str()),
                        ("backend", backend.address.as_str()),
                    ])?
                    .encode_gauge(&i64::from(backend.healthy.load(Ordering::Relaxed)))?;
            }
        }

        let mut idle = encoder.encode_descriptor(
            "golive_router_backend_idle_connections",
            "Kept-alive connections to the backend waiting for a request.",
            None,
            MetricType::Gauge,
        )?;
        for group in self.shared.groups.iter() {
            for backend in group.backends.iter() {
                idle.encode_family(&[
                    ("version", group.version.as_str()),
                    ("backend", backend.address.as_str()),
                ])?
                .encode_gauge(&(backend.idle_connections() as i64))?;
            }
        }

        let mut in_flight = encoder.encode_descriptor(
            "golive_router_backend_in_flight",
            "Requests holding one of the backend's in-flight slots (only when \
             max_in_flight_per_backend is set); at the limit, new requests wait.",
            None,
            MetricType::Gauge,
        )?;
        for group in self.shared.groups.iter() {
            for backend in group.backends.iter() {
                if let Some(count) = backend.in_flight() {
                    in_flight
                        .encode_family(&[
                            ("version", group.version.as_str()),
                            ("backend", backend.address.as_str()),
                        ])?
                        .encode_gauge(&(count as i64))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Outcome, Telemetry};
    use std::time::Duration;

    #[test]
    fn exported_buckets_put_each_latency_under_the_right_bound() {
        let telemetry = Telemetry::new(["v"]);
        let id = telemetry.version_id("v").unwrap();
        for millis in [0.5, 3.0, 40.0, 700.0, 100_000.0] {
            telemetry.record(
                id,
                Outcome::Response(200),
                Duration::from_secs_f64(millis / 1000.0),
            );
        }
        let buckets = exported_buckets(&telemetry.totals(id));
        let nonzero: Vec<(f64, u64)> = buckets.into_iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(
            nonzero,
            [
                (0.001, 1),
                (0.005, 1),
                (0.05, 1),
                (1.0, 1),
                (f64::INFINITY, 1)
            ]
        );
    }
}
