//! The broker's side of the ledger: its settings, the configured prices as price versions, the live view
//! (booked segments plus in-flight attempts accrued up to now), budget spend with reservations, and the
//! FOCUS export's row stream. The rules themselves are `hedge_core::ledger` and `hedge_core::focus`;
//! booking is the store's (an attempt's final status writes its segments in the same transaction).
//!
//! Configuration (`ledger:` in the server config, every key optional):
//!
//! ```yaml
//! ledger:
//!   reserve_hours: 1              # what a launch reserves against its team's budget: this many hours of the
//!                                 # placement's hourly cost (jobs carry no time limit yet); a running attempt
//!                                 # keeps the rest of its current reservation period reserved and starts a
//!                                 # new period, reserving again, each time one is used up
//!   commitment_fees: usage_share  # or { owner: TEAM }: who pays a commitment's fee. usage_share: each team
//!                                 # its amortized use, the unused rest split in proportion to use (no
//!                                 # team when nobody used it); owner: all of it to TEAM
//! ```

use crate::config::{ProviderConfig, Sells};
use crate::Broker;
use hedge_core::focus::{CsvWriter, Exporter, FocusVersion};
use hedge_core::ledger::{self, FeeAllocation, PriceBook, PriceVersion, Segment};
use hedge_core::{Market, Money, TeamId, Timestamp};
use hedge_store::{month_range, span_of, StoreError};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// The validated `ledger:` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerSettings {
    /// Seconds of a placement's hourly cost reserved against the team's budget at launch, and the period by
    /// which a running attempt's reservation is extended.
    pub reserve_seconds: u64,
    pub commitment_fees: FeeAllocation,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            reserve_seconds: 3600,
            commitment_fees: FeeAllocation::UsageShare,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLedger {
    #[serde(default)]
    reserve_hours: Option<f64>,
    #[serde(default)]
    commitment_fees: Option<RawFees>,
}

/// `usage_share`, or `{ owner: TEAM }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawFees {
    Name(String),
    Owner { owner: String },
}

impl RawLedger {
    /// Validates the section; an error is `(field, reason)`.
    pub(crate) fn validate(self) -> Result<LedgerSettings, (String, String)> {
        let mut s = LedgerSettings::default();
        if let Some(h) = self.reserve_hours {
            if !(h.is_finite() && h > 0.0 && h <= 24.0 * 366.0) {
                return Err((
                    "ledger.reserve_hours".into(),
                    format!("{h} must be more than 0 and at most a year of hours"),
                ));
            }
            s.reserve_seconds = ((h * 3600.0).round() as u64).max(1);
        }
        match self.commitment_fees {
            None => {}
            Some(RawFees::Name(n)) if n == "usage_share" => {
                s.commitment_fees = FeeAllocation::UsageShare
            }
            Some(RawFees::Name(n)) => {
                return Err((
                    "ledger.commitment_fees".into(),
                    format!("{n:?} is not usage_share or {{ owner: TEAM }}"),
                ));
            }
            Some(RawFees::Owner { owner }) if owner.trim().is_empty() => {
                return Err((
                    "ledger.commitment_fees.owner".into(),
                    "is empty: name the team that pays".into(),
                ));
            }
            Some(RawFees::Owner { owner }) => {
                s.commitment_fees = FeeAllocation::Owner(TeamId::new(owner.trim()))
            }
        }
        Ok(s)
    }
}

/// The configured providers' prices as versions in force from `now` (the store keeps a version only when the
/// price changed).
pub fn config_prices(
    providers: &[ProviderConfig],
    catalog: &hedge_core::Catalog,
    now: Timestamp,
) -> Vec<PriceVersion> {
    let mut out = Vec::new();
    for p in providers {
        match &p.sells {
            Sells::Owned {
                on_demand_per_gpu_hour,
                spot_per_gpu_hour,
                ..
            } => {
                out.push(PriceVersion {
                    provider: p.name.clone(),
                    market: Market::OnDemand,
                    from: now,
                    per_gpu_hour: *on_demand_per_gpu_hour,
                });
                if let Some(s) = spot_per_gpu_hour {
                    out.push(PriceVersion {
                        provider: p.name.clone(),
                        market: Market::Spot,
                        from: now,
                        per_gpu_hour: *s,
                    });
                }
            }
            // A catalog provider's price differs per offer: one series per (region, instance type), at the
            // offer's per-GPU price (the first zone's, where zones differ).
            Sells::Catalog { .. } => {
                let mut seen = std::collections::BTreeSet::new();
                for o in catalog.offers().iter().filter(|o| o.provider == p.name) {
                    let Some(acc) = o.accelerator.as_ref().filter(|a| a.count > 0) else {
                        continue;
                    };
                    let key = ledger::offer_price_key(
                        &p.name,
                        o.location.region().as_str(),
                        &o.instance_type,
                    );
                    if !seen.insert(key.clone()) {
                        continue;
                    }
                    let per_gpu = |r: hedge_core::Rate| {
                        hedge_core::Rate::per_hour(Money::from_micros(
                            r.hourly().micros() / i64::from(acc.count),
                        ))
                    };
                    if let Some(od) = o.prices.on_demand {
                        out.push(PriceVersion {
                            provider: key.clone(),
                            market: Market::OnDemand,
                            from: now,
                            per_gpu_hour: per_gpu(od),
                        });
                    }
                    if let Some(sp) = o.prices.spot {
                        out.push(PriceVersion {
                            provider: key,
                            market: Market::Spot,
                            from: now,
                            per_gpu_hour: per_gpu(sp),
                        });
                    }
                }
            }
        }
    }
    out
}

