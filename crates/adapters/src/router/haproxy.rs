//! HAProxy through its runtime API: `set weight` for every server of every version group,
//! then `show servers state` in the same exchange, so one socket round trip both applies
//! and verifies a split.
//!
//! Percents become server weights like this: the 256 weight units HAProxy allows on a
//! server are apportioned over the groups by the largest-remainder method (5/95 → 13/243),
//! and each group's units are split evenly over its servers. Read back, each group's
//! share of the effective weight, rounded the same way, gives exactly the percents asked
//! for. A server in maintenance or drain, or one that is down, carries no traffic and
//! counts as weight 0, so a split that is not really in force never verifies.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::BuildError;
use super::split;
use crate::{RouterError, TrafficRouter, Weights};

/// HAProxy's largest server weight.
pub const MAX_WEIGHT: u64 = 256;

/// The key under which servers of the backend that belong to no group show up in a
/// read-back, when they carry traffic.
pub const OTHER_SERVERS: &str = "(servers in no group)";

/// Where the runtime API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeAddress {
    Unix(PathBuf),
    Tcp(String),
}

impl RuntimeAddress {
    /// `unix:/run/haproxy/admin.sock` or `host:port`.
    pub fn parse(text: &str) -> Result<RuntimeAddress, BuildError> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(BuildError::new(format!(
                    "`{text}`: the socket path is empty"
                )));
            }
            return Ok(RuntimeAddress::Unix(PathBuf::from(path)));
        }
        let tcp = text.strip_prefix("tcp:").unwrap_or(text);
        match tcp.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(RuntimeAddress::Tcp(tcp.to_string()))
            }
            _ => Err(BuildError::new(format!(
                "`{text}` is not a runtime API address; write `unix:/path/to/admin.sock` or `host:port`"
            ))),
        }
    }
}

impl std::fmt::Display for RuntimeAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            RuntimeAddress::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

/// A client of HAProxy's runtime API in its non-interactive mode: one connection per
/// exchange, commands separated by `;`, the answer read until HAProxy closes.
#[derive(Debug, Clone)]
pub struct RuntimeApi {
    address: RuntimeAddress,
    timeout: Duration,
}

impl RuntimeApi {
    pub fn new(address: RuntimeAddress, timeout: Duration) -> RuntimeApi {
        RuntimeApi { address, timeout }
    }

    /// Sends `commands` (one line, `;`-separated) and returns HAProxy's whole answer.
    pub async fn exchange(&self, commands: &str) -> Result<String, RouterError> {
        let exchange = async {
            match &self.address {
                RuntimeAddress::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
                        RouterError::Unreachable(format!(
                            "HAProxy runtime API at unix:{}: {e}",
                            path.display()
                        ))
                    })?;
                    talk(stream, commands, &self.address).await
                }
                RuntimeAddress::Tcp(addr) => {
                    let stream = tokio::net::TcpStream::connect(addr.as_str())
                        .await
                        .map_err(|e| {
                            RouterError::Unreachable(format!("HAProxy runtime API at {addr}: {e}"))
                        })?;
                    // Commands are tiny; without this the answer waits for a delayed ACK.
                    let _ = stream.set_nodelay(true);
                    talk(stream, commands, &self.address).await
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| RouterError::Timeout(self.timeout))?
    }
}

async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    commands: &str,
    address: &RuntimeAddress,
) -> Result<String, RouterError> {
    let lost = |e: std::io::Error| {
        RouterError::Unreachable(format!("HAProxy runtime API at {address}: {e}"))
    };
    stream.write_all(commands.as_bytes()).await.map_err(lost)?;
    stream.write_all(b"\n").await.map_err(lost)?;
    stream.flush().await.map_err(lost)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.map_err(lost)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// One server line of `show servers state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    pub name: String,
    /// 0 stopped, 1 starting, 2 running, 3 stopping.
    pub op_state: u32,
    /// Bit set of maintenance and drain flags; 0 means "ready".
    pub admin_state: u32,
    /// The weight set by configuration or `set weight`.
    pub user_weight: u64,
}

impl ServerState {
    /// The weight that decides how much new traffic the server gets: zero when it is in
    /// maintenance or drain, stopped or stopping.
    pub fn effective_weight(&self) -> u64 {
        let up = matches!(self.op_state, 1 | 2);
        if self.admin_state == 0 && up {
            self.user_weight
        } else {
            0
        }
    }
}

