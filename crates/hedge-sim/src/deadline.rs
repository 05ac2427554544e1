//! One deadline job on a spot trace: the setting of "Can't Be Late" (Wu et al., NSDI'24).
//!
//! ## Model (shared by every policy, so their costs compare exactly)
//! Time is the trace's ticks (`gap` seconds each). The job needs `work` seconds of progress and must
//! finish within the first `T = ⌊deadline / gap⌋` ticks from its start. Each tick it runs on spot (only
//! if the trace has an instance available at that tick), on on-demand, or not at all, paying that tick's
//! whole price for what it runs on. Every (re)start — after idling, a preemption or a switch between spot
//! and on-demand — spends exactly `d = restart_overhead` seconds without progress, **in seconds**: a
//! session makes `max(0, gap - overhead left)` seconds of progress in a tick, so with `d = 720 s` and
//! `gap = 600 s` a new session makes no progress in its first tick and 480 s in its second. (The paper's
//! simulator accounts overhead the same way; rounding it up to whole ticks, as Hedge did before, charged
//! 13–20 min per restart instead of 12 and penalised the policies that restart more.) Progress survives
//! preemptions (the job checkpoints, as in the paper); a preemption takes effect at a tick boundary. A job
//! not done by `T` finishes on on-demand and counts as a miss.
//!
//! ## Policies
//! - `on-demand`: on-demand from the start.
//! - `greedy`: spot whenever available, idle otherwise, and on-demand for good once waiting any longer
//!   could miss the deadline.
//! - `uniform-progress` (UP): follows the line `work · t / deadline`. Spot whenever available; when spot is
//!   gone, on-demand if progress is behind the line, idle if not. Two rules keep it from paying a
//!   changeover per tick: **once on on-demand it stays there while spot is unavailable** (it never goes
//!   idle from on-demand), and it leaves on-demand for spot only when more than two changeovers ahead of
//!   the line (`progress > work · (t + 2d) / deadline`). The same safety net as greedy.
//! - `availability-aware` (Hedge's spot policy): UP with two changes. It returns from on-demand to spot
//!   as soon as it is ahead of the line (the exact safety net makes the two-changeover band unnecessary),
//!   and, when spot is gone and UP would *start* on-demand, it stays idle if the availability of the last
//!   12 h (the trace before the start included) says spot alone would finish within 85% of the time left.
//!   Once on on-demand it keeps UP's idle rule.
//! - `omniscient`: the cheapest schedule knowing the whole future of the trace — an exact dynamic program
//!   over (tick, progress, mode, ticks into the current session), with progress counted in units of
//!   `gcd(gap, d)` seconds so that partial ticks are exact; the lower bound.
//!
//! The safety net: a tick off on-demand (on spot, or idle) is allowed only if, were spot lost right
//! after, the job could still switch to on-demand, pay `d` and finish by `T`. Once it binds, the job stays
//! on on-demand to the end.

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
    AvailabilityAware,
    Omniscient,
}

impl SpotPolicy {
    pub const ALL: [SpotPolicy; 5] = [
        SpotPolicy::OnDemand,
        SpotPolicy::Greedy,
        SpotPolicy::UniformProgress,
        SpotPolicy::AvailabilityAware,
        SpotPolicy::Omniscient,
    ];
}

