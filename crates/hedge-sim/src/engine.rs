//! The fleet simulation: jobs arrive from a trace, are placed by `hedge_placement::place` under a
//! [`Policy`], run on simulated providers with committed, on-demand and spot capacity, and are interrupted
//! by outages and spot preemptions.
//!
//! ## One run, in phases
//! 1. **Setup**: providers come from the catalog; commitments, outages and spot pools become scheduled
//!    events; the first arrival is scheduled. Jobs stream in: only the next arrival and the jobs in the
//!    system are in memory.
//! 2. **Event loop** ([`EventQueue`], FIFO among equal times): arrivals try to place the new job at once;
//!    a finish, an outage end, a commitment start or a rise in spot availability frees capacity and runs a
//!    dispatch pass over the waiting jobs (priority, then submission order). A job whose shape failed to
//!    place since capacity last grew is not tried again in that pass.
//! 3. **Interruptions**: an outage kills every job on its provider; a fall in spot availability preempts the
//!    newest jobs of that pool. Work since the last checkpoint is lost; the job waits to be placed again
//!    and pays its restart overhead on the next start.
//! 4. **Report**: costs are exact integer micro-dollars (running rates integrated over time; commitments
//!    billed for every hour of their term inside the simulated window, used or not).
//!
//! **Invariant** (checked in every report, `jobs.balanced`): submitted = finished + failed + running +
//! waiting.

use crate::fleet::{Fleet, FleetConfig, FleetView, OnDemandLimit, PoolIdx};
use crate::job::{AccelSym, JobKind, JobSpec};
use crate::metrics::{round4, DistSummary, Histogram, Integral};
use crate::outage::Outage;
use crate::policy::Policy;
use crate::queue::{EventQueue, SimTime};
use crate::SimError;
use hedge_core::{AccelRequest, Accelerator, Catalog, Commitment, Market, Money, ProviderId, ResourceRequest, SpotPref, TaskSpec, Timestamp};
use hedge_placement::{place, OwnedCapacity, PlacementContext, PlacementSettings, Unconstrained};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Everything a run needs besides the catalog and the jobs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub policy: Policy,
    pub seed: u64,
    /// The instant simulation time 0 stands for (commitments and outage specs are absolute).
    pub origin: Timestamp,
    /// Stop at this simulation time; `None`: run until every job has finished or failed.
    pub horizon: Option<SimTime>,
    /// Interval of the time series in the report (it halves its resolution to stay under 2,048 points).
    pub sample_every_s: i64,
    pub fleet: FleetConfig,
    pub outages: Vec<Outage>,
    pub commitments: Vec<Commitment>,
    /// The accelerator of each [`AccelSym`] (the trace's table).
    pub accels: Vec<Accelerator>,
    /// Label of the trace, for the report.
    pub trace: String,
}

