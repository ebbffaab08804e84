//! Alertmanager's webhook, mounted on the run's API at `/api/v1/alertmanager`: firing and
//! resolved alerts that name a plan rule or manual trigger become engine inputs.

use adapters::metrics::alertmanager::{self, AlertEvent, Matcher};
use engine::{AlertStatus, Input};
use plan::Plan;
use tokio::sync::mpsc;

use super::Msg;

/// The webhook route and the task that forwards its alerts to the run's loop.
pub fn routes(loop_tx: mpsc::UnboundedSender<Msg>, plan: &Plan) -> axum::Router {
    let rule_label = plan.metric_sources.iter().find_map(|s| {
        s.alertmanager
            .as_ref()
            .and_then(|a| a.rule_label.as_ref().map(|l| l.value.clone()))
    });
    let known = plan
        .rules
        .iter()
        .flat_map(|rules| rules.list.iter().map(|r| r.id.value.clone()))
        .chain(plan.triggers.iter().map(|t| t.id.value.clone()));
    let matcher = Matcher::new(rule_label.as_deref(), known);
    let (tx, mut rx) = mpsc::channel(256);
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            let (id, alert, status) = match event {
                AlertEvent::Firing { id, alert } => (id, alert, AlertStatus::Firing),
                AlertEvent::Resolved { id, alert } => (id, alert, AlertStatus::Resolved),
                AlertEvent::Unmatched { alert, reason } => {
                    eprintln!("golive: alert {} ignored: {reason}", alert.fingerprint);
                    continue;
                }
            };
            let input = Input::Alert {
                name: id,
                labels: alert.labels,
                status,
                fingerprint: alert.fingerprint,
            };
            if loop_tx.send(Msg::Input(input)).is_err() {
                break;
            }
        }
    });
    axum::Router::new().nest(
        "/api/v1/alertmanager",
        alertmanager::webhook_router(matcher, tx, None),
    )
}
