//! The HTTP probe: the response status must be the expected one (default 200) and every
//! JSON-path assertion must hold on the response body. Redirects are not followed: a 301
//! is reported as a 301.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use plan::model::{HttpCheck, JsonAssertion};
use serde_json::{Value, json};
use serde_json_path::JsonPath;

use super::ProbeOutcome;
use crate::command::{Redactor, expand_env_refs, fmt_duration, tail_chars};

/// Bodies larger than this are cut; JSON assertions on a cut body fail.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;
const SNIPPET: usize = 300;

/// `< 500`, `>= 1`, `== 3`, `!= 0`: a numeric comparison with a threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsonCompare {
    pub op: CompareOp,
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    NotEqual,
}

impl CompareOp {
    fn symbol(self) -> &'static str {
        match self {
            CompareOp::Less => "<",
            CompareOp::LessOrEqual => "<=",
            CompareOp::Greater => ">",
            CompareOp::GreaterOrEqual => ">=",
            CompareOp::Equal => "==",
            CompareOp::NotEqual => "!=",
        }
    }
}

impl FromStr for JsonCompare {
    type Err = String;
    fn from_str(text: &str) -> Result<JsonCompare, String> {
        let s = text.trim();
        let (op, rest) = [
            ("<=", CompareOp::LessOrEqual),
            (">=", CompareOp::GreaterOrEqual),
            ("==", CompareOp::Equal),
            ("!=", CompareOp::NotEqual),
            ("<", CompareOp::Less),
            (">", CompareOp::Greater),
        ]
        .into_iter()
        .find_map(|(symbol, op)| s.strip_prefix(symbol).map(|rest| (op, rest)))
        .ok_or_else(|| {
            format!("`{text}` is not a comparison; write `< 500`, `>= 1`, `== 3` or `!= 0`")
        })?;
        let threshold: f64 = rest
            .trim()
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite())
            .ok_or_else(|| format!("`{text}`: `{}` is not a number", rest.trim()))?;
        Ok(JsonCompare { op, threshold })
    }
}

impl fmt::Display for JsonCompare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.symbol(), self.threshold)
    }
}

impl JsonCompare {
    pub fn holds(&self, value: f64) -> bool {
        match self.op {
            CompareOp::Less => value < self.threshold,
            CompareOp::LessOrEqual => value <= self.threshold,
            CompareOp::Greater => value > self.threshold,
            CompareOp::GreaterOrEqual => value >= self.threshold,
            CompareOp::Equal => value == self.threshold,
            CompareOp::NotEqual => value != self.threshold,
        }
    }
}

/// A client that never follows redirects and never reads a proxy from the environment.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    super::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// Reads at most [`BODY_LIMIT`] bytes of the body; says whether it was cut.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > BODY_LIMIT {
            body.truncate(BODY_LIMIT);
            return Ok((body, true));
        }
    }
    Ok((body, false))
}

/// What went wrong with a request, in words: timeouts and refused connections are named.
pub(crate) fn describe_error(error: &reqwest::Error, timeout: Duration) -> String {
    use std::error::Error as _;
    if error.is_timeout() {
        return format!("no response within {}", fmt_duration(timeout));
    }
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(super) async fn probe(check: &HttpCheck, timeout: Duration) -> ProbeOutcome {
    let env = |name: &str| std::env::var(name).ok();
    let url = match expand_env_refs(&check.url.value, env) {
        Ok(url) => url,
        Err(e) => {
            return ProbeOutcome::fail(e.clone(), json!({"url": check.url.value, "error": e}));
        }
    };
    let shown_url = check.url.value.clone();
    let fail = |summary: String, detail: Value| ProbeOutcome::fail(summary, detail);
    let client = match client(timeout) {
        Ok(client) => client,
        Err(e) => return fail(e.clone(), json!({"url": shown_url, "error": e})),
    };
    let method = check
        .method
        .as_deref()
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let method = match reqwest::Method::from_bytes(method.as_bytes()) {
        Ok(m) => m,
        Err(_) => {
            let e = format!("`{method}` is not an HTTP method");
            return fail(e.clone(), json!({"url": shown_url, "error": e}));
        }
    };
    let mut request = client.request(method.clone(), &url);
    for (name, value) in &check.headers {
        match expand_env_refs(value, env) {
            Ok(value) => request = request.header(name, value),
            Err(e) => {
                return fail(
                    format!("header {name}: {e}"),
                    json!({"url": shown_url, "error": e}),
                );
            }
        }
    }
    if let Some(body) = &check.body {
        request = request.body(body.clone());
    }
    let started = Instant::now();
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            let e = describe_error(&error, timeout);
            return fail(
                format!("{method} {shown_url}: {e}"),
                json!({"url": shown_url, "error": e, "duration_ms": started.elapsed().as_millis() as u64}),
            );
        }
    };
    let status = response.status().as_u16();
    let body = read_body(response).await;
    let took = started.elapsed();
    let (body, cut) = match body {
        Ok(body) => body,
        Err(error) => {
            let e = describe_error(&error, timeout);
            return fail(
                format!("{method} {shown_url}: status {status}, then reading the body failed: {e}"),
                json!({"url": shown_url, "status": status, "error": e, "duration_ms": took.as_millis() as u64}),
            );
        }
    };
    let text = String::from_utf8_lossy(&body);
    let redactor = Redactor::from_env(&[], &Default::default());
    let snippet = tail_chars(
        &redactor.redact(&text.chars().take(SNIPPET * 4).collect::<String>()),
        SNIPPET,
    );
    let expected_status = check.status.unwrap_or(200);
    let mut detail = json!({
        "url": shown_url,
        "method": method.as_str(),
        "status": status,
        "expected_status": expected_status,
        "duration_ms": took.as_millis() as u64,
        "body_bytes": body.len(),
        "body_cut": cut,
    });
    if status != expected_status {
        detail["body"] = json!(snippet);
        return fail(
            format!("{method} {shown_url} answered {status}, expected {expected_status}"),
            detail,
        );
    }
    if check.json.is_empty() {
        return ProbeOutcome::pass(
            format!(
                "{method} {shown_url} answered {status} in {}",
                fmt_duration(took)
            ),
            detail,
        );
    }
    let document: Value = match serde_json::from_slice(&body) {
        Ok(v) if !cut => v,
        Ok(_) => {
            detail["body"] = json!(snippet);
            return fail(
                format!(
                    "{shown_url}: the body is larger than {BODY_LIMIT} bytes; JSON assertions cannot be checked"
                ),
                detail,
            );
        }
        Err(e) => {
            detail["body"] = json!(snippet);
            return fail(
                format!("{shown_url}: the body is not JSON ({e}); it starts: {snippet}"),
                detail,
            );
        }
    };
    let results: Vec<(bool, Value, String)> = check
        .json
        .iter()
        .map(|a| assert_json(&document, &a.value))
        .collect();
    detail["assertions"] = Value::Array(results.iter().map(|(_, d, _)| d.clone()).collect());
    let failures: Vec<&str> = results
        .iter()
        .filter(|(ok, _, _)| !ok)
        .map(|(_, _, why)| why.as_str())
        .collect();
    if failures.is_empty() {
        ProbeOutcome::pass(
            format!(
                "{method} {shown_url} answered {status} in {}; {} JSON {}",
                fmt_duration(took),
                results.len(),
                if results.len() == 1 {
                    "assertion holds"
                } else {
                    "assertions hold"
                }
            ),
            detail,
        )
    } else {
        fail(format!("{shown_url}: {}", failures.join("; ")), detail)
    }
}

