//! Spot availability traces: `{"metadata":{"gap_seconds":N, ...},"data":[...]}`.
//!
//! Two conventions exist in the shared data, and a loader that guessed wrong would invert every result:
//! - `spot-traces/` (skypilot-org/spot-traces, "Can't Be Late"): each value is the **number of instances
//!   available** at that tick (1 = available for single-node traces; up to 16 for multi-node ones).
//! - `h100-spot/conv/` (skynomad artifact, sky_spot simulator format): each value is **1 = preempted /
//!   unavailable, 0 = available**; these files carry `metadata.price_info` (sky_spot refuses traces
//!   without it), which is how [`load`] tells them apart. They may carry a per-tick `prices` array.
//!
//! The step is always `metadata.gap_seconds`, which differs between files (30 s to 600 s).

use crate::error::SimError;
use crate::queue::SimTime;
use hedge_core::Rate;
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Convention {
    /// Values are counts of available instances.
    AvailableCount,
    /// Values are 1 = preempted, 0 = available.
    Preempted,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpotTrace {
    pub name: String,
    pub gap_s: u32,
    pub convention: Convention,
    /// Instances available at each tick (already converted from the file's convention).
    pub available: Vec<u32>,
    /// Spot price per instance-hour at each tick, when the file has one.
    pub prices: Option<Vec<Rate>>,
    /// On-demand price per instance-hour named by the file (`metadata.price_info.on_demand_price`).
    pub on_demand: Option<Rate>,
    /// Flat spot price named by the file (`metadata.price_info.price`).
    pub spot_price: Option<Rate>,
}

impl SpotTrace {
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::read(path, e))?;
        let name = path.display().to_string();
        Self::parse(path, &text).map(|mut t| {
            t.name = name;
            t
        })
    }

    pub fn parse(file: &Path, text: &str) -> Result<Self, SimError> {
        let bad = |reason: String| SimError::BadFile {
            file: file.into(),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let meta = v
            .get("metadata")
            .and_then(|m| m.as_object())
            .ok_or_else(|| bad("no metadata object".into()))?;
        let gap = meta
            .get("gap_seconds")
            .and_then(|g| g.as_f64())
            .filter(|g| g.is_finite() && *g >= 1.0 && *g <= 86_400.0 * 30.0)
            .ok_or_else(|| {
                bad("metadata.gap_seconds is missing or not a positive number of seconds".into())
            })?
            .round() as u32;
        let price_info = meta.get("price_info");
        let convention = if price_info.is_some() {
            Convention::Preempted
        } else {
            Convention::AvailableCount
        };
        let data = v
            .get("data")
            .and_then(|d| d.as_array())
            .ok_or_else(|| bad("no data array".into()))?;
        if data.is_empty() {
            return Err(bad("data is empty".into()));
        }
        let mut available = Vec::with_capacity(data.len());
        for (i, x) in data.iter().enumerate() {
            let n = x
                .as_u64()
                .filter(|n| *n <= u32::MAX as u64)
                .ok_or_else(|| bad(format!("data[{i}]: {x} is not a whole non-negative count")))?;
            available.push(match convention {
                Convention::AvailableCount => n as u32,
                Convention::Preempted if n <= 1 => 1 - n as u32,
                Convention::Preempted => {
                    return Err(bad(format!(
                        "data[{i}]: {n} is not 0 or 1 (preempted convention)"
                    )))
                }
            });
        }
        let rate = |x: &serde_json::Value, what: &str| -> Result<Rate, SimError> {
            x.as_f64()
                .ok_or_else(|| bad(format!("{what}: {x} is not a number")))
                .and_then(|f| {
                    Rate::from_usd_per_hour_f64(f).map_err(|e| bad(format!("{what}: {e}")))
                })
        };
        let prices = match v.get("prices").and_then(|p| p.as_array()) {
            Some(p) if p.len() == available.len() => Some(
                p.iter()
                    .enumerate()
                    .map(|(i, x)| rate(x, &format!("prices[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(p) => {
                return Err(bad(format!(
                    "prices has {} entries, data has {}",
                    p.len(),
                    available.len()
                )))
            }
            None => None,
        };
        let pi = |k: &str| price_info.and_then(|p| p.get(k)).filter(|x| !x.is_null());
        let on_demand = pi("on_demand_price")
            .map(|x| rate(x, "price_info.on_demand_price"))
            .transpose()?;
        let spot_price = pi("price")
            .map(|x| rate(x, "price_info.price"))
            .transpose()?;
        Ok(SpotTrace {
            name: file.display().to_string(),
            gap_s: gap,
            convention,
            available,
            prices,
            on_demand,
            spot_price,
        })
    }

    /// Duration covered by the trace.
    pub fn span_s(&self) -> i64 {
        self.available.len() as i64 * self.gap_s as i64
    }
    /// Tick index at time `t` (seconds from the trace start), wrapping around at the end.
    pub fn tick(&self, t: SimTime) -> usize {
        (t.max(0) / self.gap_s as i64) as usize % self.available.len()
    }
    pub fn available_at(&self, t: SimTime) -> u32 {
        self.available[self.tick(t)]
    }
    /// Fraction of ticks with at least one instance available.
    pub fn availability(&self) -> f64 {
        self.available.iter().filter(|&&n| n > 0).count() as f64 / self.available.len() as f64
    }
    /// Times (seconds from start, within one pass of the trace) at which the available count changes, with
    /// the new count. The first entry is time 0.
    pub fn changes(&self) -> Vec<(SimTime, u32)> {
        let mut out = vec![(0, self.available[0])];
        for (i, w) in self.available.windows(2).enumerate() {
            if w[0] != w[1] {
                out.push(((i + 1) as i64 * self.gap_s as i64, w[1]));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions() {
        let a = SpotTrace::parse(
            Path::new("a.json"),
            r#"{"metadata":{"gap_seconds":195},"data":[0,1,1,0]}"#,
        )
        .unwrap();
        assert_eq!(a.convention, Convention::AvailableCount);
        assert_eq!(a.available, vec![0, 1, 1, 0]);
        assert_eq!(a.available_at(195 * 5), 1); // wraps: tick 1
        assert_eq!(a.changes(), vec![(0, 0), (195, 1), (585, 0)]);
        let p = SpotTrace::parse(
            Path::new("p.json"),
            r#"{"metadata":{"gap_seconds":600,"price_info":{"price":18.5,"on_demand_price":82.5}},"data":[1,0,0],"prices":[1,2,3]}"#,
        )
        .unwrap();
        assert_eq!(p.available, vec![0, 1, 1]);
        assert_eq!(p.on_demand.unwrap().to_string(), "$82.50/h");
        assert_eq!(p.prices.unwrap().len(), 3);
        for bad in [
            r#"{"metadata":{},"data":[1]}"#,
            r#"{"metadata":{"gap_seconds":5},"data":[-1]}"#,
            r#"{"metadata":{"gap_seconds":5},"data":[]}"#,
        ] {
            assert!(SpotTrace::parse(Path::new("b.json"), bad).is_err(), "{bad}");
        }
    }
}
