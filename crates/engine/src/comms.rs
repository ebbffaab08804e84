//! Messages, pages with escalation, playbooks, cadences, dated messages, success criteria
//! and follow-up tasks: the people side of a run.

use std::sync::Arc;

use jiff::Timestamp;

use crate::effect::{Effect, substitute};
use crate::record::{Actor, Decision, Judgement, Verdict};
use crate::state::*;
use crate::{
    DEFAULT_ACK_MS, DEFAULT_COMMAND_TIMEOUT_MS, Engine, MESSAGE_TIMEOUT_MS, Out, add_ms, ms,
    person_actor,
};
use plan::schedule::Hours;
use plan::templates::{IncidentContext, TemplateContext, format_duration, format_time, render};

const DAY_MS: i64 = 86_400_000;

impl Engine {
    fn local(&self, t: Timestamp) -> String {
        format_time(t, &self.tz)
    }

    /// The template context at `now`: the plan's facts plus the run's state.
    fn context(
        &self,
        now: Timestamp,
        audience: Option<&str>,
        next_update: Option<Timestamp>,
    ) -> TemplateContext {
        let mut c = self.template_base.clone();
        c.now = self.local(now);
        c.run.env = self.state.env.clone();
        c.run.phase = self
            .state
            .phase
            .as_ref()
            .and_then(|p| self.plan.timeline.iter().find(|ph| ph.id.as_str() == p))
            .map(|ph| ph.title.value.clone())
            .unwrap_or_default();
        c.run.status = match self.state.status {
            RunStatus::NotStarted => "planned",
            RunStatus::Running if self.state.ramp.paused.is_some() => "paused",
            RunStatus::Running
                if matches!(
                    self.state.ramp.status,
                    RampStatus::Entering | RampStatus::Holding
                ) =>
            {
                "ramping"
            }
            RunStatus::Running => "in progress",
            RunStatus::Aborted => "called off",
            RunStatus::RolledBack => "rolled back",
            RunStatus::Completed => "complete",
        }
        .to_string();
        c.run.weight = self.state.ramp.weight;
        if let (Some(stage), Some(ramp)) = (self.state.ramp.stage, self.plan.ramp.as_ref()) {
            c.run.stage = format!(
                "{} of {} ({}%)",
                stage + 1,
                ramp.stages.len(),
                ramp.stages[stage].weight.value
            );
        }
        if let Some(t0) = self.state.t0_actual {
            c.run.t0_actual = self.local(t0);
            c.run.elapsed = format_duration(plan::Dur(
                crate::ms_between(t0, now).max(0) as u64 / 60_000 * 60_000,
            ));
        }
        c.run.next_update = next_update
            .map(|t| self.local(t))
            .unwrap_or_else(|| "as needed".to_string());
        if let Some(d) = self.state.rollback.as_ref().and_then(|r| r.duration_ms) {
            c.run.rollback_duration = format_duration(plan::Dur(d));
        }
        if let Some(i) = &self.state.incident {
            c.run.incident = IncidentContext {
                trigger: i.trigger.clone(),
                title: i.title.clone(),
                reason: i.reason.clone(),
                started: self.local(i.started),
                impact: i.impact.clone(),
            };
        }
        if let Some(a) = audience.and_then(|a| {
            self.plan
                .comms
                .as_ref()?
                .audiences
                .iter()
                .find(|x| x.id.as_str() == a)
        }) {
            c.audience.title = a.title.value.clone();
        }
        c
    }

