//! golive's built-in traffic router (data plane), its telemetry, and a demo service.
//!
//! [`Router::start`] runs an HTTP/1.1 and cleartext HTTP/2 reverse proxy that splits
//! traffic between backend groups, one per version (`stable`, `canary`, …), by weights
//! that [`RouterHandle::set_weights`] replaces atomically at run time. A request is placed
//! by a bucketing key (cookie, header, client address; see [`routing`]) so a user stays on
//! the same version as its weight rises and goes back to the baseline on rollback.
//! Per-version telemetry ([`telemetry`]) is recorded without locks and served on the admin
//! listener's `/metrics`; [`RouterHandle::telemetry`] gives windowed rates and quantiles.
//!
//! [`demo_service`] is a small HTTP service to run two versions locally, one of which can
//! be told to fail or slow down.
//!
//! ```no_run
//! # async fn example() -> Result<(), proxy::Error> {
//! use proxy::{BackendGroup, Router, RouterConfig};
//! let config = RouterConfig::new(
//!     "127.0.0.1:8080".parse().unwrap(),
//!     vec![
//!         BackendGroup::new("stable", ["127.0.0.1:9001"]),
//!         BackendGroup::new("canary", ["127.0.0.1:9002"]),
//!     ],
//! );
//! let router = Router::start(config).await?;
//! router.set_weights(&[("stable".to_string(), 95), ("canary".to_string(), 5)].into())?;
//! assert_eq!(router.weights()["canary"], 5);
//! router.shutdown().await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod demo_service;
mod health;
mod metrics;
mod pool;
mod router;
pub mod routing;
pub mod telemetry;
mod upstream;

pub use config::{BackendGroup, Bucketing, HealthCheckConfig, PoolConfig, RouterConfig, Timeouts};
pub use demo_service::{Degradation, DemoConfig, DemoHandle, DemoService, run_demo_service};
pub use router::{BackendHealth, Router, RouterHandle};
pub use telemetry::{Outcome, ProxyErrorKind, Telemetry, WindowStats};

/// Everything that can go wrong starting or steering the router or the demo service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid router config: {0}")]
    Config(String),
    #[error("invalid weights: {0}")]
    Weights(String),
    #[error("backend address {address:?} of version {version:?} is not host:port: {reason}")]
    Backend {
        version: String,
        address: String,
        reason: String,
    },
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open access log {path}: {source}")]
    AccessLog {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
