//! The whole chain through HAProxy: a plan → `golive run` → HAProxy's runtime API and a
//! real Prometheus scraping HAProxy's exporter every second → decisions in the run log.
//! A person says "go"; the healthy 5 % stage advances to 25 %; the canary then turns to
//! 5xx, the rollback rule fires, HAProxy itself reports the canary at weight 0, the
//! canary's access log receives nothing after the confirmation, and the log verifies.

mod support;

use std::time::Duration;

use support::*;

const STAGES: &str = r#"    - weight: 5
      hold: 3s
      gates:
        - metric: error_rate < 5%
    - weight: 25
      hold: 60s
      gates:
        - metric: error_rate < 5%
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_ramp_advances_on_prometheus_then_rolls_back_a_failing_canary() {
    let dir = scratch();
    let stable = Backend::start("stable", dir.path())
        .await
        .expect("stable backend");
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let haproxy = haproxy_for(&stable, &canary, 0).await;
    let prometheus = prometheus_scraping(vec![ScrapeTarget::new("haproxy", haproxy.metrics)]).await;
    let load = steady_load(haproxy.frontend);
    wait_for_prometheus(&prometheus, r#"up{job="haproxy"}"#, 1.0).await;

    let mut parts = PlanParts::new("E2E HAProxy ramp");
    parts.vars = vec![
        ("haproxy_socket", haproxy.socket.display().to_string()),
        ("prometheus_url", prometheus.url()),
    ];
    parts.router = Some("edge");
    parts.metric_source = Some("prometheus");
    parts.routers = HAPROXY_ROUTER;
    parts.metric_sources = PROMETHEUS_ON_HAPROXY;
    parts.slis = ERROR_RATE_ON_HAPROXY;
    parts.stages = STAGES;
    parts.rules = RULES;
    let mut golive = Golive::start(dir.path(), &plan_yaml(&parts)).await;

    decide_go(&golive).await;
    golive
        .wait_for("the go decision", Duration::from_secs(5), is_decision("go"))
        .await;

    // Stage 1 (5 %): HAProxy holds 13 of 256 for the canary.
    golive
        .wait_for(
            "stage 1 (5 %) entered",
            Duration::from_secs(15),
            stage_entered(5),
        )
        .await;
    assert_eq!(
        haproxy_weights(&haproxy.socket, "app").await,
        [("canary-1".to_string(), 13), ("stable-1".to_string(), 243)].into(),
        "HAProxy's weights at 5 %"
    );

    // Healthy: the gate passes on Prometheus's reading and stage 2 (25 %) is entered.
    let entered_25 = golive
        .wait_for(
            "stage 2 (25 %) entered after a healthy 5 % stage",
            Duration::from_secs(25),
            stage_entered(25),
        )
        .await;
    assert_eq!(
        haproxy_weights(&haproxy.socket, "app").await,
        [("canary-1".to_string(), 64), ("stable-1".to_string(), 192)].into(),
        "HAProxy's weights at 25 %"
    );
    let events = golive.events().await;
    // The last verdict at 5 % (earlier ones may be inconclusive while Prometheus has too
    // few requests to judge) is a pass on a real reading.
    let passed_5 = events
        .iter()
        .filter_map(|e| decision(e, "stage_gates"))
        .rfind(|d| d["weight"] == 5)
        .unwrap_or_else(|| panic!("no gate verdict at 5 %:\n{}", summarize(&events)));
    assert_eq!(passed_5["verdict"], "pass", "{passed_5}");
    assert!(canary.hit_count() > 0, "the canary got no traffic at 5 %");

    // The canary turns to 5xx at 25 %.
    canary.set_fault(Fault::Errors);
    let fault_at = jiff::Timestamp::now();
    let firing = golive
        .wait_for("rule canary_errors firing", Duration::from_secs(20), |e| {
            decision(e, "rule_firing").is_some_and(|d| d["rule"] == "canary_errors")
        })
        .await;
    let confirmed = golive
        .wait_for(
            "the rollback confirmed by the router",
            Duration::from_secs(10),
            is_decision("rollback_confirmed"),
        )
        .await;
    // HAProxy itself, not golive, says the canary has weight 0.
    assert_eq!(
        haproxy_weights(&haproxy.socket, "app").await,
        [("canary-1".to_string(), 0), ("stable-1".to_string(), 256)].into(),
        "HAProxy's weights after the rollback"
    );
    let confirmed_at = at(&confirmed);
    assert!(
        decision(&confirmed, "rollback_confirmed").unwrap()["within_budget"] == true,
        "{confirmed}"
    );

    // Under continued load, the canary's access log receives nothing new; stable serves.
    let stable_before = access_log_lines(&stable.log_path);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = hits_after_confirmation(&canary.log_path, confirmed_at);
    assert!(
        late.is_empty(),
        "the canary received {} requests after the rollback was confirmed at {confirmed_at}: {:?}",
        late.len(),
        &late[..late.len().min(5)]
    );
    assert!(
        access_log_lines(&stable.log_path) > stable_before + 50,
        "stable stopped serving after the rollback"
    );
    let stats = load.stop();
    assert_eq!(
        stats.lost, 0,
        "requests lost by HAProxy weight changes: {:?}",
        stats.lost_at
    );

    // The log tells the story in order, and never went past 25 %.
    let events = golive.events().await;
    assert_eq!(
        stages_entered(&events),
        vec![5, 25],
        "{}",
        summarize(&events)
    );
    let started = events
        .iter()
        .find(|e| decision(e, "rollback_started").is_some())
        .unwrap_or_else(|| panic!("no rollback_started:\n{}", summarize(&events)));
    assert!(
        decision(started, "rollback_started").unwrap()["cause"]
            .as_str()
            .is_some_and(|c| c.contains("canary_errors")),
        "{started}"
    );
    assert!(seq(&entered_25) < seq(&firing) && seq(&firing) <= seq(started));
    assert!(seq(started) < seq(&confirmed));
    assert!(
        events.iter().any(|e| kind(e) == "effect.page"),
        "the rule pages the SRE:\n{}",
        summarize(&events)
    );
    eprintln!(
        "haproxy e2e: fault → rule firing {:.2} s, fault → rollback confirmed {:.2} s",
        at(&firing).duration_since(fault_at).as_secs_f64(),
        confirmed_at.duration_since(fault_at).as_secs_f64(),
    );

    golive.stop().await;
    golive.verify_audit().await;
    drop(prometheus);
}
