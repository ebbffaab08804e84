//! The value types runbooks write by hand: offsets from T0, durations, thresholds.
//!
//! Each parses from the forms people already use (`T-7 days`, `T+0:05`, `< 2 minutes`,
//! `0.1%`, `2000ms`) and prints back in one canonical form.

use std::fmt;
use std::str::FromStr;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a hand-written value did not parse; the message says what would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, UnitError> {
    Err(UnitError(msg.into()))
}

// === impl Offset ===

/// A point relative to T0: a whole number of calendar months plus a fixed number of
/// milliseconds. Months are calendar months in the plan's time zone, so `T+1 month` from
/// 23 August is 23 September at the same wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset {
    pub months: i32,
    pub millis: i64,
}

impl Offset {
    pub const ZERO: Offset = Offset {
        months: 0,
        millis: 0,
    };

    pub fn from_millis(millis: i64) -> Offset {
        Offset { months: 0, millis }
    }

    /// The absolute instant of this offset for a given T0 in the plan's zone.
    pub fn resolve(&self, t0: Timestamp, tz: &TimeZone) -> Timestamp {
        let mut at = t0;
        if self.months != 0 {
            // Calendar arithmetic in the plan's zone; checked_add only fails past year 9999.
            let zoned = t0.to_zoned_datetime(tz.clone());
            at = zoned
                .checked_add(self.months.months())
                .map(|z| z.timestamp())
                .unwrap_or(t0);
        }
        at.checked_add(jiff::SignedDuration::from_millis(self.millis))
            .unwrap_or(at)
    }

    /// An ordering key that does not need a T0: months counted as 30 days. Used for
    /// sorting and lint; resolution always uses the calendar.
    pub fn approx_millis(&self) -> i64 {
        self.millis + i64::from(self.months) * 30 * 86_400_000
    }

    pub fn is_negative(&self) -> bool {
        self.approx_millis() < 0
    }
}

impl FromStr for Offset {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Offset, UnitError> {
        let hint = "write an offset from T0 like `T-7d`, `T-2:00`, `T+0:05`, `T+24:00`, `T+48h`, `T+1w` or `T+1 month`";
        let s = input.trim();
        let rest = match s.strip_prefix('T').or_else(|| s.strip_prefix('t')) {
            Some(rest) => rest.trim_start(),
            None => return err(format!("`{input}` is not an offset: {hint}")),
        };
        if rest == "0" {
            return Ok(Offset::ZERO);
        }
        let (sign, body) = match rest.as_bytes().first() {
            Some(b'+') => (1i64, rest[1..].trim()),
            Some(b'-') => (-1i64, rest[1..].trim()),
            _ => return err(format!("`{input}` needs a sign after T: {hint}")),
        };
        if body.is_empty() {
            return err(format!("`{input}` has no amount after the sign: {hint}"));
        }
        if body.contains(':') {
            // H:MM or H:MM:SS, the runbook's clock form.
            let parts: Vec<&str> = body.split(':').collect();
            if parts.len() > 3
                || parts
                    .iter()
                    .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                return err(format!(
                    "`{input}` is not a clock offset like `T+1:30`: {hint}"
                ));
            }
            let nums: Vec<i64> = parts
                .iter()
                .map(|p| p.parse().unwrap_or(i64::MAX))
                .collect();
            if nums.iter().skip(1).any(|&n| n >= 60) || parts.iter().skip(1).any(|p| p.len() != 2) {
                return err(format!(
                    "`{input}`: minutes and seconds are two digits below 60, e.g. `T+0:05`"
                ));
            }
            let hours = nums[0];
            if hours > 100_000 {
                return err(format!("`{input}` is too far from T0"));
            }
            let secs = hours * 3600 + nums[1] * 60 + nums.get(2).copied().unwrap_or(0);
            return Ok(Offset {
                months: 0,
                millis: sign * secs * 1000,
            });
        }
        let amount =
            parse_amount_list(body).map_err(|e| UnitError(format!("`{input}`: {e}; {hint}")))?;
        Ok(Offset {
            months: amount.months * sign as i32,
            millis: amount.millis * sign,
        })
    }
}

