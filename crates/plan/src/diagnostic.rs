//! Diagnostics: what is wrong with a plan, where, and what to do about it; rendered like
//! rustc for people and as JSON for tools.

use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::source::SourceText;
use crate::span::Loc;

/// How bad a diagnostic is. Errors make a plan unusable; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Error,
    Warning,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
        })
    }
}

macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $text:literal, $level:ident; )*) => {
        /// A stable identifier for each kind of diagnostic. The text form (`unknown-role`)
        /// is what tools match on and what `docs/plan.md` documents.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(&self) -> &'static str {
                match self { $(Code::$variant => $text,)* }
            }

            /// The level a diagnostic of this code has.
            pub fn level(&self) -> Level {
                match self { $(Code::$variant => Level::$level,)* }
            }

            /// One line saying what the code is about.
            pub fn summary(&self) -> &'static str {
                match self { $(Code::$variant => concat!($($doc),*).trim_ascii(),)* }
            }
        }
    };
}

codes! {
    // --- reading the file ---
    /// The file cannot be read at all (missing, a directory, no permission).
    Unreadable = "unreadable-file", Error;
    /// The file is larger than the loader accepts.
    FileTooLarge = "file-too-large", Error;
    /// The file is not UTF-8 text.
    NotUtf8 = "not-utf8", Error;
    /// The file holds no YAML document.
    EmptyFile = "empty-file", Error;
    /// The YAML itself is malformed.
    YamlSyntax = "yaml-syntax", Error;
    /// The file holds more than one YAML document.
    MultipleDocuments = "multiple-documents", Error;
    /// A YAML limit (nesting, aliases, size) was exceeded.
    YamlLimit = "yaml-limit", Error;
    /// A mapping has the same key twice.
    DuplicateKey = "duplicate-key", Error;
    /// A key the plan format does not know.
    UnknownKey = "unknown-key", Error;
    /// A key the plan format requires is missing.
    MissingKey = "missing-key", Error;
    /// A value has the wrong type (a list where a mapping belongs, text for a number…).
    WrongType = "wrong-type", Error;
    /// A value is not one of the allowed words.
    UnknownVariant = "unknown-variant", Error;
    /// An offset from T0 does not parse.
    InvalidOffset = "invalid-offset", Error;
    /// A duration does not parse.
    InvalidDuration = "invalid-duration", Error;
    /// A threshold (number with unit) does not parse.
    InvalidThreshold = "invalid-threshold", Error;
    /// A condition (`sli > threshold`) does not parse.
    InvalidCondition = "invalid-condition", Error;
    /// T0 is not a zoned date-time.
    InvalidT0 = "invalid-t0", Error;
    /// Some other value is out of range or malformed.
    InvalidValue = "invalid-value", Error;
    /// The `golive:` format version is not one this release reads.
    UnsupportedVersion = "unsupported-version", Error;

    // --- validation ---
    /// Two things of the same kind have the same id.
    DuplicateId = "duplicate-id", Error;
    /// A reference to a role that is not defined.
    UnknownRole = "unknown-role", Error;
    /// A reference to a person that is not defined.
    UnknownPerson = "unknown-person", Error;
    /// A condition on an SLI that is not defined.
    UnknownSli = "unknown-sli", Error;
    /// A reference to an audience that is not defined.
    UnknownAudience = "unknown-audience", Error;
    /// A reference to a template that is not defined.
    UnknownTemplate = "unknown-template", Error;
    /// A reference to a channel that is not defined.
    UnknownChannel = "unknown-channel", Error;
    /// A reference to a checklist that is not defined.
    UnknownChecklist = "unknown-checklist", Error;
    /// A reference to a playbook that is not defined.
    UnknownPlaybook = "unknown-playbook", Error;
    /// A reference to a timeline phase that is not defined.
    UnknownPhase = "unknown-phase", Error;
    /// A reference to a router that is not defined.
    UnknownRouter = "unknown-router", Error;
    /// A reference to a metric source that is not defined.
    UnknownMetricSource = "unknown-metric-source", Error;
    /// `rehearse_only` names no step or checklist item.
    UnknownStep = "unknown-step", Error;
    /// A version group that no router defines.
    UnknownVersionGroup = "unknown-version-group", Error;
    /// A thing that comes in kinds has none of its kind keys.
    MissingKind = "missing-kind", Error;
    /// A thing that comes in kinds has more than one kind key.
    SeveralKinds = "several-kinds", Error;
    /// A threshold's unit differs from its SLI's unit.
    UnitMismatch = "unit-mismatch", Error;
    /// Ramp stage weights are not 1..=100, strictly increasing, ending at 100.
    RampWeights = "ramp-weights", Error;
    /// A window whose start is not before its end.
    WindowOrder = "window-order", Error;
    /// A list that must not be empty is empty.
    EmptyList = "empty-list", Error;
    /// A decision that no role has the authority to take: a gate nobody may pass, a
    /// trigger nobody may pull.
    AuthorityUnheld = "authority-unheld", Error;
    /// An environment has no variables of a name the plan uses as `${name}`.
    UndefinedVariable = "undefined-variable", Warning;

    // --- templates ---
    /// A template does not parse.
    TemplateSyntax = "template-syntax", Error;
    /// A template uses a variable that the message context does not have.
    UnknownTemplateVariable = "unknown-template-variable", Error;

    // --- lint ---
    /// A written date whose weekday is not that date's weekday.
    WeekdayMismatch = "weekday-mismatch", Warning;
    /// A template states a downtime other than `expected_downtime`.
    DowntimeMismatch = "downtime-mismatch", Warning;
    /// A template states a maintenance window other than `window`.
    WindowMismatch = "window-mismatch", Warning;
    /// A stage's `not_before` contradicts the previous stage's start and hold.
    StageHoldMismatch = "stage-hold-mismatch", Warning;
    /// Some ramp stages have a time (`not_before`) and this one has none.
    StageWithoutTime = "stage-without-time", Warning;
    /// A ramp's warm-up is shorter than its metric source's window, or longer than a
    /// stage's hold.
    WarmupMismatch = "warmup-mismatch", Warning;
    /// A stage gate on an SLI that an environment's metric source has no query for: the
    /// ramp cannot pass that stage there without a waiver.
    GateUnmeasurable = "gate-unmeasurable", Warning;
    /// A timeline `traffic` step sets a weight no ramp stage has.
    TrafficNotAStage = "traffic-not-a-stage", Warning;
    /// A timeline `traffic` step's time contradicts the ramp's schedule.
    TrafficOffRamp = "traffic-off-ramp", Warning;
    /// A milder action needs a worse condition than a harsher one on the same SLI.
    LadderInverted = "ladder-inverted", Warning;
    /// A rule can never act first: a harsher rule always fires before it.
    RuleUnreachable = "rule-unreachable", Warning;
    /// Breach-to-rollback can take longer than the rollback budget.
    RollbackBudget = "rollback-budget", Warning;
    /// A timeline step lies outside its phase's window.
    StepOutsidePhase = "step-outside-phase", Warning;
    /// A phase lies entirely outside the maintenance window.
    PhaseOutsideWindow = "phase-outside-window", Warning;
    /// A role has no backup.
    RoleWithoutBackup = "role-without-backup", Warning;
    /// A role's backup is its primary.
    BackupIsPrimary = "backup-is-primary", Warning;
    /// Two people have the same phone number.
    SharedPhone = "shared-phone", Warning;
    /// One audience has cadences that overlap in time with different intervals.
    CadenceConflict = "cadence-conflict", Warning;
    /// Playbook actions' deadlines go down although their order implies they go up.
    DeadlineOrder = "deadline-order", Warning;
    /// A page waits for acknowledgement longer than its action's deadline.
    AckAfterDeadline = "ack-after-deadline", Warning;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One finding about a plan, with everything needed to show it without the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Level,
    pub code: Code,
    pub message: String,
    pub file: String,
    /// 1-based; 0 when the place is unknown.
    pub line: u32,
    /// 1-based, in characters; 0 when the place is unknown.
    pub column: u32,
    /// The text of the offending line, without its line break.
    pub source_line: String,
    /// How many characters the caret covers; 0 means "the token at the column".
    #[serde(skip_serializing_if = "is_zero")]
    pub width: u32,
    /// What to do about it.
    pub help: String,
    /// Other places that explain this one ("first defined here").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
}

