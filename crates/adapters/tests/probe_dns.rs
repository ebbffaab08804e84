//! The DNS probe against real `dnsmasq` resolvers started on loopback ports: every named
//! resolver must answer with every expected value, and each one is reported.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adapters::probe::{ProbeOutcome, probe};
use plan::At;
use plan::model::{DnsCheck, Verify};

const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// A dnsmasq serving only the given records on 127.0.0.1:port; killed on drop.
struct Dnsmasq {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dnsmasq {
    fn start(records: &[&str]) -> Dnsmasq {
        assert!(
            std::path::Path::new(DNSMASQ).exists(),
            "{DNSMASQ} is missing: install the Debian package dnsmasq-base (scripts/test does)"
        );
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let child = Command::new(DNSMASQ)
                .args([
                    "--no-daemon",
                    "--no-resolv",
                    "--no-hosts",
                    "--conf-file=/dev/null",
                    "--bind-interfaces",
                ])
                .arg("--listen-address=127.0.0.1")
                .arg(format!("--port={port}"))
                .arg(format!(
                    "--pid-file={}",
                    dir.path().join("dnsmasq.pid").display()
                ))
                .args(records)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start dnsmasq");
            let mut server = Dnsmasq {
                child,
                port,
                _dir: dir,
            };
            if server.wait_ready() {
                return server;
            }
        }
        panic!("dnsmasq did not start on a free loopback port in 5 tries");
    }

    /// Ready once it accepts TCP on its port (it opens UDP first); false if it exited.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 at the time of asking.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok() {
            return port;
        }
    }
}

const AIVO: &[&str] = &[
    "--host-record=aivo.test,127.0.0.10,::10",
    "--host-record=edge.aivo.test,127.0.0.20",
    "--cname=www.aivo.test,edge.aivo.test",
    "--txt-record=aivo.test,v=spf1 -all",
    "--mx-host=aivo.test,mail.aivo.test,10",
];

fn dns(name: &str, record: Option<&str>, resolvers: &[String], expect: &[&str]) -> Verify {
    Verify::Dns(DnsCheck {
        name: At::bare(name.into()),
        record: record.map(|r| At::bare(r.into())),
        resolvers: resolvers.iter().map(|r| At::bare(r.clone())).collect(),
        expect: expect.iter().map(|e| At::bare(e.to_string())).collect(),
    })
}

async fn run(check: Verify) -> ProbeOutcome {
    let outcome = probe(&check, Duration::from_secs(2)).await.unwrap();
    println!(
        "{} — {}",
        if outcome.passed { "PASS" } else { "FAIL" },
        outcome.summary
    );
    outcome
}

#[tokio::test]
async fn every_record_type_is_answered_by_a_real_resolver() {
    let server = Dnsmasq::start(AIVO);
    let at = [server.address()];
    let cases: [(&str, Option<&str>, &[&str]); 6] = [
        ("aivo.test", None, &["127.0.0.10"]),
        ("aivo.test", Some("AAAA"), &["::10"]),
        ("www.aivo.test", Some("CNAME"), &["Edge.AIVO.test."]),
        ("www.aivo.test", Some("A"), &["127.0.0.20"]),
        ("aivo.test", Some("txt"), &["v=spf1 -all"]),
        ("aivo.test", Some("MX"), &["10 mail.aivo.test"]),
    ];
    for (name, record, expect) in cases {
        let outcome = run(dns(name, record, &at, expect)).await;
        assert!(outcome.passed, "{name} {record:?}: {}", outcome.summary);
    }
}

#[tokio::test]
async fn every_resolver_must_agree_and_each_is_reported() {
    let good = Dnsmasq::start(AIVO);
    let stale = Dnsmasq::start(&["--host-record=aivo.test,127.0.0.99"]);
    let both = [good.address(), stale.address()];

    let outcome = run(dns("aivo.test", None, &[good.address()], &["127.0.0.10"])).await;
    assert!(outcome.passed, "{}", outcome.summary);

    let outcome = run(dns("aivo.test", None, &both, &["127.0.0.10"])).await;
    assert!(!outcome.passed);
    let stale_line = format!("{} answered 127.0.0.99 but not 127.0.0.10", stale.address());
    assert!(outcome.summary.contains(&stale_line), "{}", outcome.summary);
    assert!(
        !outcome.summary.contains(&good.address()),
        "the good resolver is not blamed: {}",
        outcome.summary
    );
    let reports = outcome.detail["resolvers"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["passed"], true);
    assert_eq!(reports[1]["passed"], false);
    assert_eq!(reports[1]["answers"][0], "127.0.0.99");
}

#[tokio::test]
async fn every_expected_value_must_be_in_the_answer() {
    let server = Dnsmasq::start(AIVO);
    let outcome = run(dns(
        "aivo.test",
        None,
        &[server.address()],
        &["127.0.0.10", "127.0.0.11"],
    ))
    .await;
    assert!(!outcome.passed);
    assert!(
        outcome.summary.contains("but not 127.0.0.11"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn unknown_names_silent_resolvers_and_bad_input_fail() {
    let server = Dnsmasq::start(AIVO);
    let outcome = run(dns(
        "missing.example",
        None,
        &[server.address()],
        &["127.0.0.10"],
    ))
    .await;
    assert!(!outcome.passed, "{}", outcome.summary);
    assert_eq!(outcome.detail["resolvers"][0]["passed"], false);

    let outcome = run(dns(
        "edge.aivo.test",
        Some("AAAA"),
        &[server.address()],
        &["::1"],
    ))
    .await;
    assert!(!outcome.passed, "{}", outcome.summary);

    // Nothing listens on this port: the query gets no answer.
    let nobody = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let outcome = run(dns(
        "aivo.test",
        None,
        std::slice::from_ref(&nobody),
        &["127.0.0.10"],
    ))
    .await;
    assert!(!outcome.passed);
    assert!(outcome.summary.contains(&nobody), "{}", outcome.summary);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let outcome = run(dns("aivo.test", Some("NOPE"), &[server.address()], &[])).await;
    assert!(
        !outcome.passed && outcome.summary.contains("not a DNS record type"),
        "{}",
        outcome.summary
    );
    let outcome = run(dns("aivo.test", None, &[], &["127.0.0.10"])).await;
    assert!(
        !outcome.passed && outcome.summary.contains("no resolvers named"),
        "{}",
        outcome.summary
    );
    let outcome = run(dns(
        "aivo.test",
        None,
        &["resolver.example".into()],
        &["127.0.0.10"],
    ))
    .await;
    assert!(
        !outcome.passed && outcome.summary.contains("is not `ip` or `ip:port`"),
        "{}",
        outcome.summary
    );
}
