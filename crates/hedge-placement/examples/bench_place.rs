//! Times `hedge_placement::place` in-process on task YAML files, on a real catalog and on a synthetic
//! catalog scaled up from it. Prints one JSON document; `bench/placement/run.sh` reads it.
//!
//! usage: cargo run --release -p hedge-placement --example bench_place -- CATALOG TASK.yaml... [--synthetic N]

#![allow(clippy::disallowed_methods)] // a benchmark reads the clock (Instant::now) by design

use hedge_core::{Catalog, Location, Money, Offer, Rate, RegionId, TaskSpec, ZoneId};
use hedge_placement::{place, PlacementContext, PlacementSettings};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut synthetic = 200_000usize;
    if let Some(i) = args.iter().position(|a| a == "--synthetic") {
        synthetic = args
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .expect("--synthetic N");
        args.drain(i..i + 2);
    }
    let (catalog_path, task_paths) = args
        .split_first()
        .expect("usage: bench_place CATALOG TASK.yaml...");
    let loaded = hedge_catalog::load(catalog_path.as_ref()).expect("catalog loads");
    let tasks: Vec<(String, TaskSpec, f64)> = task_paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("task file reads");
            let t0 = Instant::now();
            let n = 1000;
            for _ in 0..n {
                black_box(hedge_core::task_yaml::parse(black_box(&text)).ok());
            }
            let parse_ns = t0.elapsed().as_nanos() as f64 / n as f64;
            (
                p.clone(),
                hedge_core::task_yaml::parse(&text)
                    .expect("task parses")
                    .task,
                parse_ns,
            )
        })
        .collect();
    let settings = PlacementSettings::default();
    let real = run(
        &loaded.catalog,
        &tasks,
        &settings,
        Duration::from_millis(200),
    );
    let big = scale(&loaded.catalog, synthetic);
    let syn = run(&big, &tasks, &settings, Duration::from_millis(200));
    let doc = serde_json::json!({
        "catalog": catalog_path,
        "real": { "offers": loaded.catalog.len(), "tasks": real },
        "synthetic": { "offers": big.len(), "label": "SYNTHETIC: the real catalog replicated into fake regions with perturbed prices", "tasks": syn },
    });
    println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
}

/// Per task: mean nanoseconds per `place` call (looped for at least `budget`), and the chosen cost.
fn run(
    catalog: &Catalog,
    tasks: &[(String, TaskSpec, f64)],
    settings: &PlacementSettings,
    budget: Duration,
) -> Vec<serde_json::Value> {
    let ctx = PlacementContext::new(catalog);
    tasks
        .iter()
        .map(|(path, task, parse_ns)| {
            let p = place(task, &ctx, settings);
            let mut n = 0u64;
            let cpu0 = thread_cpu_ns();
            let t0 = Instant::now();
            while t0.elapsed() < budget || n < 10 {
                for _ in 0..10 {
                    black_box(place(black_box(task), &ctx, settings));
                }
                n += 10;
            }
            let ns = t0.elapsed().as_nanos() as f64 / n as f64;
            let cpu_ns = match (cpu0, thread_cpu_ns()) {
                (Some(a), Some(b)) => Some((b - a) as f64 / n as f64),
                _ => None,
            };
            serde_json::json!({
                "task": path,
                "ns_per_place": ns,
                "cpu_ns_per_place": cpu_ns,
                "ns_per_parse": parse_ns,
                "iterations": n,
                "hourly_cost_usd": p.chosen.as_ref().map(|c| c.hourly_cost.to_usd_per_hour_f64()),
            })
        })
        .collect()
}

/// CPU time of this thread in nanoseconds (Linux `/proc/thread-self/schedstat`), so that figures taken on
/// a busy machine are not inflated by time spent waiting for a core.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// A synthetic catalog of `target` offers: copy 0 is the real catalog; copy j renames every region and zone
/// with a `-synJ` suffix and raises prices by 0.2%·(j mod 97), so the real offers stay the cheapest.
fn scale(real: &Catalog, target: usize) -> Catalog {
    let base = real.offers();
    if base.is_empty() {
        return real.clone();
    }
    let mut offers: Vec<Offer> = Vec::with_capacity(target.max(base.len()));
    let mut j = 0u64;
    while offers.len() < target {
        for o in base {
            if offers.len() >= target {
                break;
            }
            let mut o = o.clone();
            if j > 0 {
                let sfx = format!("-syn{j}");
                o.location = match &o.location {
                    Location::Region { region } => Location::Region {
                        region: RegionId::new(format!("{region}{sfx}")),
                    },
                    Location::Zone { region, zone } => Location::Zone {
                        region: RegionId::new(format!("{region}{sfx}")),
                        zone: ZoneId::new(format!("{zone}{sfx}")),
                    },
                };
                let bump = |r: Rate| {
                    Rate::per_hour(Money::from_micros(
                        r.hourly().micros() * (1000 + 2 * (j % 97) as i64 + 1) / 1000,
                    ))
                };
                o.prices.on_demand = o.prices.on_demand.map(bump);
                o.prices.spot = o.prices.spot.map(bump);
            }
            offers.push(o);
        }
        j += 1;
    }
    let (_, providers, capacities) = real.clone().into_parts();
    Catalog::new(offers, providers, capacities)
}
