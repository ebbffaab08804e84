//! Request and response bodies of API version 1. Field names are part of the contract.

use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "v1";

/// An operator action, taken as a person (`as`). The run checks the person's authority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    /// Person id from the plan.
    #[serde(rename = "as")]
    pub as_person: String,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Sign off a checklist item or success criterion.
    SignOff {
        item: String,
    },
    /// Waive a checklist item or a failed gate.
    Waive {
        target: String,
        reason: String,
    },
    /// Go or no-go at a gate step.
    Decide {
        gate: String,
        go: bool,
        #[serde(default)]
        reason: String,
    },
    /// Answer "ready" at a roll call step.
    RollCall {
        step: String,
    },
    StopTheLine {
        trigger: String,
        reason: String,
    },
    Pause {
        reason: String,
    },
    Resume {
        reason: String,
    },
    Promote {
        reason: String,
    },
    Rollback {
        reason: String,
    },
    /// Acknowledge a page or a playbook task.
    Ack {
        id: String,
    },
    /// Settle a failed step, or one whose outcome is unknown after a crash: `done`,
    /// `failed` or `retry`.
    Resolve {
        target: String,
        outcome: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionAccepted {
    /// Sequence number of the log event that recorded the action.
    pub seq: u64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// One event of the run log as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    pub seq: u64,
    pub at: String,
    pub actor: serde_json::Value,
    pub kind: String,
    pub body: serde_json::Value,
    pub hash: String,
}

/// What `golive status` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub run_id: String,
    pub plan: String,
    pub env: String,
    pub now: String,
    pub phase: Option<String>,
    pub state: String,
    pub t0_planned: String,
    pub t0_actual: Option<String>,
    pub ramp: RampView,
    pub next: Vec<UpcomingView>,
    pub rules: Vec<RuleView>,
    pub open_actions: Vec<OpenActionView>,
    pub outcome_unknown: Vec<UnknownView>,
    pub checklists: Vec<ChecklistView>,
    pub last_seq: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RampView {
    /// Percent of traffic on the new version, as confirmed by the router.
    pub weight: u32,
    /// Index of the current stage (1-based), 0 before the ramp.
    pub stage: usize,
    pub stages: usize,
    pub state: String,
    pub hold_ends: Option<String>,
    pub rollback_duration_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpcomingView {
    pub at: String,
    pub offset: String,
    pub what: String,
    pub in_seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleView {
    pub id: String,
    pub state: String,
    pub value: Option<f64>,
    pub since: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenActionView {
    pub id: String,
    /// `page`, `task`, or the kind of a timeline step waiting for a person (`gate`,
    /// `roll_call`, `run`…).
    pub kind: String,
    pub what: String,
    pub role: Option<String>,
    pub due: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnknownView {
    pub effect: u64,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistView {
    pub id: String,
    pub title: String,
    pub done: usize,
    pub waived: usize,
    pub total: usize,
    pub due: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_requests_have_a_flat_tagged_shape() {
        let request = ActionRequest {
            as_person: "sarah".into(),
            action: Action::StopTheLine {
                trigger: "security_incident".into(),
                reason: "breach".into(),
            },
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"as": "sarah", "action": "stop-the-line", "trigger": "security_incident", "reason": "breach"})
        );
        let back: ActionRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request);
    }
}