impl SimConfig {
    pub fn new(policy: Policy, accels: Vec<Accelerator>) -> Self {
        SimConfig {
            policy,
            seed: 0,
            origin: Timestamp::from_ymd(2027, 1, 1),
            horizon: None,
            sample_every_s: 3600,
            fleet: FleetConfig { launch_timeout_s: 600, ..FleetConfig::default() },
            outages: Vec::new(),
            commitments: Vec::new(),
            accels,
            trace: String::new(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Arrival,
    Finish { slot: u32, attempt: u32 },
    LaunchFail { slot: u32, attempt: u32 },
    OutageStart(u32),
    OutageEnd(u32),
    Spot { pool: u32, change: u32, lap: u32 },
    CommitStart(u32),
    CommitEnd(u32),
    Sample,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Shape {
    accel: AccelSym,
    gpus: u32,
    nodes: u32,
    spot: bool,
}

#[derive(Clone, Copy, Debug)]
struct Alloc {
    provider: u16,
    pool: Option<PoolIdx>,
    commitment: Option<u32>,
    gpus: u32,
    rate_micros: i64,
    rate_slot: usize,
}

/// Waiting order: higher priority first, then earlier submission, then id.
type WaitKey = (Reverse<i32>, SimTime, u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Waiting,
    Launching,
    Running,
}

struct Active {
    spec: JobSpec,
    remaining: u64,
    state: State,
    attempt: u32,
    alloc: Option<Alloc>,
    started: SimTime,
    progress_from: SimTime,
    first_start: Option<SimTime>,
    /// Position in the waiting set, while waiting.
    wkey: WaitKey,
    excluded: Vec<u16>,
}

/// Counts of jobs at the end of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    pub submitted: u64,
    pub finished: u64,
    /// Jobs no offer of the catalog can ever run under the policy (an accelerator or size nobody sells,
    /// or not sold by the locked-in provider), found by placing them with every limit lifted.
    pub failed: u64,
    pub running: u64,
    pub waiting: u64,
    /// submitted == finished + failed + running + waiting.
    pub balanced: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommitmentUse {
    pub id: String,
    pub provider: String,
    pub accelerator: String,
    pub gpus: u32,
    /// Billed inside the simulated window.
    pub billed: Money,
    pub used_gpu_hours: f64,
    pub paid_gpu_hours: f64,
    pub utilization: f64,
    /// The billed amount of unused GPU-hours.
    pub waste: Money,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutageReport {
    pub provider: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub demand_gpu_hours: f64,
    pub served_gpu_hours: f64,
    /// Served / demanded GPU-hours during the outage (1 when there was no demand).
    pub served_fraction: f64,
    /// Jobs the outage killed.
    pub jobs_killed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    pub every_s: i64,
    pub t: Vec<SimTime>,
    pub gpus_by_provider: BTreeMap<String, Vec<u32>>,
    pub cumulative_cost: Vec<Money>,
}

/// The outcome of one run. In JSON, every `Money` field is an integer number of micro-dollars and every
/// time is seconds of simulation time (`end_s`, `series.t`) or RFC 3339 UTC (`origin`, outage bounds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub policy: String,
    pub seed: u64,
    pub trace: String,
    pub origin: Timestamp,
    pub end_s: SimTime,
    pub jobs: JobCounts,
    pub total_cost: Money,
    pub cost_by_provider: BTreeMap<String, Money>,
    pub cost_by_market: BTreeMap<String, Money>,
    pub commitments: Vec<CommitmentUse>,
    pub jct: DistSummary,
    pub queueing_delay: DistSummary,
    pub deadline_jobs: u64,
    pub deadline_misses: u64,
    pub lost_gpu_hours: f64,
    pub restart_overhead_gpu_hours: f64,
    pub preemptions: u64,
    pub outage_kills: u64,
    pub failed_launches: u64,
    pub outages: Vec<OutageReport>,
    pub events: u64,
    pub placements: u64,
    pub series: Series,
}

/// Runs one simulation. `jobs` must be sorted by submission time (loaders and [`crate::trace::Synthetic`]
/// produce them so); a job out of order is placed at the current time.
pub fn simulate(catalog: &Catalog, jobs: impl IntoIterator<Item = JobSpec>, cfg: &SimConfig) -> Result<Report, SimError> {
    Sim::new(catalog, cfg)?.run(jobs.into_iter(), |_| {})
}

/// As [`simulate`], calling `progress(now)` about every 65,536 events (for a progress bar).
pub fn simulate_with_progress(
    catalog: &Catalog,
    jobs: impl IntoIterator<Item = JobSpec>,
    cfg: &SimConfig,
    progress: impl FnMut(SimTime),
) -> Result<Report, SimError> {
    Sim::new(catalog, cfg)?.run(jobs.into_iter(), progress)
}

struct Sim<'a> {
    catalog: &'a Catalog,
    cfg: &'a SimConfig,
    settings: PlacementSettings,
    health_aware: bool,
    q: EventQueue<Ev>,
    fleet: Fleet,
    slots: Vec<Option<Active>>,
    free_slots: Vec<u32>,
    waiting: BTreeSet<(WaitKey, u32)>,
    pending: Option<JobSpec>,
    tasks: HashMap<Shape, TaskSpec>,
    unplaceable: HashMap<Shape, bool>,
    failed_shapes: HashSet<Shape>,
    // commitments
    commit_active: Vec<bool>,
    commit_used: Vec<u32>,
    commit_used_int: Vec<Integral>,
    // money and usage
    rate_keys: Vec<(u16, Market)>,
    rate_int: Vec<Integral>,
    gpus_by_provider: Vec<Integral>,
    running_demand: Integral,
    waiting_demand: Integral,
    // outages
    outage_snap: Vec<(i128, i128, u64)>,
    outage_reports: Vec<OutageReport>,
    outage_kills_now: Vec<u64>,
    // counters
    submitted: u64,
    finished: u64,
    failed: u64,
    jct: Histogram,
    qdelay: Histogram,
    deadline_jobs: u64,
    deadline_misses: u64,
    lost_gpu_s: u128,
    overhead_gpu_s: u128,
    preemptions: u64,
    outage_kills: u64,
    failed_launches: u64,
    placements: u64,
    // series
    every: i64,
    series_t: Vec<SimTime>,
    series_gpus: Vec<Vec<u32>>,
    series_cost: Vec<Money>,
    spot_changes: Vec<Vec<(SimTime, u32)>>,
    end: SimTime,
}

fn rate_slot(keys: &mut Vec<(u16, Market)>, ints: &mut Vec<Integral>, p: u16, m: Market) -> usize {
    match keys.iter().position(|&k| k == (p, m)) {
        Some(i) => i,
        None => {
            keys.push((p, m));
            ints.push(Integral::default());
            keys.len() - 1
        }
    }
}

impl<'a> Sim<'a> {
    fn new(catalog: &'a Catalog, cfg: &'a SimConfig) -> Result<Self, SimError> {
        let providers: Vec<ProviderId> = catalog.providers().keys().cloned().collect();
        let setup = |what: &str, reason: String| SimError::Setup { what: what.to_owned(), reason };
        // The catalog's capacities and quotas are on-demand limits; the run's own limits override them.
        let mut fleet_cfg = cfg.fleet.clone();
        let from_catalog = catalog.capacities().iter().filter_map(|c| {
            let gpus = match (c.max_gpus, c.quota_gpus) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => return None,
            };
            Some(OnDemandLimit { provider: c.provider.clone(), region: c.region.clone(), accelerator: c.accelerator.clone(), gpus })
        });
        fleet_cfg.on_demand = from_catalog.chain(cfg.fleet.on_demand.iter().cloned()).collect();
        let fleet = Fleet::new(providers.clone(), &fleet_cfg).map_err(|r| setup("fleet", r))?;
        let lock_in = match &cfg.policy {
            Policy::LockIn(Some(p)) => {
                if fleet.provider_idx(p).is_none() {
                    return Err(setup("lock-in", format!("provider {p} is not in the catalog")));
                }
                Some(p.clone())
            }
            Policy::LockIn(None) => {
                // The provider with the most committed GPUs; with no portfolio, the catalog's first.
                let mut by: BTreeMap<&ProviderId, u64> = BTreeMap::new();
                for c in &cfg.commitments {
                    *by.entry(&c.provider).or_default() += c.gpus as u64;
                }
                let best = by.iter().max_by_key(|(p, g)| (**g, Reverse(**p))).map(|(p, _)| (*p).clone());
                Some(best.or_else(|| providers.first().cloned()).ok_or_else(|| setup("lock-in", "the catalog has no provider".into()))?)
            }
            _ => None,
        };
        for c in &cfg.commitments {
            if fleet.provider_idx(&c.provider).is_none() {
                return Err(setup("portfolio", format!("commitment {} is at {}, which is not in the catalog", c.id, c.provider)));
            }
        }
        for o in &cfg.outages {
            if fleet.provider_idx(&o.provider).is_none() {
                return Err(setup("outage", format!("provider {} is not in the catalog", o.provider)));
            }
        }
        let n = providers.len();
        let spot_changes = fleet.spot_pools.iter().map(|(_, s)| s.trace.changes()).collect();
        Ok(Sim {
            catalog,
            cfg,
            settings: cfg.policy.settings(lock_in.as_ref()),
            health_aware: cfg.policy.health_aware(),
            q: EventQueue::with_capacity(1024),
            fleet,
            slots: Vec::new(),
            free_slots: Vec::new(),
            waiting: BTreeSet::new(),
            pending: None,
            tasks: HashMap::new(),
            unplaceable: HashMap::new(),
            failed_shapes: HashSet::new(),
            commit_active: vec![false; cfg.commitments.len()],
            commit_used: vec![0; cfg.commitments.len()],
            commit_used_int: vec![Integral::default(); cfg.commitments.len()],
            rate_keys: Vec::new(),
            rate_int: Vec::new(),
            gpus_by_provider: vec![Integral::default(); n],
            running_demand: Integral::default(),
            waiting_demand: Integral::default(),
            outage_snap: vec![(0, 0, 0); cfg.outages.len()],
            outage_reports: Vec::new(),
            outage_kills_now: vec![0; n],
            submitted: 0,
            finished: 0,
            failed: 0,
            jct: Histogram::default(),
            qdelay: Histogram::default(),
            deadline_jobs: 0,
            deadline_misses: 0,
            lost_gpu_s: 0,
            overhead_gpu_s: 0,
            preemptions: 0,
            outage_kills: 0,
            failed_launches: 0,
            placements: 0,
            every: cfg.sample_every_s.max(1),
            series_t: Vec::new(),
            series_gpus: vec![Vec::new(); n],
            series_cost: Vec::new(),
            spot_changes,
            end: 0,
        })
    }

    fn live(&self) -> bool {
        self.pending.is_some() || self.slots.len() > self.free_slots.len()
    }

    fn run(mut self, mut jobs: impl Iterator<Item = JobSpec>, mut progress: impl FnMut(SimTime)) -> Result<Report, SimError> {
        let origin = self.cfg.origin.unix();
        for (i, c) in self.cfg.commitments.iter().enumerate() {
            self.q.schedule(c.start.unix() - origin, Ev::CommitStart(i as u32));
            self.q.schedule(c.end.unix() - origin, Ev::CommitEnd(i as u32));
        }
        for (i, o) in self.cfg.outages.iter().enumerate() {
            self.q.schedule(o.start, Ev::OutageStart(i as u32));
            self.q.schedule(o.end.max(o.start), Ev::OutageEnd(i as u32));
        }
        for i in 0..self.fleet.spot_pools.len() {
            if self.spot_changes[i].len() > 1 {
                self.q.schedule(self.spot_changes[i][1].0, Ev::Spot { pool: i as u32, change: 1, lap: 0 });
            }
        }
        self.pending = jobs.next();
        if let Some(j) = &self.pending {
            self.q.schedule(j.submit, Ev::Arrival);
        }
        self.q.schedule(0, Ev::Sample);
        let horizon = self.cfg.horizon.unwrap_or(SimTime::MAX);
        while let Some(t) = self.q.peek_time() {
            if t > horizon || (!self.live() && self.cfg.horizon.is_none()) {
                break;
            }
            let (now, ev) = self.q.next().expect("peeked");
            self.end = now;
            if self.q.processed() & 0xFFFF == 0 {
                progress(now);
            }
            match ev {
                Ev::Arrival => {
                    let j = self.pending.take().expect("an arrival has its job");
                    self.pending = jobs.next();
                    if let Some(n) = &self.pending {
                        self.q.schedule(n.submit, Ev::Arrival);
                    }
                    self.arrive(now, j);
                }
                Ev::Finish { slot, attempt } => self.finish(now, slot, attempt),
                Ev::LaunchFail { slot, attempt } => self.launch_failed(now, slot, attempt),
                Ev::OutageStart(i) => self.outage_start(now, i as usize),
                Ev::OutageEnd(i) => self.outage_end(now, i as usize),
                Ev::Spot { pool, change, lap } => self.spot_change(now, pool as usize, change as usize, lap),
                Ev::CommitStart(i) => {
                    self.commit_active[i as usize] = true;
                    self.capacity_grew(now);
                }
                Ev::CommitEnd(i) => self.commit_end(now, i as usize),
                Ev::Sample => {
                    self.sample(now);
                    if self.live() || self.cfg.horizon.is_some_and(|h| now < h) {
                        self.q.schedule_in(self.every, Ev::Sample);
                    }
                }
            }
        }
        // With a horizon the run covers [0, horizon] exactly (commitments are billed up to it); jobs not yet
        // submitted by then are not counted.
        if let Some(h) = self.cfg.horizon {
            self.end = self.end.max(h);
        }
        Ok(self.report())
    }

    // ---- jobs ----

    fn shape(&self, j: &JobSpec, remaining: u64, now: SimTime) -> Shape {
        let spot = self.cfg.policy.uses_spot()
            && j.kind == JobKind::Batch
            && j.checkpoint_interval_s.is_some_and(|c| c > 0)
            && j.deadline.is_none_or(|d| d - now >= 2 * remaining as i64);
        let nodes = j.num_nodes.max(j.gpus.div_ceil(8)).max(1);
        Shape { accel: j.accel, gpus: j.gpus, nodes, spot }
    }

    fn task(&mut self, s: Shape) -> &TaskSpec {
        let accels = &self.cfg.accels;
        self.tasks.entry(s).or_insert_with(|| {
            let name = accels.get(s.accel.0 as usize).or(accels.first()).cloned().unwrap_or_else(|| Accelerator::parse("H100").expect("known"));
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
                    spot: if s.spot { SpotPref::Allowed } else { SpotPref::Never },
                    ..ResourceRequest::default()
                })
                .collect();
            TaskSpec { num_nodes: s.nodes, resources, ..TaskSpec::single(ResourceRequest::default()) }
        })
    }

