//! FOCUS (FinOps Open Cost and Usage Specification) rows from the ledger, pure: the mapping of segments and
//! commitment fees onto FOCUS columns, and one CSV line per row. The server streams what [`Exporter`] gives.
//!
//! Rows, for every billing period (calendar month) piece of the window:
//! - each segment piece: `ChargeCategory` Usage, `ChargeFrequency` Usage-Based; `PricingCategory` Standard
//!   (on-demand), Dynamic (spot) or Committed (on a commitment: `BilledCost` 0, `EffectiveCost` the
//!   commitment's amortized rate × GPU-hours, `CommitmentDiscountStatus` Used);
//! - each commitment with term in the piece: one Purchase row (`ChargeFrequency` Recurring, `BilledCost` the
//!   fee accrued, `EffectiveCost` 0, so cost is not counted twice) and its Unused rows (`EffectiveCost` the
//!   fee's part not amortized by use, charged to teams by the [`FeeAllocation`]).
//!
//! So `Σ EffectiveCost = Σ BilledCost =` the ledger's [`crate::ledger::total`] for the window, to the
//! micro-dollar. Quantities are GPU-hours (`PricingUnit` and `ConsumedUnit` "GPU-Hours"). Hedge's own
//! columns are `x_team`, `x_job`, `x_attempt`.

use crate::ledger::{
    add_use, allocate_from_use, months_in, FeeAllocation, FeeStatus, Period, Segment, TeamUse,
};
use crate::{Commitment, Market, Money, Timestamp};
use std::fmt::Write as _;

/// The FOCUS version of an export.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FocusVersion {
    V1_0,
    V1_2,
}

impl std::str::FromStr for FocusVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "1.0" => Ok(FocusVersion::V1_0),
            "1.2" => Ok(FocusVersion::V1_2),
            other => Err(format!(
                "focus_version: {other:?} is not a supported FOCUS version (1.0 or 1.2)"
            )),
        }
    }
}

/// FOCUS 1.0's columns (the specification's column list, in its order of appearance in the validator's
/// rule set, with the 1.0 names).
pub const COLUMNS_1_0: &[&str] = &[
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
];

/// The FOCUS 1.2 column list, committed as data with its source (`data/focus/columns-1.2.csv`).
pub const COLUMNS_1_2_CSV: &str = include_str!("../../../data/focus/columns-1.2.csv");

/// Hedge's own columns, after the FOCUS ones.
pub const HEDGE_COLUMNS: &[&str] = &["x_team", "x_job", "x_attempt"];

/// The 1.2 columns from [`COLUMNS_1_2_CSV`], with their requirement letter (M, C or O).
pub fn columns_1_2() -> Vec<(&'static str, &'static str)> {
    COLUMNS_1_2_CSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("column,") && !l.trim().is_empty())
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?, f.next()?))
        })
        .collect()
}

/// Every column of an export of `v`, FOCUS columns first, then Hedge's.
pub fn header(v: FocusVersion) -> Vec<&'static str> {
    let mut cols: Vec<&'static str> = match v {
        FocusVersion::V1_0 => COLUMNS_1_0.to_vec(),
        FocusVersion::V1_2 => columns_1_2().into_iter().map(|(c, _)| c).collect(),
    };
    cols.extend_from_slice(HEDGE_COLUMNS);
    cols
}

/// One FOCUS row, typed. Columns an export's version has but Hedge has nothing for are null (empty).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FocusRow {
    pub charge_category: &'static str,
    pub charge_frequency: &'static str,
    pub pricing_category: Option<&'static str>,
    pub charge_start: Timestamp,
    pub charge_end: Timestamp,
    pub billing_start: Timestamp,
    pub billing_end: Timestamp,
    pub billed: Money,
    pub effective: Money,
    pub list: Money,
    pub contracted: Money,
    /// Per GPU-hour.
    pub list_unit_price: Option<Money>,
    pub contracted_unit_price: Option<Money>,
    pub consumed_gpu_seconds: Option<u64>,
    pub pricing_gpu_seconds: u64,
    pub commitment: Option<String>,
    pub commitment_status: Option<FeeStatus>,
    pub provider: String,
    pub region: Option<String>,
    pub zone: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub resource_type: Option<&'static str>,
    pub sku_id: Option<String>,
    pub sku_price_id: Option<String>,
    pub description: String,
    pub team: Option<String>,
    pub job: Option<u64>,
    pub attempt: Option<String>,
}

