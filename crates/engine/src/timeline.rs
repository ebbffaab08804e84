//! Checklists, timed steps and gates: everything before and around T0.

use std::sync::Arc;

use jiff::Timestamp;
use plan::{Authority, OnFailure};

use crate::effect::{Effect, substitute, substitute_json};
use crate::input::Resolution;
use crate::record::{Actor, Decision};
use crate::state::*;
use crate::{
    DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_PROBE_TIMEOUT_MS, Engine, Out, add_ms, ms, person_actor,
};

pub(crate) fn step_def<'a>(
    plan: &'a plan::Plan,
    order: &[(usize, usize)],
    rollback: bool,
    i: usize,
) -> Option<&'a plan::Step> {
    if rollback {
        plan.ramp
            .as_ref()
            .and_then(|r| r.rollback.steps.get(i))
            .map(|s| &s.value)
    } else {
        order.get(i).map(|&(p, s)| &plan.timeline[p].steps[s].value)
    }
}

/// What a page about a stuck step is about, so settling the step closes it.
fn step_about(rollback: bool, step: &str) -> String {
    if rollback {
        format!("rollback-step:{step}")
    } else {
        format!("step:{step}")
    }
}

fn probe_timeout(verify: &plan::Verify) -> u64 {
    let t = match verify {
        plan::Verify::Command(c) => c.timeout.as_ref(),
        plan::Verify::Http(h) => h.timeout.as_ref(),
        plan::Verify::Tcp(t) => t.timeout.as_ref(),
        _ => None,
    };
    t.map(|d| ms(d)).unwrap_or(DEFAULT_PROBE_TIMEOUT_MS)
}

impl Engine {
    pub(crate) fn step_mut(&mut self, rollback: bool, i: usize) -> Option<&mut StepState> {
        if rollback {
            self.state
                .rollback
                .as_mut()
                .and_then(|r| r.steps.get_mut(i))
        } else {
            self.state.steps.get_mut(i)
        }
    }

    pub(crate) fn step_ref(&self, rollback: bool, i: usize) -> Option<&StepState> {
        if rollback {
            self.state.rollback.as_ref().and_then(|r| r.steps.get(i))
        } else {
            self.state.steps.get(i)
        }
    }

    /// When timeline step `i` is due: steps after the T0 gate follow the actual T0.
    pub(crate) fn step_due(&self, i: usize) -> Option<jiff::Timestamp> {
        let (p, s) = self.order[i];
        let offset = self.plan.timeline[p].steps[s].at.value;
        match self.t0_gate {
            Some(g) if i > g => self.resolve_after_t0(offset),
            _ => Some(offset.resolve(self.state.t0_planned, &self.tz)),
        }
    }

    /// Steps that are stuck (failed and halting, or of unknown outcome) hold the ramp.
    pub(crate) fn stuck_step(&self) -> Option<String> {
        self.state
            .steps
            .iter()
            .find(|s| s.status.is_stuck())
            .map(|s| s.id.clone())
    }

    // === checklists ===

    pub(crate) fn start_checklists(&mut self, out: &mut Out) {
        let plan = Arc::clone(&self.plan);
        for (c, checklist) in plan.checklists.iter().enumerate() {
            self.state.checklists[c].due_at = self.resolve(checklist.due.value);
            for (i, item) in checklist.items.iter().enumerate() {
                if item.verify.is_manual() {
                    continue;
                }
                if self.rehearse_only.contains(item.id.as_str()) {
                    let st = &mut self.state.checklists[c].items[i];
                    st.status = ItemStatus::Done;
                    st.at = Some(out.now);
                    st.reason = Some("rehearsed: not verified in this environment".to_string());
                    out.decide(
                        Actor::System,
                        Decision::ChecklistItemDone {
                            checklist: checklist.id.value.clone(),
                            item: item.id.value.clone(),
                        },
                    );
                    continue;
                }
                if matches!(&*item.verify, plan::Verify::Metric(_)) {
                    self.start_measuring_item(out, c, i, Actor::System);
                    continue;
                }
                self.request_probe(out, c, i);
            }
            self.check_checklist_complete(out, c, Actor::System);
        }
    }

    fn request_probe(&mut self, out: &mut Out, c: usize, i: usize) {
        let plan = Arc::clone(&self.plan);
        let item = &plan.checklists[c].items[i];
        let mut verify = serde_json::to_value(&*item.verify).unwrap_or(serde_json::Value::Null);
        substitute_json(&mut verify, &self.vars);
        let timeout = probe_timeout(&item.verify);
        self.state.checklists[c].items[i].status = ItemStatus::Probing;
        self.request(
            out,
            Actor::System,
            Effect::RunProbe {
                target: item.id.value.clone(),
                verify,
            },
            true,
            timeout,
            Purpose::Probe {
                checklist: c,
                item: i,
            },
            true,
        );
    }

    pub(crate) fn item_probe_done(&mut self, out: &mut Out, c: usize, i: usize, _id: u64) {
        let Some(item) = self
            .state
            .checklists
            .get_mut(c)
            .and_then(|cl| cl.items.get_mut(i))
        else {
            return;
        };
        if item.status != ItemStatus::Probing {
            return;
        }
        item.status = ItemStatus::Done;
        item.at = Some(out.now);
        let (checklist, item) = (
            self.state.checklists[c].id.clone(),
            self.state.checklists[c].items[i].id.clone(),
        );
        out.decide(
            Actor::Executor,
            Decision::ChecklistItemDone { checklist, item },
        );
        self.check_checklist_complete(out, c, Actor::Executor);
    }