    fn alloc_slot(&mut self, a: Active) -> u32 {
        match self.free_slots.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(a);
                s
            }
            None => {
                self.slots.push(Some(a));
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn arrive(&mut self, now: SimTime, j: JobSpec) {
        self.submitted += 1;
        if j.deadline.is_some() {
            self.deadline_jobs += 1;
        }
        let wkey = (Reverse(j.priority), j.submit, j.id.0);
        let slot = self.alloc_slot(Active {
            spec: j,
            remaining: j.duration_s,
            state: State::Waiting,
            attempt: 0,
            alloc: None,
            started: now,
            progress_from: now,
            first_start: None,
            wkey,
            excluded: Vec::new(),
        });
        self.waiting.insert((wkey, slot));
        self.waiting_demand.add(now, j.gpus as i64);
        self.try_place(now, slot);
    }

    /// Tries to start the waiting job in `slot`. Returns whether it left the waiting set.
    fn try_place(&mut self, now: SimTime, slot: u32) -> bool {
        let a = self.slots[slot as usize].as_ref().expect("live slot");
        let spec = a.spec;
        let remaining = a.remaining;
        let shape = self.shape(&spec, remaining, now);
        let cacheable = a.excluded.is_empty();
        if cacheable && self.failed_shapes.contains(&shape) {
            return false;
        }
        // A shape that cannot be placed even with unlimited capacity and every provider up never will be.
        if !self.unplaceable.contains_key(&shape) {
            let task = self.task(shape).clone();
            let p = place(&task, &PlacementContext::new(self.catalog).with_conditions(&Unconstrained), &self.settings);
            self.unplaceable.insert(shape, p.chosen.is_none());
        }
        if self.unplaceable[&shape] {
            self.remove_waiting(now, slot);
            self.failed += 1;
            self.release_slot(slot);
            return true;
        }
        let owned = self.owned();
        let excluded = self.slots[slot as usize].as_ref().expect("live").excluded.clone();
        let view = FleetView { fleet: &self.fleet, health_aware: self.health_aware, excluded: &excluded };
        self.tasks.entry(shape).or_insert_with(|| unreachable!("built above"));
        let task = &self.tasks[&shape];
        let ctx = PlacementContext::new(self.catalog).with_owned(&owned).with_conditions(&view);
        let placement = place(task, &ctx, &self.settings);
        self.placements += 1;
        let Some(c) = placement.chosen else {
            if cacheable {
                self.failed_shapes.insert(shape);
            } else {
                // Every provider tried: start failing over from the beginning when capacity next grows.
                self.slots[slot as usize].as_mut().expect("live").excluded.clear();
            }
            return false;
        };
        let p = self.fleet.provider_idx(&c.provider).expect("catalog provider");
        let gpus = c.total_gpus().max(spec.gpus);
        let commitment = c.commitment.as_ref().and_then(|id| self.cfg.commitments.iter().position(|k| k.id == *id)).map(|i| i as u32);
        let pool = match c.market {
            Market::Committed => None,
            m => c.accelerators.as_ref().and_then(|acc| self.fleet.pool(p, &c.location, &acc.name, m)),
        };
        let rate_micros = if c.market == Market::Committed { 0 } else { c.hourly_cost.hourly().micros() };
        let rs = rate_slot(&mut self.rate_keys, &mut self.rate_int, p, c.market);
        let alloc = Alloc { provider: p, pool, commitment, gpus, rate_micros, rate_slot: rs };
        self.remove_waiting(now, slot);
        if !self.health_aware && self.fleet.down[p as usize] > 0 {
            // The launch goes to a provider that is down: it fails after the launch timeout.
            let a = self.slots[slot as usize].as_mut().expect("live");
            a.state = State::Launching;
            a.attempt += 1;
            a.excluded.push(p);
            let attempt = a.attempt;
            self.waiting_demand.add(now, spec.gpus as i64);
            self.q.schedule_in(self.cfg.fleet.launch_timeout_s.max(1), Ev::LaunchFail { slot, attempt });
            return true;
        }
        self.take(now, &alloc, 1);
        let a = self.slots[slot as usize].as_mut().expect("live");
        a.state = State::Running;
        a.attempt += 1;
        a.alloc = Some(alloc);
        a.started = now;
        a.progress_from = now + spec.restart_overhead_s as i64;
        a.first_start.get_or_insert(now);
        a.excluded.clear();
        let (attempt, remaining) = (a.attempt, a.remaining);
        self.running_demand.add(now, spec.gpus as i64);
        self.q.schedule(now + spec.restart_overhead_s as i64 + remaining as i64, Ev::Finish { slot, attempt });
        true
    }

    fn owned(&self) -> Vec<OwnedCapacity> {
        self.cfg
            .commitments
            .iter()
            .enumerate()
            .filter(|(i, _)| self.commit_active[*i])
            .map(|(i, c)| OwnedCapacity {
                commitment: c.id.clone(),
                provider: c.provider.clone(),
                accelerator: c.accelerator.clone(),
                region: c.region.clone(),
                free_gpus: c.gpus.saturating_sub(self.commit_used[i]),
                marginal_per_gpu_hour: hedge_core::Rate::ZERO,
            })
            .collect()
    }

    /// Applies (sign 1) or releases (sign -1) an allocation's capacity, rate and usage.
    fn take(&mut self, now: SimTime, a: &Alloc, sign: i64) {
        let g = a.gpus as i64 * sign;
        if let Some(p) = a.pool {
            let pool = &mut self.fleet.pools[p];
            pool.used = (pool.used as i64 + g).max(0) as u32;
        }
        if let Some(c) = a.commitment {
            let c = c as usize;
            self.commit_used[c] = (self.commit_used[c] as i64 + g).max(0) as u32;
            self.commit_used_int[c].add(now, g);
        }
        self.rate_int[a.rate_slot].add(now, a.rate_micros * sign);
        self.gpus_by_provider[a.provider as usize].add(now, g);
    }

    fn remove_waiting(&mut self, now: SimTime, slot: u32) {
        let a = self.slots[slot as usize].as_ref().expect("live");
        if a.state == State::Waiting && self.waiting.remove(&(a.wkey, slot)) {
            self.waiting_demand.add(now, -(a.spec.gpus as i64));
        }
    }

    fn release_slot(&mut self, slot: u32) {
        self.slots[slot as usize] = None;
        self.free_slots.push(slot);
    }

    fn requeue(&mut self, now: SimTime, slot: u32) {
        let a = self.slots[slot as usize].as_mut().expect("live");
        a.state = State::Waiting;
        a.alloc = None;
        let (wkey, gpus) = (a.wkey, a.spec.gpus);
        self.waiting.insert((wkey, slot));
        self.waiting_demand.add(now, gpus as i64);
    }

    fn finish(&mut self, now: SimTime, slot: u32, attempt: u32) {
        let Some(a) = self.slots[slot as usize].as_ref() else { return };
        if a.attempt != attempt || a.state != State::Running {
            return;
        }
        let (spec, alloc, first) = (a.spec, a.alloc.expect("running"), a.first_start.unwrap_or(now));
        self.overhead_gpu_s += (a.progress_from - a.started).max(0) as u128 * alloc.gpus as u128;
        self.take(now, &alloc, -1);
        self.running_demand.add(now, -(spec.gpus as i64));
        self.finished += 1;
        self.jct.record((now - spec.submit).max(0) as u64);
        self.qdelay.record((first - spec.submit).max(0) as u64);
        if spec.deadline.is_some_and(|d| now > d) {
            self.deadline_misses += 1;
        }
        self.release_slot(slot);
        self.capacity_grew(now);
    }

    /// Interrupts a running job: keeps progress up to its last checkpoint and puts it back in line.
    fn interrupt(&mut self, now: SimTime, slot: u32) {
        let a = self.slots[slot as usize].as_mut().expect("live");
        let alloc = a.alloc.expect("running");
        let progressed = (now - a.progress_from).max(0) as u64;
        let progressed = progressed.min(a.remaining);
        let kept = if a.spec.kind == JobKind::Service { progressed } else { a.spec.durable_progress(progressed) };
        a.remaining -= kept;
        let overhead = (a.progress_from.min(now) - a.started).max(0) as u128;
        let spec = a.spec;
        self.lost_gpu_s += (progressed - kept) as u128 * alloc.gpus as u128;
        self.overhead_gpu_s += overhead * alloc.gpus as u128;
        self.take(now, &alloc, -1);
        self.running_demand.add(now, -(spec.gpus as i64));
        self.requeue(now, slot);
    }

    fn launch_failed(&mut self, now: SimTime, slot: u32, attempt: u32) {
        let Some(a) = self.slots[slot as usize].as_ref() else { return };
        if a.attempt != attempt || a.state != State::Launching {
            return;
        }
        self.failed_launches += 1;
        let gpus = a.spec.gpus;
        self.waiting_demand.add(now, -(gpus as i64));
        self.requeue(now, slot);
        self.try_place(now, slot);
    }

    /// Capacity grew: forget which shapes failed and try the waiting jobs in order.
    fn capacity_grew(&mut self, now: SimTime) {
        self.failed_shapes.clear();
        if self.waiting.is_empty() {
            return;
        }
        let order: Vec<u32> = self.waiting.iter().map(|(_, s)| *s).collect();
        for slot in order {
            if self.slots[slot as usize].as_ref().is_some_and(|a| a.state == State::Waiting) {
                self.try_place(now, slot);
            }
        }
    }

    fn running_on(&self, pred: impl Fn(&Alloc) -> bool) -> Vec<(SimTime, u32)> {
        let mut v: Vec<(SimTime, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|a| a.state == State::Running && a.alloc.as_ref().is_some_and(&pred)).map(|a| (a.started, i as u32)))
            .collect();
        v.sort();
        v
    }

