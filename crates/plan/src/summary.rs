//! What a plan holds, counted: the numbers `golive validate --json` reports.

use serde::Serialize;

use crate::model::Plan;

/// Counts of everything a plan holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub checklists: usize,
    pub checklist_items: usize,
    pub phases: usize,
    pub timeline_steps: usize,
    pub ramp_stages: usize,
    pub rollback_steps: usize,
    pub rules: usize,
    pub manual_triggers: usize,
    pub playbooks: usize,
    pub playbook_actions: usize,
    pub roles: usize,
    pub people: usize,
    pub environments: usize,
    pub services: usize,
    pub routers: usize,
    pub metric_sources: usize,
    pub slis: usize,
    pub channels: usize,
    pub audiences: usize,
    pub dated_messages: usize,
    pub cadences: usize,
    pub templates: usize,
    pub success_criteria: usize,
    pub followup_tasks: usize,
    pub links: usize,
}

impl Summary {
    pub fn of(plan: &Plan) -> Summary {
        let comms = plan.comms.as_ref();
        Summary {
            checklists: plan.checklists.len(),
            checklist_items: plan.checklists.iter().map(|c| c.items.len()).sum(),
            phases: plan.timeline.len(),
            timeline_steps: plan.timeline.iter().map(|p| p.steps.len()).sum(),
            ramp_stages: plan.ramp.as_ref().map_or(0, |r| r.stages.len()),
            rollback_steps: plan.ramp.as_ref().map_or(0, |r| r.rollback.steps.len()),
            rules: plan.rules.as_ref().map_or(0, |r| r.list.len()),
            manual_triggers: plan.triggers.len(),
            playbooks: plan.playbooks.len(),
            playbook_actions: plan.playbooks.iter().map(|p| p.actions.len()).sum(),
            roles: plan.roles.len(),
            people: plan.people.len(),
            environments: plan.environments.len(),
            services: plan.services.len(),
            routers: plan.routers.len(),
            metric_sources: plan.metric_sources.len(),
            slis: plan.slis.len(),
            channels: comms.map_or(0, |c| c.channels.len()),
            audiences: comms.map_or(0, |c| c.audiences.len()),
            dated_messages: comms.map_or(0, |c| c.messages.len()),
            cadences: comms.map_or(0, |c| c.cadences.len()),
            templates: comms.map_or(0, |c| c.templates.len()),
            success_criteria: plan.success.as_ref().map_or(0, |s| s.criteria.len()),
            followup_tasks: plan.followups.len(),
            links: plan.meta.links.len(),
        }
    }

    /// One paragraph for people: "The plan holds 85 checklist items in 5 checklists, …".
    pub fn sentence(&self) -> String {
        let parts = [
            (self.checklist_items, "checklist item", "checklist items"),
            (self.timeline_steps, "timeline step", "timeline steps"),
            (self.ramp_stages, "ramp stage", "ramp stages"),
            (self.rules, "rule", "rules"),
            (self.manual_triggers, "manual trigger", "manual triggers"),
            (self.playbook_actions, "playbook action", "playbook actions"),
            (self.roles, "role", "roles"),
            (self.people, "person", "people"),
            (self.audiences, "audience", "audiences"),
            (self.dated_messages, "dated message", "dated messages"),
            (self.cadences, "cadence", "cadences"),
            (self.templates, "template", "templates"),
            (
                self.success_criteria,
                "success criterion",
                "success criteria",
            ),
            (self.followup_tasks, "follow-up task", "follow-up tasks"),
        ];
        let words: Vec<String> = parts
            .iter()
            .map(|&(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
            .collect();
        format!("The plan holds {}.", words.join(", "))
    }
}
