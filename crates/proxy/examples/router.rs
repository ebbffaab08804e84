//! Runs the built-in router as a standalone process, for benchmarks and manual tests.
//!
//! ```text
//! cargo run --release -p proxy --example router -- \
//!     --listen 127.0.0.1:8080 --admin 127.0.0.1:8081 \
//!     --group stable=127.0.0.1:9001,127.0.0.1:9002 --group canary=127.0.0.1:9003 \
//!     --weights stable=95,canary=5 [--key cookie:user] [--threads 1] \
//!     [--health-path /health | --no-health-check] [--max-in-flight N|none] \
//!     [--max-head BYTES] [--event-interval N]
//! ```
//!
//! `--threads 1` runs a single-threaded runtime (the setting for a router pinned to one
//! core); the default is one worker per available core.
//!
//! The runtime polls for I/O events after every 256 task polls instead of tokio's default
//! 61 (`--event-interval N` changes it). Under load the ready connections are then served
//! in rounds as large as what is ready, as HAProxy's event loop does: the requests read in
//! one round go out to the backends together, and the responses to the clients together,
//! so each peer is handed more work per wake-up. Waking a peer that sleeps is among the
//! most expensive things a proxy does per request (on a virtual machine, an interrupt to
//! another CPU); measured: 0.06 instead of 0.15 wake-ups per request.

use std::collections::BTreeMap;
use std::process::ExitCode;

use proxy::{BackendGroup, Router, RouterConfig};

const USAGE: &str = "usage: router --listen ADDR [--admin ADDR] --group VERSION=HOST:PORT[,HOST:PORT…]… \
[--weights VERSION=PERCENT,…] [--key cookie:NAME|header:NAME|client_ip|none] [--threads N] \
[--health-path PATH | --no-health-check] [--max-in-flight N|none] [--max-head BYTES] \
[--event-interval N]";

/// Task polls between two polls for I/O events: see the module docs.
const DEFAULT_EVENT_INTERVAL: u32 = 256;

struct Args {
    config: RouterConfig,
    threads: usize,
    event_interval: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut admin = None;
    let mut groups = Vec::new();
    let mut weights = BTreeMap::new();
    let mut key = proxy::Bucketing::None;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut health_path = Some("/health".to_string());
    let mut max_in_flight = proxy::PoolConfig::default().max_in_flight_per_backend;
    let mut max_head = None;
    let mut event_interval = DEFAULT_EVENT_INTERVAL;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = Some(value()?.parse().map_err(|e| format!("--listen: {e}"))?),
            "--admin" => admin = Some(value()?.parse().map_err(|e| format!("--admin: {e}"))?),
            "--group" => {
                let text = value()?;
                let (version, backends) = text
                    .split_once('=')
                    .ok_or(format!("--group {text}: write VERSION=HOST:PORT,…"))?;
                groups.push(BackendGroup::new(version, backends.split(',')));
            }
            "--weights" => {
                for pair in value()?.split(',') {
                    let (version, percent) = pair
                        .split_once('=')
                        .ok_or(format!("--weights {pair}: write VERSION=PERCENT"))?;
                    let percent = percent
                        .parse()
                        .map_err(|e| format!("--weights {pair}: {e}"))?;
                    weights.insert(version.to_string(), percent);
                }
            }
            "--key" => key = value()?.parse().map_err(|e| format!("--key: {e}"))?,
            "--threads" => threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--health-path" => health_path = Some(value()?),
            "--no-health-check" => health_path = None,
            "--max-in-flight" => {
                let text = value()?;
                max_in_flight = match text.as_str() {
                    "none" => None,
                    number => Some(
                        number
                            .parse()
                            .map_err(|e| format!("--max-in-flight: {e}"))?,
                    ),
                }
            }
            "--max-head" => {
                max_head = Some(value()?.parse().map_err(|e| format!("--max-head: {e}"))?)
            }
            "--event-interval" => {
                event_interval = value()?
                    .parse()
                    .map_err(|e| format!("--event-interval: {e}"))?
            }
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let listen = listen.ok_or(format!("--listen is required\n{USAGE}"))?;
    let mut config = RouterConfig::new(listen, groups);
    config.admin_listen = admin;
    config.weights = weights;
    config.bucketing = key;
    config.pool.max_in_flight_per_backend = max_in_flight;
    if let Some(max_head) = max_head {
        config.max_request_head_bytes = max_head;
    }
    config.health_check = health_path.map(|path| proxy::HealthCheckConfig {
        path,
        ..Default::default()
    });
    Ok(Args {
        config,
        threads: threads.max(1),
        event_interval: event_interval.max(1),
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .event_interval(args.event_interval)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .event_interval(args.event_interval)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let router = match Router::start(args.config).await {
            Ok(router) => router,
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "router listening on {} (admin {:?}), weights {:?}",
            router.local_addr(),
            router.admin_addr(),
            router.weights()
        );
        if let Err(error) = tokio::signal::ctrl_c().await {
            eprintln!("cannot wait for ctrl-c: {error}");
        }
        router.shutdown().await;
        ExitCode::SUCCESS
    })
}