/// A secondary place attached to a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub message: String,
    pub line: u32,
    pub column: u32,
}

impl Diagnostic {
    pub fn loc(&self) -> Loc {
        Loc::new(self.line, self.column)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Level::Error
    }

    /// Renders like rustc: header, `--> file:line:col`, the line, a caret, `help:`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}[{}]: {}", self.severity, self.code, self.message);
        let gutter = self.line.max(1).to_string().len();
        let pad = " ".repeat(gutter);
        if self.line > 0 {
            let _ = writeln!(out, "{pad}--> {}:{}:{}", self.file, self.line, self.column);
            let _ = writeln!(out, "{pad} |");
            let (shown, caret_at) = crop(
                &printable(&self.source_line),
                self.column.max(1) as usize - 1,
            );
            let _ = writeln!(out, "{:>gutter$} | {}", self.line, shown);
            let prefix: String = shown
                .chars()
                .take(caret_at)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let width = match self.width {
                0 => token_width(&shown, caret_at),
                w => (w as usize)
                    .min(shown.chars().count().saturating_sub(caret_at))
                    .max(1),
            };
            let _ = writeln!(out, "{pad} | {prefix}{}", "^".repeat(width));
            if !self.notes.is_empty() || !self.help.is_empty() {
                let _ = writeln!(out, "{pad} |");
            }
        } else {
            let _ = writeln!(out, "{pad}--> {}", self.file);
        }
        for note in &self.notes {
            if note.line > 0 {
                let _ = writeln!(
                    out,
                    "{pad} = note: {} ({}:{}:{})",
                    note.message, self.file, note.line, note.column
                );
            } else {
                let _ = writeln!(out, "{pad} = note: {}", note.message);
            }
        }
        if !self.help.is_empty() {
            let _ = writeln!(out, "{pad} = help: {}", self.help);
        }
        out
    }
}

