//! The outage tracker: GPU demand (running and waiting) integrated over time, snapshotted when an outage
//! starts, and turned into an [`OutageReport`] (demand, served, killed) when it ends.

use super::OutageReport;
use crate::metrics::{round4, Integral};
use crate::queue::SimTime;
use hedge_core::Timestamp;

pub(super) struct OutageTracker {
    running: Integral,
    waiting: Integral,
    /// Per outage, at its start: (∫ running, ∫ demand, jobs killed).
    snap: Vec<(i128, i128, u64)>,
    reports: Vec<OutageReport>,
    /// Jobs killed by all outages.
    pub kills: u64,
}

impl OutageTracker {
    pub fn new(outages: usize) -> Self {
        OutageTracker {
            running: Integral::default(),
            waiting: Integral::default(),
            snap: vec![(0, 0, 0); outages],
            reports: Vec::new(),
            kills: 0,
        }
    }

    /// GPUs of jobs that started (positive) or stopped (negative) running.
    pub fn running(&mut self, now: SimTime, gpus: i64) {
        self.running.add(now, gpus);
    }

    /// GPUs of jobs that joined (positive) or left (negative) the line.
    pub fn waiting(&mut self, now: SimTime, gpus: i64) {
        self.waiting.add(now, gpus);
    }

    /// Outage `i` starts now and kills `killed` jobs.
    pub fn start(&mut self, now: SimTime, i: usize, killed: u64) {
        self.snap[i] = (
            self.running.at(now),
            self.waiting.at(now) + self.running.at(now),
            killed,
        );
        self.kills += killed;
    }

    /// Outage `i` of `provider` (from `start` to `end`) ends now.
    pub fn end(
        &mut self,
        now: SimTime,
        i: usize,
        provider: String,
        start: Timestamp,
        end: Timestamp,
    ) {
        let (served0, demand0, killed) = self.snap[i];
        let served = (self.running.at(now) - served0) as f64 / 3600.0;
        let demand = (self.waiting.at(now) + self.running.at(now) - demand0) as f64 / 3600.0;
        self.reports.push(OutageReport {
            provider,
            start,
            end,
            demand_gpu_hours: round4(demand),
            served_gpu_hours: round4(served),
            served_fraction: if demand > 0.0 {
                round4(served / demand)
            } else {
                1.0
            },
            jobs_killed: killed,
        });
    }

    /// The reports of the outages that ended, in the order they ended.
    pub fn into_reports(self) -> Vec<OutageReport> {
        self.reports
    }
}
