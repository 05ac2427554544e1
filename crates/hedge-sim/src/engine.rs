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
//!    When a commitment ends, its jobs stay and are billed at the provider's cheapest on-demand price per
//!    GPU for that accelerator; if the provider has none, they are interrupted and placed again.
//! 4. **Report**: costs are exact integer micro-dollars (running rates integrated over time; commitments
//!    billed for every hour of their term inside the simulated window, used or not).
//!
//! **Invariant** (checked in every report, `jobs.balanced`): submitted = finished + failed + running +
//! waiting.

mod capacity;
mod jobs;
mod ledger;
mod outages;
mod series;
mod shapes;
mod stats;

use crate::fleet::{Fleet, FleetConfig, FleetView, OnDemandLimit, PoolIdx};
use crate::job::{JobKind, JobSpec};
use crate::metrics::{round4, DistSummary};
use crate::outage::Outage;
use crate::policy::Policy;
use crate::queue::{EventQueue, SimTime};
use crate::SimError;
use capacity::Capacity;
use hedge_core::{Accelerator, Catalog, Commitment, Market, Money, ProviderId, Rate, Timestamp};
use hedge_placement::{place, PlacementContext, PlacementSettings};
use jobs::{Active, JobTable, State};
use ledger::Ledger;
use outages::OutageTracker;
use serde::Serialize;
use series::Sampler;
use shapes::{Shape, ShapeCache};
use stats::Stats;
use std::cmp::Reverse;
use std::collections::BTreeMap;

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
    /// The accelerator of each [`crate::AccelSym`] (the trace's table). A job whose index is not in it is an
    /// error ([`SimError::UnknownAccelerator`]).
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
            fleet: FleetConfig {
                launch_timeout_s: 600,
                ..FleetConfig::default()
            },
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

