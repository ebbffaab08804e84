//! The demo service on its own: answers, access log, degradation set over HTTP and by
//! handle, from a given moment, and healing.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hyper::StatusCode;
use proxy::{Degradation, DemoConfig, DemoService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_logs_and_degrades_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("access.log");
    let mut config = DemoConfig::new("127.0.0.1:0".parse().unwrap(), "canary");
    config.access_log = Some(log_path.clone());
    config.seed = 7;
    let service = DemoService::start(config).await.unwrap();
    let base = format!("http://{}", service.addr());
    let client = client();

    let (status, body) = get(&client, &format!("{base}/"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"status":"ok","version":"canary"}"#);
    let (status, body) = get(&client, &format!("{base}/health"), &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"ok","version":"canary"}"#)
    );

    // Degrade over HTTP: every request fails, from 300 ms on.
    let degrade = hyper::Request::post(format!(
        "{base}/admin/degrade?error_percent=100&latency_ms=0&after_ms=300"
    ))
    .body(http_body_util::Empty::<bytes::Bytes>::new())
    .unwrap();
    let response = client.request(degrade).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        get(&client, &format!("{base}/"), &[]).await.0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, body) = get(&client, &format!("{base}/page"), &[]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(version_of(&body), "canary");
    // Health checks are not degraded: the application is buggy, not down.
    assert_eq!(
        get(&client, &format!("{base}/health"), &[]).await.0,
        StatusCode::OK
    );

    // Latency by handle, starting now.
    service.degrade(Degradation {
        latency: Duration::from_millis(120),
        ..Default::default()
    });
    let started = Instant::now();
    assert_eq!(
        get(&client, &format!("{base}/"), &[]).await.0,
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(120));
    service.heal();
    assert_eq!(
        get(&client, &format!("{base}/"), &[]).await.0,
        StatusCode::OK
    );

    let (status, stats) = get(&client, &format!("{base}/admin/stats"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats, r#"{"errors":1,"requests":5,"version":"canary"}"#);
    let (status, body) = get(&client, &format!("{base}/admin/degrade"), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // One line per user request, health checks and admin calls left out.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 5, "{log}");
    let summary: Vec<(&str, &str, &str, &str)> =
        lines.iter().map(|f| (f[1], f[2], f[3], f[4])).collect();
    assert_eq!(
        summary,
        [
            ("canary", "GET", "/", "200"),
            ("canary", "GET", "/", "200"),
            ("canary", "GET", "/page", "500"),
            ("canary", "GET", "/", "200"),
            ("canary", "GET", "/", "200"),
        ]
    );
    // The service's own timing: 120 ms added while degraded, none once healed.
    assert!(lines[3][5].parse::<u64>().unwrap() >= 120_000, "{log}");
    assert!(lines[4][5].parse::<u64>().unwrap() < 120_000, "{log}");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rate_follows_the_setting_and_the_seed() {
    async fn failures_with_seed(seed: u64) -> Vec<bool> {
        let mut config = DemoConfig::new("127.0.0.1:0".parse().unwrap(), "canary");
        config.seed = seed;
        config.degradation = Some(Degradation {
            error_percent: 30,
            ..Default::default()
        });
        let service = DemoService::start(config).await.unwrap();
        let url = format!("http://{}/", service.addr());
        let client = client();
        let mut failed = Vec::new();
        for _ in 0..500 {
            failed.push(get(&client, &url, &[]).await.0 == StatusCode::INTERNAL_SERVER_ERROR);
        }
        service.shutdown().await;
        failed
    }
    let first = failures_with_seed(42).await;
    let share = first.iter().filter(|f| **f).count() as f64 / 5.0;
    assert!((24.0..=36.0).contains(&share), "{share} % failed");
    assert_eq!(
        failures_with_seed(42).await,
        first,
        "same seed, same failures"
    );
    assert_ne!(failures_with_seed(43).await, first);
}