    pub(crate) fn item_probe_failed(
        &mut self,
        out: &mut Out,
        c: usize,
        i: usize,
        _id: u64,
        reason: String,
    ) {
        let Some(item) = self
            .state
            .checklists
            .get_mut(c)
            .and_then(|cl| cl.items.get_mut(i))
        else {
            return;
        };
        if item.status != ItemStatus::Probing {
            return;
        }
        item.status = ItemStatus::Failed;
        item.reason = Some(reason.clone());
        let (checklist, item) = (
            self.state.checklists[c].id.clone(),
            self.state.checklists[c].items[i].id.clone(),
        );
        out.decide(
            Actor::Executor,
            Decision::ChecklistItemFailed {
                checklist,
                item,
                reason,
            },
        );
    }

    pub(crate) fn check_checklist_complete(&mut self, out: &mut Out, c: usize, actor: Actor) {
        let cl = &mut self.state.checklists[c];
        if cl.complete {
            return;
        }
        if cl
            .items
            .iter()
            .all(|i| matches!(i.status, ItemStatus::Done | ItemStatus::Waived))
        {
            cl.complete = true;
            out.decide(
                actor,
                Decision::ChecklistComplete {
                    checklist: cl.id.clone(),
                },
            );
        }
    }

    pub(crate) fn checklist_missing(&self, id: &str) -> Option<Vec<String>> {
        let cl = self.state.checklists.iter().find(|c| c.id == id)?;
        Some(
            cl.items
                .iter()
                .filter(|i| !matches!(i.status, ItemStatus::Done | ItemStatus::Waived))
                .map(|i| i.id.clone())
                .collect(),
        )
    }

    pub(crate) fn checklists_due(&mut self, out: &mut Out) {
        if self.state.status != RunStatus::Running {
            return;
        }
        for c in 0..self.state.checklists.len() {
            let cl = &self.state.checklists[c];
            if cl.complete || cl.overdue_noted || cl.due_at.is_none_or(|d| d > out.now) {
                continue;
            }
            self.fail_inconclusive_items(out, c);
            let cl = &self.state.checklists[c];
            let missing = self.checklist_missing(&cl.id.clone()).unwrap_or_default();
            let id = cl.id.clone();
            self.state.checklists[c].overdue_noted = true;
            out.decide(
                Actor::Schedule,
                Decision::ChecklistOverdue {
                    checklist: id.clone(),
                    missing: missing.clone(),
                },
            );
            let mut owners: Vec<String> = self.state.checklists[c]
                .items
                .iter()
                .filter(|i| missing.contains(&i.id))
                .map(|i| i.owner.clone())
                .collect();
            owners.sort();
            owners.dedup();
            for owner in owners {
                let text = format!(
                    "Checklist `{id}` is due and not complete; open items of yours: {}",
                    {
                        let mine: Vec<&str> = self.state.checklists[c]
                            .items
                            .iter()
                            .filter(|i| i.owner == owner && missing.contains(&i.id))
                            .map(|i| i.id.as_str())
                            .collect();
                        mine.join(", ")
                    }
                );
                self.send_to_role(
                    out,
                    Actor::Schedule,
                    &owner,
                    "Checklist overdue",
                    &text,
                    &format!("overdue/{id}/{owner}"),
                );
            }
        }
    }

    pub(crate) fn on_sign_off(
        &mut self,
        out: &mut Out,
        person: &str,
        target: &str,
    ) -> Result<Actor, String> {
        if !self.person_exists(person) {
            return Err(format!("no person `{person}` in the plan"));
        }
        // Checklist item?
        for c in 0..self.state.checklists.len() {
            if let Some(i) = self.state.checklists[c]
                .items
                .iter()
                .position(|it| it.id == target)
            {
                let item = &self.state.checklists[c].items[i];
                if !self.holds_role(person, &item.owner) {
                    return Err(format!(
                        "`{person}` does not hold role `{}`, which owns item `{target}`",
                        item.owner
                    ));
                }
                match item.status {
                    ItemStatus::Done | ItemStatus::Waived => {
                        return Err(format!(
                            "item `{target}` is already {}",
                            if item.status == ItemStatus::Done {
                                "done"
                            } else {
                                "waived"
                            }
                        ));
                    }
                    _ if !item.manual => {
                        let by = if matches!(
                            &*self.plan.checklists[c].items[i].verify,
                            plan::Verify::Metric(_)
                        ) {
                            "judged on its metric"
                        } else {
                            "verified by a probe"
                        };
                        return Err(format!(
                            "item `{target}` is {by}, not signed off; resolve it (`done` or `retry`) or waive it"
                        ));
                    }
                    _ => {}
                }
                let role = Some(item.owner.clone());
                let item = &mut self.state.checklists[c].items[i];
                item.status = ItemStatus::Done;
                item.by = Some(person.to_string());
                item.at = Some(out.now);
                let checklist = self.state.checklists[c].id.clone();
                let actor = person_actor(person, role);
                out.decide(
                    actor.clone(),
                    Decision::ChecklistItemDone {
                        checklist,
                        item: target.to_string(),
                    },
                );
                self.check_checklist_complete(out, c, actor.clone());
                return Ok(actor);
            }
        }
        if let Some(actor) = self.sign_off_criterion(out, person, target)? {
            return Ok(actor);
        }
        if let Some(actor) = self.sign_off_followup(out, person, target)? {
            return Ok(actor);
        }
        Err(format!(
            "no checklist item, success criterion or follow-up task named `{target}`"
        ))
    }

