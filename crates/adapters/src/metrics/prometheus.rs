//! Prometheus over its HTTP API: an instant query (`/api/v1/query`) of the SLI's PromQL
//! with a timeout. One sample or a scalar is a value; no series or NaN is "no data"; an
//! unreachable server, an HTTP error, a PromQL error or an answer with several series is
//! an error. For ratio SLIs a request-count query can be run first, so that a version that
//! served fewer than `min_requests` is inconclusive, never passing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::router::BuildError;
use crate::router::template;
use crate::{MetricSource, Reading};

/// How long a query may take when the plan does not say: well under a one-second
/// evaluation interval's worth of patience times two.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus:9090` (a path prefix is kept).
    pub url: String,
    /// PromQL for the version's request count in the judged window; `${version}` is
    /// substituted when it runs.
    pub request_count_query: Option<String>,
    /// Fewer requests than this make a ratio inconclusive; default 1 when a
    /// request-count query is given.
    pub min_requests: Option<u64>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Prometheus {
    client: reqwest::Client,
    query_url: reqwest::Url,
    request_count_query: Option<String>,
    min_requests: u64,
    timeout: Duration,
}

impl Prometheus {
    pub fn new(config: PrometheusConfig) -> Result<Prometheus, BuildError> {
        let mut query_url = reqwest::Url::parse(&config.url)
            .map_err(|e| BuildError::new(format!("`{}` is not a URL: {e}", config.url)))?;
        if !matches!(query_url.scheme(), "http" | "https") {
            return Err(BuildError::new(format!(
                "`{}`: Prometheus is reached over http or https",
                config.url
            )));
        }
        let path = format!("{}/api/v1/query", query_url.path().trim_end_matches('/'));
        query_url.set_path(&path);
        if config.min_requests.is_some() && config.request_count_query.is_none() {
            return Err(BuildError::new(
                "`min_requests` needs `request_count_query`: the PromQL that counts the version's requests, e.g. `sum(increase(http_requests_total{version=\"${version}\"}[1m]))`".to_string(),
            ));
        }
        let client = crate::router::http_client(config.timeout)
            .build()
            .map_err(|e| BuildError::new(format!("cannot build an HTTP client: {e}")))?;
        Ok(Prometheus {
            client,
            query_url,
            min_requests: config.min_requests.unwrap_or(1),
            request_count_query: config.request_count_query,
            timeout: config.timeout,
        })
    }

