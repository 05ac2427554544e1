//! The deadline spot policies on the real traces, against the figures of the Can't Be Late authors' own
//! uniform progress (their simulator's `rc_cr_threshold` strategy) on the same traces, job (48 h, 12 min
//! restart), prices and 40 start points; see docs/sim-studies.md for how those were measured.

use hedge_core::{Money, Rate};
use hedge_sim::deadline::{run, DeadlineJob, SpotPolicy, SpotPrices};
use hedge_sim::spot::SpotTrace;
use std::path::{Path, PathBuf};

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("missing test data {}: {e}", dir.display()))
    {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn usd(x: f64) -> Rate {
    Rate::from_usd_per_hour_f64(x).unwrap()
}

/// (trace, prices) for the 20 AWS traces: per-tick V100 spot prices where the artifact has them, else the
/// p3.2xlarge ratio, as `bench/sim/cant-be-late.sh` runs them.
fn aws() -> Vec<(SpotTrace, SpotPrices)> {
    let d = crate::data();
    let mut files = Vec::new();
    json_files(&d.join("spot-traces/availability"), &mut files);
    files.sort();
    let prices: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(d.join("h100-spot/v100_spot_prices.json")).unwrap(),
    )
    .unwrap();
    files
        .iter()
        .map(|f| {
            let t = SpotTrace::load(f).unwrap();
            let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
            let spot = match prices
                .get(&stem)
                .and_then(|v| v.as_array())
                .filter(|a| a.len() == t.available.len())
            {
                Some(a) => a.iter().map(|x| usd(x.as_f64().unwrap())).collect(),
                None => vec![usd(0.918)],
            };
            let od = t.on_demand.unwrap_or(usd(3.06));
            (
                t,
                SpotPrices {
                    on_demand: od,
                    spot,
                },
            )
        })
        .collect()
}

/// The 13 GCP H100 zone traces, a3-highgpu-8g us-central1 prices.
fn gcp_h100() -> Vec<(SpotTrace, SpotPrices)> {
    let dir = crate::data().join("h100-spot/conv/converted_multi_region_aligned_h100_16_merged");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("full.json"))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            (
                SpotTrace::load(f).unwrap(),
                SpotPrices {
                    on_demand: usd(82.52543396),
                    spot: vec![usd(18.979008)],
                },
            )
        })
        .collect()
}

struct Summary {
    /// Mean over traces of 1 - mean cost / on-demand mean cost, per policy (on-demand, greedy, UP,
    /// availability-aware).
    savings: [f64; 4],
    /// Traces where UP, and availability-aware, cost no more than greedy.
    no_dearer_than_greedy: [usize; 2],
    misses: u64,
}

fn summarize(traces: &[(SpotTrace, SpotPrices)], deadline_h: u64) -> Summary {
    let job = DeadlineJob {
        work_s: 48 * 3600,
        deadline_s: deadline_h * 3600,
        restart_overhead_s: 720,
    };
    let pols = [
        SpotPolicy::OnDemand,
        SpotPolicy::Greedy,
        SpotPolicy::UniformProgress,
        SpotPolicy::AvailabilityAware,
    ];
    let (mut savings, mut count, mut misses) = ([0.0; 4], [0; 2], 0);
    for (t, prices) in traces {
        // The start points of `deadline::study`.
        let room = t
            .available
            .len()
            .saturating_sub((job.deadline_s / t.gap_s as u64) as usize + 1)
            .max(1);
        let n = 40.min(room);
        let mut totals = [0i128; 4];
        for s in 0..n {
            for (i, p) in pols.iter().enumerate() {
                let o = run(*p, t, s * room / n, &job, prices);
                totals[i] += o.cost.micros() as i128;
                misses += u64::from(!o.met_deadline);
            }
        }
        let mean: Vec<Money> = totals
            .iter()
            .map(|x| Money::from_micros((x / n as i128) as i64))
            .collect();
        for i in 0..4 {
            savings[i] +=
                (1.0 - mean[i].micros() as f64 / mean[0].micros() as f64) / traces.len() as f64;
        }
        count[0] += usize::from(mean[2] <= mean[1]);
        count[1] += usize::from(mean[3] <= mean[1]);
    }
    Summary {
        savings,
        no_dearer_than_greedy: count,
        misses,
    }
}

/// Hedge's spot policy (availability-aware) meets the targets; Hedge's UP is printed beside it.
fn check(
    name: &str,
    traces: &[(SpotTrace, SpotPrices)],
    deadline_h: u64,
    authors_saving: f64,
    min_no_dearer: usize,
) {
    let s = summarize(traces, deadline_h);
    let n = traces.len();
    eprintln!(
        "{name} {deadline_h} h: greedy {:.4}, UP {:.4} ({}/{n} no dearer than greedy), availability-aware {:.4} ({}/{n})",
        s.savings[1], s.savings[2], s.no_dearer_than_greedy[0], s.savings[3], s.no_dearer_than_greedy[1]
    );
    assert_eq!(s.misses, 0, "{name} {deadline_h} h: deadline misses");
    assert!(
        s.savings[3] >= authors_saving,
        "{name} {deadline_h} h: availability-aware saves {:.2}%, the authors' UP {:.1}%",
        100.0 * s.savings[3],
        100.0 * authors_saving
    );
    assert!(s.no_dearer_than_greedy[1] >= min_no_dearer, "{name} {deadline_h} h: availability-aware no dearer than greedy on {} traces, want {min_no_dearer}", s.no_dearer_than_greedy[1]);
}

#[test]
fn spot_policy_saves_at_least_the_authors_up_on_the_aws_traces() {
    let t = aws();
    assert_eq!(t.len(), 20, "the 20 AWS availability traces");
    check("AWS", &t, 52, 0.250, 19);
    check("AWS", &t, 70, 0.388, 18);
}

#[test]
fn spot_policy_saves_at_least_the_authors_up_on_the_gcp_h100_traces() {
    let t = gcp_h100();
    assert_eq!(t.len(), 13, "the 13 GCP H100 zone traces");
    check("GCP H100", &t, 52, 0.495, 0);
    check("GCP H100", &t, 70, 0.591, 0);
}
