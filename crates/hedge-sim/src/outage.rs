//! Provider outages: scheduled (`azure@2027-03-01T00:00+72h`) or random, with time between failures and
//! time to repair drawn from distributions fitted to real incident data.
//!
//! ## The fit ([`fit_incidents`])
//! Input: `llm-service-outages/data/clean/incident/*/incident_stages.csv` (542 incidents of OpenAI,
//! Anthropic and Character.AI status pages, ICPE'25). Per service provider, incidents with
//! `incident_impact_level >= min_impact` are sorted by `start_timestamp`:
//! - **time between failures** (gaps between consecutive starts) is fitted with an **exponential**
//!   distribution by maximum likelihood: rate = 1 / mean gap (a Poisson failure process);
//! - **time to repair** (`close_timestamp - start_timestamp`) is fitted with a **log-normal** by maximum
//!   likelihood: μ, σ = mean and (population) standard deviation of ln(seconds). Repair times are heavy
//!   tailed (median well under the mean), which an exponential would misrepresent.
//!
//! [`RandomOutages`] then draws, per simulated provider and independently, alternating up-times
//! (exponential) and outages (log-normal) from the run's seed.

use crate::error::SimError;
use crate::queue::SimTime;
use crate::rng::SimRng;
use hedge_core::{ProviderId, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

/// One outage of a whole provider, in simulation time.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Outage {
    pub provider: ProviderId,
    pub start: SimTime,
    pub end: SimTime,
}

/// `PROVIDER@YYYY-MM-DDTHH:MM+DURATION` (duration `72h`, `90m`, `3d`, `3600s`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OutageSpec {
    pub provider: ProviderId,
    pub start: Timestamp,
    pub duration_s: i64,
}

impl OutageSpec {
    /// In simulation time, for a run whose time 0 is `origin`.
    pub fn to_outage(&self, origin: Timestamp) -> Outage {
        let start = self.start.unix() - origin.unix();
        Outage {
            provider: self.provider.clone(),
            start,
            end: start + self.duration_s,
        }
    }
}

/// Parses a duration: a number followed by `s`, `m`, `h` or `d`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().map_err(|_| format!("{s:?} has no number"))?;
    let mult = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" | "" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(format!("unit {unit:?} is not s, m, h or d")),
    };
    let v = n * mult;
    if !v.is_finite() || v <= 0.0 || v > 1e10 {
        return Err(format!("{s:?} is not a positive duration"));
    }
    Ok(v.round() as i64)
}

impl FromStr for OutageSpec {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        let bad = |reason: String| SimError::BadOutageSpec {
            spec: s.to_owned(),
            reason,
        };
        let (p, rest) = s
            .split_once('@')
            .ok_or_else(|| bad("no '@' after the provider".into()))?;
        if p.trim().is_empty() {
            return Err(bad("empty provider".into()));
        }
        let (when, dur) = rest
            .rsplit_once('+')
            .ok_or_else(|| bad("no '+DURATION'".into()))?;
        let start = Timestamp::parse_civil(when).map_err(|e| bad(e.to_string()))?;
        let duration_s = parse_duration(dur).map_err(bad)?;
        Ok(OutageSpec {
            provider: ProviderId::parse(p),
            start,
            duration_s,
        })
    }
}

/// Fitted failure and repair distributions of one service provider.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutageFit {
    pub provider: String,
    pub incidents: usize,
    /// Mean time between failures (the exponential's mean), seconds.
    pub mtbf_s: f64,
    /// Log-normal time to repair: parameters of ln(seconds).
    pub ttr_mu: f64,
    pub ttr_sigma: f64,
    /// Sample mean and median time to repair, seconds (for reporting).
    pub ttr_mean_s: f64,
    pub ttr_median_s: f64,
}

impl OutageFit {
    pub fn model(&self) -> RandomOutages {
        RandomOutages {
            mtbf_s: self.mtbf_s,
            ttr_mu: self.ttr_mu,
            ttr_sigma: self.ttr_sigma,
        }
    }
}