    pub(crate) fn on_waive(
        &mut self,
        out: &mut Out,
        person: &str,
        target: &str,
        reason: &str,
    ) -> Result<Actor, String> {
        let role = self.authority(person, Authority::Waive)?;
        if reason.trim().is_empty() {
            return Err("a waiver needs a reason".to_string());
        }
        let actor = person_actor(person, Some(role));
        for c in 0..self.state.checklists.len() {
            if let Some(i) = self.state.checklists[c]
                .items
                .iter()
                .position(|it| it.id == target)
            {
                let item = &mut self.state.checklists[c].items[i];
                if matches!(item.status, ItemStatus::Done | ItemStatus::Waived) {
                    return Err(format!("item `{target}` is already settled"));
                }
                item.status = ItemStatus::Waived;
                item.by = Some(person.to_string());
                item.at = Some(out.now);
                item.reason = Some(reason.to_string());
                let checklist = self.state.checklists[c].id.clone();
                out.decide(
                    actor.clone(),
                    Decision::ChecklistItemWaived {
                        checklist,
                        item: target.to_string(),
                        reason: reason.to_string(),
                    },
                );
                self.check_checklist_complete(out, c, actor.clone());
                return Ok(actor);
            }
        }
        for rollback in [false, true] {
            let idx = if rollback {
                self.state
                    .rollback
                    .as_ref()
                    .and_then(|r| r.steps.iter().position(|s| s.id == target))
            } else {
                self.state.steps.iter().position(|s| s.id == target)
            };
            if let Some(i) = idx {
                let plan = Arc::clone(&self.plan);
                let def = step_def(&plan, &self.order, rollback, i);
                if def.is_some_and(|d| d.gate.is_some()) {
                    return Err(format!(
                        "`{target}` is a gate: it is decided (go or no-go), not waived"
                    ));
                }
                let st = self.step_ref(rollback, i).expect("index found above");
                let cursor = if rollback {
                    self.state.rollback.as_ref().map(|r| r.cursor).unwrap_or(0)
                } else {
                    self.state.cursor
                };
                let waivable =
                    st.status.is_stuck() || (st.status == StepStatus::Running && i == cursor);
                if !waivable {
                    return Err(format!(
                        "step `{target}` is {:?}: only a failed, stuck or waiting step can be waived",
                        st.status
                    ));
                }
                if let Some(effect) = st.effect {
                    self.state.pending.remove(&effect);
                }
                let st = self.step_mut(rollback, i).expect("index found above");
                st.status = StepStatus::Waived;
                st.finished_at = Some(out.now);
                st.reason = Some(reason.to_string());
                st.effect = None;
                st.deadline = None;
                st.measuring = false;
                out.decide(
                    actor.clone(),
                    Decision::StepWaived {
                        step: target.to_string(),
                        reason: reason.to_string(),
                    },
                );
                self.close_pages(
                    out,
                    &actor,
                    &step_about(rollback, target),
                    &format!("step `{target}` waived"),
                );
                return Ok(actor);
            }
        }
        if target == "stage" || target.starts_with("stage:") {
            return self.waive_stage_gates(out, actor, target, reason);
        }
        if self.waive_criterion(out, actor.clone(), target, reason)? {
            return Ok(actor);
        }
        Err(format!(
            "nothing to waive named `{target}`: give a checklist item, a step, `stage` (the current stage's gates) or a success criterion"
        ))
    }

    // === the timeline ===

    pub(crate) fn phases(&mut self, out: &mut Out) {
        if self.state.status != RunStatus::Running {
            return;
        }
        let plan = Arc::clone(&self.plan);
        for phase in plan.timeline.iter() {
            if self.state.phases_started.contains(phase.id.as_str()) {
                continue;
            }
            let Some(start) = self.resolve(phase.window.start) else {
                continue;
            };
            if start <= out.now {
                self.state.phases_started.insert(phase.id.value.clone());
                self.state.phase = Some(phase.id.value.clone());
                out.decide(
                    Actor::Schedule,
                    Decision::PhaseStarted {
                        phase: phase.id.value.clone(),
                        title: phase.title.value.clone(),
                    },
                );
            }
        }
    }

    pub(crate) fn advance_timeline(&mut self, out: &mut Out) {
        for _ in 0..10_000 {
            if self.state.status != RunStatus::Running {
                return;
            }
            let i = self.state.cursor;
            if i >= self.state.steps.len() {
                return;
            }
            match self.state.steps[i].status {
                s if s.is_finished() => {
                    self.state.cursor += 1;
                }
                StepStatus::Waiting => {
                    let plan = Arc::clone(&self.plan);
                    let def =
                        step_def(&plan, &self.order, false, i).expect("cursor within the timeline");
                    let Some(due) = self.state.steps[i].due.or_else(|| self.step_due(i)) else {
                        return;
                    };
                    if def.gate.is_none() && due > out.now {
                        return;
                    }
                    self.state.steps[i].due = Some(due);
                    self.start_step(out, false, i);
                }
                StepStatus::Running => {
                    if !self.check_running_step(out, false, i) {
                        return;
                    }
                }
                _ => {
                    // Failed or unknown: a checklist step heals when its checklist completes.
                    if !self.check_running_step(out, false, i) {
                        return;
                    }
                }
            }
        }
    }

