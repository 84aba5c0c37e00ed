//! The dates documents declare about themselves, in the two notations they come in: ISO 8601 /
//! RFC 3339 as written by people and most software (`2026-10-14`, `2026-10-14 09:30`,
//! `2026-10-14T09:30:00+02:00`) and the PDF date string (`D:20260114093000+01'00'`).
//!
//! A date without a zone is taken as UTC. Most of them are really Danish local time, which is
//! at most two hours off; knowing that exactly would need the time-zone database (chrono-tz),
//! which is heavy for something that only orders search results. A value that cannot be read is
//! `None`: the caller keeps the document and falls back to another date.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// Parses `2026-10-14`, `2026-10-14 09:30`, `2026-10-14T09:30:00.5`, each optionally followed
/// by a zone: `Z`, `UTC`, `GMT`, `+02:00`, `+0200` or `+02` (a space before the zone is allowed).
pub(crate) fn parse_iso(value: &str) -> Option<DateTime<Utc>> {
    let mut rest = Scanner(value.trim());
    let year = rest.digits(4, 4)?;
    rest.expect('-')?;
    let month = rest.digits(2, 2)?;
    rest.expect('-')?;
    let day = rest.digits(2, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if rest.is_empty() {
        return Some(Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN)));
    }

    if !(rest.eat('T') || rest.eat('t') || rest.eat(' ')) {
        return None;
    }
    let hour = rest.digits(2, 2)?;
    rest.expect(':')?;
    let minute = rest.digits(2, 2)?;
    let mut second = 0;
    let mut nanos = 0;
    if rest.eat(':') {
        second = rest.digits(2, 2)?;
        if rest.eat('.') || rest.eat(',') {
            nanos = rest.fraction()?;
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second.min(59), nanos)?;
    let local = date.and_time(time);

    rest.eat(' ');
    let offset = if rest.is_empty() {
        None
    } else if rest.eat('Z') || rest.eat('z') || rest.eat_str("UTC") || rest.eat_str("GMT") {
        Some(0)
    } else {
        Some(rest.offset(false)?)
    };
    if !rest.is_empty() {
        return None;
    }
    with_offset(local, offset)
}

/// Parses a PDF date string (PDF 32000-1, 7.9.4): `D:YYYYMMDDHHmmSSOHH'mm'`, where everything
/// after the year is optional and `O` is `+`, `-` or `Z`. The `D:` prefix and the apostrophes
/// are often missing or misplaced in real files, and both are tolerated.
pub(crate) fn parse_pdf(value: &str) -> Option<DateTime<Utc>> {
    let trimmed = value.trim();
    let mut rest = Scanner(trimmed.strip_prefix("D:").unwrap_or(trimmed));
    let year = rest.digits(4, 4)?;
    let mut fields = [1, 1, 0, 0, 0];
    for field in &mut fields {
        match rest.digits(2, 2) {
            Some(value) => *field = value,
            None => break,
        }
    }
    let [month, day, hour, minute, second] = fields;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let time = NaiveTime::from_hms_opt(hour, minute, second.min(59))?;
    let local = date.and_time(time);

    let offset = if rest.is_empty() {
        None
    } else if rest.eat('Z') || rest.eat('z') {
        // Some producers write `Z00'00'` for UTC.
        rest.offset_digits(true);
        Some(0)
    } else {
        Some(rest.offset(true)?)
    };
    if !rest.is_empty() {
        return None;
    }
    with_offset(local, offset)
}

/// Converts a local date-time with an offset east of UTC in seconds (`None`: taken as UTC).
fn with_offset(local: NaiveDateTime, offset: Option<i32>) -> Option<DateTime<Utc>> {
    let zone = FixedOffset::east_opt(offset.unwrap_or(0))?;
    let zoned = zone.from_local_datetime(&local).single()?;
    Some(zoned.with_timezone(&Utc))
}

/// A tiny cursor over ASCII-structured text.
struct Scanner<'a>(&'a str);

impl Scanner<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn eat(&mut self, expected: char) -> bool {
        match self.0.strip_prefix(expected) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    fn eat_str(&mut self, expected: &str) -> bool {
        match self.0.strip_prefix(expected) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, expected: char) -> Option<()> {
        self.eat(expected).then_some(())
    }

