//! Prometheus scraping given targets on a short interval, optionally with a rule file and
//! an Alertmanager to send alerts to. It can be stopped and started again on the same
//! port and storage, to stand for an outage.

use std::net::SocketAddr;
use std::time::Duration;

use crate::process::{self, Daemon, free_addr};
use crate::{Error, http};

#[derive(Debug, Clone)]
pub struct ScrapeTarget {
    pub job: String,
    pub addr: SocketAddr,
    pub metrics_path: String,
}

impl ScrapeTarget {
    pub fn new(job: &str, addr: SocketAddr) -> ScrapeTarget {
        ScrapeTarget {
            job: job.to_string(),
            addr,
            metrics_path: "/metrics".to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PrometheusSpec {
    pub scrape_interval: Duration,
    pub evaluation_interval: Duration,
    pub targets: Vec<ScrapeTarget>,
    /// Content of a rule file (alerting or recording rules), if any.
    pub rules: Option<String>,
    pub alertmanager: Option<SocketAddr>,
}

impl PrometheusSpec {
    pub fn new(targets: Vec<ScrapeTarget>) -> PrometheusSpec {
        PrometheusSpec {
            scrape_interval: Duration::from_secs(1),
            evaluation_interval: Duration::from_secs(1),
            targets,
            rules: None,
            alertmanager: None,
        }
    }
}

/// A running Prometheus; stopped on drop.
pub struct Prometheus {
    pub addr: SocketAddr,
    daemon: Daemon,
    _dir: tempfile::TempDir,
}

fn seconds(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

impl Prometheus {
    pub async fn start(spec: &PrometheusSpec) -> Result<Prometheus, Error> {
        let program = process::program("prometheus", &[], "prometheus")?;
        let dir = tempfile::Builder::new()
            .prefix("prometheus-")
            .tempdir()
            .map_err(|e| Error::io("create a temporary directory", e))?;
        let addr = free_addr();
        let mut config = format!(
            "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  evaluation_interval: {eval}\n",
            interval = seconds(spec.scrape_interval),
            eval = seconds(spec.evaluation_interval),
        );
        if let Some(rules) = &spec.rules {
            let rule_file = dir.path().join("rules.yml");
            process::write_file(&rule_file, rules)?;
            config.push_str(&format!("rule_files:\n  - {}\n", rule_file.display()));
        }
        if let Some(alertmanager) = spec.alertmanager {
            config.push_str(&format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n"
            ));
        }
        config.push_str("scrape_configs:\n");
        for target in &spec.targets {
            config.push_str(&format!(
                "  - job_name: '{}'\n    metrics_path: '{}'\n    static_configs:\n      - targets: ['{}']\n",
                target.job, target.metrics_path, target.addr
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        process::write_file(&config_path, &config)?;
        let args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={addr}"),
            "--rules.alert.resend-delay=1s".to_string(),
            "--log.level=warn".to_string(),
        ];
        let daemon = Daemon::spawn(
            "prometheus",
            &program,
            &args,
            &dir.path().join("prometheus.out"),
        )?;
        let mut prometheus = Prometheus {
            addr,
            daemon,
            _dir: dir,
        };
        prometheus.wait_ready().await?;
        Ok(prometheus)
    }

    async fn wait_ready(&mut self) -> Result<(), Error> {
        let addr = self.addr;
        self.daemon
            .wait_ready(Duration::from_secs(20), || async move {
                matches!(http::get(addr, "/-/ready").await, Ok(response) if response.status == 200)
            })
            .await
    }

    /// `http://<addr>`: the base URL of the HTTP API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops Prometheus (an outage); `restart` brings it back on the same port and data.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    pub async fn restart(&mut self) -> Result<(), Error> {
        self.daemon.start()?;
        self.wait_ready().await
    }

    pub fn output(&self) -> String {
        self.daemon.output()
    }
}
