//! Times `hedge_catalog::load` on each path given, in one process, and prints one line per path:
//!
//!     bench-load [--runs N] PATH...
//!     <path> offers=<n> min_ms=<x> median_ms=<y> cpu_ms=<z> runs=<N>
//!
//! `cpu_ms` is the median CPU time (user + system) of one load, read from `/proc/self/stat`: on a shared,
//! overloaded machine wall time mostly measures waiting for a core, CPU time does not.
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
        let mut cpu = Vec::with_capacity(runs);
        let mut offers = 0;
        for _ in 0..runs {
            let c0 = cpu_ms();
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
            cpu.push(cpu_ms() - c0);
            offers = loaded.catalog.len();
            std::hint::black_box(&loaded);
        }
        times.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        println!(
            "{p} offers={offers} min_ms={:.1} median_ms={:.1} cpu_ms={:.0} runs={runs}",
            times[0],
            times[times.len() / 2],
            cpu[cpu.len() / 2]
        );
    }
    ExitCode::SUCCESS
}

/// User + system CPU time of this process so far, in ms (Linux `/proc/self/stat`, 100 ticks per second);
/// 0 where unavailable.
fn cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) * 10.0
}
