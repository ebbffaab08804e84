//! Every shipped scenario of the AIVO plan: the decisions, their times and reasons, a
//! snapshot of the report, byte-identical output on a second run, and replay of the log.

mod common;

use std::sync::Arc;

use engine::rehearsal::{REHEARSAL_RUN_ID, Rehearsal};
use engine::{Decision, Engine, Record, RecordBody};

const PLAN: &str = "examples/aivo/plan.yaml";

/// Rehearses a shipped scenario twice, checks both runs are byte-identical and that the
/// log replays to the same state, and returns the first.
fn rehearse(name: &str) -> Rehearsal {
    let plan = common::load_plan(PLAN);
    let file = format!("examples/aivo/scenarios/{name}.yaml");
    let first = common::rehearse_file(&plan, &file);
    let second = common::rehearse_file(&plan, &file);
    let log = |r: &Rehearsal| serde_json::to_string(&r.log).unwrap();
    let report = |r: &Rehearsal| serde_json::to_string(&r.report).unwrap();
    assert!(
        log(&first) == log(&second),
        "{name}: the log differs between two runs"
    );
    assert!(
        report(&first) == report(&second),
        "{name}: the JSON report differs between two runs"
    );
    assert_eq!(
        first.report.to_text(),
        second.report.to_text(),
        "{name}: the text report differs"
    );

    let replayed = Engine::replay(
        Arc::clone(&plan),
        &first.report.env,
        REHEARSAL_RUN_ID,
        &first.log,
    )
    .unwrap_or_else(|e| panic!("{name}: replay failed: {e}"));
    assert_eq!(
        serde_json::to_string(replayed.state()).unwrap(),
        serde_json::to_string(&first.report.final_state).unwrap(),
        "{name}: replaying the log gives another state"
    );
    first
}

/// (offset, text) of every decision of one kind, as the report words them.
fn decisions(r: &Rehearsal, kind: &str) -> Vec<(String, String)> {
    r.report
        .timeline
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| (e.t.clone(), e.what.clone()))
        .collect()
}

