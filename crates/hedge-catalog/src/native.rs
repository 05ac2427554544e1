//! Hedge's native catalog format, `schema_version: 1`: one JSON document.
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "description": "free text",
//!   "sources": ["where each figure comes from"],
//!   "providers": {
//!     "aws": { "egress_usd_per_gb": 0.09, "reliability": { "mtbf_hours": 480.0, "mttr_hours": 2.5 } }
//!   },
//!   "capacities": [
//!     { "provider": "aws", "region": "us-east-1", "accelerator": "H100", "max_gpus": 512, "quota_gpus": 64 }
//!   ],
//!   "offers": [
//!     { "provider": "aws", "instance_type": "p5.48xlarge", "accelerator": "H100:8", "vcpus": 192,
//!       "memory_gib": 2048, "region": "us-east-1", "zone": "use1-az6", "on_demand": 98.32, "spot": 36.1,
//!       "committed": [ { "term_months": 12, "usd_per_gpu_hour": 7.99 } ] }
//!   ]
//! }
//! ```
//!
//! Fields:
//! - `schema_version` (required): `1`. A reader refuses a version it does not know.
//! - `description`, `sources` (optional): provenance, shown by `hedge catalog check`.
//! - `providers` (optional): per provider, `egress_usd_per_gb` (internet egress, $/GB) and `reliability`
//!   (`mtbf_hours`: mean time between outages, `mttr_hours`: mean time to repair). Providers that have
//!   offers but no entry here get an empty entry.
//! - `capacities` (optional): per provider, optional `region` (absent: the whole provider) and accelerator,
//!   `max_gpus` (what the provider can supply) and `quota_gpus` (what the account may hold), both optional.
//! - `offers`: one per instance type and location. `provider`, `instance_type`, `region` are required.
//!   `accelerator` is `NAME:COUNT` per instance (absent: CPU-only); `vcpus` and `memory_gib` per instance;
//!   `zone` (absent: sold region-wide); `on_demand` and `spot` in $/instance-hour (absent: market not
//!   offered); `committed` lists committed-use prices per term in $/GPU-hour. An offer needs at least one
//!   price.
//!
//! Money is written in dollars and read back to the micro-dollar exactly (prices below $1e9). Unknown
//! fields are errors, so a misspelt field is never silently ignored.
//!
//! **Errors.** A JSON syntax error, a wrong `schema_version` or a malformed `providers` section stops the
//! load ([`CatalogError`]). A malformed offer or capacity is skipped with an error diagnostic naming its line,
//! column and reason; the rest loads. A second offer with the same provider, instance type and location is
//! skipped with a warning.
//!
//! **Speed.** Offers are first split as raw JSON slices (one validating pass), then each is deserialised
//! with borrowed strings; 200k offers load in well under a second (see BENCHMARKS.md, `catalog`).

use crate::diag::{Column, Diagnostic, Severity};
use crate::error::CatalogError;
use hedge_core::{
    AccelRequest, Accelerator, Capacity, Catalog, CommittedPrice, Location, Money, Offer, Prices,
    ProviderId, ProviderInfo, Rate, RegionId, Reliability, ZoneId,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

pub const SCHEMA_VERSION: u32 = 1;

/// What [`parse`] gives: the catalog, its provenance, and the diagnostics.
pub type Parsed = (Catalog, CatalogMeta, Vec<Diagnostic>);

/// Provenance carried by a native catalog.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct CatalogMeta {
    pub description: Option<String>,
    pub sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc<'a> {
    schema_version: Option<u64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    providers: BTreeMap<String, ProviderJson>,
    #[serde(default, borrow)]
    capacities: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    offers: Vec<&'a RawValue>,
}

/// The same document with offers and capacities deserialised in one pass: the fast path for clean files.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocFast<'a> {
    schema_version: Option<u64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    providers: BTreeMap<String, ProviderJson>,
    #[serde(default, borrow)]
    capacities: Vec<CapacityJson<'a>>,
    #[serde(default)]
    offers: FastOffers,
}

