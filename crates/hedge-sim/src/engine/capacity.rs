//! What is free to place on: the simulated fleet (on-demand limits, spot pools, provider outages) and the
//! commitments that are in force with their GPUs in use.
//!
//! Commitments of one provider for one accelerator (and region) are **one pool** of reserved capacity:
//! a job may use the GPUs of several of them at once, as a reservation or savings plan applies to any
//! matching usage. The placement engine sees one [`OwnedCapacity`] per pool, named after its first
//! commitment in force, with the pool's free GPUs.

use super::Alloc;
use crate::fleet::Fleet;
use hedge_core::{Commitment, CommitmentId, Rate};
use hedge_placement::OwnedCapacity;

pub(super) struct Capacity<'a> {
    pub fleet: Fleet,
    commitments: &'a [Commitment],
    active: Vec<bool>,
    /// The pool of each commitment.
    group: Vec<usize>,
    /// GPUs in use per pool.
    used: Vec<u32>,
}

/// The pool of each commitment: commitments with the same provider, accelerator and region share one, in
/// order of first appearance.
pub(super) fn pools(commitments: &[Commitment]) -> Vec<usize> {
    let mut keys = Vec::new();
    commitments
        .iter()
        .map(|c| {
            let k = (&c.provider, &c.accelerator, &c.region);
            keys.iter().position(|x| *x == k).unwrap_or_else(|| {
                keys.push(k);
                keys.len() - 1
            })
        })
        .collect()
}

impl<'a> Capacity<'a> {
    pub fn new(fleet: Fleet, commitments: &'a [Commitment]) -> Self {
        let group = pools(commitments);
        let n = group.iter().max().map_or(0, |g| g + 1);
        Capacity {
            fleet,
            commitments,
            active: vec![false; commitments.len()],
            group,
            used: vec![0; n],
        }
    }

    pub fn commitment_starts(&mut self, i: usize) {
        self.active[i] = true;
    }

    pub fn commitment_ends(&mut self, i: usize) {
        self.active[i] = false;
    }

    /// The index of a commitment by id.
    pub fn commitment_index(&self, id: &CommitmentId) -> Option<u32> {
        self.commitments
            .iter()
            .position(|k| k.id == *id)
            .map(|i| i as u32)
    }

    /// The pool of commitment `i`.
    pub fn pool_of(&self, i: u32) -> usize {
        self.group[i as usize]
    }

    /// GPUs of pool `g`'s commitments in force, and GPUs in use.
    pub fn pool_level(&self, g: usize) -> (u32, u32) {
        let cap = self
            .commitments
            .iter()
            .enumerate()
            .filter(|(i, _)| self.active[*i] && self.group[*i] == g)
            .map(|(_, c)| c.gpus)
            .sum();
        (cap, self.used[g])
    }

    /// The pools with a commitment in force, with their free GPUs, as the placement engine takes them (each
    /// named after its first commitment in force).
    pub fn owned(&self) -> Vec<OwnedCapacity> {
        let mut out: Vec<(usize, OwnedCapacity)> = Vec::new();
        for (i, c) in self
            .commitments
            .iter()
            .enumerate()
            .filter(|(i, _)| self.active[*i])
        {
            let g = self.group[i];
            match out.iter_mut().find(|(k, _)| *k == g) {
                Some((_, o)) => o.free_gpus += c.gpus,
                None => out.push((
                    g,
                    OwnedCapacity {
                        commitment: c.id.clone(),
                        provider: c.provider.clone(),
                        accelerator: c.accelerator.clone(),
                        region: c.region.clone(),
                        free_gpus: c.gpus,
                        marginal_per_gpu_hour: Rate::ZERO,
                    },
                )),
            }
        }
        out.into_iter()
            .map(|(g, mut o)| {
                o.free_gpus = o.free_gpus.saturating_sub(self.used[g]);
                o
            })
            .collect()
    }

    /// Takes (sign 1) or gives back (sign -1) an allocation's GPUs from its pool and commitment.
    pub fn take(&mut self, a: &Alloc, sign: i64) {
        let g = a.gpus as i64 * sign;
        if let Some(p) = a.pool {
            let pool = &mut self.fleet.pools[p];
            pool.used = (pool.used as i64 + g).max(0) as u32;
        }
        if let Some(c) = a.commitment {
            let p = self.group[c as usize];
            self.used[p] = (self.used[p] as i64 + g).max(0) as u32;
        }
    }
}
