//! A metric source that runs the SLI's query as a shell command and reads a number from
//! its output: the first capture group of `pattern`, or by default the first number.
//!
//! A command that fails, times out or cannot start is `Reading::Error`; output without a
//! number (an empty result, `NaN`) is `Reading::NoData`. Neither is ever a value.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use crate::command::{CommandSpec, run_command};
use crate::{MetricSource, Reading};

static FIRST_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    // A fixed pattern; it compiles.
    Regex::new(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?").expect("valid pattern")
});

#[derive(Debug, Clone)]
pub struct CommandMetricSource {
    pattern: Option<Regex>,
    timeout: Duration,
    redact: Vec<String>,
}

impl CommandMetricSource {
    /// `pattern` is a regular expression whose first capture group is the number (the
    /// whole match if it has no group).
    pub fn new(pattern: Option<&str>, timeout: Duration) -> Result<CommandMetricSource, String> {
        let pattern = pattern
            .map(|p| {
                Regex::new(p).map_err(|e| format!("pattern `{p}` is not a regular expression: {e}"))
            })
            .transpose()?;
        Ok(CommandMetricSource {
            pattern,
            timeout,
            redact: Vec::new(),
        })
    }

    /// Names of variables whose values are kept out of error messages.
    pub fn with_redaction(mut self, names: Vec<String>) -> CommandMetricSource {
        self.redact = names;
        self
    }

    /// The number in `output`, or why there is none.
    pub fn read_number(&self, output: &str) -> Reading {
        let found = match &self.pattern {
            Some(pattern) => match pattern.captures(output) {
                Some(caps) => caps
                    .get(1)
                    .or_else(|| caps.get(0))
                    .map(|m| m.as_str().to_owned()),
                None => {
                    return Reading::NoData {
                        reason: format!(
                            "the output has no match for `{pattern}`: {}",
                            excerpt(output)
                        ),
                    };
                }
            },
            None => FIRST_NUMBER.find(output).map(|m| m.as_str().to_owned()),
        };
        let Some(text) = found else {
            return Reading::NoData {
                reason: format!("the output has no number: {}", excerpt(output)),
            };
        };
        match text.trim().parse::<f64>() {
            Ok(value) if value.is_finite() => Reading::Value(value),
            Ok(_) => Reading::NoData {
                reason: format!("`{text}` is not a finite number"),
            },
            Err(_) => Reading::Error {
                reason: format!("the pattern matched `{text}`, which is not a number"),
            },
        }
    }
}

fn excerpt(output: &str) -> String {
    let trimmed = output.trim();
    if trimmed.is_empty() {
        return "(empty)".into();
    }
    let short: String = trimmed.chars().take(120).collect();
    if short.len() < trimmed.len() {
        format!("`{short}…`")
    } else {
        format!("`{short}`")
    }
}

#[async_trait::async_trait]
impl MetricSource for CommandMetricSource {
    async fn read(&self, query: &str, _version: &str) -> Reading {
        let mut spec = CommandSpec::new(query, self.timeout);
        spec.redact = self.redact.clone();
        let outcome = match run_command(&spec).await {
            Ok(outcome) => outcome,
            Err(error) => {
                return Reading::Error {
                    reason: error.to_string(),
                };
            }
        };
        if !outcome.success() {
            return Reading::Error {
                reason: format!(
                    "`{query}` ended with {}: {}",
                    outcome.status_text(),
                    outcome.output_tail(300)
                ),
            };
        }
        self.read_number(&outcome.stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found_or_missing_explicitly() {
        let any = CommandMetricSource::new(None, Duration::from_secs(1)).unwrap();
        assert_eq!(any.read_number("error_rate 0.42\n"), Reading::Value(0.42));
        assert_eq!(any.read_number("-1.5e3"), Reading::Value(-1500.0));
        assert!(matches!(any.read_number("NaN"), Reading::NoData { .. }));
        assert!(matches!(any.read_number(""), Reading::NoData { .. }));
        let p95 = CommandMetricSource::new(Some(r"p95=(\d+)ms"), Duration::from_secs(1)).unwrap();
        assert_eq!(
            p95.read_number("p50=80ms p95=1234ms"),
            Reading::Value(1234.0)
        );
        assert!(matches!(
            p95.read_number("p50=80ms"),
            Reading::NoData { .. }
        ));
        let words = CommandMetricSource::new(Some(r"rate=(\w+)"), Duration::from_secs(1)).unwrap();
        assert!(matches!(
            words.read_number("rate=high"),
            Reading::Error { .. }
        ));
        assert!(CommandMetricSource::new(Some("(unclosed"), Duration::from_secs(1)).is_err());
    }
}
