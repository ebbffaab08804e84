//! The run's status as `golive status` and `/api/v1/status` show it, built from the
//! engine's state after every input.

use engine::Engine;
use engine::state::{ActionStatus, ItemStatus, RampStatus, RunState, StepStatus};
use jiff::Timestamp;
use plan::Plan;
use server::{
    ChecklistView, OpenActionView, RampView, RuleView, StatusView, UnknownView, UpcomingView,
};

/// A status with absolute times; countdowns are filled in when it is read.
#[derive(Debug, Clone)]
pub struct StatusSnapshot {
    pub view: StatusView,
    upcoming: Vec<(Timestamp, String, String)>,
}

fn fmt(t: Timestamp) -> String {
    format!("{t:.0}")
}

impl StatusSnapshot {
    pub fn build(engine: &Engine, plan: &Plan, last_seq: u64) -> StatusSnapshot {
        let state = engine.state();
        let t0 = state.t0_actual.unwrap_or(state.t0_planned);
        let mut upcoming = upcoming(state);
        upcoming.sort();
        upcoming.truncate(10);
        let upcoming = upcoming
            .into_iter()
            .map(|(at, what)| {
                let offset = offset_label(at, t0);
                (at, offset, what)
            })
            .collect();
        let ramp = &state.ramp;
        let view = StatusView {
            run_id: state.run_id.clone(),
            plan: state.plan.clone(),
            env: state.env.clone(),
            now: String::new(),
            phase: state.phase.clone(),
            state: state.status.as_str().to_owned(),
            t0_planned: fmt(state.t0_planned),
            t0_actual: state.t0_actual.map(fmt),
            ramp: RampView {
                weight: u32::from(ramp.weight),
                stage: ramp.stage.map(|s| s + 1).unwrap_or(0),
                stages: plan.ramp.as_ref().map(|r| r.stages.len()).unwrap_or(0),
                state: match &ramp.paused {
                    Some(pause) => format!("paused ({})", pause.reason),
                    None => serde_json::to_value(ramp.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                },
                hold_ends: ramp.hold_until.filter(|_| holding(state)).map(fmt),
                rollback_duration_ms: state.rollback.as_ref().and_then(|r| r.duration_ms),
            },
            next: Vec::new(),
            rules: state
                .rules
                .iter()
                .filter(|rule| rule.evaluable)
                .map(|rule| RuleView {
                    id: rule.id.clone(),
                    state: if rule.alert_firing {
                        "firing (alert)".to_owned()
                    } else if rule.tracker.is_inconclusive() {
                        "inconclusive".to_owned()
                    } else if !rule.active {
                        "idle".to_owned()
                    } else {
                        serde_json::to_value(rule.tracker.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    },
                    value: rule.tracker.last_value,
                    since: rule
                        .tracker
                        .firing_since
                        .or(rule.tracker.active_since)
                        .map(fmt),
                })
                .collect(),
            open_actions: open_actions(state),
            outcome_unknown: state
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::OutcomeUnknown)
                .map(|s| UnknownView {
                    effect: s.effect.unwrap_or(0),
                    what: format!("{} ({})", s.title, s.id),
                })
                .collect(),
            checklists: state
                .checklists
                .iter()
                .map(|c| ChecklistView {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    done: c
                        .items
                        .iter()
                        .filter(|i| i.status == ItemStatus::Done)
                        .count(),
                    waived: c
                        .items
                        .iter()
                        .filter(|i| i.status == ItemStatus::Waived)
                        .count(),
                    total: c.items.len(),
                    due: c.due_at.map(fmt).unwrap_or_default(),
                })
                .collect(),
            last_seq,
        };
        StatusSnapshot { view, upcoming }
    }

    /// The view as of `now`, with countdowns.
    pub fn at(&self, now: Timestamp) -> StatusView {
        let mut view = self.view.clone();
        view.now = fmt(now);
        view.next = self
            .upcoming
            .iter()
            .map(|(at, offset, what)| UpcomingView {
                at: fmt(*at),
                offset: offset.clone(),
                what: what.clone(),
                in_seconds: at.duration_since(now).as_secs(),
            })
            .collect();
        view
    }
}

fn offset_label(at: Timestamp, t0: Timestamp) -> String {
    let ms = at.duration_since(t0).as_millis() as i64;
    plan::Offset::from_millis(ms - ms % 1000).to_string()
}

fn upcoming(state: &RunState) -> Vec<(Timestamp, String)> {
    let mut out = Vec::new();
    for step in &state.steps {
        let Some(due) = step.due else { continue };
        match step.status {
            StepStatus::Waiting => out.push((due, format!("step: {}", step.title))),
            // Open and waiting for people: its due time is what everyone counts down to
            // (the go/no-go decision before T0), and stays listed, "ago", when it is late.
            StepStatus::Running if step.kind == "gate" => {
                out.push((due, format!("decision due: {}", step.title)))
            }
            StepStatus::Running if step.kind == "roll_call" => {
                out.push((due, format!("roll call due: {}", step.title)))
            }
            _ => {}
        }
    }
    for checklist in &state.checklists {
        if !checklist.complete
            && let Some(due) = checklist.due_at
        {
            out.push((due, format!("checklist due: {}", checklist.title)));
        }
    }
    if let Some(hold) = state.ramp.hold_until
        && !state.ramp.hold_over
        && holding(state)
    {
        out.push((hold, format!("hold ends at {} %", state.ramp.weight)));
    }
    if let Some(at) = state.success.at
        && !state.success.evaluated
    {
        out.push((at, "success criteria checked".to_owned()));
    }
    for dated in &state.dated {
        if !dated.done
            && let Some(at) = dated.at
        {
            out.push((at, format!("message: {}", dated.id)));
        }
    }
    for followup in &state.followups {
        if followup.done_by.is_none()
            && let Some(due) = followup.due_at
        {
            out.push((due, format!("follow-up due: {}", followup.title)));
        }
    }
    out
}

/// A stage's hold counts only while the ramp holds it: after a rollback or the last stage
/// the engine keeps the time, but nothing ends then.
fn holding(state: &RunState) -> bool {
    state.ramp.status == RampStatus::Holding
}

fn open_actions(state: &RunState) -> Vec<OpenActionView> {
    let mut out = Vec::new();
    for page in state.pages.iter().filter(|p| p.is_open()) {
        let who = page
            .chain
            .get(page.level)
            .map(|(_, person)| person.clone())
            .unwrap_or_default();
        out.push(OpenActionView {
            id: page.id.clone(),
            kind: "page".to_owned(),
            what: format!("page {who}: {}", page.reason),
            role: Some(page.role.clone()),
            due: Some(fmt(page.ack_by)),
        });
    }
    for run in &state.playbooks {
        for action in run
            .actions
            .iter()
            .filter(|a| a.status != ActionStatus::Done && a.page.is_none())
        {
            out.push(OpenActionView {
                id: action.task.clone(),
                kind: "task".to_owned(),
                what: action.title.clone(),
                role: action.role.clone(),
                due: Some(fmt(action.due)),
            });
        }
    }
    for step in state
        .steps
        .iter()
        .filter(|s| s.status.is_stuck() || s.status == StepStatus::Running)
    {
        out.push(OpenActionView {
            id: step.id.clone(),
            kind: step.kind.clone(),
            what: format!("{} — {}", step.title, step_state_label(step.status)),
            role: None,
            due: step.deadline.map(fmt),
        });
    }
    out
}

fn step_state_label(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Failed => "failed, waiting for a person (resolve, retry or waive)",
        StepStatus::OutcomeUnknown => "outcome unknown, waiting for a person",
        StepStatus::Running => "running",
        _ => "open",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"golive: 1
meta:
  name: Status test
  owner: release
t0: "2025-08-23T06:00:00+00:00[UTC]"
people:
  - id: rita
    name: Rita Release
roles:
  - id: release
    title: Release Manager
    primary: rita
    authorities: [go_no_go]
environments:
  - id: test
timeline:
  - id: cutover
    title: Cutover
    window: { start: T-1:00, end: T+1:00 }
    steps:
      - id: go_no_go
        at: T-0:00
        title: Go/no-go
        owner: release
        gate: { sets_t0: true }
"#;

    #[test]
    fn an_open_gate_is_among_the_next_items_with_its_countdown() {
        let loaded = plan::load("plan.yaml", PLAN.as_bytes());
        assert_eq!(loaded.errors(), 0, "{}", loaded.render());
        let plan = std::sync::Arc::new(loaded.plan.expect("the plan loads"));
        let mut engine = Engine::new(plan.clone(), "test", "run").expect("an engine");
        let start: Timestamp = "2025-08-23T05:59:50Z".parse().unwrap();
        engine.handle(start, engine::Input::Start);
        let snapshot = StatusSnapshot::build(&engine, &plan, 1);
        let view = snapshot.at(start);
        let gate = view
            .next
            .iter()
            .find(|n| n.what == "decision due: Go/no-go")
            .unwrap_or_else(|| panic!("the gate is not among the next items: {:?}", view.next));
        assert_eq!(gate.in_seconds, 10);
        assert_eq!(gate.offset, "T-0:00");
        let late = snapshot.at("2025-08-23T06:00:05Z".parse().unwrap());
        assert!(
            late.next.iter().any(|n| n.in_seconds == -5),
            "{:?}",
            late.next
        );
    }
}
