//! The HAProxy router against a real HAProxy: weights applied and read back over the
//! runtime API (unix socket and TCP), refusals and unconfirmed changes reported as such,
//! and a ramp judged by a real Prometheus scraping HAProxy's exporter that rolls back
//! when the canary fails.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use adapters::metrics::prometheus::{Prometheus as PrometheusSource, PrometheusConfig};
use adapters::router::haproxy::{HaproxyRouter, RuntimeAddress, RuntimeApi, parse_servers_state};
use adapters::{RouterError, TrafficRouter};
use support::*;

fn groups() -> BTreeMap<String, Vec<String>> {
    [
        ("stable".to_string(), vec!["stable".to_string()]),
        ("canary".to_string(), vec!["canary".to_string()]),
    ]
    .into()
}

async fn haproxy_with(stable: &Backend, canary: &Backend) -> Haproxy {
    let spec = HaproxySpec::new(
        "app",
        vec![
            HaproxyServer {
                name: "stable".into(),
                addr: stable.addr,
                weight: 256,
            },
            HaproxyServer {
                name: "canary".into(),
                addr: canary.addr,
                weight: 0,
            },
        ],
    );
    Haproxy::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("start HAProxy: {e}"))
}

async fn user_weights(haproxy: &Haproxy) -> BTreeMap<String, u64> {
    let api = RuntimeApi::new(
        RuntimeAddress::Unix(haproxy.socket.clone()),
        Duration::from_secs(2),
    );
    let answer = api
        .exchange("show servers state app")
        .await
        .expect("show servers state");
    parse_servers_state(&answer)
        .expect("parse servers state")
        .into_iter()
        .map(|server| (server.name, server.user_weight))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_are_applied_and_read_back_over_unix_and_tcp() {
    let dir = scratch();
    let stable = Backend::start("stable", dir.path())
        .await
        .expect("stable backend");
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let haproxy = haproxy_with(&stable, &canary).await;
    let over_unix = HaproxyRouter::new(
        &haproxy.runtime_api(),
        "app",
        groups(),
        Duration::from_secs(2),
    )
    .unwrap();
    let over_tcp = HaproxyRouter::new(
        &haproxy.runtime_tcp.to_string(),
        "app",
        groups(),
        Duration::from_secs(2),
    )
    .unwrap();

    assert_eq!(
        over_tcp.read_weights().await.unwrap(),
        weights(&[("stable", 100), ("canary", 0)])
    );
    for canary_percent in [5, 25, 50, 75, 100, 0] {
        let wanted = weights(&[("stable", 100 - canary_percent), ("canary", canary_percent)]);
        assert_eq!(over_unix.set_weights(&wanted).await.unwrap(), wanted);
        assert_eq!(over_tcp.read_weights().await.unwrap(), wanted);
    }
    over_tcp
        .set_weights(&weights(&[("stable", 95), ("canary", 5)]))
        .await
        .unwrap();
    assert_eq!(
        user_weights(&haproxy).await,
        [("canary".to_string(), 13), ("stable".to_string(), 243)].into()
    );

    // Traffic follows: 95/5 over a few hundred requests.
    let load = Load::start(LoadSpec {
        connections: 2,
        pause: Duration::ZERO,
        ..LoadSpec::new(haproxy.frontend)
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stats = load.stop();
    let (to_stable, to_canary) = (stats.version("stable").ok, stats.version("canary").ok);
    let share = to_canary as f64 / (to_stable + to_canary) as f64;
    assert!(to_stable + to_canary > 200, "{stats:?}");
    assert!(
        (0.02..0.09).contains(&share),
        "canary share {share} at 5 %: {stats:?}"
    );
    assert_eq!(stats.lost, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_unconfirmed_changes_are_errors() {
    let dir = scratch();
    let stable = Backend::start("stable", dir.path())
        .await
        .expect("stable backend");
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let haproxy = haproxy_with(&stable, &canary).await;
    let router = HaproxyRouter::new(
        &haproxy.runtime_api(),
        "app",
        groups(),
        Duration::from_secs(2),
    )
    .unwrap();

    // A server HAProxy does not have.
    let mut wrong = groups();
    wrong.insert("canary".into(), vec!["canary-7".into()]);
    let wrong =
        HaproxyRouter::new(&haproxy.runtime_api(), "app", wrong, Duration::from_secs(2)).unwrap();
    let error = wrong
        .set_weights(&weights(&[("stable", 95), ("canary", 5)]))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RouterError::Refused(message) if message.contains("No such server")),
        "{error}"
    );

    // A backend HAProxy does not have.
    let nowhere = HaproxyRouter::new(
        &haproxy.runtime_api(),
        "nope",
        groups(),
        Duration::from_secs(2),
    )
    .unwrap();
    assert!(matches!(
        nowhere.read_weights().await,
        Err(RouterError::Refused(_))
    ));

    // The canary in maintenance: the weight is set, but no traffic would go there.
    let api = RuntimeApi::new(
        RuntimeAddress::Unix(haproxy.socket.clone()),
        Duration::from_secs(2),
    );
    api.exchange("disable server app/canary").await.unwrap();
    let error = router
        .set_weights(&weights(&[("stable", 75), ("canary", 25)]))
        .await
        .unwrap_err();
    match error {
        RouterError::NotVerified { wanted, found } => {
            assert_eq!(wanted, weights(&[("stable", 75), ("canary", 25)]));
            assert_eq!(found, weights(&[("stable", 100), ("canary", 0)]));
        }
        other => panic!("expected NotVerified, got {other}"),
    }
    api.exchange("enable server app/canary").await.unwrap();
    assert_eq!(
        router
            .set_weights(&weights(&[("stable", 75), ("canary", 25)]))
            .await
            .unwrap(),
        weights(&[("stable", 75), ("canary", 25)])
    );

    // Nonsense is refused before HAProxy is asked.
    assert!(matches!(
        router
            .set_weights(&weights(&[("stable", 50), ("canary", 5)]))
            .await,
        Err(RouterError::Refused(_))
    ));

    // HAProxy gone: unreachable, never a success.
    drop(haproxy);
    assert!(matches!(
        router.set_weights(&weights(&[("stable", 100)])).await,
        Err(RouterError::Unreachable(_))
    ));
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
    let haproxy = haproxy_with(&stable, &canary).await;
    let prometheus = Prometheus::start(&PrometheusSpec::new(vec![ScrapeTarget::new(
        "haproxy",
        haproxy.metrics,
    )]))
    .await
    .unwrap_or_else(|e| panic!("start Prometheus: {e}"));
    let router = HaproxyRouter::new(
        &haproxy.runtime_api(),
        "app",
        groups(),
        Duration::from_secs(2),
    )
    .unwrap();
    let source = PrometheusSource::new(PrometheusConfig {
        url: prometheus.url(),
        request_count_query: Some(HAPROXY_REQUESTS.to_string()),
        min_requests: Some(10),
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let load = Load::start(LoadSpec {
        connections: 4,
        pause: Duration::from_millis(5),
        ..LoadSpec::new(haproxy.frontend)
    });

    let report = ramp_until_rollback(&router, &source, HAPROXY_ERROR_RATE, &canary).await;

    // HAProxy itself says weight 0.
    let weights_now = user_weights(&haproxy).await;
    assert_eq!(weights_now.get("canary"), Some(&0), "{weights_now:?}");
    assert_eq!(weights_now.get("stable"), Some(&256), "{weights_now:?}");
    // Under continued load, the canary's access log receives nothing new.
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
    assert_eq!(
        stats.lost, 0,
        "requests lost by weight changes: {:?}",
        stats.lost_at
    );
    eprintln!(
        "haproxy ramp: canary hits at 5 %: {}, fault → breach seen {:?}, breach → confirmed {:?} ({} attempt(s)); canary log: {}",
        report.canary_hits_at_5,
        report.breach_seen_at - report.fault_at,
        report.confirmed_at - report.breach_seen_at,
        report.rollback_attempts,
        canary.log_path.display(),
    );
}
