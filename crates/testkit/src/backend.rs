//! A small HTTP service standing for one version of an application: it answers every path
//! with its name, can be told to fail or slow down, and keeps an access log (in memory
//! with monotonic times, and as a file) so a test can tell exactly when it last served.
//! `/metrics` serves its counters for Prometheus and `/health` always answers 200; neither
//! is logged.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::Error;

/// How the backend behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    Healthy,
    /// Every request gets a 500.
    Errors,
    /// Every request is delayed.
    Latency(Duration),
}

/// One request the backend received, recorded when it arrived.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub status: u16,
    pub path: String,
}

struct Shared {
    name: String,
    fault: Mutex<Fault>,
    hits: Mutex<Vec<Hit>>,
    log: Mutex<std::fs::File>,
}

/// A running backend; it stops when dropped.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub log_path: PathBuf,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Backend {
    /// Starts a backend named `name` on a free loopback port, logging to
    /// `<log_dir>/<name>.access.log`. Needs a tokio runtime.
    pub async fn start(name: &str, log_dir: &Path) -> Result<Backend, Error> {
        let log_path = log_dir.join(format!("{name}.access.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| Error::io(format!("create {}", log_path.display()), e))?;
        let shared = Arc::new(Shared {
            name: name.to_string(),
            fault: Mutex::new(Fault::Healthy),
            hits: Mutex::new(Vec::new()),
            log: Mutex::new(log),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::io("bind a backend port", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("read the backend's address", e))?;
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Backend {
            name: name.to_string(),
            addr,
            log_path,
            shared,
            server,
        })
    }

    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
    }

    /// Every request received so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        lock(&self.shared.hits).clone()
    }

    pub fn hit_count(&self) -> usize {
        lock(&self.shared.hits).len()
    }

    /// Requests that arrived after `instant`.
    pub fn hits_after(&self, instant: Instant) -> Vec<Hit> {
        lock(&self.shared.hits)
            .iter()
            .filter(|hit| hit.at > instant)
            .cloned()
            .collect()
    }

    /// When the last request arrived.
    pub fn last_hit(&self) -> Option<Instant> {
        lock(&self.shared.hits).last().map(|hit| hit.at)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks only happens in a failing test; the data
    // (a log) is still worth reading.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn serve(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    let at = Instant::now();
    if uri.path() == "/metrics" {
        let fault = *lock(&shared.fault);
        let (ok, failed) = lock(&shared.hits)
            .iter()
            .fold((0u64, 0u64), |(ok, failed), hit| {
                if hit.status >= 500 {
                    (ok, failed + 1)
                } else {
                    (ok + 1, failed)
                }
            });
        let body = format!(
            "# TYPE testkit_backend_fault gauge\n\
             testkit_backend_fault{{backend=\"{name}\"}} {}\n\
             # TYPE testkit_backend_responses_total counter\n\
             testkit_backend_responses_total{{backend=\"{name}\",code=\"2xx\"}} {ok}\n\
             testkit_backend_responses_total{{backend=\"{name}\",code=\"5xx\"}} {failed}\n",
            u8::from(fault != Fault::Healthy),
            name = shared.name,
        );
        return (StatusCode::OK, body).into_response();
    }
    if uri.path() == "/health" {
        // A router's health check: answered, but not a request of the application, so
        // it stays out of the access log (a degraded version often still looks alive).
        return (StatusCode::OK, "ok\n").into_response();
    }
    let fault = *lock(&shared.fault);
    let status = match fault {
        Fault::Errors => StatusCode::INTERNAL_SERVER_ERROR,
        Fault::Healthy | Fault::Latency(_) => StatusCode::OK,
    };
    {
        lock(&shared.hits).push(Hit {
            at,
            status: status.as_u16(),
            path: uri.path().to_string(),
        });
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let _ = writeln!(
            lock(&shared.log),
            "{micros} {method} {} {}",
            uri.path(),
            status.as_u16()
        );
    }
    if let Fault::Latency(delay) = fault {
        tokio::time::sleep(delay).await;
    }
    (
        status,
        [("x-version", shared.name.clone())],
        format!("{}\n", shared.name),
    )
        .into_response()
}
