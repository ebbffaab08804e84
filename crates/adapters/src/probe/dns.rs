//! The DNS probe: asks each named resolver directly (no system resolver, no cache, no
//! search domains) and passes only when every one of them answers with every expected
//! value. Each resolver's answer is reported on its own.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use plan::model::DnsCheck;
use serde_json::{Value, json};

use super::ProbeOutcome;
use crate::command::fmt_duration;

/// `ip` (port 53) or `ip:port`, IPv6 as `[::1]:5353`.
pub fn parse_resolver(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("resolver `{text}` is not `ip` or `ip:port`"))
}

struct Answer {
    resolver: String,
    values: Vec<String>,
    missing: Vec<String>,
    error: Option<String>,
}

impl Answer {
    fn ok(&self) -> bool {
        self.error.is_none() && self.missing.is_empty()
    }
    fn to_json(&self) -> Value {
        json!({"resolver": self.resolver, "answers": self.values, "missing": self.missing, "error": self.error, "passed": self.ok()})
    }
}

pub(super) async fn probe(check: &DnsCheck, timeout: Duration) -> ProbeOutcome {
    let name = check.name.value.trim().trim_end_matches('.').to_owned();
    let record_text = check
        .record
        .as_ref()
        .map_or("A".to_owned(), |r| r.value.trim().to_ascii_uppercase());
    let fail_early = |why: String| {
        ProbeOutcome::fail(
            format!("DNS {record_text} {name}: {why}"),
            json!({"name": name, "record": record_text, "error": why}),
        )
    };
    let record = match RecordType::from_str(&record_text) {
        Ok(record) if !matches!(record, RecordType::Unknown(_)) => record,
        _ => {
            return fail_early(format!(
                "`{record_text}` is not a DNS record type (A, AAAA, CNAME, TXT, MX, NS…)"
            ));
        }
    };
    if check.resolvers.is_empty() {
        return fail_early(
            "no resolvers named; list each resolver to ask as `ip` or `ip:port`".into(),
        );
    }
    let expected: Vec<String> = check
        .expect
        .iter()
        .map(|e| normalize(record, &e.value))
        .collect();

    let mut tasks = tokio::task::JoinSet::new();
    for (index, resolver) in check.resolvers.iter().enumerate() {
        let (resolver, name, expected) = (resolver.value.clone(), name.clone(), expected.clone());
        tasks.spawn(async move {
            (
                index,
                ask(&resolver, &name, record, &expected, timeout).await,
            )
        });
    }
    let mut answers: Vec<(usize, Answer)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(answer) => answers.push(answer),
            Err(e) => return fail_early(format!("a resolver query failed to run: {e}")),
        }
    }
    answers.sort_by_key(|(index, _)| *index);
    let answers: Vec<Answer> = answers.into_iter().map(|(_, a)| a).collect();

    let detail = json!({
        "name": name,
        "record": record_text,
        "expect": expected,
        "resolvers": answers.iter().map(Answer::to_json).collect::<Vec<_>>(),
    });
    let bad: Vec<String> = answers
        .iter()
        .filter(|a| !a.ok())
        .map(|a| match &a.error {
            Some(error) => format!("{} {error}", a.resolver),
            None => format!(
                "{} answered {} but not {}",
                a.resolver,
                if a.values.is_empty() {
                    "nothing".to_owned()
                } else {
                    a.values.join(", ")
                },
                a.missing.join(", ")
            ),
        })
        .collect();
    if bad.is_empty() {
        let shown = if expected.is_empty() {
            answers[0].values.join(", ")
        } else {
            expected.join(", ")
        };
        ProbeOutcome::pass(
            format!(
                "DNS {record_text} {name}: all {} resolver(s) answer {shown}",
                answers.len()
            ),
            detail,
        )
    } else {
        ProbeOutcome::fail(
            format!("DNS {record_text} {name}: {}", bad.join("; ")),
            detail,
        )
    }
}

