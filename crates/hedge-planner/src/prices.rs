//! Prices from the catalog (`providers[i].prices_from` in a plan file). The planner never reads a catalog
//! file: the caller (the CLI) loads one and passes it in as a [`CatalogSource`]; this module only looks
//! prices up in the in-memory [`hedge_core::Catalog`].
//!
//! For a provider, a region (optional: every region when absent) and an accelerator, the quote is the
//! cheapest matching offer per GPU-hour in each market: on-demand and spot are listed per instance-hour and
//! divided by the instance's GPUs; committed prices are per GPU-hour per term in months, and become terms
//! of `term_months × 730 / period_hours` periods (a term that is not a whole number of periods is skipped).
//! Prices written in the plan file are negotiated rates and override the catalog's.

use hedge_core::{Accelerator, Catalog, ProviderId, Rate};
use serde::Serialize;

/// A catalog handed to the parser, with the label the report names it by (`data/catalog.json (embedded)`).
#[derive(Clone, Copy)]
pub struct CatalogSource<'a> {
    pub catalog: &'a Catalog,
    pub label: &'a str,
}

/// Where one price the plan uses came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PriceSource {
    pub provider: String,
    pub accelerator: String,
    /// `on_demand`, `spot` or `committed <k> periods`.
    pub market: String,
    pub usd_per_gpu_hour: f64,
    /// `plan file (providers[0].on_demand.H100)` or `catalog <label>: <provider> <region> <instance type>`.
    pub source: String,
}

/// One market's price and the offer it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Quoted {
    pub rate: Rate,
    /// `aws us-east-1 p5.48xlarge`
    pub offer: String,
}

/// The catalog's prices for one (provider, region, accelerator).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Quote {
    pub on_demand: Option<Quoted>,
    pub spot: Option<Quoted>,
    /// `(term_months, price)`, cheapest per term, ascending by term.
    pub committed: Vec<(u16, Quoted)>,
}

fn keep_min(slot: &mut Option<Quoted>, rate: Rate, offer: &str) {
    if slot.as_ref().is_none_or(|q| rate < q.rate) {
        *slot = Some(Quoted {
            rate,
            offer: offer.to_owned(),
        });
    }
}

/// Whether the catalog has any offer of `provider` (in `region`, when given).
pub fn has_offers(catalog: &Catalog, provider: &ProviderId, region: Option<&str>) -> bool {
    catalog.offers().iter().any(|o| {
        &o.provider == provider && region.is_none_or(|r| o.location.region().as_str() == r)
    })
}

/// The cheapest prices of `accelerator` at `provider` (in `region`), or `None` when no offer carries it.
pub fn quote(
    catalog: &Catalog,
    provider: &ProviderId,
    region: Option<&str>,
    accelerator: &Accelerator,
) -> Option<Quote> {
    let mut q = Quote::default();
    let mut found = false;
    let mut committed: Vec<(u16, Quoted)> = Vec::new();
    for &idx in catalog.with_accelerator(accelerator) {
        let o = catalog.offer(idx);
        if &o.provider != provider || region.is_some_and(|r| o.location.region().as_str() != r) {
            continue;
        }
        let gpus = o.gpus();
        if gpus == 0 {
            continue;
        }
        found = true;
        let name = format!("{} {} {}", o.provider, o.location.region(), o.instance_type);
        if let Some(r) = o.prices.on_demand {
            keep_min(&mut q.on_demand, r.per_unit(gpus), &name);
        }
        if let Some(r) = o.prices.spot {
            keep_min(&mut q.spot, r.per_unit(gpus), &name);
        }
        for c in &o.prices.committed {
            match committed.iter_mut().find(|x| x.0 == c.term_months) {
                Some(x) => {
                    if c.per_gpu_hour < x.1.rate {
                        x.1 = Quoted {
                            rate: c.per_gpu_hour,
                            offer: name.clone(),
                        };
                    }
                }
                None => committed.push((
                    c.term_months,
                    Quoted {
                        rate: c.per_gpu_hour,
                        offer: name.clone(),
                    },
                )),
            }
        }
    }
    committed.sort_by_key(|x| x.0);
    q.committed = committed;
    found.then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hedge_core::{AccelRequest, Catalog, CommittedPrice, Location, Offer, Prices, RegionId};

    fn offer(
        provider: &str,
        region: &str,
        it: &str,
        gpus: u32,
        od: f64,
        spot: Option<f64>,
        committed: &[(u16, f64)],
    ) -> Offer {
        Offer {
            provider: ProviderId::new(provider),
            instance_type: it.into(),
            accelerator: Some(AccelRequest::new(Accelerator::parse("H100").unwrap(), gpus)),
            vcpus_milli: None,
            memory_mib: None,
            location: Location::Region {
                region: RegionId::new(region),
            },
            prices: Prices {
                on_demand: Some(Rate::from_usd_per_hour_f64(od).unwrap()),
                spot: spot.map(|s| Rate::from_usd_per_hour_f64(s).unwrap()),
                committed: committed
                    .iter()
                    .map(|&(m, r)| CommittedPrice {
                        term_months: m,
                        per_gpu_hour: Rate::from_usd_per_hour_f64(r).unwrap(),
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn quotes_the_cheapest_offer_per_gpu_in_each_market() {
        let cat = Catalog::new(
            vec![
                offer(
                    "aws",
                    "us-east-1",
                    "p5.48xlarge",
                    8,
                    80.0,
                    Some(30.0),
                    &[(12, 6.5), (36, 4.0)],
                ),
                offer("aws", "us-east-1", "p5.4xlarge", 1, 9.0, None, &[(12, 6.0)]),
                offer("aws", "us-west-2", "p5.48xlarge", 8, 72.0, None, &[]),
            ],
            Default::default(),
            Vec::new(),
        );
        let h100 = Accelerator::parse("H100").unwrap();
        let aws = ProviderId::new("aws");
        let q = quote(&cat, &aws, Some("us-east-1"), &h100).unwrap();
        assert_eq!(
            q.on_demand.as_ref().unwrap().rate,
            Rate::from_usd_per_hour_f64(9.0).unwrap()
        );
        assert_eq!(
            q.spot.as_ref().unwrap().rate,
            Rate::from_usd_per_hour_f64(3.75).unwrap()
        );
        assert_eq!(q.spot.as_ref().unwrap().offer, "aws us-east-1 p5.48xlarge");
        let terms: Vec<(u16, f64)> = q
            .committed
            .iter()
            .map(|(m, x)| (*m, x.rate.to_usd_per_hour_f64()))
            .collect();
        assert_eq!(terms, vec![(12, 6.0), (36, 4.0)]);
        // Every region: us-west-2's $9/GPU-h ties us-east-1's p5.4xlarge; the first one found stays.
        let any = quote(&cat, &aws, None, &h100).unwrap();
        assert_eq!(
            any.on_demand.unwrap().rate,
            Rate::from_usd_per_hour_f64(9.0).unwrap()
        );
        assert!(quote(&cat, &aws, Some("eu-west-1"), &h100).is_none());
        assert!(
            !has_offers(&cat, &aws, Some("eu-west-1")) && has_offers(&cat, &aws, Some("us-west-2"))
        );
        assert!(quote(&cat, &ProviderId::new("gcp"), None, &h100).is_none());
    }
}
