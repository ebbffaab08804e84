//! Validation: what makes a plan unusable beyond its syntax. Ids are unique per kind, every
//! reference resolves, things that come in kinds have exactly one kind, units agree, ramp
//! weights climb to 100, windows start before they end.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::diagnostic::{Code, Sink};
use crate::model::*;
use crate::span::{At, Loc};
use crate::suggest::unknown_help;
use crate::units::{Condition, Unit};

/// Ids of one kind, in the order they were written, with where each was written.
#[derive(Default)]
pub struct Ids<'p> {
    pub order: Vec<&'p str>,
    pub at: HashMap<&'p str, Loc>,
}

impl<'p> Ids<'p> {
    pub fn contains(&self, id: &str) -> bool {
        self.at.contains_key(id)
    }
    pub fn len(&self) -> usize {
        self.order.len()
    }
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// Every id in the plan by kind, plus the facts reference checks need.
#[derive(Default)]
pub struct Index<'p> {
    pub people: Ids<'p>,
    pub roles: Ids<'p>,
    pub environments: Ids<'p>,
    pub services: Ids<'p>,
    pub routers: Ids<'p>,
    pub metric_sources: Ids<'p>,
    pub slis: Ids<'p>,
    pub checklists: Ids<'p>,
    pub items: Ids<'p>,
    pub phases: Ids<'p>,
    pub steps: Ids<'p>,
    pub rules: Ids<'p>,
    pub triggers: Ids<'p>,
    pub playbooks: Ids<'p>,
    pub channels: Ids<'p>,
    pub audiences: Ids<'p>,
    pub cadences: Ids<'p>,
    pub messages: Ids<'p>,
    pub templates: Ids<'p>,
    pub criteria: Ids<'p>,
    pub followups: Ids<'p>,
    pub links: Ids<'p>,
    /// SLI id → its unit.
    pub sli_units: HashMap<&'p str, Unit>,
    /// Version group names that routers declare; empty when no router declares any.
    pub version_groups: BTreeSet<&'p str>,
}

/// A place to point at: the value's own location, or the enclosing thing's when the value
/// lost its location (inside YAML merges).
pub fn place(loc: Loc, fallback: Loc) -> Loc {
    if loc.is_known() { loc } else { fallback }
}