/// Parses the answer to `show servers state <backend>` (format version 1), by column
/// name so that later HAProxy versions with more columns still parse.
pub fn parse_servers_state(answer: &str) -> Result<Vec<ServerState>, String> {
    let mut lines = answer.lines().filter(|line| !line.trim().is_empty());
    let first = lines.next().ok_or("empty answer")?;
    if first.trim() != "1" {
        return Err(format!("unexpected answer: {}", answer.trim()));
    }
    let header = lines
        .next()
        .and_then(|line| line.strip_prefix('#'))
        .ok_or("no column header after the format version")?;
    let columns: Vec<&str> = header.split_whitespace().collect();
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("no `{name}` column in `{}`", header.trim()))
    };
    let (name_at, op_at, admin_at, weight_at) = (
        column("srv_name")?,
        column("srv_op_state")?,
        column("srv_admin_state")?,
        column("srv_uweight")?,
    );
    let mut servers = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let field = |at: usize| {
            fields
                .get(at)
                .copied()
                .ok_or_else(|| format!("short line `{line}`"))
        };
        let number = |at: usize| -> Result<u64, String> {
            field(at)?
                .parse::<u64>()
                .map_err(|_| format!("not a number in column {at} of `{line}`"))
        };
        servers.push(ServerState {
            name: field(name_at)?.to_string(),
            op_state: number(op_at)? as u32,
            admin_state: number(admin_at)? as u32,
            user_weight: number(weight_at)?,
        });
    }
    Ok(servers)
}

/// Percents per group carried by the servers as they are now.
pub fn percents_in_force(
    groups: &BTreeMap<String, Vec<String>>,
    servers: &[ServerState],
) -> Result<Weights, RouterError> {
    let mut totals: Vec<(String, u64)> = Vec::new();
    for (group, names) in groups {
        let mut total = 0;
        for name in names {
            let server = servers.iter().find(|s| &s.name == name).ok_or_else(|| {
                RouterError::Refused(format!(
                    "HAProxy has no server `{name}` (group `{group}`) in the backend"
                ))
            })?;
            total += server.effective_weight();
        }
        totals.push((group.clone(), total));
    }
    let other: u64 = servers
        .iter()
        .filter(|server| !groups.values().any(|names| names.contains(&server.name)))
        .map(ServerState::effective_weight)
        .sum();
    if other > 0 {
        totals.push((OTHER_SERVERS.to_string(), other));
    }
    Ok(split::percents_from_totals(&totals))
}

/// The HAProxy router.
#[derive(Debug, Clone)]
pub struct HaproxyRouter {
    api: RuntimeApi,
    backend: String,
    /// Version group → server names in `backend`.
    groups: BTreeMap<String, Vec<String>>,
}

impl HaproxyRouter {
    pub fn new(
        runtime_api: &str,
        backend: &str,
        groups: BTreeMap<String, Vec<String>>,
        timeout: Duration,
    ) -> Result<HaproxyRouter, BuildError> {
        if groups.is_empty() || groups.values().any(Vec::is_empty) {
            return Err(BuildError::new(
                "every version group needs at least one HAProxy server name".to_string(),
            ));
        }
        let bad_name = |name: &str| {
            name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ';' || c == '/')
        };
        if bad_name(backend) {
            return Err(BuildError::new(format!(
                "`{backend}` is not an HAProxy backend name"
            )));
        }
        if let Some(name) = groups.values().flatten().find(|name| bad_name(name)) {
            return Err(BuildError::new(format!(
                "`{name}` is not an HAProxy server name"
            )));
        }
        Ok(HaproxyRouter {
            api: RuntimeApi::new(RuntimeAddress::parse(runtime_api)?, timeout),
            backend: backend.to_string(),
            groups,
        })
    }

    /// The server weights that carry `split` (a complete split, see [`split::complete`]).
    pub fn server_weights(&self, split: &Weights) -> Vec<(String, u64)> {
        let groups: Vec<(&String, &Vec<String>)> = self.groups.iter().collect();
        let percents: Vec<u64> = groups
            .iter()
            .map(|(group, _)| u64::from(split.get(*group).copied().unwrap_or(0)))
            .collect();
        let units = split::apportion(&percents, MAX_WEIGHT);
        groups
            .iter()
            .zip(units)
            .flat_map(|((_, servers), units)| {
                servers
                    .iter()
                    .cloned()
                    .zip(split::split_evenly(units, servers.len()))
            })
            .collect()
    }

    /// The servers of the backend as HAProxy reports them now.
    pub async fn servers(&self) -> Result<Vec<ServerState>, RouterError> {
        let answer = self
            .api
            .exchange(&format!("show servers state {}", self.backend))
            .await?;
        parse_servers_state(&answer).map_err(|e| {
            RouterError::Refused(format!("`show servers state {}`: {e}", self.backend))
        })
    }
}

