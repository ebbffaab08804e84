//! The plan as written: every section of a go-live runbook as typed data.
//!
//! Lists of things with identities are YAML sequences of mappings with an `id`, so order is
//! kept and each item keeps its location. Where a thing comes in several kinds (a step that
//! runs a command or waits for a roll call, a router that is HAProxy or nginx) the kind is
//! the one key that is present, never an internal tag: internal tags lose source locations.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::span::At;
use crate::units::{Condition, Dur, Offset};

pub type Id = At<String>;

/// A whole plan file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Version of the plan format; this release reads `1`.
    pub golive: At<u32>,
    pub meta: Meta,
    /// The planned moment of going live, with its zone: `2025-08-23T02:00:00-04:00[America/New_York]`.
    /// Every offset in the plan is relative to T0; once "go" is decided, the actual T0 is the
    /// moment of that decision and later offsets follow it.
    #[schemars(with = "String")]
    pub t0: At<PlannedT0>,
    /// The maintenance window, as offsets from T0.
    #[serde(default)]
    pub window: Option<At<Window>>,
    /// Downtime announced to users.
    #[serde(default)]
    pub expected_downtime: Option<At<Dur>>,
    #[serde(default)]
    pub people: Vec<At<Person>>,
    #[serde(default)]
    pub roles: Vec<At<Role>>,
    #[serde(default)]
    pub environments: Vec<At<Environment>>,
    #[serde(default)]
    pub services: Vec<At<Service>>,
    #[serde(default)]
    pub routers: Vec<At<Router>>,
    #[serde(default)]
    pub metric_sources: Vec<At<MetricSource>>,
    #[serde(default)]
    pub slis: Vec<At<Sli>>,
    #[serde(default)]
    pub checklists: Vec<At<Checklist>>,
    #[serde(default)]
    pub timeline: Vec<At<Phase>>,
    #[serde(default)]
    pub ramp: Option<At<Ramp>>,
    #[serde(default)]
    pub rules: Option<At<Rules>>,
    #[serde(default)]
    pub triggers: Vec<At<ManualTrigger>>,
    #[serde(default)]
    pub playbooks: Vec<At<Playbook>>,
    #[serde(default)]
    pub comms: Option<At<Comms>>,
    #[serde(default)]
    pub success: Option<At<Success>>,
    #[serde(default)]
    pub followups: Vec<At<FollowUp>>,
}

impl Plan {
    /// The metric source an environment judges with: the one it names, or the plan's only
    /// one when it names none.
    pub fn metric_source_of(&self, env: &Environment) -> Option<&At<MetricSource>> {
        match &env.metric_source {
            Some(id) => self.metric_sources.iter().find(|m| m.id.value == id.value),
            None if self.metric_sources.len() == 1 => self.metric_sources.first(),
            None => None,
        }
    }
}

/// T0 as written. Parsed with the system-independent time zone database at load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlannedT0(pub jiff::ZonedDateTime);

impl TryFrom<String> for PlannedT0 {
    type Error = String;
    fn try_from(s: String) -> Result<PlannedT0, String> {
        s.parse::<jiff::ZonedDateTime>().map(PlannedT0).map_err(|e| {
            format!(
                "`{s}` is not a zoned date-time ({e}); write it like `2025-08-23T02:00:00-04:00[America/New_York]`"
            )
        })
    }
}

impl From<PlannedT0> for String {
    fn from(t: PlannedT0) -> String {
        t.0.to_string()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: At<String>,
    /// Role that owns the plan.
    pub owner: Id,
    /// Who approved this plan (titles or role ids).
    #[serde(default)]
    pub approvers: Vec<At<String>>,
    #[serde(default)]
    pub version: Option<At<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// Links shown in messages and the command center (dashboards, status page, channels).
    #[serde(default)]
    pub links: Vec<At<Link>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub id: Id,
    pub title: String,
    pub url: At<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub start: Offset,
    pub end: Offset,
}

// === people and roles ===

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub id: Id,
    pub name: At<String>,
    #[serde(default)]
    pub phone: Option<At<String>>,
    #[serde(default)]
    pub email: Option<At<String>>,
    /// Chat handle, e.g. `@sarah`.
    #[serde(default)]
    pub chat: Option<At<String>>,
}

