//! Prometheus stopped in the middle of a hold, with the whole chain running: the rule
//! becomes inconclusive, the ramp pauses and pages, a person cannot resume it while it is
//! blind, and it never advances while Prometheus is down — not even after the hold is over.
//! Prometheus restarted, the rule sees again, a person resumes and the ramp goes on.

mod support;

use std::time::Duration;

use support::*;

const STAGES: &str = r#"    - weight: 5
      hold: 3s
      gates:
        - metric: error_rate < 5%
    - weight: 25
      hold: 6s
      gates:
        - metric: error_rate < 5%
    - weight: 50
      hold: 60s
    - weight: 100
      hold: 60s
"#;

// `no_data: pause` is the default; written out because it is what this test is about.
const RULES: &str = r#"rules:
  evaluation_interval: 1s
  list:
    - id: canary_errors
      title: Canary error rate above 5 %
      when: error_rate > 5%
      for: 1s
      no_data: pause
      severity: critical
      actions: [rollback, { page: sre }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_down_mid_hold_pauses_pages_and_never_advances_until_data_and_a_person() {
    let dir = scratch();
    let stable = Backend::start("stable", dir.path())
        .await
        .expect("stable backend");
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let haproxy = haproxy_for(&stable, &canary, 0).await;
    let mut prometheus =
        prometheus_scraping(vec![ScrapeTarget::new("haproxy", haproxy.metrics)]).await;
    let _load = steady_load(haproxy.frontend);
    wait_for_prometheus(&prometheus, r#"up{job="haproxy"}"#, 1.0).await;

    let mut parts = PlanParts::new("E2E Prometheus outage");
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
        .wait_for(
            "stage 2 (25 %) entered after a healthy 5 % stage",
            Duration::from_secs(25),
            stage_entered(25),
        )
        .await;
    let before = golive.events().await;
    assert!(
        !before.iter().any(|e| decision(e, "ramp_paused").is_some()),
        "the ramp paused before Prometheus was stopped:\n{}",
        summarize(&before)
    );

    // Prometheus goes away in the middle of the 25 % hold.
    tokio::time::sleep(Duration::from_secs(1)).await;
    prometheus.stop();
    let stopped_seq = seq(before.last().expect("events"));
    let inconclusive = golive
        .wait_for(
            "rule canary_errors inconclusive",
            Duration::from_secs(10),
            |e| {
                decision(e, "rule_inconclusive")
                    .is_some_and(|d| d["rule"] == "canary_errors" && d["policy"] == "pause")
            },
        )
        .await;
    // Blind for the rule's grace (its `for`), the policy acts: the ramp pauses.
    let no_data = golive
        .wait_for(
            "rule canary_errors acting on no data",
            Duration::from_secs(5),
            |e| {
                decision(e, "rule_no_data")
                    .is_some_and(|d| d["rule"] == "canary_errors" && d["policy"] == "pause")
            },
        )
        .await;
    let paused = golive
        .wait_for(
            "the ramp paused",
            Duration::from_secs(5),
            is_decision("ramp_paused"),
        )
        .await;
    assert!(seq(&no_data) > seq(&inconclusive) && seq(&paused) >= seq(&no_data));
    let events = golive.events().await;
    let page = events
        .iter()
        .filter(|e| seq(e) >= seq(&inconclusive))
        .find(|e| kind(e) == "effect.page")
        .unwrap_or_else(|| panic!("no page after the rule went blind:\n{}", summarize(&events)));
    assert_eq!(page["body"]["effect"]["effect"]["role"], "sre", "{page}");

    // Nobody may resume a blind ramp; the refusal is in the log.
    let refused = golive
        .cli(&["resume", "--reason", "looks fine to me", "--as", SRE])
        .await;
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(refused.stderr.contains("no data"), "{refused}");

    // The hold ends while Prometheus is down; the gate cannot pass and nothing advances.
    let hold_ended = golive
        .wait_for("the 25 % hold to end", Duration::from_secs(15), |e| {
            decision(e, "stage_hold_ended").is_some_and(|d| d["weight"] == 25)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = golive.status().await;
    assert!(
        status["ramp"]["state"]
            .as_str()
            .is_some_and(|s| s.starts_with("paused")),
        "{status:#}"
    );
    assert_eq!(status["ramp"]["weight"], 25, "{status:#}");
    let rule = status["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["id"] == "canary_errors"))
        .unwrap_or_else(|| panic!("no rule in the status: {status:#}"));
    assert_eq!(rule["state"], "inconclusive", "{status:#}");
    let events = golive.events().await;
    let after_stop: Vec<_> = events.iter().filter(|e| seq(e) > stopped_seq).collect();
    assert!(
        !after_stop
            .iter()
            .any(|e| decision(e, "stage_entered").is_some()
                || decision(e, "stage_entering").is_some()),
        "the ramp advanced while Prometheus was down:\n{}",
        summarize(&events)
    );
    assert!(
        after_stop.iter().any(|e| kind(e) == "refused.resume"),
        "the refused resume is not in the log:\n{}",
        summarize(&events)
    );
    assert!(
        events
            .iter()
            .filter(|e| seq(e) > seq(&hold_ended))
            .filter_map(|e| decision(e, "stage_gates"))
            .all(|d| d["verdict"] != "pass"),
        "a gate passed without data:\n{}",
        summarize(&events)
    );
    assert_eq!(
        haproxy_weights(&haproxy.socket, "app").await,
        [("canary-1".to_string(), 64), ("stable-1".to_string(), 192)].into(),
        "HAProxy stays at 25 % while golive is blind"
    );

    // Prometheus back: the rule sees again; a person resumes; the ramp goes on.
    prometheus
        .restart()
        .await
        .unwrap_or_else(|e| panic!("restart Prometheus: {e}"));
    golive
        .wait_for(
            "rule canary_errors seeing data again",
            Duration::from_secs(15),
            |e| decision(e, "rule_data_back").is_some_and(|d| d["rule"] == "canary_errors"),
        )
        .await;
    golive
        .act(&["resume", "--reason", "Prometheus is back", "--as", SRE])
        .await;
    golive
        .wait_for(
            "stage 3 (50 %) entered after the resume",
            Duration::from_secs(15),
            stage_entered(50),
        )
        .await;
    assert_eq!(
        haproxy_weights(&haproxy.socket, "app").await,
        [("canary-1".to_string(), 128), ("stable-1".to_string(), 128)].into(),
        "HAProxy at 50 %"
    );
    let events = golive.events().await;
    assert_eq!(
        stages_entered(&events),
        vec![5, 25, 50],
        "{}",
        summarize(&events)
    );
    assert!(
        !events
            .iter()
            .any(|e| decision(e, "rollback_started").is_some()),
        "an outage is no reason to roll back:\n{}",
        summarize(&events)
    );

    golive.stop().await;
    golive.verify_audit().await;
}
