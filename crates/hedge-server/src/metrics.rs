//! Counters for `/metrics`, rendered in the Prometheus text format together with gauges read at scrape
//! time (jobs per state, provider health and GPUs in use).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub submitted: AtomicU64,
    pub rejected_submits: AtomicU64,
    pub launches: AtomicU64,
    pub failovers: AtomicU64,
    pub preemptions: AtomicU64,
    pub passes: AtomicU64,
    pub pass_errors: AtomicU64,
    last_pass_ms: AtomicU64,
}

impl Metrics {
    pub fn inc(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    pub fn set_last_pass_ms(&self, ms: u64) {
        self.last_pass_ms.store(ms, Ordering::Relaxed);
    }

    /// The counters, in exposition format.
    pub fn render_counters(&self, out: &mut String) {
        let counters: [(&str, &str, &AtomicU64); 7] = [
            ("hedge_jobs_submitted_total", "Jobs accepted by POST /v1/jobs.", &self.submitted),
            ("hedge_submits_rejected_total", "Submissions answered with a 4xx.", &self.rejected_submits),
            ("hedge_launches_total", "Launch attempts recorded.", &self.launches),
            ("hedge_failovers_total", "Attempts given up on a provider (lost, failed launch, degraded provider).", &self.failovers),
            ("hedge_preemptions_total", "Running jobs preempted for a higher-priority job.", &self.preemptions),
            ("hedge_reconcile_passes_total", "Reconciliation passes run.", &self.passes),
            ("hedge_reconcile_errors_total", "Reconciliation passes that failed.", &self.pass_errors),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", c.load(Ordering::Relaxed));
        }
        let ms = self.last_pass_ms.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP hedge_reconcile_last_pass_seconds Duration of the last reconciliation pass.\n# TYPE hedge_reconcile_last_pass_seconds gauge\nhedge_reconcile_last_pass_seconds {:.3}",
            ms as f64 / 1000.0
        );
    }
}

/// Escapes a label value.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
