//! `load`: bytes of a plan file in, a plan and its diagnostics out. Reading never panics;
//! every problem becomes a diagnostic with a place and a fix.

use serde::Deserialize;
use serde_saphyr::{Error as YamlError, MessageFormatter};

use crate::diagnostic::{self, Code, Diagnostic, Sink};
use crate::model::Plan;
use crate::source::SourceText;
use crate::span::{At, Loc};
use crate::suggest::did_you_mean;

/// Plans larger than this are refused before parsing: a runbook is a few hundred KiB at most,
/// and a bigger file is more likely a mistake (or an attack on the parser) than a plan.
pub const MAX_PLAN_BYTES: usize = 8 * 1024 * 1024;

/// The plan format version this release reads.
pub const FORMAT_VERSION: u32 = 1;

/// The result of loading a plan file.
#[derive(Debug)]
pub struct Loaded {
    pub file: String,
    /// The plan, when the file parsed; it may still have validation errors.
    pub plan: Option<Plan>,
    /// Every finding, sorted by place.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    /// The plan if it parsed and has no errors: the only plan anything should run.
    pub fn usable(&self) -> Option<&Plan> {
        if self.errors() == 0 {
            self.plan.as_ref()
        } else {
            None
        }
    }

    /// All diagnostics rendered for a terminal, one after another.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for diagnostic in &self.diagnostics {
            out.push_str(&diagnostic.render());
            out.push('\n');
        }
        out
    }
}

/// Reads, validates and lints a plan. `file_name` is only used in diagnostics.
pub fn load(file_name: &str, bytes: &[u8]) -> Loaded {
    let (plan, diagnostics) = match read_text(file_name, bytes) {
        Ok(text) => {
            let source = SourceText::new(text);
            let mut sink = Sink::new(file_name, &source);
            let plan = parse_into(&mut sink);
            if let Some(plan) = &plan {
                crate::validate::check(plan, &mut sink);
                crate::templates::lint(plan, &mut sink);
                crate::lint::check(plan, &mut sink);
            }
            (plan, sink.diagnostics)
        }
        Err(diagnostic) => (None, vec![*diagnostic]),
    };
    let mut diagnostics = diagnostics;
    diagnostic::sort(&mut diagnostics);
    diagnostics.dedup();
    Loaded {
        file: file_name.to_string(),
        plan,
        diagnostics,
    }
}

/// Reads the file at `path` and loads it; a file that cannot be read, or is too large to
/// read, becomes a diagnostic like any other.
pub fn load_file(path: &std::path::Path) -> Loaded {
    let file_name = path.display().to_string();
    let unreadable = |message: String, help: &str| Loaded {
        file: file_name.clone(),
        plan: None,
        diagnostics: vec![Diagnostic {
            severity: Code::Unreadable.level(),
            code: Code::Unreadable,
            message,
            file: file_name.clone(),
            line: 0,
            column: 0,
            source_line: String::new(),
            width: 0,
            help: help.to_string(),
            notes: Vec::new(),
        }],
    };
    use std::io::Read as _;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) => {
            return unreadable(format!("cannot open the plan: {error}"), "check the path");
        }
    };
    let mut bytes = Vec::new();
    // Read one byte more than allowed, so an oversized file is detected without reading it all.
    let limit = MAX_PLAN_BYTES as u64 + 1;
    if let Err(error) = file.take(limit).read_to_end(&mut bytes) {
        return unreadable(
            format!("cannot read the plan: {error}"),
            "check that the path is a readable file",
        );
    }
    load(&file_name, &bytes)
}

/// Parses only, without validation or lint: for tools that want the raw plan.
pub fn parse(file_name: &str, bytes: &[u8]) -> Loaded {
    let (plan, diagnostics) = match read_text(file_name, bytes) {
        Ok(text) => {
            let source = SourceText::new(text);
            let mut sink = Sink::new(file_name, &source);
            let plan = parse_into(&mut sink);
            (plan, sink.diagnostics)
        }
        Err(diagnostic) => (None, vec![*diagnostic]),
    };
    Loaded {
        file: file_name.to_string(),
        plan,
        diagnostics,
    }
}

