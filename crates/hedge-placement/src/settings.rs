//! Policy knobs of placement.

use hedge_core::ProviderId;
use serde::{Deserialize, Serialize};

/// How markets are ranked against each other.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketRank {
    /// By hourly cost alone (idle owned capacity, at zero marginal cost, wins naturally).
    #[default]
    Cost,
    /// Committed first, then on-demand, then spot; by cost within a market.
    Priority,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct PlacementSettings {
    pub market_rank: MarketRank,
    /// Whether a task that asks for spot (`use_spot: true`) may run on owned committed capacity instead,
    /// which is never preempted and usually cheaper at the margin.
    pub committed_serves_spot: bool,
    /// Only these providers may be used (a "lock-in" policy); `None` = all.
    pub allowed_providers: Option<Vec<ProviderId>>,
    /// How many alternatives to keep besides the chosen candidate (the best per provider and market).
    pub max_alternatives: usize,
}

impl Default for PlacementSettings {
    fn default() -> Self {
        PlacementSettings {
            market_rank: MarketRank::Cost,
            committed_serves_spot: true,
            allowed_providers: None,
            max_alternatives: 8,
        }
    }
}
