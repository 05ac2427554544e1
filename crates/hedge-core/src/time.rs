//! Time as a value: seconds since the Unix epoch (UTC). The core never reads a clock; callers pass time in.
//!
//! The calendar is `jiff`'s (civil dates only: no time zone database, and never `jiff::Timestamp::now`).
//! Every date string from outside goes through one grammar, [`Timestamp::parse_civil`]; months
//! (`YYYY-MM`) through [`YearMonth::parse`], which uses the same grammar.

use jiff::civil::{Date, DateTime};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// Why a date string was refused; the message quotes the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("{0:?} is not YYYY-MM-DD[THH:MM[:SS]][Z]")]
    Syntax(String),
    #[error("{0:?} is not a real date-time")]
    NotReal(String),
    #[error("{0:?} is not a YYYY-MM month")]
    NotMonth(String),
}

const EPOCH: DateTime = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);

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
    /// Midnight UTC at the start of the given civil date, for dates written in code. `month` must be
    /// 1..=12 (panics otherwise); a day past the month's end rolls over into the next month. Parsers of
    /// outside input use [`Timestamp::parse_civil`] or [`Timestamp::from_civil_checked`], which refuse
    /// `2027-02-31`.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Self {
        let first = Date::new(year as i16, month as i8, 1)
            .expect("from_ymd: year -9999..=9999, month 1..=12");
        Timestamp::of(first.to_datetime(jiff::civil::Time::midnight()))
            .plus_seconds((i64::from(day) - 1) * 86_400)
    }
    /// A real UTC date-time, or `None`: checks the month's length (leap years included), hours 0-23,
    /// minutes 0-59 and seconds 0-60 (a leap second counts as the next minute's first).
    pub fn from_civil_checked(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Option<Self> {
        let small = |v: u32, max: u32| (v <= max).then_some(v as i8);
        let leap = second == 60;
        let dt = DateTime::new(
            i16::try_from(year).ok()?,
            small(month, 12)?,
            small(day, 31)?,
            small(hour, 23)?,
            small(minute, 59)?,
            small(if leap { 59 } else { second }, 59)?,
            0,
        )
        .ok()?;
        Some(Timestamp::of(dt).plus_seconds(i64::from(leap)))
    }
    /// The one date grammar of Hedge: `YYYY-MM-DD`, optionally followed by `T` or a space and
    /// `HH:MM[:SS[.fraction]]`, optionally followed by `Z` or `+00:00` (UTC only; the fraction is
    /// dropped). Impossible dates (`2027-02-31`, `25:00`) are errors.
    pub fn parse_civil(s: &str) -> Result<Timestamp, TimeError> {
        let syntax = || TimeError::Syntax(s.to_owned());
        let t = s.trim();
        let t = t
            .strip_suffix('Z')
            .or_else(|| t.strip_suffix("+00:00"))
            .unwrap_or(t);
        let (date, time) = match t.split_once(['T', ' ']) {
            Some((d, tm)) => (d, Some(tm)),
            None => (t, None),
        };
        let num = |x: &str, len: usize| -> Result<u32, TimeError> {
            if x.len() == len && x.bytes().all(|b| b.is_ascii_digit()) {
                x.parse().map_err(|_| syntax())
            } else {
                Err(syntax())
            }
        };
        let d: Vec<&str> = date.split('-').collect();
        let [y, mo, da] = d[..] else {
            return Err(syntax());
        };
        let (y, mo, da) = (num(y, 4)?, num(mo, 2)?, num(da, 2)?);
        let (h, mi, se) = match time {
            None => (0, 0, 0),
            Some(tm) => {
                let p: Vec<&str> = tm.split(':').collect();
                match p[..] {
                    [h, mi] => (num(h, 2)?, num(mi, 2)?, 0),
                    [h, mi, se] => {
                        let (whole, frac) = se.split_once('.').unwrap_or((se, "0"));
                        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(syntax());
                        }
                        (num(h, 2)?, num(mi, 2)?, num(whole, 2)?)
                    }
                    _ => return Err(syntax()),
                }
            }
        };
        Timestamp::from_civil_checked(y as i32, mo, da, h, mi, se)
            .ok_or_else(|| TimeError::NotReal(s.to_owned()))
    }
    /// (year, month, day, hour, minute, second) in UTC. Instants beyond the civil range (years
    /// -9999..=9999) are clamped to its ends.
    pub fn to_civil(self) -> (i32, u32, u32, u32, u32, u32) {
        let dt = EPOCH
            .checked_add(SignedDuration::from_secs(self.0))
            .unwrap_or(if self.0 < 0 {
                DateTime::MIN
            } else {
                DateTime::MAX
            });
        (
            i32::from(dt.year()),
            dt.month() as u32,
            dt.day() as u32,
            dt.hour() as u32,
            dt.minute() as u32,
            dt.second() as u32,
        )
    }

    fn of(dt: DateTime) -> Self {
        Timestamp(dt.duration_since(EPOCH).as_secs())
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

/// A calendar month, `YYYY-MM`: the planner's horizon start and the start of existing contracts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct YearMonth {
    pub year: i32,
    /// 1..=12
    pub month: u32,
}

