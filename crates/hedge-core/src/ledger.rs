//! The spend ledger's rules, pure: how an attempt becomes priced segments, how a segment or a commitment
//! fee is attributed to a period, how a commitment's fee is charged to teams, and the commitment metrics.
//! No I/O, no clock: "now" is always an argument. Money is integer micro-dollars throughout.
//!
//! The model:
//! - A [`PriceBook`] is the price history: for each (provider, market) the per-GPU-hour rate in force from
//!   each [`PriceVersion`]'s `from` until the next version's.
//! - An attempt that held `gpus` GPUs on `[start, end)` is booked as [`Segment`]s: [`price_span`] splits the
//!   span at every price change of its market (and of on-demand, its list price), so each segment has one
//!   billed rate and one list rate. Committed capacity bills zero (its commitment's fee pays for it); its
//!   list rate is on-demand, the figure savings are measured against.
//! - The cost of a segment in a period `[from, to)` is its rate × GPUs × the seconds the two overlap
//!   ([`cost`]), rounded to the micro-dollar once per (segment, period).
//! - A commitment's fee accrues every second of its term, used or not ([`fee_in`]), and is charged to teams
//!   by a [`FeeAllocation`] ([`allocate_fee`]).
//! - Reports cut every window at calendar-month boundaries ([`months_in`]); a month is the billing period.

use crate::{
    Accelerator, Commitment, CommitmentId, JobId, Market, Money, ProviderId, Rate, RegionId,
    TeamId, Timestamp, ZoneId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One price in force from `from` (inclusive) until the next version of the same (provider, market).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PriceVersion {
    pub provider: ProviderId,
    pub market: Market,
    pub from: Timestamp,
    pub per_gpu_hour: Rate,
}

/// The price history, indexed per (provider, market), each series sorted by `from`.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct PriceBook {
    series: BTreeMap<(ProviderId, Market), Vec<(Timestamp, Rate)>>,
}

impl PriceBook {
    /// Builds the book; of two versions with the same (provider, market, from) the later one in the input
    /// wins.
    pub fn new(versions: impl IntoIterator<Item = PriceVersion>) -> Self {
        let mut series: BTreeMap<(ProviderId, Market), Vec<(Timestamp, Rate)>> = BTreeMap::new();
        for v in versions {
            let s = series.entry((v.provider, v.market)).or_default();
            match s.iter_mut().find(|(t, _)| *t == v.from) {
                Some(slot) => slot.1 = v.per_gpu_hour,
                None => s.push((v.from, v.per_gpu_hour)),
            }
        }
        for s in series.values_mut() {
            s.sort_by_key(|(t, _)| *t);
        }
        PriceBook { series }
    }

    /// The rate in force at `t`, if any version starts at or before `t`.
    pub fn rate_at(&self, provider: &ProviderId, market: Market, t: Timestamp) -> Option<Rate> {
        let s = self.series.get(&(provider.clone(), market))?;
        let i = s.partition_point(|(from, _)| *from <= t);
        (i > 0).then(|| s[i - 1].1)
    }

    /// Whether the book has a series for (provider, market).
    pub fn has(&self, provider: &ProviderId, market: Market) -> bool {
        self.series.contains_key(&(provider.clone(), market))
    }

    /// The latest version of (provider, market).
    pub fn latest(&self, provider: &ProviderId, market: Market) -> Option<(Timestamp, Rate)> {
        self.series
            .get(&(provider.clone(), market))
            .and_then(|s| s.last().copied())
    }

