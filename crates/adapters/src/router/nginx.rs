//! nginx: open-source nginx has no API to change upstream weights at run time, so a change
//! is a new configuration. The router writes the whole `upstream` block into the file
//! nginx.conf includes, runs the test command (`nginx -t`), reloads, and then confirms in
//! two steps:
//!
//! 1. the new configuration answers: over a fresh connection (a kept-alive one may belong
//!    to an old worker) the verify URL serves the map variable
//!    `$golive_weights_<upstream>` = `generation=<n> canary=5 stable=95` with the
//!    generation just written;
//! 2. the old configuration takes no more connections: nginx's master lets the old
//!    workers accept for about 100 ms after starting the new ones. With the pid file
//!    (nginx on this host) the router waits until every worker that accepted before the
//!    reload has exited or retitled itself "worker process is shutting down" (it closes
//!    its listening sockets at that moment). Without it, every fresh connection must
//!    answer with the new generation for 250 ms in a row.
//!
//! Requests an old worker had already read keep the old weights until they finish (bound
//! them with `worker_shutdown_timeout`). A file that fails the test is put back the way it
//! was, so a broken file never waits for the next reload.
//!
//! nginx.conf must include the upstream file in `http {}` and expose the variable in a
//! server, e.g. `location = /golive/weights { return 200 "$golive_weights_app\n"; }`
//! (see [`verify_location`]). Per-server weights are nginx `weight=` values in the
//! exact ratio of the percents (groups with several servers split theirs evenly); a
//! group at 0 % is marked `down`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::command::run_shell;
use super::{BuildError, split, template};
use crate::{RouterError, TrafficRouter, Weights};

/// Pause between two read-backs.
const POLL: Duration = Duration::from_millis(2);

/// Without the pid file, how long the new generation must answer every fresh connection
/// before the change counts: nginx's master lets old workers accept for 100 ms after
/// starting the new ones, and an old worker's answer restarts the wait.
const SETTLE: Duration = Duration::from_millis(250);

/// The map variable that carries the split in force for `upstream`.
pub fn weights_variable(upstream: &str) -> String {
    let safe: String = upstream
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("golive_weights_{safe}")
}

/// A `location` for nginx.conf's server that serves the split in force, for `verify_url`.
pub fn verify_location(upstream: &str, path: &str) -> String {
    format!(
        "location = {path} {{ default_type text/plain; return 200 \"${}\\n\"; }}",
        weights_variable(upstream)
    )
}

/// The upstream file for `split` (complete, summing to 100) as generation `generation`.
pub fn render(
    upstream: &str,
    groups: &[(String, Vec<String>)],
    split: &Weights,
    generation: u64,
) -> String {
    let percents: Vec<u64> = groups
        .iter()
        .map(|(group, _)| u64::from(split.get(group).copied().unwrap_or(0)))
        .collect();
    // Weight per server = percent × lcm(sizes) / size, so every group's servers together
    // carry exactly its percent; then everything is divided by the common factor.
    let lcm = groups
        .iter()
        .filter(|(_, servers)| !servers.is_empty())
        .fold(1u64, |acc, (_, servers)| lcm(acc, servers.len() as u64));
    let mut weights: Vec<u64> = groups
        .iter()
        .zip(&percents)
        .map(|((_, servers), percent)| percent * lcm / (servers.len().max(1) as u64))
        .collect();
    let common = weights
        .iter()
        .copied()
        .filter(|w| *w > 0)
        .fold(0, gcd)
        .max(1);
    for weight in &mut weights {
        *weight /= common;
    }
    let state = state_line(split, generation);
    let mut out = format!(
        "# Written by golive; every weight change replaces this file.\n# {state}\nupstream {upstream} {{\n"
    );
    for ((group, servers), weight) in groups.iter().zip(weights) {
        for server in servers {
            if weight == 0 {
                out.push_str(&format!("    server {server} down;  # {group}\n"));
            } else {
                out.push_str(&format!(
                    "    server {server} weight={weight};  # {group}\n"
                ));
            }
        }
    }
    out.push_str(&format!(
        "}}\nmap $host ${} {{\n    default \"{state}\";\n}}\n",
        weights_variable(upstream)
    ));
    out
}