    pub(crate) fn advance_rollback_steps(&mut self, out: &mut Out) {
        for _ in 0..10_000 {
            let Some(rb) = self.state.rollback.as_ref() else {
                return;
            };
            if rb.confirmed_at.is_none() {
                return;
            }
            let i = rb.cursor;
            let Some(st) = rb.steps.get(i) else { return };
            match st.status {
                s if s.is_finished() => {
                    if let Some(rb) = self.state.rollback.as_mut() {
                        rb.cursor += 1;
                    }
                }
                StepStatus::Waiting => self.start_step(out, true, i),
                _ => {
                    if !self.check_running_step(out, true, i) {
                        return;
                    }
                }
            }
        }
    }

    /// Re-checks a step that waits on something; true when it finished.
    fn check_running_step(&mut self, out: &mut Out, rollback: bool, i: usize) -> bool {
        let plan = Arc::clone(&self.plan);
        let Some(def) = step_def(&plan, &self.order, rollback, i) else {
            return false;
        };
        let Some(st) = self.step_ref(rollback, i) else {
            return false;
        };
        let status = st.status;
        if let Some(checklist) = &def.checklist
            && matches!(status, StepStatus::Running | StepStatus::Failed)
            && self
                .checklist_missing(checklist)
                .is_some_and(|m| m.is_empty())
        {
            self.finish_step(out, Actor::System, rollback, i, "checklist complete");
            return true;
        }
        if status != StepStatus::Running {
            return false;
        }
        if let Some(w) = def.traffic.as_ref().map(|w| **w)
            && self.traffic_is_milestone(w)
        {
            let reached = self.state.ramp.status == RampStatus::Completed
                || (matches!(self.state.ramp.status, RampStatus::Holding)
                    && self.state.ramp.weight >= w);
            if reached {
                self.finish_step(
                    out,
                    Actor::Router,
                    rollback,
                    i,
                    &format!("the ramp reached {w}%"),
                );
                return true;
            }
        }
        if def.gate.is_some() && !st.due_noted && st.due.is_some_and(|d| d <= out.now) && !rollback
        {
            let authority = def
                .gate
                .as_ref()
                .and_then(|g| g.authority.as_ref().map(|a| **a))
                .unwrap_or(Authority::GoNoGo);
            self.state.steps[i].due_noted = true;
            out.decide(
                Actor::Schedule,
                Decision::GateDue {
                    gate: def.id.value.clone(),
                },
            );
            if let Some(role) = self.role_with(authority) {
                let text = format!(
                    "Gate `{}` ({}) is due: decide go or no-go.",
                    def.id.value, def.title.value
                );
                self.send_to_role(
                    out,
                    Actor::Schedule,
                    &role,
                    "Decision due",
                    &text,
                    &format!("gate-due/{}", def.id.value),
                );
            }
        }
        let st = self.step_ref(rollback, i).expect("checked above");
        if st.measuring && st.deadline.is_some_and(|d| d <= out.now) {
            self.measuring_step_timed_out(out, rollback, i);
            return self
                .step_ref(rollback, i)
                .is_some_and(|s| s.status.is_finished());
        }
        if st.deadline.is_some_and(|d| d <= out.now) {
            let reason = format!(
                "timed out waiting ({})",
                def.timeout
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            );
            self.fail_step(out, Actor::Schedule, rollback, i, reason);
            return self
                .step_ref(rollback, i)
                .is_some_and(|s| s.status.is_finished());
        }
        false
    }

    fn traffic_is_milestone(&self, weight: u8) -> bool {
        self.plan
            .ramp
            .as_ref()
            .is_some_and(|r| r.stages.iter().any(|s| s.weight.value == weight))
    }

