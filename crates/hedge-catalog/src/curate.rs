//! Building the curated default catalog: a SkyPilot import merged with `data/extras.yaml`, which adds what
//! SkyPilot lacks (committed prices, capacity, egress, reliability), each figure labelled with its source.
//!
//! ```yaml
//! schema_version: 1
//! description: "..."
//! sources: ["..."]                       # general provenance, copied into the catalog
//! providers:
//!   aws:
//!     egress_usd_per_gb: 0.09
//!     egress_source: "..."
//!     reliability: { mtbf_hours: 230.1, mttr_hours: 2.34, source: "..." }
//!     committed:
//!       - term_months: 12
//!         discount: 0.35                  # fraction off the on-demand $/GPU-hour, for every GPU offer
//!         source: "..."
//!       - term_months: 12
//!         usd_per_gpu_hour: { H100: 2.29 } # or absolute prices for named accelerators (these win)
//!         source: "..."
//! capacities:
//!   - { provider: lambda, accelerator: H100, max_gpus: 512, source: "..." }   # region optional
//! ```
//!
//! The build is a pure function of the SkyPilot files and the extras text ([`build`]); the example
//! `build-default-catalog` does the reading and writing, and a test checks that the committed
//! `data/catalog.json` equals what it produces from the shared data.

use crate::error::CatalogError;
use crate::native::{self, CatalogMeta};
use crate::{import_skypilot, CloudFile, Loaded, Overrides};
use hedge_core::{
    Accelerator, Capacity, Catalog, CommittedPrice, Money, ProviderId, ProviderInfo, Rate,
    RegionId, Reliability,
};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtrasFile {
    schema_version: u32,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    providers: BTreeMap<String, ProviderExtras>,
    #[serde(default)]
    capacities: Vec<CapacityExtras>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderExtras {
    egress_usd_per_gb: Option<f64>,
    egress_source: Option<String>,
    reliability: Option<ReliabilityExtras>,
    #[serde(default)]
    committed: Vec<CommittedExtras>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReliabilityExtras {
    mtbf_hours: f64,
    mttr_hours: f64,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommittedExtras {
    term_months: u16,
    discount: Option<f64>,
    #[serde(default)]
    usd_per_gpu_hour: BTreeMap<String, f64>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapacityExtras {
    provider: String,
    region: Option<String>,
    accelerator: String,
    max_gpus: Option<u32>,
    quota_gpus: Option<u32>,
    source: String,
}

/// How one provider's committed price for one term is set.
#[derive(Clone, PartialEq, Debug)]
pub struct CommittedRule {
    pub term_months: u16,
    /// Fraction off the on-demand $/GPU-hour, applied to every GPU offer with an on-demand price.
    pub discount: Option<f64>,
    /// Absolute $/GPU-hour for named accelerators; wins over `discount`.
    pub per_gpu_hour: BTreeMap<Accelerator, Rate>,
}

/// Validated extras.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Extras {
    pub description: Option<String>,
    /// General sources plus one line per labelled figure.
    pub sources: Vec<String>,
    pub providers: BTreeMap<ProviderId, ProviderInfo>,
    pub committed: BTreeMap<ProviderId, Vec<CommittedRule>>,
    pub capacities: Vec<Capacity>,
}

/// Parses and validates an extras file; every figure must name its source.
pub fn parse_extras(label: &str, text: &str) -> Result<Extras, CatalogError> {
    let f: ExtrasFile = serde_norway::from_str(text).map_err(|e| {
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
    let bad = |field: String, reason: String| CatalogError::InvalidField {
        file: label.to_owned(),
        field,
        reason,
    };
    let mut out = Extras {
        description: f.description,
        sources: f.sources,
        ..Extras::default()
    };
    for (name, p) in f.providers {
        let id = ProviderId::parse(&name);
        let mut info = ProviderInfo::default();
        if let Some(e) = p.egress_usd_per_gb {
            info.egress_per_gb = Some(Money::from_usd_f64(e).map_err(|err| {
                bad(
                    format!("providers.{name}.egress_usd_per_gb"),
                    err.to_string(),
                )
            })?);
            let src = p.egress_source.ok_or_else(|| {
                bad(
                    format!("providers.{name}.egress_source"),
                    "every figure needs a source".into(),
                )
            })?;
            out.sources.push(format!("{id} egress ${e}/GB: {src}"));
        }
        if let Some(r) = p.reliability {
            let ok = |v: f64| v.is_finite() && v > 0.0 && v < 1.0e7;
            if !ok(r.mtbf_hours) || !ok(r.mttr_hours) {
                return Err(bad(
                    format!("providers.{name}.reliability"),
                    "mtbf_hours and mttr_hours must be positive".into(),
                ));
            }
            info.reliability = Some(Reliability {
                mtbf_s: (r.mtbf_hours * 3600.0).round() as u64,
                mttr_s: (r.mttr_hours * 3600.0).round() as u64,
            });
            out.sources.push(format!(
                "{id} reliability (MTBF {}h, MTTR {}h): {}",
                r.mtbf_hours, r.mttr_hours, r.source
            ));
        }
        let mut rules = Vec::new();
        for (i, c) in p.committed.into_iter().enumerate() {
            let field = |s: &str| format!("providers.{name}.committed[{i}].{s}");
            if c.term_months == 0 {
                return Err(bad(field("term_months"), "must be at least 1".into()));
            }
            if let Some(d) = c.discount {
                if !(d.is_finite() && (0.0..1.0).contains(&d)) {
                    return Err(bad(
                        field("discount"),
                        format!("{d} is not a fraction in [0, 1)"),
                    ));
                }
            }
            if c.discount.is_none() && c.usd_per_gpu_hour.is_empty() {
                return Err(bad(
                    field("discount"),
                    "give a discount or usd_per_gpu_hour".into(),
                ));
            }
            let mut per = BTreeMap::new();
            for (acc, usd) in &c.usd_per_gpu_hour {
                let a = Accelerator::parse(acc)
                    .map_err(|e| bad(field("usd_per_gpu_hour"), e.to_string()))?;
                let r = Rate::from_usd_per_hour_f64(*usd)
                    .map_err(|e| bad(field("usd_per_gpu_hour"), e.to_string()))?;
                per.insert(a, r);
            }
            let what = match (c.discount, per.is_empty()) {
                (Some(d), true) => format!("{:.0}% off on-demand", d * 100.0),
                (Some(d), false) => format!(
                    "{:.0}% off on-demand, fixed prices for {}",
                    d * 100.0,
                    per.keys()
                        .map(Accelerator::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (None, _) => format!(
                    "fixed prices for {}",
                    per.keys()
                        .map(Accelerator::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            out.sources.push(format!(
                "{id} committed {} months ({what}): {}",
                c.term_months, c.source
            ));
            rules.push(CommittedRule {
                term_months: c.term_months,
                discount: c.discount,
                per_gpu_hour: per,
            });
        }
        out.providers.insert(id.clone(), info);
        if !rules.is_empty() {
            out.committed.insert(id, rules);
        }
    }
    for (i, c) in f.capacities.into_iter().enumerate() {
        let accelerator = Accelerator::parse(&c.accelerator)
            .map_err(|e| bad(format!("capacities[{i}].accelerator"), e.to_string()))?;
        let provider = ProviderId::parse(&c.provider);
        let at = c
            .region
            .as_deref()
            .map_or(String::new(), |r| format!(" {r}"));
        out.sources.push(format!(
            "{provider}{at} {accelerator} capacity: {}",
            c.source
        ));
        out.capacities.push(Capacity {
            provider,
            region: c.region.map(RegionId::new),
            accelerator,
            max_gpus: c.max_gpus,
            quota_gpus: c.quota_gpus,
        });
    }
    Ok(out)
}

/// Merges extras into a catalog: provider facts, capacities, and committed prices per GPU offer (the
/// rule's absolute price for the offer's accelerator if listed, else on-demand $/GPU-hour less the
/// discount, rounded to the micro-dollar). When several rules give the same term, the later one wins.
pub fn apply_extras(catalog: Catalog, extras: &Extras) -> Catalog {
    let (mut offers, mut providers, mut capacities) = catalog.into_parts();
    for (p, info) in &extras.providers {
        providers.insert(p.clone(), info.clone());
    }
    capacities.extend(extras.capacities.iter().cloned());
    for o in &mut offers {
        let (Some(rules), Some(acc)) = (extras.committed.get(&o.provider), o.accelerator.as_ref())
        else {
            continue;
        };
        for rule in rules {
            let price = match (
                rule.per_gpu_hour.get(&acc.name),
                rule.discount,
                o.prices.on_demand,
            ) {
                (Some(r), _, _) => Some(*r),
                (None, Some(d), Some(od)) => {
                    let per_gpu = od.per_unit(acc.count).hourly().micros();
                    Some(Rate::per_hour(Money::from_micros(
                        ((per_gpu as f64) * (1.0 - d)).round() as i64,
                    )))
                }
                _ => None,
            };
            if let Some(per_gpu_hour) = price {
                o.prices
                    .committed
                    .retain(|c| c.term_months != rule.term_months);
                o.prices.committed.push(CommittedPrice {
                    term_months: rule.term_months,
                    per_gpu_hour,
                });
            }
        }
        o.prices.committed.sort_by_key(|c| c.term_months);
    }
    Catalog::new(offers, providers, capacities)
}

/// The whole build: import the SkyPilot files with `overrides`, merge `extras`. Returns the catalog, its
/// provenance, and the import's diagnostics.
pub fn build(
    files: &[CloudFile<'_>],
    accelerators_csv: Option<&[u8]>,
    overrides: &Overrides,
    extras: &Extras,
) -> (Loaded, CatalogMeta) {
    let mut loaded = import_skypilot(files, accelerators_csv, overrides);
    let catalog = std::mem::take(&mut loaded.catalog);
    loaded.catalog = apply_extras(catalog, extras);
    let mut sources = vec![
        "offers: SkyPilot v8 catalogs (github.com/skypilot-org/skypilot-catalog, catalogs/v8; Azure from the fork coopslarhette/skypilot-catalog), imported by hedge-catalog with data/overrides.yaml applied".to_owned(),
    ];
    sources.extend(extras.sources.iter().cloned());
    let meta = CatalogMeta {
        description: extras.description.clone(),
        sources,
    };
    loaded.meta = meta.clone();
    (loaded, meta)
}

/// [`build`], rendered in the native format: the exact text of `data/catalog.json`.
pub fn build_json(
    files: &[CloudFile<'_>],
    accelerators_csv: Option<&[u8]>,
    overrides: &Overrides,
    extras: &Extras,
) -> (String, Loaded) {
    let (loaded, meta) = build(files, accelerators_csv, overrides, extras);
    (native::write(&loaded.catalog, &meta), loaded)
}