/// Fits per-provider distributions to `incident_stages.csv` (see the module docs).
pub fn fit_incidents(file: &Path, text: &str, min_impact: u32) -> Result<Vec<OutageFit>, SimError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let h = crate::trace::Header::new(
        file,
        rdr.headers().map_err(|e| SimError::BadFile {
            file: file.into(),
            reason: e.to_string(),
        })?,
    );
    let (c_p, c_s, c_c, c_i) = (
        h.col("provider")?,
        h.col("start_timestamp")?,
        h.col("close_timestamp")?,
        h.col("incident_impact_level")?,
    );
    let mut by: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2; // records may span lines; this is the record number + 1
        let rec = rec.map_err(|e| SimError::line(file, line, "record", e.to_string()))?;
        let impact: u32 = rec.get(c_i).unwrap_or("").trim().parse().map_err(|_| {
            SimError::line(file, line, "incident_impact_level", "not a whole number")
        })?;
        if impact < min_impact {
            continue;
        }
        let s = Timestamp::parse_civil(rec.get(c_s).unwrap_or(""))
            .map_err(|e| SimError::line(file, line, "start_timestamp", e.to_string()))?;
        let c = Timestamp::parse_civil(rec.get(c_c).unwrap_or(""))
            .map_err(|e| SimError::line(file, line, "close_timestamp", e.to_string()))?;
        by.entry(rec.get(c_p).unwrap_or("").to_owned())
            .or_default()
            .push((s.unix(), (c.unix() - s.unix()).max(60)));
    }
    let mut out = Vec::new();
    for (provider, mut v) in by {
        if v.len() < 3 {
            continue;
        }
        v.sort();
        let gaps: Vec<f64> = v
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).max(1) as f64)
            .collect();
        let mtbf_s = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let logs: Vec<f64> = v.iter().map(|x| (x.1 as f64).ln()).collect();
        let mu = logs.iter().sum::<f64>() / logs.len() as f64;
        let sigma = (logs.iter().map(|l| (l - mu).powi(2)).sum::<f64>() / logs.len() as f64).sqrt();
        let mut ttr: Vec<i64> = v.iter().map(|x| x.1).collect();
        ttr.sort();
        out.push(OutageFit {
            provider,
            incidents: v.len(),
            mtbf_s,
            ttr_mu: mu,
            ttr_sigma: sigma,
            ttr_mean_s: ttr.iter().sum::<i64>() as f64 / ttr.len() as f64,
            ttr_median_s: ttr[ttr.len() / 2] as f64,
        });
    }
    Ok(out)
}

pub fn fit_incidents_file(path: &Path, min_impact: u32) -> Result<Vec<OutageFit>, SimError> {
    let text = std::fs::read_to_string(path).map_err(|e| SimError::read(path, e))?;
    fit_incidents(path, &text, min_impact)
}

/// A random outage process: exponential up-times, log-normal repairs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RandomOutages {
    pub mtbf_s: f64,
    pub ttr_mu: f64,
    pub ttr_sigma: f64,
}

impl RandomOutages {
    /// Outages of each provider in `[0, horizon)`, drawn in provider order from `rng`.
    pub fn generate(
        &self,
        providers: &[ProviderId],
        horizon: SimTime,
        rng: &mut SimRng,
    ) -> Vec<Outage> {
        let mut out = Vec::new();
        for p in providers {
            let mut t = 0.0;
            loop {
                t += rng.exp(self.mtbf_s);
                if t >= horizon as f64 {
                    break;
                }
                let d = rng
                    .lognormal(self.ttr_mu, self.ttr_sigma)
                    .clamp(60.0, 30.0 * 86_400.0);
                out.push(Outage {
                    provider: p.clone(),
                    start: t.round() as SimTime,
                    end: (t + d).round() as SimTime,
                });
                t += d;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let o: OutageSpec = "Azure@2027-03-01T00:00+72h".parse().unwrap();
        assert_eq!(o.provider.as_str(), "azure");
        assert_eq!(o.start.to_string(), "2027-03-01T00:00:00Z");
        assert_eq!(o.duration_s, 72 * 3600);
        assert_eq!(
            o.to_outage(Timestamp::from_ymd(2027, 2, 28)),
            Outage {
                provider: "azure".into(),
                start: 86_400,
                end: 86_400 + 72 * 3600
            }
        );
        assert_eq!(
            "gcp@2027-01-02+90m"
                .parse::<OutageSpec>()
                .unwrap()
                .duration_s,
            5400
        );
        for bad in [
            "azure",
            "@2027-01-01+1h",
            "aws@2027-13-01+1h",
            "aws@2027-01-01+-1h",
            "aws@2027-01-01+1y",
            "aws@2027-01-01",
            "aws@2027-02-30T00:00+1h",
        ] {
            assert!(bad.parse::<OutageSpec>().is_err(), "{bad}");
        }
        assert_eq!(
            Timestamp::parse_civil("2024-02-26 17:09:00+00:00")
                .unwrap()
                .to_string(),
            "2024-02-26T17:09:00Z"
        );
    }

    #[test]
    fn fit_recovers_a_known_process() {
        let mut rng = SimRng::new(9, crate::rng::Stream::Outages);
        let model = RandomOutages {
            mtbf_s: 7.0 * 86_400.0,
            ttr_mu: (3600.0f64).ln(),
            ttr_sigma: 1.0,
        };
        let outs = model.generate(&["x".into()], 40 * 365 * 86_400, &mut rng);
        let mut csv =
            String::from("provider,start_timestamp,close_timestamp,incident_impact_level\n");
        for o in &outs {
            let s = Timestamp::from_unix(o.start);
            let e = Timestamp::from_unix(o.end);
            csv.push_str(&format!("x,{s},{e},2\n"));
        }
        let fit = &fit_incidents(Path::new("x.csv"), &csv, 2).unwrap()[0];
        assert!((fit.ttr_mu - model.ttr_mu).abs() < 0.1, "{fit:?}");
        assert!((fit.ttr_sigma - 1.0).abs() < 0.1, "{fit:?}");
        // Gaps between starts include the repair time, so the fitted mean gap is slightly above the MTBF.
        assert!((fit.mtbf_s / model.mtbf_s - 1.0).abs() < 0.1, "{fit:?}");
    }
}
