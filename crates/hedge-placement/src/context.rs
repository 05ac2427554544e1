//! What placement sees besides the task: the catalog, owned capacity, and live conditions.

use hedge_core::{
    Accelerator, Catalog, CommitmentId, Location, Market, ProviderId, Rate, RegionId,
};
use serde::{Deserialize, Serialize};

/// Committed capacity the user already owns and that is free right now. Its marginal cost is usually zero:
/// the commitment is paid for whether it is used or not.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct OwnedCapacity {
    pub commitment: CommitmentId,
    pub provider: ProviderId,
    pub accelerator: Accelerator,
    /// `None`: usable in any region of the provider.
    pub region: Option<RegionId>,
    /// GPUs of this commitment not in use.
    pub free_gpus: u32,
    /// What one more GPU-hour on this capacity costs (zero while it would otherwise sit idle).
    pub marginal_per_gpu_hour: Rate,
}

/// Why a provider cannot be used at all right now, in words (`outage`, `unhealthy: 3 failed launches`).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Unusable(pub String);

/// Live conditions, supplied by the caller: the broker from health checks and quotas, the simulator from
/// its outage, capacity and spot-availability models.
pub trait Conditions {
    /// Whether the provider can take new work at all.
    fn provider_usable(&self, provider: &ProviderId) -> Result<(), Unusable>;
    /// GPUs of `accelerator` that can be had right now at `location` in `market`; `None` = no known limit.
    /// Not asked for owned (committed) capacity, whose limit is [`OwnedCapacity::free_gpus`].
    fn gpus_available(
        &self,
        provider: &ProviderId,
        location: &Location,
        accelerator: &Accelerator,
        market: Market,
    ) -> Option<u32>;
    /// Whether [`Conditions::gpus_available`] can ever return a limit. `false` lets placement skip asking
    /// (a fast path for [`Unconstrained`]); the default `true` is always correct.
    fn limits_capacity(&self) -> bool {
        true
    }
}

/// Every provider usable, no capacity limit.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unconstrained;

impl Conditions for Unconstrained {
    fn provider_usable(&self, _: &ProviderId) -> Result<(), Unusable> {
        Ok(())
    }
    fn gpus_available(
        &self,
        _: &ProviderId,
        _: &Location,
        _: &Accelerator,
        _: Market,
    ) -> Option<u32> {
        None
    }
    fn limits_capacity(&self) -> bool {
        false
    }
}

/// Everything placement reads besides the task and the settings.
#[derive(Clone, Copy)]
pub struct PlacementContext<'a> {
    pub catalog: &'a Catalog,
    pub owned: &'a [OwnedCapacity],
    pub conditions: &'a dyn Conditions,
}

impl<'a> PlacementContext<'a> {
    /// A context with no owned capacity and no constraints beyond the catalog.
    pub fn new(catalog: &'a Catalog) -> Self {
        PlacementContext {
            catalog,
            owned: &[],
            conditions: &Unconstrained,
        }
    }
    pub fn with_owned(self, owned: &'a [OwnedCapacity]) -> Self {
        PlacementContext { owned, ..self }
    }
    pub fn with_conditions(self, conditions: &'a dyn Conditions) -> Self {
        PlacementContext { conditions, ..self }
    }
}

impl std::fmt::Debug for PlacementContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlacementContext")
            .field("offers", &self.catalog.len())
            .field("owned", &self.owned)
            .finish_non_exhaustive()
    }
}
