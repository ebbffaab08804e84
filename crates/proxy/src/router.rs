//! The proxy itself: listeners, the per-request path (pick a version, pick a healthy
//! backend, forward over a keep-alive pool, record telemetry), and the handle that steers it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::Authority;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::config::{Bucketing, RouterConfig};
use crate::pool::{ConnectionPool, PoolError};
use crate::routing::{WeightTable, bucket_of_key, bucket_of_sequence};
use crate::telemetry::{Outcome, ProxyErrorKind, Telemetry, VersionId};
use crate::upstream::{ExchangeError, ResponseBody};
use crate::{Error, health, metrics};

/// The body of every response the router sends: the backend's, streamed, or its own.
pub(crate) type RouterBody = Either<BackendBody, Full<Bytes>>;

/// A backend's response body, streamed to the client. It holds the backend connection and
/// the backend's in-flight slot until its last frame has been read, then gives the
/// connection back to the pool; a body dropped before its end closes the connection.
pub(crate) struct BackendBody {
    body: ResponseBody,
    backend: Arc<Backend>,
    in_flight_slot: Option<OwnedSemaphorePermit>,
}

impl BackendBody {
    fn finish(&mut self) {
        if let Some(connection) = self.body.take_reusable() {
            self.backend.pool.put_back(connection);
        }
        self.in_flight_slot = None;
    }
}

impl Drop for BackendBody {
    fn drop(&mut self) {
        // An empty body may never be polled; it is complete all the same.
        if hyper::body::Body::is_end_stream(&self.body) {
            self.finish();
        }
    }
}

impl hyper::body::Body for BackendBody {
    type Data = Bytes;
    type Error = ExchangeError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        match &frame {
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Err(_))) => self.in_flight_slot = None,
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// How long [`RouterHandle::shutdown`] lets in-flight requests finish.
const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(5);

/// One backend address and whether health checks currently let it take traffic.
pub(crate) struct Backend {
    pub(crate) address: String,
    pub(crate) authority: Authority,
    pub(crate) healthy: AtomicBool,
    pool: ConnectionPool,
    /// Bounds requests in flight to this backend, when configured.
    in_flight: Option<Arc<Semaphore>>,
    in_flight_limit: Option<usize>,
}

impl Backend {
    pub(crate) fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }

    /// Requests now holding one of this backend's in-flight slots, when limited.
    pub(crate) fn in_flight(&self) -> Option<usize> {
        Some(self.in_flight_limit? - self.in_flight.as_ref()?.available_permits())
    }
}

/// The backends of one version, picked in rotation among the healthy ones.
pub(crate) struct Group {
    pub(crate) version: String,
    pub(crate) version_id: VersionId,
    pub(crate) backends: Box<[Arc<Backend>]>,
    next_backend: AtomicUsize,
}

impl Group {
    /// A healthy backend other than `failed`, for a request `failed` could not take.
    fn pick_healthy_except(&self, failed: &Arc<Backend>) -> Option<&Arc<Backend>> {
        let count = self.backends.len();
        let start = self.next_backend.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|offset| &self.backends[(start + offset) % count])
            .find(|backend| {
                !Arc::ptr_eq(backend, failed) && backend.healthy.load(Ordering::Relaxed)
            })
    }

    fn pick_healthy(&self) -> Option<&Arc<Backend>> {
        let count = self.backends.len();
        let start = self.next_backend.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|offset| &self.backends[(start + offset) % count])
            .find(|backend| backend.healthy.load(Ordering::Relaxed))
    }
}

/// State shared by every connection task, the health checkers and the handle.
pub(crate) struct Shared {
    pub(crate) groups: Box<[Group]>,
    versions: Vec<String>,
    pub(crate) table: ArcSwap<WeightTable>,
    bucketing: Bucketing,
    keyless_sequence: AtomicU64,
    request_timeout: Duration,
    pub(crate) telemetry: Arc<Telemetry>,
}

/// Namespace for starting a router.
pub struct Router;

