//! Small fluent builders for catalogs and jobs.

use hedge_core::{AccelRequest, Catalog, Commitment, Location, Offer, Prices, Rate, Timestamp};

pub struct CatalogBuilder(Vec<Offer>);

impl CatalogBuilder {
    pub fn new() -> Self {
        CatalogBuilder(Vec::new())
    }
    /// An `accel:count` instance at `provider`/`region` with on-demand (and optional spot) USD per hour.
    pub fn offer(
        mut self,
        provider: &str,
        region: &str,
        accel: &str,
        od: f64,
        spot: Option<f64>,
    ) -> Self {
        self.0.push(Offer {
            provider: provider.into(),
            instance_type: format!("{provider}-{accel}"),
            accelerator: Some(AccelRequest::parse(accel).unwrap()),
            vcpus_milli: None,
            memory_mib: None,
            location: Location::Region {
                region: region.into(),
            },
            prices: Prices {
                on_demand: Some(Rate::from_usd_per_hour_f64(od).unwrap()),
                spot: spot.map(|s| Rate::from_usd_per_hour_f64(s).unwrap()),
                committed: vec![],
            },
        });
        self
    }
    /// An `accel:count` instance at `provider`/`region` sold only under commitment (no on-demand or spot
    /// price).
    pub fn committed_only(mut self, provider: &str, region: &str, accel: &str) -> Self {
        self.0.push(Offer {
            provider: provider.into(),
            instance_type: format!("{provider}-{accel}"),
            accelerator: Some(AccelRequest::parse(accel).unwrap()),
            vcpus_milli: None,
            memory_mib: None,
            location: Location::Region {
                region: region.into(),
            },
            prices: Prices {
                on_demand: None,
                spot: None,
                committed: vec![],
            },
        });
        self
    }
    pub fn build(self) -> Catalog {
        Catalog::new(self.0, Default::default(), vec![])
    }
}

/// Three providers selling H100 in 1- and 8-GPU instances; aws is the most expensive, lambda the cheapest
/// on-demand, gcp the only one with spot.
pub fn three_clouds() -> Catalog {
    CatalogBuilder::new()
        .offer("aws", "us-east-1", "H100:8", 8.0 * 4.0, None)
        .offer("aws", "us-east-1", "H100:1", 4.0, None)
        .offer("gcp", "us-central1", "H100:8", 8.0 * 3.5, Some(8.0 * 1.5))
        .offer("gcp", "us-central1", "H100:1", 3.5, Some(1.5))
        .offer("lambda", "us-east-1", "H100:8", 8.0 * 3.0, None)
        .offer("lambda", "us-east-1", "H100:1", 3.0, None)
        .build()
}

pub fn commitment(provider: &str, gpus: u32, rate: f64) -> Commitment {
    Commitment {
        id: format!("{provider}-{gpus}").as_str().into(),
        provider: provider.into(),
        accelerator: hedge_core::Accelerator::parse("H100").unwrap(),
        region: None,
        gpus,
        per_gpu_hour: Rate::from_usd_per_hour_f64(rate).unwrap(),
        start: Timestamp::from_ymd(2027, 1, 1),
        end: Timestamp::from_ymd(2028, 1, 1),
    }
}
