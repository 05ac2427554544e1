//! Import of SkyPilot v8 catalog directories: `<cloud>/vms.csv` per cloud plus `common/accelerators.csv`.
//!
//! What this module handles, each with a test:
//! - **Columns by header name.** Each cloud orders its columns differently (GCP puts `vCPUs` second, Lambda
//!   puts `Price` before `Region`); unknown columns (`Arch`, `Generation`) are ignored.
//! - **CRLF** line endings (Lambda, Nebius) and a UTF-8 byte-order mark.
//! - **Empty prices**: an empty `SpotPrice` means no spot market; an empty `Price` means no on-demand market;
//!   a row with neither is dropped with a warning.
//! - **`GpuInfo`** is a Python-literal dict (`{'Gpus': [{'Name': 'A100', 'Count': 8, ...}]}`) or, in the
//!   Azure catalog, a bare accelerator name. It is parsed with [`crate::pylit`] and cross-checked against
//!   `AcceleratorName`/`AcceleratorCount`; a disagreement is a warning (the columns win), a malformed dict
//!   is a warning (the row is still loaded: `GpuInfo` adds nothing Hedge needs).
//! - **Zone ids**: `AvailabilityZone` is kept as written, as a [`ZoneId`] inside [`Location::Zone`]; AWS
//!   writes zone *ids* (`use1-az1`), which are stable across accounts, unlike zone names.
//! - **GCP's split rows** (see [`join_gcp`]): a host-VM row (`a3-highgpu-8g`, no accelerator columns) and a
//!   GPU-price row (empty `InstanceType`, `H100`, `8`) in the same zone are summed into one offer.
//! - **Wrong rows** are fixed by an [`crate::Overrides`] file, applied between parsing and joining, each
//!   application reported as a warning.
//!
//! A malformed row gives an [`Severity::Error`] diagnostic naming file, line, column and reason, and is
//! skipped; every other row still loads. Nothing here panics on any input (see the `catalog_csv` fuzz
//! target).

use crate::diag::{Column, Diagnostic, Severity};
use crate::overrides::Overrides;
use crate::pylit::{self, PyValue};
use hedge_core::accel::parse_count;
use hedge_core::{
    AccelRequest, Accelerator, Location, Offer, Prices, ProviderId, Rate, RegionId, ZoneId,
};
use std::collections::HashMap;
use std::sync::Arc;

/// One parsed row of a `vms.csv`, before GCP rows are joined and before it becomes an [`Offer`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RawRow {
    pub provider: ProviderId,
    /// The file label, shared by every row of the file.
    pub file: Arc<str>,
    /// 1-based line of the row in its file.
    pub line: u64,
    /// `None` for a GCP GPU-price row (empty `InstanceType`).
    pub instance_type: Option<String>,
    pub accelerator: Option<AccelRequest>,
    pub vcpus_milli: Option<u32>,
    pub memory_mib: Option<u64>,
    pub region: RegionId,
    pub zone: Option<ZoneId>,
    pub on_demand: Option<Rate>,
    pub spot: Option<Rate>,
}

impl RawRow {
    fn location(&self) -> Location {
        match &self.zone {
            Some(z) => Location::Zone {
                region: self.region.clone(),
                zone: z.clone(),
            },
            None => Location::Region {
                region: self.region.clone(),
            },
        }
    }
}

#[derive(Default)]
struct Cols {
    instance_type: Option<usize>,
    accel_name: Option<usize>,
    accel_count: Option<usize>,
    vcpus: Option<usize>,
    memory: Option<usize>,
    gpu_info: Option<usize>,
    price: Option<usize>,
    spot: Option<usize>,
    region: Option<usize>,
    zone: Option<usize>,
}

