//! One scheduling pass, as a pure function of a [`Snapshot`]: which queued jobs launch where, which wait
//! and why, and which running jobs are preempted. The reconciler builds the snapshot from the store and
//! the health tracker, and carries the [`Decision`]s out.
//!
//! The pass, in the style of Kueue's `schedule()`:
//! 1. order the queue: priority (high first), then deadline (earliest first, none last), then submission
//!    order;
//! 2. for each job: its team must exist and be under its monthly budget (booked, accrued and reserved);
//! 3. place it with [`hedge_placement::place`] (market rank `Priority`: committed capacity first, then
//!    on-demand, then spot where the task allows it), with conditions that combine the providers' health,
//!    their free GPUs and the team's remaining quota;
//! 4. no fit: if the same placement ignoring quotas would fit, the job waits `over_quota`; otherwise, if
//!    the team allows preemption, its running lower-priority jobs that would make room are preempted;
//!    otherwise it waits `no_fit` with the placement's rejections;
//! 5. a fit whose reservation (`reserve_seconds` of its hourly cost) would take the team past its budget
//!    waits `over_budget`; otherwise it reserves that much and takes its GPUs from the provider, the
//!    commitment and the team's quota for the rest of the pass.
//!
//! Jobs of the same team with the same resource request that found no fit share the answer for the rest of
//! the pass (capacity only shrinks during a pass), so a pass over a long queue costs one placement per
//! distinct request, not one per job.

use hedge_core::{
    Accelerator, Catalog, JobId, Location, Market, Money, ProviderId, ResourceRequest, TaskSpec,
    TeamId,
};
use hedge_placement::{
    place, Candidate, Conditions, OwnedCapacity, Placement, PlacementContext, PlacementSettings,
    Unusable,
};
use hedge_store::TeamQuota;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// A job waiting to be placed.
#[derive(Clone, Debug)]
pub struct QueuedJob {
    pub id: JobId,
    pub team: TeamId,
    pub priority: i32,
    /// Among jobs of equal priority, an earlier deadline goes first; no deadline goes last.
    pub deadline: Option<hedge_core::Timestamp>,
    pub spec: std::sync::Arc<TaskSpec>,
}

/// A job holding capacity.
#[derive(Clone, Debug)]
pub struct RunningJob {
    pub id: JobId,
    pub team: TeamId,
    pub priority: i32,
    pub provider: ProviderId,
    pub accelerator: Option<Accelerator>,
    pub gpus: u32,
}

#[derive(Clone, Debug)]
pub struct TeamView {
    pub quotas: Vec<TeamQuota>,
    pub monthly_budget: Option<Money>,
    /// What counts against this month's budget: booked usage, running attempts' accrual and the rest of
    /// their reservations (`crate::ledger::budget_spend`).
    pub spent: Money,
    pub allow_preemption: bool,
}

#[derive(Clone, Debug)]
pub struct ProviderView {
    pub id: ProviderId,
    /// The one accelerator of an owned provider; `None`: whatever its offers carry.
    pub accelerator: Option<Accelerator>,
    /// GPUs the broker may hold on it at once.
    pub gpus_total: u32,
    /// Nodes one job may span; with the reason when that is 1 (the driver cannot run multi-node jobs).
    pub max_nodes: (u32, Option<String>),
    pub gpus_in_use: u32,
    /// `Some(reason)` when placement must avoid the provider (degraded).
    pub unusable: Option<String>,
}

/// Everything one pass reads.
pub struct Snapshot<'a> {
    pub catalog: &'a Catalog,
    pub providers: Vec<ProviderView>,
    /// Committed capacity with what is free of it now.
    pub owned: Vec<OwnedCapacity>,
    pub teams: HashMap<TeamId, TeamView>,
    pub running: Vec<RunningJob>,
    pub queue: Vec<QueuedJob>,
    /// GPUs freed by preemption in an earlier pass, held for the job that preempted: `(job, provider, gpus)`.
    pub reserved: Vec<(JobId, ProviderId, u32)>,
    /// What a launch reserves against its team's budget: the job's `time_limit_seconds`, or else this many
    /// seconds, of the placement's hourly cost.
    pub reserve_seconds: u64,
}

