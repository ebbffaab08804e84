//! Real Prometheus alerting rules firing through a real Alertmanager into `golive run`'s
//! webhook (`/api/v1/alertmanager`), with HAProxy as the router. The plans judge nothing
//! themselves (their SLI has no query for the environment's metric source): each rule acts
//! only when its alert, labelled `golive_rule: <rule id>`, arrives.
//!
//! Phase 1, a plan with a warning rule: the canary fails at 25 %, the warning alert pauses
//! the ramp and pages, HAProxy stays at 25 %; the canary heals, the alert resolves, a
//! person resumes and promotes, and the ramp goes on to 50 %.
//! Phase 2, a plan with a critical rule, on the same programs: the canary fails at 25 %,
//! the critical alert rolls back, HAProxy reports the canary at 0 and the canary's access
//! log receives nothing after the confirmation. The warning alert, which this plan does
//! not know, changes nothing.

mod support;

use std::time::Duration;

use support::*;

const CANARY_ERROR_RATIO: &str = r#"100 * sum(rate(haproxy_server_http_responses_total{proxy="app",server=~"canary-.*",code="5xx"}[5s])) / sum(rate(haproxy_server_http_responses_total{proxy="app",server=~"canary-.*"}[5s]))"#;

fn alerting_rules() -> String {
    format!(
        r#"groups:
  - name: golive
    interval: 1s
    rules:
      - alert: CanaryErrorRateWarning
        expr: {ratio} > 1
        for: 1s
        labels:
          golive_rule: canary_errors_warning
          severity: warning
      - alert: CanaryErrorRateCritical
        expr: {ratio} > 5
        for: 1s
        labels:
          golive_rule: canary_errors_critical
          severity: critical
"#,
        ratio = CANARY_ERROR_RATIO
    )
}

// The environment reads Prometheus (for nothing here) and receives Alertmanager's
// webhooks. With Alertmanager as the plan's only metric source, the engine takes it as the
// environment's source and asks the shell to query it, which cannot be done: every rule
// would be blind from the start and pause the ramp. So the environment names Prometheus.
const SOURCES: &str = r#"metric_sources:
  - id: prometheus
    prometheus:
      url: ${prometheus_url}
      window: 5s
  - id: alertmanager
    alertmanager: { rule_label: golive_rule }
"#;

// Judged by Prometheus's alerting rules, not by golive: the SLI has no query for the
// environment's source, only the name of the alert that stands for it.
const SLIS: &str = r#"slis:
  - id: error_rate
    title: Error rate
    unit: percent
    ratio: true
    queries:
      alertmanager: CanaryErrorRate
"#;

const STAGES: &str = r#"    - weight: 5
      hold: 2s
    - weight: 25
      hold: 60s
    - weight: 50
      hold: 60s
    - weight: 100
      hold: 60s
"#;

const WARNING_RULES: &str = r#"rules:
  evaluation_interval: 1s
  list:
    - id: canary_errors_warning
      title: Canary error rate above 1 %
      when: error_rate > 1%
      for: 1s
      severity: warning
      actions: [pause, { page: sre }]
"#;

const CRITICAL_RULES: &str = r#"rules:
  evaluation_interval: 1s
  list:
    - id: canary_errors_critical
      title: Canary error rate above 5 %
      when: error_rate > 5%
      for: 1s
      severity: critical
      actions: [rollback, { page: sre }]
"#;

fn plan<'a>(name: &'a str, haproxy: &Haproxy, prometheus: &Prometheus, rules: &'a str) -> String {
    let mut parts = PlanParts::new(name);
    parts.vars = vec![
        ("haproxy_socket", haproxy.socket.display().to_string()),
        ("prometheus_url", prometheus.url()),
    ];
    parts.router = Some("edge");
    parts.metric_source = Some("prometheus");
    parts.routers = HAPROXY_ROUTER;
    parts.metric_sources = SOURCES;
    parts.slis = SLIS;
    parts.stages = STAGES;
    parts.rules = rules;
    plan_yaml(&parts)
}

