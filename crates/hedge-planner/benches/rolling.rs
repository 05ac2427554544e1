//! Rolling re-planning benchmark (run by `bench/planner/run.sh rolling`): on generated 36-month instances,
//! the plan signed once (the stochastic plan on S scenarios) against re-planning every period along each
//! path (`hedge_planner::rolling`) and each path's hindsight optimum, on N fresh paths: further draws of the
//! process that made the planning scenarios (`synthetic::instance` with S + N scenarios, the first S
//! planned on, the other N held out), or `--generator switching` (`outofsample::sample_paths`).
//!
//! Usage: `cargo bench -p hedge-planner --bench rolling -- [--paths 300] [--scenarios 20] [--seeds 1,2,3]
//! [--every 1] [--policies off|on] [--generator synthetic|switching]`

use hedge_planner::outofsample::{sample_paths, Generator};
use hedge_planner::rolling::study;
use hedge_planner::synthetic::{instance, Size};
use hedge_planner::{evaluate, optimise, PlannerConfig};
use std::time::Instant;

// A benchmark measures wall time: the clock is read here and nowhere in the library.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n: usize = get("--paths").map_or(300, |x| x.parse().expect("a number"));
    let s: usize = get("--scenarios").map_or(20, |x| x.parse().expect("a number"));
    let every: usize = get("--every").map_or(1, |x| x.parse().expect("a number"));
    let policies = get("--policies").is_some_and(|p| p == "on");
    let generator = get("--generator").unwrap_or_else(|| "synthetic".into());
    let seeds: Vec<u64> = get("--seeds")
        .unwrap_or_else(|| "1,2,3".into())
        .split(',')
        .map(|x| x.trim().parse().expect("a number"))
        .collect();
    let cfg = PlannerConfig {
        price_policies: false,
        baselines: false,
        ..PlannerConfig::default()
    };
    println!("rolling re-planning: 3 providers x 2 accelerators x 3 terms (12/24/36) x 36 starts, 36 monthly periods;");
    println!(
        "planned on {s} scenarios, re-planned every {every} period(s), {n} fresh {generator} paths, policies {}",
        if policies { "on (max_share 0.5, survive_loss_of 1, keep_fraction 0.4)" } else { "off" }
    );
    println!(
        "{:>4}  {:>14}  {:>14}  {:>14}  {:>8}  {:>8}  {:>10}  {:>9}  {:>7}  {:>8}",
        "seed",
        "once mean $",
        "rolling mean $",
        "hindsight $",
        "once gap",
        "roll gap",
        "gap closed",
        "roll<once",
        "replans",
        "secs"
    );
    let (mut sum_once, mut sum_roll, mut sum_hind) = (0.0, 0.0, 0.0);
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
        let paths = match generator.as_str() {
            "switching" => sample_paths(&input, Generator::default(), n, seed),
            _ => full.scenarios[s..].to_vec(),
        };
        let t0 = now();
        let once = optimise(&input, &cfg)
            .expect("solver")
            .expect("feasible")
            .commitments;
        assert!(
            evaluate(&input, &once).broken_policies().is_empty(),
            "seed {seed}: the plan breaks a policy"
        );
        let r = study(&input, &cfg, &once, &paths, every).expect("solver");
        let (o, ro, h) = (r.once_usd.mean, r.rolling_usd.mean, r.hindsight_usd.mean);
        sum_once += o;
        sum_roll += ro;
        sum_hind += h;
        println!(
            "{seed:>4}  {o:>14.0}  {ro:>14.0}  {h:>14.0}  {:>7.2}%  {:>7.2}%  {:>9.1}%  {:>8.0}%  {:>7.1}  {:>8.1}",
            100.0 * (o - h) / h,
            100.0 * (ro - h) / h,
            100.0 * r.gap_closed,
            100.0 * r.rolling_cheaper_on,
            r.replans_per_path,
            t0.elapsed().as_secs_f64()
        );
        if r.infeasible_replans > 0 || !r.rolling_breaks.is_empty() || !r.once_breaks.is_empty() {
            println!(
                "      note: {} infeasible re-plans; rolling breaks [{}] and once breaks [{}] on some path",
                r.infeasible_replans,
                r.rolling_breaks.join(", "),
                r.once_breaks.join(", ")
            );
        }
    }
    println!(
        "all   gap closed (pooled means): {:.1}%",
        100.0 * (sum_once - sum_roll) / (sum_once - sum_hind)
    );
}
