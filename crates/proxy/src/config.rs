//! The router's configuration: listeners, backend groups per version, bucketing key,
//! timeouts, connection pool and health checks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// Everything [`crate::Router::start`] needs.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Where clients connect (HTTP/1.1 and cleartext HTTP/2 on one port). Port 0 picks one.
    pub listen: SocketAddr,
    /// Where `/healthz`, `/metrics` and `/weights` are served; `None` serves no admin port.
    pub admin_listen: Option<SocketAddr>,
    /// Backend groups, one per version. The first group is the baseline (usually
    /// `stable`): it takes the buckets the other groups leave (see [`crate::routing`]).
    pub groups: Vec<BackendGroup>,
    /// Initial weights in percent, summing to 100; versions not named get 0. Empty means
    /// 100 % to the first group.
    pub weights: BTreeMap<String, u32>,
    /// What ties a user to a version.
    pub bucketing: Bucketing,
    pub timeouts: Timeouts,
    pub pool: PoolConfig,
    /// Active health checks; `None` treats every backend as healthy forever.
    pub health_check: Option<HealthCheckConfig>,
    /// Largest HTTP/1.1 request head (request line and headers) accepted from a client;
    /// a larger one is answered 431. Each client connection's read buffer grows to this
    /// size, so it is also memory per connection: 8192 (the least allowed) saves about
    /// 8 KB per open connection against the default 16384.
    pub max_request_head_bytes: usize,
}

/// The smallest `max_request_head_bytes` the HTTP/1.1 server supports.
pub const MIN_REQUEST_HEAD_BYTES: usize = 8192;

impl RouterConfig {
    /// A config with defaults for everything but the listener and the groups.
    pub fn new(listen: SocketAddr, groups: Vec<BackendGroup>) -> Self {
        RouterConfig {
            listen,
            admin_listen: None,
            groups,
            weights: BTreeMap::new(),
            bucketing: Bucketing::None,
            timeouts: Timeouts::default(),
            pool: PoolConfig::default(),
            health_check: Some(HealthCheckConfig::default()),
            max_request_head_bytes: 16 * 1024,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.groups.is_empty() {
            return Err(Error::Config("at least one backend group is needed".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for group in &self.groups {
            if group.version.is_empty() {
                return Err(Error::Config(
                    "a backend group has an empty version name".into(),
                ));
            }
            if !seen.insert(group.version.as_str()) {
                return Err(Error::Config(format!(
                    "version {:?} has two backend groups; merge their backends into one",
                    group.version
                )));
            }
            if group.backends.is_empty() {
                return Err(Error::Config(format!(
                    "version {:?} has no backend; give it at least one host:port",
                    group.version
                )));
            }
        }
        if self.max_request_head_bytes < MIN_REQUEST_HEAD_BYTES {
            return Err(Error::Config(format!(
                "max_request_head_bytes is {}; it must be at least {MIN_REQUEST_HEAD_BYTES}",
                self.max_request_head_bytes
            )));
        }
        if self.pool.max_in_flight_per_backend == Some(0) {
            return Err(Error::Config(
                "max_in_flight_per_backend must be at least 1 (or none for no limit)".into(),
            ));
        }
        if self.timeouts.connect.is_zero() || self.timeouts.request.is_zero() {
            return Err(Error::Config("timeouts must be longer than zero".into()));
        }
        if let Some(check) = &self.health_check {
            if check.interval.is_zero() || check.timeout.is_zero() {
                return Err(Error::Config(
                    "health check interval and timeout must be longer than zero".into(),
                ));
            }
            if !check.path.starts_with('/') {
                return Err(Error::Config(format!(
                    "health check path {:?} must start with '/'",
                    check.path
                )));
            }
        }
        Ok(())
    }
}

/// The backends serving one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendGroup {
    /// Version name as used in weights and telemetry: `stable`, `canary`, `v2`, …
    pub version: String,
    /// `host:port` of each backend, spoken to in HTTP/1.1 over a keep-alive pool.
    pub backends: Vec<String>,
}

impl BackendGroup {
    pub fn new<S: Into<String>>(
        version: impl Into<String>,
        backends: impl IntoIterator<Item = S>,
    ) -> Self {
        BackendGroup {
            version: version.into(),
            backends: backends.into_iter().map(Into::into).collect(),
        }
    }
}

/// What a request is bucketed on. Written in configs as `cookie:NAME`, `header:NAME`,
/// `client_ip` or `none`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Bucketing {
    /// No key: every request is placed on its own, by a deterministic weighted rotation.
    #[default]
    None,
    /// The value of this cookie.
    Cookie(String),
    /// The value of this request header (name matched case-insensitively).
    Header(String),
    /// The client's IP address (the TCP peer; no forwarding header is trusted).
    ClientIp,
}

impl FromStr for Bucketing {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let bad = || {
            Error::Config(format!(
                "bucketing key {text:?} is not one of `cookie:NAME`, `header:NAME`, \
                 `client_ip`, `none`"
            ))
        };
        match text.split_once(':') {
            Some(("cookie", name)) if !name.is_empty() => Ok(Bucketing::Cookie(name.into())),
            Some(("header", name)) if !name.is_empty() => {
                hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
                Ok(Bucketing::Header(name.to_ascii_lowercase()))
            }
            Some(_) => Err(bad()),
            None => match text {
                "client_ip" => Ok(Bucketing::ClientIp),
                "none" | "" => Ok(Bucketing::None),
                _ => Err(bad()),
            },
        }
    }
}

impl std::fmt::Display for Bucketing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bucketing::None => f.write_str("none"),
            Bucketing::Cookie(name) => write!(f, "cookie:{name}"),
            Bucketing::Header(name) => write!(f, "header:{name}"),
            Bucketing::ClientIp => f.write_str("client_ip"),
        }
    }
}