/// Parses one cloud's `vms.csv` into rows. `file` is the label used in diagnostics. Header names are matched
/// exactly (after trimming spaces and a byte-order mark); `InstanceType`, `Price` and `Region` are required.
pub fn parse_vms_csv(
    provider: &ProviderId,
    file: &str,
    bytes: &[u8],
    diags: &mut Vec<Diagnostic>,
) -> Vec<RawRow> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = rdr.byte_records();
    let header = match records.next() {
        None => {
            diags.push(Diagnostic::new(
                Severity::Error,
                file,
                "the file is empty: no header row",
            ));
            return Vec::new();
        }
        Some(Err(e)) => {
            diags.push(
                Diagnostic::new(Severity::Error, file, format!("unreadable header: {e}"))
                    .at_line(1),
            );
            return Vec::new();
        }
        Some(Ok(h)) => h,
    };
    let header_line = header.position().map_or(1, |p| p.line());
    let mut names = Vec::with_capacity(header.len());
    let mut cols = Cols::default();
    for (i, raw) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(raw);
        let name = name.trim_start_matches('\u{feff}').trim().to_owned();
        let slot = match name.as_str() {
            "InstanceType" => &mut cols.instance_type,
            "AcceleratorName" => &mut cols.accel_name,
            "AcceleratorCount" => &mut cols.accel_count,
            "vCPUs" => &mut cols.vcpus,
            "MemoryGiB" => &mut cols.memory,
            "GpuInfo" => &mut cols.gpu_info,
            "Price" => &mut cols.price,
            "SpotPrice" => &mut cols.spot,
            "Region" => &mut cols.region,
            "AvailabilityZone" => &mut cols.zone,
            _ => {
                names.push(name);
                continue;
            }
        };
        if slot.is_some() {
            diags.push(
                Diagnostic::new(
                    Severity::Error,
                    file,
                    format!("column {name:?} appears twice in the header"),
                )
                .at_line(header_line)
                .at_column(Column::Field {
                    index: i as u32 + 1,
                    name: name.clone(),
                }),
            );
            return Vec::new();
        }
        *slot = Some(i);
        names.push(name);
    }
    let missing: Vec<&str> = [
        ("InstanceType", cols.instance_type),
        ("Price", cols.price),
        ("Region", cols.region),
    ]
    .iter()
    .filter(|(_, c)| c.is_none())
    .map(|(n, _)| *n)
    .collect();
    if !missing.is_empty() {
        diags.push(
            Diagnostic::new(
                Severity::Error,
                file,
                format!("header lacks required column(s) {}", missing.join(", ")),
            )
            .at_line(header_line),
        );
        return Vec::new();
    }

    let mut out = Vec::new();
    let mut gpu_info_cache = GpuInfoCache::default();
    let file_label: Arc<str> = Arc::from(file);
    for rec in records {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                diags.push(
                    Diagnostic::new(Severity::Error, file, format!("unreadable CSV record: {e}"))
                        .at_line(line),
                );
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() != names.len() {
            diags.push(
                Diagnostic::new(
                    Severity::Error,
                    file,
                    format!(
                        "row has {} fields, the header has {}; row skipped",
                        rec.len(),
                        names.len()
                    ),
                )
                .at_line(line),
            );
            continue;
        }
        let mut row = RowCtx {
            gpu_info_cache: &mut gpu_info_cache,
            file_label: &file_label,
            file,
            line,
            names: &names,
            rec: &rec,
            diags,
            failed: false,
        };
        if let Some(r) = row.parse(provider, &cols) {
            out.push(r);
        }
    }
    out
}

type GpuInfoCache = HashMap<String, HashMap<Option<AccelRequest>, Vec<(Severity, String)>>>;

struct RowCtx<'a> {
    gpu_info_cache: &'a mut GpuInfoCache,
    file_label: &'a Arc<str>,
    file: &'a str,
    line: u64,
    names: &'a [String],
    rec: &'a csv::ByteRecord,
    diags: &'a mut Vec<Diagnostic>,
    failed: bool,
}