    /// Between `min` and `max` ASCII digits as a number.
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let count = self
            .0
            .bytes()
            .take(max)
            .take_while(u8::is_ascii_digit)
            .count();
        if count < min {
            return None;
        }
        let (digits, rest) = self.0.split_at(count);
        self.0 = rest;
        digits.parse().ok()
    }

    /// The digits of a decimal fraction of a second, as nanoseconds (extra digits are dropped).
    fn fraction(&mut self) -> Option<u32> {
        let count = self.0.bytes().take_while(u8::is_ascii_digit).count();
        if count == 0 {
            return None;
        }
        let (digits, rest) = self.0.split_at(count);
        self.0 = rest;
        let mut nanos = 0u32;
        for (i, digit) in digits.bytes().chain(std::iter::repeat(b'0')).enumerate() {
            if i == 9 {
                break;
            }
            nanos = nanos * 10 + u32::from(digit - b'0');
        }
        Some(nanos)
    }

    /// `+HH:MM`, `+HHMM` or `+HH` (and with `pdf`, `+HH'MM'` or `+HH'MM`), in seconds.
    fn offset(&mut self, pdf: bool) -> Option<i32> {
        let sign = if self.eat('+') {
            1
        } else if self.eat('-') || self.eat('\u{2212}') {
            -1
        } else {
            return None;
        };
        let (hours, minutes) = self.offset_digits(pdf)?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * i32::try_from(hours * 3600 + minutes * 60).ok()?)
    }

    fn offset_digits(&mut self, pdf: bool) -> Option<(u32, u32)> {
        let hours = self.digits(2, 2)?;
        let separated = self.eat(':') || (pdf && self.eat('\''));
        let minutes = match self.digits(2, 2) {
            Some(minutes) => minutes,
            None if separated && !pdf => return None,
            None => 0,
        };
        if pdf {
            self.eat('\'');
        }
        Some((hours, minutes))
    }
}

/// Dates in every common form, in UTC: ISO 8601 / RFC 3339 (see [`parse_iso`]) and RFC 822
/// as feeds and mail write them (with a numeric zone, a zone name such as `GMT` or `CEST`,
/// or no zone). A date without a zone is taken as UTC. `None` when nothing fits.
pub fn parse_date(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    parse_iso(value).or_else(|| parse_rfc822(value))
}

/// Zone names seen in feeds, with their offsets in minutes.
const ZONES: &[(&str, i32)] = &[
    ("UT", 0),
    ("UTC", 0),
    ("GMT", 0),
    ("Z", 0),
    ("WET", 0),
    ("WEST", 60),
    ("BST", 60),
    ("CET", 60),
    ("MET", 60),
    ("CEST", 120),
    ("MEST", 120),
    ("EET", 120),
    ("EEST", 180),
    ("EST", -300),
    ("EDT", -240),
    ("CST", -360),
    ("CDT", -300),
    ("MST", -420),
    ("MDT", -360),
    ("PST", -480),
    ("PDT", -420),
];

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// `[Day,] DD Mon YYYY HH:MM[:SS] [zone]`, tolerating long month and day names, a missing or
/// named zone and single-digit days and hours.
fn parse_rfc822(value: &str) -> Option<DateTime<Utc>> {
    let mut tokens: Vec<&str> = value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .collect();
    if tokens
        .first()
        .is_some_and(|t| t.chars().all(char::is_alphabetic))
    {
        tokens.remove(0);
    }
    if tokens.len() < 4 {
        return None;
    }
    let day: u32 = tokens[0].parse().ok()?;
    let month_name = tokens[1].get(..3)?.to_ascii_lowercase();
    let month = u32::try_from(MONTHS.iter().position(|m| *m == month_name)? + 1).ok()?;
    let mut year: i32 = tokens[2].parse().ok()?;
    if tokens[2].len() == 2 {
        year += if year < 50 { 2000 } else { 1900 };
    }
    let mut time = tokens[3].split(':');
    let hour: u32 = time.next()?.parse().ok()?;
    let minute: u32 = time.next()?.parse().ok()?;
    let second: u32 = time.next().map_or(Some(0), |s| s.parse().ok())?;
    let offset_minutes = match tokens.get(4) {
        None => 0,
        Some(zone) => zone_offset(zone)?,
    };
    if tokens.len() > 5 {
        return None;
    }
    let local = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(
        hour % 24,
        minute,
        second.min(59),
    )?;
    let offset = FixedOffset::east_opt(offset_minutes * 60)?;
    offset
        .from_local_datetime(&local)
        .single()
        .map(|d| d.with_timezone(&Utc))
}

