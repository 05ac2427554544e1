//! What is free to place on: the simulated fleet (on-demand limits, spot pools, provider outages) and the
//! commitments that are in force with their GPUs in use.

use super::Alloc;
use crate::fleet::Fleet;
use hedge_core::{Commitment, CommitmentId, Rate};
use hedge_placement::OwnedCapacity;

pub(super) struct Capacity<'a> {
    pub fleet: Fleet,
    commitments: &'a [Commitment],
    active: Vec<bool>,
    used: Vec<u32>,
}

impl<'a> Capacity<'a> {
    pub fn new(fleet: Fleet, commitments: &'a [Commitment]) -> Self {
        Capacity {
            fleet,
            commitments,
            active: vec![false; commitments.len()],
            used: vec![0; commitments.len()],
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

    /// The commitments in force, with their free GPUs, as the placement engine takes them.
    pub fn owned(&self) -> Vec<OwnedCapacity> {
        self.commitments
            .iter()
            .enumerate()
            .filter(|(i, _)| self.active[*i])
            .map(|(i, c)| OwnedCapacity {
                commitment: c.id.clone(),
                provider: c.provider.clone(),
                accelerator: c.accelerator.clone(),
                region: c.region.clone(),
                free_gpus: c.gpus.saturating_sub(self.used[i]),
                marginal_per_gpu_hour: Rate::ZERO,
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
            let c = c as usize;
            self.used[c] = (self.used[c] as i64 + g).max(0) as u32;
        }
    }
}
