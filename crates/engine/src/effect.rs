//! What the engine asks the shell to do, as one closed enum: the engine's only way out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::input::Weights;

/// An effect with its identity. `id` is unique within a run and deterministic (a counter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectRequest {
    pub id: u64,
    pub effect: Effect,
    /// Whether running it twice is harmless; only these are retried after a crash.
    pub idempotent: bool,
    /// How long the executor may take before it reports a failure.
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// Run a shell command. `${vars}` of the environment are substituted; unknown ones are
    /// left for the shell (which may hold secrets the log must not).
    RunCommand {
        step: String,
        command: String,
    },
    /// Verify a checklist item or a probe step. `verify` is the plan's verification with
    /// the environment's `${vars}` substituted (deserializes as `plan::Verify`).
    RunProbe {
        target: String,
        verify: serde_json::Value,
    },
    /// Set traffic weights and read them back.
    SetWeights {
        weights: Weights,
        reason: String,
    },
    /// Read these SLIs; answer with `Input::MetricSamples { query: Some(id), .. }`.
    QueryMetrics {
        slis: Vec<MetricQuery>,
    },
    /// Send one message to one audience (or a role: `role:<id>`).
    SendMessage {
        audience: String,
        channels: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<String>,
        subject: String,
        body: String,
        /// Sending twice with the same key must deliver once.
        dedup_key: String,
    },
    /// Page a person of a role; acknowledge with `Input::Ack { target: page }`.
    Page {
        page: String,
        role: String,
        person: String,
        reason: String,
        ack_by: jiff::Timestamp,
    },
    UpdateStatusPage {
        status: String,
        message: String,
    },
}

impl Effect {
    pub fn kind(&self) -> &'static str {
        match self {
            Effect::RunCommand { .. } => "run_command",
            Effect::RunProbe { .. } => "run_probe",
            Effect::SetWeights { .. } => "set_weights",
            Effect::QueryMetrics { .. } => "query_metrics",
            Effect::SendMessage { .. } => "send_message",
            Effect::Page { .. } => "page",
            Effect::UpdateStatusPage { .. } => "update_status_page",
        }
    }
}

/// One SLI to read for one version, with the query for the environment's metric source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricQuery {
    pub sli: String,
    pub source: String,
    pub query: String,
    pub version: String,
}

/// `${name}` → value for every known name; unknown names are left as written.
pub(crate) fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match vars.get(name) {
                    Some(value) => out.push_str(value),
                    None => {
                        out.push_str("${");
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Substitutes `${vars}` in every string of a JSON value.
pub(crate) fn substitute_json(value: &mut serde_json::Value, vars: &BTreeMap<String, String>) {
    match value {
        serde_json::Value::String(s) => *s = substitute(s, vars),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| substitute_json(v, vars)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| substitute_json(v, vars)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_keeps_unknown_names() {
        let vars = BTreeMap::from([("host".to_string(), "db1".to_string())]);
        assert_eq!(
            substitute("ping ${host} ${TOKEN} ${", &vars),
            "ping db1 ${TOKEN} ${"
        );
    }
}
