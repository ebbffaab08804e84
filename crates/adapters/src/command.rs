//! Running a shell command for a step, a probe or a metric: `sh -c` in its own process
//! group, a hard timeout that kills the whole group, bounded output, secrets redacted.
//!
//! `${NAME}` references in the command are expanded by the shell from the environment the
//! command runs in; a reference to a variable that is not set is refused before anything
//! runs, because an empty expansion would quietly run a different command.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};

/// How much of each output stream is kept: the end, where the error usually is.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// What replaces a secret in captured output.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not redacted: they are not secrets, and replacing every
/// `1` or `on` would make output unreadable.
pub const MIN_SECRET_LEN: usize = 4;

/// Parts of variable names that mark their values as secret, whatever the redaction list.
pub const SECRET_NAME_PARTS: [&str; 4] = ["TOKEN", "SECRET", "PASSWORD", "KEY"];

/// After the shell exits, how long to keep reading output its background children may
/// still hold open.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// The command line, run with `sh -c`.
    pub run: String,
    pub timeout: Duration,
    /// Variables added to the inherited environment.
    pub env: BTreeMap<String, String>,
    /// Names of variables whose values are redacted from the output, beyond those whose
    /// names contain one of [`SECRET_NAME_PARTS`].
    pub redact: Vec<String>,
    pub workdir: Option<PathBuf>,
}

impl CommandSpec {
    pub fn new(run: impl Into<String>, timeout: Duration) -> CommandSpec {
        CommandSpec {
            run: run.into(),
            timeout,
            env: BTreeMap::new(),
            redact: Vec::new(),
            workdir: None,
        }
    }
}

/// What a finished (or killed) command did.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    /// The exit code, when the shell exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that ended the shell, when one did.
    pub signal: Option<i32>,
    /// The timeout ran out and the process group was killed.
    pub timed_out: bool,
    /// The last [`OUTPUT_LIMIT`] bytes of standard output, secrets redacted.
    pub stdout: String,
    pub stderr: String,
    /// Bytes dropped from the front of each stream to keep within the limit.
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
    pub duration: Duration,
}

impl CommandOutcome {
    pub fn success(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }

    /// `exit 0`, `exit 3`, `killed by signal 9`, `timed out after 5s`.
    pub fn status_text(&self) -> String {
        if self.timed_out {
            return format!(
                "timed out after {}; its process group was killed",
                fmt_duration(self.duration)
            );
        }
        match (self.exit_code, self.signal) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "ended without a status".into(),
        }
    }

    /// The end of the output for a message: standard error if there is any, else standard
    /// output, at most `max` characters.
    pub fn output_tail(&self, max: usize) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        tail_chars(text.trim(), max)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    #[error(
        "`${{{name}}}` in `{command}` is not set in the environment; set it before the run starts"
    )]
    UnsetVariable { name: String, command: String },
    #[error("cannot start `sh -c {command}`: {reason}")]
    Spawn { command: String, reason: String },
}

static ENV_REF: LazyLock<regex::Regex> = LazyLock::new(|| {
    // A fixed pattern; it compiles.
    regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}").expect("valid pattern")
});

