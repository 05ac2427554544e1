//! Forecast accuracy on the real GPU traces in `../shared/data` (run by `bench/planner/run.sh forecast`):
//! fit `hedge_planner::forecast` on the first part of a GPUs-in-use series, forecast the rest, and compare
//! with a seasonal-naive forecast (the last observed season repeated) on pinball loss at τ = 0.1, 0.5, 0.9
//! and on the coverage of the realised path by the scenario band (min..max of the scenarios).
//!
//! Series: `alibaba-gpu-v2023` (8,152 pods over 149 days: GPUs in use per day, num_gpu × gpu_milli/1000,
//! weekly season) and `alibaba-gpu-v2025-dlrm` (23,871 inference instances over 31 days: requested GPUs in
//! use per hour, daily season).
//!
//! Usage: `cargo bench -p hedge-planner --bench forecast -- [--data ../shared/data] [--scenarios 10]`

use hedge_planner::forecast::{backtest, in_use, ForecastConfig};

fn read_csv(path: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run from the repo root; data in ../shared/data)"));
    let mut lines = text.lines();
    let head: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    (
        head,
        lines
            .map(|l| l.split(',').map(|s| s.trim().to_owned()).collect())
            .collect(),
    )
}

fn col(head: &[String], name: &str) -> usize {
    head.iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

const TAUS: [f64; 3] = [0.1, 0.5, 0.9];

fn evaluate(name: &str, series: &[f64], fit_len: usize, season: usize, k: usize) {
    let (train, test) = series.split_at(fit_len);
    let cfg = ForecastConfig {
        horizon: test.len(),
        season,
        growth: None,
        paths: 300,
        block: season.max(2),
        scenarios: k,
        seed: 1,
    };
    let acc = backtest(train, test, &cfg, &TAUS);
    let mean_level = test.iter().sum::<f64>() / test.len() as f64;
    println!(
        "{name:<34} {:>5} {:>5} {:>6} {:>9.2} {:>11.2} {:>11.2} {:>7.3} {:>8.1}%",
        fit_len,
        test.len(),
        season,
        mean_level,
        acc.pinball_forecast,
        acc.pinball_seasonal_naive,
        acc.pinball_forecast / acc.pinball_seasonal_naive,
        100.0 * acc.band_coverage
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
    let data = get("--data")
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data").into());
    let k: usize = get("--scenarios").map_or(10, |x| x.parse().expect("a number"));
    println!("forecast (trend + season, block bootstrap, fast forward selection to {k} scenarios) vs seasonal naive");
    println!("pinball = mean over steps and τ ∈ {{0.1, 0.5, 0.9}} (GPUs); ratio < 1: the forecast wins; band = share of the realised path inside min..max of the scenarios");
    println!(
        "{:<34} {:>5} {:>5} {:>6} {:>9} {:>11} {:>11} {:>7} {:>9}",
        "series",
        "fit",
        "ahead",
        "season",
        "mean GPUs",
        "pinball fc",
        "pinball sn",
        "ratio",
        "band cov"
    );

    let (head, rows) = read_csv(&format!(
        "{data}/alibaba-gpu-v2023/csv/openb_pod_list_default.csv"
    ));
    let (cn, cm, cc, cs, cd) = (
        col(&head, "num_gpu"),
        col(&head, "gpu_milli"),
        col(&head, "creation_time"),
        col(&head, "scheduled_time"),
        col(&head, "deletion_time"),
    );
    let f = |r: &Vec<String>, c: usize| r.get(c).and_then(|x| x.parse::<f64>().ok());
    let mut iv = Vec::new();
    let mut end: f64 = 0.0;
    for r in &rows {
        let (Some(n), Some(m), Some(d)) = (f(r, cn), f(r, cm), f(r, cd)) else {
            continue;
        };
        let s = f(r, cs).filter(|s| *s > 0.0).or(f(r, cc)).unwrap_or(0.0);
        end = end.max(d);
        iv.push((s, d, n * m / 1000.0));
    }
    let daily = in_use(&iv, 86_400.0, end);
    let daily = &daily[..daily.len() - 1]; // the last, partial day
    let fit = daily.len() * 2 / 3;
    evaluate("alibaba-gpu-v2023 daily GPUs", daily, fit, 7, k);

    let (head, rows) = read_csv(&format!(
        "{data}/alibaba-gpu-v2025-dlrm/disaggregated_DLRM_trace.csv"
    ));
    let (cg, cc, cd) = (
        col(&head, "gpu_request"),
        col(&head, "creation_time"),
        col(&head, "deletion_time"),
    );
    let mut iv = Vec::new();
    let mut end: f64 = 0.0;
    for r in &rows {
        let (Some(g), Some(s)) = (f(r, cg), f(r, cc)) else {
            continue;
        };
        let d = f(r, cd).unwrap_or(f64::INFINITY);
        end = end.max(s).max(if d.is_finite() { d } else { 0.0 });
        iv.push((s, d, g));
    }
    let hourly = in_use(&iv, 3_600.0, end);
    let hourly = &hourly[..hourly.len() - 1];
    let fit = hourly.len() * 2 / 3;
    evaluate("alibaba-gpu-v2025-dlrm hourly GPUs", hourly, fit, 24, k);
}
