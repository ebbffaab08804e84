//! The crew: the plan's people as the rehearsal and the demo play them. Driven here by a
//! small loop of its own, as the demo drives it live: probes fail as they do on a machine
//! without the real infrastructure, and a crew that waives what the environment cannot
//! verify carries the run through; the rehearsal's crew does not.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::crew::{Crew, CrewOptions};
use engine::state::{ItemStatus, StepStatus};
use engine::{Decision, Effect, EffectOutcome, Engine, Input, Reading, Record, RecordBody, Sample};
use jiff::{SignedDuration, Timestamp};

/// Runs `plan` in `env` from T-1d 01:00 to `until` with the crew answering; commands pass,
/// probes fail ("connection refused"), metrics read `value`.
fn run(
    plan: &Arc<plan::Plan>,
    env: &str,
    options: CrewOptions,
    until: Timestamp,
    value: f64,
) -> (Engine, Vec<Record>) {
    let mut engine = Engine::new(Arc::clone(plan), env, "crew").unwrap();
    let mut crew = Crew::new(Arc::clone(plan), options);
    let mut now: Timestamp = "2025-08-22T05:00:00Z".parse().unwrap();
    let mut log = Vec::new();
    let mut queue: BTreeMap<(Timestamp, u64), (Input, bool)> = BTreeMap::new();
    let mut seq = 0u64;
    let mut push = |queue: &mut BTreeMap<_, _>, at: Timestamp, input: Input, by_crew: bool| {
        seq += 1;
        queue.insert((at, seq), (input, by_crew));
    };
    let mut pending = vec![Input::Start];
    for _ in 0..200_000 {
        for input in pending.drain(..) {
            let records = engine.handle(now, input);
            for record in &records {
                if let RecordBody::Effect(req) = &record.body {
                    let answer = match &req.effect {
                        Effect::RunProbe { .. } => Input::EffectResult {
                            id: req.id,
                            outcome: EffectOutcome::Failed {
                                reason: "connection refused".into(),
                                output: None,
                            },
                        },
                        Effect::SetWeights { weights, .. } => Input::EffectResult {
                            id: req.id,
                            outcome: EffectOutcome::Weights {
                                weights: weights.clone(),
                            },
                        },
                        Effect::QueryMetrics { slis } => Input::MetricSamples {
                            query: Some(req.id),
                            samples: slis
                                .iter()
                                .map(|q| Sample {
                                    sli: q.sli.clone(),
                                    version: q.version.clone(),
                                    reading: Reading::Value(value),
                                })
                                .collect(),
                        },
                        _ => Input::EffectResult {
                            id: req.id,
                            outcome: EffectOutcome::Done { output: None },
                        },
                    };
                    push(&mut queue, now, answer, false);
                }
                for planned in crew.answer(record, engine.state(), now) {
                    push(&mut queue, planned.at.max(now), planned.input, true);
                }
            }
            log.extend(records);
        }
        if let Some(entry) = queue.first_entry()
            && entry.key().0 <= now
        {
            let (input, by_crew) = entry.remove();
            if !by_crew || crew.still_wanted(&input, engine.state()) {
                pending.push(input);
            }
            continue;
        }
        let own = crew.due(engine.state(), now);
        if !own.is_empty() {
            pending.extend(own);
            continue;
        }
        let next = [
            queue.keys().next().map(|(t, _)| *t),
            engine.poll_timeout(),
            crew.next_due(engine.state(), now),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) if t <= until => {
                now = now.max(t);
                if engine.poll_timeout().is_some_and(|p| p <= now) {
                    pending.push(Input::Tick);
                }
            }
            _ => return (engine, log),
        }
    }
    panic!("the run did not settle");
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn refusals(log: &[Record]) -> Vec<String> {
    log.iter()
        .filter_map(|r| match &r.body {
            RecordBody::Refused { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn demo_options() -> CrewOptions {
    CrewOptions {
        ack_after_ms: 0,
        waive_unverifiable: Some("on this test machine".into()),
        retry_unknown: true,
        ..CrewOptions::default()
    }
}

#[test]
fn a_crew_that_waives_what_it_cannot_verify_carries_the_run_through() {
    let plan = common::small_plan();
    let (engine, log) = run(
        &plan,
        "local",
        demo_options(),
        at("2025-08-30T12:00:00Z"),
        0.01,
    );
    let state = engine.state();
    // The TLS probe and the smoke test cannot pass here: waived, with the reason.
    let tls = &state.checklists[0].items[2];
    assert_eq!(tls.status, ItemStatus::Waived);
    assert_eq!(
        tls.reason.as_deref(),
        Some("cannot be verified on this test machine (connection refused)")
    );
    let smoke = state.steps.iter().find(|s| s.id == "smoke").unwrap();
    assert_eq!(smoke.status, StepStatus::Waived);
    assert!(
        log.iter().any(|r| matches!(&r.body, RecordBody::Decision(Decision::StepWaived { step, reason })
            if step == "smoke" && reason == "not checkable on this test machine (connection refused)"))
    );
    // The halted step's page closed with the waiver; nothing was left to escalate.
    assert!(
        log.iter()
            .any(|r| matches!(&r.body, RecordBody::Decision(Decision::PageClosed { reason, .. }) if reason == "step `smoke` waived"))
    );
    assert!(!log.iter().any(|r| matches!(
        &r.body,
        RecordBody::Decision(Decision::PageEscalated { .. })
    )));
    assert_eq!(state.status.as_str(), "completed", "{:?}", state.end_reason);
    assert!(refusals(&log).is_empty(), "{:?}", refusals(&log));
}

#[test]
fn the_rehearsal_crew_waives_nothing() {
    let plan = common::small_plan();
    let (engine, log) = run(
        &plan,
        "local",
        CrewOptions::default(),
        at("2025-08-23T12:00:00Z"),
        0.01,
    );
    assert!(!log.iter().any(|r| matches!(
        &r.body,
        RecordBody::Decision(Decision::ChecklistItemWaived { .. } | Decision::StepWaived { .. })
    )));
    // The failed TLS probe keeps the pre-flight checklist open: "go" is never given.
    assert_eq!(engine.state().t0_actual, None);
    assert!(refusals(&log).iter().any(|r| {
        r.starts_with("cannot go: required checklists are not complete: `pre_flight` (tls_valid)")
    }));
}

#[test]
fn a_metric_that_was_measured_and_missed_is_never_waived() {
    // A metric item on the canary's error rate: 5 % against < 0.5 %. The crew waives the
    // TLS probe it cannot run, not the measured failure.
    let plan = common::small_plan_with(&[(
        "          tcp: { address: \"${host}:443\" }\n",
        "          tcp: { address: \"${host}:443\" }\n      - id: errors_low\n        title: Canary error rate low\n        owner: sre_lead\n        verify:\n          metric: { when: error_rate < 0.5% }\n",
    )]);
    let (engine, _) = run(
        &plan,
        "local",
        demo_options(),
        at("2025-08-23T12:00:00Z"),
        5.0,
    );
    let items = &engine.state().checklists[0].items;
    assert_eq!(items[2].status, ItemStatus::Waived, "the TLS probe");
    assert_eq!(items[3].status, ItemStatus::Failed, "the measured metric");
    assert_eq!(
        items[3].reason.as_deref(),
        Some("error_rate is 5% (condition: error_rate < 0.5%)")
    );
    assert_eq!(engine.state().t0_actual, None, "no go without it");
}

#[test]
fn people_acknowledge_pages_after_a_while_unless_someone_else_did_or_it_closed() {
    let plan = common::small_plan();
    let mut crew = Crew::new(
        Arc::clone(&plan),
        CrewOptions {
            never_ack: ["david".to_string()].into(),
            ..CrewOptions::default()
        },
    );
    let mut engine = Engine::new(Arc::clone(&plan), "staging", "r").unwrap();
    let now = at("2025-08-23T05:00:00Z");
    engine.handle(now, Input::Start);
    let page = |person: &str| Record {
        at: now,
        actor: engine::Actor::System,
        body: RecordBody::Effect(engine::EffectRequest {
            id: 1,
            effect: Effect::Page {
                page: "page-1".into(),
                role: "release_manager".into(),
                person: person.into(),
                reason: "x".into(),
                ack_by: now,
            },
            idempotent: true,
            timeout_ms: 1,
        }),
    };
    let planned = crew.answer(&page("sarah"), engine.state(), now);
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].at, now + SignedDuration::from_mins(2));
    assert!(crew.still_wanted(&planned[0].input, engine.state()));
    assert!(crew.answer(&page("david"), engine.state(), now).is_empty());
}

#[test]
fn a_step_of_unknown_outcome_is_retried_once_by_a_crew_that_does_so() {
    let plan = common::small_plan();
    let mut engine = Engine::new(Arc::clone(&plan), "staging", "r").unwrap();
    engine.handle(at("2025-08-23T04:59:00Z"), Input::Start);
    let records = engine.handle(at("2025-08-23T05:00:00Z"), Input::Tick);
    let id = records
        .iter()
        .find_map(|r| match &r.body {
            RecordBody::Effect(req) if matches!(req.effect, Effect::RunCommand { .. }) => {
                Some(req.id)
            }
            _ => None,
        })
        .unwrap();
    let now = at("2025-08-23T05:01:00Z");
    engine.handle(now, Input::EffectOutcomeUnknown { id });
    // (Nobody signs off here: only the retry is of interest.)
    let quiet = |options: CrewOptions| CrewOptions {
        sign_offs: false,
        ..options
    };
    let mut rehearsal = Crew::new(Arc::clone(&plan), quiet(CrewOptions::default()));
    assert!(rehearsal.due(engine.state(), now).is_empty());
    let mut demo = Crew::new(Arc::clone(&plan), quiet(demo_options()));
    assert_eq!(demo.next_due(engine.state(), now), Some(now));
    assert_eq!(
        demo.due(engine.state(), now),
        vec![Input::Resolve {
            person: "sarah".into(),
            target: "snapshot".into(),
            outcome: engine::Resolution::Retry,
        }]
    );
    assert!(demo.due(engine.state(), now).is_empty(), "once");
}

#[test]
fn gates_this_environment_cannot_judge_are_waived_only_when_every_other_gate_passes() {
    // The first stage also gates on `cpu`, which the `local` environment's built-in source
    // cannot read.
    let plan = common::small_plan_with(&[(
        "      gates:\n        - metric: error_rate < 0.5%\n    - weight: 50\n",
        "      gates:\n        - metric: error_rate < 0.5%\n        - metric: cpu < 80%\n    - weight: 50\n",
    )]);
    let waivers = |log: &[Record]| -> Vec<String> {
        log.iter()
            .filter_map(|r| match &r.body {
                RecordBody::Decision(Decision::StageGatesWaived { weight, reason, .. }) => {
                    Some(format!("{weight}: {reason}"))
                }
                _ => None,
            })
            .collect()
    };

    let (engine, log) = run(
        &plan,
        "local",
        demo_options(),
        at("2025-08-30T12:00:00Z"),
        0.01,
    );
    assert_eq!(
        waivers(&log),
        vec!["10: cannot be judged on this test machine: cpu < 80% (every other gate passes)"]
    );
    let judged = log.iter().find_map(|r| match &r.body {
        RecordBody::Decision(Decision::StageGates { judgements, .. }) => Some(judgements.clone()),
        _ => None,
    });
    let cpu = judged
        .unwrap()
        .into_iter()
        .find(|j| j.what == "cpu < 80%")
        .unwrap();
    assert!(cpu.unmeasurable);
    assert_eq!(
        cpu.detail,
        "cannot be judged in environment `local`: SLI `cpu` has no query for metric source `builtin`"
    );
    // The page about the stuck stage closed with the waiver.
    assert!(log.iter().any(|r| matches!(&r.body,
        RecordBody::Decision(Decision::PageClosed { reason, .. }) if reason == "the gates of stage 10% pass")));
    assert_eq!(engine.state().status.as_str(), "completed");

    // The canary's error rate fails its gate: nothing is waived, the ramp stays at 10 %.
    let (engine, log) = run(
        &plan,
        "local",
        demo_options(),
        at("2025-08-23T12:00:00Z"),
        0.7,
    );
    assert!(waivers(&log).is_empty(), "{:?}", waivers(&log));
    assert_eq!(engine.state().ramp.weight, 10);
    // The stage is stuck: the holder of `waive` is paged once, though the page is
    // acknowledged at once and the gates are judged again at every evaluation.
    let stuck: Vec<(String, String)> = log
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::Effect(req) => match &req.effect {
                Effect::Page { role, reason, .. } if reason.contains("gates do not pass") => {
                    Some((role.clone(), reason.clone()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert!(
        stuck[0].1.ends_with(
            "has held its time, but its gates do not pass (error_rate < 0.5%, cpu < 80%): the ramp stays at 10% until they do, or until its gates are waived (waive stage:10)."
        ),
        "{stuck:?}"
    );

    // The rehearsal's crew waives no gate.
    let (_, log) = run(
        &plan,
        "local",
        CrewOptions::default(),
        at("2025-08-23T12:00:00Z"),
        0.01,
    );
    assert!(waivers(&log).is_empty());
}
