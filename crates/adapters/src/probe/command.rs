//! The command probe: the exit code must be the expected one (default 0) and, if asked,
//! the output must contain a text.

use std::time::Duration;

use plan::model::CommandCheck;
use serde_json::json;

use super::ProbeOutcome;
use crate::command::{CommandSpec, fmt_duration, run_command};

/// How much of the output goes into a summary line.
const SUMMARY_OUTPUT: usize = 200;
/// How much of each stream goes into the detail.
const DETAIL_OUTPUT: usize = 4000;

pub(super) async fn probe(
    check: &CommandCheck,
    timeout: Duration,
    redact: &[String],
) -> ProbeOutcome {
    let mut spec = CommandSpec::new(check.run.value.clone(), timeout);
    spec.redact = redact.to_vec();
    let outcome = match run_command(&spec).await {
        Ok(outcome) => outcome,
        Err(error) => {
            return ProbeOutcome::fail(
                error.to_string(),
                json!({"command": check.run.value, "error": error.to_string()}),
            );
        }
    };
    let expect_exit = check.expect_exit.unwrap_or(0);
    let detail = json!({
        "command": check.run.value,
        "exit_code": outcome.exit_code,
        "signal": outcome.signal,
        "timed_out": outcome.timed_out,
        "duration_ms": outcome.duration.as_millis() as u64,
        "expect_exit": expect_exit,
        "expect_output": check.expect_output.as_ref().map(|t| t.value.clone()),
        "stdout": crate::command::tail_chars(&outcome.stdout, DETAIL_OUTPUT),
        "stderr": crate::command::tail_chars(&outcome.stderr, DETAIL_OUTPUT),
    });
    let took = fmt_duration(outcome.duration);
    if outcome.timed_out {
        return ProbeOutcome::fail(
            format!("`{}` {}", check.run.value, outcome.status_text()),
            detail,
        );
    }
    if outcome.exit_code != Some(expect_exit) {
        let tail = outcome.output_tail(SUMMARY_OUTPUT);
        let said = if tail.is_empty() {
            String::new()
        } else {
            format!(": {tail}")
        };
        return ProbeOutcome::fail(
            format!(
                "`{}` ended with {}, expected exit {expect_exit}{said}",
                check.run.value,
                outcome.status_text()
            ),
            detail,
        );
    }
    if let Some(wanted) = &check.expect_output {
        if !outcome.stdout.contains(wanted.value.as_str())
            && !outcome.stderr.contains(wanted.value.as_str())
        {
            return ProbeOutcome::fail(
                format!(
                    "`{}` exited {expect_exit} but its output does not contain `{}`; it ends: {}",
                    check.run.value,
                    wanted.value,
                    outcome.output_tail(SUMMARY_OUTPUT)
                ),
                detail,
            );
        }
        return ProbeOutcome::pass(
            format!(
                "`{}` exited {expect_exit} in {took}; output contains `{}`",
                check.run.value, wanted.value
            ),
            detail,
        );
    }
    ProbeOutcome::pass(
        format!("`{}` exited {expect_exit} in {took}", check.run.value),
        detail,
    )
}