impl fmt::Display for Offset {
    /// Canonical form: `T-7d`, `T+0:05`, `T+24:00`, `T+1 month`, `T+1 month+2:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.months == 0 && self.millis == 0 {
            return f.write_str("T-0:00");
        }
        f.write_str("T")?;
        if self.months != 0 {
            let sign = if self.months < 0 { '-' } else { '+' };
            let n = self.months.unsigned_abs();
            write!(f, "{sign}{n} month{}", if n == 1 { "" } else { "s" })?;
            if self.millis == 0 {
                return Ok(());
            }
        }
        let sign = if self.millis < 0 { '-' } else { '+' };
        let ms = self.millis.unsigned_abs();
        let secs = ms / 1000;
        if ms.is_multiple_of(1000) && secs.is_multiple_of(86_400) && secs >= 2 * 86_400 {
            return write!(f, "{sign}{}d", secs / 86_400);
        }
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if s == 0 && ms.is_multiple_of(1000) {
            write!(f, "{sign}{h}:{m:02}")
        } else {
            write!(f, "{sign}{h}:{m:02}:{s:02}")
        }
    }
}

// === impl Dur ===

/// A non-negative length of time, in milliseconds. Parses `500ms`, `2s`, `5m`, `10 minutes`,
/// `1h30m`, `2 hours`, `1d`, `1w`, and a deadline form `< 2 minutes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub u64);

impl Dur {
    pub const ZERO: Dur = Dur(0);

    pub fn from_secs(secs: u64) -> Dur {
        Dur(secs * 1000)
    }
    pub fn millis(&self) -> u64 {
        self.0
    }
    pub fn as_std(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

impl FromStr for Dur {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Dur, UnitError> {
        let hint =
            "write a duration like `500ms`, `30s`, `5m`, `10 minutes`, `2h` or `< 2 minutes`";
        let mut s = input.trim();
        for prefix in ["<=", "<", "within", "under"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                s = rest.trim_start();
                break;
            }
        }
        if s.is_empty() {
            return err(format!("empty duration: {hint}"));
        }
        let amount =
            parse_amount_list(s).map_err(|e| UnitError(format!("`{input}`: {e}; {hint}")))?;
        if amount.months != 0 {
            return err(format!(
                "`{input}`: a duration cannot be in months (they differ in length); use days or weeks"
            ));
        }
        if amount.millis < 0 {
            return err(format!("`{input}`: a duration cannot be negative"));
        }
        Ok(Dur(amount.millis as u64))
    }
}

impl fmt::Display for Dur {
    /// `500ms`, `30s`, `1h30m`, and `5m18.1s` for a duration with a fraction of a second.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        if ms < 1000 {
            return write!(f, "{ms}ms");
        }
        let mut secs = ms / 1000;
        let mut out = String::new();
        for (unit, size) in [("d", 86_400u64), ("h", 3600), ("m", 60)] {
            if secs >= size {
                out.push_str(&format!("{}{unit}", secs / size));
                secs %= size;
            }
        }
        let fraction = ms % 1000;
        if fraction != 0 {
            let digits = format!("{fraction:03}");
            out.push_str(&format!("{secs}.{}s", digits.trim_end_matches('0')));
        } else if secs > 0 {
            out.push_str(&format!("{secs}s"));
        }
        f.write_str(&out)
    }
}

struct Amount {
    months: i32,
    millis: i64,
}

/// Parses `7d`, `7 days`, `1h30m`, `1 hour 30 minutes`, `1.5h`, `1 month`.
fn parse_amount_list(s: &str) -> Result<Amount, String> {
    let mut months: i64 = 0;
    let mut millis: f64 = 0.0;
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut any = false;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b',') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        if start == i {
            return Err(if start == 0 {
                "a number must come first".to_string()
            } else {
                format!("expected a number at `{}`", &s[start..])
            });
        }
        let number: f64 = s[start..i]
            .parse()
            .map_err(|_| format!("`{}` is not a number", &s[start..i]))?;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = s[ustart..i].to_ascii_lowercase();
        let factor: f64 = match unit.as_str() {
            "ms" | "msec" | "millisecond" | "milliseconds" => 1.0,
            "s" | "sec" | "secs" | "second" | "seconds" => 1000.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000.0,
            "d" | "day" | "days" => 86_400_000.0,
            "w" | "wk" | "week" | "weeks" => 604_800_000.0,
            "mo" | "month" | "months" => {
                if number.fract() != 0.0 {
                    return Err("months must be a whole number".into());
                }
                months += number as i64;
                any = true;
                continue;
            }
            "" => {
                return Err(format!(
                    "`{}` needs a unit (ms, s, m, h, d, w, month)",
                    &s[start..i]
                ));
            }
            other => {
                return Err(format!(
                    "unknown unit `{other}` (use ms, s, m, h, d, w or month)"
                ));
            }
        };
        millis += number * factor;
        any = true;
    }
    if !any {
        return Err("no amount given".into());
    }
    if millis > 1e15 || months > 12_000 {
        return Err("amount is too large".into());
    }
    Ok(Amount {
        months: months as i32,
        millis: millis.round() as i64,
    })
}

// === impl Quantity ===

