//! The plan's schedule: every dated thing in order (checklist dues, phases and their steps,
//! ramp stages at their earliest start, messages, cadence occurrences, the success check,
//! follow-up dues), as offsets from T0 and as times in the plan's zone.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::model::{Cadence, Environment, Plan, Ramp, Window};
use crate::span::Loc;
use crate::units::{Dur, Offset};

/// What a scheduled item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    // At one instant, what ends comes before what starts.
    PhaseEnd,
    WindowEnd,
    ChecklistDue,
    WindowStart,
    PhaseStart,
    Step,
    RampStage,
    Message,
    Cadence,
    Success,
    FollowUp,
}

/// One dated thing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub at: Offset,
    pub kind: ItemKind,
    /// The id of the thing (checklist, step, stage weight as `5%`, message, cadence…).
    pub id: String,
    pub title: String,
    /// Extra facts: "hold 2h", "every 15m until T+72:00 (288 times)", "rehearsed".
    pub detail: String,
    /// In the environment asked for, this step is rehearsed rather than run.
    pub rehearsed: bool,
    #[serde(skip)]
    pub loc: Loc,
}

/// How cadences appear: one line each, or every occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadences {
    Summary,
    List,
}

/// Local hours a cadence may send in: `09:00-17:00`, or with weekdays
/// `Mon-Fri 09:00-17:00` ("hourly during business hours").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// Weekdays as a set, bit 0 = Monday … bit 6 = Sunday; all when none were written.
    pub days: u8,
    /// Minutes since local midnight: `from` inclusive, `to` exclusive.
    pub from: u32,
    pub to: u32,
}

fn weekday_number(text: &str) -> Option<u8> {
    let lower = text.trim().to_ascii_lowercase();
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .position(|d| lower.starts_with(d))
        .and_then(|p| u8::try_from(p).ok())
}

impl Hours {
    const EVERY_DAY: u8 = 0b111_1111;

    pub fn parse(text: &str) -> Option<Hours> {
        let text = text.trim();
        let (days, range) = if text.starts_with(|c: char| c.is_ascii_alphabetic()) {
            let (days, range) = text.split_once(char::is_whitespace)?;
            let (first, last) = days.split_once('-').unwrap_or((days, days));
            let (first, last) = (weekday_number(first)?, weekday_number(last)?);
            let mut set = 0u8;
            let mut day = first;
            loop {
                set |= 1 << day;
                if day == last {
                    break;
                }
                day = (day + 1) % 7;
            }
            (set, range)
        } else {
            (Hours::EVERY_DAY, text)
        };
        let (start, end) = range.split_once('-')?;
        let minutes = |s: &str| -> Option<u32> {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
        };
        let (from, to) = (minutes(start)?, minutes(end)?);
        (from < to).then_some(Hours { days, from, to })
    }

    /// Whether a local time falls inside these hours.
    pub fn contains(&self, local: &jiff::ZonedDateTime) -> bool {
        let day = u8::try_from(local.weekday().to_monday_zero_offset()).unwrap_or(0);
        let minute =
            u32::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
        self.days & (1 << day) != 0 && (self.from..self.to).contains(&minute)
    }

    /// Whether some local time falls inside both.
    pub fn overlaps(&self, other: &Hours) -> bool {
        self.days & other.days != 0 && self.from < other.to && other.from < self.to
    }
}

/// An offset moved later by a duration.
pub fn add(offset: Offset, d: Dur) -> Offset {
    Offset {
        months: offset.months,
        millis: offset
            .millis
            .saturating_add(i64::try_from(d.millis()).unwrap_or(i64::MAX)),
    }
}

fn later(a: Offset, b: Offset) -> Offset {
    if b.approx_millis() > a.approx_millis() {
        b
    } else {
        a
    }
}

/// Each stage's earliest start: the ramp's start for the first, then the previous start
/// plus its hold, and never before the stage's own `not_before`.
pub fn stage_starts(ramp: &Ramp) -> Vec<Offset> {
    let mut starts = Vec::with_capacity(ramp.stages.len());
    let mut next = ramp.start.value;
    for stage in &ramp.stages {
        let start = match &stage.not_before {
            Some(not_before) => later(next, not_before.value),
            None => next,
        };
        starts.push(start);
        next = add(start, stage.hold.value);
    }
    starts
}

