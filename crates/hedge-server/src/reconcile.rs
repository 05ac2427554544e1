//! The reconciliation loop, in the style of a kube-rs controller: the store holds the desired state (jobs
//! and their recorded launch attempts), the drivers report the observed state, and each pass acts on the
//! difference. Every pass is [`pass`], a short function of numbered phases:
//!
//! 1. **health**: probe providers that are due, degrade those that missed their heartbeats;
//! 2. **observe**: ask the driver about every in-flight attempt (an attempt still `Recorded` after a crash
//!    is submitted again with the same idempotency key, which never starts it twice) and move jobs on:
//!    running, finished, lost (→ Recovering), on a degraded provider (→ Recovering: failover, the attempt
//!    becomes `Orphaned`); **stop** every attempt that is being stopped (`Cancelling`: its job was
//!    cancelled; `Orphaned`: its job moved on after a failover or a preemption) by asking the driver to
//!    cancel it, at every pass, until the driver confirms the work is gone — only then does the attempt end
//!    and free its GPUs, and a `Cancelling` job with nothing left in flight become `Cancelled`. Orphans
//!    are in the store, so a restarted broker stops them too, once their provider answers;
//! 3. **schedule**: one pure [`schedule`] pass over the queue;
//! 4. **act**: record and submit launches, record waits whose reason changed, preempt.
//!
//! Errors of driver calls go through [`classify`]; errors of the store abort the pass, which the loop
//! retries at the next tick. Every state change is a compare-and-set in the store, so a pass that raced with
//! the API (a cancel) loses cleanly and the next pass sees the new state. After a restart nothing is
//! launched again that is still alive: in-flight attempts are observed by their keys (phase 2) before
//! anything new is scheduled.

use crate::policy::{classify, counts_against_health, ErrorAction};
use crate::schedule::{
    schedule, Decision, ProviderView, QueuedJob, RunningJob, Snapshot, TeamView, WaitReason,
};
use crate::{chain, Broker};
use hedge_core::{AttemptStatus, JobId, JobState, Market, Money};
use hedge_drivers::{IdempotencyKey, LaunchSpec, Observation};
use hedge_placement::OwnedCapacity;
use hedge_store::{
    AttemptUpdate, HealthState, Job, LaunchAttempt, NewAttempt, ProviderHealth, StoreError,
    Transition,
};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// In-memory state of the loop. Losing it (a restart) only costs repeated retries and wait events.
pub struct LoopState {
    /// Consecutive failures of the driver call for an attempt, by idempotency key.
    failures: HashMap<String, u32>,
    /// The wait reason last recorded in each job's events, to write a wait event only when it changes.
    recorded_waits: HashMap<JobId, serde_json::Value>,
    /// Health probes run in the background (a dead provider's probe waits out its client timeout without
    /// holding up the pass); their outcomes arrive here and are recorded by the next pass.
    probes: (
        tokio::sync::mpsc::UnboundedSender<ProbeOutcome>,
        tokio::sync::mpsc::UnboundedReceiver<ProbeOutcome>,
    ),
    /// Providers with a probe still running.
    probing: std::collections::BTreeSet<hedge_core::ProviderId>,
}

/// A finished health probe: the provider and whether it answered (the error otherwise).
type ProbeOutcome = (hedge_core::ProviderId, Result<(), String>);

impl Default for LoopState {
    fn default() -> Self {
        LoopState {
            failures: HashMap::new(),
            recorded_waits: HashMap::new(),
            probes: tokio::sync::mpsc::unbounded_channel(),
            probing: Default::default(),
        }
    }
}

/// How many queued jobs one pass considers: the head of the queue in the scheduler's order (priority, then
/// deadline, then age), as Kueue schedules queue heads. Keeps a pass cheap however long the queue grows.
pub const SCHEDULE_WINDOW: usize = 5000;

/// The least time between two passes, however often the loop is woken.
const MIN_GAP: std::time::Duration = std::time::Duration::from_millis(20);

/// Runs passes forever, every `reconcile_interval` or when woken.
pub async fn run(broker: Arc<Broker>) {
    let mut st = LoopState::default();
    loop {
        let started = broker.clock.monotonic_ms();
        if let Err(e) = pass(&broker, &mut st).await {
            tracing::warn!(error = %chain(&e), "reconcile pass failed; retrying at the next tick");
            broker.metrics.inc(&broker.metrics.pass_errors);
        }
        broker.metrics.inc(&broker.metrics.passes);
        broker
            .metrics
            .set_last_pass_ms(broker.clock.monotonic_ms().saturating_sub(started));
        tokio::time::sleep(MIN_GAP.min(broker.config.reconcile_interval)).await;
        let _ =
            tokio::time::timeout(broker.config.reconcile_interval, broker.wake.notified()).await;
    }
}