impl<'a> RowCtx<'a> {
    fn diag(&mut self, sev: Severity, col: usize, reason: String) {
        if sev == Severity::Error {
            self.failed = true;
        }
        let d = Diagnostic::new(sev, self.file, reason)
            .at_line(self.line)
            .at_column(Column::Field {
                index: col as u32 + 1,
                name: self.names[col].clone(),
            });
        self.diags.push(d);
    }
    /// The trimmed text of a column, or `None` if the column is absent or the cell empty.
    fn text(&mut self, col: Option<usize>) -> Option<(usize, &'a str)> {
        let c = col?;
        let rec: &'a csv::ByteRecord = self.rec;
        match std::str::from_utf8(rec.get(c)?) {
            Ok(s) => Some((c, s.trim())).filter(|(_, s)| !s.is_empty()),
            Err(e) => {
                self.diag(
                    Severity::Error,
                    c,
                    format!("not valid UTF-8 ({e}); row skipped"),
                );
                None
            }
        }
    }
    fn number(&mut self, col: Option<usize>, what: &str) -> Option<f64> {
        let (c, s) = self.text(col)?;
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => {
                self.diag(
                    Severity::Error,
                    c,
                    format!("{what} {s:?} is not a non-negative number; row skipped"),
                );
                None
            }
        }
    }
    fn price(&mut self, col: Option<usize>, what: &str) -> Option<Rate> {
        let (c, s) = self.text(col)?;
        let parsed = s.parse::<f64>().map_err(|e| e.to_string()).and_then(|v| {
            if v.is_finite() && v > 1.0e9 {
                Err(format!("{v} $/h is beyond any real price"))
            } else {
                Rate::from_usd_per_hour_f64(v).map_err(|e| e.to_string())
            }
        });
        match parsed {
            Ok(r) => Some(r),
            Err(e) => {
                self.diag(
                    Severity::Error,
                    c,
                    format!("{what} {s:?} is not a price ({e}); row skipped"),
                );
                None
            }
        }
    }

    fn parse(&mut self, provider: &ProviderId, cols: &Cols) -> Option<RawRow> {
        let instance_type = self.text(cols.instance_type).map(|(_, s)| s.to_owned());
        let region = self.text(cols.region).map(|(_, s)| RegionId::new(s));
        let zone = self.text(cols.zone).map(|(_, s)| ZoneId::new(s));
        let name = self.text(cols.accel_name);
        let count = self.text(cols.accel_count);
        let accelerator = match (name, count) {
            (None, None) => None,
            (None, Some((c, n))) => {
                if parse_count(n).is_ok() {
                    self.diag(
                        Severity::Error,
                        c,
                        format!("AcceleratorCount {n:?} without an AcceleratorName; row skipped"),
                    );
                } else if n.parse::<f64>() != Ok(0.0) {
                    self.diag(
                        Severity::Error,
                        c,
                        format!("AcceleratorCount {n:?} is not a whole number; row skipped"),
                    );
                }
                None
            }
            (Some((c, n)), None) => {
                self.diag(
                    Severity::Error,
                    c,
                    format!("AcceleratorName {n:?} without an AcceleratorCount; row skipped"),
                );
                None
            }
            (Some((nc, n)), Some((cc, k))) => match (Accelerator::parse(n), parse_count(k)) {
                (Ok(a), Ok(k)) => Some(AccelRequest::new(a, k)),
                (Err(e), _) => {
                    self.diag(
                        Severity::Error,
                        nc,
                        format!("AcceleratorName {n:?}: {e}; row skipped"),
                    );
                    None
                }
                (_, Err(e)) => {
                    self.diag(
                        Severity::Error,
                        cc,
                        format!("AcceleratorCount {k:?}: {e}; row skipped"),
                    );
                    None
                }
            },
        };
        let vcpus_milli = self.number(cols.vcpus, "vCPUs").and_then(|v| {
            let m = (v * 1000.0).round();
            (m <= u32::MAX as f64).then_some(m as u32).or_else(|| {
                self.diag(
                    Severity::Error,
                    cols.vcpus.unwrap_or(0),
                    format!("vCPUs {v} is too large; row skipped"),
                );
                None
            })
        });
        let memory_mib = self.number(cols.memory, "MemoryGiB").and_then(|v| {
            let m = (v * 1024.0).round();
            (m <= 1.0e15).then_some(m as u64).or_else(|| {
                self.diag(
                    Severity::Error,
                    cols.memory.unwrap_or(0),
                    format!("MemoryGiB {v} is too large; row skipped"),
                );
                None
            })
        });
        let on_demand = self.price(cols.price, "Price");
        let spot = self.price(cols.spot, "SpotPrice");
        if let Some((c, info)) = self.text(cols.gpu_info) {
            self.check_gpu_info(c, info, accelerator.as_ref());
        }
        if self.failed {
            return None;
        }
        let Some(region) = region else {
            let c = cols.region.unwrap_or(0);
            self.diag(Severity::Error, c, "Region is empty; row skipped".into());
            return None;
        };
        if instance_type.is_none() && (accelerator.is_none() || provider.as_str() != "gcp") {
            let c = cols.instance_type.unwrap_or(0);
            let why = if provider.as_str() == "gcp" {
                "InstanceType is empty and the row names no accelerator; row skipped"
            } else {
                "InstanceType is empty (only GCP catalogs have GPU-price rows without one); row skipped"
            };
            self.diag(Severity::Error, c, why.into());
            return None;
        }
        if on_demand.is_none() && spot.is_none() {
            let c = cols.price.unwrap_or(0);
            self.diag(
                Severity::Warning,
                c,
                "neither Price nor SpotPrice is given; row skipped".into(),
            );
            return None;
        }
        Some(RawRow {
            provider: provider.clone(),
            file: Arc::clone(self.file_label),
            line: self.line,
            instance_type,
            accelerator,
            vcpus_milli,
            memory_mib,
            region,
            zone,
            on_demand,
            spot,
        })
    }

    /// Cross-checks `GpuInfo` against the accelerator columns. Never fails the row. Findings are cached per
    /// distinct (`GpuInfo`, accelerator): catalogs repeat the same dict on many rows.
    fn check_gpu_info(&mut self, c: usize, info: &str, acc: Option<&AccelRequest>) {
        let per_info = match self.gpu_info_cache.get_mut(info) {
            Some(m) => m,
            None => self.gpu_info_cache.entry(info.to_owned()).or_default(),
        };
        let findings = match per_info.get(&acc.cloned()) {
            Some(f) => f.clone(),
            None => {
                let f = gpu_info_findings(info, acc);
                per_info.insert(acc.cloned(), f.clone());
                f
            }
        };
        for (sev, msg) in findings {
            self.diag(sev, c, msg);
        }
    }
}

