//! A router driven by the user's own commands: `set` applies a split (given as
//! `${weights}` = `canary=5,stable=95` and `${weight_<group>}` = `5`), `get` prints the
//! split in force as `group=weight` pairs, and only what `get` prints is believed.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use super::{split, template};
use crate::{RouterError, TrafficRouter, Weights};

#[derive(Debug)]
pub struct CommandRouter {
    set: String,
    get: String,
    vars: BTreeMap<String, String>,
    timeout: Duration,
    /// One change at a time: a `get` must see the `set` that preceded it.
    serial: tokio::sync::Mutex<()>,
}

impl CommandRouter {
    /// `set` and `get` are shell commands (run with `sh -c`), templated with `vars` and the
    /// split when they run.
    pub fn new(
        set: &str,
        get: &str,
        vars: BTreeMap<String, String>,
        timeout: Duration,
    ) -> CommandRouter {
        CommandRouter {
            set: set.to_string(),
            get: get.to_string(),
            vars,
            timeout,
            serial: tokio::sync::Mutex::new(()),
        }
    }

    async fn read_back(&self) -> Result<Weights, RouterError> {
        let command = template::expand_vars(&self.get, &self.vars)
            .map_err(|e| RouterError::Refused(e.to_string()))?;
        let output = run_shell(&command, self.timeout).await?;
        split::parse_pairs(&output).map_err(|e| {
            RouterError::Refused(format!("`{command}` printed {:?}: {e}", output.trim()))
        })
    }
}

#[async_trait::async_trait]
impl TrafficRouter for CommandRouter {
    async fn set_weights(&self, wanted: &Weights) -> Result<Weights, RouterError> {
        let sum: u32 = wanted.values().sum();
        if sum != 100 {
            return Err(RouterError::Refused(format!(
                "weights {wanted:?} sum to {sum}, not 100"
            )));
        }
        let _one_at_a_time = self.serial.lock().await;
        let pairs = split::format_pairs(wanted);
        let command = template::expand(&self.set, |name| {
            if name == "weights" {
                return Some(pairs.clone());
            }
            if let Some(weight) = name
                .strip_prefix("weight_")
                .and_then(|group| wanted.get(group))
            {
                return Some(weight.to_string());
            }
            self.vars.get(name).cloned()
        })
        .map_err(|e| RouterError::Refused(e.to_string()))?;
        run_shell(&command, self.timeout).await?;
        let found = self.read_back().await?;
        if split::same(&found, wanted) {
            Ok(found)
        } else {
            Err(RouterError::NotVerified {
                wanted: wanted.clone(),
                found,
            })
        }
    }

    async fn read_weights(&self) -> Result<Weights, RouterError> {
        self.read_back().await
    }
}

/// Runs `command` with `sh -c`, killing it after `timeout`; returns its standard output,
/// or `Refused` with the exit status and the end of its standard error.
pub(crate) async fn run_shell(command: &str, timeout: Duration) -> Result<String, RouterError> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| RouterError::Unreachable(format!("cannot start `sh -c {command}`: {e}")))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| RouterError::Timeout(timeout))?
        .map_err(|e| RouterError::Unreachable(format!("`{command}`: {e}")))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: String = stderr
        .trim()
        .chars()
        .rev()
        .take(600)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(RouterError::Refused(format!(
        "`{command}` failed ({}): {tail}",
        output.status
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(pairs: &[(&str, u32)]) -> Weights {
        pairs.iter().map(|(g, w)| (g.to_string(), *w)).collect()
    }

    #[tokio::test]
    async fn set_then_get_verifies_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weights");
        let vars: BTreeMap<String, String> =
            [("state".to_string(), file.display().to_string())].into();
        let router = CommandRouter::new(
            "echo ${weights} > ${state} && echo canary=${weight_canary} >> ${state}.log",
            "cat ${state}",
            vars,
            Duration::from_secs(5),
        );
        let split = weights(&[("stable", 75), ("canary", 25)]);
        assert_eq!(router.set_weights(&split).await.unwrap(), split);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("weights.log")).unwrap(),
            "canary=25\n"
        );
        assert_eq!(router.read_weights().await.unwrap(), split);
    }

    #[tokio::test]
    async fn a_get_that_disagrees_is_not_believed() {
        let router = CommandRouter::new(
            "true",
            "echo stable=100",
            BTreeMap::new(),
            Duration::from_secs(5),
        );
        let error = router
            .set_weights(&weights(&[("stable", 95), ("canary", 5)]))
            .await
            .unwrap_err();
        assert!(matches!(error, RouterError::NotVerified { .. }), "{error}");
    }

    #[tokio::test]
    async fn failures_and_hangs_are_errors() {
        let failing = CommandRouter::new(
            "echo no >&2; exit 3",
            "true",
            BTreeMap::new(),
            Duration::from_secs(5),
        );
        let error = failing
            .set_weights(&weights(&[("stable", 100)]))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("no"), "{error}");
        let hanging = CommandRouter::new(
            "sleep 10",
            "true",
            BTreeMap::new(),
            Duration::from_millis(200),
        );
        let error = hanging
            .set_weights(&weights(&[("stable", 100)]))
            .await
            .unwrap_err();
        assert!(matches!(error, RouterError::Timeout(_)), "{error}");
    }
}
