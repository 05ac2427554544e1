//! The validated planning input: what a `hedge.plan/v1` file means once parsed. Every index is dense
//! (accelerators, periods, scenarios, providers are positions in vectors) so the formulation, the evaluator
//! and the reports can address cells directly.

use hedge_core::{Accelerator, Money, ProviderId, Rate, Timestamp};
use serde::{Deserialize, Serialize};

pub use hedge_core::YearMonth;

/// The planning horizon: `periods` periods of `period_hours` hours each, starting at `start`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Horizon {
    pub start: YearMonth,
    pub periods: usize,
    pub period_hours: u32,
    /// New commitments may start in periods `0..start_periods` (default: every period of the horizon).
    #[serde(default, skip_serializing)]
    pub start_periods: usize,
}

impl Horizon {
    /// The instant period `t` begins: `start + t × period_hours` (exact hours, not calendar months).
    pub fn period_start(&self, t: i64) -> Timestamp {
        self.calendar().period_start(t)
    }
    /// The calendar part of the horizon, as plans are read everywhere ([`hedge_core::portfolio`]).
    pub fn calendar(&self) -> hedge_core::PlanHorizon {
        hedge_core::PlanHorizon {
            start: self.start,
            period_hours: self.period_hours,
        }
    }
    /// The period (relative to the horizon, possibly negative) in which a month begins, rounded to the
    /// nearest period boundary. With 730-hour periods this is the month difference.
    pub fn period_of(&self, m: YearMonth) -> i64 {
        let secs = m.to_timestamp().unix() - self.start.to_timestamp().unix();
        let per = i64::from(self.period_hours) * 3600;
        (secs as f64 / per as f64).round() as i64
    }
}

/// A quantity of GPUs in thousandths, so fractional average demand is exact and integer arithmetic holds.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct MilliGpus(pub u64);

impl MilliGpus {
    pub const ZERO: MilliGpus = MilliGpus(0);
    pub fn from_gpus(g: u64) -> Self {
        MilliGpus(g * 1000)
    }
    pub fn gpus_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

/// The cost of `q` GPUs for `hours` hours at `rate` per GPU-hour, exact to the micro-dollar (rounded half up).
pub fn cost_of(rate: Rate, q: MilliGpus, hours: u64) -> Money {
    let m = i128::from(rate.hourly().micros()) * i128::from(q.0) * i128::from(hours);
    let r = (m + 500) / 1000;
    Money::from_micros(r.clamp(0, i128::from(i64::MAX)) as i64)
}

/// One demand scenario: `demand[a][t]` is the average number of GPUs of accelerator `a` needed in period `t`.
#[derive(Clone, PartialEq, Debug)]
pub struct Scenario {
    pub name: String,
    pub probability: f64,
    pub demand: Vec<Vec<MilliGpus>>,
}

/// A commitment term a provider offers.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CommitOption {
    pub accelerator: usize,
    pub term_periods: usize,
    /// Paid per GPU for every hour of the term.
    pub rate: Rate,
    /// GPUs come in multiples of this (1 = any whole number).
    pub block_gpus: u32,
    /// A contract of this option is either 0 or at least this many GPUs.
    pub min_gpus: u32,
}

/// A contract already signed: fixed, still paid until it ends.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExistingContract {
    pub accelerator: usize,
    pub gpus: u32,
    pub start: YearMonth,
    pub term_periods: usize,
    pub rate: Rate,
}

impl ExistingContract {
    /// Horizon periods `[first, end)` this contract is active in (clipped to the horizon; may be empty).
    pub fn active_periods(&self, h: &Horizon) -> std::ops::Range<usize> {
        let s = h.period_of(self.start);
        let e = s + self.term_periods as i64;
        let a = s.clamp(0, h.periods as i64) as usize;
        let b = e.clamp(0, h.periods as i64) as usize;
        a..b.max(a)
    }
    /// Periods still owed from the horizon start on (inside the horizon or after it).
    pub fn periods_owed(&self, h: &Horizon) -> u64 {
        let s = h.period_of(self.start);
        let e = s + self.term_periods as i64;
        (e - s.max(0)).max(0) as u64
    }
}

/// A provider: its markets per accelerator, capacity, terms on offer and existing contracts.
#[derive(Clone, PartialEq, Debug)]
pub struct Provider {
    pub id: ProviderId,
    /// `[a]`: on-demand $/GPU-hour; `None` = not on offer.
    pub on_demand: Vec<Option<Rate>>,
    pub spot: Vec<Option<Rate>>,
    /// `[a]`: fraction of demand spot can safely serve (0 when spot is not on offer).
    pub spot_availability: Vec<f64>,
    /// `[a]`: max GPUs in any period, all markets; `None` = unlimited.
    pub capacity: Vec<Option<u64>>,
    pub options: Vec<CommitOption>,
    pub existing: Vec<ExistingContract>,
}