    fn start_step(&mut self, out: &mut Out, rollback: bool, i: usize) {
        let plan = Arc::clone(&self.plan);
        let def = step_def(&plan, &self.order, rollback, i).expect("step index within its list");
        let id = def.id.value.clone();
        let kind = crate::step_kind(def);
        {
            let st = self
                .step_mut(rollback, i)
                .expect("step index within its list");
            st.status = StepStatus::Running;
            st.started_at = Some(out.now);
            st.attempts += 1;
            st.deadline = def.timeout.as_ref().map(|t| add_ms(out.now, ms(t) as i64));
        }
        out.decide(
            Actor::Schedule,
            Decision::StepStarted {
                step: id.clone(),
                title: def.title.value.clone(),
                kind: kind.to_string(),
            },
        );
        let purpose = if rollback {
            Purpose::RollbackStep { step: i }
        } else {
            Purpose::Step { step: i }
        };
        let actor = Actor::Step { step: id.clone() };
        match kind {
            "run" | "probe" if self.rehearse_only.contains(&id) => {
                self.finish_step_status(
                    out,
                    Actor::System,
                    rollback,
                    i,
                    StepStatus::Rehearsed,
                    "rehearsed: not executed in this environment",
                );
            }
            "run" => {
                let command = substitute(
                    def.run.as_ref().map(|r| r.as_str()).unwrap_or(""),
                    &self.vars,
                );
                let timeout = def
                    .timeout
                    .as_ref()
                    .map(|t| ms(t))
                    .unwrap_or(DEFAULT_COMMAND_TIMEOUT_MS);
                // The command's own timeout is enforced through the effect, not the step.
                self.step_mut(rollback, i).expect("exists").deadline = None;
                let effect = self.request(
                    out,
                    actor,
                    Effect::RunCommand { step: id, command },
                    def.idempotent,
                    timeout,
                    purpose,
                    true,
                );
                self.step_mut(rollback, i).expect("exists").effect = Some(effect);
            }
            "probe"
                if def
                    .probe
                    .as_ref()
                    .is_some_and(|p| self.metric_check(p).is_some()) =>
            {
                self.start_measuring_step(out, rollback, i);
            }
            "probe" => {
                let verify_def = def.probe.as_ref().expect("kind is probe");
                let mut verify =
                    serde_json::to_value(&**verify_def).unwrap_or(serde_json::Value::Null);
                substitute_json(&mut verify, &self.vars);
                let timeout = def
                    .timeout
                    .as_ref()
                    .map(|t| ms(t))
                    .unwrap_or_else(|| probe_timeout(verify_def));
                self.step_mut(rollback, i).expect("exists").deadline = None;
                let effect = self.request(
                    out,
                    actor,
                    Effect::RunProbe { target: id, verify },
                    true,
                    timeout,
                    purpose,
                    true,
                );
                self.step_mut(rollback, i).expect("exists").effect = Some(effect);
            }
            "roll_call" => {
                let roles: Vec<String> = def
                    .roll_call
                    .as_ref()
                    .map(|r| r.iter().map(|x| x.value.clone()).collect())
                    .unwrap_or_default();
                out.decide(
                    Actor::Schedule,
                    Decision::RollCallStarted {
                        step: id,
                        roles: roles.clone(),
                    },
                );
                if roles.is_empty() {
                    self.finish_step(out, Actor::Schedule, rollback, i, "no roles to call");
                }
            }
            "freeze" => {
                let freeze = def
                    .freeze
                    .as_ref()
                    .map(|f| f.value.clone())
                    .unwrap_or_default();
                self.state.freezes.push(FreezeState {
                    step: id.clone(),
                    freeze: freeze.clone(),
                    since: out.now,
                });
                out.decide(
                    Actor::Schedule,
                    Decision::FreezeStarted { step: id, freeze },
                );
                self.finish_step(out, Actor::Schedule, rollback, i, "freeze in force");
            }
            "gate" => {
                let gate = def.gate.as_ref().expect("kind is gate");
                let authority = gate
                    .authority
                    .as_ref()
                    .map(|a| **a)
                    .unwrap_or(Authority::GoNoGo);
                let due = self
                    .step_ref(rollback, i)
                    .and_then(|s| s.due)
                    .unwrap_or(out.now);
                let deadline = def
                    .timeout
                    .as_ref()
                    .map(|t| add_ms(due.max(out.now), ms(t) as i64));
                self.step_mut(rollback, i).expect("exists").deadline = deadline;
                out.decide(
                    Actor::Schedule,
                    Decision::GateOpened {
                        gate: id,
                        due,
                        authority: crate::authority_name(authority).to_string(),
                    },
                );
            }
            "notify" => {
                let notify = def.notify.as_ref().expect("kind is notify");
                for audience in &notify.audiences {
                    self.send_template(
                        out,
                        actor.clone(),
                        audience,
                        &notify.template,
                        &format!("step/{id}/{}", audience.value),
                        None,
                    );
                }
                self.finish_step(out, Actor::Schedule, rollback, i, "sent");
            }
            "traffic" => {
                let w = **def.traffic.as_ref().expect("kind is traffic");
                if self.traffic_is_milestone(w) {
                    // Reached through the ramp; checked by `check_running_step`.
                    self.check_running_step(out, rollback, i);
                } else if matches!(
                    self.state.ramp.status,
                    RampStatus::Entering | RampStatus::Holding
                ) {
                    self.fail_step(
                        out,
                        Actor::Schedule,
                        rollback,
                        i,
                        format!("weight {w}% is not a ramp stage and the ramp is running; the ramp sets the weights now"),
                    );
                } else {
                    let weights = self.weights_for(w);
                    let timeout = self.router_timeout_ms();
                    let purpose = Purpose::TrafficStep { step: i };
                    let effect = self.request(
                        out,
                        actor,
                        Effect::SetWeights {
                            weights,
                            reason: format!("step {id}"),
                        },
                        true,
                        timeout,
                        purpose,
                        true,
                    );
                    self.step_mut(rollback, i).expect("exists").effect = Some(effect);
                }
            }
            "checklist" => {
                let checklist = def
                    .checklist
                    .as_ref()
                    .expect("kind is checklist")
                    .value
                    .clone();
                match self.checklist_missing(&checklist) {
                    Some(missing) if missing.is_empty() => {
                        self.finish_step(out, Actor::Schedule, rollback, i, "checklist complete")
                    }
                    Some(missing) if def.timeout.is_none() => {
                        let reason = format!(
                            "checklist `{checklist}` is not complete: {}",
                            missing.join(", ")
                        );
                        self.fail_step(out, Actor::Schedule, rollback, i, reason);
                    }
                    Some(_) => {}
                    None => self.fail_step(
                        out,
                        Actor::Schedule,
                        rollback,
                        i,
                        format!("no checklist `{checklist}` in the plan"),
                    ),
                }
            }
            _ => self.finish_step(out, Actor::Schedule, rollback, i, "reached"),
        }
    }

    pub(crate) fn finish_step(
        &mut self,
        out: &mut Out,
        actor: Actor,
        rollback: bool,
        i: usize,
        outcome: &str,
    ) {
        self.finish_step_status(out, actor, rollback, i, StepStatus::Done, outcome);
    }

    fn finish_step_status(
        &mut self,
        out: &mut Out,
        actor: Actor,
        rollback: bool,
        i: usize,
        status: StepStatus,
        outcome: &str,
    ) {
        let Some(st) = self.step_mut(rollback, i) else {
            return;
        };
        st.status = status;
        st.finished_at = Some(out.now);
        st.effect = None;
        st.deadline = None;
        st.measuring = false;
        let step = st.id.clone();
        out.decide(
            actor.clone(),
            Decision::StepDone {
                step: step.clone(),
                outcome: outcome.to_string(),
            },
        );
        self.close_pages(
            out,
            &actor,
            &step_about(rollback, &step),
            &format!("step `{step}` is done"),
        );
    }

