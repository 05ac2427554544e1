//! `/metrics`, through `prometheus-client`: the broker's counters (kept here, incremented by the API and the
//! reconciler) and gauges read at scrape time (jobs per state, provider health and GPUs in use), encoded in
//! the OpenMetrics text format by the library.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The broker's counters. The library appends `_total` to counter names: `hedge_jobs_submitted_total`.
#[derive(Default)]
pub struct Metrics {
    pub submitted: Counter,
    pub rejected_submits: Counter,
    pub launches: Counter,
    pub failovers: Counter,
    pub preemptions: Counter,
    pub passes: Counter,
    pub pass_errors: Counter,
    last_pass_seconds: Gauge<f64, AtomicU64>,
    /// From a job's submission (`POST /v1/jobs`) to its first attempt accepted by the provider (a Slurm job
    /// id, an EC2 instance): the broker's own latency plus the provider's submit call.
    pub submit_to_launch: LaunchLatency,
}

/// Seconds, in exponential buckets from 1 ms (x1.5, 32 buckets: up to about 6 minutes).
#[derive(Clone)]
pub struct LaunchLatency(pub Histogram);

impl Default for LaunchLatency {
    fn default() -> Self {
        LaunchLatency(Histogram::new(exponential_buckets(0.001, 1.5, 32)))
    }
}

/// What a scrape reads from the store and the health tracker.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// Jobs per state, every state listed.
    pub jobs: Vec<(String, u64)>,
    pub providers: Vec<ProviderGauge>,
    /// Per team: spend rate and budget left (from the ledger, `crate::ledger::gauges`).
    pub teams: Vec<TeamGauge>,
    /// Per active commitment: GPUs in use over its GPUs.
    pub commitments: Vec<(String, f64)>,
}