/// An in-flight attempt priced up to now, with its job's time limit.
struct Live {
    span: ledger::AttemptSpan,
    segments: Vec<Segment>,
    time_limit: Option<u64>,
}

/// In-flight attempts, each with its team, priced up to `now`: what they have accrued, never stored.
async fn live(b: &Broker, book: &PriceBook, now: Timestamp) -> Result<Vec<Live>, StoreError> {
    let attempts = b.store.in_flight_attempts().await?;
    if attempts.is_empty() {
        return Ok(vec![]);
    }
    // The jobs holding capacity in one read; an orphan of a job in another state is looked up alone.
    let mut jobs: HashMap<hedge_core::JobId, (TeamId, Option<u64>)> = b
        .store
        .jobs_in_states(&[
            hedge_core::JobState::Launching,
            hedge_core::JobState::Running,
            hedge_core::JobState::Cancelling,
        ])
        .await?
        .into_iter()
        .map(|j| (j.id, (j.team, j.spec.time_limit_seconds)))
        .collect();
    let mut out = Vec::new();
    for a in attempts {
        let (team, time_limit) = match jobs.get(&a.job) {
            Some(t) => t.clone(),
            None => {
                let j = b.store.job(a.job).await?;
                let t = (j.team, j.spec.time_limit_seconds);
                jobs.insert(a.job, t.clone());
                t
            }
        };
        let span = span_of(&a, team);
        let segments = ledger::segments(book, &span, now.max(a.created_at));
        out.push(Live {
            span,
            segments,
            time_limit,
        });
    }
    Ok(out)
}

/// Running attempts' segments accrued up to `now` (not stored).
pub async fn live_segments(b: &Broker, now: Timestamp) -> Result<Vec<Segment>, StoreError> {
    let book = PriceBook::new(b.store.price_versions().await?);
    Ok(live(b, &book, now)
        .await?
        .into_iter()
        .flat_map(|l| l.segments)
        .collect())
}

/// Every booked segment overlapping `[from, to)`, plus running attempts accrued to `now`.
pub async fn segments_in(
    b: &Broker,
    team: Option<&TeamId>,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
) -> Result<Vec<Segment>, StoreError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = b
            .store
            .ledger_segments(team, from, to, after, 10_000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.1.start, last.0));
        out.extend(page.into_iter().map(|(_, s)| s));
    }
    out.extend(
        live_segments(b, now)
            .await?
            .into_iter()
            .filter(|s| team.is_none_or(|t| &s.team == t) && s.seconds_in(from, to) > 0),
    );
    Ok(out)
}

/// A team's month against its budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetUse {
    /// Booked usage in the month plus running attempts' accrual in the month.
    pub spent: Money,
    /// The rest of running attempts' current reservation periods.
    pub reserved: Money,
}

