//! The simulated providers: on-demand capacity limits, spot pools driven by real availability traces, and
//! outage state. [`FleetView`] is what the placement engine sees of them (it implements
//! `hedge_placement::Conditions`).
//!
//! Capacity is kept per (provider, region, accelerator, market). An on-demand limit may name a region or
//! the whole provider; without a limit on-demand capacity is unbounded. The catalog's `Capacity` rows
//! (max GPUs, quota) become on-demand limits; the run's own limits replace them. Spot exists only where a
//! spot pool is configured: a pool's capacity at time t is `available(t) × gpus_per_unit × scale` from its
//! trace, and when it drops below what is in use the most recently started jobs of that pool are
//! preempted.

use crate::spot::SpotTrace;
use hedge_core::{Accelerator, Location, Market, ProviderId, RegionId};
use hedge_placement::{Conditions, Unusable};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct OnDemandLimit {
    pub provider: ProviderId,
    /// `None`: the limit is shared by every region of the provider.
    pub region: Option<RegionId>,
    pub accelerator: Accelerator,
    pub gpus: u32,
}

#[derive(Clone, Debug)]
pub struct SpotPool {
    pub provider: ProviderId,
    pub region: RegionId,
    pub accelerator: Accelerator,
    pub trace: Arc<SpotTrace>,
    /// GPUs per available unit of the trace (a trace of 1-GPU instances used as a pool of 8-GPU nodes: 8).
    pub gpus_per_unit: u32,
    /// Multiplies the trace's counts (a 1-node trace standing for a pool of 64 nodes: 64).
    pub scale: u32,
}

#[derive(Clone, Debug, Default)]
pub struct FleetConfig {
    pub on_demand: Vec<OnDemandLimit>,
    pub spot: Vec<SpotPool>,
    /// How long a launch into a provider that is down takes to fail (health-unaware policies only).
    pub launch_timeout_s: i64,
}

/// A capacity pool's index.
pub(crate) type PoolIdx = usize;

/// (region or `None` for provider-wide, accelerator, market, pool) of one provider's pool.
type PoolKey = (Option<RegionId>, Accelerator, Market, PoolIdx);

#[derive(Clone, Debug)]
pub(crate) struct Pool {
    pub cap: u32,
    pub used: u32,
}

/// Mutable fleet state during a run.
pub(crate) struct Fleet {
    pub providers: Vec<ProviderId>,
    pub down: Vec<u32>,
    pub pools: Vec<Pool>,
    /// Per provider: (region or None, accelerator, market, pool). A handful per provider, scanned without
    /// allocating (this lookup runs for every offer of every placement).
    index: Vec<Vec<PoolKey>>,
    pub spot_pools: Vec<(PoolIdx, SpotPool)>,
}

impl Fleet {
    pub fn new(providers: Vec<ProviderId>, cfg: &FleetConfig) -> Result<Self, String> {
        let mut f = Fleet {
            down: vec![0; providers.len()],
            index: vec![Vec::new(); providers.len()],
            providers,
            pools: Vec::new(),
            spot_pools: Vec::new(),
        };
        for l in &cfg.on_demand {
            let p = f.provider_idx(&l.provider).ok_or_else(|| {
                format!(
                    "on-demand limit for {}, which is not in the catalog",
                    l.provider
                )
            })?;
            // A later limit for the same key replaces an earlier one (run options override the catalog).
            match f.find(p, l.region.as_ref(), &l.accelerator, Market::OnDemand) {
                Some(i) => f.pools[i].cap = l.gpus,
                None => {
                    f.index[p as usize].push((
                        l.region.clone(),
                        l.accelerator.clone(),
                        Market::OnDemand,
                        f.pools.len(),
                    ));
                    f.pools.push(Pool {
                        cap: l.gpus,
                        used: 0,
                    });
                }
            }
        }
        for s in &cfg.spot {
            let p = f.provider_idx(&s.provider).ok_or_else(|| {
                format!("spot pool for {}, which is not in the catalog", s.provider)
            })?;
            let idx = f.pools.len();
            let cap = s
                .trace
                .available_at(0)
                .saturating_mul(s.gpus_per_unit)
                .saturating_mul(s.scale);
            f.pools.push(Pool { cap, used: 0 });
            f.index[p as usize].push((
                Some(s.region.clone()),
                s.accelerator.clone(),
                Market::Spot,
                idx,
            ));
            f.spot_pools.push((idx, s.clone()));
        }
        Ok(f)
    }
    pub fn provider_idx(&self, p: &ProviderId) -> Option<u16> {
        self.providers.binary_search(p).ok().map(|i| i as u16)
    }
    /// The pool limiting `market` capacity at this location, if any.
    pub fn pool(&self, p: u16, loc: &Location, a: &Accelerator, m: Market) -> Option<PoolIdx> {
        self.find(p, Some(loc.region()), a, m).or_else(|| {
            if m == Market::Spot {
                None
            } else {
                self.find(p, None, a, m)
            }
        })
    }
    fn find(
        &self,
        p: u16,
        region: Option<&RegionId>,
        a: &Accelerator,
        m: Market,
    ) -> Option<PoolIdx> {
        self.index[p as usize]
            .iter()
            .find(|e| e.2 == m && e.0.as_ref() == region && e.1 == *a)
            .map(|e| e.3)
    }
}

/// What one placement call sees: the fleet, through a policy's eyes.
pub(crate) struct FleetView<'a> {
    pub fleet: &'a Fleet,
    pub health_aware: bool,
    /// Providers this job already failed to launch on (failover).
    pub excluded: &'a [u16],
}

impl Conditions for FleetView<'_> {
    fn provider_usable(&self, provider: &ProviderId) -> Result<(), Unusable> {
        let Some(p) = self.fleet.provider_idx(provider) else {
            return Err(Unusable("not simulated".into()));
        };
        if self.excluded.contains(&p) {
            return Err(Unusable("launch failed; failing over".into()));
        }
        if self.health_aware && self.fleet.down[p as usize] > 0 {
            return Err(Unusable("outage".into()));
        }
        Ok(())
    }
    fn gpus_available(
        &self,
        provider: &ProviderId,
        location: &Location,
        accelerator: &Accelerator,
        market: Market,
    ) -> Option<u32> {
        let p = self.fleet.provider_idx(provider)?;
        match self.fleet.pool(p, location, accelerator, market) {
            Some(i) => {
                let pool = &self.fleet.pools[i];
                Some(pool.cap.saturating_sub(pool.used))
            }
            None if market == Market::Spot => Some(0),
            None => None,
        }
    }
}