/// What is wrong with a `GpuInfo` cell, given the row's accelerator: (severity, reason) per finding.
fn gpu_info_findings(info: &str, acc: Option<&AccelRequest>) -> Vec<(Severity, String)> {
    let mut out = Vec::new();
    if !info.starts_with('{') {
        // Azure writes the bare accelerator name.
        if let (Some(a), Ok(n)) = (acc, Accelerator::parse(info)) {
            if !same_family(&a.name, &n) {
                out.push((
                    Severity::Warning,
                    format!("GpuInfo names {n} but AcceleratorName is {}", a.name),
                ));
            }
        }
        return out;
    }
    let v = match pylit::parse(info) {
        Ok(v) => v,
        Err(e) => {
            out.push((
                Severity::Warning,
                format!("GpuInfo is not a Python literal ({e}); ignored"),
            ));
            return out;
        }
    };
    let Some(gpu) = v
        .get("Gpus")
        .and_then(PyValue::as_list)
        .and_then(|l| l.first())
    else {
        if !matches!(v, PyValue::Dict(_)) {
            out.push((Severity::Warning, "GpuInfo is not a dict; ignored".into()));
        }
        return out;
    };
    let Some(a) = acc else { return out };
    if let Some(n) = gpu
        .get("Name")
        .and_then(PyValue::as_str)
        .and_then(|n| Accelerator::parse(n).ok())
    {
        if !same_family(&a.name, &n) {
            out.push((
                Severity::Warning,
                format!("GpuInfo names {n} but AcceleratorName is {}", a.name),
            ));
        }
    }
    if let Some(k) = gpu.get("Count").and_then(PyValue::as_i64) {
        if k != a.count as i64 {
            out.push((
                Severity::Warning,
                format!(
                    "GpuInfo counts {k} GPUs but AcceleratorCount is {}",
                    a.count
                ),
            ));
        }
    }
    out
}

/// `A100` in `GpuInfo` and `A100-80GB` in `AcceleratorName` name the same family (AWS writes this).
fn same_family(column: &Accelerator, info: &Accelerator) -> bool {
    column == info || column.as_str().starts_with(&format!("{}-", info.as_str()))
}