/// Checks size and encoding and returns the text without a byte-order mark.
fn read_text<'a>(file_name: &str, bytes: &'a [u8]) -> Result<&'a str, Box<Diagnostic>> {
    let bare = |code: Code, loc: Loc, line: String, message: String, help: &str| {
        Box::new(Diagnostic {
            severity: code.level(),
            code,
            message,
            file: file_name.to_string(),
            line: loc.line,
            column: loc.column,
            source_line: line,
            width: 0,
            help: help.to_string(),
            notes: Vec::new(),
        })
    };
    if bytes.len() > MAX_PLAN_BYTES {
        return Err(bare(
            Code::FileTooLarge,
            Loc::new(1, 1),
            String::new(),
            format!(
                "the file is over the {} MiB limit for plans",
                MAX_PLAN_BYTES / (1024 * 1024)
            ),
            "check that this is the plan file; split long texts out of templates if it really is",
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(error) => {
            let good = error.valid_up_to();
            // The prefix up to `valid_up_to` is valid UTF-8 by definition.
            let prefix = std::str::from_utf8(&bytes[..good]).unwrap_or_default();
            let source = SourceText::new(prefix);
            let loc = source.loc_of_byte(good);
            let line = source.line(loc.line).to_string();
            Err(bare(
                Code::NotUtf8,
                loc,
                line,
                format!("byte 0x{:02X} at offset {good} is not UTF-8", bytes[good]),
                "save the plan as UTF-8 text",
            ))
        }
    }
}

fn parse_into(sink: &mut Sink<'_>) -> Option<Plan> {
    let text = sink.source.text();
    if is_blank(text) {
        sink.report(
            Code::EmptyFile,
            Loc::new(1, 1),
            "the plan file is empty",
            "start with `golive: 1`, then `meta:` and `t0:`; see docs/plan.md",
        );
        return None;
    }
    let options = serde_saphyr::options! {
        with_snippet: false,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    };
    match serde_saphyr::from_str_with_options::<Plan>(text, options) {
        Ok(plan) => {
            if *plan.golive != FORMAT_VERSION {
                report_version(sink, plan.golive.loc, &plan.golive.to_string());
            }
            Some(plan)
        }
        Err(error) => {
            // A plan for another format version fails in ways that only confuse; say
            // the one thing that matters.
            if let Some((loc, version)) = other_version(text) {
                report_version(sink, loc, &version);
            } else {
                let diagnostic = from_yaml_error(sink, &error);
                sink.diagnostics.push(diagnostic);
            }
            None
        }
    }
}

fn report_version(sink: &mut Sink<'_>, loc: Loc, version: &str) {
    sink.report(
        Code::UnsupportedVersion,
        loc,
        format!("plan format version {version} is not supported"),
        format!("this release reads `golive: {FORMAT_VERSION}`"),
    );
}

/// Only whitespace, comments and document markers.
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    })
}

/// The `golive:` version when the file has one that is a number other than ours.
fn other_version(text: &str) -> Option<(Loc, String)> {
    #[derive(Deserialize)]
    struct Header {
        golive: Option<At<serde_json::Value>>,
    }
    let options = serde_saphyr::options! { with_snippet: false };
    let header: Header = serde_saphyr::from_str_with_options(text, options).ok()?;
    let golive = header.golive?;
    match &golive.value {
        serde_json::Value::Number(n) if n.as_u64() != Some(u64::from(FORMAT_VERSION)) => {
            Some((golive.loc, n.to_string()))
        }
        _ => None,
    }
}