    pub(crate) fn step_effect_done(
        &mut self,
        out: &mut Out,
        actor: Actor,
        rollback: bool,
        i: usize,
        id: u64,
        rehearsed: bool,
    ) {
        if self
            .step_ref(rollback, i)
            .is_none_or(|s| s.effect != Some(id) || s.status != StepStatus::Running)
        {
            return;
        }
        if rehearsed {
            self.finish_step_status(
                out,
                actor,
                rollback,
                i,
                StepStatus::Rehearsed,
                "rehearsed: not executed",
            );
        } else {
            self.finish_step(out, actor, rollback, i, "done");
        }
    }

    pub(crate) fn step_effect_failed(
        &mut self,
        out: &mut Out,
        actor: Actor,
        rollback: bool,
        i: usize,
        id: u64,
        reason: String,
    ) {
        if self
            .step_ref(rollback, i)
            .is_none_or(|s| s.effect != Some(id) || s.status != StepStatus::Running)
        {
            return;
        }
        if let Some(st) = self.step_mut(rollback, i) {
            st.effect = None;
        }
        self.fail_step(out, actor, rollback, i, reason);
    }

    pub(crate) fn step_outcome_unknown(&mut self, out: &mut Out, rollback: bool, i: usize) {
        let Some(st) = self.step_mut(rollback, i) else {
            return;
        };
        if st.status != StepStatus::Running {
            return;
        }
        st.status = StepStatus::OutcomeUnknown;
        st.effect = None;
        let step = st.id.clone();
        out.decide(
            Actor::System,
            Decision::StepOutcomeUnknown { step: step.clone() },
        );
        let owner = self.step_owner(rollback, i);
        let text = format!(
            "Step `{step}` may or may not have run (restart). Resolve it: done, failed or retry."
        );
        let about = step_about(rollback, &step);
        self.page(out, Actor::Step { step }, &owner, &text, None, Some(&about));
    }

    fn step_owner(&self, rollback: bool, i: usize) -> String {
        step_def(&self.plan, &self.order, rollback, i)
            .and_then(|d| d.owner.as_ref().map(|o| o.value.clone()))
            .unwrap_or_else(|| self.plan.meta.owner.value.clone())
    }

    /// Applies a step's declared consequence of failure.
    pub(crate) fn fail_step(
        &mut self,
        out: &mut Out,
        actor: Actor,
        rollback: bool,
        i: usize,
        reason: String,
    ) {
        let plan = Arc::clone(&self.plan);
        let Some(def) = step_def(&plan, &self.order, rollback, i) else {
            return;
        };
        let mut consequence = def.on_failure.value;
        if rollback && consequence == OnFailure::Rollback {
            consequence = OnFailure::Halt;
        }
        let step = def.id.value.clone();
        let (status, text) = match consequence {
            OnFailure::Halt => (
                StepStatus::Failed,
                "halt: the timeline waits for a person to retry, resolve or waive it",
            ),
            OnFailure::Continue => (StepStatus::FailedContinued, "continue"),
            OnFailure::Pause => (StepStatus::FailedContinued, "pause the ramp"),
            OnFailure::Rollback => (StepStatus::FailedContinued, "roll back"),
        };
        {
            let st = self.step_mut(rollback, i).expect("step exists");
            st.status = status;
            st.reason = Some(reason.clone());
            st.deadline = None;
            if status.is_finished() {
                st.finished_at = Some(out.now);
            }
        }
        out.decide(
            actor,
            Decision::StepFailed {
                step: step.clone(),
                reason: reason.clone(),
                consequence: text.to_string(),
            },
        );
        let step_actor = Actor::Step { step: step.clone() };
        let owner = self.step_owner(rollback, i);
        match consequence {
            OnFailure::Halt => {
                let text = format!(
                    "Step `{step}` failed: {reason}. The timeline is halted until it is retried, resolved or waived."
                );
                let about = step_about(rollback, &step);
                self.page(out, step_actor, &owner, &text, None, Some(&about));
            }
            OnFailure::Continue => {}
            OnFailure::Pause => {
                self.pause_ramp(
                    out,
                    step_actor.clone(),
                    &format!("step {step}"),
                    &format!("step `{step}` failed: {reason}"),
                );
                let text = format!("Step `{step}` failed: {reason}. The ramp is paused.");
                self.page(out, step_actor, &owner, &text, None, Some("pause"));
            }
            OnFailure::Rollback => {
                self.start_rollback(
                    out,
                    step_actor,
                    &format!("step {step}"),
                    &format!("step `{step}` failed: {reason}"),
                );
            }
        }
    }

