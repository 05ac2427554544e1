//! Seeded randomness. Every random draw of a run comes from a [`SimRng`] derived from the run's seed, so the
//! same seed gives the same run. Independent parts of the model (arrivals, outages, duration resampling)
//! take their own *stream* of the seed, so adding draws to one part does not shift the others.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Named streams of one seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Arrivals = 1,
    Outages = 2,
    Durations = 3,
    Spot = 4,
}

pub struct SimRng(ChaCha8Rng);

impl SimRng {
    pub fn new(seed: u64, stream: Stream) -> Self {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(stream as u64);
        SimRng(r)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0.gen::<f64>()
    }
    /// Uniform index in 0..n (n > 0).
    pub fn index(&mut self, n: usize) -> usize {
        self.0.gen_range(0..n)
    }
    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        // 1 - unit() is in (0, 1], so the log is finite.
        -mean * (1.0 - self.unit()).ln()
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// Log-normal with the parameters of the underlying normal.
    pub fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        (mu + sigma * self.normal()).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws_and_streams_differ() {
        let a: Vec<f64> = (0..5)
            .map({
                let mut r = SimRng::new(7, Stream::Arrivals);
                move |_| r.unit()
            })
            .collect();
        let b: Vec<f64> = (0..5)
            .map({
                let mut r = SimRng::new(7, Stream::Arrivals);
                move |_| r.unit()
            })
            .collect();
        let c: Vec<f64> = (0..5)
            .map({
                let mut r = SimRng::new(7, Stream::Outages);
                move |_| r.unit()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut r = SimRng::new(1, Stream::Durations);
        let mean = (0..20_000).map(|_| r.exp(10.0)).sum::<f64>() / 20_000.0;
        assert!((mean - 10.0).abs() < 0.5, "{mean}");
    }
}
