//! The plan's people, played: they answer roll calls, say "go" when a gate is due, approve
//! stages, acknowledge pages and tasks, sign off what they own a little before it is due,
//! and — when asked to — waive what the environment cannot verify and retry a step whose
//! outcome is unknown.
//!
//! Pure like the engine: no clock, no I/O. It is told each record the engine produced
//! (with the state after it and the time) and answers with the inputs people give and
//! when; between records it says when it next acts of its own accord ([`Crew::next_due`])
//! and what ([`Crew::due`]). The rehearsal driver and `golive demo` both play their people
//! through it; every input goes through the same door as a real person's and may be
//! refused.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;
use plan::{Authority, Plan};

use crate::record::{Decision, Judgement, Record, RecordBody, Verdict};
use crate::state::{ItemStatus, RunState, RunStatus, StepStatus};
use crate::{Effect, Input, Resolution, add_ms};

/// How the crew behaves. The default is the rehearsal's: everyone does what the plan asks,
/// acknowledges pages after two minutes and signs off ten minutes before things are due.
#[derive(Debug, Clone)]
pub struct CrewOptions {
    /// Owners sign off checklist items, criteria and follow-ups when due.
    pub sign_offs: bool,
    /// The decider says "go" when a gate is due.
    pub go: bool,
    /// Approvers promote when a stage waits for them.
    pub approve: bool,
    /// How long after being paged (or given a task) a person acknowledges.
    pub ack_after_ms: u64,
    /// How long before an item is due its owner signs it off.
    pub sign_off_lead_ms: u64,
    /// People who answer nothing (their backup stands in).
    pub absent: BTreeSet<String>,
    /// People who never acknowledge a page.
    pub never_ack: BTreeSet<String>,
    /// Items, criteria and follow-ups nobody signs off.
    pub withhold: BTreeSet<String>,
    /// Gates someone else decides (a scenario's own `decide`).
    pub decided_elsewhere: BTreeSet<String>,
    pub go_reason: String,
    pub approve_reason: String,
    /// Where the run happens (`on this demo machine`): when set, the holder of `waive`
    /// waives checklist items and halted steps that failed for want of something this
    /// environment has not — every failure except a metric that was measured and missed
    /// its condition — saying where.
    pub waive_unverifiable: Option<String>,
    /// Retry a step whose outcome is unknown after a restart (as its owner would after
    /// checking it did not run).
    pub retry_unknown: bool,
}

impl Default for CrewOptions {
    fn default() -> Self {
        CrewOptions {
            sign_offs: true,
            go: true,
            approve: true,
            ack_after_ms: 120_000,
            sign_off_lead_ms: 600_000,
            absent: BTreeSet::new(),
            never_ack: BTreeSet::new(),
            withhold: BTreeSet::new(),
            decided_elsewhere: BTreeSet::new(),
            go_reason: "rehearsal: go as planned".to_string(),
            approve_reason: "rehearsal: approved as planned".to_string(),
            waive_unverifiable: None,
            retry_unknown: false,
        }
    }
}

/// An input a person gives, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub at: Timestamp,
    pub input: Input,
}

/// The people of one run. See the module documentation.
pub struct Crew {
    plan: Arc<Plan>,
    options: CrewOptions,
    /// Items, criteria and follow-ups already signed off (or withheld).
    signed: BTreeSet<String>,
    /// Gates already decided (or left to someone else).
    decided: BTreeSet<String>,
    /// Sign-offs owed, recomputed only when what they depend on changed.
    sign_offs: Option<Vec<(Timestamp, String, String)>>,
    /// Things done once (a waiver, a retry), so they are not repeated.
    acted: BTreeSet<String>,
}

impl Crew {
    pub fn new(plan: Arc<Plan>, options: CrewOptions) -> Crew {
        Crew {
            plan,
            signed: options.withhold.clone(),
            decided: options.decided_elsewhere.clone(),
            options,
            sign_offs: None,
            acted: BTreeSet::new(),
        }
    }

    pub fn options(&self) -> &CrewOptions {
        &self.options
    }

    /// Who of a role answers: its primary, or the backup when the primary is absent.
    pub fn person_for(&self, role: &str) -> Option<String> {
        let def = self.plan.roles.iter().find(|r| r.id.as_str() == role)?;
        let primary = def.primary.value.clone();
        if !self.options.absent.contains(&primary) {
            return Some(primary);
        }
        def.backup
            .as_ref()
            .map(|b| b.value.clone())
            .filter(|b| !self.options.absent.contains(b))
    }

    fn holder_of(&self, authority: Authority) -> Option<String> {
        self.plan
            .roles
            .iter()
            .filter(|r| r.authorities.iter().any(|a| **a == authority))
            .find_map(|r| self.person_for(&r.id))
    }