/// Where a running job is and what it costs: its provider, capacity pool and commitment, its GPUs, and
/// its rate in micro-dollars per hour booked on ledger account `rate_slot`.
#[derive(Clone, Copy, Debug)]
struct Alloc {
    provider: u16,
    pool: Option<PoolIdx>,
    commitment: Option<u32>,
    gpus: u32,
    rate_micros: i64,
    rate_slot: usize,
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
    /// Jobs interrupted because their capacity went away: spot preemptions, and jobs on a commitment that
    /// ended at a provider that sells that accelerator on demand nowhere in the catalog.
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
pub fn simulate(
    catalog: &Catalog,
    jobs: impl IntoIterator<Item = JobSpec>,
    cfg: &SimConfig,
) -> Result<Report, SimError> {
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

/// The event loop: it pops events in order and routes each to the part that owns it. The parts have one
/// job each: [`JobTable`] (jobs in the system and the waiting line), [`ShapeCache`] (what each job shape
/// asks the placement engine), [`Capacity`] (fleet and commitments in force), [`Ledger`] (cost integrals),
/// [`OutageTracker`] (demand served during outages), [`Sampler`] (the time series) and [`Stats`].
struct Sim<'a> {
    catalog: &'a Catalog,
    cfg: &'a SimConfig,
    settings: PlacementSettings,
    health_aware: bool,
    q: EventQueue<Ev>,
    /// The next arrival, read ahead from the trace.
    pending: Option<JobSpec>,
    spot_changes: Vec<Vec<(SimTime, u32)>>,
    end: SimTime,
    jobs: JobTable,
    shapes: ShapeCache,
    capacity: Capacity<'a>,
    ledger: Ledger<'a>,
    outages: OutageTracker,
    series: Sampler,
    stats: Stats,
}

impl<'a> Sim<'a> {
    fn new(catalog: &'a Catalog, cfg: &'a SimConfig) -> Result<Self, SimError> {
        let providers: Vec<ProviderId> = catalog.providers().keys().cloned().collect();
        let setup = |what: &str, reason: String| SimError::Setup {
            what: what.to_owned(),
            reason,
        };
        // The catalog's capacities and quotas are on-demand limits; the run's own limits override them.
        let mut fleet_cfg = cfg.fleet.clone();
        let from_catalog = catalog.capacities().iter().filter_map(|c| {
            let gpus = match (c.max_gpus, c.quota_gpus) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => return None,
            };
            Some(OnDemandLimit {
                provider: c.provider.clone(),
                region: c.region.clone(),
                accelerator: c.accelerator.clone(),
                gpus,
            })
        });
        fleet_cfg.on_demand = from_catalog
            .chain(cfg.fleet.on_demand.iter().cloned())
            .collect();
        let fleet = Fleet::new(providers.clone(), &fleet_cfg).map_err(|r| setup("fleet", r))?;
        let lock_in = match &cfg.policy {
            Policy::LockIn(Some(p)) => {
                if fleet.provider_idx(p).is_none() {
                    return Err(setup(
                        "lock-in",
                        format!("provider {p} is not in the catalog"),
                    ));
                }
                Some(p.clone())
            }
            Policy::LockIn(None) => {
                // The provider with the most committed GPUs; with no portfolio, the catalog's first.
                let mut by: BTreeMap<&ProviderId, u64> = BTreeMap::new();
                for c in &cfg.commitments {
                    *by.entry(&c.provider).or_default() += c.gpus as u64;
                }
                let best = by
                    .iter()
                    .max_by_key(|(p, g)| (**g, Reverse(**p)))
                    .map(|(p, _)| (*p).clone());
                Some(
                    best.or_else(|| providers.first().cloned())
                        .ok_or_else(|| setup("lock-in", "the catalog has no provider".into()))?,
                )
            }
            _ => None,
        };
        for c in &cfg.commitments {
            if fleet.provider_idx(&c.provider).is_none() {
                return Err(setup(
                    "portfolio",
                    format!(
                        "commitment {} is at {}, which is not in the catalog",
                        c.id, c.provider
                    ),
                ));
            }
        }
        for o in &cfg.outages {
            if fleet.provider_idx(&o.provider).is_none() {
                return Err(setup(
                    "outage",
                    format!("provider {} is not in the catalog", o.provider),
                ));
            }
        }
        let n = providers.len();
        let spot_changes = fleet
            .spot_pools
            .iter()
            .map(|(_, s)| s.trace.changes())
            .collect();
        Ok(Sim {
            catalog,
            cfg,
            settings: cfg.policy.settings(lock_in.as_ref()),
            health_aware: cfg.policy.health_aware(),
            q: EventQueue::with_capacity(1024),
            pending: None,
            spot_changes,
            end: 0,
            jobs: JobTable::default(),
            shapes: ShapeCache::default(),
            capacity: Capacity::new(fleet, &cfg.commitments),
            ledger: Ledger::new(
                providers.iter().map(|p| p.to_string()).collect(),
                &cfg.commitments,
                cfg.origin,
            ),
            outages: OutageTracker::new(cfg.outages.len()),
            series: Sampler::new(cfg.sample_every_s, n),
            stats: Stats::default(),
        })
    }

    fn live(&self) -> bool {
        self.pending.is_some() || self.jobs.any()
    }