/// Why a job waits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitReason {
    UnknownTeam {
        team: TeamId,
    },
    /// `spent` (booked, accrued and reserved this month) plus `needed` (this job's reservation) would pass
    /// `budget`.
    OverBudget {
        spent: Money,
        budget: Money,
        needed: Money,
    },
    OverQuota {
        provider: Option<ProviderId>,
        accelerator: Option<Accelerator>,
        max_gpus: u32,
        in_use: u32,
        needed: u32,
    },
    NoFit {
        rejected: Vec<String>,
    },
    /// Lower-priority jobs of the team are being preempted to make room on `provider`; the `gpus` they
    /// free stay reserved for this job in the next pass.
    Preempting {
        victims: Vec<JobId>,
        provider: ProviderId,
        gpus: u32,
    },
}

impl WaitReason {
    pub fn code(&self) -> &'static str {
        match self {
            WaitReason::UnknownTeam { .. } => "unknown_team",
            WaitReason::OverBudget { .. } => "over_budget",
            WaitReason::OverQuota { .. } => "over_quota",
            WaitReason::NoFit { .. } => "no_fit",
            WaitReason::Preempting { .. } => "preempting",
        }
    }
}

#[derive(Clone, Debug)]
pub enum Decision {
    Launch {
        job: JobId,
        candidate: Candidate,
        placement: Box<Placement>,
    },
    Wait {
        job: JobId,
        /// Shared: every job of one failed shape in a pass waits for the same reason.
        reason: Arc<WaitReason>,
    },
    Preempt {
        victim: JobId,
        by: JobId,
    },
}

/// The settings every pass places with: committed capacity, then on-demand, then spot.
pub fn placement_settings() -> PlacementSettings {
    PlacementSettings {
        market_rank: hedge_placement::MarketRank::Priority,
        max_alternatives: 4,
        ..Default::default()
    }
}

struct Live<'s> {
    providers: &'s [ProviderView],
    /// Nodes of the job being placed.
    nodes: u32,
    /// GPUs a team holds, per (provider, accelerator).
    usage: &'s Usage,
    team: &'s TeamId,
    quotas: Option<&'s [TeamQuota]>,
}

fn quota_applies(q: &TeamQuota, p: &ProviderId, a: Option<&Accelerator>) -> bool {
    q.provider.as_ref().is_none_or(|qp| qp == p)
        && q.accelerator.as_ref().is_none_or(|qa| Some(qa) == a)
}

fn quota_used(usage: &Usage, team: &TeamId, q: &TeamQuota) -> u32 {
    usage
        .iter()
        .filter(|((t, p, a), _)| t == team && quota_applies(q, p, a.as_ref()))
        .map(|(_, n)| *n)
        .sum()
}

impl Conditions for Live<'_> {
    fn provider_usable(&self, provider: &ProviderId) -> Result<(), Unusable> {
        match self.providers.iter().find(|p| &p.id == provider) {
            None => Err(Unusable("no driver configured".into())),
            Some(p) => match (&p.unusable, &p.max_nodes) {
                (Some(r), _) => Err(Unusable(r.clone())),
                (None, (max, why)) if self.nodes > *max => Err(Unusable(match why {
                    Some(why) => format!("the job has {} nodes: {why}", self.nodes),
                    None => format!(
                        "the job has {} nodes; the provider runs at most {max}",
                        self.nodes
                    ),
                })),
                (None, _) => Ok(()),
            },
        }
    }
    fn gpus_available(
        &self,
        provider: &ProviderId,
        _: &Location,
        accelerator: &Accelerator,
        _: Market,
    ) -> Option<u32> {
        let p = self.providers.iter().find(|p| &p.id == provider)?;
        if p.accelerator.as_ref().is_some_and(|a| a != accelerator) {
            return Some(0);
        }
        let mut free = p.gpus_total.saturating_sub(p.gpus_in_use);
        for q in self.quotas.unwrap_or(&[]) {
            if quota_applies(q, provider, Some(accelerator)) {
                free = free.min(
                    q.max_gpus
                        .saturating_sub(quota_used(self.usage, self.team, q)),
                );
            }
        }
        Some(free)
    }
}

