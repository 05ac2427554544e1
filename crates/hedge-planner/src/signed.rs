//! The broker's signed commitments as a plan's `existing` contracts (for `hedge plan --existing FILE` and
//! `--existing-from URL`, and for rolling re-planning). Pure: the CLI fetches or reads the broker's list
//! (`GET /v1/commitments`) and hands over [`hedge_core::Commitment`]s.
//!
//! A broker commitment `[start, end)` is paid `gpus × per_gpu_hour` every hour. As a plan's contract it is
//! rounded to the plan's grid: it starts in the month whose first instant is nearest `start` (a start after
//! the middle of a month counts from the next month), and lasts `round((end − start) / period_hours)`
//! periods (at least one). Commitments that end by the horizon's start are left out (reported). A
//! commitment for a provider or accelerator the plan does not model is an error naming it: the plan could
//! not count it, and leaving it out silently would overcommit.

use crate::error::PlanError;
use crate::input::{ExistingContract, PlanningInput, YearMonth};
use hedge_core::{Commitment, Timestamp};

/// What [`add_signed`] did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SignedSummary {
    /// Commitments added as existing contracts.
    pub added: usize,
    /// Ids of commitments left out because they end by the horizon's start.
    pub ended: Vec<String>,
}

/// Years a commitment may start in (the broker accepts 2000 to 10 years ahead).
const YEARS: std::ops::RangeInclusive<i32> = 2000..=2200;

/// The month whose first instant is nearest `t`.
pub fn nearest_month(t: Timestamp) -> YearMonth {
    let (year, month, ..) = t.to_civil();
    let this = YearMonth { year, month };
    let next = crate::rolling::plus_months(this, 1);
    let (a, b) = (this.to_timestamp().unix(), next.to_timestamp().unix());
    if t.unix() - a > b - t.unix() {
        next
    } else {
        this
    }
}

