//! Alertmanager webhooks as trigger input: a pure parser for Alertmanager's webhook JSON
//! (version 4), a de-duplicator (Alertmanager resends every alert of a group with each
//! notification; only a change of an alert's status is news), a matcher that maps an
//! alert to a plan rule or manual trigger by a label (default `golive_rule`), and an axum
//! route the shell mounts under `/api/v1/alertmanager` that forwards events into a tokio
//! channel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The label that names the rule or trigger when the plan does not say.
pub const DEFAULT_RULE_LABEL: &str = "golive_rule";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// One alert out of a webhook notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub fingerprint: String,
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339, as Alertmanager wrote it.
    pub starts_at: String,
    pub ends_at: String,
    pub generator_url: String,
}

impl Alert {
    pub fn name(&self) -> Option<&str> {
        self.labels.get("alertname").map(String::as_str)
    }
}

/// The whole notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub receiver: String,
    pub status: AlertStatus,
    pub group_key: String,
    pub alerts: Vec<Alert>,
    /// Alerts Alertmanager left out because of its `max_alerts` setting.
    pub truncated_alerts: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("not an Alertmanager webhook: {0}")]
    Malformed(String),
    #[error("webhook version `{0}` is not supported; this receiver reads version 4")]
    Version(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireNotification {
    version: String,
    #[serde(default)]
    group_key: String,
    #[serde(default)]
    truncated_alerts: u64,
    status: AlertStatus,
    #[serde(default)]
    receiver: String,
    alerts: Vec<WireAlert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAlert {
    status: AlertStatus,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    ends_at: String,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
    #[serde(default)]
    fingerprint: String,
}

/// Parses a webhook body. An alert without a fingerprint gets one made of its labels,
/// as Alertmanager's own fingerprint is.
pub fn parse_webhook(body: &[u8]) -> Result<Notification, WebhookError> {
    let wire: WireNotification =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    if wire.version != "4" {
        return Err(WebhookError::Version(wire.version));
    }
    let alerts = wire
        .alerts
        .into_iter()
        .map(|alert| Alert {
            fingerprint: if alert.fingerprint.is_empty() {
                alert
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                alert.fingerprint
            },
            status: alert.status,
            labels: alert.labels,
            annotations: alert.annotations,
            starts_at: alert.starts_at,
            ends_at: alert.ends_at,
            generator_url: alert.generator_url,
        })
        .collect();
    Ok(Notification {
        receiver: wire.receiver,
        status: wire.status,
        group_key: wire.group_key,
        alerts,
        truncated_alerts: wire.truncated_alerts,
    })
}

/// What an alert means for the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AlertEvent {
    /// The alert for plan rule or manual trigger `id` started firing.
    Firing { id: String, alert: Alert },
    /// It stopped: whatever it held (a pause) may clear.
    Resolved { id: String, alert: Alert },
    /// An alert that names no rule or trigger of the plan: shown, never acted upon.
    Unmatched { alert: Alert, reason: String },
}

/// Remembers the last status seen per fingerprint; only a change passes.
#[derive(Debug, Default)]
pub struct Deduplicator {
    last: HashMap<String, AlertStatus>,
}

impl Deduplicator {
    /// Whether `alert` is news (a new fingerprint, or a status different from the last).
    pub fn admit(&mut self, alert: &Alert) -> bool {
        self.last.insert(alert.fingerprint.clone(), alert.status) != Some(alert.status)
    }
}

/// Maps alerts to plan rules and manual triggers by a label.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub rule_label: String,
    /// Rule and trigger ids of the plan.
    pub known: BTreeSet<String>,
}

impl Matcher {
    pub fn new(rule_label: Option<&str>, known: impl IntoIterator<Item = String>) -> Matcher {
        Matcher {
            rule_label: rule_label.unwrap_or(DEFAULT_RULE_LABEL).to_string(),
            known: known.into_iter().collect(),
        }
    }

