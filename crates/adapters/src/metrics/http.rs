//! A metric source that requests the SLI's query as a URL (GET) and reads one number from
//! the JSON response with a JSON path (default `$`). A number given as a string (as the
//! Prometheus API gives sample values) is read too.
//!
//! A request that fails, a status other than 2xx or a body that is not JSON is
//! `Reading::Error`; a path that selects nothing, `null` or `NaN` is `Reading::NoData`.

use std::time::Duration;

use serde_json::Value;
use serde_json_path::JsonPath;

use crate::command::expand_env_refs;
use crate::probe::http::{client, describe_error, read_body};
use crate::{MetricSource, Reading};

#[derive(Debug, Clone)]
pub struct HttpMetricSource {
    path: JsonPath,
    path_text: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl HttpMetricSource {
    pub fn new(json_path: Option<&str>, timeout: Duration) -> Result<HttpMetricSource, String> {
        let path_text = json_path.unwrap_or("$").to_owned();
        let path = JsonPath::parse(&path_text)
            .map_err(|e| format!("`{path_text}` is not a JSON path: {e}"))?;
        Ok(HttpMetricSource {
            path,
            path_text,
            client: client(timeout)?,
            timeout,
        })
    }

    /// The number the path selects in `document`, or why there is none.
    pub fn read_number(&self, document: &Value) -> Reading {
        let found = self.path.query(document).all();
        let path = &self.path_text;
        match found.as_slice() {
            [] => Reading::NoData {
                reason: format!("`{path}` selects nothing"),
            },
            [one] => match one {
                Value::Number(n) => match n.as_f64() {
                    Some(v) if v.is_finite() => Reading::Value(v),
                    _ => Reading::Error {
                        reason: format!("`{path}` is {n}, out of range"),
                    },
                },
                Value::String(s) => match s.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => Reading::Value(v),
                    Ok(_) => Reading::NoData {
                        reason: format!("`{path}` is `{s}`, not a finite number"),
                    },
                    Err(_) => Reading::Error {
                        reason: format!("`{path}` is the text `{s}`, not a number"),
                    },
                },
                Value::Null => Reading::NoData {
                    reason: format!("`{path}` is null"),
                },
                other => Reading::Error {
                    reason: format!("`{path}` is {other}, not a number"),
                },
            },
            many => Reading::Error {
                reason: format!(
                    "`{path}` selects {} values; make it select exactly one",
                    many.len()
                ),
            },
        }
    }
}

#[async_trait::async_trait]
impl MetricSource for HttpMetricSource {
    async fn read(&self, query: &str, _version: &str) -> Reading {
        let url = match expand_env_refs(query, |name| std::env::var(name).ok()) {
            Ok(url) => url,
            Err(reason) => return Reading::Error { reason },
        };
        let response = match self.client.get(&url).send().await {
            Ok(response) => response,
            Err(e) => {
                return Reading::Error {
                    reason: format!("GET {query}: {}", describe_error(&e, self.timeout)),
                };
            }
        };
        let status = response.status();
        let body = match read_body(response).await {
            Ok((body, false)) => body,
            Ok((_, true)) => {
                return Reading::Error {
                    reason: format!("GET {query}: the response is too large"),
                };
            }
            Err(e) => {
                return Reading::Error {
                    reason: format!("GET {query}: {}", describe_error(&e, self.timeout)),
                };
            }
        };
        if !status.is_success() {
            let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Reading::Error {
                reason: format!("GET {query} answered {status}: {}", text.trim()),
            };
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(document) => self.read_number(&document),
            Err(e) => Reading::Error {
                reason: format!("GET {query}: the response is not JSON ({e})"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_number_or_an_explicit_reason() {
        let source =
            HttpMetricSource::new(Some("$.data.result[0].value[1]"), Duration::from_secs(1))
                .unwrap();
        let prometheus = json!({"data": {"result": [{"value": [1755928800, "0.0125"]}]}});
        assert_eq!(source.read_number(&prometheus), Reading::Value(0.0125));
        assert!(matches!(
            source.read_number(&json!({"data": {"result": []}})),
            Reading::NoData { .. }
        ));
        let nan = json!({"data": {"result": [{"value": [1, "NaN"]}]}});
        assert!(matches!(source.read_number(&nan), Reading::NoData { .. }));
        let root = HttpMetricSource::new(None, Duration::from_secs(1)).unwrap();
        assert_eq!(root.read_number(&json!(42)), Reading::Value(42.0));
        assert!(matches!(
            root.read_number(&json!(null)),
            Reading::NoData { .. }
        ));
        assert!(matches!(
            root.read_number(&json!({"a": 1})),
            Reading::Error { .. }
        ));
        let many = HttpMetricSource::new(Some("$[*]"), Duration::from_secs(1)).unwrap();
        assert!(matches!(
            many.read_number(&json!([1, 2])),
            Reading::Error { .. }
        ));
        assert!(HttpMetricSource::new(Some("$["), Duration::from_secs(1)).is_err());
    }
}