/// GCP instance types that come with a fixed accelerator, as SkyPilot 0.14.1 maps them
/// (`sky/catalog/gcp_catalog.py`, `_ACC_INSTANCE_TYPE_DICTS`). Their host row carries no accelerator; the
/// GPU price is on a separate row.
pub const GCP_FIXED_ACCELERATOR: &[(&str, &str, u32)] = &[
    ("a2-highgpu-1g", "A100", 1),
    ("a2-highgpu-2g", "A100", 2),
    ("a2-highgpu-4g", "A100", 4),
    ("a2-highgpu-8g", "A100", 8),
    ("a2-megagpu-16g", "A100", 16),
    ("a2-ultragpu-1g", "A100-80GB", 1),
    ("a2-ultragpu-2g", "A100-80GB", 2),
    ("a2-ultragpu-4g", "A100-80GB", 4),
    ("a2-ultragpu-8g", "A100-80GB", 8),
    ("g2-standard-4", "L4", 1),
    ("g2-standard-8", "L4", 1),
    ("g2-standard-12", "L4", 1),
    ("g2-standard-16", "L4", 1),
    ("g2-standard-32", "L4", 1),
    ("g2-standard-24", "L4", 2),
    ("g2-standard-48", "L4", 4),
    ("g2-standard-96", "L4", 8),
    ("a3-highgpu-1g", "H100", 1),
    ("a3-highgpu-2g", "H100", 2),
    ("a3-highgpu-4g", "H100", 4),
    ("a3-highgpu-8g", "H100", 8),
    ("a3-megagpu-8g", "H100-MEGA", 8),
    ("a3-ultragpu-8g", "H200", 8),
    ("a4-highgpu-8g", "B200", 8),
];

fn gcp_fixed(instance_type: &str) -> Option<AccelRequest> {
    let (_, name, count) = GCP_FIXED_ACCELERATOR
        .iter()
        .find(|(t, _, _)| *t == instance_type)?;
    Accelerator::parse(name)
        .ok()
        .map(|a| AccelRequest::new(a, *count))
}

