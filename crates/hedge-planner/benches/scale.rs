//! The planner's scale benchmark (run by `bench/planner/run.sh`): the goal model of issue 5
//! (6 providers × 8 accelerators × 3 terms × 36 start periods, 60 periods) at 25..400 scenarios, solved by
//! the Benders decomposition, with the extensive form as the peer where it fits.
//!
//! Usage: `cargo bench -p hedge-planner --bench scale -- [--scenarios 25,50,100,200,400] [--extensive 25,50]
//! [--backend cbc|microlp] [--gap 1e-4]`

use hedge_planner::lp::SolveOptions;
use hedge_planner::synthetic::{instance, Size};
use hedge_planner::{benders, formulation, Backend};
use std::time::Instant;

fn list(s: &str) -> Vec<usize> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.trim().parse().expect("a number"))
        .collect()
}

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
    let scenarios = list(&get("--scenarios").unwrap_or_else(|| "25,50,100,200,400".into()));
    let extensive = list(&get("--extensive").unwrap_or_else(|| "25".into()));
    let backend =
        Backend::parse(&get("--backend").unwrap_or_else(|| "cbc".into())).expect("cbc or microlp");
    let gap: f64 = get("--gap").map_or(1e-4, |g| g.parse().expect("a number"));
    let opts = SolveOptions {
        mip_gap: gap,
        ..SolveOptions::default()
    };
    let build = formulation::BuildOptions {
        relax_integers: false,
        integer_gpus: false,
    };
    println!("goal model: 6 providers x 8 accelerators x 3 terms x 36 starts, 60 periods; backend {backend}, gap {gap:e}");
    println!(
        "{:>9}  {:>9}  {:>10}  {:>6}  {:>7}  {:>12}  {:>9}",
        "scenarios", "method", "seconds", "iters", "cuts", "objective", "rel gap"
    );
    let mut benders_200 = None;
    let mut results: Vec<(usize, f64, f64)> = Vec::new();
    for &n in &scenarios {
        let input = instance(
            7,
            Size {
                scenarios: n,
                ..Size::GOAL
            },
        );
        let t0 = now();
        let r = benders::solve(&input, &backend, build, &opts, gap, 500)
            .expect("solver")
            .unwrap_or_else(|_| panic!("infeasible"));
        let secs = t0.elapsed().as_secs_f64();
        let rel = (r.upper_bound - r.lower_bound) / r.upper_bound;
        println!(
            "{n:>9}  {:>9}  {secs:>10.2}  {:>6}  {:>7}  {:>12.6e}  {rel:>9.2e}",
            "benders", r.iterations, r.cuts, r.upper_bound
        );
        if n == 200 {
            benders_200 = Some(secs);
        }
        results.push((n, secs, r.upper_bound));
    }
    for &n in &extensive {
        let input = instance(
            7,
            Size {
                scenarios: n,
                ..Size::GOAL
            },
        );
        let t0 = now();
        let fs = formulation::extensive_form(&input, build).expect("model");
        let built = t0.elapsed().as_secs_f64();
        let sol = hedge_planner::lp::LpBackend::solve(&backend, &fs.lp, &opts)
            .expect("solver")
            .expect("feasible");
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "{n:>9}  {:>9}  {secs:>10.2}  {:>6}  {:>7}  {:>12.6e}  {:>9}",
            "extensive",
            1,
            fs.lp.rows.len(),
            sol.objective,
            "-"
        );
        if let Some(&(_, bsecs, bobj)) = results.iter().find(|r| r.0 == n) {
            println!(
                "           extensive/benders time ratio {:.1}x (build {built:.1}s); objectives differ by {:.2e} (relative)",
                secs / bsecs,
                (sol.objective - bobj).abs() / sol.objective
            );
        }
    }
    if let Some(s) = benders_200 {
        println!(
            "goal: 200 scenarios under 30 s: {} ({s:.1} s)",
            if s < 30.0 { "met" } else { "NOT met" }
        );
    }
    if results.len() >= 2 {
        let (n0, t0, _) = results[0];
        for &(n, t, _) in &results[1..] {
            println!(
                "time({n}) / time({n0}) = {:.2} for {:.0}x the scenarios",
                t / t0,
                n as f64 / n0 as f64
            );
        }
    }
}
