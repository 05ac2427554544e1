//! Streaming metrics with bounded memory: lazily integrated levels, a log-bucket histogram for JCT and
//! queueing delay (1% relative precision, exact mean), and a decimating time series.

use crate::queue::SimTime;
use serde::Serialize;

/// ∫ level dt, updated only when the level changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Integral {
    sum: i128,
    level: i64,
    last: SimTime,
}

impl Integral {
    pub fn add(&mut self, now: SimTime, delta: i64) {
        self.sum += self.level as i128 * (now - self.last) as i128;
        self.last = now;
        self.level += delta;
    }
    pub fn level(&self) -> i64 {
        self.level
    }
    /// The integral up to `now` (≥ the last change).
    pub fn at(&self, now: SimTime) -> i128 {
        self.sum + self.level as i128 * (now - self.last).max(0) as i128
    }
}

/// A histogram of non-negative durations in seconds with buckets 1% apart.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: u128,
    max: u64,
}

const GROWTH: f64 = 1.01;

impl Histogram {
    fn bucket(x: u64) -> usize {
        if x == 0 {
            0
        } else {
            1 + ((x as f64).ln() / GROWTH.ln()) as usize
        }
    }
    pub fn record(&mut self, x: u64) {
        let b = Self::bucket(x);
        if b >= self.buckets.len() {
            self.buckets.resize(b + 1, 0);
        }
        self.buckets[b] += 1;
        self.count += 1;
        self.sum += x as u128;
        self.max = self.max.max(x);
    }
    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }
    /// The `q` quantile (0..=1), as the lower edge of its bucket (within 1% of the true value).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (b, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return if b == 0 {
                    0
                } else {
                    GROWTH.powi(b as i32 - 1).ceil() as u64
                }
                .min(self.max);
            }
        }
        self.max
    }
    pub fn summary(&self) -> DistSummary {
        DistSummary {
            count: self.count,
            mean_s: round1(self.mean()),
            p50_s: self.quantile(0.5),
            p99_s: self.quantile(0.99),
            max_s: self.max,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DistSummary {
    pub count: u64,
    pub mean_s: f64,
    pub p50_s: u64,
    pub p99_s: u64,
    pub max_s: u64,
}

pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
pub(crate) fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integral() {
        let mut i = Integral::default();
        i.add(10, 4);
        i.add(20, -1);
        assert_eq!(i.at(30), 40 + 30);
        assert_eq!(i.level(), 3);
    }

    proptest! {
        #[test]
        fn quantiles_within_one_percent(mut xs in proptest::collection::vec(1u64..10_000_000, 1..300), q in 0.0f64..1.0) {
            let mut h = Histogram::default();
            for &x in &xs { h.record(x); }
            xs.sort();
            let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
            let exact = xs[rank - 1] as f64;
            let got = h.quantile(q) as f64;
            prop_assert!((got - exact).abs() <= exact * 0.011 + 1.0, "{} vs {}", got, exact);
        }
    }
}
