//! Metric sources behind [`MetricSource`](crate::MetricSource): Prometheus over its HTTP
//! API, the built-in router's telemetry, and Alertmanager webhooks (alerts, not numbers);
//! and a number read from a shell command's output or from an HTTP endpoint's JSON.

pub mod alertmanager;
pub mod builtin;
pub mod command;
pub mod http;
pub mod prometheus;
