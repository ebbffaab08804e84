//! Communication that cannot happen as written: one audience on two clocks, playbook
//! deadlines out of order, pages that wait longer than their deadline.

use crate::diagnostic::{Code, Sink};
use crate::model::{Plan, Window};
use crate::schedule::{Hours, cadence_spans, merge};
use crate::validate::place;

pub fn check(plan: &Plan, sink: &mut Sink<'_>) {
    cadences(plan, sink);
    for playbook in &plan.playbooks {
        let mut latest: Option<(&str, crate::units::Dur)> = None;
        for action in &playbook.actions {
            let within = action.within.value;
            if let Some((before, deadline)) = latest
                && within < deadline
            {
                sink.report(
                        Code::DeadlineOrder,
                        place(action.within.loc, action.loc),
                        format!(
                            "action `{}` is due within {within}, but comes after `{before}`, due within {deadline}",
                            action.id.value
                        ),
                        "order the actions by deadline, or correct the deadline",
                    );
            }
            if latest.is_none_or(|(_, d)| within >= d) {
                latest = Some((action.id.as_str(), within));
            }
            if let Some(page) = &action.page
                && let Some(ack) = &page.ack_within
                && ack.value > within
            {
                sink.report(
                            Code::AckAfterDeadline,
                            place(ack.loc, page.loc),
                            format!(
                                "the page waits {} for an acknowledgement, longer than the action's deadline of {within}",
                                ack.value
                            ),
                            "make `ack_within` shorter than `within`, so escalation to the backup can still meet the deadline",
                        );
            }
        }
    }
}

fn overlaps(a: &[Window], b: &[Window]) -> bool {
    a.iter().any(|x| {
        b.iter().any(|y| {
            x.start.approx_millis() < y.end.approx_millis()
                && y.start.approx_millis() < x.end.approx_millis()
        })
    })
}

/// One audience, two cadences at once with different intervals: which one is the plan?
fn cadences(plan: &Plan, sink: &mut Sink<'_>) {
    let Some(comms) = &plan.comms else { return };
    let spans: Vec<Vec<Window>> = comms
        .cadences
        .iter()
        .map(|c| cadence_spans(plan, c))
        .collect();
    for (j, b) in comms.cadences.iter().enumerate() {
        for (i, a) in comms.cadences.iter().enumerate().take(j) {
            if a.audience.value != b.audience.value || a.every.value == b.every.value {
                continue;
            }
            let hours_apart = match (
                a.hours.as_ref().and_then(|h| Hours::parse(h)),
                b.hours.as_ref().and_then(|h| Hours::parse(h)),
            ) {
                (Some(x), Some(y)) => !x.overlaps(&y),
                _ => false,
            };
            let spans_a = merge(spans[i].clone());
            let spans_b = merge(spans[j].clone());
            if hours_apart || !overlaps(&spans_a, &spans_b) {
                continue;
            }
            sink.report(
                Code::CadenceConflict,
                place(b.every.loc, b.loc),
                format!(
                    "audience `{}` gets updates every {} from `{}` and every {} from `{}` at the same time",
                    b.audience.value, b.every.value, b.id.value, a.every.value, a.id.value
                ),
                "keep one cadence per audience and period, with the interval the runbook means",
            )
            .note(place(a.every.loc, a.loc), format!("`{}` is here", a.id.value));
            break;
        }
    }
}
