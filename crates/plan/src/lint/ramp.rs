//! Ramp stages that their holds or the timeline contradict.

use crate::diagnostic::{Code, Sink};
use crate::model::{Plan, Ramp};
use crate::schedule::{add, stage_starts};
use crate::span::At;
use crate::units::{Condition, Dur};
use crate::validate::place;

pub fn check(plan: &Plan, sink: &mut Sink<'_>) {
    let Some(ramp) = &plan.ramp else { return };
    warmup(plan, ramp, sink);
    unmeasurable_gates(plan, ramp, sink);
    let starts = stage_starts(ramp);
    let timed = ramp
        .stages
        .iter()
        .filter(|s| s.not_before.is_some())
        .count();
    for (i, stage) in ramp.stages.iter().enumerate() {
        let weight = stage.weight.value;
        let Some(not_before) = &stage.not_before else {
            if i > 0 && timed >= 2 {
                sink.report(
                    Code::StageWithoutTime,
                    place(stage.weight.loc, stage.loc),
                    format!(
                        "stage {weight}% has no `not_before` while {timed} other stages have one; by the holds it starts at {} at the earliest",
                        starts[i]
                    ),
                    format!("give it `not_before: {}` (or the time the runbook means), so its schedule is stated, not implied", starts[i]),
                );
            }
            continue;
        };
        let loc = place(not_before.loc, stage.loc);
        let (earliest, because) = if i == 0 {
            (
                ramp.start.value,
                format!("the ramp starts at {}", ramp.start.value),
            )
        } else {
            let previous = &ramp.stages[i - 1];
            (
                add(starts[i - 1], previous.hold.value),
                format!(
                    "stage {}% starts at {} and holds {}",
                    previous.weight.value,
                    starts[i - 1],
                    previous.hold.value
                ),
            )
        };
        let (nb, ea) = (not_before.value.approx_millis(), earliest.approx_millis());
        if nb < ea {
            sink.report(
                Code::StageHoldMismatch,
                loc,
                format!(
                    "stage {weight}% is set for {}, but {because}, so it cannot start before {earliest}",
                    not_before.value
                ),
                "shorten the previous hold, or move `not_before` to when the holds allow",
            );
        } else if nb > ea && i > 0 {
            let previous = &ramp.stages[i - 1];
            let real_hold = Dur(u64::try_from(nb - starts[i - 1].approx_millis()).unwrap_or(0));
            sink.report(
                Code::StageHoldMismatch,
                loc,
                format!(
                    "stage {weight}% waits until {}, but {because}: the {}% stage really holds {real_hold}, not {}",
                    not_before.value, previous.weight.value, previous.hold.value
                ),
                format!(
                    "set the {}% stage's hold to {real_hold}, or move this `not_before` to {earliest}",
                    previous.weight.value
                ),
            );
        }
    }
    // Timeline traffic steps against the ramp.
    let weights: Vec<u8> = ramp.stages.iter().map(|s| s.weight.value).collect();
    for phase in &plan.timeline {
        for step in &phase.steps {
            let Some(traffic) = &step.traffic else {
                continue;
            };
            let loc = place(traffic.loc, step.loc);
            let w = traffic.value;
            if w == 0 {
                continue;
            }
            let Some(index) = weights.iter().position(|&s| s == w) else {
                let list: Vec<String> = weights.iter().map(|w| format!("{w}")).collect();
                sink.report(
                    Code::TrafficNotAStage,
                    loc,
                    format!(
                        "step `{}` sets traffic to {w}%, which is no ramp stage",
                        step.id.value
                    ),
                    format!(
                        "use a stage weight ({}) or 0, or add a stage of {w}%",
                        list.join(", ")
                    ),
                );
                continue;
            };
            let at = step.at.value;
            let start = starts[index];
            if at.approx_millis() < start.approx_millis() {
                sink.report(
                    Code::TrafficOffRamp,
                    place(step.at.loc, step.loc),
                    format!(
                        "step `{}` sets traffic to {w}% at {at}, but the ramp reaches {w}% at {start} at the earliest",
                        step.id.value
                    ),
                    "move the step to the stage's start, or change the ramp's holds and `not_before`",
                );
            } else if let Some(&next) = starts.get(index + 1)
                && at.approx_millis() >= next.approx_millis()
            {
                sink.report(
                        Code::TrafficOffRamp,
                        place(step.at.loc, step.loc),
                        format!(
                            "step `{}` sets traffic to {w}% at {at}, but by then the ramp may already be at {}% (from {next})",
                            step.id.value, weights[index + 1]
                        ),
                        "move the step to the stage's start, or lengthen the stage's hold",
                    );
            }
        }
    }
}

