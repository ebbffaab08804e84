//! The built-in router (crate `proxy`) behind the same trait, judged by its own telemetry:
//! the ramp that HAProxy and nginx run, with the canary failing at 25 %, rolls back, and
//! the canary's access log receives nothing after the confirmation; no request is lost.

mod support;

use std::sync::Arc;
use std::time::Duration;

use adapters::metrics::builtin::BuiltinMetrics;
use adapters::router::builtin::BuiltinRouter;
use adapters::{MetricSource, Reading, RouterError, TrafficRouter};
use support::*;

async fn start_router(stable: &Backend, canary: &Backend) -> Arc<proxy::RouterHandle> {
    let config = proxy::RouterConfig::new(
        testkit::process::free_addr(),
        vec![
            proxy::BackendGroup::new("stable", [stable.addr.to_string()]),
            proxy::BackendGroup::new("canary", [canary.addr.to_string()]),
        ],
    );
    Arc::new(
        proxy::Router::start(config)
            .await
            .expect("start the built-in router"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_are_applied_read_back_and_nonsense_refused() {
    let dir = scratch();
    let stable = Backend::start("stable", dir.path())
        .await
        .expect("stable backend");
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let handle = start_router(&stable, &canary).await;
    let router = BuiltinRouter::new(handle.clone());
    for canary_percent in [5, 25, 50, 75, 100, 0] {
        let wanted = weights(&[("stable", 100 - canary_percent), ("canary", canary_percent)]);
        assert_eq!(router.set_weights(&wanted).await.unwrap(), wanted);
        assert_eq!(router.read_weights().await.unwrap(), wanted);
    }
    assert!(matches!(
        router
            .set_weights(&weights(&[("stable", 50), ("blue", 50)]))
            .await,
        Err(RouterError::Refused(_))
    ));
    assert!(matches!(
        router
            .set_weights(&weights(&[("stable", 50), ("canary", 10)]))
            .await,
        Err(RouterError::Refused(_))
    ));
    assert_eq!(
        router.read_weights().await.unwrap(),
        weights(&[("stable", 100), ("canary", 0)])
    );
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
    let handle = start_router(&stable, &canary).await;
    let router = BuiltinRouter::new(handle.clone());
    let source = BuiltinMetrics::new(
        handle.telemetry().clone(),
        Some(Duration::from_secs(5)),
        Some(10),
    );
    // Nothing has been served: inconclusive, never a pass.
    assert!(matches!(
        source.read("error_rate", "canary").await,
        Reading::NoData { .. }
    ));
    let load = Load::start(LoadSpec {
        connections: 4,
        pause: Duration::from_millis(5),
        ..LoadSpec::new(handle.local_addr())
    });

    let report = ramp_until_rollback(&router, &source, "error_rate", &canary).await;

    assert_eq!(handle.weights(), weights(&[("stable", 100), ("canary", 0)]));
    let stable_before = stable.hit_count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = canary_hits_after(&canary, report.confirmed_at, Duration::from_millis(20));
    assert!(
        late.is_empty(),
        "canary served {} requests after the rollback",
        late.len()
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
        "built-in ramp: canary hits at 5 %: {}, fault → breach seen {:?}, breach → confirmed {:?}",
        report.canary_hits_at_5,
        report.breach_seen_at - report.fault_at,
        report.confirmed_at - report.breach_seen_at,
    );
}