    /// Builds the source a plan describes; `${vars}` are substituted now, `${version}`
    /// when a query runs.
    pub fn from_plan(
        source: &plan::PrometheusSource,
        timeout: Option<Duration>,
        vars: &BTreeMap<String, String>,
    ) -> Result<Prometheus, BuildError> {
        let expand = |text: &str| {
            template::expand(text, |name| {
                if name == "version" {
                    Some("${version}".to_string())
                } else {
                    vars.get(name).cloned()
                }
            })
        };
        Prometheus::new(PrometheusConfig {
            url: expand(&source.url)?,
            request_count_query: source
                .request_count_query
                .as_ref()
                .map(|q| expand(q))
                .transpose()?,
            min_requests: source.min_requests.as_ref().map(|m| **m),
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    /// Runs one instant query at the current time.
    pub async fn query(&self, promql: &str) -> Reading {
        let mut url = self.query_url.clone();
        url.query_pairs_mut()
            .append_pair("query", promql)
            .append_pair("timeout", &format!("{}ms", self.timeout.as_millis()));
        let response = match self.client.get(url).send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => {
                return Reading::Error {
                    reason: format!(
                        "Prometheus at {} did not answer within {:?}",
                        self.base(),
                        self.timeout
                    ),
                };
            }
            Err(error) => {
                return Reading::Error {
                    reason: format!(
                        "Prometheus at {} cannot be reached: {}",
                        self.base(),
                        error_chain(&error)
                    ),
                };
            }
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(body) => parse_response(status, &body),
            Err(error) => Reading::Error {
                reason: format!(
                    "Prometheus at {}: reading the answer failed: {}",
                    self.base(),
                    error_chain(&error)
                ),
            },
        }
    }

    fn base(&self) -> String {
        let mut base = self.query_url.clone();
        base.set_query(None);
        let path = base.path().trim_end_matches("/api/v1/query").to_string();
        base.set_path(&path);
        base.to_string()
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[async_trait::async_trait]
impl MetricSource for Prometheus {
    async fn read(&self, query: &str, _version: &str) -> Reading {
        self.query(query).await
    }

    async fn read_ratio(&self, query: &str, version: &str) -> Reading {
        let Some(count_query) = &self.request_count_query else {
            return self.query(query).await;
        };
        let count_query = match template::expand(count_query, |name| {
            (name == "version").then(|| version.to_string())
        }) {
            Ok(text) => text,
            Err(error) => {
                return Reading::Error {
                    reason: error.to_string(),
                };
            }
        };
        let (count, value) = tokio::join!(self.query(&count_query), self.query(query));
        match count {
            Reading::Value(requests) if requests >= self.min_requests as f64 => value,
            Reading::Value(requests) => Reading::NoData {
                reason: format!(
                    "only {} requests on `{version}`, need {} to judge a ratio",
                    requests.round(),
                    self.min_requests
                ),
            },
            Reading::NoData { reason } => Reading::NoData {
                reason: format!("no request count for `{version}` ({reason})"),
            },
            Reading::Error { reason } => Reading::Error {
                reason: format!("request count for `{version}`: {reason}"),
            },
        }
    }
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum ApiData {
    Vector(Vec<VectorSample>),
    Scalar((f64, String)),
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// Turns an answer of `/api/v1/query` (HTTP status and body) into a reading.
pub fn parse_response(status: u16, body: &[u8]) -> Reading {
    let parsed: ApiResponse = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(error) => {
            let text = String::from_utf8_lossy(body);
            let excerpt: String = text.trim().chars().take(200).collect();
            return Reading::Error {
                reason: format!(
                    "Prometheus answered HTTP {status} with something that is not its API's JSON ({error}): {excerpt}"
                ),
            };
        }
    };
    if parsed.status != "success" {
        return Reading::Error {
            reason: format!(
                "Prometheus answered HTTP {status}, {}: {}",
                parsed.error_type.as_deref().unwrap_or("error"),
                parsed.error.as_deref().unwrap_or("no message")
            ),
        };
    }
    match parsed.data {
        None => Reading::Error {
            reason: "Prometheus answered success without data".to_string(),
        },
        Some(ApiData::Scalar((_, value))) => number(&value),
        Some(ApiData::Vector(samples)) => match samples.as_slice() {
            [] => Reading::NoData {
                reason: "the query matched no series".to_string(),
            },
            [sample] => number(&sample.value.1),
            many => {
                let labels: Vec<String> = many.iter().take(3).map(|s| format!("{:?}", s.metric)).collect();
                Reading::Error {
                    reason: format!(
                        "the query returned {} series ({}{}); aggregate it to one number per version, e.g. with sum(...)",
                        many.len(),
                        labels.join(", "),
                        if many.len() > 3 { ", …" } else { "" }
                    ),
                }
            }
        },
        Some(ApiData::Matrix(_)) => Reading::Error {
            reason: "the query returned a range vector; an SLI needs an instant value, e.g. wrap it in rate(...) or last_over_time(...)".to_string(),
        },
        Some(ApiData::String(_)) => Reading::Error {
            reason: "the query returned a string, not a number".to_string(),
        },
    }
}

fn number(text: &str) -> Reading {
    match text.parse::<f64>() {
        Ok(value) if value.is_nan() => Reading::NoData {
            reason: "the query gave NaN (no requests in the window: 0/0)".to_string(),
        },
        Ok(value) if value.is_infinite() => Reading::NoData {
            reason: format!("the query gave {text} (division by a zero count)"),
        },
        Ok(value) => Reading::Value(value),
        Err(_) => Reading::Error {
            reason: format!("Prometheus gave `{text}`, not a number"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Reading {
        parse_response(200, body.as_bytes())
    }

    #[test]
    fn vectors_and_scalars_are_values() {
        assert_eq!(
            parse(
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1712345678.123,"0.0421"]}]}}"#
            ),
            Reading::Value(0.0421)
        );
        assert_eq!(
            parse(
                r#"{"status":"success","data":{"resultType":"scalar","result":[1712345678.123,"7"]}}"#
            ),
            Reading::Value(7.0)
        );
    }

    #[test]
    fn nothing_to_judge_is_no_data() {
        assert!(matches!(
            parse(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            Reading::NoData { .. }
        ));
        let nan = parse(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#,
        );
        assert!(
            matches!(&nan, Reading::NoData { reason } if reason.contains("NaN")),
            "{nan:?}"
        );
        assert!(matches!(
            parse(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#),
            Reading::NoData { .. }
        ));
    }

    #[test]
    fn errors_are_errors() {
        let bad = parse_response(
            400,
            br#"{"status":"error","errorType":"bad_data","error":"1:6: parse error: unclosed left parenthesis"}"#,
        );
        assert_eq!(
            bad,
            Reading::Error {
                reason: "Prometheus answered HTTP 400, bad_data: 1:6: parse error: unclosed left parenthesis".to_string()
            }
        );
        assert!(matches!(
            parse_response(502, b"<html>Bad Gateway</html>"),
            Reading::Error { .. }
        ));
        let two = parse(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"server":"a"},"value":[1,"1"]},{"metric":{"server":"b"},"value":[1,"2"]}]}}"#,
        );
        assert!(
            matches!(&two, Reading::Error { reason } if reason.contains("2 series")),
            "{two:?}"
        );
        assert!(matches!(
            parse(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#),
            Reading::Error { .. }
        ));
    }

    #[test]
    fn configuration_is_checked() {
        let config = |url: &str, count: Option<&str>, min: Option<u64>| PrometheusConfig {
            url: url.to_string(),
            request_count_query: count.map(str::to_string),
            min_requests: min,
            timeout: DEFAULT_TIMEOUT,
        };
        assert!(Prometheus::new(config("http://127.0.0.1:9090", None, None)).is_ok());
        assert!(Prometheus::new(config("ftp://x", None, None)).is_err());
        assert!(
            Prometheus::new(config("http://x", None, Some(10)))
                .unwrap_err()
                .message
                .contains("request_count_query")
        );
        let prefixed =
            Prometheus::new(config("http://x:9090/prom/", Some("up"), Some(10))).unwrap();
        assert_eq!(
            prefixed.query_url.as_str(),
            "http://x:9090/prom/api/v1/query"
        );
        assert_eq!(prefixed.base(), "http://x:9090/prom");
    }

    #[test]
    fn plan_vars_now_version_later() {
        let source = plan::PrometheusSource {
            url: plan::At::bare("${prometheus_url}".to_string()),
            request_count_query: Some(plan::At::bare(
                "sum(increase(x{env=\"${env}\",version=\"${version}\"}[1m]))".to_string(),
            )),
            min_requests: Some(plan::At::bare(100)),
            window: None,
        };
        let vars: BTreeMap<String, String> = [
            (
                "prometheus_url".to_string(),
                "http://127.0.0.1:9090".to_string(),
            ),
            ("env".to_string(), "prod".to_string()),
        ]
        .into();
        let built = Prometheus::from_plan(&source, None, &vars).unwrap();
        assert_eq!(
            built.query_url.as_str(),
            "http://127.0.0.1:9090/api/v1/query"
        );
        assert_eq!(
            built.request_count_query.as_deref(),
            Some("sum(increase(x{env=\"prod\",version=\"${version}\"}[1m]))")
        );
        assert_eq!(built.min_requests, 100);
        assert!(Prometheus::from_plan(&source, None, &BTreeMap::new()).is_err());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_an_error_never_a_value() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let source = Prometheus::new(PrometheusConfig {
            url: format!("http://127.0.0.1:{port}"),
            request_count_query: Some("sum(x{v=\"${version}\"})".to_string()),
            min_requests: Some(5),
            timeout: Duration::from_secs(1),
        })
        .unwrap();
        assert!(matches!(
            source.read("up", "canary").await,
            Reading::Error { .. }
        ));
        assert!(matches!(
            source.read_ratio("up", "canary").await,
            Reading::Error { .. }
        ));
    }
}
