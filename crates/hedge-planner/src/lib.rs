//! Hedge's commitment planner: how much to commit, with whom, on which terms and when, so that expected
//! cost is lowest while the resilience policies hold.
//!
//! A pure function of its input: [`parse_plan_yaml`] turns a `hedge.plan/v1` file into a
//! [`PlanningInput`]; [`plan`] solves the two-stage stochastic LP/MILP stated in [`formulation`] (in the
//! extensive form, or by the L-shaped decomposition in [`benders`]) and returns a [`PlanOutcome`]: a
//! [`PlanReport`] or an [`InfeasibilityReport`]. [`evaluate::evaluate`] costs any portfolio by direct
//! arithmetic, independently of the optimiser. No I/O, no clock, no environment.

// The model is index maths over dense (provider, accelerator, period, scenario) arrays; indexed loops
// mirror the formulas in `formulation`'s doc comment, so these two lints are off for the crate.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

pub mod backend;
pub mod baselines;
pub mod benders;
pub mod error;
pub mod evaluate;
pub mod forecast;
pub mod formulation;
pub mod html;
pub mod input;
pub mod lp;
pub mod outofsample;
pub mod parse;
pub mod plan;
pub mod portfolio;
pub mod prices;
pub mod report;
pub mod synthetic;

pub use backend::Backend;
pub use error::PlanError;
pub use evaluate::{evaluate, Evaluation};
pub use input::PlanningInput;
pub use parse::{parse_plan_yaml, parse_plan_yaml_with};
pub use plan::{
    break_even, optimise, plan, sweep, BreakEven, InfeasibilityReport, Method, Optimised,
    PlanOutcome, PlannerConfig, Rounding, SweepParam, SweepPoint,
};
pub use portfolio::{to_commitments, PlannedCommitment, Portfolio};
pub use prices::CatalogSource;
pub use report::PlanReport;
