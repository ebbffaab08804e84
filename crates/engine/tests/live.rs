//! What a live run trips on: missing data judged over time (no-data grace), the stage
//! warm-up, pages that close when what they were about is settled, and readings that
//! arrive late or at jittered times.

mod common;

use std::sync::Arc;

use engine::{Decision, Effect, EffectOutcome, Engine, Input, Reading, Record, RecordBody, Sample};
use jiff::{SignedDuration, Timestamp};

/// `critical_errors` acts at once (`for: 0s`); its no-data policy is the default, `pause`.
const IMMEDIATE: (&str, &str) = (
    "      when: error_rate > 2%\n      for: 2m\n",
    "      when: error_rate > 2%\n      for: 0s\n",
);

fn kinds(log: &[Record], kind: &str) -> Vec<String> {
    common::decision_texts(log, kind)
}

// === no-data grace ===

#[test]
fn a_gap_shorter_than_the_rules_for_pauses_nothing() {
    // critical_errors: `for: 2m`, no_data: pause. Blind for 90 s during the 10 % hold.
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        "env: staging\nmetrics:\n  faults:\n    - { at: stage 10 + 10m, until: stage 10 + 11m30s, no_data: [error_rate] }\n",
    );
    assert_eq!(
        kinds(&r.log, "rule_inconclusive"),
        vec![
            "T+0:40:00 rule critical_errors INCONCLUSIVE: no data: no series (scenario) (policy: pause once blind for 2m)"
        ]
    );
    assert!(kinds(&r.log, "rule_no_data").is_empty());
    assert!(kinds(&r.log, "ramp_paused").is_empty());
    assert_eq!(
        kinds(&r.log, "rule_data_back"),
        vec!["T+0:41:30 rule critical_errors: data is back"]
    );
    assert_eq!(r.report.outcome, "completed");
}

#[test]
fn a_gap_as_long_as_the_rules_for_pauses_and_pages_once() {
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        "env: staging\nmetrics:\n  faults:\n    - { at: stage 10 + 10m, until: stage 10 + 20m, no_data: [error_rate] }\n",
    );
    assert_eq!(
        kinds(&r.log, "rule_no_data"),
        vec!["T+0:42:00 rule critical_errors blind for 2m: no-data policy `pause` acts"]
    );
    assert_eq!(
        kinds(&r.log, "ramp_paused"),
        vec![
            "T+0:42:00 RAMP PAUSED: rule `critical_errors` cannot be judged: no data: no series (scenario)"
        ]
    );
    let pages: Vec<_> = r
        .report
        .pages
        .iter()
        .filter(|p| p.reason.starts_with("Rules cannot be judged"))
        .collect();
    assert_eq!(pages.len(), 1, "{pages:?}");
}

#[test]
fn inconclusive_but_pending_still_holds_the_ramp() {
    // Blind from 40 s before the hold ends: the rule is only "inconclusive (pending)" at its
    // end, the gates are inconclusive, and the ramp does not advance until data is back.
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        "env: staging\nmetrics:\n  faults:\n    - { at: stage 10 + 29m20s, until: stage 10 + 31m, no_data: [error_rate] }\n",
    );
    assert!(kinds(&r.log, "ramp_paused").is_empty());
    let gates = kinds(&r.log, "stage_gates");
    assert!(
        gates[0].starts_with("T+1:00:00 gates of stage 10%: Inconclusive"),
        "{gates:?}"
    );
    assert_eq!(r.report.stages[1].entered.as_deref(), Some("T+1:01:00"));
}

// === warm-up ===

