//! Helpers shared by the router's integration tests: demo backends, a router in front of
//! them, and an HTTP client (HTTP/1.1 or HTTP/2) that returns status and body.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use proxy::{BackendGroup, DemoConfig, DemoHandle, DemoService, RouterConfig};

pub type TestClient = Client<HttpConnector, Empty<Bytes>>;

/// A demo service for `version` on a free loopback port.
pub async fn backend(version: &str) -> DemoHandle {
    DemoService::start(DemoConfig::new("127.0.0.1:0".parse().unwrap(), version))
        .await
        .expect("a demo service binds a free loopback port")
}

/// A router config listening on a free loopback port (admin too), one group per entry.
pub fn router_config(groups: &[(&str, &[&DemoHandle])]) -> RouterConfig {
    let groups = groups
        .iter()
        .map(|(version, handles)| {
            BackendGroup::new(
                *version,
                handles.iter().map(|handle| handle.addr().to_string()),
            )
        })
        .collect();
    let mut config = RouterConfig::new("127.0.0.1:0".parse().unwrap(), groups);
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    config
}

pub fn weights(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build_http()
}

pub fn h2_client() -> TestClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .build_http()
}

/// GETs `url` with extra headers; returns status and body, or panics naming the URL.
pub async fn get(client: &TestClient, url: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = Request::get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Empty::new()).expect("test request is valid");
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .unwrap_or_else(|_| panic!("GET {url} took over 10 s"))
        .unwrap_or_else(|error| panic!("GET {url}: {error}"));
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|error| panic!("body of GET {url}: {error}"))
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The `version` field of a demo service's JSON answer.
pub fn version_of(body: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    value["version"]
        .as_str()
        .unwrap_or_else(|| panic!("no version in {body:?}"))
        .to_string()
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}