    // ---- providers ----

    fn outage_start(&mut self, now: SimTime, i: usize) {
        let p = self.fleet.provider_idx(&self.cfg.outages[i].provider).expect("checked") as usize;
        self.fleet.down[p] += 1;
        let victims = self.running_on(|a| a.provider as usize == p);
        self.outage_snap[i] = (self.running_demand.at(now), self.waiting_demand.at(now) + self.running_demand.at(now), victims.len() as u64);
        self.outage_kills += victims.len() as u64;
        self.outage_kills_now[p] += victims.len() as u64;
        for &(_, slot) in &victims {
            self.interrupt(now, slot);
        }
        // The killed jobs fail over at once where the policy allows.
        for (_, slot) in victims {
            if self.slots[slot as usize].as_ref().is_some_and(|a| a.state == State::Waiting) {
                self.try_place(now, slot);
            }
        }
    }

    fn outage_end(&mut self, now: SimTime, i: usize) {
        let o = &self.cfg.outages[i];
        let p = self.fleet.provider_idx(&o.provider).expect("checked") as usize;
        self.fleet.down[p] = self.fleet.down[p].saturating_sub(1);
        let (served0, demand0, killed) = self.outage_snap[i];
        let served = (self.running_demand.at(now) - served0) as f64 / 3600.0;
        let demand = (self.waiting_demand.at(now) + self.running_demand.at(now) - demand0) as f64 / 3600.0;
        let origin = self.cfg.origin;
        self.outage_reports.push(OutageReport {
            provider: o.provider.to_string(),
            start: origin.plus_seconds(o.start),
            end: origin.plus_seconds(o.end),
            demand_gpu_hours: round4(demand),
            served_gpu_hours: round4(served),
            served_fraction: if demand > 0.0 { round4(served / demand) } else { 1.0 },
            jobs_killed: killed,
        });
        self.capacity_grew(now);
    }

