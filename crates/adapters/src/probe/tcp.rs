//! The TCP probe: a connection to `host:port` must be accepted within the timeout.

use std::time::{Duration, Instant};

use plan::model::TcpCheck;
use serde_json::json;

use super::ProbeOutcome;
use crate::command::fmt_duration;

pub(super) async fn probe(check: &TcpCheck, timeout: Duration) -> ProbeOutcome {
    let address = check.address.value.as_str();
    let started = Instant::now();
    let attempt = tokio::time::timeout(timeout, async {
        let targets: Vec<std::net::SocketAddr> = tokio::net::lookup_host(address)
            .await
            .map_err(|e| format!("cannot resolve `{address}`: {e}"))?
            .collect();
        let mut last_error = format!("`{address}` resolves to no address");
        for target in targets {
            match tokio::net::TcpStream::connect(target).await {
                Ok(_) => return Ok(target),
                Err(e) => last_error = format!("{target}: {e}"),
            }
        }
        Err(last_error)
    })
    .await;
    let took = started.elapsed();
    let detail = |connected: Option<String>, error: Option<String>| json!({"address": address, "connected": connected, "error": error, "duration_ms": took.as_millis() as u64});
    match attempt {
        Ok(Ok(target)) => ProbeOutcome::pass(
            format!(
                "connected to {address} ({target}) in {}",
                fmt_duration(took)
            ),
            detail(Some(target.to_string()), None),
        ),
        Ok(Err(error)) => ProbeOutcome::fail(
            format!("cannot connect to {address}: {error}"),
            detail(None, Some(error)),
        ),
        Err(_) => {
            let error = format!("no connection within {}", fmt_duration(timeout));
            ProbeOutcome::fail(
                format!("cannot connect to {address}: {error}"),
                detail(None, Some(error)),
            )
        }
    }
}
