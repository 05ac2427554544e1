//! Hedge's placement engine: given a task, a catalog, the capacity the user already owns and the current
//! conditions (provider health, quotas, spot availability), pick the cheapest feasible
//! (offer, location, market), rank the alternatives, and say why every other provider was rejected.
//!
//! ```
//! use hedge_core::{AccelRequest, Accelerator, Catalog, Location, Market, Offer, Prices, Rate, ResourceRequest, TaskSpec};
//! use hedge_placement::{place, PlacementContext, PlacementSettings};
//!
//! let offer = Offer {
//!     provider: "lambda".into(),
//!     instance_type: "gpu_8x_h100_sxm5".into(),
//!     accelerator: Some(AccelRequest::parse("H100:8").unwrap()),
//!     vcpus_milli: Some(208_000),
//!     memory_mib: Some(1_800 * 1024),
//!     location: Location::Region { region: "us-east-1".into() },
//!     prices: Prices { on_demand: Some(Rate::from_usd_per_hour_f64(23.92).unwrap()), spot: None, committed: vec![] },
//! };
//! let catalog = Catalog::new(vec![offer], Default::default(), vec![]);
//! let task = TaskSpec::single(ResourceRequest {
//!     accelerators: Some(AccelRequest::parse("H100:8").unwrap()),
//!     ..Default::default()
//! });
//! let p = place(&task, &PlacementContext::new(&catalog), &PlacementSettings::default());
//! let chosen = p.chosen.unwrap();
//! assert_eq!(chosen.market, Market::OnDemand);
//! assert_eq!(chosen.hourly_cost.to_string(), "$23.92/h");
//! ```
//!
//! **Architecture Invariant:** [`place`] is a pure function of its arguments: no I/O, no clock, no
//! randomness, no global state. The broker and the simulator call the same function; they differ only in
//! the [`Conditions`] and [`OwnedCapacity`] they pass.

mod context;
mod engine;
mod result;
mod settings;

pub use context::{Conditions, OwnedCapacity, PlacementContext, Unconstrained, Unusable};
pub use engine::place;
pub use result::{Candidate, Placement, RejectReason, Rejection};
pub use settings::{MarketRank, PlacementSettings};
