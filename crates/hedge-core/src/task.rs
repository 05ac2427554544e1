//! What a task asks for. These are validated values: parsers of outside input (SkyPilot task YAML, HTTP
//! bodies) produce them, and the placement engine consumes them.

use crate::accel::AccelRequest;
use crate::ids::{ProviderId, RegionId, ZoneId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A lower bound or an exact value, as SkyPilot writes `cpus: 4+` (at least 4) or `cpus: 4` (exactly 4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound<T> {
    Exactly(T),
    AtLeast(T),
}

impl<T: PartialOrd + Copy> Bound<T> {
    pub fn admits(&self, v: T) -> bool {
        match *self {
            Bound::Exactly(x) => v == x,
            Bound::AtLeast(x) => v >= x,
        }
    }
}

/// Which markets a request may use. SkyPilot's `use_spot: true` is [`SpotPref::Required`], `false` (the
/// default) is [`SpotPref::Never`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpotPref {
    #[default]
    Never,
    Required,
    /// Hedge's extension: either market, whichever is cheaper and safe.
    Allowed,
}

/// One acceptable shape of resources for each node of a task. Every `None` means "any".
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct ResourceRequest {
    pub accelerators: Option<AccelRequest>,
    pub provider: Option<ProviderId>,
    pub region: Option<RegionId>,
    pub zone: Option<ZoneId>,
    pub spot: SpotPref,
    /// vCPUs per node, in thousandths.
    pub cpus_milli: Option<Bound<u32>>,
    /// Memory per node, in MiB.
    pub memory_mib: Option<Bound<u64>>,
    pub instance_type: Option<String>,
}

/// How alternatives are chosen between.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preference {
    /// The cheapest feasible of all alternatives (SkyPilot `any_of`, or a set of accelerators).
    #[default]
    Cheapest,
    /// The first feasible alternative in the user's order (SkyPilot `ordered`, or a list of accelerators).
    Ordered,
}

/// A task: what to run and on what.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct TaskSpec {
    pub name: Option<String>,
    pub run: Option<String>,
    /// Nodes, each of which gets one of the resource shapes. At least 1.
    pub num_nodes: u32,
    /// Acceptable shapes, never empty.
    pub resources: Vec<ResourceRequest>,
    pub preference: Preference,
    /// Commands run before `run` on every node (a failing setup fails the attempt).
    #[serde(default)]
    pub setup: Option<String>,
    /// Environment variables for `setup` and `run` (names are valid shell names, never `HEDGE_*`).
    #[serde(default)]
    pub envs: BTreeMap<String, String>,
    /// A local directory the commands run in (synced to the node where the driver can).
    #[serde(default)]
    pub workdir: Option<String>,
    /// Remote path -> local source path, made available where the driver can.
    #[serde(default)]
    pub file_mounts: BTreeMap<String, String>,
    /// How long the job is expected to run at most (Hedge's `time_limit_seconds`): what a launch reserves
    /// against the team's budget. `None`: the broker's default reservation.
    #[serde(default)]
    pub time_limit_seconds: Option<u64>,
}

impl TaskSpec {
    /// A one-node task with a single resource shape.
    pub fn single(resources: ResourceRequest) -> Self {
        TaskSpec {
            name: None,
            run: None,
            num_nodes: 1,
            resources: vec![resources],
            preference: Preference::Cheapest,
            setup: None,
            envs: BTreeMap::new(),
            workdir: None,
            file_mounts: BTreeMap::new(),
            time_limit_seconds: None,
        }
    }
}
