//! Integer money. Every amount is a whole number of micro-dollars (1e-6 USD), so sums are exact and
//! deterministic. Floating point appears only at the edges, through [`Money::from_usd_f64`] /
//! [`Money::to_usd_f64`] (and the same pair on [`Rate`]), the one named place where it is converted.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};

const MICROS_PER_USD: i64 = 1_000_000;
const SECONDS_PER_HOUR: i128 = 3600;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount {0} is not a finite number")]
    NotFinite(f64),
    #[error("amount {0} is negative")]
    Negative(f64),
    #[error("amount {0} is too large")]
    TooLarge(f64),
}

/// An amount of money in micro-dollars.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);
    pub const MAX: Money = Money(i64::MAX);

    pub const fn from_micros(micros: i64) -> Self {
        Money(micros)
    }
    pub const fn micros(self) -> i64 {
        self.0
    }
    pub const fn from_usd(usd: i64) -> Self {
        Money(usd * MICROS_PER_USD)
    }
    /// Converts a dollar amount read from outside (a CSV cell, a YAML number), rounding to the nearest
    /// micro-dollar. Rejects NaN, infinities, negatives and amounts beyond about 9.2 trillion dollars.
    pub fn from_usd_f64(usd: f64) -> Result<Self, MoneyError> {
        if !usd.is_finite() {
            return Err(MoneyError::NotFinite(usd));
        }
        if usd < 0.0 {
            return Err(MoneyError::Negative(usd));
        }
        let micros = (usd * MICROS_PER_USD as f64).round();
        if micros >= i64::MAX as f64 {
            return Err(MoneyError::TooLarge(usd));
        }
        Ok(Money(micros as i64))
    }
    pub fn to_usd_f64(self) -> f64 {
        self.0 as f64 / MICROS_PER_USD as f64
    }
    /// For reports: whole cents with thousands separators, `$1,884,858.08` (rounded half away from zero).
    pub fn cents_grouped(self) -> CentsGrouped {
        CentsGrouped(self)
    }
    pub fn saturating_add(self, o: Money) -> Money {
        Money(self.0.saturating_add(o.0))
    }
    pub fn checked_mul(self, n: i64) -> Option<Money> {
        self.0.checked_mul(n).map(Money)
    }
}

impl fmt::Display for Money {
    /// `$12.345678` style, exact, with trailing zeros of the micro part dropped to two decimals at least.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / MICROS_PER_USD as u64;
        let frac = abs % MICROS_PER_USD as u64;
        let mut frac_s = format!("{frac:06}");
        while frac_s.len() > 2 && frac_s.ends_with('0') {
            frac_s.pop();
        }
        write!(f, "{sign}${whole}.{frac_s}")
    }
}
impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
// Arithmetic saturates at the ends of the range (about ±$9.2 trillion) instead of overflowing: a sum of
// outside figures (a commitment's fee over a long window, a fuzzed rate) never panics or wraps.
impl Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0.saturating_add(o.0))
    }
}
impl AddAssign for Money {
    fn add_assign(&mut self, o: Money) {
        self.0 = self.0.saturating_add(o.0);
    }
}
impl Sub for Money {
    type Output = Money;
    fn sub(self, o: Money) -> Money {
        Money(self.0.saturating_sub(o.0))
    }
}
impl SubAssign for Money {
    fn sub_assign(&mut self, o: Money) {
        self.0 = self.0.saturating_sub(o.0);
    }
}
impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(self.0.saturating_neg())
    }
}
impl Mul<i64> for Money {
    type Output = Money;
    fn mul(self, n: i64) -> Money {
        Money(self.0.saturating_mul(n))
    }
}
impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

/// [`Money`] shown as whole cents with thousands separators; see [`Money::cents_grouped`].
#[derive(Clone, Copy, Debug)]
pub struct CentsGrouped(Money);

impl fmt::Display for CentsGrouped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0.micros();
        let sign = if m < 0 { "-" } else { "" };
        let cents = (m.unsigned_abs() + 5_000) / 10_000;
        let grouped = group_thousands(&(cents / 100).to_string());
        write!(f, "{sign}${grouped}.{:02}", cents % 100)
    }
}