fn weights(canary: u64) -> [(&'static str, u64); 2] {
    [("canary-1", canary), ("stable-1", 256 - canary)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_through_alertmanager_pause_on_a_warning_and_roll_back_on_a_critical_rule() {
    let dir = scratch();
    let stable = Backend::start("stable", dir.path())
        .await
        .expect("stable backend");
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let haproxy = haproxy_for(&stable, &canary, 0).await;
    // Both runs listen here, one after the other; Alertmanager sends to it.
    let golive_port = free_port();
    let alertmanager = Alertmanager::start(&AlertmanagerSpec::new(&format!(
        "http://127.0.0.1:{golive_port}/api/v1/alertmanager"
    )))
    .await
    .unwrap_or_else(|e| panic!("start Alertmanager: {e}"));
    let mut prometheus_spec =
        PrometheusSpec::new(vec![ScrapeTarget::new("haproxy", haproxy.metrics)]);
    prometheus_spec.rules = Some(alerting_rules());
    prometheus_spec.alertmanager = Some(alertmanager.addr);
    let prometheus = Prometheus::start(&prometheus_spec)
        .await
        .unwrap_or_else(|e| panic!("start Prometheus: {e}"));
    let load = steady_load(haproxy.frontend);
    wait_for_prometheus(&prometheus, r#"up{job="haproxy"}"#, 1.0).await;

    // Phase 1: a warning pauses.
    let phase_dir = dir.path().join("warning");
    std::fs::create_dir(&phase_dir).expect("create a directory");
    let mut golive = Golive::start_on(
        &phase_dir,
        &plan("E2E alert warning", &haproxy, &prometheus, WARNING_RULES),
        golive_port,
    )
    .await;
    let events = golive.events().await;
    assert!(
        events
            .iter()
            .any(|e| decision(e, "rule_inactive").is_some()),
        "the rule is judged by Alertmanager only, never by golive's own queries:\n{}",
        summarize(&events)
    );
    decide_go(&golive).await;
    golive
        .wait_for(
            "stage 2 (25 %) entered",
            Duration::from_secs(15),
            stage_entered(25),
        )
        .await;
    wait_for_haproxy_weights(&haproxy.socket, "app", &weights(64), Duration::from_secs(2)).await;
    canary.set_fault(Fault::Errors);
    let firing = golive
        .wait_for(
            "the warning alert firing in golive",
            Duration::from_secs(20),
            |e| {
                decision(e, "rule_firing").is_some_and(|d| {
                    d["rule"] == "canary_errors_warning" && d["source"] == "alertmanager"
                })
            },
        )
        .await;
    assert_eq!(firing["actor"]["kind"], "rule", "{firing}");
    let paused = golive
        .wait_for(
            "the ramp paused",
            Duration::from_secs(5),
            is_decision("ramp_paused"),
        )
        .await;
    let events = golive.events().await;
    assert!(
        events
            .iter()
            .any(|e| seq(e) > seq(&firing) && kind(e) == "effect.page"),
        "the warning pages the SRE:\n{}",
        summarize(&events)
    );
    let alert_input = events
        .iter()
        .find(|e| kind(e) == "input.alert")
        .unwrap_or_else(|| panic!("no alert input:\n{}", summarize(&events)));
    assert_eq!(
        alert_input["actor"]["kind"], "alertmanager",
        "{alert_input}"
    );
    assert_eq!(
        alert_input["body"]["input"]["labels"]["severity"], "warning",
        "{alert_input}"
    );

    // Paused, not rolled back: HAProxy stays at 25 % while the canary heals.
    canary.set_fault(Fault::Healthy);
    golive
        .wait_for("the warning alert resolved", Duration::from_secs(25), |e| {
            decision(e, "rule_resolved").is_some_and(|d| d["rule"] == "canary_errors_warning")
        })
        .await;
    assert_eq!(
        haproxy_weights(&haproxy.socket, "app").await,
        weights(64)
            .iter()
            .map(|(s, w)| (s.to_string(), *w))
            .collect(),
        "a warning leaves the weights alone"
    );
    let events = golive.events().await;
    assert_eq!(
        stages_entered(&events),
        vec![5, 25],
        "the ramp stays paused after the alert resolves, until a person resumes:\n{}",
        summarize(&events)
    );
    assert!(
        !events
            .iter()
            .any(|e| decision(e, "rollback_started").is_some()),
        "a warning rolled back:\n{}",
        summarize(&events)
    );
    golive
        .act(&["resume", "--reason", "canary healthy again", "--as", SRE])
        .await;
    golive
        .act(&[
            "promote",
            "--reason",
            "seen enough at 25 %",
            "--as",
            RELEASE_MANAGER,
        ])
        .await;
    golive
        .wait_for(
            "stage 3 (50 %) entered after the resume",
            Duration::from_secs(10),
            stage_entered(50),
        )
        .await;
    wait_for_haproxy_weights(
        &haproxy.socket,
        "app",
        &weights(128),
        Duration::from_secs(2),
    )
    .await;
    assert!(seq(&paused) > seq(&firing));
    golive.stop().await;
    golive.verify_audit().await;

    // Phase 2: a critical rule rolls back.
    let phase_dir = dir.path().join("critical");
    std::fs::create_dir(&phase_dir).expect("create a directory");
    let mut golive = Golive::start_on(
        &phase_dir,
        &plan("E2E alert critical", &haproxy, &prometheus, CRITICAL_RULES),
        golive_port,
    )
    .await;
    decide_go(&golive).await;
    golive
        .wait_for(
            "stage 2 (25 %) entered",
            Duration::from_secs(15),
            stage_entered(25),
        )
        .await;
    wait_for_haproxy_weights(&haproxy.socket, "app", &weights(64), Duration::from_secs(2)).await;
    canary.set_fault(Fault::Errors);
    let firing = golive
        .wait_for(
            "the critical alert firing in golive",
            Duration::from_secs(20),
            |e| {
                decision(e, "rule_firing").is_some_and(|d| {
                    d["rule"] == "canary_errors_critical" && d["source"] == "alertmanager"
                })
            },
        )
        .await;
    let confirmed = golive
        .wait_for(
            "the rollback confirmed by the router",
            Duration::from_secs(10),
            is_decision("rollback_confirmed"),
        )
        .await;
    assert_eq!(
        haproxy_weights(&haproxy.socket, "app").await,
        weights(0)
            .iter()
            .map(|(s, w)| (s.to_string(), *w))
            .collect(),
        "HAProxy after the rollback"
    );
    let confirmed_at = at(&confirmed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = hits_after_confirmation(&canary.log_path, confirmed_at);
    assert!(
        late.is_empty(),
        "the canary received {} requests after the rollback was confirmed at {confirmed_at}: {:?}",
        late.len(),
        &late[..late.len().min(5)]
    );
    let events = golive.events().await;
    assert_eq!(
        stages_entered(&events),
        vec![5, 25],
        "{}",
        summarize(&events)
    );
    assert!(seq(&firing) < seq(&confirmed));
    assert!(
        events.iter().any(
            |e| decision(e, "rollback_started").is_some_and(|d| d["cause"]
                .as_str()
                .is_some_and(|c| c.contains("canary_errors_critical")))
        ),
        "{}",
        summarize(&events)
    );
    // The warning alert fired too; this plan has no such rule, so it was not let in.
    assert!(
        !events
            .iter()
            .any(|e| e.to_string().contains("canary_errors_warning") && kind(e) == "input.alert"),
        "an alert for a rule this plan lacks was acted upon:\n{}",
        summarize(&events)
    );
    let stats = load.stop();
    assert_eq!(stats.lost, 0, "requests lost: {:?}", stats.lost_at);
    golive.stop().await;
    golive.verify_audit().await;
    drop(prometheus);
    drop(alertmanager);
}
