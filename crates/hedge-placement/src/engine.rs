//! The placement algorithm: one pass over the offers each alternative can use, keeping the best candidate
//! per (provider, market) and, per provider, how far its best offer got through the checks.
//!
//! ## Semantics
//! - A candidate is an (offer, market) pair, or (offer, owned capacity) for [`Market::Committed`], that
//!   satisfies every constraint of one of the task's resource alternatives: accelerator name and count per
//!   node, provider, region, zone, instance type, vCPU and memory bounds, and the spot preference
//!   (`Never`: committed or on-demand; `Required`: spot, plus committed if
//!   [`PlacementSettings::committed_serves_spot`]; `Allowed`: any). Its provider must pass
//!   [`crate::Conditions::provider_usable`] and the allow-list, and the conditions must report at least
//!   `count * num_nodes` GPUs available in that market and location. Owned capacity must match provider,
//!   accelerator and (if it has one) region, and have `count * num_nodes` free GPUs; it is never split
//!   with another market.
//! - Cost is the hourly price of one node times `num_nodes` (committed: marginal GPU-hour rate times GPUs).
//! - [`Preference::Cheapest`] picks the cheapest candidate of all alternatives; [`Preference::Ordered`]
//!   picks the cheapest candidate of the first alternative that has one.
//! - **Ranking (the deterministic tie-break):** alternative index (only when `Ordered`), market priority
//!   (only with [`MarketRank::Priority`]: committed, on-demand, spot), hourly cost, market (committed,
//!   on-demand, spot), provider, region, zone (region-wide before any zone), instance type, offer index,
//!   owned-capacity index. Every key is total, so the result never depends on hash order.
//!
//! The pass allocates only small per-call tables (one entry per provider), never per offer.

use crate::context::{OwnedCapacity, PlacementContext};
use crate::result::{Candidate, Placement, RejectReason, Rejection};
use crate::settings::{MarketRank, PlacementSettings};
use hedge_core::{
    Catalog, Market, OfferIdx, OfferSummary, Preference, ProviderId, Rate, ResourceRequest,
    SpotPref, TaskSpec,
};
use std::cmp::Ordering;

/// Places `task`: the cheapest feasible candidate, ranked alternatives, and the reasons for every provider
/// that yielded none. Pure; see the module documentation for the exact semantics and tie-break.
pub fn place(
    task: &TaskSpec,
    ctx: &PlacementContext<'_>,
    settings: &PlacementSettings,
) -> Placement {
    let catalog = ctx.catalog;
    let num_nodes = task.num_nodes.max(1);
    let providers = provider_table(ctx, settings);
    let mut best: Vec<Option<Lite>> = vec![None; providers.len() * MARKETS];
    let mut rejected = Vec::new();
    let order = Ranking {
        catalog,
        ordered: task.preference == Preference::Ordered,
        rank: settings.market_rank,
    };

    for (alt, req) in task.resources.iter().enumerate() {
        let markets = markets_for(req.spot, settings);
        let mut stage = vec![Stage::Nothing; providers.len()];
        let need = req
            .accelerators
            .as_ref()
            .map_or(0, |a| a.count.saturating_mul(num_nodes));
        // Owned capacity this alternative could use, filtered once.
        let owned: Vec<u32> = if markets.contains(&Market::Committed) {
            ctx.owned
                .iter()
                .enumerate()
                .filter(|(_, oc)| {
                    req.accelerators
                        .as_ref()
                        .is_none_or(|a| a.name == oc.accelerator)
                        && oc.free_gpus >= need
                        && req.provider.as_ref().is_none_or(|p| *p == oc.provider)
                })
                .map(|(i, _)| i as u32)
                .collect()
        } else {
            Vec::new()
        };
        let scan = Scan {
            catalog,
            req,
            alt,
            num_nodes,
            need,
            markets,
            owned: &owned,
            ctx,
            providers: &providers,
        };
        match (&req.accelerators, &req.instance_type) {
            (Some(a), _) => {
                let (idx, sums) = catalog.with_accelerator_count_summaries(&a.name, a.count);
                scan.run(idx.iter().copied().zip(sums), &mut stage, &mut best, &order)
            }
            (None, Some(t)) => {
                // Any accelerator: every provider passes the accelerator check; narrow by instance type.
                stage.fill(Stage::Accelerator);
                let offers = catalog
                    .with_instance_type(t)
                    .iter()
                    .map(|&i| (i, catalog.summary(i)));
                scan.run(offers, &mut stage, &mut best, &order)
            }
            (None, None) => scan.run(
                catalog
                    .summaries()
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (OfferIdx(i as u32), s)),
                &mut stage,
                &mut best,
                &order,
            ),
        }
        reject(req, alt, markets, need, &providers, &stage, &mut rejected);
    }

    let mut best: Vec<Lite> = best.into_iter().flatten().collect();
    best.sort_by(|a, b| order.cmp(a, b));
    let mut ranked = best.into_iter().map(|l| candidate(ctx, task, num_nodes, l));
    let chosen = ranked.next();
    let alternatives = ranked.take(settings.max_alternatives).collect();
    Placement {
        chosen,
        alternatives,
        rejected,
    }
}

