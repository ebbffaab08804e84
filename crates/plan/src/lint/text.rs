//! Templates that state a downtime or a maintenance window by hand, differently from the
//! plan's `expected_downtime` and `window`. Messages should print those from the plan.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::diagnostic::{Code, Sink};
use crate::model::Plan;
use crate::templates::locate;
use crate::units::{Dur, Offset};
use crate::validate::place;

/// A stated amount of time: "30 minutes", "less than 15 minutes".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatedDuration {
    pub start: usize,
    pub end: usize,
    pub duration: Dur,
    /// "less than", "under", "up to": an upper bound rather than an amount.
    pub at_most: bool,
}

/// A stated range of clock times: "2:00 AM - 4:00 AM", "2:00-2:15 AM".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatedRange {
    pub start: usize,
    pub end: usize,
    /// Minutes since midnight.
    pub from: u32,
    pub to: u32,
}

const DOWNTIME_WORDS: &[&str] = &[
    "downtime",
    "interruption",
    "outage",
    "unavailable",
    "offline",
];
const WINDOW_WORDS: &[&str] = &["window", "maintenance"];

fn has_word(line: &str, words: &[&str]) -> bool {
    let lower = line.to_lowercase();
    words.iter().any(|w| lower.contains(w))
}

/// Finds "30 minutes", "15 min", "2 hours", "1h", optionally after "less than", "under",
/// "up to", "at most".
pub fn stated_durations(line: &str) -> Vec<StatedDuration> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit()
            || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b':'))
        {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let number: u64 = line[start..i].parse().unwrap_or(0);
        let mut j = i;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let unit_start = j;
        while j < bytes.len() && bytes[j].is_ascii_alphabetic() {
            j += 1;
        }
        let factor = match line[unit_start..j].to_ascii_lowercase().as_str() {
            "minute" | "minutes" | "min" | "mins" | "m" => 60_000,
            "hour" | "hours" | "hr" | "hrs" | "h" => 3_600_000,
            "second" | "seconds" | "sec" | "secs" | "s" => 1000,
            _ => {
                i = j.max(i + 1);
                continue;
            }
        };
        let before = line[..start].to_lowercase();
        let before = before.trim_end();
        let at_most = [
            "less than",
            "under",
            "up to",
            "at most",
            "no more than",
            "<",
        ]
        .iter()
        .any(|q| before.ends_with(q));
        out.push(StatedDuration {
            start,
            end: j,
            duration: Dur(number * factor),
            at_most,
        });
        i = j;
    }
    out
}

/// A clock time at `i`: `2:00`, `14:00`, `2 AM`, `2:00 AM`; returns minutes, whether it
/// had AM/PM (and which), and the end.
fn clock_at(line: &str, i: usize) -> Option<(u32, Option<bool>, usize)> {
    let bytes = line.as_bytes();
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b':' | b'.' | b'+'))
    {
        return None;
    }
    let mut j = i;
    while j < bytes.len() && bytes[j].is_ascii_digit() {
        j += 1;
    }
    if j == i || j - i > 2 {
        return None;
    }
    let hour: u32 = line[i..j].parse().ok()?;
    let mut minute = 0;
    let mut had_minutes = false;
    if j + 2 < bytes.len()
        && bytes[j] == b':'
        && bytes[j + 1].is_ascii_digit()
        && bytes[j + 2].is_ascii_digit()
    {
        minute = line[j + 1..j + 3].parse().ok()?;
        j += 3;
        had_minutes = true;
    }
    let mut k = j;
    while k < bytes.len() && bytes[k] == b' ' {
        k += 1;
    }
    let rest = line[k..].to_ascii_lowercase();
    let meridiem = if rest.starts_with("am") || rest.starts_with("a.m.") {
        Some(false)
    } else if rest.starts_with("pm") || rest.starts_with("p.m.") {
        Some(true)
    } else {
        None
    };
    let end = match meridiem {
        Some(_) if rest.starts_with("a.m.") || rest.starts_with("p.m.") => k + 4,
        Some(_) => k + 2,
        None => j,
    };
    if !had_minutes && meridiem.is_none() {
        return None;
    }
    if hour > 24 || minute >= 60 || (meridiem.is_some() && !(1..=12).contains(&hour)) {
        return None;
    }
    Some((hour * 60 + minute, meridiem, end))
}

fn to_24h(minutes: u32, meridiem: Option<bool>) -> u32 {
    let (h, m) = (minutes / 60, minutes % 60);
    let h = match meridiem {
        Some(false) if h == 12 => 0,
        Some(true) if h < 12 => h + 12,
        _ => h,
    };
    h * 60 + m
}

/// Finds "2:00 AM - 4:00 AM", "2:00-2:15 AM", "2:00 AM to 10:00 AM".
pub fn stated_ranges(line: &str) -> Vec<StatedRange> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if !line.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let Some((from, from_m, from_end)) = clock_at(line, i) else {
            i += 1;
            continue;
        };
        let rest = &line[from_end..];
        let trimmed = rest.trim_start();
        let separator = ["-", "–", "—", "to ", "until "]
            .iter()
            .find(|s| trimmed.starts_with(**s));
        let Some(separator) = separator else {
            i = from_end.max(i + 1);
            continue;
        };
        let after = from_end + (rest.len() - trimmed.len()) + separator.len();
        let spaces = line[after..].len() - line[after..].trim_start().len();
        let Some((to, to_m, to_end)) = clock_at(line, after + spaces) else {
            i = from_end.max(i + 1);
            continue;
        };
        // "2:00-2:15 AM": the start shares the end's meridiem.
        let from_m = from_m.or(to_m);
        out.push(StatedRange {
            start: i,
            end: to_end,
            from: to_24h(from, from_m),
            to: to_24h(to, to_m),
        });
        i = to_end;
    }
    out
}