/// Builds the rows of a window incrementally: feed it every segment that overlaps the window (in any
/// order, a page at a time), then take the fee rows. Memory: the commitments and, per (commitment, month),
/// the use per team; never the segments.
pub struct Exporter {
    periods: Vec<Period>,
    commitments: Vec<Commitment>,
    policy: FeeAllocation,
    /// `used[c][p]`: use of commitment `c` in period `p`, per team.
    used: Vec<Vec<TeamUse>>,
}

impl Exporter {
    pub fn new(
        commitments: Vec<Commitment>,
        from: Timestamp,
        to: Timestamp,
        policy: FeeAllocation,
    ) -> Self {
        let periods = months_in(from, to);
        let used = commitments
            .iter()
            .map(|_| vec![TeamUse::new(); periods.len()])
            .collect();
        Exporter {
            periods,
            commitments,
            policy,
            used,
        }
    }

    /// The usage rows of one segment (one per billing period it overlaps), appended to `out`.
    pub fn usage_rows(&mut self, s: &Segment, out: &mut Vec<FocusRow>) {
        let ci = s
            .commitment
            .as_ref()
            .and_then(|id| self.commitments.iter().position(|c| &c.id == id));
        for pi in crate::ledger::periods_overlapping(&self.periods, s.start, s.end) {
            let p = &self.periods[pi];
            let secs = s.seconds_in(p.start, p.end);
            if secs == 0 {
                continue;
            }
            let gs = u64::from(s.gpus).saturating_mul(secs);
            let billed = s.billed_in(p.start, p.end);
            let list = s.list_in(p.start, p.end);
            let (pricing, effective, contracted_unit, status) = match s.market {
                Market::OnDemand => ("Standard", billed, s.per_gpu_hour.hourly(), None),
                Market::Spot => ("Dynamic", billed, s.per_gpu_hour.hourly(), None),
                Market::Committed => match ci {
                    Some(ci) => {
                        let c = &self.commitments[ci];
                        let (m, _) = add_use(c, s, p.start, p.end, &mut self.used[ci][pi]);
                        (
                            "Committed",
                            m,
                            c.per_gpu_hour.hourly(),
                            Some(FeeStatus::Used),
                        )
                    }
                    // A commitment deleted since: its fee is no longer known, so its use is worth zero here.
                    None => ("Committed", Money::ZERO, Money::ZERO, Some(FeeStatus::Used)),
                },
            };
            out.push(FocusRow {
                charge_category: "Usage",
                charge_frequency: "Usage-Based",
                pricing_category: Some(pricing),
                charge_start: s.start.max(p.start),
                charge_end: s.end.min(p.end),
                billing_start: p.billing_start,
                billing_end: p.billing_end,
                billed,
                effective,
                list,
                contracted: effective,
                list_unit_price: Some(s.list_per_gpu_hour.hourly()),
                contracted_unit_price: Some(contracted_unit),
                consumed_gpu_seconds: Some(gs),
                pricing_gpu_seconds: gs,
                commitment: s.commitment.as_ref().map(|c| c.to_string()),
                commitment_status: status,
                provider: s.provider.to_string(),
                region: s.region.as_ref().map(|r| r.to_string()),
                zone: s.zone.as_ref().map(|z| z.to_string()),
                resource_id: Some(s.attempt.clone()),
                resource_name: Some(format!("job {} attempt {}", s.job, s.attempt_no)),
                resource_type: Some("GPU instance"),
                sku_id: Some(s.instance_type.clone()),
                sku_price_id: Some(format!(
                    "{}/{}/{}",
                    s.provider,
                    s.instance_type,
                    market_code(s.market)
                )),
                description: format!(
                    "{} GPU x{} on {} ({})",
                    s.accelerator.as_ref().map_or("CPU", |a| a.as_str()),
                    s.gpus,
                    s.provider,
                    market_code(s.market)
                ),
                team: Some(s.team.to_string()),
                job: Some(s.job.0),
                attempt: Some(s.attempt.clone()),
            });
        }
    }