async fn ask(
    resolver: &str,
    name: &str,
    record: RecordType,
    expected: &[String],
    timeout: Duration,
) -> Answer {
    let mut answer = Answer {
        resolver: resolver.to_owned(),
        values: Vec::new(),
        missing: Vec::new(),
        error: None,
    };
    let Ok(addr) = parse_resolver(resolver) else {
        answer.error = Some("is not `ip` or `ip:port`".into());
        return answer;
    };
    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
    for connection in &mut server.connections {
        connection.port = addr.port();
    }
    let mut options = ResolverOpts::default();
    options.timeout = timeout;
    options.attempts = 1;
    options.cache_size = 0;
    options.ndots = 0;
    options.preserve_intermediates = true;
    let resolver = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![server]),
        TokioRuntimeProvider::default(),
    )
    .with_options(options)
    .build();
    let resolver = match resolver {
        Ok(r) => r,
        Err(e) => {
            answer.error = Some(format!("cannot be set up: {e}"));
            return answer;
        }
    };
    // Fully qualified, so no search domain is tried.
    let fqdn = format!("{name}.");
    match tokio::time::timeout(
        timeout + Duration::from_millis(250),
        resolver.lookup(fqdn.as_str(), record),
    )
    .await
    {
        Err(_) => answer.error = Some(format!("did not answer within {}", fmt_duration(timeout))),
        Ok(Err(e)) if e.is_nx_domain() => {
            answer.error = Some(format!("says {name} does not exist (NXDOMAIN)"))
        }
        Ok(Err(e)) if e.is_no_records_found() => {
            answer.error = Some(format!("has no {record} record for {name}"))
        }
        Ok(Err(e)) => answer.error = Some(format!("failed: {e}")),
        Ok(Ok(lookup)) => {
            answer.values = lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == record)
                .map(|r| render(&r.data))
                .collect();
            answer.values.sort();
            answer.values.dedup();
            if answer.values.is_empty() {
                answer.error = Some(format!("has no {record} record for {name}"));
            }
        }
    }
    answer.missing = expected
        .iter()
        .filter(|e| !answer.values.contains(e))
        .cloned()
        .collect();
    answer
}

/// An answer as text: addresses as written by `std`, names without the final dot in
/// lower case, TXT as its strings joined.
fn render(data: &RData) -> String {
    match data {
        RData::A(a) => IpAddr::from(a.0).to_string(),
        RData::AAAA(a) => IpAddr::from(a.0).to_string(),
        RData::CNAME(n) => normalize_name(&n.0.to_ascii()),
        RData::NS(n) => normalize_name(&n.0.to_ascii()),
        RData::PTR(n) => normalize_name(&n.0.to_ascii()),
        RData::MX(mx) => format!(
            "{} {}",
            mx.preference,
            normalize_name(&mx.exchange.to_ascii())
        ),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect(),
        other => other.to_string(),
    }
}

fn normalize_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// An expected value in the form `render` gives answers.
fn normalize(record: RecordType, value: &str) -> String {
    match record {
        RecordType::A | RecordType::AAAA => value
            .trim()
            .parse::<IpAddr>()
            .map_or_else(|_| value.trim().to_owned(), |ip| ip.to_string()),
        RecordType::CNAME | RecordType::NS | RecordType::PTR => normalize_name(value),
        RecordType::MX => match value.trim().split_once(char::is_whitespace) {
            Some((pref, host)) => format!("{} {}", pref.trim(), normalize_name(host)),
            None => normalize_name(value),
        },
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers_are_ip_with_optional_port() {
        assert_eq!(
            parse_resolver("127.0.0.1").unwrap(),
            "127.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_resolver("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_resolver("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(parse_resolver("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert!(parse_resolver("dns.google").is_err());
    }

    #[test]
    fn expected_values_are_normalized_like_answers() {
        assert_eq!(
            normalize(RecordType::CNAME, "Edge.AIVO.test."),
            "edge.aivo.test"
        );
        assert_eq!(normalize(RecordType::AAAA, "0:0:0:0:0:0:0:1"), "::1");
        assert_eq!(
            normalize(RecordType::MX, "10  Mail.aivo.test."),
            "10 mail.aivo.test"
        );
    }
}