impl Router {
    /// Validates `config`, binds the listeners, and starts serving on the current tokio
    /// runtime. The router runs until [`RouterHandle::shutdown`] or the runtime ends.
    pub async fn start(config: RouterConfig) -> Result<RouterHandle, Error> {
        config.validate()?;
        let versions: Vec<String> = config.groups.iter().map(|g| g.version.clone()).collect();
        let initial_weights = if config.weights.is_empty() {
            BTreeMap::from([(versions[0].clone(), 100)])
        } else {
            config.weights.clone()
        };
        let table = WeightTable::new(&versions, &initial_weights)?;
        let telemetry = Arc::new(Telemetry::new(versions.iter().cloned()));

        let mut groups = Vec::with_capacity(config.groups.len());
        for group in &config.groups {
            let mut backends = Vec::with_capacity(group.backends.len());
            for address in &group.backends {
                let bad = |reason: String| Error::Backend {
                    version: group.version.clone(),
                    address: address.clone(),
                    reason,
                };
                let authority: Authority = address.parse().map_err(|e| bad(format!("{e}")))?;
                if authority.port_u16().is_none() || authority.as_str().contains('@') {
                    return Err(bad("write it as host:port, e.g. 127.0.0.1:9001".into()));
                }
                backends.push(Arc::new(Backend {
                    address: address.clone(),
                    authority,
                    healthy: AtomicBool::new(true),
                    pool: ConnectionPool::new(
                        address.clone(),
                        config.timeouts.connect,
                        config.pool.idle_timeout,
                        config.pool.max_idle_per_backend,
                    ),
                    in_flight: config
                        .pool
                        .max_in_flight_per_backend
                        .map(|limit| Arc::new(Semaphore::new(limit))),
                    in_flight_limit: config.pool.max_in_flight_per_backend,
                }));
            }
            groups.push(Group {
                version: group.version.clone(),
                version_id: telemetry
                    .version_id(&group.version)
                    .expect("telemetry was built from the same version list"),
                backends: backends.into(),
                next_backend: AtomicUsize::new(0),
            });
        }

        let shared = Arc::new(Shared {
            groups: groups.into(),
            versions,
            table: ArcSwap::from_pointee(table),
            bucketing: config.bucketing.clone(),
            keyless_sequence: AtomicU64::new(0),
            request_timeout: config.timeouts.request,
            telemetry,
        });

        let listener = bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let admin_listener = match config.admin_listen {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let admin_addr = match &admin_listener {
            Some(listener) => Some(listener.local_addr()?),
            None => None,
        };

        let (shutdown_sender, shutdown) = watch::channel(false);
        let mut tasks = Vec::new();
        let proxy_shared = shared.clone();
        let max_head = config.max_request_head_bytes;
        tasks.push(tokio::spawn(serve(
            listener,
            shutdown.clone(),
            max_head,
            move |peer| {
                let shared = proxy_shared.clone();
                let peer_ip = peer.ip();
                hyper::service::service_fn(move |request| proxy(shared.clone(), peer_ip, request))
            },
        )));
        if let Some(listener) = admin_listener {
            let admin_shared = shared.clone();
            tasks.push(tokio::spawn(serve(
                listener,
                shutdown.clone(),
                max_head,
                move |_| {
                    let shared = admin_shared.clone();
                    hyper::service::service_fn(move |request| {
                        std::future::ready(Ok::<_, Infallible>(metrics::admin(&shared, &request)))
                    })
                },
            )));
        }
        if let Some(check) = &config.health_check {
            tasks.extend(health::spawn_checkers(&shared, check, shutdown.clone()));
        }
        tasks.push(tokio::spawn(tick_every_second(
            shared.clone(),
            shutdown.clone(),
        )));
        tracing::info!(%local_addr, ?admin_addr, "router started");

        Ok(RouterHandle {
            shared,
            local_addr,
            admin_addr,
            shutdown: shutdown_sender,
            tasks: std::sync::Mutex::new(tasks),
        })
    }
}

/// Health of one backend as the router sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendHealth {
    pub version: String,
    pub address: String,
    pub healthy: bool,
}

/// Steers a running router: weights, telemetry, health, shutdown.
pub struct RouterHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for RouterHandle {
    /// Dropping the handle stops the router as [`RouterHandle::shutdown`] does, in the
    /// background: in-flight requests still finish.
    fn drop(&mut self) {
        // An error only means every task has ended already.
        let _ = self.shutdown.send(true);
    }
}

impl std::fmt::Debug for RouterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterHandle")
            .field("local_addr", &self.local_addr)
            .field("admin_addr", &self.admin_addr)
            .field("weights", &self.weights())
            .finish_non_exhaustive()
    }
}

