//! The engine's behaviour on the small fixture plan: T0 follows "go", failed steps apply
//! their consequence, rollbacks retry until the router confirms, pages escalate, alerts
//! map to rules and triggers, rules without a query are inactive.

mod common;

use std::sync::Arc;

use engine::{Decision, Engine, Input, Record, RecordBody};
use jiff::Timestamp;

fn texts(log: &[Record], kind: &str) -> Vec<String> {
    let r = engine::rehearsal::report::offset_text;
    let t0 = log
        .iter()
        .find_map(|x| match &x.body {
            RecordBody::Decision(Decision::Go {
                t0_actual: Some(t), ..
            }) => Some(*t),
            _ => None,
        })
        .unwrap_or("2025-08-23T06:00:00Z".parse().unwrap());
    log.iter()
        .filter_map(|x| match &x.body {
            RecordBody::Decision(d) if serde_json::to_value(d).unwrap()["decision"] == kind => {
                Some(format!(
                    "{} {}",
                    r(t0, x.at),
                    engine::rehearsal::report::decision_text(d).unwrap_or_default()
                ))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_late_go_moves_everything_after_the_gate() {
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        "env: staging\npeople: { go: false }\nactions:\n  - { at: T-0:00, pause: { person: sarah, reason: not yet } }\n  - { at: T+0:12, decide: { person: sarah, gate: go_no_go, go: true, reason: 12 minutes late } }\n",
    );
    let planned: Timestamp = "2025-08-23T06:00:00Z".parse().unwrap();
    assert_eq!(
        r.report.t0_actual,
        Some("2025-08-23T06:12:00Z".parse().unwrap())
    );
    let go = texts(&r.log, "go");
    assert_eq!(
        go,
        vec![
            "T+0:00:00 GO at go_no_go (12 minutes late); T0 actual is now, 12m00s after the planned T0"
        ]
    );
    // `deploy` at T+0:10 runs 10 minutes after the actual T0, not the planned one.
    let deploy = r
        .log
        .iter()
        .find(|x| matches!(&x.body, RecordBody::Decision(Decision::StepStarted { step, .. }) if step == "deploy"))
        .unwrap();
    assert_eq!(
        deploy.at,
        planned
            .checked_add(jiff::SignedDuration::from_mins(22))
            .unwrap()
    );
    // The pause before the ramp held its start until sarah... never resumed: no stage.
    assert!(r.report.weights.is_empty(), "{:?}", r.report.weights);
    assert_eq!(r.report.outcome, "running");
}

#[test]
fn an_early_go_is_accepted_once_the_steps_before_the_gate_are_done() {
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        "env: staging\npeople: { go: false }\nactions:\n  - { at: T-0:20, decide: { person: sarah, gate: go_no_go, go: true, reason: ready early } }\n",
    );
    assert_eq!(
        r.report.t0_actual,
        Some("2025-08-23T05:40:00Z".parse().unwrap())
    );
    assert_eq!(
        texts(&r.log, "go"),
        vec![
            "T+0:00:00 GO at go_no_go (ready early); T0 actual is now, 20m00s before the planned T0"
        ]
    );
    assert_eq!(r.report.outcome, "completed");
}

#[test]
fn a_failed_step_with_rollback_consequence_rolls_back() {
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        "env: staging\noutcomes:\n  deploy: { fail: helm timed out }\n",
    );
    assert_eq!(
        texts(&r.log, "step_failed"),
        vec!["T+0:10:00 step deploy FAILED: helm timed out → roll back"]
    );
    let rb = r.report.rollback.as_ref().unwrap();
    assert_eq!(
        (rb.cause.as_str(), rb.triggered.as_str(), rb.duration_ms),
        ("step deploy", "T+0:10:00", Some(0))
    );
    assert_eq!(r.report.outcome, "rolled_back");
}

#[test]
fn a_halted_step_waits_for_a_person() {
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        "env: staging\noutcomes:\n  smoke: { fail: 1 of 3 checks failed, times: 1 }\nactions:\n  - { at: T+0:40, resolve: { person: marcus, target: smoke, outcome: retry } }\n",
    );
    assert_eq!(
        texts(&r.log, "step_failed"),
        vec![
            "T+0:20:00 step smoke FAILED: 1 of 3 checks failed → halt: the timeline waits for a person to retry, resolve or waive it"
        ]
    );
    // The ramp (due at T+0:30) waited for the retry at T+0:40.
    assert_eq!(r.report.weights[0].t, "T+0:40:00");
    assert_eq!(r.report.outcome, "completed");
}

