//! Commitments the user owns (or a plan proposes): GPUs of one accelerator at one provider, paid per
//! GPU-hour for every hour between `start` and `end`, used or not.

use crate::accel::Accelerator;
use crate::ids::{CommitmentId, ProviderId, RegionId};
use crate::money::Rate;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Commitment {
    pub id: CommitmentId,
    pub provider: ProviderId,
    pub accelerator: Accelerator,
    /// `None`: usable in any region of the provider.
    pub region: Option<RegionId>,
    pub gpus: u32,
    pub per_gpu_hour: Rate,
    pub start: Timestamp,
    /// Exclusive end.
    pub end: Timestamp,
}

impl Commitment {
    pub fn active_at(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}
