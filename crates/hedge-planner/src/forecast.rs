//! Demand scenarios from usage history (issue 11, item 1; the library half: the CLI and the accuracy
//! benchmark are not built yet). Pure and seeded.
//!
//! # Method
//! 1. **Fit** per accelerator, by classical decomposition: an ordinary-least-squares line through the
//!    history, the seasonal profile (season length `m`, e.g. 12 months) as the mean detrended value per
//!    position in the season, centred to sum to zero, then the line refitted on the deseasonalised history.
//!    Residuals are what is left.
//! 2. **Trend ahead**: the fitted line, or, when the user states a growth rate `g` per period, the fitted
//!    trend at the last observation compounded: `trend(T + h) = trend(T) · (1 + g)^h`.
//! 3. **Paths**: the point forecast plus residuals resampled by a moving-block bootstrap (blocks of `block`
//!    consecutive residuals, started at uniform positions; the same block positions for every accelerator
//!    so that their co-movement is kept), clipped at zero.
//! 4. **Reduction** to `k` scenarios with probabilities by **fast forward selection** (Heitsch & Römisch,
//!    2003): greedily add the path that most lowers the probability-weighted L1 distance of every path to
//!    its nearest selected one; each dropped path's probability then goes to its nearest selected path.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A fitted trend and seasonal profile of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// Trend at `t = 0`.
    pub level: f64,
    /// Trend change per period.
    pub slope: f64,
    /// `seasonal[t % m]`, summing to zero (empty: no seasonality).
    pub seasonal: Vec<f64>,
    pub residuals: Vec<f64>,
}

/// Rounds of backfitting in [`Fit::of`].
const BACKFIT_ROUNDS: usize = 200;

fn ols(y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    if y.len() < 2 {
        return (y.first().copied().unwrap_or(0.0), 0.0);
    }
    let tbar = (n - 1.0) / 2.0;
    let ybar = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (t, v) in y.iter().enumerate() {
        let dt = t as f64 - tbar;
        sxy += dt * (v - ybar);
        sxx += dt * dt;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (ybar - slope * tbar, slope)
}

impl Fit {
    /// Fits `history` with season length `season` (0 or 1: none; also none when the history is shorter
    /// than two seasons).
    pub fn of(history: &[f64], season: usize) -> Fit {
        let m = if season >= 2 && history.len() >= 2 * season {
            season
        } else {
            0
        };
        let (mut level, mut slope) = ols(history);
        let mut seasonal = vec![0.0; m];
        // Backfitting: season from the detrended series, trend from the deseasonalised one, until they
        // settle (the joint least-squares fit; one pass is biased when the season correlates with time).
        for _ in 0..if m > 0 { BACKFIT_ROUNDS } else { 0 } {
            let mut sum = vec![0.0; m];
            let mut count = vec![0usize; m];
            for (t, y) in history.iter().enumerate() {
                sum[t % m] += y - (level + slope * t as f64);
                count[t % m] += 1;
            }
            for i in 0..m {
                seasonal[i] = sum[i] / count[i] as f64;
            }
            let mean = seasonal.iter().sum::<f64>() / m as f64;
            seasonal.iter_mut().for_each(|s| *s -= mean);
            let des: Vec<f64> = history
                .iter()
                .enumerate()
                .map(|(t, y)| y - seasonal[t % m])
                .collect();
            (level, slope) = ols(&des);
        }
        let season_at = |t: usize| if m > 0 { seasonal[t % m] } else { 0.0 };
        let residuals = history
            .iter()
            .enumerate()
            .map(|(t, y)| y - season_at(t) - (level + slope * t as f64))
            .collect();
        Fit {
            level,
            slope,
            seasonal,
            residuals,
        }
    }

    /// The point forecast `h` periods after the last of `n` observed ones (h = 1 is the next period).
    pub fn point(&self, n: usize, h: usize, growth: Option<f64>) -> f64 {
        let t = n - 1 + h;
        let trend = match growth {
            Some(g) => (self.level + self.slope * (n - 1) as f64) * (1.0 + g).powi(h as i32),
            None => self.level + self.slope * t as f64,
        };
        let s = if self.seasonal.is_empty() {
            0.0
        } else {
            self.seasonal[t % self.seasonal.len()]
        };
        trend + s
    }
}

/// How to forecast.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ForecastConfig {
    /// Periods ahead.
    pub horizon: usize,
    /// Season length in periods (12 for monthly data with a yearly cycle; 0 = none).
    pub season: usize,
    /// Growth per period stated by the user (0.02 = 2% a month); `None` = the fitted line.
    pub growth: Option<f64>,
    /// Bootstrap paths sampled before reduction.
    pub paths: usize,
    /// Block length of the residual bootstrap.
    pub block: usize,
    /// Scenarios kept by fast forward selection.
    pub scenarios: usize,
    pub seed: u64,
}