    /// The commitments' Purchase and Unused rows, after every segment was fed.
    pub fn fee_rows(&self) -> Vec<FocusRow> {
        let mut out = Vec::new();
        for (ci, c) in self.commitments.iter().enumerate() {
            for pi in crate::ledger::periods_overlapping(&self.periods, c.start, c.end) {
                let p = &self.periods[pi];
                let term_secs = crate::ledger::overlap_seconds(c.start, c.end, p.start, p.end);
                if term_secs == 0 {
                    continue;
                }
                let fee = crate::ledger::fee_in(c, p.start, p.end);
                let owner = match &self.policy {
                    FeeAllocation::Owner(t) => Some(t.to_string()),
                    FeeAllocation::UsageShare => None,
                };
                let base = FocusRow {
                    charge_category: "Purchase",
                    charge_frequency: "Recurring",
                    pricing_category: Some("Committed"),
                    charge_start: c.start.max(p.start),
                    charge_end: c.end.min(p.end),
                    billing_start: p.billing_start,
                    billing_end: p.billing_end,
                    billed: fee,
                    effective: Money::ZERO,
                    list: fee,
                    contracted: fee,
                    list_unit_price: Some(c.per_gpu_hour.hourly()),
                    contracted_unit_price: Some(c.per_gpu_hour.hourly()),
                    consumed_gpu_seconds: None,
                    pricing_gpu_seconds: u64::from(c.gpus).saturating_mul(term_secs),
                    commitment: Some(c.id.to_string()),
                    commitment_status: None,
                    provider: c.provider.to_string(),
                    region: c.region.as_ref().map(|r| r.to_string()),
                    zone: None,
                    resource_id: Some(c.id.to_string()),
                    resource_name: Some(c.id.to_string()),
                    resource_type: Some("GPU commitment"),
                    sku_id: Some(format!("commitment/{}", c.accelerator)),
                    sku_price_id: Some(format!("{}/commitment/{}", c.provider, c.id)),
                    description: format!(
                        "{} {} GPU commitment, {} GPUs",
                        c.provider, c.accelerator, c.gpus
                    ),
                    team: owner,
                    job: None,
                    attempt: None,
                };
                for share in allocate_from_use(c, p.start, p.end, &self.used[ci][pi], &self.policy)
                {
                    if share.status != FeeStatus::Unused {
                        continue;
                    }
                    out.push(FocusRow {
                        charge_category: "Usage",
                        charge_frequency: "Usage-Based",
                        billed: Money::ZERO,
                        effective: share.amount,
                        list: Money::ZERO,
                        contracted: share.amount,
                        pricing_gpu_seconds: share.gpu_seconds,
                        commitment_status: Some(FeeStatus::Unused),
                        description: format!(
                            "{} {} GPU commitment, unused",
                            c.provider, c.accelerator
                        ),
                        team: share.team.map(|t| t.to_string()),
                        ..base.clone()
                    });
                }
                out.push(base);
            }
        }
        out
    }
}

fn market_code(m: Market) -> &'static str {
    match m {
        Market::Committed => "committed",
        Market::OnDemand => "on_demand",
        Market::Spot => "spot",
    }
}

/// Money as a FOCUS decimal: `12.345678`, exact.
pub fn decimal(m: Money) -> String {
    let sign = if m.micros() < 0 { "-" } else { "" };
    let a = m.micros().unsigned_abs();
    format!("{sign}{}.{:06}", a / 1_000_000, a % 1_000_000)
}