/// Adds `commitments` to their providers' `existing` contracts in `input`.
pub fn add_signed(
    input: &mut PlanningInput,
    commitments: &[Commitment],
) -> Result<SignedSummary, PlanError> {
    let mut out = SignedSummary::default();
    let h0 = input.horizon.start.to_timestamp().unix();
    let per = i64::from(input.horizon.period_hours) * 3600;
    let mut adds = Vec::new();
    for (i, c) in commitments.iter().enumerate() {
        let f = format!("commitments[{i}]");
        let bad = |field: &str, reason: String| PlanError::Invalid {
            field: format!("{f}.{field}"),
            reason: format!("{} ({}): {reason}", c.id.as_str(), c.provider.as_str()),
        };
        let p = input.provider_index(&c.provider).ok_or_else(|| {
            bad(
                "provider",
                format!(
                    "{} is not a provider of the plan (add it, or leave this commitment out)",
                    c.provider.as_str()
                ),
            )
        })?;
        let a = input.accelerator_index(&c.accelerator).ok_or_else(|| {
            bad(
                "accelerator",
                format!("{} is not an accelerator of the plan", c.accelerator),
            )
        })?;
        if c.end <= c.start {
            return Err(bad(
                "end",
                format!("must be after start ({} <= {})", c.end, c.start),
            ));
        }
        let (sy, ..) = c.start.to_civil();
        let (ey, ..) = c.end.to_civil();
        if !YEARS.contains(&sy) || !YEARS.contains(&ey) {
            return Err(bad(
                "start",
                format!("{} to {} is outside the years 2000 to 2200", c.start, c.end),
            ));
        }
        if c.gpus == 0 {
            return Err(bad("gpus", "must be at least 1".into()));
        }
        if c.per_gpu_hour.hourly().micros() < 0 {
            return Err(bad("per_gpu_hour", "must not be negative".into()));
        }
        if c.end.unix() <= h0 {
            out.ended.push(c.id.as_str().to_owned());
            continue;
        }
        let len = c.end.unix() - c.start.unix();
        let term_periods = ((len + per / 2) / per).max(1) as usize;
        adds.push((
            p,
            ExistingContract {
                accelerator: a,
                gpus: c.gpus,
                start: nearest_month(c.start),
                term_periods,
                rate: c.per_gpu_hour,
            },
        ));
    }
    for (p, e) in adds {
        input.providers[p].existing.push(e);
        out.added += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_plan_yaml;
    use hedge_core::{Accelerator, CommitmentId, Money, ProviderId, Rate};
    use proptest::prelude::*;

    const PLAN: &str = "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 12, period_hours: 730}
accelerators: [H100]
demand:
  - {scenario: base, probability: 1, gpus: {H100: [16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16]}}
providers:
  - name: aws
    on_demand: {H100: 6}
  - name: lambda
    on_demand: {H100: 3}
";

    fn c(
        id: &str,
        provider: &str,
        accel: &str,
        gpus: u32,
        micros: i64,
        start: Timestamp,
        end: Timestamp,
    ) -> Commitment {
        Commitment {
            id: CommitmentId::new(id),
            provider: ProviderId::new(provider),
            accelerator: Accelerator::parse(accel).unwrap(),
            region: None,
            gpus,
            per_gpu_hour: Rate::per_hour(Money::from_micros(micros)),
            start,
            end,
        }
    }

    #[test]
    fn broker_commitments_become_existing_contracts_on_the_plan_grid() {
        let mut input = parse_plan_yaml(PLAN).unwrap();
        let d = Timestamp::from_ymd;
        let list = [
            // Signed 2026-11-20 for a year (365 days = 12.0 periods of 730 h): starts 2026-12, 12 periods.
            c(
                "c1",
                "lambda",
                "H100",
                8,
                2_500_000,
                d(2026, 11, 20),
                d(2027, 11, 20),
            ),
            // Over before the horizon: left out.
            c(
                "old",
                "aws",
                "H100",
                4,
                4_000_000,
                d(2025, 1, 1),
                d(2026, 1, 1),
            ),
        ];
        let s = add_signed(&mut input, &list).unwrap();
        assert_eq!(
            s,
            SignedSummary {
                added: 1,
                ended: vec!["old".into()]
            }
        );
        let e = &input.providers[1].existing[0];
        assert_eq!(
            (e.start, e.term_periods, e.gpus, e.rate.hourly().micros()),
            (
                YearMonth {
                    year: 2026,
                    month: 12
                },
                12,
                8,
                2_500_000
            )
        );
        assert_eq!(e.active_periods(&input.horizon), 0..11);
        let err = |list: &[Commitment]| {
            add_signed(&mut parse_plan_yaml(PLAN).unwrap(), list)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[list[0].clone(), c("x", "gcp", "H100", 1, 1, d(2027, 1, 1), d(2028, 1, 1))]),
            "commitments[1].provider: x (gcp): gcp is not a provider of the plan (add it, or leave this commitment out)"
        );
        assert_eq!(
            err(&[c("y", "aws", "A100", 1, 1, d(2027, 1, 1), d(2028, 1, 1))]),
            "commitments[0].accelerator: y (aws): A100 is not an accelerator of the plan"
        );
        assert!(
            err(&[c("z", "aws", "H100", 1, 1, d(2027, 1, 1), d(2027, 1, 1))])
                .starts_with("commitments[0].end: z (aws): must be after start")
        );
    }

    #[test]
    fn nearest_month_rounds_at_the_middle() {
        let d = Timestamp::from_ymd;
        assert_eq!(
            nearest_month(d(2027, 1, 1)),
            YearMonth {
                year: 2027,
                month: 1
            }
        );
        assert_eq!(
            nearest_month(d(2027, 1, 16)),
            YearMonth {
                year: 2027,
                month: 1
            }
        );
        assert_eq!(
            nearest_month(d(2027, 1, 17)),
            YearMonth {
                year: 2027,
                month: 2
            }
        );
        assert_eq!(
            nearest_month(d(2027, 12, 31)),
            YearMonth {
                year: 2028,
                month: 1
            }
        );
    }

    proptest! {
        /// Outside input (any instants, rates, names): never a panic; either every commitment is taken
        /// (each active or owed in the horizon, at least one period long) or the error names a field of it.
        #[test]
        fn any_broker_list_is_taken_or_refused_with_a_field(
            items in proptest::collection::vec((0usize..3, 0usize..2, 0u32..100, any::<i64>(), any::<i64>(), -5i64..5_000_000_000), 0..6),
        ) {
            let providers = ["aws", "lambda", "gcp"];
            let accels = ["H100", "A100"];
            let list: Vec<Commitment> = items
                .iter()
                .enumerate()
                .map(|(i, &(p, a, g, s, e, r))| {
                    // Half the instants near the horizon, half anywhere in i64.
                    let near = |x: i64| if x % 2 == 0 { Timestamp(1_700_000_000 + x.rem_euclid(200_000_000)) } else { Timestamp(x) };
                    c(&format!("c{i}"), providers[p], accels[a], g, r, near(s), near(e))
                })
                .collect();
            let mut input = parse_plan_yaml(PLAN).unwrap();
            match add_signed(&mut input, &list) {
                Ok(s) => {
                    prop_assert_eq!(s.added + s.ended.len(), list.len());
                    for p in &input.providers {
                        for e in &p.existing {
                            prop_assert!(e.term_periods >= 1 && e.gpus >= 1);
                            prop_assert!(e.periods_owed(&input.horizon) <= e.term_periods as u64);
                        }
                    }
                }
                Err(e) => prop_assert!(e.to_string().starts_with("commitments["), "{}", e),
            }
        }
    }
}