/// One reduced scenario: its probability and `[a][h]` GPUs.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastScenario {
    pub probability: f64,
    pub gpus: Vec<Vec<f64>>,
}

/// Bootstrap paths `[path][a][h]` from the histories `[a][t]` (all of the same length).
pub fn sample_paths(history: &[Vec<f64>], cfg: &ForecastConfig) -> Vec<Vec<Vec<f64>>> {
    let fits: Vec<Fit> = history.iter().map(|h| Fit::of(h, cfg.season)).collect();
    let n = history.first().map_or(0, Vec::len);
    let block = cfg.block.clamp(1, n.max(1));
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut out = Vec::with_capacity(cfg.paths);
    for _ in 0..cfg.paths {
        // Residual indices shared by every accelerator.
        let mut idx = Vec::with_capacity(cfg.horizon);
        while idx.len() < cfg.horizon && n > 0 {
            let start = rng.gen_range(0..=n - block);
            idx.extend((start..start + block).take(cfg.horizon - idx.len()));
        }
        let path = fits
            .iter()
            .map(|f| {
                (0..cfg.horizon)
                    .map(|h| {
                        (f.point(n, h + 1, cfg.growth)
                            + idx.get(h).map_or(0.0, |&i| f.residuals[i]))
                        .max(0.0)
                    })
                    .collect()
            })
            .collect();
        out.push(path);
    }
    out
}

fn distance(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()).sum::<f64>())
        .sum()
}

/// Fast forward selection of `k` of the `points` (probabilities `probs`): the chosen indices, in order of
/// selection, with the probabilities they inherit.
pub fn fast_forward_selection(
    points: &[Vec<Vec<f64>>],
    probs: &[f64],
    k: usize,
) -> Vec<(usize, f64)> {
    let n = points.len();
    let k = k.min(n);
    let c: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| distance(&points[i], &points[j])).collect())
        .collect();
    let mut selected: Vec<usize> = Vec::new();
    let mut z: Vec<f64> = vec![f64::INFINITY; n];
    for _ in 0..k {
        let mut best: Option<(f64, usize)> = None;
        for u in (0..n).filter(|u| !selected.contains(u)) {
            let score: f64 = (0..n)
                .filter(|&i| i != u && !selected.contains(&i))
                .map(|i| probs[i] * z[i].min(c[i][u]))
                .sum();
            if best.is_none_or(|b| score < b.0) {
                best = Some((score, u));
            }
        }
        let Some((_, u)) = best else { break };
        selected.push(u);
        for i in 0..n {
            z[i] = z[i].min(c[i][u]);
        }
    }
    let mut out: Vec<(usize, f64)> = selected.iter().map(|&s| (s, 0.0)).collect();
    for i in 0..n {
        // The nearest selected point (the first one on ties) inherits i's probability.
        let j = (0..out.len())
            .min_by(|&x, &y| c[i][out[x].0].total_cmp(&c[i][out[y].0]))
            .unwrap_or(0);
        if let Some(o) = out.get_mut(j) {
            o.1 += probs[i];
        }
    }
    out
}

/// The whole method: fit, bootstrap `cfg.paths` paths, reduce to `cfg.scenarios` scenarios (sorted by
/// total demand, lowest first).
pub fn forecast(history: &[Vec<f64>], cfg: &ForecastConfig) -> Vec<ForecastScenario> {
    let paths = sample_paths(history, cfg);
    if paths.is_empty() {
        return Vec::new();
    }
    let p = vec![1.0 / paths.len() as f64; paths.len()];
    let mut out: Vec<ForecastScenario> = fast_forward_selection(&paths, &p, cfg.scenarios.max(1))
        .into_iter()
        .map(|(i, probability)| ForecastScenario {
            probability,
            gpus: paths[i].clone(),
        })
        .collect();
    out.sort_by(|a, b| {
        let s = |x: &ForecastScenario| x.gpus.iter().flatten().sum::<f64>();
        s(a).total_cmp(&s(b))
    });
    out
}

