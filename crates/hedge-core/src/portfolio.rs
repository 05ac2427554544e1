//! Portfolios: the one place a list of commitments is read into [`Commitment`]s. Two JSON shapes:
//!
//! 1. **a plan** (`hedge plan --format json`, the `hedge.plan-report/v1` report, or any object with
//!    `horizon` and planned `commitments`): `horizon: {start: "YYYY-MM", period_hours, ..}` and
//!    `commitments: [{provider, accelerator, term_periods, start_period, gpus, rate}]`, `rate` in USD per
//!    GPU-hour. Option *i* runs from `start + start_period × period_hours` for `term_periods ×
//!    period_hours` hours ([`plan_commitments`]); its id is `plan-<provider>-<accel>-<term>p-<start>-<i>`,
//!    so two options with the same provider, accelerator, term and start stay two commitments;
//! 2. **portfolio format v1** (hand-written): `{"commitments": [...]}` or a bare array of
//!    `{"id"?, "provider", "accelerator", "region"?, "gpus", "rate", "start", "end"}`, `rate` in USD per
//!    GPU-hour, `start`/`end` in the date grammar of [`Timestamp::parse_civil`] (UTC, end exclusive).
//!
//! Other fields are ignored. Pure: callers read the file.

use crate::accel::Accelerator;
use crate::commitment::Commitment;
use crate::ids::{CommitmentId, ProviderId, RegionId};
use crate::money::Rate;
use crate::time::{Timestamp, YearMonth};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What is wrong, and where (`commitments[2].gpus`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct PortfolioError {
    pub field: String,
    pub reason: String,
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> PortfolioError {
    PortfolioError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A plan's calendar: period *t* begins `t × period_hours` after the first of `start`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PlanHorizon {
    pub start: YearMonth,
    pub period_hours: u32,
}

impl PlanHorizon {
    /// The instant period `t` begins (exact hours, not calendar months).
    pub fn period_start(&self, t: i64) -> Timestamp {
        self.start
            .to_timestamp()
            .plus_seconds(t.saturating_mul(i64::from(self.period_hours) * 3600))
    }
}

/// One new commitment a plan proposes.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct PlannedCommitment {
    pub provider: ProviderId,
    pub accelerator: Accelerator,
    pub term_periods: usize,
    pub start_period: usize,
    pub gpus: u32,
    /// $/GPU-hour.
    pub rate: f64,
}

impl PlannedCommitment {
    pub fn rate(&self) -> Rate {
        Rate::from_usd_per_hour_f64(self.rate).unwrap_or(Rate::ZERO)
    }
}

/// A plan's commitments as domain [`Commitment`]s (region-free). Ids are
/// `plan-<provider>-<accelerator>-<term>p-<start>-<i>`, `i` the option's index in `commitments`: unique
/// and deterministic.
pub fn plan_commitments(
    horizon: &PlanHorizon,
    commitments: &[PlannedCommitment],
) -> Vec<Commitment> {
    commitments
        .iter()
        .enumerate()
        .map(|(i, c)| Commitment {
            id: CommitmentId::new(format!(
                "plan-{}-{}-{}p-{}-{i}",
                c.provider, c.accelerator, c.term_periods, c.start_period
            )),
            provider: c.provider.clone(),
            accelerator: c.accelerator.clone(),
            region: None,
            gpus: c.gpus,
            per_gpu_hour: c.rate(),
            start: horizon.period_start(c.start_period as i64),
            end: horizon.period_start((c.start_period + c.term_periods) as i64),
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum File {
    List(Vec<HandWritten>),
    Wrapped { commitments: Vec<HandWritten> },
}

/// One commitment of portfolio format v1.
#[derive(Deserialize)]
struct HandWritten {
    id: Option<String>,
    provider: String,
    accelerator: String,
    region: Option<String>,
    gpus: u32,
    rate: f64,
    start: String,
    end: String,
}

/// Reads a plan or a portfolio v1 list (see the module docs). Errors name the field.
pub fn parse_json(text: &str) -> Result<Vec<Commitment>, PortfolioError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| err("file", format!("not JSON: {e}")))?;
    // The shape decides the type, so errors can name the field (an untagged enum would only say "no
    // variant matched").
    let plan = v.get("horizon").is_some();
    if !(v.is_array() || v.get("commitments").is_some_and(|c| c.is_array())) {
        return Err(err("commitments", "missing: expected a plan (horizon + commitments), {\"commitments\": [...]} or an array"));
    }
    let de = |v: serde_json::Value| -> Result<File, PortfolioError> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let reason = e.into_inner().to_string();
            err(if path == "." { "file".to_owned() } else { path }, reason)
        })
    };
    let out = if plan {
        #[derive(Deserialize)]
        struct Plan {
            horizon: PlanHorizon,
            commitments: Vec<PlannedCommitment>,
        }
        let mut p: Plan = serde_path_to_error::deserialize(v)
            .map_err(|e| err(e.path().to_string(), e.into_inner().to_string()))?;
        check_plan(&p.horizon, &mut p.commitments)?;
        plan_commitments(&p.horizon, &p.commitments)
    } else {
        match de(v)? {
            File::List(l) | File::Wrapped { commitments: l } => hand_written(l)?,
        }
    };
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in out.iter().enumerate() {
        if let Some(j) = seen.insert(c.id.as_str(), i) {
            return Err(err(
                format!("commitments[{i}].id"),
                format!("{:?} is also the id of commitments[{j}]", c.id.as_str()),
            ));
        }
    }
    Ok(out)
}

