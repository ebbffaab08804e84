//! A tiny HTTP service to run a stable and a canary version locally, one of which can be
//! told at run time to fail a share of requests, slow down, or both, from a given moment.
//!
//! Endpoints:
//! - `GET /` (and any other path not below): `{"status":"ok","version":"…"}`, or with a
//!   degradation in force, possibly a 500 `{"status":"error",…}` and/or added latency.
//! - `GET /health`: always `{"status":"ok","version":"…"}`, never degraded, so health checks
//!   keep passing while the application misbehaves (a bug, not an outage).
//! - `POST /admin/degrade?error_percent=E&latency_ms=L&jitter_ms=J&after_ms=A`: from A ms
//!   after this call, answer E % of requests with 500 and add L ms + up to J ms of latency.
//! - `POST /admin/heal`: back to normal. `GET /admin/stats`: requests and errors served.
//!
//! Each request to a non-admin path is appended to the access log, if configured, as one
//! line: `<unix ms> <version> <method> <path> <status> <µs>`. Health checks are left out
//! unless `log_health_checks` is set, so the log shows user traffic only.
//!
//! Randomness (which requests fail, how much jitter) comes from a SplitMix64 sequence
//! seeded by the config, so a run's n-th draw is the same every time.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Error;

/// How to run one demo service instance.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Port 0 picks a free port; see [`DemoHandle::addr`].
    pub listen: SocketAddr,
    /// Reported in every response and log line, e.g. `stable` or `canary`.
    pub version: String,
    /// Append one line per request here.
    pub access_log: Option<PathBuf>,
    /// Also log `/health` requests.
    pub log_health_checks: bool,
    /// Seed of the error and jitter draws.
    pub seed: u64,
    /// A degradation in force from start (its `starts_after` counts from start).
    pub degradation: Option<Degradation>,
}

impl DemoConfig {
    pub fn new(listen: SocketAddr, version: impl Into<String>) -> Self {
        DemoConfig {
            listen,
            version: version.into(),
            access_log: None,
            log_health_checks: false,
            seed: 1,
            degradation: None,
        }
    }
}

/// A misbehaviour to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Degradation {
    /// Share of requests answered with 500, 0..=100.
    pub error_percent: u32,
    /// Latency added to every request.
    pub latency: Duration,
    /// Up to this much more latency, drawn uniformly per request.
    pub jitter: Duration,
    /// Delay between setting the degradation and it taking effect.
    pub starts_after: Duration,
}

struct Active {
    degradation: Degradation,
    from: Instant,
}

struct State {
    version: String,
    access_log: Option<File>,
    log_health_checks: bool,
    random_state: AtomicU64,
    degradation: ArcSwapOption<Active>,
    requests: AtomicU64,
    errors: AtomicU64,
}