/// One reconciliation pass.
pub async fn pass(b: &Broker, st: &mut LoopState) -> Result<(), StoreError> {
    b.unanswered
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    phase1_health(b, st).await?;
    phase2_observe(b, st).await?;
    let decisions = phase3_schedule(b).await?;
    phase4_act(b, st, decisions).await
}

// ---- phase 1 ------------------------------------------------------------------------------------------------

async fn phase1_health(b: &Broker, st: &mut LoopState) -> Result<(), StoreError> {
    let now_ms = b.clock.monotonic_ms();
    let (due, mut changes) = {
        let mut h = b.health.lock().unwrap_or_else(|p| p.into_inner());
        let changes = h.check_heartbeats(now_ms);
        (h.due_for_probe(now_ms), changes)
    };
    // Due probes start in the background, at most one per provider at a time.
    for p in due {
        if st.probing.contains(&p) {
            continue;
        }
        let Some(d) = b.drivers.get(&p).cloned() else {
            continue;
        };
        st.probing.insert(p.clone());
        let tx = st.probes.0.clone();
        tokio::spawn(async move {
            let outcome = d.probe().await.map_err(|e| chain(&e));
            let _ = tx.send((p, outcome));
        });
    }
    // Outcomes of the probes that finished since the last pass.
    while let Ok((p, outcome)) = st.probes.1.try_recv() {
        st.probing.remove(&p);
        if outcome.is_err() {
            b.unanswered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(p.clone());
        }
        let now_ms = b.clock.monotonic_ms();
        let mut h = b.health.lock().unwrap_or_else(|p| p.into_inner());
        changes.extend(h.record(&p, now_ms, outcome));
    }
    persist_health(b, changes).await?;
    Ok(())
}

async fn persist_health(
    b: &Broker,
    changes: Vec<crate::health::HealthChange>,
) -> Result<(), StoreError> {
    use crate::health::HealthChange;
    for ch in changes {
        let (provider, state, reason) = match ch {
            HealthChange::Degraded { provider, reason } => {
                (provider, HealthState::Degraded, Some(reason))
            }
            HealthChange::Recovered { provider } => (provider, HealthState::Healthy, None),
        };
        tracing::warn!(%provider, state = state.as_str(), reason = reason.as_deref().unwrap_or(""), "provider health changed");
        let status = b
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .status(&provider)
            .cloned();
        let failures = status.as_ref().map_or(0, |s| s.consecutive_failures);
        b.store
            .put_provider_health(&ProviderHealth {
                provider,
                state,
                consecutive_failures: failures,
                last_heartbeat: Some(b.clock.now()),
                last_error: reason,
                updated_at: b.clock.now(),
            })
            .await?;
    }
    Ok(())
}

/// Records the outcome of a driver call in the provider's health, persisting a change of state.
/// A job's first attempt was accepted by its provider: one sample of the submit-to-launch histogram.
fn note_launched(b: &Broker, job: JobId) {
    let t = b
        .submitted_ms
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&job);
    if let Some(t) = t {
        let secs = b.clock.monotonic_ms().saturating_sub(t) as f64 / 1000.0;
        b.metrics.submit_to_launch.0.observe(secs);
    }
}

async fn note_call(
    b: &Broker,
    provider: &hedge_core::ProviderId,
    outcome: Result<(), String>,
) -> Result<(), StoreError> {
    if outcome.is_err() {
        b.unanswered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(provider.clone());
    }
    let change = {
        let mut h = b.health.lock().unwrap_or_else(|p| p.into_inner());
        h.record(provider, b.clock.monotonic_ms(), outcome)
    };
    persist_health(b, change.into_iter().collect()).await
}

// ---- phase 2 ------------------------------------------------------------------------------------------------

/// How many driver observations one pass runs at once.
const OBSERVE_CONCURRENCY: usize = 16;

/// The driver's observation of every plain in-flight attempt (submitted or running, on a healthy provider),
/// fetched concurrently: a pass over many attempts on a slow provider costs about one call's latency per
/// `OBSERVE_CONCURRENCY` attempts, not one per attempt. Submits, cancels and stops stay in the pass's order.
async fn prefetch_observations(
    b: &Broker,
    attempts: &[LaunchAttempt],
) -> HashMap<String, Result<Observation, hedge_drivers::DriverError>> {
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(OBSERVE_CONCURRENCY));
    let mut calls = tokio::task::JoinSet::new();
    {
        let health = b.health.lock().unwrap_or_else(|p| p.into_inner());
        for a in attempts {
            if !matches!(a.status, AttemptStatus::Submitted | AttemptStatus::Running)
                || !health.is_healthy(&a.provider)
            {
                continue;
            }
            let (Some(driver), Some(key)) = (b.drivers.get(&a.provider).cloned(), key_of(a)) else {
                continue;
            };
            let limit = limit.clone();
            calls.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let r = driver.observe(&key).await;
                (key.as_str().to_owned(), r)
            });
        }
    }
    let mut out = HashMap::new();
    while let Some(done) = calls.join_next().await {
        if let Ok((key, r)) = done {
            out.insert(key, r);
        }
    }
    out
}

