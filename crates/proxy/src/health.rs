//! Active health checks: one task per backend sends `GET <path>` every interval and moves
//! the backend out of rotation after consecutive failures, and back after successes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::{Request, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::HealthCheckConfig;
use crate::router::{Backend, Shared};

pub(crate) fn spawn_checkers(
    shared: &Arc<Shared>,
    config: &HealthCheckConfig,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(config.timeout));
    // Checks reuse one idle connection per backend rather than reconnecting each time.
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .pool_timer(TokioTimer::new())
        .build(connector);
    shared
        .groups
        .iter()
        .flat_map(|group| {
            group.backends.iter().map(|backend| {
                tokio::spawn(check_backend(
                    client.clone(),
                    group.version.clone(),
                    backend.clone(),
                    config.clone(),
                    shutdown.clone(),
                ))
            })
        })
        .collect()
}

async fn check_backend(
    client: Client<HttpConnector, Empty<Bytes>>,
    version: String,
    backend: Arc<Backend>,
    config: HealthCheckConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let uri: Uri = match format!("http://{}{}", backend.authority, config.path).parse() {
        Ok(uri) => uri,
        Err(error) => {
            // Both parts were validated at start, so this cannot happen; stay healthy.
            tracing::error!(%error, backend = %backend.address, "health check URI invalid");
            return;
        }
    };
    let mut interval = tokio::time::interval(config.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures_in_a_row = 0u32;
    let mut successes_in_a_row = 0u32;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        let request = Request::get(uri.clone())
            .header(header::USER_AGENT, "golive-health-check")
            .body(Empty::new());
        let Ok(request) = request else { return };
        let passed = match tokio::time::timeout(config.timeout, client.request(request)).await {
            Ok(Ok(response)) => {
                let status = response.status();
                status.is_success() || status.is_redirection()
            }
            _ => false,
        };
        let healthy = backend.healthy.load(Ordering::Relaxed);
        if passed {
            failures_in_a_row = 0;
            successes_in_a_row = successes_in_a_row.saturating_add(1);
            if !healthy && successes_in_a_row >= config.healthy_after {
                backend.healthy.store(true, Ordering::Relaxed);
                tracing::info!(%version, backend = %backend.address, "backend healthy again");
            }
        } else {
            successes_in_a_row = 0;
            failures_in_a_row = failures_in_a_row.saturating_add(1);
            if healthy && failures_in_a_row >= config.unhealthy_after {
                backend.healthy.store(false, Ordering::Relaxed);
                tracing::warn!(%version, backend = %backend.address, "backend unhealthy, out of rotation");
            }
        }
    }
}
