//! A brute-force reference: every (offer, market, owned capacity) checked against every constraint with
//! straightforward code, independent of the engine's staged scan.

use hedge_core::{Market, Preference, SpotPref, TaskSpec};
use hedge_placement::{Candidate, PlacementContext, PlacementSettings};

/// A feasible candidate found by brute force.
#[derive(Debug, Clone)]
pub struct Found {
    pub alt: usize,
    pub cost: i64,
    pub provider: hedge_core::ProviderId,
}

/// Every feasible candidate: (offer, market) or (offer, owned capacity).
pub fn feasible(task: &TaskSpec, ctx: &PlacementContext<'_>, s: &PlacementSettings) -> Vec<Found> {
    let n = task.num_nodes.max(1);
    let mut out = Vec::new();
    for (ai, r) in task.resources.iter().enumerate() {
        for o in ctx.catalog.offers() {
            if !satisfies(r, o) {
                continue;
            }
            if s.allowed_providers
                .as_ref()
                .is_some_and(|a| !a.contains(&o.provider))
            {
                continue;
            }
            if ctx.conditions.provider_usable(&o.provider).is_err() {
                continue;
            }
            let gpus = o.gpus() * n;
            let markets: Vec<Market> = match r.spot {
                SpotPref::Never => vec![Market::Committed, Market::OnDemand],
                SpotPref::Required if s.committed_serves_spot => {
                    vec![Market::Committed, Market::Spot]
                }
                SpotPref::Required => vec![Market::Spot],
                SpotPref::Allowed => vec![Market::Committed, Market::OnDemand, Market::Spot],
            };
            for m in markets {
                if m == Market::Committed {
                    let Some(a) = &o.accelerator else { continue };
                    for oc in ctx.owned {
                        if oc.provider == o.provider
                            && oc.accelerator == a.name
                            && oc.region.as_ref().is_none_or(|x| x == o.location.region())
                            && oc.free_gpus >= gpus
                        {
                            out.push(Found {
                                alt: ai,
                                cost: oc.marginal_per_gpu_hour.hourly().micros() * gpus as i64,
                                provider: o.provider.clone(),
                            });
                        }
                    }
                    continue;
                }
                let Some(p) = o.prices.get(m) else { continue };
                if let Some(a) = &o.accelerator {
                    if ctx
                        .conditions
                        .gpus_available(&o.provider, &o.location, &a.name, m)
                        .is_some_and(|x| x < gpus)
                    {
                        continue;
                    }
                }
                out.push(Found {
                    alt: ai,
                    cost: p.hourly().micros() * n as i64,
                    provider: o.provider.clone(),
                });
            }
        }
    }
    out
}

/// Whether offer `o` meets every non-market constraint of `r`.
pub fn satisfies(r: &hedge_core::ResourceRequest, o: &hedge_core::Offer) -> bool {
    (match (&r.accelerators, &o.accelerator) {
        (None, _) => true,
        (Some(w), Some(a)) => w == a,
        (Some(_), None) => false,
    }) && r.provider.as_ref().is_none_or(|p| *p == o.provider)
        && r.region.as_ref().is_none_or(|x| x == o.location.region())
        && r.zone.as_ref().is_none_or(|z| Some(z) == o.location.zone())
        && r.instance_type
            .as_ref()
            .is_none_or(|t| *t == o.instance_type)
        && r.cpus_milli
            .is_none_or(|b| o.vcpus_milli.is_some_and(|v| b.admits(v)))
        && r.memory_mib
            .is_none_or(|b| o.memory_mib.is_some_and(|v| b.admits(v)))
}

/// The cost placement must find: the minimum over all feasible candidates, or over the first alternative
/// with any when the preference is ordered.
pub fn best_cost(task: &TaskSpec, all: &[Found]) -> Option<i64> {
    match task.preference {
        Preference::Cheapest => all.iter().map(|c| c.cost).min(),
        Preference::Ordered => {
            let first = all.iter().map(|c| c.alt).min()?;
            all.iter().filter(|c| c.alt == first).map(|c| c.cost).min()
        }
    }
}

/// Whether a candidate meets the constraints of the alternative it claims, including the market.
pub fn candidate_ok(task: &TaskSpec, ctx: &PlacementContext<'_>, c: &Candidate) -> bool {
    let r = &task.resources[c.alternative];
    let o = ctx.catalog.offer(c.offer);
    let market_ok = !matches!(
        (r.spot, c.market),
        (SpotPref::Never, Market::Spot) | (SpotPref::Required, Market::OnDemand)
    );
    satisfies(r, o)
        && market_ok
        && o.provider == c.provider
        && o.location == c.location
        && c.num_nodes == task.num_nodes.max(1)
        && (c.market == Market::Committed) == c.commitment.is_some()
}