/// Turns a serde-saphyr error into a diagnostic. The location is where serde-saphyr says;
/// for values built by `FromStr` (offsets, durations…) that is the value itself.
fn from_yaml_error(sink: &Sink<'_>, error: &YamlError) -> Diagnostic {
    let error = unwrap_error(error);
    let loc = error
        .location()
        .map(|l| {
            Loc::new(
                u32::try_from(l.line()).unwrap_or(u32::MAX),
                u32::try_from(l.column()).unwrap_or(u32::MAX),
            )
        })
        .filter(|l| l.is_known())
        .unwrap_or(Loc::new(1, 1));
    let key = key_at(sink.source, loc);
    let (code, message, help, note) = describe(error, key.as_deref(), sink.source, loc);
    let (loc, message) = match code {
        // serde reports a missing key where the mapping ended; point at where it starts.
        Code::MissingKey => {
            let (start, owner) = mapping_start(sink.source, loc);
            let message = match owner {
                Some(owner) => format!("{message} in this `{owner}` entry"),
                None => message,
            };
            (start, message)
        }
        _ => (loc, message),
    };
    let mut diagnostic = sink.make(code, loc, message, help);
    if let Some((note_loc, text)) = note {
        diagnostic.note(note_loc, text);
    }
    let value_codes = [
        Code::InvalidOffset,
        Code::InvalidDuration,
        Code::InvalidCondition,
        Code::InvalidT0,
        Code::InvalidValue,
        Code::WrongType,
    ];
    if value_codes.contains(&code) {
        diagnostic.width(value_text(sink.source, loc).chars().count());
    }
    if code == Code::InvalidThreshold {
        // The condition is reported at its start; the threshold follows the comparison.
        let value = value_text(sink.source, loc);
        if let Some(op) = value.rfind(['<', '>', '=']) {
            let threshold = value[op + 1..].trim_start();
            let skip = value.len() - threshold.len();
            diagnostic.column = loc.column + value[..skip].chars().count() as u32;
            diagnostic.width(threshold.chars().count());
        } else {
            diagnostic.width(value.chars().count());
        }
    }
    diagnostic
}

/// Where the mapping that holds `loc` starts, and the key that holds that mapping (for a
/// list item, the list's key).
fn mapping_start(source: &SourceText<'_>, loc: Loc) -> (Loc, Option<String>) {
    let indent = |line: &str| line.len() - line.trim_start_matches(' ').len();
    let is_item = |line: &str| line.trim_start().starts_with("- ");
    let content_depth = |line: &str| indent(line) + if is_item(line) { 2 } else { 0 };
    let skip = |line: &str| line.trim().is_empty() || line.trim_start().starts_with('#');
    let column = |depth: usize| u32::try_from(depth + 1).unwrap_or(1);
    if skip(source.line(loc.line)) {
        return (loc, None);
    }
    let depth = content_depth(source.line(loc.line));
    let mut n = loc.line;
    loop {
        let line = source.line(n);
        if !skip(line) {
            if is_item(line) && content_depth(line) == depth {
                let list_key = (1..n)
                    .rev()
                    .map(|k| source.line(k))
                    .find(|l| {
                        !skip(l)
                            && (indent(l) < indent(line)
                                || (indent(l) == indent(line) && !is_item(l)))
                    })
                    .and_then(line_key);
                return (Loc::new(n, column(depth)), list_key);
            }
            if content_depth(line) < depth {
                let first = (n + 1..=loc.line)
                    .find(|&k| !skip(source.line(k)))
                    .unwrap_or(loc.line);
                return (Loc::new(first, column(depth)), line_key(line));
            }
        }
        if n == 1 {
            let first = (1..=loc.line)
                .find(|&k| !skip(source.line(k)))
                .unwrap_or(loc.line);
            return (Loc::new(first, column(depth)), None);
        }
        n -= 1;
    }
}

/// The key of a line: `  - id: x` → `id`.
fn line_key(line: &str) -> Option<String> {
    let body = line
        .trim_start()
        .trim_start_matches("- ")
        .trim_start()
        .trim_start_matches('{');
    let (key, _) = body.split_once(':')?;
    let key = key.trim().trim_matches(['"', '\'']);
    (!key.is_empty() && key.chars().all(is_key_char)).then(|| key.to_string())
}

fn unwrap_error(error: &YamlError) -> &YamlError {
    match error {
        YamlError::WithSnippet { error, .. } => unwrap_error(error),
        YamlError::AliasError { error, .. } => unwrap_error(error),
        other => other,
    }
}