/// How far the best offer of a provider got, in check order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Stage {
    Nothing,
    Accelerator,
    InstanceType,
    Location,
    Shape,
    Market,
    Feasible,
}

enum Status {
    Usable,
    NotAllowed,
    Unavailable(String),
}

struct ProviderSlot<'a> {
    id: &'a ProviderId,
    status: Status,
}

fn provider_table<'a>(
    ctx: &PlacementContext<'a>,
    settings: &PlacementSettings,
) -> Vec<ProviderSlot<'a>> {
    ctx.catalog
        .providers()
        .keys()
        .map(|id| {
            let status = if settings
                .allowed_providers
                .as_ref()
                .is_some_and(|a| !a.contains(id))
            {
                Status::NotAllowed
            } else {
                match ctx.conditions.provider_usable(id) {
                    Ok(()) => Status::Usable,
                    Err(u) => Status::Unavailable(u.0),
                }
            };
            ProviderSlot { id, status }
        })
        .collect()
}

fn markets_for(spot: SpotPref, settings: &PlacementSettings) -> &'static [Market] {
    match spot {
        SpotPref::Never => &[Market::Committed, Market::OnDemand],
        SpotPref::Required if settings.committed_serves_spot => &[Market::Committed, Market::Spot],
        SpotPref::Required => &[Market::Spot],
        SpotPref::Allowed => &[Market::Committed, Market::OnDemand, Market::Spot],
    }
}

/// A candidate before it is materialised: indices and a cost, cheap to compare and copy.
#[derive(Clone, Copy, Debug)]
struct Lite {
    alt: u32,
    offer: OfferIdx,
    market: Market,
    owned: Option<u32>,
    cost: i64,
}

/// Markets per provider in the table of best candidates, indexed `provider * MARKETS + market`.
const MARKETS: usize = 3;

fn market_pos(m: Market) -> usize {
    match m {
        Market::Committed => 0,
        Market::OnDemand => 1,
        Market::Spot => 2,
    }
}

struct Ranking<'a> {
    catalog: &'a Catalog,
    ordered: bool,
    rank: MarketRank,
}

impl Ranking<'_> {
    fn cmp(&self, a: &Lite, b: &Lite) -> Ordering {
        let mut o = Ordering::Equal;
        if self.ordered {
            o = a.alt.cmp(&b.alt);
        }
        if self.rank == MarketRank::Priority {
            o = o.then(a.market.cmp(&b.market));
        }
        o = o.then(a.cost.cmp(&b.cost)).then(a.market.cmp(&b.market));
        if o != Ordering::Equal {
            return o;
        }
        let (oa, ob) = (self.catalog.offer(a.offer), self.catalog.offer(b.offer));
        oa.provider
            .cmp(&ob.provider)
            .then_with(|| oa.location.region().cmp(ob.location.region()))
            .then_with(|| oa.location.zone().cmp(&ob.location.zone()))
            .then_with(|| oa.instance_type.cmp(&ob.instance_type))
            .then(a.offer.cmp(&b.offer))
            .then(a.owned.cmp(&b.owned))
    }
}