    pub fn event(&self, alert: Alert) -> AlertEvent {
        let Some(id) = alert.labels.get(&self.rule_label).cloned() else {
            return AlertEvent::Unmatched {
                reason: format!(
                    "alert `{}` has no `{}` label naming a rule or trigger of the plan",
                    alert.name().unwrap_or("?"),
                    self.rule_label
                ),
                alert,
            };
        };
        if !self.known.contains(&id) {
            return AlertEvent::Unmatched {
                reason: format!(
                    "alert `{}` names `{id}` in `{}`, which is neither a rule nor a trigger of the plan",
                    alert.name().unwrap_or("?"),
                    self.rule_label
                ),
                alert,
            };
        }
        match alert.status {
            AlertStatus::Firing => AlertEvent::Firing { id, alert },
            AlertStatus::Resolved => AlertEvent::Resolved { id, alert },
        }
    }
}

/// Parses, de-duplicates and matches one webhook body: the events that are news, and the
/// count of duplicates dropped.
pub fn receive(
    body: &[u8],
    matcher: &Matcher,
    dedup: &mut Deduplicator,
) -> Result<(Vec<AlertEvent>, usize), WebhookError> {
    let notification = parse_webhook(body)?;
    let total = notification.alerts.len();
    let events: Vec<AlertEvent> = notification
        .alerts
        .into_iter()
        .filter(|alert| dedup.admit(alert))
        .map(|alert| matcher.event(alert))
        .collect();
    let duplicates = total - events.len();
    Ok((events, duplicates))
}

struct Receiver {
    matcher: Matcher,
    dedup: Mutex<Deduplicator>,
    events: tokio::sync::mpsc::Sender<AlertEvent>,
    bearer_token: Option<String>,
}

/// Answer to Alertmanager (it only looks at the status; people look at the body).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Receipt {
    pub accepted: usize,
    pub duplicates: usize,
    pub unmatched: usize,
}

/// The webhook endpoint as a router fragment: `POST /` takes a notification and forwards
/// its news into `events`. Mount it with `Router::nest("/api/v1/alertmanager", …)` and
/// point Alertmanager's `webhook_configs.url` at that path. With `bearer_token`, requests
/// must carry `Authorization: Bearer <token>` (Alertmanager's `http_config.authorization`).
pub fn webhook_router(
    matcher: Matcher,
    events: tokio::sync::mpsc::Sender<AlertEvent>,
    bearer_token: Option<String>,
) -> axum::Router {
    let receiver = Arc::new(Receiver {
        matcher,
        dedup: Mutex::new(Deduplicator::default()),
        events,
        bearer_token,
    });
    axum::Router::new()
        .route("/", axum::routing::post(take_webhook))
        .with_state(receiver)
}

