//! Hedge's domain: typed identifiers, integer money, accelerators, locations, offers, the catalog index and
//! task requirements.
//!
//! **Architecture Invariant:** this crate performs no I/O, reads no clock, no environment and no global
//! state. Everything here is a value or a pure function of values, so the planner, the placement engine, the
//! simulator and the broker can all share it.

pub mod accel;
pub mod catalog;
pub mod ids;
pub mod location;
pub mod money;
pub mod offer;
pub mod task;
pub mod task_yaml;

pub use accel::{AccelRequest, Accelerator, AcceleratorError};
pub use catalog::{Capacity, Catalog, OfferIdx, OfferSummary, ProviderInfo, Reliability};
pub use ids::{CommitmentId, JobId, ProviderId, RegionId, TeamId, ZoneId};
pub use location::Location;
pub use money::{CentsGrouped, Money, MoneyError, Rate};
pub use offer::{CommittedPrice, Market, Offer, Prices};
pub use task::{Bound, Preference, ResourceRequest, SpotPref, TaskSpec};
pub mod commitment;
pub mod portfolio;
pub mod time;
pub use commitment::Commitment;
pub use portfolio::{PlanHorizon, PlannedCommitment, PortfolioError};
pub use time::{TimeError, Timestamp, YearMonth};
pub mod focus;
pub mod job;
pub mod ledger;
pub use job::{AttemptStatus, JobState};