/// A wanted name resolved to the catalog's interned id.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Any,
    Id(u32),
    /// Named, but no offer in the catalog has it.
    Absent,
}

impl Want {
    fn of<T>(want: Option<&T>, lookup: impl FnOnce(&T) -> Option<u32>) -> Want {
        match want {
            None => Want::Any,
            Some(w) => lookup(w).map_or(Want::Absent, Want::Id),
        }
    }
    fn admits(self, id: Option<u32>) -> bool {
        match self {
            Want::Any => true,
            Want::Id(w) => id == Some(w),
            Want::Absent => false,
        }
    }
}

struct Scan<'a, 'c> {
    catalog: &'a Catalog,
    req: &'a ResourceRequest,
    alt: usize,
    num_nodes: u32,
    need: u32,
    markets: &'static [Market],
    owned: &'a [u32],
    ctx: &'a PlacementContext<'c>,
    providers: &'a [ProviderSlot<'a>],
}

impl Scan<'_, '_> {
    fn run<'s>(
        &self,
        offers: impl Iterator<Item = (OfferIdx, &'s OfferSummary)>,
        stage: &mut [Stage],
        best: &mut [Option<Lite>],
        order: &Ranking<'_>,
    ) {
        let req = self.req;
        let cat = self.catalog;
        let want_count = req.accelerators.as_ref().map(|a| a.count);
        let want_provider = match &req.provider {
            None => None,
            Some(p) => match cat.provider_index(p) {
                Some(i) => Some(i),
                None => return,
            },
        };
        let instance = Want::of(req.instance_type.as_ref(), |t| cat.instance_type_index(t));
        let region = Want::of(req.region.as_ref(), |r| cat.region_index(r));
        let zone = Want::of(req.zone.as_ref(), |z| cat.zone_index(z));
        let limited = self.ctx.conditions.limits_capacity();
        for (idx, s) in offers {
            // The offer list is already narrowed to the requested accelerator and count (or instance type).
            debug_assert!(want_count.is_none_or(|c| c == s.gpus()));
            let slot = s.provider() as usize;
            if want_provider.is_some_and(|p| p as usize != slot) {
                continue;
            }
            if !matches!(
                self.providers.get(slot).map(|p| &p.status),
                Some(Status::Usable)
            ) {
                continue;
            }
            let reached = if !instance.admits(Some(s.instance_type())) {
                Stage::Accelerator
            } else if !(region.admits(Some(s.region())) && zone.admits(s.zone())) {
                Stage::InstanceType
            } else if !(req
                .cpus_milli
                .is_none_or(|b| s.vcpus_milli().is_some_and(|v| b.admits(v)))
                && req
                    .memory_mib
                    .is_none_or(|b| s.memory_mib().is_some_and(|v| b.admits(v))))
            {
                Stage::Location
            } else {
                Stage::Shape
            };
            if reached < Stage::Shape {
                stage[slot] = stage[slot].max(reached);
                continue;
            }
            let mut got = Stage::Shape;
            for &market in self.markets {
                if market == Market::Committed {
                    if self.owned.is_empty() {
                        continue;
                    }
                    let o = cat.offer(idx);
                    let Some(a) = &o.accelerator else { continue };
                    let gpus = a.count.saturating_mul(self.num_nodes);
                    for &oi in self.owned {
                        let oc = &self.ctx.owned[oi as usize];
                        if oc.provider != o.provider
                            || oc.accelerator != a.name
                            || oc.free_gpus < gpus
                            || oc.region.as_ref().is_some_and(|r| r != o.location.region())
                        {
                            continue;
                        }
                        got = Stage::Feasible;
                        let cost = committed_cost(oc, gpus);
                        let lite = Lite {
                            alt: self.alt as u32,
                            offer: idx,
                            market,
                            owned: Some(oi),
                            cost,
                        };
                        offer_candidate(best, order, slot, lite);
                    }
                    continue;
                }
                let Some(price) = s.price(market) else {
                    continue;
                };
                got = got.max(Stage::Market);
                if limited && s.gpus() > 0 {
                    let o = cat.offer(idx);
                    if let Some(a) = &o.accelerator {
                        let avail = self.ctx.conditions.gpus_available(
                            &o.provider,
                            &o.location,
                            &a.name,
                            market,
                        );
                        if avail.is_some_and(|n| {
                            n < self.need.max(a.count.saturating_mul(self.num_nodes))
                        }) {
                            continue;
                        }
                    }
                }
                got = Stage::Feasible;
                let cost = price
                    .hourly()
                    .micros()
                    .saturating_mul(self.num_nodes as i64);
                offer_candidate(
                    best,
                    order,
                    slot,
                    Lite {
                        alt: self.alt as u32,
                        offer: idx,
                        market,
                        owned: None,
                        cost,
                    },
                );
            }
            stage[slot] = stage[slot].max(got);
        }
    }
}