    /// Times strictly inside `(start, end)` at which the (provider, market) price changes.
    fn changes(
        &self,
        provider: &ProviderId,
        market: Market,
        start: Timestamp,
        end: Timestamp,
    ) -> Vec<Timestamp> {
        self.series
            .get(&(provider.clone(), market))
            .map(|s| {
                s.iter()
                    .map(|(t, _)| *t)
                    .filter(|t| start < *t && *t < end)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every version, in (provider, market, from) order.
    pub fn versions(&self) -> Vec<PriceVersion> {
        self.series
            .iter()
            .flat_map(|((p, m), s)| {
                s.iter().map(|(from, r)| PriceVersion {
                    provider: p.clone(),
                    market: *m,
                    from: *from,
                    per_gpu_hour: *r,
                })
            })
            .collect()
    }

    /// What `market` bills per GPU-hour at `t` and its list (on-demand) rate. Committed bills zero (paid by
    /// its commitment's fee); spot without a spot price bills the on-demand price; a provider without any
    /// price bills zero (the segment is still booked, with its GPU-hours).
    pub fn rates_at(&self, provider: &ProviderId, market: Market, t: Timestamp) -> (Rate, Rate) {
        let list = self
            .rate_at(provider, Market::OnDemand, t)
            .unwrap_or(Rate::ZERO);
        let billed = match market {
            Market::Committed => Rate::ZERO,
            Market::OnDemand => list,
            Market::Spot => self.rate_at(provider, Market::Spot, t).unwrap_or(list),
        };
        (billed, list)
    }
}

/// One priced piece of an attempt's span: the rates are constant on `[start, end)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Priced {
    pub seq: u32,
    pub start: Timestamp,
    pub end: Timestamp,
    pub billed_per_gpu_hour: Rate,
    pub list_per_gpu_hour: Rate,
}

/// Splits `[start, end)` at every price change of `market` and of on-demand (the list price) on `provider`,
/// and at every calendar-month boundary (UTC). Empty for an empty span. The pieces tile the span exactly, in order, numbered from 0.
pub fn price_span(
    book: &PriceBook,
    provider: &ProviderId,
    market: Market,
    start: Timestamp,
    end: Timestamp,
) -> Vec<Priced> {
    if end <= start {
        return vec![];
    }
    let mut cuts = book.changes(provider, Market::OnDemand, start, end);
    if market != Market::OnDemand {
        cuts.extend(book.changes(provider, market, start, end));
    }
    // Month boundaries too: every segment lies inside one calendar month, so a month's spend is a range
    // scan on the segment's start.
    cuts.extend(months_in(start, end).iter().skip(1).map(|p| p.start));
    cuts.sort();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut from = start;
    for to in cuts.into_iter().chain(std::iter::once(end)) {
        let (billed, list) = book.rates_at(provider, market, from);
        out.push(Priced {
            seq: out.len() as u32,
            start: from,
            end: to,
            billed_per_gpu_hour: billed,
            list_per_gpu_hour: list,
        });
        from = to;
    }
    out
}

/// Seconds that `[start, end)` and `[from, to)` share.
pub fn overlap_seconds(start: Timestamp, end: Timestamp, from: Timestamp, to: Timestamp) -> u64 {
    let a = start.max(from).unix();
    let b = end.min(to).unix();
    b.saturating_sub(a).max(0) as u64
}

/// `rate` per GPU-hour × `gpus` for `seconds`, rounded half up to the micro-dollar (the same arithmetic as
/// `(micros × gpus × seconds + 1800) / 3600` in SQL over non-negative integers).
/// Computed in 128 bits and clamped to the range of `Money`, so no rate, GPU count or span overflows.
pub fn cost(per_gpu_hour: Rate, gpus: u32, seconds: u64) -> Money {
    let m = (per_gpu_hour.hourly().micros() as i128)
        .saturating_mul(gpus as i128)
        .saturating_mul(seconds as i128);
    let r = m.saturating_add(1800).div_euclid(3600);
    Money::from_micros(r.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// The calendar months (UTC) that `[from, to)` touches, each clipped to the window: the billing periods a
/// report cuts the window into. Also returns each month's full bounds.
pub fn months_in(from: Timestamp, to: Timestamp) -> Vec<Period> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        let (y, m, ..) = t.to_civil();
        let month_start = Timestamp::from_ymd(y, m, 1);
        let month_end = if m == 12 {
            Timestamp::from_ymd(y + 1, 1, 1)
        } else {
            Timestamp::from_ymd(y, m + 1, 1)
        };
        let end = month_end.min(to);
        out.push(Period {
            start: t,
            end,
            billing_start: month_start,
            billing_end: month_end,
        });
        t = end;
    }
    out
}

/// The indexes of `periods` (in order, as [`months_in`] gives them) that `[start, end)` overlaps.
pub fn periods_overlapping(
    periods: &[Period],
    start: Timestamp,
    end: Timestamp,
) -> std::ops::Range<usize> {
    let first = periods.partition_point(|p| p.end <= start);
    let last = periods.partition_point(|p| p.start < end);
    first..last.max(first)
}

/// A piece of a report window inside one billing period (a calendar month).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
    pub billing_start: Timestamp,
    pub billing_end: Timestamp,
}

/// One booked (or, for a running attempt, accrued-to-now) piece of an attempt: who held what, where, on
/// which market and commitment, at which rates. Unique per (`attempt`, `seq`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Segment {
    /// The attempt's idempotency key.
    pub attempt: String,
    pub seq: u32,
    pub job: JobId,
    pub attempt_no: u32,
    pub team: TeamId,
    pub provider: ProviderId,
    pub region: Option<RegionId>,
    pub zone: Option<ZoneId>,
    pub instance_type: String,
    pub market: Market,
    pub commitment: Option<CommitmentId>,
    pub accelerator: Option<Accelerator>,
    pub gpus: u32,
    pub start: Timestamp,
    pub end: Timestamp,
    /// What the market bills per GPU-hour (zero on committed capacity).
    pub per_gpu_hour: Rate,
    /// The on-demand price per GPU-hour at the time.
    pub list_per_gpu_hour: Rate,
}

impl Segment {
    pub fn seconds_in(&self, from: Timestamp, to: Timestamp) -> u64 {
        overlap_seconds(self.start, self.end, from, to)
    }
    /// Billed cost attributed to `[from, to)`.
    pub fn billed_in(&self, from: Timestamp, to: Timestamp) -> Money {
        cost(self.per_gpu_hour, self.gpus, self.seconds_in(from, to))
    }
    /// On-demand (list) cost attributed to `[from, to)`.
    pub fn list_in(&self, from: Timestamp, to: Timestamp) -> Money {
        cost(self.list_per_gpu_hour, self.gpus, self.seconds_in(from, to))
    }
    pub fn gpu_seconds_in(&self, from: Timestamp, to: Timestamp) -> u64 {
        u64::from(self.gpus).saturating_mul(self.seconds_in(from, to))
    }
}