/// Turns rows of one provider into offers. For every provider but GCP this is one offer per row. For GCP it
/// is SkyPilot's join:
///
/// - a host row whose instance type comes with a fixed accelerator ([`GCP_FIXED_ACCELERATOR`]) is joined
///   with the GPU-price row of that accelerator and count **in the same zone**; the offer's on-demand price
///   is host + GPU, and its spot price is host spot + GPU spot when both exist (SkyPilot offers spot only in
///   zones where both rows list a spot price). This equals SkyPilot 0.14.1's `Resources.get_cost`:
///   `instance_type_to_hourly_cost` + `accelerators_to_hourly_cost`, which take the minimum over the zones
///   of a region (the catalog's prices are uniform within a region, which the GCP import checks and warns
///   about if not) over the zones where both rows exist (`GCP.regions_with_offering` intersects them).
/// - such a host row with no GPU row in its zone, and a GPU row with no such host row in its zone, cannot
///   be launched (SkyPilot drops them too): each is skipped with an [`Severity::Info`] diagnostic.
/// - GPU rows for accelerators that attach to general-purpose (n1) hosts (T4, V100, P100...) would need a
///   host chosen per task; Hedge does not model attachable GPUs, so they are skipped with an info diagnostic.
/// - other host rows (CPU-only VMs) become CPU offers.
pub fn rows_to_offers(
    provider: &ProviderId,
    rows: Vec<RawRow>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Offer> {
    if provider.as_str() == "gcp" {
        return join_gcp(rows, diags);
    }
    rows.into_iter()
        .map(|r| offer_from(r, None, None))
        .collect()
}

fn offer_from(r: RawRow, accelerator: Option<AccelRequest>, prices: Option<Prices>) -> Offer {
    let location = r.location();
    Offer {
        provider: r.provider,
        instance_type: r.instance_type.unwrap_or_default(),
        accelerator: accelerator.or(r.accelerator),
        vcpus_milli: r.vcpus_milli,
        memory_mib: r.memory_mib,
        location,
        prices: prices.unwrap_or(Prices {
            on_demand: r.on_demand,
            spot: r.spot,
            committed: Vec::new(),
        }),
    }
}

fn add(a: Option<Rate>, b: Option<Rate>) -> Option<Rate> {
    Some(a? + b?)
}

/// The GCP join; see [`rows_to_offers`].
pub fn join_gcp(rows: Vec<RawRow>, diags: &mut Vec<Diagnostic>) -> Vec<Offer> {
    let (hosts, gpus): (Vec<RawRow>, Vec<RawRow>) =
        rows.into_iter().partition(|r| r.instance_type.is_some());
    // (region, zone, accelerator) -> GPU row index; first row wins, duplicates are reported.
    let mut gpu_at: HashMap<(&RegionId, Option<&ZoneId>, &AccelRequest), usize> = HashMap::new();
    let mut gpu_used = vec![false; gpus.len()];
    let mut region_price: HashMap<(&RegionId, &AccelRequest), (Option<Rate>, u64)> = HashMap::new();
    for (i, g) in gpus.iter().enumerate() {
        let Some(acc) = g.accelerator.as_ref() else {
            continue;
        };
        if let Some(&first) = gpu_at.get(&(&g.region, g.zone.as_ref(), acc)) {
            diags.push(
                Diagnostic::new(
                    Severity::Warning,
                    &*g.file,
                    format!(
                        "duplicate GPU-price row for {acc} in {}; the row at line {} is used",
                        g.location(),
                        gpus[first].line
                    ),
                )
                .at_line(g.line),
            );
            gpu_used[i] = true;
            continue;
        }
        gpu_at.insert((&g.region, g.zone.as_ref(), acc), i);
        match region_price.get(&(&g.region, acc)) {
            Some(&(p, line)) if p != g.on_demand => diags.push(
                Diagnostic::new(
                    Severity::Warning,
                    &*g.file,
                    format!(
                        "GPU price for {acc} differs between zones of {} (line {line}); SkyPilot assumes one price per region",
                        g.region
                    ),
                )
                .at_line(g.line),
            ),
            Some(_) => {}
            None => {
                region_price.insert((&g.region, acc), (g.on_demand, g.line));
            }
        }
    }
    let mut offers = Vec::with_capacity(hosts.len());
    let mut pending = Vec::new();
    for h in &hosts {
        let it = h.instance_type.as_deref().unwrap_or_default();
        let Some(acc) = gcp_fixed(it) else {
            pending.push((h.clone(), None, None));
            continue;
        };
        match gpu_at.get(&(&h.region, h.zone.as_ref(), &acc)) {
            Some(&gi) => {
                gpu_used[gi] = true;
                let g = &gpus[gi];
                let prices = Prices {
                    on_demand: add(h.on_demand, g.on_demand),
                    spot: add(h.spot, g.spot),
                    committed: Vec::new(),
                };
                if prices.on_demand.is_none() && prices.spot.is_none() {
                    diags.push(
                        Diagnostic::new(Severity::Info, &*h.file, format!("{it} in {}: host and GPU rows share no market; skipped", h.location()))
                            .at_line(h.line),
                    );
                    continue;
                }
                pending.push((h.clone(), Some(acc), Some(prices)));
            }
            None => diags.push(
                Diagnostic::new(
                    Severity::Info,
                    &*h.file,
                    format!("{it} in {} has no {acc} GPU-price row in its zone; not launchable, skipped", h.location()),
                )
                .at_line(h.line),
            ),
        }
    }
    for (h, acc, prices) in pending {
        offers.push(offer_from(h, acc, prices));
    }
    for (g, used) in gpus.iter().zip(gpu_used) {
        if used {
            continue;
        }
        let acc = g
            .accelerator
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let name = g
            .accelerator
            .as_ref()
            .map(|a| a.name.to_string())
            .unwrap_or_default();
        let attachable = g.accelerator.as_ref().is_some_and(|a| {
            !GCP_FIXED_ACCELERATOR
                .iter()
                .any(|(_, n, _)| *n == a.name.as_str())
        });
        let why = if attachable {
            format!("GPU-price row for {acc} in {}: {name} attaches to a general-purpose host, which Hedge does not model; skipped", g.location())
        } else {
            format!("GPU-price row for {acc} in {} has no host VM row in its zone; not launchable, skipped", g.location())
        };
        diags.push(Diagnostic::new(Severity::Info, &*g.file, why).at_line(g.line));
    }
    offers
}

/// Parses `common/accelerators.csv` (`AcceleratorName,Clouds` with a Python list of cloud names) into
/// accelerator name -> lower-case cloud names. Malformed rows are reported and skipped.
pub fn parse_accelerators_csv(
    file: &str,
    bytes: &[u8],
    diags: &mut Vec<Diagnostic>,
) -> Vec<(String, Vec<String>)> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut out = Vec::new();
    let mut name_col = None;
    let mut clouds_col = None;
    for (i, rec) in rdr.byte_records().enumerate() {
        let Ok(rec) = rec else { continue };
        let line = rec.position().map_or(0, |p| p.line());
        if i == 0 {
            for (j, h) in rec.iter().enumerate() {
                match String::from_utf8_lossy(h)
                    .trim_start_matches('\u{feff}')
                    .trim()
                {
                    "AcceleratorName" => name_col = Some(j),
                    "Clouds" => clouds_col = Some(j),
                    _ => {}
                }
            }
            if name_col.is_none() || clouds_col.is_none() {
                diags.push(
                    Diagnostic::new(
                        Severity::Error,
                        file,
                        "header lacks AcceleratorName or Clouds",
                    )
                    .at_line(line),
                );
                return out;
            }
            continue;
        }
        let (Some(nc), Some(cc)) = (name_col, clouds_col) else {
            return out;
        };
        let (Some(name), Some(clouds)) = (rec.get(nc), rec.get(cc)) else {
            diags.push(
                Diagnostic::new(Severity::Error, file, "row is missing fields; skipped")
                    .at_line(line),
            );
            continue;
        };
        let name = String::from_utf8_lossy(name).trim().to_owned();
        let clouds = String::from_utf8_lossy(clouds);
        match pylit::parse(&clouds) {
            Ok(PyValue::List(items)) => {
                let cl = items
                    .iter()
                    .filter_map(PyValue::as_str)
                    .map(str::to_ascii_lowercase)
                    .collect();
                out.push((name, cl));
            }
            Ok(_) | Err(_) => diags.push(
                Diagnostic::new(
                    Severity::Error,
                    file,
                    format!("Clouds {clouds:?} is not a Python list; row skipped"),
                )
                .at_line(line)
                .at_column(Column::Field {
                    index: cc as u32 + 1,
                    name: "Clouds".into(),
                }),
            ),
        }
    }
    out
}