/// The spans of time a cadence runs: the windows of its phases (`during`), else its own
/// `window`, else the plan's maintenance window.
pub fn cadence_spans(plan: &Plan, cadence: &Cadence) -> Vec<Window> {
    if !cadence.during.is_empty() {
        return cadence
            .during
            .iter()
            .filter_map(|id| plan.timeline.iter().find(|p| p.id.value == id.value))
            .map(|phase| phase.window.value)
            .collect();
    }
    match (&cadence.window, &plan.window) {
        (Some(window), _) | (None, Some(window)) => vec![window.value],
        (None, None) => Vec::new(),
    }
}

/// Merges overlapping or touching spans; drops empty ones.
pub fn merge(mut spans: Vec<Window>) -> Vec<Window> {
    spans.retain(|w| w.start.approx_millis() < w.end.approx_millis());
    spans.sort_by_key(|w| w.start.approx_millis());
    let mut merged: Vec<Window> = Vec::new();
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start.approx_millis() <= last.end.approx_millis() => {
                last.end = later(last.end, span.end);
            }
            _ => merged.push(span),
        }
    }
    merged
}

/// Occurrences are listed up to this many per cadence, so a mistaken `every: 1s` over a
/// month cannot exhaust memory.
const MAX_OCCURRENCES: usize = 100_000;
/// Intervals looked at per span, counted apart from occurrences: with `hours`, most
/// intervals of a tiny `every` fall outside and add nothing.
const MAX_STEPS: usize = 1_000_000;

/// A cadence's occurrences: from each span's start, every interval, before the span's
/// end, within `hours` when set; where spans overlap, an occurrence counts once.
pub fn cadence_occurrences(plan: &Plan, cadence: &Cadence) -> Vec<Offset> {
    let every = i64::try_from(cadence.every.millis()).unwrap_or(i64::MAX);
    if every <= 0 {
        return Vec::new();
    }
    let hours = cadence.hours.as_ref().and_then(|h| Hours::parse(h));
    let tz = plan.t0.0.time_zone().clone();
    let t0 = plan.t0.0.timestamp();
    let mut out = Vec::new();
    for span in cadence_spans(plan, cadence) {
        let mut at = span.start;
        let mut steps = 0;
        while at.approx_millis() < span.end.approx_millis()
            && out.len() < MAX_OCCURRENCES
            && steps < MAX_STEPS
        {
            steps += 1;
            let inside = hours
                .is_none_or(|h| h.contains(&at.resolve(t0, &tz).to_zoned_datetime(tz.clone())));
            if inside {
                out.push(at);
            }
            at = Offset {
                months: at.months,
                millis: at.millis.saturating_add(every),
            };
        }
    }
    out.sort_by_key(Offset::approx_millis);
    out.dedup();
    out
}

