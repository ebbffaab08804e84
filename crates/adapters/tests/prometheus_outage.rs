//! The Prometheus source against a real Prometheus that is stopped in the middle: while
//! it is down every reading is an error (never a value, never a pass), and once it is
//! back the same query gives values again. Also: PromQL errors and empty results.

mod support;

use std::time::Duration;

use adapters::metrics::prometheus::{Prometheus as PrometheusSource, PrometheusConfig};
use adapters::{MetricSource, Reading};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_prometheus_gives_errors_then_values_again() {
    let dir = scratch();
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let mut prometheus = Prometheus::start(&PrometheusSpec::new(vec![ScrapeTarget::new(
        "canary",
        canary.addr,
    )]))
    .await
    .unwrap_or_else(|e| panic!("start Prometheus: {e}"));
    let source = PrometheusSource::new(PrometheusConfig {
        url: prometheus.url(),
        request_count_query: Some(APP_REQUESTS.to_string()),
        min_requests: Some(10),
        timeout: Duration::from_secs(1),
    })
    .unwrap();
    let load = Load::start(LoadSpec {
        connections: 1,
        pause: Duration::from_millis(10),
        ..LoadSpec::new(canary.addr)
    });
    let error_rate = for_version(APP_ERROR_RATE, "canary");
    let value = || async {
        match source.read_ratio(&error_rate, "canary").await {
            Reading::Value(value) => Some(value),
            _ => None,
        }
    };
    let before = eventually(Duration::from_secs(15), Duration::from_millis(250), value).await;
    assert_eq!(
        before,
        Some(0.0),
        "a healthy canary reads 0 before the outage"
    );

    prometheus.stop();
    for _ in 0..4 {
        match source.read_ratio(&error_rate, "canary").await {
            Reading::Error { reason } => assert!(reason.contains("cannot be reached"), "{reason}"),
            other => panic!("Prometheus is down, yet the source answered {other:?}"),
        }
        assert!(matches!(
            source.read("up", "canary").await,
            Reading::Error { .. }
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    prometheus
        .restart()
        .await
        .unwrap_or_else(|e| panic!("restart Prometheus: {e}"));
    let after = eventually(Duration::from_secs(15), Duration::from_millis(250), value).await;
    assert_eq!(after, Some(0.0), "values come back after the outage");
    drop(load);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_promql_empty_results_and_too_few_requests() {
    let dir = scratch();
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let prometheus = Prometheus::start(&PrometheusSpec::new(vec![ScrapeTarget::new(
        "canary",
        canary.addr,
    )]))
    .await
    .unwrap_or_else(|e| panic!("start Prometheus: {e}"));
    let source = PrometheusSource::new(PrometheusConfig {
        url: prometheus.url(),
        request_count_query: Some(APP_REQUESTS.to_string()),
        min_requests: Some(1_000_000),
        timeout: Duration::from_secs(1),
    })
    .unwrap();

    match source.read("sum(rate(x[1m]", "canary").await {
        Reading::Error { reason } => assert!(reason.contains("bad_data"), "{reason}"),
        other => panic!("bad PromQL gave {other:?}"),
    }
    assert!(matches!(
        source.read("no_such_metric_anywhere", "canary").await,
        Reading::NoData { .. }
    ));
    assert_eq!(
        source.read("vector(42)", "canary").await,
        Reading::Value(42.0)
    );
    assert_eq!(
        source.read("scalar(vector(1)) * 3", "canary").await,
        Reading::Value(3.0)
    );
    assert!(matches!(
        source.read("vector(0) / 0", "canary").await,
        Reading::NoData { .. }
    ));

    // The canary serves a few requests: far below the minimum, so the ratio is not judged.
    let load = Load::start(LoadSpec {
        connections: 1,
        pause: Duration::from_millis(50),
        ..LoadSpec::new(canary.addr)
    });
    let error_rate = for_version(APP_ERROR_RATE, "canary");
    let reason = eventually(
        Duration::from_secs(15),
        Duration::from_millis(250),
        || async {
            match source.read_ratio(&error_rate, "canary").await {
                Reading::NoData { reason } if reason.starts_with("only ") => Some(reason),
                _ => None,
            }
        },
    )
    .await
    .expect("too few requests make the ratio inconclusive");
    assert!(reason.contains("need 1000000"), "{reason}");
    // Without the request gate the same ratio is a value: the gate is what made it no-data.
    assert!(matches!(
        source.read(&error_rate, "canary").await,
        Reading::Value(_)
    ));
    drop(load);
}