/// GPU-seconds as GPU-hours, six decimals (rounded half up).
pub fn gpu_hours(gpu_seconds: u64) -> String {
    let micro = (gpu_seconds as u128 * 1_000_000 + 1800) / 3600;
    format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000)
}

/// Which value a column takes; resolved once per export from the header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    AvailabilityZone,
    BilledCost,
    BillingAccountId,
    BillingAccountName,
    BillingCurrency,
    BillingPeriodEnd,
    BillingPeriodStart,
    ChargeCategory,
    ChargeDescription,
    ChargeFrequency,
    ChargePeriodEnd,
    ChargePeriodStart,
    CommitmentDiscountCategory,
    CommitmentDiscountId,
    CommitmentDiscountName,
    CommitmentDiscountStatus,
    CommitmentDiscountType,
    ConsumedQuantity,
    ConsumedUnit,
    ContractedCost,
    ContractedUnitPrice,
    EffectiveCost,
    Issuer,
    ListCost,
    ListUnitPrice,
    PricingCategory,
    PricingQuantity,
    PricingUnit,
    RegionId,
    ResourceId,
    ResourceName,
    ResourceType,
    ServiceCategory,
    ServiceName,
    SkuId,
    SkuPriceId,
    SubAccount,
    PricingCurrency,
    PricingCurrencyContractedUnitPrice,
    PricingCurrencyEffectiveCost,
    PricingCurrencyListUnitPrice,
    XTeam,
    XJob,
    XAttempt,
    /// A column Hedge has no value for: null.
    Null,
}

fn field(col: &str) -> Field {
    use Field::*;
    match col {
        "AvailabilityZone" => AvailabilityZone,
        "BilledCost" => BilledCost,
        "BillingAccountId" => BillingAccountId,
        "BillingAccountName" => BillingAccountName,
        "BillingCurrency" => BillingCurrency,
        "BillingPeriodEnd" => BillingPeriodEnd,
        "BillingPeriodStart" => BillingPeriodStart,
        "ChargeCategory" => ChargeCategory,
        "ChargeDescription" => ChargeDescription,
        "ChargeFrequency" => ChargeFrequency,
        "ChargePeriodEnd" => ChargePeriodEnd,
        "ChargePeriodStart" => ChargePeriodStart,
        "CommitmentDiscountCategory" => CommitmentDiscountCategory,
        "CommitmentDiscountId" => CommitmentDiscountId,
        "CommitmentDiscountName" => CommitmentDiscountName,
        "CommitmentDiscountStatus" => CommitmentDiscountStatus,
        "CommitmentDiscountType" => CommitmentDiscountType,
        "ConsumedQuantity" => ConsumedQuantity,
        "ConsumedUnit" => ConsumedUnit,
        "ContractedCost" => ContractedCost,
        "ContractedUnitPrice" => ContractedUnitPrice,
        "EffectiveCost" => EffectiveCost,
        "InvoiceIssuerName" | "ProviderName" | "PublisherName" => Issuer,
        "ListCost" => ListCost,
        "ListUnitPrice" => ListUnitPrice,
        "PricingCategory" => PricingCategory,
        "PricingQuantity" => PricingQuantity,
        "PricingUnit" => PricingUnit,
        "RegionId" | "RegionName" => RegionId,
        "ResourceId" => ResourceId,
        "ResourceName" => ResourceName,
        "ResourceType" => ResourceType,
        "ServiceCategory" => ServiceCategory,
        "ServiceName" => ServiceName,
        "SkuId" => SkuId,
        "SkuPriceId" => SkuPriceId,
        "SubAccountId" | "SubAccountName" => SubAccount,
        "PricingCurrency" => PricingCurrency,
        "PricingCurrencyContractedUnitPrice" => PricingCurrencyContractedUnitPrice,
        "PricingCurrencyEffectiveCost" => PricingCurrencyEffectiveCost,
        "PricingCurrencyListUnitPrice" => PricingCurrencyListUnitPrice,
        "x_team" => XTeam,
        "x_job" => XJob,
        "x_attempt" => XAttempt,
        _ => Null,
    }
}

