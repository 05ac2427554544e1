//! One deadline job on a spot trace: the setting of "Can't Be Late" (Wu et al., NSDI'24).
//!
//! ## Model (shared by every policy, so their costs compare exactly)
//! Time is the trace's ticks (`gap_seconds` each). The job needs `W = ⌈work / gap⌉` ticks of progress and
//! must finish within `T = ⌊deadline / gap⌋` ticks of its start. Each tick it runs on spot (only if the trace
//! has an instance available at that tick), on on-demand, or not at all, paying that tick's price of what
//! it runs on. Every (re)start — after idling, a preemption or a switch between spot and on-demand —
//! spends `k = ⌈restart_overhead / gap⌉` paid ticks without progress (the paper's changeover delay);
//! progress itself survives preemptions (the job checkpoints, as in the paper). A job not done at `T`
//! finishes on on-demand and counts as a miss.
//!
//! ## Policies
//! - `on-demand`: on-demand from the start.
//! - `greedy`: spot whenever available, idle otherwise, and on-demand for good once waiting any longer
//!   could miss the deadline.
//! - `uniform-progress` (UP): spot whenever available; when spot is gone, on-demand only while progress is
//!   behind the uniform line `W · t / (T - k)` (once on on-demand, until `k` ticks ahead of it: the
//!   hysteresis that keeps UP from paying a changeover per tick), idle when ahead; the same deadline
//!   safety net as greedy.
//! - `omniscient`: the cheapest schedule knowing the whole future of the trace — an exact dynamic program
//!   over (tick, progress, mode, warm-up ticks done); the lower bound.
//!
//! The safety net: running (or waiting) one more tick is allowed only if, were spot lost right after, the
//! job could still switch to on-demand, pay `k` ticks of changeover and finish by `T`.

use crate::spot::SpotTrace;
use hedge_core::{Money, Rate};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpotPolicy {
    OnDemand,
    Greedy,
    UniformProgress,
    Omniscient,
}

impl SpotPolicy {
    pub const ALL: [SpotPolicy; 4] = [
        SpotPolicy::OnDemand,
        SpotPolicy::Greedy,
        SpotPolicy::UniformProgress,
        SpotPolicy::Omniscient,
    ];
}

impl fmt::Display for SpotPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpotPolicy::OnDemand => "on-demand",
            SpotPolicy::Greedy => "greedy",
            SpotPolicy::UniformProgress => "uniform-progress",
            SpotPolicy::Omniscient => "omniscient",
        })
    }
}

impl FromStr for SpotPolicy {
    type Err = crate::SimError;
    fn from_str(s: &str) -> Result<Self, crate::SimError> {
        match s.trim() {
            "on-demand" | "on-demand-only" => Ok(SpotPolicy::OnDemand),
            "greedy" => Ok(SpotPolicy::Greedy),
            "uniform-progress" | "up" => Ok(SpotPolicy::UniformProgress),
            "omniscient" | "optimal" => Ok(SpotPolicy::Omniscient),
            _ => Err(crate::SimError::UnknownPolicy {
                name: s.to_owned(),
                known: "on-demand, greedy, uniform-progress, omniscient",
            }),
        }
    }
}

/// The deadline job.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DeadlineJob {
    pub work_s: u64,
    pub deadline_s: u64,
    pub restart_overhead_s: u64,
}

/// Prices per instance-hour.
#[derive(Clone, Debug, PartialEq)]
pub struct SpotPrices {
    pub on_demand: Rate,
    /// Spot price per tick of the trace (cycled like the trace), or one flat price.
    pub spot: Vec<Rate>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub policy: SpotPolicy,
    pub cost: Money,
    pub met_deadline: bool,
    pub spot_ticks: u64,
    pub on_demand_ticks: u64,
    pub preemptions: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Idle,
    Spot,
    OnDemand,
}

struct Setup {
    avail: Vec<bool>,
    spot_cost: Vec<Money>,
    od_cost: Money,
    w: usize,
    t: usize,
    k: usize,
}