#[test]
fn a_rollback_the_router_does_not_confirm_is_retried_with_backoff_and_pages() {
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        "env: staging\nrouter:\n  failures:\n    - { from: T+0:45, count: 3, reason: router API timeout }\nactions:\n  - { at: T+0:45, rollback: { person: marcus, reason: canary looks odd } }\n",
    );
    assert_eq!(
        texts(&r.log, "weight_change_failed"),
        vec![
            "T+0:45:00 weight change failed (attempt 1): router API timeout",
            "T+0:45:01 weight change failed (attempt 2): router API timeout",
            "T+0:45:03 weight change failed (attempt 3): router API timeout",
        ]
    );
    let rb = r.report.rollback.as_ref().unwrap();
    assert_eq!(
        (rb.confirmed.as_deref(), rb.duration_ms, rb.attempts),
        (Some("T+0:45:07"), Some(7000), 4)
    );
    assert!(
        r.report
            .pages
            .iter()
            .any(|p| p.role == "release_manager"
                && p.reason.contains("ROLLBACK weight change failed"))
    );
    assert_eq!(r.report.weights.last().unwrap().weights["canary"], 0);
}

#[test]
fn an_unanswered_page_escalates_to_the_backup_then_upward() {
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        "env: staging\npeople: { never_ack: [sarah, david] }\nactions:\n  - { at: T+0:45, stop_the_line: { person: robert, trigger: security_incident, reason: leaked token } }\n",
    );
    // The playbook pages the release manager (ack within 5 minutes): sarah, then david,
    // then the VP (release_manager escalates to vp_engineering).
    assert_eq!(
        texts(&r.log, "page_escalated"),
        vec![
            "T+0:50:00 page-1 escalated to david (release_manager)",
            "T+0:55:00 page-1 escalated to vp (vp_engineering)"
        ]
    );
    assert!(
        texts(&r.log, "page_acknowledged")
            .contains(&"T+0:57:00 page-1 acknowledged by vp".to_string())
    );
}

#[test]
fn alerts_map_to_rules_and_triggers() {
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        "env: staging\nactions:\n  - { at: T+0:40, alert: { name: slow, fingerprint: a1 } }\n  - { at: T+0:41, alert: { name: slow, fingerprint: a1 } }\n  - { at: T+0:42, alert: { name: nobody_knows } }\n  - { at: T+0:50, alert: { name: slow, fingerprint: a1, resolved: true } }\n",
    );
    assert_eq!(
        texts(&r.log, "rule_firing"),
        vec!["T+0:40:00 rule slow FIRING (warning, no value from alertmanager)"]
    );
    assert_eq!(
        texts(&r.log, "ramp_paused"),
        vec!["T+0:40:00 RAMP PAUSED: Alertmanager reports `slow` firing"]
    );
    assert_eq!(
        texts(&r.log, "rule_resolved"),
        vec!["T+0:50:00 rule slow resolved"]
    );
    let refused: Vec<&str> = r.report.refused.iter().map(|x| x.reason.as_str()).collect();
    assert_eq!(
        refused,
        vec![
            "duplicate alert: fingerprint a1 is already firing",
            "alert `nobody_knows` names no rule or manual trigger of the plan"
        ]
    );
}

#[test]
fn rules_without_a_query_for_the_environment_are_inactive() {
    let plan = common::small_plan();
    let r = common::rehearse_text(&plan, "env: local\n");
    assert_eq!(
        texts(&r.log, "rule_inactive"),
        vec![
            "T-1d 01:00:00 rule cpu_hot is inactive here: SLI `cpu` has no query for metric source `builtin`"
        ]
    );
}