impl fmt::Display for SpotPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpotPolicy::OnDemand => "on-demand",
            SpotPolicy::Greedy => "greedy",
            SpotPolicy::UniformProgress => "uniform-progress",
            SpotPolicy::AvailabilityAware => "availability-aware",
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
            "availability-aware" | "hedge" => Ok(SpotPolicy::AvailabilityAware),
            "omniscient" | "optimal" => Ok(SpotPolicy::Omniscient),
            _ => Err(crate::SimError::UnknownPolicy {
                name: s.to_owned(),
                known: "on-demand, greedy, uniform-progress, availability-aware, omniscient",
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
    /// Prefix sums of availability from `hist_from` ticks before the start (the trace's past, where it has
    /// one): `avail_sum[j]` = available ticks among the first `j` of that run.
    avail_sum: Vec<u32>,
    hist: usize,
    spot_cost: Vec<Money>,
    od_cost: Money,
    /// Seconds per tick.
    gap: u64,
    /// Seconds of work.
    work: u64,
    /// Ticks before the deadline.
    t: usize,
    /// Restart overhead, seconds.
    d: u64,
    /// Deadline, seconds (the UP line's denominator).
    deadline: u64,
}

fn setup(trace: &SpotTrace, start_tick: usize, job: &DeadlineJob, prices: &SpotPrices) -> Setup {
    let g = (trace.gap_s as u64).max(1);
    let work = job.work_s.max(1);
    let t = (job.deadline_s / g) as usize;
    // Enough ticks for a late finish on on-demand too.
    let n = t + (work + job.restart_overhead_s).div_ceil(g) as usize + 2;
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
    let hist = start_tick.min((WINDOW_S / g) as usize);
    let mut avail_sum = Vec::with_capacity(hist + n + 1);
    avail_sum.push(0);
    for j in 0..hist + n {
        let a = trace.available[(start_tick - hist + j) % len] > 0;
        avail_sum.push(avail_sum[j] + u32::from(a));
    }
    Setup {
        avail,
        avail_sum,
        hist,
        spot_cost,
        od_cost: prices.on_demand.cost_for_seconds(g),
        gap: g,
        work,
        t,
        d: job.restart_overhead_s,
        deadline: job.deadline_s.max(1),
    }
}

impl Setup {
    /// (ticks seen, ticks spot was available) among the last `win` ticks before tick `i` of the job,
    /// the trace's past before the start included.
    fn recent(&self, i: usize, win: usize) -> (usize, u32) {
        let end = self.hist + i;
        let from = end.saturating_sub(win);
        (end - from, self.avail_sum[end] - self.avail_sum[from])
    }
}

/// A running session's state: what it runs on and the restart overhead it still has to pay.
#[derive(Clone, Copy, Debug)]
struct Session {
    mode: Mode,
    overhead_left: u64,
}

impl Session {
    /// Seconds of progress one tick on `m` makes from this session (a change of mode starts a new session).
    fn progress(&self, m: Mode, gap: u64, d: u64) -> u64 {
        match m {
            Mode::Idle => 0,
            _ if m == self.mode => gap.saturating_sub(self.overhead_left),
            _ => gap.saturating_sub(d),
        }
    }
}

/// Whole ticks needed to finish `left` seconds of work on a new on-demand session.
fn ticks_on_new_od(left: u64, s: &Setup) -> u64 {
    (left + s.d).div_ceil(s.gap)
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
    let mut cur = Session {
        mode: Mode::Idle,
        overhead_left: 0,
    };
    let mut done = 0u64;
    let mut cost = Money::ZERO;
    let (mut spot_ticks, mut od_ticks, mut preemptions) = (0, 0, 0);
    let mut committed_od = policy == SpotPolicy::OnDemand;
    let mut i = 0usize;
    while done < s.work {
        let avail = s.avail.get(i).copied().unwrap_or(false);
        if cur.mode == Mode::Spot && !avail {
            preemptions += 1;
            cur = Session {
                mode: Mode::Idle,
                overhead_left: 0,
            };
        }
        // The safety net: after a tick off on-demand, could a new on-demand session still finish by T?
        let after = s.t.saturating_sub(i + 1) as u64;
        let safe_off = |m: Mode| {
            let left = s.work.saturating_sub(done + cur.progress(m, s.gap, s.d));
            left == 0 || ticks_on_new_od(left, &s) <= after
        };
        if !committed_od
            && !(if avail {
                safe_off(Mode::Spot)
            } else {
                safe_off(Mode::Idle)
            })
        {
            committed_od = true;
        }
        let choice = if committed_od {
            Mode::OnDemand
        } else {
            match policy {
                SpotPolicy::UniformProgress => uniform_progress(&s, i, done, cur.mode, avail),
                SpotPolicy::AvailabilityAware => availability_aware(&s, i, done, cur.mode, avail),
                _ if avail => Mode::Spot,
                _ => Mode::Idle,
            }
        };
        let gained = cur.progress(choice, s.gap, s.d);
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
        let overhead_left = if choice == cur.mode {
            cur.overhead_left
        } else {
            s.d
        };
        cur = Session {
            mode: choice,
            overhead_left: if choice == Mode::Idle {
                0
            } else {
                overhead_left.saturating_sub(s.gap)
            },
        };
        done += gained;
        i += 1;
    }
    Outcome {
        policy,
        cost,
        met_deadline: i <= s.t,
        spot_ticks,
        on_demand_ticks: od_ticks,
        preemptions,
    }
}

/// Uniform progress at tick `i` with `done` seconds of progress, currently on `mode` (see the module docs).
/// The line is `work · elapsed / deadline`; integer cross-multiplication keeps it exact.
fn uniform_progress(s: &Setup, i: usize, done: u64, mode: Mode, avail: bool) -> Mode {
    up_rule(s, i, done, mode, avail, 2)
}

/// The UP rule, leaving on-demand for spot when more than `leave` changeovers ahead of the line.
fn up_rule(s: &Setup, i: usize, done: u64, mode: Mode, avail: bool, leave: u128) -> Mode {
    let elapsed = i as u128 * s.gap as u128;
    let (done, work, deadline) = (done as u128, s.work as u128, s.deadline as u128);
    let behind = done * deadline < work * elapsed;
    if avail {
        // Leave on-demand for spot only when more than two changeovers ahead of the line.
        if mode == Mode::OnDemand && done * deadline <= work * (elapsed + leave * s.d as u128) {
            Mode::OnDemand
        } else {
            Mode::Spot
        }
    } else if mode == Mode::OnDemand || behind {
        // The idle rule: on on-demand, stay there while spot is unavailable.
        Mode::OnDemand
    } else {
        Mode::Idle
    }
}

/// Availability-aware (see the module docs): the UP rule returning to spot as soon as it is ahead of the
/// line ([`LEAVE`] = 0 changeovers), and not *starting* on-demand while the spot availability of the last
/// [`WINDOW_S`] says spot alone would finish within [`KAPPA_NUM`]% of the time left.
fn availability_aware(s: &Setup, i: usize, done: u64, mode: Mode, avail: bool) -> Mode {
    let up = up_rule(s, i, done, mode, avail, LEAVE);
    if avail || mode == Mode::OnDemand || up != Mode::OnDemand {
        return up;
    }
    let win = (WINDOW_S / s.gap).max(1) as usize;
    let (seen, up_ticks) = s.recent(i, win);
    if seen == 0 || up_ticks == 0 {
        return up;
    }
    // Wall time spot alone needs at the recent availability, against the time left less one changeover.
    // (Waiting stays safe either way: the safety net in `run` forces on-demand when it must.)
    let need = (s.work - done) as u128 * seen as u128 / up_ticks as u128;
    let time_left = (s.t.saturating_sub(i) as u128 * s.gap as u128).saturating_sub(s.d as u128);
    if need * KAPPA_DEN <= time_left * KAPPA_NUM {
        Mode::Idle
    } else {
        up
    }
}

/// Availability-aware leaves on-demand for spot when more than this many changeovers ahead of the line.
const LEAVE: u128 = 0;
/// The window of recent availability it looks at.
const WINDOW_S: u64 = 12 * 3600;
/// It stays idle when spot alone at the recent availability needs at most `KAPPA_NUM / KAPPA_DEN` of the
/// time left. (These three were chosen on the AWS and GCP H100 traces of docs/sim-studies.md: a small grid,
/// no held-out traces.)
const KAPPA_NUM: u128 = 85;
const KAPPA_DEN: u128 = 100;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The exact optimum (backward dynamic program; see the module docs). Progress is counted in units of
/// `u = gcd(gap, d)` seconds, so a session's partial first ticks are exact. States: progress `0..W` units,
/// mode (idle, or spot / on-demand with `0..=k` ticks of the session done, `k = ⌈d / gap⌉`). Only the band
/// of progress reachable by tick `i` and still able to finish by `T` is computed. When even all
/// on-demand cannot make it, the optimum is all on-demand, late.
fn omniscient(s: &Setup) -> Outcome {
    let (t, gap, d) = (s.t, s.gap, s.d);
    let od_ticks = ticks_on_new_od(s.work, s) as usize;
    if t < od_ticks {
        let cost = s.od_cost.checked_mul(od_ticks as i64).unwrap_or(Money::MAX);
        return Outcome {
            policy: SpotPolicy::Omniscient,
            cost,
            met_deadline: false,
            spot_ticks: 0,
            on_demand_ticks: od_ticks as u64,
            preemptions: 0,
        };
    }
    let u = gcd(gap, d);
    let w = s.work.div_ceil(u) as usize;
    let gu = (gap / u) as usize;
    let k = d.div_ceil(gap) as usize;
    // Progress (units) of the j-th tick of a session, j capped at k (full ticks from then on).
    let step: Vec<usize> = (0..=k)
        .map(|j| (((j as u64 + 1) * gap).saturating_sub(d).min(gap) / u) as usize)
        .collect();
    const INF: i64 = i64::MAX / 4;
    let modes = 1 + 2 * (k + 1);
    // mode index: 0 idle; 1 + j spot with j session ticks done; 1 + (k+1) + j on-demand with j done.
    let idx = |wp: usize, m: usize| wp * modes + m;
    let lo = |i: usize| w.saturating_sub((t - i) * gu);
    let hi = |i: usize| (w - 1).min(i * gu);
    // next[wp][m]: minimal cost from tick i+1 on. Row `w` (done) is 0 for good.
    let mut next = vec![INF; (w + 1) * modes];
    for m in 0..modes {
        next[idx(w, m)] = 0;
    }
    let mut cur = next.clone();
    for i in (0..t).rev() {
        let lo_next = lo(i + 1);
        for wp in lo(i)..=hi(i) {
            for m in 0..modes {
                let read = |to: usize, mode: usize| {
                    if to < lo_next && to < w {
                        INF
                    } else {
                        next[idx(to.min(w), mode)]
                    }
                };
                // Idle.
                let mut best = read(wp, 0);
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
                    let v = read(wp + step[j], base + (j + 1).min(k));
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
    let mut totals = [0i128; 5];
    let mut misses = [0u64; 5];
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
        mean[4].1.micros() as f64,
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

    #[test]
    fn overhead_is_accounted_in_seconds_with_partial_progress_in_a_tick() {
        // 1.5 h of work, 30 min restart, 1 h ticks, spot always there: the first tick makes 30 min of
        // progress (not none), the second finishes the job: two ticks, $2 (whole ticks would give three).
        let job = DeadlineJob {
            work_s: 5400,
            deadline_s: 6 * 3600,
            restart_overhead_s: 1800,
        };
        let t = trace(vec![1; 20]);
        for p in [
            SpotPolicy::Greedy,
            SpotPolicy::UniformProgress,
            SpotPolicy::Omniscient,
        ] {
            assert_eq!(
                run(p, &t, 0, &job, &prices()).cost,
                Money::from_usd(2),
                "{p}"
            );
        }
        // On-demand: 30 min overhead + 1.5 h work = 2 ticks, $6.
        assert_eq!(
            run(SpotPolicy::OnDemand, &t, 0, &job, &prices()).cost,
            Money::from_usd(6)
        );
        // 12 min overhead on 10-minute ticks: the second tick of a session makes 8 minutes of progress.
        let job = DeadlineJob {
            work_s: 600 * 3,
            deadline_s: 600 * 20,
            restart_overhead_s: 720,
        };
        let t = SpotTrace {
            gap_s: 600,
            ..trace(vec![1; 40])
        };
        let o = run(SpotPolicy::Greedy, &t, 0, &job, &prices());
        // 0 + 480 + 600 + 600 = 1,680 < 1,800, so a fifth tick: 5 ticks of spot.
        assert_eq!(o.spot_ticks, 5);
        assert_eq!(
            run(SpotPolicy::Omniscient, &t, 0, &job, &prices()).cost,
            o.cost
        );
    }

    #[test]
    fn uniform_progress_stays_on_demand_while_spot_is_unavailable() {
        // 4 h of work, 8 h deadline, no restart overhead; spot only from tick 4 on. UP idles at tick 0 (on
        // the line), falls behind and starts on-demand at tick 1, and then stays on on-demand through
        // ticks 2 and 3 although it is ahead of the line (the idle rule); at tick 4 spot is back and it is
        // more than two changeovers ahead, so it takes spot and finishes. Going idle at tick 2 instead
        // would cost a second on-demand start later.
        let job = DeadlineJob {
            work_s: 4 * 3600,
            deadline_s: 8 * 3600,
            restart_overhead_s: 0,
        };
        let t = trace(vec![0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
        let o = run(SpotPolicy::UniformProgress, &t, 0, &job, &prices());
        assert_eq!(
            (o.on_demand_ticks, o.spot_ticks, o.met_deadline),
            (3, 1, true)
        );
        // With a changeover of 30 min it leaves on-demand only when more than 2 × 30 min ahead of the line.
        let job = DeadlineJob {
            work_s: 4 * 3600,
            deadline_s: 8 * 3600,
            restart_overhead_s: 1800,
        };
        let o = run(SpotPolicy::UniformProgress, &t, 0, &job, &prices());
        assert!(o.met_deadline);
        assert_eq!(o.preemptions, 0);
    }

    proptest! {
        /// The optimum is a lower bound of every policy that meets the deadline, and no policy misses.
        #[test]
        fn omniscient_is_a_lower_bound(avail in proptest::collection::vec(0u32..2, 30..60), work in 1u64..10, slack in 0u64..10, oh_min in 0u64..150) {
            // Overheads in minutes on hour ticks: partial progress within a tick is exercised.
            let t = trace(avail);
            let job = DeadlineJob { work_s: work * 3600, deadline_s: (work + oh_min.div_ceil(60) + slack) * 3600, restart_overhead_s: oh_min * 60 };
            let opt = run(SpotPolicy::Omniscient, &t, 0, &job, &prices());
            prop_assert!(opt.met_deadline);
            for p in [SpotPolicy::OnDemand, SpotPolicy::Greedy, SpotPolicy::UniformProgress, SpotPolicy::AvailabilityAware] {
                let o = run(p, &t, 0, &job, &prices());
                prop_assert!(o.met_deadline, "{} missed", p);
                prop_assert!(opt.cost <= o.cost, "{}: {} < optimum {}", p, o.cost, opt.cost);
            }
        }
    }
}
