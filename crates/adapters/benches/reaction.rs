//! How fast traffic leaves a bad version, measured against the real programs.
//!
//! (a) From "the rule's condition is met" (one call) to the router confirming weight 0 on
//!     the canary: HAProxy's runtime API (unix socket, TCP), the built-in router, nginx
//!     (rewrite, test, reload, confirm); spawning `socat` per command for reference.
//! (b) From fault injection to the last request served by the bad version, with rules
//!     evaluated every second and `for: 1s` (Prometheus semantics: pending on the first
//!     true evaluation, firing on the first one at least `for` later): HAProxy judged by
//!     Prometheus scraping its exporter every second, and the built-in router judged by
//!     its own telemetry.
//! (c) Weight changes under keep-alive load (HAProxy, the built-in router, nginx with and
//!     without client keep-alive): requests that got no answer, per change.
//!
//! Run it through `bench/reaction.sh`; environment: RUNS (a, default 300), NGINX_RUNS
//! (default 30), FAULT_RUNS (b, default 5), ONLY (`a`, `b`, `c`, comma-separated).

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::metrics::builtin::BuiltinMetrics;
use adapters::metrics::prometheus::{Prometheus as PrometheusSource, PrometheusConfig};
use adapters::router::builtin::BuiltinRouter;
use adapters::router::haproxy::HaproxyRouter;
use adapters::router::nginx::{NginxConfig, NginxRouter, render, verify_location};
use adapters::{MetricSource, Reading, TrafficRouter, Weights};
use testkit::{
    Backend, Fault, Haproxy, HaproxyServer, HaproxySpec, Load, LoadSpec, Nginx, NginxSpec,
    Prometheus, PrometheusSpec, ScrapeTarget,
};

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn weights(pairs: &[(&str, u32)]) -> Weights {
    pairs.iter().map(|(g, w)| (g.to_string(), *w)).collect()
}

/// Median, 99th percentile and maximum.
fn summary(samples: &[Duration]) -> (Duration, Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }
    let at =
        |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    (at(0.5), at(0.99), sorted[sorted.len() - 1])
}

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1000.0)
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

struct Report {
    lines: Vec<String>,
}

impl Report {
    fn line(&mut self, text: String) {
        println!("{text}");
        self.lines.push(text);
    }
}

async fn run() -> Result<(), Failure> {
    let only = std::env::var("ONLY").unwrap_or_else(|_| "a,b,c".to_string());
    let wants = |section: &str| only.split(',').any(|s| s.trim() == section);
    let mut report = Report { lines: Vec::new() };
    let dir = tempfile::Builder::new()
        .prefix("golive-reaction-")
        .tempdir()?;
    if wants("a") {
        call_to_confirmed(&mut report, dir.path()).await?;
    }
    if wants("b") {
        fault_to_last_bad_request(&mut report, dir.path()).await?;
    }
    if wants("c") {
        nginx_reload_losses(&mut report, dir.path()).await?;
    }
    println!("\n=== summary ===");
    for line in &report.lines {
        println!("{line}");
    }
    Ok(())
}

async fn haproxy_setup(dir: &std::path::Path) -> Result<(Backend, Backend, Haproxy), Failure> {
    let stable = Backend::start("stable", dir).await?;
    let canary = Backend::start("canary", dir).await?;
    let haproxy = Haproxy::start(&HaproxySpec::new(
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
    ))
    .await?;
    Ok((stable, canary, haproxy))
}

fn haproxy_groups() -> std::collections::BTreeMap<String, Vec<String>> {
    [
        ("stable".to_string(), vec!["stable".to_string()]),
        ("canary".to_string(), vec!["canary".to_string()]),
    ]
    .into()
}

