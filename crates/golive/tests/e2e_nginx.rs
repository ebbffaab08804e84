//! The whole chain through nginx: a plan → `golive run` → nginx's upstream file, `nginx -t`,
//! reload, read back on `verify_url`, old workers awaited through `pid_file` → a real
//! Prometheus scraping the applications' own counters → decisions in the run log. The
//! healthy 5 % stage advances to 25 %; the canary then turns to 5xx, the rollback rule
//! fires, nginx itself serves the canary at 0 (marked `down`), and the canary's access log
//! receives nothing after the confirmation.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::*;

const VERIFY_PATH: &str = "/golive/weights";

const ROUTER: &str = r#"routers:
  - id: edge
    nginx:
      upstream_file: ${upstream_file}
      upstream: app
      groups:
        - name: stable
          backends: ["${stable_addr}"]
        - name: canary
          backends: ["${canary_addr}"]
      test_command: ${nginx_test}
      reload_command: ${nginx_reload}
      verify_url: http://${nginx_addr}/golive/weights
      pid_file: ${nginx_pid}
    timeout: 10s
"#;

const SOURCE: &str = r#"metric_sources:
  - id: prometheus
    prometheus:
      url: ${prometheus_url}
      window: 5s
      request_count_query: sum(increase(testkit_backend_responses_total{backend="${version}"}[5s]))
      min_requests: 10
    timeout: 2s
"#;

const SLIS: &str = r#"slis:
  - id: error_rate
    title: Error rate
    unit: percent
    ratio: true
    queries:
      prometheus: 100 * sum(rate(testkit_backend_responses_total{backend="${version}",code="5xx"}[5s])) / sum(rate(testkit_backend_responses_total{backend="${version}"}[5s]))
"#;

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

/// The split nginx serves now, asked on a fresh connection (`canary=5 stable=95`).
async fn nginx_weights(nginx: &Nginx) -> BTreeMap<String, u64> {
    let response = http::get(nginx.listen, VERIFY_PATH)
        .await
        .unwrap_or_else(|e| panic!("ask nginx for its weights: {e}"));
    assert_eq!(response.status, 200, "{}", response.text());
    response
        .text()
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| *name != "generation")
        .map(|(name, value)| (name.to_string(), value.parse().expect("a percent")))
        .collect()
}

fn split(stable: u64, canary: u64) -> BTreeMap<String, u64> {
    [
        ("canary".to_string(), canary),
        ("stable".to_string(), stable),
    ]
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_ramp_advances_on_prometheus_then_rolls_back_a_failing_canary() {
    let dir = scratch();
    let stable = Backend::start("stable", dir.path())
        .await
        .expect("stable backend");
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");
    let groups = vec![
        ("stable".to_string(), vec![stable.addr.to_string()]),
        ("canary".to_string(), vec![canary.addr.to_string()]),
    ];
    let first = adapters::router::nginx::render(
        "app",
        &groups,
        &[("stable".to_string(), 100), ("canary".to_string(), 0)].into(),
        0,
    );
    let mut spec = NginxSpec::new("app", first);
    spec.server_extra = adapters::router::nginx::verify_location("app", VERIFY_PATH);
    // The least disruptive way nginx allows: no client keep-alive on the steered listener,
    // so a reload closes no connection a client is about to reuse.
    spec.http_extra = "keepalive_timeout 0;".to_string();
    let nginx = Nginx::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("start nginx: {e}"));
    let prometheus = prometheus_scraping(vec![
        ScrapeTarget::new("stable", stable.addr),
        ScrapeTarget::new("canary", canary.addr),
    ])
    .await;
    let load = steady_load(nginx.listen);
    wait_for_prometheus(&prometheus, r#"sum(up{job=~"stable|canary"})"#, 2.0).await;

    let mut parts = PlanParts::new("E2E nginx ramp");
    parts.vars = vec![
        ("upstream_file", nginx.upstream_file.display().to_string()),
        ("stable_addr", stable.addr.to_string()),
        ("canary_addr", canary.addr.to_string()),
        ("nginx_test", nginx.test_command()),
        ("nginx_reload", nginx.reload_command()),
        ("nginx_addr", nginx.listen.to_string()),
        ("nginx_pid", nginx.pid_file.display().to_string()),
        ("prometheus_url", prometheus.url()),
    ];
    parts.router = Some("edge");
    parts.metric_source = Some("prometheus");
    parts.routers = ROUTER;
    parts.metric_sources = SOURCE;
    parts.slis = SLIS;
    parts.stages = STAGES;
    parts.rules = RULES;
    let mut golive = Golive::start(dir.path(), &plan_yaml(&parts)).await;
    assert_eq!(nginx_weights(&nginx).await, split(100, 0));

    decide_go(&golive).await;
    golive
        .wait_for(
            "stage 1 (5 %) entered",
            Duration::from_secs(15),
            stage_entered(5),
        )
        .await;
    assert_eq!(nginx_weights(&nginx).await, split(95, 5), "nginx at 5 %");
    let file = std::fs::read_to_string(&nginx.upstream_file).expect("read the upstream file");
    assert!(
        file.contains(&format!("server {} weight=19;", stable.addr))
            && file.contains(&format!("server {} weight=1;", canary.addr)),
        "{file}"
    );

    let entered_25 = golive
        .wait_for(
            "stage 2 (25 %) entered after a healthy 5 % stage",
            Duration::from_secs(25),
            stage_entered(25),
        )
        .await;
    assert_eq!(nginx_weights(&nginx).await, split(75, 25), "nginx at 25 %");
    assert!(canary.hit_count() > 0, "the canary got no traffic at 5 %");

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
            Duration::from_secs(15),
            is_decision("rollback_confirmed"),
        )
        .await;
    let confirmed_at = at(&confirmed);
    assert_eq!(
        nginx_weights(&nginx).await,
        split(100, 0),
        "nginx after the rollback"
    );
    let file = std::fs::read_to_string(&nginx.upstream_file).expect("read the upstream file");
    assert!(
        file.contains(&format!("server {} down;", canary.addr)),
        "{file}"
    );

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

    let events = golive.events().await;
    assert_eq!(
        stages_entered(&events),
        vec![5, 25],
        "{}",
        summarize(&events)
    );
    assert!(seq(&entered_25) < seq(&firing) && seq(&firing) < seq(&confirmed));
    assert!(
        events.iter().any(
            |e| decision(e, "rollback_started").is_some_and(|d| d["cause"]
                .as_str()
                .is_some_and(|c| c.contains("canary_errors")))
        ),
        "{}",
        summarize(&events)
    );
    eprintln!(
        "nginx e2e: fault → rule firing {:.2} s, fault → rollback confirmed {:.2} s; requests without an answer over 3 reloads: {}",
        at(&firing).duration_since(fault_at).as_secs_f64(),
        confirmed_at.duration_since(fault_at).as_secs_f64(),
        stats.lost,
    );

    golive.stop().await;
    golive.verify_audit().await;
    drop(prometheus);
}