fn state_line(split: &Weights, generation: u64) -> String {
    let pairs: Vec<String> = split.iter().map(|(g, w)| format!("{g}={w}")).collect();
    format!("generation={generation} {}", pairs.join(" "))
}

/// Parses `generation=<n> group=weight…` as served by the verify location.
pub fn parse_state_line(text: &str) -> Result<(u64, Weights), String> {
    let text = text.trim();
    let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let generation = first
        .strip_prefix("generation=")
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| format!("expected `generation=<n> group=weight…`, got {text:?}"))?;
    Ok((generation, split::parse_pairs(rest)?))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
}

#[derive(Debug)]
pub struct NginxRouter {
    upstream_file: PathBuf,
    upstream: String,
    groups: Vec<(String, Vec<String>)>,
    test_command: String,
    reload_command: String,
    verify_url: String,
    pid_file: Option<PathBuf>,
    timeout: Duration,
    client: reqwest::Client,
    /// The last generation written; changes are serialised by this lock.
    generation: tokio::sync::Mutex<u64>,
}

/// What goes into an [`NginxRouter`], with templates already expanded.
#[derive(Debug, Clone)]
pub struct NginxConfig {
    pub upstream_file: PathBuf,
    pub upstream: String,
    /// Version group → `host:port` of its servers.
    pub groups: Vec<(String, Vec<String>)>,
    pub test_command: String,
    pub reload_command: String,
    pub verify_url: String,
    /// nginx's pid file, when nginx runs on this host: the change then counts once every
    /// old worker has stopped accepting (read from /proc).
    pub pid_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl NginxRouter {
    pub fn new(config: NginxConfig) -> Result<NginxRouter, BuildError> {
        if config.groups.is_empty() || config.groups.iter().any(|(_, servers)| servers.is_empty()) {
            return Err(BuildError::new(
                "every version group needs at least one backend".to_string(),
            ));
        }
        if config.upstream.is_empty()
            || config
                .upstream
                .contains(|c: char| c.is_whitespace() || "{};".contains(c))
        {
            return Err(BuildError::new(format!(
                "`{}` is not an nginx upstream name",
                config.upstream
            )));
        }
        if let Some(bad) = config
            .groups
            .iter()
            .flat_map(|(_, servers)| servers)
            .find(|s| s.is_empty() || s.contains(|c: char| c.is_whitespace() || "{};#".contains(c)))
        {
            return Err(BuildError::new(format!("`{bad}` is not a backend address")));
        }
        let client = super::http_client(config.timeout)
            // A fresh connection per read-back: a kept-alive one may belong to an old worker.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| BuildError::new(format!("cannot build an HTTP client: {e}")))?;
        let first_generation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        Ok(NginxRouter {
            upstream_file: config.upstream_file,
            upstream: config.upstream,
            groups: config.groups,
            test_command: config.test_command,
            reload_command: config.reload_command,
            verify_url: config.verify_url,
            pid_file: config.pid_file,
            timeout: config.timeout,
            client,
            generation: tokio::sync::Mutex::new(first_generation),
        })
    }

    pub fn from_plan(
        nginx: &plan::NginxRouter,
        vars: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<NginxRouter, BuildError> {
        let expand = |text: &str| template::expand_vars(text, vars).map_err(BuildError::from);
        let verify_url = nginx.verify_url.as_ref().ok_or_else(|| {
            BuildError::new(format!(
                "nginx has no API to read weights back; set `verify_url` to a location that serves the split in force, e.g. add `{}` to a server in nginx.conf and set `verify_url: http://127.0.0.1:PORT/golive/weights`",
                verify_location(&nginx.upstream, "/golive/weights")
            ))
        })?;
        let groups = nginx
            .groups
            .iter()
            .map(|group| {
                let servers = group
                    .backends
                    .iter()
                    .map(|b| expand(b))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((group.name.to_string(), servers))
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        NginxRouter::new(NginxConfig {
            upstream_file: PathBuf::from(expand(&nginx.upstream_file)?),
            upstream: expand(&nginx.upstream)?,
            groups,
            test_command: expand(
                nginx
                    .test_command
                    .as_deref()
                    .map_or("nginx -t", |c| c.as_str()),
            )?,
            reload_command: expand(
                nginx
                    .reload_command
                    .as_deref()
                    .map_or("nginx -s reload", |c| c.as_str()),
            )?,
            verify_url: expand(verify_url)?,
            pid_file: nginx
                .pid_file
                .as_ref()
                .map(|p| expand(p).map(PathBuf::from))
                .transpose()?,
            timeout,
        })
    }

    /// Reads the state line from the verify URL on a fresh connection.
    async fn served_state(&self) -> Result<(u64, Weights), RouterError> {
        let response = self
            .client
            .get(&self.verify_url)
            .header("connection", "close")
            .send()
            .await
            .map_err(|e| {
                RouterError::Unreachable(format!("nginx verify URL {}: {e}", self.verify_url))
            })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| {
            RouterError::Unreachable(format!("nginx verify URL {}: {e}", self.verify_url))
        })?;
        if !status.is_success() {
            return Err(RouterError::Refused(format!(
                "nginx verify URL {} answered {status}: {}",
                self.verify_url,
                body.trim()
            )));
        }
        parse_state_line(&body)
            .map_err(|e| RouterError::Refused(format!("nginx verify URL {}: {e}", self.verify_url)))
    }

    async fn write_then_test(&self, text: &str, previous: Option<&str>) -> Result<(), RouterError> {
        write_atomically(&self.upstream_file, text).await?;
        if let Err(error) = run_shell(&self.test_command, self.timeout).await {
            if let Some(previous) = previous {
                let _ = write_atomically(&self.upstream_file, previous).await;
            }
            return Err(error);
        }
        Ok(())
    }
}

async fn write_atomically(path: &Path, text: &str) -> Result<(), RouterError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".golive-new");
    let temporary = PathBuf::from(temporary);
    let failed =
        |e: std::io::Error| RouterError::Refused(format!("cannot write {}: {e}", path.display()));
    tokio::fs::write(&temporary, text).await.map_err(failed)?;
    tokio::fs::rename(&temporary, path).await.map_err(failed)
}

#[async_trait::async_trait]
impl TrafficRouter for NginxRouter {
    async fn set_weights(&self, wanted: &Weights) -> Result<Weights, RouterError> {
        let split = split::complete(wanted, self.groups.iter().map(|(g, _)| g.as_str()))?;
        let started = Instant::now();
        let past_deadline = || started.elapsed() >= self.timeout;
        let mut generation = self.generation.lock().await;
        let next = *generation + 1;
        let old_workers = match &self.pid_file {
            Some(pid_file) => Some(accepting_workers(pid_file)?),
            None => None,
        };
        let previous = tokio::fs::read_to_string(&self.upstream_file).await.ok();
        let previous_split = previous.as_deref().and_then(split_in_file);
        self.write_then_test(
            &render(&self.upstream, &self.groups, &split, next),
            previous.as_deref(),
        )
        .await?;
        *generation = next;
        run_shell(
            &self.reload_command,
            self.timeout.saturating_sub(started.elapsed()),
        )
        .await?;

        // First: the new configuration answers on a fresh connection.
        let mut last_seen = previous_split.clone();
        let served = loop {
            match self.served_state().await {
                Ok((served, weights)) if served == next => break weights,
                Ok((_, weights)) => last_seen = Some(weights),
                Err(RouterError::Unreachable(_)) if !past_deadline() => {}
                Err(error) => return Err(error),
            }
            if past_deadline() {
                return Err(match last_seen {
                    Some(found) => RouterError::NotVerified {
                        wanted: split,
                        found,
                    },
                    None => RouterError::Timeout(self.timeout),
                });
            }
            tokio::time::sleep(POLL).await;
        };
        if !split::same(&served, &split) {
            return Err(RouterError::NotVerified {
                wanted: split,
                found: served,
            });
        }

        // Then: the old configuration takes no more connections. nginx's master lets the
        // old workers accept for about 100 ms after the new ones start.
        let unconfirmed = |found: Option<Weights>| match found {
            Some(found) => RouterError::NotVerified {
                wanted: split.clone(),
                found,
            },
            None => RouterError::Timeout(self.timeout),
        };
        match old_workers {
            Some((master, old)) => loop {
                if still_accepting(master, &old).is_empty() {
                    break;
                }
                if past_deadline() {
                    return Err(unconfirmed(previous_split));
                }
                tokio::time::sleep(POLL).await;
            },
            None => {
                let mut settled_since = Instant::now();
                while settled_since.elapsed() < SETTLE {
                    match self.served_state().await {
                        Ok((served, _)) if served == next => {}
                        Ok((_, weights)) => {
                            settled_since = Instant::now();
                            last_seen = Some(weights);
                        }
                        Err(RouterError::Unreachable(_)) if !past_deadline() => {}
                        Err(error) => return Err(error),
                    }
                    if past_deadline() {
                        return Err(unconfirmed(last_seen));
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        }
        Ok(served)
    }

    async fn read_weights(&self) -> Result<Weights, RouterError> {
        self.served_state().await.map(|(_, weights)| weights)
    }
}

/// The split recorded in an upstream file this router wrote (its `# generation=` line).
fn split_in_file(text: &str) -> Option<Weights> {
    text.lines()
        .find_map(|line| line.strip_prefix("# generation="))
        .and_then(|rest| parse_state_line(&format!("generation={rest}")).ok())
        .map(|(_, weights)| weights)
}

/// The master's pid (from `pid_file`) and its workers that accept connections now.
fn accepting_workers(pid_file: &Path) -> Result<(u32, Vec<u32>), RouterError> {
    let text = std::fs::read_to_string(pid_file).map_err(|e| {
        RouterError::Unreachable(format!("nginx pid file {}: {e}", pid_file.display()))
    })?;
    let master: u32 = text.trim().parse().map_err(|_| {
        RouterError::Unreachable(format!(
            "nginx pid file {} holds {:?}",
            pid_file.display(),
            text.trim()
        ))
    })?;
    Ok((master, still_accepting(master, &children(master))))
}

/// Those of `pids` that are still workers of `master` taking new connections: a worker
/// that got the signal to stop retitles itself "worker process is shutting down" as it
/// closes its listening sockets.
fn still_accepting(master: u32, pids: &[u32]) -> Vec<u32> {
    let current = children(master);
    pids.iter()
        .copied()
        .filter(|pid| current.contains(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    let title = String::from_utf8_lossy(&raw).replace('\0', " ");
                    let title = title.trim();
                    title.starts_with("nginx: worker process") && !title.contains("shutting down")
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Child processes of `pid`, from /proc.
fn children(pid: u32) -> Vec<u32> {
    if let Ok(list) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        return list
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    // Kernels without that file: scan every process's parent.
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    // Fields after the command name, which is in parentheses and may hold spaces.
                    let after = &stat[stat.rfind(')')? + 1..];
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(pairs: &[(&str, u32)]) -> Weights {
        pairs.iter().map(|(g, w)| (g.to_string(), *w)).collect()
    }

    #[test]
    fn renders_exact_ratios_and_down_for_zero() {
        let groups = vec![
            (
                "stable".to_string(),
                vec!["127.0.0.1:8001".to_string(), "127.0.0.1:8003".to_string()],
            ),
            ("canary".to_string(), vec!["127.0.0.1:8002".to_string()]),
        ];
        let text = render(
            "app",
            &groups,
            &weights(&[("stable", 95), ("canary", 5)]),
            7,
        );
        assert_eq!(
            text,
            "# Written by golive; every weight change replaces this file.
# generation=7 canary=5 stable=95
upstream app {
    server 127.0.0.1:8001 weight=19;  # stable
    server 127.0.0.1:8003 weight=19;  # stable
    server 127.0.0.1:8002 weight=2;  # canary
}
map $host $golive_weights_app {
    default \"generation=7 canary=5 stable=95\";
}
"
        );
        let text = render(
            "app",
            &groups,
            &weights(&[("stable", 100), ("canary", 0)]),
            8,
        );
        assert!(text.contains("server 127.0.0.1:8002 down;"), "{text}");
        assert!(text.contains("server 127.0.0.1:8001 weight=1;"), "{text}");
    }

    #[test]
    fn state_lines_round_trip() {
        let split = weights(&[("stable", 75), ("canary", 25)]);
        assert_eq!(
            parse_state_line(&format!("{}\n", state_line(&split, 42))).unwrap(),
            (42, split)
        );
        assert!(parse_state_line("hello").is_err());
        assert_eq!(
            weights_variable("app-v2.internal"),
            "golive_weights_app_v2_internal"
        );
    }
}
