//! Hedge's simulator: "what would this plan and this policy have cost, and what would have broken?"
//!
//! A deterministic, single-threaded discrete-event simulation ([`queue::EventQueue`], a virtual clock and
//! seeded [`rng::SimRng`] streams) that replays real GPU-job traces ([`trace`]) across a multi-cloud
//! portfolio with outages and spot preemptions ([`provider`]). Every placement decision goes through the
//! broker's own placement engine (`hedge_placement::place`); policies are placement settings, never a copy
//! of the placement logic.
//!
//! **Architecture Invariant:** this crate performs no I/O outside its loaders (`trace`, `spot::load`,
//! `outage::fit_incidents_file`, `portfolio::load`), reads no clock and no environment: the same inputs and
//! seed give byte-identical reports.

pub mod deadline;
pub mod engine;
pub mod error;
pub mod fleet;
pub mod fuzzing;
pub mod job;
pub mod metrics;
pub mod outage;
pub mod policy;
pub mod portfolio;
pub mod queue;
pub mod render;
pub mod rng;
pub mod spot;
pub mod trace;

pub use engine::{simulate, Report, SimConfig};
pub use error::SimError;
pub use job::{AccelSym, JobKind, JobSpec, TeamSym};
pub use policy::Policy;
pub use queue::{EventQueue, SimTime};
