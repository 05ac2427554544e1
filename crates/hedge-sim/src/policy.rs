//! Fleet policies. Each is a [`PlacementSettings`] plus how the policy sees conditions; all of them place
//! through `hedge_placement::place`, never through logic of their own.
//!
//! | policy | providers | markets | sees outages |
//! |---|---|---|---|
//! | `lock-in[:P]` | one: `P`, or the provider with the most committed GPUs | committed, on-demand | yes (it has nowhere else to go) |
//! | `cheapest-failover` | all | committed, on-demand (cheapest first) | **no**: it launches into a dead provider, waits out the launch timeout, then fails over to the next provider, like SkyPilot's `EAGER_NEXT_REGION` |
//! | `hedge` | all | committed, then spot *where safe*, then on-demand, by marginal cost | yes: a provider in an outage is unusable at once |
//!
//! A job is *spot-safe* for `hedge` when it is a batch job with checkpoints (so a preemption loses at most one
//! interval) and, if it has a deadline, at least twice its remaining work is left before the deadline.
//! With [`MarketRank::Cost`], idle committed capacity (zero marginal cost) wins first and spot wins over
//! on-demand whenever it is cheaper, so "committed → spot → on-demand" is the order the engine's own ranking
//! gives; the settings do not hard-code it.

use crate::error::SimError;
use hedge_core::ProviderId;
use hedge_placement::{MarketRank, PlacementSettings};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Policy {
    LockIn(Option<ProviderId>),
    CheapestFailover,
    Hedge,
}

const KNOWN: &str = "lock-in[:PROVIDER], cheapest-failover, hedge";

impl FromStr for Policy {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        let s = s.trim();
        match s.split_once(':') {
            Some(("lock-in", p)) if !p.is_empty() => Ok(Policy::LockIn(Some(ProviderId::parse(p)))),
            _ => match s {
                "lock-in" => Ok(Policy::LockIn(None)),
                "cheapest-failover" => Ok(Policy::CheapestFailover),
                "hedge" => Ok(Policy::Hedge),
                _ => Err(SimError::UnknownPolicy {
                    name: s.to_owned(),
                    known: KNOWN,
                }),
            },
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::LockIn(Some(p)) => write!(f, "lock-in:{p}"),
            Policy::LockIn(None) => f.write_str("lock-in"),
            Policy::CheapestFailover => f.write_str("cheapest-failover"),
            Policy::Hedge => f.write_str("hedge"),
        }
    }
}

impl Policy {
    /// The placement settings of this policy, with `lock_in` the resolved provider of `lock-in`.
    pub fn settings(&self, lock_in: Option<&ProviderId>) -> PlacementSettings {
        let mut s = PlacementSettings {
            market_rank: MarketRank::Cost,
            max_alternatives: 0,
            ..PlacementSettings::default()
        };
        if let Policy::LockIn(_) = self {
            s.allowed_providers = lock_in.map(|p| vec![p.clone()]);
        }
        s
    }
    /// Whether the policy sees outages before launching (health-aware).
    pub fn health_aware(&self) -> bool {
        !matches!(self, Policy::CheapestFailover)
    }
    /// Whether the policy may put spot-safe jobs on spot.
    pub fn uses_spot(&self) -> bool {
        matches!(self, Policy::Hedge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ["lock-in", "lock-in:aws", "cheapest-failover", "hedge"] {
            assert_eq!(s.parse::<Policy>().unwrap().to_string(), s);
        }
        assert_eq!(
            "greedy".parse::<Policy>().unwrap_err().to_string(),
            "unknown policy \"greedy\" (known: lock-in[:PROVIDER], cheapest-failover, hedge)"
        );
        let s = Policy::LockIn(None).settings(Some(&"gcp".into()));
        assert_eq!(s.allowed_providers, Some(vec![ProviderId::parse("gcp")]));
    }
}