/// Writes rows of one version as CSV (RFC 4180 quoting), header first.
pub struct CsvWriter {
    header: Vec<&'static str>,
    fields: Vec<Field>,
}

impl CsvWriter {
    pub fn new(v: FocusVersion) -> Self {
        let header = header(v);
        let fields = header.iter().map(|c| field(c)).collect();
        CsvWriter { header, fields }
    }

    pub fn header_line(&self, out: &mut String) {
        out.push_str(&self.header.join(","));
        out.push_str("\r\n");
    }

    pub fn columns(&self) -> &[&'static str] {
        &self.header
    }

    /// Appends one row as a CSV line. Written straight into `out` (no string per field): the export writes a
    /// million of these.
    pub fn row(&self, r: &FocusRow, out: &mut String) {
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match f {
                Field::AvailabilityZone => push_opt(out, &r.zone),
                Field::BilledCost => push_decimal(out, r.billed),
                Field::BillingAccountId => out.push_str("hedge"),
                Field::BillingAccountName => out.push_str("Hedge"),
                Field::BillingCurrency | Field::PricingCurrency => out.push_str("USD"),
                Field::BillingPeriodEnd => push_time(out, r.billing_end),
                Field::BillingPeriodStart => push_time(out, r.billing_start),
                Field::ChargeCategory => out.push_str(r.charge_category),
                Field::ChargeDescription => push_csv(out, &r.description),
                Field::ChargeFrequency => out.push_str(r.charge_frequency),
                Field::ChargePeriodEnd => push_time(out, r.charge_end),
                Field::ChargePeriodStart => push_time(out, r.charge_start),
                Field::CommitmentDiscountCategory => {
                    if r.commitment.is_some() {
                        out.push_str("Usage")
                    }
                }
                Field::CommitmentDiscountId | Field::CommitmentDiscountName => {
                    push_opt(out, &r.commitment)
                }
                Field::CommitmentDiscountStatus => out.push_str(match r.commitment_status {
                    Some(FeeStatus::Used) => "Used",
                    Some(FeeStatus::Unused) => "Unused",
                    None => "",
                }),
                Field::CommitmentDiscountType => {
                    if r.commitment.is_some() {
                        out.push_str("GPU Commitment")
                    }
                }
                Field::ConsumedQuantity => {
                    if let Some(g) = r.consumed_gpu_seconds {
                        push_gpu_hours(out, g)
                    }
                }
                Field::ConsumedUnit => {
                    if r.consumed_gpu_seconds.is_some() {
                        out.push_str("GPU-Hours")
                    }
                }
                Field::ContractedCost => push_decimal(out, r.contracted),
                Field::ContractedUnitPrice | Field::PricingCurrencyContractedUnitPrice => {
                    if let Some(m) = r.contracted_unit_price {
                        push_decimal(out, m)
                    }
                }
                Field::EffectiveCost | Field::PricingCurrencyEffectiveCost => {
                    push_decimal(out, r.effective)
                }
                Field::Issuer => push_csv(out, &r.provider),
                Field::ListCost => push_decimal(out, r.list),
                Field::ListUnitPrice | Field::PricingCurrencyListUnitPrice => {
                    if let Some(m) = r.list_unit_price {
                        push_decimal(out, m)
                    }
                }
                Field::PricingCategory => out.push_str(r.pricing_category.unwrap_or("")),
                Field::PricingQuantity => push_gpu_hours(out, r.pricing_gpu_seconds),
                Field::PricingUnit => out.push_str("GPU-Hours"),
                Field::RegionId => push_opt(out, &r.region),
                Field::ResourceId => push_opt(out, &r.resource_id),
                Field::ResourceName => push_opt(out, &r.resource_name),
                Field::ResourceType => out.push_str(r.resource_type.unwrap_or("")),
                Field::ServiceCategory => out.push_str("Compute"),
                Field::ServiceName => out.push_str("Hedge GPU Compute"),
                Field::SkuId => push_opt(out, &r.sku_id),
                Field::SkuPriceId => push_opt(out, &r.sku_price_id),
                Field::SubAccount | Field::XTeam => push_opt(out, &r.team),
                Field::XJob => {
                    if let Some(j) = r.job {
                        let _ = write!(out, "{j}");
                    }
                }
                Field::XAttempt => push_opt(out, &r.attempt),
                Field::Null => {}
            }
        }
        out.push_str("\r\n");
    }
}

