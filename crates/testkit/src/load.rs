//! A steady client load over keep-alive connections, counting answers per version (the
//! backend's `x-version` header) and every request that got no answer at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::http::Connection;

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: SocketAddr,
    /// Keep-alive connections, each sending one request at a time.
    pub connections: usize,
    /// Pause between two requests on one connection (0 = as fast as possible).
    pub pause: Duration,
    pub path: String,
}

impl LoadSpec {
    pub fn new(target: SocketAddr) -> LoadSpec {
        LoadSpec {
            target,
            connections: 4,
            pause: Duration::from_millis(10),
            path: "/".to_string(),
        }
    }
}

/// Answers from one version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionCounts {
    pub ok: u64,
    pub server_errors: u64,
    pub other: u64,
}

#[derive(Debug, Clone, Default)]
pub struct LoadStats {
    /// Keyed by the `x-version` header; `-` when the answer came from the router itself.
    pub by_version: BTreeMap<String, VersionCounts>,
    /// Requests that got no HTTP answer (connection reset or closed, timeout).
    pub lost: u64,
    /// When each lost request happened, and why.
    pub lost_at: Vec<(Instant, String)>,
    pub answered: u64,
}

impl LoadStats {
    pub fn version(&self, name: &str) -> VersionCounts {
        self.by_version.get(name).copied().unwrap_or_default()
    }
}

/// A running load; it stops when dropped.
pub struct Load {
    stats: Arc<Mutex<LoadStats>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts the load on the current tokio runtime.
    pub fn start(spec: LoadSpec) -> Load {
        let stats = Arc::new(Mutex::new(LoadStats::default()));
        let tasks = (0..spec.connections.max(1))
            .map(|_| tokio::spawn(drive(spec.clone(), stats.clone())))
            .collect();
        Load { stats, tasks }
    }

    pub fn stats(&self) -> LoadStats {
        lock(&self.stats).clone()
    }

    /// Stops sending and returns the final counts.
    pub fn stop(self) -> LoadStats {
        for task in &self.tasks {
            task.abort();
        }
        lock(&self.stats).clone()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only counters live behind this lock; they stay meaningful after a panic elsewhere.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn drive(spec: LoadSpec, stats: Arc<Mutex<LoadStats>>) {
    let mut connection: Option<Connection> = None;
    loop {
        if connection.is_none() {
            match Connection::connect(spec.target).await {
                Ok(fresh) => connection = Some(fresh),
                Err(error) => {
                    record_loss(&stats, format!("connect: {error}"));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let answer = tokio::time::timeout(Duration::from_secs(5), conn.get(&spec.path)).await;
        match answer {
            Ok(Ok((response, reusable))) => {
                let version = response.header("x-version").unwrap_or("-").to_string();
                let mut stats = lock(&stats);
                stats.answered += 1;
                let counts = stats.by_version.entry(version).or_default();
                match response.status {
                    200..=399 => counts.ok += 1,
                    500..=599 => counts.server_errors += 1,
                    _ => counts.other += 1,
                }
                drop(stats);
                if !reusable {
                    connection = None;
                }
            }
            Ok(Err(error)) => {
                record_loss(&stats, error.to_string());
                connection = None;
            }
            Err(_) => {
                record_loss(&stats, "no answer within 5 s".to_string());
                connection = None;
            }
        }
        if !spec.pause.is_zero() {
            tokio::time::sleep(spec.pause).await;
        }
    }
}

fn record_loss(stats: &Mutex<LoadStats>, why: String) {
    let mut stats = lock(stats);
    stats.lost += 1;
    stats.lost_at.push((Instant::now(), why));
}