/// What each team has used of this month's budget at `now`: booked usage in the month, running attempts'
/// accrual in the month, and the rest of their current reservation period (a reservation is this many
/// seconds of the attempt's rate, renewed each time it is used up). Commitment fees are not budgeted here:
/// they are paid whether jobs run or not.
pub async fn budget_spend(
    b: &Broker,
    now: Timestamp,
) -> Result<HashMap<TeamId, BudgetUse>, StoreError> {
    let (y, m, ..) = now.to_civil();
    let (from, to) = month_range(y, m)?;
    let mut out: HashMap<TeamId, BudgetUse> = b
        .store
        .booked_spend_by_team(from, to)
        .await?
        .into_iter()
        .map(|(t, m)| {
            (
                t,
                BudgetUse {
                    spent: m,
                    reserved: Money::ZERO,
                },
            )
        })
        .collect();
    let book = PriceBook::new(b.store.price_versions().await?);
    for l in live(b, &book, now).await? {
        let e = out.entry(l.span.team.clone()).or_default();
        e.spent += l.segments.iter().map(|s| s.billed_in(from, to)).sum();
        e.reserved += reserved_ahead(
            &book,
            &l.span,
            now,
            l.time_limit,
            b.config.ledger.reserve_seconds,
        );
    }
    Ok(out)
}

/// The ledger's Prometheus gauges at `now`: per team, the rate its in-flight attempts bill and the budget
/// left this month; per active commitment, GPUs in use over its GPUs. Dollars as floats here only, for
/// Prometheus, through `Money::to_usd_f64`.
pub async fn gauges(
    b: &Broker,
    now: Timestamp,
) -> Result<(Vec<crate::metrics::TeamGauge>, Vec<(String, f64)>), StoreError> {
    let book = PriceBook::new(b.store.price_versions().await?);
    let mut rate: HashMap<TeamId, Money> = HashMap::new();
    for l in live(b, &book, now).await? {
        let (billed, _) = book.rates_at(&l.span.provider, l.span.market, now);
        *rate.entry(l.span.team.clone()).or_default() += ledger::cost(billed, l.span.gpus, 3600);
    }
    let spent = budget_spend(b, now).await?;
    let teams = b
        .store
        .teams()
        .await?
        .into_iter()
        .map(|t| crate::metrics::TeamGauge {
            spend_rate_usd_per_hour: rate.get(&t.id).copied().unwrap_or(Money::ZERO).to_usd_f64(),
            budget_remaining_usd: t.monthly_budget.map(|m| {
                let u = spent.get(&t.id).copied().unwrap_or_default();
                (m - u.spent - u.reserved).to_usd_f64()
            }),
            team: t.id.to_string(),
        })
        .collect();
    let commitments = b
        .store
        .commitment_usage()
        .await?
        .into_iter()
        .filter(|u| u.commitment.active_at(now) && u.commitment.gpus > 0)
        .map(|u| {
            (
                u.commitment.id.to_string(),
                f64::from(u.gpus_in_use) / f64::from(u.commitment.gpus),
            )
        })
        .collect();
    Ok((teams, commitments))
}

/// The part of a running attempt's reservation not yet accrued, at the rate in force now: up to its job's
/// time limit while it is within it; otherwise (no limit, or past it) up to the end of the current
/// reservation period (periods of `period` seconds from its start, or from the end of the limit).
pub fn reserved_ahead(
    book: &PriceBook,
    span: &ledger::AttemptSpan,
    now: Timestamp,
    time_limit: Option<u64>,
    period: u64,
) -> Money {
    let period = period.max(1) as i64;
    let elapsed = (now.unix() - span.start.unix()).max(0);
    let limit = time_limit.map_or(0, |l| l.min(i64::MAX as u64 / 4) as i64);
    let end = if elapsed < limit {
        span.start.unix() + limit
    } else {
        span.start.unix() + limit + ((elapsed - limit) / period + 1) * period
    };
    let (billed, _) = book.rates_at(&span.provider, span.market, now);
    ledger::cost(
        billed,
        span.gpus,
        (end - now.unix().max(span.start.unix())) as u64,
    )
}

/// Spend per team in `[from, to)` with commitment fees charged by the configured allocation, from the same
/// segments and rules the FOCUS export uses. `None` is fee charged to no team.
pub async fn spend_by_team(
    b: &Broker,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
) -> Result<(BTreeMap<Option<TeamId>, Money>, Money), StoreError> {
    let segs = segments_in(b, None, from, to, now).await?;
    let commitments = b.store.commitments().await?;
    let by_team = ledger::spend_by_team(
        &segs,
        &commitments,
        from,
        to,
        &b.config.ledger.commitment_fees,
    );
    let total = ledger::total(&segs, &commitments, from, to);
    Ok((by_team, total))
}

