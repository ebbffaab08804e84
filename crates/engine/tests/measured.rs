//! Checklist items, probe steps and success criteria verified by a metric: the engine asks
//! for the SLI and judges the condition itself; no data is re-asked until the deadline and
//! then fails as inconclusive; an SLI this environment cannot read fails with the reason.

mod common;

use engine::{Decision, Effect, RecordBody};

/// A metric item in the pre-flight checklist (due T-1d) and a metric probe step at T+0:25.
const METRIC_ITEM: (&str, &str) = (
    "          tcp: { address: \"${host}:443\" }\n",
    "          tcp: { address: \"${host}:443\" }\n      - id: errors_low\n        title: Canary error rate low\n        owner: sre_lead\n        verify:\n          metric: { when: error_rate < 0.5% }\n",
);
const METRIC_STEP: (&str, &str) = (
    "          http: { url: \"https://${host}/health\" }\n        on_failure: halt\n",
    "          http: { url: \"https://${host}/health\" }\n        on_failure: halt\n      - id: canary_errors\n        at: T+0:25\n        title: Canary error rate below 0.5%\n        owner: sre_lead\n        probe:\n          metric: { when: error_rate < 0.5% }\n        timeout: 2m\n",
);

fn probes_of(log: &[engine::Record], target: &str) -> usize {
    log.iter()
        .filter(|r| {
            matches!(&r.body, RecordBody::Effect(e)
                if matches!(&e.effect, Effect::RunProbe { target: t, .. } if t == target))
        })
        .count()
}

#[test]
fn a_metric_item_is_judged_on_its_sli_never_probed() {
    let plan = common::small_plan_with(&[METRIC_ITEM]);
    let r = common::rehearse_text(&plan, "env: staging\n");
    assert_eq!(probes_of(&r.log, "errors_low"), 0);
    assert_eq!(
        common::decision_texts(&r.log, "checklist_item_done")
            .iter()
            .filter(|t| t.contains("errors_low"))
            .collect::<Vec<_>>(),
        vec!["T-1d 01:00:00 pre_flight: errors_low done"],
        "judged at the first evaluation after start"
    );
    let item = &r.report.final_state.checklists[0].items[3];
    assert_eq!(
        item.reason.as_deref(),
        Some("error_rate is 0.05% (condition: error_rate < 0.5%)")
    );
    // The query asked for the canary's error rate from the staging Prometheus.
    let asked = r.log.iter().any(|x| {
        matches!(&x.body, RecordBody::Effect(e) if matches!(&e.effect,
            Effect::QueryMetrics { slis } if slis.iter().any(|q| q.sli == "error_rate" && q.version == "canary" && q.source == "prom")))
    });
    assert!(asked);
}

#[test]
fn a_metric_item_that_fails_its_condition_fails_with_the_value() {
    let plan = common::small_plan_with(&[METRIC_ITEM]);
    let r = common::rehearse_text(
        &plan,
        "env: staging\nmetrics:\n  baseline:\n    error_rate: { stable: 0.1%, canary: 0.9% }\n",
    );
    assert_eq!(
        common::decision_texts(&r.log, "checklist_item_failed"),
        vec![
            "T-1d 01:00:00 pre_flight: errors_low FAILED: error_rate is 0.9% (condition: error_rate < 0.5%)"
        ]
    );
    assert!(!r.report.final_state.checklists[0].items[3].inconclusive);
}

#[test]
fn no_data_is_asked_again_until_the_checklist_is_due_then_fails_as_inconclusive() {
    let plan = common::small_plan_with(&[METRIC_ITEM]);
    // The run starts at T-25:00; the checklist is due at T-24:00 (T-1d).
    let blind_until = |until: &str| {
        format!(
            "env: staging\nmetrics:\n  faults:\n    - {{ at: T-2d, until: {until}, no_data: [error_rate] }}\n"
        )
    };
    let r = common::rehearse_text(&plan, &blind_until("T-0:30"));
    assert_eq!(
        common::decision_texts(&r.log, "checklist_item_failed"),
        vec![
            "T-1d 00:00:00 pre_flight: errors_low FAILED: inconclusive until the checklist was due: no data: no series (scenario)"
        ]
    );
    let item = &r.report.final_state.checklists[0].items[3];
    assert!(item.inconclusive, "no verdict, not a failed check");
    // Asked at every evaluation (30 s) during the hour before it was due, then no more.
    let queries: Vec<_> = r
        .log
        .iter()
        .filter(|x| matches!(&x.body, RecordBody::Effect(e) if matches!(e.effect, Effect::QueryMetrics { .. })))
        .filter(|x| x.at < "2025-08-23T06:00:00Z".parse().unwrap())
        .collect();
    assert_eq!(queries.len(), 120);
    assert_eq!(
        queries.last().unwrap().at,
        "2025-08-22T05:59:30Z".parse().unwrap()
    );

    // Data that comes back before the due time passes it.
    let r = common::rehearse_text(&plan, &blind_until("T-24:30"));
    assert_eq!(
        common::decision_texts(&r.log, "checklist_item_done")
            .iter()
            .filter(|t| t.contains("errors_low"))
            .collect::<Vec<_>>(),
        vec!["T-1d 00:30:00 pre_flight: errors_low done"]
    );
    assert!(common::decision_texts(&r.log, "checklist_item_failed").is_empty());
}