    fn run(
        mut self,
        mut jobs: impl Iterator<Item = JobSpec>,
        mut progress: impl FnMut(SimTime),
    ) -> Result<Report, SimError> {
        let origin = self.cfg.origin.unix();
        for (i, c) in self.cfg.commitments.iter().enumerate() {
            self.q
                .schedule(c.start.unix() - origin, Ev::CommitStart(i as u32));
            self.q
                .schedule(c.end.unix() - origin, Ev::CommitEnd(i as u32));
        }
        for (i, o) in self.cfg.outages.iter().enumerate() {
            self.q.schedule(o.start, Ev::OutageStart(i as u32));
            self.q.schedule(o.end.max(o.start), Ev::OutageEnd(i as u32));
        }
        for i in 0..self.capacity.fleet.spot_pools.len() {
            if self.spot_changes[i].len() > 1 {
                self.q.schedule(
                    self.spot_changes[i][1].0,
                    Ev::Spot {
                        pool: i as u32,
                        change: 1,
                        lap: 0,
                    },
                );
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
                    self.arrive(now, j)?;
                }
                Ev::Finish { slot, attempt } => self.finish(now, slot, attempt),
                Ev::LaunchFail { slot, attempt } => self.launch_failed(now, slot, attempt),
                Ev::OutageStart(i) => self.outage_start(now, i as usize),
                Ev::OutageEnd(i) => self.outage_end(now, i as usize),
                Ev::Spot { pool, change, lap } => {
                    self.spot_change(now, pool as usize, change as usize, lap)
                }
                Ev::CommitStart(i) => {
                    self.capacity.commitment_starts(i as usize);
                    self.capacity_grew(now);
                }
                Ev::CommitEnd(i) => self.commit_end(now, i as usize),
                Ev::Sample => {
                    self.sample(now);
                    if self.live() || self.cfg.horizon.is_some_and(|h| now < h) {
                        self.q.schedule_in(self.series.every(), Ev::Sample);
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

    /// A job arrives. A job whose accelerator index is not in [`SimConfig::accels`] stops the run with
    /// [`SimError::UnknownAccelerator`] (it never silently becomes another accelerator).
    fn arrive(&mut self, now: SimTime, j: JobSpec) -> Result<(), SimError> {
        if j.accel.0 as usize >= self.cfg.accels.len() {
            return Err(SimError::UnknownAccelerator {
                job: j.id.0,
                index: j.accel.0,
                known: self.cfg.accels.len(),
            });
        }
        self.stats.submitted += 1;
        if j.deadline.is_some() {
            self.stats.deadline_jobs += 1;
        }
        let slot = self.jobs.insert(Active::new(j, now));
        self.jobs.enqueue(slot);
        self.outages.waiting(now, j.gpus as i64);
        self.try_place(now, slot);
        Ok(())
    }

    /// Tries to start the waiting job in `slot`. Returns whether it left the waiting set.
    fn try_place(&mut self, now: SimTime, slot: u32) -> bool {
        let a = self.jobs.live(slot);
        let spec = a.spec;
        let shape = Shape::of(&self.cfg.policy, &spec, a.remaining, now);
        let cacheable = a.excluded.is_empty();
        if cacheable && self.shapes.failed_lately(shape) {
            return false;
        }
        // A shape that cannot be placed even with unlimited capacity and every provider up never will be.
        if self
            .shapes
            .never_fits(shape, &self.cfg.accels, self.catalog, &self.settings)
        {
            self.unqueue(now, slot);
            self.stats.failed += 1;
            self.jobs.release(slot);
            return true;
        }
        let owned = self.capacity.owned();
        let excluded = self.jobs.live(slot).excluded.clone();
        let view = FleetView {
            fleet: &self.capacity.fleet,
            health_aware: self.health_aware,
            excluded: &excluded,
        };
        let task = self.shapes.task(shape, &self.cfg.accels);
        let ctx = PlacementContext::new(self.catalog)
            .with_owned(&owned)
            .with_conditions(&view);
        let placement = place(task, &ctx, &self.settings);
        self.stats.placements += 1;
        let Some(c) = placement.chosen else {
            if cacheable {
                self.shapes.failed_now(shape);
            } else {
                // Every provider tried: start failing over from the beginning when capacity next grows.
                self.jobs.live_mut(slot).excluded.clear();
            }
            return false;
        };
        let fleet = &self.capacity.fleet;
        let p = fleet.provider_idx(&c.provider).expect("catalog provider");
        let gpus = c.total_gpus().max(spec.gpus);
        let commitment = c
            .commitment
            .as_ref()
            .and_then(|id| self.capacity.commitment_index(id));
        let pool = match c.market {
            Market::Committed => None,
            m => c
                .accelerators
                .as_ref()
                .and_then(|acc| fleet.pool(p, &c.location, &acc.name, m)),
        };
        let rate_micros = if c.market == Market::Committed {
            0
        } else {
            c.hourly_cost.hourly().micros()
        };
        let rs = self.ledger.account(p, c.market);
        let alloc = Alloc {
            provider: p,
            pool,
            commitment,
            gpus,
            rate_micros,
            rate_slot: rs,
        };
        self.unqueue(now, slot);
        if !self.health_aware && self.capacity.fleet.down[p as usize] > 0 {
            // The launch goes to a provider that is down: it fails after the launch timeout.
            let a = self.jobs.live_mut(slot);
            a.state = State::Launching;
            a.attempt += 1;
            a.excluded.push(p);
            let attempt = a.attempt;
            self.outages.waiting(now, spec.gpus as i64);
            self.q.schedule_in(
                self.cfg.fleet.launch_timeout_s.max(1),
                Ev::LaunchFail { slot, attempt },
            );
            return true;
        }
        self.take(now, &alloc, 1);
        let a = self.jobs.live_mut(slot);
        a.state = State::Running;
        a.attempt += 1;
        a.alloc = Some(alloc);
        a.started = now;
        a.progress_from = now + spec.restart_overhead_s as i64;
        a.first_start.get_or_insert(now);
        a.excluded.clear();
        let (attempt, remaining) = (a.attempt, a.remaining);
        self.outages.running(now, spec.gpus as i64);
        self.q.schedule(
            now + spec.restart_overhead_s as i64 + remaining as i64,
            Ev::Finish { slot, attempt },
        );
        true
    }

    /// Applies (sign 1) or releases (sign -1) an allocation's capacity, rate and usage.
    fn take(&mut self, now: SimTime, a: &Alloc, sign: i64) {
        self.capacity.take(a, sign);
        self.ledger.book(now, a, sign);
    }

    /// Takes a waiting job out of line.
    fn unqueue(&mut self, now: SimTime, slot: u32) {
        if let Some(gpus) = self.jobs.dequeue(slot) {
            self.outages.waiting(now, -(gpus as i64));
        }
    }

    fn requeue(&mut self, now: SimTime, slot: u32) {
        let a = self.jobs.live_mut(slot);
        a.state = State::Waiting;
        a.alloc = None;
        let gpus = a.spec.gpus;
        self.jobs.enqueue(slot);
        self.outages.waiting(now, gpus as i64);
    }

    fn finish(&mut self, now: SimTime, slot: u32, attempt: u32) {
        let Some(a) = self.jobs.get(slot) else { return };
        if a.attempt != attempt || a.state != State::Running {
            return;
        }
        let (spec, alloc, first) = (
            a.spec,
            a.alloc.expect("running"),
            a.first_start.unwrap_or(now),
        );
        self.stats.overhead_gpu_s +=
            (a.progress_from - a.started).max(0) as u128 * alloc.gpus as u128;
        self.take(now, &alloc, -1);
        self.outages.running(now, -(spec.gpus as i64));
        self.stats.finished += 1;
        self.stats.jct.record((now - spec.submit).max(0) as u64);
        self.stats
            .qdelay
            .record((first - spec.submit).max(0) as u64);
        if spec.deadline.is_some_and(|d| now > d) {
            self.stats.deadline_misses += 1;
        }
        self.jobs.release(slot);
        self.capacity_grew(now);
    }

    /// Interrupts a running job: keeps progress up to its last checkpoint and puts it back in line.
    fn interrupt(&mut self, now: SimTime, slot: u32) {
        let a = self.jobs.live_mut(slot);
        let alloc = a.alloc.expect("running");
        let progressed = (now - a.progress_from).max(0) as u64;
        let progressed = progressed.min(a.remaining);
        let kept = if a.spec.kind == JobKind::Service {
            progressed
        } else {
            a.spec.durable_progress(progressed)
        };
        a.remaining -= kept;
        let overhead = (a.progress_from.min(now) - a.started).max(0) as u128;
        let spec = a.spec;
        self.stats.lost_gpu_s += (progressed - kept) as u128 * alloc.gpus as u128;
        self.stats.overhead_gpu_s += overhead * alloc.gpus as u128;
        self.take(now, &alloc, -1);
        self.outages.running(now, -(spec.gpus as i64));
        self.requeue(now, slot);
    }

    fn launch_failed(&mut self, now: SimTime, slot: u32, attempt: u32) {
        let Some(a) = self.jobs.get(slot) else { return };
        if a.attempt != attempt || a.state != State::Launching {
            return;
        }
        self.stats.failed_launches += 1;
        let gpus = a.spec.gpus;
        self.outages.waiting(now, -(gpus as i64));
        self.requeue(now, slot);
        self.try_place(now, slot);
    }

    /// Capacity grew: forget which shapes failed and try the waiting jobs in order.
    fn capacity_grew(&mut self, now: SimTime) {
        self.shapes.forget_failures();
        if self.jobs.nobody_waits() {
            return;
        }
        for slot in self.jobs.waiting_order() {
            if self.jobs.is_waiting(slot) {
                self.try_place(now, slot);
            }
        }
    }

    // ---- providers ----

    fn outage_start(&mut self, now: SimTime, i: usize) {
        let p = self
            .capacity
            .fleet
            .provider_idx(&self.cfg.outages[i].provider)
            .expect("checked") as usize;
        self.capacity.fleet.down[p] += 1;
        let victims = self.jobs.running_on(|a| a.provider as usize == p);
        self.outages.start(now, i, victims.len() as u64);
        for &(_, slot) in &victims {
            self.interrupt(now, slot);
        }
        // The killed jobs fail over at once where the policy allows.
        for (_, slot) in victims {
            if self.jobs.is_waiting(slot) {
                self.try_place(now, slot);
            }
        }
    }

    fn outage_end(&mut self, now: SimTime, i: usize) {
        let o = &self.cfg.outages[i];
        let p = self
            .capacity
            .fleet
            .provider_idx(&o.provider)
            .expect("checked") as usize;
        self.capacity.fleet.down[p] = self.capacity.fleet.down[p].saturating_sub(1);
        let origin = self.cfg.origin;
        self.outages.end(
            now,
            i,
            o.provider.to_string(),
            origin.plus_seconds(o.start),
            origin.plus_seconds(o.end),
        );
        self.capacity_grew(now);
    }

    fn spot_change(&mut self, now: SimTime, i: usize, change: usize, lap: u32) {
        let fleet = &self.capacity.fleet;
        let (pool_idx, sp) = (fleet.spot_pools[i].0, &fleet.spot_pools[i].1);
        let changes = &self.spot_changes[i];
        let cap = changes[change]
            .1
            .saturating_mul(sp.gpus_per_unit)
            .saturating_mul(sp.scale);
        let span = sp.trace.span_s();
        let (next, next_lap) = if change + 1 < changes.len() {
            (change + 1, lap)
        } else {
            (0, lap + 1)
        };
        let at = changes[next].0 + span * next_lap as i64;
        if self.live() || self.cfg.horizon.is_some_and(|h| at <= h) {
            self.q.schedule(
                at.max(now + 1),
                Ev::Spot {
                    pool: i as u32,
                    change: next as u32,
                    lap: next_lap,
                },
            );
        }
        let pools = &mut self.capacity.fleet.pools;
        let old = pools[pool_idx].cap;
        pools[pool_idx].cap = cap;
        if cap < pools[pool_idx].used {
            // Preempt the newest jobs of the pool until the rest fit.
            let mut victims = self.jobs.running_on(|a| a.pool == Some(pool_idx));
            while self.capacity.fleet.pools[pool_idx].used > cap {
                let Some((_, slot)) = victims.pop() else {
                    break;
                };
                self.stats.preemptions += 1;
                self.interrupt(now, slot);
                self.try_place(now, slot);
            }
        }
        if cap > old {
            self.capacity_grew(now);
        }
    }

    /// A commitment ends. Its running jobs keep their place and are billed from now on at the cheapest
    /// on-demand price per GPU of that accelerator at that provider in the catalog (the engine has already
    /// placed them; moving them would lose work). Where the provider sells that accelerator on demand
    /// nowhere in the catalog, the capacity is simply gone: the jobs are interrupted like a preemption
    /// (they keep their checkpointed progress, count in `preemptions`) and placed again at once.
    fn commit_end(&mut self, now: SimTime, i: usize) {
        self.capacity.commitment_ends(i);
        let accel = &self.cfg.commitments[i].accelerator;
        let victims = self.jobs.running_on(|a| a.commitment == Some(i as u32));
        let mut evicted = Vec::new();
        for (_, slot) in victims {
            let alloc = self.jobs.live(slot).alloc.expect("running");
            let Some(per_gpu) = cheapest_on_demand_per_gpu(
                self.catalog,
                &self.capacity.fleet.providers[alloc.provider as usize],
                accel,
            ) else {
                self.stats.preemptions += 1;
                self.interrupt(now, slot);
                evicted.push(slot);
                continue;
            };
            self.take(now, &alloc, -1);
            let rs = self.ledger.account(alloc.provider, Market::OnDemand);
            let moved = Alloc {
                commitment: None,
                pool: None,
                rate_micros: per_gpu.times(alloc.gpus).hourly().micros(),
                rate_slot: rs,
                ..alloc
            };
            self.take(now, &moved, 1);
            self.jobs.live_mut(slot).alloc = Some(moved);
        }
        for slot in evicted {
            if self.jobs.is_waiting(slot) {
                self.try_place(now, slot);
            }
        }
    }

    fn sample(&mut self, now: SimTime) {
        let ledger = &self.ledger;
        self.series
            .sample(now, |p| ledger.gpus_in_use(p), || ledger.cost_until(now).0);
    }

    fn report(mut self) -> Report {
        let end = self.end;
        self.sample(end);
        let (total, by_p, by_m) = self.ledger.cost_until(end);
        let commitments = self.ledger.commitment_uses(end);
        let (running, waiting) = self.jobs.counts();
        let s = self.stats;
        Report {
            policy: self.cfg.policy.to_string(),
            seed: self.cfg.seed,
            trace: self.cfg.trace.clone(),
            origin: self.cfg.origin,
            end_s: end,
            jobs: JobCounts {
                submitted: s.submitted,
                finished: s.finished,
                failed: s.failed,
                running,
                waiting,
                balanced: s.submitted == s.finished + s.failed + running + waiting,
            },
            total_cost: total,
            cost_by_provider: by_p,
            cost_by_market: by_m,
            commitments,
            jct: s.jct.summary(),
            queueing_delay: s.qdelay.summary(),
            deadline_jobs: s.deadline_jobs,
            deadline_misses: s.deadline_misses,
            lost_gpu_hours: round4(s.lost_gpu_s as f64 / 3600.0),
            restart_overhead_gpu_hours: round4(s.overhead_gpu_s as f64 / 3600.0),
            preemptions: s.preemptions,
            outage_kills: self.outages.kills,
            failed_launches: s.failed_launches,
            events: self.q.processed(),
            placements: s.placements,
            series: self.series.into_series(&self.capacity.fleet.providers),
            outages: self.outages.into_reports(),
        }
    }
}

/// The cheapest on-demand price per GPU-hour of `accel` at `provider` in the catalog, if it sells it on
/// demand anywhere.
fn cheapest_on_demand_per_gpu(
    catalog: &Catalog,
    provider: &ProviderId,
    accel: &Accelerator,
) -> Option<Rate> {
    catalog
        .with_accelerator(accel)
        .iter()
        .map(|&o| catalog.offer(o))
        .filter(|o| o.provider == *provider)
        .filter_map(|o| o.prices.on_demand.map(|r| r.per_unit(o.gpus().max(1))))
        .min()
}