async fn builtin_setup(
    stable: &Backend,
    canary: &Backend,
) -> Result<Arc<proxy::RouterHandle>, Failure> {
    let listen = testkit::process::free_addr();
    let config = proxy::RouterConfig::new(
        listen,
        vec![
            proxy::BackendGroup::new("stable", [stable.addr.to_string()]),
            proxy::BackendGroup::new("canary", [canary.addr.to_string()]),
        ],
    );
    Ok(Arc::new(proxy::Router::start(config).await?))
}

/// Times `runs` rollbacks (canary 25 % → 0 %) on `router`, under a light load.
async fn time_rollbacks(router: &dyn TrafficRouter, runs: usize) -> Result<Vec<Duration>, Failure> {
    let ramped = weights(&[("stable", 75), ("canary", 25)]);
    let rollback = weights(&[("stable", 100), ("canary", 0)]);
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        router.set_weights(&ramped).await?;
        let condition_met = Instant::now();
        let confirmed = router.set_weights(&rollback).await?;
        samples.push(condition_met.elapsed());
        if confirmed.get("canary") != Some(&0) {
            return Err(format!("router confirmed {confirmed:?}").into());
        }
    }
    Ok(samples)
}

async fn call_to_confirmed(report: &mut Report, dir: &std::path::Path) -> Result<(), Failure> {
    let runs = env_number("RUNS", 300);
    let nginx_runs = env_number("NGINX_RUNS", 30);
    report.line(format!(
        "\n(a) rule condition met → router confirms canary weight 0 ({runs} runs; nginx {nginx_runs}), light load running"
    ));
    report.line(format!(
        "{:<44} {:>12} {:>12} {:>12}",
        "router", "median", "p99", "max"
    ));
    let row = |report: &mut Report, name: &str, samples: &[Duration]| {
        let (median, p99, max) = summary(samples);
        report.line(format!(
            "{name:<44} {:>12} {:>12} {:>12}",
            ms(median),
            ms(p99),
            ms(max)
        ));
    };

    let (stable, canary, haproxy) = haproxy_setup(dir).await?;
    let load = Load::start(LoadSpec {
        connections: 2,
        pause: Duration::from_millis(2),
        ..LoadSpec::new(haproxy.frontend)
    });
    let unix = HaproxyRouter::new(
        &haproxy.runtime_api(),
        "app",
        haproxy_groups(),
        Duration::from_secs(2),
    )?;
    let tcp = HaproxyRouter::new(
        &haproxy.runtime_tcp.to_string(),
        "app",
        haproxy_groups(),
        Duration::from_secs(2),
    )?;
    row(
        report,
        "HAProxy runtime API, unix socket",
        &time_rollbacks(&unix, runs).await?,
    );
    row(
        report,
        "HAProxy runtime API, TCP",
        &time_rollbacks(&tcp, runs).await?,
    );

    // Reference: one `set weight` through a freshly spawned socat, no read-back.
    let socat = testkit::program("socat", &[], "socat")?;
    let mut spawned = Vec::new();
    for _ in 0..runs.min(50) {
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&socat)
            .arg("-")
            .arg(format!("UNIX-CONNECT:{}", haproxy.socket.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin.write_all(b"set weight app/canary 0\n").await?;
        }
        child.wait().await?;
        spawned.push(started.elapsed());
    }
    row(
        report,
        "  for reference: socat spawned per command",
        &spawned,
    );
    drop(load);

    let handle = builtin_setup(&stable, &canary).await?;
    let load = Load::start(LoadSpec {
        connections: 2,
        pause: Duration::from_millis(2),
        ..LoadSpec::new(handle.local_addr())
    });
    let builtin = BuiltinRouter::new(handle.clone());
    row(
        report,
        "built-in router",
        &time_rollbacks(&builtin, runs).await?,
    );
    drop(load);

    let nginx = nginx_setup(&stable, &canary, "").await?;
    let load = Load::start(LoadSpec {
        connections: 2,
        pause: Duration::from_millis(2),
        ..LoadSpec::new(nginx.listen)
    });
    let router = nginx_router(&nginx, &stable, &canary, true)?;
    row(
        report,
        "nginx: write, nginx -t, reload, confirm (pid)",
        &time_rollbacks(&router, nginx_runs).await?,
    );
    let router = nginx_router(&nginx, &stable, &canary, false)?;
    row(
        report,
        "nginx: same, confirmed by 250 ms settle",
        &time_rollbacks(&router, nginx_runs.min(10)).await?,
    );
    drop(load);
    Ok(())
}