fn weights(r: &Rehearsal) -> Vec<(String, u32)> {
    r.report
        .weights
        .iter()
        .map(|w| (w.t.clone(), w.weights["canary"]))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn any_decision(log: &[Record], f: impl Fn(&Decision) -> bool) -> bool {
    log.iter()
        .any(|r| matches!(&r.body, RecordBody::Decision(d) if f(d)))
}

#[test]
fn clean() {
    let r = rehearse("clean");
    let report = &r.report;
    assert_eq!(report.outcome, "completed");
    assert_eq!(
        report.t0_actual,
        Some(report.t0_planned),
        "go exactly at the planned T0"
    );
    assert_eq!(
        weights(&r),
        vec![
            ("T+2:00:00.8".to_string(), 5),
            ("T+4:00:01.6".to_string(), 25),
            ("T+8:00:02.4".to_string(), 50),
            ("T+16:00:03.2".to_string(), 75),
            ("T+1d 00:00:04".to_string(), 100),
        ]
    );
    assert!(report.rules_fired.is_empty(), "{:?}", report.rules_fired);
    assert!(report.rollback.is_none());
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert_eq!(
        report.success.as_ref().map(|s| s.verdict),
        Some(engine::Verdict::Pass)
    );
    assert_eq!(
        decisions(&r, "ramp_completed"),
        pairs(&[("T+3d 00:00:04", "ramp complete at 100%")])
    );
    for phase in &report.phases {
        assert_eq!(phase.open + phase.failed + phase.skipped, 0, "{phase:?}");
    }
    assert!(report.counts.commands_not_executed > 0 && report.counts.probes_not_executed > 0);
    assert!(
        report
            .to_text()
            .contains("no command or probe was executed")
    );
    insta::assert_snapshot!("clean", report.to_text());
}

#[test]
fn error_rate_breach_at_25_percent_rolls_back() {
    let r = rehearse("error-rate-25");
    let report = &r.report;
    assert_eq!(report.outcome, "rolled_back");
    // 20 minutes into the stage the error rate is 8 %; the rule is pending at the next
    // evaluation and fires 2 minutes (its `for`) later.
    assert_eq!(
        decisions(&r, "rule_pending")
            .iter()
            .find(|(_, w)| w.starts_with("rule stop_error_rate")),
        Some(&(
            "T+4:20:15".to_string(),
            "rule stop_error_rate pending (8%)".to_string()
        ))
    );
    let fired: Vec<(&str, &str)> = report
        .rules_fired
        .iter()
        .map(|f| (f.t.as_str(), f.rule.as_str()))
        .collect();
    assert_eq!(
        fired,
        vec![
            ("T+4:22:15", "critical_error_rate"),
            ("T+4:22:15", "stop_error_rate")
        ]
    );
    let rollback = report.rollback.as_ref().expect("a rollback");
    assert_eq!(rollback.cause, "rule stop_error_rate");
    assert_eq!(
        rollback.reason,
        "error_rate is 8% (threshold: error_rate > 5%)"
    );
    assert_eq!(rollback.triggered, "T+4:22:15");
    assert_eq!(rollback.confirmed.as_deref(), Some("T+4:22:15.8"));
    assert_eq!(
        rollback.duration_ms,
        Some(800),
        "the router's actuation delay"
    );
    assert_eq!(rollback.within_budget, Some(true));
    assert_eq!(
        weights(&r),
        vec![
            ("T+2:00:00.8".to_string(), 5),
            ("T+4:00:01.6".to_string(), 25),
            ("T+4:22:15.8".to_string(), 0)
        ]
    );
    // The SRE lead never acknowledges: his page goes to his backup after 5 minutes.
    assert_eq!(
        decisions(&r, "page_escalated"),
        pairs(&[
            (
                "T+4:23:15",
                "page-2 escalated to david_kim (release_manager)"
            ),
            ("T+4:27:15", "page-1 escalated to emily_watson (sre_lead)")
        ])
    );
    assert!(any_decision(
        &r.log,
        |d| matches!(d, Decision::PlaybookStarted { playbook, .. } if playbook == "stop_the_line")
    ));
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    insta::assert_snapshot!("error-rate-25", report.to_text());
}

#[test]
fn latency_warning_pauses_until_a_person_resumes() {
    let r = rehearse("latency-warning");
    let report = &r.report;
    assert_eq!(report.outcome, "completed");
    assert_eq!(
        decisions(&r, "ramp_paused"),
        pairs(&[(
            "T+9:13:45",
            "RAMP PAUSED: p95_latency is 2600ms (threshold: p95_latency > 2000ms)"
        )])
    );
    assert_eq!(
        report
            .refused
            .iter()
            .map(|x| (x.t.as_str(), x.reason.as_str()))
            .collect::<Vec<_>>(),
        vec![(
            "T+9:30:02.4",
            "cannot resume while rule `pause_p95_latency` is firing"
        )]
    );
    assert_eq!(
        decisions(&r, "rule_resolved").last(),
        Some(&(
            "T+9:40:15".to_string(),
            "rule pause_p95_latency resolved".to_string()
        )),
        "resolved 5 minutes (keep_firing_for) after latency recovered"
    );
    assert_eq!(
        decisions(&r, "ramp_resumed"),
        pairs(&[(
            "T+10:00:02.4",
            "ramp resumed: p95 back to 310 ms for 25 minutes; capacity added to the API pool"
        )])
    );
    // Paused from T+9:13 to T+10:00: no weight changed in between; the 50 % stage then
    // finished its hold and the ramp went on.
    assert_eq!(
        weights(&r)
            .iter()
            .map(|(t, w)| (t.as_str(), *w))
            .collect::<Vec<_>>()[2..],
        [
            ("T+8:00:02.4", 50),
            ("T+16:00:03.2", 75),
            ("T+1d 00:00:04", 100)
        ]
    );
    let fired: Vec<&str> = report.rules_fired.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(
        fired,
        vec![
            "critical_p95_latency",
            "warning_p95_latency",
            "pause_p95_latency"
        ]
    );
    assert!(report.rollback.is_none());
    insta::assert_snapshot!("latency-warning", report.to_text());
}

#[test]
fn metrics_outage_pauses_and_never_advances_blind() {
    let r = rehearse("metrics-outage");
    let report = &r.report;
    assert_eq!(
        decisions(&r, "ramp_paused"),
        pairs(&[(
            "T+7:31:15",
            "RAMP PAUSED: rule `stop_db_query_timeouts` cannot be judged: source error: prometheus: connection refused"
        )]),
        "blind from T+7:30:15; the first pausing rule to be blind for its `for` (1m) pauses"
    );
    // The hold ends in the outage: the gates are inconclusive, never a pass.
    let gates = decisions(&r, "stage_gates");
    let inconclusive = gates
        .iter()
        .find(|(_, w)| w.starts_with("gates of stage 25%: Inconclusive"))
        .expect("inconclusive gates");
    assert_eq!(inconclusive.0, "T+8:00:01.6");
    // No stage is entered between the outage and the resume at T+9:00.
    let entered: Vec<String> = decisions(&r, "stage_entering")
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(entered[..3], ["T+2:00:00", "T+4:00:00.8", "T+9:00:01.6"]);
    assert_eq!(decisions(&r, "ramp_resumed")[0].0, "T+9:00:01.6");
    // One page per role for the outage, not one per blind rule.
    assert_eq!(
        report
            .pages
            .iter()
            .filter(|p| p.reason.starts_with("Rules cannot be judged"))
            .count(),
        1,
        "{:?}",
        report.pages
    );
    assert_eq!(
        report.outcome, "completed",
        "after the resume the ramp finishes"
    );
    assert!(
        report.rollback.is_none(),
        "a metrics outage is not a reason to roll back"
    );
    insta::assert_snapshot!("metrics-outage", report.to_text());
}

#[test]
fn security_incident_pulled_by_hand_rolls_back() {
    let r = rehearse("security-incident");
    let report = &r.report;
    assert_eq!(
        report
            .refused
            .iter()
            .map(|x| (x.t.as_str(), x.actor.as_str()))
            .collect::<Vec<_>>(),
        vec![("T+9:55:02.4", "lisa_park")]
    );
    assert!(
        report.refused[0]
            .reason
            .contains("lacks the `stop_the_line` authority")
    );
    assert_eq!(
        decisions(&r, "trigger_pulled"),
        pairs(&[(
            "T+10:00:02.4",
            "STOP THE LINE: security_incident (critical): authentication bypass on /api/v2/session: tokens accepted after logout"
        )])
    );
    let rollback = report.rollback.as_ref().expect("a rollback");
    assert_eq!(rollback.cause, "trigger security_incident");
    assert_eq!(rollback.duration_ms, Some(800));
    assert_eq!(weights(&r).last(), Some(&("T+10:00:03.2".to_string(), 0)));
    assert!(report.rules_fired.is_empty());
    assert_eq!(report.outcome, "rolled_back");
    insta::assert_snapshot!("security-incident", report.to_text());
}

#[test]
fn no_go_calls_the_go_live_off() {
    let r = rehearse("no-go");
    let report = &r.report;
    assert_eq!(report.outcome, "aborted");
    assert_eq!(report.t0_actual, None);
    assert_eq!(
        report
            .refused
            .iter()
            .map(|x| (x.t.as_str(), x.reason.as_str()))
            .collect::<Vec<_>>(),
        vec![(
            "T-0:05:00",
            "`jennifer_liu` (roles: engineering_lead) lacks the `go_no_go` authority; roles that have it: release_manager, vp_engineering"
        )]
    );
    assert_eq!(
        decisions(&r, "no_go"),
        pairs(&[(
            "T+0:00:00",
            "NO-GO at go_no_go: the payment gateway's TLS certificate expires in 30 hours, inside the ramp"
        )])
    );
    assert!(report.weights.is_empty(), "no traffic moved");
    assert!(!r.log.iter().any(|x| matches!(&x.body, RecordBody::Effect(e) if matches!(e.effect, engine::Effect::SetWeights { .. }))));
    let skipped = decisions(&r, "step_skipped");
    assert_eq!(skipped.len(), 11, "every step after the gate: {skipped:?}");
    insta::assert_snapshot!("no-go", report.to_text());
}
