//! The catalog: every offer, plus what SkyPilot's catalogs lack (capacity, quotas, egress, reliability),
//! and an index so that lookups by accelerator or provider do not scan the table.

use crate::accel::Accelerator;
use crate::ids::{ProviderId, RegionId};
use crate::money::{Money, Rate};
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

/// A compact copy of the fields of one offer that placement filters on, with names replaced by small
/// integer ids (see [`Catalog::provider_index`], [`Catalog::region_index`], [`Catalog::zone_index`],
/// [`Catalog::instance_type_index`]). Kept beside the offers so that a scan touches 48 bytes per offer and
/// compares integers, not strings.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct OfferSummary {
    provider: u16,
    gpus: u32,
    region: u32,
    zone: u32,
    instance_type: u32,
    vcpus_milli: u32,
    memory_mib: u64,
    on_demand: i64,
    spot: i64,
}

const NONE_U32: u32 = u32::MAX;
const NONE_U64: u64 = u64::MAX;
const NONE_I64: i64 = i64::MIN;

impl OfferSummary {
    /// Index of the provider in [`Catalog::providers`] order.
    pub fn provider(&self) -> u16 {
        self.provider
    }
    /// Accelerators per instance (0 for CPU-only).
    pub fn gpus(&self) -> u32 {
        self.gpus
    }
    pub fn region(&self) -> u32 {
        self.region
    }
    /// `None` for a region-wide offer.
    pub fn zone(&self) -> Option<u32> {
        (self.zone != NONE_U32).then_some(self.zone)
    }
    pub fn instance_type(&self) -> u32 {
        self.instance_type
    }
    pub fn vcpus_milli(&self) -> Option<u32> {
        (self.vcpus_milli != NONE_U32).then_some(self.vcpus_milli)
    }
    pub fn memory_mib(&self) -> Option<u64> {
        (self.memory_mib != NONE_U64).then_some(self.memory_mib)
    }
    /// Instance-hour price in `market` (as [`crate::Prices::get`]).
    pub fn price(&self, market: crate::Market) -> Option<Rate> {
        let m = match market {
            crate::Market::OnDemand => self.on_demand,
            crate::Market::Spot => self.spot,
            crate::Market::Committed => NONE_I64,
        };
        (m != NONE_I64).then(|| Rate::per_hour(Money::from_micros(m)))
    }
}

/// Names interned to dense ids, in first-seen order.
#[derive(Clone, Debug, Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.insert(s.to_owned(), i);
        i
    }
    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
}

/// Offers and provider facts, indexed. Build with [`Catalog::new`]; the index is derived, never stored.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    offers: Vec<Offer>,
    providers: BTreeMap<ProviderId, ProviderInfo>,
    capacities: Vec<Capacity>,
    by_accel: HashMap<Accelerator, Vec<OfferIdx>>,
    cpu_only: Vec<OfferIdx>,
    summaries: Vec<OfferSummary>,
    regions: Interner,
    zones: Interner,
    instance_types: Interner,
    by_instance_type: Vec<Vec<OfferIdx>>,
    /// Per accelerator: (count per instance, offers), counts ascending.
    by_accel_count: HashMap<Accelerator, Vec<(u32, Vec<OfferIdx>)>>,
    /// The summaries of each `by_accel_count` list, copied in the same order so that a scan reads memory
    /// sequentially.
    by_accel_count_summaries: HashMap<Accelerator, Vec<Vec<OfferSummary>>>,
}