    /// Renders free text (a status page message, a page's template) like a template body.
    fn render_text(&self, id: &str, text: &str, context: &TemplateContext) -> String {
        let template = plan::Template {
            id: plan::At::bare(id.to_string()),
            subject: None,
            body: plan::At::bare(text.to_string()),
        };
        match render(&template, context) {
            Ok(r) => r.body,
            Err(e) => format!("{text} [{e}]"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        out: &mut Out,
        actor: Actor,
        audience: &str,
        channels: Vec<String>,
        template: Option<String>,
        subject: String,
        body: String,
        key: &str,
    ) {
        let dedup_key = format!("{}/{key}", self.state.run_id);
        self.state.messages_sent += 1;
        self.request(
            out,
            actor,
            Effect::SendMessage {
                audience: audience.to_string(),
                channels,
                template,
                subject,
                body,
                dedup_key,
            },
            true,
            MESSAGE_TIMEOUT_MS,
            Purpose::Message,
            true,
        );
    }

    /// Sends a plan template to one audience.
    pub(crate) fn send_template(
        &mut self,
        out: &mut Out,
        actor: Actor,
        audience: &str,
        template: &str,
        key: &str,
        next_update: Option<Timestamp>,
    ) {
        let plan = Arc::clone(&self.plan);
        let comms = plan.comms.as_ref();
        let channels: Vec<String> = comms
            .and_then(|c| c.audiences.iter().find(|a| a.id.as_str() == audience))
            .map(|a| a.channels.iter().map(|ch| ch.value.clone()).collect())
            .unwrap_or_default();
        let context = self.context(out.now, Some(audience), next_update);
        let (subject, body) =
            match comms.and_then(|c| c.templates.iter().find(|t| t.id.as_str() == template)) {
                Some(t) => match render(t, &context) {
                    Ok(r) => (r.subject.unwrap_or_else(|| self.state.plan.clone()), r.body),
                    Err(e) => (
                        self.state.plan.clone(),
                        format!("(template `{template}` did not render: {e})"),
                    ),
                },
                None => (
                    self.state.plan.clone(),
                    format!("(template `{template}` is not in the plan)"),
                ),
            };
        self.send(
            out,
            actor,
            audience,
            channels,
            Some(template.to_string()),
            subject,
            body,
            key,
        );
    }

    /// A message from the engine itself to the people of a role.
    pub(crate) fn send_to_role(
        &mut self,
        out: &mut Out,
        actor: Actor,
        role: &str,
        subject: &str,
        body: &str,
        key: &str,
    ) {
        self.send(
            out,
            actor,
            &format!("role:{role}"),
            Vec::new(),
            None,
            subject.to_string(),
            body.to_string(),
            key,
        );
    }

    /// A message to every audience that hears of milestones.
    pub(crate) fn milestone(
        &mut self,
        out: &mut Out,
        actor: Actor,
        key: &str,
        subject: &str,
        body: &str,
    ) {
        let plan = Arc::clone(&self.plan);
        let Some(comms) = plan.comms.as_ref() else {
            return;
        };
        for audience in comms.audiences.iter().filter(|a| a.milestones) {
            let channels = audience.channels.iter().map(|c| c.value.clone()).collect();
            let key = format!("milestone/{key}/{}", audience.id.value);
            self.send(
                out,
                actor.clone(),
                &audience.id.value,
                channels,
                None,
                subject.to_string(),
                body.to_string(),
                &key,
            );
        }
    }

    // === pages ===

    /// Who is paged in turn for a role: its primary, its backup, then the role it
    /// escalates to, and so on.
    fn page_chain(&self, role: &str) -> Vec<(String, String)> {
        let mut chain = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut next = Some(role.to_string());
        while let Some(r) = next.take() {
            if !seen.insert(r.clone()) {
                break;
            }
            let Some(def) = self.plan.roles.iter().find(|x| x.id.as_str() == r) else {
                break;
            };
            chain.push((r.clone(), def.primary.value.clone()));
            if let Some(b) = &def.backup {
                chain.push((r.clone(), b.value.clone()));
            }
            next = def.escalates_to.as_ref().map(|e| e.value.clone());
        }
        chain
    }

    /// Pages a role; returns the page id. An open page to the same role for the same
    /// reason is not repeated. `about` names what the page is about (`step:<id>`,
    /// `approval:<stage>`, `pause`, `rule:<id>`, `task:<task>`, `rollback-weights`), so
    /// the page closes when that is settled.
    pub(crate) fn page(
        &mut self,
        out: &mut Out,
        actor: Actor,
        role: &str,
        reason: &str,
        ack_within_ms: Option<u64>,
        about: Option<&str>,
    ) -> Option<String> {
        if let Some(open) = self
            .state
            .pages
            .iter()
            .find(|p| p.is_open() && p.role == role && p.reason == reason)
        {
            return Some(open.id.clone());
        }
        let chain = self.page_chain(role);
        let (first_role, person) = chain.first()?.clone();
        let ack_within = ack_within_ms.unwrap_or(DEFAULT_ACK_MS);
        let id = format!("page-{}", self.state.pages.len() + 1);
        let ack_by = add_ms(out.now, ack_within as i64);
        self.state.pages.push(PageState {
            id: id.clone(),
            role: role.to_string(),
            reason: reason.to_string(),
            chain,
            level: 0,
            ack_within_ms: ack_within,
            ack_by,
            acked_by: None,
            acked_at: None,
            unanswered: false,
            about: about.map(str::to_string),
            closed: None,
        });
        self.request(
            out,
            actor,
            Effect::Page {
                page: id.clone(),
                role: first_role,
                person,
                reason: reason.to_string(),
                ack_by,
            },
            true,
            MESSAGE_TIMEOUT_MS,
            Purpose::Page,
            true,
        );
        Some(id)
    }

    /// Closes the open pages about `about`: what they asked a person to settle is settled,
    /// so they neither escalate nor keep the run from ending.
    pub(crate) fn close_pages(&mut self, out: &mut Out, actor: &Actor, about: &str, reason: &str) {
        self.close_pages_where(out, actor, &|a| a == about, reason);
    }

    pub(crate) fn close_pages_where(
        &mut self,
        out: &mut Out,
        actor: &Actor,
        about: &dyn Fn(&str) -> bool,
        reason: &str,
    ) {
        for p in 0..self.state.pages.len() {
            let page = &self.state.pages[p];
            if !page.is_open() || !page.about.as_deref().is_some_and(about) {
                continue;
            }
            let id = page.id.clone();
            self.state.pages[p].closed = Some(reason.to_string());
            out.decide(
                actor.clone(),
                Decision::PageClosed {
                    page: id,
                    reason: reason.to_string(),
                },
            );
        }
    }

    pub(crate) fn on_ack(
        &mut self,
        out: &mut Out,
        person: &str,
        target: &str,
    ) -> Result<Actor, String> {
        if !self.person_exists(person) {
            return Err(format!("no person `{person}` in the plan"));
        }
        if let Some(p) = self.state.pages.iter().position(|p| p.id == target) {
            let page = &self.state.pages[p];
            if let Some(by) = &page.acked_by {
                return Err(format!("{target} is already acknowledged by {by}"));
            }
            if let Some(why) = &page.closed {
                return Err(format!(
                    "{target} was closed ({why}): nothing to acknowledge"
                ));
            }
            let reached = &page.chain[..=page.level.min(page.chain.len().saturating_sub(1))];
            let Some((role, _)) = reached
                .iter()
                .find(|(r, who)| who == person || self.holds_role(person, r))
                .cloned()
            else {
                return Err(format!("`{person}` is not among those paged by {target}"));
            };
            let page = &mut self.state.pages[p];
            page.acked_by = Some(person.to_string());
            page.acked_at = Some(out.now);
            let actor = person_actor(person, Some(role));
            out.decide(
                actor.clone(),
                Decision::PageAcknowledged {
                    page: target.to_string(),
                    person: person.to_string(),
                },
            );
            return Ok(actor);
        }
        for r in 0..self.state.playbooks.len() {
            if let Some(a) = self.state.playbooks[r]
                .actions
                .iter()
                .position(|a| a.task == target)
            {
                let action = &self.state.playbooks[r].actions[a];
                if action.status == ActionStatus::Done {
                    return Err(format!("task {target} is already done"));
                }
                if action.kind != "task" {
                    return Err(format!(
                        "{target} is a `{}` action: it completes by itself",
                        action.kind
                    ));
                }
                let role = action.role.clone().unwrap_or_default();
                if !self.holds_role(person, &role) {
                    return Err(format!(
                        "`{person}` does not hold role `{role}`, which owns task {target}"
                    ));
                }
                self.state.playbooks[r].actions[a].status = ActionStatus::Done;
                let actor = person_actor(person, Some(role));
                out.decide(
                    actor.clone(),
                    Decision::ActionDone {
                        task: target.to_string(),
                    },
                );
                self.close_pages(
                    out,
                    &actor,
                    &format!("task:{target}"),
                    &format!("task {target} is done"),
                );
                return Ok(actor);
            }
        }
        Err(format!("no page or playbook task named `{target}`"))
    }

    // === playbooks ===

    pub(crate) fn start_playbook(
        &mut self,
        out: &mut Out,
        actor: Actor,
        playbook: &str,
        cause: &str,
        reason: &str,
    ) {
        let plan = Arc::clone(&self.plan);
        let Some(def) = plan.playbooks.iter().find(|p| p.id.as_str() == playbook) else {
            out.decide(
                actor,
                Decision::Note {
                    text: format!("playbook `{playbook}` is not in the plan; nothing started"),
                },
            );
            return;
        };
        let n = self
            .state
            .playbooks
            .iter()
            .filter(|p| p.playbook == playbook)
            .count()
            + 1;
        let run = format!("{playbook}#{n}");
        let r = self.state.playbooks.len();
        self.state.playbooks.push(PlaybookRun {
            run: run.clone(),
            playbook: playbook.to_string(),
            cause: cause.to_string(),
            started_at: out.now,
            actions: Vec::new(),
        });
        out.decide(
            actor.clone(),
            Decision::PlaybookStarted {
                playbook: playbook.to_string(),
                run: run.clone(),
                cause: cause.to_string(),
            },
        );
        for (a, action) in def.actions.iter().enumerate() {
            let task = format!("{run}/{}", action.id.value);
            let due = add_ms(out.now, ms(&action.within) as i64);
            let mut st = ActionState {
                task: task.clone(),
                title: action.title.value.clone(),
                kind: String::new(),
                role: None,
                due,
                status: ActionStatus::Done,
                page: None,
            };
            if let Some(notify) = &action.notify {
                st.kind = "notify".to_string();
                for audience in &notify.audiences {
                    self.send_template(
                        out,
                        actor.clone(),
                        audience,
                        &notify.template,
                        &format!("{task}/{}", audience.value),
                        None,
                    );
                }
            } else if let Some(page) = &action.page {
                st.kind = "page".to_string();
                st.role = Some(page.role.value.clone());
                let context = self.context(out.now, None, None);
                let text = match page.template.as_ref().and_then(|t| {
                    plan.comms
                        .as_ref()?
                        .templates
                        .iter()
                        .find(|x| x.id.as_str() == t.as_str())
                }) {
                    Some(t) => self.render_text(&t.id.value, &t.body.value, &context),
                    None => format!("{}: {cause}: {reason}", action.title.value),
                };
                st.page = self.page(
                    out,
                    actor.clone(),
                    &page.role.value,
                    &text,
                    page.ack_within.as_ref().map(|d| ms(d)),
                    None,
                );
                st.status = if st.page.is_some() {
                    ActionStatus::Open
                } else {
                    ActionStatus::Done
                };
            } else if let Some(role) = &action.task {
                st.kind = "task".to_string();
                st.role = Some(role.value.clone());
                st.status = ActionStatus::Open;
                out.decide(
                    actor.clone(),
                    Decision::TaskAssigned {
                        task: task.clone(),
                        role: role.value.clone(),
                        due,
                    },
                );
            } else if let Some(status) = &action.status {
                st.kind = "status".to_string();
                let context = self.context(out.now, None, None);
                let status_name = serde_json::to_value(status.status.value)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                self.request(
                    out,
                    actor.clone(),
                    Effect::UpdateStatusPage {
                        status: status_name,
                        message: self.render_text(
                            &action.id.value,
                            &status.message.value,
                            &context,
                        ),
                    },
                    true,
                    MESSAGE_TIMEOUT_MS,
                    Purpose::StatusPage,
                    true,
                );
            } else if let Some(command) = &action.run {
                st.kind = "run".to_string();
                st.status = ActionStatus::Open;
                let command = substitute(command, &self.vars);
                self.request(
                    out,
                    actor.clone(),
                    Effect::RunCommand {
                        step: task.clone(),
                        command,
                    },
                    false,
                    DEFAULT_COMMAND_TIMEOUT_MS,
                    Purpose::PlaybookCommand { run: r, action: a },
                    true,
                );
            }
            self.state.playbooks[r].actions.push(st);
        }
    }

    pub(crate) fn playbook_command_done(
        &mut self,
        out: &mut Out,
        run: usize,
        action: usize,
        failure: Option<String>,
    ) {
        let Some(st) = self
            .state
            .playbooks
            .get_mut(run)
            .and_then(|r| r.actions.get_mut(action))
        else {
            return;
        };
        if st.status == ActionStatus::Done {
            return;
        }
        let task = st.task.clone();
        match failure {
            None => {
                st.status = ActionStatus::Done;
                out.decide(Actor::Executor, Decision::ActionDone { task });
            }
            Some(reason) => {
                out.decide(
                    Actor::Executor,
                    Decision::EffectFailed {
                        id: 0,
                        kind: "run_command".to_string(),
                        reason: format!("{task}: {reason}"),
                    },
                );
            }
        }
    }

    pub(crate) fn pages_and_tasks(&mut self, out: &mut Out) {
        for p in 0..self.state.pages.len() {
            let page = &self.state.pages[p];
            if !page.is_open() || page.ack_by > out.now {
                continue;
            }
            let id = page.id.clone();
            if page.level + 1 < page.chain.len() {
                let level = page.level + 1;
                let (role, person) = page.chain[level].clone();
                let ack_by = add_ms(out.now, page.ack_within_ms as i64);
                let reason = format!("(escalated: no acknowledgement in time) {}", page.reason);
                let page = &mut self.state.pages[p];
                page.level = level;
                page.ack_by = ack_by;
                out.decide(
                    Actor::Schedule,
                    Decision::PageEscalated {
                        page: id.clone(),
                        role: role.clone(),
                        person: person.clone(),
                    },
                );
                self.request(
                    out,
                    Actor::Schedule,
                    Effect::Page {
                        page: id,
                        role,
                        person,
                        reason,
                        ack_by,
                    },
                    true,
                    MESSAGE_TIMEOUT_MS,
                    Purpose::Page,
                    true,
                );
            } else {
                self.state.pages[p].unanswered = true;
                out.decide(Actor::Schedule, Decision::PageUnanswered { page: id });
            }
        }
        for r in 0..self.state.playbooks.len() {
            for a in 0..self.state.playbooks[r].actions.len() {
                let action = &self.state.playbooks[r].actions[a];
                if action.status != ActionStatus::Open {
                    continue;
                }
                if let Some(page) = &action.page
                    && self
                        .state
                        .pages
                        .iter()
                        .any(|p| &p.id == page && p.acked_by.is_some())
                {
                    let task = action.task.clone();
                    self.state.playbooks[r].actions[a].status = ActionStatus::Done;
                    out.decide(Actor::System, Decision::ActionDone { task });
                    continue;
                }
                if action.due <= out.now {
                    let (task, role, kind) = (
                        action.task.clone(),
                        action.role.clone().unwrap_or_default(),
                        action.kind.clone(),
                    );
                    self.state.playbooks[r].actions[a].status = ActionStatus::Overdue;
                    out.decide(
                        Actor::Schedule,
                        Decision::ActionOverdue {
                            task: task.clone(),
                            role: role.clone(),
                        },
                    );
                    if kind == "task" && !role.is_empty() {
                        self.page(
                            out,
                            Actor::Schedule,
                            &role,
                            &format!("Task {task} is overdue"),
                            None,
                            Some(&format!("task:{task}")),
                        );
                    }
                }
            }
        }
    }

    // === schedules: cadences, dated messages, success, follow-ups ===

    fn cadence_windows(&self, cadence: &plan::Cadence) -> Vec<(Timestamp, Option<Timestamp>)> {
        let windows: Vec<plan::Window> = if !cadence.during.is_empty() {
            cadence
                .during
                .iter()
                .filter_map(|p| {
                    self.plan
                        .timeline
                        .iter()
                        .find(|ph| ph.id.as_str() == p.as_str())
                        .map(|ph| ph.window.value)
                })
                .collect()
        } else if let Some(w) = &cadence.window {
            vec![**w]
        } else if let Some(w) = &self.plan.window {
            vec![**w]
        } else {
            Vec::new()
        };
        windows
            .into_iter()
            .filter_map(|w| Some((self.resolve(w.start)?, self.resolve(w.end))))
            .collect()
    }

    /// The first occurrence of a cadence strictly after `after`.
    fn cadence_next(&self, c: usize, after: Timestamp) -> Option<Timestamp> {
        let cadence = &self.plan.comms.as_ref()?.cadences[c];
        let every = ms(&cadence.every) as i64;
        if every <= 0 {
            return None;
        }
        let hours = cadence.hours.as_ref().and_then(|h| Hours::parse(h));
        let mut best: Option<Timestamp> = None;
        for (start, end) in self.cadence_windows(cadence) {
            if end.is_some_and(|e| e <= after) {
                continue;
            }
            let k = if after < start {
                0
            } else {
                (after.as_millisecond() - start.as_millisecond()) / every + 1
            };
            let mut t = add_ms(start, k * every);
            for _ in 0..100_000 {
                if end.is_some_and(|e| t >= e) || best.is_some_and(|b| t >= b) {
                    break;
                }
                if hours.as_ref().is_none_or(|h| self.in_hours(h, t)) {
                    best = Some(t);
                    break;
                }
                t = add_ms(t, every);
            }
        }
        best
    }

    fn in_hours(&self, hours: &Hours, t: Timestamp) -> bool {
        hours.contains(&t.to_zoned_datetime(self.tz.clone()))
    }

    /// Computes the times of cadences, dated messages, success and follow-ups that can be
    /// known now; called at start and again when "go" sets T0.
    pub(crate) fn schedule_comms(&mut self, out: &mut Out) {
        let plan = Arc::clone(&self.plan);
        let started = self.state.started_at.unwrap_or(out.now);
        if let Some(comms) = plan.comms.as_ref() {
            for (c, cadence) in comms.cadences.iter().enumerate() {
                if cadence
                    .hours
                    .as_ref()
                    .is_some_and(|h| Hours::parse(h).is_none())
                    && self.state.cadences[c].sent == 0
                    && self.state.t0_actual.is_none()
                {
                    out.decide(
                        Actor::System,
                        Decision::Note {
                            text: format!(
                                "cadence `{}`: cannot read hours `{}`; it sends at any hour",
                                cadence.id.value,
                                cadence
                                    .hours
                                    .as_ref()
                                    .map(|h| h.value.clone())
                                    .unwrap_or_default()
                            ),
                        },
                    );
                }
                let after = self.state.cadences[c]
                    .last_sent
                    .unwrap_or(add_ms(started, -1));
                self.state.cadences[c].next_at = self.cadence_next(c, after);
            }
            for (d, message) in comms.messages.iter().enumerate() {
                if self.state.dated[d].done || self.state.dated[d].at.is_some() {
                    continue;
                }
                let at = self.resolve(message.at.value);
                self.state.dated[d].at = at;
                if let Some(at) = at
                    && at < started
                {
                    self.state.dated[d].done = true;
                    out.decide(
                        Actor::System,
                        Decision::MessageSkipped {
                            message: message.id.value.clone(),
                            reason: format!(
                                "its time ({}) passed before the run started",
                                self.local(at)
                            ),
                        },
                    );
                }
            }
        }
        if let Some(success) = plan.success.as_ref() {
            self.state.success.at = self.resolve_after_t0(success.at.value);
        }
        for (f, followup) in plan.followups.iter().enumerate() {
            self.state.followups[f].due_at = self.resolve_after_t0(followup.due.value);
        }
    }

    pub(crate) fn comms_due(&mut self, out: &mut Out) {
        if self.state.status != RunStatus::Running {
            return;
        }
        let plan = Arc::clone(&self.plan);
        let Some(comms) = plan.comms.as_ref() else {
            return;
        };
        for (c, cadence) in comms.cadences.iter().enumerate() {
            let Some(mut occurrence) = self.state.cadences[c].next_at.filter(|t| *t <= out.now)
            else {
                continue;
            };
            // After a gap, one message for the latest missed occurrence, not a burst.
            let mut next = self.cadence_next(c, occurrence);
            while let Some(n) = next.filter(|n| *n <= out.now) {
                occurrence = n;
                next = self.cadence_next(c, n);
            }
            let st = &mut self.state.cadences[c];
            st.last_sent = Some(occurrence);
            st.next_at = next;
            st.sent += 1;
            let key = format!(
                "cadence/{}/{}",
                cadence.id.value,
                occurrence.as_millisecond()
            );
            self.send_template(
                out,
                Actor::Schedule,
                &cadence.audience,
                &cadence.template,
                &key,
                next,
            );
        }
        for (d, message) in comms.messages.iter().enumerate() {
            let st = &self.state.dated[d];
            if st.done || st.at.is_none_or(|t| t > out.now) {
                continue;
            }
            self.state.dated[d].done = true;
            for audience in &message.audiences {
                let key = format!("dated/{}/{}", message.id.value, audience.value);
                self.send_template(
                    out,
                    Actor::Schedule,
                    audience,
                    &message.template,
                    &key,
                    None,
                );
            }
        }
    }

    pub(crate) fn success_and_followups(&mut self, out: &mut Out) {
        if self.state.status != RunStatus::Running {
            return;
        }
        if !self.state.success.evaluated && self.state.success.at.is_some_and(|t| t <= out.now) {
            self.state.success.evaluated = true;
            self.evaluate_success(out, Actor::Schedule);
        }
        let plan = Arc::clone(&self.plan);
        for f in 0..self.state.followups.len() {
            let st = &self.state.followups[f];
            let Some(due) = st.due_at else { continue };
            if st.done_by.is_some() {
                continue;
            }
            let id = st.id.clone();
            let owner = plan.followups[f].owner.value.clone();
            let remind_at = add_ms(due, -DAY_MS);
            if !st.reminded && remind_at <= out.now && due > out.now {
                self.state.followups[f].reminded = true;
                out.decide(
                    Actor::Schedule,
                    Decision::FollowUpReminder {
                        task: id.clone(),
                        due,
                    },
                );
                let text = format!(
                    "Follow-up `{id}` ({}) is due {}.",
                    plan.followups[f].title.value,
                    self.local(due)
                );
                self.send_to_role(
                    out,
                    Actor::Schedule,
                    &owner,
                    "Follow-up due soon",
                    &text,
                    &format!("followup-reminder/{id}"),
                );
            }
            let st = &self.state.followups[f];
            if !st.overdue && due <= out.now {
                self.state.followups[f].overdue = true;
                self.state.followups[f].reminded = true;
                out.decide(
                    Actor::Schedule,
                    Decision::FollowUpOverdue { task: id.clone() },
                );
                let text = format!(
                    "Follow-up `{id}` ({}) was due {} and is not done.",
                    plan.followups[f].title.value,
                    self.local(due)
                );
                self.send_to_role(
                    out,
                    Actor::Schedule,
                    &owner,
                    "Follow-up overdue",
                    &text,
                    &format!("followup-overdue/{id}"),
                );
            }
        }
    }

    fn evaluate_success(&mut self, out: &mut Out, actor: Actor) {
        let plan = Arc::clone(&self.plan);
        let Some(success) = plan.success.as_ref() else {
            return;
        };
        let canary = self.canary_group();
        let mut judgements = Vec::new();
        for c in &success.criteria {
            let id = c.id.value.clone();
            let (verdict, detail) = if let Some(waiver) = self.state.success.waived.get(&id) {
                (Verdict::Pass, format!("waived: {waiver}"))
            } else if let Some(m) = &c.metric {
                if let Some(judgement) =
                    self.unjudgeable(&format!("{id}: {}", c.title.value), &m.sli, canary)
                {
                    judgements.push(judgement);
                    continue;
                }
                match self.state.since_t0.get(&format!("{}/{canary}", m.sli)) {
                    Some(stats) if stats.count > 0 => {
                        let mean = stats.sum / stats.count as f64;
                        let unit = m.threshold.unit;
                        let detail = format!(
                            "mean {mean:.4}{unit} over {} readings since T0 (min {}{unit}, max {}{unit}, {} inconclusive)",
                            stats.count,
                            stats.min.unwrap_or(mean),
                            stats.max.unwrap_or(mean),
                            stats.inconclusive
                        );
                        (
                            if m.comparison.holds(mean, m.threshold.value) {
                                Verdict::Pass
                            } else {
                                Verdict::Fail
                            },
                            detail,
                        )
                    }
                    _ => (Verdict::Inconclusive, "no readings since T0".to_string()),
                }
            } else if let Some(by) = self.state.success.signed.get(&id) {
                (Verdict::Pass, format!("signed off by {by}"))
            } else {
                (
                    Verdict::Inconclusive,
                    format!("not signed off (owner: {})", c.owner.value),
                )
            };
            judgements.push(Judgement::new(
                format!("{id}: {}", c.title.value),
                verdict,
                detail,
            ));
        }
        let verdict = if judgements.iter().any(|j| j.verdict == Verdict::Fail) {
            Verdict::Fail
        } else if judgements
            .iter()
            .any(|j| j.verdict == Verdict::Inconclusive)
        {
            Verdict::Inconclusive
        } else {
            Verdict::Pass
        };
        self.state.success.verdict = Some(verdict);
        self.state.success.judgements = judgements.clone();
        out.decide(
            actor,
            Decision::SuccessEvaluated {
                verdict,
                judgements,
            },
        );
    }

    pub(crate) fn sign_off_criterion(
        &mut self,
        out: &mut Out,
        person: &str,
        target: &str,
    ) -> Result<Option<Actor>, String> {
        let plan = Arc::clone(&self.plan);
        let Some(c) = plan
            .success
            .as_ref()
            .and_then(|s| s.criteria.iter().find(|c| c.id.as_str() == target))
        else {
            return Ok(None);
        };
        if !self.holds_role(person, &c.owner) {
            return Err(format!(
                "`{person}` does not hold role `{}`, which owns criterion `{target}`",
                c.owner.value
            ));
        }
        if c.metric.is_some() {
            return Err(format!(
                "criterion `{target}` is judged on metrics, not signed off"
            ));
        }
        if let Some(by) = self.state.success.signed.get(target) {
            return Err(format!(
                "criterion `{target}` is already signed off by {by}"
            ));
        }
        self.state
            .success
            .signed
            .insert(target.to_string(), person.to_string());
        let actor = person_actor(person, Some(c.owner.value.clone()));
        out.decide(
            actor.clone(),
            Decision::CriterionSignedOff {
                criterion: target.to_string(),
            },
        );
        if self.state.success.evaluated {
            self.evaluate_success(out, actor.clone());
        }
        Ok(Some(actor))
    }

    pub(crate) fn waive_criterion(
        &mut self,
        out: &mut Out,
        actor: Actor,
        target: &str,
        reason: &str,
    ) -> Result<bool, String> {
        let exists = self
            .plan
            .success
            .as_ref()
            .is_some_and(|s| s.criteria.iter().any(|c| c.id.as_str() == target));
        if !exists {
            return Ok(false);
        }
        if self.state.success.waived.contains_key(target) {
            return Err(format!("criterion `{target}` is already waived"));
        }
        self.state
            .success
            .waived
            .insert(target.to_string(), reason.to_string());
        out.decide(
            actor.clone(),
            Decision::Note {
                text: format!("success criterion `{target}` waived: {reason}"),
            },
        );
        if self.state.success.evaluated {
            self.evaluate_success(out, actor);
        }
        Ok(true)
    }

    pub(crate) fn sign_off_followup(
        &mut self,
        out: &mut Out,
        person: &str,
        target: &str,
    ) -> Result<Option<Actor>, String> {
        let Some(f) = self.state.followups.iter().position(|f| f.id == target) else {
            return Ok(None);
        };
        let owner = self.state.followups[f].owner.clone();
        if !self.holds_role(person, &owner) {
            return Err(format!(
                "`{person}` does not hold role `{owner}`, which owns follow-up `{target}`"
            ));
        }
        if let Some(by) = &self.state.followups[f].done_by {
            return Err(format!("follow-up `{target}` is already done (by {by})"));
        }
        if self.state.t0_actual.is_none() {
            return Err(format!(
                "follow-up `{target}` opens once the go-live has happened"
            ));
        }
        self.state.followups[f].done_by = Some(person.to_string());
        self.state.followups[f].done_at = Some(out.now);
        let actor = person_actor(person, Some(owner));
        out.decide(
            actor.clone(),
            Decision::FollowUpDone {
                task: target.to_string(),
            },
        );
        Ok(Some(actor))
    }

    pub(crate) fn maybe_finish(&mut self, out: &mut Out) {
        if self.state.ended_at.is_some() || !self.state.pending.is_empty() {
            return;
        }
        if self.state.pages.iter().any(|p| p.is_open())
            || self
                .state
                .playbooks
                .iter()
                .any(|r| r.actions.iter().any(|a| a.status == ActionStatus::Open))
        {
            return;
        }
        match self.state.status {
            RunStatus::Running => {
                let timeline_done = self.state.cursor >= self.state.steps.len();
                let ramp_done =
                    self.plan.ramp.is_none() || self.state.ramp.status == RampStatus::Completed;
                let success_done = self.plan.success.is_none() || self.state.success.evaluated;
                let followups_done = self
                    .state
                    .followups
                    .iter()
                    .all(|f| f.done_by.is_some() || f.overdue);
                let comms_done = self.state.dated.iter().all(|d| d.done)
                    && self.state.cadences.iter().all(|c| c.next_at.is_none());
                if timeline_done && ramp_done && success_done && followups_done && comms_done {
                    self.state.status = RunStatus::Completed;
                    self.state.ended_at = Some(out.now);
                    let reason = "every step, stage, criterion, message and follow-up is behind us"
                        .to_string();
                    self.state.end_reason = Some(reason.clone());
                    out.decide(
                        Actor::System,
                        Decision::RunEnded {
                            status: "completed".to_string(),
                            reason,
                        },
                    );
                }
            }
            RunStatus::Aborted | RunStatus::RolledBack => {
                if let Some(rb) = &self.state.rollback
                    && (rb.confirmed_at.is_none() || rb.cursor < rb.steps.len())
                {
                    return;
                }
                self.state.ended_at = Some(out.now);
                let reason = self.state.end_reason.clone().unwrap_or_default();
                out.decide(
                    Actor::System,
                    Decision::RunEnded {
                        status: self.state.status.as_str().to_string(),
                        reason,
                    },
                );
            }
            _ => {}
        }
    }

    pub(crate) fn comms_deadlines(&self, consider: &mut impl FnMut(Option<Timestamp>)) {
        for p in &self.state.pages {
            if p.is_open() {
                consider(Some(p.ack_by));
            }
        }
        for r in &self.state.playbooks {
            for a in &r.actions {
                if a.status == ActionStatus::Open {
                    consider(Some(a.due));
                }
            }
        }
        if self.state.status != RunStatus::Running {
            return;
        }
        for c in &self.state.cadences {
            consider(c.next_at);
        }
        for d in &self.state.dated {
            if !d.done {
                consider(d.at);
            }
        }
        if !self.state.success.evaluated {
            consider(self.state.success.at);
        }
        for f in &self.state.followups {
            if f.done_by.is_some() {
                continue;
            }
            if let Some(due) = f.due_at {
                if !f.reminded {
                    consider(Some(add_ms(due, -DAY_MS)));
                }
                if !f.overdue {
                    consider(Some(due));
                }
            }
        }
    }
}