fn setup(trace: &SpotTrace, start_tick: usize, job: &DeadlineJob, prices: &SpotPrices) -> Setup {
    let g = trace.gap_s as u64;
    let w = job.work_s.div_ceil(g).max(1) as usize;
    let t = (job.deadline_s / g) as usize;
    let k = job.restart_overhead_s.div_ceil(g) as usize;
    // Enough ticks for a late finish on on-demand too.
    let n = t.max(w + k) + w + k + 1;
    let len = trace.available.len();
    let avail = (0..n)
        .map(|i| trace.available[(start_tick + i) % len] > 0)
        .collect();
    let spot_cost = (0..n)
        .map(|i| {
            let r = if prices.spot.len() == 1 {
                prices.spot[0]
            } else {
                prices.spot[(start_tick + i) % prices.spot.len()]
            };
            r.cost_for_seconds(g)
        })
        .collect();
    Setup {
        avail,
        spot_cost,
        od_cost: prices.on_demand.cost_for_seconds(g),
        w,
        t,
        k,
    }
}

/// Runs `policy` for a job starting at `start_tick` of the trace.
pub fn run(
    policy: SpotPolicy,
    trace: &SpotTrace,
    start_tick: usize,
    job: &DeadlineJob,
    prices: &SpotPrices,
) -> Outcome {
    let s = setup(trace, start_tick, job, prices);
    if policy == SpotPolicy::Omniscient {
        return omniscient(&s);
    }
    let (w_need, t_end, k) = (s.w as i64, s.t as i64, s.k as i64);
    let mut mode = Mode::Idle;
    let mut warm = 0i64; // ticks run in the current session (capped at k)
    let mut w = 0i64;
    let mut cost = Money::ZERO;
    let (mut spot_ticks, mut od_ticks, mut preemptions) = (0, 0, 0);
    let mut committed_od = policy == SpotPolicy::OnDemand;
    let mut i = 0usize;
    while w < w_need {
        let avail = s.avail.get(i).copied().unwrap_or(false);
        let left = t_end - i as i64;
        // Ticks needed to finish on on-demand if we switched (or stayed) now.
        let od_need = |m: Mode, warm: i64, w: i64| {
            (w_need - w)
                + if m == Mode::OnDemand {
                    (k - warm).max(0)
                } else {
                    k
                }
        };
        // Is it safe to spend this tick not on on-demand (on spot, or idle)?
        let progress_if_spot = if mode == Mode::Spot && warm >= k {
            1
        } else {
            0
        };
        let safe_spot = left > od_need(Mode::Idle, 0, w + progress_if_spot);
        let safe_idle = left > od_need(Mode::Idle, 0, w);
        if !committed_od && !(if avail { safe_spot } else { safe_idle }) {
            committed_od = true;
        }
        let choice = if committed_od {
            Mode::OnDemand
        } else if avail {
            Mode::Spot
        } else {
            match policy {
                SpotPolicy::UniformProgress => {
                    let line = w_need as f64 * (i as f64 + 1.0) / (t_end - k).max(1) as f64;
                    // Hysteresis: once on on-demand, stay until `k` ticks ahead of the line, so the
                    // policy does not pay a changeover for every tick it falls behind.
                    let band = if mode == Mode::OnDemand {
                        k as f64
                    } else {
                        0.0
                    };
                    if (w as f64) < line + band {
                        Mode::OnDemand
                    } else {
                        Mode::Idle
                    }
                }
                _ => Mode::Idle,
            }
        };
        if mode == Mode::Spot && choice != Mode::Spot && !avail {
            preemptions += 1;
        }
        if choice != mode {
            warm = 0;
        }
        match choice {
            Mode::Idle => {}
            Mode::Spot => {
                cost += s.spot_cost.get(i).copied().unwrap_or(s.od_cost);
                spot_ticks += 1;
            }
            Mode::OnDemand => {
                cost += s.od_cost;
                od_ticks += 1;
            }
        }
        if choice != Mode::Idle {
            if warm >= k {
                w += 1;
            }
            warm = (warm + 1).min(k);
        }
        mode = choice;
        i += 1;
    }
    Outcome {
        policy,
        cost,
        met_deadline: i as i64 <= t_end,
        spot_ticks,
        on_demand_ticks: od_ticks,
        preemptions,
    }
}

