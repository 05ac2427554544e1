//! Solver backends side by side (run by `bench/planner/run.sh solvers`, which builds with `--features
//! highs`): each plan file solved as one model (the extensive form, integer blocks and minimums) by every
//! backend of the build, `--repeat` times; wall time of `optimise` (model build, solve, rounding check)
//! and the optimum.
//!
//! Usage: `cargo bench -p hedge-planner --features highs --bench solvers -- [--repeat 3] [--gap 1e-4]
//! [--backends cbc,highs] [--relax] [FILE ...]` (`--relax`: the LP relaxation only, no rounding repair) (default FILE: examples/frontier-lab.yaml).

use hedge_planner::{evaluate, optimise, parse_plan_yaml, Backend, Method, PlannerConfig};
use std::time::Instant;

// A benchmark measures wall time: the clock is read here and nowhere in the library.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut repeat = 3usize;
    let mut gap = 1e-4f64;
    let mut backends: Vec<Backend> = Backend::ALL
        .iter()
        .copied()
        .filter(|b| *b != Backend::Microlp)
        .collect();
    let mut files = Vec::new();
    let mut relax = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--repeat" => repeat = it.next().and_then(|x| x.parse().ok()).expect("--repeat N"),
            "--relax" => relax = true,
            "--gap" => gap = it.next().and_then(|x| x.parse().ok()).expect("--gap X"),
            "--backends" => {
                backends = it
                    .next()
                    .expect("--backends LIST")
                    .split(',')
                    .map(|b| {
                        Backend::parse(b).unwrap_or_else(|| {
                            panic!("backend {b}: this build has {}", Backend::names())
                        })
                    })
                    .collect()
            }
            f => files.push(f.to_owned()),
        }
    }
    if files.is_empty() {
        files.push(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../examples/frontier-lab.yaml"
            )
            .to_owned(),
        );
    }
    println!(
        "{:<24} {:<8} {:>9} {:>9} {:>9} {:>22} {:>22} {:<10}",
        "file",
        "backend",
        "min s",
        "median s",
        "max s",
        "solver objective $",
        "evaluated cost $",
        "rounding"
    );
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        let input = parse_plan_yaml(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        let name = std::path::Path::new(f)
            .file_name()
            .map_or(f.clone(), |n| n.to_string_lossy().into_owned());
        for &backend in &backends {
            let cfg = PlannerConfig {
                backend,
                method: Method::Extensive,
                gap,
                relax_integers: relax,
                price_policies: false,
                baselines: false,
                ..PlannerConfig::default()
            };
            let mut secs = Vec::new();
            let mut last = None;
            for _ in 0..repeat.max(1) {
                let t0 = now();
                let o = optimise(&input, &cfg).expect("solver").expect("feasible");
                secs.push(t0.elapsed().as_secs_f64());
                last = Some(o);
            }
            secs.sort_by(f64::total_cmp);
            let o = last.expect("one run");
            let ev = evaluate(&input, &o.commitments);
            println!(
                "{name:<24} {:<8} {:>9.2} {:>9.2} {:>9.2} {:>22.2} {:>22.2} {:<10} {}",
                backend.to_string(),
                secs[0],
                secs[secs.len() / 2],
                secs[secs.len() - 1],
                o.objective_usd,
                ev.expected_cost_usd,
                o.rounding.describe(),
                if ev.violations.is_empty() {
                    "every policy holds".to_owned()
                } else {
                    format!("{} violations", ev.violations.len())
                }
            );
        }
    }
}
