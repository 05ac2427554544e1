//! The job model: what the simulator replays.
//!
//! A [`JobSpec`] is small and `Copy` (accelerator and team are interned into the [`Trace`]'s tables), so a
//! million of them stream through the engine without allocating per job.
//!
//! [`Trace`]: crate::trace::Trace

use crate::queue::SimTime;
use hedge_core::JobId;
use serde::{Deserialize, Serialize};

/// Index into a trace's accelerator table. `AccelSym(0)` is the run's default accelerator.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct AccelSym(pub u16);

/// Index into a trace's team table. `TeamSym(0)` is the default team.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct TeamSym(pub u32);

/// Batch jobs finish; services run until their end of life and are never checkpointed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    #[default]
    Batch,
    Service,
}

/// One job of a trace.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct JobSpec {
    pub id: JobId,
    /// Submission time, seconds since the start of the trace.
    pub submit: SimTime,
    /// Work, in seconds of uninterrupted running on its GPUs.
    pub duration_s: u64,
    /// GPUs in total, over all nodes. At least 1.
    pub gpus: u32,
    /// Nodes (gang size). At least 1; `gpus` is split evenly over them.
    pub num_nodes: u32,
    pub accel: AccelSym,
    /// Seconds between checkpoints; `None`: no checkpoints, an interruption loses all work.
    pub checkpoint_interval_s: Option<u32>,
    /// Seconds of (paid) start-up after every (re)start before work progresses.
    pub restart_overhead_s: u32,
    /// Latest acceptable finish time (absolute, seconds since trace start).
    pub deadline: Option<SimTime>,
    pub team: TeamSym,
    /// Higher runs first when capacity is short.
    pub priority: i32,
    pub kind: JobKind,
}

impl JobSpec {
    /// A batch job with the defaults of a trace that says nothing else: one node, default accelerator and
    /// team, no checkpoints, no deadline, priority 0.
    pub fn batch(id: u64, submit: SimTime, duration_s: u64, gpus: u32) -> Self {
        JobSpec {
            id: JobId(id),
            submit,
            duration_s,
            gpus: gpus.max(1),
            num_nodes: 1,
            accel: AccelSym(0),
            checkpoint_interval_s: None,
            restart_overhead_s: 0,
            deadline: None,
            team: TeamSym(0),
            priority: 0,
            kind: JobKind::Batch,
        }
    }
    /// GPU-seconds of work.
    pub fn gpu_seconds(&self) -> u128 {
        self.duration_s as u128 * self.gpus as u128
    }
    /// Work kept when a run that has made `progressed` seconds of progress since its last durable point is
    /// interrupted: progress up to the last checkpoint survives.
    pub fn durable_progress(&self, progressed: u64) -> u64 {
        match self.checkpoint_interval_s {
            Some(iv) if iv > 0 => progressed - progressed % iv as u64,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_bound_lost_work() {
        let mut j = JobSpec::batch(1, 0, 10_000, 8);
        assert_eq!(j.durable_progress(3_599), 0);
        j.checkpoint_interval_s = Some(1800);
        assert_eq!(j.durable_progress(3_599), 1800);
        assert_eq!(j.durable_progress(3_600), 3600);
        assert_eq!(j.gpu_seconds(), 80_000);
        assert!(std::mem::size_of::<JobSpec>() <= 80);
    }
}