    pub(crate) fn on_roll_call(
        &mut self,
        out: &mut Out,
        person: &str,
        step: &str,
    ) -> Result<Actor, String> {
        if !self.person_exists(person) {
            return Err(format!("no person `{person}` in the plan"));
        }
        let Some(i) = self.state.steps.iter().position(|s| s.id == step) else {
            return Err(format!("no step `{step}` in the timeline"));
        };
        let plan = Arc::clone(&self.plan);
        let def = step_def(&plan, &self.order, false, i).expect("found above");
        let Some(roles) = def.roll_call.as_ref() else {
            return Err(format!("step `{step}` is not a roll call"));
        };
        if self.state.steps[i].status != StepStatus::Running {
            return Err(format!(
                "roll call `{step}` is not open (it is {:?})",
                self.state.steps[i].status
            ));
        }
        let Some(role) = roles
            .iter()
            .map(|r| r.value.clone())
            .find(|r| self.holds_role(person, r) && !self.state.steps[i].answered.contains_key(r))
        else {
            return Err(format!(
                "`{person}` holds none of the roles still called in `{step}`"
            ));
        };
        self.state.steps[i]
            .answered
            .insert(role.clone(), person.to_string());
        let actor = person_actor(person, Some(role.clone()));
        out.decide(
            actor.clone(),
            Decision::RollCallAnswered {
                step: step.to_string(),
                role,
                person: person.to_string(),
            },
        );
        if roles
            .iter()
            .all(|r| self.state.steps[i].answered.contains_key(r.as_str()))
        {
            self.finish_step(out, actor.clone(), false, i, "everyone is ready");
        }
        Ok(actor)
    }

    pub(crate) fn on_decide(
        &mut self,
        out: &mut Out,
        person: &str,
        gate: &str,
        go: bool,
        reason: &str,
    ) -> Result<Actor, String> {
        let Some(i) = self.state.steps.iter().position(|s| s.id == gate) else {
            return Err(format!("no step `{gate}` in the timeline"));
        };
        let plan = Arc::clone(&self.plan);
        let def = step_def(&plan, &self.order, false, i).expect("found above");
        let Some(gate_def) = def.gate.as_ref() else {
            return Err(format!("step `{gate}` is not a gate"));
        };
        let authority = gate_def
            .authority
            .as_ref()
            .map(|a| **a)
            .unwrap_or(Authority::GoNoGo);
        let role = self.authority(person, authority)?;
        if self.state.status != RunStatus::Running {
            return Err(format!(
                "the run is {}: no more decisions",
                self.state.status.as_str()
            ));
        }
        match self.state.steps[i].status {
            StepStatus::Running | StepStatus::Failed => {}
            StepStatus::Waiting => {
                let next = &self.state.steps[self.state.cursor.min(self.state.steps.len() - 1)];
                return Err(format!(
                    "gate `{gate}` is not open yet: the steps before it are not finished (next: `{}` at {})",
                    next.id, next.offset
                ));
            }
            other => return Err(format!("gate `{gate}` is already decided ({other:?})")),
        }
        if go {
            let mut missing = Vec::new();
            for checklist in &gate_def.requires {
                match self.checklist_missing(checklist) {
                    Some(m) if m.is_empty() => {}
                    Some(m) => missing.push(format!("`{}` ({})", checklist.value, m.join(", "))),
                    None => missing.push(format!("`{}` (not in the plan)", checklist.value)),
                }
            }
            if !missing.is_empty() {
                return Err(format!(
                    "cannot go: required checklists are not complete: {}; sign off or waive them first",
                    missing.join("; ")
                ));
            }
        }
        let actor = person_actor(person, Some(role));
        if go {
            let (t0_actual, late_by_ms) = if gate_def.sets_t0 {
                self.state.t0_actual = Some(out.now);
                (
                    Some(out.now),
                    Some(crate::ms_between(self.state.t0_planned, out.now)),
                )
            } else {
                (None, None)
            };
            out.decide(
                actor.clone(),
                Decision::Go {
                    gate: gate.to_string(),
                    reason: reason.to_string(),
                    t0_actual,
                    late_by_ms,
                },
            );
            self.finish_step(out, actor.clone(), false, i, "go");
            if gate_def.sets_t0 {
                self.schedule_times(out);
                let text = format!("GO for {} at {} ({}).", self.state.plan, out.now, reason);
                self.milestone(out, actor.clone(), "go", "Go decided", &text);
            }
        } else if gate_def.sets_t0 {
            out.decide(
                actor.clone(),
                Decision::NoGo {
                    gate: gate.to_string(),
                    reason: reason.to_string(),
                },
            );
            {
                let st = &mut self.state.steps[i];
                st.status = StepStatus::FailedContinued;
                st.finished_at = Some(out.now);
                st.reason = Some(format!("no-go: {reason}"));
                st.deadline = None;
            }
            self.state.status = RunStatus::Aborted;
            self.state.end_reason = Some(format!("no-go at `{gate}` by {person}: {reason}"));
            self.skip_remaining_steps(out, "the go-live was called off (no-go)");
            let text = format!(
                "NO-GO for {}: {}. The go-live does not proceed.",
                self.state.plan, reason
            );
            self.milestone(out, actor.clone(), "no-go", "No-go decided", &text);
        } else {
            self.fail_step(
                out,
                actor.clone(),
                false,
                i,
                format!("no-go by {person}: {reason}"),
            );
        }
        Ok(actor)
    }

    pub(crate) fn skip_remaining_steps(&mut self, out: &mut Out, reason: &str) {
        for i in 0..self.state.steps.len() {
            let st = &mut self.state.steps[i];
            if matches!(
                st.status,
                StepStatus::Waiting
                    | StepStatus::Running
                    | StepStatus::Failed
                    | StepStatus::OutcomeUnknown
            ) {
                if let Some(effect) = st.effect.take() {
                    self.state.pending.remove(&effect);
                }
                let st = &mut self.state.steps[i];
                st.status = StepStatus::Skipped;
                st.reason = Some(reason.to_string());
                st.deadline = None;
                st.measuring = false;
                let step = st.id.clone();
                out.decide(
                    Actor::System,
                    Decision::StepSkipped {
                        step: step.clone(),
                        reason: reason.to_string(),
                    },
                );
                self.close_pages(
                    out,
                    &Actor::System,
                    &step_about(false, &step),
                    &format!("step `{step}` skipped: {reason}"),
                );
            }
        }
        self.state.cursor = self.state.steps.len();
    }

