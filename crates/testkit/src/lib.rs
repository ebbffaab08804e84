//! Real programs for tests and benchmarks: HAProxy, nginx, Prometheus and Alertmanager
//! started with generated configs in a temporary directory on free loopback ports, small
//! HTTP backends that keep an access log, and a steady keep-alive load.
//!
//! Every daemon is stopped when its handle is dropped. A program that is not installed is
//! an error naming the Debian package, never a silent skip.

pub mod alertmanager;
pub mod backend;
pub mod haproxy;
pub mod http;
pub mod load;
pub mod nginx;
pub mod process;
pub mod prometheus;

pub use alertmanager::{Alertmanager, AlertmanagerSpec};
pub use backend::{Backend, Fault, Hit};
pub use haproxy::{Haproxy, HaproxyServer, HaproxySpec};
pub use load::{Load, LoadSpec, LoadStats};
pub use nginx::{Nginx, NginxSpec};
pub use process::{Daemon, free_port, program};
pub use prometheus::{Prometheus, PrometheusSpec, ScrapeTarget};

/// Why a program or helper could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "`{program}` is not installed (looked in PATH, /usr/sbin, /usr/bin, /usr/local/bin); install the Debian package `{package}` (scripts/test does this when run as root)"
    )]
    NotInstalled { program: String, package: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} did not become ready within {waited:?}; its output:\n{output}")]
    NotReady {
        program: String,
        waited: std::time::Duration,
        output: String,
    },
    #[error("{program} rejected its configuration:\n{output}")]
    BadConfig { program: String, output: String },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
