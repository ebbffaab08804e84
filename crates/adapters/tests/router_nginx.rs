//! The nginx router against a real nginx: the upstream file is rewritten, tested and
//! reloaded, and a change counts only once the new generation answers on fresh
//! connections; a file nginx rejects is refused and put back. A ramp judged by a real
//! Prometheus scraping the applications' own counters rolls back a failing canary.

mod support;

use std::time::Duration;

use adapters::metrics::prometheus::{Prometheus as PrometheusSource, PrometheusConfig};
use adapters::router::nginx::{NginxConfig, NginxRouter, render, verify_location};
use adapters::{RouterError, TrafficRouter};
use support::*;

const VERIFY_PATH: &str = "/golive/weights";

fn groups(stable: &Backend, canary: &Backend) -> Vec<(String, Vec<String>)> {
    vec![
        ("stable".to_string(), vec![stable.addr.to_string()]),
        ("canary".to_string(), vec![canary.addr.to_string()]),
    ]
}

async fn nginx_with(stable: &Backend, canary: &Backend) -> Nginx {
    let first = render(
        "app",
        &groups(stable, canary),
        &weights(&[("stable", 100), ("canary", 0)]),
        0,
    );
    let mut spec = NginxSpec::new("app", first);
    spec.server_extra = verify_location("app", VERIFY_PATH);
    Nginx::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("start nginx: {e}"))
}

fn config_for(nginx: &Nginx, groups: Vec<(String, Vec<String>)>) -> NginxConfig {
    NginxConfig {
        upstream_file: nginx.upstream_file.clone(),
        upstream: "app".to_string(),
        groups,
        test_command: nginx.test_command(),
        reload_command: nginx.reload_command(),
        verify_url: format!("http://{}{VERIFY_PATH}", nginx.listen),
        pid_file: Some(nginx.pid_file.clone()),
        timeout: Duration::from_secs(5),
    }
}

fn router_for(nginx: &Nginx, groups: Vec<(String, Vec<String>)>) -> NginxRouter {
    NginxRouter::new(config_for(nginx, groups)).expect("build the nginx router")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_are_written_tested_reloaded_and_read_back() {
    let dir = scratch();
    let stable = Backend::start("stable", dir.path())
        .await
        .expect("stable backend");
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let nginx = nginx_with(&stable, &canary).await;
    let router = router_for(&nginx, groups(&stable, &canary));

    assert_eq!(
        router.read_weights().await.unwrap(),
        weights(&[("stable", 100), ("canary", 0)])
    );
    // Once confirmed, every fresh connection sees the new split: no old worker accepts.
    let without_pid_file = NginxRouter::new(NginxConfig {
        pid_file: None,
        ..config_for(&nginx, groups(&stable, &canary))
    })
    .unwrap();
    for (canary_percent, router) in [
        (5, &router),
        (25, &without_pid_file),
        (50, &router),
        (75, &without_pid_file),
        (100, &router),
        (0, &router),
        (20, &router),
    ] {
        let wanted = weights(&[("stable", 100 - canary_percent), ("canary", canary_percent)]);
        assert_eq!(router.set_weights(&wanted).await.unwrap(), wanted);
        for _ in 0..20 {
            assert_eq!(router.read_weights().await.unwrap(), wanted);
        }
    }
    let file = std::fs::read_to_string(&nginx.upstream_file).unwrap();
    assert!(
        file.contains(&format!("server {} weight=4;", stable.addr)),
        "{file}"
    );
    assert!(
        file.contains(&format!("server {} weight=1;", canary.addr)),
        "{file}"
    );

    // Traffic follows: 80/20 over a few hundred fresh requests.
    let load = Load::start(LoadSpec {
        connections: 2,
        pause: Duration::ZERO,
        ..LoadSpec::new(nginx.listen)
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stats = load.stop();
    let (to_stable, to_canary) = (stats.version("stable").ok, stats.version("canary").ok);
    let share = to_canary as f64 / (to_stable + to_canary) as f64;
    assert!(to_stable + to_canary > 200, "{stats:?}");
    assert!(
        (0.14..0.26).contains(&share),
        "canary share {share} at 20 %: {stats:?}"
    );

    // A file nginx rejects (port out of range) is refused, and the good one is put back.
    let mut broken = groups(&stable, &canary);
    broken[1].1 = vec!["127.0.0.1:70000".to_string()];
    let error = router_for(&nginx, broken)
        .set_weights(&weights(&[("stable", 50), ("canary", 50)]))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RouterError::Refused(message) if message.contains("70000")),
        "{error}"
    );
    assert_eq!(std::fs::read_to_string(&nginx.upstream_file).unwrap(), file);
    assert_eq!(
        router.read_weights().await.unwrap(),
        weights(&[("stable", 80), ("canary", 20)])
    );

    // A reload that never happens is never confirmed.
    let stalled = NginxRouter::new(NginxConfig {
        reload_command: "true".to_string(),
        timeout: Duration::from_millis(500),
        ..config_for(&nginx, groups(&stable, &canary))
    })
    .unwrap();
    let error = stalled
        .set_weights(&weights(&[("stable", 100), ("canary", 0)]))
        .await
        .unwrap_err();
    match error {
        RouterError::NotVerified { found, .. } => {
            assert_eq!(found, weights(&[("stable", 80), ("canary", 20)]))
        }
        other => panic!("expected NotVerified, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_is_rolled_back_and_gets_no_new_requests() {
    let dir = scratch();
    let stable = Backend::start("stable", dir.path())
        .await
        .expect("stable backend");
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let nginx = nginx_with(&stable, &canary).await;
    let prometheus = Prometheus::start(&PrometheusSpec::new(vec![
        ScrapeTarget::new("stable", stable.addr),
        ScrapeTarget::new("canary", canary.addr),
    ]))
    .await
    .unwrap_or_else(|e| panic!("start Prometheus: {e}"));
    let router = router_for(&nginx, groups(&stable, &canary));
    let source = PrometheusSource::new(PrometheusConfig {
        url: prometheus.url(),
        request_count_query: Some(APP_REQUESTS.to_string()),
        min_requests: Some(10),
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let load = Load::start(LoadSpec {
        connections: 4,
        pause: Duration::from_millis(5),
        ..LoadSpec::new(nginx.listen)
    });

    let report = ramp_until_rollback(&router, &source, APP_ERROR_RATE, &canary).await;

    assert_eq!(
        router.read_weights().await.unwrap(),
        weights(&[("stable", 100), ("canary", 0)])
    );
    let file = std::fs::read_to_string(&nginx.upstream_file).unwrap();
    assert!(
        file.contains(&format!("server {} down;", canary.addr)),
        "{file}"
    );
    let stable_before = stable.hit_count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = canary_hits_after(&canary, report.confirmed_at, Duration::from_millis(20));
    assert!(
        late.is_empty(),
        "canary served {} requests after the rollback: {:?}",
        late.len(),
        &late[..late.len().min(5)]
    );
    assert!(
        stable.hit_count() > stable_before + 50,
        "stable stopped serving after the rollback"
    );
    let stats = load.stop();
    eprintln!(
        "nginx ramp: canary hits at 5 %: {}, fault → breach seen {:?}, breach → confirmed {:?} ({} attempt(s)); requests lost over 3 reloads on keep-alive connections: {} {:?}",
        report.canary_hits_at_5,
        report.breach_seen_at - report.fault_at,
        report.confirmed_at - report.breach_seen_at,
        report.rollback_attempts,
        stats.lost,
        stats
            .lost_at
            .iter()
            .map(|(_, why)| why.as_str())
            .collect::<Vec<_>>(),
    );
}