    pub(crate) fn on_resolve(
        &mut self,
        out: &mut Out,
        person: &str,
        target: &str,
        outcome: Resolution,
    ) -> Result<Actor, String> {
        if !self.person_exists(person) {
            return Err(format!("no person `{person}` in the plan"));
        }
        // A checklist item whose probe failed.
        for c in 0..self.state.checklists.len() {
            if let Some(i) = self.state.checklists[c]
                .items
                .iter()
                .position(|it| it.id == target)
            {
                let item = &self.state.checklists[c].items[i];
                if !self.holds_role(person, &item.owner)
                    && self.authority(person, Authority::Waive).is_err()
                {
                    return Err(format!(
                        "`{person}` neither holds `{}` (the item's owner) nor may waive",
                        item.owner
                    ));
                }
                if item.status != ItemStatus::Failed {
                    return Err(format!(
                        "item `{target}` has not failed; nothing to resolve"
                    ));
                }
                let actor = person_actor(person, Some(item.owner.clone()));
                match outcome {
                    Resolution::Retry
                        if matches!(
                            &*self.plan.checklists[c].items[i].verify,
                            plan::Verify::Metric(_)
                        ) =>
                    {
                        self.start_measuring_item(out, c, i, actor.clone())
                    }
                    Resolution::Retry => self.request_probe(out, c, i),
                    Resolution::Done => {
                        let item = &mut self.state.checklists[c].items[i];
                        item.status = ItemStatus::Done;
                        item.by = Some(person.to_string());
                        item.at = Some(out.now);
                        let checklist = self.state.checklists[c].id.clone();
                        out.decide(
                            actor.clone(),
                            Decision::ChecklistItemDone {
                                checklist,
                                item: target.to_string(),
                            },
                        );
                        self.check_checklist_complete(out, c, actor.clone());
                    }
                    Resolution::Failed => {
                        return Err(format!("item `{target}` has already failed"));
                    }
                }
                return Ok(actor);
            }
        }
        for rollback in [false, true] {
            let idx = if rollback {
                self.state
                    .rollback
                    .as_ref()
                    .and_then(|r| r.steps.iter().position(|s| s.id == target))
            } else {
                self.state.steps.iter().position(|s| s.id == target)
            };
            let Some(i) = idx else { continue };
            let owner = self.step_owner(rollback, i);
            let role = if self.holds_role(person, &owner) {
                owner.clone()
            } else {
                self.authority(person, Authority::Waive).map_err(|_| {
                    format!("`{person}` neither holds `{owner}` (the step's owner) nor may waive")
                })?
            };
            let status = self.step_ref(rollback, i).expect("found").status;
            if !status.is_stuck() {
                return Err(format!(
                    "step `{target}` is {status:?}: only a failed step or one of unknown outcome can be resolved"
                ));
            }
            let actor = person_actor(person, Some(role));
            match (outcome, status) {
                (Resolution::Done, _) => self.finish_step(
                    out,
                    actor.clone(),
                    rollback,
                    i,
                    "done (resolved by a person)",
                ),
                (Resolution::Retry, _) => {
                    self.close_pages(
                        out,
                        &actor,
                        &step_about(rollback, target),
                        &format!("step `{target}` is being retried"),
                    );
                    let st = self.step_mut(rollback, i).expect("found");
                    st.status = StepStatus::Waiting;
                    st.inconclusive = false;
                    if !rollback {
                        self.state.cursor = self.state.cursor.min(i);
                    }
                    self.start_step(out, rollback, i);
                }
                (Resolution::Failed, StepStatus::OutcomeUnknown) => {
                    self.close_pages(
                        out,
                        &actor,
                        &step_about(rollback, target),
                        &format!("step `{target}` resolved as failed"),
                    );
                    self.step_mut(rollback, i).expect("found").status = StepStatus::Running;
                    self.fail_step(
                        out,
                        actor.clone(),
                        rollback,
                        i,
                        format!("resolved as failed by {person}"),
                    );
                }
                (Resolution::Failed, _) => {
                    return Err(format!(
                        "step `{target}` has already failed; retry, resolve as done, or waive it"
                    ));
                }
            }
            return Ok(actor);
        }
        Err(format!("no step or checklist item named `{target}`"))
    }

    pub(crate) fn timeline_deadlines(&self, consider: &mut impl FnMut(Option<Timestamp>)) {
        if self.state.status == RunStatus::Running {
            if let Some(st) = self.state.steps.get(self.state.cursor) {
                match st.status {
                    StepStatus::Waiting => {
                        consider(st.due.or_else(|| self.step_due(self.state.cursor)))
                    }
                    StepStatus::Running => {
                        consider(st.deadline);
                        if st.kind == "gate" && !st.due_noted {
                            consider(st.due);
                        }
                    }
                    _ => {}
                }
            }
            for phase in &self.plan.timeline {
                if !self.state.phases_started.contains(phase.id.as_str()) {
                    consider(self.resolve(phase.window.start));
                }
            }
            for cl in &self.state.checklists {
                if !cl.complete && !cl.overdue_noted {
                    consider(cl.due_at);
                }
            }
        }
        if let Some(rb) = &self.state.rollback
            && let Some(st) = rb.steps.get(rb.cursor)
            && st.status == StepStatus::Running
        {
            consider(st.deadline);
        }
    }
}