/// Offers converted as they are deserialised, with no intermediate `Vec<OfferJson>`. A conversion error
/// aborts the fast path (the careful path then reports it with its position).
#[derive(Default)]
struct FastOffers(Vec<Offer>);

impl<'de> Deserialize<'de> for FastOffers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FastOffers;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of offers")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FastOffers, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                let mut cache: AccelCache = HashMap::with_hasher(FnvBuild);
                while let Some(o) = seq.next_element::<OfferJson<'de>>()? {
                    out.push(offer_from_json(o, &mut cache).map_err(serde::de::Error::custom)?);
                }
                Ok(FastOffers(out))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProviderJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    egress_usd_per_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reliability: Option<ReliabilityJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReliabilityJson {
    mtbf_hours: f64,
    mttr_hours: f64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapacityJson<'a> {
    #[serde(borrow)]
    provider: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    region: Option<Cow<'a, str>>,
    #[serde(borrow)]
    accelerator: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_gpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quota_gpus: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferJson<'a> {
    #[serde(borrow)]
    provider: Cow<'a, str>,
    #[serde(borrow)]
    instance_type: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    accelerator: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vcpus: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory_gib: Option<f64>,
    #[serde(borrow)]
    region: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    zone: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_demand: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spot: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    committed: Vec<CommittedJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommittedJson {
    term_months: u16,
    usd_per_gpu_hour: f64,
}

/// Maps byte offsets in the text to 1-based (line, column), moving forward incrementally.
struct LineIndex<'a> {
    text: &'a str,
    offset: usize,
    line: u64,
    line_start: usize,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        LineIndex {
            text,
            offset: 0,
            line: 1,
            line_start: 0,
        }
    }
    fn locate(&mut self, offset: usize) -> (u64, u64) {
        if offset < self.offset {
            *self = LineIndex::new(self.text);
        }
        let bytes = self.text.as_bytes();
        let end = offset.min(bytes.len());
        for (i, &b) in bytes[self.offset..end].iter().enumerate() {
            if b == b'\n' {
                self.line += 1;
                self.line_start = self.offset + i + 1;
            }
        }
        self.offset = end;
        let col = self
            .text
            .get(self.line_start..end)
            .map_or(end - self.line_start, |s| s.chars().count()) as u64
            + 1;
        (self.line, col)
    }
}

fn offset_in(text: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize)
}

fn usd_rate(v: f64, what: &str) -> Result<Rate, String> {
    if v.is_finite() && v > 1.0e9 {
        return Err(format!("{what} {v} is beyond any real price"));
    }
    Rate::from_usd_per_hour_f64(v).map_err(|e| format!("{what}: {e}"))
}

fn usd_money(v: f64, what: &str) -> Result<Money, String> {
    if v.is_finite() && v > 1.0e9 {
        return Err(format!("{what} {v} is beyond any real price"));
    }
    Money::from_usd_f64(v).map_err(|e| format!("{what}: {e}"))
}

fn nonneg(v: f64, what: &str, max: f64) -> Result<f64, String> {
    if v.is_finite() && v >= 0.0 && v <= max {
        Ok(v)
    } else {
        Err(format!("{what} {v} is not a number between 0 and {max}"))
    }
}

fn id_text<'s>(s: &'s str, what: &str) -> Result<&'s str, String> {
    let t = s.trim();
    if t.is_empty() {
        Err(format!("{what} is empty"))
    } else {
        Ok(t)
    }
}

/// Parses a native catalog. `file` labels diagnostics and errors.
///
/// A clean file is read in one pass. If that pass fails anywhere (a syntax error, one malformed or duplicate
/// offer), the file is read again carefully: offers are split as raw slices and parsed one by one, so each
/// problem is reported with its line and column and the rest still loads.
pub fn parse(file: &str, text: &str) -> Result<Parsed, CatalogError> {
    if let Some(done) = parse_fast(file, text) {
        return done;
    }
    parse_careful(file, text)
}

