//! The TLS probe: connects, takes the certificate chain the server presents, and checks it
//! apart, so every problem is named on its own: validity now, remaining validity, names
//! covered (wildcards included), and trust (the web's roots plus `ca_file`).
//!
//! The handshake accepts any chain on purpose — an expired certificate must still be read
//! to report its expiry date — and the chain is then judged with webpki.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use plan::model::TlsCheck;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::json;
use x509_parser::extensions::GeneralName;

use super::{ProbeOutcome, fmt_timestamp};
use crate::command::fmt_duration;

pub(super) async fn probe(check: &TlsCheck, timeout: Duration) -> ProbeOutcome {
    let address = check.address.value.as_str();
    let fail_early = |why: String| {
        ProbeOutcome::fail(
            format!("TLS {address}: {why}"),
            json!({"address": address, "error": why}),
        )
    };
    let host = match split_host(address) {
        Some(host) => host,
        None => return fail_early(format!("`{address}` is not `host:port`")),
    };
    let server_name_text = check
        .server_name
        .as_ref()
        .map_or(host.clone(), |n| n.value.clone());
    let server_name = match ServerName::try_from(server_name_text.clone()) {
        Ok(name) => name,
        Err(e) => return fail_early(format!("`{server_name_text}` is not a server name: {e}")),
    };
    let extra_anchors = match &check.ca_file {
        Some(path) => match read_anchors(&path.value) {
            Ok(anchors) => anchors,
            Err(e) => return fail_early(e),
        },
        None => Vec::new(),
    };
    let chain = match tokio::time::timeout(timeout, fetch_chain(address, server_name)).await {
        Ok(Ok(chain)) => chain,
        Ok(Err(e)) => return fail_early(e),
        Err(_) => return fail_early(format!("no TLS handshake within {}", fmt_duration(timeout))),
    };
    judge(
        check,
        &server_name_text,
        &chain,
        &extra_anchors,
        Timestamp::now(),
    )
}

