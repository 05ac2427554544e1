use crate::brute;
use hedge_core::{
    AccelRequest, Accelerator, Bound, Catalog, Location, Market, Offer, Preference, Prices,
    ProviderId, Rate, ResourceRequest, SpotPref, TaskSpec,
};
use hedge_placement::{
    place, Conditions, OwnedCapacity, PlacementContext, PlacementSettings, Unusable,
};
use proptest::prelude::*;

const PROVIDERS: &[&str] = &["aws", "gcp", "lambda"];
const ACCELS: &[&str] = &["H100", "A100", "L4"];
const COUNTS: &[u32] = &[1, 2, 8];
const REGIONS: &[&str] = &["r1", "r2"];
const ZONES: &[&str] = &["z1", "z2"];

fn price() -> impl Strategy<Value = Option<Rate>> {
    prop::option::weighted(
        0.8,
        (1i64..40).prop_map(|d| Rate::per_hour(hedge_core::Money::from_micros(d * 250_000))),
    )
}

fn arb_offer() -> impl Strategy<Value = Offer> {
    (
        0..PROVIDERS.len(),
        prop::option::weighted(0.9, (0..ACCELS.len(), 0..COUNTS.len())),
        0..REGIONS.len(),
        prop::option::of(0..ZONES.len()),
        0usize..3,
        prop_oneof![Just(8u32), Just(32), Just(96)],
        price(),
        price(),
    )
        .prop_map(|(p, acc, r, z, it, cpus, od, spot)| Offer {
            provider: PROVIDERS[p].into(),
            instance_type: format!("t{it}"),
            accelerator: acc
                .map(|(a, c)| AccelRequest::new(Accelerator::parse(ACCELS[a]).unwrap(), COUNTS[c])),
            vcpus_milli: Some(cpus * 1000),
            memory_mib: Some(cpus as u64 * 4096),
            location: match z {
                Some(z) => Location::Zone {
                    region: REGIONS[r].into(),
                    zone: ZONES[z].into(),
                },
                None => Location::Region {
                    region: REGIONS[r].into(),
                },
            },
            prices: Prices {
                on_demand: od,
                spot,
                committed: vec![],
            },
        })
}

fn arb_req() -> impl Strategy<Value = ResourceRequest> {
    (
        prop::option::weighted(0.9, (0..ACCELS.len(), 0..COUNTS.len())),
        prop::option::weighted(0.3, 0..PROVIDERS.len() + 1),
        prop::option::weighted(0.3, 0..REGIONS.len()),
        prop::option::weighted(0.15, 0..ZONES.len()),
        prop_oneof![
            Just(SpotPref::Never),
            Just(SpotPref::Required),
            Just(SpotPref::Allowed)
        ],
        prop::option::weighted(
            0.3,
            prop_oneof![Just(Bound::AtLeast(32_000u32)), Just(Bound::Exactly(8_000))],
        ),
        prop::option::weighted(0.2, 0usize..3),
    )
        .prop_map(|(acc, p, r, z, spot, cpus, it)| ResourceRequest {
            accelerators: acc
                .map(|(a, c)| AccelRequest::new(Accelerator::parse(ACCELS[a]).unwrap(), COUNTS[c])),
            provider: p.map(|i| ProviderId::new(PROVIDERS.get(i).copied().unwrap_or("nebius"))),
            region: r.map(|i| REGIONS[i].into()),
            zone: z.map(|i| ZONES[i].into()),
            spot,
            cpus_milli: cpus,
            memory_mib: None,
            instance_type: it.map(|i| format!("t{i}")),
        })
}

fn arb_owned() -> impl Strategy<Value = OwnedCapacity> {
    (
        0..PROVIDERS.len(),
        0..ACCELS.len(),
        prop::option::of(0..REGIONS.len()),
        0u32..20,
        0i64..3,
    )
        .prop_map(|(p, a, r, free, m)| OwnedCapacity {
            commitment: format!("c-{p}-{a}-{free}").as_str().into(),
            provider: PROVIDERS[p].into(),
            accelerator: Accelerator::parse(ACCELS[a]).unwrap(),
            region: r.map(|i| REGIONS[i].into()),
            free_gpus: free,
            marginal_per_gpu_hour: Rate::per_hour(hedge_core::Money::from_micros(m * 500_000)),
        })
}