/// Timeouts towards backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect to a backend; past it the request fails with 502 (`connect`).
    pub connect: Duration,
    /// From sending the request to receiving the response headers; past it the request
    /// fails with 504 (`timeout`). The body then streams without a deadline.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(30),
        }
    }
}

/// The keep-alive pool of connections to backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle connections kept per backend.
    pub max_idle_per_backend: usize,
    /// How long an idle connection is kept before it is closed.
    pub idle_timeout: Duration,
    /// At most this many requests in flight to one backend (so about as many connections);
    /// more wait in arrival order, within the request timeout (then 504). The limit keeps
    /// a slow version from piling up connections, file descriptors and memory that the
    /// other versions need, and queues at the router rather than overloading the server.
    /// Default 128: at 50 ms per request that is 2,560 requests/s per backend address;
    /// raise it for slow backends or when one address is itself a load balancer. `None`:
    /// no limit, one connection per concurrent request (HAProxy's and nginx's default).
    pub max_in_flight_per_backend: Option<usize>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle_per_backend: 1024,
            idle_timeout: Duration::from_secs(60),
            max_in_flight_per_backend: Some(128),
        }
    }
}

/// Active health checks: `GET path` on every backend every `interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Path to request, e.g. `/health`. A 2xx or 3xx answer is healthy.
    pub path: String,
    pub interval: Duration,
    /// A check not answered within this is a failure.
    pub timeout: Duration,
    /// Consecutive failures that take a healthy backend out of rotation.
    pub unhealthy_after: u32,
    /// Consecutive successes that put an unhealthy backend back.
    pub healthy_after: u32,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            path: "/health".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            unhealthy_after: 2,
            healthy_after: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucketing_parses_every_documented_form() {
        assert_eq!(
            "cookie:user".parse::<Bucketing>().unwrap(),
            Bucketing::Cookie("user".into())
        );
        assert_eq!(
            "header:X-User".parse::<Bucketing>().unwrap(),
            Bucketing::Header("x-user".into())
        );
        assert_eq!(
            "client_ip".parse::<Bucketing>().unwrap(),
            Bucketing::ClientIp
        );
        assert_eq!("none".parse::<Bucketing>().unwrap(), Bucketing::None);
        for bad in ["cookie:", "header:bad header", "ip", "query:x"] {
            let error = bad.parse::<Bucketing>().unwrap_err().to_string();
            assert!(error.contains("cookie:NAME"), "{error}");
        }
    }
}