type Described = (Code, String, String, Option<(Loc, String)>);

fn describe(error: &YamlError, key: Option<&str>, source: &SourceText<'_>, loc: Loc) -> Described {
    let here = match key {
        Some(key) => format!("`{key}`"),
        None => "this value".to_string(),
    };
    let plain = |code: Code, message: String, help: &str| (code, message, help.to_string(), None);
    match error {
        YamlError::Message { msg, .. } => {
            let code = classify_value_error(msg);
            let (message, help) = split_help(msg);
            let help = help.unwrap_or_else(|| default_help(code).to_string());
            (code, clean(&message), help, None)
        }
        YamlError::Eof { .. } => plain(
            Code::YamlSyntax,
            "the file ends in the middle of a value".into(),
            "complete the last entry or remove it",
        ),
        YamlError::MultipleDocuments { .. } => plain(
            Code::MultipleDocuments,
            "a second YAML document starts here".into(),
            "a plan is one YAML document: remove the `---` line and what follows, or merge it",
        ),
        YamlError::Unexpected { expected, .. } => plain(
            Code::WrongType,
            format!("{here} must be {}", friendly_expected(expected)),
            "see docs/plan.md for the shape of this section",
        ),
        YamlError::DuplicateMappingKey { key: dup, .. } => {
            let name = dup
                .clone()
                .or_else(|| key.map(str::to_string))
                .unwrap_or_default();
            let note = first_key_before(source, loc, &name)
                .map(|first| (first, format!("`{name}` is first set here")));
            (
                Code::DuplicateKey,
                format!("key `{name}` appears twice in the same mapping"),
                "keep one of them; YAML does not merge repeated keys".to_string(),
                note,
            )
        }
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => {
            let help = match did_you_mean(field, expected.iter().copied()) {
                Some(best) => format!(
                    "did you mean `{best}`? keys allowed here: {}",
                    expected.join(", ")
                ),
                None if expected.is_empty() => "remove it; this mapping takes no keys".to_string(),
                None => format!("remove it or use one of: {}", expected.join(", ")),
            };
            (
                Code::UnknownKey,
                format!("unknown key `{field}`"),
                help,
                None,
            )
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            // A variant written as a key (`verify: {tsl: …}`) is named by its parent key.
            let here = match key {
                Some(k) if k == variant => parent_key(source, loc)
                    .map(|p| format!("`{p}`"))
                    .unwrap_or(here),
                _ => here,
            };
            let help = match did_you_mean(variant, expected.iter().copied()) {
                Some(best) => format!("did you mean `{best}`? allowed: {}", expected.join(", ")),
                None => format!("use one of: {}", expected.join(", ")),
            };
            (
                Code::UnknownVariant,
                format!("`{variant}` is not one of the values allowed in {here}"),
                help,
                None,
            )
        }
        YamlError::SerdeMissingField { field, .. } => plain(
            Code::MissingKey,
            format!("missing key `{field}`"),
            &format!("add `{field}:` to this mapping; see docs/plan.md"),
        ),
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => plain(
            Code::WrongType,
            format!(
                "{here} must be {}, not {unexpected}",
                friendly_expected(expected)
            ),
            "see docs/plan.md for the shape of this section",
        ),
        YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => plain(
            Code::InvalidValue,
            format!("{here} must be {expected}, not {unexpected}"),
            "see docs/plan.md for the allowed values",
        ),
        YamlError::SerdeInvalidLength { len, expected, .. } => plain(
            Code::WrongType,
            format!("{here} has {len} entries but must be {expected}"),
            "see docs/plan.md for the shape of this section",
        ),
        YamlError::InvalidScalar { ty, .. } => {
            let (what, help) = scalar_type(ty);
            let value = value_text(source, loc);
            let message = if value.is_empty() {
                format!("{here} must be {what}")
            } else {
                format!("{here} must be {what}, not `{value}`")
            };
            plain(Code::WrongType, message, help)
        }
        YamlError::NullIntoString { .. } => plain(
            Code::WrongType,
            format!("{here} has no value"),
            "write a value after the colon, or remove the key",
        ),
        YamlError::InvalidBooleanStrict { .. } => plain(
            Code::WrongType,
            format!("{here} must be `true` or `false`"),
            "write `true` or `false`",
        ),
        YamlError::Budget { .. }
        | YamlError::AliasReplayCounterOverflow { .. }
        | YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. } => plain(
            Code::YamlLimit,
            clean(&formatted(error)),
            "the plan is larger, deeper or more aliased than golive reads; remove repetition or split long texts out",
        ),
        YamlError::ExternalMessage { msg, .. } if msg.contains("limit") => plain(
            Code::YamlLimit,
            clean(msg),
            "the plan is larger, deeper or more aliased than golive reads; remove repetition or split long texts out",
        ),
        YamlError::InvalidUtf8Input => plain(
            Code::NotUtf8,
            "the file is not UTF-8".into(),
            "save the plan as UTF-8 text",
        ),
        _ => plain(
            Code::YamlSyntax,
            clean(&formatted(error)),
            "fix the YAML syntax here (indentation, quotes, brackets, `key: value`)",
        ),
    }
}

