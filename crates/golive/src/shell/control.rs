//! The API's view of a live run: operator actions become engine inputs sent to the shell's
//! loop; status and the log are read without disturbing it.

use std::sync::Arc;

use engine::{Input, Record, RecordBody, Resolution};
use server::{Action, ActionAccepted, ActionRequest, ApiError, LogEvent, RunControl, StatusView};
use store::EventStore;
use tokio::sync::{mpsc, oneshot, watch};

use super::Msg;
use super::clock::Clock;
use super::status::StatusSnapshot;

pub struct Control {
    pub tx: mpsc::UnboundedSender<Msg>,
    pub status: watch::Receiver<StatusSnapshot>,
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn EventStore>,
    pub run_id: String,
}

#[async_trait::async_trait]
impl RunControl for Control {
    async fn status(&self) -> StatusView {
        self.status.borrow().at(self.clock.now())
    }

    async fn act(&self, request: ActionRequest) -> Result<ActionAccepted, ApiError> {
        let input = to_input(request)?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Act { input, reply })
            .map_err(|_| ApiError::Internal("the run is stopping".into()))?;
        answer
            .await
            .map_err(|_| ApiError::Internal("the run stopped before answering".into()))?
    }

    async fn events(&self, from_seq: u64, limit: u64) -> Result<Vec<LogEvent>, ApiError> {
        let store = self.store.clone();
        let run_id = self.run_id.clone();
        let events = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            store.scan(&run_id, from_seq.max(1), &mut |event| {
                out.push(event);
                if out.len() as u64 >= limit {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            })?;
            Ok::<_, store::StoreError>(out)
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        events
            .into_iter()
            .map(|event| {
                Ok(LogEvent {
                    seq: event.seq,
                    at: event.at.clone(),
                    actor: event
                        .actor_value()
                        .map_err(|e| ApiError::Internal(e.to_string()))?,
                    kind: event.kind.clone(),
                    body: event
                        .body_value()
                        .map_err(|e| ApiError::Internal(e.to_string()))?,
                    hash: event.hash.clone(),
                })
            })
            .collect()
    }
}

fn to_input(request: ActionRequest) -> Result<Input, ApiError> {
    let person = request.as_person;
    Ok(match request.action {
        Action::SignOff { item } => Input::SignOff { person, item },
        Action::Waive { target, reason } => Input::Waive {
            person,
            item: target,
            reason: required(reason)?,
        },
        Action::Decide { gate, go, reason } => Input::Decide {
            person,
            gate,
            go,
            reason,
        },
        Action::RollCall { step } => Input::RollCallAnswer { person, step },
        Action::StopTheLine { trigger, reason } => Input::StopTheLine {
            person,
            trigger,
            reason: required(reason)?,
        },
        Action::Pause { reason } => Input::Pause {
            person,
            reason: required(reason)?,
        },
        Action::Resume { reason } => Input::Resume { person, reason },
        Action::Promote { reason } => Input::Promote { person, reason },
        Action::Rollback { reason } => Input::Rollback {
            person,
            reason: required(reason)?,
        },
        Action::Ack { id } => Input::Ack { person, target: id },
        Action::Resolve { target, outcome } => {
            let outcome = match outcome.as_str() {
                "done" => Resolution::Done,
                "failed" => Resolution::Failed,
                "retry" => Resolution::Retry,
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "outcome `{other}` is not one of `done`, `failed`, `retry`"
                    )));
                }
            };
            Input::Resolve {
                person,
                target,
                outcome,
            }
        }
    })
}

fn required(reason: String) -> Result<String, ApiError> {
    if reason.trim().is_empty() {
        Err(ApiError::BadRequest(
            "a reason is required: it goes into the audit log".into(),
        ))
    } else {
        Ok(reason)
    }
}

/// The engine's refusals are sentences; map them to the HTTP status a client expects.
pub fn refusal_error(reason: &str) -> ApiError {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("lacks the")
        || lower.contains("does not hold role")
        || lower.contains("may not")
    {
        ApiError::Forbidden(reason.to_owned())
    } else if lower.starts_with("no person")
        || lower.starts_with("no page")
        || lower.starts_with("no sli")
        || lower.starts_with("no step")
        || lower.starts_with("no gate")
        || lower.starts_with("no trigger")
        || lower.starts_with("no item")
        || lower.starts_with("unknown")
    {
        ApiError::NotFound(reason.to_owned())
    } else {
        ApiError::Conflict(reason.to_owned())
    }
}

/// One line saying what an accepted action caused.
pub fn summary(stored: &[(store::Event, Record)]) -> String {
    let caused: Vec<String> = stored
        .iter()
        .skip(1)
        .filter(|(_, record)| matches!(record.body, RecordBody::Decision(_)))
        .map(|(event, _)| event.kind.trim_start_matches("decision.").replace('_', " "))
        .collect();
    if caused.is_empty() {
        "recorded".to_owned()
    } else {
        format!("recorded; then: {}", caused.join(", "))
    }
}
