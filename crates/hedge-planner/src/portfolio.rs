//! A portfolio: the new commitments a plan proposes (or a user wants evaluated), in the JSON shape every
//! consumer reads, plus the pure conversion into [`hedge_core::Commitment`]s.
//!
//! # JSON format (`hedge plan --format json`, and the input of `--evaluate`)
//! ```json
//! {
//!   "horizon": {"start": "2027-01", "periods": 24, "period_hours": 730},
//!   "expected_cost_usd": 123456.78,
//!   "commitments": [
//!     {"provider": "azure", "accelerator": "H100", "term_periods": 12, "start_period": 0,
//!      "gpus": 1024, "rate": 4.19}
//!   ]
//! }
//! ```
//! `start_period` counts from the horizon start (0 = the first period); a commitment runs for
//! `term_periods` periods of `period_hours` hours and is paid `gpus × rate` every hour of it. `rate` is
//! $/GPU-hour. A report has more fields (see `PlanReport`); a portfolio file needs only `commitments`.

use crate::error::PlanError;
use crate::input::{Horizon, PlanningInput};
use hedge_core::{Accelerator, Commitment, ProviderId, Rate};
use serde::{Deserialize, Serialize};

/// One new commitment (the type lives in `hedge_core::portfolio`, where plans are read without the solver).
pub use hedge_core::PlannedCommitment;

/// A set of new commitments.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct Portfolio {
    pub commitments: Vec<PlannedCommitment>,
}

/// A commitment resolved against a planning input: dense indices, integer rate.
#[derive(Clone, PartialEq, Debug)]
pub struct Resolved {
    pub provider: usize,
    pub accelerator: usize,
    pub term_periods: usize,
    pub start_period: usize,
    pub gpus: u32,
    pub rate: Rate,
}

#[derive(Deserialize)]
struct PortfolioFile {
    commitments: Vec<PlannedCommitment>,
}

impl Portfolio {
    /// Reads a portfolio from JSON or YAML (a plan report is a valid portfolio file).
    pub fn parse(text: &str) -> Result<Portfolio, PlanError> {
        let de = serde_norway::Deserializer::from_str(text);
        let f: PortfolioFile =
            serde_path_to_error::deserialize(de).map_err(|e| PlanError::Invalid {
                field: format!("portfolio {}", e.path()),
                reason: crate::parse::strip_location_prefix(e.into_inner().to_string()),
            })?;
        Ok(Portfolio {
            commitments: f.commitments,
        })
    }

    /// Checks every commitment names a provider and accelerator of the input, a positive rate, and a start
    /// inside the horizon.
    pub fn resolve(&self, input: &PlanningInput) -> Result<Vec<Resolved>, PlanError> {
        let mut out = Vec::new();
        for (i, c) in self.commitments.iter().enumerate() {
            let f = format!("commitments[{i}]");
            let p = input
                .provider_index(&ProviderId::parse(c.provider.as_str()))
                .ok_or_else(|| PlanError::Invalid {
                    field: format!("{f}.provider"),
                    reason: format!("{} is not a provider of the plan", c.provider),
                })?;
            let acc =
                Accelerator::parse(c.accelerator.as_str()).map_err(|e| PlanError::Invalid {
                    field: format!("{f}.accelerator"),
                    reason: e.to_string(),
                })?;
            let a = input
                .accelerator_index(&acc)
                .ok_or_else(|| PlanError::Invalid {
                    field: format!("{f}.accelerator"),
                    reason: format!("{acc} is not an accelerator of the plan"),
                })?;
            if c.term_periods == 0 {
                return Err(PlanError::Invalid {
                    field: format!("{f}.term_periods"),
                    reason: "must be at least 1".into(),
                });
            }
            if c.start_period >= input.horizon.periods {
                return Err(PlanError::Invalid {
                    field: format!("{f}.start_period"),
                    reason: format!("must be below {}", input.horizon.periods),
                });
            }
            let rate = Rate::from_usd_per_hour_f64(c.rate)
                .ok()
                .filter(|r| *r > Rate::ZERO)
                .ok_or_else(|| PlanError::Invalid {
                    field: format!("{f}.rate"),
                    reason: format!("must be positive (got {})", c.rate),
                })?;
            out.push(Resolved {
                provider: p,
                accelerator: a,
                term_periods: c.term_periods,
                start_period: c.start_period,
                gpus: c.gpus,
                rate,
            });
        }
        Ok(out)
    }
}

/// Turns a plan's commitments into domain [`Commitment`]s: `hedge_core::portfolio::plan_commitments` on
/// the horizon's calendar (ids `plan-<provider>-<accelerator>-<term>p-<start>-<index>`, unique).
pub fn to_commitments(horizon: &Horizon, commitments: &[PlannedCommitment]) -> Vec<Commitment> {
    hedge_core::portfolio::plan_commitments(&horizon.calendar(), commitments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::YearMonth;
    use hedge_core::Timestamp;

    #[test]
    fn converts_to_domain_commitments() {
        let h = Horizon {
            start: YearMonth {
                year: 2027,
                month: 1,
            },
            periods: 24,
            period_hours: 730,
            start_periods: 24,
        };
        let p = Portfolio::parse(
            r#"{"commitments": [{"provider": "azure", "accelerator": "H100", "term_periods": 12, "start_period": 2, "gpus": 64, "rate": 4.19}]}"#,
        )
        .unwrap();
        let cs = to_commitments(&h, &p.commitments);
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].id.as_str(), "plan-azure-H100-12p-2-0");
        assert_eq!(
            cs[0].start,
            Timestamp::from_ymd(2027, 1, 1).plus_seconds(2 * 730 * 3600)
        );
        assert_eq!(cs[0].end.unix() - cs[0].start.unix(), 12 * 730 * 3600);
        assert_eq!(
            cs[0].per_gpu_hour,
            Rate::from_usd_per_hour_f64(4.19).unwrap()
        );
    }

    #[test]
    fn bad_portfolio_names_field() {
        let e = Portfolio::parse(r#"{"commitments": [{"provider": "azure"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("commitments[0]"), "{e}");
    }
}
