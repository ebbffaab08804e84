//! A steady load of simulated users through the router: each user keeps one session
//! cookie, so bucketing sends them to the same version as the weight rises.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What the users saw, counted as they go.
#[derive(Default)]
pub struct LoadCounters {
    pub requests: AtomicU64,
    pub ok: AtomicU64,
    pub server_errors: AtomicU64,
    /// Requests that got no HTTP answer at all (connection refused or reset, timeout).
    pub failed: AtomicU64,
    pub served_by_canary: AtomicU64,
}

pub struct Load {
    pub counters: Arc<LoadCounters>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `users` sessions, each sending a request every `pause`.
    pub fn start(target: String, users: usize, pause: Duration) -> anyhow::Result<Load> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(users)
            .build()?;
        let counters = Arc::new(LoadCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..users)
            .map(|user| {
                let (client, counters, stop, url) = (
                    client.clone(),
                    counters.clone(),
                    stop.clone(),
                    target.clone(),
                );
                let cookie = format!("aivo_session=user-{user:04}");
                tokio::spawn(async move {
                    // Spread the users over the pause so the load is even.
                    tokio::time::sleep(pause.mul_f64(user as f64 / users.max(1) as f64)).await;
                    let mut tick = tokio::time::interval(pause);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        counters.requests.fetch_add(1, Ordering::Relaxed);
                        match client.get(&url).header("cookie", &cookie).send().await {
                            Ok(response) => {
                                let status = response.status();
                                let body = response.text().await.unwrap_or_default();
                                if body.contains("\"canary\"") {
                                    counters.served_by_canary.fetch_add(1, Ordering::Relaxed);
                                }
                                if status.is_server_error() {
                                    counters.server_errors.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    counters.ok.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Err(_) => {
                                counters.failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        Ok(Load {
            counters,
            stop,
            tasks,
        })
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
