//! nginx (master + workers, in the foreground) proxying one port to an upstream whose
//! block lives in its own file, so a router can rewrite it and reload.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::Error;
use crate::process::{self, Daemon, accepts, free_addr};

#[derive(Debug, Clone)]
pub struct NginxSpec {
    /// Name of the upstream the server proxies to.
    pub upstream: String,
    /// The upstream file's first content (it must define `upstream <name>`).
    pub upstream_conf: String,
    /// Lines added to the `http` block (e.g. `keepalive_timeout 0;`).
    pub http_extra: String,
    /// Lines added to the `server` block (e.g. a read-back `location`).
    pub server_extra: String,
    /// Lines added to the main context (e.g. `worker_shutdown_timeout 1s;`).
    pub main_extra: String,
    pub worker_processes: u32,
}

impl NginxSpec {
    pub fn new(upstream: &str, upstream_conf: String) -> NginxSpec {
        NginxSpec {
            upstream: upstream.to_string(),
            upstream_conf,
            http_extra: String::new(),
            server_extra: String::new(),
            main_extra: String::new(),
            worker_processes: 1,
        }
    }
}

/// A running nginx; stopped on drop.
pub struct Nginx {
    pub listen: SocketAddr,
    pub upstream_file: PathBuf,
    pub config: PathBuf,
    pub pid_file: PathBuf,
    pub prefix: PathBuf,
    program: PathBuf,
    daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub async fn start(spec: &NginxSpec) -> Result<Nginx, Error> {
        let program = process::program("nginx", &[], "nginx-light")?;
        let dir = tempfile::Builder::new()
            .prefix("nginx-")
            .tempdir()
            .map_err(|e| Error::io("create a temporary directory", e))?;
        let prefix = dir.path().to_path_buf();
        let listen = free_addr();
        let upstream_file = prefix.join("upstream.conf");
        let pid_file = prefix.join("nginx.pid");
        process::write_file(&upstream_file, &spec.upstream_conf)?;
        // As root, nginx would switch its workers to `nobody`, who cannot enter the
        // private temporary directory; as anyone else the directive is ignored.
        let user = if process::running_as_root() {
            "user root;"
        } else {
            ""
        };
        let config_text = format!(
            "{user}
daemon off;
master_process on;
worker_processes {workers};
pid {pid};
error_log {prefix}/error.log warn;
{main_extra}
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {upstream_file};
{http_extra}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
{server_extra}
    }}
}}
",
            workers = spec.worker_processes.max(1),
            pid = pid_file.display(),
            prefix = prefix.display(),
            main_extra = spec.main_extra,
            upstream_file = upstream_file.display(),
            http_extra = spec.http_extra,
            upstream = spec.upstream,
            server_extra = spec.server_extra,
        );
        let config = prefix.join("nginx.conf");
        process::write_file(&config, &config_text)?;
        let base_args = |config: &PathBuf| {
            vec![
                "-e".to_string(),
                format!("{}/error.log", prefix.display()),
                "-p".to_string(),
                format!("{}/", prefix.display()),
                "-c".to_string(),
                config.display().to_string(),
            ]
        };
        let mut check = base_args(&config);
        check.push("-t".into());
        check.push("-q".into());
        process::check_config("nginx", &program, &check)?;
        let mut daemon = Daemon::spawn(
            "nginx",
            &program,
            &base_args(&config),
            &prefix.join("nginx.out"),
        )?;
        daemon
            .wait_ready(Duration::from_secs(10), || accepts(listen))
            .await?;
        Ok(Nginx {
            listen,
            upstream_file,
            config,
            pid_file,
            prefix,
            program,
            daemon,
            _dir: dir,
        })
    }

    fn command(&self, tail: &str) -> String {
        format!(
            "{} -e {}/error.log -p {}/ -c {} {tail}",
            self.program.display(),
            self.prefix.display(),
            self.prefix.display(),
            self.config.display()
        )
    }

    /// A shell command that checks this nginx's configuration.
    pub fn test_command(&self) -> String {
        self.command("-t -q")
    }

    /// A shell command that asks this nginx to reload.
    pub fn reload_command(&self) -> String {
        self.command("-s reload")
    }

    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// What nginx printed so far, and its error log.
    pub fn output(&self) -> String {
        let error_log = std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default();
        format!("{}\n--- error.log ---\n{error_log}", self.daemon.output())
    }
}