fn zone_offset(zone: &str) -> Option<i32> {
    let zone = zone.trim_matches(|c| c == '(' || c == ')');
    if let Some(sign) = zone.strip_prefix(['+', '-']).map(|_| zone.as_bytes()[0]) {
        let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let hours: i32 = digits[..2].parse().ok()?;
        let minutes: i32 = digits[2..].parse().ok()?;
        let total = hours * 60 + minutes;
        return Some(if sign == b'-' { -total } else { total });
    }
    let upper = zone.to_ascii_uppercase();
    ZONES
        .iter()
        .find(|(name, _)| *name == upper)
        .map(|(_, offset)| *offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_every_common_form() {
        let utc = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        let cases = [
            (
                "Tue, 14 Oct 2025 09:30:00 +0200",
                utc("2025-10-14T07:30:00Z"),
            ),
            (
                "Tue, 14 Oct 2025 09:30:00 CEST",
                utc("2025-10-14T07:30:00Z"),
            ),
            ("Tue, 14 Jan 2025 09:30:00 CET", utc("2025-01-14T08:30:00Z")),
            ("Tue, 14 Oct 2025 09:30:00", utc("2025-10-14T09:30:00Z")),
            ("Tue, 14 Oct 2025 09:30:00 GMT", utc("2025-10-14T09:30:00Z")),
            (
                "Tuesday, 14 October 2025 9:30 EDT",
                utc("2025-10-14T13:30:00Z"),
            ),
            ("14 Oct 2025 09:30:00 -0000", utc("2025-10-14T09:30:00Z")),
            ("2025-10-14T09:30:00+02:00", utc("2025-10-14T07:30:00Z")),
            ("2025-10-14T09:30:00Z", utc("2025-10-14T09:30:00Z")),
            ("2025-10-14 09:30:00+0200", utc("2025-10-14T07:30:00Z")),
            ("2025-10-14T09:30:00", utc("2025-10-14T09:30:00Z")),
            ("2025-10-14", utc("2025-10-14T00:00:00Z")),
            ("i går", None),
            ("Tue, 14 Oct 2025 09:30:00 XYZ", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_date(input), expected, "{input:?}");
        }
    }

    fn utc(text: &str) -> Option<DateTime<Utc>> {
        Some(
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc),
        )
    }

    #[test]
    fn iso_dates() {
        let cases = [
            ("2026-10-14", utc("2026-10-14T00:00:00Z")),
            ("  2026-10-14  ", utc("2026-10-14T00:00:00Z")),
            ("2026-10-14 09:30", utc("2026-10-14T09:30:00Z")),
            ("2026-10-14T09:30", utc("2026-10-14T09:30:00Z")),
            ("2026-10-14T09:30:15", utc("2026-10-14T09:30:15Z")),
            ("2026-10-14t09:30:15z", utc("2026-10-14T09:30:15Z")),
            ("2026-10-14T09:30:00Z", utc("2026-10-14T09:30:00Z")),
            ("2026-10-14T09:30:00+02:00", utc("2026-10-14T07:30:00Z")),
            ("2026-10-14T09:30:00-0130", utc("2026-10-14T11:00:00Z")),
            ("2026-10-14 09:30:00 +02", utc("2026-10-14T07:30:00Z")),
            ("2026-10-14 09:30 UTC", utc("2026-10-14T09:30:00Z")),
            (
                "2026-01-14T09:30:00.123456789",
                utc("2026-01-14T09:30:00.123456789Z"),
            ),
            ("2026-01-14T09:30:00.5+01:00", utc("2026-01-14T08:30:00.5Z")),
            (
                "2026-01-14T09:30:00.1234567891234",
                utc("2026-01-14T09:30:00.123456789Z"),
            ),
            ("2016-12-31T23:59:60Z", utc("2016-12-31T23:59:59Z")),
            ("", None),
            ("i går", None),
            ("14-10-2026", None),
            ("2026-13-01", None),
            ("2026-02-30", None),
            ("2026-10-14T25:00", None),
            ("2026-10-14T09", None),
            ("2026-10-14T09:30:00+02:", None),
            ("2026-10-14T09:30:00+25:00", None),
            ("2026-10-14T09:30:00 CEST", None),
            ("2026-10-14 og lidt mere", None),
            ("2026-10-14T09:30:00.", None),
            ("26-10-14", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_iso(text), expected, "{text:?}");
        }
    }

    #[test]
    fn pdf_dates() {
        let cases = [
            ("D:20260114093000+01'00'", utc("2026-01-14T08:30:00Z")),
            ("D:20260114093000+01'00", utc("2026-01-14T08:30:00Z")),
            ("D:20260114093000-05'30'", utc("2026-01-14T15:00:00Z")),
            ("D:20260114093000Z", utc("2026-01-14T09:30:00Z")),
            ("D:20260114093000Z00'00'", utc("2026-01-14T09:30:00Z")),
            ("D:20260114093000", utc("2026-01-14T09:30:00Z")),
            ("D:2026011409", utc("2026-01-14T09:00:00Z")),
            ("D:2026", utc("2026-01-01T00:00:00Z")),
            ("20260114093000+0100", utc("2026-01-14T08:30:00Z")),
            ("D:20260114093000+01", utc("2026-01-14T08:30:00Z")),
            ("", None),
            ("D:", None),
            ("D:00000000000000", None),
            ("D:20261314093000", None),
            ("D:20260114093000+01'00'junk", None),
            ("Tue Jan 14 09:30:00 2026", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_pdf(text), expected, "{text:?}");
        }
    }
}
