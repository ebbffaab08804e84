//! One-line descriptions of log events for a person watching a run.

use engine::{Decision, Effect, Input, Record, RecordBody};

/// Whether a person watching the console wants to see this record.
pub fn is_notable(record: &Record) -> bool {
    match &record.body {
        RecordBody::Input(input) => !matches!(
            input,
            Input::Tick | Input::MetricSamples { .. } | Input::EffectResult { .. } | Input::Start
        ),
        RecordBody::Refused { .. } => true,
        RecordBody::Decision(decision) => !matches!(decision, Decision::Note { .. }),
        RecordBody::Effect(request) => !matches!(request.effect, Effect::QueryMetrics { .. }),
    }
}

/// `#12 2025-08-23T06:05:00Z  step_started  step=dns_cutover title=DNS cutover`
pub fn event_line(event: &store::Event, record: &Record) -> String {
    let detail = match &record.body {
        RecordBody::Input(input) => {
            fields(&serde_json::to_value(input).unwrap_or_default(), &["kind"])
        }
        RecordBody::Refused { input, reason } => {
            format!(
                "{} — {reason}",
                fields(&serde_json::to_value(input).unwrap_or_default(), &["kind"])
            )
        }
        RecordBody::Decision(decision) => fields(
            &serde_json::to_value(decision).unwrap_or_default(),
            &["decision"],
        ),
        RecordBody::Effect(request) => match &request.effect {
            Effect::SendMessage {
                audience, subject, ..
            } => format!("to {audience}: {subject}"),
            Effect::RunCommand { step, command } => format!("{step}: {command}"),
            other => fields(&serde_json::to_value(other).unwrap_or_default(), &["kind"]),
        },
    };
    format!(
        "#{:<5} {}  {:<32} {}",
        event.seq, event.at, event.kind, detail
    )
}

/// `key=value` pairs of a JSON object, skipping `skip`, with long values cut.
fn fields(value: &serde_json::Value, skip: &[&str]) -> String {
    let Some(map) = value.as_object() else {
        return value.to_string();
    };
    map.iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let text: String = if text.chars().count() > 80 {
                text.chars().take(77).chain("...".chars()).collect()
            } else {
                text
            };
            format!("{k}={text}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}
