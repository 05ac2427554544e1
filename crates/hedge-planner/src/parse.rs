//! Parse, don't validate: a `hedge.plan/v1` YAML document becomes a [`PlanningInput`] here and nowhere
//! else. Every error names the field it is about, as a path (`providers[2].commitments[0].rate`), and the
//! reason.
//!
//! Fields beyond issue 5's schema (all optional):
//! - `horizon.start_periods: K` — new commitments may start only in periods `0..K` (default: every period).
//! - `providers[i].commitments[j].block_gpus` / `min_gpus` — as in the issue; `min_gpus` is per contract.
//! - `policies.resilience_basis: expected | peak` — the demand `keep_fraction` applies to: the
//!   probability-weighted mean of each period (default) or the highest scenario.
//! - `risk: {cvar_alpha: 0.95, weight: 0.5}` — adds `weight × CVaR_alpha` of total cost to the objective.
//!
//! Semantics the issue leaves open, as implemented: `max_share` holds in every period (committed GPUs summed
//! over accelerators, or commitment spend, signed contracts included); `min_providers` counts providers
//! holding at least one smallest contract (signed or new); `budget_usd` bounds the expected total cost
//! (commitments, whole terms, plus expected on-demand, spot and penalties); spot without
//! `spot_availability` may serve all demand; `unmet_demand` defaults to `forbid`.

use crate::error::PlanError;
use crate::input::*;
use crate::prices::{has_offers, quote, CatalogSource, PriceSource, Quote};
use hedge_core::{Accelerator, Money, ProviderId, Rate};
use serde::Deserialize;
use std::collections::BTreeMap;

pub const SCHEMA: &str = "hedge.plan/v1";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    schema: String,
    horizon: RawHorizon,
    accelerators: Vec<String>,
    demand: Vec<RawScenario>,
    providers: Vec<RawProvider>,
    #[serde(default)]
    policies: RawPolicies,
    #[serde(default)]
    risk: Option<Risk>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHorizon {
    start: String,
    periods: u32,
    period_hours: u32,
    #[serde(default)]
    start_periods: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    scenario: String,
    probability: f64,
    gpus: BTreeMap<String, Vec<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    #[serde(default)]
    on_demand: BTreeMap<String, f64>,
    #[serde(default)]
    spot: BTreeMap<String, f64>,
    #[serde(default)]
    spot_availability: BTreeMap<String, f64>,
    #[serde(default)]
    capacity: BTreeMap<String, u64>,
    #[serde(default)]
    commitments: Vec<RawOption>,
    #[serde(default)]
    existing: Vec<RawExisting>,
    #[serde(default)]
    prices_from: Option<RawPricesFrom>,
}

