//! Renders message templates from the run's state: `{{ name }}` placeholders.
//!
//! Placeholders name values the engine knows (`plan.name`, `run.weight`, `now`,
//! `next_update`, …). An unknown name is left as written, so a message shows the gap
//! instead of hiding it.

use std::collections::BTreeMap;

pub(crate) fn render(template: &str, context: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match context.get(name) {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_known_names_and_keeps_unknown_ones() {
        let ctx = BTreeMap::from([("run.weight".to_string(), "25".to_string())]);
        assert_eq!(
            render("at {{ run.weight }}% {{nope}} {{", &ctx),
            "at 25% {{nope}} {{"
        );
    }
}
