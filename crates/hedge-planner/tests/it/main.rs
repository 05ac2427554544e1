//! hedge-planner's integration tests: one binary, one module per subject.

mod backends;
mod examples;
mod forecast;
mod infeasible;
mod oracle;
mod outofsample;
mod prices;
mod rounding;
mod snapshots;

use hedge_planner::{parse_plan_yaml, PlanningInput};
use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn example(name: &str) -> PlanningInput {
    let path = repo_root().join("examples").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_plan_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
