//! The canonical byte encoding of events: canonical JSON text and the event hash.
//!
//! Canonical JSON here is exactly what Python's
//! `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` prints, so an
//! auditor can recompute every hash with the standard library of a common language
//! (`docs/audit.md` has the script). That fixes three things serde_json leaves open: object
//! keys sorted by code point, no whitespace, and non-integer numbers written like Python's
//! `repr(float)` (`1e-05`, `1e+16`, `0.0001`, `2.0`).

use sha2::{Digest, Sha256};

/// `prev_hash` of the first event of every run.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Canonical JSON text of a value.
pub fn to_canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sorted here rather than relying on serde_json's map type, whose order depends
            // on a cargo feature that any crate in the build may switch on.
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &serde_json::Number) {
    if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(f) = n.as_f64() {
        write_float(out, f);
    } else {
        // Only reachable with serde_json's arbitrary-precision numbers; keep the text.
        out.push_str(&n.to_string());
    }
}

/// A float as Python's `repr` writes it: the shortest digits that read back to the same
/// number, in positional form when the decimal exponent is in -5 < e < 16, otherwise as
/// `d.ddde±XX` with at least two exponent digits; positional integers end in `.0`.
pub fn write_float(out: &mut String, f: f64) {
    if !f.is_finite() {
        // serde_json never holds these; null is what it would print.
        out.push_str("null");
        return;
    }
    // Rust's `{:e}` prints the shortest round-trip digits: `-1.2345e-7`, `0e0`, `1e16`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if f.is_sign_negative() {
        out.push('-');
    }
    if !(-4..16).contains(&exponent) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exponent.unsigned_abs()));
        return;
    }
    // Position of the decimal point counted from the start of `digits`.
    let point = exponent + 1;
    if point <= 0 {
        out.push_str("0.");
        for _ in 0..-point {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let point = point as usize;
        if point >= digits.len() {
            out.push_str(&digits);
            for _ in digits.len()..point {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
}

/// A JSON string literal: `"` and `\` escaped, the five short control escapes, every other
/// control character as `\u00xx` (lower-case hex), everything else as UTF-8.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The exact bytes hashed for an event: the canonical JSON array
/// `[format, run_id, seq, at, actor, kind, body, prev_hash]`. `actor` and `body` are
/// already canonical JSON text.
#[allow(clippy::too_many_arguments)]
pub fn hash_input(
    format: u32,
    run_id: &str,
    seq: u64,
    at: &str,
    actor_json: &str,
    kind: &str,
    body_json: &str,
    prev_hash: &str,
) -> String {
    let mut out = String::with_capacity(
        run_id.len()
            + at.len()
            + actor_json.len()
            + kind.len()
            + body_json.len()
            + prev_hash.len()
            + 64,
    );
    out.push('[');
    out.push_str(&format.to_string());
    out.push(',');
    write_string(&mut out, run_id);
    out.push(',');
    out.push_str(&seq.to_string());
    out.push(',');
    write_string(&mut out, at);
    out.push(',');
    out.push_str(actor_json);
    out.push(',');
    write_string(&mut out, kind);
    out.push(',');
    out.push_str(body_json);
    out.push(',');
    write_string(&mut out, prev_hash);
    out.push(']');
    out
}

/// Lower-case hex SHA-256 of the hash input.
pub fn event_hash(input: &str) -> String {
    hex::encode(Sha256::digest(input.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn float(f: f64) -> String {
        let mut s = String::new();
        write_float(&mut s, f);
        s
    }

    #[test]
    fn floats_print_like_python_repr() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456.789, "123456.789"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (-3.25e100, "-3.25e+100"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.30000000000000004, "0.30000000000000004"),
        ];
        for (f, want) in cases {
            assert_eq!(float(f), want, "{f:e}");
        }
    }

    #[test]
    fn objects_are_sorted_and_compact() {
        let v = json!({"b": [1, -2, 2.0, null, true], "a": {"z": "x\ny\u{1}\"\\é", "y": false}});
        assert_eq!(
            to_canonical_json(&v),
            r#"{"a":{"y":false,"z":"x\ny\u0001\"\\é"},"b":[1,-2,2.0,null,true]}"#
        );
    }

    #[test]
    fn hash_input_is_a_json_array() {
        let input = hash_input(
            1,
            "r1",
            7,
            "2025-08-23T06:00:00.000Z",
            r#"{"person":"sam"}"#,
            "signoff",
            "{}",
            GENESIS_HASH,
        );
        let parsed: serde_json::Value = serde_json::from_str(&input).expect("valid JSON");
        assert_eq!(parsed[2], json!(7));
        assert_eq!(to_canonical_json(&parsed), input);
    }
}
