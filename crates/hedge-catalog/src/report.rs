//! `hedge catalog check`: counts of what a catalog holds and what was wrong with it.

use crate::diag::{Diagnostic, Severity};
use crate::{Format, Loaded};
use hedge_core::{Money, ProviderId, Reliability};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// At most this many diagnostics are listed by `Display`; the counts always cover all of them.
pub const LISTED_DIAGNOSTICS: usize = 40;

#[derive(Clone, Debug, Serialize)]
pub struct ProviderCounts {
    pub offers: usize,
    pub regions: usize,
    pub with_spot: usize,
    pub with_committed: usize,
    pub egress_per_gb: Option<Money>,
    pub reliability: Option<Reliability>,
}

/// What [`crate::check`] found. `Display` is the text `hedge catalog check` prints.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub path: String,
    pub format: Format,
    pub offers: usize,
    pub providers: BTreeMap<ProviderId, ProviderCounts>,
    /// Offers per accelerator name; CPU-only offers are counted under `(cpu only)`.
    pub accelerators: BTreeMap<String, usize>,
    pub capacities: usize,
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Vec<String>,
}

impl CheckReport {
    pub fn new(path: &str, loaded: &Loaded) -> Self {
        let c = &loaded.catalog;
        let mut providers: BTreeMap<ProviderId, ProviderCounts> = BTreeMap::new();
        let mut regions: BTreeMap<&ProviderId, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for (p, info) in c.providers() {
            providers.insert(
                p.clone(),
                ProviderCounts {
                    offers: 0,
                    regions: 0,
                    with_spot: 0,
                    with_committed: 0,
                    egress_per_gb: info.egress_per_gb,
                    reliability: info.reliability,
                },
            );
        }
        let mut accelerators: BTreeMap<String, usize> = BTreeMap::new();
        for o in c.offers() {
            let pc = providers
                .entry(o.provider.clone())
                .or_insert(ProviderCounts {
                    offers: 0,
                    regions: 0,
                    with_spot: 0,
                    with_committed: 0,
                    egress_per_gb: None,
                    reliability: None,
                });
            pc.offers += 1;
            pc.with_spot += usize::from(o.prices.spot.is_some());
            pc.with_committed += usize::from(!o.prices.committed.is_empty());
            regions
                .entry(&o.provider)
                .or_default()
                .insert(o.location.region().as_str());
            let key = o
                .accelerator
                .as_ref()
                .map_or_else(|| "(cpu only)".to_owned(), |a| a.name.to_string());
            *accelerators.entry(key).or_default() += 1;
        }
        for (p, r) in regions {
            if let Some(pc) = providers.get_mut(p) {
                pc.regions = r.len();
            }
        }
        CheckReport {
            path: path.to_owned(),
            format: loaded.format,
            offers: c.len(),
            providers,
            accelerators,
            capacities: c.capacities().len(),
            errors: loaded.count(Severity::Error),
            warnings: loaded.count(Severity::Warning),
            infos: loaded.count(Severity::Info),
            diagnostics: loaded.diagnostics.clone(),
            sources: loaded.meta.sources.clone(),
        }
    }

    /// True when nothing was skipped as malformed (warnings and infos allowed).
    pub fn is_ok(&self) -> bool {
        self.errors == 0
    }
}

fn hours(s: u64) -> String {
    let h = s as f64 / 3600.0;
    if h >= 48.0 {
        format!("{:.1}d", h / 24.0)
    } else {
        format!("{h:.1}h")
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "catalog {} ({})", self.path, self.format)?;
        writeln!(f, "offers: {}", self.offers)?;
        writeln!(f, "providers:")?;
        for (p, c) in &self.providers {
            write!(
                f,
                "  {:<8} {:>6} offers {:>3} regions {:>6} spot {:>6} committed",
                p.as_str(),
                c.offers,
                c.regions,
                c.with_spot,
                c.with_committed
            )?;
            if let Some(e) = c.egress_per_gb {
                write!(f, "  egress {e}/GB")?;
            }
            if let Some(r) = c.reliability {
                write!(f, "  mtbf {} mttr {}", hours(r.mtbf_s), hours(r.mttr_s))?;
            }
            writeln!(f)?;
        }
        writeln!(f, "accelerators:")?;
        for (a, n) in &self.accelerators {
            writeln!(f, "  {a:<14} {n:>6}")?;
        }
        writeln!(f, "capacity entries: {}", self.capacities)?;
        writeln!(
            f,
            "diagnostics: {} errors, {} warnings, {} info",
            self.errors, self.warnings, self.infos
        )?;
        let mut listed: Vec<&Diagnostic> = self.diagnostics.iter().collect();
        listed.sort_by_key(|d| std::cmp::Reverse(d.severity));
        for d in listed.iter().take(LISTED_DIAGNOSTICS) {
            writeln!(f, "  {d}")?;
        }
        if listed.len() > LISTED_DIAGNOSTICS {
            writeln!(f, "  ... and {} more", listed.len() - LISTED_DIAGNOSTICS)?;
        }
        if !self.sources.is_empty() {
            writeln!(f, "sources:")?;
            for s in &self.sources {
                writeln!(f, "  - {s}")?;
            }
        }
        Ok(())
    }
}
