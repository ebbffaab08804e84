//! Helpers for the end-to-end tests of `golive run`: a plan written for the test, the real
//! `golive` binary started on a free loopback port, its operator commands, its run log read
//! back with `golive audit export`, and HAProxy's weights and the backends' access logs read
//! from the programs themselves. The programs (HAProxy, nginx, Prometheus, Alertmanager,
//! backends, load) are started by `testkit`.
#![allow(dead_code)] // each test file uses a different part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use testkit::*;

/// A temporary directory for the plan, the store, access logs and golive's output.
pub fn scratch() -> tempfile::TempDir {
    // Creating a directory under the system temp dir only fails on a broken machine.
    tempfile::Builder::new()
        .prefix("golive-e2e-")
        .tempdir()
        .expect("create a temporary directory")
}

/// T0 `seconds` from now, as a plan writes it.
pub fn t0_in(seconds: i64) -> String {
    let t0 = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds);
    format!("{t0:.0}").replace('Z', "+00:00[UTC]")
}

/// The parts of a test plan that differ between the tests; the rest (people, roles, the
/// go/no-go gate at T0, the ramp's start and rollback budget) is the same everywhere.
pub struct PlanParts<'a> {
    pub name: &'a str,
    pub t0: String,
    /// Environment `vars:` (name, value).
    pub vars: Vec<(&'a str, String)>,
    /// The environment's router and metric source ids (`None`: that line is left out).
    pub router: Option<&'a str>,
    pub metric_source: Option<&'a str>,
    /// YAML of the sections, each starting with its key at column 0 (may be empty).
    pub routers: &'a str,
    pub metric_sources: &'a str,
    pub slis: &'a str,
    /// The ramp's `stages:` list items, indented by four spaces.
    pub stages: &'a str,
    /// The `rules:` section.
    pub rules: &'a str,
    /// Anything else (triggers, checklists, playbooks…).
    pub extra: &'a str,
    /// Steps after the gate in the cutover phase, indented by six spaces.
    pub extra_steps: &'a str,
    /// `requires:` of the go/no-go gate.
    pub gate_requires: &'a str,
    /// `ramp.warmup`: how long after a stage's weights are confirmed no-data outcomes are
    /// not acted upon (the sources' windows here are a few seconds).
    pub warmup: &'a str,
}

impl<'a> PlanParts<'a> {
    pub fn new(name: &'a str) -> PlanParts<'a> {
        PlanParts {
            name,
            t0: t0_in(4),
            vars: Vec::new(),
            router: None,
            metric_source: None,
            routers: "",
            metric_sources: "",
            slis: "",
            stages: "",
            rules: "",
            extra: "",
            extra_steps: "",
            gate_requires: "[]",
            warmup: "3s",
        }
    }
}

/// People of every test plan: `rita` decides and may do everything, `sam` is the SRE (pause,
/// rollback, stop the line, no go/no-go), `vic` only watches.
pub const RELEASE_MANAGER: &str = "rita";
pub const SRE: &str = "sam";
pub const OBSERVER: &str = "vic";

pub fn plan_yaml(parts: &PlanParts) -> String {
    let vars: String = parts
        .vars
        .iter()
        .map(|(name, value)| format!("      {name}: {}\n", yaml_string(value)))
        .collect();
    let router = parts
        .router
        .map(|r| format!("    router: {r}\n"))
        .unwrap_or_default();
    let metric_source = parts
        .metric_source
        .map(|m| format!("    metric_source: {m}\n"))
        .unwrap_or_default();
    format!(
        r#"golive: 1
meta:
  name: {name}
  owner: release
t0: "{t0}"
people:
  - id: rita
    name: Rita Release
  - id: sam
    name: Sam Sre
  - id: vic
    name: Vic Viewer
roles:
  - id: release
    title: Release Manager
    primary: rita
    authorities: [go_no_go, stop_the_line, waive, approve, pause, rollback]
  - id: sre
    title: Site Reliability Engineer
    primary: sam
    authorities: [stop_the_line, pause, rollback]
  - id: observer
    title: Observer
    primary: vic
    authorities: []
environments:
  - id: e2e
{router}{metric_source}    vars:
      unused: "x"
{vars}{routers}
{metric_sources}
{slis}
timeline:
  - id: cutover
    title: Cutover
    window: {{ start: T-0:00, end: T+1:00 }}
    steps:
      - id: go_no_go
        at: T-0:00
        title: Go/no-go
        owner: release
        gate: {{ sets_t0: true, requires: {requires} }}
{extra_steps}
ramp:
  start: T+0:00
  warmup: {warmup}
  stages:
{stages}
  rollback:
    budget: 5m
{rules}
{extra}
"#,
        name = parts.name,
        t0 = parts.t0,
        routers = parts.routers,
        metric_sources = parts.metric_sources,
        slis = parts.slis,
        requires = parts.gate_requires,
        extra_steps = parts.extra_steps,
        stages = parts.stages,
        rules = parts.rules,
        extra = parts.extra,
        warmup = parts.warmup,
    )
}

/// A YAML double-quoted string.
pub fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// A running `golive run`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Golive {
    pub dir: PathBuf,
    pub plan: PathBuf,
    pub store: PathBuf,
    pub port: u16,
    child: Option<tokio::process::Child>,
    output: PathBuf,
}