    fn spot_change(&mut self, now: SimTime, i: usize, change: usize, lap: u32) {
        let (pool_idx, sp) = (&self.fleet.spot_pools[i].0, &self.fleet.spot_pools[i].1);
        let pool_idx = *pool_idx;
        let changes = &self.spot_changes[i];
        let cap = changes[change].1.saturating_mul(sp.gpus_per_unit).saturating_mul(sp.scale);
        let span = sp.trace.span_s();
        let (next, next_lap) = if change + 1 < changes.len() { (change + 1, lap) } else { (0, lap + 1) };
        let at = changes[next].0 + span * next_lap as i64;
        if self.live() || self.cfg.horizon.is_some_and(|h| at <= h) {
            self.q.schedule(at.max(now + 1), Ev::Spot { pool: i as u32, change: next as u32, lap: next_lap });
        }
        let old = self.fleet.pools[pool_idx].cap;
        self.fleet.pools[pool_idx].cap = cap;
        if cap < self.fleet.pools[pool_idx].used {
            // Preempt the newest jobs of the pool until the rest fit.
            let mut victims = self.running_on(|a| a.pool == Some(pool_idx));
            while self.fleet.pools[pool_idx].used > cap {
                let Some((_, slot)) = victims.pop() else { break };
                self.preemptions += 1;
                self.interrupt(now, slot);
                self.try_place(now, slot);
            }
        }
        if cap > old {
            self.capacity_grew(now);
        }
    }

