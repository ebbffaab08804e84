//! Alertmanager with one route to one webhook receiver, short group timings, and
//! clustering turned off.

use std::net::SocketAddr;
use std::time::Duration;

use crate::process::{self, Daemon, free_addr};
use crate::{Error, http};

#[derive(Debug, Clone)]
pub struct AlertmanagerSpec {
    pub webhook_url: String,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    /// Sent as `Authorization: Bearer <token>` when set.
    pub bearer_token: Option<String>,
}

impl AlertmanagerSpec {
    pub fn new(webhook_url: &str) -> AlertmanagerSpec {
        AlertmanagerSpec {
            webhook_url: webhook_url.to_string(),
            group_wait: Duration::from_millis(100),
            group_interval: Duration::from_secs(1),
            repeat_interval: Duration::from_secs(3600),
            bearer_token: None,
        }
    }
}

/// A running Alertmanager; stopped on drop.
pub struct Alertmanager {
    pub addr: SocketAddr,
    daemon: Daemon,
    _dir: tempfile::TempDir,
}

fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

impl Alertmanager {
    pub async fn start(spec: &AlertmanagerSpec) -> Result<Alertmanager, Error> {
        let program = process::program(
            "alertmanager",
            &["prometheus-alertmanager"],
            "prometheus-alertmanager",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("alertmanager-")
            .tempdir()
            .map_err(|e| Error::io("create a temporary directory", e))?;
        let addr = free_addr();
        let authorization = match &spec.bearer_token {
            Some(token) => format!(
                "        http_config:\n          authorization:\n            type: Bearer\n            credentials: '{token}'\n"
            ),
            None => String::new(),
        };
        let config = format!(
            "route:
  receiver: golive
  group_by: ['alertname']
  group_wait: {wait}
  group_interval: {interval}
  repeat_interval: {repeat}
receivers:
  - name: golive
    webhook_configs:
      - url: '{url}'
        send_resolved: true
{authorization}",
            wait = millis(spec.group_wait),
            interval = millis(spec.group_interval),
            repeat = millis(spec.repeat_interval),
            url = spec.webhook_url,
        );
        let config_path = dir.path().join("alertmanager.yml");
        process::write_file(&config_path, &config)?;
        let args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={addr}"),
            "--cluster.listen-address=".to_string(),
            "--log.level=warn".to_string(),
        ];
        let mut daemon = Daemon::spawn(
            "alertmanager",
            &program,
            &args,
            &dir.path().join("alertmanager.out"),
        )?;
        daemon
            .wait_ready(Duration::from_secs(20), || async move {
                matches!(http::get(addr, "/-/ready").await, Ok(response) if response.status == 200)
            })
            .await?;
        Ok(Alertmanager {
            addr,
            daemon,
            _dir: dir,
        })
    }

    pub fn output(&self) -> String {
        self.daemon.output()
    }
}
