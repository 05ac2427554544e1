//! Corrections to SkyPilot catalog rows, read from a YAML file (Hedge ships `data/overrides.yaml`, embedded
//! in the binary and applied by default on every SkyPilot import).
//!
//! ```yaml
//! schema_version: 1
//! overrides:
//!   - match: { provider: azure, instance_type: Standard_ND96isr_H100_v5 }   # also: region, zone
//!     set: { accelerator_count: 8 }   # also: accelerator_name, vcpus, memory_gib, price, spot_price
//!     reason: "ND H100 v5 VMs have 8 H100 GPUs; the catalog lists 12"
//!     source: "https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/nd-h100-v5-series"
//!   - match: { provider: aws, instance_type: p4d.24xlarge, zone: use1-az9 }
//!     drop: true
//!     reason: "..."
//! ```
//!
//! Every row an override changes or drops gets a [`Severity::Warning`] naming the row, the override, what
//! changed and why: a correction is never silent. An override that matches no row at all is also a warning
//! (it is stale, or misspelt).

use crate::diag::{Diagnostic, Severity};
use crate::error::CatalogError;
use crate::skypilot::RawRow;
use hedge_core::{AccelRequest, Accelerator, Rate};
use serde::Deserialize;
use std::fmt::Write as _;

/// The overrides Hedge ships, applied by default on SkyPilot imports.
pub const EMBEDDED_OVERRIDES: &str = include_str!("../../../data/overrides.yaml");
const EMBEDDED_LABEL: &str = "data/overrides.yaml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    schema_version: u32,
    #[serde(default)]
    overrides: Vec<RawOverride>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    #[serde(rename = "match")]
    matches: RawMatch,
    #[serde(default)]
    set: RawSet,
    #[serde(default)]
    drop: bool,
    reason: String,
    #[serde(default)]
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    provider: String,
    instance_type: String,
    region: Option<String>,
    zone: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSet {
    accelerator_name: Option<String>,
    accelerator_count: Option<u32>,
    vcpus: Option<f64>,
    memory_gib: Option<f64>,
    price: Option<f64>,
    spot_price: Option<f64>,
}

/// One validated override.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Override {
    pub provider: String,
    pub instance_type: String,
    pub region: Option<String>,
    pub zone: Option<String>,
    pub accelerator_name: Option<Accelerator>,
    pub accelerator_count: Option<u32>,
    pub vcpus_milli: Option<u32>,
    pub memory_mib: Option<u64>,
    pub on_demand: Option<Rate>,
    pub spot: Option<Rate>,
    pub drop: bool,
    pub reason: String,
    pub source: Option<String>,
}

impl Override {
    fn matches(&self, r: &RawRow) -> bool {
        r.provider.as_str() == self.provider
            && r.instance_type.as_deref() == Some(self.instance_type.as_str())
            && self
                .region
                .as_deref()
                .is_none_or(|x| x == r.region.as_str())
            && self
                .zone
                .as_deref()
                .is_none_or(|x| Some(x) == r.zone.as_ref().map(|z| z.as_str()))
    }
}

/// A validated overrides file.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Overrides {
    /// Where the overrides came from, for diagnostics.
    pub label: String,
    pub items: Vec<Override>,
}

impl Overrides {
    /// No overrides at all.
    pub fn none() -> Self {
        Overrides {
            label: String::new(),
            items: Vec::new(),
        }
    }

    /// The overrides Hedge ships (`data/overrides.yaml`).
    pub fn embedded() -> Result<Self, CatalogError> {
        Self::parse(EMBEDDED_LABEL, EMBEDDED_OVERRIDES)
    }