    fn commit_end(&mut self, now: SimTime, i: usize) {
        self.commit_active[i] = false;
        // Jobs on the ended commitment keep running, billed from now on at the offer's on-demand price
        // through the same allocation (the engine has already placed them; moving them would lose work).
        let victims = self.running_on(|a| a.commitment == Some(i as u32));
        for (_, slot) in victims {
            let a = self.slots[slot as usize].as_ref().expect("live");
            let alloc = a.alloc.expect("running");
            self.take(now, &alloc, -1);
            let rate = self
                .catalog
                .providers()
                .keys()
                .nth(alloc.provider as usize)
                .and_then(|p| {
                    let accel = &self.cfg.commitments[i].accelerator;
                    self.catalog.with_accelerator(accel).iter().map(|&o| self.catalog.offer(o)).filter(|o| o.provider == *p).filter_map(|o| o.prices.on_demand.map(|r| r.per_unit(o.gpus().max(1)))).min()
                })
                .map_or(0, |r| r.times(alloc.gpus).hourly().micros());
            let rs = rate_slot(&mut self.rate_keys, &mut self.rate_int, alloc.provider, Market::OnDemand);
            let moved = Alloc { commitment: None, pool: None, rate_micros: rate, rate_slot: rs, ..alloc };
            self.take(now, &moved, 1);
            self.slots[slot as usize].as_mut().expect("live").alloc = Some(moved);
        }
    }