/// What a role may decide. Every API call that decides something checks it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Authority {
    /// Decide go or no-go at a gate.
    GoNoGo,
    /// Pull a manual stop-the-line trigger.
    StopTheLine,
    /// Waive a checklist item or a failed gate, with a reason.
    Waive,
    /// Approve a ramp stage that asks for approval, and promote by hand.
    Approve,
    /// Pause and resume the ramp.
    Pause,
    /// Roll back by hand.
    Rollback,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub id: Id,
    pub title: At<String>,
    /// Person id of the primary holder.
    pub primary: Id,
    /// Person id of the backup, paged when the primary does not acknowledge in time.
    #[serde(default)]
    pub backup: Option<Id>,
    /// Role paged after the backup: the next step up.
    #[serde(default)]
    pub escalates_to: Option<Id>,
    #[serde(default)]
    pub authorities: Vec<At<Authority>>,
    #[serde(default)]
    pub responsibilities: Vec<String>,
}

// === environments and services ===

/// A named set of variables and adapter choices, so one plan runs against production,
/// staging or this machine. Variables are used as `${name}` in commands, URLs and queries.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub id: Id,
    #[serde(default)]
    pub description: Option<String>,
    /// Router id used in this environment.
    #[serde(default)]
    pub router: Option<Id>,
    /// Metric source id used in this environment.
    #[serde(default)]
    pub metric_source: Option<Id>,
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, At<String>>,
    /// Steps and probes that cannot run in this environment are rehearsed (logged as
    /// "rehearsed, not executed") instead of run. Step ids or checklist item ids.
    #[serde(default)]
    pub rehearse_only: Vec<Id>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub id: Id,
    pub name: At<String>,
    #[serde(default)]
    pub owner: Option<Id>,
    /// Health URL, probed by `verify` items that refer to the service.
    #[serde(default)]
    pub health: Option<At<String>>,
    /// Whether the public status page shows it as a component.
    #[serde(default)]
    pub public: bool,
}

// === traffic and metrics ===

/// A traffic router: exactly one of the kind keys is set.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Router {
    pub id: Id,
    #[serde(default)]
    pub builtin: Option<At<BuiltinRouter>>,
    #[serde(default)]
    pub haproxy: Option<At<HaproxyRouter>>,
    #[serde(default)]
    pub nginx: Option<At<NginxRouter>>,
    #[serde(default)]
    pub command: Option<At<CommandRouter>>,
    /// How long a weight change may take before it counts as failed and is retried.
    #[serde(default)]
    pub timeout: Option<At<Dur>>,
}