/// Streams a FOCUS CSV export of `[from, to)` into `tx`, a chunk of rows at a time: booked segments are read
/// a page at a time (keyset), running attempts accrue up to `now`, the fee rows come last. Memory is one
/// page of segments plus, per (commitment, month), the use per team.
pub async fn export_focus(
    b: &Broker,
    version: FocusVersion,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
    tx: tokio::sync::mpsc::Sender<Result<String, std::io::Error>>,
) -> Result<(), StoreError> {
    let w = CsvWriter::new(version);
    let mut ex = Exporter::new(
        b.store.commitments().await?,
        from,
        to,
        b.config.ledger.commitment_fees.clone(),
    );
    let mut buf = String::with_capacity(1 << 20);
    w.header_line(&mut buf);
    let mut rows = Vec::new();
    let mut after = None;
    let send = |buf: String| {
        let tx = tx.clone();
        async move { tx.send(Ok(buf)).await.is_ok() }
    };
    loop {
        let page = b
            .store
            .ledger_segments(None, from, to, after, 5_000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.1.start, last.0));
        for (_, s) in &page {
            rows.clear();
            ex.usage_rows(s, &mut rows);
            for r in &rows {
                w.row(r, &mut buf);
            }
        }
        if !send(std::mem::replace(&mut buf, String::with_capacity(1 << 20))).await {
            return Ok(()); // the client went away
        }
    }
    for s in live_segments(b, now).await? {
        rows.clear();
        ex.usage_rows(&s, &mut rows);
        for r in &rows {
            w.row(r, &mut buf);
        }
    }
    for r in ex.fee_rows() {
        w.row(&r, &mut buf);
    }
    send(buf).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hedge_core::Rate;

    #[test]
    fn settings_parse_and_name_the_field() {
        let ok: RawLedger =
            serde_norway::from_str("reserve_hours: 2\ncommitment_fees: { owner: infra }").unwrap();
        assert_eq!(
            ok.validate().unwrap(),
            LedgerSettings {
                reserve_seconds: 7200,
                commitment_fees: FeeAllocation::Owner("infra".into())
            }
        );
        let share: RawLedger = serde_norway::from_str("commitment_fees: usage_share").unwrap();
        assert_eq!(
            share.validate().unwrap().commitment_fees,
            FeeAllocation::UsageShare
        );
        let bad: RawLedger = serde_norway::from_str("reserve_hours: 0").unwrap();
        assert_eq!(bad.validate().unwrap_err().0, "ledger.reserve_hours");
        let empty: RawLedger = serde_norway::from_str("commitment_fees: { owner: ' ' }").unwrap();
        assert_eq!(
            empty.validate().unwrap_err().0,
            "ledger.commitment_fees.owner"
        );
        let other: RawLedger = serde_norway::from_str("commitment_fees: everyone").unwrap();
        assert_eq!(other.validate().unwrap_err().0, "ledger.commitment_fees");
    }

    #[test]
    fn a_reservation_is_renewed_each_period() {
        let book = PriceBook::new([PriceVersion {
            provider: "a".into(),
            market: Market::OnDemand,
            from: Timestamp(0),
            per_gpu_hour: Rate::per_hour(Money::from_usd(2)),
        }]);
        let span = ledger::AttemptSpan {
            attempt: "k".into(),
            job: hedge_core::JobId(1),
            attempt_no: 1,
            team: "ml".into(),
            provider: "a".into(),
            region: None,
            zone: None,
            instance_type: "gpu".into(),
            market: Market::OnDemand,
            commitment: None,
            accelerator: None,
            gpus: 2,
            start: Timestamp(1000),
        };
        // 2 GPUs at $2: a 1 h period reserves $4. At start all of it is ahead; 15 min in, $3 is ahead (and $1
        // accrued); at exactly 1 h a new period starts: $4 ahead again.
        assert_eq!(
            reserved_ahead(&book, &span, Timestamp(1000), None, 3600),
            Money::from_usd(4)
        );
        assert_eq!(
            reserved_ahead(&book, &span, Timestamp(1900), None, 3600),
            Money::from_usd(3)
        );
        assert_eq!(
            reserved_ahead(&book, &span, Timestamp(4600), None, 3600),
            Money::from_usd(4)
        );
        // A 2 h time limit: 30 min in, 1.5 h ($6) is ahead; past the limit, 1 h periods again.
        assert_eq!(
            reserved_ahead(&book, &span, Timestamp(2800), Some(7200), 3600),
            Money::from_usd(6)
        );
        assert_eq!(
            reserved_ahead(&book, &span, Timestamp(1000 + 7200 + 900), Some(7200), 3600),
            Money::from_usd(3)
        );
        let committed = ledger::AttemptSpan {
            market: Market::Committed,
            ..span
        };
        assert_eq!(
            reserved_ahead(&book, &committed, Timestamp(1900), None, 3600),
            Money::ZERO
        );
    }
}