fn formatted(error: &YamlError) -> String {
    serde_saphyr::UserMessageFormatter
        .format_message(error)
        .into_owned()
}

/// Keeps a message on one line and free of control characters.
fn clean(message: &str) -> String {
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Custom errors come from the `FromStr` impls in `units.rs` and from T0; their wording
/// says which kind of value failed.
fn classify_value_error(message: &str) -> Code {
    if message.contains("is not a zoned date-time") {
        Code::InvalidT0
    } else if message.contains("write a condition") {
        Code::InvalidCondition
    } else if message.contains("write an offset")
        || message.contains("is too far from T0")
        || message.contains("T+0:05")
    {
        Code::InvalidOffset
    } else if message.contains("write a duration") || message.contains("a duration cannot") {
        Code::InvalidDuration
    } else if message.contains("write a threshold") || message.contains("not a finite number") {
        Code::InvalidThreshold
    } else {
        Code::InvalidValue
    }
}

/// `"`x` is bad; write it like `y`"` → (`"`x` is bad"`, `"write it like `y`"`).
fn split_help(message: &str) -> (String, Option<String>) {
    for separator in ["; write ", ": write ", "; use "] {
        if let Some(at) = message.find(separator) {
            let help = message[at + 2..].trim().to_string();
            return (message[..at].to_string(), Some(help));
        }
    }
    (message.to_string(), None)
}

fn default_help(code: Code) -> &'static str {
    match code {
        Code::InvalidOffset => {
            "write an offset from T0 like `T-7d`, `T-2:00`, `T+0:05` or `T+1 month`"
        }
        Code::InvalidDuration => "write a duration like `500ms`, `30s`, `5m` or `2h`",
        Code::InvalidThreshold => "write a threshold like `1%`, `500ms` or `2s`",
        Code::InvalidCondition => "write a condition like `error_rate > 1%`",
        Code::InvalidT0 => "write T0 like `2025-08-23T02:00:00-04:00[America/New_York]`",
        _ => "see docs/plan.md for the allowed values",
    }
}

fn friendly_expected(expected: &str) -> String {
    let e = expected.trim();
    if e.contains("sequence") {
        "a list".into()
    } else if e.contains("mapping") || e.starts_with("struct") || e.starts_with("map") {
        "a mapping of keys to values".into()
    } else if e.contains("string") {
        "text".into()
    } else if e.starts_with("u") || e.starts_with("i") || e.contains("integer") {
        "a whole number".into()
    } else {
        e.trim_start_matches("a ").to_string()
    }
}

