//! Lint: what makes a runbook wrong although it parses and every reference resolves.
//! Contradictions between sections, schedules that cannot hold, ladders of rules that
//! cannot act as written, people who cannot be reached.

mod comms;
pub mod dates;
mod ramp;
mod rules;
pub mod text;

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Sink};
use crate::model::Plan;
use crate::validate::place;

/// Runs every lint, reporting into `sink`.
pub fn check(plan: &Plan, sink: &mut Sink<'_>) {
    dates::check(plan, sink);
    ramp::check(plan, sink);
    rules::check(plan, sink);
    timeline(plan, sink);
    people(plan, sink);
    comms::check(plan, sink);
    text::check(plan, sink);
    crate::vars::lint(plan, sink);
}

/// Steps outside their phase's window; phases nowhere near the maintenance window.
fn timeline(plan: &Plan, sink: &mut Sink<'_>) {
    for phase in &plan.timeline {
        let (start, end) = (phase.window.start, phase.window.end);
        for step in &phase.steps {
            let at = step.at.value;
            if at.approx_millis() < start.approx_millis()
                || at.approx_millis() > end.approx_millis()
            {
                sink.report(
                    Code::StepOutsidePhase,
                    place(step.at.loc, step.loc),
                    format!(
                        "step `{}` is at {at}, outside its phase `{}` ({start} to {end})",
                        step.id.value, phase.id.value
                    ),
                    "move the step into the phase whose window holds its time, or correct its `at`",
                );
            }
        }
        if let Some(window) = plan
            .window
            .as_ref()
            .filter(|w| w.start.approx_millis() < w.end.approx_millis())
        {
            let apart = end.approx_millis() < window.start.approx_millis()
                || start.approx_millis() > window.end.approx_millis();
            if apart {
                sink.report(
                    Code::PhaseOutsideWindow,
                    place(phase.window.loc, phase.loc),
                    format!(
                        "phase `{}` ({start} to {end}) lies entirely outside the maintenance window ({} to {})",
                        phase.id.value, window.start, window.end
                    ),
                    "correct the phase's window, or widen `window` if the work really happens then",
                );
            }
        }
    }
}

/// Roles without a backup, backups that are the primary, people sharing a phone.
fn people(plan: &Plan, sink: &mut Sink<'_>) {
    for role in &plan.roles {
        match &role.backup {
            None => {
                sink.report(
                    Code::RoleWithoutBackup,
                    place(role.id.loc, role.loc),
                    format!("role `{}` ({}) has no backup", role.id.value, role.title.value),
                    "add `backup: <person id>`: when the primary does not acknowledge a page, nobody else is paged",
                );
            }
            Some(backup) if backup.value == role.primary.value => {
                sink.report(
                    Code::BackupIsPrimary,
                    place(backup.loc, role.loc),
                    format!(
                        "role `{}` has `{}` as both primary and backup",
                        role.id.value, backup.value
                    ),
                    "name a different person as backup",
                );
            }
            Some(_) => {}
        }
    }
    let mut phones: BTreeMap<String, (&str, crate::span::Loc)> = BTreeMap::new();
    for person in &plan.people {
        let Some(phone) = &person.phone else { continue };
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if digits.len() < 4 {
            continue;
        }
        let loc = place(phone.loc, person.loc);
        match phones.get(&digits) {
            Some(&(first, first_loc)) => {
                sink.report(
                    Code::SharedPhone,
                    loc,
                    format!(
                        "`{}` has the same phone number as `{first}`: {}",
                        person.id.value, phone.value
                    ),
                    "a page meant for one of them reaches the other; check the number",
                )
                .note(first_loc, format!("`{first}` has it here"));
            }
            None => {
                phones.insert(digits, (person.id.as_str(), loc));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::schedule::Hours;

    #[test]
    fn business_hours() {
        let h = |t: &str| Hours::parse(t).map(|h| (h.days, h.from, h.to));
        assert_eq!(h("09:00-17:00"), Some((0b111_1111, 540, 1020)));
        assert_eq!(h("9:30 - 24:00"), Some((0b111_1111, 570, 1440)));
        assert_eq!(h("Mon-Fri 09:00-17:00"), Some((0b001_1111, 540, 1020)));
        assert_eq!(h("Fri-Mon 10:00-12:00"), Some((0b111_0001, 600, 720)));
        assert_eq!(h("Sat 10:00-12:00"), Some((0b010_0000, 600, 720)));
        assert_eq!(h("17:00-09:00"), None);
        assert_eq!(h("nine to five"), None);
        assert_eq!(h("Someday 09:00-17:00"), None);
        let weekdays = Hours::parse("Mon-Fri 09:00-17:00").unwrap();
        assert!(!weekdays.overlaps(&Hours::parse("Sat-Sun 09:00-17:00").unwrap()));
        assert!(weekdays.overlaps(&Hours::parse("16:00-18:00").unwrap()));
    }
}
