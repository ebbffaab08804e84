//! Message templates: the typed context a message is rendered from, rendering with
//! minijinja, and lint of template text (syntax, variables that the context lacks).
//!
//! The context is the only source of facts a message states: times come preformatted in
//! the plan's zone ("Saturday, August 23, 2025 at 2:00 AM EDT"), so a template never
//! writes a date or a downtime by hand and can never contradict the plan.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::diagnostic::{Code, Sink};
use crate::model::{Plan, Template};
use crate::source::SourceText;
use crate::span::Loc;
use crate::suggest::did_you_mean;
use crate::units::{Dur, Offset};

/// Everything a template can use. The engine fills `run`, `now` and `audience` when it
/// sends a message; `plan` and `roles` come from the plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TemplateContext {
    pub plan: PlanContext,
    pub run: RunContext,
    /// Role id → the role's title and its primary holder's contacts.
    pub roles: BTreeMap<String, RoleContext>,
    /// The moment of sending, formatted in the plan's zone.
    pub now: String,
    /// The audience the message goes to.
    pub audience: AudienceContext,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanContext {
    pub name: String,
    pub version: String,
    /// Title of the owning role.
    pub owner: String,
    /// Planned T0: "Saturday, August 23, 2025 at 2:00 AM EDT".
    pub t0: String,
    /// "Saturday, August 23, 2025".
    pub t0_date: String,
    /// "2:00 AM EDT".
    pub t0_time: String,
    /// Start and end of the maintenance window, like `t0`; empty without a window.
    pub window_start: String,
    pub window_end: String,
    /// "30 minutes"; empty when the plan announces none.
    pub expected_downtime: String,
    /// The zone's name, e.g. `America/New_York`.
    pub timezone: String,
    /// Link id → URL.
    pub links: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunContext {
    /// Environment id the run uses.
    pub env: String,
    /// Title of the current timeline phase.
    pub phase: String,
    /// The run's state in words: "planned", "in progress", "ramping", "paused",
    /// "rolled back", "complete".
    pub status: String,
    /// Percent of traffic on the new version.
    pub weight: u8,
    /// The ramp stage, e.g. "2 of 5 (25%)"; empty before the ramp.
    pub stage: String,
    /// The decided T0, formatted; empty before "go".
    pub t0_actual: String,
    /// Time since the actual T0: "1 hour 5 minutes".
    pub elapsed: String,
    /// When the audience hears next, formatted.
    pub next_update: String,
    /// How long the last rollback took: "2 minutes 10 seconds"; empty without one.
    pub rollback_duration: String,
    pub incident: IncidentContext,
}

/// The incident a message is about (a rule that fired, a manual trigger); empty fields
/// when there is none.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IncidentContext {
    /// Rule or trigger id.
    pub trigger: String,
    pub title: String,
    /// Why, in words: "error_rate 2.3% > 1% for 2m".
    pub reason: String,
    /// When it started, formatted.
    pub started: String,
    /// Who or what is affected.
    pub impact: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RoleContext {
    pub title: String,
    /// The primary holder's name.
    pub name: String,
    pub phone: String,
    pub email: String,
    pub chat: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AudienceContext {
    pub title: String,
}

impl TemplateContext {
    /// The context with every plan fact filled in and the run not started.
    pub fn for_plan(plan: &Plan) -> TemplateContext {
        let tz = plan.t0.0.time_zone().clone();
        let t0 = plan.t0.0.timestamp();
        let at = |offset: Offset| format_time(offset.resolve(t0, &tz), &tz);
        let owner = plan
            .roles
            .iter()
            .find(|r| r.id.value == plan.meta.owner.value)
            .map(|r| r.title.value.clone())
            .unwrap_or_else(|| plan.meta.owner.value.clone());
        let people: BTreeMap<&str, &crate::model::Person> = plan
            .people
            .iter()
            .map(|p| (p.id.as_str(), &p.value))
            .collect();
        let roles = plan
            .roles
            .iter()
            .map(|role| {
                let person = people.get(role.primary.as_str());
                let text = |f: fn(&crate::model::Person) -> Option<&String>| {
                    person.and_then(|p| f(p)).cloned().unwrap_or_default()
                };
                let context = RoleContext {
                    title: role.title.value.clone(),
                    name: person.map(|p| p.name.value.clone()).unwrap_or_default(),
                    phone: text(|p| p.phone.as_ref().map(|v| &v.value)),
                    email: text(|p| p.email.as_ref().map(|v| &v.value)),
                    chat: text(|p| p.chat.as_ref().map(|v| &v.value)),
                };
                (role.id.value.clone(), context)
            })
            .collect();
        TemplateContext {
            plan: PlanContext {
                name: plan.meta.name.value.clone(),
                version: plan
                    .meta
                    .version
                    .as_ref()
                    .map(|v| v.value.clone())
                    .unwrap_or_default(),
                owner,
                t0: format_time(t0, &tz),
                t0_date: format_date(t0, &tz),
                t0_time: format_clock(t0, &tz),
                window_start: plan
                    .window
                    .as_ref()
                    .map(|w| at(w.start))
                    .unwrap_or_default(),
                window_end: plan.window.as_ref().map(|w| at(w.end)).unwrap_or_default(),
                expected_downtime: plan
                    .expected_downtime
                    .as_ref()
                    .map(|d| format_duration(d.value))
                    .unwrap_or_default(),
                timezone: tz.iana_name().unwrap_or("UTC").to_string(),
                links: plan
                    .meta
                    .links
                    .iter()
                    .map(|l| (l.id.value.clone(), l.url.value.clone()))
                    .collect(),
            },
            run: RunContext {
                status: "planned".into(),
                ..RunContext::default()
            },
            roles,
            now: String::new(),
            audience: AudienceContext::default(),
        }
    }

    /// Every variable path a template may use with this context (`plan.name`,
    /// `roles.release_manager.phone`, …), including the containers (`plan`, `roles`).
    pub fn variable_paths(&self) -> std::collections::BTreeSet<String> {
        let mut paths = std::collections::BTreeSet::new();
        // Serializing plain structs of strings and maps to JSON cannot fail.
        let value = serde_json::to_value(self).unwrap_or_default();
        collect_paths(&value, String::new(), &mut paths);
        paths
    }
}

fn collect_paths(
    value: &serde_json::Value,
    prefix: String,
    paths: &mut std::collections::BTreeSet<String>,
) {
    if let serde_json::Value::Object(map) = value {
        for (key, child) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            paths.insert(path.clone());
            collect_paths(child, path, paths);
        }
    }
}

/// "Saturday, August 23, 2025 at 2:00 AM EDT".
pub fn format_time(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned_datetime(tz.clone())
        .strftime("%A, %B %-d, %Y at %-I:%M %p %Z")
        .to_string()
}

/// "Saturday, August 23, 2025".
pub fn format_date(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned_datetime(tz.clone())
        .strftime("%A, %B %-d, %Y")
        .to_string()
}

/// "2:00 AM EDT".
pub fn format_clock(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned_datetime(tz.clone())
        .strftime("%-I:%M %p %Z")
        .to_string()
}

/// "30 minutes", "1 hour 30 minutes", "2 days", "500 milliseconds".
pub fn format_duration(d: Dur) -> String {
    let ms = d.millis();
    if ms == 0 {
        return "0 seconds".into();
    }
    if ms < 1000 {
        return format!("{ms} millisecond{}", if ms == 1 { "" } else { "s" });
    }
    let mut secs = ms / 1000;
    let mut parts = Vec::new();
    for (name, size) in [
        ("week", 604_800u64),
        ("day", 86_400),
        ("hour", 3600),
        ("minute", 60),
        ("second", 1),
    ] {
        if secs >= size {
            let n = secs / size;
            secs %= size;
            parts.push(format!("{n} {name}{}", if n == 1 { "" } else { "s" }));
        }
    }
    parts.join(" ")
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub subject: Option<String>,
    pub body: String,
}

/// Why a template did not render.
#[derive(Debug, thiserror::Error)]
#[error("template `{template}`: {message}")]
pub struct RenderError {
    pub template: String,
    pub message: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // A variable missing from the context is a bug to surface, not an empty string.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// Renders a template's subject and body from `context`.
pub fn render(template: &Template, context: &TemplateContext) -> Result<Rendered, RenderError> {
    let env = environment();
    let value = minijinja::Value::from(minijinja::value::Serde(context));
    let fail = |e: minijinja::Error| RenderError {
        template: template.id.value.clone(),
        message: describe(&e),
    };
    let subject = match &template.subject {
        Some(subject) => Some(env.render_str(subject, value.clone()).map_err(fail)?),
        None => None,
    };
    let body = env.render_str(&template.body, value).map_err(fail)?;
    Ok(Rendered { subject, body })
}

fn describe(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}

/// Functions minijinja provides to every template.
const BUILTINS: &[&str] = &["range", "dict", "namespace", "debug"];

/// Checks every template's subject and body: syntax, and variables the context lacks.
pub fn lint(plan: &Plan, sink: &mut Sink<'_>) {
    let Some(comms) = &plan.comms else { return };
    let paths = TemplateContext::for_plan(plan).variable_paths();
    let env = environment();
    for template in &comms.templates {
        let texts = template
            .subject
            .iter()
            .map(|s| ("subject", s))
            .chain(std::iter::once(("body", &template.body)));
        for (part, text) in texts {
            let loc = crate::validate::place(text.loc, template.loc);
            let parsed = match env.template_from_str(text) {
                Ok(parsed) => parsed,
                Err(error) => {
                    let offset = error
                        .range()
                        .map(|r| r.start)
                        .or_else(|| error.line().map(|line| line_start(text, line)));
                    let at = offset
                        .map(|o| locate(sink.source, loc, text, o))
                        .unwrap_or(loc);
                    sink.report(
                        Code::TemplateSyntax,
                        at,
                        format!(
                            "template `{}` {part} does not parse: {}",
                            template.id.value,
                            describe(&error)
                        ),
                        "fix the template syntax: `{{ variable }}`, `{% if … %}…{% endif %}`",
                    );
                    continue;
                }
            };
            let mut unknown: Vec<String> = parsed
                .undeclared_variables(true)
                .into_iter()
                .filter(|v| !paths.contains(v) && !BUILTINS.contains(&v.as_str()))
                .collect();
            unknown.sort();
            for variable in unknown {
                let offset = find_variable(text, &variable);
                let at = offset
                    .map(|o| locate(sink.source, loc, text, o))
                    .unwrap_or(loc);
                let help = variable_help(&variable, &paths);
                sink.report(
                    Code::UnknownTemplateVariable,
                    at,
                    format!(
                        "template `{}` uses `{variable}`, which messages do not have",
                        template.id.value
                    ),
                    help,
                );
            }
        }
    }
}

fn variable_help(variable: &str, paths: &std::collections::BTreeSet<String>) -> String {
    let (parent, _) = variable.rsplit_once('.').unwrap_or(("", variable));
    let segments: Vec<&str> = variable.split('.').collect();
    if let ["plan", "links", link, ..] = segments.as_slice() {
        let links: Vec<&str> = paths
            .iter()
            .filter_map(|p| p.strip_prefix("plan.links."))
            .collect();
        return match did_you_mean(link, links.iter().copied()) {
            Some(best) => format!("did you mean `plan.links.{best}`?"),
            None => format!("there is no link `{link}`; define it under `meta.links:`"),
        };
    }
    if let ["roles", role, ..] = segments.as_slice() {
        let roles: std::collections::BTreeSet<&str> = paths
            .iter()
            .filter_map(|p| p.strip_prefix("roles."))
            .map(|p| p.split('.').next().unwrap_or(p))
            .collect();
        if !roles.contains(role) {
            return match did_you_mean(role, roles.iter().copied()) {
                Some(best) => format!("there is no role `{role}`; did you mean `{best}`?"),
                None => format!("there is no role `{role}`; define it under `roles:`"),
            };
        }
    }
    let siblings: Vec<&str> = paths
        .iter()
        .filter(|p| p.rsplit_once('.').map(|(pp, _)| pp).unwrap_or("") == parent)
        .map(String::as_str)
        .collect();
    if let Some(best) = did_you_mean(variable, siblings.iter().copied()) {
        return format!("did you mean `{best}`?");
    }
    if let Some(best) = did_you_mean(variable, paths.iter().map(String::as_str)) {
        return format!("did you mean `{best}`?");
    }
    if parent == "plan.links" {
        return "define the link under `meta.links:`".into();
    }
    if parent.starts_with("roles") {
        return "roles are `roles.<role id>.{title, name, phone, email, chat}`".into();
    }
    "use a variable of the message context: plan.*, run.*, roles.<id>.*, now, audience.title (see docs/plan.md)".into()
}

/// The byte offset of the start of 1-based line `line` in `text`.
fn line_start(text: &str, line: usize) -> usize {
    if line <= 1 {
        return 0;
    }
    text.match_indices('\n')
        .nth(line - 2)
        .map(|(i, _)| i + 1)
        .unwrap_or(text.len())
}

/// Where a variable is used in a template: the dotted path as written, or failing that
/// its first segment inside a `{{`/`{%` block.
fn find_variable(text: &str, variable: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let whole_word = |at: usize, len: usize| {
        let before = text[..at].chars().next_back();
        let after = text[at + len..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    };
    for needle in [variable, variable.split('.').next().unwrap_or(variable)] {
        for (at, _) in text.match_indices(needle) {
            if whole_word(at, needle.len()) {
                let open = text[..at]
                    .rfind("{{")
                    .into_iter()
                    .chain(text[..at].rfind("{%"))
                    .max();
                let close = text[..at]
                    .rfind("}}")
                    .into_iter()
                    .chain(text[..at].rfind("%}"))
                    .max();
                if open.is_some() && open > close {
                    return Some(at);
                }
            }
        }
    }
    None
}

/// The file location of byte `offset` of a string value that was written at `value_loc`.
///
/// serde-saphyr gives the value's start only, and a block scalar's text is shifted by its
/// indentation, so the line of the value that holds `offset` is searched for in the file
/// from where the value starts. When it cannot be found (folded or escaped text) the value's
/// own location is returned.
pub fn locate(source: &SourceText<'_>, value_loc: Loc, text: &str, offset: usize) -> Loc {
    let offset = offset.min(text.len());
    let offset = (0..=offset)
        .rev()
        .find(|&o| text.is_char_boundary(o))
        .unwrap_or(0);
    let line_begin = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(text.len());
    let line = &text[line_begin..line_end];
    let index = text[..line_begin].matches('\n').count() as u32;
    let trimmed = line.trim_start();
    let lead = line.len() - trimmed.len();
    let needle = trimmed.trim_end();
    if needle.is_empty() || !value_loc.is_known() {
        return value_loc;
    }
    let column_in_needle = text[line_begin + lead.min(offset - line_begin)..offset]
        .chars()
        .count() as u32;
    let span = text.matches('\n').count() as u32 + 2;
    let near = Loc::new(value_loc.line + index.saturating_sub(1), 1);
    let found = source
        .find_after(if index > 0 { near } else { value_loc }, needle, span)
        .or_else(|| source.find_after(value_loc, needle, span));
    match found {
        Some(at) => Loc::new(at.line, at.column + column_in_needle),
        None => value_loc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_in_the_plan_zone() {
        let tz = TimeZone::get("America/New_York").unwrap();
        let at: Timestamp = "2025-08-23T06:00:00Z".parse().unwrap();
        assert_eq!(
            format_time(at, &tz),
            "Saturday, August 23, 2025 at 2:00 AM EDT"
        );
        assert_eq!(format_date(at, &tz), "Saturday, August 23, 2025");
        assert_eq!(format_clock(at, &tz), "2:00 AM EDT");
        assert_eq!(format_duration(Dur(30 * 60_000)), "30 minutes");
        assert_eq!(format_duration(Dur(90 * 60_000)), "1 hour 30 minutes");
        assert_eq!(format_duration(Dur(500)), "500 milliseconds");
    }

    #[test]
    fn variables_are_found_inside_blocks_only() {
        let text = "run.phase is {{ run.phase }} and {% if run.weight %}x{% endif %}";
        assert_eq!(find_variable(text, "run.phase"), Some(16));
        assert_eq!(find_variable(text, "run.weight"), Some(39));
        assert_eq!(find_variable(text, "nothing"), None);
    }

    #[test]
    fn locations_inside_block_scalars() {
        let yaml = "templates:\n  - id: t\n    body: |\n      Hello\n      {{ plan.nmae }} here\n";
        let source = SourceText::new(yaml);
        let text = "Hello\n{{ plan.nmae }} here\n";
        let offset = text.find("plan.nmae").unwrap();
        assert_eq!(
            locate(&source, Loc::new(3, 11), text, offset),
            Loc::new(5, 10)
        );
        assert_eq!(locate(&source, Loc::new(3, 11), text, 0), Loc::new(4, 7));
    }
}