impl<'p> Index<'p> {
    /// Builds the index, reporting duplicate ids.
    pub fn build(plan: &'p Plan, sink: &mut Sink<'_>) -> Index<'p> {
        let mut ix = Index::default();
        let add =
            |ids: &mut Ids<'p>, kind: &str, id: &'p Id, fallback: Loc, sink: &mut Sink<'_>| {
                let loc = place(id.loc, fallback);
                if let Some(&first) = ids.at.get(id.as_str()) {
                    sink.report(
                        Code::DuplicateId,
                        loc,
                        format!("{kind} id `{}` is used twice", id.value),
                        "give each one its own id",
                    )
                    .note(first, "first used here");
                } else {
                    ids.at.insert(id.as_str(), loc);
                    ids.order.push(id.as_str());
                }
            };
        for link in &plan.meta.links {
            add(&mut ix.links, "link", &link.id, link.loc, sink);
        }
        for person in &plan.people {
            add(&mut ix.people, "person", &person.id, person.loc, sink);
        }
        for role in &plan.roles {
            add(&mut ix.roles, "role", &role.id, role.loc, sink);
        }
        for env in &plan.environments {
            add(&mut ix.environments, "environment", &env.id, env.loc, sink);
        }
        for service in &plan.services {
            add(&mut ix.services, "service", &service.id, service.loc, sink);
        }
        for router in &plan.routers {
            add(&mut ix.routers, "router", &router.id, router.loc, sink);
            if let Some(b) = &router.builtin {
                ix.version_groups
                    .extend(b.groups.iter().map(|g| g.name.as_str()));
            }
            if let Some(n) = &router.nginx {
                ix.version_groups
                    .extend(n.groups.iter().map(|g| g.name.as_str()));
            }
            if let Some(h) = &router.haproxy {
                ix.version_groups
                    .extend(h.servers.keys().map(String::as_str));
            }
        }
        for source in &plan.metric_sources {
            add(
                &mut ix.metric_sources,
                "metric source",
                &source.id,
                source.loc,
                sink,
            );
        }
        for sli in &plan.slis {
            add(&mut ix.slis, "SLI", &sli.id, sli.loc, sink);
            ix.sli_units
                .entry(sli.id.as_str())
                .or_insert(sli.unit.value);
        }
        for checklist in &plan.checklists {
            add(
                &mut ix.checklists,
                "checklist",
                &checklist.id,
                checklist.loc,
                sink,
            );
            for item in &checklist.items {
                add(&mut ix.items, "checklist item", &item.id, item.loc, sink);
            }
        }
        for phase in &plan.timeline {
            add(&mut ix.phases, "phase", &phase.id, phase.loc, sink);
            for step in &phase.steps {
                add(&mut ix.steps, "step", &step.id, step.loc, sink);
            }
        }
        if let Some(ramp) = &plan.ramp {
            for step in &ramp.rollback.steps {
                add(&mut ix.steps, "step", &step.id, step.loc, sink);
            }
        }
        if let Some(rules) = &plan.rules {
            for rule in &rules.list {
                add(&mut ix.rules, "rule", &rule.id, rule.loc, sink);
            }
        }
        for trigger in &plan.triggers {
            add(&mut ix.triggers, "trigger", &trigger.id, trigger.loc, sink);
        }
        for playbook in &plan.playbooks {
            add(
                &mut ix.playbooks,
                "playbook",
                &playbook.id,
                playbook.loc,
                sink,
            );
            let mut actions = Ids::default();
            for action in &playbook.actions {
                add(
                    &mut actions,
                    "playbook action",
                    &action.id,
                    action.loc,
                    sink,
                );
            }
        }
        if let Some(comms) = &plan.comms {
            for channel in &comms.channels {
                add(&mut ix.channels, "channel", &channel.id, channel.loc, sink);
            }
            for audience in &comms.audiences {
                add(
                    &mut ix.audiences,
                    "audience",
                    &audience.id,
                    audience.loc,
                    sink,
                );
            }
            for cadence in &comms.cadences {
                add(&mut ix.cadences, "cadence", &cadence.id, cadence.loc, sink);
            }
            for message in &comms.messages {
                add(&mut ix.messages, "message", &message.id, message.loc, sink);
            }
            for template in &comms.templates {
                add(
                    &mut ix.templates,
                    "template",
                    &template.id,
                    template.loc,
                    sink,
                );
            }
        }
        if let Some(success) = &plan.success {
            for criterion in &success.criteria {
                add(
                    &mut ix.criteria,
                    "success criterion",
                    &criterion.id,
                    criterion.loc,
                    sink,
                );
            }
        }
        for followup in &plan.followups {
            add(
                &mut ix.followups,
                "follow-up",
                &followup.id,
                followup.loc,
                sink,
            );
        }
        ix
    }
}

/// Runs every validation check, reporting into `sink`.
pub fn check(plan: &Plan, sink: &mut Sink<'_>) {
    let ix = Index::build(plan, sink);
    let mut v = Validator { ix: &ix, sink };
    v.plan(plan);
}

struct Validator<'a, 'p, 's> {
    ix: &'a Index<'p>,
    sink: &'a mut Sink<'s>,
}

#[derive(Clone, Copy)]
enum Kind {
    Person,
    Role,
    Sli,
    Audience,
    Template,
    Channel,
    Checklist,
    Playbook,
    Phase,
    Router,
    MetricSource,
}

