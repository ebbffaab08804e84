//! Helpers shared by the adapters' tests against real programs (HAProxy, nginx,
//! Prometheus, Alertmanager); the programs themselves are started by `testkit`.
#![allow(dead_code)] // each test file uses a different part

use std::future::Future;
use std::time::{Duration, Instant};

use adapters::Weights;

pub use testkit::*;

/// `[("stable", 95), ("canary", 5)]` as `Weights`.
pub fn weights(pairs: &[(&str, u32)]) -> Weights {
    pairs
        .iter()
        .map(|(group, weight)| (group.to_string(), *weight))
        .collect()
}

/// Calls `probe` every `every` until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, every: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// A temporary directory for access logs and generated files.
pub fn scratch() -> tempfile::TempDir {
    // Creating a directory under the system temp dir only fails on a broken machine.
    tempfile::Builder::new()
        .prefix("golive-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// Per-version error rate (percent) over HAProxy's exporter, judged on the version's own servers
/// (server name = version group here).
pub const HAPROXY_ERROR_RATE: &str = "100 * sum(rate(haproxy_server_http_responses_total{proxy=\"app\",server=\"${version}\",code=\"5xx\"}[5s])) / sum(rate(haproxy_server_http_responses_total{proxy=\"app\",server=\"${version}\"}[5s]))";
pub const HAPROXY_REQUESTS: &str =
    "sum(increase(haproxy_server_http_responses_total{proxy=\"app\",server=\"${version}\"}[5s]))";

/// The same ratio from the application's own counters (what nginx users scrape).
pub const APP_ERROR_RATE: &str = "100 * sum(rate(testkit_backend_responses_total{backend=\"${version}\",code=\"5xx\"}[5s])) / sum(rate(testkit_backend_responses_total{backend=\"${version}\"}[5s]))";
pub const APP_REQUESTS: &str =
    "sum(increase(testkit_backend_responses_total{backend=\"${version}\"}[5s]))";

/// `${version}` replaced, as the shell does before asking a source.
pub fn for_version(query: &str, version: &str) -> String {
    query.replace("${version}", version)
}

/// What happened in [`ramp_until_rollback`].
#[derive(Debug)]
pub struct RampReport {
    /// When the canary was told to fail.
    pub fault_at: Instant,
    /// When the error-rate check first saw the canary above the threshold.
    pub breach_seen_at: Instant,
    /// When the router confirmed weight 0 on the canary.
    pub confirmed_at: Instant,
    /// Canary requests during the healthy 5 % stage.
    pub canary_hits_at_5: usize,
    pub rollback_attempts: u32,
}

/// Error-rate threshold (percent) of the rule the tests stand in for.
pub const THRESHOLD: f64 = 5.0;

/// Drives a ramp through `router` the way the engine would: 5 % (healthy, checked), then
/// 25 % where the canary turns to 5xx; the per-version error ratio read through `source`
/// every 250 ms crosses the threshold, and the rollback (retried until confirmed) sets
/// the canary to 0.
pub async fn ramp_until_rollback(
    router: &dyn adapters::TrafficRouter,
    source: &dyn adapters::MetricSource,
    error_rate: &str,
    canary: &Backend,
) -> RampReport {
    use adapters::Reading;
    use adapters::router::retry::{RetryPolicy, apply_until_confirmed};

    let canary_query = for_version(error_rate, "canary");

    // Stage 5 %: applied, confirmed, and healthy according to the source.
    let five = weights(&[("stable", 95), ("canary", 5)]);
    let hits_before = canary.hit_count();
    assert_eq!(router.set_weights(&five).await.expect("set 95/5"), five);
    assert_eq!(router.read_weights().await.expect("read back 95/5"), five);
    let healthy = eventually(
        Duration::from_secs(15),
        Duration::from_millis(250),
        || async {
            match source.read_ratio(&canary_query, "canary").await {
                Reading::Value(value) => Some(value),
                Reading::NoData { .. } | Reading::Error { .. } => None,
            }
        },
    )
    .await
    .expect("the canary's error ratio is readable during the 5 % stage");
    assert!(healthy <= THRESHOLD, "healthy canary judged at {healthy}");
    let canary_hits_at_5 = canary.hit_count() - hits_before;
    assert!(canary_hits_at_5 > 0, "the canary got no traffic at 5 %");

    // Stage 25 %, then the canary breaks.
    let twenty_five = weights(&[("stable", 75), ("canary", 25)]);
    assert_eq!(
        router.set_weights(&twenty_five).await.expect("set 75/25"),
        twenty_five
    );
    let fault_at = Instant::now();
    canary.set_fault(Fault::Errors);
    let mut seen = Vec::new();
    let breach_seen_at = loop {
        let reading = source.read_ratio(&canary_query, "canary").await;
        if matches!(reading, Reading::Value(value) if value > THRESHOLD) {
            break Instant::now();
        }
        seen.push(reading);
        assert!(
            fault_at.elapsed() < Duration::from_secs(20),
            "the error ratio never crossed {THRESHOLD}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // Rollback: retried until the router confirms.
    let rollback = weights(&[("stable", 100), ("canary", 0)]);
    let confirmed = apply_until_confirmed(router, &rollback, &RetryPolicy::default(), |attempt| {
        if let Err(error) = &attempt.result {
            eprintln!("rollback attempt {} failed: {error}", attempt.number);
        }
    })
    .await
    .expect("the router confirms the rollback");
    let confirmed_at = Instant::now();
    assert_eq!(confirmed.weights, rollback);
    RampReport {
        fault_at,
        breach_seen_at,
        confirmed_at,
        canary_hits_at_5,
        rollback_attempts: confirmed.attempts,
    }
}

/// Requests the canary received after the rollback was confirmed, beyond `in_flight`
/// (requests a router had already sent on their way when the change landed).
pub fn canary_hits_after(canary: &Backend, confirmed_at: Instant, in_flight: Duration) -> Vec<Hit> {
    canary.hits_after(confirmed_at + in_flight)
}
