//! Finding installed programs, picking free loopback ports, and running a daemon that is
//! killed when its handle is dropped.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// Finds `name` (or one of `alternatives`) in PATH or the usual system directories.
/// `package` is the Debian package named in the error when none is installed.
pub fn program(name: &str, alternatives: &[&str], package: &str) -> Result<PathBuf, Error> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    for extra in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/sbin"] {
        dirs.push(PathBuf::from(extra));
    }
    for candidate in std::iter::once(name).chain(alternatives.iter().copied()) {
        for dir in &dirs {
            let path = dir.join(candidate);
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    Err(Error::NotInstalled {
        program: name.to_string(),
        package: package.to_string(),
    })
}

/// A loopback port that was free a moment ago. The kernel hands out ports in sequence, so
/// the small window until the program binds it is not a practical race on a test machine.
pub fn free_port() -> u16 {
    // Binding port 0 on loopback only fails when the machine has no loopback interface,
    // in which case no test here can run at all.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener
        .local_addr()
        .expect("a bound socket has a local address")
        .port()
}

/// `127.0.0.1:<free port>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A running program. Stopped (SIGTERM, then SIGKILL) and reaped on drop or `stop`.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    output: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Starts `program args…` with stdout and stderr appended to `output`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        output: &Path,
    ) -> Result<Daemon, Error> {
        let mut daemon = Daemon {
            name: name.to_string(),
            program: program.to_path_buf(),
            args: args.to_vec(),
            output: output.to_path_buf(),
            child: None,
        };
        daemon.start()?;
        Ok(daemon)
    }

    /// Starts the program again with the same arguments (after `stop`).
    pub fn start(&mut self) -> Result<(), Error> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.output)
            .map_err(|e| Error::io(format!("open {}", self.output.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| Error::io(format!("open {}", self.output.display()), e))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| Error::io(format!("start {}", self.program.display()), e))?;
        self.child = Some(child);
        Ok(())
    }

    /// Asks the program to stop (SIGTERM), so that it stops its own children (nginx's
    /// workers would outlive a killed master); kills it after 3 s. Waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the program is still running (it has not exited on its own).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// What the program printed so far (the last 4 KiB).
    pub fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    /// Polls `ready` until it returns true; fails with the program's output after `limit`
    /// or as soon as the program exits.
    pub async fn wait_ready<F, Fut>(&mut self, limit: Duration, mut ready: F) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        loop {
            if ready().await {
                return Ok(());
            }
            if !self.is_running() || started.elapsed() > limit {
                return Err(Error::NotReady {
                    program: self.name.clone(),
                    waited: started.elapsed(),
                    output: self.output(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `program args…` to completion and returns its combined output, or `BadConfig`
/// when it exits unsuccessfully (used for configuration checks such as `haproxy -c`).
pub fn check_config(name: &str, program: &Path, args: &[String]) -> Result<(), Error> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("run {}", program.display()), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::BadConfig {
            program: name.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

/// Whether something accepts TCP connections on `addr`.
pub async fn accepts(addr: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_ok()
}

/// Whether this process runs as root (the `Uid:` line of /proc/self/status).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Writes `text` to `path`, naming the file in the error.
pub fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
}
