//! Unix-second timestamps rendered as RFC 3339 UTC (`2026-11-26T10:00:00Z`) without a date crate.

use serde::{Serialize, Serializer};

/// Seconds since the Unix epoch, serialised as an RFC 3339 UTC string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn rfc3339(self) -> String {
        let secs = self.0;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    }

    /// Reads `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z]` in UTC: RFC 3339 as natgw writes it, and the
    /// `2026-11-26 10:00:00.000` of Logs Insights' `bin()` and `@timestamp`. `None` otherwise.
    pub fn parse(s: &str) -> Option<Timestamp> {
        let b = s.trim().as_bytes();
        if b.len() < 19
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u64> {
            std::str::from_utf8(&b[r]).ok().filter(|t| t.bytes().all(|c| c.is_ascii_digit()))?.parse().ok()
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let rest = &b[19..];
        let rest = rest.strip_suffix(b"Z").unwrap_or(rest);
        let frac_ok = rest.is_empty() || (rest[0] == b'.' && rest[1..].iter().all(u8::is_ascii_digit));
        if !frac_ok || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let days = days_from_civil(y as i64, mo as u32, d as u32);
        u64::try_from(days).ok().map(|days| Timestamp(days * 86_400 + h * 3600 + mi * 60 + sec))
    }

    /// `HH:MM` of the day (UTC), for compact tables.
    pub fn hh_mm(self) -> String {
        let rem = self.0 % 86_400;
        format!("{:02}:{:02}", rem / 3600, rem % 3600 / 60)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "date-time", "description": "RFC 3339 UTC" })
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(951_782_400).rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(Timestamp(1_795_687_200).rfc3339(), "2026-11-26T10:00:00Z");
        assert_eq!(Timestamp(1_795_687_200 + 3661).hh_mm(), "11:01");
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn parses_what_it_writes_and_what_insights_writes() {
        for t in [0u64, 951_782_400, 1_780_000_000, 4_102_444_799] {
            assert_eq!(Timestamp::parse(&Timestamp(t).rfc3339()), Some(Timestamp(t)));
        }
        assert_eq!(Timestamp::parse("2026-05-28 20:26:00.000"), Some(Timestamp(1_779_999_960)));
        for bad in ["", "2026-05-28", "2026-13-01T00:00:00Z", "2026-05-28T20:26:00+02:00", "2026-05-28T2a:26:00Z"] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }
}
