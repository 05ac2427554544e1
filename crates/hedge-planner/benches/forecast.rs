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

use hedge_planner::forecast::{forecast, ForecastConfig, ForecastScenario};

/// GPUs in use per bin of `bin` seconds from intervals `(start, end, gpus)`, over `[0, horizon)`.
fn binned(intervals: &[(f64, f64, f64)], bin: f64, horizon: f64) -> Vec<f64> {
    let n = (horizon / bin).ceil() as usize;
    let mut out = vec![0.0; n];
    for &(s, e, g) in intervals {
        let (s, e) = (s.max(0.0), e.min(horizon));
        if e <= s {
            continue;
        }
        let (b0, b1) = ((s / bin) as usize, ((e / bin).ceil() as usize).min(n));
        for (b, v) in out.iter_mut().enumerate().take(b1).skip(b0) {
            let lo = (b as f64 * bin).max(s);
            let hi = ((b + 1) as f64 * bin).min(e);
            *v += g * (hi - lo).max(0.0) / bin;
        }
    }
    out
}

fn read_csv(path: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e} (run from the repo root; data in ../shared/data)"));
    let mut lines = text.lines();
    let head: Vec<String> = lines.next().unwrap_or("").split(',').map(|s| s.trim().to_owned()).collect();
    (head, lines.map(|l| l.split(',').map(|s| s.trim().to_owned()).collect()).collect())
}

fn col(head: &[String], name: &str) -> usize {
    head.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"))
}

fn pinball(y: f64, q: f64, tau: f64) -> f64 {
    if y >= q { tau * (y - q) } else { (1.0 - tau) * (q - y) }
}

/// The probability-weighted τ-quantile of the scenarios at step h.
fn quantile(sc: &[ForecastScenario], h: usize, tau: f64) -> f64 {
    let mut v: Vec<(f64, f64)> = sc.iter().map(|s| (s.gpus[0][h], s.probability)).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut acc = 0.0;
    for (x, p) in &v {
        acc += p;
        if acc >= tau - 1e-12 {
            return *x;
        }
    }
    v.last().map_or(0.0, |x| x.0)
}

const TAUS: [f64; 3] = [0.1, 0.5, 0.9];

fn evaluate(name: &str, series: &[f64], fit_len: usize, season: usize, k: usize) {
    let (train, test) = series.split_at(fit_len);
    let h = test.len();
    let cfg = ForecastConfig { horizon: h, season, growth: None, paths: 300, block: season.max(2), scenarios: k, seed: 1 };
    let sc = forecast(&[train.to_vec()], &cfg);
    let naive: Vec<f64> = (0..h).map(|i| train[train.len() - season + (i % season)]).collect();
    let (mut pb_f, mut pb_n) = (0.0, 0.0);
    let mut covered = 0;
    for i in 0..h {
        for tau in TAUS {
            pb_f += pinball(test[i], quantile(&sc, i, tau), tau);
            pb_n += pinball(test[i], naive[i], tau);
        }
        let lo = sc.iter().map(|s| s.gpus[0][i]).fold(f64::INFINITY, f64::min);
        let hi = sc.iter().map(|s| s.gpus[0][i]).fold(f64::NEG_INFINITY, f64::max);
        if (lo..=hi).contains(&test[i]) {
            covered += 1;
        }
    }
    let norm = (h * TAUS.len()) as f64;
    let mean_level = test.iter().sum::<f64>() / h as f64;
    println!(
        "{name:<34} {:>5} {:>5} {:>6} {:>9.2} {:>11.2} {:>11.2} {:>7.3} {:>8.1}%",
        fit_len,
        h,
        season,
        mean_level,
        pb_f / norm,
        pb_n / norm,
        pb_f / pb_n,
        100.0 * covered as f64 / h as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let data = get("--data").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data").into());
    let k: usize = get("--scenarios").map_or(10, |x| x.parse().expect("a number"));
    println!("forecast (trend + season, block bootstrap, fast forward selection to {k} scenarios) vs seasonal naive");
    println!("pinball = mean over steps and τ ∈ {{0.1, 0.5, 0.9}} (GPUs); ratio < 1: the forecast wins; band = share of the realised path inside min..max of the scenarios");
    println!("{:<34} {:>5} {:>5} {:>6} {:>9} {:>11} {:>11} {:>7} {:>9}", "series", "fit", "ahead", "season", "mean GPUs", "pinball fc", "pinball sn", "ratio", "band cov");

    let (head, rows) = read_csv(&format!("{data}/alibaba-gpu-v2023/csv/openb_pod_list_default.csv"));
    let (cn, cm, cc, cs, cd) = (col(&head, "num_gpu"), col(&head, "gpu_milli"), col(&head, "creation_time"), col(&head, "scheduled_time"), col(&head, "deletion_time"));
    let f = |r: &Vec<String>, c: usize| r.get(c).and_then(|x| x.parse::<f64>().ok());
    let mut iv = Vec::new();
    let mut end: f64 = 0.0;
    for r in &rows {
        let (Some(n), Some(m), Some(d)) = (f(r, cn), f(r, cm), f(r, cd)) else { continue };
        let s = f(r, cs).filter(|s| *s > 0.0).or(f(r, cc)).unwrap_or(0.0);
        end = end.max(d);
        iv.push((s, d, n * m / 1000.0));
    }
    let daily = binned(&iv, 86_400.0, end);
    let daily = &daily[..daily.len() - 1]; // the last, partial day
    let fit = daily.len() * 2 / 3;
    evaluate("alibaba-gpu-v2023 daily GPUs", daily, fit, 7, k);

    let (head, rows) = read_csv(&format!("{data}/alibaba-gpu-v2025-dlrm/disaggregated_DLRM_trace.csv"));
    let (cg, cc, cd) = (col(&head, "gpu_request"), col(&head, "creation_time"), col(&head, "deletion_time"));
    let mut iv = Vec::new();
    let mut end: f64 = 0.0;
    for r in &rows {
        let (Some(g), Some(s)) = (f(r, cg), f(r, cc)) else { continue };
        let d = f(r, cd).unwrap_or(f64::INFINITY);
        end = end.max(s).max(if d.is_finite() { d } else { 0.0 });
        iv.push((s, d, g));
    }
    let hourly = binned(&iv, 3_600.0, end);
    let hourly = &hourly[..hourly.len() - 1];
    let fit = hourly.len() * 2 / 3;
    evaluate("alibaba-gpu-v2025-dlrm hourly GPUs", hourly, fit, 24, k);
}