/// GPUs in use per (team, provider, accelerator).
type Usage = HashMap<(TeamId, ProviderId, Option<Accelerator>), u32, ahash::RandomState>;

type ShapeKey<'a> = (
    &'a TeamId,
    &'a [ResourceRequest],
    u32,
    hedge_core::Preference,
);

/// Runs one pass. Pure: the same snapshot gives the same decisions.
pub fn schedule(snap: &Snapshot<'_>) -> Vec<Decision> {
    let settings = placement_settings();
    let mut providers = snap.providers.clone();
    for (_, p, n) in &snap.reserved {
        if let Some(pv) = providers.iter_mut().find(|v| &v.id == p) {
            pv.gpus_in_use += n;
        }
    }
    let mut owned = snap.owned.clone();
    let mut usage: Usage = Usage::default();
    for r in &snap.running {
        *usage
            .entry((r.team.clone(), r.provider.clone(), r.accelerator.clone()))
            .or_default() += r.gpus;
    }
    let mut preempted: Vec<JobId> = Vec::new();
    // Looked up once per queued job: a fast keyed hash (aHash) instead of SipHash, which was a third of a
    // 100k-job pass (bench/broker).
    let mut failed: HashMap<ShapeKey<'_>, Arc<WaitReason>, ahash::RandomState> = HashMap::default();
    let mut order: Vec<&QueuedJob> = snap.queue.iter().collect();
    order.sort_by(|a, b| {
        let deadline = |j: &QueuedJob| j.deadline.map_or((1, 0), |d| (0, d.unix()));
        b.priority
            .cmp(&a.priority)
            .then(deadline(a).cmp(&deadline(b)))
            .then(a.id.cmp(&b.id))
    });
    let mut out = Vec::with_capacity(order.len());
    // Reservations made earlier in this pass, per team.
    let mut extra_spend: HashMap<TeamId, Money> = HashMap::new();

    for job in order {
        // Phase 2: team and budget.
        let Some(team) = snap.teams.get(&job.team) else {
            out.push(Decision::Wait {
                job: job.id,
                reason: Arc::new(WaitReason::UnknownTeam {
                    team: job.team.clone(),
                }),
            });
            continue;
        };
        let spent = team.spent + extra_spend.get(&job.team).copied().unwrap_or(Money::ZERO);
        if let Some(budget) = team.monthly_budget {
            if spent >= budget {
                out.push(Decision::Wait {
                    job: job.id,
                    reason: Arc::new(WaitReason::OverBudget {
                        spent,
                        budget,
                        needed: Money::ZERO,
                    }),
                });
                continue;
            }
        }
        // Its own reservation is its to use.
        for (_, p, n) in snap.reserved.iter().filter(|(j, _, _)| *j == job.id) {
            if let Some(pv) = providers.iter_mut().find(|v| &v.id == p) {
                pv.gpus_in_use = pv.gpus_in_use.saturating_sub(*n);
            }
        }
        let key: ShapeKey<'_> = (
            &job.team,
            &job.spec.resources,
            job.spec.num_nodes,
            job.spec.preference,
        );
        if let Some(reason) = failed.get(&key) {
            out.push(Decision::Wait {
                job: job.id,
                reason: reason.clone(),
            });
            continue;
        }
        // Phase 3: place.
        let live = Live {
            providers: &providers,
            nodes: job.spec.num_nodes,
            usage: &usage,
            team: &job.team,
            quotas: Some(&team.quotas),
        };
        // Committed GPUs are GPUs of their provider, and count against the team's quota like any others.
        let anywhere = Location::Region {
            region: "local".into(),
        };
        let owned_now: Vec<OwnedCapacity> = owned
            .iter()
            .map(|o| {
                let free = live
                    .gpus_available(&o.provider, &anywhere, &o.accelerator, Market::Committed)
                    .unwrap_or(0);
                OwnedCapacity {
                    free_gpus: o.free_gpus.min(free),
                    ..o.clone()
                }
            })
            .collect();
        let ctx = PlacementContext {
            catalog: snap.catalog,
            owned: &owned_now,
            conditions: &live,
        };
        let p = place(&job.spec, &ctx, &settings);
        let Some(chosen) = p.chosen.clone() else {
            // Phase 4: why not, and preemption.
            let reason = no_fit_reason(snap, job, team, &providers, &owned, &usage, p);
            if let WaitReason::NoFit { .. } = reason {
                if team.allow_preemption {
                    if let Some((provider, victims, gpus)) =
                        preemption_victims(snap, job, &providers, &preempted)
                    {
                        for v in &victims {
                            preempted.push(*v);
                            out.push(Decision::Preempt {
                                victim: *v,
                                by: job.id,
                            });
                        }
                        // Hold the freed GPUs for this job for the rest of the pass too.
                        if let Some(pv) = providers.iter_mut().find(|v| v.id == provider) {
                            pv.gpus_in_use = pv.gpus_total;
                        }
                        out.push(Decision::Wait {
                            job: job.id,
                            reason: Arc::new(WaitReason::Preempting {
                                victims,
                                provider,
                                gpus,
                            }),
                        });
                        continue;
                    }
                }
            }
            let reason = Arc::new(reason);
            failed.insert(key, reason.clone());
            out.push(Decision::Wait {
                job: job.id,
                reason,
            });
            continue;
        };
        // Phase 5: reserve its estimated cost against the budget (so a pass never launches past it), then take
        // the capacity.
        let needed = chosen
            .hourly_cost
            .cost_for_seconds(job.spec.time_limit_seconds.unwrap_or(snap.reserve_seconds));
        if let Some(budget) = team.monthly_budget {
            if spent + needed > budget {
                out.push(Decision::Wait {
                    job: job.id,
                    reason: Arc::new(WaitReason::OverBudget {
                        spent,
                        budget,
                        needed,
                    }),
                });
                continue;
            }
        }
        *extra_spend.entry(job.team.clone()).or_default() += needed;
        let gpus = chosen.total_gpus();
        let accel = chosen.accelerators.as_ref().map(|a| a.name.clone());
        if let Some(pv) = providers.iter_mut().find(|p| p.id == chosen.provider) {
            pv.gpus_in_use += gpus;
        }
        if let Some(c) = &chosen.commitment {
            if let Some(o) = owned.iter_mut().find(|o| &o.commitment == c) {
                o.free_gpus = o.free_gpus.saturating_sub(gpus);
            }
        }
        *usage
            .entry((job.team.clone(), chosen.provider.clone(), accel))
            .or_default() += gpus;
        out.push(Decision::Launch {
            job: job.id,
            candidate: chosen,
            placement: Box::new(p),
        });
    }
    out
}

