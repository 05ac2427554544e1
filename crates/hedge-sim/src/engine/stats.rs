//! Run counters: jobs by outcome, JCT and queueing-delay histograms, deadlines, and the GPU-seconds lost
//! to interruptions and restarts.

use crate::metrics::Histogram;

#[derive(Default)]
pub(super) struct Stats {
    pub submitted: u64,
    pub finished: u64,
    pub failed: u64,
    pub jct: Histogram,
    pub qdelay: Histogram,
    pub deadline_jobs: u64,
    pub deadline_misses: u64,
    pub lost_gpu_s: u128,
    pub overhead_gpu_s: u128,
    pub preemptions: u64,
    pub failed_launches: u64,
    pub placements: u64,
}
