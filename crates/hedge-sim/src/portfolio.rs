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
//! Both become [`hedge_core::Commitment`]s; everything else in the file is ignored.

use crate::error::SimError;
use crate::outage::parse_time;
use hedge_core::{Accelerator, Commitment, CommitmentId, ProviderId, Rate, RegionId, Timestamp};
use serde_json::Value;
use std::path::Path;

pub fn load(path: &Path) -> Result<Vec<Commitment>, SimError> {
    let text = std::fs::read_to_string(path).map_err(|e| SimError::read(path, e))?;
    parse(path, &text)
}

pub fn parse(file: &Path, text: &str) -> Result<Vec<Commitment>, SimError> {
    let bad = |reason: String| SimError::BadPortfolio { file: file.into(), reason };
    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let (list, horizon) = match &v {
        Value::Array(a) => (a, None),
        Value::Object(o) => (
            o.get("commitments").and_then(|c| c.as_array()).ok_or_else(|| bad("no \"commitments\" array".into()))?,
            o.get("horizon"),
        ),
        _ => return Err(bad("expected an object or an array".into())),
    };
    let horizon = horizon
        .map(|h| -> Result<(Timestamp, i64), SimError> {
            let start = h.get("start").and_then(|s| s.as_str()).ok_or_else(|| bad("horizon.start: missing".into()))?;
            let start = parse_time(&format!("{start}-01")).map_err(|e| bad(format!("horizon.start: {e}")))?;
            let ph = h.get("period_hours").and_then(|p| p.as_u64()).filter(|p| *p > 0).ok_or_else(|| bad("horizon.period_hours: missing or zero".into()))?;
            Ok((start, ph as i64 * 3600))
        })
        .transpose()?;
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let f = |k: &str| c.get(k).filter(|x| !x.is_null());
        let field = |k: &str, reason: &str| bad(format!("commitments[{i}].{k}: {reason}"));
        let s = |k: &str| f(k).and_then(|x| x.as_str()).ok_or_else(|| field(k, "missing or not a string"));
        let provider = ProviderId::parse(s("provider")?);
        let accelerator = Accelerator::parse(s("accelerator")?).map_err(|e| field("accelerator", &e.to_string()))?;
        let gpus = f("gpus").and_then(|x| x.as_f64()).filter(|g| *g >= 1.0 && g.fract() == 0.0 && *g <= u32::MAX as f64).ok_or_else(|| field("gpus", "missing or not a positive whole number"))? as u32;
        let rate = f("rate").and_then(|x| x.as_f64()).ok_or_else(|| field("rate", "missing or not a number (USD per GPU-hour)"))?;
        let rate = Rate::from_usd_per_hour_f64(rate).map_err(|e| field("rate", &e.to_string()))?;
        let region = f("region").and_then(|x| x.as_str()).map(RegionId::new);
        let (start, end) = match horizon {
            Some((h0, per)) => {
                let n = |k: &str| f(k).and_then(|x| x.as_u64()).ok_or_else(|| field(k, "missing or not a whole number"));
                let (sp, tp) = (n("start_period")? as i64, n("term_periods")? as i64);
                if tp == 0 {
                    return Err(field("term_periods", "zero"));
                }
                (h0.plus_seconds(sp * per), h0.plus_seconds((sp + tp) * per))
            }
            None => {
                let t = |k: &str| parse_time(s(k)?).map_err(|e| field(k, &e));
                (t("start")?, t("end")?)
            }
        };
        if end <= start {
            return Err(field("end", "not after start"));
        }
        let id = f("id").and_then(|x| x.as_str()).map(CommitmentId::new).unwrap_or_else(|| CommitmentId::new(format!("c{i}-{provider}-{accelerator}")));
        out.push(Commitment { id, provider, accelerator, region, gpus, per_gpu_hour: rate, start, end });
    }
    Ok(out)
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
        assert_eq!((c[0].id.as_str(), c[0].gpus, c[0].region.as_ref().unwrap().as_str()), ("r1", 8, "us-central1"));
        let e = parse(Path::new("h.json"), r#"{"commitments":[{"provider":"gcp","accelerator":"H100","gpus":0,"rate":1,"start":"2027-01-01","end":"2027-02-01"}]}"#).unwrap_err();
        assert_eq!(e.to_string(), "portfolio h.json: commitments[0].gpus: missing or not a positive whole number");
    }
}
