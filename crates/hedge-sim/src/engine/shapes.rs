//! Placement shapes: the task a job of a given (accelerator, GPUs, nodes, spot) asks the placement
//! engine for, built once per shape, and what is known about placing it (never fits at all; did not fit
//! since capacity last grew).

use crate::job::{AccelSym, JobKind, JobSpec};
use crate::policy::Policy;
use crate::queue::SimTime;
use hedge_core::{
    AccelRequest, Accelerator, Catalog, Preference, ResourceRequest, SpotPref, TaskSpec,
};
use hedge_placement::{place, PlacementContext, PlacementSettings, Unconstrained};
use std::collections::{HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Shape {
    pub accel: AccelSym,
    pub gpus: u32,
    pub nodes: u32,
    pub spot: bool,
}

impl Shape {
    /// The shape of a job with `remaining` seconds of work at `now`: spot only for checkpointing batch
    /// jobs of a spot-using policy with at least twice their remaining work before the deadline.
    pub fn of(policy: &Policy, j: &JobSpec, remaining: u64, now: SimTime) -> Shape {
        let spot = policy.uses_spot()
            && j.kind == JobKind::Batch
            && j.checkpoint_interval_s.is_some_and(|c| c > 0)
            && j.deadline.is_none_or(|d| d - now >= 2 * remaining as i64);
        let nodes = j.num_nodes.max(j.gpus.div_ceil(8)).max(1);
        Shape {
            accel: j.accel,
            gpus: j.gpus,
            nodes,
            spot,
        }
    }
}

#[derive(Default)]
pub(super) struct ShapeCache {
    tasks: HashMap<Shape, TaskSpec>,
    unplaceable: HashMap<Shape, bool>,
    failed: HashSet<Shape>,
}

impl ShapeCache {
    /// The task of a shape, built on first use.
    pub fn task(&mut self, s: Shape, accels: &[Accelerator]) -> &TaskSpec {
        self.tasks.entry(s).or_insert_with(|| build_task(s, accels))
    }

    /// Whether the shape cannot be placed even with unlimited capacity and every provider up (then it
    /// never will be). Placed once per shape.
    pub fn never_fits(
        &mut self,
        s: Shape,
        accels: &[Accelerator],
        catalog: &Catalog,
        settings: &PlacementSettings,
    ) -> bool {
        if let Some(&never) = self.unplaceable.get(&s) {
            return never;
        }
        let task = self.task(s, accels);
        let never = place(
            task,
            &PlacementContext::new(catalog).with_conditions(&Unconstrained),
            settings,
        )
        .chosen
        .is_none();
        self.unplaceable.insert(s, never);
        never
    }

    /// Whether the shape failed to place since capacity last grew.
    pub fn failed_lately(&self, s: Shape) -> bool {
        self.failed.contains(&s)
    }

    pub fn failed_now(&mut self, s: Shape) {
        self.failed.insert(s);
    }

    /// Capacity grew: every shape may fit again.
    pub fn forget_failures(&mut self) {
        self.failed.clear();
    }
}

fn build_task(s: Shape, accels: &[Accelerator]) -> TaskSpec {
    // Jobs are checked on arrival (`Sim::arrive`): an index outside the table never gets here.
    let name = accels
        .get(s.accel.0 as usize)
        .cloned()
        .expect("accelerator index checked on arrival");
    let per_node = s.gpus.div_ceil(s.nodes);
    let mut counts: Vec<u32> = vec![per_node];
    let mut c = per_node.next_power_of_two();
    while c <= 8.max(per_node) {
        if c > per_node {
            counts.push(c);
        }
        c *= 2;
    }
    let resources = counts
        .into_iter()
        .map(|c| ResourceRequest {
            accelerators: Some(AccelRequest::new(name.clone(), c)),
            spot: if s.spot {
                SpotPref::Allowed
            } else {
                SpotPref::Never
            },
            ..ResourceRequest::default()
        })
        .collect();
    TaskSpec {
        num_nodes: s.nodes,
        resources,
        preference: Preference::Cheapest,
        ..TaskSpec::single(ResourceRequest::default())
    }
}