impl Catalog {
    pub fn new(
        offers: Vec<Offer>,
        providers: BTreeMap<ProviderId, ProviderInfo>,
        capacities: Vec<Capacity>,
    ) -> Self {
        let mut by_accel: HashMap<Accelerator, Vec<OfferIdx>> = HashMap::new();
        let mut cpu_only = Vec::new();
        let mut providers = providers;
        for (i, o) in offers.iter().enumerate() {
            let idx = OfferIdx(i as u32);
            // Look up before inserting, so only the first offer of each key clones it.
            match &o.accelerator {
                Some(a) => match by_accel.get_mut(&a.name) {
                    Some(v) => v.push(idx),
                    None => {
                        by_accel.insert(a.name.clone(), vec![idx]);
                    }
                },
                None => cpu_only.push(idx),
            }
            if !providers.contains_key(&o.provider) {
                providers.insert(o.provider.clone(), ProviderInfo::default());
            }
        }
        let provider_pos: HashMap<&ProviderId, u16> = providers
            .keys()
            .enumerate()
            .map(|(i, p)| (p, i.min(u16::MAX as usize) as u16))
            .collect();
        let (mut regions, mut zones, mut instance_types) = (
            Interner::default(),
            Interner::default(),
            Interner::default(),
        );
        let mut by_instance_type: Vec<Vec<OfferIdx>> = Vec::new();
        let mut summaries = Vec::with_capacity(offers.len());
        for (i, o) in offers.iter().enumerate() {
            let it = instance_types.id(&o.instance_type);
            if it as usize == by_instance_type.len() {
                by_instance_type.push(Vec::new());
            }
            by_instance_type[it as usize].push(OfferIdx(i as u32));
            let price = |r: Option<Rate>| r.map_or(NONE_I64, |r| r.hourly().micros());
            summaries.push(OfferSummary {
                provider: provider_pos[&o.provider],
                gpus: o.gpus(),
                region: regions.id(o.location.region().as_str()),
                zone: o.location.zone().map_or(NONE_U32, |z| zones.id(z.as_str())),
                instance_type: it,
                vcpus_milli: o.vcpus_milli.unwrap_or(NONE_U32),
                memory_mib: o.memory_mib.unwrap_or(NONE_U64),
                on_demand: price(o.prices.on_demand),
                spot: price(o.prices.spot),
            });
        }
        let mut by_accel_count: HashMap<Accelerator, Vec<(u32, Vec<OfferIdx>)>> = HashMap::new();
        for (name, idxs) in &by_accel {
            let mut counts: BTreeMap<u32, Vec<OfferIdx>> = BTreeMap::new();
            for &i in idxs {
                counts
                    .entry(offers[i.0 as usize].gpus())
                    .or_default()
                    .push(i);
            }
            by_accel_count.insert(name.clone(), counts.into_iter().collect());
        }
        let by_accel_count_summaries = by_accel_count
            .iter()
            .map(|(name, lists)| {
                let copies = lists
                    .iter()
                    .map(|(_, idxs)| idxs.iter().map(|i| summaries[i.0 as usize]).collect())
                    .collect();
                (name.clone(), copies)
            })
            .collect();
        Catalog {
            by_accel_count,
            by_accel_count_summaries,
            offers,
            providers,
            capacities,
            by_accel,
            cpu_only,
            summaries,
            regions,
            zones,
            instance_types,
            by_instance_type,
        }
    }