impl Kind {
    fn describe(self) -> (Code, &'static str, &'static str) {
        match self {
            Kind::Person => (Code::UnknownPerson, "person", "people:"),
            Kind::Role => (Code::UnknownRole, "role", "roles:"),
            Kind::Sli => (Code::UnknownSli, "SLI", "slis:"),
            Kind::Audience => (Code::UnknownAudience, "audience", "comms.audiences:"),
            Kind::Template => (Code::UnknownTemplate, "template", "comms.templates:"),
            Kind::Channel => (Code::UnknownChannel, "channel", "comms.channels:"),
            Kind::Checklist => (Code::UnknownChecklist, "checklist", "checklists:"),
            Kind::Playbook => (Code::UnknownPlaybook, "playbook", "playbooks:"),
            Kind::Phase => (Code::UnknownPhase, "phase", "timeline:"),
            Kind::Router => (Code::UnknownRouter, "router", "routers:"),
            Kind::MetricSource => (
                Code::UnknownMetricSource,
                "metric source",
                "metric_sources:",
            ),
        }
    }
}

impl Validator<'_, '_, '_> {
    fn ids(&self, kind: Kind) -> &Ids<'_> {
        match kind {
            Kind::Person => &self.ix.people,
            Kind::Role => &self.ix.roles,
            Kind::Sli => &self.ix.slis,
            Kind::Audience => &self.ix.audiences,
            Kind::Template => &self.ix.templates,
            Kind::Channel => &self.ix.channels,
            Kind::Checklist => &self.ix.checklists,
            Kind::Playbook => &self.ix.playbooks,
            Kind::Phase => &self.ix.phases,
            Kind::Router => &self.ix.routers,
            Kind::MetricSource => &self.ix.metric_sources,
        }
    }

    /// Reports `id` unless a thing of `kind` has it.
    fn refer(&mut self, kind: Kind, id: &Id, fallback: Loc) {
        self.refer_str(kind, id.as_str(), place(id.loc, fallback));
    }

    fn refer_str(&mut self, kind: Kind, id: &str, loc: Loc) {
        let ids = self.ids(kind);
        if ids.contains(id) {
            return;
        }
        let (code, name, section) = kind.describe();
        let help = unknown_help(id, name, section, ids.order.iter().copied());
        self.sink
            .report(code, loc, format!("unknown {name} `{id}`"), help)
            .width(id.chars().count());
    }

    fn plan(&mut self, plan: &Plan) {
        self.refer(Kind::Role, &plan.meta.owner, Loc::UNKNOWN);
        if let Some(window) = &plan.window {
            self.window(window, "the maintenance window");
        }
        for role in &plan.roles {
            self.refer(Kind::Person, &role.primary, role.loc);
            if let Some(backup) = &role.backup {
                self.refer(Kind::Person, backup, role.loc);
            }
            if let Some(up) = &role.escalates_to {
                self.refer(Kind::Role, up, role.loc);
            }
        }
        for env in &plan.environments {
            self.environment(env);
        }
        for service in &plan.services {
            if let Some(owner) = &service.owner {
                self.refer(Kind::Role, owner, service.loc);
            }
        }
        for router in &plan.routers {
            self.router(router);
        }
        for source in &plan.metric_sources {
            let kinds = [
                ("builtin", source.builtin.as_ref().map(|k| k.loc)),
                ("prometheus", source.prometheus.as_ref().map(|k| k.loc)),
                ("command", source.command.as_ref().map(|k| k.loc)),
                ("http", source.http.as_ref().map(|k| k.loc)),
                ("alertmanager", source.alertmanager.as_ref().map(|k| k.loc)),
            ];
            self.one_kind("metric source", &source.id, source.loc, &kinds);
        }
        for sli in &plan.slis {
            if sli.queries.is_empty() {
                self.sink.report(
                    Code::EmptyList,
                    place(sli.id.loc, sli.loc),
                    format!("SLI `{}` has no queries", sli.id.value),
                    "add `queries:` with one query per metric source id",
                );
            }
            for (source, query) in &sli.queries {
                if !self.ix.metric_sources.contains(source) {
                    let loc = self
                        .sink
                        .source
                        .find_after(sli.loc, &format!("{source}:"), 200)
                        .unwrap_or(place(query.loc, sli.loc));
                    let (code, name, section) = Kind::MetricSource.describe();
                    let help = unknown_help(
                        source,
                        name,
                        section,
                        self.ix.metric_sources.order.iter().copied(),
                    );
                    self.sink.report(
                        code,
                        loc,
                        format!(
                            "SLI `{}` has a query for unknown metric source `{source}`",
                            sli.id.value
                        ),
                        help,
                    );
                }
            }
        }
        for checklist in &plan.checklists {
            if checklist.items.is_empty() {
                self.sink.report(
                    Code::EmptyList,
                    place(checklist.id.loc, checklist.loc),
                    format!("checklist `{}` has no items", checklist.id.value),
                    "add items or remove the checklist",
                );
            }
            for item in &checklist.items {
                self.refer(Kind::Role, &item.owner, item.loc);
                self.verify(&item.verify, item.loc);
            }
        }
        for phase in &plan.timeline {
            self.window(&phase.window, &format!("phase `{}`", phase.id.value));
            for step in &phase.steps {
                self.step(step);
            }
        }
        if let Some(ramp) = &plan.ramp {
            self.ramp(ramp);
        }
        if let Some(rules) = &plan.rules {
            if rules.evaluation_interval.millis() < 1000 {
                self.sink.report(
                    Code::InvalidValue,
                    place(rules.evaluation_interval.loc, rules.loc),
                    format!(
                        "evaluation interval {} is below one second",
                        rules.evaluation_interval.value
                    ),
                    "use `1s` or more",
                );
            }
            for rule in &rules.list {
                self.condition(&rule.when, rule.loc);
                if rule.actions.is_empty() {
                    self.sink.report(
                        Code::EmptyList,
                        place(rule.id.loc, rule.loc),
                        format!("rule `{}` has no actions", rule.id.value),
                        "add actions such as `rollback`, `pause`, `page: <role>`",
                    );
                }
                for action in &rule.actions {
                    self.action(action, rule.loc);
                }
                if let Some(version) = &rule.version {
                    self.version_group(version, rule.loc);
                }
            }
        }
        let holders = |authority: Authority| {
            plan.roles
                .iter()
                .filter(|r| r.authorities.iter().any(|a| a.value == authority))
                .count()
        };
        for phase in &plan.timeline {
            for step in &phase.steps {
                let Some(gate) = &step.gate else { continue };
                let authority = gate
                    .authority
                    .as_ref()
                    .map(|a| a.value)
                    .unwrap_or(Authority::GoNoGo);
                if holders(authority) == 0 {
                    let name = serde_json::to_value(authority)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    self.sink.report(
                        Code::AuthorityUnheld,
                        place(
                            gate.authority.as_ref().map_or(Loc::UNKNOWN, |a| a.loc),
                            place(step.id.loc, step.loc),
                        ),
                        format!(
                            "nobody can decide gate `{}`: no role has the `{name}` authority",
                            step.id.value
                        ),
                        format!("add `{name}` to the `authorities` of the role that decides it"),
                    );
                }
            }
        }
        for trigger in &plan.triggers {
            if trigger.who.is_empty() && holders(Authority::StopTheLine) == 0 {
                self.sink.report(
                    Code::AuthorityUnheld,
                    place(trigger.id.loc, trigger.loc),
                    format!("nobody can pull trigger `{}`: it names no `who` and no role has `stop_the_line`", trigger.id.value),
                    "list the roles that may pull it under `who:`, or give a role `stop_the_line`",
                );
            }
            for action in &trigger.actions {
                self.action(action, trigger.loc);
            }
            for who in &trigger.who {
                self.refer(Kind::Role, who, trigger.loc);
            }
        }
        for playbook in &plan.playbooks {
            for action in &playbook.actions {
                self.playbook_action(action);
            }
        }
        if let Some(comms) = &plan.comms {
            self.comms(comms);
        }
        if let Some(success) = &plan.success {
            for criterion in &success.criteria {
                self.refer(Kind::Role, &criterion.owner, criterion.loc);
                if let Some(metric) = &criterion.metric {
                    self.condition(metric, criterion.loc);
                }
            }
        }
        for followup in &plan.followups {
            self.refer(Kind::Role, &followup.owner, followup.loc);
        }
    }

    fn window(&mut self, window: &At<Window>, what: &str) {
        if window.start.approx_millis() >= window.end.approx_millis() {
            self.sink.report(
                Code::WindowOrder,
                window.loc,
                format!(
                    "{what} starts at {} but ends at {}",
                    window.start, window.end
                ),
                "make `start` earlier than `end`",
            );
        }
    }

    fn environment(&mut self, env: &Environment) {
        let fallback = env.id.loc;
        if let Some(router) = &env.router {
            self.refer(Kind::Router, router, fallback);
        }
        if let Some(source) = &env.metric_source {
            self.refer(Kind::MetricSource, source, fallback);
        }
        for id in &env.rehearse_only {
            if !self.ix.steps.contains(id) && !self.ix.items.contains(id) {
                let known = self
                    .ix
                    .steps
                    .order
                    .iter()
                    .chain(self.ix.items.order.iter())
                    .copied();
                let help = unknown_help(
                    id,
                    "step or checklist item",
                    "timeline:` or `checklists:",
                    known,
                );
                self.sink.report(
                    Code::UnknownStep,
                    place(id.loc, fallback),
                    format!(
                        "`rehearse_only` names `{}`, which is no step or checklist item",
                        id.value
                    ),
                    help,
                );
            }
        }
    }

    fn router(&mut self, router: &At<Router>) {
        let kinds = [
            ("builtin", router.builtin.as_ref().map(|k| k.loc)),
            ("haproxy", router.haproxy.as_ref().map(|k| k.loc)),
            ("nginx", router.nginx.as_ref().map(|k| k.loc)),
            ("command", router.command.as_ref().map(|k| k.loc)),
        ];
        self.one_kind("router", &router.id, router.loc, &kinds);
        let groups: Vec<&At<BackendGroup>> = router
            .builtin
            .iter()
            .flat_map(|b| b.groups.iter())
            .chain(router.nginx.iter().flat_map(|n| n.groups.iter()))
            .collect();
        let mut seen: BTreeMap<&str, Loc> = BTreeMap::new();
        for group in groups {
            let loc = place(group.name.loc, group.loc);
            if let Some(&first) = seen.get(group.name.as_str()) {
                self.sink
                    .report(
                        Code::DuplicateId,
                        loc,
                        format!(
                            "router `{}` has two groups named `{}`",
                            router.id.value, group.name.value
                        ),
                        "give each version group its own name",
                    )
                    .note(first, "first used here");
            } else {
                seen.insert(group.name.as_str(), loc);
            }
            if group.backends.is_empty() {
                self.sink.report(
                    Code::EmptyList,
                    loc,
                    format!("group `{}` has no backends", group.name.value),
                    "list at least one `host:port` under `backends:`",
                );
            }
        }
    }

    /// Exactly one of the kind keys is set.
    fn one_kind(&mut self, what: &str, id: &Id, loc: Loc, kinds: &[(&str, Option<Loc>)]) {
        let set: Vec<(&str, Loc)> = kinds
            .iter()
            .filter_map(|(k, l)| l.map(|l| (*k, l)))
            .collect();
        let names: Vec<String> = kinds.iter().map(|(k, _)| format!("`{k}`")).collect();
        let at = place(id.loc, loc);
        match set.len() {
            1 => {}
            0 => {
                self.sink.report(
                    Code::MissingKind,
                    at,
                    format!("{what} `{}` has no kind", id.value),
                    format!("set exactly one of {}", names.join(", ")),
                );
            }
            _ => {
                let written: Vec<String> = set.iter().map(|(k, _)| format!("`{k}`")).collect();
                let second = place(set[1].1, at);
                let key_loc = self
                    .sink
                    .source
                    .find_after(at, &format!("{}:", set[1].0), 100)
                    .unwrap_or(second);
                self.sink.report(
                    Code::SeveralKinds,
                    key_loc,
                    format!(
                        "{what} `{}` has several kinds: {}",
                        id.value,
                        written.join(" and ")
                    ),
                    format!(
                        "keep exactly one of {}; split the rest into separate entries",
                        names.join(", ")
                    ),
                );
            }
        }
    }

    fn verify(&mut self, verify: &At<Verify>, fallback: Loc) {
        if let Verify::Metric(metric) = &verify.value {
            self.condition(&metric.when, place(verify.loc, fallback));
            if let Some(version) = &metric.version {
                self.version_group(version, place(verify.loc, fallback));
            }
        }
    }

    fn condition(&mut self, condition: &At<Condition>, fallback: Loc) {
        let loc = place(condition.loc, fallback);
        let sli = condition.sli.as_str();
        let Some(&unit) = self.ix.sli_units.get(sli) else {
            self.refer_str(Kind::Sli, sli, loc);
            return;
        };
        let threshold = condition.threshold;
        if threshold.unit != unit {
            let help = match unit {
                Unit::Percent => format!(
                    "write the threshold in percent, e.g. `{}%`",
                    threshold.value
                ),
                Unit::Ms => format!(
                    "write the threshold as a time, e.g. `{}ms`",
                    threshold.value
                ),
                Unit::Number => format!(
                    "write the threshold as a plain number, e.g. `{}`",
                    threshold.value
                ),
            };
            let unit_name = |u: Unit| match u {
                Unit::Percent => "percent",
                Unit::Ms => "milliseconds",
                Unit::Number => "a plain number",
            };
            let threshold_loc = self
                .sink
                .source
                .find_after(loc, condition.comparison.symbol(), 0)
                .map(|l| {
                    Loc::new(
                        l.line,
                        l.column + condition.comparison.symbol().len() as u32 + 1,
                    )
                })
                .unwrap_or(loc);
            self.sink.report(
                Code::UnitMismatch,
                threshold_loc,
                format!(
                    "`{sli}` is measured in {} but the threshold is {}",
                    unit_name(unit),
                    unit_name(threshold.unit)
                ),
                help,
            );
        }
    }

    fn version_group(&mut self, name: &At<String>, fallback: Loc) {
        if self.ix.version_groups.is_empty() || self.ix.version_groups.contains(name.as_str()) {
            return;
        }
        let help = unknown_help(
            name,
            "version group",
            "routers[].groups",
            self.ix.version_groups.iter().copied(),
        );
        self.sink.report(
            Code::UnknownVersionGroup,
            place(name.loc, fallback),
            format!("no router has a version group `{}`", name.value),
            help,
        );
    }

    fn step(&mut self, step: &At<Step>) {
        let fallback = step.loc;
        if let Some(owner) = &step.owner {
            self.refer(Kind::Role, owner, fallback);
        }
        let kinds = [
            ("run", step.run.as_ref().map(|k| k.loc)),
            ("probe", step.probe.as_ref().map(|k| k.loc)),
            ("roll_call", step.roll_call.as_ref().map(|_| step.loc)),
            ("freeze", step.freeze.as_ref().map(|k| k.loc)),
            ("gate", step.gate.as_ref().map(|k| k.loc)),
            ("notify", step.notify.as_ref().map(|k| k.loc)),
            ("traffic", step.traffic.as_ref().map(|k| k.loc)),
            ("checklist", step.checklist.as_ref().map(|k| k.loc)),
        ];
        self.one_kind("step", &step.id, step.loc, &kinds);
        if let Some(probe) = &step.probe {
            self.verify(probe, fallback);
        }
        if let Some(roles) = &step.roll_call {
            if roles.is_empty() {
                self.sink.report(
                    Code::EmptyList,
                    place(step.id.loc, fallback),
                    format!("roll call `{}` names no roles", step.id.value),
                    "list the roles that must answer ready",
                );
            }
            for role in roles {
                self.refer(Kind::Role, role, fallback);
            }
        }
        if let Some(gate) = &step.gate {
            for checklist in &gate.requires {
                self.refer(Kind::Checklist, checklist, gate.loc);
            }
        }
        if let Some(notify) = &step.notify {
            self.notify(notify, notify.loc);
        }
        if let Some(weight) = &step.traffic
            && weight.value > 100
        {
            self.sink.report(
                Code::InvalidValue,
                place(weight.loc, fallback),
                format!("traffic weight {} is above 100 %", weight.value),
                "write a percentage from 0 to 100",
            );
        }
        if let Some(checklist) = &step.checklist {
            self.refer(Kind::Checklist, checklist, fallback);
        }
    }

    fn notify(&mut self, notify: &Notify, fallback: Loc) {
        if notify.audiences.is_empty() {
            self.sink.report(
                Code::EmptyList,
                fallback,
                "a notification with no audiences reaches nobody",
                "list audience ids under `audiences:`",
            );
        }
        for audience in &notify.audiences {
            self.refer(Kind::Audience, audience, fallback);
        }
        self.refer(Kind::Template, &notify.template, fallback);
    }

    fn action(&mut self, action: &At<Action>, fallback: Loc) {
        let loc = place(action.loc, fallback);
        match &action.value {
            Action::Rollback | Action::Pause => {}
            Action::Page(role) => self.refer(Kind::Role, role, loc),
            Action::Notify(notify) => self.notify(notify, loc),
            Action::Playbook(playbook) => self.refer(Kind::Playbook, playbook, loc),
        }
    }

    fn ramp(&mut self, ramp: &At<Ramp>) {
        for (name, group) in [("stable", &ramp.stable), ("canary", &ramp.canary)] {
            match group {
                Some(group) => self.version_group(group, ramp.loc),
                None => {
                    if !self.ix.version_groups.is_empty() && !self.ix.version_groups.contains(name)
                    {
                        let groups: Vec<&str> = self.ix.version_groups.iter().copied().collect();
                        self.sink.report(
                            Code::UnknownVersionGroup,
                            ramp.loc,
                            format!("the ramp's {name} group defaults to `{name}`, which no router defines"),
                            format!("set `ramp.{name}:` to one of: {}", groups.join(", ")),
                        );
                    }
                }
            }
        }
        if ramp.stages.is_empty() {
            self.sink.report(
                Code::EmptyList,
                ramp.loc,
                "the ramp has no stages",
                "add stages like `- weight: 5` … `- weight: 100`",
            );
        }
        let mut previous: Option<u8> = None;
        for stage in &ramp.stages {
            let loc = place(stage.weight.loc, stage.loc);
            let weight = stage.weight.value;
            if weight == 0 || weight > 100 {
                self.sink.report(
                    Code::RampWeights,
                    loc,
                    format!("stage weight {weight} is outside 1..=100"),
                    "a stage's weight is the percent of traffic on the new version, from 1 to 100",
                );
            } else if let Some(p) = previous.filter(|&p| weight <= p) {
                self.sink.report(
                    Code::RampWeights,
                    loc,
                    format!("stage weight {weight} does not rise above the previous stage's {p}"),
                    "order stages by strictly increasing weight",
                );
            }
            previous = Some(weight);
            for gate in &stage.gates {
                let kinds = [
                    ("metric", gate.metric.as_ref().map(|k| k.loc)),
                    ("checklist", gate.checklist.as_ref().map(|k| k.loc)),
                ];
                self.one_kind(
                    "stage gate",
                    &At::new(format!("{weight}%"), gate.loc),
                    gate.loc,
                    &kinds,
                );
                if let Some(metric) = &gate.metric {
                    self.condition(metric, gate.loc);
                }
                if let Some(checklist) = &gate.checklist {
                    self.refer(Kind::Checklist, checklist, gate.loc);
                }
            }
            if let Some(role) = &stage.approval {
                self.refer(Kind::Role, role, stage.loc);
            }
        }
        if let Some(last) = ramp.stages.last()
            && last.weight.value < 100
        {
            self.sink.report(
                Code::RampWeights,
                place(last.weight.loc, last.loc),
                format!(
                    "the last stage is {}%, so the ramp never reaches all traffic",
                    last.weight.value
                ),
                "end the ramp with a stage of weight 100",
            );
        }
        for step in &ramp.rollback.steps {
            self.step(step);
        }
        if let Some(playbook) = &ramp.rollback.playbook {
            self.refer(Kind::Playbook, playbook, ramp.rollback.loc);
        }
    }

    fn playbook_action(&mut self, action: &At<PlaybookAction>) {
        let fallback = action.loc;
        let kinds = [
            ("notify", action.notify.as_ref().map(|k| k.loc)),
            ("page", action.page.as_ref().map(|k| k.loc)),
            ("task", action.task.as_ref().map(|k| place(k.loc, fallback))),
            ("status", action.status.as_ref().map(|k| k.loc)),
            ("run", action.run.as_ref().map(|k| k.loc)),
        ];
        self.one_kind("playbook action", &action.id, action.loc, &kinds);
        if let Some(notify) = &action.notify {
            self.notify(notify, notify.loc);
        }
        if let Some(page) = &action.page {
            self.refer(Kind::Role, &page.role, page.loc);
            if let Some(template) = &page.template {
                self.refer(Kind::Template, template, page.loc);
            }
        }
        if let Some(role) = &action.task {
            self.refer(Kind::Role, role, fallback);
        }
    }

    fn comms(&mut self, comms: &Comms) {
        for audience in &comms.audiences {
            if audience.channels.is_empty() {
                self.sink.report(
                    Code::EmptyList,
                    place(audience.id.loc, audience.loc),
                    format!("audience `{}` has no channels", audience.id.value),
                    "list channel ids under `channels:`",
                );
            }
            for channel in &audience.channels {
                self.refer(Kind::Channel, channel, audience.loc);
            }
        }
        for cadence in &comms.cadences {
            self.refer(Kind::Audience, &cadence.audience, cadence.loc);
            for phase in &cadence.during {
                self.refer(Kind::Phase, phase, cadence.loc);
            }
            if let Some(window) = &cadence.window {
                self.window(window, &format!("cadence `{}`", cadence.id.value));
            }
            self.refer(Kind::Template, &cadence.template, cadence.loc);
            if cadence.every.millis() == 0 {
                self.sink.report(
                    Code::InvalidValue,
                    place(cadence.every.loc, cadence.loc),
                    "a cadence of every 0s never ends",
                    "give a positive interval such as `15m`",
                );
            }
            if let Some(hours) = &cadence.hours
                && crate::schedule::Hours::parse(hours).is_none()
            {
                self.sink.report(
                    Code::InvalidValue,
                    place(hours.loc, cadence.loc),
                    format!("`{}` is not a range of local hours", hours.value),
                    "write local hours like `09:00-17:00` or `Mon-Fri 09:00-17:00`",
                );
            }
        }
        for message in &comms.messages {
            for audience in &message.audiences {
                self.refer(Kind::Audience, audience, message.loc);
            }
            self.refer(Kind::Template, &message.template, message.loc);
        }
    }
}