/// A group of backends that serve one version (`stable`, `canary`, …).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendGroup {
    pub name: Id,
    /// `host:port` of each backend (templated with `${vars}`).
    pub backends: Vec<At<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuiltinRouter {
    /// Address the router listens on, e.g. `127.0.0.1:8080`.
    pub listen: At<String>,
    pub groups: Vec<At<BackendGroup>>,
    /// Key for consistent per-user bucketing: `cookie:NAME`, `header:NAME` or `client_ip`.
    #[serde(default)]
    pub bucket_by: Option<At<String>>,
    /// Path probed on each backend for health; none disables health checks.
    #[serde(default)]
    pub health_path: Option<At<String>>,
    #[serde(default)]
    pub request_timeout: Option<At<Dur>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HaproxyRouter {
    /// Runtime API: `unix:/path/to/socket` or `host:port`.
    pub runtime_api: At<String>,
    /// HAProxy backend that holds the versions' servers.
    pub backend: At<String>,
    /// Version group name → HAProxy server names in that backend.
    pub servers: std::collections::BTreeMap<String, Vec<At<String>>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NginxRouter {
    /// File golive writes the upstream block into (included by nginx.conf).
    pub upstream_file: At<String>,
    pub upstream: At<String>,
    pub groups: Vec<At<BackendGroup>>,
    /// Command that checks the configuration; default `nginx -t`.
    #[serde(default)]
    pub test_command: Option<At<String>>,
    /// Command that reloads; default `nginx -s reload`.
    #[serde(default)]
    pub reload_command: Option<At<String>>,
    /// URL of a status endpoint used to read back the weights in force.
    #[serde(default)]
    pub verify_url: Option<At<String>>,
    /// nginx's pid file, when golive runs on the same host: a change then counts only once
    /// every worker of the old configuration has stopped accepting connections.
    #[serde(default)]
    pub pid_file: Option<At<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRouter {
    /// Run with `${weights}` as `stable=95,canary=5` and each `${weight_<group>}`.
    pub set: At<String>,
    /// Prints the weights in force as `group=weight` pairs; used to verify.
    pub get: At<String>,
}

/// A metric source: exactly one kind key is set.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSource {
    pub id: Id,
    /// The built-in router's own telemetry.
    #[serde(default)]
    pub builtin: Option<At<BuiltinMetrics>>,
    #[serde(default)]
    pub prometheus: Option<At<PrometheusSource>>,
    /// Runs the SLI's query as a shell command and reads a number from its output.
    #[serde(default)]
    pub command: Option<At<CommandSource>>,
    /// Requests the SLI's query as a URL and reads a number with a JSON path.
    #[serde(default)]
    pub http: Option<At<HttpSource>>,
    /// Alertmanager webhooks received by golive.
    #[serde(default)]
    pub alertmanager: Option<At<AlertmanagerSource>>,
    #[serde(default)]
    pub timeout: Option<At<Dur>>,
}

impl MetricSource {
    /// The window the source's readings cover: `builtin.window` (default 10s, the built-in
    /// source's own), `prometheus.window` (default 1m); none for other sources.
    pub fn window(&self) -> Option<Dur> {
        if let Some(builtin) = &self.builtin {
            return Some(
                builtin
                    .window
                    .as_ref()
                    .map(|w| w.value)
                    .unwrap_or(BuiltinMetrics::DEFAULT_WINDOW),
            );
        }
        if let Some(prometheus) = &self.prometheus {
            return Some(
                prometheus
                    .window
                    .as_ref()
                    .map(|w| w.value)
                    .unwrap_or(PrometheusSource::DEFAULT_WINDOW),
            );
        }
        None
    }
}

impl BuiltinMetrics {
    /// The window judged when the plan does not say.
    pub const DEFAULT_WINDOW: Dur = Dur(10_000);
}

impl PrometheusSource {
    /// The query range assumed when the plan does not say.
    pub const DEFAULT_WINDOW: Dur = Dur(60_000);
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuiltinMetrics {
    /// Window over which rates and quantiles are computed.
    #[serde(default)]
    pub window: Option<At<Dur>>,
    /// Fewer requests than this in the window make a ratio inconclusive.
    #[serde(default)]
    pub min_requests: Option<At<u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSource {
    pub url: At<String>,
    /// A PromQL expression for the request count in the judged window; below
    /// `min_requests` a ratio SLI is inconclusive.
    #[serde(default)]
    pub request_count_query: Option<At<String>>,
    #[serde(default)]
    pub min_requests: Option<At<u64>>,
    /// The range the queries use (`rate(...[1m])`): how long after a weight change the
    /// readings still mostly reflect the old weights. Default 1m.
    #[serde(default)]
    pub window: Option<At<Dur>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSource {
    /// Regular expression with one capture group for the number; default: the first number.
    #[serde(default)]
    pub pattern: Option<At<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSource {
    /// JSON path (RFC 9535) to the number; default `$`.
    #[serde(default)]
    pub json_path: Option<At<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerSource {
    /// Label whose value names the plan rule or manual trigger an alert stands for.
    #[serde(default)]
    pub rule_label: Option<At<String>>,
}

/// A service level indicator: a named number with a unit, measured per version.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sli {
    pub id: Id,
    #[serde(default)]
    pub title: Option<String>,
    pub unit: At<crate::units::Unit>,
    /// Metric source id → query. The environment's metric source picks which one runs.
    /// `${version}` is the version group being judged.
    pub queries: std::collections::BTreeMap<String, At<String>>,
    /// Whether it is a ratio of requests (then a minimum request count applies).
    #[serde(default)]
    pub ratio: bool,
}

// === checklists ===

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checklist {
    pub id: Id,
    pub title: At<String>,
    /// When every item must be done or waived.
    pub due: At<Offset>,
    pub items: Vec<At<ChecklistItem>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    pub id: Id,
    pub title: At<String>,
    #[serde(default)]
    pub detail: Option<String>,
    /// Role that signs it off (or owns its verification).
    pub owner: Id,
    #[serde(default = "Verify::manual")]
    pub verify: At<Verify>,
}

/// How an item, a gate or a probe step is verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// A person of the owner role signs it off.
    Manual,
    Command(CommandCheck),
    Http(HttpCheck),
    Tls(TlsCheck),
    Dns(DnsCheck),
    Tcp(TcpCheck),
    Metric(MetricCheck),
}

impl Verify {
    fn manual() -> At<Verify> {
        At::bare(Verify::Manual)
    }
    pub fn is_manual(&self) -> bool {
        matches!(self, Verify::Manual)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandCheck {
    pub run: At<String>,
    #[serde(default)]
    pub expect_exit: Option<i32>,
    /// Output must contain this text.
    #[serde(default)]
    pub expect_output: Option<At<String>>,
    #[serde(default)]
    pub timeout: Option<At<Dur>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    pub url: At<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Expected status; default 200.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub json: Vec<At<JsonAssertion>>,
    #[serde(default)]
    pub timeout: Option<At<Dur>>,
}

/// One assertion on a JSON response: the path must select something, and if given, it
/// must equal a value or satisfy a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonAssertion {
    /// RFC 9535 JSON path, e.g. `$.status`.
    pub path: At<String>,
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    /// `< 500`, `>= 1`: compared numerically.
    #[serde(default)]
    pub compare: Option<At<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsCheck {
    /// `host:port` to connect to.
    pub address: At<String>,
    /// Server name to send and to check; default the host.
    #[serde(default)]
    pub server_name: Option<At<String>>,
    /// The certificate must stay valid at least this long.
    #[serde(default)]
    pub min_validity: Option<At<Dur>>,
    /// Names the certificate must cover (wildcards allowed: `*.aivo.edu`).
    #[serde(default)]
    pub names: Vec<At<String>>,
    /// PEM file of extra trust anchors (a private CA); default the web's roots.
    #[serde(default)]
    pub ca_file: Option<At<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    pub name: At<String>,
    /// `A`, `AAAA`, `CNAME`, `TXT`…; default `A`.
    #[serde(default)]
    pub record: Option<At<String>>,
    /// Resolvers to ask, each `ip` or `ip:port`; every one must give the expected answer.
    pub resolvers: Vec<At<String>>,
    /// The answer must contain each of these.
    pub expect: Vec<At<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    pub address: At<String>,
    #[serde(default)]
    pub timeout: Option<At<Dur>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricCheck {
    /// `error_rate < 0.1%`: passes when the condition holds.
    pub when: At<Condition>,
    /// Version group to judge; default the canary.
    #[serde(default)]
    pub version: Option<At<String>>,
}

// === timeline ===

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub id: Id,
    pub title: At<String>,
    pub window: At<Window>,
    #[serde(default)]
    pub steps: Vec<At<Step>>,
}

/// What happens when a step fails or times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop the timeline until a person retries, skips or waives the step.
    #[default]
    Halt,
    /// Record the failure and go on.
    Continue,
    /// Pause the ramp and page the step's owner.
    Pause,
    /// Roll back.
    Rollback,
}

/// A timed step. Exactly one of the kind keys (`run`, `probe`, `roll_call`, `freeze`,
/// `gate`, `notify`, `traffic`, `checklist`) is set.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: Id,
    pub at: At<Offset>,
    pub title: At<String>,
    /// Role responsible for the step.
    #[serde(default)]
    pub owner: Option<Id>,
    /// A shell command (templated with `${vars}`).
    #[serde(default)]
    pub run: Option<At<String>>,
    /// Whether running `run` twice is harmless; only then is it retried after a crash.
    #[serde(default)]
    pub idempotent: bool,
    #[serde(default)]
    pub probe: Option<At<Verify>>,
    /// Roles that must answer "ready".
    #[serde(default)]
    pub roll_call: Option<Vec<Id>>,
    /// A freeze that starts now (code, infrastructure…).
    #[serde(default)]
    pub freeze: Option<At<String>>,
    #[serde(default)]
    pub gate: Option<At<Gate>>,
    #[serde(default)]
    pub notify: Option<At<Notify>>,
    /// Set the new version's traffic to this percent (a ramp stage's weight, or 0).
    #[serde(default)]
    pub traffic: Option<At<u8>>,
    /// A checklist whose items must all be done or waived by this step.
    #[serde(default)]
    pub checklist: Option<Id>,
    #[serde(default)]
    pub timeout: Option<At<Dur>>,
    #[serde(default)]
    pub on_failure: At<OnFailure>,
    /// What the step expects to see; shown to the operator.
    #[serde(default)]
    pub expect: Vec<String>,
}

/// A decision point. The go/no-go gate sets the actual T0.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// Authority the decider needs; default `go_no_go`.
    #[serde(default)]
    pub authority: Option<At<Authority>>,
    /// Checklists that must be complete (done or waived) before "go" is accepted.
    #[serde(default)]
    pub requires: Vec<Id>,
    /// Whether this gate's "go" is the actual T0.
    #[serde(default)]
    pub sets_t0: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub audiences: Vec<Id>,
    pub template: Id,
}

// === ramp ===

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    /// Version group that keeps the rest of the traffic; default `stable`.
    #[serde(default)]
    pub stable: Option<Id>,
    /// Version group being ramped up; default `canary`.
    #[serde(default)]
    pub canary: Option<Id>,
    /// When the first stage may start, relative to T0.
    pub start: At<Offset>,
    pub stages: Vec<At<Stage>>,
    pub rollback: At<Rollback>,
    /// How long after a stage's weights are confirmed the metric window still holds too
    /// few of the new version's requests to judge: no-data outcomes of rules are not acted
    /// upon and the hold does not end before it. Default: the window of the environment's
    /// metric source (`builtin.window`, `prometheus.window`; 0 for other sources).
    #[serde(default)]
    pub warmup: Option<At<Dur>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Percent of traffic on the new version.
    pub weight: At<u8>,
    /// How long the stage is watched before it may advance.
    pub hold: At<Dur>,
    /// Not before this offset, even if the previous hold ended earlier.
    #[serde(default)]
    pub not_before: Option<At<Offset>>,
    /// Conditions that must pass at the end of the hold.
    #[serde(default)]
    pub gates: Vec<At<StageGate>>,
    /// Role whose approval is needed to enter this stage.
    #[serde(default)]
    pub approval: Option<Id>,
}

/// One condition for leaving a stage: a metric condition or a complete checklist.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageGate {
    #[serde(default)]
    pub metric: Option<At<Condition>>,
    #[serde(default)]
    pub checklist: Option<Id>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The longest a rollback may take, from trigger to traffic off the new version.
    pub budget: At<Dur>,
    /// Steps run after the router confirms weight 0 (disable flags, restore DNS…).
    #[serde(default)]
    pub steps: Vec<At<Step>>,
    /// Playbook started with every rollback.
    #[serde(default)]
    pub playbook: Option<Id>,
}

// === rules and triggers ===

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// How often every rule is evaluated; down to one second.
    pub evaluation_interval: At<Dur>,
    pub list: Vec<At<Rule>>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// What a rule does while its data is missing or its source fails. Never a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoData {
    /// Hold the ramp (no advance), pause and page the rule's page roles.
    #[default]
    Pause,
    /// Treat as firing.
    Firing,
    /// Keep the last state; gates stay inconclusive.
    KeepState,
}

/// An action a rule, trigger or playbook can take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Rollback,
    Pause,
    /// Page a role (primary, then backup, then upward).
    Page(Id),
    Notify(Notify),
    /// Start a playbook.
    Playbook(Id),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: Id,
    #[serde(default)]
    pub title: Option<String>,
    pub when: At<Condition>,
    #[serde(rename = "for", default)]
    pub for_: At<Dur>,
    #[serde(default)]
    pub keep_firing_for: Option<At<Dur>>,
    #[serde(default)]
    pub no_data: At<NoData>,
    pub severity: At<Severity>,
    pub actions: Vec<At<Action>>,
    /// Version group judged; default the canary.
    #[serde(default)]
    pub version: Option<At<String>>,
    /// Only active while the ramp runs (default) or always from T0.
    #[serde(default)]
    pub always: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualTrigger {
    pub id: Id,
    pub title: At<String>,
    #[serde(default)]
    pub examples: Vec<String>,
    pub severity: At<Severity>,
    pub actions: Vec<At<Action>>,
    /// Roles that may pull it; default every role with `stop_the_line`.
    #[serde(default)]
    pub who: Vec<Id>,
}

// === playbooks ===

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub id: Id,
    pub title: At<String>,
    pub actions: Vec<At<PlaybookAction>>,
}

