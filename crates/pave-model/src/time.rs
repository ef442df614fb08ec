//! Instants as milliseconds since the Unix epoch, shown and read as RFC 3339 in UTC.
//! Kept here (not a date crate) because the domain needs only this, and it stays pure: the
//! caller passes `now` in.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 (`2024-05-01T10:00:00Z`, `2024-05-01T12:00:00.5+02:00`).
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, String> {
        let bad = || format!("{s:?} is not an RFC 3339 time such as 2024-05-01T10:00:00Z");
        let b = s.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't' | b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
            let t = s.get(r).ok_or_else(bad)?;
            if !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse::<i64>().map_err(|_| bad())
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || min > 59
            || sec > 60
        {
            return Err(bad());
        }
        let mut i = 19;
        let mut millis = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(bad());
            }
            let frac = &s[start..i.min(start + 3)];
            millis = frac.parse::<i64>().map_err(|_| bad())? * 10i64.pow(3 - frac.len() as u32);
        }
        let offset_min = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
                if *sign == b'+' { m } else { -m }
            }
            _ => return Err(bad()),
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + min * 60 + sec.min(59) - offset_min * 60;
        Ok(Timestamp(secs * 1000 + millis))
    }
}

impl Timestamp {
    /// The UTC calendar date `(year, month 1-12, day 1-31)`.
    pub fn date(self) -> (i64, i64, i64) {
        civil_from_days(self.0.div_euclid(86_400_000))
    }

    /// Midnight UTC of a calendar date.
    pub fn from_date(year: i64, month: i64, day: i64) -> Timestamp {
        Timestamp(days_from_civil(year, month, day) * 86_400_000)
    }

    /// Midnight UTC of the Monday starting this instant's ISO week.
    pub fn start_of_week(self) -> Timestamp {
        let days = self.0.div_euclid(86_400_000);
        // 1970-01-01 was a Thursday: day 0 has weekday index 3 counting from Monday.
        let monday = days - (days + 3).rem_euclid(7);
        Timestamp(monday * 86_400_000)
    }

    /// Midnight UTC of the first day of this instant's month.
    pub fn start_of_month(self) -> Timestamp {
        let (y, m, _) = self.date();
        Timestamp::from_date(y, m, 1)
    }

    /// The first day of the next month.
    pub fn next_month(self) -> Timestamp {
        let (y, m, _) = self.date();
        if m == 12 { Timestamp::from_date(y + 1, 1, 1) } else { Timestamp::from_date(y, m + 1, 1) }
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        write!(f, "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(1_700_000_000_123).to_string(), "2023-11-14T22:13:20.123Z");
        assert_eq!(Timestamp::parse_rfc3339("2023-11-14T22:13:20.123Z"), Ok(Timestamp(1_700_000_000_123)));
        assert_eq!(Timestamp::parse_rfc3339("2023-11-15T00:13:20+02:00"), Ok(Timestamp(1_700_000_000_000)));
        assert_eq!(Timestamp::parse_rfc3339("2024-02-29T00:00:00.5Z").map(|t| t.0 % 1000), Ok(500));
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
        for bad in ["", "2023-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2023-01-01 00:00", "2023-01-01T00:00:00"] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn calendar_helpers() {
        let t = Timestamp::parse_rfc3339("2024-02-29T13:00:00Z").expect("valid");
        assert_eq!(t.date(), (2024, 2, 29));
        assert_eq!(t.start_of_week().to_string(), "2024-02-26T00:00:00.000Z"); // a Monday
        assert_eq!(t.start_of_month().to_string(), "2024-02-01T00:00:00.000Z");
        assert_eq!(Timestamp::from_date(2024, 12, 5).next_month().to_string(), "2025-01-01T00:00:00.000Z");
    }

    #[test]
    fn round_trips_every_day_for_centuries() {
        for day in (-200_000..200_000).step_by(7) {
            let t = Timestamp(day * 86_400_000 + 3_723_004);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Ok(t));
        }
    }
}
