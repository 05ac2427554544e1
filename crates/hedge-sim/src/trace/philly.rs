//! The Philly (duration, GPUs) distribution (`philly_job_distribution.csv`: `duration_s,num_gpus`, 33,192
//! pairs from Microsoft's Philly trace, via Gavel) and the synthetic generator built on it.
//!
//! [`Synthetic`] is a streaming iterator: Poisson arrivals at [`SyntheticOptions::jobs_per_hour`], each
//! job a (duration, GPUs) pair drawn uniformly from the empirical pairs (so the joint distribution is the
//! data's), with checkpointing and an optional deadline. It holds no per-job state, so a run of 10M jobs
//! uses the same memory as a run of 10.

use super::{csv_records, parse_count, parse_secs, Header, Lines, TraceOptions};
use crate::error::SimError;
use crate::job::{JobSpec, TeamSym};
use crate::queue::SimTime;
use crate::rng::{SimRng, Stream};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct PhillyDist {
    /// (duration_s, gpus), in file order.
    pub pairs: Vec<(u64, u32)>,
    /// Durations of each GPU count, for conditional draws.
    by_gpus: BTreeMap<u32, Vec<u64>>,
}

impl PhillyDist {
    pub fn load(path: &Path, skip_bad: bool) -> Result<Self, SimError> {
        Self::parse(path, &super::read_file(path)?, skip_bad)
    }
    pub fn parse(file: &Path, text: &str, skip_bad: bool) -> Result<Self, SimError> {
        let mut rdr = csv_records(text);
        let h = Header::new(
            file,
            rdr.headers().map_err(|e| SimError::BadFile {
                file: file.into(),
                reason: e.to_string(),
            })?,
        );
        let (c_d, c_g) = (h.col("duration_s")?, h.col("num_gpus")?);
        let mut lines = Lines::new(file, skip_bad);
        let mut pairs = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let line = i as u64 + 2;
            let Some(rec) = lines.ok(line, "record", rec.map_err(|e| e.to_string()))? else {
                continue;
            };
            let d = match parse_secs(rec.get(c_d).unwrap_or("")) {
                Ok(v) if v > 0 => v as u64,
                Ok(_) => {
                    lines.bad(line, "duration_s", "must be positive")?;
                    continue;
                }
                Err(e) => {
                    lines.bad(line, "duration_s", e)?;
                    continue;
                }
            };
            let g = match parse_count(rec.get(c_g).unwrap_or("")) {
                Ok(v) if v > 0 => v,
                Ok(_) => {
                    lines.bad(line, "num_gpus", "must be at least 1")?;
                    continue;
                }
                Err(e) => {
                    lines.bad(line, "num_gpus", e)?;
                    continue;
                }
            };
            pairs.push((d, g));
        }
        if pairs.is_empty() {
            return Err(SimError::BadFile {
                file: file.into(),
                reason: "no (duration, GPUs) pairs".into(),
            });
        }
        Ok(Self::from_pairs(pairs))
    }
    pub fn from_pairs(pairs: Vec<(u64, u32)>) -> Self {
        let mut by_gpus: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for &(d, g) in &pairs {
            by_gpus.entry(g).or_default().push(d);
        }
        PhillyDist { pairs, by_gpus }
    }
    pub fn sample(&self, rng: &mut SimRng) -> (u64, u32) {
        self.pairs[rng.index(self.pairs.len())]
    }
    /// A duration drawn among jobs with `gpus` GPUs, or with the nearest GPU count above (else below).
    pub fn duration_for(&self, gpus: u32, rng: &mut SimRng) -> u64 {
        let v = self
            .by_gpus
            .range(gpus..)
            .next()
            .or_else(|| self.by_gpus.range(..gpus).next_back())
            .map(|(_, v)| v)
            .expect("non-empty by construction");
        v[rng.index(v.len())]
    }
    /// Mean GPU-seconds per job.
    pub fn mean_gpu_seconds(&self) -> f64 {
        self.pairs
            .iter()
            .map(|&(d, g)| d as f64 * g as f64)
            .sum::<f64>()
            / self.pairs.len() as f64
    }
}