/// The unit an SLI is measured in and a threshold is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Percent, 0–100. `0.1%` is 0.1.
    Percent,
    /// Milliseconds. `2s` is 2000.
    Ms,
    /// A plain number (a count, a ratio, a score).
    Number,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Percent => "%",
            Unit::Ms => "ms",
            Unit::Number => "",
        })
    }
}

/// A number with its unit as written: `1%`, `0.1%`, `500ms`, `2s`, `99.9%`, `4.0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    pub value: f64,
    pub unit: Unit,
}

impl FromStr for Quantity {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Quantity, UnitError> {
        let hint = "write a threshold like `1%`, `0.1%`, `500ms`, `2s` or a plain number";
        let s = input.trim();
        let split = s
            .find(|c: char| {
                !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')
            })
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let value: f64 = num
            .parse()
            .map_err(|_| UnitError(format!("`{input}` is not a number with a unit: {hint}")))?;
        if !value.is_finite() {
            return err(format!("`{input}` is not a finite number"));
        }
        let (value, unit) = match unit.trim().to_ascii_lowercase().as_str() {
            "%" => (value, Unit::Percent),
            "ms" => (value, Unit::Ms),
            "s" => (value * 1000.0, Unit::Ms),
            "m" | "min" => (value * 60_000.0, Unit::Ms),
            "" => (value, Unit::Number),
            other => return err(format!("`{input}`: unknown unit `{other}`: {hint}")),
        };
        Ok(Quantity { value, unit })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, self.unit)
    }
}

/// How an observed value is compared with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Comparison {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
}

impl Comparison {
    pub fn holds(&self, observed: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => observed > threshold,
            Comparison::AtLeast => observed >= threshold,
            Comparison::Below => observed < threshold,
            Comparison::AtMost => observed <= threshold,
        }
    }
    /// True for `>`/`>=`: a larger value is worse.
    pub fn is_upper_bound(&self) -> bool {
        matches!(self, Comparison::Above | Comparison::AtLeast)
    }
    pub fn symbol(&self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
        }
    }
}

/// `error_rate > 1%`: an SLI, a comparison and a threshold. The SLI's name is checked
/// against the plan by validation, not here.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub sli: String,
    pub comparison: Comparison,
    pub threshold: Quantity,
}

impl FromStr for Condition {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Condition, UnitError> {
        let hint = "write a condition like `error_rate > 1%` or `p95_latency > 2000ms`";
        let s = input.trim();
        let pos = s.find(['<', '>']).ok_or_else(|| {
            UnitError(format!(
                "`{input}` has no comparison (`>`, `>=`, `<`, `<=`): {hint}"
            ))
        })?;
        let sli = s[..pos].trim();
        let rest = &s[pos..];
        let (comparison, rest) = if let Some(r) = rest.strip_prefix(">=") {
            (Comparison::AtLeast, r)
        } else if let Some(r) = rest.strip_prefix("<=") {
            (Comparison::AtMost, r)
        } else if let Some(r) = rest.strip_prefix('>') {
            (Comparison::Above, r)
        } else if let Some(r) = rest.strip_prefix('<') {
            (Comparison::Below, r)
        } else {
            return err(format!("`{input}`: {hint}"));
        };
        if sli.is_empty()
            || !sli
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            return err(format!(
                "`{input}`: the left side must be an SLI id: {hint}"
            ));
        }
        let threshold: Quantity = rest.trim().parse()?;
        Ok(Condition {
            sli: sli.to_string(),
            comparison,
            threshold,
        })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.sli,
            self.comparison.symbol(),
            self.threshold
        )
    }
}

// === serde and schema glue: every type above is a string in YAML and JSON ===

macro_rules! string_serde {
    ($ty:ty, $desc:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = StringOrNumber::deserialize(d)?;
                raw.0.parse().map_err(serde::de::Error::custom)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": ["string", "number"], "description": $desc })
            }
        }
    };
}

string_serde!(
    Offset,
    "Offset from T0: `T-7d`, `T-7 days`, `T-2:00`, `T+0:05`, `T+24:00`, `T+48h`, `T+1w`, `T+1 month`."
);
string_serde!(
    Dur,
    "Duration: `500ms`, `30s`, `5m`, `10 minutes`, `2h`, `1d`, `< 2 minutes`."
);
string_serde!(
    Quantity,
    "Threshold with unit: `1%`, `0.1%`, `500ms`, `2s`, `99.9%`, or a plain number."
);
string_serde!(
    Condition,
    "Condition on an SLI: `error_rate > 1%`, `p95_latency > 2000ms`."
);

