//! `${name}` substitution in commands, URLs and queries. A name that is not defined is an
//! error naming it, never an empty string: a query with a hole in it would judge nothing.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`${{{name}}}` in `{text}` is not defined; define it in the environment's `vars`")]
    Undefined { name: String, text: String },
    #[error("`${{` without a closing `}}` in `{text}`")]
    Unclosed { text: String },
}

/// Replaces every `${name}` in `text` with `lookup(name)`. `$$` stands for a literal `$`;
/// a `$` not followed by `{` is kept (PromQL and shells use it).
pub fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let close = tail.find('}').ok_or_else(|| TemplateError::Unclosed {
                text: text.to_string(),
            })?;
            let name = tail[..close].trim();
            let value = lookup(name).ok_or_else(|| TemplateError::Undefined {
                name: name.to_string(),
                text: text.to_string(),
            })?;
            out.push_str(&value);
            rest = &tail[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `expand` with a map of variables.
pub fn expand_vars(text: &str, vars: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    expand(text, |name| vars.get(name).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_names_and_keeps_other_dollars() {
        let vars: BTreeMap<String, String> = [("version".to_string(), "canary".to_string())].into();
        assert_eq!(
            expand_vars("rate(x{server=~\"${version}.*\"}[1m]) $1 $$", &vars).unwrap(),
            "rate(x{server=~\"canary.*\"}[1m]) $1 $"
        );
        assert_eq!(
            expand_vars("${nope}", &vars).unwrap_err().to_string(),
            "`${nope}` in `${nope}` is not defined; define it in the environment's `vars`"
        );
        assert!(matches!(
            expand_vars("${version", &vars),
            Err(TemplateError::Unclosed { .. })
        ));
    }
}