/// Random conditions: some providers down, and a GPU limit per (provider, market).
#[derive(Debug, Clone)]
struct Fake {
    down: Vec<bool>,
    limit: Vec<Option<u32>>,
}

impl Conditions for Fake {
    fn provider_usable(&self, p: &ProviderId) -> Result<(), Unusable> {
        match PROVIDERS.iter().position(|x| *x == p.as_str()) {
            Some(i) if self.down[i] => Err(Unusable("down".into())),
            _ => Ok(()),
        }
    }
    fn gpus_available(
        &self,
        p: &ProviderId,
        _: &Location,
        _: &Accelerator,
        m: Market,
    ) -> Option<u32> {
        let i = PROVIDERS.iter().position(|x| *x == p.as_str())?;
        self.limit[i * 2 + usize::from(m == Market::Spot)]
    }
}

fn arb_fake() -> impl Strategy<Value = Fake> {
    (
        prop::collection::vec(prop::bool::weighted(0.15), PROVIDERS.len()),
        prop::collection::vec(prop::option::weighted(0.3, 0u32..32), PROVIDERS.len() * 2),
    )
        .prop_map(|(down, limit)| Fake { down, limit })
}

fn arb_task() -> impl Strategy<Value = TaskSpec> {
    (
        prop::collection::vec(arb_req(), 1..4),
        any::<bool>(),
        1u32..4,
    )
        .prop_map(|(resources, ordered, n)| TaskSpec {
            num_nodes: n,
            resources,
            preference: if ordered {
                Preference::Ordered
            } else {
                Preference::Cheapest
            },
            ..TaskSpec::single(ResourceRequest::default())
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn placement_is_feasible_and_as_cheap_as_brute_force(
        offers in prop::collection::vec(arb_offer(), 0..40),
        task in arb_task(),
        owned in prop::collection::vec(arb_owned(), 0..3),
        fake in arb_fake(),
        allow in prop::option::weighted(0.2, prop::sample::subsequence(PROVIDERS.to_vec(), 1..3)),
        committed_serves_spot in any::<bool>(),
    ) {
        let catalog = Catalog::new(offers, Default::default(), vec![]);
        let settings = PlacementSettings {
            allowed_providers: allow.map(|a| a.into_iter().map(ProviderId::from).collect()),
            committed_serves_spot,
            ..Default::default()
        };
        let ctx = PlacementContext::new(&catalog).with_owned(&owned).with_conditions(&fake);
        let p = place(&task, &ctx, &settings);
        let all = brute::feasible(&task, &ctx, &settings);
        let want = brute::best_cost(&task, &all);
        prop_assert_eq!(p.chosen.as_ref().map(|c| c.hourly_cost.hourly().micros()), want);
        for c in p.chosen.iter().chain(&p.alternatives) {
            prop_assert!(brute::candidate_ok(&task, &ctx, c), "{:?}", c);
            if let Some(id) = &c.commitment {
                let oc = owned.iter().find(|o| &o.commitment == id).unwrap();
                prop_assert!(oc.free_gpus >= c.total_gpus());
            }
        }
        if let Some(c) = &p.chosen {
            if task.preference == Preference::Ordered {
                prop_assert_eq!(Some(c.alternative), all.iter().map(|x| x.alt).min());
            }
        }
        // Determinism: the same input gives the same output.
        prop_assert_eq!(&place(&task, &ctx, &settings), &p);
        // Per alternative, every provider in scope either has a feasible candidate (by brute force) or is
        // rejected with a reason, never both.
        for (ai, r) in task.resources.iter().enumerate() {
            let mut rejected: Vec<&str> =
                p.rejected.iter().filter(|x| x.alternative == ai).map(|x| x.provider.as_str()).collect();
            rejected.sort();
            let in_scope: Vec<&str> = match &r.provider {
                Some(p) => vec![p.as_str()],
                None => catalog.providers().keys().map(|k| k.as_str()).collect(),
            };
            let mut want: Vec<&str> = in_scope
                .into_iter()
                .filter(|p| !all.iter().any(|f| f.alt == ai && f.provider.as_str() == *p))
                .collect();
            want.sort();
            prop_assert_eq!(rejected, want, "alternative {}", ai);
        }
    }
}