/// What `max_share` measures.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareOf {
    CommittedGpus,
    CommittedSpend,
}

/// Which demand the resilience rule (`survive_loss_of` / `keep_fraction`) is measured against.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResilienceBasis {
    /// The probability-weighted mean demand of each period and accelerator.
    #[default]
    Expected,
    /// The highest scenario's demand of each period and accelerator.
    Peak,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Unmet {
    /// Every scenario's demand must be served.
    Forbid,
    /// Unserved demand costs this much per GPU-hour.
    Penalty(Rate),
}

#[derive(Clone, PartialEq, Debug)]
pub struct Policies {
    pub max_share: Option<(ShareOf, f64)>,
    pub min_providers: Option<usize>,
    pub survive_loss_of: usize,
    pub keep_fraction: Option<f64>,
    pub resilience_basis: ResilienceBasis,
    pub budget: Option<Money>,
    pub unmet: Unmet,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            max_share: None,
            min_providers: None,
            survive_loss_of: 0,
            keep_fraction: None,
            resilience_basis: ResilienceBasis::Expected,
            budget: None,
            unmet: Unmet::Forbid,
        }
    }
}

/// The named policies, for reports ("what does max_share cost") and sweeps.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum PolicyName {
    MaxShare,
    MinProviders,
    Resilience,
    Budget,
    UnmetForbid,
}

impl PolicyName {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyName::MaxShare => "max_share",
            PolicyName::MinProviders => "min_providers",
            PolicyName::Resilience => "survive_loss_of/keep_fraction",
            PolicyName::Budget => "budget_usd",
            PolicyName::UnmetForbid => "unmet_demand: forbid",
        }
    }
}

impl Policies {
    /// The policies that are set (the ones that can bind).
    pub fn active(&self) -> Vec<PolicyName> {
        let mut v = Vec::new();
        if self.max_share.is_some() {
            v.push(PolicyName::MaxShare);
        }
        if self.min_providers.is_some_and(|m| m > 0) {
            v.push(PolicyName::MinProviders);
        }
        if self.keep_fraction.is_some_and(|k| k > 0.0) {
            v.push(PolicyName::Resilience);
        }
        if self.budget.is_some() {
            v.push(PolicyName::Budget);
        }
        v
    }
    /// A copy without one policy.
    pub fn without(&self, p: PolicyName) -> Policies {
        let mut c = self.clone();
        match p {
            PolicyName::MaxShare => c.max_share = None,
            PolicyName::MinProviders => c.min_providers = None,
            PolicyName::Resilience => {
                c.keep_fraction = None;
                c.survive_loss_of = 0;
            }
            PolicyName::Budget => c.budget = None,
            PolicyName::UnmetForbid => {}
        }
        c
    }
}

/// Optional risk term: objective = E[cost] + weight × CVaR_alpha[cost].
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
pub struct Risk {
    pub cvar_alpha: f64,
    pub weight: f64,
}

/// A whole validated plan file.
#[derive(Clone, PartialEq, Debug)]
pub struct PlanningInput {
    pub horizon: Horizon,
    pub accelerators: Vec<Accelerator>,
    pub scenarios: Vec<Scenario>,
    pub providers: Vec<Provider>,
    pub policies: Policies,
    pub risk: Option<Risk>,
    /// Where every on-demand, spot and term price came from (the plan file or the catalog), in file order.
    pub price_sources: Vec<crate::prices::PriceSource>,
}

impl PlanningInput {
    pub fn hours_per_period(&self) -> u64 {
        u64::from(self.horizon.period_hours)
    }
    /// Demand the resilience rule is measured against, `[a][t]`, in GPUs.
    pub fn resilience_demand(&self) -> Vec<Vec<f64>> {
        let (na, nt) = (self.accelerators.len(), self.horizon.periods);
        let mut out = vec![vec![0.0; nt]; na];
        for (a, row) in out.iter_mut().enumerate() {
            for (t, cell) in row.iter_mut().enumerate() {
                *cell = match self.policies.resilience_basis {
                    ResilienceBasis::Expected => self
                        .scenarios
                        .iter()
                        .map(|s| s.probability * s.demand[a][t].gpus_f64())
                        .sum(),
                    ResilienceBasis::Peak => self
                        .scenarios
                        .iter()
                        .map(|s| s.demand[a][t].gpus_f64())
                        .fold(0.0, f64::max),
                };
            }
        }
        out
    }
    pub fn provider_index(&self, id: &ProviderId) -> Option<usize> {
        self.providers.iter().position(|p| &p.id == id)
    }
    pub fn accelerator_index(&self, a: &Accelerator) -> Option<usize> {
        self.accelerators.iter().position(|x| x == a)
    }
}
