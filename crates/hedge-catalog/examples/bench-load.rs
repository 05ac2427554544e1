//! Times `hedge_catalog::load` on each path given, in one process, and prints one line per path:
//!
//!     bench-load [--runs N] PATH...
//!     <path> offers=<n> min_ms=<x> median_ms=<y> runs=<N>
//!
//! Benchmarks may read the clock (clippy.toml bans it elsewhere).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 7usize;
    if args.first().map(String::as_str) == Some("--runs") && args.len() >= 2 {
        runs = args[1].parse().unwrap_or(7).max(1);
        args.drain(..2);
    }
    if args.is_empty() {
        eprintln!("usage: bench-load [--runs N] PATH...");
        return ExitCode::from(2);
    }
    for p in &args {
        let mut times = Vec::with_capacity(runs);
        let mut offers = 0;
        for _ in 0..runs {
            #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
            let t0 = Instant::now();
            let loaded = match hedge_catalog::load(Path::new(p)) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
            offers = loaded.catalog.len();
            std::hint::black_box(&loaded);
        }
        times.sort_by(f64::total_cmp);
        println!("{p} offers={offers} min_ms={:.1} median_ms={:.1} runs={runs}", times[0], times[times.len() / 2]);
    }
    ExitCode::SUCCESS
}
