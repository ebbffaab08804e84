//! Builds the adapters an environment names: its traffic router (starting the built-in
//! one in this process when chosen) and its metric sources.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adapters::{MetricSource, TrafficRouter};
use anyhow::{Context, anyhow, bail};
use plan::Plan;

/// The adapters of one environment.
pub struct Wired {
    pub router: Option<Arc<dyn TrafficRouter>>,
    pub metric_sources: BTreeMap<String, Arc<dyn MetricSource>>,
    /// The built-in router, when this environment runs it.
    pub proxy: Option<Arc<proxy::RouterHandle>>,
}

/// The environment's variables as plain strings.
pub fn env_vars(plan: &Plan, env: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let environment = plan
        .environments
        .iter()
        .find(|e| e.id.as_str() == env)
        .ok_or_else(|| {
            let known: Vec<&str> = plan.environments.iter().map(|e| e.id.as_str()).collect();
            anyhow!(
                "the plan has no environment `{env}` (it has: {})",
                known.join(", ")
            )
        })?;
    Ok(environment
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect())
}

/// The shortest window the built-in telemetry judges over: it counts whole seconds.
pub const MIN_BUILTIN_WINDOW: Duration = Duration::from_secs(2);

/// `time_scale` is how much faster than real time the run's clock goes (1 for a live run):
/// windows written in plan time are judged over the real time they stand for.
pub async fn build(plan: &Plan, env: &str, time_scale: f64) -> anyhow::Result<Wired> {
    let vars = env_vars(plan, env)?;
    // env_vars has just found it.
    let environment = plan
        .environments
        .iter()
        .find(|e| e.id.as_str() == env)
        .expect("environment exists");
    let expand = |text: &str| {
        adapters::router::template::expand_vars(text, &vars).map_err(|e| anyhow!("{e}"))
    };

    let mut wired = Wired {
        router: None,
        metric_sources: BTreeMap::new(),
        proxy: None,
    };
    if let Some(router_id) = &environment.router {
        let router = plan
            .routers
            .iter()
            .find(|r| r.id.as_str() == router_id.as_str())
            .ok_or_else(|| {
                anyhow!(
                    "environment `{env}` names router `{}`, which the plan lacks",
                    router_id.value
                )
            })?;
        if let Some(builtin) = &router.builtin {
            let listen: SocketAddr = expand(&builtin.listen)?
                .parse()
                .with_context(|| format!("router `{}`: listen address", router.id.value))?;
            let groups = builtin
                .groups
                .iter()
                .map(|g| {
                    let backends = g
                        .backends
                        .iter()
                        .map(|b| expand(b))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(proxy::BackendGroup::new(g.name.value.clone(), backends))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let stable = plan
                .ramp
                .as_ref()
                .and_then(|r| r.stable.as_ref().map(|s| s.value.clone()))
                .unwrap_or_else(|| "stable".to_owned());
            let mut config = proxy::RouterConfig::new(listen, groups);
            config.weights = BTreeMap::from([(stable, 100)]);
            if let Some(key) = &builtin.bucket_by {
                config.bucketing = key
                    .parse()
                    .map_err(|e| anyhow!("router `{}`: {e}", router.id.value))?;
            }
            if let Some(timeout) = &builtin.request_timeout {
                config.timeouts.request = timeout.as_std();
            }
            match &builtin.health_path {
                Some(path) => {
                    if let Some(check) = config.health_check.as_mut() {
                        check.path = path.value.clone();
                    }
                }
                None => config.health_check = None,
            }
            let handle = Arc::new(
                proxy::Router::start(config)
                    .await
                    .with_context(|| format!("starting the built-in router on {listen}"))?,
            );
            wired.router = Some(Arc::new(adapters::router::builtin::BuiltinRouter::new(
                handle.clone(),
            )));
            wired.proxy = Some(handle);
        } else {
            let built = adapters::router::from_plan(router, &vars).map_err(|e| anyhow!("{e}"))?;
            wired.router = Some(built);
        }
    }
    for source in &plan.metric_sources {
        let id = source.id.value.clone();
        let timeout = source
            .timeout
            .as_ref()
            .map(|t| t.as_std())
            .unwrap_or(Duration::from_secs(5));
        let built: Option<Arc<dyn MetricSource>> = if let Some(builtin) = &source.builtin {
            match &wired.proxy {
                Some(handle) => {
                    let window = builtin.window.as_ref().map(|w| {
                        w.as_std()
                            .div_f64(time_scale.max(1.0))
                            .max(MIN_BUILTIN_WINDOW)
                    });
                    Some(Arc::new(adapters::metrics::builtin::BuiltinMetrics::new(
                        handle.telemetry().clone(),
                        window,
                        builtin.min_requests.as_ref().map(|m| m.value),
                    )))
                }
                // The built-in telemetry exists only where the built-in router runs.
                None => None,
            }
        } else if let Some(prometheus) = &source.prometheus {
            let built = adapters::metrics::prometheus::Prometheus::from_plan(
                prometheus,
                Some(timeout),
                &vars,
            )
            .map_err(|e| anyhow!("metric source `{id}`: {e}"))?;
            Some(Arc::new(built))
        } else if let Some(command) = &source.command {
            let pattern = command.pattern.as_ref().map(|p| p.value.as_str());
            let built = adapters::metrics::command::CommandMetricSource::new(pattern, timeout)
                .map_err(|e| anyhow!("metric source `{id}`: {e}"))?;
            Some(Arc::new(built))
        } else if let Some(http) = &source.http {
            let path = http.json_path.as_ref().map(|p| p.value.as_str());
            let built = adapters::metrics::http::HttpMetricSource::new(path, timeout)
                .map_err(|e| anyhow!("metric source `{id}`: {e}"))?;
            Some(Arc::new(built))
        } else {
            None
        };
        if let Some(built) = built {
            wired.metric_sources.insert(id, built);
        }
    }
    if let Some(source_id) = &environment.metric_source
        && !wired.metric_sources.contains_key(source_id.as_str())
    {
        let source = plan
            .metric_sources
            .iter()
            .find(|s| s.id.as_str() == source_id.as_str());
        let why = match source {
            Some(s) if s.alertmanager.is_some() => {
                "an Alertmanager source receives alerts on the run's webhook and cannot be queried; \
                 name a source golive can query (prometheus, builtin, command, http) as the \
                 environment's `metric_source`, and keep the Alertmanager source for the alerts"
            }
            Some(s) if s.builtin.is_some() => {
                "the built-in telemetry exists only where golive runs the built-in router; \
                 give the environment a `builtin` router or another metric source"
            }
            _ => "golive cannot query it",
        };
        bail!(
            "environment `{env}` reads metrics from `{}`: {why}",
            source_id.value
        );
    }
    Ok(wired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(metric_sources: &str, env_source: &str) -> Plan {
        let text = format!(
            r#"golive: 1
meta:
  name: Wiring test
  owner: ops
t0: "2025-08-23T06:00:00+00:00[UTC]"
people:
  - id: olga
    name: Olga Operator
roles:
  - id: ops
    title: Operator
    primary: olga
environments:
  - id: test
    metric_source: {env_source}
metric_sources:
{metric_sources}
"#
        );
        let loaded = plan::load("plan.yaml", text.as_bytes());
        assert_eq!(loaded.errors(), 0, "{}", loaded.render());
        loaded.plan.expect("the plan loads")
    }

    #[tokio::test]
    async fn a_source_that_cannot_be_queried_is_named_with_the_reason() {
        let alerts = plan(
            "  - id: alerts\n    alertmanager: { rule_label: golive_rule }\n",
            "alerts",
        );
        let error = build(&alerts, "test", 1.0).await.err().expect("refused");
        let message = error.to_string();
        assert!(
            message.contains("`alerts`") && message.contains("cannot be queried"),
            "{message}"
        );
        let builtin = plan("  - id: own\n    builtin: { window: 1m }\n", "own");
        let error = build(&builtin, "test", 1.0).await.err().expect("refused");
        assert!(error.to_string().contains("built-in router"), "{error}");
    }
}
