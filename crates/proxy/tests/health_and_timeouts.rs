//! Failure handling against real backends on loopback: health checks take a dead backend
//! out of rotation and bring it back, a version with no healthy backend answers 503, a slow
//! backend gets 504 and an unreachable one 502, each counted as a proxy error.

mod common;

use std::time::Duration;

use common::*;
use hyper::StatusCode;
use proxy::{HealthCheckConfig, ProxyErrorKind, Router, Timeouts};
use tokio::net::TcpListener;

fn fast_health_checks() -> Option<HealthCheckConfig> {
    Some(HealthCheckConfig {
        path: "/health".into(),
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(200),
        unhealthy_after: 2,
        healthy_after: 2,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_goes_down_is_taken_out_and_requests_keep_succeeding() {
    let first = backend("stable").await;
    let second = backend("stable").await;
    let second_addr = second.addr();
    let mut config = router_config(&[("stable", &[&first, &second])]);
    config.health_check = fast_health_checks();
    let router = Router::start(config).await.unwrap();
    let url = format!("http://{}/", router.local_addr());
    let client = client();
    for _ in 0..10 {
        assert_eq!(get(&client, &url, &[]).await.0, StatusCode::OK);
    }
    assert!(first.requests_served() > 0 && second.requests_served() > 0);

    second.shutdown().await;
    let taken_out = eventually(Duration::from_secs(5), || {
        router
            .backend_health()
            .iter()
            .any(|b| b.address == second_addr.to_string() && !b.healthy)
    })
    .await;
    assert!(
        taken_out,
        "health checks never marked the dead backend unhealthy"
    );
    let served_before = first.requests_served();
    for _ in 0..50 {
        let (status, body) = get(&client, &url, &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(first.requests_served(), served_before + 50);

    // The same port comes back: two passing checks put it back in rotation.
    let revived = proxy::DemoService::start(proxy::DemoConfig::new(second_addr, "stable"))
        .await
        .expect("the freed port can be bound again");
    let back = eventually(Duration::from_secs(5), || {
        router.backend_health().iter().all(|b| b.healthy)
    })
    .await;
    assert!(back, "the revived backend never came back");
    for _ in 0..10 {
        assert_eq!(get(&client, &url, &[]).await.0, StatusCode::OK);
    }
    assert!(revived.requests_served() > 0);
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_without_healthy_backends_answers_503_and_counts_it() {
    let stable = backend("stable").await;
    let canary = backend("canary").await;
    let mut config = router_config(&[("stable", &[&stable]), ("canary", &[&canary])]);
    config.health_check = fast_health_checks();
    config.weights = weights(&[("stable", 0), ("canary", 100)]);
    let router = Router::start(config).await.unwrap();
    canary.shutdown().await;
    assert!(
        eventually(Duration::from_secs(5), || router
            .backend_health()
            .iter()
            .any(|b| b.version == "canary" && !b.healthy))
        .await
    );
    let url = format!("http://{}/", router.local_addr());
    let (status, body) = get(&client(), &url, &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let canary_id = router.telemetry().version_id("canary").unwrap();
    let totals = router.telemetry().totals(canary_id);
    let no_backend = ProxyErrorKind::ALL
        .iter()
        .position(|kind| *kind == ProxyErrorKind::NoHealthyBackend)
        .unwrap();
    assert_eq!(totals.proxy_errors[no_backend], 1);
    let stats = router
        .telemetry()
        .window("canary", Duration::from_secs(60))
        .unwrap();
    assert_eq!((stats.errors_5xx, stats.proxy_errors), (1, 1));
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_gets_504_and_an_unreachable_one_502() {
    let slow = backend("slow").await;
    slow.degrade(proxy::Degradation {
        latency: Duration::from_millis(600),
        ..Default::default()
    });
    // A port that was bound and released: nothing listens there.
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let mut config = router_config(&[("slow", &[&slow])]);
    config
        .groups
        .push(proxy::BackendGroup::new("gone", [closed_port.to_string()]));
    config.health_check = None;
    config.timeouts = Timeouts {
        connect: Duration::from_millis(500),
        request: Duration::from_millis(150),
    };
    let router = Router::start(config).await.unwrap();
    let url = format!("http://{}/", router.local_addr());
    let client = client();

    // The backend would answer after 600 ms; the router gives up at 150 ms.
    let (status, _) = get(&client, &url, &[]).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);

    router.set_weights(&weights(&[("gone", 100)])).unwrap();
    let (status, _) = get(&client, &url, &[]).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);

    let telemetry = router.telemetry();
    let slow_stats = telemetry.window("slow", Duration::from_secs(60)).unwrap();
    let gone_stats = telemetry.window("gone", Duration::from_secs(60)).unwrap();
    assert_eq!((slow_stats.requests, slow_stats.proxy_errors), (1, 1));
    assert_eq!((gone_stats.requests, gone_stats.proxy_errors), (1, 1));
    assert_eq!(gone_stats.availability_percent, Some(0.0));
    let timeout_kind = 1; // ProxyErrorKind::ALL order: connect, timeout, …
    assert_eq!(ProxyErrorKind::ALL[timeout_kind], ProxyErrorKind::Timeout);
    let slow_id = telemetry.version_id("slow").unwrap();
    assert_eq!(telemetry.totals(slow_id).proxy_errors[timeout_kind], 1);
    let gone_id = telemetry.version_id("gone").unwrap();
    assert_eq!(
        telemetry.totals(gone_id).proxy_errors[0],
        1,
        "counted as connect"
    );
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_in_flight_limit_wait_their_turn_or_time_out() {
    let slow = backend("stable").await;
    slow.degrade(proxy::Degradation {
        latency: Duration::from_millis(150),
        ..Default::default()
    });
    let mut config = router_config(&[("stable", &[&slow])]);
    config.health_check = None;
    config.pool.max_in_flight_per_backend = Some(2);
    config.timeouts.request = Duration::from_millis(1000);
    let router = Router::start(config).await.unwrap();
    let url = format!("http://{}/", router.local_addr());

    // Six at once through two slots: three rounds of 150 ms, all answered.
    let started = std::time::Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let url = url.clone();
        requests.spawn(async move { get(&client(), &url, &[]).await.0 });
    }
    for status in requests.join_all().await {
        assert_eq!(status, StatusCode::OK);
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(440),
        "{took:?}: the limit did not hold"
    );

    // Waiting counts against the request timeout: 16 at once through two slots need eight
    // rounds of at least 150 ms each. Within 1 s at most six rounds can finish, and the
    // last round cannot even start before 1,050 ms: those requests must get 504.
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let url = url.clone();
        requests.spawn(async move { get(&client(), &url, &[]).await.0 });
    }
    let statuses = requests.join_all().await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let timed_out = statuses
        .iter()
        .filter(|s| **s == StatusCode::GATEWAY_TIMEOUT)
        .count();
    assert_eq!(ok + timed_out, 16, "{statuses:?}");
    assert!((2..=12).contains(&ok), "{ok} answered within the timeout");
    assert!(timed_out >= 4, "{timed_out} timed out");
    let metrics = get(
        &client(),
        &format!("http://{}/metrics", router.admin_addr().unwrap()),
        &[],
    )
    .await
    .1;
    assert!(
        metrics.contains("golive_router_backend_in_flight{version=\"stable\""),
        "{metrics}"
    );
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_an_unreachable_backend_goes_to_another_of_its_version() {
    let first = backend("stable").await;
    let second = backend("stable").await;
    let mut config = router_config(&[("stable", &[&first, &second])]);
    // No health checks: only the move on a refused connection can save these requests.
    config.health_check = None;
    let router = Router::start(config).await.unwrap();
    let url = format!("http://{}/", router.local_addr());
    second.shutdown().await;
    let client = client();
    for _ in 0..20 {
        let (status, body) = get(&client, &url, &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(first.requests_served(), 20);
    let stats = router
        .telemetry()
        .window("stable", Duration::from_secs(60))
        .unwrap();
    assert_eq!((stats.requests, stats.errors_5xx), (20, 0));
    router.shutdown().await;
}
