//! Forecast accuracy on a real shared trace: the Alibaba GPU pod list (`../shared/data/alibaba-gpu-v2023`),
//! GPUs in use per day, fit on the first 99 days, forecast the next 50. The forecast must beat seasonal
//! naive on pinball loss (the figure is in BENCHMARKS.md, planner: forecast accuracy).

use hedge_planner::forecast::{backtest, in_use, ForecastConfig};

#[test]
fn forecast_beats_seasonal_naive_on_the_alibaba_pod_trace() {
    let path =
        crate::repo_root().join("../shared/data/alibaba-gpu-v2023/csv/openb_pod_list_default.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: this test needs the shared data (../shared/data, see its README)",
            path.display()
        )
    });
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    let (cn, cm, cc, cs, cd) = (
        col("num_gpu"),
        col("gpu_milli"),
        col("creation_time"),
        col("scheduled_time"),
        col("deletion_time"),
    );
    let mut intervals = Vec::new();
    let mut end: f64 = 0.0;
    for l in lines {
        let r: Vec<&str> = l.split(',').collect();
        let f = |c: usize| r.get(c).and_then(|x| x.parse::<f64>().ok());
        let (Some(n), Some(m), Some(d)) = (f(cn), f(cm), f(cd)) else {
            continue;
        };
        let s = f(cs).filter(|s| *s > 0.0).or(f(cc)).unwrap_or(0.0);
        end = end.max(d);
        intervals.push((s, d, n * m / 1000.0));
    }
    let daily = in_use(&intervals, 86_400.0, end);
    let daily = &daily[..daily.len() - 1];
    assert_eq!(daily.len(), 149);
    let (train, test) = daily.split_at(99);
    let cfg = ForecastConfig {
        horizon: test.len(),
        season: 7,
        growth: None,
        paths: 300,
        block: 7,
        scenarios: 10,
        seed: 1,
    };
    let acc = backtest(train, test, &cfg, &[0.1, 0.5, 0.9]);
    assert!(acc.pinball_forecast < acc.pinball_seasonal_naive, "{acc:?}");
    assert!(
        (acc.pinball_forecast / acc.pinball_seasonal_naive - 0.760).abs() < 0.01,
        "BENCHMARKS.md says 0.76: {acc:?}"
    );
}
