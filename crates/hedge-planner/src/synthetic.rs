//! Seeded synthetic planning inputs of any size, for the scale benchmark (`bench/planner`) and for tests
//! that compare the two methods and the backends. Deterministic for a seed.

use crate::input::*;
use hedge_core::{Accelerator, ProviderId, Rate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub providers: usize,
    pub accelerators: usize,
    /// Up to 3 terms: 12, 24 and 36 periods (shorter ones first).
    pub terms: usize,
    pub start_periods: usize,
    pub periods: usize,
    pub scenarios: usize,
    /// Add max_share 0.5 and survive_loss_of 1 with keep_fraction 0.4.
    pub policies: bool,
}

impl Size {
    /// The benchmark's scale goal: 6 providers × 8 accelerators × 3 terms × 36 starts, 60 periods, 200 scenarios.
    pub const GOAL: Size = Size {
        providers: 6,
        accelerators: 8,
        terms: 3,
        start_periods: 36,
        periods: 60,
        scenarios: 200,
        policies: true,
    };
}

const ACCELS: [&str; 8] = [
    "H100",
    "B200",
    "H200",
    "A100-80GB",
    "L40S",
    "MI300X",
    "GB200",
    "L4",
];
const NAMES: [&str; 8] = [
    "azure",
    "oci",
    "aws",
    "gcp",
    "coreweave",
    "lambda",
    "nebius",
    "crusoe",
];

fn rate(usd: f64) -> Rate {
    Rate::from_usd_per_hour_f64((usd * 100.0).round() / 100.0).unwrap_or(Rate::ZERO)
}

pub fn instance(seed: u64, size: Size) -> PlanningInput {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let na = size.accelerators.min(ACCELS.len());
    let np = size.providers.min(NAMES.len());
    let nt = size.periods;
    let accelerators: Vec<Accelerator> = ACCELS[..na]
        .iter()
        .map(|a| Accelerator::parse(a).expect("known name"))
        .collect();
    let term_lengths: Vec<usize> = [12usize, 24, 36][..size.terms.clamp(1, 3)]
        .iter()
        .map(|&t| t.min(nt.max(1)))
        .collect();
    let discounts = [0.72, 0.62, 0.52];

    // Demand: a growing trend per accelerator, each scenario a multiplicative random walk around it.
    let trend: Vec<(f64, f64)> = (0..na)
        .map(|_| (rng.gen_range(200.0..3000.0), rng.gen_range(0.0..0.03)))
        .collect();
    let mut scenarios = Vec::new();
    let p = 1.0 / size.scenarios as f64;
    for s in 0..size.scenarios {
        let mut demand = Vec::new();
        for &(d0, g) in &trend {
            let mut level = 1.0f64;
            let mut row = Vec::new();
            for t in 0..nt {
                level *= 1.0 + rng.gen_range(-0.04..0.05);
                let d = d0 * (1.0 + g).powi(t as i32) * level;
                row.push(MilliGpus((d.round() as u64) * 1000));
            }
            demand.push(row);
        }
        scenarios.push(Scenario {
            name: format!("s{s}"),
            probability: p,
            demand,
        });
    }
    // Probabilities must sum to 1 exactly enough: put the rounding on the last one.
    let sum: f64 = scenarios.iter().map(|s| s.probability).sum();
    if let Some(last) = scenarios.last_mut() {
        last.probability += 1.0 - sum;
    }
    let peak: Vec<f64> = (0..na)
        .map(|a| {
            scenarios
                .iter()
                .flat_map(|s| s.demand[a].iter())
                .map(|d| d.gpus_f64())
                .fold(0.0, f64::max)
        })
        .collect();

    let mut providers = Vec::new();
    for (pi, name) in NAMES[..np].iter().enumerate() {
        let factor = rng.gen_range(0.85..1.25);
        let mut prov = Provider {
            id: ProviderId::new(*name),
            on_demand: vec![None; na],
            spot: vec![None; na],
            spot_availability: vec![0.0; na],
            capacity: vec![None; na],
            options: Vec::new(),
            existing: Vec::new(),
        };
        for a in 0..na {
            let base = 1.5 + 0.9 * a as f64 % 5.0;
            let od = base * factor;
            prov.on_demand[a] = Some(rate(od));
            if pi % 2 == 1 {
                prov.spot[a] = Some(rate(od * rng.gen_range(0.35..0.6)));
                prov.spot_availability[a] = 0.3;
            }
            if pi > 0 {
                prov.capacity[a] = Some((peak[a] * rng.gen_range(0.3..0.8)).round() as u64);
            }
            for (k, &term) in term_lengths.iter().enumerate() {
                prov.options.push(CommitOption {
                    accelerator: a,
                    term_periods: term,
                    rate: rate(od * discounts[k] * rng.gen_range(0.95..1.05)),
                    block_gpus: 1,
                    min_gpus: 0,
                });
            }
        }
        providers.push(prov);
    }
    let mut policies = Policies::default();
    if size.policies && np >= 3 {
        policies.max_share = Some((ShareOf::CommittedGpus, 0.5));
        policies.survive_loss_of = 1;
        policies.keep_fraction = Some(0.4);
    }
    PlanningInput {
        horizon: Horizon {
            start: YearMonth {
                year: 2027,
                month: 1,
            },
            periods: nt,
            period_hours: 730,
            start_periods: size.start_periods.clamp(1, nt),
        },
        accelerators,
        scenarios,
        providers,
        policies,
        risk: None,
        price_sources: Vec::new(),
    }
}