    fn sample(&mut self, now: SimTime) {
        if self.series_t.len() >= 2048 {
            // Halve the resolution: keep every other point.
            fn keep<T>(v: &mut Vec<T>) {
                let mut i = 0;
                v.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
            }
            keep(&mut self.series_t);
            keep(&mut self.series_cost);
            for s in &mut self.series_gpus {
                keep(s);
            }
            self.every *= 2;
        }
        if self.series_t.last().is_some_and(|&t| now - t < self.every) {
            return;
        }
        self.series_t.push(now);
        for (p, s) in self.series_gpus.iter_mut().enumerate() {
            s.push(self.gpus_by_provider[p].level().max(0) as u32);
        }
        let cost = self.cost_until(now).0;
        self.series_cost.push(cost);
    }

    /// (total, by provider, by market) accrued up to `now`.
    fn cost_until(&self, now: SimTime) -> (Money, BTreeMap<String, Money>, BTreeMap<String, Money>) {
        let mut by_p: BTreeMap<String, Money> = BTreeMap::new();
        let mut by_m: BTreeMap<String, Money> = BTreeMap::new();
        let mut total = Money::ZERO;
        for (k, i) in self.rate_keys.iter().zip(&self.rate_int) {
            let m = Money::from_micros((i.at(now) / 3600) as i64);
            *by_p.entry(self.fleet.providers[k.0 as usize].to_string()).or_default() += m;
            *by_m.entry(k.1.to_string()).or_default() += m;
            total += m;
        }
        for c in &self.cfg.commitments {
            let billed = self.commit_billed(c, now);
            *by_p.entry(c.provider.to_string()).or_default() += billed;
            *by_m.entry(Market::Committed.to_string()).or_default() += billed;
            total += billed;
        }
        (total, by_p, by_m)
    }

