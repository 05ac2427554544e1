//! Integration tests of the placement engine, on catalogs built in code with a small fluent builder.

mod brute;
mod committed;
mod conditions;
mod props;
mod semantics;

use hedge_core::{
    AccelRequest, Bound, Catalog, Location, Offer, Prices, Rate, ResourceRequest, SpotPref,
    TaskSpec,
};
use hedge_placement::{place, Placement, PlacementContext, PlacementSettings};

/// An offer: `offer("aws", "p5.48xlarge", "H100:8", "us-east-1/use1-az1").od(98.32).spot(30.1)`.
pub fn offer(provider: &str, instance: &str, accel: &str, location: &str) -> Offer {
    let location = match location.split_once('/') {
        Some((r, z)) => Location::Zone {
            region: r.into(),
            zone: z.into(),
        },
        None => Location::Region {
            region: location.into(),
        },
    };
    Offer {
        provider: provider.into(),
        instance_type: instance.into(),
        accelerator: (!accel.is_empty()).then(|| AccelRequest::parse(accel).unwrap()),
        vcpus_milli: Some(96_000),
        memory_mib: Some(1024 * 1024),
        location,
        prices: Prices::default(),
    }
}

pub trait OfferExt {
    fn od(self, usd: f64) -> Self;
    fn spot(self, usd: f64) -> Self;
    fn shape(self, vcpus: u32, mem_gib: u64) -> Self;
}
impl OfferExt for Offer {
    fn od(mut self, usd: f64) -> Self {
        self.prices.on_demand = Some(Rate::from_usd_per_hour_f64(usd).unwrap());
        self
    }
    fn spot(mut self, usd: f64) -> Self {
        self.prices.spot = Some(Rate::from_usd_per_hour_f64(usd).unwrap());
        self
    }
    fn shape(mut self, vcpus: u32, mem_gib: u64) -> Self {
        self.vcpus_milli = Some(vcpus * 1000);
        self.memory_mib = Some(mem_gib * 1024);
        self
    }
}

pub fn catalog(offers: Vec<Offer>) -> Catalog {
    Catalog::new(offers, Default::default(), vec![])
}

/// A resource request: `req("H100:8").cloud("aws").spot()`.
pub fn req(accel: &str) -> ResourceRequest {
    ResourceRequest {
        accelerators: (!accel.is_empty()).then(|| AccelRequest::parse(accel).unwrap()),
        ..Default::default()
    }
}

pub trait ReqExt {
    fn cloud(self, p: &str) -> Self;
    fn region(self, r: &str) -> Self;
    fn zone(self, z: &str) -> Self;
    fn spot(self) -> Self;
    fn spot_allowed(self) -> Self;
    fn cpus_at_least(self, n: u32) -> Self;
    fn instance(self, t: &str) -> Self;
    fn task(self) -> TaskSpec;
}
impl ReqExt for ResourceRequest {
    fn cloud(mut self, p: &str) -> Self {
        self.provider = Some(p.into());
        self
    }
    fn region(mut self, r: &str) -> Self {
        self.region = Some(r.into());
        self
    }
    fn zone(mut self, z: &str) -> Self {
        self.zone = Some(z.into());
        self
    }
    fn spot(mut self) -> Self {
        self.spot = SpotPref::Required;
        self
    }
    fn spot_allowed(mut self) -> Self {
        self.spot = SpotPref::Allowed;
        self
    }
    fn cpus_at_least(mut self, n: u32) -> Self {
        self.cpus_milli = Some(Bound::AtLeast(n * 1000));
        self
    }
    fn instance(mut self, t: &str) -> Self {
        self.instance_type = Some(t.into());
        self
    }
    fn task(self) -> TaskSpec {
        TaskSpec::single(self)
    }
}

pub fn place_simple(task: &TaskSpec, cat: &Catalog) -> Placement {
    place(
        task,
        &PlacementContext::new(cat),
        &PlacementSettings::default(),
    )
}

/// A placement as text, for snapshots: the chosen candidate, alternatives, then rejections.
pub fn render(p: &Placement) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let line = |c: &hedge_placement::Candidate| {
        format!(
            "{} {} {} {} {}x{} alt{} {}",
            c.provider,
            c.instance_type,
            c.location,
            c.market,
            c.num_nodes,
            c.accelerators
                .as_ref()
                .map_or("cpu".to_owned(), |a| a.to_string()),
            c.alternative,
            c.hourly_cost
        ) + &c
            .commitment
            .as_ref()
            .map_or(String::new(), |id| format!(" [{id}]"))
    };
    match &p.chosen {
        Some(c) => writeln!(s, "chosen: {}", line(c)).unwrap(),
        None => writeln!(s, "chosen: none").unwrap(),
    }
    for c in &p.alternatives {
        writeln!(s, "  alt: {}", line(c)).unwrap();
    }
    for r in &p.rejected {
        writeln!(s, "  rejected[{}]: {}", r.alternative, r.message).unwrap();
    }
    s
}
