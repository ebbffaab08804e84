//! The router's telemetry against known behaviour (backend latency and error rate set on
//! the demo service), its `/metrics` exposition, and zero lost requests while the weights
//! flip 100 times under concurrent load.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use hyper::StatusCode;
use proxy::{Degradation, Router};
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_quantiles_match_known_latencies_and_errors() {
    let stable = backend("stable").await;
    let log_dir = tempfile::tempdir().unwrap();
    let access_log = log_dir.path().join("canary.log");
    let mut canary_config = proxy::DemoConfig::new("127.0.0.1:0".parse().unwrap(), "canary");
    canary_config.access_log = Some(access_log.clone());
    let canary = proxy::DemoService::start(canary_config).await.unwrap();
    // Canary: every request takes 40 ms plus up to 40 ms of seeded jitter (uniform), and
    // 20 % fail. Stable: no added latency.
    canary.degrade(Degradation {
        error_percent: 20,
        latency: Duration::from_millis(40),
        jitter: Duration::from_millis(40),
        starts_after: Duration::ZERO,
    });
    let mut config = router_config(&[("stable", &[&stable]), ("canary", &[&canary])]);
    config.weights = weights(&[("stable", 50), ("canary", 50)]);
    let router = Router::start(config).await.unwrap();
    let url = format!("http://{}/", router.local_addr());

    let mut workers = JoinSet::new();
    for _ in 0..8 {
        let url = url.clone();
        workers.spawn(async move {
            let client = client();
            let mut answers = Vec::new();
            for _ in 0..50 {
                let started = std::time::Instant::now();
                let (status, body) = get(&client, &url, &[]).await;
                answers.push((status, version_of(&body), started.elapsed()));
            }
            answers
        });
    }
    let answers: Vec<(StatusCode, String, Duration)> =
        workers.join_all().await.into_iter().flatten().collect();
    let server_errors = answers.iter().filter(|a| a.0.is_server_error()).count() as u64;

    let telemetry = router.telemetry();
    let canary_stats = telemetry.window("canary", Duration::from_secs(60)).unwrap();
    let stable_stats = telemetry.window("stable", Duration::from_secs(60)).unwrap();
    assert_eq!(canary_stats.requests + stable_stats.requests, 400);
    assert_eq!(canary_stats.requests, canary.requests_served());
    assert_eq!(canary_stats.errors_5xx, canary.errors_served());
    assert_eq!(canary_stats.errors_5xx, server_errors);
    assert_eq!(canary_stats.proxy_errors, 0);
    assert_eq!(stable_stats.errors_5xx, 0);
    assert_eq!(stable_stats.availability_percent, Some(100.0));
    let rate = canary_stats.error_rate_percent.unwrap();
    assert!((10.0..=30.0).contains(&rate), "canary error rate {rate} %");

    // Uniform 40..80 ms: p50 ≈ 60, p95 ≈ 78, p99 ≈ 79.6, plus timer lateness and proxy
    // overhead. Each request's time as the router sees it lies between the backend's time
    // for it (its access log) and the client's, so each quantile does too, give or take
    // the histogram's ±1.6 %, however loaded the machine is.
    let log = std::fs::read_to_string(&access_log).unwrap();
    let mut backend_millis: Vec<f64> = log
        .lines()
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() / 1000.0)
        .collect();
    assert_eq!(backend_millis.len() as u64, canary_stats.requests);
    backend_millis.sort_by(f64::total_cmp);
    let mut client_millis: Vec<f64> = answers
        .iter()
        .filter(|a| a.1 == "canary")
        .map(|a| a.2.as_secs_f64() * 1000.0)
        .collect();
    client_millis.sort_by(f64::total_cmp);
    assert_eq!(client_millis.len(), backend_millis.len());
    let quantile = |sorted: &[f64], q: f64| {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    };
    for (q, router_ms) in [
        (0.50, canary_stats.p50_ms.unwrap()),
        (0.95, canary_stats.p95_ms.unwrap()),
        (0.99, canary_stats.p99_ms.unwrap()),
    ] {
        let backend_ms = quantile(&backend_millis, q);
        let client_ms = quantile(&client_millis, q);
        assert!(
            router_ms >= backend_ms * 0.98 && router_ms <= client_ms * 1.02,
            "p{}: backend {backend_ms} ms <= router {router_ms} ms <= client {client_ms} ms",
            q * 100.0
        );
    }
    assert!(canary_stats.p50_ms.unwrap() >= 55.0, "{canary_stats:?}");
    // The canary's added latency does not leak into the stable version's histogram.
    assert!(stable_stats.p50_ms.unwrap() < canary_stats.p50_ms.unwrap());

    // The same numbers on /metrics, in Prometheus text format.
    let metrics_url = format!("http://{}/metrics", router.admin_addr().unwrap());
    let (status, metrics) = get(&client(), &metrics_url, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let line = |prefix: &str| {
        metrics
            .lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        line(r#"golive_router_requests_total{version="canary"}"#),
        canary_stats.requests.to_string()
    );
    assert_eq!(
        line(r#"golive_router_responses_total{version="canary",class="5xx"}"#),
        canary_stats.errors_5xx.to_string()
    );
    assert_eq!(
        line(r#"golive_router_request_duration_seconds_count{version="canary"}"#),
        canary_stats.requests.to_string()
    );
    // Nothing of the canary is faster than 40 ms.
    assert_eq!(
        line(r#"golive_router_request_duration_seconds_bucket{version="canary",le="0.025"}"#),
        "0"
    );
    assert_eq!(
        line(r#"golive_router_weight_percent{version="canary"}"#),
        "50"
    );
    assert!(metrics.contains(r#"golive_router_backend_healthy{version="canary",backend=""#));
    let (status, body) = get(
        &client(),
        &format!("http://{}/healthz", router.admin_addr().unwrap()),
        &[],
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_is_lost_while_weights_flip_100_times_under_load() {
    let stable = backend("stable").await;
    let canary = backend("canary").await;
    let mut config = router_config(&[("stable", &[&stable]), ("canary", &[&canary])]);
    config.bucketing = proxy::Bucketing::Header("x-user".into());
    let router = Arc::new(Router::start(config).await.unwrap());
    let url = format!("http://{}/", router.local_addr());
    let stop = Arc::new(AtomicBool::new(false));

    let mut clients = JoinSet::new();
    for worker in 0..24 {
        let url = url.clone();
        let stop = stop.clone();
        clients.spawn(async move {
            // Half the clients keep one keep-alive connection, half speak HTTP/2.
            let client = if worker % 2 == 0 {
                client()
            } else {
                h2_client()
            };
            let mut answered = 0u64;
            let mut failures = Vec::new();
            let mut user = worker;
            // Bounded: stops when the flips are done, and never runs past 20 000 requests.
            while !stop.load(Ordering::Relaxed) && answered < 20_000 {
                user += 24;
                let (status, body) =
                    get(&client, &url, &[("x-user", &format!("u{}", user % 1000))]).await;
                if !status.is_success() {
                    failures.push(format!("{status} {body}"));
                }
                answered += 1;
            }
            (answered, failures)
        });
    }

    let ramp = [0, 5, 25, 50, 75, 100];
    for flip in 0..100 {
        let canary_weight = ramp[flip % ramp.len()];
        let in_force = router
            .set_weights(&weights(&[
                ("stable", 100 - canary_weight),
                ("canary", canary_weight),
            ]))
            .unwrap();
        assert_eq!(router.weights(), in_force);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);

    let mut total = 0;
    for (answered, failures) in clients.join_all().await {
        assert!(failures.is_empty(), "lost requests: {failures:?}");
        total += answered;
    }
    assert!(total >= 1_000, "only {total} requests during the flips");
    assert_eq!(stable.requests_served() + canary.requests_served(), total);
    assert!(canary.requests_served() > 0 && stable.requests_served() > 0);
    let telemetry = router.telemetry();
    let window = Duration::from_secs(60);
    let seen = telemetry.window("stable", window).unwrap().requests
        + telemetry.window("canary", window).unwrap().requests;
    assert_eq!(seen, total);
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_lint() {
    let stable = backend("stable").await;
    let canary = backend("canary").await;
    let mut config = router_config(&[("stable", &[&stable]), ("canary", &[&canary])]);
    config.weights = weights(&[("stable", 50), ("canary", 50)]);
    config.pool.max_in_flight_per_backend = Some(16);
    let router = Router::start(config).await.unwrap();
    let client = client();
    for _ in 0..20 {
        get(&client, &format!("http://{}/", router.local_addr()), &[]).await;
    }
    let metrics_url = format!("http://{}/metrics", router.admin_addr().unwrap());
    let (status, metrics) = get(&client, &metrics_url, &[]).await;
    assert_eq!(status, StatusCode::OK);

    // Prometheus's own linter reads the exposition exactly as a scrape would.
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed; scripts/test installs it");
    {
        use std::io::Write;
        let mut stdin = promtool.stdin.take().expect("stdin was piped");
        stdin.write_all(metrics.as_bytes()).unwrap();
    }
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{metrics}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    router.shutdown().await;
}