/// The exact optimum (backward dynamic program; see the module docs). States: progress `0..W`, mode
/// (idle, or spot / on-demand with `0..=k` warm ticks done). A job must be done by tick `T`; when even
/// all on-demand cannot make it (T < W + k), the optimum is all on-demand, late.
fn omniscient(s: &Setup) -> Outcome {
    let (w, t, k) = (s.w, s.t, s.k);
    if t < w + k {
        let cost = s.od_cost.checked_mul((w + k) as i64).unwrap_or(Money::MAX);
        return Outcome {
            policy: SpotPolicy::Omniscient,
            cost,
            met_deadline: false,
            spot_ticks: 0,
            on_demand_ticks: (w + k) as u64,
            preemptions: 0,
        };
    }
    const INF: i64 = i64::MAX / 4;
    let modes = 1 + 2 * (k + 1);
    // mode index: 0 idle; 1 + j spot with j warm ticks; 1 + (k+1) + j on-demand with j warm ticks.
    let idx = |wp: usize, m: usize| wp * modes + m;
    // next[wp][m]: minimal cost from tick i+1 on. At tick t: 0 if done, else INF.
    let mut next = vec![INF; (w + 1) * modes];
    for m in 0..modes {
        next[idx(w, m)] = 0;
    }
    let mut cur = vec![INF; (w + 1) * modes];
    for i in (0..t).rev() {
        for m in 0..modes {
            cur[idx(w, m)] = 0;
        }
        for wp in 0..w {
            for m in 0..modes {
                // Idle.
                let mut best = next[idx(wp, 0)];
                // Spot (if available) and on-demand.
                for (base, price, ok) in [
                    (1, s.spot_cost[i], s.avail[i]),
                    (1 + k + 1, s.od_cost, true),
                ] {
                    if !ok {
                        continue;
                    }
                    let j = if m >= base && m <= base + k {
                        m - base
                    } else {
                        0
                    };
                    let cont = m >= base && m <= base + k;
                    let j = if cont { j } else { 0 };
                    let prog = usize::from(j >= k);
                    let nj = (j + 1).min(k);
                    let v = next[idx((wp + prog).min(w), base + nj)];
                    if v < INF {
                        best = best.min(v + price.micros());
                    }
                }
                cur[idx(wp, m)] = best;
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
    let c = next[idx(0, 0)];
    Outcome {
        policy: SpotPolicy::Omniscient,
        cost: Money::from_micros(c),
        met_deadline: c < INF,
        spot_ticks: 0,
        on_demand_ticks: 0,
        preemptions: 0,
    }
}

/// The result of all policies over many start points of many traces.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceStudy {
    pub trace: String,
    pub gap_s: u32,
    pub availability: f64,
    pub starts: usize,
    /// Mean cost per policy, in [`SpotPolicy::ALL`] order.
    pub mean_cost: Vec<(SpotPolicy, Money)>,
    pub misses: Vec<(SpotPolicy, u64)>,
    /// 1 - cost / on-demand cost.
    pub savings: Vec<(SpotPolicy, f64)>,
    /// (greedy - UP) / (greedy - omniscient): the share of greedy's gap to the optimum UP closes.
    pub up_gap_closed: Option<f64>,
}

/// Runs every policy from `starts` evenly spaced start ticks (only starts where the job fits in one pass
/// of the trace).
pub fn study(
    trace: &SpotTrace,
    job: &DeadlineJob,
    prices: &SpotPrices,
    starts: usize,
) -> TraceStudy {
    let len = trace.available.len();
    let need = (job.deadline_s / trace.gap_s as u64) as usize + 1;
    let room = len.saturating_sub(need).max(1);
    let n = starts.max(1).min(room);
    let mut totals = [0i128; 4];
    let mut misses = [0u64; 4];
    for s in 0..n {
        let start = s * room / n;
        for (pi, p) in SpotPolicy::ALL.iter().enumerate() {
            let o = run(*p, trace, start, job, prices);
            totals[pi] += o.cost.micros() as i128;
            misses[pi] += u64::from(!o.met_deadline);
        }
    }
    let mean: Vec<(SpotPolicy, Money)> = SpotPolicy::ALL
        .iter()
        .zip(totals)
        .map(|(p, t)| (*p, Money::from_micros((t / n as i128) as i64)))
        .collect();
    let od = mean[0].1.micros() as f64;
    let savings = mean
        .iter()
        .map(|(p, c)| (*p, crate::metrics::round4(1.0 - c.micros() as f64 / od)))
        .collect();
    let (g, u, o) = (
        mean[1].1.micros() as f64,
        mean[2].1.micros() as f64,
        mean[3].1.micros() as f64,
    );
    let up_gap_closed = if g - o > 0.0 {
        Some(crate::metrics::round4((g - u) / (g - o)))
    } else {
        None
    };
    TraceStudy {
        trace: trace.name.clone(),
        gap_s: trace.gap_s,
        availability: crate::metrics::round4(trace.availability()),
        starts: n,
        mean_cost: mean,
        misses: SpotPolicy::ALL.iter().copied().zip(misses).collect(),
        savings,
        up_gap_closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spot::Convention;
    use proptest::prelude::*;

    fn trace(avail: Vec<u32>) -> SpotTrace {
        SpotTrace {
            name: "t".into(),
            gap_s: 3600,
            convention: Convention::AvailableCount,
            available: avail,
            prices: None,
            on_demand: None,
            spot_price: None,
        }
    }
    fn prices() -> SpotPrices {
        SpotPrices {
            on_demand: Rate::from_usd_per_hour_f64(3.0).unwrap(),
            spot: vec![Rate::from_usd_per_hour_f64(1.0).unwrap()],
        }
    }

    #[test]
    fn hand_checked_cases() {
        let job = DeadlineJob {
            work_s: 4 * 3600,
            deadline_s: 8 * 3600,
            restart_overhead_s: 3600,
        };
        // Always available: every spot policy runs 1 warm-up + 4 work ticks on spot = $5.
        let t = trace(vec![1; 20]);
        for p in [
            SpotPolicy::Greedy,
            SpotPolicy::UniformProgress,
            SpotPolicy::Omniscient,
        ] {
            assert_eq!(
                run(p, &t, 0, &job, &prices()).cost,
                Money::from_usd(5),
                "{p}"
            );
        }
        assert_eq!(
            run(SpotPolicy::OnDemand, &t, 0, &job, &prices()).cost,
            Money::from_usd(15)
        );
        // Never available: all on-demand, $15, on time.
        let t = trace(vec![0; 20]);
        for p in SpotPolicy::ALL {
            let o = run(p, &t, 0, &job, &prices());
            assert_eq!((o.cost, o.met_deadline), (Money::from_usd(15), true), "{p}");
        }
        // Spot for 2 ticks then gone: greedy gets 1 tick of progress on spot ($2), then waits until it
        // must go on-demand: 1 warm + 3 work = $12. Total $14.
        let t = trace(vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            run(SpotPolicy::Greedy, &t, 0, &job, &prices()).cost,
            Money::from_usd(14)
        );
        assert!(run(SpotPolicy::Omniscient, &t, 0, &job, &prices()).cost <= Money::from_usd(14));
    }

    proptest! {
        /// The optimum is a lower bound of every policy that meets the deadline, and no policy misses.
        #[test]
        fn omniscient_is_a_lower_bound(avail in proptest::collection::vec(0u32..2, 30..60), work in 1u64..10, slack in 0u64..10, k in 0u64..3) {
            let t = trace(avail);
            let job = DeadlineJob { work_s: work * 3600, deadline_s: (work + k + slack) * 3600, restart_overhead_s: k * 3600 };
            let opt = run(SpotPolicy::Omniscient, &t, 0, &job, &prices());
            prop_assert!(opt.met_deadline);
            for p in [SpotPolicy::OnDemand, SpotPolicy::Greedy, SpotPolicy::UniformProgress] {
                let o = run(p, &t, 0, &job, &prices());
                prop_assert!(o.met_deadline, "{} missed", p);
                prop_assert!(opt.cost <= o.cost, "{}: {} < optimum {}", p, o.cost, opt.cost);
            }
        }
    }
}