/// Keeps `lite` if it beats the best candidate so far of its (provider, market).
fn offer_candidate(best: &mut [Option<Lite>], order: &Ranking<'_>, slot: usize, lite: Lite) {
    let cell = &mut best[slot * MARKETS + market_pos(lite.market)];
    match cell {
        Some(g) if order.cmp(&lite, g) != Ordering::Less => {}
        _ => *cell = Some(lite),
    }
}

fn committed_cost(oc: &OwnedCapacity, gpus: u32) -> i64 {
    oc.marginal_per_gpu_hour
        .hourly()
        .micros()
        .saturating_mul(gpus as i64)
}

fn reject(
    req: &ResourceRequest,
    alt: usize,
    markets: &[Market],
    need: u32,
    providers: &[ProviderSlot<'_>],
    stage: &[Stage],
    out: &mut Vec<Rejection>,
) {
    let accel = req.accelerators.clone();
    if let Some(p) = &req.provider {
        if !providers.iter().any(|s| s.id == p) {
            out.push(Rejection::new(
                p.clone(),
                alt,
                accel,
                RejectReason::NotInCatalog,
            ));
            return;
        }
    }
    let public: Vec<Market> = markets
        .iter()
        .copied()
        .filter(|m| *m != Market::Committed)
        .collect();
    for (slot, s) in providers.iter().enumerate() {
        if req.provider.as_ref().is_some_and(|p| p != s.id) {
            continue;
        }
        let reason = match &s.status {
            Status::NotAllowed => RejectReason::NotAllowed,
            Status::Unavailable(r) => RejectReason::Unavailable { reason: r.clone() },
            Status::Usable => match stage[slot] {
                Stage::Feasible => continue,
                Stage::Nothing => RejectReason::NoOffer,
                Stage::Accelerator => RejectReason::NoInstanceType {
                    instance_type: req.instance_type.clone().unwrap_or_default(),
                },
                Stage::InstanceType => RejectReason::NoOfferInLocation {
                    region: req.region.clone(),
                    zone: req.zone.clone(),
                },
                Stage::Location => RejectReason::NoOfferWithShape,
                Stage::Shape => RejectReason::NoMarket {
                    markets: public.clone(),
                },
                Stage::Market => RejectReason::NoCapacity {
                    markets: public.clone(),
                    gpus_needed: need,
                },
            },
        };
        out.push(Rejection::new(s.id.clone(), alt, accel.clone(), reason));
    }
}

fn candidate(ctx: &PlacementContext<'_>, task: &TaskSpec, num_nodes: u32, l: Lite) -> Candidate {
    let o = ctx.catalog.offer(l.offer);
    let req = &task.resources[l.alt as usize];
    Candidate {
        offer: l.offer,
        alternative: l.alt as usize,
        provider: o.provider.clone(),
        instance_type: o.instance_type.clone(),
        location: o.location.clone(),
        market: l.market,
        commitment: l.owned.map(|i| ctx.owned[i as usize].commitment.clone()),
        accelerators: o.accelerator.clone().or_else(|| req.accelerators.clone()),
        num_nodes,
        hourly_cost: Rate::per_hour(hedge_core::Money::from_micros(l.cost)),
    }
}