impl YearMonth {
    /// Parses `YYYY-MM` with the date grammar of [`Timestamp::parse_civil`] (as the first day of the
    /// month). A day part `YYYY-MM-DD` is refused: periods start on month boundaries.
    pub fn parse(s: &str) -> Result<YearMonth, TimeError> {
        let t = s.trim();
        if t.len() != 7 {
            return Err(TimeError::NotMonth(s.to_owned()));
        }
        let (year, month, ..) = Timestamp::parse_civil(&format!("{t}-01"))
            .map_err(|_| TimeError::NotMonth(s.to_owned()))?
            .to_civil();
        Ok(YearMonth { year, month })
    }
    /// Midnight UTC on the first day of the month.
    pub fn to_timestamp(self) -> Timestamp {
        Timestamp::from_ymd(self.year, self.month, 1)
    }
    /// Whole months from `self` to `other` (negative when `other` is earlier).
    pub fn months_until(self, other: YearMonth) -> i64 {
        (i64::from(other.year) - i64::from(self.year)) * 12 + i64::from(other.month)
            - i64::from(self.month)
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}
impl Serialize for YearMonth {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for YearMonth {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        YearMonth::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(Timestamp::from_ymd(1970, 1, 1).unix(), 0);
        assert_eq!(
            Timestamp::from_ymd(2027, 3, 1).to_string(),
            "2027-03-01T00:00:00Z"
        );
        assert_eq!(
            Timestamp::from_ymd(2027, 2, 29),
            Timestamp::from_ymd(2027, 3, 1),
            "code-written days roll over"
        );
        assert_eq!(
            Timestamp::from_unix(1_700_000_000).to_string(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            Timestamp::from_unix(i64::MIN).to_string(),
            "-9999-01-01T00:00:00Z"
        );
    }

    #[test]
    fn checked_civil_refuses_impossible_dates() {
        assert_eq!(
            Timestamp::from_civil_checked(2027, 3, 1, 0, 0, 0),
            Some(Timestamp::from_ymd(2027, 3, 1))
        );
        assert_eq!(
            Timestamp::from_civil_checked(2028, 2, 29, 12, 0, 0)
                .map(|t| t.to_string())
                .as_deref(),
            Some("2028-02-29T12:00:00Z")
        );
        for (y, mo, d, h, mi, s) in [
            (2027, 2, 29, 0, 0, 0),
            (2027, 2, 31, 0, 0, 0),
            (2100, 2, 29, 0, 0, 0),
            (2027, 4, 31, 0, 0, 0),
            (2027, 13, 1, 0, 0, 0),
            (2027, 0, 1, 0, 0, 0),
            (2027, 1, 0, 0, 0, 0),
            (2027, 1, 1, 24, 0, 0),
            (2027, 1, 1, 0, 60, 0),
            (2027, 1, 1, 0, 0, 61),
        ] {
            assert_eq!(
                Timestamp::from_civil_checked(y, mo, d, h, mi, s),
                None,
                "{y}-{mo}-{d}T{h}:{mi}:{s}"
            );
        }
        assert!(Timestamp::from_civil_checked(2000, 2, 29, 0, 0, 0).is_some());
        assert_eq!(
            Timestamp::from_civil_checked(2027, 1, 1, 23, 59, 60),
            Some(Timestamp::from_ymd(2027, 1, 2)),
            "leap second"
        );
    }

    #[test]
    fn one_grammar() {
        let ok = |s: &str| Timestamp::parse_civil(s).unwrap().to_string();
        assert_eq!(ok("2027-03-01"), "2027-03-01T00:00:00Z");
        assert_eq!(ok("2027-03-01T06:30"), "2027-03-01T06:30:00Z");
        assert_eq!(ok("2027-03-01T06:30:15Z"), "2027-03-01T06:30:15Z");
        assert_eq!(ok("2024-02-26 17:09:00+00:00"), "2024-02-26T17:09:00Z");
        assert_eq!(ok(" 2024-02-26 17:09:00.123 "), "2024-02-26T17:09:00Z");
        assert_eq!(
            Timestamp::parse_civil("2027-02-31"),
            Err(TimeError::NotReal("2027-02-31".into()))
        );
        assert_eq!(
            Timestamp::parse_civil("2027-02-31")
                .unwrap_err()
                .to_string(),
            "\"2027-02-31\" is not a real date-time"
        );
        assert_eq!(
            Timestamp::parse_civil("2027-01-01T24:00"),
            Err(TimeError::NotReal("2027-01-01T24:00".into()))
        );
        for bad in [
            "",
            "tomorrow",
            "2027-3-1",
            "27-03-01",
            "2027-03-01T6:30",
            "2027-03-01T06",
            "2027-03-01T06:30:00+02:00",
            "2027-03-01T06:30:1.",
            "+2027-03-01",
        ] {
            assert_eq!(
                Timestamp::parse_civil(bad),
                Err(TimeError::Syntax(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn months() {
        assert_eq!(
            YearMonth::parse("2027-02"),
            Ok(YearMonth {
                year: 2027,
                month: 2
            })
        );
        assert_eq!(
            YearMonth::parse("2027-02").unwrap().to_timestamp(),
            Timestamp::from_ymd(2027, 2, 1)
        );
        for bad in ["2027-13", "2027-00", "2027-02-01", "27-02", "2027-2", ""] {
            assert_eq!(
                YearMonth::parse(bad),
                Err(TimeError::NotMonth(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(
            YearMonth {
                year: 2027,
                month: 11
            }
            .months_until(YearMonth {
                year: 2028,
                month: 2
            }),
            3
        );
    }

    proptest! {
        #[test]
        fn civil_round_trip(s in -10_000_000_000i64..10_000_000_000) {
            let (y, m, d, h, mi, sec) = Timestamp(s).to_civil();
            prop_assert_eq!(Timestamp::from_civil_checked(y, m, d, h, mi, sec), Some(Timestamp(s)));
            prop_assert_eq!(Timestamp::parse_civil(&Timestamp(s).to_string()), Ok(Timestamp(s)));
        }
    }
}
