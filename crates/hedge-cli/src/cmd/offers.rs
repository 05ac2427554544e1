//! `hedge offers`: list and filter the catalog's offers.

use super::Format;
use anyhow::Context;
use hedge_core::{AccelRequest, Accelerator, Offer, ProviderId, Rate, RegionId};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Instance-hour price (spot price with --spot), cheapest first.
    #[default]
    Price,
    /// Price per accelerator-hour, cheapest first.
    GpuPrice,
    /// Provider, region, zone, instance type.
    Provider,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Accelerator, `NAME` (any count) or `NAME:COUNT` (exactly COUNT per instance), e.g. H100:8.
    #[arg(long)]
    pub gpu: Option<String>,
    #[arg(long)]
    pub provider: Option<String>,
    /// Only offers with a spot price, priced at spot.
    #[arg(long)]
    pub spot: bool,
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub sort: SortKey,
    /// Show at most this many offers (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// A SkyPilot v8 catalog directory or a native catalog file (default: the catalog shipped with hedge).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Serialize)]
struct OfferJson<'a> {
    provider: &'a str,
    instance_type: &'a str,
    accelerators: Option<&'a AccelRequest>,
    vcpus: Option<f64>,
    memory_gib: Option<f64>,
    region: &'a str,
    zone: Option<&'a str>,
    on_demand_usd: Option<f64>,
    spot_usd: Option<f64>,
    price_per_gpu_hour_usd: Option<f64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let gpu = match &args.gpu {
        None => None,
        Some(g) if g.contains(':') => {
            let r = AccelRequest::parse(g).with_context(|| format!("--gpu {g:?}"))?;
            Some((r.name, Some(r.count)))
        }
        Some(g) => Some((
            Accelerator::parse(g).with_context(|| format!("--gpu {g:?}"))?,
            None,
        )),
    };
    let provider = args.provider.as_deref().map(ProviderId::parse);
    let region = args.region.as_deref().map(RegionId::from);
    let loaded = super::load_catalog(args.catalog.as_deref())?;
    let catalog = &loaded.catalog;
    let candidates: Box<dyn Iterator<Item = &Offer>> = match &gpu {
        Some((name, _)) => Box::new(
            catalog
                .with_accelerator(name)
                .iter()
                .map(|&i| catalog.offer(i)),
        ),
        None => Box::new(catalog.offers().iter()),
    };
    let price = |o: &Offer| {
        if args.spot {
            o.prices.spot
        } else {
            o.prices.on_demand
        }
    };
    let mut rows: Vec<&Offer> = candidates
        .filter(|o| {
            gpu.as_ref()
                .is_none_or(|(_, c)| c.is_none_or(|c| o.gpus() == c))
        })
        .filter(|o| provider.as_ref().is_none_or(|p| *p == o.provider))
        .filter(|o| region.as_ref().is_none_or(|r| r == o.location.region()))
        .filter(|o| price(o).is_some())
        .collect();
    let by_place = |a: &&Offer, b: &&Offer| {
        a.provider
            .cmp(&b.provider)
            .then_with(|| a.location.region().cmp(b.location.region()))
            .then_with(|| a.location.zone().cmp(&b.location.zone()))
            .then_with(|| a.instance_type.cmp(&b.instance_type))
    };
    let per_gpu = |o: &Offer| {
        price(o).map(|p| {
            if o.gpus() > 0 {
                p.per_unit(o.gpus())
            } else {
                p
            }
        })
    };
    rows.sort_by(|a, b| match args.sort {
        SortKey::Price => price(a).cmp(&price(b)).then_with(|| by_place(a, b)),
        SortKey::GpuPrice => per_gpu(a).cmp(&per_gpu(b)).then_with(|| by_place(a, b)),
        SortKey::Provider => by_place(a, b).then_with(|| price(a).cmp(&price(b))),
    });
    let total = rows.len();
    if args.limit > 0 {
        rows.truncate(args.limit);
    }
    let usd = |r: Option<Rate>| r.map(Rate::to_usd_per_hour_f64);
    let mut out = super::stdout();
    match args.format {
        Format::Json => {
            let v: Vec<OfferJson> = rows
                .iter()
                .map(|o| OfferJson {
                    provider: o.provider.as_str(),
                    instance_type: &o.instance_type,
                    accelerators: o.accelerator.as_ref(),
                    vcpus: o.vcpus_milli.map(|v| v as f64 / 1000.0),
                    memory_gib: o.memory_mib.map(|m| m as f64 / 1024.0),
                    region: o.location.region().as_str(),
                    zone: o.location.zone().map(|z| z.as_str()),
                    on_demand_usd: usd(o.prices.on_demand),
                    spot_usd: usd(o.prices.spot),
                    price_per_gpu_hour_usd: usd(per_gpu(o)),
                })
                .collect();
            super::write_json(&mut out, &v)?;
        }
        Format::Table => {
            let money = |r: Option<Rate>| r.map_or("-".to_owned(), |r| r.hourly().to_string());
            let table: Vec<[String; 9]> = rows
                .iter()
                .map(|o| {
                    [
                        o.provider.to_string(),
                        o.instance_type.clone(),
                        o.accelerator
                            .as_ref()
                            .map_or("-".to_owned(), ToString::to_string),
                        o.vcpus_milli
                            .map_or("-".to_owned(), |v| trim_float(v as f64 / 1000.0)),
                        o.memory_mib
                            .map_or("-".to_owned(), |m| trim_float(m as f64 / 1024.0)),
                        o.location.to_string(),
                        money(o.prices.on_demand),
                        money(o.prices.spot),
                        money(per_gpu(o)),
                    ]
                })
                .collect();
            super::write_table(
                &mut out,
                &[
                    "PROVIDER",
                    "INSTANCE TYPE",
                    "ACCELERATORS",
                    "VCPUS",
                    "MEM GIB",
                    "LOCATION",
                    "ON-DEMAND/H",
                    "SPOT/H",
                    "PER GPU/H",
                ],
                &table,
            )?;
            if table.len() < total {
                writeln!(out, "({} of {total} offers shown)", table.len())?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}