fn check_version(file: &str, v: Option<u64>) -> Result<(), CatalogError> {
    match v {
        None => Err(CatalogError::MissingSchemaVersion {
            file: file.to_owned(),
            supported: SCHEMA_VERSION,
        }),
        Some(v) if v != u64::from(SCHEMA_VERSION) => Err(CatalogError::UnsupportedSchema {
            file: file.to_owned(),
            found: v,
            supported: SCHEMA_VERSION,
        }),
        Some(_) => Ok(()),
    }
}

/// `None` when the careful path must run (anything at all was wrong with an offer or capacity).
fn parse_fast(file: &str, text: &str) -> Option<Result<Parsed, CatalogError>> {
    let doc: DocFast = serde_json::from_str(text).ok()?;
    if let Err(e) = check_version(file, doc.schema_version) {
        return Some(Err(e));
    }
    let providers = match convert_providers(file, doc.providers) {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    let capacities = doc
        .capacities
        .into_iter()
        .map(capacity_from_json)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let offers = doc.offers.0;
    if duplicates(&offers).iter().any(|&d| d) {
        return None;
    }
    let meta = CatalogMeta {
        description: doc.description,
        sources: doc.sources,
    };
    Some(Ok((
        Catalog::new(offers, providers, capacities),
        meta,
        Vec::new(),
    )))
}

/// Marks every offer whose (provider, location, instance type) appeared earlier.
fn duplicates(offers: &[Offer]) -> Vec<bool> {
    let mut drop = vec![false; offers.len()];
    let mut seen: HashMap<(&ProviderId, &Location, &str), (), FnvBuild> =
        HashMap::with_capacity_and_hasher(offers.len(), FnvBuild);
    for (i, o) in offers.iter().enumerate() {
        if seen
            .insert((&o.provider, &o.location, o.instance_type.as_str()), ())
            .is_some()
        {
            drop[i] = true;
        }
    }
    drop
}

/// FNV-1a: the duplicate check hashes short strings, for which SipHash is several times slower. The keys
/// come from the file being read, so a hostile file can at worst make its own load slower.
#[derive(Clone, Copy, Default)]
struct FnvBuild;
struct Fnv(u64);
impl std::hash::BuildHasher for FnvBuild {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}
impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

fn convert_providers(
    file: &str,
    raw: BTreeMap<String, ProviderJson>,
) -> Result<BTreeMap<ProviderId, ProviderInfo>, CatalogError> {
    let mut providers = BTreeMap::new();
    for (name, p) in raw {
        let bad = |field: &str, reason: String| CatalogError::InvalidField {
            file: file.to_owned(),
            field: format!("providers.{name}.{field}"),
            reason,
        };
        let egress_per_gb = p
            .egress_usd_per_gb
            .map(|v| usd_money(v, "egress_usd_per_gb"))
            .transpose()
            .map_err(|e| bad("egress_usd_per_gb", e))?;
        let reliability = p
            .reliability
            .map(|r| -> Result<Reliability, String> {
                let h = 1.0e7;
                let mtbf = nonneg(r.mtbf_hours, "mtbf_hours", h)?;
                let mttr = nonneg(r.mttr_hours, "mttr_hours", h)?;
                Ok(Reliability {
                    mtbf_s: (mtbf * 3600.0).round() as u64,
                    mttr_s: (mttr * 3600.0).round() as u64,
                })
            })
            .transpose()
            .map_err(|e| bad("reliability", e))?;
        providers.insert(
            ProviderId::parse(&name),
            ProviderInfo {
                egress_per_gb,
                reliability,
            },
        );
    }
    Ok(providers)
}

fn capacity_from_json(c: CapacityJson) -> Result<Capacity, String> {
    let provider = ProviderId::parse(id_text(&c.provider, "provider")?);
    let region = c
        .region
        .as_deref()
        .map(|r| id_text(r, "region").map(RegionId::new))
        .transpose()?;
    let accelerator =
        Accelerator::parse(&c.accelerator).map_err(|e| format!("accelerator: {e}"))?;
    Ok(Capacity {
        provider,
        region,
        accelerator,
        max_gpus: c.max_gpus,
        quota_gpus: c.quota_gpus,
    })
}

fn parse_careful(file: &str, text: &str) -> Result<Parsed, CatalogError> {
    let doc: Doc = serde_json::from_str(text).map_err(|e| CatalogError::Json {
        file: file.to_owned(),
        line: e.line() as u64,
        column: e.column() as u64,
        message: strip_position(&e.to_string()),
    })?;
    check_version(file, doc.schema_version)?;
    let mut diags = Vec::new();
    let mut lines = LineIndex::new(text);
    let mut report = |raw: &RawValue,
                      diags: &mut Vec<Diagnostic>,
                      sev: Severity,
                      inner: Option<(usize, usize)>,
                      msg: String| {
        let (l, c) = lines.locate(offset_in(text, raw.get()));
        let (l, c) = match inner {
            Some((1, ic)) => (l, c + ic as u64 - 1),
            Some((il, ic)) => (l + il as u64 - 1, ic as u64),
            None => (l, c),
        };
        diags.push(
            Diagnostic::new(sev, file, msg)
                .at_line(l)
                .at_column(Column::Char(c as u32)),
        );
    };

    let providers = convert_providers(file, doc.providers)?;

    let mut capacities = Vec::with_capacity(doc.capacities.len());
    for raw in doc.capacities {
        let parsed = serde_json::from_str::<CapacityJson>(raw.get())
            .map_err(|e| (Some((e.line(), e.column())), strip_position(&e.to_string())))
            .and_then(|c| capacity_from_json(c).map_err(|e| (None, e)));
        match parsed {
            Ok(c) => capacities.push(c),
            Err((inner, msg)) => report(
                raw,
                &mut diags,
                Severity::Error,
                inner,
                format!("capacity skipped: {msg}"),
            ),
        }
    }

    let mut accel_cache: AccelCache = HashMap::with_hasher(FnvBuild);
    let mut offers = Vec::with_capacity(doc.offers.len());
    let mut raws = Vec::with_capacity(doc.offers.len());
    for raw in doc.offers {
        let parsed = serde_json::from_str::<OfferJson>(raw.get())
            .map_err(|e| (Some((e.line(), e.column())), strip_position(&e.to_string())))
            .and_then(|o| offer_from_json(o, &mut accel_cache).map_err(|e| (None, e)));
        match parsed {
            Ok(o) => {
                offers.push(o);
                raws.push(raw);
            }
            Err((inner, msg)) => report(
                raw,
                &mut diags,
                Severity::Error,
                inner,
                format!("offer skipped: {msg}"),
            ),
        }
    }

    let drop = duplicates(&offers);
    if drop.iter().any(|&d| d) {
        let mut first_line: HashMap<(&ProviderId, &Location, &str), u64> = HashMap::new();
        let mut dup_diags = Vec::new();
        for (i, o) in offers.iter().enumerate() {
            let (l, c) = lines.locate(offset_in(text, raws[i].get()));
            let k = (&o.provider, &o.location, o.instance_type.as_str());
            match first_line.get(&k) {
                Some(first) if drop[i] => dup_diags.push(
                    Diagnostic::new(
                        Severity::Warning,
                        file,
                        format!(
                            "duplicate offer {} {} in {} (first at line {first}); skipped",
                            o.provider, o.instance_type, o.location
                        ),
                    )
                    .at_line(l)
                    .at_column(Column::Char(c as u32)),
                ),
                Some(_) => {}
                None => {
                    first_line.insert(k, l);
                }
            }
        }
        diags.extend(dup_diags);
        let mut i = 0;
        offers.retain(|_| {
            let keep = !drop[i];
            i += 1;
            keep
        });
    }
    diags.sort_by_key(|d| d.line);
    let meta = CatalogMeta {
        description: doc.description,
        sources: doc.sources,
    };
    Ok((Catalog::new(offers, providers, capacities), meta, diags))
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

type AccelCache = HashMap<String, AccelRequest, FnvBuild>;

fn offer_from_json(o: OfferJson, cache: &mut AccelCache) -> Result<Offer, String> {
    let provider = ProviderId::parse(id_text(&o.provider, "provider")?);
    let instance_type = id_text(&o.instance_type, "instance_type")?.to_owned();
    let region = RegionId::new(id_text(&o.region, "region")?);
    let location = match o.zone.as_deref() {
        Some(z) => Location::Zone {
            region,
            zone: ZoneId::new(id_text(z, "zone")?),
        },
        None => Location::Region { region },
    };
    let accelerator = match o.accelerator.as_deref() {
        None => None,
        Some(s) => Some(match cache.get(s) {
            Some(a) => a.clone(),
            None => {
                let a = AccelRequest::parse(s).map_err(|e| format!("accelerator {s:?}: {e}"))?;
                cache.insert(s.to_owned(), a.clone());
                a
            }
        }),
    };
    let vcpus_milli = o
        .vcpus
        .map(|v| nonneg(v, "vcpus", 4.0e6).map(|v| (v * 1000.0).round() as u32))
        .transpose()?;
    let memory_mib = o
        .memory_gib
        .map(|v| nonneg(v, "memory_gib", 1.0e9).map(|v| (v * 1024.0).round() as u64))
        .transpose()?;
    let on_demand = o.on_demand.map(|v| usd_rate(v, "on_demand")).transpose()?;
    let spot = o.spot.map(|v| usd_rate(v, "spot")).transpose()?;
    let mut committed = Vec::with_capacity(o.committed.len());
    for c in o.committed {
        if c.term_months == 0 {
            return Err("committed term_months must be at least 1".into());
        }
        if committed
            .iter()
            .any(|x: &CommittedPrice| x.term_months == c.term_months)
        {
            return Err(format!(
                "committed term {} months is listed twice",
                c.term_months
            ));
        }
        committed.push(CommittedPrice {
            term_months: c.term_months,
            per_gpu_hour: usd_rate(c.usd_per_gpu_hour, "usd_per_gpu_hour")?,
        });
    }
    if on_demand.is_none() && spot.is_none() && committed.is_empty() {
        return Err("no price: give at least one of on_demand, spot, committed".into());
    }
    Ok(Offer {
        provider,
        instance_type,
        accelerator,
        vcpus_milli,
        memory_mib,
        location,
        prices: Prices {
            on_demand,
            spot,
            committed,
        },
    })
}

/// Compact JSON of one piece. Serialising these plain structs of strings, numbers and options fails only for
/// non-finite floats, which Hedge never stores; a failure writes `null`, which the reader rejects with a
/// located error rather than loading a wrong value.
fn js<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// Writes a catalog in the native format: a stable layout with one offer per line, so diffs stay readable
/// and diagnostics point at the offer. [`parse`] of the output gives back an equal catalog.
pub fn write(catalog: &Catalog, meta: &CatalogMeta) -> String {
    let mut out = String::with_capacity(200 * catalog.len() + 4096);
    out.push_str("{\n  \"schema_version\": 1");
    if let Some(d) = &meta.description {
        let _ = write!(out, ",\n  \"description\": {}", js(d));
    }
    out.push_str(",\n  \"sources\": [");
    for (i, s) in meta.sources.iter().enumerate() {
        let _ = write!(out, "{}\n    {}", if i == 0 { "" } else { "," }, js(s));
    }
    out.push_str(if meta.sources.is_empty() {
        "]"
    } else {
        "\n  ]"
    });
    out.push_str(",\n  \"providers\": {");
    let mut first = true;
    for (p, info) in catalog.providers() {
        let pj = ProviderJson {
            egress_usd_per_gb: info.egress_per_gb.map(|m| m.to_usd_f64()),
            reliability: info.reliability.map(|r| ReliabilityJson {
                mtbf_hours: r.mtbf_s as f64 / 3600.0,
                mttr_hours: r.mttr_s as f64 / 3600.0,
            }),
        };
        let _ = write!(
            out,
            "{}\n    {}: {}",
            if first { "" } else { "," },
            js(&p.as_str()),
            js(&pj)
        );
        first = false;
    }
    out.push_str(if first { "}" } else { "\n  }" });
    out.push_str(",\n  \"capacities\": [");
    for (i, c) in catalog.capacities().iter().enumerate() {
        let cj = CapacityJson {
            provider: Cow::Borrowed(c.provider.as_str()),
            region: c.region.as_ref().map(|r| Cow::Borrowed(r.as_str())),
            accelerator: Cow::Borrowed(c.accelerator.as_str()),
            max_gpus: c.max_gpus,
            quota_gpus: c.quota_gpus,
        };
        let _ = write!(out, "{}\n    {}", if i == 0 { "" } else { "," }, js(&cj));
    }
    out.push_str(if catalog.capacities().is_empty() {
        "]"
    } else {
        "\n  ]"
    });
    out.push_str(",\n  \"offers\": [");
    for (i, o) in catalog.offers().iter().enumerate() {
        let acc = o.accelerator.as_ref().map(|a| Cow::Owned(a.to_string()));
        let oj = OfferJson {
            provider: Cow::Borrowed(o.provider.as_str()),
            instance_type: Cow::Borrowed(&o.instance_type),
            accelerator: acc,
            vcpus: o.vcpus_milli.map(|m| m as f64 / 1000.0),
            memory_gib: o.memory_mib.map(|m| m as f64 / 1024.0),
            region: Cow::Borrowed(o.location.region().as_str()),
            zone: o.location.zone().map(|z| Cow::Borrowed(z.as_str())),
            on_demand: o.prices.on_demand.map(|r| r.to_usd_per_hour_f64()),
            spot: o.prices.spot.map(|r| r.to_usd_per_hour_f64()),
            committed: o
                .prices
                .committed
                .iter()
                .map(|c| CommittedJson {
                    term_months: c.term_months,
                    usd_per_gpu_hour: c.per_gpu_hour.to_usd_per_hour_f64(),
                })
                .collect(),
        };
        let _ = write!(out, "{}\n    {}", if i == 0 { "" } else { "," }, js(&oj));
    }
    out.push_str(if catalog.is_empty() { "]" } else { "\n  ]" });
    out.push_str("\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_and_careful_paths_agree_on_a_clean_file() {
        let text = crate::DEFAULT_CATALOG_JSON;
        let (fast, fmeta, fdiags) = parse_fast("d.json", text)
            .expect("clean file takes the fast path")
            .unwrap();
        let (careful, cmeta, cdiags) = parse_careful("d.json", text).unwrap();
        assert_eq!(fast.offers(), careful.offers());
        assert_eq!(fast.providers(), careful.providers());
        assert_eq!(fast.capacities(), careful.capacities());
        assert_eq!((fmeta, fdiags), (cmeta, cdiags));
        assert!(fast.len() > 600);
    }

    #[test]
    fn a_bad_offer_sends_the_file_down_the_careful_path() {
        let text = r#"{"schema_version": 1, "offers": [{"provider": "aws", "instance_type": "x", "region": "r"}]}"#;
        assert!(parse_fast("b.json", text).is_none());
        let (c, _, d) = parse("b.json", text).unwrap();
        assert!(c.is_empty());
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn line_index_counts_chars() {
        let t = "ab\ncdé\nf";
        let mut li = LineIndex::new(t);
        assert_eq!(li.locate(0), (1, 1));
        assert_eq!(li.locate(4), (2, 2));
        assert_eq!(li.locate(t.len() - 1), (3, 1));
        assert_eq!(li.locate(1), (1, 2));
    }
}
