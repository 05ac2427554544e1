//! Portfolios: the commitments a simulation runs with. `--portfolio FILE` accepts either
//!
//! 1. the planner's JSON report (`hedge plan --format json`): an object with
//!    `horizon: {start: "YYYY-MM", periods, period_hours}` and
//!    `commitments: [{provider, accelerator, term_periods, start_period, gpus, rate}]`, where `rate` is USD
//!    per GPU-hour; commitment *i* runs from `start + start_period × period_hours` for
//!    `term_periods × period_hours`; or
//! 2. a hand-written list, **portfolio format v1**: an object `{"commitments": [...]}` (or a bare array)
//!    of `{"id"?, "provider", "accelerator", "region"?, "gpus", "rate", "start", "end"}` with `rate` in USD
//!    per GPU-hour and `start`/`end` as `YYYY-MM-DD[THH:MM]` (UTC, end exclusive). See
//!    `examples/portfolios/`.
//!
//! Both become [`hedge_core::Commitment`]s in one place, `hedge_core::portfolio` (shared with the planner
//! and the server); everything else in the file is ignored.

use crate::error::SimError;
use hedge_core::Commitment;
use std::path::Path;

pub fn load(path: &Path) -> Result<Vec<Commitment>, SimError> {
    let text = std::fs::read_to_string(path).map_err(|e| SimError::read(path, e))?;
    parse(path, &text)
}

/// `hedge_core::portfolio::parse_json`, with the file named in the error.
pub fn parse(file: &Path, text: &str) -> Result<Vec<Commitment>, SimError> {
    hedge_core::portfolio::parse_json(text).map_err(|e| SimError::BadPortfolio {
        file: file.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planner_and_hand_written() {
        let plan = r#"{"horizon":{"start":"2027-01","periods":12,"period_hours":730},
            "commitments":[{"provider":"AWS","accelerator":"H100","term_periods":12,"start_period":0,"gpus":64,"rate":2.5}],
            "total_cost":1}"#;
        let c = parse(Path::new("p.json"), plan).unwrap();
        assert_eq!(c[0].provider.as_str(), "aws");
        assert_eq!(c[0].start.to_string(), "2027-01-01T00:00:00Z");
        assert_eq!(c[0].end.unix() - c[0].start.unix(), 12 * 730 * 3600);
        assert_eq!(c[0].per_gpu_hour.to_string(), "$2.50/h");
        let hand = r#"[{"id":"r1","provider":"gcp","accelerator":"h100","gpus":8,"rate":3,"start":"2027-01-01","end":"2027-07-01","region":"us-central1"}]"#;
        let c = parse(Path::new("h.json"), hand).unwrap();
        assert_eq!(
            (
                c[0].id.as_str(),
                c[0].gpus,
                c[0].region.as_ref().unwrap().as_str()
            ),
            ("r1", 8, "us-central1")
        );
        let e = parse(Path::new("h.json"), r#"{"commitments":[{"provider":"gcp","accelerator":"H100","gpus":0,"rate":1,"start":"2027-01-01","end":"2027-02-01"}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "portfolio h.json: commitments[0].gpus: must be a positive whole number"
        );
    }
}