    fn commit_window(&self, c: &Commitment, now: SimTime) -> i64 {
        let o = self.cfg.origin.unix();
        let s = (c.start.unix() - o).max(0);
        let e = (c.end.unix() - o).min(now);
        (e - s).max(0)
    }

    fn commit_billed(&self, c: &Commitment, now: SimTime) -> Money {
        c.per_gpu_hour.times(c.gpus).cost_for_seconds(self.commit_window(c, now) as u64)
    }

    fn report(mut self) -> Report {
        let end = self.end;
        self.sample(end);
        let (total, by_p, by_m) = self.cost_until(end);
        let commitments = self
            .cfg
            .commitments
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let used = self.commit_used_int[i].at(end) as f64 / 3600.0;
                let paid = (self.commit_window(c, end) as f64 * c.gpus as f64) / 3600.0;
                let billed = self.commit_billed(c, end);
                let util = if paid > 0.0 { (used / paid).min(1.0) } else { 0.0 };
                let unused_s = (self.commit_window(c, end) as i128 * c.gpus as i128 - self.commit_used_int[i].at(end)).max(0);
                let waste = Money::from_micros((c.per_gpu_hour.hourly().micros() as i128 * unused_s / 3600) as i64);
                CommitmentUse {
                    id: c.id.to_string(),
                    provider: c.provider.to_string(),
                    accelerator: c.accelerator.to_string(),
                    gpus: c.gpus,
                    billed,
                    used_gpu_hours: round4(used),
                    paid_gpu_hours: round4(paid),
                    utilization: round4(util),
                    waste,
                }
            })
            .collect();
        let running = self.slots.iter().flatten().filter(|a| a.state == State::Running).count() as u64;
        let waiting = self.slots.iter().flatten().filter(|a| a.state != State::Running).count() as u64;
        let mut gpus_by_provider = BTreeMap::new();
        for (p, s) in self.fleet.providers.iter().zip(self.series_gpus) {
            gpus_by_provider.insert(p.to_string(), s);
        }
        Report {
            policy: self.cfg.policy.to_string(),
            seed: self.cfg.seed,
            trace: self.cfg.trace.clone(),
            origin: self.cfg.origin,
            end_s: end,
            jobs: JobCounts {
                submitted: self.submitted,
                finished: self.finished,
                failed: self.failed,
                running,
                waiting,
                balanced: self.submitted == self.finished + self.failed + running + waiting,
            },
            total_cost: total,
            cost_by_provider: by_p,
            cost_by_market: by_m,
            commitments,
            jct: self.jct.summary(),
            queueing_delay: self.qdelay.summary(),
            deadline_jobs: self.deadline_jobs,
            deadline_misses: self.deadline_misses,
            lost_gpu_hours: round4(self.lost_gpu_s as f64 / 3600.0),
            restart_overhead_gpu_hours: round4(self.overhead_gpu_s as f64 / 3600.0),
            preemptions: self.preemptions,
            outage_kills: self.outage_kills,
            failed_launches: self.failed_launches,
            outages: self.outage_reports,
            events: self.q.processed(),
            placements: self.placements,
            series: Series { every_s: self.every, t: self.series_t, gpus_by_provider, cumulative_cost: self.series_cost },
        }
    }
}
