//! The people of the plan, played by the demo: they answer roll calls, decide "go",
//! approve stages, acknowledge pages and tasks, sign off what they own when it is due,
//! and waive what this machine cannot check. Every action goes through the same door as
//! a real person's (an input the engine may refuse), and is logged with their name.

use std::collections::BTreeSet;
use std::sync::Arc;

use engine::state::{ActionStatus, ItemStatus, RunState, StepStatus};
use engine::{Decision, Effect, Input, Record, RecordBody};
use jiff::{SignedDuration, Timestamp};
use plan::{Authority, Plan};
use tokio::sync::{mpsc, oneshot};

use crate::shell::Msg;

/// How long before a checklist or the success check is due its owners sign off.
const SIGN_OFF_LEAD: SignedDuration = SignedDuration::from_mins(30);

pub struct Crew {
    plan: Arc<Plan>,
    tx: mpsc::UnboundedSender<Msg>,
    /// What the crew already did, so nothing is sent twice.
    acted: BTreeSet<String>,
    /// Refusals the engine gave the crew, to show in the report.
    pub refusals: Vec<String>,
    /// Decisions taken at a time of their own (a gate is decided when it is due).
    later: Vec<(Timestamp, String, Input)>,
}

impl Crew {
    pub fn new(plan: Arc<Plan>, tx: mpsc::UnboundedSender<Msg>) -> Crew {
        Crew {
            plan,
            tx,
            acted: BTreeSet::new(),
            refusals: Vec::new(),
            later: Vec::new(),
        }
    }

    fn primary_of(&self, role: &str) -> Option<String> {
        self.plan
            .roles
            .iter()
            .find(|r| r.id.as_str() == role)
            .map(|r| r.primary.value.clone())
    }

    fn holder_of(&self, authority: Authority) -> Option<String> {
        self.plan
            .roles
            .iter()
            .find(|r| r.authorities.iter().any(|a| **a == authority))
            .map(|r| r.primary.value.clone())
    }

    fn send(&mut self, key: String, input: Input) {
        if !self.acted.insert(key) {
            return;
        }
        let (reply, _answer) = oneshot::channel();
        // The run may have ended; then there is nobody to answer.
        let _ = self.tx.send(Msg::Act { input, reply });
    }

    /// Reacts to what the engine just decided or asked for.
    pub fn on_record(&mut self, record: &Record) {
        match &record.body {
            RecordBody::Decision(Decision::RollCallStarted { step, roles }) => {
                for role in roles {
                    if let Some(person) = self.primary_of(role) {
                        let key = format!("roll-call/{step}/{role}");
                        self.send(
                            key,
                            Input::RollCallAnswer {
                                person,
                                step: step.clone(),
                            },
                        );
                    }
                }
            }
            RecordBody::Decision(Decision::GateOpened { gate, due, .. }) => {
                if let Some(person) = self.holder_of(Authority::GoNoGo) {
                    let reason = "all checklists complete; the leads are ready".to_owned();
                    let input = Input::Decide {
                        person,
                        gate: gate.clone(),
                        go: true,
                        reason,
                    };
                    self.later.push((*due, format!("gate/{gate}"), input));
                }
            }
            RecordBody::Decision(Decision::StageAwaitingApproval {
                stage,
                weight,
                role,
            }) => {
                if let Some(person) = self.primary_of(role) {
                    let reason = format!("metrics green; approve {weight} %");
                    self.send(
                        format!("approve/{stage}"),
                        Input::Promote { person, reason },
                    );
                }
            }
            RecordBody::Decision(Decision::TaskAssigned { task, role, .. }) => {
                if let Some(person) = self.primary_of(role) {
                    self.send(
                        format!("task/{task}"),
                        Input::Ack {
                            person,
                            target: task.clone(),
                        },
                    );
                }
            }
            RecordBody::Decision(Decision::ChecklistItemFailed { item, reason, .. }) => {
                if let Some(person) = self.holder_of(Authority::Waive) {
                    let reason = format!("cannot be verified on this demo machine ({reason})");
                    self.send(
                        format!("waive/{item}"),
                        Input::Waive {
                            person,
                            item: item.clone(),
                            reason,
                        },
                    );
                }
            }
            RecordBody::Decision(Decision::StepFailed {
                step,
                consequence,
                reason,
            }) if consequence.starts_with("halt") => {
                if let Some(person) = self.holder_of(Authority::Waive) {
                    let reason = format!("not checkable on this demo machine ({reason})");
                    self.send(
                        format!("waive-step/{step}"),
                        Input::Waive {
                            person,
                            item: step.clone(),
                            reason,
                        },
                    );
                }
            }
            RecordBody::Effect(request) => {
                if let Effect::Page { page, person, .. } = &request.effect {
                    self.send(
                        format!("page/{page}/{person}"),
                        Input::Ack {
                            person: person.clone(),
                            target: page.clone(),
                        },
                    );
                }
            }
            RecordBody::Refused { reason, .. } => self.refusals.push(reason.clone()),
            _ => {}
        }
    }