fn scalar_type(ty: &str) -> (&'static str, &'static str) {
    match ty {
        "u8" => (
            "a whole number from 0 to 255",
            "percentages and weights are whole numbers like `25`",
        ),
        "u16" => ("a whole number from 0 to 65535", "write a whole number"),
        "u32" | "u64" | "usize" => ("a whole number, 0 or more", "write a whole number"),
        "i32" | "i64" | "isize" => ("a whole number", "write a whole number"),
        "bool" => ("`true` or `false`", "write `true` or `false`"),
        "f32" | "f64" => ("a number", "write a number like `4.0`"),
        _ => (
            "a different kind of value",
            "see docs/plan.md for the allowed values",
        ),
    }
}

/// The key written on the line at `loc` (`  - owner: x` → `owner`), whether `loc` points
/// at the key or at its value.
fn key_at(source: &SourceText<'_>, loc: Loc) -> Option<String> {
    line_key(source.line(loc.line).trim_start().trim_start_matches('{'))
}

/// The key of the nearest line above `loc` that is indented less: the key whose value
/// holds the thing at `loc`.
fn parent_key(source: &SourceText<'_>, loc: Loc) -> Option<String> {
    let indent = |line: &str| line.len() - line.trim_start_matches([' ', '-']).len();
    let depth = indent(source.line(loc.line));
    (1..loc.line)
        .rev()
        .map(|n| (n, source.line(n)))
        .find(|(_, l)| {
            !l.trim().is_empty() && !l.trim_start().starts_with('#') && indent(l) < depth
        })
        .and_then(|(n, _)| key_at(source, Loc::new(n, 1)))
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// The scalar written at `loc`, for messages: up to the end of the line or a comment.
fn value_text(source: &SourceText<'_>, loc: Loc) -> String {
    let line = source.line(loc.line);
    let rest: String = line
        .chars()
        .skip(loc.column.saturating_sub(1) as usize)
        .collect();
    let rest = rest.split(" #").next().unwrap_or("");
    let rest = rest.trim().trim_end_matches([',', ']', '}']).trim();
    rest.chars().take(60).collect()
}

/// Where the same key was first written in the mapping that holds `loc`: the nearest
/// earlier line with the same indentation and key, not crossing a shallower line.
fn first_key_before(source: &SourceText<'_>, loc: Loc, key: &str) -> Option<Loc> {
    let indent = |line: &str| line.len() - line.trim_start_matches([' ', '-']).len();
    let here = source.line(loc.line);
    let depth = indent(here);
    for n in (1..loc.line).rev() {
        let line = source.line(n);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let d = indent(line);
        let body = line.trim_start_matches([' ', '-']);
        if d == depth
            && body
                .strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        {
            return Some(Loc::new(n, u32::try_from(d + 1).unwrap_or(1)));
        }
        if d < depth {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_split_from_unit_messages() {
        let (message, help) =
            split_help("`T+5 parsecs`: unknown unit `parsecs`; write an offset like `T-7d`");
        assert_eq!(message, "`T+5 parsecs`: unknown unit `parsecs`");
        assert_eq!(help.as_deref(), Some("write an offset like `T-7d`"));
    }

    #[test]
    fn keys_are_found_for_values_and_keys() {
        let source = SourceText::new("people:\n  - id: a\n    nmae: b\n");
        assert_eq!(key_at(&source, Loc::new(2, 9)).as_deref(), Some("id"));
        assert_eq!(key_at(&source, Loc::new(3, 5)).as_deref(), Some("nmae"));
        assert_eq!(key_at(&source, Loc::new(1, 1)).as_deref(), Some("people"));
    }

    #[test]
    fn value_errors_are_classified() {
        for (text, code) in [
            (
                "`x` is not an offset: write an offset from T0 like",
                Code::InvalidOffset,
            ),
            (
                "`5`: `5` needs a unit; write a duration like",
                Code::InvalidDuration,
            ),
            (
                "`lots` is not a number with a unit: write a threshold like",
                Code::InvalidThreshold,
            ),
            (
                "`x` has no comparison: write a condition like",
                Code::InvalidCondition,
            ),
            ("`x` is not a zoned date-time (…)", Code::InvalidT0),
            ("something else", Code::InvalidValue),
        ] {
            assert_eq!(classify_value_error(text), code, "{text}");
        }
    }
}