async fn phase2_observe(b: &Broker, st: &mut LoopState) -> Result<(), StoreError> {
    let attempts = b.store.in_flight_attempts().await?;
    let mut prefetched = prefetch_observations(b, &attempts).await;
    for a in attempts {
        // A provider that did not answer in this pass is not asked again in it (unless it is degraded by
        // now, which fails its attempts over without a call).
        if b.unanswered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&a.provider)
            && b.health
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_healthy(&a.provider)
        {
            continue;
        }
        let job = b.store.job(a.job).await?;
        let r = if a.status.is_being_stopped() {
            stop_one(b, &job, &a).await
        } else if job.state == JobState::Cancelling
            || job.state.is_terminal()
            || job.current_attempt != a.attempt_no
        {
            // Its job was cancelled (or has moved on): persist that the attempt is being stopped, then stop it.
            let status = if job.state == JobState::Cancelling {
                AttemptStatus::Cancelling
            } else {
                AttemptStatus::Orphaned
            };
            let u = AttemptUpdate::new(&a.idempotency_key, status, b.clock.now())
                .detail(format!("job is {}", job.state));
            match b.store.update_attempt(&u).await {
                Ok(a) => stop_one(b, &job, &a).await,
                Err(e) => Err(e),
            }
        } else {
            let pre = prefetched.remove(&a.idempotency_key);
            observe_one(b, st, &job, &a, pre).await
        };
        if let Err(e) = r {
            if !e.is_caller_error() {
                return Err(e);
            }
            // Lost a race with the API (a cancel): the next pass sees the new state.
            tracing::debug!(job = %job.id, error = %e, "state moved under the reconciler");
        }
    }
    // A cancelled job is Cancelled once nothing of it is in flight any more.
    for job in b.store.jobs_in_states(&[JobState::Cancelling]).await? {
        let attempts = b.store.attempts(job.id).await?;
        if attempts.iter().any(|a| a.status.is_in_flight()) {
            continue;
        }
        let finished_first = attempts
            .last()
            .is_some_and(|a| a.status == AttemptStatus::Succeeded);
        let (to, reason) = if finished_first {
            (JobState::Succeeded, "finished_before_cancel")
        } else {
            (JobState::Cancelled, "cancel_confirmed")
        };
        let t = Transition::new(job.id, JobState::Cancelling, to, b.clock.now())
            .reason(reason)
            .explanation(json!({"attempts": attempts.len()}))
            .expect_version(job.version);
        match b.store.transition(&t).await {
            Ok(_) => {}
            Err(e) if e.is_caller_error() => {
                tracing::debug!(job = %job.id, error = %e, "state moved under the reconciler")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Asks the driver to stop an attempt that is being stopped (`Cancelling` or `Orphaned`), and ends the
/// attempt only when the driver confirms its work is gone. A provider that does not answer (degraded) is
/// left alone until it does: the attempt stays in flight, its GPUs counted, and is stopped then.
async fn stop_one(b: &Broker, job: &Job, a: &LaunchAttempt) -> Result<(), StoreError> {
    let Some(driver) = b.drivers.get(&a.provider) else {
        return update_attempt(
            b,
            job,
            a,
            AttemptStatus::Lost,
            "provider no longer configured",
        )
        .await;
    };
    let Some(key) = key_of(a) else {
        return update_attempt(
            b,
            job,
            a,
            AttemptStatus::Failed,
            "idempotency key not usable by drivers",
        )
        .await;
    };
    if !b
        .health
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_healthy(&a.provider)
    {
        return Ok(());
    }
    match driver.cancel(&key).await {
        Ok(obs) => {
            note_call(b, &a.provider, Ok(())).await?;
            let (status, detail) = match &obs {
                Observation::Queued | Observation::Running => return Ok(()),
                Observation::Exited { code: 0 } => (
                    AttemptStatus::Succeeded,
                    "finished before it was stopped".to_owned(),
                ),
                Observation::Exited { code } => (
                    AttemptStatus::Failed,
                    format!("exit code {code} before it was stopped"),
                ),
                Observation::Cancelled => (
                    AttemptStatus::Cancelled,
                    "stop confirmed by the provider".to_owned(),
                ),
                Observation::NotFound => (
                    AttemptStatus::Cancelled,
                    "the provider has no record of it".to_owned(),
                ),
                Observation::Lost { reason } => (AttemptStatus::Lost, reason.clone()),
            };
            if a.status == AttemptStatus::Orphaned {
                tracing::info!(provider = %a.provider, attempt = %key, job = %job.id, "stopped an attempt left behind by a failover or preemption");
            }
            update_attempt(b, job, a, status, &detail).await
        }
        Err(e) => {
            tracing::debug!(provider = %a.provider, attempt = %key, error = %chain(&e), "stop not confirmed yet; retrying next pass");
            if counts_against_health(&e) {
                note_call(b, &a.provider, Err(chain(&e))).await?;
            }
            Ok(())
        }
    }
}

pub(crate) fn launch_spec(job: &Job, a: &LaunchAttempt) -> LaunchSpec {
    let nodes = job.spec.num_nodes.max(1);
    LaunchSpec {
        job: job.id,
        attempt: a.attempt_no,
        team: job.team.clone(),
        name: job.spec.name.clone(),
        setup: job.spec.setup.clone(),
        run: job.spec.run.clone().unwrap_or_default(),
        time_limit_minutes: None,
        accelerator: a.accelerator.clone(),
        gpus_per_node: a.gpus / nodes,
        num_nodes: nodes,
        env: job.spec.envs.clone(),
        workdir: job.spec.workdir.clone(),
        file_mounts: job.spec.file_mounts.clone(),
        instance_type: Some(a.offer.clone()),
        zone: a.zone.as_ref().map(|z| z.to_string()),
        spot: a.market == Market::Spot,
        commitment: a.commitment.as_ref().map(|c| c.to_string()),
        capacity_reservation: None,
    }
}

fn key_of(a: &LaunchAttempt) -> Option<IdempotencyKey> {
    IdempotencyKey::parse(&a.idempotency_key).ok()
}

async fn observe_one(
    b: &Broker,
    st: &mut LoopState,
    job: &Job,
    a: &LaunchAttempt,
    prefetched: Option<Result<Observation, hedge_drivers::DriverError>>,
) -> Result<(), StoreError> {
    let now = b.clock.now();
    let Some(key) = key_of(a) else {
        let t = Transition::new(job.id, job.state, JobState::Failed, now)
            .reason("launch_fatal")
            .explanation(json!({"error": format!("idempotency key {:?} is not usable by drivers", a.idempotency_key)}));
        return finish(b, job, a, t, AttemptStatus::Failed, "bad idempotency key").await;
    };
    let Some(driver) = b.drivers.get(&a.provider) else {
        if job.state.is_terminal() {
            return update_attempt(
                b,
                job,
                a,
                AttemptStatus::Lost,
                "provider no longer configured",
            )
            .await;
        }
        let t = Transition::new(job.id, job.state, JobState::Recovering, now)
            .reason("provider_removed")
            .explanation(json!({"provider": a.provider}));
        return finish(
            b,
            job,
            a,
            t,
            AttemptStatus::Lost,
            "provider no longer configured",
        )
        .await;
    };
    // Failover: the provider is degraded.
    if !b
        .health
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_healthy(&a.provider)
    {
        return fail_over_degraded(b, st, job, a, driver.as_ref(), key).await;
    }
    let result = if a.status == AttemptStatus::Recorded {
        driver.submit(&key, &launch_spec(job, a)).await
    } else if let Some(r) = prefetched {
        r
    } else {
        driver.observe(&key).await
    };
    let obs = match result {
        Ok(o) => {
            if a.status == AttemptStatus::Recorded {
                note_launched(b, job.id);
            }
            st.failures.remove(&a.idempotency_key);
            note_call(b, &a.provider, Ok(())).await?;
            o
        }
        Err(e) => {
            if counts_against_health(&e) {
                note_call(b, &a.provider, Err(chain(&e))).await?;
                // This failure may have been the one that degraded the provider: fail over now.
                if !b
                    .health
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_healthy(&a.provider)
                {
                    return fail_over_degraded(b, st, job, a, driver.as_ref(), key).await;
                }
            }
            let n = st.failures.entry(a.idempotency_key.clone()).or_default();
            *n += 1;
            return act_on_error(
                b,
                job,
                a,
                classify(&e, *n, b.config.max_launch_retries),
                may_be_alive(&e),
            )
            .await;
        }
    };
    apply_observation(b, job, a, obs).await
}

/// Gives up an attempt on a degraded provider: the job goes back to placement (which avoids the provider),
/// and the old attempt becomes `Orphaned` in the same transaction. Phase 2 stops it (confirmed) once the
/// provider answers again, also after a broker restart: during the partition two attempts of the job may
/// run; after it heals, at most one does.
async fn fail_over_degraded(
    b: &Broker,
    _st: &mut LoopState,
    job: &Job,
    a: &LaunchAttempt,
    _driver: &dyn hedge_drivers::Driver,
    _key: IdempotencyKey,
) -> Result<(), StoreError> {
    let now = b.clock.now();
    let reason = b
        .health
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .status(&a.provider)
        .and_then(|s| s.last_error.clone())
        .unwrap_or_default();
    b.metrics.inc(&b.metrics.failovers);
    let t = Transition::new(job.id, job.state, JobState::Recovering, now)
        .reason("provider_degraded")
        .explanation(json!({"provider": a.provider, "attempt": a.attempt_no, "health": reason}));
    finish(
        b,
        job,
        a,
        t,
        AttemptStatus::Orphaned,
        "provider degraded: to be stopped once it answers",
    )
    .await
}

/// Whether the attempt may still be running after this error (the provider did not answer, or its state
/// could not be read): such an attempt is `Orphaned` on failover, stopped once the provider answers, never
/// taken for lost.
fn may_be_alive(e: &hedge_drivers::DriverError) -> bool {
    matches!(
        e,
        hedge_drivers::DriverError::Unreachable { .. } | hedge_drivers::DriverError::Io { .. }
    )
}

async fn act_on_error(
    b: &Broker,
    job: &Job,
    a: &LaunchAttempt,
    action: ErrorAction,
    may_be_alive: bool,
) -> Result<(), StoreError> {
    let now = b.clock.now();
    match &action {
        ErrorAction::Retry { reason } => {
            tracing::debug!(job = %job.id, provider = %a.provider, %reason, "driver call failed; will retry");
            Ok(())
        }
        ErrorAction::Failover { reason } => {
            b.metrics.inc(&b.metrics.failovers);
            let t = Transition::new(job.id, job.state, JobState::Recovering, now)
                .reason(action.code())
                .explanation(
                    json!({"provider": a.provider, "attempt": a.attempt_no, "error": reason}),
                );
            let status = if may_be_alive {
                AttemptStatus::Orphaned
            } else {
                AttemptStatus::Lost
            };
            finish(b, job, a, t, status, reason).await
        }
        ErrorAction::Fatal { reason } => {
            let t = Transition::new(job.id, job.state, JobState::Failed, now)
                .reason(action.code())
                .explanation(
                    json!({"provider": a.provider, "attempt": a.attempt_no, "error": reason}),
                );
            finish(b, job, a, t, AttemptStatus::Failed, reason).await
        }
    }
}

async fn apply_observation(
    b: &Broker,
    job: &Job,
    a: &LaunchAttempt,
    obs: Observation,
) -> Result<(), StoreError> {
    let now = b.clock.now();
    match obs {
        Observation::Queued => {
            if a.status == AttemptStatus::Recorded {
                let u = AttemptUpdate::new(&a.idempotency_key, AttemptStatus::Submitted, now)
                    .handle(a.idempotency_key.clone());
                b.store.update_attempt(&u).await?;
            }
            Ok(())
        }
        Observation::Running => {
            let u = AttemptUpdate::new(&a.idempotency_key, AttemptStatus::Running, now)
                .handle(a.idempotency_key.clone());
            if job.state == JobState::Launching {
                let t = Transition::new(job.id, JobState::Launching, JobState::Running, now)
                    .reason("started")
                    .explanation(json!({"provider": a.provider, "attempt": a.attempt_no}))
                    .expect_version(job.version)
                    .with_attempt_update(u);
                b.store.transition(&t).await?;
            } else if a.status != AttemptStatus::Running {
                b.store.update_attempt(&u).await?;
            }
            Ok(())
        }
        Observation::Exited { code: 0 } => {
            let t = Transition::new(job.id, job.state, JobState::Succeeded, now)
                .reason("succeeded")
                .explanation(
                    json!({"provider": a.provider, "attempt": a.attempt_no, "exit_code": 0}),
                );
            finish(b, job, a, t, AttemptStatus::Succeeded, "exit code 0").await
        }
        Observation::Exited { code } => {
            let t = Transition::new(job.id, job.state, JobState::Failed, now)
                .reason("exit_code")
                .explanation(
                    json!({"provider": a.provider, "attempt": a.attempt_no, "exit_code": code}),
                );
            finish(
                b,
                job,
                a,
                t,
                AttemptStatus::Failed,
                &format!("exit code {code}"),
            )
            .await
        }
        Observation::Cancelled | Observation::Lost { .. } | Observation::NotFound => {
            let why = match &obs {
                Observation::Lost { reason } => reason.clone(),
                Observation::Cancelled => "cancelled outside hedge".to_owned(),
                _ => "the provider has no record of the attempt".to_owned(),
            };
            b.metrics.inc(&b.metrics.failovers);
            // A spot attempt whose work vanished was reclaimed by the provider: a preemption.
            let reason = if a.market == Market::Spot && matches!(obs, Observation::Lost { .. }) {
                "spot_preempted"
            } else {
                "attempt_lost"
            };
            let t = Transition::new(job.id, job.state, JobState::Recovering, now)
                .reason(reason)
                .explanation(
                    json!({"provider": a.provider, "attempt": a.attempt_no, "detail": why}),
                );
            finish(b, job, a, t, AttemptStatus::Lost, &why).await
        }
    }
}

/// Moves the job and moves its attempt on in one store transaction. An attempt that ends has its ledger
/// segments written by the store in that same transaction (an `Orphaned` attempt's when its stop is
/// confirmed), so a crash can neither lose nor double them.
async fn finish(
    b: &Broker,
    job: &Job,
    a: &LaunchAttempt,
    t: Transition,
    status: AttemptStatus,
    detail: &str,
) -> Result<(), StoreError> {
    let now = b.clock.now();
    let t = t
        .expect_version(job.version)
        .with_attempt_update(AttemptUpdate::new(&a.idempotency_key, status, now).detail(detail));
    b.store.transition(&t).await?;
    Ok(())
}

async fn update_attempt(
    b: &Broker,
    _job: &Job,
    a: &LaunchAttempt,
    status: AttemptStatus,
    detail: &str,
) -> Result<(), StoreError> {
    let now = b.clock.now();
    b.store
        .update_attempt(&AttemptUpdate::new(&a.idempotency_key, status, now).detail(detail))
        .await?;
    Ok(())
}

// ---- phase 3 ------------------------------------------------------------------------------------------------

async fn phase3_schedule(b: &Broker) -> Result<Vec<Decision>, StoreError> {
    enforce_stop(b).await?;
    // The head of the queue in the scheduler's own order (priority, then deadline, then age), read through
    // the store's index: an urgent job is considered at the next pass however long the queue is.
    let queue_jobs = b.store.schedule_queue(SCHEDULE_WINDOW).await?;
    if queue_jobs.is_empty() {
        return Ok(vec![]);
    }
    let now = b.clock.now();
    let attempts = b.store.in_flight_attempts().await?;
    let holding: BTreeMap<JobId, Job> = b
        .store
        .jobs_in_states(&[JobState::Launching, JobState::Running])
        .await?
        .into_iter()
        .map(|j| (j.id, j))
        .collect();
    let mut in_use: BTreeMap<&hedge_core::ProviderId, u32> = BTreeMap::new();
    let mut running = Vec::new();
    for a in &attempts {
        *in_use.entry(&a.provider).or_default() += a.gpus;
        if let Some(j) = holding.get(&a.job) {
            running.push(RunningJob {
                id: j.id,
                team: j.team.clone(),
                priority: j.priority,
                provider: a.provider.clone(),
                accelerator: a.accelerator.clone(),
                gpus: a.gpus,
            });
        }
    }
    let providers = {
        let h = b.health.lock().unwrap_or_else(|p| p.into_inner());
        let unanswered = b
            .unanswered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        b.config
            .providers
            .iter()
            .map(|p| ProviderView {
                id: p.name.clone(),
                accelerator: p.accelerator().cloned(),
                gpus_total: p.gpus(),
                max_nodes: match b.capabilities.get(&p.name) {
                    Some(c) => (
                        c.max_nodes.max(1),
                        match &c.multi_node {
                            hedge_drivers::Support::No { reason } => Some(reason.clone()),
                            hedge_drivers::Support::Yes => None,
                        },
                    ),
                    None => (1, Some("no driver".into())),
                },
                gpus_in_use: in_use.get(&p.name).copied().unwrap_or(0),
                unusable: match h.status(&p.name) {
                    Some(s) if s.state == HealthState::Degraded => Some(format!(
                        "degraded: {}",
                        s.last_error.clone().unwrap_or_default()
                    )),
                    _ if unanswered.contains(&p.name) => {
                        Some("did not answer in this pass".to_owned())
                    }
                    _ => None,
                },
            })
            .collect()
    };
    let owned = b
        .store
        .commitment_usage()
        .await?
        .into_iter()
        .filter(|u| u.commitment.active_at(now))
        .map(|u| OwnedCapacity {
            free_gpus: u.gpus_idle(),
            commitment: u.commitment.id,
            provider: u.commitment.provider,
            accelerator: u.commitment.accelerator,
            region: None,
            marginal_per_gpu_hour: hedge_core::Rate::ZERO,
        })
        .collect();
    let all_teams = b.store.teams().await?;
    let spend = if all_teams.iter().any(|t| t.monthly_budget.is_some()) {
        crate::ledger::budget_spend(b, now).await?
    } else {
        HashMap::new()
    };
    let mut teams = HashMap::new();
    for t in all_teams {
        let u = spend.get(&t.id).copied().unwrap_or_default();
        let spent = u.spent + u.reserved;
        teams.insert(
            t.id.clone(),
            TeamView {
                quotas: t.quotas,
                monthly_budget: t.monthly_budget,
                spent,
                allow_preemption: t.allow_preemption,
            },
        );
    }
    let queue = queue_jobs
        .into_iter()
        .map(|j| QueuedJob {
            id: j.id,
            team: j.team,
            priority: j.priority,
            deadline: j.deadline,
            spec: j.spec,
        })
        .collect();
    let reserved = b
        .waiting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(|(j, w)| match &**w {
            WaitReason::Preempting { provider, gpus, .. } => Some((*j, provider.clone(), *gpus)),
            _ => None,
        })
        .collect();
    let snap = Snapshot {
        catalog: &b.catalog,
        providers,
        owned,
        teams,
        running,
        queue,
        reserved,
        reserve_seconds: b.config.ledger.reserve_seconds,
    };
    Ok(schedule(&snap))
}

/// Teams with `on_budget_exceeded: stop` whose spend this month (booked and accrued, not reservations) has
/// reached their budget: their jobs that hold capacity are stopped.
async fn enforce_stop(b: &Broker) -> Result<(), StoreError> {
    let stopping: Vec<_> = b
        .store
        .teams()
        .await?
        .into_iter()
        .filter(|t| {
            t.on_budget_exceeded == hedge_store::OnBudgetExceeded::Stop
                && t.monthly_budget.is_some()
        })
        .collect();
    if stopping.is_empty() {
        return Ok(());
    }
    let spend = crate::ledger::budget_spend(b, b.clock.now()).await?;
    let mut holding = None;
    for t in stopping {
        let (Some(budget), Some(u)) = (t.monthly_budget, spend.get(&t.id)) else {
            continue;
        };
        if u.spent >= budget {
            if holding.is_none() {
                holding = Some(
                    b.store
                        .jobs_in_states(&[JobState::Launching, JobState::Running])
                        .await?,
                );
            }
            stop_team(b, &t.id, u.spent, budget, holding.iter().flatten()).await?;
        }
    }
    Ok(())
}

/// `on_budget_exceeded: stop`: every job of the team that holds capacity is cancelled the way a user's
/// cancel is (to `Cancelling`; the driver's confirmation makes it `Cancelled`), with reason
/// `budget_exceeded`.
async fn stop_team<'a>(
    b: &Broker,
    team: &hedge_core::TeamId,
    spent: Money,
    budget: Money,
    holding: impl Iterator<Item = &'a Job>,
) -> Result<(), StoreError> {
    for job in holding.filter(|j| &j.team == team) {
        let Some(target) = job.state.cancel_target() else {
            continue;
        };
        let t = Transition::new(job.id, job.state, target, b.clock.now())
            .reason("budget_exceeded")
            .explanation(json!({"spent": spent.micros(), "budget": budget.micros()}))
            .expect_version(job.version);
        match b.store.transition(&t).await {
            Ok(_) => tracing::info!(job = %job.id, team = %team, "budget exceeded: stopping"),
            Err(e) if e.is_caller_error() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// ---- phase 4 ------------------------------------------------------------------------------------------------

async fn phase4_act(
    b: &Broker,
    st: &mut LoopState,
    decisions: Vec<Decision>,
) -> Result<(), StoreError> {
    let mut waiting = BTreeMap::new();
    let mut recorded = Vec::new();
    for d in decisions {
        let r = match d {
            Decision::Launch {
                job,
                candidate,
                placement,
            } => match record_launch(b, job, candidate, *placement).await {
                Ok(Some(r)) => {
                    recorded.push(r);
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
            Decision::Wait { job, reason } => {
                let r = wait(b, st, job, &reason).await;
                waiting.insert(job, reason);
                r
            }
            Decision::Preempt { victim, by } => preempt(b, victim, by).await,
        };
        match r {
            Ok(()) => {}
            Err(e) if e.is_caller_error() => {
                tracing::debug!(error = %e, "state moved under the reconciler")
            }
            Err(e) => return Err(e),
        }
    }
    st.recorded_waits.retain(|j, _| waiting.contains_key(j));
    *b.waiting.lock().unwrap_or_else(|p| p.into_inner()) = waiting;
    submit_recorded(b, st, recorded).await
}

/// Brings a queued job to `Placing`, whatever queue state it is in.
async fn to_placing(b: &Broker, job: &Job, reason: &str) -> Result<Job, StoreError> {
    if job.state == JobState::Placing {
        return Ok(job.clone());
    }
    let t = Transition::new(job.id, job.state, JobState::Placing, b.clock.now())
        .reason(reason)
        .expect_version(job.version);
    b.store.transition(&t).await
}

/// Records a launch: the job moves to `Launching` and its attempt is stored with its key, in one transaction.
async fn record_launch(
    b: &Broker,
    id: JobId,
    c: hedge_placement::Candidate,
    placement: hedge_placement::Placement,
) -> Result<Option<(Job, LaunchAttempt)>, StoreError> {
    let job = b.store.job(id).await?;
    let job = to_placing(b, &job, "placing").await?;
    let now = b.clock.now();
    let t = Transition::new(job.id, JobState::Placing, JobState::Launching, now)
        .reason(match c.market {
            Market::Committed => "placed_committed",
            Market::OnDemand => "placed_on_demand",
            Market::Spot => "placed_spot",
        })
        .explanation(serde_json::to_value(&placement).unwrap_or_default())
        .expect_version(job.version);
    let attempt = NewAttempt {
        provider: c.provider.clone(),
        offer: c.instance_type.clone(),
        region: Some(c.location.region().clone()),
        zone: c.location.zone().cloned(),
        market: c.market,
        commitment: c.commitment.clone(),
        accelerator: c.accelerators.as_ref().map(|a| a.name.clone()),
        gpus: c.total_gpus(),
    };
    let (job, a) = b.store.begin_launch(&t, &attempt).await?;
    b.metrics.inc(&b.metrics.launches);
    Ok(Some((job, a)))
}

/// Submits the attempts phase 4 recorded, `OBSERVE_CONCURRENCY` at a time (each was recorded in the store
/// before; if a submit fails or the process dies here, phase 2 submits again with the same key), then
/// applies the answers in order.
async fn submit_recorded(
    b: &Broker,
    st: &mut LoopState,
    recorded: Vec<(Job, LaunchAttempt)>,
) -> Result<(), StoreError> {
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(OBSERVE_CONCURRENCY));
    let mut calls = tokio::task::JoinSet::new();
    for (i, (job, a)) in recorded.iter().enumerate() {
        let (Some(driver), Some(key)) = (b.drivers.get(&a.provider).cloned(), key_of(a)) else {
            continue;
        };
        let spec = launch_spec(job, a);
        let limit = limit.clone();
        calls.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (i, driver.submit(&key, &spec).await)
        });
    }
    let mut answers: Vec<Option<Result<Observation, hedge_drivers::DriverError>>> =
        recorded.iter().map(|_| None).collect();
    while let Some(done) = calls.join_next().await {
        if let Ok((i, r)) = done {
            answers[i] = Some(r);
        }
    }
    for ((job, a), answer) in recorded.iter().zip(answers) {
        let r = match answer {
            None => Ok(()),
            Some(Ok(obs)) => {
                note_launched(b, job.id);
                match note_call(b, &a.provider, Ok(())).await {
                    Ok(()) => apply_observation(b, job, a, obs).await,
                    Err(e) => Err(e),
                }
            }
            Some(Err(e)) => {
                if counts_against_health(&e) {
                    note_call(b, &a.provider, Err(chain(&e))).await?;
                }
                let n = st.failures.entry(a.idempotency_key.clone()).or_default();
                *n += 1;
                act_on_error(
                    b,
                    job,
                    a,
                    classify(&e, *n, b.config.max_launch_retries),
                    may_be_alive(&e),
                )
                .await
            }
        };
        match r {
            Ok(()) => {}
            Err(e) if e.is_caller_error() => {
                tracing::debug!(error = %e, "state moved under the reconciler")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Records a wait in the job's events when its reason changed (quota, budget, preemption, unknown team);
/// plain "no capacity yet" is only kept in memory, to spare the store one write per queued job per pass.
async fn wait(
    b: &Broker,
    st: &mut LoopState,
    id: JobId,
    reason: &WaitReason,
) -> Result<(), StoreError> {
    if matches!(reason, WaitReason::NoFit { .. }) {
        return Ok(());
    }
    let explanation = json!(reason);
    if st.recorded_waits.get(&id) == Some(&explanation) {
        return Ok(());
    }
    let job = b.store.job(id).await?;
    if job.state == JobState::Pending {
        let events = b.store.job_events(id).await?;
        if events
            .last()
            .is_some_and(|e| e.reason == reason.code() && e.explanation == explanation)
        {
            st.recorded_waits.insert(id, explanation);
            return Ok(());
        }
    }
    let job = to_placing(b, &job, "placing").await?;
    let t = Transition::new(id, JobState::Placing, JobState::Pending, b.clock.now())
        .reason(reason.code())
        .explanation(explanation.clone())
        .expect_version(job.version);
    b.store.transition(&t).await?;
    st.recorded_waits.insert(id, explanation);
    Ok(())
}

async fn preempt(b: &Broker, victim: JobId, by: JobId) -> Result<(), StoreError> {
    let job = b.store.job(victim).await?;
    if !job.state.holds_capacity() {
        return Ok(());
    }
    let attempts = b.store.attempts(victim).await?;
    let Some(a) = attempts.into_iter().rev().find(|a| a.status.is_in_flight()) else {
        return Ok(());
    };
    b.metrics.inc(&b.metrics.preemptions);
    let t = Transition::new(victim, job.state, JobState::Recovering, b.clock.now())
        .reason("preempted")
        .explanation(json!({"by": by, "provider": a.provider, "attempt": a.attempt_no}));
    // The attempt is stopped (confirmed) by phase 2; its GPUs stay counted until then.
    finish(
        b,
        &job,
        &a,
        t,
        AttemptStatus::Orphaned,
        &format!("preempted by job {by}: to be stopped"),
    )
    .await?;
    let a = b.store.attempt_by_key(&a.idempotency_key).await?;
    stop_one(b, &job, &a).await
}
