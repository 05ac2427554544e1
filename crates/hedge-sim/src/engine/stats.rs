//! Run counters: jobs by outcome, JCT and queueing-delay histograms, deadlines, and the GPU-seconds lost
//! to interruptions and restarts.

use crate::metrics::{Histogram, Integral};

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
    /// GPUs waiting (in line or launching), integrated over time: the delay the run priced.
    pub waiting_gpus: Integral,
    /// Jobs that started within the SLO's target wait.
    pub slo_met: u64,
    /// GPU-seconds of work of finished jobs, and of failed jobs (never served).
    pub finished_gpu_s: u128,
    pub failed_gpu_s: u128,
}