    /// Parses and validates an overrides file. `label` names it in errors and diagnostics.
    pub fn parse(label: &str, text: &str) -> Result<Self, CatalogError> {
        let f: File = serde_norway::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map_or((0, 0), |l| (l.line() as u64, l.column() as u64));
            CatalogError::Yaml {
                file: label.to_owned(),
                line,
                column,
                message: e.to_string(),
            }
        })?;
        if f.schema_version != 1 {
            return Err(CatalogError::UnsupportedSchema {
                file: label.to_owned(),
                found: f.schema_version.into(),
                supported: 1,
            });
        }
        let bad = |i: usize, field: &str, reason: String| CatalogError::InvalidField {
            file: label.to_owned(),
            field: format!("overrides[{i}].{field}"),
            reason,
        };
        let mut items = Vec::with_capacity(f.overrides.len());
        for (i, o) in f.overrides.into_iter().enumerate() {
            let s = o.set;
            let accelerator_name = s
                .accelerator_name
                .map(|n| {
                    Accelerator::parse(&n)
                        .map_err(|e| bad(i, "set.accelerator_name", e.to_string()))
                })
                .transpose()?;
            if s.accelerator_count == Some(0) {
                return Err(bad(i, "set.accelerator_count", "must be at least 1".into()));
            }
            let nonneg = |v: f64, field: &str| {
                if v.is_finite() && v >= 0.0 {
                    Ok(v)
                } else {
                    Err(bad(i, field, format!("{v} is not a non-negative number")))
                }
            };
            let vcpus_milli = s
                .vcpus
                .map(|v| nonneg(v, "set.vcpus").map(|v| (v * 1000.0).round() as u32))
                .transpose()?;
            let memory_mib = s
                .memory_gib
                .map(|v| nonneg(v, "set.memory_gib").map(|v| (v * 1024.0).round() as u64))
                .transpose()?;
            let rate = |v: f64, field: &str| {
                Rate::from_usd_per_hour_f64(v).map_err(|e| bad(i, field, e.to_string()))
            };
            let on_demand = s.price.map(|v| rate(v, "set.price")).transpose()?;
            let spot = s
                .spot_price
                .map(|v| rate(v, "set.spot_price"))
                .transpose()?;
            let changes = accelerator_name.is_some()
                || s.accelerator_count.is_some()
                || vcpus_milli.is_some()
                || memory_mib.is_some()
                || on_demand.is_some()
                || spot.is_some();
            if changes == o.drop {
                return Err(bad(
                    i,
                    "set",
                    "give either `set` with at least one field, or `drop: true`".into(),
                ));
            }
            if o.reason.trim().is_empty() {
                return Err(bad(i, "reason", "every override must say why".into()));
            }
            items.push(Override {
                provider: o.matches.provider.trim().to_ascii_lowercase(),
                instance_type: o.matches.instance_type,
                region: o.matches.region,
                zone: o.matches.zone,
                accelerator_name,
                accelerator_count: s.accelerator_count,
                vcpus_milli,
                memory_mib,
                on_demand,
                spot,
                drop: o.drop,
                reason: o.reason,
                source: o.source,
            });
        }
        Ok(Overrides {
            label: label.to_owned(),
            items,
        })
    }

    /// Applies every matching override to `rows` (several may apply to one row, in file order), marks the
    /// ones used in `used` (one flag per override), and reports each application as a warning.
    pub fn apply(&self, rows: &mut Vec<RawRow>, used: &mut [bool], diags: &mut Vec<Diagnostic>) {
        if self.items.is_empty() {
            return;
        }
        rows.retain_mut(|r| {
            for (i, o) in self.items.iter().enumerate() {
                if !o.matches(r) {
                    continue;
                }
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
                let mut what = String::new();
                if o.drop {
                    what.push_str("row dropped");
                } else {
                    apply_set(o, r, &mut what);
                }
                let mut reason = format!(
                    "override {}#{} applied: {what} ({})",
                    self.label,
                    i + 1,
                    o.reason
                );
                if let Some(s) = &o.source {
                    let _ = write!(reason, "; source: {s}");
                }
                diags.push(Diagnostic::new(Severity::Warning, &*r.file, reason).at_line(r.line));
                if o.drop {
                    return false;
                }
            }
            true
        });
    }

    /// A warning for each override that matched no row.
    pub fn unused(&self, used: &[bool]) -> Vec<Diagnostic> {
        self.items
            .iter()
            .enumerate()
            .filter(|(i, _)| !used.get(*i).copied().unwrap_or(false))
            .map(|(i, o)| {
                Diagnostic::new(
                    Severity::Warning,
                    &self.label,
                    format!(
                        "override #{} ({} {}) matched no row",
                        i + 1,
                        o.provider,
                        o.instance_type
                    ),
                )
            })
            .collect()
    }
}