/// Shape of a synthetic run.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticOptions {
    pub jobs: u64,
    /// Mean arrival rate (Poisson).
    pub jobs_per_hour: f64,
    /// Cap on a job's duration (the Philly tail has jobs of months); `None`: no cap.
    pub max_duration_s: Option<u64>,
    /// Fraction of jobs (0..=1) that get a deadline of `deadline_slack × duration` after submission.
    pub deadline_fraction: f64,
    pub deadline_slack: f64,
    /// Number of teams jobs are spread over (round robin by draw).
    pub teams: u32,
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        SyntheticOptions {
            jobs: 10_000,
            jobs_per_hour: 60.0,
            max_duration_s: Some(14 * 86_400),
            deadline_fraction: 0.0,
            deadline_slack: 2.0,
            teams: 1,
        }
    }
}

/// Streaming synthetic jobs (see the module docs).
pub struct Synthetic {
    dist: PhillyDist,
    opts: SyntheticOptions,
    time_scale: f64,
    load_scale: f64,
    checkpoint: Option<u32>,
    overhead: u32,
    arrivals: SimRng,
    draws: SimRng,
    t: f64,
    next: u64,
}

impl Synthetic {
    pub fn new(dist: PhillyDist, opts: &TraceOptions) -> Self {
        Synthetic {
            dist,
            opts: opts.synthetic.clone(),
            time_scale: if opts.time_scale > 0.0 {
                opts.time_scale
            } else {
                1.0
            },
            load_scale: if opts.load_scale > 0.0 {
                opts.load_scale
            } else {
                1.0
            },
            checkpoint: opts.checkpoint_interval_s,
            overhead: opts.restart_overhead_s,
            arrivals: SimRng::new(opts.seed, Stream::Arrivals),
            draws: SimRng::new(opts.seed, Stream::Durations),
            t: 0.0,
            next: 0,
        }
    }
}

impl Iterator for Synthetic {
    type Item = JobSpec;
    fn next(&mut self) -> Option<JobSpec> {
        if self.next >= self.opts.jobs {
            return None;
        }
        let mean_gap =
            3600.0 / self.opts.jobs_per_hour.max(1e-9) * self.time_scale / self.load_scale;
        if self.next > 0 {
            self.t += self.arrivals.exp(mean_gap);
        }
        let (mut d, g) = self.dist.sample(&mut self.draws);
        if let Some(m) = self.opts.max_duration_s {
            d = d.min(m);
        }
        let d = ((d as f64 * self.time_scale).round() as u64).max(1);
        let submit = self.t.round() as SimTime;
        let mut j = JobSpec::batch(self.next, submit, d, g);
        j.num_nodes = g.div_ceil(8);
        j.checkpoint_interval_s = self.checkpoint;
        j.restart_overhead_s = self.overhead;
        if self.opts.deadline_fraction > 0.0 && self.draws.unit() < self.opts.deadline_fraction {
            j.deadline = Some(submit + (d as f64 * self.opts.deadline_slack).round() as SimTime);
        }
        if self.opts.teams > 1 {
            j.team = TeamSym((self.next % self.opts.teams as u64) as u32);
        }
        self.next += 1;
        Some(j)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.opts.jobs - self.next) as usize;
        (n, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_deterministically_in_time_order() {
        let dist = PhillyDist::from_pairs(vec![(100, 1), (1000, 8), (50, 2)]);
        let mut opts = TraceOptions::default();
        opts.synthetic.jobs = 500;
        opts.seed = 3;
        let a: Vec<_> = Synthetic::new(dist.clone(), &opts).collect();
        let b: Vec<_> = Synthetic::new(dist.clone(), &opts).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 500);
        assert!(a.windows(2).all(|w| w[0].submit <= w[1].submit));
        assert!(a
            .iter()
            .all(|j| [(100, 1), (1000, 8), (50, 2)].contains(&(j.duration_s, j.gpus))));
        let mut r = SimRng::new(0, Stream::Durations);
        assert_eq!(dist.duration_for(4, &mut r), 1000); // nearest count above 4 is 8
        assert_eq!(dist.duration_for(9, &mut r), 1000); // none above: nearest below
    }
}