#[async_trait::async_trait]
impl TrafficRouter for HaproxyRouter {
    async fn set_weights(&self, wanted: &Weights) -> Result<Weights, RouterError> {
        let split = split::complete(wanted, self.groups.keys().map(String::as_str))?;
        let weights = self.server_weights(&split);
        let mut commands: Vec<String> = weights
            .iter()
            .map(|(server, weight)| format!("set weight {}/{server} {weight}", self.backend))
            .collect();
        commands.push(format!("show servers state {}", self.backend));
        let answer = self.api.exchange(&commands.join("; ")).await?;
        // Each command's answer ends with an empty line; `set weight` answers nothing when
        // it succeeds and one line of explanation when it does not.
        let mut lines = answer.lines();
        let mut refusals = Vec::new();
        for (server, weight) in &weights {
            let mut said = Vec::new();
            for line in lines.by_ref() {
                if line.trim().is_empty() {
                    break;
                }
                said.push(line.trim());
            }
            if !said.is_empty() {
                refusals.push(format!(
                    "set weight {}/{server} {weight}: {}",
                    self.backend,
                    said.join(" ")
                ));
            }
        }
        if !refusals.is_empty() {
            return Err(RouterError::Refused(refusals.join("; ")));
        }
        let rest: Vec<&str> = lines.collect();
        let servers = parse_servers_state(&rest.join("\n")).map_err(|e| {
            RouterError::Refused(format!("`show servers state {}`: {e}", self.backend))
        })?;
        let found = percents_in_force(&self.groups, &servers)?;
        if split::same(&found, &split) {
            Ok(found)
        } else {
            Err(RouterError::NotVerified {
                wanted: split,
                found,
            })
        }
    }

    async fn read_weights(&self) -> Result<Weights, RouterError> {
        let servers = self.servers().await?;
        percents_in_force(&self.groups, &servers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 app 1 stable 127.0.0.1 2 0 243 256 1 1 0 2 0 0 0 0 - 18081 - 0 0 - - 0
3 app 2 canary 127.0.0.1 2 0 13 0 1 1 0 2 0 0 0 0 - 18082 - 0 0 - - 0

";

    fn router(groups: &[(&str, &[&str])]) -> HaproxyRouter {
        let groups = groups
            .iter()
            .map(|(g, s)| (g.to_string(), s.iter().map(|s| s.to_string()).collect()))
            .collect();
        HaproxyRouter::new("unix:/nonexistent", "app", groups, Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn parses_show_servers_state_of_haproxy_2_6() {
        let servers = parse_servers_state(STATE).unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(
            servers[1],
            ServerState {
                name: "canary".into(),
                op_state: 2,
                admin_state: 0,
                user_weight: 13
            }
        );
        assert!(
            parse_servers_state("Can't find backend.\n\n")
                .unwrap_err()
                .contains("Can't find backend")
        );
    }

    #[test]
    fn weights_map_to_servers_and_back() {
        let r = router(&[("stable", &["s1", "s2", "s3"]), ("canary", &["c1"])]);
        let split: Weights = [("stable".to_string(), 95), ("canary".to_string(), 5)].into();
        let weights = r.server_weights(&split);
        assert_eq!(
            weights,
            vec![
                ("c1".to_string(), 13),
                ("s1".to_string(), 81),
                ("s2".to_string(), 81),
                ("s3".to_string(), 81)
            ]
        );
        let servers: Vec<ServerState> = weights
            .iter()
            .map(|(name, w)| ServerState {
                name: name.clone(),
                op_state: 2,
                admin_state: 0,
                user_weight: *w,
            })
            .collect();
        assert_eq!(percents_in_force(&r.groups, &servers).unwrap(), split);
    }

    #[test]
    fn servers_that_carry_no_traffic_count_as_zero() {
        let r = router(&[("stable", &["stable"]), ("canary", &["canary"])]);
        let mut servers = parse_servers_state(STATE).unwrap();
        servers[1].admin_state = 1; // maintenance
        let found = percents_in_force(&r.groups, &servers).unwrap();
        assert_eq!(
            found,
            [("stable".to_string(), 100), ("canary".to_string(), 0)].into()
        );
        servers.push(ServerState {
            name: "stray".into(),
            op_state: 2,
            admin_state: 0,
            user_weight: 243,
        });
        let found = percents_in_force(&r.groups, &servers).unwrap();
        assert_eq!(found.get(OTHER_SERVERS), Some(&50));
    }

    #[test]
    fn addresses_parse() {
        assert_eq!(
            RuntimeAddress::parse("unix:/run/a.sock").unwrap(),
            RuntimeAddress::Unix("/run/a.sock".into())
        );
        assert_eq!(
            RuntimeAddress::parse("127.0.0.1:9999").unwrap(),
            RuntimeAddress::Tcp("127.0.0.1:9999".into())
        );
        assert!(RuntimeAddress::parse("localhost").is_err());
    }
}