/// Names of the `${NAME}` references in `text`, in order, without repeats.
pub fn env_refs(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for capture in ENV_REF.captures_iter(text) {
        let name = capture[1].to_owned();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Replaces every `${NAME}` in `text` with the value from `lookup`; an unset name is an
/// error naming it. For URLs and headers, which no shell expands.
pub fn expand_env_refs(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut missing = None;
    let expanded = ENV_REF.replace_all(text, |caps: &regex::Captures<'_>| match lookup(&caps[1]) {
        Some(value) => value,
        None => {
            missing.get_or_insert_with(|| caps[1].to_owned());
            String::new()
        }
    });
    match missing {
        Some(name) => Err(format!(
            "`${{{name}}}` in `{text}` is not set in the environment"
        )),
        None => Ok(expanded.into_owned()),
    }
}

/// The secret values to hide in output, longest first (so a secret that contains another
/// is replaced whole).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Secrets from the process environment plus `extra_env`: values of the variables
    /// named in `names` and of every variable whose name contains TOKEN, SECRET, PASSWORD
    /// or KEY (in any case).
    pub fn from_env(names: &[String], extra_env: &BTreeMap<String, String>) -> Redactor {
        let mut secrets: Vec<String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .chain(extra_env.iter().map(|(k, v)| (k.clone(), v.clone())))
            .filter(|(name, _)| is_secret_name(name) || names.iter().any(|n| n == name))
            .map(|(_, value)| value)
            .filter(|value| value.len() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    fn longest(&self) -> usize {
        self.secrets.first().map_or(0, String::len)
    }
}

pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

/// Runs the command to completion or until its timeout, whichever comes first.
pub async fn run_command(spec: &CommandSpec) -> Result<CommandOutcome, CommandError> {
    for name in env_refs(&spec.run) {
        if !spec.env.contains_key(&name) && std::env::var_os(&name).is_none() {
            return Err(CommandError::UnsetVariable {
                name,
                command: spec.run.clone(),
            });
        }
    }
    let redactor = Redactor::from_env(&spec.redact, &spec.env);
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(&spec.run)
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout can end everything it started.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &spec.workdir {
        command.current_dir(dir);
    }
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| CommandError::Spawn {
        command: spec.run.clone(),
        reason: e.to_string(),
    })?;
    let mut group = GroupGuard { pgid: child.id() };
    let limit = OUTPUT_LIMIT + redactor.longest();
    let stdout_tail = Arc::new(Mutex::new(Tail::default()));
    let stderr_tail = Arc::new(Mutex::new(Tail::default()));
    let mut stdout_reader =
        tokio::spawn(read_tail(child.stdout.take(), limit, stdout_tail.clone()));
    let mut stderr_reader =
        tokio::spawn(read_tail(child.stderr.take(), limit, stderr_tail.clone()));

    let (status, timed_out) = match tokio::time::timeout(spec.timeout, child.wait()).await {
        Ok(status) => (status.ok(), false),
        Err(_) => {
            group.kill();
            (child.wait().await.ok(), true)
        }
    };
    let duration = started.elapsed();
    // Output still in the pipes is read until they close, or for a short grace when a
    // background child holds them open; what was read by then is kept.
    let _ = tokio::time::timeout(DRAIN_GRACE, async {
        let _ = (&mut stdout_reader).await;
        let _ = (&mut stderr_reader).await;
    })
    .await;
    stdout_reader.abort();
    stderr_reader.abort();
    let out = std::mem::take(&mut *lock(&stdout_tail));
    let err = std::mem::take(&mut *lock(&stderr_tail));
    if timed_out {
        group.kill();
    }
    // The shell is done; what it left running on purpose (a daemon it started) stays.
    group.pgid = None;

    use std::os::unix::process::ExitStatusExt;
    let (stdout, stdout_dropped) = out.finish(&redactor);
    let (stderr, stderr_dropped) = err.finish(&redactor);
    Ok(CommandOutcome {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        stdout,
        stderr,
        stdout_dropped,
        stderr_dropped,
        duration,
    })
}

/// Kills the command's process group if the run is abandoned halfway (a cancelled
/// future), so nothing it started outlives it unseen.
struct GroupGuard {
    pgid: Option<u32>,
}

impl GroupGuard {
    fn kill(&self) {
        if let Some(pid) = self
            .pgid
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            // The group may be gone already; that is the wanted state.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The end of a stream: at most `limit` bytes, and how many were dropped before them.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Tail {
    /// Redacts first (with a margin as long as the longest secret, so a secret cut by the
    /// limit is still recognised), then keeps the last [`OUTPUT_LIMIT`] bytes.
    fn finish(self, redactor: &Redactor) -> (String, u64) {
        let text = redactor.redact(&String::from_utf8_lossy(&self.bytes));
        if text.len() <= OUTPUT_LIMIT {
            return (text, self.dropped);
        }
        let mut cut = text.len() - OUTPUT_LIMIT;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        (text[cut..].to_owned(), self.dropped + cut as u64)
    }
}

async fn read_tail(stream: Option<impl AsyncRead + Unpin>, limit: usize, tail: Arc<Mutex<Tail>>) {
    let Some(mut stream) = stream else { return };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut tail = lock(&tail);
                tail.bytes.extend_from_slice(&buf[..n]);
                if tail.bytes.len() > limit {
                    let excess = tail.bytes.len() - limit;
                    tail.bytes.drain(..excess);
                    tail.dropped += excess as u64;
                }
            }
        }
    }
}

fn lock(tail: &Mutex<Tail>) -> std::sync::MutexGuard<'_, Tail> {
    // Only this module locks it, never across a panic that matters: take it as it is.
    tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `1.5s`, `250ms`, `2m3s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let tenths = ms / 100;
        if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    } else {
        format!("{}m{}s", ms / 60_000, (ms / 1000) % 60)
    }
}

pub(crate) fn tail_chars(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let skipped: String = text.chars().skip(count - max).collect();
    format!("…{skipped}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_refs_are_found_once_each() {
        assert_eq!(
            env_refs("curl -H \"${A}\" ${B_2}/${A} $C ${lower}"),
            ["A", "B_2", "lower"]
        );
        assert!(env_refs("echo $$ ${ not} ${1X}").is_empty());
    }

    #[test]
    fn expansion_names_the_unset_variable() {
        let lookup = |n: &str| (n == "HOST").then(|| "127.0.0.1".to_owned());
        assert_eq!(
            expand_env_refs("http://${HOST}/x", lookup).unwrap(),
            "http://127.0.0.1/x"
        );
        let err = expand_env_refs("Bearer ${NOPE}", lookup).unwrap_err();
        assert!(err.contains("`${NOPE}`"), "{err}");
    }

    #[test]
    fn secret_names_are_recognised() {
        for name in [
            "API_TOKEN",
            "db_password",
            "AWS_SECRET_ACCESS_KEY",
            "SIGNING_KEY",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        assert!(!is_secret_name("HOME"));
    }

    #[test]
    fn longer_secrets_are_replaced_first() {
        let env: BTreeMap<String, String> = [
            ("A_TOKEN".to_owned(), "abcd".to_owned()),
            ("B_TOKEN".to_owned(), "abcdefgh".to_owned()),
        ]
        .into();
        let redactor = Redactor::from_env(&[], &env);
        assert_eq!(
            redactor.redact("x abcdefgh y abcd"),
            "x [redacted] y [redacted]"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_secs(5)), "5s");
        assert_eq!(fmt_duration(Duration::from_secs(123)), "2m3s");
    }
}
