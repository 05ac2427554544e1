//! The series sampler: GPUs in use per provider and the cumulative cost, every `every` seconds, halving
//! its resolution (keeping every other point, doubling the interval) past 2,048 points.

use super::Series;
use crate::queue::SimTime;
use hedge_core::{Money, ProviderId};
use std::collections::BTreeMap;

const MAX_POINTS: usize = 2048;

pub(super) struct Sampler {
    every: i64,
    t: Vec<SimTime>,
    gpus: Vec<Vec<u32>>,
    cost: Vec<Money>,
}

impl Sampler {
    pub fn new(every_s: i64, providers: usize) -> Self {
        Sampler {
            every: every_s.max(1),
            t: Vec::new(),
            gpus: vec![Vec::new(); providers],
            cost: Vec::new(),
        }
    }

    /// The current interval.
    pub fn every(&self) -> i64 {
        self.every
    }

    /// Records a point at `now` unless the last one is closer than the interval.
    pub fn sample(
        &mut self,
        now: SimTime,
        gpus_of: impl Fn(usize) -> u32,
        cost: impl FnOnce() -> Money,
    ) {
        if self.t.len() >= MAX_POINTS {
            fn keep<T>(v: &mut Vec<T>) {
                let mut i = 0;
                v.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
            }
            keep(&mut self.t);
            keep(&mut self.cost);
            for s in &mut self.gpus {
                keep(s);
            }
            self.every *= 2;
        }
        if self.t.last().is_some_and(|&t| now - t < self.every) {
            return;
        }
        self.t.push(now);
        for (p, s) in self.gpus.iter_mut().enumerate() {
            s.push(gpus_of(p));
        }
        self.cost.push(cost());
    }

    pub fn into_series(self, providers: &[ProviderId]) -> Series {
        let mut gpus_by_provider = BTreeMap::new();
        for (p, s) in providers.iter().zip(self.gpus) {
            gpus_by_provider.insert(p.to_string(), s);
        }
        Series {
            every_s: self.every,
            t: self.t,
            gpus_by_provider,
            cumulative_cost: self.cost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_its_resolution_past_the_limit() {
        let mut s = Sampler::new(10, 1);
        for i in 0..=(MAX_POINTS as i64) {
            s.sample(i * 10, |_| 1, || Money::from_micros(i));
        }
        let series = s.into_series(&[ProviderId::new("aws")]);
        assert_eq!(series.every_s, 20);
        assert_eq!(series.t.len(), MAX_POINTS / 2 + 1);
        assert!(series.t.windows(2).all(|w| w[1] - w[0] == 20));
        assert_eq!(series.cumulative_cost.len(), series.t.len());
        assert_eq!(series.gpus_by_provider["aws"].len(), series.t.len());
    }

    #[test]
    fn skips_points_closer_than_the_interval() {
        let mut s = Sampler::new(60, 1);
        s.sample(0, |_| 1, || Money::ZERO);
        s.sample(30, |_| 2, || Money::ZERO);
        s.sample(60, |_| 3, || Money::ZERO);
        let series = s.into_series(&[ProviderId::new("aws")]);
        assert_eq!(series.t, vec![0, 60]);
        assert_eq!(series.gpus_by_provider["aws"], vec![1, 3]);
    }
}