/// Metric gates an environment can never judge: the run stops at that stage there until
/// someone waives its gates. One warning per environment and stage.
fn unmeasurable_gates(plan: &Plan, ramp: &Ramp, sink: &mut Sink<'_>) {
    for env in &plan.environments {
        let Some(source) = plan.metric_source_of(env) else {
            continue;
        };
        for stage in &ramp.stages {
            let blind: Vec<&At<Condition>> = stage
                .gates
                .iter()
                .filter_map(|g| g.metric.as_ref())
                .filter(|m| {
                    plan.slis.iter().any(|sli| {
                        sli.id.value == m.sli && !sli.queries.contains_key(&source.id.value)
                    })
                })
                .collect();
            let Some(first) = blind.first() else {
                continue;
            };
            let list: Vec<String> = blind.iter().map(|m| format!("`{}`", m.value)).collect();
            let slis: Vec<String> = blind.iter().map(|m| format!("`{}`", m.sli)).collect();
            let weight = stage.weight.value;
            sink.report(
                Code::GateUnmeasurable,
                place(first.loc, stage.loc),
                format!(
                    "in environment `{}`, the {weight}% stage's gate{} {} cannot be judged: metric source `{}` has no query for {}; the ramp stops at {weight}% there until someone waives the stage's gates",
                    env.id.value,
                    if blind.len() > 1 { "s" } else { "" },
                    list.join(", "),
                    source.id.value,
                    slis.join(", ")
                ),
                format!(
                    "add a `{}` query to {}, or in `{}` waive the stage when it holds (`golive waive stage:{weight} --reason ... --as ...`)",
                    source.id.value,
                    slis.join(", "),
                    env.id.value
                ),
            );
        }
    }
}

/// A warm-up shorter than an environment's metric window lets rules act on the window a
/// weight change emptied; a stage's hold shorter than its warm-up really lasts the warm-up.
fn warmup(plan: &Plan, ramp: &Ramp, sink: &mut Sink<'_>) {
    // The window each environment's metric source judges over, each source once.
    let mut windows: Vec<(String, String, Dur)> = Vec::new();
    for env in &plan.environments {
        if let Some(source) = plan.metric_source_of(env)
            && let Some(window) = source.window()
            && !windows.iter().any(|(_, s, _)| *s == source.id.value)
        {
            windows.push((env.id.value.clone(), source.id.value.clone(), window));
        }
    }
    if let Some(explicit) = &ramp.warmup {
        for (env, source, window) in &windows {
            if explicit.value < *window {
                sink.report(
                    Code::WarmupMismatch,
                    explicit.loc,
                    format!(
                        "the ramp warms up for {}, but environment `{env}` reads metric source `{source}` over {window}: until the window has filled after a weight change, ratio SLIs can read no data and rules act on it",
                        explicit.value
                    ),
                    format!(
                        "set `warmup: {window}`, or leave it out: it defaults to the metric source's window"
                    ),
                );
            }
        }
    }
    let longest = match &ramp.warmup {
        Some(explicit) => Some((explicit.value, "`ramp.warmup`".to_string())),
        None => windows
            .iter()
            .max_by_key(|(_, _, w)| *w)
            .map(|(env, source, w)| {
                (
                    *w,
                    format!("the window of `{source}` (environment `{env}`)"),
                )
            }),
    };
    let Some((warmup, because)) = longest else {
        return;
    };
    for stage in &ramp.stages {
        if stage.hold.value < warmup {
            sink.report(
                Code::WarmupMismatch,
                place(stage.hold.loc, stage.loc),
                format!(
                    "stage {}% holds {}, but it warms up for {warmup} ({because}): the hold lasts {warmup}",
                    stage.weight.value, stage.hold.value
                ),
                format!("hold the stage for at least {warmup}, or shorten the warm-up"),
            );
        }
    }
}