impl RouterHandle {
    /// Replaces the weight table in one atomic pointer swap: each request is routed by
    /// either the old table or the new one, never a mix, and none is dropped. Weights are
    /// percent and must sum to 100; versions not named get 0. Returns the weights now in
    /// force (every version, zeros included), as [`RouterHandle::weights`] would.
    pub fn set_weights(
        &self,
        wanted: &BTreeMap<String, u32>,
    ) -> Result<BTreeMap<String, u32>, Error> {
        let table = WeightTable::new(&self.shared.versions, wanted)?;
        let in_force = table.weights().clone();
        self.shared.table.store(Arc::new(table));
        tracing::info!(weights = ?in_force, "weights set");
        Ok(in_force)
    }

    /// The weights in force: every configured version, zeros included.
    pub fn weights(&self) -> BTreeMap<String, u32> {
        self.shared.table.load().weights().clone()
    }

    /// Per-version counters and histograms; see [`Telemetry::window`].
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.shared.telemetry
    }

    /// Version names in configured order (the baseline first).
    pub fn versions(&self) -> &[String] {
        &self.shared.versions
    }

    /// Every backend and whether it currently takes traffic.
    pub fn backend_health(&self) -> Vec<BackendHealth> {
        self.shared
            .groups
            .iter()
            .flat_map(|group| {
                group.backends.iter().map(|backend| BackendHealth {
                    version: group.version.clone(),
                    address: backend.address.clone(),
                    healthy: backend.healthy.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    /// The address clients connect to (the bound port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin address (`/healthz`, `/metrics`, `/weights`), if one was configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 5 s), and stops
    /// health checks; returns when all of that is done. Dropping the last handle does the
    /// same without waiting.
    pub async fn shutdown(&self) {
        // Receivers live in the tasks; an error only means they have all ended already.
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        );
        for task in tasks {
            let _ = task.await;
        }
        tracing::info!(local_addr = %self.local_addr, "router stopped");
    }
}

async fn bind(address: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(address)
        .await
        .map_err(|source| Error::Bind { address, source })
}

/// Accepts connections until shutdown, serving each with HTTP/1.1 or HTTP/2 (detected from
/// the first bytes), then waits for open connections to finish their requests.
async fn serve<S, F>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    max_request_head_bytes: usize,
    make_service: F,
) where
    F: Fn(SocketAddr) -> S,
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<RouterBody>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .max_buf_size(max_request_head_bytes.max(crate::config::MIN_REQUEST_HEAD_BYTES))
        // One write of head and body instead of a writev: see the pool's connections.
        .writev(false);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new());
    let (http1, http2) = (Arc::new(http1), Arc::new(http2));
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Latency matters more than packet count for a proxy.
                    let _ = stream.set_nodelay(true);
                    let watcher = graceful.watcher();
                    let service = make_service(peer);
                    let (http1, http2) = (http1.clone(), http2.clone());
                    tokio::spawn(async move {
                        // Each protocol's connection is boxed on its own, so an HTTP/1.1
                        // connection (the usual case) does not carry HTTP/2's larger state:
                        // about 2 KB less per open connection than one future for both.
                        let io = TokioIo::new(stream);
                        let connection: Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>> =
                            match tokio::time::timeout(PREFACE_WAIT, speaks_http2(io.inner())).await {
                                Ok(Ok(true)) => Box::pin(watcher.watch(http2.serve_connection(io, service))),
                                Ok(Ok(false)) => Box::pin(watcher.watch(http1.serve_connection(io, service))),
                                Ok(Err(_)) | Err(_) => return,
                            };
                        if let Err(error) = connection.await {
                            tracing::debug!(%peer, %error, "client connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(GRACEFUL_SHUTDOWN) => {
            tracing::warn!("connections still open after the graceful shutdown period");
        }
    }
}

/// Once a second: closes the telemetry's current second and expired idle connections.
/// How long a new connection may take to send its first bytes.
const PREFACE_WAIT: Duration = Duration::from_secs(30);

/// Whether the client opens with the HTTP/2 connection preface (cleartext HTTP/2 with prior
/// knowledge). Peeks without consuming, so the chosen server reads the bytes itself.
async fn speaks_http2(stream: &tokio::net::TcpStream) -> std::io::Result<bool> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut start = [0u8; PREFACE.len()];
    loop {
        let read = stream.peek(&mut start).await?;
        if read == 0 || start[..read] != PREFACE[..read] {
            return Ok(false);
        }
        if read == PREFACE.len() {
            return Ok(true);
        }
        // A preface split across packets: peeking again at once would see the same bytes.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn tick_every_second(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {
                shared.telemetry.tick();
                for backend in shared.groups.iter().flat_map(|group| group.backends.iter()) {
                    backend.pool.close_expired();
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Headers that describe one connection and must not be forwarded (RFC 9110 §7.6.1).
/// A `static`, not a `const`: a `const` array of header names is built and dropped again
/// at every use.
static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// The index in [`HOP_BY_HOP`] of `name`, if it is one of them.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    match name.as_str() {
        "connection" => Some(0),
        "keep-alive" => Some(1),
        "proxy-connection" => Some(2),
        "te" => Some(3),
        "trailer" => Some(4),
        "upgrade" => Some(5),
        _ => None,
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names, comparing without hashing, finds which are present: usually
    // none in a request and only `Connection: keep-alive` in a response, so most lookups
    // by name (each a hash and a probe) are skipped.
    let mut present = [false; HOP_BY_HOP.len()];
    for name in headers.keys() {
        if let Some(index) = hop_by_hop_index(name) {
            present[index] = true;
        }
    }
    if present[0]
        && let Some(connection) = headers.remove(header::CONNECTION)
    {
        // Headers named in `Connection` are hop-by-hop too. The usual tokens (`close`,
        // `keep-alive`) are skipped without building a header name.
        for token in crate::upstream::list_items(&connection) {
            if token.eq_ignore_ascii_case(b"close") || token.eq_ignore_ascii_case(b"keep-alive") {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token) {
                headers.remove(name);
            }
        }
    }
    for (name, present) in HOP_BY_HOP.iter().zip(present).skip(1) {
        if present {
            headers.remove(name);
        }
    }
}

fn bucket_for(shared: &Shared, request: &Request<Incoming>, peer: IpAddr) -> u32 {
    let key_bucket = match &shared.bucketing {
        Bucketing::None => None,
        Bucketing::Cookie(name) => cookie_value(request.headers(), name).map(bucket_of_key),
        Bucketing::Header(name) => request
            .headers()
            .get(name.as_str())
            .map(|value| bucket_of_key(value.as_bytes())),
        Bucketing::ClientIp => Some(match peer.to_canonical() {
            IpAddr::V4(ip) => bucket_of_key(&ip.octets()),
            IpAddr::V6(ip) => bucket_of_key(&ip.octets()),
        }),
    };
    // A request without the key is placed on its own, like with no bucketing.
    key_bucket.unwrap_or_else(|| {
        bucket_of_sequence(shared.keyless_sequence.fetch_add(1, Ordering::Relaxed))
    })
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|byte| *byte == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let equals = pair.iter().position(|byte| *byte == b'=')?;
            (pair[..equals].trim_ascii() == name.as_bytes()).then(|| {
                let value = pair[equals + 1..].trim_ascii();
                value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value)
            })
        })
}

