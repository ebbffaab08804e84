//! Inputs that contradict the plan are refused with a reason, recorded, and change nothing.

mod common;

use std::sync::Arc;

use engine::{Engine, Input, Record, RecordBody};
use jiff::Timestamp;

fn refusals(log: &[Record]) -> Vec<(String, String)> {
    log.iter()
        .filter_map(|r| match &r.body {
            RecordBody::Refused { input, reason } => {
                Some((input.kind().to_string(), reason.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn people_act_only_with_their_roles_authorities() {
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        r#"
env: staging
people: { go: false }
actions:
  - { at: T-2:00, decide: { person: sarah, gate: go_no_go, go: true, reason: early } }
  - { at: T-0:10, decide: { person: marcus, gate: go_no_go, go: true, reason: looks fine } }
  - { at: T-0:09, waive: { person: robert, item: backups, reason: trust me } }
  - { at: T-0:08, waive: { person: sarah, item: backups, reason: "  " } }
  - { at: T-0:07, stop_the_line: { person: vp, trigger: security_incident, reason: hunch } }
  - { at: T-0:06, stop_the_line: { person: sarah, trigger: alien_invasion, reason: hunch } }
  - { at: T-0:05, sign_off: { person: marcus, item: security_audit } }
  - { at: T-0:04, resume: { person: sarah, reason: nothing paused } }
  - { at: T-0:03, rollback: { person: robert, reason: nervous } }
  - { at: T-0:02, ack: { person: sarah, target: page-99 } }
  - { at: T-0:01, decide: { person: sarah, gate: deploy, go: true, reason: not a gate } }
  - { at: T-0:00, decide: { person: sarah, gate: go_no_go, go: true, reason: all green } }
  - { at: T+0:01, decide: { person: sarah, gate: go_no_go, go: true, reason: again } }
"#,
    );
    let got = refusals(&r.log);
    let expect: &[(&str, &str)] = &[
        (
            "decide",
            "gate `go_no_go` is not open yet: the steps before it are not finished (next: `snapshot` at T-1:00)",
        ),
        (
            "decide",
            "`marcus` (roles: sre_lead) lacks the `go_no_go` authority; roles that have it: release_manager",
        ),
        (
            "waive",
            "`robert` (roles: security_lead) lacks the `waive` authority; roles that have it: release_manager",
        ),
        ("waive", "a waiver needs a reason"),
        (
            "stop_the_line",
            "`vp` (roles: vp_engineering) lacks the `stop_the_line` authority; roles that have it: release_manager, sre_lead, security_lead",
        ),
        (
            "stop_the_line",
            "no manual trigger `alien_invasion`; the plan has: security_incident",
        ),
        (
            "sign_off",
            "`marcus` does not hold role `security_lead`, which owns item `security_audit`",
        ),
        ("resume", "the ramp is not paused"),
        (
            "rollback",
            "`robert` (roles: security_lead) lacks the `rollback` authority; roles that have it: release_manager, sre_lead",
        ),
        ("ack", "no page or playbook task named `page-99`"),
        ("decide", "step `deploy` is not a gate"),
        ("decide", "gate `go_no_go` is already decided (Done)"),
    ];
    let want: Vec<(String, String)> = expect
        .iter()
        .map(|(k, r)| (k.to_string(), r.to_string()))
        .collect();
    assert_eq!(got, want);
    // None of them changed the run: T0 is sarah's "go", on time, and the run completes.
    let state = &r.report.final_state;
    assert_eq!(state.t0_actual, Some(state.t0_planned));
    assert_eq!(r.report.outcome, "completed");
    assert!(r.report.rollback.is_none());
}

#[test]
fn a_stop_the_line_trigger_can_be_limited_to_some_roles() {
    let mut plan = (*common::small_plan()).clone();
    plan.triggers[0].value.who = vec![plan::At::bare("security_lead".to_string())];
    let plan = Arc::new(plan);
    let r = common::rehearse_text(
        &plan,
        r#"
env: staging
actions:
  - { at: T+0:40, stop_the_line: { person: marcus, trigger: security_incident, reason: suspicious logins } }
  - { at: T+0:41, stop_the_line: { person: robert, trigger: security_incident, reason: suspicious logins } }
"#,
    );
    assert_eq!(
        refusals(&r.log),
        vec![(
            "stop_the_line".to_string(),
            "trigger `security_incident` may be pulled only by roles security_lead; `marcus` is sre_lead".to_string()
        )]
    );
    let rollback = r
        .report
        .rollback
        .as_ref()
        .expect("robert's pull rolls back");
    assert_eq!(rollback.cause, "trigger security_incident");
    assert_eq!(rollback.triggered, "T+0:41:00");
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn inputs_out_of_order_are_refused_before_and_after_start() {
    let plan = common::small_plan();
    let mut e = Engine::new(Arc::clone(&plan), "staging", "r1").unwrap();
    let sign = Input::SignOff {
        person: "robert".into(),
        item: "security_audit".into(),
    };
    let refused = |records: Vec<Record>| match &records[..] {
        [
            Record {
                body: RecordBody::Refused { reason, .. },
                ..
            },
        ] => reason.clone(),
        other => panic!("expected one refusal, got {other:?}"),
    };
    assert_eq!(
        refused(e.handle(t("2025-08-20T00:00:00Z"), sign.clone())),
        "the run has not started; `start` comes first"
    );
    assert!(
        e.handle(t("2025-08-20T00:00:00Z"), Input::Tick).is_empty(),
        "ticks before start change nothing"
    );
    let started = e.handle(t("2025-08-20T00:00:00Z"), Input::Start);
    assert!(matches!(started[0].body, RecordBody::Input(Input::Start)));
    assert_eq!(
        refused(e.handle(t("2025-08-20T00:00:00Z"), Input::Start)),
        "the run has already started"
    );
    assert_eq!(
        refused(e.handle(
            t("2025-08-20T00:00:01Z"),
            Input::EffectResult {
                id: 999,
                outcome: engine::EffectOutcome::Rehearsed
            }
        )),
        "no effect 999 is waiting for a result"
    );
    assert_eq!(
        refused(e.handle(t("2025-08-19T00:00:00Z"), sign.clone())),
        "time went backwards: this input is dated 2025-08-19T00:00:00Z, after a record dated 2025-08-20T00:00:01Z"
    );
    assert_eq!(
        refused(e.handle(
            t("2025-08-20T00:00:02Z"),
            Input::SignOff {
                person: "nobody".into(),
                item: "backups".into()
            }
        )),
        "no person `nobody` in the plan"
    );
    assert_eq!(
        refused(e.handle(
            t("2025-08-20T00:00:02Z"),
            Input::SignOff {
                person: "robert".into(),
                item: "tls_valid".into()
            }
        )),
        "`robert` does not hold role `sre_lead`, which owns item `tls_valid`"
    );
    let ok = e.handle(t("2025-08-20T00:00:03Z"), sign.clone());
    assert!(matches!(ok[0].body, RecordBody::Input(_)), "{ok:?}");
    assert_eq!(
        ok[0].actor,
        engine::Actor::Person {
            person: "robert".into(),
            role: Some("security_lead".into())
        },
        "the record names the role the person acted in"
    );
    assert_eq!(
        refused(e.handle(t("2025-08-20T00:00:04Z"), sign)),
        "item `security_audit` is already done"
    );
}
