//! What placement returns: the chosen candidate, ranked alternatives, and a reason for every rejection.

use hedge_core::{
    AccelRequest, CommitmentId, Location, Market, OfferIdx, ProviderId, Rate, RegionId, ZoneId,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One feasible way to run the task.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Candidate {
    /// The offer in the catalog the placement was made against.
    pub offer: OfferIdx,
    /// Which of the task's resource alternatives this satisfies (index into `TaskSpec::resources`).
    pub alternative: usize,
    pub provider: ProviderId,
    pub instance_type: String,
    pub location: Location,
    pub market: Market,
    /// The owned capacity used, when `market` is [`Market::Committed`].
    pub commitment: Option<CommitmentId>,
    /// Accelerators per node.
    pub accelerators: Option<AccelRequest>,
    pub num_nodes: u32,
    /// Cost per hour of all nodes together (marginal cost for committed capacity).
    pub hourly_cost: Rate,
}

impl Candidate {
    /// Accelerators over all nodes.
    pub fn total_gpus(&self) -> u32 {
        self.accelerators
            .as_ref()
            .map_or(0, |a| a.count.saturating_mul(self.num_nodes))
    }
}

/// Why no candidate came from a provider for one of the task's alternatives. The variants are ordered by
/// how far the provider's best offer got through the checks; placement reports the furthest.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RejectReason {
    /// The task (or policy) names a provider the catalog does not have.
    NotInCatalog,
    /// The settings' provider allow-list excludes it.
    NotAllowed,
    /// [`crate::Conditions::provider_usable`] said no.
    Unavailable { reason: String },
    /// No offer with the requested accelerator and count (or, for a CPU-only request, no offer at all).
    NoOffer,
    /// Offers with the accelerator exist, but none of the requested instance type.
    NoInstanceType { instance_type: String },
    /// Offers exist, but none in the requested region/zone.
    NoOfferInLocation {
        region: Option<RegionId>,
        zone: Option<ZoneId>,
    },
    /// Offers exist there, but none with the requested vCPUs/memory.
    NoOfferWithShape,
    /// Matching offers exist, but none is sold in a market the task may use.
    NoMarket { markets: Vec<Market> },
    /// Matching offers and markets exist, but conditions report too few GPUs available.
    NoCapacity {
        markets: Vec<Market>,
        gpus_needed: u32,
    },
}

/// A provider rejected for one alternative of the task.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Rejection {
    pub provider: ProviderId,
    /// Index into `TaskSpec::resources`.
    pub alternative: usize,
    /// The accelerators that alternative asked for (per node).
    pub accelerators: Option<AccelRequest>,
    pub reason: RejectReason,
    /// The same, in words: `azure: no H100:8 offer`.
    pub message: String,
}

impl Rejection {
    pub(crate) fn new(
        provider: ProviderId,
        alternative: usize,
        accelerators: Option<AccelRequest>,
        reason: RejectReason,
    ) -> Self {
        let message = Message {
            provider: &provider,
            accelerators: accelerators.as_ref(),
            reason: &reason,
        }
        .to_string();
        Rejection {
            provider,
            alternative,
            accelerators,
            reason,
            message,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

struct Message<'a> {
    provider: &'a ProviderId,
    accelerators: Option<&'a AccelRequest>,
    reason: &'a RejectReason,
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.accelerators {
            Some(a) => format!("{a} offer"),
            None => "offer".to_owned(),
        };
        write!(f, "{}: ", self.provider)?;
        match self.reason {
            RejectReason::NotInCatalog => write!(f, "not in the catalog"),
            RejectReason::NotAllowed => write!(f, "not allowed by policy"),
            RejectReason::Unavailable { reason } => write!(f, "provider unavailable ({reason})"),
            RejectReason::NoOffer => write!(f, "no {what}"),
            RejectReason::NoInstanceType { instance_type } => {
                write!(f, "no {what} of instance type {instance_type}")
            }
            RejectReason::NoOfferInLocation { region, zone } => {
                write!(f, "no {what} in ")?;
                match (region, zone) {
                    (Some(r), Some(z)) => write!(f, "{r}/{z}"),
                    (Some(r), None) => write!(f, "{r}"),
                    (None, Some(z)) => write!(f, "zone {z}"),
                    (None, None) => write!(f, "any location"),
                }
            }
            RejectReason::NoOfferWithShape => {
                write!(f, "no {what} with the requested vCPUs and memory")
            }
            RejectReason::NoMarket { markets } => write!(f, "no {} market", MarketList(markets)),
            RejectReason::NoCapacity {
                markets,
                gpus_needed,
            } => {
                write!(
                    f,
                    "fewer than {gpus_needed} GPUs available ({})",
                    MarketList(markets)
                )
            }
        }
    }
}

struct MarketList<'a>(&'a [Market]);

impl fmt::Display for MarketList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

/// The outcome of [`crate::place`]. "Does not fit" is `chosen: None` with the reasons in `rejected`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Placement {
    pub chosen: Option<Candidate>,
    /// The best candidate of each (provider, market) other than the chosen one, best first.
    pub alternatives: Vec<Candidate>,
    /// For each alternative of the task, every provider that yielded no candidate, and why.
    pub rejected: Vec<Rejection>,
}

impl Placement {
    pub fn is_placed(&self) -> bool {
        self.chosen.is_some()
    }
}