fn golive_program() -> &'static str {
    env!("CARGO_BIN_EXE_golive")
}

impl Golive {
    /// Writes `plan` into `dir` and starts `golive run` on it (environment `e2e`), waiting
    /// until its API answers.
    pub async fn start(dir: &Path, plan: &str) -> Golive {
        Golive::start_on(dir, plan, free_port()).await
    }

    /// The same, with the API on `port` (a webhook sender was told where it is).
    pub async fn start_on(dir: &Path, plan: &str, port: u16) -> Golive {
        let plan_path = dir.join("plan.yaml");
        std::fs::write(&plan_path, plan).expect("write the plan");
        let mut golive = Golive {
            dir: dir.to_path_buf(),
            plan: plan_path,
            store: dir.join("golive.db"),
            port,
            child: None,
            output: dir.join("golive.out"),
        };
        golive.spawn().await;
        golive
    }

    /// Runs `golive run` (again: the same command resumes the run) and waits for its API.
    async fn spawn(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.output)
            .expect("open golive's output file");
        let log2 = log.try_clone().expect("clone a file handle");
        let child = tokio::process::Command::new(golive_program())
            .arg("run")
            .arg(&self.plan)
            .args(["--env", "e2e", "--store"])
            .arg(&self.store)
            .args(["--listen", &format!("127.0.0.1:{}", self.port), "--verbose"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true)
            .spawn()
            .expect("start golive run");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
            if matches!(http::get(addr, "/healthz").await, Ok(r) if r.status == 200) {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "golive run exited ({status}) before its API answered; its output:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "golive run's API did not answer on 127.0.0.1:{} within 20 s; its output:\n{}",
                self.port,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills `golive run` with SIGKILL (no chance to clean up) and runs the same command
    /// again, as an operator does after a crash.
    pub async fn kill_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("SIGKILL golive run");
        }
        self.spawn().await;
    }