/// Checks one assertion: the path must select at least one value, and every value it
/// selects must equal `equals` and satisfy `compare` when they are given.
fn assert_json(document: &Value, assertion: &JsonAssertion) -> (bool, Value, String) {
    let path_text = assertion.path.value.as_str();
    let mut detail = json!({"path": path_text});
    let mut verdict = |ok: bool, why: String| {
        detail["passed"] = json!(ok);
        if !ok {
            detail["reason"] = json!(why);
        }
        (ok, detail.clone(), why)
    };
    let path = match JsonPath::parse(path_text) {
        Ok(path) => path,
        Err(e) => return verdict(false, format!("`{path_text}` is not a JSON path: {e}")),
    };
    let found: Vec<&Value> = path.query(document).all();
    let found_json: Vec<Value> = found.iter().map(|v| (*v).clone()).collect();
    if found.is_empty() {
        return verdict(false, format!("`{path_text}` selects nothing"));
    }
    let shown = if found.len() == 1 {
        found_json[0].to_string()
    } else {
        Value::Array(found_json.clone()).to_string()
    };
    if let Some(expected) = &assertion.equals
        && let Some(other) = found.iter().find(|v| !json_equal(v, expected))
    {
        let (ok, mut d, why) = verdict(
            false,
            format!("`{path_text}` is {other}, expected {expected}"),
        );
        d["found"] = Value::Array(found_json);
        return (ok, d, why);
    }
    if let Some(compare_text) = &assertion.compare {
        let compare: JsonCompare = match compare_text.value.parse() {
            Ok(c) => c,
            Err(e) => return verdict(false, e),
        };
        for value in &found {
            let Some(number) = value.as_f64() else {
                return verdict(
                    false,
                    format!("`{path_text}` is {value}, not a number, so `{compare}` cannot hold"),
                );
            };
            if !compare.holds(number) {
                return verdict(
                    false,
                    format!("`{path_text}` is {number}, which is not {compare}"),
                );
            }
        }
    }
    let (ok, mut d, why) = verdict(true, String::new());
    d["found"] = json!(shown);
    (ok, d, why)
}

/// JSON equality where `1` equals `1.0`.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_parse_and_hold() {
        let c: JsonCompare = "< 500".parse().unwrap();
        assert!(c.holds(499.0) && !c.holds(500.0));
        let c: JsonCompare = ">=1".parse().unwrap();
        assert!(c.holds(1.0) && !c.holds(0.5));
        assert!("!= 0".parse::<JsonCompare>().unwrap().holds(2.0));
        assert!("about 5".parse::<JsonCompare>().is_err());
        assert!("< five".parse::<JsonCompare>().is_err());
    }

    #[test]
    fn assertions_report_what_they_found() {
        let doc = json!({"status": "ok", "n": 3, "items": [{"up": true}, {"up": false}], "s": "7"});
        let a = |path: &str, equals: Option<Value>, compare: Option<&str>| JsonAssertion {
            path: plan::At::bare(path.into()),
            equals,
            compare: compare.map(|c| plan::At::bare(c.into())),
        };
        assert!(assert_json(&doc, &a("$.status", Some(json!("ok")), None)).0);
        assert!(assert_json(&doc, &a("$.n", Some(json!(3.0)), Some("< 4"))).0);
        let (ok, _, why) = assert_json(&doc, &a("$.items[*].up", Some(json!(true)), None));
        assert!(!ok && why.contains("false"), "{why}");
        let (ok, _, why) = assert_json(&doc, &a("$.missing", None, None));
        assert!(!ok && why.contains("selects nothing"), "{why}");
        let (ok, _, why) = assert_json(&doc, &a("$.s", None, Some("> 1")));
        assert!(!ok && why.contains("not a number"), "{why}");
        let (ok, _, why) = assert_json(&doc, &a("$[", None, None));
        assert!(!ok && why.contains("not a JSON path"), "{why}");
    }
}
