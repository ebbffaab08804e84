//! Carrying out the engine's effects through the adapters, each with a timeout, and
//! turning what happened into the input that reports it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use adapters::{MetricSource, TrafficRouter};
use engine::{Effect, EffectOutcome, EffectRequest, Input, Reading, Sample};

/// Runs one effect and reports its result as an input for the engine.
#[async_trait::async_trait]
pub trait EffectExecutor: Send + Sync + 'static {
    async fn execute(&self, request: EffectRequest) -> Input;
}

/// Where messages, pages and status-page updates go until the channels exist: a person's
/// terminal (and the log, which already holds the effect).
pub trait Announcer: Send + Sync + 'static {
    fn announce(&self, effect: &Effect);
}

/// Prints messages and pages to standard output.
pub struct ConsoleAnnouncer;

impl Announcer for ConsoleAnnouncer {
    fn announce(&self, effect: &Effect) {
        match effect {
            Effect::SendMessage {
                audience,
                channels,
                subject,
                body,
                ..
            } => {
                println!(
                    "── message to {audience} via {} ──\n{subject}\n{body}\n",
                    channels.join(", ")
                );
            }
            Effect::Page {
                page,
                role,
                person,
                reason,
                ack_by,
            } => {
                println!(
                    "── PAGE {page}: {person} ({role}) — {reason}; acknowledge by {ack_by:.0} ──"
                );
            }
            Effect::UpdateStatusPage { status, message } => {
                println!("── status page: {status} — {message} ──");
            }
            _ => {}
        }
    }
}

/// The ids of the plan's SLIs that are ratios of requests.
pub fn ratio_slis(plan: &plan::Plan) -> std::collections::BTreeSet<String> {
    plan.slis
        .iter()
        .filter(|s| s.ratio)
        .map(|s| s.id.value.clone())
        .collect()
}

/// The executor of a live run, over real adapters.
pub struct LiveExecutor {
    pub router: Option<Arc<dyn TrafficRouter>>,
    pub metric_sources: BTreeMap<String, Arc<dyn MetricSource>>,
    /// SLIs that are ratios of requests: read with a minimum request count.
    pub ratio_slis: std::collections::BTreeSet<String>,
    pub announcer: Arc<dyn Announcer>,
}

#[async_trait::async_trait]
impl EffectExecutor for LiveExecutor {
    async fn execute(&self, request: EffectRequest) -> Input {
        let id = request.id;
        let timeout = Duration::from_millis(request.timeout_ms.max(1));
        let outcome = match request.effect {
            Effect::RunCommand { command, .. } => run_command(&command, timeout).await,
            Effect::RunProbe { verify, .. } => run_probe(verify, timeout).await,
            Effect::SetWeights { weights, .. } => match &self.router {
                None => EffectOutcome::Failed {
                    reason: "this environment names no traffic router".into(),
                    output: None,
                },
                Some(router) => {
                    match tokio::time::timeout(timeout, router.set_weights(&weights)).await {
                        Ok(Ok(confirmed)) => EffectOutcome::Weights { weights: confirmed },
                        Ok(Err(error)) => EffectOutcome::Failed {
                            reason: error.to_string(),
                            output: None,
                        },
                        Err(_) => EffectOutcome::Failed {
                            reason: format!("the router did not confirm within {timeout:?}"),
                            output: None,
                        },
                    }
                }
            },
            Effect::QueryMetrics { slis } => {
                let samples = self.query_metrics(slis, timeout).await;
                return Input::MetricSamples {
                    query: Some(id),
                    samples,
                };
            }
            effect @ (Effect::SendMessage { .. }
            | Effect::Page { .. }
            | Effect::UpdateStatusPage { .. }) => {
                self.announcer.announce(&effect);
                EffectOutcome::Done { output: None }
            }
        };
        Input::EffectResult { id, outcome }
    }
}

impl LiveExecutor {
    async fn query_metrics(
        &self,
        queries: Vec<engine::MetricQuery>,
        timeout: Duration,
    ) -> Vec<Sample> {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, query) in queries.iter().enumerate() {
            let source = self.metric_sources.get(&query.source).cloned();
            let (text, version) = (query.query.clone(), query.version.clone());
            let ratio = self.ratio_slis.contains(&query.sli);
            tasks.spawn(async move {
                let reading = match source {
                    None => Reading::Error {
                        reason: "no such metric source in this environment".into(),
                    },
                    Some(source) => {
                        let read = async {
                            if ratio {
                                source.read_ratio(&text, &version).await
                            } else {
                                source.read(&text, &version).await
                            }
                        };
                        match tokio::time::timeout(timeout, read).await {
                            Ok(reading) => to_engine_reading(reading),
                            Err(_) => Reading::Error {
                                reason: format!("no answer within {timeout:?}"),
                            },
                        }
                    }
                };
                (index, reading)
            });
        }
        let mut readings: BTreeMap<usize, Reading> = BTreeMap::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, reading)) = joined {
                readings.insert(index, reading);
            }
        }
        queries
            .into_iter()
            .enumerate()
            .map(|(index, query)| Sample {
                sli: query.sli,
                version: query.version,
                // A task that panicked gave no reading: an error, never a value.
                reading: readings.remove(&index).unwrap_or(Reading::Error {
                    reason: "the metric query failed inside golive".into(),
                }),
            })
            .collect()
    }
}

pub fn to_engine_reading(reading: adapters::Reading) -> Reading {
    match reading {
        adapters::Reading::Value(v) => Reading::Value(v),
        adapters::Reading::NoData { reason } => Reading::NoData { reason },
        adapters::Reading::Error { reason } => Reading::Error { reason },
    }
}

/// How much of a command's output goes into the log.
const LOGGED_OUTPUT: usize = 4000;

async fn run_command(command: &str, timeout: Duration) -> EffectOutcome {
    let spec = adapters::command::CommandSpec::new(command, timeout);
    match adapters::command::run_command(&spec).await {
        Ok(result) if result.success() => EffectOutcome::Done {
            output: Some(result.output_tail(LOGGED_OUTPUT)),
        },
        Ok(result) => EffectOutcome::Failed {
            reason: result.status_text(),
            output: Some(result.output_tail(LOGGED_OUTPUT)),
        },
        Err(error) => EffectOutcome::Failed {
            reason: error.to_string(),
            output: None,
        },
    }
}

async fn run_probe(verify: serde_json::Value, timeout: Duration) -> EffectOutcome {
    let verify: plan::Verify = match serde_json::from_value(verify) {
        Ok(verify) => verify,
        Err(error) => {
            return EffectOutcome::Failed {
                reason: format!("the probe does not read: {error}"),
                output: None,
            };
        }
    };
    match adapters::probe::probe(&verify, timeout).await {
        Ok(outcome) if outcome.passed => EffectOutcome::Done {
            output: Some(outcome.summary),
        },
        Ok(outcome) => EffectOutcome::Failed {
            reason: outcome.summary,
            output: Some(outcome.detail.to_string()),
        },
        Err(not_probeable) => EffectOutcome::Failed {
            reason: not_probeable.to_string(),
            output: None,
        },
    }
}
