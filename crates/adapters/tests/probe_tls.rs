//! The TLS probe against real TLS servers on loopback, with certificates made for the
//! test by a private CA: valid, expired, for the wrong name, soon to expire, untrusted.

use std::sync::Arc;
use std::time::Duration;

use adapters::probe::{ProbeOutcome, probe};
use plan::model::{TlsCheck, Verify};
use plan::{At, Dur};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const DAY: i64 = 86_400;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "golive test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, -365, 3650);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// Year, month and day `days` from today (UTC).
fn ymd(days: i64) -> (i32, u8, u8) {
    let ts = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + days * DAY).unwrap();
    let day = ts.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    (i32::from(day.year()), day.month() as u8, day.day() as u8)
}

fn set_validity(params: &mut CertificateParams, from_days: i64, to_days: i64) {
    let (y, m, d) = ymd(from_days);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = ymd(to_days);
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn leaf(ca: &Ca, names: &[&str], from_days: i64, to_days: i64) -> Leaf {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params, from_days, to_days);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// A TLS server on loopback that completes handshakes with `leaf` and then hangs up.
async fn serve(leaf: Leaf) -> String {
    adapters::probe::install_crypto_provider();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(leaf.chain, leaf.key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    addr.to_string()
}

struct Fixture {
    _dir: tempfile::TempDir,
    ca_file: String,
    ca: Ca,
}

fn fixture() -> Fixture {
    let ca = ca();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, &ca.pem).unwrap();
    Fixture {
        ca_file: path.display().to_string(),
        _dir: dir,
        ca,
    }
}

fn check(address: &str, ca_file: Option<&str>) -> TlsCheck {
    TlsCheck {
        address: At::bare(address.into()),
        server_name: Some(At::bare("aivo.test".into())),
        min_validity: None,
        names: Vec::new(),
        ca_file: ca_file.map(|f| At::bare(f.into())),
    }
}

async fn run(check: TlsCheck) -> ProbeOutcome {
    let outcome = probe(&Verify::Tls(check), Duration::from_secs(5))
        .await
        .unwrap();
    println!(
        "{} — {}",
        if outcome.passed { "PASS" } else { "FAIL" },
        outcome.summary
    );
    outcome
}

#[tokio::test]
async fn a_valid_certificate_from_a_trusted_ca_passes_and_reports_its_expiry() {
    let f = fixture();
    let address = serve(leaf(&f.ca, &["aivo.test", "*.aivo.test"], -10, 90)).await;
    let mut c = check(&address, Some(&f.ca_file));
    c.min_validity = Some(At::bare(Dur(30 * DAY as u64 * 1000)));
    c.names = vec![
        At::bare("api.aivo.test".into()),
        At::bare("*.aivo.test".into()),
    ];
    let outcome = run(c).await;
    assert!(outcome.passed, "{}", outcome.summary);
    assert!(outcome.summary.contains("days left"), "{}", outcome.summary);
    assert_eq!(outcome.detail["trusted"], true);
    let days_left = outcome.detail["days_left"].as_i64().unwrap();
    assert!((88..=90).contains(&days_left), "{days_left}");
    assert!(outcome.detail["not_after"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn an_expired_certificate_fails_with_its_expiry_date() {
    let f = fixture();
    let address = serve(leaf(&f.ca, &["aivo.test"], -100, -10)).await;
    let outcome = run(check(&address, Some(&f.ca_file))).await;
    assert!(!outcome.passed);
    assert!(
        outcome.summary.contains("expired on "),
        "{}",
        outcome.summary
    );
    // Trust is judged on its own: the CA is still trusted.
    assert_eq!(outcome.detail["trusted"], true, "{}", outcome.detail);
    assert!(outcome.detail["days_left"].as_i64().unwrap() < 0);
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_naming_both() {
    let f = fixture();
    let address = serve(leaf(&f.ca, &["other.test"], -10, 90)).await;
    let outcome = run(check(&address, Some(&f.ca_file))).await;
    assert!(!outcome.passed);
    assert!(
        outcome
            .summary
            .contains("does not cover `aivo.test` (it names other.test)"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn a_wildcard_does_not_cover_two_labels() {
    let f = fixture();
    let address = serve(leaf(&f.ca, &["aivo.test", "*.aivo.test"], -10, 90)).await;
    let mut c = check(&address, Some(&f.ca_file));
    c.names = vec![At::bare("a.b.aivo.test".into())];
    let outcome = run(c).await;
    assert!(!outcome.passed);
    assert!(
        outcome.summary.contains("`a.b.aivo.test`"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn a_certificate_expiring_soon_fails_min_validity() {
    let f = fixture();
    let address = serve(leaf(&f.ca, &["aivo.test"], -60, 5)).await;
    let mut c = check(&address, Some(&f.ca_file));
    assert!(
        run(c.clone()).await.passed,
        "without min_validity it is fine"
    );
    c.min_validity = Some(At::bare("30d".parse().unwrap()));
    let outcome = run(c).await;
    assert!(!outcome.passed);
    assert!(
        outcome.summary.contains("at least 30d required"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_not_trusted() {
    let f = fixture();
    let address = serve(leaf(&f.ca, &["aivo.test"], -10, 90)).await;
    let outcome = run(check(&address, None)).await;
    assert!(!outcome.passed);
    assert!(
        outcome.summary.contains("is not trusted"),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.detail["trusted"], false);

    let other = fixture();
    let outcome = run(check(&address, Some(&other.ca_file))).await;
    assert!(!outcome.passed, "another private CA does not vouch for it");
}

#[tokio::test]
async fn no_server_or_a_bad_ca_file_fails() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = listener.local_addr().unwrap().to_string();
    drop(listener);
    let outcome = run(check(&closed, None)).await;
    assert!(
        !outcome.passed && outcome.summary.contains("cannot connect"),
        "{}",
        outcome.summary
    );

    let outcome = run(check(&closed, Some("/nonexistent/ca.pem"))).await;
    assert!(
        !outcome.passed && outcome.summary.contains("cannot read ca_file"),
        "{}",
        outcome.summary
    );

    // A plain TCP server that never speaks TLS.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            held.push(tcp);
        }
    });
    let outcome = probe(
        &Verify::Tls(check(&address, None)),
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    assert!(
        !outcome.passed && outcome.summary.contains("no TLS handshake within 300ms"),
        "{}",
        outcome.summary
    );
}