/// One action of a playbook, due within its deadline from the playbook's start.
/// Exactly one of `notify`, `page`, `task`, `status`, `run` is set.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookAction {
    pub id: Id,
    pub title: At<String>,
    /// Deadline from the playbook's start: `< 2 minutes`.
    pub within: At<Dur>,
    #[serde(default)]
    pub notify: Option<At<Notify>>,
    #[serde(default)]
    pub page: Option<At<Page>>,
    /// A manual task for a role, done when someone of the role acknowledges it.
    #[serde(default)]
    pub task: Option<Id>,
    #[serde(default)]
    pub status: Option<At<StatusUpdate>>,
    #[serde(default)]
    pub run: Option<At<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Page {
    pub role: Id,
    /// Escalate to the backup, then upward, when no acknowledgement comes in this time.
    #[serde(default)]
    pub ack_within: Option<At<Dur>>,
    #[serde(default)]
    pub template: Option<Id>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
    Maintenance,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    pub status: At<IncidentStatus>,
    pub message: At<String>,
}

// === communications ===

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Comms {
    pub channels: Vec<At<Channel>>,
    pub audiences: Vec<At<Audience>>,
    #[serde(default)]
    pub cadences: Vec<At<Cadence>>,
    #[serde(default)]
    pub messages: Vec<At<DatedMessage>>,
    pub templates: Vec<At<Template>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Console,
    Slack,
    Email,
    Webhook,
    Pagerduty,
    StatusPage,
    Sms,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub id: Id,
    pub kind: At<ChannelKind>,
    /// `#go-live-command`, an address, a URL: whatever the kind needs.
    pub target: At<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    pub id: Id,
    pub title: At<String>,
    #[serde(default)]
    pub recipients: Vec<String>,
    pub channels: Vec<Id>,
    #[serde(default)]
    pub format: Option<String>,
    /// Whether they hear of major milestones and escalations.
    #[serde(default)]
    pub milestones: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cadence {
    pub id: Id,
    pub audience: Id,
    pub every: At<Dur>,
    /// Phase ids during which it runs, or a window.
    #[serde(default)]
    pub during: Vec<Id>,
    #[serde(default)]
    pub window: Option<At<Window>>,
    /// Only between these local hours, e.g. `09:00-17:00` ("during business hours").
    #[serde(default)]
    pub hours: Option<At<String>>,
    pub template: Id,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatedMessage {
    pub id: Id,
    pub at: At<Offset>,
    pub audiences: Vec<Id>,
    pub template: Id,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub id: Id,
    #[serde(default)]
    pub subject: Option<At<String>>,
    /// minijinja text; variables come from the plan and the run (`plan.name`, `run.weight`…).
    pub body: At<String>,
}

// === after go-live ===

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Success {
    pub at: At<Offset>,
    pub criteria: Vec<At<Criterion>>,
}

/// One success criterion: a metric condition over the period since T0, or a sign-off.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub id: Id,
    pub title: At<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// Role that signs it off or owns it.
    pub owner: Id,
    #[serde(default)]
    pub metric: Option<At<Condition>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    pub id: Id,
    pub title: At<String>,
    pub due: At<Offset>,
    pub owner: Id,
}