/// Imports a whole cloud file: parse, apply overrides, join. Used by [`crate::load`] for each cloud.
pub fn import_cloud(
    provider: &ProviderId,
    file: &str,
    bytes: &[u8],
    overrides: &Overrides,
    used: &mut [bool],
    diags: &mut Vec<Diagnostic>,
) -> Vec<Offer> {
    let mut rows = parse_vms_csv(provider, file, bytes, diags);
    overrides.apply(&mut rows, used, diags);
    drop_duplicate_rows(&mut rows, diags);
    rows_to_offers(provider, rows, diags)
}

/// A second row for the same instance type at the same location is dropped with a warning (the first
/// wins), as the native loader does. GCP GPU-price rows are checked by [`join_gcp`] instead.
fn drop_duplicate_rows(rows: &mut Vec<RawRow>, diags: &mut Vec<Diagnostic>) {
    let mut first: HashMap<(&str, &RegionId, Option<&ZoneId>), u64> =
        HashMap::with_capacity(rows.len());
    let mut dup = vec![false; rows.len()];
    for (i, r) in rows.iter().enumerate() {
        let Some(it) = r.instance_type.as_deref() else {
            continue;
        };
        match first.get(&(it, &r.region, r.zone.as_ref())) {
            Some(&line) => {
                dup[i] = true;
                diags.push(
                    Diagnostic::new(
                        Severity::Warning,
                        &*r.file,
                        format!(
                            "duplicate row for {it} in {} (first at line {line}); skipped",
                            r.location()
                        ),
                    )
                    .at_line(r.line),
                );
            }
            None => {
                first.insert((it, &r.region, r.zone.as_ref()), r.line);
            }
        }
    }
    if dup.contains(&true) {
        let mut i = 0;
        rows.retain(|_| {
            i += 1;
            !dup[i - 1]
        });
    }
}