    /// Signs off what is due soon, and acknowledges tasks still open.
    pub fn on_state(&mut self, state: &RunState, now: Timestamp) {
        let soon = now + SIGN_OFF_LEAD;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.later)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.later = later;
        for (_, key, input) in due {
            self.send(key, input);
        }
        let mut actions = Vec::new();
        // A checklist a running step or an open gate waits for is signed off now.
        let awaited: BTreeSet<&str> = state
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Running)
            .filter_map(|s| {
                self.plan
                    .timeline
                    .iter()
                    .flat_map(|p| p.steps.iter())
                    .find(|d| d.id.as_str() == s.id)
            })
            .flat_map(|d| {
                d.checklist.iter().map(|c| c.value.as_str()).chain(
                    d.gate
                        .iter()
                        .flat_map(|g| g.requires.iter().map(|c| c.value.as_str())),
                )
            })
            .collect();
        for checklist in &state.checklists {
            let due_soon = checklist.due_at.is_some_and(|due| due <= soon);
            if checklist.complete || !(due_soon || awaited.contains(checklist.id.as_str())) {
                continue;
            }
            for item in checklist
                .items
                .iter()
                .filter(|i| i.manual && i.status == ItemStatus::Open)
            {
                if let Some(person) = self.primary_of(&item.owner) {
                    actions.push((
                        format!("sign/{}", item.id),
                        Input::SignOff {
                            person,
                            item: item.id.clone(),
                        },
                    ));
                }
            }
        }
        if let (Some(at), Some(success)) = (state.success.at, self.plan.success.as_ref())
            && at <= soon
            && !state.success.evaluated
        {
            for criterion in success.criteria.iter().filter(|c| c.metric.is_none()) {
                if let Some(person) = self.primary_of(&criterion.owner) {
                    let item = criterion.id.value.clone();
                    actions.push((format!("criterion/{item}"), Input::SignOff { person, item }));
                }
            }
        }
        for run in &state.playbooks {
            for action in run
                .actions
                .iter()
                .filter(|a| a.status == ActionStatus::Open && a.kind == "task")
            {
                if let Some(person) = action.role.as_deref().and_then(|r| self.primary_of(r)) {
                    actions.push((
                        format!("task/{}", action.task),
                        Input::Ack {
                            person,
                            target: action.task.clone(),
                        },
                    ));
                }
            }
        }
        // A step stuck on a failure the crew has not seen decided (after a restart).
        for step in state
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::OutcomeUnknown)
        {
            if let Some(person) = self.holder_of(Authority::Waive) {
                let input = Input::Resolve {
                    person,
                    target: step.id.clone(),
                    outcome: engine::Resolution::Retry,
                };
                actions.push((format!("resolve/{}", step.id), input));
            }
        }
        for (key, input) in actions {
            self.send(key, input);
        }
    }
}
