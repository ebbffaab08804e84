//! `${name}` variables: environments define them, commands, URLs and queries use them.
//! A name no environment defines is left for the process environment (the shell or the
//! adapter reads it there), and lint says so.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{Code, Sink};
use crate::model::Plan;
use crate::span::{At, Loc};

/// Text with the variables it knew replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substituted {
    pub text: String,
    /// Names used but not in `vars`, in order of first use; their `${name}` is left as is.
    pub unknown: Vec<String>,
}

/// Variables golive itself provides where they apply: `${version}` in SLI queries,
/// `${weights}` and `${weight_<group>}` in command routers.
pub fn is_builtin(name: &str) -> bool {
    name == "version" || name == "weights" || name.starts_with("weight_")
}

/// One `${name}` in a text: byte range and name.
pub fn references(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'$' {
            i += 2;
            continue;
        }
        if bytes[i] == b'$' && bytes[i + 1] == b'{' {
            let start = i;
            let name_start = i + 2;
            let mut j = name_start;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'}' && j > name_start {
                out.push((start, j + 1, &text[name_start..j]));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Replaces each `${name}` whose name is in `vars`; `$${` writes a literal `${`.
pub fn substitute(text: &str, vars: &BTreeMap<String, At<String>>) -> Substituted {
    let mut out = String::with_capacity(text.len());
    let mut unknown: Vec<String> = Vec::new();
    let mut last = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'$' && bytes.get(i + 2) == Some(&b'{') {
            out.push_str(&text[last..i]);
            out.push('$');
            last = i + 2;
            i += 2;
            continue;
        }
        if bytes[i] == b'$' && bytes[i + 1] == b'{' {
            let name_start = i + 2;
            let mut j = name_start;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'}' && j > name_start {
                let name = &text[name_start..j];
                match vars.get(name) {
                    Some(value) => {
                        out.push_str(&text[last..i]);
                        out.push_str(value);
                        last = j + 1;
                    }
                    None => {
                        if !unknown.iter().any(|u| u == name) {
                            unknown.push(name.to_string());
                        }
                    }
                }
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[last..]);
    Substituted { text: out, unknown }
}

/// What a line of the plan belongs to, for deciding which environments its `${name}`s
/// matter in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Router(String),
    MetricSource(String),
    /// A step or checklist item: environments that only rehearse it never expand it.
    Runnable(String),
}

/// The line of each top-level key (`routers:`, `slis:` …), in file order.
fn sections<'s>(source: &crate::source::SourceText<'s>) -> Vec<(u32, &'s str)> {
    let mut out = Vec::new();
    for n in 1..=source.line_count() {
        let line = source.line(n);
        let Some(first) = line.chars().next() else {
            continue;
        };
        if first.is_whitespace() || first == '#' || first == '-' {
            continue;
        }
        if let Some((key, _)) = line.split_once(':') {
            out.push((n, key.trim()));
        }
    }
    out
}

fn owners(plan: &Plan) -> Vec<(u32, Owner)> {
    let mut out = Vec::new();
    for router in &plan.routers {
        out.push((router.loc.line, Owner::Router(router.id.value.clone())));
    }
    for source in &plan.metric_sources {
        out.push((
            source.loc.line,
            Owner::MetricSource(source.id.value.clone()),
        ));
    }
    for checklist in &plan.checklists {
        for item in &checklist.items {
            out.push((item.loc.line, Owner::Runnable(item.id.value.clone())));
        }
    }
    for phase in &plan.timeline {
        for step in &phase.steps {
            out.push((step.loc.line, Owner::Runnable(step.id.value.clone())));
        }
    }
    if let Some(ramp) = &plan.ramp {
        for step in &ramp.rollback.steps {
            out.push((step.loc.line, Owner::Runnable(step.id.value.clone())));
        }
    }
    out.retain(|(line, _)| *line > 0);
    out.sort_by_key(|(line, _)| *line);
    out
}

/// Warns about `${name}`s that environments do not define where they matter: a router's
/// variables in the environments that use that router, a metric source's and its SLI
/// queries' in those that use that source, a step's in those that run it (not rehearse
/// it), anything else in every environment. The whole file is scanned outside comments:
/// every text value may be templated.
pub fn lint(plan: &Plan, sink: &mut Sink<'_>) {
    let envs: Vec<(&str, BTreeSet<&str>, &crate::model::Environment)> = plan
        .environments
        .iter()
        .map(|e| {
            (
                e.id.as_str(),
                e.vars.keys().map(String::as_str).collect(),
                &e.value,
            )
        })
        .collect();
    let source = sink.source;
    let sections = sections(source);
    let owners = owners(plan);
    let source_ids: BTreeSet<&str> = plan.metric_sources.iter().map(|m| m.id.as_str()).collect();
    let mut reported = BTreeSet::new();
    for n in 1..=source.line_count() {
        let line = source.line(n);
        let visible = match crate::source::comment_start(line) {
            Some(c) => &line[..c],
            None => line,
        };
        let refs = references(visible);
        if refs.is_empty() {
            continue;
        }
        let section = sections
            .iter()
            .rev()
            .find(|(l, _)| *l <= n)
            .copied()
            .unwrap_or((0, ""));
        let before = owners.partition_point(|(l, _)| *l <= n);
        let owner = before
            .checked_sub(1)
            .map(|i| &owners[i])
            .filter(|(l, _)| *l >= section.0)
            .map(|(_, o)| o.clone())
            .or_else(|| {
                // An SLI query line is `<metric source id>: <query>`.
                let key = visible
                    .trim_start()
                    .split_once(':')
                    .map(|(k, _)| k.trim())?;
                (section.1 == "slis" && source_ids.contains(key))
                    .then(|| Owner::MetricSource(key.to_string()))
            });
        let relevant: Vec<&(&str, BTreeSet<&str>, &crate::model::Environment)> = envs
            .iter()
            .filter(|(_, _, env)| match &owner {
                Some(Owner::Router(id)) => env.router.as_ref().is_some_and(|r| &r.value == id),
                Some(Owner::MetricSource(id)) => {
                    env.metric_source.as_ref().is_some_and(|m| &m.value == id)
                }
                Some(Owner::Runnable(id)) => !env.rehearse_only.iter().any(|r| &r.value == id),
                None => true,
            })
            .collect();
        for (start, _, name) in refs {
            if is_builtin(name) {
                continue;
            }
            let missing: Vec<&str> = relevant
                .iter()
                .filter(|(_, vars, _)| !vars.contains(name))
                .map(|(e, _, _)| *e)
                .collect();
            if (missing.is_empty() && !envs.is_empty())
                || !reported.insert((name.to_string(), missing.clone()))
            {
                continue;
            }
            let column = visible[..start].chars().count() as u32 + 1;
            let (message, help) = if missing.len() == envs.len() {
                (
                    format!(
                        "no environment defines `${{{name}}}`; it will be read from the process environment"
                    ),
                    format!(
                        "define `{name}` under each environment's `vars:`, or export it where golive runs"
                    ),
                )
            } else {
                (
                    format!(
                        "`${{{name}}}` is not defined in environment{} {}; there it will be read from the process environment",
                        if missing.len() == 1 { "" } else { "s" },
                        missing
                            .iter()
                            .map(|e| format!("`{e}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    format!("define `{name}` under those environments' `vars:`"),
                )
            };
            sink.report(Code::UndefinedVariable, Loc::new(n, column), message, help);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, At<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), At::bare(v.to_string())))
            .collect()
    }

    #[test]
    fn substitutes_known_and_keeps_unknown() {
        let v = vars(&[("api_url", "https://api"), ("ns", "production")]);
        let s = substitute(
            "curl ${api_url}/health -n ${ns} ${HOME} ${HOME} $${ns} $(date) ${}",
            &v,
        );
        assert_eq!(
            s.text,
            "curl https://api/health -n production ${HOME} ${HOME} ${ns} $(date) ${}"
        );
        assert_eq!(s.unknown, vec!["HOME".to_string()]);
    }

    #[test]
    fn finds_references() {
        assert_eq!(
            references("a ${x} $${y} ${z_1}"),
            vec![(2, 6, "x"), (13, 19, "z_1")]
        );
    }
}