fn no_fit_reason(
    snap: &Snapshot<'_>,
    job: &QueuedJob,
    team: &TeamView,
    providers: &[ProviderView],
    owned: &[OwnedCapacity],
    usage: &Usage,
    p: Placement,
) -> WaitReason {
    if !team.quotas.is_empty() {
        let free = Live {
            providers,
            nodes: job.spec.num_nodes,
            usage,
            team: &job.team,
            quotas: None,
        };
        let ctx = PlacementContext {
            catalog: snap.catalog,
            owned,
            conditions: &free,
        };
        if let Some(c) = place(&job.spec, &ctx, &placement_settings()).chosen {
            let accel = c.accelerators.as_ref().map(|a| a.name.clone());
            let needed = c.total_gpus();
            for q in &team.quotas {
                if quota_applies(q, &c.provider, accel.as_ref()) {
                    let in_use = quota_used(usage, &job.team, q);
                    if in_use + needed > q.max_gpus {
                        return WaitReason::OverQuota {
                            provider: q.provider.clone(),
                            accelerator: q.accelerator.clone(),
                            max_gpus: q.max_gpus,
                            in_use,
                            needed,
                        };
                    }
                }
            }
        }
    }
    WaitReason::NoFit {
        rejected: p.rejected.into_iter().map(|r| r.message).collect(),
    }
}