/// Accepts a YAML scalar that may have been typed as a number (`hold: 30` is not valid, but
/// `threshold: 4.0` is) and hands it on as text.
struct StringOrNumber(String);

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = StringOrNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_in_runbook_forms() {
        let cases = [
            ("T-7d", Offset::from_millis(-7 * 86_400_000)),
            ("T-7 days", Offset::from_millis(-7 * 86_400_000)),
            ("T-2:00", Offset::from_millis(-2 * 3_600_000)),
            ("T-0:00", Offset::ZERO),
            ("T+0:05", Offset::from_millis(5 * 60_000)),
            ("T+24:00", Offset::from_millis(24 * 3_600_000)),
            ("T+48h", Offset::from_millis(48 * 3_600_000)),
            ("T+1w", Offset::from_millis(7 * 86_400_000)),
            (
                "T+1 month",
                Offset {
                    months: 1,
                    millis: 0,
                },
            ),
            ("T+168h", Offset::from_millis(168 * 3_600_000)),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Offset>().unwrap(), want, "{text}");
        }
        for bad in [
            "7d",
            "T",
            "T+",
            "T*5",
            "T+1:5",
            "T+1:75",
            "T+5 parsecs",
            "T+1.5 months",
            "T+5",
        ] {
            assert!(bad.parse::<Offset>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn offsets_print_canonically_and_round_trip() {
        for text in [
            "T-7d",
            "T-2:00",
            "T-0:00",
            "T+0:05",
            "T+24:00",
            "T+7d",
            "T+1 month",
            "T+0:00:30",
        ] {
            let offset: Offset = text.parse().unwrap();
            assert_eq!(offset.to_string(), text);
            assert_eq!(offset.to_string().parse::<Offset>().unwrap(), offset);
        }
        assert_eq!("T+48h".parse::<Offset>().unwrap().to_string(), "T+2d");
        assert_eq!("T+1w".parse::<Offset>().unwrap().to_string(), "T+7d");
        assert_eq!("T0".parse::<Offset>().unwrap(), Offset::ZERO);
    }

    #[test]
    fn calendar_month_follows_the_zone() {
        let tz = TimeZone::get("America/New_York").unwrap();
        let t0: Timestamp = "2025-08-23T06:00:00Z".parse().unwrap();
        let month = "T+1 month".parse::<Offset>().unwrap().resolve(t0, &tz);
        assert_eq!(month.to_string(), "2025-09-23T06:00:00Z");
        // Across the end of daylight saving time the wall clock stays at 02:00.
        let t0: Timestamp = "2025-10-25T06:00:00Z".parse().unwrap();
        let month = "T+1 month".parse::<Offset>().unwrap().resolve(t0, &tz);
        assert_eq!(month.to_string(), "2025-11-25T07:00:00Z");
    }

    #[test]
    fn durations_and_deadlines() {
        assert_eq!("500ms".parse::<Dur>().unwrap(), Dur(500));
        assert_eq!("2s".parse::<Dur>().unwrap(), Dur(2000));
        assert_eq!("10 minutes".parse::<Dur>().unwrap(), Dur(600_000));
        assert_eq!("< 2 minutes".parse::<Dur>().unwrap(), Dur(120_000));
        assert_eq!("1h30m".parse::<Dur>().unwrap(), Dur(5_400_000));
        assert_eq!(Dur(5_400_000).to_string(), "1h30m");
        assert_eq!(Dur(318_100).to_string(), "5m18.1s");
        assert_eq!("5m18.1s".parse::<Dur>().unwrap(), Dur(318_100));
        assert_eq!(Dur(1_500).to_string(), "1.5s");
        assert!("1 month".parse::<Dur>().is_err());
        assert!("fast".parse::<Dur>().is_err());
        assert!("5".parse::<Dur>().is_err());
    }

    #[test]
    fn thresholds_and_conditions() {
        assert_eq!(
            "0.1%".parse::<Quantity>().unwrap(),
            Quantity {
                value: 0.1,
                unit: Unit::Percent
            }
        );
        assert_eq!(
            "2s".parse::<Quantity>().unwrap(),
            Quantity {
                value: 2000.0,
                unit: Unit::Ms
            }
        );
        assert_eq!(
            "4.0".parse::<Quantity>().unwrap(),
            Quantity {
                value: 4.0,
                unit: Unit::Number
            }
        );
        let c: Condition = "p95_latency > 2000ms".parse().unwrap();
        assert_eq!(c.sli, "p95_latency");
        assert_eq!(c.comparison, Comparison::Above);
        assert!(c.comparison.holds(2001.0, c.threshold.value));
        assert!("error_rate 1%".parse::<Condition>().is_err());
        assert!("> 1%".parse::<Condition>().is_err());
        assert!("error_rate > lots".parse::<Condition>().is_err());
    }
}