    /// The compact summary of every offer, parallel to [`Catalog::offers`].
    pub fn summaries(&self) -> &[OfferSummary] {
        &self.summaries
    }
    pub fn summary(&self, idx: OfferIdx) -> &OfferSummary {
        &self.summaries[idx.0 as usize]
    }
    /// The id [`OfferSummary::provider`] uses for `p`: its position in [`Catalog::providers`].
    pub fn provider_index(&self, p: &ProviderId) -> Option<u16> {
        self.providers.keys().position(|k| k == p).map(|i| i as u16)
    }
    /// The id [`OfferSummary::region`] uses for `r`, if any offer is in that region.
    pub fn region_index(&self, r: &RegionId) -> Option<u32> {
        self.regions.get(r.as_str())
    }
    /// The id [`OfferSummary::zone`] uses for `z`, if any offer is in that zone.
    pub fn zone_index(&self, z: &crate::ZoneId) -> Option<u32> {
        self.zones.get(z.as_str())
    }
    /// The id [`OfferSummary::instance_type`] uses for `t`, if any offer has that instance type.
    pub fn instance_type_index(&self, t: &str) -> Option<u32> {
        self.instance_types.get(t)
    }
    /// Offers of instance type `t`, in catalog order.
    pub fn with_instance_type(&self, t: &str) -> &[OfferIdx] {
        self.instance_types
            .get(t)
            .map_or(&[], |i| self.by_instance_type[i as usize].as_slice())
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
    /// Offers carrying exactly `count` of `accel` per instance, in catalog order.
    pub fn with_accelerator_count(&self, accel: &Accelerator, count: u32) -> &[OfferIdx] {
        self.by_accel_count
            .get(accel)
            .and_then(|v| v.iter().find(|(c, _)| *c == count))
            .map_or(&[], |(_, idxs)| idxs.as_slice())
    }
    /// [`Catalog::with_accelerator_count`] together with the summaries of those offers, in the same order
    /// and stored contiguously (for scans that read every summary).
    pub fn with_accelerator_count_summaries(
        &self,
        accel: &Accelerator,
        count: u32,
    ) -> (&[OfferIdx], &[OfferSummary]) {
        let Some(lists) = self.by_accel_count.get(accel) else {
            return (&[], &[]);
        };
        match lists.iter().position(|(c, _)| *c == count) {
            Some(p) => (&lists[p].1, &self.by_accel_count_summaries[accel][p]),
            None => (&[], &[]),
        }
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
    pub fn into_parts(
        self,
    ) -> (
        Vec<Offer>,
        BTreeMap<ProviderId, ProviderInfo>,
        Vec<Capacity>,
    ) {
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
            prices: Prices {
                on_demand: Some(Rate::ZERO),
                spot: None,
                committed: vec![],
            },
        }
    }

    #[test]
    fn index_matches_scan() {
        let offers = vec![
            offer("aws", Some(("H100", 8))),
            offer("gcp", None),
            offer("gcp", Some(("h100-sxm", 1))),
        ];
        let c = Catalog::new(offers, BTreeMap::new(), vec![]);
        let h100 = Accelerator::parse("H100").unwrap();
        assert_eq!(c.with_accelerator(&h100), &[OfferIdx(0), OfferIdx(2)]);
        assert_eq!(c.with_accelerator_count(&h100, 1), &[OfferIdx(2)]);
        assert!(c.with_accelerator_count(&h100, 2).is_empty());
        let (idx, sums) = c.with_accelerator_count_summaries(&h100, 8);
        assert_eq!(
            (idx, sums),
            (&[OfferIdx(0)][..], &[*c.summary(OfferIdx(0))][..])
        );
        assert_eq!(
            c.with_accelerator_count_summaries(&h100, 3),
            (&[][..], &[][..])
        );
        assert_eq!(c.cpu_only(), &[OfferIdx(1)]);
        assert_eq!(c.providers().len(), 2);
        assert!(c
            .with_accelerator(&Accelerator::parse("B200").unwrap())
            .is_empty());
    }

    #[test]
    fn summaries_mirror_offers() {
        let mut o = offer("gcp", Some(("L4", 2)));
        o.location = Location::Zone {
            region: "us-central1".into(),
            zone: "us-central1-a".into(),
        };
        o.prices.spot = Some(Rate::per_hour(Money::from_micros(7)));
        o.vcpus_milli = Some(8000);
        let offers = vec![offer("aws", Some(("H100", 8))), o];
        let c = Catalog::new(offers, BTreeMap::new(), vec![]);
        let s = c.summary(OfferIdx(1));
        assert_eq!(Some(s.provider()), c.provider_index(&"gcp".into()));
        assert_eq!(
            (s.gpus(), s.vcpus_milli(), s.memory_mib()),
            (2, Some(8000), None)
        );
        assert_eq!(Some(s.region()), c.region_index(&"us-central1".into()));
        assert_eq!(s.zone(), c.zone_index(&"us-central1-a".into()));
        assert_eq!(c.summary(OfferIdx(0)).zone(), None);
        assert_eq!(
            s.price(crate::Market::Spot),
            Some(Rate::per_hour(Money::from_micros(7)))
        );
        assert_eq!(s.price(crate::Market::OnDemand), Some(Rate::ZERO));
        assert_eq!(s.price(crate::Market::Committed), None);
        assert_eq!(c.with_instance_type("x"), &[OfferIdx(0), OfferIdx(1)]);
        assert!(c.with_instance_type("y").is_empty());
        assert_eq!(c.instance_type_index("y"), None);
    }
}