fn push_opt(out: &mut String, v: &Option<String>) {
    if let Some(v) = v {
        push_csv(out, v);
    }
}

fn push_decimal(out: &mut String, m: Money) {
    if m.micros() < 0 {
        out.push('-');
    }
    let a = m.micros().unsigned_abs();
    let _ = write!(out, "{}.{:06}", a / 1_000_000, a % 1_000_000);
}

fn push_gpu_hours(out: &mut String, gpu_seconds: u64) {
    let micro = (gpu_seconds as u128 * 1_000_000 + 1800) / 3600;
    let _ = write!(out, "{}.{:06}", micro / 1_000_000, micro % 1_000_000);
}

/// RFC 3339 UTC (`2026-11-01T00:00:00Z`, as `Timestamp`'s `Display`), by integer civil-from-days arithmetic
/// (H. Hinnant's algorithm) instead of a calendar library call per field.
fn push_time(out: &mut String, t: Timestamp) {
    let secs = t.unix();
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
}

fn push_csv(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        for ch in v.chars() {
            if ch == '"' {
                out.push('"');
            }
            out.push(ch);
        }
        out.push('"');
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{segments, total, AttemptSpan, PriceBook, PriceVersion};
    use crate::{Accelerator, CommitmentId, JobId, Rate};

    fn t(h: i64) -> Timestamp {
        Timestamp::from_ymd(2026, 12, 1).plus_seconds(h * 3600)
    }
    fn usd(x: i64) -> Rate {
        Rate::per_hour(Money::from_usd(x))
    }

    /// A month-crossing on-demand run, a committed run and an idle part of a commitment: the rows' effective
    /// and billed costs both sum to the ledger's total, and every column of the version is written.
    #[test]
    fn rows_sum_to_the_ledger_total() {
        let book = PriceBook::new([
            PriceVersion {
                provider: "a".into(),
                market: Market::OnDemand,
                from: t(-100),
                per_gpu_hour: usd(2),
            },
            PriceVersion {
                provider: "a".into(),
                market: Market::OnDemand,
                from: t(10),
                per_gpu_hour: usd(3),
            },
        ]);
        let span = |key: &str, market: Market, gpus: u32, start: Timestamp| AttemptSpan {
            attempt: key.into(),
            job: JobId(7),
            attempt_no: 1,
            team: "ml".into(),
            provider: "a".into(),
            region: Some("r1".into()),
            zone: None,
            instance_type: "gpu, large".into(),
            market,
            commitment: (market == Market::Committed).then(|| CommitmentId::new("c1")),
            accelerator: Some(Accelerator::parse("H100").unwrap()),
            gpus,
            start,
        };
        let c = Commitment {
            id: "c1".into(),
            provider: "a".into(),
            accelerator: Accelerator::parse("H100").unwrap(),
            region: None,
            gpus: 4,
            per_gpu_hour: usd(1),
            start: t(0),
            end: t(48),
        };
        // On-demand 2 GPUs from 22:00 Nov 30 to 12:00 Dec 1 (price change at 10:00 Dec 1); committed 3 GPUs
        // for 5 h on Dec 1.
        let mut segs = segments(&book, &span("k1", Market::OnDemand, 2, t(-2)), t(12));
        segs.extend(segments(
            &book,
            &span("k2", Market::Committed, 3, t(1)),
            t(6),
        ));
        let (from, to) = (t(-24), t(72));
        let mut ex = Exporter::new(vec![c.clone()], from, to, FeeAllocation::UsageShare);
        let mut rows = Vec::new();
        for s in &segs {
            ex.usage_rows(s, &mut rows);
        }
        rows.extend(ex.fee_rows());
        let effective: Money = rows.iter().map(|r| r.effective).sum();
        let billed: Money = rows.iter().map(|r| r.billed).sum();
        let ledger = total(&segs, std::slice::from_ref(&c), from, to);
        // Hand-worked: on-demand 2 × (2 h × $2 [Nov] + 10 h × $2 + 2 h × $3 [Dec]) = $8 + $40 + $12 = $60;
        // the commitment's fee 4 GPUs × 48 h × $1 = $192 (all in December). Total $252.
        assert_eq!(ledger, Money::from_usd(252));
        assert_eq!((effective, billed), (ledger, ledger));
        // Committed use: 15 GPU-h amortized at $1 = $15; unused $177.
        let unused: Vec<_> = rows
            .iter()
            .filter(|r| r.commitment_status == Some(FeeStatus::Unused))
            .collect();
        assert_eq!(unused.len(), 1);
        assert_eq!(
            (unused[0].effective, unused[0].team.as_deref()),
            (Money::from_usd(177), Some("ml"))
        );
        // The on-demand run crosses the month: one row per billing period (and per price segment).
        assert_eq!(
            rows.iter()
                .filter(|r| r.attempt.as_deref() == Some("k1"))
                .count(),
            3
        );

        for v in [FocusVersion::V1_0, FocusVersion::V1_2] {
            let w = CsvWriter::new(v);
            let mut out = String::new();
            w.header_line(&mut out);
            for r in &rows {
                w.row(r, &mut out);
            }
            let lines: Vec<&str> = out.split("\r\n").filter(|l| !l.is_empty()).collect();
            assert_eq!(lines.len(), rows.len() + 1);
            // The quoted SKU keeps its comma inside one field.
            assert!(out.contains("\"gpu, large\""));
            assert!(lines[0].ends_with(",x_team,x_job,x_attempt"));
        }
    }

    #[test]
    fn the_1_2_list_has_every_mandatory_column_and_1_0_names() {
        let cols = columns_1_2();
        assert_eq!(cols.len(), 57);
        assert_eq!(cols.iter().filter(|(_, r)| *r == "M").count(), 21);
        let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        for c in COLUMNS_1_0 {
            assert!(
                names.contains(c),
                "{c} is a FOCUS 1.0 column missing from the 1.2 list"
            );
        }
        // Every mandatory 1.2 column has a value in the writer (none falls through to null), but ChargeClass,
        // whose only value is "Correction" and which Hedge never writes.
        for (c, r) in &cols {
            if *r == "M" && *c != "ChargeClass" {
                assert_ne!(field(c), Field::Null, "{c}");
            }
        }
        assert_eq!("1.2".parse::<FocusVersion>(), Ok(FocusVersion::V1_2));
        assert!("1.1"
            .parse::<FocusVersion>()
            .unwrap_err()
            .contains("focus_version"));
    }

    #[test]
    fn times_match_the_timestamp_display() {
        for t in [
            0i64,
            951_782_400,
            1_780_000_000,
            1_700_000_000,
            -86_401,
            4_102_444_800,
            1_709_164_800,
        ] {
            let mut s = String::new();
            push_time(&mut s, Timestamp(t));
            assert_eq!(s, Timestamp(t).to_string(), "{t}");
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_times_are_the_display(t in -5_000_000_000i64..10_000_000_000) {
            let mut s = String::new();
            push_time(&mut s, Timestamp(t));
            proptest::prop_assert_eq!(s, Timestamp(t).to_string());
        }
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal(Money::from_micros(-1_500_001)), "-1.500001");
        assert_eq!(decimal(Money::ZERO), "0.000000");
        assert_eq!(gpu_hours(5400), "1.500000");
        assert_eq!(gpu_hours(1), "0.000278");
    }
}
