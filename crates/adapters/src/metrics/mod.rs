//! Metric sources behind [`MetricSource`](crate::MetricSource): Prometheus over its HTTP
//! API, the built-in router's telemetry, and Alertmanager webhooks (alerts, not numbers).

pub mod alertmanager;
pub mod prometheus;