    /// What people do in answer to one record the engine produced at `now`; `state` is
    /// the run's state after it.
    pub fn answer(&mut self, record: &Record, state: &RunState, now: Timestamp) -> Vec<Planned> {
        let mut planned = Vec::new();
        let mut at_once = |input: Input| planned.push(Planned { at: now, input });
        match &record.body {
            RecordBody::Effect(request) => {
                if let Effect::Page { page, person, .. } = &request.effect
                    && !self.options.never_ack.contains(person)
                    && !self.options.absent.contains(person)
                {
                    planned.push(Planned {
                        at: add_ms(now, self.options.ack_after_ms as i64),
                        input: Input::Ack {
                            person: person.clone(),
                            target: page.clone(),
                        },
                    });
                }
            }
            RecordBody::Decision(decision) => {
                if matches!(
                    decision,
                    Decision::RunStarted { .. }
                        | Decision::Go { .. }
                        | Decision::NoGo { .. }
                        | Decision::RollbackStarted { .. }
                        | Decision::RunEnded { .. }
                        | Decision::ChecklistItemDone { .. }
                        | Decision::ChecklistItemWaived { .. }
                        | Decision::CriterionSignedOff { .. }
                        | Decision::FollowUpDone { .. }
                ) {
                    self.sign_offs = None;
                }
                match decision {
                    Decision::RollCallStarted { step, roles } => {
                        for role in roles {
                            if let Some(person) = self.person_for(role) {
                                at_once(Input::RollCallAnswer {
                                    person,
                                    step: step.clone(),
                                });
                            }
                        }
                    }
                    Decision::TaskAssigned { task, role, .. } => {
                        if let Some(person) = self.person_for(role) {
                            planned.push(Planned {
                                at: add_ms(now, self.options.ack_after_ms as i64),
                                input: Input::Ack {
                                    person,
                                    target: task.clone(),
                                },
                            });
                        }
                    }
                    Decision::StageAwaitingApproval { role, .. } if self.options.approve => {
                        if let Some(person) = self.person_for(role) {
                            let reason = self.options.approve_reason.clone();
                            at_once(Input::Promote { person, reason });
                        }
                    }
                    Decision::GateOpened {
                        gate,
                        due,
                        authority,
                    } if self.options.go => {
                        if !self.decided.insert(gate.clone()) {
                            return planned;
                        }
                        let role = self
                            .plan
                            .roles
                            .iter()
                            .find(|r| {
                                r.authorities
                                    .iter()
                                    .any(|a| crate::authority_name(**a) == authority)
                            })
                            .map(|r| r.id.value.clone());
                        if let Some(person) = role.and_then(|r| self.person_for(&r)) {
                            planned.push(Planned {
                                at: (*due).max(now),
                                input: Input::Decide {
                                    person,
                                    gate: gate.clone(),
                                    go: true,
                                    reason: self.options.go_reason.clone(),
                                },
                            });
                        }
                    }
                    Decision::StageGates {
                        weight,
                        verdict: Verdict::Inconclusive,
                        judgements,
                        ..
                    } => {
                        if let Some(input) = self.waive_stage_gates(*weight, judgements) {
                            at_once(input);
                        }
                    }
                    Decision::ChecklistItemFailed { item, reason, .. } => {
                        if let Some(input) = self.waive_item(state, item, reason) {
                            at_once(input);
                        }
                    }
                    Decision::StepFailed {
                        step,
                        reason,
                        consequence,
                    } if consequence.starts_with("halt") => {
                        if let Some(input) = self.waive_step(state, step, reason) {
                            at_once(input);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        planned
    }

    /// A waiver of a failed item this environment cannot verify, when the crew gives those.
    fn waive_item(&mut self, state: &RunState, item: &str, reason: &str) -> Option<Input> {
        let place = self.options.waive_unverifiable.clone()?;
        let measured_and_missed = self
            .plan
            .checklists
            .iter()
            .flat_map(|c| c.items.iter())
            .any(|i| i.id.as_str() == item && matches!(*i.verify, plan::Verify::Metric(_)))
            && !state
                .checklists
                .iter()
                .flat_map(|c| c.items.iter())
                .any(|i| i.id == item && i.inconclusive);
        if measured_and_missed || !self.acted.insert(format!("waive/{item}")) {
            return None;
        }
        Some(Input::Waive {
            person: self.holder_of(Authority::Waive)?,
            item: item.to_string(),
            reason: format!("cannot be verified {place} ({reason})"),
        })
    }

    /// A waiver of a stage's gates when every gate that is not passing cannot be judged in
    /// this environment at all, when the crew gives those. A gate that could be measured
    /// but has no reading yet, or fails, is never waived.
    fn waive_stage_gates(&mut self, weight: u8, judgements: &[Judgement]) -> Option<Input> {
        let place = self.options.waive_unverifiable.clone()?;
        let unjudged: Vec<&str> = judgements
            .iter()
            .filter(|j| j.verdict != Verdict::Pass)
            .map(|j| j.unmeasurable.then_some(j.what.as_str()))
            .collect::<Option<_>>()?;
        if unjudged.is_empty() || !self.acted.insert(format!("waive/stage:{weight}")) {
            return None;
        }
        Some(Input::Waive {
            person: self.holder_of(Authority::Waive)?,
            item: format!("stage:{weight}"),
            reason: format!(
                "cannot be judged {place}: {} (every other gate passes)",
                unjudged.join(", ")
            ),
        })
    }

    /// A waiver of a halted step this environment cannot check, when the crew gives those.
    fn waive_step(&mut self, state: &RunState, step: &str, reason: &str) -> Option<Input> {
        let place = self.options.waive_unverifiable.clone()?;
        let metric_probe = self
            .plan
            .timeline
            .iter()
            .flat_map(|p| p.steps.iter())
            .chain(self.plan.ramp.iter().flat_map(|r| r.rollback.steps.iter()))
            .any(|s| {
                s.id.as_str() == step
                    && s.probe
                        .as_ref()
                        .is_some_and(|p| matches!(**p, plan::Verify::Metric(_)))
            });
        let inconclusive = state
            .steps
            .iter()
            .chain(state.rollback.iter().flat_map(|r| r.steps.iter()))
            .any(|s| s.id == step && s.inconclusive);
        let attempt = state
            .steps
            .iter()
            .find(|s| s.id == step)
            .map(|s| s.attempts)
            .unwrap_or(0);
        if (metric_probe && !inconclusive) || !self.acted.insert(format!("waive/{step}/{attempt}"))
        {
            return None;
        }
        Some(Input::Waive {
            person: self.holder_of(Authority::Waive)?,
            item: step.to_string(),
            reason: format!("not checkable {place} ({reason})"),
        })
    }

    /// Whether a planned input is still worth giving when its time comes: nobody
    /// acknowledges a page someone else took or one that was closed.
    pub fn still_wanted(&self, input: &Input, state: &RunState) -> bool {
        match input {
            Input::Ack { target, .. } => !state
                .pages
                .iter()
                .any(|p| &p.id == target && (p.acked_by.is_some() || p.closed.is_some())),
            _ => true,
        }
    }

    /// Items whose sign-off is owed: (time, item, owner role).
    fn sign_offs_pending(&self, state: &RunState) -> Vec<(Timestamp, String, String)> {
        let mut due = Vec::new();
        if !self.options.sign_offs || state.status != RunStatus::Running {
            return due;
        }
        let lead = -(self.options.sign_off_lead_ms as i64);
        for cl in &state.checklists {
            let Some(at) = cl.due_at else { continue };
            for item in &cl.items {
                if item.manual && item.status == ItemStatus::Open && !self.signed.contains(&item.id)
                {
                    due.push((add_ms(at, lead), item.id.clone(), item.owner.clone()));
                }
            }
        }
        if let (Some(success), Some(at)) = (&self.plan.success, state.success.at) {
            for c in &success.criteria {
                if c.metric.is_none() && !self.signed.contains(c.id.as_str()) {
                    due.push((add_ms(at, lead), c.id.value.clone(), c.owner.value.clone()));
                }
            }
        }
        for f in &state.followups {
            if let Some(at) = f.due_at
                && f.done_by.is_none()
                && !self.signed.contains(&f.id)
            {
                due.push((add_ms(at, lead), f.id.clone(), f.owner.clone()));
            }
        }
        due
    }

    /// When the crew next acts of its own accord (a sign-off, a retry); none when it has
    /// nothing to do until the engine says something.
    pub fn next_due(&mut self, state: &RunState, now: Timestamp) -> Option<Timestamp> {
        if self.sign_offs.is_none() {
            self.sign_offs = Some(self.sign_offs_pending(state));
        }
        let sign_off = self
            .sign_offs
            .as_ref()
            .and_then(|s| s.iter().map(|(t, _, _)| (*t).max(now)).min());
        let retry = (self.options.retry_unknown && self.unknown_steps(state).next().is_some())
            .then_some(now);
        sign_off.into_iter().chain(retry).min()
    }

    fn unknown_steps<'a>(&'a self, state: &'a RunState) -> impl Iterator<Item = String> + 'a {
        state
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::OutcomeUnknown)
            .map(|s| format!("resolve/{}/{}", s.id, s.attempts))
            .filter(|key| !self.acted.contains(key))
    }

    /// What the crew does of its own accord at `now`, in order.
    pub fn due(&mut self, state: &RunState, now: Timestamp) -> Vec<Input> {
        let mut inputs = Vec::new();
        if self.next_due(state, now).is_none_or(|t| t > now) {
            return inputs;
        }
        for (at, item, role) in self.sign_offs_pending(state) {
            if at > now {
                continue;
            }
            self.signed.insert(item.clone());
            self.sign_offs = None;
            if let Some(person) = self.person_for(&role) {
                inputs.push(Input::SignOff { person, item });
            }
        }
        if self.options.retry_unknown {
            let keys: Vec<String> = self.unknown_steps(state).collect();
            for key in keys {
                let step = key
                    .split('/')
                    .nth(1)
                    .map(str::to_string)
                    .unwrap_or_default();
                self.acted.insert(key);
                if let Some(person) = self.holder_of(Authority::Waive) {
                    inputs.push(Input::Resolve {
                        person,
                        target: step,
                        outcome: Resolution::Retry,
                    });
                }
            }
        }
        inputs
    }
}