/// Lower-priority running jobs of the same team, on one usable provider with the requested accelerator,
/// whose GPUs plus the provider's free GPUs cover the job's need; lowest priority (then newest) first.
fn preemption_victims(
    snap: &Snapshot<'_>,
    job: &QueuedJob,
    providers: &[ProviderView],
    taken: &[JobId],
) -> Option<(ProviderId, Vec<JobId>, u32)> {
    let req = job.spec.resources.first()?;
    let accel = req.accelerators.as_ref()?;
    let need = accel.count.saturating_mul(job.spec.num_nodes.max(1));
    for pv in providers
        .iter()
        .filter(|p| p.unusable.is_none() && p.accelerator.as_ref().is_none_or(|a| a == &accel.name))
    {
        if req.provider.as_ref().is_some_and(|want| want != &pv.id) {
            continue;
        }
        let mut cands: Vec<&RunningJob> = snap
            .running
            .iter()
            .filter(|r| {
                r.team == job.team
                    && r.priority < job.priority
                    && r.provider == pv.id
                    && !taken.contains(&r.id)
            })
            .collect();
        cands.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.id.cmp(&a.id)));
        let mut free = pv.gpus_total.saturating_sub(pv.gpus_in_use);
        let mut victims = Vec::new();
        for c in cands {
            if free >= need {
                break;
            }
            free += c.gpus;
            victims.push(c.id);
        }
        if free >= need && !victims.is_empty() {
            return Some((pv.id.clone(), victims, need));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderConfig;
    use hedge_core::{AccelRequest, CommitmentId, Rate};
    use proptest::prelude::*;

    fn h100() -> Accelerator {
        Accelerator::parse("H100").unwrap()
    }

    fn providers(gpus: [u32; 2]) -> Vec<ProviderConfig> {
        ["a", "b"]
            .iter()
            .zip(gpus)
            .enumerate()
            .map(|(i, (n, g))| {
                ProviderConfig::local(
                    n,
                    g,
                    h100(),
                    Rate::from_usd_per_hour_f64(2.0 + i as f64).unwrap(),
                )
            })
            .collect()
    }

    fn job(id: u64, team: &str, priority: i32, gpus: u32) -> QueuedJob {
        let r = ResourceRequest {
            accelerators: Some(AccelRequest::new(h100(), gpus)),
            ..Default::default()
        };
        QueuedJob {
            id: JobId(id),
            team: TeamId::new(team),
            priority,
            deadline: None,
            spec: TaskSpec::single(r).into(),
        }
    }

    fn team(quota: Option<u32>, budget: Option<i64>, spent: i64, preempt: bool) -> TeamView {
        TeamView {
            quotas: quota
                .map(|q| {
                    vec![TeamQuota {
                        provider: None,
                        accelerator: None,
                        max_gpus: q,
                    }]
                })
                .unwrap_or_default(),
            monthly_budget: budget.map(Money::from_usd),
            spent: Money::from_usd(spent),
            allow_preemption: preempt,
        }
    }

    fn views(cfg: &[ProviderConfig], used: [u32; 2]) -> Vec<ProviderView> {
        cfg.iter()
            .zip(used)
            .map(|(p, u)| ProviderView {
                id: p.name.clone(),
                accelerator: Some(h100()),
                gpus_total: p.gpus(),
                max_nodes: (1, Some("a local provider is a single node".into())),
                gpus_in_use: u,
                unusable: None,
            })
            .collect()
    }

    /// A job is never placed where its driver cannot run it: a 2-node job waits while only single-node
    /// (local) providers exist, with the driver's reason, and goes to a provider whose driver spans nodes.
    #[test]
    fn multi_node_jobs_go_only_where_the_driver_spans_nodes() {
        let cfg = providers([8, 8]);
        let catalog = crate::local_catalog(&cfg);
        let teams: HashMap<TeamId, TeamView> = [(TeamId::new("ml"), team(None, None, 0, false))]
            .into_iter()
            .collect();
        let mut spec = TaskSpec::single(ResourceRequest {
            accelerators: Some(AccelRequest::new(h100(), 4)),
            ..Default::default()
        });
        spec.num_nodes = 2;
        let queue = vec![QueuedJob {
            id: JobId(1),
            team: TeamId::new("ml"),
            priority: 0,
            deadline: None,
            spec: spec.into(),
        }];
        let snap = Snapshot {
            catalog: &catalog,
            providers: views(&cfg, [0, 0]),
            owned: vec![],
            teams: teams.clone(),
            running: vec![],
            queue: queue.clone(),
            reserved: vec![],
            reserve_seconds: 3600,
        };
        match &schedule(&snap)[..] {
            [Decision::Wait { reason, .. }] => match &**reason {
                WaitReason::NoFit { rejected } => {
                    assert!(
                        rejected
                            .iter()
                            .any(|r| r.contains("2 nodes") && r.contains("single node")),
                        "{rejected:?}"
                    )
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        // Provider b (the dearer one) spans up to 2 nodes: the job goes there.
        let mut pv = views(&cfg, [0, 0]);
        pv[1].max_nodes = (2, None);
        let snap = Snapshot {
            catalog: &catalog,
            providers: pv,
            owned: vec![],
            teams,
            running: vec![],
            queue,
            reserved: vec![],
            reserve_seconds: 3600,
        };
        match &schedule(&snap)[..] {
            [Decision::Launch { candidate, .. }] => {
                assert_eq!(candidate.provider.as_str(), "b");
                assert_eq!(candidate.total_gpus(), 8);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn priority_order_commitment_first_and_reasons() {
        let cfg = providers([2, 4]);
        let catalog = crate::local_catalog(&cfg);
        let owned = vec![OwnedCapacity {
            commitment: CommitmentId::new("c"),
            provider: ProviderId::parse("b"),
            accelerator: h100(),
            region: None,
            free_gpus: 1,
            marginal_per_gpu_hour: Rate::ZERO,
        }];
        let teams = [
            ("ml", team(None, None, 0, false)),
            ("poor", team(None, Some(5), 5, false)),
            ("small", team(Some(1), None, 0, false)),
        ]
        .into_iter()
        .map(|(n, t)| (TeamId::new(n), t))
        .collect();
        let queue = vec![
            job(1, "ml", 0, 1),
            job(2, "ml", 9, 1),
            job(3, "poor", 9, 1),
            job(4, "small", 0, 2),
            job(5, "ghost", 0, 1),
        ];
        let snap = Snapshot {
            catalog: &catalog,
            providers: views(&cfg, [0, 0]),
            owned,
            teams,
            running: vec![],
            queue,
            reserved: vec![],
            reserve_seconds: 3600,
        };
        let got: Vec<String> = schedule(&snap)
            .iter()
            .map(|d| match d {
                Decision::Launch { job, candidate, .. } => {
                    format!("{job}: {} {}", candidate.provider, candidate.market)
                }
                Decision::Wait { job, reason } => format!("{job}: wait {}", reason.code()),
                Decision::Preempt { victim, by } => format!("{victim}: preempted by {by}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                "2: b committed",
                "3: wait over_budget",
                "1: a on-demand",
                "4: wait over_quota",
                "5: wait unknown_team"
            ]
        );
    }

    #[test]
    fn earlier_deadline_first_among_equal_priorities() {
        let cfg = providers([1, 0]);
        let catalog = crate::local_catalog(&cfg);
        let teams = [(TeamId::new("ml"), team(None, None, 0, false))]
            .into_iter()
            .collect();
        let mut late = job(1, "ml", 0, 1);
        late.deadline = Some(hedge_core::Timestamp::from_unix(2_000));
        let mut soon = job(2, "ml", 0, 1);
        soon.deadline = Some(hedge_core::Timestamp::from_unix(1_000));
        let none = job(0, "ml", 0, 1);
        let snap = Snapshot {
            catalog: &catalog,
            providers: views(&cfg, [0, 0]),
            owned: vec![],
            teams,
            running: vec![],
            queue: vec![none, late, soon],
            reserved: vec![],
            reserve_seconds: 3600,
        };
        let first = schedule(&snap).into_iter().next().unwrap();
        assert!(
            matches!(first, Decision::Launch { job: JobId(2), .. }),
            "{first:?}"
        );
    }

    proptest! {
        /// Whatever the queue, a pass never hands out more GPUs than a provider has free, never more than a
        /// commitment has idle, never breaks a team quota, and decides every queued job exactly once.
        #[test]
        fn never_overcommits(
            gpus in (0u32..6, 0u32..6),
            used in (0u32..3, 0u32..3),
            committed in 0u32..4,
            quota in proptest::option::of(0u32..5),
            jobs in proptest::collection::vec((0usize..2, -2i32..3, 1u32..4), 0..30),
        ) {
            let cfg = providers([gpus.0, gpus.1]);
            let catalog = crate::local_catalog(&cfg);
            let used = [used.0.min(gpus.0), used.1.min(gpus.1)];
            let owned = vec![OwnedCapacity {
                commitment: CommitmentId::new("c"), provider: ProviderId::parse("a"), accelerator: h100(),
                region: None, free_gpus: committed, marginal_per_gpu_hour: Rate::ZERO,
            }];
            let teams: HashMap<TeamId, TeamView> =
                [("t0", team(quota, None, 0, true)), ("t1", team(None, None, 0, false))].into_iter().map(|(n, t)| (TeamId::new(n), t)).collect();
            let queue: Vec<QueuedJob> = jobs.iter().enumerate().map(|(i, (t, p, g))| job(i as u64 + 1, ["t0", "t1"][*t], *p, *g)).collect();
            let snap = Snapshot { catalog: &catalog, providers: views(&cfg, used), owned, teams, running: vec![], queue: queue.clone(), reserved: vec![], reserve_seconds: 3600 };
            let ds = schedule(&snap);
            let mut per_provider = [0u32; 2];
            let mut from_commitment = 0;
            let mut t0 = 0;
            let mut seen = std::collections::BTreeSet::new();
            for d in &ds {
                match d {
                    Decision::Launch { job, candidate, .. } => {
                        prop_assert!(seen.insert(*job));
                        let i = usize::from(candidate.provider.as_str() == "b");
                        per_provider[i] += candidate.total_gpus();
                        if candidate.commitment.is_some() { from_commitment += candidate.total_gpus(); }
                        if queue.iter().any(|q| q.id == *job && q.team.as_str() == "t0") { t0 += candidate.total_gpus(); }
                    }
                    Decision::Wait { job, .. } => prop_assert!(seen.insert(*job)),
                    Decision::Preempt { .. } => {}
                }
            }
            prop_assert_eq!(seen.len(), queue.len());
            prop_assert!(per_provider[0] <= gpus.0 - used[0], "{:?}", per_provider);
            prop_assert!(per_provider[1] <= gpus.1 - used[1], "{:?}", per_provider);
            prop_assert!(from_commitment <= committed);
            if let Some(q) = quota { prop_assert!(t0 <= q); }
        }
    }
}
