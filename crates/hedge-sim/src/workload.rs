//! A workload that follows a plan's demand: `hedge simulate --workload-from-plan PLAN --scenario NAME`.
//!
//! The planner sizes commitments for a demand scenario given as the average number of GPUs busy per period
//! and accelerator. To simulate the workload the plan was made for, [`PlanWorkload`] generates jobs whose
//! busy GPUs follow that curve over time, with job sizes drawn from the Philly (duration, GPUs) pairs.
//!
//! ## Model
//! For each accelerator, arrivals are a Poisson process whose rate is piecewise constant per period:
//! `λ_p = D_p / m`, where `D_p` is the period's average GPUs busy and `m` the mean GPU-seconds of a job
//! (durations capped at `max_duration_s`). By Little's law the expected GPUs busy is `λ_p · m = D_p` in
//! the steady state of each period; it lags a change of `D_p` by about one mean job duration. Arrival
//! times come from time rescaling (one unit exponential per job, spent across periods at their rates), so
//! a period of zero demand gets no arrivals and the process stops at the end of the last period. The
//! accelerators' streams are merged in time order (ties: the accelerator listed first).
//!
//! Pure: the caller turns the plan file into [`DemandCurve`]s; everything here is deterministic in the seed
//! (arrivals use [`Stream::Arrivals`], job sizes [`Stream::Durations`]).

use crate::job::{AccelSym, JobSpec};
use crate::queue::SimTime;
use crate::rng::{SimRng, Stream};
use crate::trace::PhillyDist;

/// One accelerator's demand: average GPUs busy in each period.
#[derive(Clone, Debug, PartialEq)]
pub struct DemandCurve {
    pub accel: AccelSym,
    pub gpus: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlanWorkloadOptions {
    /// Seconds per period of the curves.
    pub period_s: i64,
    pub max_duration_s: u64,
    pub checkpoint_interval_s: Option<u32>,
    pub restart_overhead_s: u32,
    pub seed: u64,
}

/// Streaming jobs following [`DemandCurve`]s (see the module docs).
pub struct PlanWorkload {
    curves: Vec<DemandCurve>,
    dist: PhillyDist,
    mean_gpu_s: f64,
    opts: PlanWorkloadOptions,
    arrivals: SimRng,
    draws: SimRng,
    /// The next arrival time of each curve (seconds), `None` once past the last period.
    next_at: Vec<Option<f64>>,
    next_id: u64,
}

impl PlanWorkload {
    pub fn new(curves: Vec<DemandCurve>, dist: PhillyDist, opts: PlanWorkloadOptions) -> Self {
        let mean_gpu_s = dist.mean_gpu_seconds_capped(opts.max_duration_s).max(1.0);
        let mut w = PlanWorkload {
            next_at: vec![None; curves.len()],
            curves,
            dist,
            mean_gpu_s,
            arrivals: SimRng::new(opts.seed, Stream::Arrivals),
            draws: SimRng::new(opts.seed, Stream::Durations),
            opts,
            next_id: 0,
        };
        for c in 0..w.curves.len() {
            w.next_at[c] = w.arrival_after(c, 0.0);
        }
        w
    }

    /// The expected number of jobs (for progress and sizing).
    pub fn expected_jobs(&self) -> f64 {
        self.curves
            .iter()
            .map(|c| c.gpus.iter().sum::<f64>() * self.opts.period_s as f64 / self.mean_gpu_s)
            .sum()
    }