    pub fn server(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What golive printed so far (the last 12 KiB).
    pub fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let start = text.len().saturating_sub(12 * 1024);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    /// Polls golive's output until it contains `needle`; panics after `limit`.
    pub async fn wait_for_output(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let output = self.output();
            if output.contains(needle) {
                return output;
            }
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for golive to print `{needle}`; its output:\n{output}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `golive <args> --server <this run>` and returns its exit code and output.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        let out = tokio::process::Command::new(golive_program())
            .args(args)
            .args(["--server", &self.server()])
            .env_remove("GOLIVE_AS")
            .env_remove("GOLIVE_SERVER")
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run the golive CLI");
        CliOutput {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// An operator command that must be accepted.
    pub async fn act(&self, args: &[&str]) -> CliOutput {
        let out = self.cli(args).await;
        assert_eq!(
            out.code,
            Some(0),
            "`golive {}` was not accepted: {out}\ngolive's output:\n{}",
            args.join(" "),
            self.output()
        );
        out
    }

    /// `golive status --json`.
    pub async fn status(&self) -> Value {
        let out = self.cli(&["status", "--json"]).await;
        assert_eq!(out.code, Some(0), "golive status --json failed: {out}");
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("golive status --json is not JSON ({e}): {out}"))
    }

    /// Every event of the run so far, read with `golive audit export` (JSON lines).
    pub async fn events(&self) -> Vec<Value> {
        let out = tokio::process::Command::new(golive_program())
            .args(["audit", "export", "--store"])
            .arg(&self.store)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run golive audit export");
        assert!(
            out.status.success(),
            "golive audit export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("an exported line is not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// Polls the log until an event satisfies `wanted`; panics naming `what` after `limit`,
    /// with the log's kinds and golive's output.
    pub async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let events = self.events().await;
            if let Some(found) = events.iter().find(|e| wanted(e)) {
                return found.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {limit:?} for {what}; it never came.\nthe log:\n{}\ngolive's output:\n{}",
                    summarize(&events),
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls `golive status --json` until `wanted` holds; panics naming `what` after `limit`.
    pub async fn wait_for_status(
        &self,
        what: &str,
        limit: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.status().await;
            if wanted(&status) {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {limit:?} for the status to show {what}; last status:\n{status:#}\nthe log:\n{}",
                    summarize(&self.events().await)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `golive audit verify --store …` must pass.
    pub async fn verify_audit(&self) -> String {
        let out = tokio::process::Command::new(golive_program())
            .args(["audit", "verify", "--store"])
            .arg(&self.store)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run golive audit verify");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "golive audit verify failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(": ok"), "{stdout}");
        stdout
    }

    /// Asks golive to stop (SIGTERM) and waits for it to exit.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
            panic!(
                "golive run did not stop within 10 s of SIGTERM; its output:\n{}",
                self.output()
            );
        }
    }
}

impl Drop for Golive {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// What a CLI command printed and how it exited.
#[derive(Debug, Clone)]
pub struct CliOutput {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`golive {}` exited {:?}\nstdout: {}\nstderr: {}",
            self.args.join(" "),
            self.code,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// An event's kind (`decision.stage_entered`, `refused.decide`…).
pub fn kind(event: &Value) -> &str {
    event["kind"].as_str().unwrap_or_default()
}

/// The decision record of an event (`body.decision`), when it is one.
pub fn decision<'a>(event: &'a Value, name: &str) -> Option<&'a Value> {
    let d = &event["body"]["decision"];
    (d["decision"] == name).then_some(d)
}

pub fn is_decision(name: &str) -> impl Fn(&Value) -> bool + '_ {
    move |event| decision(event, name).is_some()
}

/// `stage_entered` at `weight` percent.
pub fn stage_entered(weight: u64) -> impl Fn(&Value) -> bool {
    move |event| decision(event, "stage_entered").is_some_and(|d| d["weight"] == weight)
}

/// The weights of every `stage_entered` in the log, in order.
pub fn stages_entered(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| decision(e, "stage_entered"))
        .filter_map(|d| d["weight"].as_u64())
        .collect()
}

pub fn seq(event: &Value) -> u64 {
    event["seq"].as_u64().unwrap_or_default()
}

/// When an event was recorded (wall clock: `golive run` uses the system clock).
pub fn at(event: &Value) -> jiff::Timestamp {
    event["at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("event without a readable time: {event}"))
}

/// One line per event: seq, kind and the decision's main fields, for failure messages.
pub fn summarize(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            let body = &e["body"];
            let detail = if let Some(d) = body.get("decision") {
                d.to_string()
            } else if let Some(r) = body.get("refused") {
                r["reason"].to_string()
            } else if let Some(effect) = body.get("effect") {
                effect["effect"].to_string()
            } else {
                String::new()
            };
            let detail: String = detail.chars().take(220).collect();
            format!("  {:>4} {} {} {detail}", seq(e), e["at"], kind(e))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Weights as HAProxy itself reports them (`show servers state`), by server name: the
/// user weight (`srv_uweight`), read over the admin unix socket with no golive code.
pub async fn haproxy_weights(socket: &Path, backend: &str) -> BTreeMap<String, u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .unwrap_or_else(|e| panic!("connect to HAProxy's socket {}: {e}", socket.display()));
    stream
        .write_all(format!("show servers state {backend}\n").as_bytes())
        .await
        .expect("write to HAProxy's socket");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
        .await
        .expect("HAProxy answers within 5 s")
        .expect("read HAProxy's answer");
    let mut lines = answer.lines().filter(|l| !l.trim().is_empty());
    // First line: the format version; second: `# be_id be_name srv_id srv_name … srv_uweight …`.
    let _version = lines.next();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_else(|| panic!("no header in HAProxy's answer: {answer}"))
        .trim_start_matches('#')
        .split_whitespace()
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("no column {name} in HAProxy's answer: {answer}"))
    };
    let (name, weight) = (column("srv_name"), column("srv_uweight"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (
                fields[name].to_string(),
                fields[weight].parse().expect("srv_uweight is a number"),
            )
        })
        .collect()
}

/// Polls HAProxy until its weights are `wanted`; panics naming them after `limit`.
pub async fn wait_for_haproxy_weights(
    socket: &Path,
    backend: &str,
    wanted: &[(&str, u64)],
    limit: Duration,
) {
    let wanted: BTreeMap<String, u64> = wanted.iter().map(|(s, w)| (s.to_string(), *w)).collect();
    let deadline = Instant::now() + limit;
    loop {
        let found = haproxy_weights(socket, backend).await;
        if found == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited {limit:?} for HAProxy's weights to be {wanted:?}; HAProxy reports {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The access log lines of a testkit backend (`<micros since epoch> <method> <path> <status>`)
/// whose arrival is after `after`.
pub fn access_log_after(path: &Path, after: jiff::Timestamp) -> Vec<String> {
    let after_micros = after.as_microsecond();
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read the access log {}: {e}", path.display()))
        .lines()
        .filter(|line| {
            line.split_whitespace()
                .next()
                .and_then(|micros| micros.parse::<i64>().ok())
                .is_some_and(|micros| micros > after_micros)
        })
        .map(str::to_string)
        .collect()
}

/// How long after the router confirmed a change a request it had already sent on its way
/// may still reach the backend and be logged there. The log records arrival in the test
/// process, which a busy machine can delay; a router still sending new requests to the
/// canary shows up as many hits after this, as the load sends hundreds a second.
pub const IN_FLIGHT: Duration = Duration::from_millis(250);

/// Requests the canary's access log received after a rollback confirmed at `confirmed`
/// (the log's time, truncated to the millisecond), beyond those already in flight.
pub fn hits_after_confirmation(log: &Path, confirmed: jiff::Timestamp) -> Vec<String> {
    let in_flight = jiff::SignedDuration::try_from(IN_FLIGHT).expect("a small duration");
    let one_ms = jiff::SignedDuration::from_millis(1);
    access_log_after(log, confirmed + one_ms + in_flight)
}

/// Lines in a backend's access log.
pub fn access_log_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// HAProxy with `stable-1` (weight 256) and `canary-1` (weight `canary_weight`) in backend
/// `app`, in front of the two backends.
pub async fn haproxy_for(stable: &Backend, canary: &Backend, canary_weight: u16) -> Haproxy {
    let spec = HaproxySpec::new(
        "app",
        vec![
            HaproxyServer {
                name: "stable-1".into(),
                addr: stable.addr,
                weight: 256 - canary_weight,
            },
            HaproxyServer {
                name: "canary-1".into(),
                addr: canary.addr,
                weight: canary_weight,
            },
        ],
    );
    Haproxy::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("start HAProxy: {e}"))
}

/// The HAProxy router of a plan, over the unix socket in `${haproxy_socket}`.
pub const HAPROXY_ROUTER: &str = r#"routers:
  - id: edge
    haproxy:
      runtime_api: unix:${haproxy_socket}
      backend: app
      servers:
        stable: [stable-1]
        canary: [canary-1]
    timeout: 2s
"#;

/// Prometheus as a metric source, with a minimum request count per version from HAProxy's
/// per-server counters (servers are named `<version>-N`).
pub const PROMETHEUS_ON_HAPROXY: &str = r#"metric_sources:
  - id: prometheus
    prometheus:
      url: ${prometheus_url}
      window: 5s
      request_count_query: sum(increase(haproxy_server_http_responses_total{proxy="app",server=~"${version}-.*"}[5s]))
      min_requests: 10
    timeout: 2s
"#;

/// The error rate of each version on its own servers, from HAProxy's exporter (percent).
pub const ERROR_RATE_ON_HAPROXY: &str = r#"slis:
  - id: error_rate
    title: Error rate
    unit: percent
    ratio: true
    queries:
      prometheus: 100 * sum(rate(haproxy_server_http_responses_total{proxy="app",server=~"${version}-.*",code="5xx"}[5s])) / sum(rate(haproxy_server_http_responses_total{proxy="app",server=~"${version}-.*"}[5s]))
"#;

/// golive's built-in router on `${router_port}`, in front of `${stable_addr}` and
/// `${canary_addr}`.
pub const BUILTIN_ROUTER: &str = r#"routers:
  - id: local
    builtin:
      listen: 127.0.0.1:${router_port}
      groups:
        - name: stable
          backends: ["${stable_addr}"]
        - name: canary
          backends: ["${canary_addr}"]
      health_path: /health
"#;

/// The built-in router's own telemetry as the metric source.
pub const BUILTIN_METRICS: &str = r#"metric_sources:
  - id: builtin
    builtin: { window: 2s, min_requests: 5 }
"#;

pub const ERROR_RATE_ON_BUILTIN: &str = r#"slis:
  - id: error_rate
    title: Error rate
    unit: percent
    ratio: true
    queries:
      builtin: error_rate
"#;

/// A steady keep-alive load on `target`.
pub fn steady_load(target: std::net::SocketAddr) -> Load {
    Load::start(LoadSpec {
        connections: 4,
        pause: Duration::from_millis(5),
        ..LoadSpec::new(target)
    })
}

/// Starts Prometheus scraping `targets` every second.
pub async fn prometheus_scraping(targets: Vec<ScrapeTarget>) -> Prometheus {
    Prometheus::start(&PrometheusSpec::new(targets))
        .await
        .unwrap_or_else(|e| panic!("start Prometheus: {e}"))
}

/// Runs the gate's "go" as the release manager as soon as the gate is open.
pub async fn decide_go(golive: &Golive) {
    golive
        .wait_for("the go/no-go gate to open", Duration::from_secs(15), |e| {
            decision(e, "gate_opened").is_some()
        })
        .await;
    golive
        .act(&[
            "decide",
            "go",
            "--gate",
            "go_no_go",
            "--reason",
            "all checks green",
            "--as",
            RELEASE_MANAGER,
        ])
        .await;
}

/// Every byte but letters and digits percent-encoded, for a query string.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Polls Prometheus until `promql` returns a sample of at least `at_least`. Prometheus
/// hands new targets to its scrapers in batches every 5 s, so right after it starts it
/// knows no series at all; a test that needs data waits for it here, before the run.
pub async fn wait_for_prometheus(prometheus: &Prometheus, promql: &str, at_least: f64) {
    let path = format!("/api/v1/query?query={}", url_encode(promql));
    let limit = Duration::from_secs(20);
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    loop {
        if let Ok(response) = http::get(prometheus.addr, &path).await {
            last = response.text();
            let value: Value = serde_json::from_str(&last).unwrap_or(Value::Null);
            let found = value["data"]["result"]
                .as_array()
                .and_then(|r| r.first())
                .and_then(|sample| sample["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok());
            if found.is_some_and(|v| v >= at_least) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "waited {limit:?} for Prometheus to answer `{promql}` with at least {at_least}; last answer: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