/// `"1234567"` as `"1,234,567"`: a comma before every third character counted from the right. For reports'
/// figures (`digits` is a whole number's decimal digits, without sign).
#[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` is newer than the workspace's rust-version (1.85)
pub fn group_thousands(digits: &str) -> String {
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

/// A price per hour (micro-dollars per hour): per instance, per GPU, or per node, as its owner documents.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rate(Money);

impl Rate {
    pub const ZERO: Rate = Rate(Money::ZERO);

    pub const fn per_hour(m: Money) -> Self {
        Rate(m)
    }
    pub const fn hourly(self) -> Money {
        self.0
    }
    pub fn from_usd_per_hour_f64(usd: f64) -> Result<Self, MoneyError> {
        Money::from_usd_f64(usd).map(Rate)
    }
    pub fn to_usd_per_hour_f64(self) -> f64 {
        self.0.to_usd_f64()
    }
    /// The cost of running `seconds` at this rate, rounded half up to the micro-dollar. Exact for any
    /// duration: the product is taken in 128 bits.
    pub fn cost_for_seconds(self, seconds: u64) -> Money {
        let m = self.0.micros() as i128 * seconds as i128;
        let r = (m + SECONDS_PER_HOUR / 2).div_euclid(SECONDS_PER_HOUR);
        Money::from_micros(r.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }
    /// This rate multiplied by a count (instances, nodes, GPUs).
    pub fn times(self, n: u32) -> Rate {
        Rate(self.0 * n as i64)
    }
    /// This rate split over `n` units (per instance to per GPU), rounded to the nearest micro-dollar.
    pub fn per_unit(self, n: u32) -> Rate {
        if n == 0 {
            return self;
        }
        let n = n as i64;
        Rate(Money::from_micros((self.0.micros() + n / 2) / n))
    }
}
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/h", self.0)
    }
}
impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl Add for Rate {
    type Output = Rate;
    fn add(self, o: Rate) -> Rate {
        Rate(self.0 + o.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn converts_and_displays() {
        let m = Money::from_usd_f64(30.09784).unwrap();
        assert_eq!(m.micros(), 30_097_840);
        assert_eq!(m.to_string(), "$30.09784");
        assert_eq!(Money::from_usd(3).to_string(), "$3.00");
        assert_eq!((-Money::from_micros(1_500_000)).to_string(), "-$1.50");
        assert!(matches!(
            Money::from_usd_f64(-1.0),
            Err(MoneyError::Negative(_))
        ));
        assert!(matches!(
            Money::from_usd_f64(f64::NAN),
            Err(MoneyError::NotFinite(_))
        ));
        assert!(matches!(
            Money::from_usd_f64(1e300),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn cents_grouped() {
        for (micros, want) in [
            (0, "$0.00"),
            (4_999, "$0.00"),
            (5_000, "$0.01"),
            (999_995_000, "$1,000.00"),
            (1_884_858_079_357, "$1,884,858.08"),
            (-123_456_789, "-$123.46"),
        ] {
            assert_eq!(
                Money::from_micros(micros).cents_grouped().to_string(),
                want,
                "{micros}"
            );
        }
    }

    #[test]
    fn groups_thousands() {
        for (digits, want) in [
            ("", ""),
            ("7", "7"),
            ("123", "123"),
            ("1234", "1,234"),
            ("1234567", "1,234,567"),
        ] {
            assert_eq!(group_thousands(digits), want);
        }
    }

    #[test]
    fn rate_cost() {
        let r = Rate::from_usd_per_hour_f64(2.0).unwrap();
        assert_eq!(r.cost_for_seconds(1800), Money::from_usd(1));
        assert_eq!(r.cost_for_seconds(3600 * 24), Money::from_usd(48));
        assert_eq!(r.times(8).hourly(), Money::from_usd(16));
        assert_eq!(r.times(8).per_unit(8), r);
    }

    proptest! {
        #[test]
        fn cost_is_additive_within_rounding(micros in 0i64..1_000_000_000, a in 0u64..1_000_000, b in 0u64..1_000_000) {
            let r = Rate::per_hour(Money::from_micros(micros));
            let split = r.cost_for_seconds(a) + r.cost_for_seconds(b);
            let whole = r.cost_for_seconds(a + b);
            prop_assert!((split.micros() - whole.micros()).abs() <= 1);
        }
    }
}
