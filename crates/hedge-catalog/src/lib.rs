//! Load and validate GPU offer catalogs into [`hedge_core::Catalog`].
//!
//! Two inputs are accepted, detected by [`load`]:
//! - a **SkyPilot v8 catalog directory** (`<cloud>/vms.csv` per cloud, `common/accelerators.csv`), imported
//!   by [`skypilot`] with Hedge's [`Overrides`] applied (`data/overrides.yaml`, embedded), or a single
//!   `<cloud>/vms.csv` file;
//! - a **native catalog** (JSON, `schema_version: 1`, format in [`native`] and `data/README.md`), which adds
//!   committed prices, capacity and quotas, egress and reliability.
//!
//! ```no_run
//! let loaded = hedge_catalog::load("../shared/data/skypilot-catalog/v8".as_ref())?;
//! for d in &loaded.diagnostics {
//!     eprintln!("{d}"); // aws/vms.csv:12: column 7 (Price): error: ...
//! }
//! let h100 = hedge_core::Accelerator::parse("H100").unwrap();
//! println!("{} H100 offers", loaded.catalog.with_accelerator(&h100).len());
//! # Ok::<(), hedge_catalog::CatalogError>(())
//! ```
//!
//! [`default_catalog`] gives the curated catalog shipped in `data/catalog.json` (built by
//! `cargo run -p hedge-catalog --example build-default-catalog`), so Hedge works with no flags; [`check`]
//! gives the counts `hedge catalog check PATH` prints.
//!
//! **Architecture Invariant:** bad input never panics. A problem confined to one row is a [`Diagnostic`]
//! naming file, line, column and reason, and the other rows still load; only what makes the whole file
//! unreadable (I/O, JSON syntax, an unknown `schema_version`) is a [`CatalogError`].
//!
//! **Architecture Invariant:** every correction is visible. Overrides and skipped rows are reported as
//! diagnostics; nothing is changed silently.
//!
//! I/O happens only in [`load`], [`load_with`] and [`check`]; everything they call ([`import_skypilot`],
//! [`native::parse`]) is a pure function of bytes.

pub mod curate;
mod diag;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod native;
mod overrides;
pub mod pylit;
mod report;
pub mod skypilot;

pub use diag::{Column, Diagnostic, Severity};
pub use error::CatalogError;
pub use native::CatalogMeta;
pub use overrides::{Override, Overrides, EMBEDDED_OVERRIDES};
pub use report::{CheckReport, ProviderCounts};

use hedge_core::{Catalog, ProviderId};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The curated default catalog, embedded at build time.
pub const DEFAULT_CATALOG_JSON: &str = include_str!("../../../data/catalog.json");
const DEFAULT_LABEL: &str = "data/catalog.json (embedded)";

/// Which kind of input a catalog came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    SkyPilotV8,
    Native,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::SkyPilotV8 => "SkyPilot v8 directory",
            Format::Native => "native catalog, schema_version 1",
        })
    }
}

/// A loaded catalog and everything noticed while loading it.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub catalog: Catalog,
    /// In file order within each file.
    pub diagnostics: Vec<Diagnostic>,
    pub format: Format,
    pub meta: CatalogMeta,
}

impl Loaded {
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }
}

/// Options for [`load_with`].
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Applied to SkyPilot imports (not to native catalogs, which are already curated).
    pub overrides: Overrides,
}

impl LoadOptions {
    /// Hedge's shipped overrides (`data/overrides.yaml`).
    pub fn with_embedded_overrides() -> Result<Self, CatalogError> {
        Ok(LoadOptions {
            overrides: Overrides::embedded()?,
        })
    }
}

/// One cloud's `vms.csv`, already read: the input of [`import_skypilot`].
#[derive(Clone, Debug)]
pub struct CloudFile<'a> {
    pub provider: ProviderId,
    /// Label for diagnostics, e.g. `aws/vms.csv`.
    pub label: String,
    pub bytes: &'a [u8],
}

/// Loads a SkyPilot v8 directory, a single `<cloud>/vms.csv`, or a native catalog file, applying Hedge's
/// shipped overrides to SkyPilot rows.
pub fn load(path: &Path) -> Result<Loaded, CatalogError> {
    load_with(path, &LoadOptions::with_embedded_overrides()?)
}

/// [`load`] with explicit options.
pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Loaded, CatalogError> {
    let io = |source| CatalogError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return load_skypilot_dir(path, opts);
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let label = path.display().to_string();
    if path.file_name().is_some_and(|n| n == "vms.csv") {
        let provider = path
            .parent()
            .and_then(Path::file_name)
            .map(|n| ProviderId::parse(&n.to_string_lossy()))
            .ok_or_else(|| CatalogError::NotACatalog {
                path: path.to_owned(),
                reason: "a vms.csv must sit in a folder named after its cloud".into(),
            })?;
        let files = [CloudFile {
            provider,
            label,
            bytes: &bytes,
        }];
        return Ok(import_skypilot(&files, None, &opts.overrides));
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| CatalogError::NotACatalog {
        path: path.to_owned(),
        reason: format!("not UTF-8 text ({e})"),
    })?;
    if !text.trim_start().starts_with('{') {
        return Err(CatalogError::NotACatalog {
            path: path.to_owned(),
            reason: "expected a native catalog (a JSON object), a SkyPilot v8 directory, or a <cloud>/vms.csv".into(),
        });
    }
    load_native_str(&label, text)
}