/// `prices_from: {provider: aws, region: us-east-1, accelerators: [H100]}`; every field optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPricesFrom {
    /// The provider's name in the catalog (default: the plan's `name`).
    #[serde(default)]
    provider: Option<String>,
    /// One region (default: the cheapest offer in any region).
    #[serde(default)]
    region: Option<String>,
    /// Accelerators that must be priced from the catalog (default: every one of the plan the catalog has).
    #[serde(default)]
    accelerators: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    accelerator: String,
    term_periods: u32,
    rate: f64,
    #[serde(default)]
    block_gpus: Option<u32>,
    #[serde(default)]
    min_gpus: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExisting {
    accelerator: String,
    gpus: u32,
    start: String,
    term_periods: u32,
    rate: f64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicies {
    max_share: Option<RawMaxShare>,
    min_providers: Option<u32>,
    survive_loss_of: Option<u32>,
    keep_fraction: Option<f64>,
    resilience_basis: Option<ResilienceBasis>,
    budget_usd: Option<f64>,
    unmet_demand: Option<RawUnmet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaxShare {
    of: ShareOf,
    value: f64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawUnmet {
    Word(String),
    Penalty { penalty_per_gpu_hour: f64 },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Parses and validates a plan file that takes no prices from a catalog.
pub fn parse_plan_yaml(text: &str) -> Result<PlanningInput, PlanError> {
    parse_plan_yaml_with(text, None)
}

/// Parses and validates a plan file; providers with `prices_from` take their prices from `catalog`.
pub fn parse_plan_yaml_with(
    text: &str,
    catalog: Option<CatalogSource<'_>>,
) -> Result<PlanningInput, PlanError> {
    let de = serde_norway::Deserializer::from_str(text);
    let raw: RawPlan = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path.is_empty() || path == "." {
            "(document)".to_owned()
        } else {
            path
        };
        PlanError::Invalid {
            field,
            reason: strip_location_prefix(e.into_inner().to_string()),
        }
    })?;
    validate(raw, catalog)
}

/// serde_norway starts messages with its own (shorter) path, `providers[0]: …`; the field is already named.
pub(crate) fn strip_location_prefix(msg: String) -> String {
    match msg.split_once(": ") {
        Some((head, rest)) if !head.is_empty() && !head.contains(char::is_whitespace) => {
            rest.to_owned()
        }
        _ => msg,
    }
}

fn positive_rate(field: String, usd: f64) -> Result<Rate, PlanError> {
    if !(usd.is_finite() && usd > 0.0) {
        return Err(invalid(field, format!("must be positive (got {usd})")));
    }
    Rate::from_usd_per_hour_f64(usd).map_err(|e| invalid(field, e.to_string()))
}

fn fraction(field: String, v: f64) -> Result<f64, PlanError> {
    if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
        return Err(invalid(field, format!("must be between 0 and 1 (got {v})")));
    }
    Ok(v)
}

fn accel_key(field: &str, key: &str, accels: &[Accelerator]) -> Result<usize, PlanError> {
    let a =
        Accelerator::parse(key).map_err(|e| invalid(format!("{field}.{key}"), e.to_string()))?;
    accels.iter().position(|x| *x == a).ok_or_else(|| {
        invalid(
            format!("{field}.{key}"),
            "accelerator is not listed in `accelerators`",
        )
    })
}

/// The index in `accels` of the accelerator named by the value of `field` (a commitment's or contract's
/// `accelerator`).
fn accel_field(field: String, name: &str, accels: &[Accelerator]) -> Result<usize, PlanError> {
    let a = Accelerator::parse(name).map_err(|e| invalid(field.clone(), e.to_string()))?;
    accels
        .iter()
        .position(|x| *x == a)
        .ok_or_else(|| invalid(field, format!("{a} is not listed in `accelerators`")))
}

fn validate(raw: RawPlan, catalog: Option<CatalogSource<'_>>) -> Result<PlanningInput, PlanError> {
    if raw.schema != SCHEMA {
        return Err(invalid(
            "schema",
            format!("must be {SCHEMA:?} (got {:?})", raw.schema),
        ));
    }
    // Horizon.
    let start = YearMonth::parse(&raw.horizon.start).map_err(|_| {
        invalid(
            "horizon.start",
            format!("{:?} is not a YYYY-MM month", raw.horizon.start),
        )
    })?;
    if raw.horizon.periods == 0 {
        return Err(invalid("horizon.periods", "must be at least 1"));
    }
    if raw.horizon.periods > 1200 {
        return Err(invalid("horizon.periods", "must be at most 1200"));
    }
    if raw.horizon.period_hours == 0 || raw.horizon.period_hours > 8784 {
        return Err(invalid(
            "horizon.period_hours",
            "must be between 1 and 8784",
        ));
    }
    let periods = raw.horizon.periods as usize;
    let start_periods = match raw.horizon.start_periods {
        None => periods,
        Some(0) => return Err(invalid("horizon.start_periods", "must be at least 1")),
        Some(k) if k as usize > periods => {
            return Err(invalid(
                "horizon.start_periods",
                "must not exceed horizon.periods",
            ))
        }
        Some(k) => k as usize,
    };
    let horizon = Horizon {
        start,
        periods,
        period_hours: raw.horizon.period_hours,
        start_periods,
    };

    // Accelerators.
    if raw.accelerators.is_empty() {
        return Err(invalid(
            "accelerators",
            "must list at least one accelerator",
        ));
    }
    let mut accelerators = Vec::new();
    for (i, a) in raw.accelerators.iter().enumerate() {
        let acc = Accelerator::parse(a)
            .map_err(|e| invalid(format!("accelerators[{i}]"), e.to_string()))?;
        if accelerators.contains(&acc) {
            return Err(invalid(
                format!("accelerators[{i}]"),
                format!("{acc} is listed twice"),
            ));
        }
        accelerators.push(acc);
    }
    let na = accelerators.len();

    // Scenarios.
    if raw.demand.is_empty() {
        return Err(invalid("demand", "must have at least one scenario"));
    }
    let mut scenarios = Vec::new();
    for (si, s) in raw.demand.iter().enumerate() {
        let f = format!("demand[{si}]");
        if s.scenario.trim().is_empty() {
            return Err(invalid(format!("{f}.scenario"), "must not be empty"));
        }
        if scenarios.iter().any(|x: &Scenario| x.name == s.scenario) {
            return Err(invalid(
                format!("{f}.scenario"),
                format!("{:?} is used twice", s.scenario),
            ));
        }
        if !(s.probability.is_finite() && s.probability > 0.0 && s.probability <= 1.0) {
            return Err(invalid(
                format!("{f}.probability"),
                format!("must be in (0, 1] (got {})", s.probability),
            ));
        }
        let mut demand = vec![Vec::new(); na];
        for (key, values) in &s.gpus {
            let a = accel_key(&format!("{f}.gpus"), key, &accelerators)?;
            if !demand[a].is_empty() {
                return Err(invalid(
                    format!("{f}.gpus.{key}"),
                    "accelerator given twice",
                ));
            }
            if values.len() != periods {
                return Err(invalid(
                    format!("{f}.gpus.{key}"),
                    format!(
                        "has {} values, horizon.periods is {periods} (one value per period)",
                        values.len()
                    ),
                ));
            }
            for (t, v) in values.iter().enumerate() {
                if !(v.is_finite() && *v >= 0.0 && *v < 1e12) {
                    return Err(invalid(
                        format!("{f}.gpus.{key}[{t}]"),
                        format!("must be a number of GPUs >= 0 (got {v})"),
                    ));
                }
                demand[a].push(MilliGpus((v * 1000.0).round() as u64));
            }
        }
        for (a, d) in demand.iter_mut().enumerate() {
            if d.is_empty() {
                return Err(invalid(
                    format!("{f}.gpus.{}", accelerators[a]),
                    "missing: every accelerator needs one value per period",
                ));
            }
        }
        scenarios.push(Scenario {
            name: s.scenario.clone(),
            probability: s.probability,
            demand,
        });
    }
    let total: f64 = scenarios.iter().map(|s| s.probability).sum();
    if (total - 1.0).abs() > 1e-6 {
        return Err(invalid(
            "demand[*].probability",
            format!("probabilities sum to {total}, not 1 (within 1e-6)"),
        ));
    }

    // Providers.
    if raw.providers.is_empty() {
        return Err(invalid("providers", "must list at least one provider"));
    }
    let mut providers: Vec<Provider> = Vec::new();
    let mut price_sources: Vec<PriceSource> = Vec::new();
    for (pi, rp) in raw.providers.iter().enumerate() {
        let f = format!("providers[{pi}]");
        if rp.name.trim().is_empty() {
            return Err(invalid(format!("{f}.name"), "must not be empty"));
        }
        let id = ProviderId::parse(&rp.name);
        if providers.iter().any(|p| p.id == id) {
            return Err(invalid(
                format!("{f}.name"),
                format!("provider {id} is listed twice"),
            ));
        }
        let mut on_demand = vec![None; na];
        for (k, v) in &rp.on_demand {
            let a = accel_key(&format!("{f}.on_demand"), k, &accelerators)?;
            on_demand[a] = Some(positive_rate(format!("{f}.on_demand.{k}"), *v)?);
        }
        let mut spot = vec![None; na];
        for (k, v) in &rp.spot {
            let a = accel_key(&format!("{f}.spot"), k, &accelerators)?;
            spot[a] = Some(positive_rate(format!("{f}.spot.{k}"), *v)?);
        }
        // The file's prices first (negotiated rates), then the catalog's where the file has none.
        let quotes = catalog_quotes(&f, rp, &accelerators, catalog)?;
        let label = catalog.map_or("", |c| c.label);
        let mut src = |a: usize, market: String, rate: Rate, source: String| {
            price_sources.push(PriceSource {
                provider: rp.name.clone(),
                accelerator: accelerators[a].to_string(),
                market,
                usd_per_gpu_hour: rate.to_usd_per_hour_f64(),
                source,
            })
        };
        for a in 0..na {
            let q = quotes[a].as_ref();
            let key = accelerators[a].to_string();
            match (on_demand[a], q.and_then(|q| q.on_demand.as_ref())) {
                (Some(r), c) => src(
                    a,
                    "on_demand".into(),
                    r,
                    file_source(&format!("{f}.on_demand.{key}"), c.map(|c| c.rate)),
                ),
                (None, Some(c)) => {
                    on_demand[a] = Some(c.rate);
                    src(
                        a,
                        "on_demand".into(),
                        c.rate,
                        format!("catalog {label}: {}", c.offer),
                    );
                }
                (None, None) => {}
            }
            let availability_given = rp
                .spot_availability
                .keys()
                .any(|k| Accelerator::parse(k).ok().as_ref() == Some(&accelerators[a]));
            match (spot[a], q.and_then(|q| q.spot.as_ref())) {
                (Some(r), c) => src(
                    a,
                    "spot".into(),
                    r,
                    file_source(&format!("{f}.spot.{key}"), c.map(|c| c.rate)),
                ),
                // Catalog spot only where the file says how much of the load tolerates preemption.
                (None, Some(c)) if availability_given => {
                    spot[a] = Some(c.rate);
                    src(
                        a,
                        "spot".into(),
                        c.rate,
                        format!("catalog {label}: {}", c.offer),
                    );
                }
                _ => {}
            }
        }
        let mut spot_availability = vec![0.0; na];
        for (k, v) in &rp.spot_availability {
            let a = accel_key(&format!("{f}.spot_availability"), k, &accelerators)?;
            if spot[a].is_none() {
                return Err(invalid(
                    format!("{f}.spot_availability.{k}"),
                    "no spot price is given for this accelerator",
                ));
            }
            spot_availability[a] = fraction(format!("{f}.spot_availability.{k}"), *v)?;
        }
        for (a, s) in spot.iter().enumerate() {
            if s.is_some()
                && !rp
                    .spot_availability
                    .keys()
                    .any(|k| Accelerator::parse(k).ok().as_ref() == Some(&accelerators[a]))
            {
                // Spot without an availability bound can serve all demand.
                spot_availability[a] = 1.0;
            }
        }
        let mut capacity = vec![None; na];
        for (k, v) in &rp.capacity {
            let a = accel_key(&format!("{f}.capacity"), k, &accelerators)?;
            if *v > 1_000_000_000_000 {
                return Err(invalid(
                    format!("{f}.capacity.{k}"),
                    "must be at most 10^12 GPUs",
                ));
            }
            capacity[a] = Some(*v);
        }
        let mut options = Vec::new();
        for (ci, c) in rp.commitments.iter().enumerate() {
            let cf = format!("{f}.commitments[{ci}]");
            let a = accel_field(format!("{cf}.accelerator"), &c.accelerator, &accelerators)?;
            if c.term_periods == 0 {
                return Err(invalid(format!("{cf}.term_periods"), "must be at least 1"));
            }
            let rate = positive_rate(format!("{cf}.rate"), c.rate)?;
            let block_gpus = c.block_gpus.unwrap_or(1);
            if block_gpus == 0 {
                return Err(invalid(format!("{cf}.block_gpus"), "must be at least 1"));
            }
            let min_gpus = c.min_gpus.unwrap_or(0);
            if let Some(cap) = capacity[a] {
                if u64::from(min_gpus) > cap {
                    return Err(invalid(
                        format!("{cf}.min_gpus"),
                        format!("{min_gpus} exceeds the provider's capacity {cap}"),
                    ));
                }
            }
            options.push(CommitOption {
                accelerator: a,
                term_periods: c.term_periods as usize,
                rate,
                block_gpus,
                min_gpus,
            });
            let from_catalog = quotes[a].as_ref().and_then(|q| {
                q.committed.iter().find(|(m, _)| {
                    u64::from(*m) * 730
                        == u64::from(c.term_periods) * u64::from(horizon.period_hours)
                })
            });
            src(
                a,
                format!("committed {} periods", c.term_periods),
                rate,
                file_source(&format!("{cf}.rate"), from_catalog.map(|x| x.1.rate)),
            );
        }
        for (a, q) in quotes.iter().enumerate() {
            let Some(q) = q else { continue };
            for (months, c) in &q.committed {
                let hours = u64::from(*months) * 730;
                if hours % u64::from(horizon.period_hours) != 0 {
                    continue;
                }
                let term_periods = (hours / u64::from(horizon.period_hours)) as usize;
                if options
                    .iter()
                    .any(|o: &CommitOption| o.accelerator == a && o.term_periods == term_periods)
                {
                    continue; // the file's negotiated rate for this term overrides the catalog's
                }
                options.push(CommitOption {
                    accelerator: a,
                    term_periods,
                    rate: c.rate,
                    block_gpus: 1,
                    min_gpus: 0,
                });
                src(
                    a,
                    format!("committed {term_periods} periods"),
                    c.rate,
                    format!("catalog {label}: {} ({months}-month term)", c.offer),
                );
            }
        }
        let mut existing = Vec::new();
        for (ei, e) in rp.existing.iter().enumerate() {
            let ef = format!("{f}.existing[{ei}]");
            let a = accel_field(format!("{ef}.accelerator"), &e.accelerator, &accelerators)?;
            let start = YearMonth::parse(&e.start).map_err(|_| {
                invalid(
                    format!("{ef}.start"),
                    format!("{:?} is not a YYYY-MM month", e.start),
                )
            })?;
            if e.term_periods == 0 {
                return Err(invalid(format!("{ef}.term_periods"), "must be at least 1"));
            }
            let rate = positive_rate(format!("{ef}.rate"), e.rate)?;
            existing.push(ExistingContract {
                accelerator: a,
                gpus: e.gpus,
                start,
                term_periods: e.term_periods as usize,
                rate,
            });
        }
        providers.push(Provider {
            id,
            on_demand,
            spot,
            spot_availability,
            capacity,
            options,
            existing,
        });
    }

    // Policies.
    let rp = raw.policies;
    let mut policies = Policies::default();
    if let Some(ms) = rp.max_share {
        let v = fraction("policies.max_share.value".into(), ms.value)?;
        if v == 0.0 {
            return Err(invalid("policies.max_share.value", "must be above 0"));
        }
        policies.max_share = Some((ms.of, v));
    }
    if let Some(m) = rp.min_providers {
        if m as usize > providers.len() {
            return Err(invalid(
                "policies.min_providers",
                format!("{m} exceeds the number of providers ({})", providers.len()),
            ));
        }
        policies.min_providers = Some(m as usize);
    }
    if let Some(k) = rp.keep_fraction {
        policies.keep_fraction = Some(fraction("policies.keep_fraction".into(), k)?);
    }
    if let Some(s) = rp.survive_loss_of {
        if s as usize >= providers.len() {
            return Err(invalid(
                "policies.survive_loss_of",
                format!(
                    "must be less than the number of providers ({})",
                    providers.len()
                ),
            ));
        }
        if s > 0 && policies.keep_fraction.is_none() {
            return Err(invalid(
                "policies.survive_loss_of",
                "needs policies.keep_fraction (the share of demand that must survive)",
            ));
        }
        policies.survive_loss_of = s as usize;
    }
    if let Some(b) = rp.resilience_basis {
        policies.resilience_basis = b;
    }
    if let Some(b) = rp.budget_usd {
        if !(b.is_finite() && b > 0.0) {
            return Err(invalid(
                "policies.budget_usd",
                format!("must be positive (got {b})"),
            ));
        }
        policies.budget = Some(
            Money::from_usd_f64(b).map_err(|e| invalid("policies.budget_usd", e.to_string()))?,
        );
    }
    match rp.unmet_demand {
        None => {}
        Some(RawUnmet::Word(w)) if w == "forbid" => policies.unmet = Unmet::Forbid,
        Some(RawUnmet::Word(w)) => {
            return Err(invalid(
                "policies.unmet_demand",
                format!("must be `forbid` or {{penalty_per_gpu_hour: N}} (got {w:?})"),
            ))
        }
        Some(RawUnmet::Penalty {
            penalty_per_gpu_hour,
        }) => {
            policies.unmet = Unmet::Penalty(positive_rate(
                "policies.unmet_demand.penalty_per_gpu_hour".into(),
                penalty_per_gpu_hour,
            )?)
        }
    }
    if let Some(r) = raw.risk {
        if !(r.cvar_alpha.is_finite() && r.cvar_alpha > 0.0 && r.cvar_alpha < 1.0) {
            return Err(invalid(
                "risk.cvar_alpha",
                format!("must be in (0, 1) (got {})", r.cvar_alpha),
            ));
        }
        if !(r.weight.is_finite() && r.weight >= 0.0) {
            return Err(invalid(
                "risk.weight",
                format!("must be >= 0 (got {})", r.weight),
            ));
        }
    }

    // Every accelerator must be obtainable somewhere, or demand for it can never be met.
    for (a, acc) in accelerators.iter().enumerate() {
        let offered = providers.iter().any(|p| {
            p.on_demand[a].is_some()
                || p.spot[a].is_some()
                || p.options.iter().any(|o| o.accelerator == a)
        });
        let needed = scenarios
            .iter()
            .any(|s| s.demand[a].iter().any(|d| d.0 > 0));
        if needed && !offered {
            return Err(invalid(
                format!("accelerators[{a}]"),
                format!("{acc} has demand but no provider offers it"),
            ));
        }
    }

    Ok(PlanningInput {
        horizon,
        accelerators,
        scenarios,
        providers,
        policies,
        risk: raw.risk,
        price_sources,
    })
}

/// `plan file (FIELD)`, noting the catalog's price when the file overrides one.
fn file_source(field: &str, catalog: Option<Rate>) -> String {
    match catalog {
        Some(c) => format!(
            "plan file ({field}; overrides the catalog's {:.2})",
            c.to_usd_per_hour_f64()
        ),
        None => format!("plan file ({field})"),
    }
}

/// The catalog's quotes `[a]` for a provider with `prices_from` (all `None` without it).
fn catalog_quotes(
    f: &str,
    rp: &RawProvider,
    accelerators: &[Accelerator],
    catalog: Option<CatalogSource<'_>>,
) -> Result<Vec<Option<Quote>>, PlanError> {
    let na = accelerators.len();
    let Some(pf) = &rp.prices_from else {
        return Ok(vec![None; na]);
    };
    let field = format!("{f}.prices_from");
    let cat = catalog
        .ok_or_else(|| invalid(field.clone(), "no catalog was given to take prices from"))?;
    let cprov = ProviderId::parse(pf.provider.as_deref().unwrap_or(&rp.name));
    let region = pf.region.as_deref();
    let where_ = region.map_or(String::new(), |r| format!(" in {r}"));
    if !has_offers(cat.catalog, &cprov, None) {
        return Err(invalid(
            field,
            format!("the catalog ({}) has no offers for {cprov}", cat.label),
        ));
    }
    if !has_offers(cat.catalog, &cprov, region) {
        return Err(invalid(
            format!("{field}.region"),
            format!(
                "the catalog ({}) has no offers for {cprov}{where_}",
                cat.label
            ),
        ));
    }
    let wanted: Vec<usize> = match &pf.accelerators {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, k)| accel_field(format!("{field}.accelerators[{i}]"), k, accelerators))
            .collect::<Result<_, _>>()?,
        None => (0..na).collect(),
    };
    let mut out = vec![None; na];
    for &a in &wanted {
        let q = quote(cat.catalog, &cprov, region, &accelerators[a]);
        if q.is_none() && pf.accelerators.is_some() {
            return Err(invalid(
                field,
                format!("no {} offer for {cprov}{where_}", accelerators[a]),
            ));
        }
        out[a] = q;
    }
    if out.iter().all(Option::is_none) {
        let names: Vec<String> = wanted
            .iter()
            .map(|&a| accelerators[a].to_string())
            .collect();
        return Err(invalid(
            field,
            format!("no {} offer for {cprov}{where_}", names.join(" or ")),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const MINIMAL: &str = "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 2, period_hours: 730}
accelerators: [H100]
demand:
  - scenario: base
    probability: 1
    gpus: {H100: [10, 12]}
providers:
  - name: azure
    on_demand: {H100: 6.98}
    commitments:
      - {accelerator: H100, term_periods: 2, rate: 4.19}
";

    fn err(text: &str) -> String {
        parse_plan_yaml(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_minimal() {
        let p = parse_plan_yaml(MINIMAL).unwrap();
        assert_eq!(p.horizon.start.to_string(), "2027-01");
        assert_eq!(p.scenarios[0].demand[0][1], MilliGpus(12_000));
        assert_eq!(
            p.providers[0].options[0].rate,
            Rate::from_usd_per_hour_f64(4.19).unwrap()
        );
        assert_eq!(p.policies.unmet, Unmet::Forbid);
    }

    #[test]
    fn errors_name_their_field() {
        let cases = [
            (
                MINIMAL.replace("rate: 4.19", "rate: -1"),
                "providers[0].commitments[0].rate: must be positive",
            ),
            (
                MINIMAL.replace("probability: 1", "probability: 0.5"),
                "demand[*].probability: probabilities sum to 0.5",
            ),
            (
                MINIMAL.replace("[10, 12]", "[10]"),
                "demand[0].gpus.H100: has 1 values",
            ),
            (
                MINIMAL.replace("periods: 2,", "periods: two,"),
                "horizon.periods:",
            ),
            (
                MINIMAL.replace("on_demand: {H100", "on_demand: {B200"),
                "providers[0].on_demand.B200: accelerator is not listed",
            ),
            (MINIMAL.replace("2027-01", "2027-13"), "horizon.start:"),
            (
                MINIMAL.replace("term_periods: 2", "term_periods: 0"),
                "providers[0].commitments[0].term_periods: must be at least 1",
            ),
            (
                format!("{MINIMAL}policies: {{max_share: {{of: committed_gpus, value: 1.5}}}}\n"),
                "policies.max_share.value: must be between 0 and 1",
            ),
            (
                format!("{MINIMAL}policies: {{survive_loss_of: 1}}\n"),
                "policies.survive_loss_of: must be less than",
            ),
            (
                format!("{MINIMAL}policies: {{unmet_demand: allow}}\n"),
                "policies.unmet_demand:",
            ),
            (
                MINIMAL.replace("name: azure", "name: azure\n    colour: blue"),
                "providers[0].colour: unknown field `colour`",
            ),
        ];
        for (text, want) in cases {
            let got = err(&text);
            assert!(got.starts_with(want), "want {want:?}, got {got:?}");
        }
    }

    proptest::proptest! {
        /// Stable-toolchain stand-in for the fuzz target: a mangled plan file never panics, and every error
        /// names a field.
        #[test]
        fn mangled_files_give_field_errors(at in 0usize..400, len in 0usize..20, junk in "[ -~\n]{0,12}") {
            let mut text = MINIMAL.to_owned();
            let a = at.min(text.len());
            let b = (a + len).min(text.len());
            if text.is_char_boundary(a) && text.is_char_boundary(b) {
                text.replace_range(a..b, &junk);
            }
            if let Err(e) = parse_plan_yaml(&text) {
                let PlanError::Invalid { field, reason } = e else { panic!("not Invalid") };
                proptest::prop_assert!(!field.is_empty() && !reason.is_empty());
            }
        }
    }

    #[test]
    fn penalty_and_policies_parse() {
        let t = format!(
            "{MINIMAL}policies:\n  max_share: {{of: committed_spend, value: 0.45}}\n  keep_fraction: 0.7\n  budget_usd: 5.0e11\n  unmet_demand: {{penalty_per_gpu_hour: 50}}\n"
        );
        let p = parse_plan_yaml(&t).unwrap();
        assert_eq!(p.policies.max_share, Some((ShareOf::CommittedSpend, 0.45)));
        assert_eq!(p.policies.budget, Some(Money::from_usd(500_000_000_000)));
        assert_eq!(
            p.policies.unmet,
            Unmet::Penalty(Rate::from_usd_per_hour_f64(50.0).unwrap())
        );
    }
}
