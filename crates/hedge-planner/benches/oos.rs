//! Out-of-sample benchmark (run by `bench/planner/run.sh oos`): on generated 36-month instances, the
//! stochastic plan (planned once on S scenarios) against the expected-value plan, the lookback recommender,
//! all on-demand and each path's hindsight optimum, on N fresh paths from two generators:
//! - `synthetic`: further draws of the process that made the planning scenarios (`synthetic::instance`
//!   with S + N scenarios, the first S planned on, the other N held out);
//! - `switching`: `outofsample::sample_paths` from the S planning scenarios (the `hedge plan
//!   --out-of-sample` generator, default parameters).
//!
//! Usage: `cargo bench -p hedge-planner --bench oos -- [--paths 100] [--scenarios 20] [--seeds 1,2,3]`

use hedge_planner::outofsample::{out_of_sample, out_of_sample_sampled, Generator, OutOfSample};
use hedge_planner::synthetic::{instance, Size};
use hedge_planner::{evaluate, optimise, PlannerConfig};
use std::time::Instant;

// A benchmark measures wall time: the clock is read here and nowhere in the library.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn list(s: &str) -> Vec<u64> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.trim().parse().expect("a number"))
        .collect()
}

fn row(seed: u64, gen: &str, o: &OutOfSample, secs: f64) {
    let mean = |prefix: &str| {
        o.plans
            .iter()
            .find(|p| p.name.starts_with(prefix))
            .map(|p| p.cost_usd.mean)
    };
    let cheaper = |prefix: &str| {
        o.plans
            .iter()
            .find(|p| p.name.starts_with(prefix))
            .map_or(0.0, |p| p.plan_cheaper_on)
    };
    let rp = mean("this plan").unwrap_or(0.0);
    let rel = |x: Option<f64>| {
        x.map_or("-".to_owned(), |x| {
            format!("{:+.2}%", 100.0 * (x / rp - 1.0))
        })
    };
    println!(
        "{seed:>4}  {gen:>9}  {:>14.0}  {:>9}  {:>9}  {:>9}  {:>9}  {:>6.2}%  {:>6.2}%  {:>8.2}%  {:>8.2}%  {:>7.0}%  {:>7.0}%  {secs:>6.1}",
        rp,
        rel(mean("expected-value plan")),
        rel(mean("lookback")),
        rel(mean("all on-demand")),
        rel(mean("hindsight")),
        100.0 * o.vss_usd / rp,
        100.0 * o.evpi_usd / rp,
        100.0 * o.regret_usd.p50 / rp,
        100.0 * o.regret_usd.p90 / rp,
        100.0 * cheaper("expected-value plan"),
        100.0 * cheaper("lookback"),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n = get("--paths").map_or(100, |x| x.parse().expect("a number"));
    let s = get("--scenarios").map_or(20, |x| x.parse().expect("a number"));
    let seeds = list(&get("--seeds").unwrap_or_else(|| "1,2,3".into()));
    let cfg = PlannerConfig {
        price_policies: false,
        baselines: false,
        ..PlannerConfig::default()
    };
    println!(
        "out of sample: 3 providers x 2 accelerators x 3 terms x 36 starts, 36 monthly periods;"
    );
    println!("planned on {s} scenarios, evaluated on {n} fresh paths; costs relative to the stochastic plan's mean");
    println!(
        "{:>4}  {:>9}  {:>14}  {:>9}  {:>9}  {:>9}  {:>9}  {:>7}  {:>7}  {:>9}  {:>9}  {:>8}  {:>8}  {:>6}",
        "seed", "paths", "plan mean $", "EV plan", "lookback", "on-dem.", "hindsight", "VSS", "EVPI", "regret50", "regret90", "<EV on", "<LB on", "secs"
    );
    for policies in [false, true] {
        println!(
            "policies {}:",
            if policies {
                "on (max_share 0.5, survive_loss_of 1, keep_fraction 0.4)"
            } else {
                "off"
            }
        );
        for &seed in &seeds {
            let size = Size {
                providers: 3,
                accelerators: 2,
                terms: 3,
                start_periods: 36,
                periods: 36,
                scenarios: s + n,
                policies,
            };
            let full = instance(seed, size);
            let mut input = full.clone();
            input.scenarios.truncate(s);
            for sc in &mut input.scenarios {
                sc.probability = 1.0 / s as f64;
            }
            let fresh: Vec<_> = full.scenarios[s..].to_vec();
            let t0 = now();
            let opt = optimise(&input, &cfg).expect("solver").expect("feasible");
            let broken = evaluate(&input, &opt.commitments).broken_policies();
            assert!(broken.is_empty(), "seed {seed}: the plan breaks {broken:?}");
            let a = out_of_sample(&input, &cfg, &opt.commitments, &fresh).expect("solver");
            row(seed, "synthetic", &a, t0.elapsed().as_secs_f64());
            let t1 = now();
            let b = out_of_sample_sampled(
                &input,
                &cfg,
                &opt.commitments,
                Generator::default(),
                n,
                seed,
            )
            .expect("solver");
            row(seed, "switching", &b, t1.elapsed().as_secs_f64());
            for o in [&a, &b] {
                for p in &o.plans {
                    if !p.breaks.is_empty() {
                        println!(
                            "      note: {} breaks {} on the planning scenarios",
                            p.name,
                            p.breaks.join(", ")
                        );
                    }
                }
            }
        }
    }
}