#[test]
fn no_data_in_a_stages_warmup_is_not_acted_upon() {
    // The canary's error rate has too few requests for 100 s after the weight change; the
    // plan gives the stage a 2-minute warm-up.
    let warmup = |w: &str| {
        common::small_plan_with(&[
            IMMEDIATE,
            (
                "ramp:\n  start: T+0:30\n",
                &format!("ramp:\n  start: T+0:30\n  warmup: {w}\n"),
            ),
        ])
    };
    let scenario = "env: staging\nmetrics:\n  faults:\n    - { at: stage 10, until: stage 10 + 1m40s, no_data: [error_rate] }\n";
    let r = common::rehearse_text(&warmup("2m"), scenario);
    assert!(kinds(&r.log, "rule_inconclusive").is_empty());
    assert!(kinds(&r.log, "ramp_paused").is_empty());
    let entered = r
        .log
        .iter()
        .find_map(|x| match &x.body {
            RecordBody::Decision(Decision::StageEntered {
                stage: 0,
                warmup_until,
                ..
            }) => Some((x.at, *warmup_until)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        entered.1,
        Some(entered.0 + SignedDuration::from_mins(2)),
        "the warm-up is recorded with the stage"
    );
    assert_eq!(
        kinds(&r.log, "stage_warmed_up")[0],
        "T+0:32:00 stage 10%: warm-up over, missing data counts again"
    );
    assert_eq!(r.report.outcome, "completed");

    // Without a warm-up the same gap pauses the ramp one evaluation after it was seen.
    let r = common::rehearse_text(&warmup("0s"), scenario);
    assert_eq!(
        kinds(&r.log, "ramp_paused"),
        vec![
            "T+0:31:00 RAMP PAUSED: rule `critical_errors` cannot be judged: no data: no series (scenario)"
        ]
    );
    assert!(kinds(&r.log, "stage_warmed_up").is_empty());
}

#[test]
fn the_warmup_defaults_to_the_metric_sources_window() {
    // Staging reads a Prometheus source without `window`: 1m; local the built-in source,
    // whose window is 10s by default.
    for (env, warmup) in [("staging", 60), ("local", 10)] {
        let r = common::rehearse_text(&common::small_plan(), &format!("env: {env}\n"));
        let (at, until) = r
            .log
            .iter()
            .find_map(|x| match &x.body {
                RecordBody::Decision(Decision::StageEntered { warmup_until, .. }) => {
                    Some((x.at, *warmup_until))
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(until, Some(at + SignedDuration::from_secs(warmup)), "{env}");
    }
}

#[test]
fn a_clear_breach_during_the_warmup_still_rolls_back() {
    let plan = common::small_plan_with(&[IMMEDIATE]);
    let r = common::rehearse_text(
        &plan,
        "env: staging\nmetrics:\n  faults:\n    - { at: stage 10, sli: error_rate, set: 100% }\n",
    );
    let rb = r.report.rollback.as_ref().expect("a rollback");
    assert_eq!(
        (rb.cause.as_str(), rb.triggered.as_str()),
        ("rule critical_errors", "T+0:30:30")
    );
    assert!(kinds(&r.log, "stage_warmed_up").is_empty());
}

#[test]
fn the_hold_does_not_end_before_the_warmup() {
    let plan = common::small_plan_with(&[(
        "ramp:\n  start: T+0:30\n",
        "ramp:\n  start: T+0:30\n  warmup: 45m\n",
    )]);
    let r = common::rehearse_text(&plan, "env: staging\n");
    assert_eq!(
        kinds(&r.log, "stage_hold_ended")[0],
        "T+1:15:00 hold of stage 10% over",
        "the 30-minute hold lasts the 45-minute warm-up"
    );
    // A promote during the warm-up approves at once and ends the hold when it is over.
    let r = common::rehearse_text(
        &plan,
        "env: staging\npeople: { approve: false }\nactions:\n  - { at: stage 10 + 5m, promote: { person: sarah, reason: looks good } }\n",
    );
    assert_eq!(
        kinds(&r.log, "stage_approved")[0],
        "T+0:35:00 stage 50% approved: looks good"
    );
    assert_eq!(
        kinds(&r.log, "stage_hold_ended")[0],
        "T+1:15:00 hold of stage 10% over"
    );
}

// === pages that close ===

#[test]
fn a_page_about_a_halted_step_closes_when_the_step_is_retried() {
    let plan = common::small_plan();
    let r = common::rehearse_text(
        &plan,
        "env: staging\noutcomes:\n  smoke: { fail: 1 of 3 checks failed, times: 1 }\npeople: { never_ack: [marcus, emily, sarah, david, vp] }\nactions:\n  - { at: T+0:32, resolve: { person: marcus, target: smoke, outcome: retry } }\n",
    );
    assert_eq!(
        kinds(&r.log, "page_closed")[0],
        "T+0:32:00 page-1 closed: step `smoke` is being retried"
    );
    // It escalated at 5 and 10 minutes (to emily, then sarah) and then stopped.
    let escalated = kinds(&r.log, "page_escalated");
    assert_eq!(
        escalated
            .iter()
            .filter(|e| e.contains("page-1 "))
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            "T+0:25:00 page-1 escalated to emily (sre_lead)",
            "T+0:30:00 page-1 escalated to sarah (release_manager)"
        ]
    );
    assert!(kinds(&r.log, "page_unanswered").is_empty());
    assert_eq!(
        r.report.outcome, "completed",
        "nothing open keeps the run going"
    );
}

#[test]
fn a_page_about_a_step_of_unknown_outcome_closes_when_it_is_resolved() {
    let plan = common::small_plan();
    let mut e = Engine::new(Arc::clone(&plan), "staging", "r").unwrap();
    let t = |s: &str| -> Timestamp { s.parse().unwrap() };
    e.handle(t("2025-08-23T04:59:00Z"), Input::Start);
    let records = e.handle(t("2025-08-23T05:00:00Z"), Input::Tick);
    let id = records
        .iter()
        .find_map(|r| match &r.body {
            RecordBody::Effect(req) if matches!(req.effect, Effect::RunCommand { .. }) => {
                Some(req.id)
            }
            _ => None,
        })
        .unwrap();
    let out = e.handle(
        t("2025-08-23T05:01:00Z"),
        Input::EffectOutcomeUnknown { id },
    );
    let page = out
        .iter()
        .find_map(|r| match &r.body {
            RecordBody::Effect(req) => match &req.effect {
                Effect::Page { page, .. } => Some(page.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("the owner is paged");
    let out = e.handle(
        t("2025-08-23T05:03:00Z"),
        Input::Resolve {
            person: "marcus".into(),
            target: "snapshot".into(),
            outcome: engine::Resolution::Done,
        },
    );
    assert!(out.iter().any(|r| matches!(&r.body,
        RecordBody::Decision(Decision::PageClosed { page: p, reason }) if *p == page && reason == "step `snapshot` is done")));
    assert!(e.state().pages.iter().all(|p| !p.is_open()));
    // Nothing escalates at the page's deadline, and an ack comes too late to matter.
    assert!(
        e.handle(t("2025-08-23T05:07:00Z"), Input::Tick)
            .iter()
            .all(|r| !matches!(
                &r.body,
                RecordBody::Decision(Decision::PageEscalated { .. })
            ))
    );
    let late = e.handle(
        t("2025-08-23T05:08:00Z"),
        Input::Ack {
            person: "marcus".into(),
            target: page.clone(),
        },
    );
    assert!(matches!(&late[0].body, RecordBody::Refused { reason, .. }
        if reason == &format!("{page} was closed (step `snapshot` is done): nothing to acknowledge")));
}

#[test]
fn pages_whose_reason_went_away_close() {
    let plan = common::small_plan();
    // The rollback's failing weight change pages the release manager; the router's
    // confirmation closes that page.
    let r = common::rehearse_text(
        &plan,
        "env: staging\nrouter:\n  failures:\n    - { from: T+0:45, count: 3, reason: router API timeout }\npeople: { never_ack: [sarah] }\nactions:\n  - { at: T+0:45, rollback: { person: marcus, reason: canary looks odd } }\n",
    );
    assert!(
        kinds(&r.log, "page_closed")
            .contains(&"T+0:45:07 page-2 closed: the router confirmed the rollback".to_string()),
        "{:?}",
        kinds(&r.log, "page_closed")
    );
    // A rule's page closes when the rule resolves; an overdue task's page when the task
    // is acknowledged.
    let r = common::rehearse_text(
        &plan,
        "env: staging\npeople: { never_ack: [marcus, emily, sarah, david, vp], ack_after: 10m }\nactions:\n  - { at: T+0:40, alert: { name: slow, fingerprint: a1 } }\n  - { at: T+0:43, alert: { name: slow, fingerprint: a1, resolved: true } }\n  - { at: T+0:45, stop_the_line: { person: robert, trigger: security_incident, reason: leaked token } }\n",
    );
    let closed = kinds(&r.log, "page_closed");
    assert!(
        closed
            .contains(&"T+0:43:00 page-1 closed: rule `slow` resolved (Alertmanager)".to_string()),
        "{closed:?}"
    );
}

// === late and jittered readings ===

/// A plan with no go/no-go gate (T0 is the planned one), one stage, one rule that fires
/// after 30 s, evaluated every 15 s.
const TINY: &str = r#"golive: 1
meta: { name: Tiny, owner: ops }
t0: 2025-08-23T06:00:00+00:00[UTC]
people: [{ id: olga, name: Olga }]
roles:
  - { id: ops, title: Ops, primary: olga, authorities: [go_no_go, stop_the_line, waive, approve, pause, rollback] }
environments: [{ id: live, router: main, metric_source: prom }]
routers:
  - id: main
    builtin:
      listen: 127.0.0.1:8080
      groups:
        - { name: stable, backends: ["127.0.0.1:9001"] }
        - { name: canary, backends: ["127.0.0.1:9002"] }
metric_sources: [{ id: prom, prometheus: { url: "http://127.0.0.1:9090", window: 30s }, timeout: 30s }]
slis:
  - { id: error_rate, unit: percent, queries: { prom: errors } }
ramp:
  start: T+0:00
  stages: [{ weight: 100, hold: 1h }]
  rollback: { budget: 5m }
rules:
  evaluation_interval: 15s
  list:
    - { id: errors, when: error_rate > 5%, for: 30s, severity: critical, actions: [rollback] }
"#;

struct Live {
    engine: Engine,
    log: Vec<Record>,
}

impl Live {
    fn new() -> Live {
        let loaded = plan::load("tiny.yaml", TINY.as_bytes());
        assert_eq!(loaded.errors(), 0, "{}", loaded.render());
        let plan = Arc::new(loaded.plan.unwrap());
        Live {
            engine: Engine::new(plan, "live", "tiny").unwrap(),
            log: Vec::new(),
        }
    }
    fn handle(&mut self, at: Timestamp, input: Input) -> Vec<Record> {
        let out = self.engine.handle(at, input);
        self.log.extend(out.clone());
        out
    }
    /// Answers the weight change at once and returns the pending metrics query, if any.
    fn settle(&mut self, at: Timestamp, records: &[Record]) -> Option<u64> {
        let mut query = None;
        for r in records {
            if let RecordBody::Effect(req) = &r.body {
                match &req.effect {
                    Effect::SetWeights { weights, .. } => {
                        let out = self.handle(
                            at,
                            Input::EffectResult {
                                id: req.id,
                                outcome: EffectOutcome::Weights {
                                    weights: weights.clone(),
                                },
                            },
                        );
                        query = query.or(self.settle(at, &out));
                    }
                    Effect::QueryMetrics { .. } => query = Some(req.id),
                    _ => {}
                }
            }
        }
        query
    }
}

fn t0() -> Timestamp {
    "2025-08-23T06:00:00Z".parse().unwrap()
}

fn errors(query: u64, value: f64) -> Input {
    Input::MetricSamples {
        query: Some(query),
        samples: vec![Sample {
            sli: "error_rate".into(),
            version: "canary".into(),
            reading: Reading::Value(value),
        }],
    }
}

#[test]
fn jittered_ticks_and_slow_answers_do_not_stretch_for() {
    // Ticks come 7 ms late and answers 20 to 75 ms after the query, as a real clock and a
    // real Prometheus give them; the warm-up (30 s) is over before the breach.
    let mut live = Live::new();
    let out = live.handle(t0(), Input::Start);
    let first = live.settle(t0(), &out).expect("the first evaluation");
    live.handle(t0() + SignedDuration::from_millis(40), errors(first, 0.5));
    let mut fired_at = None;
    for n in 0..12 {
        let Some(due) = live.engine.poll_timeout() else {
            break;
        };
        let tick = due + SignedDuration::from_millis(7);
        let out = live.handle(tick, Input::Tick);
        let Some(query) = live.settle(tick, &out) else {
            continue;
        };
        // Healthy until 60 s, then 10 %.
        let value = if tick < t0() + SignedDuration::from_secs(60) {
            0.5
        } else {
            10.0
        };
        let answered = tick + SignedDuration::from_millis(75 - 5 * n);
        let out = live.handle(answered, errors(query, value));
        if out
            .iter()
            .any(|r| matches!(&r.body, RecordBody::Decision(Decision::RuleFiring { .. })))
        {
            fired_at = Some(answered);
            break;
        }
        assert!(n < 11, "the rule never fired");
    }
    // True at the evaluations of 60 s, 75 s and 90 s: it fires at the one 30 s after the
    // first, not an interval later because the answers' times are 29.99 s apart.
    assert_eq!(
        fired_at,
        Some(t0() + SignedDuration::from_millis(90_057)),
        "{:#?}",
        common::decision_texts(&live.log, "rule_pending")
    );
}

#[test]
fn a_slow_answer_delays_the_next_evaluation_instead_of_failing() {
    let mut live = Live::new();
    let out = live.handle(t0(), Input::Start);
    let first = live.settle(t0(), &out).expect("the first evaluation");
    // The next evaluation is due at 15 s, but the first query is still out (its timeout is
    // 30 s): no new query, no "no answer" failure.
    let due = live.engine.poll_timeout().unwrap();
    let out = live.handle(due, Input::Tick);
    assert!(
        !out.iter().any(|r| matches!(&r.body, RecordBody::Effect(e) if matches!(e.effect, Effect::QueryMetrics { .. }))),
        "{out:#?}"
    );
    assert!(!out.iter().any(|r| matches!(
        &r.body,
        RecordBody::Decision(Decision::RuleInconclusive { .. })
    )));
    // The answer comes at 20 s: judged, and the overdue evaluation asks again at once.
    let out = live.handle(t0() + SignedDuration::from_secs(20), errors(first, 0.5));
    assert!(
        out.iter().any(|r| matches!(&r.body, RecordBody::Effect(e) if matches!(e.effect, Effect::QueryMetrics { .. }))),
        "{out:#?}"
    );
    // A query that never answers: the evaluation at 30 s waits for it, and it fails at its
    // timeout (30 s) plus the grace (5 s); then the overdue evaluation asks again.
    assert_eq!(
        live.engine.poll_timeout(),
        Some(t0() + SignedDuration::from_secs(30))
    );
    let out = live.handle(t0() + SignedDuration::from_secs(30), Input::Tick);
    assert!(
        !out.iter().any(|r| matches!(&r.body, RecordBody::Effect(e) if matches!(e.effect, Effect::QueryMetrics { .. }))),
        "{out:#?}"
    );
    let deadline = live.engine.poll_timeout().unwrap();
    assert_eq!(deadline, t0() + SignedDuration::from_secs(55));
    let out = live.handle(deadline, Input::Tick);
    assert!(out.iter().any(|r| matches!(
        &r.body,
        RecordBody::Decision(Decision::EffectTimedOut { .. })
    )));
    assert!(out.iter().any(|r| matches!(&r.body, RecordBody::Effect(e) if matches!(e.effect, Effect::QueryMetrics { .. }))));
}

#[test]
fn a_reading_asked_before_a_stage_counts_for_the_time_it_was_asked() {
    // The readings are judged as of the evaluation that asked for them, so a late answer
    // to a query from the warm-up still falls in the warm-up.
    let mut live = Live::new();
    let out = live.handle(t0(), Input::Start);
    let query = live.settle(t0(), &out).unwrap();
    let late = t0() + SignedDuration::from_secs(31);
    live.handle(
        late,
        Input::MetricSamples {
            query: Some(query),
            samples: vec![Sample {
                sli: "error_rate".into(),
                version: "canary".into(),
                reading: Reading::NoData {
                    reason: "too few requests".into(),
                },
            }],
        },
    );
    assert!(common::decision_texts(&live.log, "rule_inconclusive").is_empty());
    let latest = &live.engine.state().latest["error_rate/canary"];
    assert_eq!(latest.at, t0());
}

// === restarts ===

#[test]
fn a_restarted_shell_does_not_fail_effects_for_the_time_it_was_down() {
    // A rehearsal up to the moment the smoke test's probe goes out (T+0:20); then the shell
    // is down for 15 minutes, far past the probe's timeout (30 s) and grace (5 s).
    let plan = common::small_plan();
    let r = common::rehearse_text(&plan, "env: staging\n");
    let probe = r
        .log
        .iter()
        .position(|x| matches!(&x.body, RecordBody::Effect(e) if matches!(&e.effect, Effect::RunProbe { target, .. } if target == "smoke")))
        .unwrap();
    let end = probe
        + r.log[probe..]
            .iter()
            .position(|x| matches!(x.body, RecordBody::Input(_) | RecordBody::Refused { .. }))
            .unwrap();
    let prefix = &r.log[..end];
    let back = r.log[probe].at + SignedDuration::from_mins(15);
    let replay = || {
        Engine::replay(
            Arc::clone(&plan),
            "staging",
            engine::rehearsal::REHEARSAL_RUN_ID,
            prefix,
        )
        .unwrap()
    };

    // Fed time alone, the engine counts the probe as timed out and halts the timeline.
    let mut blind = replay();
    let out = blind.handle(back, Input::Tick);
    assert!(out.iter().any(|x| matches!(&x.body, RecordBody::Decision(Decision::StepFailed { step, .. }) if step == "smoke")));

    // Told of the restart first, it gives the retried probe its full time again.
    let mut engine = replay();
    let inputs = engine.restart_inputs();
    let probe_id = match &r.log[probe].body {
        RecordBody::Effect(e) => e.id,
        _ => unreachable!(),
    };
    assert!(matches!(&inputs[0], Input::Restarted { retrying } if retrying.contains(&probe_id)));
    for input in inputs {
        let out = engine.handle(back, input);
        assert!(
            !out.iter().any(|x| matches!(
                &x.body,
                RecordBody::Decision(Decision::EffectTimedOut { .. } | Decision::StepFailed { .. })
            )),
            "{out:#?}"
        );
    }
    let out = engine.handle(
        back + SignedDuration::from_millis(300),
        Input::EffectResult {
            id: probe_id,
            outcome: EffectOutcome::Done { output: None },
        },
    );
    assert!(out.iter().any(|x| matches!(&x.body, RecordBody::Decision(Decision::StepDone { step, .. }) if step == "smoke")));
    // Only idempotent effects that are still out may be named as retried.
    let refused = engine.handle(
        back + SignedDuration::from_secs(1),
        Input::Restarted {
            retrying: vec![probe_id],
        },
    );
    assert!(matches!(&refused[0].body, RecordBody::Refused { .. }));
}
