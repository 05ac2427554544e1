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
use hedge_core::{Catalog, Market, Offer, OfferIdx, Preference, ProviderId, Rate, ResourceRequest, SpotPref, TaskSpec};
use std::cmp::Ordering;

/// Places `task`: the cheapest feasible candidate, ranked alternatives, and the reasons for every provider
/// that yielded none. Pure; see the module documentation for the exact semantics and tie-break.
pub fn place(task: &TaskSpec, ctx: &PlacementContext<'_>, settings: &PlacementSettings) -> Placement {
    let catalog = ctx.catalog;
    let num_nodes = task.num_nodes.max(1);
    let providers = provider_table(ctx, settings);
    let mut best: Vec<Group> = Vec::new();
    let mut rejected = Vec::new();
    let order = Ranking { catalog, ordered: task.preference == Preference::Ordered, rank: settings.market_rank };

    for (alt, req) in task.resources.iter().enumerate() {
        let markets = markets_for(req.spot, settings);
        let mut stage = vec![Stage::Nothing; providers.len()];
        let need = req.accelerators.as_ref().map_or(0, |a| a.count.saturating_mul(num_nodes));
        // Owned capacity this alternative could use, filtered once.
        let owned: Vec<u32> = if markets.contains(&Market::Committed) {
            ctx.owned
                .iter()
                .enumerate()
                .filter(|(_, oc)| {
                    req.accelerators.as_ref().is_none_or(|a| a.name == oc.accelerator)
                        && oc.free_gpus >= need
                        && req.provider.as_ref().is_none_or(|p| *p == oc.provider)
                })
                .map(|(i, _)| i as u32)
                .collect()
        } else {
            Vec::new()
        };
        let scan = Scan { catalog, req, alt, num_nodes, need, markets, owned: &owned, ctx, providers: &providers };
        match &req.accelerators {
            Some(a) => scan.run(catalog.with_accelerator(&a.name).iter().copied(), &mut stage, &mut best, &order),
            None => scan.run((0..catalog.len() as u32).map(OfferIdx), &mut stage, &mut best, &order),
        }
        reject(req, alt, markets, need, &providers, &stage, &mut rejected);
    }

    best.sort_by(|a, b| order.cmp(&a.lite, &b.lite));
    let mut ranked = best.into_iter().map(|g| candidate(ctx, task, num_nodes, g.lite));
    let chosen = ranked.next();
    let alternatives = ranked.take(settings.max_alternatives).collect();
    Placement { chosen, alternatives, rejected }
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

fn provider_table<'a>(ctx: &PlacementContext<'a>, settings: &PlacementSettings) -> Vec<ProviderSlot<'a>> {
    ctx.catalog
        .providers()
        .keys()
        .map(|id| {
            let status = if settings.allowed_providers.as_ref().is_some_and(|a| !a.contains(id)) {
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

/// The best candidate of one (provider, market).
struct Group {
    provider: u32,
    market: Market,
    lite: Lite,
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
    fn run(
        &self,
        offers: impl Iterator<Item = OfferIdx>,
        stage: &mut [Stage],
        best: &mut Vec<Group>,
        order: &Ranking<'_>,
    ) {
        let req = self.req;
        let mut last_slot = usize::MAX;
        for idx in offers {
            let o = self.catalog.offer(idx);
            if let Some(want) = &req.accelerators {
                match &o.accelerator {
                    Some(a) if a.count == want.count && a.name == want.name => {}
                    _ => continue,
                }
            }
            if req.provider.as_ref().is_some_and(|p| *p != o.provider) {
                continue;
            }
            if last_slot >= self.providers.len() || *self.providers[last_slot].id != o.provider {
                match self.providers.iter().position(|s| *s.id == o.provider) {
                    Some(s) => last_slot = s,
                    None => continue, // unreachable: the catalog registers every offer's provider
                }
            }
            let slot = last_slot;
            if !matches!(self.providers[slot].status, Status::Usable) {
                continue;
            }
            let reached = self.check(o);
            if reached < Stage::Shape {
                stage[slot] = stage[slot].max(reached);
                continue;
            }
            let mut got = Stage::Shape;
            for &market in self.markets {
                if market == Market::Committed {
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
                        self.offer_candidate(best, order, slot, Lite {
                            alt: self.alt as u32,
                            offer: idx,
                            market,
                            owned: Some(oi),
                            cost,
                        });
                    }
                    continue;
                }
                let Some(price) = o.prices.get(market) else { continue };
                got = got.max(Stage::Market);
                if let Some(a) = &o.accelerator {
                    let avail = self.ctx.conditions.gpus_available(&o.provider, &o.location, &a.name, market);
                    if avail.is_some_and(|n| n < self.need.max(a.count.saturating_mul(self.num_nodes))) {
                        continue;
                    }
                }
                got = Stage::Feasible;
                let cost = price.hourly().micros().saturating_mul(self.num_nodes as i64);
                self.offer_candidate(best, order, slot, Lite { alt: self.alt as u32, offer: idx, market, owned: None, cost });
            }
            stage[slot] = stage[slot].max(got);
        }
    }

    /// The furthest non-market check `o` passes (accelerator already matched).
    fn check(&self, o: &Offer) -> Stage {
        let req = self.req;
        if req.instance_type.as_ref().is_some_and(|t| *t != o.instance_type) {
            return Stage::Accelerator;
        }
        if req.region.as_ref().is_some_and(|r| r != o.location.region())
            || req.zone.as_ref().is_some_and(|z| Some(z) != o.location.zone())
        {
            return Stage::InstanceType;
        }
        let cpus_ok = req.cpus_milli.is_none_or(|b| o.vcpus_milli.is_some_and(|v| b.admits(v)));
        let mem_ok = req.memory_mib.is_none_or(|b| o.memory_mib.is_some_and(|v| b.admits(v)));
        if !(cpus_ok && mem_ok) {
            return Stage::Location;
        }
        Stage::Shape
    }

    fn offer_candidate(&self, best: &mut Vec<Group>, order: &Ranking<'_>, slot: usize, lite: Lite) {
        let slot = slot as u32;
        match best.iter_mut().find(|g| g.provider == slot && g.market == lite.market) {
            Some(g) => {
                if order.cmp(&lite, &g.lite) == Ordering::Less {
                    g.lite = lite;
                }
            }
            None => best.push(Group { provider: slot, market: lite.market, lite }),
        }
    }
}

fn committed_cost(oc: &OwnedCapacity, gpus: u32) -> i64 {
    oc.marginal_per_gpu_hour.hourly().micros().saturating_mul(gpus as i64)
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
            out.push(Rejection::new(p.clone(), alt, accel, RejectReason::NotInCatalog));
            return;
        }
    }
    let public: Vec<Market> = markets.iter().copied().filter(|m| *m != Market::Committed).collect();
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
                Stage::InstanceType => {
                    RejectReason::NoOfferInLocation { region: req.region.clone(), zone: req.zone.clone() }
                }
                Stage::Location => RejectReason::NoOfferWithShape,
                Stage::Shape => RejectReason::NoMarket { markets: public.clone() },
                Stage::Market => RejectReason::NoCapacity { markets: public.clone(), gpus_needed: need },
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