/// Long lines are shown as a window around the column, so the caret stays on screen.
fn crop(line: &str, column: usize) -> (String, usize) {
    const WIDTH: usize = 100;
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= WIDTH {
        return (line.to_string(), column);
    }
    let start = column
        .saturating_sub(WIDTH / 2)
        .min(chars.len().saturating_sub(WIDTH));
    let end = (start + WIDTH).min(chars.len());
    let mut shown = String::new();
    let mut caret = column - start;
    if start > 0 {
        shown.push('…');
        caret += 1;
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (shown, caret)
}

/// Control characters would garble a terminal; show them escaped.
fn printable(line: &str) -> String {
    if line.chars().all(|c| c == '\t' || !c.is_control()) {
        return line.to_string();
    }
    line.chars()
        .map(|c| {
            if c == '\t' || !c.is_control() {
                c.to_string()
            } else {
                c.escape_default().to_string()
            }
        })
        .collect()
}

/// The width of the token starting at character `start`: a quoted string through its closing
/// quote, otherwise up to the next space, `,`, `]` or `}`; at least one.
fn token_width(line: &str, start: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(start).collect();
    let Some(&first) = rest.first() else { return 1 };
    let width = if first == '"' || first == '\'' {
        rest.iter()
            .skip(1)
            .position(|&c| c == first)
            .map(|p| p + 2)
            .unwrap_or(rest.len())
    } else {
        rest.iter()
            .position(|&c| c.is_whitespace() || matches!(c, ',' | ']' | '}'))
            .unwrap_or(rest.len())
    };
    let width = width.clamp(1, 60);
    // A key is `name:`; the caret covers the name, not the colon.
    if width > 1 && rest[width - 1] == ':' {
        width - 1
    } else {
        width
    }
}

/// When `column` starts a plain scalar value (`key: value` or `- value`), the value's width
/// up to a comment; otherwise 0, and the caret covers the token at the column.
fn value_width(line: &str, column: u32) -> u32 {
    let chars: Vec<char> = line.chars().collect();
    let at = (column.max(1) as usize - 1).min(chars.len());
    let before: String = chars[..at].iter().collect();
    let before = before.trim_end();
    if !(before.ends_with(':') || before.ends_with('-')) {
        return 0;
    }
    let rest: String = chars[at..].iter().collect();
    if rest.starts_with(['[', '{', '|', '>', '&', '*', '"', '\'']) {
        return 0;
    }
    let value = match rest.find(" #") {
        Some(comment) => &rest[..comment],
        None => &rest,
    };
    u32::try_from(value.trim_end().chars().count()).unwrap_or(0)
}

/// Collects diagnostics for one file and fills in the file name and the source line.
pub struct Sink<'a> {
    pub file: &'a str,
    pub source: &'a SourceText<'a>,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    pub fn new(file: &'a str, source: &'a SourceText<'a>) -> Sink<'a> {
        Sink {
            file,
            source,
            diagnostics: Vec::new(),
        }
    }

    /// Reports a diagnostic of `code` at `loc`, at the code's level.
    pub fn report(
        &mut self,
        code: Code,
        loc: Loc,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> &mut Diagnostic {
        let diagnostic = self.make(code, loc, message.into(), help.into());
        self.diagnostics.push(diagnostic);
        // Just pushed, so the list is not empty.
        self.diagnostics
            .last_mut()
            .expect("a diagnostic was just pushed")
    }

    pub fn make(&self, code: Code, loc: Loc, message: String, help: String) -> Diagnostic {
        // Every value the loader reads has a place (aliases and merges report where they
        // are used); should one ever lack it, point at the file rather than nowhere.
        let (loc, notes) = if loc.is_known() {
            (loc, Vec::new())
        } else {
            let note = Note {
                message: "the exact place of this value is not known".into(),
                line: 0,
                column: 0,
            };
            (Loc::new(1, 1), vec![note])
        };
        let line = self.source.line(loc.line);
        Diagnostic {
            severity: code.level(),
            code,
            message,
            file: self.file.to_string(),
            line: loc.line,
            column: loc.column,
            source_line: line.to_string(),
            width: value_width(line, loc.column),
            help,
            notes,
        }
    }
}

impl Diagnostic {
    /// Sets how many characters the caret covers.
    pub fn width(&mut self, width: usize) -> &mut Diagnostic {
        self.width = u32::try_from(width).unwrap_or(u32::MAX);
        self
    }

    /// Adds a note that points at another place in the same file.
    pub fn note(&mut self, loc: Loc, message: impl Into<String>) -> &mut Diagnostic {
        self.notes.push(Note {
            message: message.into(),
            line: loc.line,
            column: loc.column,
        });
        self
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Sorts by place, then code, so output is stable and reads top to bottom.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.line, a.column, a.code, &a.message).cmp(&(b.line, b.column, b.code, &b.message))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            );
            assert!(!code.summary().is_empty());
        }
    }

    #[test]
    fn renders_like_rustc() {
        let text = "roles:\n  - id: rm\n    primary: sarha\n";
        let source = SourceText::new(text);
        let mut sink = Sink::new("plan.yaml", &source);
        sink.report(
            Code::UnknownPerson,
            Loc::new(3, 14),
            "unknown person `sarha`",
            "did you mean `sarah`?",
        );
        let rendered = sink.diagnostics[0].render();
        assert_eq!(
            rendered,
            "error[unknown-person]: unknown person `sarha`\n --> plan.yaml:3:14\n  |\n3 |     primary: sarha\n  |              ^^^^^\n  |\n  = help: did you mean `sarah`?\n"
        );
    }

    #[test]
    fn caret_covers_quoted_tokens_and_keys() {
        assert_eq!(token_width("a: \"x y\" z", 3), 5);
        assert_eq!(token_width("  nmae: b", 2), 4);
        assert_eq!(token_width("", 0), 1);
        assert_eq!(token_width("abc", 10), 1);
    }
}