fn router_response(status: StatusCode, message: &'static str) -> Response<RouterBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        message.as_bytes(),
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Recorded for a request whose client left before its body was whole (nginx's code).
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// The per-request path.
async fn proxy(
    shared: Arc<Shared>,
    peer: IpAddr,
    request: Request<Incoming>,
) -> Result<Response<RouterBody>, Infallible> {
    let started = Instant::now();
    let bucket = bucket_for(&shared, &request, peer);
    let group = &shared.groups[shared.table.load().group_for_bucket(bucket)];
    let Some(backend) = group.pick_healthy() else {
        shared.telemetry.record(
            group.version_id,
            Outcome::ProxyError(ProxyErrorKind::NoHealthyBackend),
            started.elapsed(),
        );
        return Ok(router_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "no healthy backend for this version\n",
        ));
    };

    let (mut parts, body) = request.into_parts();
    if parts.method == Method::CONNECT {
        shared
            .telemetry
            .record(group.version_id, Outcome::Response(405), started.elapsed());
        return Ok(router_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not proxied\n",
        ));
    }
    if !parts.headers.contains_key(header::HOST) {
        // HTTP/2 carries the host in `:authority`; HTTP/1.1 backends need `Host`.
        let host = match parts.uri.authority() {
            Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
            None => HeaderValue::from_str(backend.authority.as_str()).ok(),
        };
        if let Some(host) = host {
            parts.headers.insert(header::HOST, host);
        }
    }
    // The request line to the backend is HTTP/1.1 in origin form whatever the client spoke:
    // `upstream` writes it from the URI's path and query.
    strip_hop_by_hop(&mut parts.headers);

    let forwarded = async {
        let mut backend = backend;
        let mut request = (parts, body);
        let mut moved_once = false;
        loop {
            let in_flight_slot = match &backend.in_flight {
                // The semaphore is never closed, so acquiring only waits.
                Some(slots) => slots.clone().acquire_owned().await.ok(),
                None => None,
            };
            match backend.pool.send(request.0, request.1).await {
                // Unsent because the backend cannot be reached (down since the last health
                // check): it goes to another backend of the same version, once.
                Err(PoolError::Connect(reason, unsent)) if !moved_once => {
                    match group.pick_healthy_except(backend) {
                        Some(other) => {
                            tracing::debug!(backend = %backend.address, %reason, to = %other.address, "backend unreachable, request moved");
                            backend = other;
                            request = *unsent;
                            moved_once = true;
                        }
                        None => {
                            return (
                                Err(PoolError::Connect(reason, unsent)),
                                in_flight_slot,
                                backend,
                            );
                        }
                    }
                }
                exchange => return (exchange, in_flight_slot, backend),
            }
        }
    };
    let (outcome, response) = match tokio::time::timeout(shared.request_timeout, forwarded).await {
        Ok((Ok(response), in_flight_slot, backend)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            (
                Outcome::Response(parts.status.as_u16()),
                Response::from_parts(
                    parts,
                    Either::Left(BackendBody {
                        body,
                        backend: backend.clone(),
                        in_flight_slot,
                    }),
                ),
            )
        }
        Ok((Err(PoolError::Connect(error, _)), _, backend)) => {
            tracing::debug!(backend = %backend.address, %error, "connect to backend failed");
            (
                Outcome::ProxyError(ProxyErrorKind::Connect),
                router_response(StatusCode::BAD_GATEWAY, "backend unreachable\n"),
            )
        }
        Ok((Err(PoolError::Backend(ExchangeError::RequestBody(error))), _, backend)) => {
            // The client went away (or sent a broken body) before its request was whole:
            // not the version's failure. Counted as nginx's 499 "client closed request",
            // a 4xx, so a canary is not rolled back for its users' aborted uploads.
            tracing::debug!(backend = %backend.address, %error, "client request body ended early");
            (
                Outcome::Response(CLIENT_CLOSED_REQUEST),
                router_response(StatusCode::BAD_REQUEST, "request body incomplete\n"),
            )
        }
        Ok((Err(PoolError::Backend(error)), _, backend)) => {
            tracing::debug!(backend = %backend.address, %error, "backend request failed");
            (
                Outcome::ProxyError(ProxyErrorKind::Backend),
                router_response(StatusCode::BAD_GATEWAY, "backend failed\n"),
            )
        }
        Err(_elapsed) => (
            Outcome::ProxyError(ProxyErrorKind::Timeout),
            router_response(StatusCode::GATEWAY_TIMEOUT, "backend timed out\n"),
        ),
    };
    shared
        .telemetry
        .record(group.version_id, outcome, started.elapsed());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_value_finds_the_named_cookie_only() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; user=\"u-42\" ; b=2"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("other=9"));
        assert_eq!(cookie_value(&headers, "user"), Some(&b"u-42"[..]));
        assert_eq!(cookie_value(&headers, "other"), Some(&b"9"[..]));
        assert_eq!(cookie_value(&headers, "use"), None);
        assert_eq!(cookie_value(&HeaderMap::new(), "user"), None);
    }

    #[test]
    fn hop_by_hop_headers_and_those_named_in_connection_are_stripped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn hop_by_hop_names_are_found_at_their_index() {
        for (index, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name), Some(index), "{name}");
        }
        assert_eq!(hop_by_hop_index(&header::HOST), None);
        assert_eq!(
            hop_by_hop_index(&HeaderName::from_static("x-upgrade")),
            None
        );
    }

    #[test]
    fn every_hop_by_hop_header_is_stripped_with_all_its_values() {
        let mut headers = HeaderMap::new();
        for name in ["te", "trailer", "upgrade", "proxy-connection", "keep-alive"] {
            headers.append(name, HeaderValue::from_static("a"));
            headers.append(name, HeaderValue::from_static("b"));
        }
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.keys().collect::<Vec<_>>(), ["x-kept"]);

        let mut untouched = HeaderMap::new();
        untouched.insert(header::HOST, HeaderValue::from_static("example"));
        untouched.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let before = untouched.clone();
        strip_hop_by_hop(&mut untouched);
        assert_eq!(untouched, before);
    }
}
