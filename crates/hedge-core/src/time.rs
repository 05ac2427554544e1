//! Time as a value: seconds since the Unix epoch (UTC). The core never reads a clock; callers pass time in.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_unix(s: i64) -> Self {
        Timestamp(s)
    }
    pub const fn unix(self) -> i64 {
        self.0
    }
    pub fn plus_seconds(self, s: i64) -> Self {
        Timestamp(self.0.saturating_add(s))
    }
    /// Midnight UTC at the start of the given civil date. `month` is 1..=12, `day` 1..=31 (not checked
    /// against the month's length: callers validate input first).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Self {
        Timestamp(days_from_civil(year, month, day) * 86_400)
    }
    /// A real UTC date-time, or `None`: checks the month's length (leap years included), hours 0-23,
    /// minutes 0-59 and seconds 0-60 (a leap second counts as the next minute's first). Parsers of outside
    /// input use this, never [`Timestamp::from_ymd`], so `2027-02-31` is refused rather than read as March 3.
    pub fn from_civil_checked(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        Some(Timestamp::from_ymd(year, month, day).plus_seconds(i64::from(hour * 3600 + minute * 60 + second)))
    }
    /// (year, month, day, hour, minute, second) in UTC.
    pub fn to_civil(self) -> (i32, u32, u32, u32, u32, u32) {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339, UTC: `2027-03-01T00:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.to_civil();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}
impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(Timestamp::from_ymd(1970, 1, 1).unix(), 0);
        assert_eq!(Timestamp::from_ymd(2027, 3, 1).to_string(), "2027-03-01T00:00:00Z");
        assert_eq!(Timestamp::from_unix(1_700_000_000).to_string(), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn checked_civil_refuses_impossible_dates() {
        assert_eq!(Timestamp::from_civil_checked(2027, 3, 1, 0, 0, 0), Some(Timestamp::from_ymd(2027, 3, 1)));
        assert_eq!(Timestamp::from_civil_checked(2028, 2, 29, 12, 0, 0).map(|t| t.to_string()).as_deref(), Some("2028-02-29T12:00:00Z"));
        for (y, mo, d, h, mi, s) in [(2027, 2, 29, 0, 0, 0), (2027, 2, 31, 0, 0, 0), (2100, 2, 29, 0, 0, 0), (2027, 4, 31, 0, 0, 0),
            (2027, 13, 1, 0, 0, 0), (2027, 0, 1, 0, 0, 0), (2027, 1, 0, 0, 0, 0), (2027, 1, 1, 24, 0, 0), (2027, 1, 1, 0, 60, 0), (2027, 1, 1, 0, 0, 61)]
        {
            assert_eq!(Timestamp::from_civil_checked(y, mo, d, h, mi, s), None, "{y}-{mo}-{d}T{h}:{mi}:{s}");
        }
        assert!(Timestamp::from_civil_checked(2000, 2, 29, 0, 0, 0).is_some());
    }

    proptest! {
        #[test]
        fn civil_round_trip(s in -10_000_000_000i64..10_000_000_000) {
            let (y, m, d, h, mi, sec) = Timestamp(s).to_civil();
            let back = Timestamp::from_ymd(y, m, d).unix() + i64::from(h * 3600 + mi * 60 + sec);
            prop_assert_eq!(back, s);
        }
    }
}