fn apply_set(o: &Override, r: &mut RawRow, what: &mut String) {
    let mut note = |s: String| {
        if !what.is_empty() {
            what.push_str(", ");
        }
        what.push_str(&s);
    };
    if o.accelerator_name.is_some() || o.accelerator_count.is_some() {
        let before = r
            .accelerator
            .as_ref()
            .map_or("none".to_owned(), ToString::to_string);
        let name = o
            .accelerator_name
            .clone()
            .or_else(|| r.accelerator.as_ref().map(|a| a.name.clone()));
        let count = o
            .accelerator_count
            .or(r.accelerator.as_ref().map(|a| a.count))
            .unwrap_or(1);
        if let Some(name) = name {
            r.accelerator = Some(AccelRequest::new(name, count));
        }
        let after = r
            .accelerator
            .as_ref()
            .map_or("none".to_owned(), ToString::to_string);
        note(format!("accelerator {before} -> {after}"));
    }
    if let Some(v) = o.vcpus_milli {
        note(format!(
            "vCPUs {} -> {}",
            fmt_milli(r.vcpus_milli),
            fmt_milli(Some(v))
        ));
        r.vcpus_milli = Some(v);
    }
    if let Some(v) = o.memory_mib {
        note(format!("memory {:?} MiB -> {v} MiB", r.memory_mib));
        r.memory_mib = Some(v);
    }
    if let Some(v) = o.on_demand {
        note(format!("price {} -> {v}", fmt_rate(r.on_demand)));
        r.on_demand = Some(v);
    }
    if let Some(v) = o.spot {
        note(format!("spot price {} -> {v}", fmt_rate(r.spot)));
        r.spot = Some(v);
    }
}

fn fmt_milli(v: Option<u32>) -> String {
    v.map_or("none".into(), |m| format!("{}", m as f64 / 1000.0))
}
fn fmt_rate(v: Option<Rate>) -> String {
    v.map_or("none".into(), |r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_file_is_valid() {
        let o = Overrides::embedded().unwrap();
        assert!(o.items.iter().any(
            |o| o.instance_type == "Standard_ND96isr_H100_v5" && o.accelerator_count == Some(8)
        ));
    }

    #[test]
    fn rejects_bad_files_naming_the_field() {
        let cases = [
            ("schema_version: 2\n", "schema_version 2 is not supported"),
            ("schema_version: 1\noverrides:\n  - match: {provider: aws, instance_type: x}\n    reason: r\n", "overrides[0].set"),
            ("schema_version: 1\noverrides:\n  - match: {provider: aws, instance_type: x}\n    set: {accelerator_count: 0}\n    reason: r\n", "overrides[0].set.accelerator_count"),
            ("schema_version: 1\noverrides:\n  - match: {provider: aws, instance_type: x}\n    set: {price: -1}\n    reason: r\n", "overrides[0].set.price"),
            ("schema_version: 1\noverrides:\n  - match: {provider: aws, instance_type: x}\n    set: {price: 1}\n    reason: ' '\n", "overrides[0].reason"),
            ("schema_version: 1\noverrides:\n  - match: {provider: aws}\n", "t.yaml:3:"),
            ("schema_version: 1\nbogus: 1\n", "unknown field `bogus`"),
        ];
        for (text, want) in cases {
            let e = Overrides::parse("t.yaml", text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
