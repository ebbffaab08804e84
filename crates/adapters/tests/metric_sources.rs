//! The command and HTTP metric sources against real `sh` and a real HTTP server on
//! loopback: a number, no data, or an error, never a number made up.

use std::time::Duration;

use adapters::metrics::command::CommandMetricSource;
use adapters::metrics::http::HttpMetricSource;
use adapters::{MetricSource, Reading};
use axum::Json;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;

#[tokio::test]
async fn a_command_source_reads_the_number_it_prints() {
    let first = CommandMetricSource::new(None, Duration::from_secs(5)).unwrap();
    assert_eq!(
        first
            .read("echo 'error_rate{version=\"canary\"} 0.0125'", "canary")
            .await,
        Reading::Value(0.0125)
    );
    let p95 =
        CommandMetricSource::new(Some(r"p95=(\d+(?:\.\d+)?)ms"), Duration::from_secs(5)).unwrap();
    assert_eq!(
        p95.read("echo p50=80ms p95=1834.5ms p99=2400ms", "canary")
            .await,
        Reading::Value(1834.5)
    );

    let no_data = first.read("echo 'no samples yet'", "canary").await;
    assert!(
        matches!(&no_data, Reading::NoData { reason } if reason.contains("no number")),
        "{no_data:?}"
    );
    let failed = first
        .read("echo 'connection refused' >&2; exit 7", "canary")
        .await;
    assert!(
        matches!(&failed, Reading::Error { reason } if reason.contains("exit 7") && reason.contains("connection refused")),
        "{failed:?}"
    );
    let slow = CommandMetricSource::new(None, Duration::from_millis(200)).unwrap();
    let timed_out = slow.read("sleep 5; echo 1", "canary").await;
    assert!(
        matches!(&timed_out, Reading::Error { reason } if reason.contains("timed out")),
        "{timed_out:?}"
    );
    let unset = first
        .read("echo ${GOLIVE_SURELY_UNSET_VARIABLE}", "canary")
        .await;
    assert!(
        matches!(&unset, Reading::Error { reason } if reason.contains("is not set")),
        "{unset:?}"
    );
}

async fn serve() -> String {
    let app = axum::Router::new()
        .route(
            "/api/v1/query",
            get(|| async {
                Json(
                    json!({"status": "success", "data": {"resultType": "vector", "result": [
                        {"metric": {"version": "canary"}, "value": [1755928800.0, "0.0125"]}
                    ]}}),
                )
            }),
        )
        .route(
            "/empty",
            get(|| async { Json(json!({"status": "success", "data": {"result": []}})) }),
        )
        .route("/plain", get(|| async { "42.5" }))
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "upstream timeout") }),
        )
        .route("/html", get(|| async { "<html>login</html>" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_http_source_reads_one_number_with_a_json_path() {
    let base = serve().await;
    let timeout = Duration::from_secs(5);
    let prometheus = HttpMetricSource::new(Some("$.data.result[0].value[1]"), timeout).unwrap();
    assert_eq!(
        prometheus
            .read(&format!("{base}/api/v1/query"), "canary")
            .await,
        Reading::Value(0.0125)
    );

    let empty = prometheus.read(&format!("{base}/empty"), "canary").await;
    assert!(
        matches!(&empty, Reading::NoData { reason } if reason.contains("selects nothing")),
        "{empty:?}"
    );

    let root = HttpMetricSource::new(None, timeout).unwrap();
    assert_eq!(
        root.read(&format!("{base}/plain"), "canary").await,
        Reading::Value(42.5)
    );

    let broken = root.read(&format!("{base}/broken"), "canary").await;
    assert!(
        matches!(&broken, Reading::Error { reason } if reason.contains("500") && reason.contains("upstream timeout")),
        "{broken:?}"
    );
    let html = root.read(&format!("{base}/html"), "canary").await;
    assert!(
        matches!(&html, Reading::Error { reason } if reason.contains("not JSON")),
        "{html:?}"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let refused = root.read(&format!("http://{closed}/"), "canary").await;
    assert!(matches!(&refused, Reading::Error { .. }), "{refused:?}");
}
