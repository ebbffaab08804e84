//! HAProxy with one HTTP frontend, one backend of weighted servers, an admin runtime API
//! (unix socket and TCP) and its built-in Prometheus exporter.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::Error;
use crate::process::{self, Daemon, accepts, free_addr};

#[derive(Debug, Clone)]
pub struct HaproxyServer {
    pub name: String,
    pub addr: SocketAddr,
    /// Initial weight, 0–256.
    pub weight: u16,
}

#[derive(Debug, Clone)]
pub struct HaproxySpec {
    /// Name of the backend (the `proxy` label in the exporter's metrics).
    pub backend: String,
    pub servers: Vec<HaproxyServer>,
    /// Extra lines for the `global` section (e.g. `nbthread 1`).
    pub global_extra: String,
}

impl HaproxySpec {
    pub fn new(backend: &str, servers: Vec<HaproxyServer>) -> HaproxySpec {
        HaproxySpec {
            backend: backend.to_string(),
            servers,
            global_extra: String::new(),
        }
    }
}

/// A running HAProxy; stopped on drop.
pub struct Haproxy {
    /// Where clients send traffic.
    pub frontend: SocketAddr,
    /// The Prometheus exporter: `http://<metrics>/metrics`.
    pub metrics: SocketAddr,
    /// The runtime API as a unix socket (admin level).
    pub socket: PathBuf,
    /// The runtime API on TCP (admin level).
    pub runtime_tcp: SocketAddr,
    pub config: PathBuf,
    daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    pub async fn start(spec: &HaproxySpec) -> Result<Haproxy, Error> {
        let program = process::program("haproxy", &[], "haproxy")?;
        let dir = tempfile::Builder::new()
            .prefix("haproxy-")
            .tempdir()
            .map_err(|e| Error::io("create a temporary directory", e))?;
        let frontend = free_addr();
        let metrics = free_addr();
        let runtime_tcp = free_addr();
        let socket = dir.path().join("admin.sock");
        let servers: String = spec
            .servers
            .iter()
            .map(|server| {
                format!(
                    "    server {} {} weight {}\n",
                    server.name, server.addr, server.weight
                )
            })
            .collect();
        let config_text = format!(
            "global
    stats socket {socket} mode 600 level admin
    stats socket ipv4@{runtime_tcp} level admin
    stats timeout 30s
    maxconn 4096
{global_extra}
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

frontend main
    bind {frontend}
    default_backend {backend}

frontend exporter
    bind {metrics}
    http-request use-service prometheus-exporter if {{ path /metrics }}

backend {backend}
    balance roundrobin
{servers}",
            socket = socket.display(),
            global_extra = spec.global_extra,
            backend = spec.backend,
        );
        let config = dir.path().join("haproxy.cfg");
        process::write_file(&config, &config_text)?;
        let config_arg = config.display().to_string();
        process::check_config(
            "haproxy",
            &program,
            &["-c".into(), "-q".into(), "-f".into(), config_arg.clone()],
        )?;
        let mut daemon = Daemon::spawn(
            "haproxy",
            &program,
            &["-db".into(), "-f".into(), config_arg],
            &dir.path().join("haproxy.out"),
        )?;
        let socket_path = socket.clone();
        daemon
            .wait_ready(Duration::from_secs(10), || {
                let socket_path = socket_path.clone();
                async move {
                    socket_path.exists()
                        && accepts(frontend).await
                        && accepts(metrics).await
                        && accepts(runtime_tcp).await
                }
            })
            .await?;
        Ok(Haproxy {
            frontend,
            metrics,
            socket,
            runtime_tcp,
            config,
            daemon,
            _dir: dir,
        })
    }

    /// `unix:<socket>`, the form golive's HAProxy router takes.
    pub fn runtime_api(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// What HAProxy printed so far.
    pub fn output(&self) -> String {
        self.daemon.output()
    }
}