    /// The next arrival of curve `c` after time `t`: spend one unit exponential across the periods at
    /// their rates.
    fn arrival_after(&mut self, c: usize, mut t: f64) -> Option<f64> {
        let per = self.opts.period_s.max(1) as f64;
        let mut e = self.arrivals.exp(1.0);
        let curve = &self.curves[c];
        loop {
            let p = (t / per).floor() as usize;
            let d = *curve.gpus.get(p)?;
            let rate = d.max(0.0) / self.mean_gpu_s;
            let end = (p as f64 + 1.0) * per;
            if rate > 0.0 && rate * (end - t) >= e {
                return Some(t + e / rate);
            }
            e -= rate * (end - t);
            t = end;
        }
    }
}

impl Iterator for PlanWorkload {
    type Item = JobSpec;
    fn next(&mut self) -> Option<JobSpec> {
        let (c, at) = self
            .next_at
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (i, t)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))?;
        self.next_at[c] = self.arrival_after(c, at);
        let (d, g) = self.dist.sample(&mut self.draws);
        let d = d.min(self.opts.max_duration_s).max(1);
        let mut j = JobSpec::batch(self.next_id, at.round() as SimTime, d, g);
        j.accel = self.curves[c].accel;
        j.num_nodes = g.div_ceil(8);
        j.checkpoint_interval_s = self.opts.checkpoint_interval_s;
        j.restart_overhead_s = self.opts.restart_overhead_s;
        self.next_id += 1;
        Some(j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(period_s: i64) -> PlanWorkloadOptions {
        PlanWorkloadOptions {
            period_s,
            max_duration_s: 14 * 86_400,
            checkpoint_interval_s: Some(1800),
            restart_overhead_s: 0,
            seed: 4,
        }
    }

    /// GPUs busy per period if every job ran at once on arrival.
    fn busy(jobs: &[JobSpec], accel: AccelSym, period_s: i64, periods: usize) -> Vec<f64> {
        let mut gpu_s = vec![0.0; periods];
        for j in jobs.iter().filter(|j| j.accel == accel) {
            let (mut t, end) = (j.submit, j.submit + j.duration_s as i64);
            while t < end {
                let p = (t / period_s) as usize;
                let stop = end.min((p as i64 + 1) * period_s);
                if p < periods {
                    gpu_s[p] += (stop - t) as f64 * j.gpus as f64;
                }
                t = stop;
            }
        }
        gpu_s.iter().map(|g| g / period_s as f64).collect()
    }

    #[test]
    fn demand_follows_the_scenario_over_time() {
        // Short jobs (1-8 GPUs, 1-4 h) and 30-day periods: busy GPUs track the curve within 10% (about three standard deviations of the Poisson noise).
        let dist = PhillyDist::from_pairs(vec![(3600, 1), (7200, 2), (14_400, 8), (3600, 4)]);
        let period = 30 * 86_400;
        let curves = vec![
            DemandCurve {
                accel: AccelSym(0),
                gpus: vec![10.0, 40.0, 0.0, 20.0],
            },
            DemandCurve {
                accel: AccelSym(1),
                gpus: vec![5.0, 5.0, 5.0, 5.0],
            },
        ];
        let jobs: Vec<JobSpec> =
            PlanWorkload::new(curves.clone(), dist.clone(), opts(period)).collect();
        assert!(
            jobs.windows(2).all(|w| w[0].submit <= w[1].submit),
            "time order"
        );
        assert!(
            jobs.iter().all(|j| j.submit < 4 * period),
            "no arrival past the last period"
        );
        for c in &curves {
            let got = busy(&jobs, c.accel, period, 4);
            for (p, (g, want)) in got.iter().zip(&c.gpus).enumerate() {
                assert!(
                    (g - want).abs() <= 0.1 * want + 0.2,
                    "accel {:?} period {p}: {g:.2} GPUs busy, scenario {want}",
                    c.accel
                );
            }
        }
        // Deterministic in the seed.
        let again: Vec<JobSpec> =
            PlanWorkload::new(curves.clone(), dist.clone(), opts(period)).collect();
        assert_eq!(jobs, again);
        let other: Vec<JobSpec> = PlanWorkload::new(
            curves,
            dist,
            PlanWorkloadOptions {
                seed: 5,
                ..opts(period)
            },
        )
        .collect();
        assert_ne!(jobs, other);
    }
}
