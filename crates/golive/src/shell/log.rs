//! How the engine's records are written to and read back from the event store.
//!
//! An event's `kind` says what the record is (`input.sign_off`, `decision.rule_firing`,
//! `effect.set_weights`, `refused.decide`), its `actor` is the record's actor and its body
//! the whole record body, so the log reads on its own and replays exactly.

use engine::{Actor, Record, RecordBody};
use store::{Event, NewEvent, StoreError};

/// The store's form of a record.
pub fn to_new_event(record: &Record) -> Result<NewEvent, serde_json::Error> {
    Ok(NewEvent {
        at: format!("{:.3}", record.at),
        actor: serde_json::to_value(&record.actor)?,
        kind: kind_of(&record.body),
        body: serde_json::to_value(&record.body)?,
    })
}

/// The record a stored event holds.
pub fn to_record(event: &Event) -> Result<Record, StoreError> {
    let corrupt = |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt {
        run: event.run_id.clone(),
        reason: format!(
            "event {}: {what} does not read back as a record: {e}",
            event.seq
        ),
    };
    let at = event.at.parse().map_err(|e| corrupt("time", &e))?;
    let actor: Actor = serde_json::from_str(&event.actor).map_err(|e| corrupt("actor", &e))?;
    let body: RecordBody = serde_json::from_str(&event.body).map_err(|e| corrupt("body", &e))?;
    Ok(Record { at, actor, body })
}

pub fn kind_of(body: &RecordBody) -> String {
    match body {
        RecordBody::Input(input) => format!("input.{}", input.kind()),
        RecordBody::Refused { input, .. } => format!("refused.{}", input.kind()),
        RecordBody::Decision(decision) => {
            // The decision's serde tag is its name; read it back rather than list every variant.
            let name = serde_json::to_value(decision)
                .ok()
                .and_then(|v| {
                    v.get("decision")
                        .and_then(|d| d.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "unknown".to_owned());
            format!("decision.{name}")
        }
        RecordBody::Effect(request) => format!("effect.{}", request.effect.kind()),
    }
}