/// What an attempt held, to be priced into [`Segment`]s.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AttemptSpan {
    pub attempt: String,
    pub job: JobId,
    pub attempt_no: u32,
    pub team: TeamId,
    pub provider: ProviderId,
    pub region: Option<RegionId>,
    pub zone: Option<ZoneId>,
    pub instance_type: String,
    pub market: Market,
    pub commitment: Option<CommitmentId>,
    pub accelerator: Option<Accelerator>,
    pub gpus: u32,
    pub start: Timestamp,
}

/// The attempt's segments on `[span.start, end)`: for an ended attempt the booking, for a running one its
/// accrual up to `end = now`. The same inputs always give the same segments, so writing them is idempotent
/// per (attempt, seq).
pub fn segments(book: &PriceBook, span: &AttemptSpan, end: Timestamp) -> Vec<Segment> {
    price_span(book, &price_key(book, span), span.market, span.start, end)
        .into_iter()
        .map(|p| Segment {
            attempt: span.attempt.clone(),
            seq: p.seq,
            job: span.job,
            attempt_no: span.attempt_no,
            team: span.team.clone(),
            provider: span.provider.clone(),
            region: span.region.clone(),
            zone: span.zone.clone(),
            instance_type: span.instance_type.clone(),
            market: span.market,
            commitment: span.commitment.clone(),
            accelerator: span.accelerator.clone(),
            gpus: span.gpus,
            start: p.start,
            end: p.end,
            per_gpu_hour: p.billed_per_gpu_hour,
            list_per_gpu_hour: p.list_per_gpu_hour,
        })
        .collect()
}

/// The price series an attempt is priced from: its offer's own (`provider/region/instance_type`, recorded for
/// providers that sell catalog offers, whose per-GPU price differs by instance type and region) when the book
/// has one, else its provider's (one rate per market, as owned capacity has).
pub fn price_key(book: &PriceBook, span: &AttemptSpan) -> ProviderId {
    if let Some(region) = &span.region {
        let offer = offer_price_key(&span.provider, region.as_str(), &span.instance_type);
        if book.has(&offer, Market::OnDemand) || book.has(&offer, span.market) {
            return offer;
        }
    }
    span.provider.clone()
}

/// The key of one offer's price series: `provider/region/instance_type`.
pub fn offer_price_key(provider: &ProviderId, region: &str, instance_type: &str) -> ProviderId {
    ProviderId::new(format!("{provider}/{region}/{instance_type}"))
}

/// A commitment's fee accrued in `[from, to)`: every second of its term, used or not.
pub fn fee_in(c: &Commitment, from: Timestamp, to: Timestamp) -> Money {
    cost(
        c.per_gpu_hour,
        c.gpus,
        overlap_seconds(c.start, c.end, from, to),
    )
}

/// How a commitment's fee is charged to teams (server config `ledger.commitment_fees`).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeAllocation {
    /// Each team pays for the GPU-seconds it used at the commitment's rate, and the unused rest is split in
    /// proportion to use (largest remainder, ties to the first team by name). A commitment nobody used in
    /// the period is charged to no team (`team: None`).
    #[default]
    UsageShare,
    /// The whole fee goes to the owning team.
    Owner(TeamId),
}

/// Whether a share of a fee paid for GPUs in use.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeStatus {
    Used,
    Unused,
}

/// A part of a commitment's fee charged to a team (or to none).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FeeShare {
    pub commitment: CommitmentId,
    pub team: Option<TeamId>,
    pub status: FeeStatus,
    pub amount: Money,
    pub gpu_seconds: u64,
}