const VERIFY_PATH: &str = "/golive/weights";

async fn nginx_setup(
    stable: &Backend,
    canary: &Backend,
    http_extra: &str,
) -> Result<Nginx, Failure> {
    let groups = nginx_groups(stable, canary);
    let mut spec = NginxSpec::new(
        "app",
        render(
            "app",
            &groups,
            &weights(&[("stable", 100), ("canary", 0)]),
            0,
        ),
    );
    spec.server_extra = verify_location("app", VERIFY_PATH);
    spec.http_extra = http_extra.to_string();
    Ok(Nginx::start(&spec).await?)
}

fn nginx_groups(stable: &Backend, canary: &Backend) -> Vec<(String, Vec<String>)> {
    vec![
        ("stable".to_string(), vec![stable.addr.to_string()]),
        ("canary".to_string(), vec![canary.addr.to_string()]),
    ]
}

fn nginx_router(
    nginx: &Nginx,
    stable: &Backend,
    canary: &Backend,
    with_pid_file: bool,
) -> Result<NginxRouter, Failure> {
    Ok(NginxRouter::new(NginxConfig {
        upstream_file: nginx.upstream_file.clone(),
        upstream: "app".to_string(),
        groups: nginx_groups(stable, canary),
        test_command: nginx.test_command(),
        reload_command: nginx.reload_command(),
        verify_url: format!("http://{}{VERIFY_PATH}", nginx.listen),
        pid_file: with_pid_file.then(|| nginx.pid_file.clone()),
        timeout: Duration::from_secs(5),
    })?)
}

/// Threshold of the stand-in rule: canary error rate above 5 %.
const THRESHOLD_PERCENT: f64 = 5.0;
const EVALUATION_INTERVAL: Duration = Duration::from_secs(1);
const FOR: Duration = Duration::from_secs(1);
/// The window of the error-rate query (Prometheus `rate(...[5s])`, the built-in window).
const WINDOW: Duration = Duration::from_secs(5);

struct FaultRun {
    detected: Duration,
    router: Duration,
    last_bad: Duration,
}