#[derive(Clone, Debug)]
pub struct TeamGauge {
    pub team: String,
    /// What the team's in-flight attempts bill per hour now, in dollars.
    pub spend_rate_usd_per_hour: f64,
    /// This month's budget minus what counts against it (booked, accrued, reserved); `None` without a budget.
    pub budget_remaining_usd: Option<f64>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TeamLabel {
    team: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommitmentLabel {
    commitment: String,
}

#[derive(Clone, Debug)]
pub struct ProviderGauge {
    pub provider: String,
    pub healthy: bool,
    pub gpus_in_use: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

impl Metrics {
    pub fn inc(&self, c: &Counter) {
        c.inc();
    }
    pub fn set_last_pass_ms(&self, ms: u64) {
        self.last_pass_seconds.set(ms as f64 / 1000.0);
    }

    /// The counters and the scrape's gauges, in the OpenMetrics text format (ends with `# EOF`).
    pub fn render(&self, scrape: &Scrape) -> Result<String, std::fmt::Error> {
        let mut r = Registry::default();
        let counters: [(&str, &str, &Counter); 7] = [
            (
                "hedge_jobs_submitted",
                "Jobs accepted by POST /v1/jobs",
                &self.submitted,
            ),
            (
                "hedge_submits_rejected",
                "Submissions answered with a 4xx",
                &self.rejected_submits,
            ),
            ("hedge_launches", "Launch attempts recorded", &self.launches),
            (
                "hedge_failovers",
                "Attempts given up on a provider (lost, failed launch, degraded provider)",
                &self.failovers,
            ),
            (
                "hedge_preemptions",
                "Running jobs preempted for a higher-priority job",
                &self.preemptions,
            ),
            (
                "hedge_reconcile_passes",
                "Reconciliation passes run",
                &self.passes,
            ),
            (
                "hedge_reconcile_errors",
                "Reconciliation passes that failed",
                &self.pass_errors,
            ),
        ];
        for (name, help, c) in counters {
            r.register(name, help, c.clone());
        }
        r.register(
            "hedge_submit_to_launch_seconds",
            "From a job's submission to its first attempt accepted by the provider",
            self.submit_to_launch.0.clone(),
        );
        r.register(
            "hedge_reconcile_last_pass_seconds",
            "Duration of the last reconciliation pass",
            self.last_pass_seconds.clone(),
        );
        let jobs = Family::<StateLabel, Gauge>::default();
        for (state, n) in &scrape.jobs {
            jobs.get_or_create(&StateLabel {
                state: state.clone(),
            })
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        r.register("hedge_jobs", "Jobs per state", jobs);
        let healthy = Family::<ProviderLabel, Gauge>::default();
        let in_use = Family::<ProviderLabel, Gauge>::default();
        for p in &scrape.providers {
            let l = ProviderLabel {
                provider: p.provider.clone(),
            };
            healthy.get_or_create(&l).set(i64::from(p.healthy));
            in_use.get_or_create(&l).set(i64::from(p.gpus_in_use));
        }
        r.register(
            "hedge_provider_healthy",
            "1 when the provider is healthy, 0 when degraded",
            healthy,
        );
        r.register(
            "hedge_provider_gpus_in_use",
            "GPUs held by in-flight attempts",
            in_use,
        );
        let rate = Family::<TeamLabel, Gauge<f64, AtomicU64>>::default();
        let left = Family::<TeamLabel, Gauge<f64, AtomicU64>>::default();
        for t in &scrape.teams {
            let l = TeamLabel {
                team: t.team.clone(),
            };
            rate.get_or_create(&l).set(t.spend_rate_usd_per_hour);
            if let Some(b) = t.budget_remaining_usd {
                left.get_or_create(&l).set(b);
            }
        }
        r.register(
            "hedge_team_spend_rate_usd_per_hour",
            "What the team's running attempts bill per hour now",
            rate,
        );
        r.register(
            "hedge_team_budget_remaining_usd",
            "This month's budget minus booked, accrued and reserved spend (teams with a budget)",
            left,
        );
        let util = Family::<CommitmentLabel, Gauge<f64, AtomicU64>>::default();
        for (c, u) in &scrape.commitments {
            util.get_or_create(&CommitmentLabel {
                commitment: c.clone(),
            })
            .set(*u);
        }
        r.register(
            "hedge_commitment_utilization",
            "GPUs in use on an active commitment over its GPUs",
            util,
        );
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_in_the_openmetrics_format() {
        let m = Metrics::default();
        m.inc(&m.submitted);
        m.inc(&m.submitted);
        m.inc(&m.pass_errors);
        m.set_last_pass_ms(1500);
        let scrape = Scrape {
            jobs: vec![("pending".into(), 3), ("running".into(), 0)],
            providers: vec![ProviderGauge {
                provider: "local \"a\"".into(),
                healthy: true,
                gpus_in_use: 2,
            }],
            teams: vec![
                TeamGauge {
                    team: "ml".into(),
                    spend_rate_usd_per_hour: 4.0,
                    budget_remaining_usd: Some(12.5),
                },
                TeamGauge {
                    team: "cv".into(),
                    spend_rate_usd_per_hour: 0.0,
                    budget_remaining_usd: None,
                },
            ],
            commitments: vec![("ri-1".into(), 0.25)],
        };
        let text = m.render(&scrape).unwrap();
        for want in [
            "hedge_jobs_submitted_total 2",
            "hedge_submits_rejected_total 0",
            "hedge_launches_total 0",
            "hedge_failovers_total 0",
            "hedge_preemptions_total 0",
            "hedge_reconcile_passes_total 0",
            "hedge_reconcile_errors_total 1",
            "hedge_reconcile_last_pass_seconds 1.5",
            "hedge_jobs{state=\"pending\"} 3",
            "hedge_provider_healthy{provider=\"local \\\"a\\\"\"} 1",
            "hedge_provider_gpus_in_use{provider=\"local \\\"a\\\"\"} 2",
            "hedge_team_spend_rate_usd_per_hour{team=\"ml\"} 4.0",
            "hedge_team_budget_remaining_usd{team=\"ml\"} 12.5",
            "hedge_commitment_utilization{commitment=\"ri-1\"} 0.25",
        ] {
            assert!(
                text.lines().any(|l| l == want),
                "missing {want:?} in\n{text}"
            );
        }
        assert!(
            !text.contains("hedge_team_budget_remaining_usd{team=\"cv\"}"),
            "no budget, no gauge:\n{text}"
        );
        assert_eq!(text.lines().last(), Some("# EOF"));
    }
}