/// The part of `c`'s fee that paid for `gpu_seconds` of use: the commitment's rate × GPU-seconds, rounded
/// down to the micro-dollar (so the used parts of a fee never add up to more than the fee).
pub fn amortized(c: &Commitment, gpu_seconds: u64) -> Money {
    let m = c.per_gpu_hour.hourly().micros() as i128 * gpu_seconds as i128 / 3600;
    Money::from_micros(m.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// Use of a commitment by one team in one period: the amortized fee of its segments (each segment's
/// [`amortized`] part, summed) and their GPU-seconds.
pub type TeamUse = BTreeMap<TeamId, (Money, u64)>;

/// Adds `s`'s use of `c` within `[from, to)` (clipped to the term) to `used`; returns the amortized part.
pub fn add_use(
    c: &Commitment,
    s: &Segment,
    from: Timestamp,
    to: Timestamp,
    used: &mut TeamUse,
) -> (Money, u64) {
    if s.commitment.as_ref() != Some(&c.id) {
        return (Money::ZERO, 0);
    }
    let g = s.gpu_seconds_in(from.max(c.start), to.min(c.end));
    if g == 0 {
        return (Money::ZERO, 0);
    }
    let m = amortized(c, g);
    let e = used.entry(s.team.clone()).or_default();
    e.0 += m;
    e.1 = e.1.saturating_add(g);
    (m, g)
}

/// Splits the fee of `c` accrued in `[from, to)` into shares per team and status. The shares sum to
/// [`fee_in`] exactly. `segments` may contain anything; only those on `c` count.
pub fn allocate_fee(
    c: &Commitment,
    segments: &[Segment],
    from: Timestamp,
    to: Timestamp,
    policy: &FeeAllocation,
) -> Vec<FeeShare> {
    let mut used = TeamUse::new();
    for s in segments {
        add_use(c, s, from, to, &mut used);
    }
    allocate_from_use(c, from, to, &used, policy)
}

/// [`allocate_fee`] from the use already summed per team (what a streaming export accumulates). The used
/// shares are the amortized use; the unused share is the rest of the fee (negative only if the commitment
/// was used beyond its GPUs).
pub fn allocate_from_use(
    c: &Commitment,
    from: Timestamp,
    to: Timestamp,
    used: &TeamUse,
    policy: &FeeAllocation,
) -> Vec<FeeShare> {
    let fee = fee_in(c, from, to);
    let used_total: Money = used.values().map(|(m, _)| *m).sum();
    let used_gpu_seconds: u64 = used.values().fold(0u64, |a, (_, g)| a.saturating_add(*g));
    let unused = fee - used_total;
    let capacity = u64::from(c.gpus).saturating_mul(overlap_seconds(c.start, c.end, from, to));
    let idle = capacity.saturating_sub(used_gpu_seconds);
    let share = |team: Option<TeamId>, status, amount, gpu_seconds| FeeShare {
        commitment: c.id.clone(),
        team,
        status,
        amount,
        gpu_seconds,
    };
    let mut out = Vec::new();
    match policy {
        FeeAllocation::Owner(owner) => {
            if used_total != Money::ZERO || used_gpu_seconds > 0 {
                out.push(share(
                    Some(owner.clone()),
                    FeeStatus::Used,
                    used_total,
                    used_gpu_seconds,
                ));
            }
            if unused != Money::ZERO || idle > 0 {
                out.push(share(Some(owner.clone()), FeeStatus::Unused, unused, idle));
            }
        }
        FeeAllocation::UsageShare => {
            for (team, (m, g)) in used {
                out.push(share(Some(team.clone()), FeeStatus::Used, *m, *g));
            }
            if unused != Money::ZERO || idle > 0 {
                let weights: Vec<u64> = used.values().map(|(_, g)| *g).filter(|g| *g > 0).collect();
                if weights.len() != used.len() || used.is_empty() {
                    out.push(share(None, FeeStatus::Unused, unused, idle));
                } else {
                    let parts = split_proportional(unused.micros(), &weights);
                    let idle_parts = split_proportional(idle as i64, &weights);
                    for ((team, part), g) in used.keys().zip(parts).zip(idle_parts) {
                        out.push(share(
                            Some(team.clone()),
                            FeeStatus::Unused,
                            Money::from_micros(part),
                            g as u64,
                        ));
                    }
                }
            }
        }
    }
    out
}

/// `total` split in proportion to `weights` (all positive), largest remainder; the parts sum to `total`
/// exactly and ties go to the earlier weight.
fn split_proportional(total: i64, weights: &[u64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| *w as i128).sum();
    if sum == 0 {
        return weights.iter().map(|_| 0).collect();
    }
    let mut parts: Vec<i64> = Vec::with_capacity(weights.len());
    let mut rems: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let x = total as i128 * *w as i128;
        parts.push(x.div_euclid(sum) as i64);
        rems.push((x.rem_euclid(sum), i));
    }
    let mut left = total - parts.iter().sum::<i64>();
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rems {
        if left <= 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

/// The ledger's spend per team in `[from, to)`: billed usage plus fee shares, cut at month boundaries (the
/// same pieces the FOCUS export writes). Fee shares charged to no team are under `None`.
pub fn spend_by_team(
    segments: &[Segment],
    commitments: &[Commitment],
    from: Timestamp,
    to: Timestamp,
    policy: &FeeAllocation,
) -> BTreeMap<Option<TeamId>, Money> {
    let mut out: BTreeMap<Option<TeamId>, Money> = BTreeMap::new();
    let periods = months_in(from, to);
    for s in segments {
        for p in &periods[periods_overlapping(&periods, s.start, s.end)] {
            let m = s.billed_in(p.start, p.end);
            if m != Money::ZERO {
                *out.entry(Some(s.team.clone())).or_default() += m;
            }
        }
    }
    for (team, m) in fees_by_team(segments, commitments, from, to, policy) {
        *out.entry(team).or_default() += m;
    }
    out
}

/// The commitments' fees in `[from, to)` per team (`None`: charged to no team), month by month, by
/// [`allocate_from_use`]; each segment is visited once per commitment it is on.
pub fn fees_by_team(
    segments: &[Segment],
    commitments: &[Commitment],
    from: Timestamp,
    to: Timestamp,
    policy: &FeeAllocation,
) -> BTreeMap<Option<TeamId>, Money> {
    let mut out: BTreeMap<Option<TeamId>, Money> = BTreeMap::new();
    let periods = months_in(from, to);
    for c in commitments {
        let range = periods_overlapping(&periods, c.start, c.end);
        let mut used = vec![TeamUse::new(); range.len()];
        for s in segments
            .iter()
            .filter(|s| s.commitment.as_ref() == Some(&c.id))
        {
            for pi in periods_overlapping(&periods, s.start, s.end) {
                if range.contains(&pi) {
                    add_use(
                        c,
                        s,
                        periods[pi].start,
                        periods[pi].end,
                        &mut used[pi - range.start],
                    );
                }
            }
        }
        for (k, pi) in range.enumerate() {
            for f in allocate_from_use(c, periods[pi].start, periods[pi].end, &used[k], policy) {
                *out.entry(f.team).or_default() += f.amount;
            }
        }
    }
    out
}

/// The ledger's total for `[from, to)`: billed usage plus every commitment fee accrued, month by month.
pub fn total(
    segments: &[Segment],
    commitments: &[Commitment],
    from: Timestamp,
    to: Timestamp,
) -> Money {
    let mut t = Money::ZERO;
    let periods = months_in(from, to);
    for s in segments {
        for p in &periods[periods_overlapping(&periods, s.start, s.end)] {
            t += s.billed_in(p.start, p.end);
        }
    }
    for c in commitments {
        for p in &periods[periods_overlapping(&periods, c.start, c.end)] {
            t += fee_in(c, p.start, p.end);
        }
    }
    t
}

/// Commitment metrics over a window, for one commitment.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct CommitmentMetrics {
    pub commitment: CommitmentId,
    pub provider: ProviderId,
    pub accelerator: Accelerator,
    /// GPU-seconds the commitment offered in the window (its GPUs × the part of its term inside it).
    pub capacity_gpu_seconds: u64,
    /// GPU-seconds attempts on the commitment held.
    pub used_gpu_seconds: u64,
    /// GPU-seconds of on-demand and spot use of the same provider and accelerator (what the commitment
    /// could have covered).
    pub uncovered_gpu_seconds: u64,
    /// The fee accrued in the window.
    pub fee: Money,
    /// The fee's part that paid for idle GPUs.
    pub waste: Money,
    /// What the used GPU-seconds would have cost on demand.
    pub on_demand_equivalent: Money,
    /// used / capacity.
    pub utilization: f64,
    /// covered / (covered + uncovered) GPU-seconds.
    pub coverage: f64,
    /// (on-demand equivalent − fee) / on-demand equivalent; negative when the commitment cost more than
    /// its use would have on demand; 0 without use.
    pub effective_savings_rate: f64,
    /// Burn-down at `now`: the fee still to accrue and the GPU-hours still offered after `now`.
    pub remaining_fee: Money,
    pub remaining_gpu_seconds: u64,
    /// At the window's use rate, the GPU-seconds of the remaining term that would go unused.
    pub projected_unused_gpu_seconds: u64,
}

/// The metrics of commitment `c` over `[from, to)`, with burn-down as of `now`. Ratios are the only
/// floats, computed from integers in this one place.
pub fn commitment_metrics(
    c: &Commitment,
    segments: &[Segment],
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
) -> CommitmentMetrics {
    let capacity = u64::from(c.gpus).saturating_mul(overlap_seconds(c.start, c.end, from, to));
    let mut used = 0u64;
    let mut uncovered = 0u64;
    let mut on_demand_equivalent = Money::ZERO;
    for s in segments {
        if s.commitment.as_ref() == Some(&c.id) {
            let (a, b) = (from.max(c.start), to.min(c.end));
            used = used.saturating_add(s.gpu_seconds_in(a, b));
            on_demand_equivalent += s.list_in(a, b);
        } else if s.provider == c.provider
            && s.accelerator.as_ref() == Some(&c.accelerator)
            && s.market != Market::Committed
        {
            uncovered =
                uncovered.saturating_add(s.gpu_seconds_in(from.max(c.start), to.min(c.end)));
        }
    }
    let fee = fee_in(c, from, to);
    let used_cost = amortized(c, used);
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let window_seconds = overlap_seconds(c.start, c.end, from, to);
    let remaining_seconds = overlap_seconds(c.start, c.end, now, c.end.max(now));
    let remaining_capacity = u64::from(c.gpus).saturating_mul(remaining_seconds);
    // Use per second of the window, carried over the remaining term.
    let projected_use = if window_seconds == 0 {
        0
    } else {
        (used as u128 * remaining_seconds as u128 / window_seconds as u128) as u64
    };
    CommitmentMetrics {
        commitment: c.id.clone(),
        provider: c.provider.clone(),
        accelerator: c.accelerator.clone(),
        capacity_gpu_seconds: capacity,
        used_gpu_seconds: used,
        uncovered_gpu_seconds: uncovered,
        fee,
        waste: fee - used_cost,
        on_demand_equivalent,
        utilization: ratio(used, capacity),
        coverage: ratio(used, used.saturating_add(uncovered)),
        effective_savings_rate: if on_demand_equivalent == Money::ZERO {
            0.0
        } else {
            (on_demand_equivalent - fee).micros() as f64 / on_demand_equivalent.micros() as f64
        },
        remaining_fee: fee_in(c, now, c.end.max(now)),
        remaining_gpu_seconds: remaining_capacity,
        projected_unused_gpu_seconds: remaining_capacity.saturating_sub(projected_use),
    }
}

impl CommitmentMetrics {
    /// Several commitments' figures summed under `name`, ratios recomputed from the sums. (Uncovered use is
    /// summed per commitment, so two commitments of one provider and accelerator count it twice.)
    pub fn sum<'a>(
        id: CommitmentId,
        ms: impl IntoIterator<Item = &'a CommitmentMetrics>,
    ) -> Option<CommitmentMetrics> {
        let mut it = ms.into_iter();
        let first = it.next()?;
        let mut out = CommitmentMetrics {
            commitment: id,
            ..first.clone()
        };
        for m in it {
            out.capacity_gpu_seconds = out
                .capacity_gpu_seconds
                .saturating_add(m.capacity_gpu_seconds);
            out.used_gpu_seconds = out.used_gpu_seconds.saturating_add(m.used_gpu_seconds);
            out.uncovered_gpu_seconds = out
                .uncovered_gpu_seconds
                .saturating_add(m.uncovered_gpu_seconds);
            out.fee += m.fee;
            out.waste += m.waste;
            out.on_demand_equivalent += m.on_demand_equivalent;
            out.remaining_fee += m.remaining_fee;
            out.remaining_gpu_seconds = out
                .remaining_gpu_seconds
                .saturating_add(m.remaining_gpu_seconds);
            out.projected_unused_gpu_seconds = out
                .projected_unused_gpu_seconds
                .saturating_add(m.projected_unused_gpu_seconds);
        }
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        out.utilization = ratio(out.used_gpu_seconds, out.capacity_gpu_seconds);
        out.coverage = ratio(
            out.used_gpu_seconds,
            out.used_gpu_seconds
                .saturating_add(out.uncovered_gpu_seconds),
        );
        out.effective_savings_rate = if out.on_demand_equivalent == Money::ZERO {
            0.0
        } else {
            (out.on_demand_equivalent - out.fee).micros() as f64
                / out.on_demand_equivalent.micros() as f64
        };
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(h: i64) -> Timestamp {
        Timestamp::from_ymd(2026, 11, 1).plus_seconds(h * 3600)
    }
    fn usd(x: i64) -> Rate {
        Rate::per_hour(Money::from_usd(x))
    }
    fn book() -> PriceBook {
        PriceBook::new([
            PriceVersion {
                provider: "a".into(),
                market: Market::OnDemand,
                from: t(0),
                per_gpu_hour: usd(2),
            },
            PriceVersion {
                provider: "a".into(),
                market: Market::OnDemand,
                from: t(10),
                per_gpu_hour: usd(3),
            },
            PriceVersion {
                provider: "a".into(),
                market: Market::Spot,
                from: t(0),
                per_gpu_hour: usd(1),
            },
        ])
    }
    fn span(market: Market, gpus: u32, start: Timestamp) -> AttemptSpan {
        AttemptSpan {
            attempt: "k1".into(),
            job: JobId(1),
            attempt_no: 1,
            team: "ml".into(),
            provider: "a".into(),
            region: None,
            zone: None,
            instance_type: "gpu".into(),
            market,
            commitment: (market == Market::Committed).then(|| CommitmentId::new("c1")),
            accelerator: Some(Accelerator::parse("H100").unwrap()),
            gpus,
            start,
        }
    }
    fn commitment(gpus: u32, rate: i64, start: Timestamp, end: Timestamp) -> Commitment {
        Commitment {
            id: "c1".into(),
            provider: "a".into(),
            accelerator: Accelerator::parse("H100").unwrap(),
            region: None,
            gpus,
            per_gpu_hour: usd(rate),
            start,
            end,
        }
    }

    #[test]
    fn a_price_change_splits_the_segment() {
        // 4 GPUs from hour 8 to hour 12; on-demand goes from $2 to $3 at hour 10:
        // 4 × 2 × $2 + 4 × 2 × $3 = $16 + $24 = $40.
        let s = segments(&book(), &span(Market::OnDemand, 4, t(8)), t(12));
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].seq, s[0].start, s[0].end, s[0].per_gpu_hour),
            (0, t(8), t(10), usd(2))
        );
        assert_eq!(
            (s[1].seq, s[1].start, s[1].end, s[1].per_gpu_hour),
            (1, t(10), t(12), usd(3))
        );
        let total: Money = s.iter().map(|x| x.billed_in(t(0), t(24))).sum();
        assert_eq!(total, Money::from_usd(40));
        // No change inside the span: one segment.
        assert_eq!(
            segments(&book(), &span(Market::OnDemand, 4, t(0)), t(10)).len(),
            1
        );
    }

    #[test]
    fn spot_splits_at_list_changes_and_committed_bills_zero_at_list() {
        let s = segments(&book(), &span(Market::Spot, 2, t(9)), t(11));
        assert_eq!(
            s.iter()
                .map(|x| (x.per_gpu_hour, x.list_per_gpu_hour))
                .collect::<Vec<_>>(),
            [(usd(1), usd(2)), (usd(1), usd(3))]
        );
        let c = segments(&book(), &span(Market::Committed, 2, t(0)), t(1));
        assert_eq!(
            (c[0].per_gpu_hour, c[0].list_per_gpu_hour),
            (Rate::ZERO, usd(2))
        );
        assert_eq!(c[0].billed_in(t(0), t(1)), Money::ZERO);
        assert!(segments(&book(), &span(Market::OnDemand, 1, t(3)), t(3)).is_empty());
    }

    #[test]
    fn spend_is_attributed_by_overlap_with_the_period() {
        // Runs from Oct 31 22:00 to Nov 1 02:00 on 1 GPU at $2: $4 in October, $4 in November.
        let b = PriceBook::new([PriceVersion {
            provider: "a".into(),
            market: Market::OnDemand,
            from: t(-100),
            per_gpu_hour: usd(2),
        }]);
        let s = segments(&b, &span(Market::OnDemand, 1, t(-2)), t(2));
        let oct = Timestamp::from_ymd(2026, 10, 1);
        // Booked as two segments, one per month.
        assert_eq!(
            s.iter().map(|x| (x.start, x.end)).collect::<Vec<_>>(),
            [(t(-2), t(0)), (t(0), t(2))]
        );
        let in_period = |from, to| s.iter().map(|x| x.billed_in(from, to)).sum::<Money>();
        assert_eq!(in_period(oct, t(0)), Money::from_usd(4));
        assert_eq!(in_period(t(0), t(24 * 30)), Money::from_usd(4));
        // Overlap inside a month: 22:00..23:30 Oct 31 holds 1.5 h.
        assert_eq!(
            in_period(t(-2), t(-1).plus_seconds(1800)),
            Money::from_usd(3)
        );
        let by_month = months_in(oct, Timestamp::from_ymd(2026, 12, 1));
        assert_eq!(by_month.len(), 2);
        assert_eq!(by_month[0].billing_end, t(0));
    }

    #[test]
    fn an_idle_commitment_accrues_its_fee() {
        // 8 GPUs at $1.50/GPU-h committed for all of November; nothing runs. One day: 8 × 24 × 1.5 = $288.
        let mut c = commitment(8, 0, t(0), t(24 * 30));
        c.per_gpu_hour = Rate::per_hour(Money::from_micros(1_500_000));
        assert_eq!(fee_in(&c, t(0), t(24)), Money::from_usd(288));
        let shares = allocate_fee(&c, &[], t(0), t(24), &FeeAllocation::UsageShare);
        assert_eq!(
            shares,
            [FeeShare {
                commitment: "c1".into(),
                team: None,
                status: FeeStatus::Unused,
                amount: Money::from_usd(288),
                gpu_seconds: 8 * 86_400
            }]
        );
        let owned = allocate_fee(&c, &[], t(0), t(24), &FeeAllocation::Owner("infra".into()));
        assert_eq!(owned.len(), 1);
        assert_eq!(
            (owned[0].team.clone(), owned[0].amount),
            (Some("infra".into()), Money::from_usd(288))
        );
        // Outside its term it accrues nothing.
        assert_eq!(fee_in(&c, t(-48), t(0)), Money::ZERO);
    }

    #[test]
    fn fee_by_usage_share_hand_worked() {
        // 4 GPUs at $1/GPU-h for 10 hours: fee $40. ml uses 2 GPUs for 5 h (10 GPU-h = $10), cv 1 GPU for
        // 10 h ($10). Unused $20 split 1:1 → ml $20, cv $20.
        let c = commitment(4, 1, t(0), t(10));
        let mut a = segments(&book(), &span(Market::Committed, 2, t(0)), t(5));
        let mut b = segments(
            &book(),
            &AttemptSpan {
                attempt: "k2".into(),
                team: "cv".into(),
                ..span(Market::Committed, 1, t(0))
            },
            t(10),
        );
        a.append(&mut b);
        let shares = allocate_fee(&c, &a, t(0), t(10), &FeeAllocation::UsageShare);
        let per_team = spend_by_team(
            &a,
            std::slice::from_ref(&c),
            t(0),
            t(10),
            &FeeAllocation::UsageShare,
        );
        assert_eq!(
            shares.iter().map(|s| s.amount).sum::<Money>(),
            Money::from_usd(40)
        );
        assert_eq!(per_team.get(&Some("ml".into())), Some(&Money::from_usd(20)));
        assert_eq!(per_team.get(&Some("cv".into())), Some(&Money::from_usd(20)));
        assert_eq!(total(&a, &[c], t(0), t(10)), Money::from_usd(40));
    }

    #[test]
    fn commitment_metrics_hand_worked() {
        // 4 GPUs at $1/GPU-h over hours 0..10 (fee $40, 40 GPU-h). Committed use: 2 GPUs × 5 h = 10 GPU-h
        // (list $2 until hour 10: on-demand equivalent $20). On-demand use of the same accelerator: 1 GPU ×
        // 10 h = 10 GPU-h. utilization 10/40 = 0.25, coverage 10/20 = 0.5, waste $40 − $10 = $30,
        // savings (20 − 40)/20 = −1.0. Now = hour 5: remaining fee $20, 20 GPU-h left; use rate over the
        // window 1 GPU-h/h → 5 GPU-h used in the last 5 hours, so 15 GPU-h projected unused.
        let c = commitment(4, 1, t(0), t(10));
        let mut segs = segments(&book(), &span(Market::Committed, 2, t(0)), t(5));
        segs.extend(segments(
            &book(),
            &AttemptSpan {
                attempt: "k2".into(),
                commitment: None,
                ..span(Market::OnDemand, 1, t(0))
            },
            t(10),
        ));
        let m = commitment_metrics(&c, &segs, t(0), t(10), t(5));
        assert_eq!(
            (
                m.capacity_gpu_seconds,
                m.used_gpu_seconds,
                m.uncovered_gpu_seconds
            ),
            (40 * 3600, 10 * 3600, 10 * 3600)
        );
        assert_eq!(
            (m.fee, m.waste, m.on_demand_equivalent),
            (
                Money::from_usd(40),
                Money::from_usd(30),
                Money::from_usd(20)
            )
        );
        assert_eq!(
            (m.utilization, m.coverage, m.effective_savings_rate),
            (0.25, 0.5, -1.0)
        );
        assert_eq!(
            (
                m.remaining_fee,
                m.remaining_gpu_seconds,
                m.projected_unused_gpu_seconds
            ),
            (Money::from_usd(20), 20 * 3600, 15 * 3600)
        );
    }

    #[test]
    fn huge_rates_and_spans_saturate_instead_of_overflowing() {
        let r = Rate::per_hour(Money::from_micros(i64::MAX / 2));
        assert_eq!(cost(r, u32::MAX, u64::MAX), Money::MAX);
        assert_eq!(cost(r, 0, u64::MAX), Money::ZERO);
        let c = commitment(
            u32::MAX,
            0,
            Timestamp(i64::MIN / 4),
            Timestamp(i64::MAX / 4),
        );
        let c = Commitment {
            per_gpu_hour: r,
            ..c
        };
        assert_eq!(
            fee_in(&c, Timestamp(0), Timestamp(i64::MAX / 8)),
            Money::MAX
        );
    }

    #[test]
    fn months_of_a_long_window_from_year_0() {
        let from = Timestamp::parse_civil("0000-01-01").unwrap();
        let to = Timestamp::from_ymd(2026, 12, 5);
        let m = months_in(from, to);
        assert_eq!(m.len(), 2026 * 12 + 12);
        assert_eq!((m[0].start, m.last().unwrap().end), (from, to));
    }

    #[test]
    fn split_is_exact() {
        assert_eq!(split_proportional(10, &[1, 1, 1]), [4, 3, 3]);
        assert_eq!(split_proportional(0, &[5]), [0]);
    }

    proptest! {
        /// Segments tile the span, and booking in pieces equals the per-segment cost within one micro-dollar
        /// per piece.
        #[test]
        fn segments_tile_the_span(start in -800i64..20, len in 0i64..1600, changes in proptest::collection::vec((-30i64..40, 1i64..9), 0..6), gpus in 0u32..9) {
            let mut vs = vec![PriceVersion { provider: "a".into(), market: Market::OnDemand, from: t(-2000), per_gpu_hour: usd(1) }];
            for (h, p) in &changes {
                vs.push(PriceVersion { provider: "a".into(), market: Market::OnDemand, from: t(*h), per_gpu_hour: usd(*p) });
            }
            let b = PriceBook::new(vs);
            let s = segments(&b, &span(Market::OnDemand, gpus, t(start)), t(start + len));
            let mut at = t(start);
            for (i, x) in s.iter().enumerate() {
                prop_assert_eq!(x.seq as usize, i);
                prop_assert_eq!(x.start, at);
                prop_assert!(x.end > x.start);
                prop_assert_eq!(Some(x.per_gpu_hour), b.rate_at(&"a".into(), Market::OnDemand, x.start));
                prop_assert_eq!(months_in(x.start, x.end).len(), 1, "a segment lies inside one month");
                at = x.end;
            }
            prop_assert_eq!(at, if len == 0 { t(start) } else { t(start + len) });
        }

        /// Fee shares always sum to the fee, whatever the use and policy.
        #[test]
        fn fee_shares_sum_to_the_fee(uses in proptest::collection::vec((0u32..3, 0u32..5, -5i64..15, 0i64..15), 0..6), owner in any::<bool>(), from in -5i64..10, len in 0i64..20) {
            let c = commitment(6, 1, t(0), t(10));
            let teams = ["ml", "cv", "nlp"];
            let mut segs = Vec::new();
            for (i, (team, gpus, start, len)) in uses.iter().enumerate() {
                segs.extend(segments(&book(), &AttemptSpan { attempt: format!("k{i}"), team: teams[*team as usize].into(), ..span(Market::Committed, *gpus, t(*start)) }, t(start + len)));
            }
            let policy = if owner { FeeAllocation::Owner("ml".into()) } else { FeeAllocation::UsageShare };
            let shares = allocate_fee(&c, &segs, t(from), t(from + len), &policy);
            prop_assert_eq!(shares.iter().map(|s| s.amount).sum::<Money>(), fee_in(&c, t(from), t(from + len)));
            let by_team = spend_by_team(&segs, std::slice::from_ref(&c), t(from), t(from + len), &policy);
            prop_assert_eq!(by_team.values().copied().sum::<Money>(), total(&segs, std::slice::from_ref(&c), t(from), t(from + len)));
        }
    }
}
