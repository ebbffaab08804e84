//! `golive run` killed with SIGKILL in the middle of the 25 % stage, with golive's built-in
//! router (which lives in the killed process) in front of two real backends. The same
//! command resumes the run from its log: the router comes back with the split the run had
//! confirmed — not everything on stable — the ramp holds where it was, nothing is entered
//! twice, and the log verifies.

mod support;

use std::time::Duration;

use support::*;

const STAGES: &str = r#"    - weight: 5
      hold: 2s
    - weight: 25
      hold: 60s
    - weight: 50
      hold: 60s
    - weight: 100
      hold: 60s
"#;

const RULES: &str = r#"rules:
  evaluation_interval: 1s
  list:
    - id: canary_errors
      title: Canary error rate above 5 %
      when: error_rate > 5%
      for: 1s
      severity: critical
      actions: [rollback, { page: sre }]
"#;

/// The canary's share of the answers the load gets during `period`.
async fn canary_share(load: &Load, period: Duration) -> (f64, u64) {
    let before = load.stats();
    tokio::time::sleep(period).await;
    let after = load.stats();
    let delta = |version: &str| after.version(version).ok - before.version(version).ok;
    let (stable, canary) = (delta("stable"), delta("canary"));
    let total = stable + canary;
    (canary as f64 / total.max(1) as f64, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_with_the_built_in_router_at_the_confirmed_split() {
    let dir = scratch();
    let stable = Backend::start("stable", dir.path())
        .await
        .expect("stable backend");
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let router_port = free_port();
    let mut parts = PlanParts::new("E2E built-in restart");
    parts.vars = vec![
        ("router_port", router_port.to_string()),
        ("stable_addr", stable.addr.to_string()),
        ("canary_addr", canary.addr.to_string()),
    ];
    parts.router = Some("local");
    parts.metric_source = Some("builtin");
    parts.routers = BUILTIN_ROUTER;
    parts.metric_sources = BUILTIN_METRICS;
    parts.slis = ERROR_RATE_ON_BUILTIN;
    parts.stages = STAGES;
    parts.rules = RULES;
    let mut golive = Golive::start(dir.path(), &plan_yaml(&parts)).await;
    let load = steady_load(std::net::SocketAddr::from(([127, 0, 0, 1], router_port)));

    decide_go(&golive).await;
    golive
        .wait_for(
            "stage 2 (25 %) entered",
            Duration::from_secs(15),
            stage_entered(25),
        )
        .await;
    let (share, answers) = canary_share(&load, Duration::from_secs(1)).await;
    assert!(
        answers > 50 && (0.15..0.35).contains(&share),
        "canary share {share} of {answers} answers at 25 % before the kill"
    );

    golive.kill_and_restart().await;
    golive
        .wait_for_output(
            "the built-in router resumes the split the run last confirmed",
            Duration::from_secs(5),
        )
        .await;
    let (share, answers) = canary_share(&load, Duration::from_millis(1500)).await;
    assert!(
        answers > 50 && (0.15..0.35).contains(&share),
        "canary share {share} of {answers} answers after the restart; the run had confirmed 25 %:\n{}",
        golive.output()
    );
    let status = golive.status().await;
    assert_eq!(status["ramp"]["weight"], 25, "{status:#}");
    assert_eq!(status["ramp"]["stage"], 2, "{status:#}");
    assert_eq!(status["ramp"]["state"], "holding", "{status:#}");
    let events = golive.events().await;
    assert_eq!(
        stages_entered(&events),
        vec![5, 25],
        "{}",
        summarize(&events)
    );

    drop(load);
    golive.stop().await;
    golive.verify_audit().await;
}