#[test]
fn an_sli_this_environment_cannot_read_fails_the_item_with_the_reason() {
    // `cpu` has no query for the built-in metric source of the `local` environment.
    let cpu_item = common::small_plan_with(&[
        (
            METRIC_ITEM.0,
            &METRIC_ITEM.1.replace("error_rate < 0.5%", "cpu < 80%"),
        ),
        (
            "    - { id: support_ok, title: Support satisfied, owner: release_manager }\n",
            "    - { id: support_ok, title: Support satisfied, owner: release_manager }\n    - { id: cpu_ok, title: CPU headroom, owner: sre_lead, metric: cpu < 80% }\n",
        ),
    ]);
    let r = common::rehearse_text(
        &cpu_item,
        "env: local\nactions:\n  - { at: T-1:00, waive: { person: sarah, item: errors_low, reason: no CPU metrics on this machine } }\n",
    );
    assert_eq!(
        common::decision_texts(&r.log, "checklist_item_failed"),
        vec![
            "T-1d 01:00:00 pre_flight: errors_low FAILED: cannot be verified in environment `local`: SLI `cpu` has no query for metric source `builtin`"
        ]
    );
    assert!(r.report.final_state.checklists[0].items[3].inconclusive);
    // A success criterion on the same SLI cannot be judged here either: never a pass.
    let success = r.report.success.as_ref().expect("success judged");
    let cpu = success
        .judgements
        .iter()
        .find(|j| j.what.starts_with("cpu_ok"))
        .unwrap();
    assert_eq!(cpu.verdict, engine::Verdict::Inconclusive);
    assert_eq!(
        cpu.detail,
        "cannot be judged in environment `local`: SLI `cpu` has no query for metric source `builtin`"
    );
}

#[test]
fn a_metric_item_is_judged_only_once_its_checklist_can_be_due() {
    // A checklist due after the T0 gate is judged from "go" on: before it, there is no new
    // version to measure.
    let plan = common::small_plan_with(&[
        METRIC_ITEM,
        ("    due: T-1d\n", "    due: T+0:15\n"),
        (
            "gate: { requires: [pre_flight], sets_t0: true }",
            "gate: { sets_t0: true }",
        ),
    ]);
    let r = common::rehearse_text(&plan, "env: staging\n");
    assert_eq!(
        common::decision_texts(&r.log, "checklist_item_done")
            .iter()
            .filter(|t| t.contains("errors_low"))
            .collect::<Vec<_>>(),
        vec!["T+0:00:00 pre_flight: errors_low done"]
    );
}

#[test]
fn a_metric_probe_step_is_judged_on_its_sli() {
    let plan = common::small_plan_with(&[METRIC_STEP]);
    let r = common::rehearse_text(&plan, "env: staging\n");
    assert_eq!(probes_of(&r.log, "canary_errors"), 0);
    assert_eq!(
        common::decision_texts(&r.log, "step_done")
            .into_iter()
            .filter(|t| t.contains("canary_errors"))
            .collect::<Vec<_>>(),
        vec!["T+0:25:00 step canary_errors: error_rate is 0.05% (condition: error_rate < 0.5%)"]
    );

    // Without data until after its 2-minute timeout, it fails as inconclusive and halts.
    let r = common::rehearse_text(
        &plan,
        "env: staging\nmetrics:\n  faults:\n    - { at: T+0:20, until: T+0:40, no_data: [error_rate] }\n",
    );
    assert_eq!(
        common::decision_texts(&r.log, "step_failed"),
        vec![
            "T+0:27:00 step canary_errors FAILED: inconclusive until the step's timeout: no data: no series (scenario) → halt: the timeline waits for a person to retry, resolve or waive it"
        ]
    );
    let step = r
        .report
        .final_state
        .steps
        .iter()
        .find(|s| s.id == "canary_errors")
        .unwrap();
    assert!(step.inconclusive);
}

#[test]
fn a_metric_probe_step_that_fails_applies_its_consequence() {
    let plan = common::small_plan_with(&[METRIC_STEP]);
    let r = common::rehearse_text(
        &plan,
        "env: staging\nmetrics:\n  faults:\n    - { at: T+0:20, sli: error_rate, set: 3% }\n",
    );
    assert_eq!(
        common::decision_texts(&r.log, "step_failed"),
        vec![
            "T+0:25:00 step canary_errors FAILED: error_rate is 3% (condition: error_rate < 0.5%) → halt: the timeline waits for a person to retry, resolve or waive it"
        ]
    );
    assert!(
        r.log.iter().any(|x| matches!(&x.body, RecordBody::Decision(Decision::StepFailed { step, .. }) if step == "canary_errors"))
    );
}
