//! The catalog: every offer, plus what SkyPilot's catalogs lack (capacity, quotas, egress, reliability),
//! and an index so that lookups by accelerator or provider do not scan the table.

use crate::accel::Accelerator;
use crate::ids::{ProviderId, RegionId};
use crate::money::Money;
use crate::offer::Offer;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Position of an offer in [`Catalog::offers`]. Stable for the life of a catalog value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OfferIdx(pub u32);

/// Reliability figures of a provider, in seconds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Reliability {
    /// Mean time between outages.
    pub mtbf_s: u64,
    /// Mean time to repair.
    pub mttr_s: u64,
}

/// What is known of a provider as a whole.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Internet egress price per GB.
    pub egress_per_gb: Option<Money>,
    pub reliability: Option<Reliability>,
}

/// Capacity and quota for one accelerator at a provider (optionally one region of it), in GPUs.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Capacity {
    pub provider: ProviderId,
    pub region: Option<RegionId>,
    pub accelerator: Accelerator,
    /// Most GPUs the provider can supply.
    pub max_gpus: Option<u32>,
    /// Most GPUs the user's account may hold.
    pub quota_gpus: Option<u32>,
}

/// Offers and provider facts, indexed. Build with [`Catalog::new`]; the index is derived, never stored.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    offers: Vec<Offer>,
    providers: BTreeMap<ProviderId, ProviderInfo>,
    capacities: Vec<Capacity>,
    by_accel: HashMap<Accelerator, Vec<OfferIdx>>,
    cpu_only: Vec<OfferIdx>,
}

impl Catalog {
    pub fn new(offers: Vec<Offer>, providers: BTreeMap<ProviderId, ProviderInfo>, capacities: Vec<Capacity>) -> Self {
        let mut by_accel: HashMap<Accelerator, Vec<OfferIdx>> = HashMap::new();
        let mut cpu_only = Vec::new();
        let mut providers = providers;
        for (i, o) in offers.iter().enumerate() {
            let idx = OfferIdx(i as u32);
            match &o.accelerator {
                Some(a) => by_accel.entry(a.name.clone()).or_default().push(idx),
                None => cpu_only.push(idx),
            }
            providers.entry(o.provider.clone()).or_default();
        }
        Catalog { offers, providers, capacities, by_accel, cpu_only }
    }

    pub fn offers(&self) -> &[Offer] {
        &self.offers
    }
    pub fn offer(&self, idx: OfferIdx) -> &Offer {
        &self.offers[idx.0 as usize]
    }
    pub fn len(&self) -> usize {
        self.offers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
    }
    /// Offers carrying `accel` (any count), in catalog order.
    pub fn with_accelerator(&self, accel: &Accelerator) -> &[OfferIdx] {
        self.by_accel.get(accel).map_or(&[], Vec::as_slice)
    }
    /// Offers with no accelerator.
    pub fn cpu_only(&self) -> &[OfferIdx] {
        &self.cpu_only
    }
    /// Every accelerator in the catalog, sorted.
    pub fn accelerators(&self) -> Vec<&Accelerator> {
        let mut v: Vec<_> = self.by_accel.keys().collect();
        v.sort();
        v
    }
    pub fn providers(&self) -> &BTreeMap<ProviderId, ProviderInfo> {
        &self.providers
    }
    pub fn capacities(&self) -> &[Capacity] {
        &self.capacities
    }
    /// Consumes the catalog, giving back its parts (for merging or overriding).
    pub fn into_parts(self) -> (Vec<Offer>, BTreeMap<ProviderId, ProviderInfo>, Vec<Capacity>) {
        (self.offers, self.providers, self.capacities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccelRequest, Location, Prices, Rate};

    fn offer(p: &str, acc: Option<(&str, u32)>) -> Offer {
        Offer {
            provider: ProviderId::parse(p),
            instance_type: "x".into(),
            accelerator: acc.map(|(n, c)| AccelRequest::new(Accelerator::parse(n).unwrap(), c)),
            vcpus_milli: None,
            memory_mib: None,
            location: Location::Region { region: "r".into() },
            prices: Prices { on_demand: Some(Rate::ZERO), spot: None, committed: vec![] },
        }
    }

    #[test]
    fn index_matches_scan() {
        let offers = vec![offer("aws", Some(("H100", 8))), offer("gcp", None), offer("gcp", Some(("h100-sxm", 1)))];
        let c = Catalog::new(offers, BTreeMap::new(), vec![]);
        let h100 = Accelerator::parse("H100").unwrap();
        assert_eq!(c.with_accelerator(&h100), &[OfferIdx(0), OfferIdx(2)]);
        assert_eq!(c.cpu_only(), &[OfferIdx(1)]);
        assert_eq!(c.providers().len(), 2);
        assert!(c.with_accelerator(&Accelerator::parse("B200").unwrap()).is_empty());
    }
}