/// Every scheduled item of the plan, in time order. With an environment, steps it only
/// rehearses are marked.
pub fn items(plan: &Plan, env: Option<&Environment>, cadences: Cadences) -> Vec<Item> {
    let rehearsed = |id: &str| env.is_some_and(|e| e.rehearse_only.iter().any(|r| r.value == id));
    let mut items = Vec::new();
    let mut push = |at: Offset,
                    kind: ItemKind,
                    id: &str,
                    title: &str,
                    detail: String,
                    rehearsed: bool,
                    loc: Loc| {
        items.push(Item {
            at,
            kind,
            id: id.to_string(),
            title: title.to_string(),
            detail,
            rehearsed,
            loc,
        });
    };
    for checklist in &plan.checklists {
        let manual = checklist
            .items
            .iter()
            .filter(|i| i.verify.is_manual())
            .count();
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let detail = format!(
            "{}: {}, {}",
            plural(checklist.items.len(), "item", "items"),
            plural(manual, "sign-off", "sign-offs"),
            plural(checklist.items.len() - manual, "automated", "automated")
        );
        let all_rehearsed =
            !checklist.items.is_empty() && checklist.items.iter().all(|i| rehearsed(&i.id));
        push(
            checklist.due.value,
            ItemKind::ChecklistDue,
            &checklist.id,
            &checklist.title,
            detail,
            all_rehearsed,
            checklist.loc,
        );
    }
    if let Some(window) = &plan.window {
        push(
            window.start,
            ItemKind::WindowStart,
            "window",
            "Maintenance window opens",
            String::new(),
            false,
            window.loc,
        );
        push(
            window.end,
            ItemKind::WindowEnd,
            "window",
            "Maintenance window closes",
            String::new(),
            false,
            window.loc,
        );
    }
    for phase in &plan.timeline {
        push(
            phase.window.start,
            ItemKind::PhaseStart,
            &phase.id,
            &phase.title,
            format!("until {}", phase.window.end),
            false,
            phase.loc,
        );
        push(
            phase.window.end,
            ItemKind::PhaseEnd,
            &phase.id,
            &format!("{} ends", phase.title.value),
            String::new(),
            false,
            phase.loc,
        );
        for step in &phase.steps {
            push(
                step.at.value,
                ItemKind::Step,
                &step.id,
                &step.title,
                step_detail(step),
                rehearsed(&step.id),
                step.loc,
            );
        }
    }
    if let Some(ramp) = &plan.ramp {
        for (stage, start) in ramp.stages.iter().zip(stage_starts(ramp)) {
            let mut detail = format!("hold {}", stage.hold.value);
            if stage.approval.is_some() {
                detail.push_str(", needs approval");
            }
            if !stage.gates.is_empty() {
                detail.push_str(&format!(", {} gates", stage.gates.len()));
            }
            let id = format!("{}%", stage.weight.value);
            push(
                start,
                ItemKind::RampStage,
                &id,
                &format!("Ramp to {}% (earliest)", stage.weight.value),
                detail,
                false,
                stage.loc,
            );
        }
    }
    if let Some(comms) = &plan.comms {
        for message in &comms.messages {
            let audiences: Vec<&str> = message.audiences.iter().map(|a| a.as_str()).collect();
            let title = format!("Message `{}`", message.template.value);
            push(
                message.at.value,
                ItemKind::Message,
                &message.id,
                &title,
                format!("to {}", audiences.join(", ")),
                false,
                message.loc,
            );
        }
        for cadence in &comms.cadences {
            let occurrences = cadence_occurrences(plan, cadence);
            let title = format!(
                "Update to {} (`{}`)",
                cadence.audience.value, cadence.template.value
            );
            match cadences {
                Cadences::Summary => {
                    let Some(&first) = occurrences.first() else {
                        continue;
                    };
                    let last = occurrences.last().copied().unwrap_or(first);
                    let mut detail = format!(
                        "every {}, {} times until {}",
                        cadence.every.value,
                        occurrences.len(),
                        last
                    );
                    if let Some(hours) = &cadence.hours {
                        detail.push_str(&format!(", only {}", hours.value));
                    }
                    push(
                        first,
                        ItemKind::Cadence,
                        &cadence.id,
                        &title,
                        detail,
                        false,
                        cadence.loc,
                    );
                }
                Cadences::List => {
                    let count = occurrences.len();
                    for (n, at) in occurrences.into_iter().enumerate() {
                        let detail = format!("{} of {count}, every {}", n + 1, cadence.every.value);
                        push(
                            at,
                            ItemKind::Cadence,
                            &cadence.id,
                            &title,
                            detail,
                            false,
                            cadence.loc,
                        );
                    }
                }
            }
        }
    }
    if let Some(success) = &plan.success {
        let detail = format!("{} criteria", success.criteria.len());
        push(
            success.at.value,
            ItemKind::Success,
            "success",
            "Success criteria evaluated",
            detail,
            false,
            success.loc,
        );
    }
    for followup in &plan.followups {
        push(
            followup.due.value,
            ItemKind::FollowUp,
            &followup.id,
            &followup.title,
            format!("owner {}", followup.owner.value),
            false,
            followup.loc,
        );
    }
    // Stable: items at the same time keep kind order, then the order they were written.
    items.sort_by_key(|item| (item.at.approx_millis(), item.kind));
    items
}

fn step_detail(step: &crate::model::Step) -> String {
    let kind = if step.run.is_some() {
        "run".to_string()
    } else if step.probe.is_some() {
        "probe".to_string()
    } else if let Some(roles) = &step.roll_call {
        format!(
            "roll call of {}",
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if let Some(freeze) = &step.freeze {
        format!("freeze: {}", freeze.value)
    } else if step.gate.is_some() {
        "gate".to_string()
    } else if step.notify.is_some() {
        "notify".to_string()
    } else if let Some(weight) = &step.traffic {
        format!("traffic to {}%", weight.value)
    } else if let Some(checklist) = &step.checklist {
        format!("checklist {}", checklist.value)
    } else {
        String::new()
    };
    match &step.owner {
        Some(owner) => format!("{kind}, owner {}", owner.value),
        None => kind,
    }
}

/// The absolute time of an offset for the plan's planned T0.
pub fn resolve(plan: &Plan, at: Offset) -> (Timestamp, TimeZone) {
    let tz = plan.t0.0.time_zone().clone();
    (at.resolve(plan.t0.0.timestamp(), &tz), tz)
}
