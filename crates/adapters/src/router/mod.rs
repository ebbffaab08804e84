//! Traffic routers behind [`TrafficRouter`]: HAProxy's runtime API, nginx (rewrite the
//! upstream, test, reload, read back), a user's command, and the built-in proxy; plus the
//! retry loop a rollback runs until the router confirms.
//!
//! **Invariant:** `set_weights` returns weights only after reading back what is in force;
//! whatever cannot be confirmed is an error.

pub mod builtin;
pub mod command;
pub mod haproxy;
pub mod nginx;
pub mod retry;
pub mod split;
pub mod template;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::TrafficRouter;

/// How long one weight change may take when the plan does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A router that cannot be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    pub message: String,
}

impl BuildError {
    pub fn new(message: String) -> BuildError {
        BuildError { message }
    }
}

impl From<template::TemplateError> for BuildError {
    fn from(error: template::TemplateError) -> BuildError {
        BuildError::new(error.to_string())
    }
}

/// Builds the router a plan describes, with `${vars}` of the environment substituted.
/// The built-in router is not built here: it runs inside golive and the shell wraps its
/// handle (see `builtin`).
pub fn from_plan(
    router: &plan::Router,
    vars: &BTreeMap<String, String>,
) -> Result<Arc<dyn TrafficRouter>, BuildError> {
    let timeout = router
        .timeout
        .as_ref()
        .map_or(DEFAULT_TIMEOUT, |t| t.as_std());
    let id = router.id.as_str();
    let expand = |text: &str| template::expand_vars(text, vars).map_err(BuildError::from);
    let in_router =
        |error: BuildError| BuildError::new(format!("router `{id}`: {}", error.message));
    if let Some(haproxy) = &router.haproxy {
        let groups = haproxy
            .servers
            .iter()
            .map(|(group, servers)| {
                let servers = servers
                    .iter()
                    .map(|s| expand(s))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((group.clone(), servers))
            })
            .collect::<Result<BTreeMap<_, _>, BuildError>>()
            .map_err(in_router)?;
        let built = haproxy::HaproxyRouter::new(
            &expand(&haproxy.runtime_api).map_err(in_router)?,
            &expand(&haproxy.backend).map_err(in_router)?,
            groups,
            timeout,
        )
        .map_err(in_router)?;
        return Ok(Arc::new(built));
    }
    if let Some(nginx) = &router.nginx {
        let built = nginx::NginxRouter::from_plan(nginx, vars, timeout).map_err(in_router)?;
        return Ok(Arc::new(built));
    }
    if let Some(command) = &router.command {
        let built = command::CommandRouter::new(&command.set, &command.get, vars.clone(), timeout);
        return Ok(Arc::new(built));
    }
    if router.builtin.is_some() {
        return Err(BuildError::new(format!(
            "router `{id}` is the built-in router: it is started by golive itself, not built from here"
        )));
    }
    Err(BuildError::new(format!(
        "router `{id}` names no kind; set one of `builtin`, `haproxy`, `nginx`, `command`"
    )))
}

/// An HTTP client builder with rustls on ring (installed once as the process default).
pub(crate) fn http_client(timeout: Duration) -> reqwest::ClientBuilder {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // Fails only when another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
}

#[cfg(test)]
mod tests {
    use plan::At;

    use super::*;

    fn bare(text: &str) -> At<String> {
        At::bare(text.to_string())
    }

    fn router(kind: impl FnOnce(&mut plan::Router)) -> plan::Router {
        let mut router = plan::Router {
            id: bare("edge"),
            builtin: None,
            haproxy: None,
            nginx: None,
            command: None,
            timeout: None,
        };
        kind(&mut router);
        router
    }

    #[test]
    fn builds_each_kind_with_vars_and_says_what_is_missing() {
        let vars: BTreeMap<String, String> =
            [("sock".to_string(), "/run/haproxy.sock".to_string())].into();
        let haproxy = router(|r| {
            r.haproxy = Some(At::bare(plan::HaproxyRouter {
                runtime_api: bare("unix:${sock}"),
                backend: bare("app"),
                servers: [
                    ("stable".to_string(), vec![bare("s1")]),
                    ("canary".to_string(), vec![bare("c1")]),
                ]
                .into(),
            }))
        });
        assert!(from_plan(&haproxy, &vars).is_ok());
        let undefined = from_plan(&haproxy, &BTreeMap::new()).err().unwrap();
        assert!(
            undefined.message.contains("router `edge`: `${sock}`"),
            "{undefined}"
        );

        let nginx = router(|r| {
            r.nginx = Some(At::bare(plan::NginxRouter {
                upstream_file: bare("/etc/nginx/golive.conf"),
                upstream: bare("app"),
                groups: vec![At::bare(plan::BackendGroup {
                    name: bare("stable"),
                    backends: vec![bare("10.0.0.1:80")],
                })],
                test_command: None,
                reload_command: None,
                verify_url: None,
                pid_file: None,
            }))
        });
        let no_verify = from_plan(&nginx, &vars).err().unwrap();
        assert!(
            no_verify.message.contains("set `verify_url`"),
            "{no_verify}"
        );

        let command = router(|r| {
            r.command = Some(At::bare(plan::CommandRouter {
                set: bare("true"),
                get: bare("echo stable=100"),
            }))
        });
        assert!(from_plan(&command, &vars).is_ok());
        let builtin = router(|r| {
            r.builtin = Some(At::bare(plan::BuiltinRouter {
                listen: bare("127.0.0.1:0"),
                groups: Vec::new(),
                bucket_by: None,
                health_path: None,
                request_timeout: None,
            }))
        });
        assert!(
            from_plan(&builtin, &vars)
                .err()
                .unwrap()
                .message
                .contains("built-in")
        );
        assert!(
            from_plan(&router(|_| {}), &vars)
                .err()
                .unwrap()
                .message
                .contains("names no kind")
        );
    }
}
