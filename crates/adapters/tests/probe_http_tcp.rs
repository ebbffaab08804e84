//! HTTP, TCP and command probes against real servers and processes on loopback.

use std::collections::BTreeMap;
use std::time::Duration;

use adapters::probe::{NotProbeable, ProbeOutcome, probe};
use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use plan::model::{CommandCheck, HttpCheck, JsonAssertion, MetricCheck, TcpCheck, Verify};
use plan::{At, Dur};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(5);

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn app() -> String {
    let app = axum::Router::new()
        .route(
            "/health",
            get(|| async {
                Json(json!({
                    "status": "ok",
                    "version": "2.4.1",
                    "latency_ms": 120,
                    "checks": [{"name": "db", "up": true}, {"name": "cache", "up": true}],
                    "replicas": "3"
                }))
            }),
        )
        .route(
            "/degraded",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"status": "degraded"})),
                )
            }),
        )
        .route("/text", get(|| async { "plain words, not JSON" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route("/moved", get(|| async { Redirect::permanent("/health") }))
        .route(
            "/whoami",
            get(|headers: HeaderMap| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                Json(json!({"authorization": auth}))
            }),
        )
        .route(
            "/orders",
            post(|body: String| async move {
                (StatusCode::CREATED, Json(json!({"received": body.len()}))).into_response()
            }),
        );
    serve(app).await
}

fn http(url: String) -> HttpCheck {
    HttpCheck {
        url: At::bare(url),
        method: None,
        headers: BTreeMap::new(),
        body: None,
        status: None,
        json: Vec::new(),
        timeout: None,
    }
}

fn assertion(path: &str, equals: Option<Value>, compare: Option<&str>) -> At<JsonAssertion> {
    At::bare(JsonAssertion {
        path: At::bare(path.into()),
        equals,
        compare: compare.map(|c| At::bare(c.into())),
    })
}

async fn run(check: Verify) -> ProbeOutcome {
    let outcome = probe(&check, TIMEOUT).await.unwrap();
    println!(
        "{} — {}",
        if outcome.passed { "PASS" } else { "FAIL" },
        outcome.summary
    );
    outcome
}

#[tokio::test]
async fn http_status_and_json_assertions_pass_on_a_healthy_endpoint() {
    let base = app().await;
    let mut check = http(format!("{base}/health"));
    check.json = vec![
        assertion("$.status", Some(json!("ok")), None),
        assertion("$.latency_ms", None, Some("< 500")),
        assertion("$.checks[*].up", Some(json!(true)), None),
        assertion("$.version", Some(json!("2.4.1")), None),
    ];
    let outcome = run(Verify::Http(check)).await;
    assert!(outcome.passed, "{}", outcome.summary);
    assert_eq!(outcome.detail["status"], 200);
    assert_eq!(outcome.detail["assertions"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn http_failures_name_the_reason() {
    let base = app().await;
    let cases: Vec<(HttpCheck, &str)> = vec![
        (
            http(format!("{base}/degraded")),
            "answered 503, expected 200",
        ),
        (
            HttpCheck {
                json: vec![assertion("$.latency_ms", None, Some("< 100"))],
                ..http(format!("{base}/health"))
            },
            "`$.latency_ms` is 120, which is not < 100",
        ),
        (
            HttpCheck {
                json: vec![assertion("$.status", Some(json!("green")), None)],
                ..http(format!("{base}/health"))
            },
            "`$.status` is \"ok\", expected \"green\"",
        ),
        (
            HttpCheck {
                json: vec![assertion("$.uptime", None, None)],
                ..http(format!("{base}/health"))
            },
            "`$.uptime` selects nothing",
        ),
        (
            HttpCheck {
                json: vec![assertion("$.replicas", None, Some(">= 2"))],
                ..http(format!("{base}/health"))
            },
            "not a number",
        ),
        (
            HttpCheck {
                json: vec![assertion("$.status", None, None)],
                ..http(format!("{base}/text"))
            },
            "the body is not JSON",
        ),
        (http(format!("{base}/moved")), "answered 308, expected 200"),
    ];
    for (check, reason) in cases {
        let outcome = run(Verify::Http(check)).await;
        assert!(!outcome.passed);
        assert!(
            outcome.summary.contains(reason),
            "wanted `{reason}` in: {}",
            outcome.summary
        );
    }
}

#[tokio::test]
async fn http_expected_status_method_body_and_env_headers() {
    let base = app().await;
    let mut check = http(format!("{base}/orders"));
    check.method = Some("post".into());
    check.body = Some("{\"sku\":1}".into());
    check.status = Some(201);
    check.json = vec![assertion("$.received", Some(json!(9)), None)];
    assert!(run(Verify::Http(check)).await.passed);

    // `${NAME}` in a header comes from the process environment (cargo sets this one).
    let mut check = http(format!("{base}/whoami"));
    check
        .headers
        .insert("Authorization".into(), "Bearer ${CARGO_PKG_NAME}".into());
    check.json = vec![assertion(
        "$.authorization",
        Some(json!("Bearer adapters")),
        None,
    )];
    assert!(run(Verify::Http(check)).await.passed);

    let mut check = http(format!("{base}/whoami"));
    check.headers.insert(
        "Authorization".into(),
        "Bearer ${GOLIVE_SURELY_UNSET_TOKEN}".into(),
    );
    let outcome = run(Verify::Http(check)).await;
    assert!(
        !outcome.passed && outcome.summary.contains("GOLIVE_SURELY_UNSET_TOKEN"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn http_timeouts_and_refused_connections_fail() {
    let base = app().await;
    let mut check = http(format!("{base}/slow"));
    check.timeout = Some(At::bare(Dur(300)));
    let outcome = run(Verify::Http(check)).await;
    assert!(!outcome.passed);
    assert!(
        outcome.summary.contains("no response within 300ms"),
        "{}",
        outcome.summary
    );

    let closed = closed_port().await;
    let outcome = run(Verify::Http(http(format!("http://{closed}/health")))).await;
    assert!(!outcome.passed);
    assert!(
        outcome.summary.to_lowercase().contains("refused"),
        "{}",
        outcome.summary
    );
}

async fn closed_port() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
    // Dropped here: nothing listens there any more.
}

#[tokio::test]
async fn tcp_open_and_closed_ports() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap();
    let check = |address: String| {
        Verify::Tcp(TcpCheck {
            address: At::bare(address),
            timeout: None,
        })
    };
    let outcome = run(check(open.to_string())).await;
    assert!(outcome.passed, "{}", outcome.summary);
    assert_eq!(outcome.detail["connected"], open.to_string());

    let closed = closed_port().await;
    let outcome = run(check(closed.to_string())).await;
    assert!(!outcome.passed);
    assert!(outcome.summary.contains("refused"), "{}", outcome.summary);

    let outcome = run(check("127.0.0.1".into())).await;
    assert!(!outcome.passed, "an address without a port cannot pass");
    drop(listener);
}

fn command(run: &str) -> CommandCheck {
    CommandCheck {
        run: At::bare(run.into()),
        expect_exit: None,
        expect_output: None,
        timeout: None,
    }
}

#[tokio::test]
async fn command_probes_check_exit_code_and_output() {
    let outcome = run(Verify::Command(command("echo migrations: 42 applied"))).await;
    assert!(outcome.passed, "{}", outcome.summary);

    let check = CommandCheck {
        expect_output: Some(At::bare("42 applied".into())),
        ..command("echo migrations: 42 applied")
    };
    assert!(run(Verify::Command(check)).await.passed);

    let check = CommandCheck {
        expect_output: Some(At::bare("0 pending".into())),
        ..command("echo 3 pending")
    };
    let outcome = run(Verify::Command(check)).await;
    assert!(
        !outcome.passed && outcome.summary.contains("does not contain `0 pending`"),
        "{}",
        outcome.summary
    );

    let outcome = run(Verify::Command(command(
        "echo 'replica lag too high' >&2; exit 2",
    )))
    .await;
    assert!(!outcome.passed);
    assert!(
        outcome
            .summary
            .contains("exit 2, expected exit 0: replica lag too high"),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.detail["exit_code"], 2);

    let check = CommandCheck {
        expect_exit: Some(1),
        ..command("grep -q ERROR /dev/null")
    };
    assert!(
        run(Verify::Command(check)).await.passed,
        "an expected non-zero exit passes"
    );

    let check = CommandCheck {
        timeout: Some(At::bare(Dur(300))),
        ..command("sleep 5")
    };
    let outcome = run(Verify::Command(check)).await;
    assert!(
        !outcome.passed && outcome.summary.contains("timed out after"),
        "{}",
        outcome.summary
    );

    let outcome = run(Verify::Command(command(
        "echo ${GOLIVE_SURELY_UNSET_VARIABLE}",
    )))
    .await;
    assert!(
        !outcome.passed && outcome.summary.contains("is not set"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn manual_and_metric_checks_are_not_probed() {
    assert_eq!(
        probe(&Verify::Manual, TIMEOUT).await,
        Err(NotProbeable::Manual)
    );
    let metric = Verify::Metric(MetricCheck {
        when: At::bare("error_rate < 1%".parse().unwrap()),
        version: None,
    });
    let error = probe(&metric, TIMEOUT).await.unwrap_err();
    assert_eq!(error, NotProbeable::Metric);
    assert!(error.to_string().contains("judged by the engine"));
}