impl State {
    /// SplitMix64: lock-free, a fixed sequence for a fixed seed.
    fn next_random(&self) -> u64 {
        let mut z = self
            .random_state
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn set_degradation(&self, degradation: Option<Degradation>) {
        self.degradation.store(degradation.map(|degradation| {
            Arc::new(Active {
                degradation,
                from: Instant::now() + degradation.starts_after,
            })
        }));
    }

    fn log(&self, method: &Method, path: &str, status: StatusCode, took: Duration) {
        let Some(mut file) = self.access_log.as_ref() else {
            return;
        };
        let unix_millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let line = format!(
            "{unix_millis} {} {method} {path} {} {}\n",
            self.version,
            status.as_u16(),
            took.as_micros()
        );
        // One write of a whole line to a file opened for append: lines never interleave.
        if let Err(error) = file.write_all(line.as_bytes()) {
            tracing::warn!(%error, "access log write failed");
        }
    }
}

/// Namespace for starting a demo service inside the current tokio runtime.
pub struct DemoService;

impl DemoService {
    pub async fn start(config: DemoConfig) -> Result<DemoHandle, Error> {
        let access_log = match &config.access_log {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| Error::AccessLog {
                        path: path.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let state = Arc::new(State {
            version: config.version.clone(),
            access_log,
            log_health_checks: config.log_health_checks,
            random_state: AtomicU64::new(config.seed),
            degradation: ArcSwapOption::empty(),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        state.set_degradation(config.degradation);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                address: config.listen,
                source,
            })?;
        let addr = listener.local_addr()?;
        let (shutdown_sender, shutdown) = watch::channel(false);
        let task = tokio::spawn(serve(listener, state.clone(), shutdown));
        Ok(DemoHandle {
            state,
            addr,
            shutdown: shutdown_sender,
            task: std::sync::Mutex::new(Some(task)),
        })
    }
}

/// Steers a running demo service.
pub struct DemoHandle {
    state: Arc<State>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Drop for DemoHandle {
    fn drop(&mut self) {
        // An error only means the server task has ended already.
        let _ = self.shutdown.send(true);
    }
}

impl std::fmt::Debug for DemoHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoHandle")
            .field("version", &self.state.version)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DemoHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts misbehaving `degradation.starts_after` from now.
    pub fn degrade(&self, degradation: Degradation) {
        self.state.set_degradation(Some(degradation));
    }

    /// Stops misbehaving at once.
    pub fn heal(&self) {
        self.state.set_degradation(None);
    }

    /// Requests served on non-admin, non-health paths.
    pub fn requests_served(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// A reader of [`requests_served`](Self::requests_served) that outlives the borrow.
    pub fn requests_served_reader(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let state = self.state.clone();
        move || state.requests.load(Ordering::Relaxed)
    }

    /// Of those, the ones answered with an injected 500.
    pub fn errors_served(&self) -> u64 {
        self.state.errors.load(Ordering::Relaxed)
    }

    /// Stops accepting and waits (up to 5 s) for in-flight requests. Dropping the handle
    /// does the same without waiting.
    pub async fn shutdown(&self) {
        // An error only means the server task has ended already.
        let _ = self.shutdown.send(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Runs a demo service until SIGINT or SIGTERM: the body of `golive demo-service`.
/// Prints `demo service <version> listening on <addr>` on stdout once bound.
pub async fn run_demo_service(config: DemoConfig) -> Result<(), Error> {
    let handle = DemoService::start(config).await?;
    println!(
        "demo service {} listening on {}",
        handle.state.version, handle.addr
    );
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}

async fn serve(listener: TcpListener, state: Arc<State>, mut shutdown: watch::Receiver<bool>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let state = state.clone();
                    let service = hyper::service::service_fn(move |request| {
                        handle(state.clone(), request)
                    });
                    let connection = graceful
                        .watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "demo service accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn status_body(status: &str, version: &str) -> String {
    serde_json::json!({ "status": status, "version": version }).to_string()
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let path = request.uri().path();
    if let Some(action) = path.strip_prefix("/admin/") {
        return Ok(admin(
            &state,
            request.method(),
            action,
            request.uri().query(),
        ));
    }
    if path == "/health" {
        let response = json_response(StatusCode::OK, status_body("ok", &state.version));
        if state.log_health_checks {
            state.log(request.method(), path, StatusCode::OK, started.elapsed());
        }
        return Ok(response);
    }

    let degradation = state.degradation.load_full();
    let active = degradation
        .as_deref()
        .filter(|active| Instant::now() >= active.from)
        .map(|active| active.degradation);
    let mut status = StatusCode::OK;
    if let Some(degradation) = active {
        let mut delay = degradation.latency;
        let jitter_micros = degradation.jitter.as_micros() as u64;
        if jitter_micros > 0 {
            delay += Duration::from_micros(state.next_random() % (jitter_micros + 1));
        }
        if degradation.error_percent > 0
            && state.next_random() % 10_000 < u64::from(degradation.error_percent) * 100
        {
            status = StatusCode::INTERNAL_SERVER_ERROR;
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    state.requests.fetch_add(1, Ordering::Relaxed);
    let body = if status.is_success() {
        status_body("ok", &state.version)
    } else {
        state.errors.fetch_add(1, Ordering::Relaxed);
        status_body("error", &state.version)
    };
    state.log(request.method(), path, status, started.elapsed());
    Ok(json_response(status, body))
}

fn admin(
    state: &State,
    method: &Method,
    action: &str,
    query: Option<&str>,
) -> Response<Full<Bytes>> {
    let bad = |message: String| {
        json_response(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": message }).to_string(),
        )
    };
    match (method, action) {
        (&Method::POST, "degrade") => {
            let params: HashMap<&str, &str> = query
                .unwrap_or("")
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .collect();
            let number = |name: &str| -> Result<u64, String> {
                match params.get(name) {
                    None => Ok(0),
                    Some(text) => text
                        .parse()
                        .map_err(|_| format!("{name}={text} is not a whole number")),
                }
            };
            let parsed = (|| {
                let error_percent = number("error_percent")?;
                if error_percent > 100 {
                    return Err(format!("error_percent={error_percent} is over 100"));
                }
                Ok(Degradation {
                    error_percent: error_percent as u32,
                    latency: Duration::from_millis(number("latency_ms")?),
                    jitter: Duration::from_millis(number("jitter_ms")?),
                    starts_after: Duration::from_millis(number("after_ms")?),
                })
            })();
            match parsed {
                Ok(degradation) => {
                    state.set_degradation(Some(degradation));
                    tracing::info!(version = %state.version, ?degradation, "degradation set");
                    json_response(
                        StatusCode::OK,
                        serde_json::json!({
                            "version": state.version,
                            "error_percent": degradation.error_percent,
                            "latency_ms": degradation.latency.as_millis() as u64,
                            "jitter_ms": degradation.jitter.as_millis() as u64,
                            "after_ms": degradation.starts_after.as_millis() as u64,
                        })
                        .to_string(),
                    )
                }
                Err(message) => bad(message),
            }
        }
        (&Method::POST, "heal") => {
            state.set_degradation(None);
            json_response(StatusCode::OK, status_body("ok", &state.version))
        }
        (&Method::GET, "stats") => json_response(
            StatusCode::OK,
            serde_json::json!({
                "version": state.version,
                "requests": state.requests.load(Ordering::Relaxed),
                "errors": state.errors.load(Ordering::Relaxed),
            })
            .to_string(),
        ),
        _ => bad(format!(
            "unknown admin call {method} /admin/{action}; use POST /admin/degrade, \
             POST /admin/heal or GET /admin/stats"
        )),
    }
}