fn clock(at: Timestamp, tz: &TimeZone) -> u32 {
    let local = at.to_zoned_datetime(tz.clone());
    u32::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0)
}

fn show(minutes: u32) -> String {
    let (h, m) = (minutes / 60 % 24, minutes % 60);
    let (h12, meridiem) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    format!("{h12}:{m:02} {meridiem}")
}

pub fn check(plan: &Plan, sink: &mut Sink<'_>) {
    let Some(comms) = &plan.comms else { return };
    let tz = plan.t0.0.time_zone().clone();
    let t0 = plan.t0.0.timestamp();
    let local = |o: Offset| clock(o.resolve(t0, &tz), &tz);
    let window = plan.window.as_ref().map(|w| (local(w.start), local(w.end)));
    let phases: Vec<(u32, u32)> = plan
        .timeline
        .iter()
        .map(|p| (local(p.window.start), local(p.window.end)))
        .collect();
    let downtime = plan.expected_downtime.as_ref().map(|d| d.value);
    let mut phase_words: Vec<String> = vec!["cutover".into(), "phase".into()];
    for phase in &plan.timeline {
        phase_words.push(phase.id.value.to_lowercase());
        phase_words.push(phase.title.value.to_lowercase());
    }
    let phase_words: Vec<&str> = phase_words.iter().map(String::as_str).collect();
    for template in &comms.templates {
        let parts = template
            .subject
            .iter()
            .chain(std::iter::once(&template.body));
        let whole = template
            .subject
            .iter()
            .map(|s| s.as_str())
            .chain(std::iter::once(template.body.as_str()));
        let template_says_window = whole.clone().any(|t| has_word(t, WINDOW_WORDS));
        for text in parts {
            let value_loc = place(text.loc, template.loc);
            let mut offset = 0;
            for line in text.split('\n') {
                let line_offset = offset;
                offset += line.len() + 1;
                let at = |i: usize| locate(sink.source, value_loc, text, line_offset + i);
                let about_downtime = has_word(line, DOWNTIME_WORDS);
                if let (true, Some(expected)) = (about_downtime, downtime) {
                    for stated in stated_durations(line) {
                        let fits = if stated.at_most {
                            expected <= stated.duration
                        } else {
                            expected == stated.duration
                        };
                        if !fits {
                            let phrase = &line[stated.start..stated.end];
                            sink.report(
                                Code::DowntimeMismatch,
                                at(stated.start),
                                format!(
                                    "template `{}` states a downtime of {}{phrase}, but `expected_downtime` is {expected}",
                                    template.id.value,
                                    if stated.at_most { "at most " } else { "" }
                                ),
                                "write `{{ plan.expected_downtime }}` so the message states the plan's downtime",
                            )
                            .width(phrase.chars().count());
                        }
                    }
                }
                for range in stated_ranges(line) {
                    let phrase = &line[range.start..range.end];
                    let length = (range.to + 24 * 60 - range.from) % (24 * 60);
                    if about_downtime {
                        if let Some(expected) = downtime
                            && u64::from(length) * 60_000 != expected.millis()
                        {
                            sink.report(
                                    Code::DowntimeMismatch,
                                    at(range.start),
                                    format!(
                                        "template `{}` states a downtime of {phrase} ({}), but `expected_downtime` is {expected}",
                                        template.id.value,
                                        Dur(u64::from(length) * 60_000)
                                    ),
                                    "write `{{ plan.expected_downtime }}` so the message states the plan's downtime",
                                )
                                .width(phrase.chars().count());
                        }
                        continue;
                    }
                    let Some((start, end)) = window else { continue };
                    let line_says_window = has_word(line, WINDOW_WORDS);
                    let line_names_phase = has_word(line, &phase_words);
                    let is_a_phase = phases.contains(&(range.from, range.to));
                    let is_window = (range.from, range.to) == (start, end);
                    let about_window = line_says_window
                        || (!line_names_phase && (template_says_window || !is_a_phase));
                    if !is_window && range.from == start && about_window {
                        sink.report(
                            Code::WindowMismatch,
                            at(range.start),
                            format!(
                                "template `{}` states the window as {phrase}, but the maintenance window is {} - {}",
                                template.id.value,
                                show(start),
                                show(end)
                            ),
                            "write `{{ plan.window_start }}` and `{{ plan.window_end }}`, or correct `window`",
                        )
                        .width(phrase.chars().count());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_text() {
        let found = stated_durations("• Brief service interruption: Less than 15 minutes");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].duration, Dur(15 * 60_000));
        assert!(found[0].at_most);
        let found = stated_durations("Expected downtime: 30 minutes at 2:00");
        assert_eq!(found.len(), 1);
        assert!(!found[0].at_most);
        assert!(stated_durations("version 2 of 5").is_empty());
    }

    #[test]
    fn clock_ranges_in_text() {
        let r = stated_ranges("Maintenance window: 2:00 AM - 4:00 AM EST");
        assert_eq!((r[0].from, r[0].to), (120, 240));
        let r = stated_ranges("Service interruption: Saturday 2:00-2:15 AM EST");
        assert_eq!((r[0].from, r[0].to), (120, 135));
        let r = stated_ranges("from 11:00 PM to 1:00 AM");
        assert_eq!((r[0].from, r[0].to), (23 * 60, 60));
        let r = stated_ranges("14:00–18:30");
        assert_eq!((r[0].from, r[0].to), (14 * 60, 18 * 60 + 30));
        assert!(stated_ranges("T+2:00 - T+4:00 and version 1.2-3").is_empty());
    }
}