#[test]
fn an_unknown_outcome_is_never_run_again_silently() {
    let plan = common::small_plan();
    let mut e = Engine::new(Arc::clone(&plan), "staging", "r").unwrap();
    let t = |s: &str| -> Timestamp { s.parse().unwrap() };
    e.handle(t("2025-08-23T04:59:00Z"), Input::Start);
    let records = e.handle(t("2025-08-23T05:00:00Z"), Input::Tick);
    let snapshot = records
        .iter()
        .find_map(|r| match &r.body {
            RecordBody::Effect(req) if matches!(req.effect, engine::Effect::RunCommand { .. }) => {
                Some(req.clone())
            }
            _ => None,
        })
        .expect("the snapshot command");
    assert!(!snapshot.idempotent);
    if let engine::Effect::RunCommand { command, .. } = &snapshot.effect {
        assert_eq!(
            command, "snapshot --host shop.staging.example --token ${TOKEN}",
            "known vars substituted, secrets left"
        );
    }
    // The shell restarts and cannot tell whether it ran.
    assert_eq!(
        e.pending_effects()
            .iter()
            .filter(|p| p.id == snapshot.id)
            .count(),
        1
    );
    let out = e.handle(
        t("2025-08-23T05:01:00Z"),
        Input::EffectOutcomeUnknown { id: snapshot.id },
    );
    assert!(out.iter().any(|r| matches!(&r.body, RecordBody::Decision(Decision::StepOutcomeUnknown { step }) if step == "snapshot")));
    assert!(!out.iter().any(|r| matches!(&r.body, RecordBody::Effect(req) if matches!(req.effect, engine::Effect::RunCommand { .. }))));
    assert_eq!(
        e.state().steps[0].status,
        engine::state::StepStatus::OutcomeUnknown
    );
    // A person checks and says it ran.
    let out = e.handle(
        t("2025-08-23T05:05:00Z"),
        Input::Resolve {
            person: "marcus".into(),
            target: "snapshot".into(),
            outcome: engine::Resolution::Done,
        },
    );
    assert!(out.iter().any(|r| matches!(&r.body, RecordBody::Decision(Decision::StepDone { step, .. }) if step == "snapshot")));
}

#[test]
fn a_scenario_that_contradicts_the_plan_is_rejected_with_its_location() {
    let plan = common::small_plan();
    let check = |text: &str| {
        let scenario = engine::rehearsal::Scenario::parse("s.yaml", text)
            .and_then(|s| s.check("s.yaml", &plan).map(|_| s));
        scenario.err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert_eq!(
        check("metrics:\n  baseline:\n    error_rat: 1%\n"),
        "s.yaml:3:16: no SLI `error_rat` in the plan; did you mean `error_rate`?"
    );
    assert_eq!(
        check("outcomes:\n  deplyo: { fail: x }\n"),
        "s.yaml:2:11: no step, checklist item or playbook action `deplyo` in the plan; did you mean `deploy`?"
    );
    assert_eq!(
        check("actions:\n  - { at: T+1:00, pause: { person: sara, reason: x } }\n"),
        "s.yaml:2:36: no person `sara` in the plan; did you mean `sarah`?"
    );
    assert_eq!(
        check("metrics:\n  faults:\n    - { at: T+1:00, sli: error_rate, set: lots }\n"),
        "s.yaml:3:43: `lots` is not a number with a unit: write a threshold like `1%`, `0.1%`, `500ms`, `2s` or a plain number"
    );
    assert!(
        check("actions:\n  - { at: soon, pause: { person: sarah, reason: x } }\n")
            .starts_with("s.yaml:2:11: "),
        "{}",
        check("actions:\n  - { at: soon, pause: { person: sarah, reason: x } }\n")
    );
    assert!(check("actions:\n  - { at: T+1:00 }\n").contains("an action needs one of"));
    assert!(
        check("surprise: 1\n").starts_with("s.yaml:1:1: "),
        "{}",
        check("surprise: 1\n")
    );
}

#[test]
fn cadences_send_only_in_their_hours_in_the_plans_zone() {
    // T0 is Saturday 02:00 in New York; the `ops` cadence runs every 30 minutes from T0 to
    // T+1:00.
    let sent = |hours: Option<&str>| {
        let mut plan = (*common::small_plan()).clone();
        if let Some(comms) = plan.comms.as_mut() {
            comms.value.cadences[0].value.hours = hours.map(|h| plan::At::bare(h.to_string()));
        }
        let r = common::rehearse_text(&Arc::new(plan), "env: staging\n");
        r.report
            .messages
            .iter()
            .filter(|m| m.audience == "command")
            .map(|m| m.t.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(sent(None), vec!["T+0:00:00", "T+0:30:00"]);
    assert_eq!(sent(Some("02:15-03:00")), vec!["T+0:30:00"]);
    assert_eq!(
        sent(Some("Sat-Sun 00:00-24:00")),
        vec!["T+0:00:00", "T+0:30:00"]
    );
    assert!(
        sent(Some("Mon-Fri 00:00-24:00")).is_empty(),
        "no business hours on a Saturday"
    );
}
