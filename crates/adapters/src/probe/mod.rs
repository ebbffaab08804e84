//! Probes: the automated checks of checklist items, gates and probe steps, run against the
//! real thing (a command, an HTTP endpoint, a TLS certificate, DNS resolvers, a TCP port).
//!
//! A probe passes only on a clear, positive answer. A timeout, a refused connection, an
//! unparsable response or a resolver that does not answer is a failure with its reason,
//! never a pass. `docs/checks.md` says what passes and what fails for each kind.

mod command;
mod dns;
pub(crate) mod http;
mod tcp;
mod tls;

use std::time::Duration;

use plan::model::Verify;

pub use dns::parse_resolver;
pub use http::JsonCompare;

/// The verdict of one probe, with what was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    pub passed: bool,
    /// One line for a person: what was checked and why it passed or failed.
    pub summary: String,
    /// What was observed, for the log (status codes, answers per resolver, expiry date…).
    pub detail: serde_json::Value,
}

impl ProbeOutcome {
    pub(crate) fn pass(summary: impl Into<String>, detail: serde_json::Value) -> ProbeOutcome {
        ProbeOutcome {
            passed: true,
            summary: summary.into(),
            detail,
        }
    }
    pub(crate) fn fail(summary: impl Into<String>, detail: serde_json::Value) -> ProbeOutcome {
        ProbeOutcome {
            passed: false,
            summary: summary.into(),
            detail,
        }
    }
}

/// Checks a probe cannot run by itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotProbeable {
    #[error("a manual check is signed off by a person, not probed")]
    Manual,
    #[error("metric checks are judged by the engine from the SLI readings, not probed")]
    Metric,
}

/// How probes run: the timeout used when the check names none, and which variables'
/// values are redacted from captured command output.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub timeout: Duration,
    pub redact: Vec<String>,
}

impl ProbeOptions {
    pub fn new(timeout: Duration) -> ProbeOptions {
        ProbeOptions {
            timeout,
            redact: Vec::new(),
        }
    }
}

/// Runs one check. `timeout` applies where the check does not set its own.
pub async fn probe(check: &Verify, timeout: Duration) -> Result<ProbeOutcome, NotProbeable> {
    probe_with(check, &ProbeOptions::new(timeout)).await
}

pub async fn probe_with(
    check: &Verify,
    options: &ProbeOptions,
) -> Result<ProbeOutcome, NotProbeable> {
    let own = |t: &Option<plan::At<plan::Dur>>| t.as_ref().map_or(options.timeout, |d| d.as_std());
    match check {
        Verify::Manual => Err(NotProbeable::Manual),
        Verify::Metric(_) => Err(NotProbeable::Metric),
        Verify::Command(c) => Ok(command::probe(c, own(&c.timeout), &options.redact).await),
        Verify::Http(c) => Ok(http::probe(c, own(&c.timeout)).await),
        Verify::Tls(c) => Ok(tls::probe(c, options.timeout).await),
        Verify::Dns(c) => Ok(dns::probe(c, options.timeout).await),
        Verify::Tcp(c) => Ok(tcp::probe(c, own(&c.timeout)).await),
    }
}

/// Makes ring the process's rustls crypto provider (once; later calls do nothing). Every
/// TLS client here (reqwest, the TLS probe) needs it before it is built.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `2025-08-23T06:00:00Z` for a detail field.
pub(crate) fn fmt_timestamp(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