/// Checks a plan's figures and normalises its provider and accelerator names (`AWS` → `aws`, aliases).
fn check_plan(h: &PlanHorizon, cs: &mut [PlannedCommitment]) -> Result<(), PortfolioError> {
    if h.period_hours == 0 {
        return Err(err("horizon.period_hours", "must be positive"));
    }
    for (i, c) in cs.iter_mut().enumerate() {
        let f = |k: &str| format!("commitments[{i}].{k}");
        c.provider = ProviderId::parse(c.provider.as_str());
        c.accelerator = Accelerator::parse(c.accelerator.as_str())
            .map_err(|e| err(f("accelerator"), e.to_string()))?;
        if c.term_periods == 0 {
            return Err(err(f("term_periods"), "must be at least 1"));
        }
        if c.gpus == 0 {
            return Err(err(f("gpus"), "must be a positive whole number"));
        }
        if Rate::from_usd_per_hour_f64(c.rate)
            .ok()
            .filter(|r| *r > Rate::ZERO)
            .is_none()
        {
            return Err(err(
                f("rate"),
                format!("must be positive USD per GPU-hour (got {})", c.rate),
            ));
        }
    }
    Ok(())
}

fn hand_written(list: Vec<HandWritten>) -> Result<Vec<Commitment>, PortfolioError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, c) in list.into_iter().enumerate() {
        let f = |k: &str| format!("commitments[{i}].{k}");
        let provider = ProviderId::parse(&c.provider);
        let accelerator =
            Accelerator::parse(&c.accelerator).map_err(|e| err(f("accelerator"), e.to_string()))?;
        if c.gpus == 0 {
            return Err(err(f("gpus"), "must be a positive whole number"));
        }
        let per_gpu_hour = Rate::from_usd_per_hour_f64(c.rate)
            .ok()
            .filter(|r| *r > Rate::ZERO)
            .ok_or_else(|| {
                err(
                    f("rate"),
                    format!("must be positive USD per GPU-hour (got {})", c.rate),
                )
            })?;
        let start = Timestamp::parse_civil(&c.start).map_err(|e| err(f("start"), e.to_string()))?;
        let end = Timestamp::parse_civil(&c.end).map_err(|e| err(f("end"), e.to_string()))?;
        if end <= start {
            return Err(err(f("end"), "not after start"));
        }
        let id =
            c.id.map(CommitmentId::new)
                .unwrap_or_else(|| CommitmentId::new(format!("c{i}-{provider}-{accelerator}")));
        out.push(Commitment {
            id,
            provider,
            accelerator,
            region: c.region.map(RegionId::new),
            gpus: c.gpus,
            per_gpu_hour,
            start,
            end,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_report() {
        let plan = r#"{"horizon":{"start":"2027-01","periods":12,"period_hours":730},
            "commitments":[{"provider":"AWS","accelerator":"H100","term_periods":12,"start_period":2,"gpus":64,"rate":2.5}],
            "total_cost":1}"#;
        let c = parse_json(plan).unwrap();
        assert_eq!(c[0].provider.as_str(), "aws");
        assert_eq!(c[0].id.as_str(), "plan-aws-H100-12p-2-0");
        assert_eq!(
            c[0].start,
            Timestamp::from_ymd(2027, 1, 1).plus_seconds(2 * 730 * 3600)
        );
        assert_eq!(c[0].end.unix() - c[0].start.unix(), 12 * 730 * 3600);
        assert_eq!(c[0].per_gpu_hour.to_string(), "$2.50/h");
    }

    #[test]
    fn two_identical_plan_options_stay_two_commitments() {
        let plan = r#"{"horizon":{"start":"2027-01","period_hours":730},"commitments":[
            {"provider":"aws","accelerator":"H100","term_periods":12,"start_period":0,"gpus":64,"rate":2.5},
            {"provider":"aws","accelerator":"H100","term_periods":12,"start_period":0,"gpus":8,"rate":2.7}]}"#;
        let c = parse_json(plan).unwrap();
        let ids: Vec<&str> = c.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["plan-aws-H100-12p-0-0", "plan-aws-H100-12p-0-1"]);
        assert_eq!((c[0].gpus, c[1].gpus), (64, 8));
        assert_eq!(parse_json(plan).unwrap(), c, "deterministic");
    }

    #[test]
    fn hand_written_lists() {
        let hand = r#"[{"id":"r1","provider":"gcp","accelerator":"h100","gpus":8,"rate":3,"start":"2027-01-01","end":"2027-07-01T12:00","region":"us-central1"}]"#;
        let c = parse_json(hand).unwrap();
        assert_eq!(
            (
                c[0].id.as_str(),
                c[0].gpus,
                c[0].region.as_ref().unwrap().as_str()
            ),
            ("r1", 8, "us-central1")
        );
        assert_eq!(c[0].end.to_string(), "2027-07-01T12:00:00Z");
        let wrapped = r#"{"about":"x","commitments":[{"provider":"gcp","accelerator":"H100","gpus":8,"rate":3,"start":"2027-01-01","end":"2027-02-01"}]}"#;
        assert_eq!(parse_json(wrapped).unwrap()[0].id.as_str(), "c0-gcp-H100");
    }

    #[test]
    fn errors_name_the_field() {
        let e = |t: &str| parse_json(t).unwrap_err().to_string();
        let one = |extra: &str| {
            format!(
                r#"{{"commitments":[{{"provider":"gcp","accelerator":"H100","gpus":8,"rate":1,"start":"2027-01-01","end":"2027-02-01"}},{{"provider":"gcp","accelerator":"H100","rate":1,"start":"2027-01-01","end":"2027-02-01",{extra}}}]}}"#
            )
        };
        assert_eq!(
            e(&one(r#""gpus":0"#)),
            "commitments[1].gpus: must be a positive whole number"
        );
        assert_eq!(
            e(&one(r#""gpus":8,"end":"2027-02-31""#)).split(": ").next(),
            Some("commitments[1].end")
        );
        assert!(e(&one(r#""gpus":8,"end":"2027-02-31""#))
            .ends_with("\"2027-02-31\" is not a real date-time"));
        assert_eq!(
            e(&one(r#""gpus":8,"id":"c0-gcp-H100""#)),
            "commitments[1].id: \"c0-gcp-H100\" is also the id of commitments[0]"
        );
        assert_eq!(
            e(
                r#"{"horizon":{"start":"2027-01","period_hours":730},"commitments":[{"provider":"aws","accelerator":"H100","term_periods":0,"start_period":0,"gpus":1,"rate":1}]}"#
            ),
            "commitments[0].term_periods: must be at least 1"
        );
        assert!(
            e(r#"{"horizon":{"start":"2027-13","period_hours":730},"commitments":[]}"#)
                .starts_with("horizon.start: ")
        );
        assert!(e(r#"{"horizon":{"start":"2027-01","period_hours":730},"commitments":[{"provider":"aws"}]}"#).starts_with("commitments[0]"));
        assert!(e("{}").starts_with("commitments: missing"));
        assert!(e("nope").starts_with("file: not JSON"));
    }
}