/// GPUs in use per bin of `bin` seconds over `[0, end)`, from intervals `(start, end, gpus)` (a job trace
/// aggregated into history; the time-weighted mean within each bin).
pub fn in_use(intervals: &[(f64, f64, f64)], bin: f64, end: f64) -> Vec<f64> {
    let n = (end / bin).ceil().max(0.0) as usize;
    let mut out = vec![0.0; n];
    for &(s, e, g) in intervals {
        let (s, e) = (s.max(0.0), e.min(end));
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

/// The pinball (quantile) loss of quantile forecast `q` at level `tau` for the outcome `y`.
pub fn pinball(y: f64, q: f64, tau: f64) -> f64 {
    if y >= q {
        tau * (y - q)
    } else {
        (1.0 - tau) * (q - y)
    }
}

/// The probability-weighted `tau`-quantile of accelerator `a`'s scenarios at step `h`.
pub fn scenario_quantile(sc: &[ForecastScenario], a: usize, h: usize, tau: f64) -> f64 {
    let mut v: Vec<(f64, f64)> = sc.iter().map(|s| (s.gpus[a][h], s.probability)).collect();
    v.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut acc = 0.0;
    for (x, p) in &v {
        acc += p;
        if acc >= tau - 1e-12 {
            return *x;
        }
    }
    v.last().map_or(0.0, |x| x.0)
}

/// Seasonal naive: the last observed season repeated for `horizon` steps.
pub fn seasonal_naive(history: &[f64], season: usize, horizon: usize) -> Vec<f64> {
    let m = season.clamp(1, history.len().max(1));
    (0..horizon)
        .map(|i| {
            history
                .get(history.len() - m + (i % m))
                .copied()
                .unwrap_or(0.0)
        })
        .collect()
}

/// Accuracy of a forecast against what happened: mean pinball loss over the steps and `taus` of the
/// scenarios and of seasonal naive, and the share of steps whose outcome lies in the scenario band.
#[derive(Clone, Debug, PartialEq)]
pub struct Accuracy {
    pub pinball_forecast: f64,
    pub pinball_seasonal_naive: f64,
    pub band_coverage: f64,
}

/// Fits on `train`, forecasts `test.len()` steps with `cfg` (its horizon is overridden) and scores.
pub fn backtest(train: &[f64], test: &[f64], cfg: &ForecastConfig, taus: &[f64]) -> Accuracy {
    let h = test.len();
    let sc = forecast(&[train.to_vec()], &ForecastConfig { horizon: h, ..*cfg });
    let naive = seasonal_naive(train, cfg.season, h);
    let (mut pf, mut pn, mut inside) = (0.0, 0.0, 0usize);
    for i in 0..h {
        for &tau in taus {
            pf += pinball(test[i], scenario_quantile(&sc, 0, i, tau), tau);
            pn += pinball(test[i], naive[i], tau);
        }
        let lo = sc
            .iter()
            .map(|s| s.gpus[0][i])
            .fold(f64::INFINITY, f64::min);
        let hi = sc
            .iter()
            .map(|s| s.gpus[0][i])
            .fold(f64::NEG_INFINITY, f64::max);
        if (lo..=hi).contains(&test[i]) {
            inside += 1;
        }
    }
    let norm = (h * taus.len()).max(1) as f64;
    Accuracy {
        pinball_forecast: pf / norm,
        pinball_seasonal_naive: pn / norm,
        band_coverage: inside as f64 / h.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_by_hand() {
        // Pinball: under-forecast by 10 at τ = 0.9 costs 9, over-forecast by 10 costs 1.
        assert!(
            (pinball(110.0, 100.0, 0.9) - 9.0).abs() < 1e-12
                && (pinball(90.0, 100.0, 0.9) - 1.0).abs() < 1e-12
        );
        assert_eq!(
            seasonal_naive(&[1.0, 2.0, 3.0, 4.0], 2, 5),
            vec![3.0, 4.0, 3.0, 4.0, 3.0]
        );
        // One job of 2 GPUs from 0.5 to 2.0 bins, one of 1 GPU over bin 1: 1.0, 3.0.
        assert_eq!(
            in_use(&[(50.0, 200.0, 2.0), (100.0, 200.0, 1.0)], 100.0, 200.0),
            vec![1.0, 3.0]
        );
        let sc = vec![
            ForecastScenario {
                probability: 0.3,
                gpus: vec![vec![10.0]],
            },
            ForecastScenario {
                probability: 0.7,
                gpus: vec![vec![20.0]],
            },
        ];
        assert_eq!(
            (
                scenario_quantile(&sc, 0, 0, 0.1),
                scenario_quantile(&sc, 0, 0, 0.5)
            ),
            (10.0, 20.0)
        );
    }

    #[test]
    fn fit_recovers_trend_and_season_exactly() {
        // 100 + 2t, plus +5/−5 on even/odd periods.
        let y: Vec<f64> = (0..24)
            .map(|t| 100.0 + 2.0 * t as f64 + if t % 2 == 0 { 5.0 } else { -5.0 })
            .collect();
        let f = Fit::of(&y, 2);
        assert!(
            (f.slope - 2.0).abs() < 1e-9 && (f.level - 100.0).abs() < 1e-9,
            "{f:?}"
        );
        assert!(
            (f.seasonal[0] - 5.0).abs() < 1e-9 && (f.seasonal[1] + 5.0).abs() < 1e-9,
            "{f:?}"
        );
        assert!(f.residuals.iter().all(|r| r.abs() < 1e-9));
        // Period 24 (h = 1) is even: 100 + 48 + 5.
        assert!((f.point(24, 1, None) - 153.0).abs() < 1e-9);
        // A stated growth of 10%: the trend at t = 23 (146) compounded, plus the season of t = 25 (odd).
        assert!((f.point(24, 2, Some(0.1)) - (146.0 * 1.21 - 5.0)).abs() < 1e-9);
    }

    #[test]
    fn bootstrap_is_seeded_and_noise_free_history_gives_the_point_forecast() {
        let y: Vec<f64> = (0..36).map(|t| 50.0 + t as f64).collect();
        let cfg = ForecastConfig {
            horizon: 6,
            season: 12,
            growth: None,
            paths: 20,
            block: 3,
            scenarios: 3,
            seed: 4,
        };
        let paths = sample_paths(std::slice::from_ref(&y), &cfg);
        assert!(paths.iter().all(|p| p[0]
            .iter()
            .enumerate()
            .all(|(h, v)| (v - (86.0 + h as f64)).abs() < 1e-9)));
        let noisy: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(t, v)| v + [3.0, -1.0, -2.0, 2.0, -2.0][t % 5])
            .collect();
        let a = sample_paths(std::slice::from_ref(&noisy), &cfg);
        assert_eq!(a, sample_paths(std::slice::from_ref(&noisy), &cfg));
        assert_ne!(
            a,
            sample_paths(&[noisy], &ForecastConfig { seed: 5, ..cfg })
        );
    }

    /// Four points on a line, 0, 1, 10 and 11, equally likely; keep two. By hand: the first pick minimises
    /// Σ p·distance: 5 for 1 and for 10, 5.5 for 0 and 11, so 1 (the first on the tie). Then 10 and 11 both
    /// leave 0.25·(1 + 1) = 0.5, so 10. The dropped 0 goes to 1 and 11 to 10: probabilities 1/2 and 1/2.
    #[test]
    fn fast_forward_selection_by_hand() {
        let pts: Vec<Vec<Vec<f64>>> = [0.0, 1.0, 10.0, 11.0]
            .iter()
            .map(|&x| vec![vec![x]])
            .collect();
        let sel = fast_forward_selection(&pts, &[0.25; 4], 2);
        assert_eq!(sel, vec![(1, 0.5), (2, 0.5)]);
        let all = fast_forward_selection(&pts, &[0.25; 4], 4);
        assert_eq!(all.iter().map(|x| x.1).sum::<f64>(), 1.0);
    }

    #[test]
    fn forecast_gives_k_scenarios_whose_probabilities_sum_to_one() {
        let y: Vec<f64> = (0..48)
            .map(|t| {
                200.0
                    + 3.0 * t as f64
                    + 20.0 * ((t % 12) as f64 / 12.0 * std::f64::consts::TAU).sin()
                    + [4.0, -7.0, 2.0, 1.0][t % 4]
            })
            .collect();
        let cfg = ForecastConfig {
            horizon: 12,
            season: 12,
            growth: Some(0.01),
            paths: 60,
            block: 4,
            scenarios: 5,
            seed: 1,
        };
        let s = forecast(&[y], &cfg);
        assert_eq!(s.len(), 5);
        assert!((s.iter().map(|x| x.probability).sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(s
            .windows(2)
            .all(|w| w[0].gpus[0].iter().sum::<f64>() <= w[1].gpus[0].iter().sum::<f64>()));
        assert!(s
            .iter()
            .all(|x| x.gpus[0].len() == 12 && x.gpus[0].iter().all(|v| *v >= 0.0)));
    }
}
