//! Written dates whose weekday is wrong: "Saturday, August 21, 2025" when 21 August 2025 is
//! a Thursday. Every text value of the plan is scanned (comments are not values); a date
//! without a year takes T0's year.

use jiff::civil::{Date, Weekday};

use crate::diagnostic::{Code, Sink};
use crate::model::Plan;
use crate::span::Loc;

/// A date written with its weekday, as found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenDate {
    /// Byte range of the whole date in the text.
    pub start: usize,
    pub end: usize,
    pub weekday: Weekday,
    pub month: i8,
    pub day: i8,
    pub year: Option<i16>,
}

const WEEKDAYS: &[(&str, Weekday)] = &[
    ("monday", Weekday::Monday),
    ("mon", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("tues", Weekday::Tuesday),
    ("tue", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("wed", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("thurs", Weekday::Thursday),
    ("thur", Weekday::Thursday),
    ("thu", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("fri", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sat", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
    ("sun", Weekday::Sunday),
];

const MONTHS: &[(&str, i8)] = &[
    ("january", 1),
    ("jan", 1),
    ("february", 2),
    ("feb", 2),
    ("march", 3),
    ("mar", 3),
    ("april", 4),
    ("apr", 4),
    ("may", 5),
    ("june", 6),
    ("jun", 6),
    ("july", 7),
    ("jul", 7),
    ("august", 8),
    ("aug", 8),
    ("september", 9),
    ("sept", 9),
    ("sep", 9),
    ("october", 10),
    ("oct", 10),
    ("november", 11),
    ("nov", 11),
    ("december", 12),
    ("dec", 12),
];

struct Word<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

fn words(text: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push(Word {
                text: &text[s..i],
                start: s,
                end: i,
            });
        }
    }
    if let Some(s) = start {
        out.push(Word {
            text: &text[s..],
            start: s,
            end: text.len(),
        });
    }
    out
}

/// Words are joined only by spaces, commas and periods ("Sat., Aug. 23"), not by `:` or
/// line breaks, so a time like `2:00` is never read as a day.
fn joined(text: &str, a: &Word<'_>, b: &Word<'_>) -> bool {
    let gap = &text[a.end..b.start];
    !gap.is_empty() && gap.len() <= 3 && gap.chars().all(|c| c == ' ' || c == ',' || c == '.')
}

fn capitalized(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

fn lookup<T: Copy>(table: &[(&str, T)], word: &str) -> Option<T> {
    if !capitalized(word) {
        return None;
    }
    let lower = word.to_lowercase();
    table
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|&(_, v)| v)
}

fn day_number(word: &str) -> Option<i8> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") || digits.is_empty() || digits.len() > 2 {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

fn year_number(word: &str) -> Option<i16> {
    (word.len() == 4 && word.bytes().all(|b| b.is_ascii_digit()))
        .then(|| word.parse().ok())
        .flatten()
}

/// Finds "Saturday, August 23, 2025", "Sat Aug 23", "Saturday 23 August 2025" and the like.
pub fn find_dates(text: &str) -> Vec<WrittenDate> {
    let w = words(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < w.len() {
        let Some(weekday) = lookup(WEEKDAYS, w[i].text) else {
            i += 1;
            continue;
        };
        let get = |k: usize| w.get(k).filter(|_| joined(text, &w[k - 1], &w[k]));
        // Weekday Month Day [Year]
        let month_first = get(i + 1)
            .and_then(|m| lookup(MONTHS, m.text))
            .and_then(|month| {
                get(i + 2)
                    .and_then(|d| day_number(d.text))
                    .map(|day| (month, day))
            });
        // Weekday Day [of] Month [Year]
        let day_first = || {
            let day = get(i + 1).and_then(|d| day_number(d.text))?;
            let mut k = i + 2;
            if get(k).is_some_and(|o| o.text == "of") {
                k += 1;
            }
            let month = get(k).and_then(|m| lookup(MONTHS, m.text))?;
            Some((month, day, k))
        };
        let found = match month_first {
            Some((month, day)) => Some((month, day, i + 2)),
            None => day_first(),
        };
        if let Some((month, day, last)) = found {
            let year = get(last + 1).and_then(|y| year_number(y.text));
            let end_word = if year.is_some() { last + 1 } else { last };
            out.push(WrittenDate {
                start: w[i].start,
                end: w[end_word].end,
                weekday,
                month,
                day,
                year,
            });
            i = end_word + 1;
        } else {
            i += 1;
        }
    }
    out
}

fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// Distinct wrong dates reported at most.
const MAX_REPORTED: usize = 100;

/// Reports every written date whose weekday is not its date's weekday.
pub fn check(plan: &Plan, sink: &mut Sink<'_>) {
    let default_year = plan.t0.0.year();
    // Serializing the plan's own types to JSON cannot fail: every map key is a string.
    let value = serde_json::to_value(plan).unwrap_or_default();
    let mut texts = Vec::new();
    collect_strings(&value, &mut texts);
    let mut reported = std::collections::BTreeSet::new();
    for text in texts {
        for date in find_dates(text) {
            let written = &text[date.start..date.end];
            // Each wrong date is searched for in the whole file; a bound keeps a file full
            // of them from taking quadratic time.
            if reported.len() >= MAX_REPORTED || !reported.insert(written.to_string()) {
                continue;
            }
            let year = date.year.unwrap_or(default_year);
            let message_and_help = match Date::new(year, date.month, date.day) {
                Ok(real) if real.weekday() == date.weekday => continue,
                Ok(real) => (
                    format!(
                        "`{written}` is a {}{}",
                        weekday_name(real.weekday()),
                        if date.year.is_none() {
                            format!(" in {year}, T0's year")
                        } else {
                            String::new()
                        }
                    ),
                    format!(
                        "correct the weekday or the date; in a message, write `{{{{ plan.t0_date }}}}` (T0 is {}) so the date comes from the plan",
                        plan.t0.0.strftime("%A, %B %-d, %Y")
                    ),
                ),
                Err(_) => (
                    format!("`{written}` is not a date in {year}"),
                    "correct the day of the month".to_string(),
                ),
            };
            for loc in occurrences(sink, written) {
                sink.report(
                    Code::WeekdayMismatch,
                    loc,
                    message_and_help.0.clone(),
                    message_and_help.1.clone(),
                )
                .width(written.chars().count());
            }
        }
    }
}

fn collect_strings<'v>(value: &'v serde_json::Value, out: &mut Vec<&'v str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Every place `needle` is written outside comments; failing that, anywhere (a `#` line
/// in a block scalar looks like a comment but is text); failing that, the file's start.
fn occurrences(sink: &Sink<'_>, needle: &str) -> Vec<Loc> {
    let source = sink.source;
    // Only where the whole written date is `needle`: "Saturday, August 21" is also the
    // start of "Saturday, August 21, 2025", which is a different date to report.
    let is_whole_date = |loc: Loc| {
        let line = source.line(loc.line);
        let byte = line
            .char_indices()
            .nth(loc.column as usize - 1)
            .map(|(i, _)| i)
            .unwrap_or(line.len());
        find_dates(line)
            .iter()
            .any(|d| d.start == byte && &line[d.start..d.end] == needle)
    };
    let mut found = Vec::new();
    let mut from = Loc::new(1, 1);
    while let Some(at) = source.find_after(from, needle, u32::MAX) {
        if is_whole_date(at) {
            found.push(at);
        }
        from = Loc::new(at.line, at.column + 1);
    }
    if found.is_empty() {
        for n in 1..=source.line_count() {
            for (byte, _) in source.line(n).match_indices(needle) {
                let column = source.line(n)[..byte].chars().count() as u32 + 1;
                if is_whole_date(Loc::new(n, column)) {
                    found.push(Loc::new(n, column));
                }
            }
        }
    }
    if found.is_empty() {
        found.push(Loc::new(1, 1));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(text: &str) -> Vec<(Weekday, i8, i8, Option<i16>, &str)> {
        find_dates(text)
            .into_iter()
            .map(|d| (d.weekday, d.month, d.day, d.year, &text[d.start..d.end]))
            .collect()
    }

    #[test]
    fn finds_runbook_dates() {
        assert_eq!(
            dates("Start: Saturday, August 21, 2025 at 2:00 AM EST"),
            vec![(
                Weekday::Saturday,
                8,
                21,
                Some(2025),
                "Saturday, August 21, 2025"
            )]
        );
        assert_eq!(
            dates("• Start: Saturday, August 21 at 2:00 AM EST"),
            vec![(Weekday::Saturday, 8, 21, None, "Saturday, August 21")]
        );
        assert_eq!(
            dates("Sat., Aug. 23rd"),
            vec![(Weekday::Saturday, 8, 23, None, "Sat., Aug. 23rd")]
        );
        assert_eq!(
            dates("on Monday 25 August 2025."),
            vec![(Weekday::Monday, 8, 25, Some(2025), "Monday 25 August 2025")]
        );
        assert_eq!(
            dates("Friday the 13th of June"),
            vec![],
            "only plain forms are read, never guessed"
        );
    }

    #[test]
    fn ignores_what_is_not_a_date() {
        assert!(dates("Saturday 2:00 AM").is_empty());
        assert!(dates("We sat down in May 2025").is_empty());
        assert!(dates("Saturday,\nAugust 21").is_empty());
        assert!(dates("Saturday, August 32").is_empty());
    }
}
