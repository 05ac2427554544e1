//! The cost ledger: exact integer integrals of what runs. Running rates are integrated per (provider,
//! market); commitments are billed for every hour of their term inside the window, used or not, and their
//! use is integrated for utilisation and waste; GPUs in use per provider feed the time series.

use super::{Alloc, CommitmentUse};
use crate::metrics::{round4, Integral};
use crate::queue::SimTime;
use hedge_core::{Commitment, Market, Money, Timestamp};
use std::collections::BTreeMap;

pub(super) struct Ledger<'a> {
    providers: Vec<String>,
    commitments: &'a [Commitment],
    origin: Timestamp,
    rate_keys: Vec<(u16, Market)>,
    /// ∫ micro-dollars per hour dt, per `rate_keys` entry.
    rate_int: Vec<Integral>,
    /// ∫ GPUs in use dt, per commitment.
    commit_used: Vec<Integral>,
    gpus_by_provider: Vec<Integral>,
}

/// (total, by provider, by market).
pub(super) type Costs = (Money, BTreeMap<String, Money>, BTreeMap<String, Money>);

impl<'a> Ledger<'a> {
    pub fn new(providers: Vec<String>, commitments: &'a [Commitment], origin: Timestamp) -> Self {
        let n = providers.len();
        Ledger {
            providers,
            commitments,
            origin,
            rate_keys: Vec::new(),
            rate_int: Vec::new(),
            commit_used: vec![Integral::default(); commitments.len()],
            gpus_by_provider: vec![Integral::default(); n],
        }
    }

    /// The account of a (provider, market) pair, opened on first use.
    pub fn account(&mut self, p: u16, m: Market) -> usize {
        match self.rate_keys.iter().position(|&k| k == (p, m)) {
            Some(i) => i,
            None => {
                self.rate_keys.push((p, m));
                self.rate_int.push(Integral::default());
                self.rate_keys.len() - 1
            }
        }
    }

    /// Starts (sign 1) or stops (sign -1) an allocation's rate, commitment use and GPUs.
    pub fn book(&mut self, now: SimTime, a: &Alloc, sign: i64) {
        let g = a.gpus as i64 * sign;
        if let Some(c) = a.commitment {
            self.commit_used[c as usize].add(now, g);
        }
        self.rate_int[a.rate_slot].add(now, a.rate_micros * sign);
        self.gpus_by_provider[a.provider as usize].add(now, g);
    }

    /// GPUs in use at provider `p` now.
    pub fn gpus_in_use(&self, p: usize) -> u32 {
        self.gpus_by_provider[p].level().max(0) as u32
    }

    /// Costs accrued up to `now`.
    pub fn cost_until(&self, now: SimTime) -> Costs {
        let mut by_p: BTreeMap<String, Money> = BTreeMap::new();
        let mut by_m: BTreeMap<String, Money> = BTreeMap::new();
        let mut total = Money::ZERO;
        for (k, i) in self.rate_keys.iter().zip(&self.rate_int) {
            let m = Money::from_micros((i.at(now) / 3600) as i64);
            *by_p
                .entry(self.providers[k.0 as usize].clone())
                .or_default() += m;
            *by_m.entry(k.1.to_string()).or_default() += m;
            total += m;
        }
        for c in self.commitments {
            let billed = self.commit_billed(c, now);
            *by_p.entry(c.provider.to_string()).or_default() += billed;
            *by_m.entry(Market::Committed.to_string()).or_default() += billed;
            total += billed;
        }
        (total, by_p, by_m)
    }

    /// Seconds of the commitment's term inside [0, now].
    fn commit_window(&self, c: &Commitment, now: SimTime) -> i64 {
        let o = self.origin.unix();
        let s = (c.start.unix() - o).max(0);
        let e = (c.end.unix() - o).min(now);
        (e - s).max(0)
    }

    fn commit_billed(&self, c: &Commitment, now: SimTime) -> Money {
        c.per_gpu_hour
            .times(c.gpus)
            .cost_for_seconds(self.commit_window(c, now) as u64)
    }

    /// Each commitment's bill, use and waste up to `end`.
    pub fn commitment_uses(&self, end: SimTime) -> Vec<CommitmentUse> {
        self.commitments
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let used = self.commit_used[i].at(end) as f64 / 3600.0;
                let paid = (self.commit_window(c, end) as f64 * c.gpus as f64) / 3600.0;
                let billed = self.commit_billed(c, end);
                let util = if paid > 0.0 {
                    (used / paid).min(1.0)
                } else {
                    0.0
                };
                let unused_s = (self.commit_window(c, end) as i128 * c.gpus as i128
                    - self.commit_used[i].at(end))
                .max(0);
                let waste = Money::from_micros(
                    (c.per_gpu_hour.hourly().micros() as i128 * unused_s / 3600) as i64,
                );
                CommitmentUse {
                    id: c.id.to_string(),
                    provider: c.provider.to_string(),
                    accelerator: c.accelerator.to_string(),
                    gpus: c.gpus,
                    billed,
                    used_gpu_hours: round4(used),
                    paid_gpu_hours: round4(paid),
                    utilization: round4(util),
                    waste,
                }
            })
            .collect()
    }
}