/// Parses a native catalog from text. `label` names it in diagnostics.
pub fn load_native_str(label: &str, text: &str) -> Result<Loaded, CatalogError> {
    let (catalog, meta, diagnostics) = native::parse(label, text)?;
    Ok(Loaded {
        catalog,
        diagnostics,
        format: Format::Native,
        meta,
    })
}

/// The curated default catalog shipped in `data/catalog.json`.
pub fn default_catalog() -> Result<Loaded, CatalogError> {
    load_native_str(DEFAULT_LABEL, DEFAULT_CATALOG_JSON)
}

/// Loads `path` as [`load`] does and counts what is in it.
pub fn check(path: &Path) -> Result<CheckReport, CatalogError> {
    let loaded = load(path)?;
    Ok(CheckReport::new(&path.display().to_string(), &loaded))
}

fn load_skypilot_dir(dir: &Path, opts: &LoadOptions) -> Result<Loaded, CatalogError> {
    let d = SkyPilotDir::read(dir)?;
    Ok(import_skypilot(
        &d.files(),
        d.accelerators.as_deref(),
        &opts.overrides,
    ))
}

/// The files of a SkyPilot v8 catalog directory, read into memory (the only I/O of an import).
#[derive(Clone, Debug)]
pub struct SkyPilotDir {
    /// (cloud folder name, file contents), sorted by cloud.
    pub clouds: Vec<(String, Vec<u8>)>,
    /// `common/accelerators.csv`, if present.
    pub accelerators: Option<Vec<u8>>,
}

impl SkyPilotDir {
    /// Reads every `<cloud>/vms.csv` under `dir` and `common/accelerators.csv`.
    pub fn read(dir: &Path) -> Result<Self, CatalogError> {
        let io = |p: &Path| {
            let p = p.to_owned();
            move |source| CatalogError::Io { path: p, source }
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let vms = entry.path().join("vms.csv");
            if entry.path().is_dir() && vms.is_file() {
                found.push((entry.file_name().to_string_lossy().into_owned(), vms));
            }
        }
        if found.is_empty() {
            return Err(CatalogError::NotACatalog {
                path: dir.to_owned(),
                reason: "no <cloud>/vms.csv inside".into(),
            });
        }
        found.sort();
        let mut clouds = Vec::with_capacity(found.len());
        for (name, p) in found {
            let bytes = std::fs::read(&p).map_err(io(&p))?;
            clouds.push((name, bytes));
        }
        let acc_path = dir.join("common").join("accelerators.csv");
        let accelerators = if acc_path.is_file() {
            Some(std::fs::read(&acc_path).map_err(io(&acc_path))?)
        } else {
            None
        };
        Ok(SkyPilotDir {
            clouds,
            accelerators,
        })
    }

    /// The clouds as [`CloudFile`]s, labelled `<cloud>/vms.csv`.
    pub fn files(&self) -> Vec<CloudFile<'_>> {
        self.clouds
            .iter()
            .map(|(name, bytes)| CloudFile {
                provider: ProviderId::parse(name),
                label: format!("{name}/vms.csv"),
                bytes,
            })
            .collect()
    }
}

/// Imports already-read SkyPilot v8 files: parses each cloud, applies `overrides`, joins GCP rows, and notes
/// accelerators missing from `common/accelerators.csv` (info only). Pure: no I/O.
pub fn import_skypilot(
    files: &[CloudFile<'_>],
    accelerators_csv: Option<&[u8]>,
    overrides: &Overrides,
) -> Loaded {
    let mut diags = Vec::new();
    let mut used = vec![false; overrides.items.len()];
    let mut offers = Vec::new();
    for f in files {
        offers.extend(skypilot::import_cloud(
            &f.provider,
            &f.label,
            f.bytes,
            overrides,
            &mut used,
            &mut diags,
        ));
    }
    diags.extend(overrides.unused(&used));
    match accelerators_csv {
        None => diags.push(Diagnostic::new(
            Severity::Info,
            "common/accelerators.csv",
            "absent; accelerator names are not cross-checked",
        )),
        Some(bytes) => {
            let listed =
                skypilot::parse_accelerators_csv("common/accelerators.csv", bytes, &mut diags);
            // Aliases (`H100-SXM`) canonicalise to the same name as their target: merge their clouds.
            let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (n, clouds) in listed {
                if let Ok(a) = hedge_core::Accelerator::parse(&n) {
                    known
                        .entry(a.as_str().to_owned())
                        .or_default()
                        .extend(clouds);
                }
            }
            let mut seen = BTreeSet::new();
            for o in &offers {
                let Some(a) = &o.accelerator else { continue };
                if !seen.insert((&o.provider, &a.name)) {
                    continue;
                }
                let listed_for_cloud = known
                    .get(a.name.as_str())
                    .is_some_and(|c| c.contains(o.provider.as_str()));
                if !listed_for_cloud {
                    diags.push(Diagnostic::new(
                        Severity::Info,
                        "common/accelerators.csv",
                        format!(
                            "{} is offered by {} but not listed for it here",
                            a.name, o.provider
                        ),
                    ));
                }
            }
        }
    }
    let catalog = Catalog::new(offers, BTreeMap::new(), Vec::new());
    Loaded {
        catalog,
        diagnostics: diags,
        format: Format::SkyPilotV8,
        meta: CatalogMeta::default(),
    }
}