/// One fault on the canary at 25 %: evaluate every second with `for: 1s`, roll back when
/// the rule fires, and find the canary's last request in its own access log.
async fn one_fault(
    router: &dyn TrafficRouter,
    source: &dyn MetricSource,
    query: &str,
    canary: &Backend,
    phase: Duration,
) -> Result<FaultRun, Failure> {
    router
        .set_weights(&weights(&[("stable", 75), ("canary", 25)]))
        .await?;
    canary.set_fault(Fault::Healthy);
    // Let the window hold only healthy requests before the fault.
    tokio::time::sleep(WINDOW + Duration::from_secs(2)).await;
    let mut ticker = tokio::time::interval(EVALUATION_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    tokio::time::sleep(phase).await;
    let fault_at = Instant::now();
    canary.set_fault(Fault::Errors);
    let mut pending_since: Option<tokio::time::Instant> = None;
    let condition_met = loop {
        let tick = ticker.tick().await;
        match source.read_ratio(query, "canary").await {
            Reading::Value(value) if value > THRESHOLD_PERCENT => {
                let since = *pending_since.get_or_insert(tick);
                if tick - since >= FOR {
                    break Instant::now();
                }
            }
            _ => pending_since = None,
        }
        if fault_at.elapsed() > Duration::from_secs(60) {
            return Err("the rule did not fire within 60 s of the fault".into());
        }
    };
    router
        .set_weights(&weights(&[("stable", 100), ("canary", 0)]))
        .await?;
    let confirmed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let last_bad = canary.last_hit().ok_or("the canary never served")?;
    canary.set_fault(Fault::Healthy);
    Ok(FaultRun {
        detected: condition_met - fault_at,
        router: confirmed_at - condition_met,
        last_bad: last_bad.saturating_duration_since(fault_at),
    })
}

async fn fault_runs(
    report: &mut Report,
    name: &str,
    router: &dyn TrafficRouter,
    source: &dyn MetricSource,
    query: &str,
    canary: &Backend,
) -> Result<(), Failure> {
    let runs = env_number("FAULT_RUNS", 5);
    let mut detected = Vec::new();
    let mut confirmed = Vec::new();
    let mut last_bad = Vec::new();
    for run in 0..runs {
        // Spread the fault over the evaluation cycle (golden-ratio steps through a second).
        let phase = Duration::from_secs_f64((run as f64 * 0.618_034).fract());
        let outcome = one_fault(router, source, query, canary, phase).await?;
        println!(
            "  {name} run {}: phase {:.2} s, condition met after {}, router confirmed in {}, last bad request {} after the fault",
            run + 1,
            phase.as_secs_f64(),
            secs(outcome.detected),
            ms(outcome.router),
            secs(outcome.last_bad)
        );
        detected.push(outcome.detected);
        confirmed.push(outcome.router);
        last_bad.push(outcome.last_bad);
    }
    let (d50, _, dmax) = summary(&detected);
    let (r50, _, rmax) = summary(&confirmed);
    let (l50, _, lmax) = summary(&last_bad);
    report.line(format!(
        "{name:<34} detect {:>7} (max {:>7})  router {:>10} (max {:>10})  last bad request {:>7} (max {:>7})",
        secs(d50),
        secs(dmax),
        ms(r50),
        ms(rmax),
        secs(l50),
        secs(lmax)
    ));
    Ok(())
}

async fn fault_to_last_bad_request(
    report: &mut Report,
    dir: &std::path::Path,
) -> Result<(), Failure> {
    let runs = env_number("FAULT_RUNS", 5);
    report.line(format!(
        "\n(b) fault injected on the canary at 25 % → last request served by it; rule `error rate > {THRESHOLD_PERCENT} %` evaluated every {EVALUATION_INTERVAL:?}, for {FOR:?}, window {WINDOW:?}; {runs} runs, medians"
    ));

    // HAProxy judged by Prometheus scraping HAProxy's exporter every second.
    let (stable, canary, haproxy) = haproxy_setup(dir).await?;
    let mut prometheus_spec =
        PrometheusSpec::new(vec![ScrapeTarget::new("haproxy", haproxy.metrics)]);
    prometheus_spec.scrape_interval = Duration::from_secs(1);
    let prometheus = Prometheus::start(&prometheus_spec).await?;
    let router = HaproxyRouter::new(
        &haproxy.runtime_api(),
        "app",
        haproxy_groups(),
        Duration::from_secs(2),
    )?;
    let source = PrometheusSource::new(PrometheusConfig {
        url: prometheus.url(),
        request_count_query: Some(
            "sum(increase(haproxy_server_http_responses_total{proxy=\"app\",server=\"${version}\"}[5s]))".to_string(),
        ),
        min_requests: Some(10),
        timeout: Duration::from_secs(1),
    })?;
    let query = "100 * sum(rate(haproxy_server_http_responses_total{proxy=\"app\",server=\"canary\",code=\"5xx\"}[5s])) / sum(rate(haproxy_server_http_responses_total{proxy=\"app\",server=\"canary\"}[5s]))";
    let load = Load::start(LoadSpec {
        connections: 4,
        pause: Duration::from_millis(2),
        ..LoadSpec::new(haproxy.frontend)
    });
    fault_runs(
        report,
        "HAProxy + Prometheus (1 s scrape)",
        &router,
        &source,
        query,
        &canary,
    )
    .await?;
    drop(load);
    drop(prometheus);
    drop(haproxy);

    // The built-in router judged by its own telemetry.
    let handle = builtin_setup(&stable, &canary).await?;
    let router = BuiltinRouter::new(handle.clone());
    let source = BuiltinMetrics::new(handle.telemetry().clone(), Some(WINDOW), Some(10));
    let load = Load::start(LoadSpec {
        connections: 4,
        pause: Duration::from_millis(2),
        ..LoadSpec::new(handle.local_addr())
    });
    fault_runs(
        report,
        "built-in router + its telemetry",
        &router,
        &source,
        "error_rate",
        &canary,
    )
    .await?;
    drop(load);

    report.line(

        "for comparison: the seed's rollback budget is 5 min; a Flagger-style analysis (interval 1 min, threshold 5 failed checks) rolls back 4–5 min after the first failing check, itself up to 1 min after the fault plus the query window; with threshold 1 still up to about 1–2 min."
        .to_string(),
    );
    Ok(())
}

/// Changes weights `changes` times under 8 keep-alive connections to `target`; one report
/// line with the requests that got no answer.
async fn losses_under_load(
    report: &mut Report,
    name: &str,
    router: &dyn TrafficRouter,
    target: std::net::SocketAddr,
    changes: usize,
) -> Result<(), Failure> {
    let load = Load::start(LoadSpec {
        connections: 8,
        pause: Duration::from_millis(1),
        ..LoadSpec::new(target)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = load.stats();
    let mut took = Vec::new();
    for index in 0..changes {
        let canary_percent = if index % 2 == 0 { 5 } else { 10 };
        let started = Instant::now();
        router
            .set_weights(&weights(&[
                ("stable", 100 - canary_percent),
                ("canary", canary_percent),
            ]))
            .await?;
        took.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = load.stop();
    let lost = after.lost - before.lost;
    let answered = after.answered - before.answered;
    let (median, p99, _) = summary(&took);
    report.line(format!(
        "{name:<46} lost {lost:>4} of {answered:>6} ({:.1} per change); confirmed in {} median, {} p99",
        lost as f64 / changes as f64,
        ms(median),
        ms(p99)
    ));
    Ok(())
}

async fn nginx_reload_losses(report: &mut Report, dir: &std::path::Path) -> Result<(), Failure> {
    let changes = env_number("NGINX_RELOADS", 20);
    report.line(format!(
        "\n(c) weight changes under load (8 keep-alive client connections, a client that never retries): {changes} changes each"
    ));
    let stable = Backend::start("stable-c", dir).await?;
    let canary = Backend::start("canary-c", dir).await?;

    let haproxy = Haproxy::start(&HaproxySpec::new(
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
    ))
    .await?;
    let router = HaproxyRouter::new(
        &haproxy.runtime_api(),
        "app",
        haproxy_groups(),
        Duration::from_secs(2),
    )?;
    losses_under_load(
        report,
        "HAProxy runtime API",
        &router,
        haproxy.frontend,
        changes,
    )
    .await?;
    drop(haproxy);

    let handle = builtin_setup(&stable, &canary).await?;
    let router = BuiltinRouter::new(handle.clone());
    losses_under_load(
        report,
        "built-in router",
        &router,
        handle.local_addr(),
        changes,
    )
    .await?;

    let settings = [
        ("nginx reload, default (keepalive_timeout 75s)", ""),
        (
            "nginx reload, keepalive_timeout 0",
            "    keepalive_timeout 0;\n",
        ),
    ];
    for (name, extra) in settings {
        let nginx = nginx_setup(&stable, &canary, extra).await?;
        let router = nginx_router(&nginx, &stable, &canary, true)?;
        losses_under_load(report, name, &router, nginx.listen, changes).await?;
    }
    Ok(())
}
