//! A real Prometheus alerting rule (`for: 1s`) firing through a real Alertmanager into
//! golive's webhook route, mounted where the shell mounts it: the alert arrives once,
//! matched to the plan's rule id; when the canary recovers it arrives resolved.

mod support;

use std::time::{Duration, Instant};

use adapters::metrics::alertmanager::{AlertEvent, Matcher, webhook_router};
use support::*;

const RULES: &str = r#"groups:
  - name: golive
    interval: 1s
    rules:
      - alert: CanaryFailing
        expr: testkit_backend_fault{backend="canary"} == 1
        for: 1s
        labels:
          golive_rule: canary-errors
          severity: critical
        annotations:
          summary: the canary answers with errors
"#;

const TOKEN: &str = "s3cret-webhook-token";

async fn next_event(
    events: &mut tokio::sync::mpsc::Receiver<AlertEvent>,
    limit: Duration,
) -> AlertEvent {
    tokio::time::timeout(limit, events.recv())
        .await
        .unwrap_or_else(|_| panic!("no alert arrived within {limit:?}"))
        .expect("the webhook route is alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alerting_rule_fires_and_resolves_through_alertmanager() {
    let dir = scratch();
    let canary = Backend::start("canary", dir.path())
        .await
        .expect("canary backend");

    // The shell's HTTP server, with the webhook route where it belongs.
    let (sender, mut events) = tokio::sync::mpsc::channel(16);
    let matcher = Matcher::new(
        None,
        ["canary-errors".to_string(), "security-incident".to_string()],
    );
    let app = axum::Router::new().nest(
        "/api/v1/alertmanager",
        webhook_router(matcher, sender, Some(TOKEN.into())),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let golive = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // Without the token, nothing gets in.
    let refused = testkit::http::request(golive, "POST", "/api/v1/alertmanager", &[], b"{}")
        .await
        .unwrap();
    assert_eq!(refused.status, 401);

    let mut alertmanager_spec =
        AlertmanagerSpec::new(&format!("http://{golive}/api/v1/alertmanager"));
    alertmanager_spec.bearer_token = Some(TOKEN.to_string());
    let alertmanager = Alertmanager::start(&alertmanager_spec)
        .await
        .unwrap_or_else(|e| panic!("start Alertmanager: {e}"));
    let mut prometheus_spec = PrometheusSpec::new(vec![ScrapeTarget::new("canary", canary.addr)]);
    prometheus_spec.rules = Some(RULES.to_string());
    prometheus_spec.alertmanager = Some(alertmanager.addr);
    let prometheus = Prometheus::start(&prometheus_spec)
        .await
        .unwrap_or_else(|e| panic!("start Prometheus: {e}"));

    let fault_at = Instant::now();
    canary.set_fault(Fault::Errors);
    match next_event(&mut events, Duration::from_secs(15)).await {
        AlertEvent::Firing { id, alert } => {
            assert_eq!(id, "canary-errors");
            assert_eq!(alert.name(), Some("CanaryFailing"));
            assert_eq!(
                alert.labels.get("severity").map(String::as_str),
                Some("critical")
            );
            assert_eq!(
                alert.annotations.get("summary").map(String::as_str),
                Some("the canary answers with errors")
            );
        }
        other => panic!("expected the rule to fire, got {other:?}"),
    }
    let fired_after = fault_at.elapsed();

    let healed_at = Instant::now();
    canary.set_fault(Fault::Healthy);
    match next_event(&mut events, Duration::from_secs(15)).await {
        AlertEvent::Resolved { id, .. } => assert_eq!(id, "canary-errors"),
        other => panic!("expected the alert to resolve, got {other:?}"),
    }
    eprintln!(
        "alertmanager: fault → firing webhook {fired_after:?}, recovery → resolved webhook {:?}",
        healed_at.elapsed()
    );
    // Resends of the same resolved alert are dropped as duplicates.
    assert!(
        tokio::time::timeout(Duration::from_millis(2500), events.recv())
            .await
            .is_err(),
        "a duplicate got through"
    );
    drop(prometheus);
    drop(alertmanager);
    server.abort();
}
