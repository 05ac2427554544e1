//! Offers: one instance type of one provider at one location, with its prices per market.

use crate::accel::AccelRequest;
use crate::ids::ProviderId;
use crate::location::Location;
use crate::money::Rate;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How capacity is bought.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Market {
    /// Capacity the user has already committed to (a reservation or contract): paid whether used or not.
    Committed,
    OnDemand,
    /// Preemptible capacity.
    Spot,
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Market::Committed => "committed",
            Market::OnDemand => "on-demand",
            Market::Spot => "spot",
        })
    }
}

/// A committed-use price for one term: the rate per GPU-hour, paid for every hour of the term.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct CommittedPrice {
    pub term_months: u16,
    pub per_gpu_hour: Rate,
}

/// Prices of one offer. `on_demand` and `spot` are per instance-hour, as the providers list them; a
/// missing price means the market is not offered.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Prices {
    pub on_demand: Option<Rate>,
    pub spot: Option<Rate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub committed: Vec<CommittedPrice>,
}

impl Prices {
    /// Instance-hour price in `market`, if that market is offered. Committed capacity has no per-instance
    /// price here: its marginal cost is decided by whoever owns the commitment.
    pub fn get(&self, market: Market) -> Option<Rate> {
        match market {
            Market::OnDemand => self.on_demand,
            Market::Spot => self.spot,
            Market::Committed => None,
        }
    }
}

/// One instance type of one provider at one location.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Offer {
    pub provider: ProviderId,
    pub instance_type: String,
    /// Accelerators per instance; `None` for a CPU-only instance.
    pub accelerator: Option<AccelRequest>,
    /// Virtual CPUs per instance, in thousandths (96 vCPUs = 96_000).
    pub vcpus_milli: Option<u32>,
    /// Memory per instance in MiB.
    pub memory_mib: Option<u64>,
    pub location: Location,
    pub prices: Prices,
}

impl Offer {
    pub fn gpus(&self) -> u32 {
        self.accelerator.as_ref().map_or(0, |a| a.count)
    }
}