/// Judges a fetched chain at `now`. Split out so the verdict depends on nothing else.
fn judge(
    check: &TlsCheck,
    server_name: &str,
    chain: &[CertificateDer<'static>],
    extra_anchors: &[TrustAnchor<'static>],
    now: Timestamp,
) -> ProbeOutcome {
    let address = check.address.value.as_str();
    let Some(leaf_der) = chain.first() else {
        return ProbeOutcome::fail(
            format!("TLS {address}: the server presented no certificate"),
            json!({"address": address}),
        );
    };
    let leaf = match x509_parser::parse_x509_certificate(leaf_der.as_ref()) {
        Ok((_, cert)) => cert,
        Err(e) => {
            return ProbeOutcome::fail(
                format!("TLS {address}: the certificate does not parse: {e}"),
                json!({"address": address}),
            );
        }
    };
    let not_before =
        Timestamp::from_second(leaf.validity().not_before.timestamp()).unwrap_or(Timestamp::MIN);
    let not_after =
        Timestamp::from_second(leaf.validity().not_after.timestamp()).unwrap_or(Timestamp::MIN);
    let (dns_names, ips) = subject_alt_names(&leaf);
    let mut problems: Vec<String> = Vec::new();

    if now < not_before {
        problems.push(format!("not valid before {}", fmt_timestamp(not_before)));
    }
    if now > not_after {
        problems.push(format!("expired on {}", fmt_timestamp(not_after)));
    }
    let left_secs = not_after.as_second() - now.as_second();
    let days_left = left_secs.div_euclid(86_400);
    if let Some(min) = &check.min_validity
        && now <= not_after
        && left_secs < (min.value.millis() / 1000) as i64
    {
        problems.push(format!(
            "expires on {}, in {days_left} days; at least {} required",
            fmt_timestamp(not_after),
            min.value
        ));
    }

    let mut required: Vec<String> = Vec::new();
    for name in check
        .names
        .iter()
        .map(|n| n.value.as_str())
        .chain([server_name])
    {
        let name = normalize(name);
        if !required.contains(&name) {
            required.push(name);
        }
    }
    let uncovered: Vec<&String> = required
        .iter()
        .filter(|name| !covers_name(&dns_names, &ips, name))
        .collect();
    if !uncovered.is_empty() {
        let shown: Vec<String> = uncovered.iter().map(|n| format!("`{n}`")).collect();
        let has: Vec<String> = dns_names
            .iter()
            .cloned()
            .chain(ips.iter().map(|ip| ip.to_string()))
            .collect();
        problems.push(format!(
            "does not cover {} (it names {})",
            shown.join(", "),
            if has.is_empty() {
                "nothing".to_owned()
            } else {
                has.join(", ")
            }
        ));
    }

    // Trust is judged at a moment the leaf is valid, so an expired certificate still
    // gets its own verdict on trust (its expiry is reported above).
    let trust_at = if now >= not_before && now <= not_after {
        now
    } else {
        Timestamp::from_second(
            not_before.as_second() + (not_after.as_second() - not_before.as_second()) / 2,
        )
        .unwrap_or(now)
    };
    let trust = verify_trust(chain, extra_anchors, trust_at);
    if let Err(why) = &trust {
        problems.push(why.clone());
    }

    let detail = json!({
        "address": address,
        "server_name": server_name,
        "subject": leaf.subject().to_string(),
        "issuer": leaf.issuer().to_string(),
        "not_before": fmt_timestamp(not_before),
        "not_after": fmt_timestamp(not_after),
        "days_left": days_left,
        "dns_names": dns_names,
        "ip_addresses": ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
        "required_names": required,
        "chain_length": chain.len(),
        "trusted": trust.is_ok(),
        "problems": problems,
    });
    if problems.is_empty() {
        ProbeOutcome::pass(
            format!(
                "TLS {address}: certificate valid until {} ({days_left} days left), covers {}, trusted",
                fmt_timestamp(not_after),
                required.join(", ")
            ),
            detail,
        )
    } else {
        ProbeOutcome::fail(
            format!("TLS {address}: certificate {}", problems.join("; ")),
            detail,
        )
    }
}

fn verify_trust(
    chain: &[CertificateDer<'static>],
    extra_anchors: &[TrustAnchor<'static>],
    at: Timestamp,
) -> Result<(), String> {
    let leaf = webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| format!("is not a usable end-entity certificate ({e})"))?;
    let mut anchors: Vec<TrustAnchor<'_>> = webpki_roots::TLS_SERVER_ROOTS.to_vec();
    anchors.extend(extra_anchors.iter().cloned());
    let time = UnixTime::since_unix_epoch(Duration::from_secs(at.as_second().max(0) as u64));
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &chain[1..],
        time,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| match e {
        webpki::Error::UnknownIssuer => {
            "is not trusted: its issuer is not among the web's roots or the `ca_file` anchors"
                .to_owned()
        }
        webpki::Error::InvalidSignatureForPublicKey => {
            "is not trusted: its signature does not verify with the trusted issuer of that name"
                .to_owned()
        }
        other => format!("is not trusted: {other:?}"),
    })
}

/// The SAN DNS names (lower case) and IP addresses of a certificate.
fn subject_alt_names(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> (Vec<String>, Vec<IpAddr>) {
    let mut names = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push(normalize(dns)),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => ips.push(IpAddr::from(
                        <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
                    )),
                    16 => ips.push(IpAddr::from(
                        <[u8; 16]>::try_from(*bytes).unwrap_or_default(),
                    )),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    (names, ips)
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether the certificate's names cover `name`. A wildcard `*.example.com` covers exactly
/// one more label (`api.example.com`, not `example.com` or `a.b.example.com`); a required
/// name that is itself a wildcard needs that same wildcard in the certificate.
pub(crate) fn covers_name(dns_names: &[String], ips: &[IpAddr], name: &str) -> bool {
    if let Ok(ip) = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return ips.contains(&ip);
    }
    dns_names.iter().any(|san| {
        if san == name {
            return true;
        }
        match san.strip_prefix("*.") {
            Some(suffix) => name
                .strip_suffix(suffix)
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.') && label != "*"),
            None => false,
        }
    })
}

fn split_host(address: &str) -> Option<String> {
    let (host, port) = address.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| host.to_owned())
}

fn read_anchors(path: &str) -> Result<Vec<TrustAnchor<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read ca_file `{path}`: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("ca_file `{path}` is not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!("ca_file `{path}` holds no certificate"));
    }
    certs
        .iter()
        .map(|der| {
            webpki::anchor_from_trusted_cert(der)
                .map(|anchor| anchor.to_owned())
                .map_err(|e| {
                    format!("ca_file `{path}`: a certificate cannot be a trust anchor: {e}")
                })
        })
        .collect()
}

async fn fetch_chain(
    address: &str,
    server_name: ServerName<'static>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    super::install_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadAnyChain(provider)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    let (_, connection) = tls.get_ref();
    let chain = connection.peer_certificates().unwrap_or_default();
    Ok(chain.iter().map(|c| c.clone().into_owned()).collect())
}

/// Accepts any certificate chain during the handshake (the chain is judged afterwards),
/// but still checks the handshake signatures, so the server holds the leaf's key.
#[derive(Debug)]
struct ReadAnyChain(Arc<CryptoProvider>);

impl ServerCertVerifier for ReadAnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_exactly_one_label() {
        let names = vec!["*.aivo.test".to_owned(), "aivo.test".to_owned()];
        assert!(covers_name(&names, &[], "api.aivo.test"));
        assert!(covers_name(&names, &[], "aivo.test"));
        assert!(!covers_name(&names, &[], "a.b.aivo.test"));
        assert!(!covers_name(&names, &[], "aivo.testing"));
        assert!(!covers_name(&names, &[], "xaivo.test"));
        assert!(covers_name(&names, &[], "*.aivo.test"));
        assert!(!covers_name(
            &["api.aivo.test".to_owned()],
            &[],
            "*.aivo.test"
        ));
        let ips = ["127.0.0.1".parse().unwrap()];
        assert!(covers_name(&[], &ips, "127.0.0.1"));
        assert!(!covers_name(&names, &[], "127.0.0.1"));
    }

    #[test]
    fn addresses_need_a_port() {
        assert_eq!(split_host("aivo.test:443").as_deref(), Some("aivo.test"));
        assert_eq!(split_host("[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(split_host("aivo.test"), None);
    }
}