async fn take_webhook(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(token) = &receiver.bearer_token {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response();
        }
    }
    let received = {
        // The lock only guards a map; a panic while holding it cannot leave it half-updated
        // in a way that matters more than a duplicate event.
        let mut dedup = receiver
            .dedup
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        receive(&body, &receiver.matcher, &mut dedup)
    };
    let (events, duplicates) = match received {
        Ok(received) => received,
        Err(error) => return (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response(),
    };
    let unmatched = events
        .iter()
        .filter(|event| matches!(event, AlertEvent::Unmatched { .. }))
        .count();
    let accepted = events.len();
    for event in events {
        if receiver.events.send(event).await.is_err() {
            // Alertmanager retries on 5xx, so nothing is lost while the run restarts.
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the run is not taking alerts now\n",
            )
                .into_response();
        }
    }
    axum::Json(Receipt {
        accepted,
        duplicates,
        unmatched,
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notification as Alertmanager 0.25 sends it.
    const FIRING: &str = r#"{
      "receiver": "golive",
      "status": "firing",
      "alerts": [
        {
          "status": "firing",
          "labels": {"alertname": "CanaryErrors", "golive_rule": "error-rate-critical", "severity": "critical"},
          "annotations": {"summary": "canary 5xx above 5%"},
          "startsAt": "2026-03-01T10:00:00.000Z",
          "endsAt": "0001-01-01T00:00:00Z",
          "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
          "fingerprint": "c5a3b1f0e2d4a6b8"
        },
        {
          "status": "firing",
          "labels": {"alertname": "DiskFull"},
          "annotations": {},
          "startsAt": "2026-03-01T10:00:00.000Z",
          "endsAt": "0001-01-01T00:00:00Z",
          "generatorURL": "",
          "fingerprint": "0000000000000001"
        }
      ],
      "groupLabels": {"alertname": "CanaryErrors"},
      "commonLabels": {},
      "commonAnnotations": {},
      "externalURL": "http://alertmanager:9093",
      "version": "4",
      "groupKey": "{}:{alertname=\"CanaryErrors\"}",
      "truncatedAlerts": 0
    }"#;

    fn matcher() -> Matcher {
        Matcher::new(
            None,
            [
                "error-rate-critical".to_string(),
                "security-incident".to_string(),
            ],
        )
    }

    #[test]
    fn parses_version_4() {
        let notification = parse_webhook(FIRING.as_bytes()).unwrap();
        assert_eq!(notification.status, AlertStatus::Firing);
        assert_eq!(notification.alerts.len(), 2);
        assert_eq!(notification.alerts[0].name(), Some("CanaryErrors"));
        assert_eq!(notification.alerts[0].fingerprint, "c5a3b1f0e2d4a6b8");
        let old = FIRING.replace(r#""version": "4""#, r#""version": "3""#);
        assert_eq!(
            parse_webhook(old.as_bytes()).unwrap_err(),
            WebhookError::Version("3".into())
        );
        assert!(matches!(
            parse_webhook(b"{}"),
            Err(WebhookError::Malformed(_))
        ));
    }

    #[test]
    fn firing_then_duplicates_then_resolved() {
        let mut dedup = Deduplicator::default();
        let (events, duplicates) = receive(FIRING.as_bytes(), &matcher(), &mut dedup).unwrap();
        assert_eq!(duplicates, 0);
        assert!(matches!(&events[0], AlertEvent::Firing { id, .. } if id == "error-rate-critical"));
        assert!(
            matches!(&events[1], AlertEvent::Unmatched { reason, .. } if reason.contains("no `golive_rule` label"))
        );
        // Alertmanager resends the group: nothing new.
        let (events, duplicates) = receive(FIRING.as_bytes(), &matcher(), &mut dedup).unwrap();
        assert_eq!((events.len(), duplicates), (0, 2));
        let resolved = FIRING.replace(r#""status": "firing""#, r#""status": "resolved""#);
        let (events, _) = receive(resolved.as_bytes(), &matcher(), &mut dedup).unwrap();
        assert!(
            matches!(&events[0], AlertEvent::Resolved { id, .. } if id == "error-rate-critical")
        );
        // Firing again after resolving is news again.
        let (events, _) = receive(FIRING.as_bytes(), &matcher(), &mut dedup).unwrap();
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn unknown_ids_and_other_labels() {
        let custom = Matcher::new(Some("rule"), ["x".to_string()]);
        let text = FIRING
            .replace("golive_rule", "rule")
            .replace("error-rate-critical", "x");
        let mut dedup = Deduplicator::default();
        let (events, _) = receive(text.as_bytes(), &custom, &mut dedup).unwrap();
        assert!(matches!(&events[0], AlertEvent::Firing { id, .. } if id == "x"));
        let mut dedup = Deduplicator::default();
        let (events, _) = receive(
            FIRING.replace("error-rate-critical", "nope").as_bytes(),
            &matcher(),
            &mut dedup,
        )
        .unwrap();
        assert!(
            matches!(&events[0], AlertEvent::Unmatched { reason, .. } if reason.contains("`nope`"))
        );
    }
}
