//! The one conformance suite every backend runs. Each case is an `async fn(Arc<dyn Store>)` on a fresh,
//! empty store; `backend_suite!` (bottom) instantiates all of them as `#[tokio::test]`s for a backend.

use hedge_core::{
    AccelRequest, Accelerator, AttemptStatus, Commitment, JobId, JobState, Market, Money,
    ProviderId, Rate, ResourceRequest, TaskSpec, TeamId, Timestamp,
};
use hedge_store::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use std::sync::Arc;

pub type S = Arc<dyn Store>;

pub fn t(s: i64) -> Timestamp {
    Timestamp::from_unix(1_780_000_000 + s)
}

pub fn spec(accel: &str, n: u32) -> TaskSpec {
    let mut s = TaskSpec::single(ResourceRequest {
        accelerators: Some(AccelRequest::new(Accelerator::parse(accel).unwrap(), n)),
        ..Default::default()
    });
    s.name = Some(format!("train-{accel}"));
    s.run = Some("python train.py --epochs 3".into());
    s
}

pub fn new_job(team: &str, priority: i32) -> NewJob {
    NewJob {
        team: team.into(),
        priority,
        deadline: Some(t(86_400)),
        spec: spec("H100", 8),
        submitted_at: t(0),
        idempotency: None,
    }
}

pub fn keyed(mut job: NewJob, key: &str, body: &str) -> NewJob {
    job.idempotency = Some(SubmitKey {
        key: key.into(),
        request_sha256: hash_secret(body),
    });
    job
}

pub async fn with_team(s: &S, team: &str) {
    s.put_team(&Team::new(team)).await.unwrap();
}

pub fn on_demand(provider: &str) -> NewAttempt {
    NewAttempt {
        provider: provider.into(),
        offer: "p5.48xlarge".into(),
        region: Some("us-east-1".into()),
        zone: None,
        market: Market::OnDemand,
        commitment: None,
        accelerator: Some(Accelerator::parse("H100").unwrap()),
        gpus: 8,
    }
}

fn tr(job: JobId, from: JobState, to: JobState, at: i64) -> Transition {
    Transition::new(job, from, to, t(at)).reason(format!("{from}_to_{to}"))
}

async fn events_len(s: &S, job: JobId) -> usize {
    s.job_events(job).await.unwrap().len()
}

// ---- teams ---------------------------------------------------------------------------------------------------

pub async fn teams_round_trip(s: S) {
    assert!(
        matches!(s.team(&"ml".into()).await, Err(StoreError::UnknownTeam { team }) if team.as_str() == "ml")
    );
    let mut ml = Team::new("ml");
    ml.monthly_budget = Some(Money::from_usd(50_000));
    ml.quotas = vec![
        TeamQuota {
            provider: Some("aws".into()),
            accelerator: Some(Accelerator::parse("H100").unwrap()),
            max_gpus: 64,
        },
        TeamQuota {
            provider: None,
            accelerator: None,
            max_gpus: 128,
        },
    ];
    ml.allow_preemption = true;
    s.put_team(&ml).await.unwrap();
    s.put_team(&Team::new("infra")).await.unwrap();
    assert_eq!(s.team(&"ml".into()).await.unwrap(), ml);

    ml.monthly_budget = None;
    ml.quotas.pop();
    s.put_team(&ml).await.unwrap();
    assert_eq!(s.team(&"ml".into()).await.unwrap(), ml);
    let ids: Vec<_> = s.teams().await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![TeamId::new("infra"), TeamId::new("ml")]);
}

pub async fn bad_team_input_stores_nothing(s: S) {
    let mut bad = Team::new("");
    assert!(matches!(
        s.put_team(&bad).await,
        Err(StoreError::InvalidInput {
            field: "team.id",
            ..
        })
    ));
    bad = Team::new("ok");
    bad.monthly_budget = Some(Money::from_micros(-1));
    assert!(matches!(
        s.put_team(&bad).await,
        Err(StoreError::InvalidInput {
            field: "team.monthly_budget",
            ..
        })
    ));
    bad.monthly_budget = None;
    let q = TeamQuota {
        provider: None,
        accelerator: None,
        max_gpus: 1,
    };
    bad.quotas = vec![q.clone(), q];
    assert!(matches!(
        s.put_team(&bad).await,
        Err(StoreError::InvalidInput {
            field: "team.quotas",
            ..
        })
    ));
    bad = Team::new("tab\tteam");
    assert!(matches!(
        s.put_team(&bad).await,
        Err(StoreError::InvalidInput {
            field: "team.id",
            ..
        })
    ));
    assert!(s.teams().await.unwrap().is_empty());
}

// ---- tokens --------------------------------------------------------------------------------------------------

pub async fn tokens_are_hashed_and_bootstrapped_once(s: S) {
    let admin = s
        .bootstrap_admin_token(t(0))
        .await
        .unwrap()
        .expect("first bootstrap issues a token");
    assert!(admin.secret.starts_with(TOKEN_PREFIX));
    assert!(
        s.bootstrap_admin_token(t(1)).await.unwrap().is_none(),
        "bootstrap happens once"
    );
    assert_eq!(
        s.authenticate(&admin.secret).await.unwrap(),
        Some(Principal::Admin)
    );
    assert_eq!(s.authenticate("hedge_not-a-token").await.unwrap(), None);
    assert_eq!(s.authenticate("").await.unwrap(), None);

    let ghost = Principal::Team("ghost".into());
    assert!(matches!(
        s.create_token(&ghost, "x", t(2)).await,
        Err(StoreError::UnknownTeam { .. })
    ));
    with_team(&s, "ml").await;
    let ml = Principal::Team("ml".into());
    let tok = s.create_token(&ml, "ci", t(3)).await.unwrap();
    assert_ne!(tok.secret, admin.secret);
    assert_eq!(s.authenticate(&tok.secret).await.unwrap(), Some(ml.clone()));

    let infos = s.tokens().await.unwrap();
    assert_eq!(infos.len(), 2, "the failed create stored nothing");
    assert_eq!(infos[1].principal, ml);
    assert_eq!(infos[1].label, "ci");
    let listed = serde_json::to_string(&infos).unwrap();
    assert!(!listed.contains(&tok.secret) && !listed.contains(&hash_secret(&tok.secret)));

    s.revoke_token(tok.id, t(4)).await.unwrap();
    s.revoke_token(tok.id, t(5)).await.unwrap();
    assert_eq!(s.authenticate(&tok.secret).await.unwrap(), None);
    assert_eq!(s.tokens().await.unwrap()[1].revoked_at, Some(t(4)));
    assert!(matches!(
        s.revoke_token(9_999, t(6)).await,
        Err(StoreError::UnknownToken { id: 9_999 })
    ));
    assert_eq!(
        s.authenticate(&admin.secret).await.unwrap(),
        Some(Principal::Admin)
    );
}

pub async fn bootstrap_race_issues_one_token(s: S) {
    let mut handles = vec![];
    for i in 0..8 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.bootstrap_admin_token(t(i)).await.unwrap()
        }));
    }
    let mut issued = 0;
    for h in handles {
        issued += usize::from(h.await.unwrap().is_some());
    }
    assert_eq!(issued, 1);
    assert_eq!(s.tokens().await.unwrap().len(), 1);
}

// ---- jobs ----------------------------------------------------------------------------------------------------

pub async fn submit_and_read_jobs(s: S) {
    with_team(&s, "ml").await;
    let j = s.submit_job(&new_job("ml", 5)).await.unwrap();
    assert_eq!(j.state, JobState::Pending);
    assert_eq!((j.version, j.current_attempt), (0, 0));
    assert_eq!(s.job(j.id).await.unwrap(), j);
    let ev = s.job_events(j.id).await.unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].seq, ev[0].from, ev[0].to, ev[0].reason.as_str()),
        (0, None, JobState::Pending, "submitted")
    );
    let j2 = s.submit_job(&new_job("ml", 1)).await.unwrap();
    assert!(j2.id > j.id);
    assert!(matches!(
        s.job(JobId(999_999)).await,
        Err(StoreError::UnknownJob {
            job: JobId(999_999)
        })
    ));
    assert!(matches!(
        s.job_events(JobId(999_999)).await,
        Err(StoreError::UnknownJob { .. })
    ));
    assert!(matches!(
        s.attempts(JobId(999_999)).await,
        Err(StoreError::UnknownJob { .. })
    ));
}

pub async fn bad_job_input_stores_nothing(s: S) {
    with_team(&s, "ml").await;
    assert!(matches!(
        s.submit_job(&new_job("nobody", 1)).await,
        Err(StoreError::UnknownTeam { .. })
    ));
    let mut j = new_job("ml", 1);
    j.spec.num_nodes = 0;
    assert!(matches!(
        s.submit_job(&j).await,
        Err(StoreError::InvalidInput {
            field: "spec.num_nodes",
            ..
        })
    ));
    let mut j = new_job("ml", 1);
    j.spec.resources.clear();
    assert!(matches!(
        s.submit_job(&j).await,
        Err(StoreError::InvalidInput {
            field: "spec.resources",
            ..
        })
    ));
    let mut j = new_job("ml", 1);
    j.deadline = Some(t(-10));
    assert!(matches!(
        s.submit_job(&j).await,
        Err(StoreError::InvalidInput {
            field: "deadline",
            ..
        })
    ));
    assert!(s.job_counts().await.unwrap().is_empty());
    assert!(s
        .list_jobs(&JobFilter::default())
        .await
        .unwrap()
        .jobs
        .is_empty());
}

pub async fn transitions_are_compare_and_set(s: S) {
    with_team(&s, "ml").await;
    let j = s.submit_job(&new_job("ml", 1)).await.unwrap();
    let placing = s
        .transition(
            &tr(j.id, JobState::Pending, JobState::Placing, 1)
                .explanation(json!({"candidates": 3})),
        )
        .await
        .unwrap();
    assert_eq!(
        (placing.state, placing.version, placing.updated_at),
        (JobState::Placing, 1, t(1))
    );

    // Stale: the caller thinks it is still pending.
    let e = s
        .transition(&tr(j.id, JobState::Pending, JobState::Placing, 2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::StaleTransition {
                expected: JobState::Pending,
                actual: JobState::Placing,
                actual_version: 1,
                ..
            }
        ),
        "{e:?}"
    );
    // Illegal, whatever the stored state.
    let e = s
        .transition(&tr(j.id, JobState::Placing, JobState::Succeeded, 2))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::IllegalTransition {
            from: JobState::Placing,
            to: JobState::Succeeded,
            ..
        }
    ));
    // Version guard.
    let e = s
        .transition(&tr(j.id, JobState::Placing, JobState::Pending, 2).expect_version(0))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::StaleTransition {
            expected_version: Some(0),
            actual_version: 1,
            ..
        }
    ));
    // A reason is required.
    let e = s
        .transition(&Transition::new(
            j.id,
            JobState::Placing,
            JobState::Pending,
            t(2),
        ))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::InvalidInput {
            field: "transition.reason",
            ..
        }
    ));
    // Unknown job.
    let e = s
        .transition(&tr(JobId(424_242), JobState::Pending, JobState::Placing, 2))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::UnknownJob { .. }));
    assert_eq!(
        events_len(&s, j.id).await,
        2,
        "failed transitions wrote no event"
    );
    assert_eq!(s.job(j.id).await.unwrap(), placing);

    let back = s
        .transition(
            &tr(j.id, JobState::Placing, JobState::Pending, 3)
                .expect_version(1)
                .reason("over_budget"),
        )
        .await
        .unwrap();
    assert_eq!((back.state, back.version), (JobState::Pending, 2));
    let ev = s.job_events(j.id).await.unwrap();
    assert_eq!(ev[1].explanation, json!({"candidates": 3}));
    assert_eq!(ev[2].reason, "over_budget");
    assert_eq!(
        (ev[2].from, ev[2].to, ev[2].at, ev[2].seq),
        (Some(JobState::Placing), JobState::Pending, t(3), 2)
    );

    let c = s
        .transition(&tr(j.id, JobState::Pending, JobState::Cancelled, 4))
        .await
        .unwrap();
    assert!(c.state.is_terminal());
    for to in JobState::ALL {
        assert!(s
            .transition(&tr(j.id, JobState::Cancelled, to, 5))
            .await
            .is_err());
    }
    assert_eq!(events_len(&s, j.id).await, 4);
}

pub async fn launch_attempts_are_recorded_before_launch(s: S) {
    with_team(&s, "ml").await;
    let j = s.submit_job(&new_job("ml", 1)).await.unwrap();
    let other = s.submit_job(&new_job("ml", 1)).await.unwrap();
    s.transition(&tr(j.id, JobState::Pending, JobState::Placing, 1))
        .await
        .unwrap();

    // begin_launch only goes to Launching, and validates the attempt.
    let e = s
        .begin_launch(
            &tr(j.id, JobState::Placing, JobState::Pending, 2),
            &on_demand("aws"),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::InvalidInput {
            field: "transition.to",
            ..
        }
    ));
    let mut bad = on_demand("aws");
    bad.market = Market::Committed;
    let e = s
        .begin_launch(&tr(j.id, JobState::Placing, JobState::Launching, 2), &bad)
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::InvalidInput {
            field: "attempt.commitment",
            ..
        }
    ));
    assert!(s.in_flight_attempts().await.unwrap().is_empty());

    let (job, a1) = s
        .begin_launch(
            &tr(j.id, JobState::Placing, JobState::Launching, 2).explanation(json!({"rank": 1})),
            &on_demand("aws"),
        )
        .await
        .unwrap();
    assert_eq!(
        (job.state, job.current_attempt, job.version),
        (JobState::Launching, 1, 2)
    );
    assert_eq!(
        (a1.attempt_no, a1.status, a1.job),
        (1, AttemptStatus::Recorded, j.id)
    );
    assert_eq!(a1.driver_handle, None);
    assert_eq!(s.job(j.id).await.unwrap(), job);
    assert_eq!(s.in_flight_attempts().await.unwrap(), vec![a1.clone()]);
    assert_eq!(s.attempt_by_key(&a1.idempotency_key).await.unwrap(), a1);

    let sub = s
        .update_attempt(
            &AttemptUpdate::new(&a1.idempotency_key, AttemptStatus::Submitted, t(3))
                .handle("pid:4242"),
        )
        .await
        .unwrap();
    assert_eq!(
        (sub.status, sub.driver_handle.as_deref(), sub.updated_at),
        (AttemptStatus::Submitted, Some("pid:4242"), t(3))
    );
    let e = s
        .update_attempt(&AttemptUpdate::new(
            &a1.idempotency_key,
            AttemptStatus::Recorded,
            t(4),
        ))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::IllegalAttemptUpdate {
            from: AttemptStatus::Submitted,
            to: AttemptStatus::Recorded,
            ..
        }
    ));
    let e = s
        .update_attempt(&AttemptUpdate::new(
            "no-such-key",
            AttemptStatus::Running,
            t(4),
        ))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::UnknownAttempt { .. }));

    s.transition(
        &tr(j.id, JobState::Launching, JobState::Running, 5).with_attempt_update(
            AttemptUpdate::new(&a1.idempotency_key, AttemptStatus::Running, t(5)),
        ),
    )
    .await
    .unwrap();

    // An attempt update for another job's attempt is refused, and the transition is rolled back with it.
    s.transition(&tr(other.id, JobState::Pending, JobState::Placing, 6))
        .await
        .unwrap();
    let e = s
        .transition(
            &tr(other.id, JobState::Placing, JobState::Pending, 6).with_attempt_update(
                AttemptUpdate::new(&a1.idempotency_key, AttemptStatus::Lost, t(6)),
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::InvalidInput {
                field: "transition.attempt_update",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(s.job(other.id).await.unwrap().state, JobState::Placing);
    assert_eq!(
        s.attempt_by_key(&a1.idempotency_key).await.unwrap().status,
        AttemptStatus::Running
    );
    // An illegal attempt update rolls the job transition back too.
    let e = s
        .transition(
            &tr(j.id, JobState::Running, JobState::Recovering, 7).with_attempt_update(
                AttemptUpdate::new(&a1.idempotency_key, AttemptStatus::Submitted, t(7)),
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::IllegalAttemptUpdate { .. }));
    assert_eq!(s.job(j.id).await.unwrap().state, JobState::Running);

    // Preempted: the attempt is lost as the job starts recovering, atomically.
    s.transition(
        &tr(j.id, JobState::Running, JobState::Recovering, 8)
            .reason("preempted")
            .with_attempt_update(
                AttemptUpdate::new(&a1.idempotency_key, AttemptStatus::Lost, t(8))
                    .detail("spot reclaimed"),
            ),
    )
    .await
    .unwrap();
    let lost = s.attempt_by_key(&a1.idempotency_key).await.unwrap();
    assert_eq!(
        (
            lost.status,
            lost.detail.as_deref(),
            lost.driver_handle.as_deref()
        ),
        (
            AttemptStatus::Lost,
            Some("spot reclaimed"),
            Some("pid:4242")
        )
    );
    assert!(s.in_flight_attempts().await.unwrap().is_empty());
    let e = s
        .update_attempt(&AttemptUpdate::new(
            &a1.idempotency_key,
            AttemptStatus::Running,
            t(9),
        ))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::IllegalAttemptUpdate {
            from: AttemptStatus::Lost,
            ..
        }
    ));

    s.transition(&tr(j.id, JobState::Recovering, JobState::Placing, 9))
        .await
        .unwrap();
    let (job, a2) = s
        .begin_launch(
            &tr(j.id, JobState::Placing, JobState::Launching, 10),
            &on_demand("gcp"),
        )
        .await
        .unwrap();
    assert_eq!((job.current_attempt, a2.attempt_no), (2, 2));
    assert_ne!(a1.idempotency_key, a2.idempotency_key);
    let all = s.attempts(j.id).await.unwrap();
    assert_eq!(
        all.iter().map(|a| a.attempt_no).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(all[1].provider, ProviderId::new("gcp"));
    let ev = s.job_events(j.id).await.unwrap();
    assert_eq!(
        ev.iter().map(|e| e.to).collect::<Vec<_>>(),
        vec![
            JobState::Pending,
            JobState::Placing,
            JobState::Launching,
            JobState::Running,
            JobState::Recovering,
            JobState::Placing,
            JobState::Launching
        ]
    );
    assert_eq!(ev[2].explanation, json!({"rank": 1}));
    assert_eq!(ev[4].reason, "preempted");
}

async fn job_count(s: &S) -> usize {
    s.list_jobs(&JobFilter {
        limit: JobFilter::MAX_LIMIT,
        ..Default::default()
    })
    .await
    .unwrap()
    .jobs
    .len()
}

pub async fn submits_with_a_key_are_idempotent(s: S) {
    with_team(&s, "ml").await;
    with_team(&s, "infra").await;
    // Bad keys and digests are refused, naming the field, and store nothing.
    let long = "k".repeat(256);
    for (key, sha, field) in [
        ("", hash_secret("b"), "Idempotency-Key"),
        (long.as_str(), hash_secret("b"), "Idempotency-Key"),
        ("caf\u{e9}", hash_secret("b"), "Idempotency-Key"),
        ("a\nb", hash_secret("b"), "Idempotency-Key"),
        ("k", "abc".into(), "request_sha256"),
        ("k", "z".repeat(64), "request_sha256"),
    ] {
        let mut j = new_job("ml", 1);
        j.idempotency = Some(SubmitKey {
            key: key.into(),
            request_sha256: sha,
        });
        let e = s.submit_job(&j).await.unwrap_err();
        assert!(
            matches!(&e, StoreError::InvalidInput { field: f, .. } if *f == field),
            "{key:?}: {e:?}"
        );
    }
    assert_eq!(job_count(&s).await, 0);
    let mut ok = new_job("ml", 1);
    ok.idempotency = Some(SubmitKey {
        key: "k".repeat(255),
        request_sha256: hash_secret("b"),
    });
    assert_eq!(
        s.submit_job(&ok).await.unwrap().idempotency_key,
        Some("k".repeat(255))
    );

    let first = s
        .submit_job(&keyed(new_job("ml", 1), "retry-1", "body"))
        .await
        .unwrap();
    assert_eq!(first.idempotency_key.as_deref(), Some("retry-1"));
    assert_eq!(s.job(first.id).await.unwrap(), first);
    // The retry returns the first job and writes nothing.
    let again = s
        .submit_job(&keyed(new_job("ml", 1), "retry-1", "body"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(job_count(&s).await, 2);
    assert_eq!(events_len(&s, first.id).await, 1);
    // Also once the first job moved on: it is returned as it is now. The digest's case does not matter.
    let moved = s
        .transition(&tr(first.id, JobState::Pending, JobState::Placing, 1))
        .await
        .unwrap();
    let mut upper = keyed(new_job("ml", 1), "retry-1", "body");
    upper
        .idempotency
        .as_mut()
        .unwrap()
        .request_sha256
        .make_ascii_uppercase();
    assert_eq!(s.submit_job(&upper).await.unwrap(), moved);
    // The same key with another request is a conflict naming the key.
    let e = s
        .submit_job(&keyed(new_job("ml", 2), "retry-1", "other body"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::IdempotencyConflict { key } if key == "retry-1"),
        "{e:?}"
    );
    assert!(e.is_caller_error());
    assert_eq!(job_count(&s).await, 2);
    // Keys are per team; jobs without a key are never deduplicated.
    let other_team = s
        .submit_job(&keyed(new_job("infra", 1), "retry-1", "body"))
        .await
        .unwrap();
    assert_ne!(other_team.id, first.id);
    let (a, b) = (
        s.submit_job(&new_job("ml", 1)).await.unwrap(),
        s.submit_job(&new_job("ml", 1)).await.unwrap(),
    );
    assert_ne!(a.id, b.id);
    assert_eq!(a.idempotency_key, None);
    assert_eq!(job_count(&s).await, 5);
}

pub async fn racing_submits_with_one_key_create_one_job(s: S) {
    with_team(&s, "ml").await;
    for round in 0..3 {
        let key = format!("race-{round}");
        let mut handles = vec![];
        for _ in 0..12 {
            let (s, key) = (s.clone(), key.clone());
            handles.push(tokio::spawn(async move {
                s.submit_job(&keyed(new_job("ml", 1), &key, "body")).await
            }));
        }
        let mut ids = vec![];
        for h in handles {
            ids.push(h.await.unwrap().unwrap().id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one job per key: {ids:?}");
    }
    assert_eq!(job_count(&s).await, 3);
    // Racing submits of one key with different requests: one job, every other call a conflict.
    let mut handles = vec![];
    for i in 0..8 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.submit_job(&keyed(new_job("ml", 1), "mixed", &format!("body {i}")))
                .await
        }));
    }
    let (mut created, mut conflicts) = (0, 0);
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::IdempotencyConflict { .. }) => conflicts += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((created, conflicts), (1, 7));
    assert_eq!(job_count(&s).await, 4);
}

pub async fn schedule_queue_is_the_schedulers_order(s: S) {
    with_team(&s, "ml").await;
    let mut ids = vec![];
    // (priority, deadline) in submission order.
    for (p, d) in [
        (1, None),
        (5, Some(50)),
        (5, None),
        (5, Some(10)),
        (9, None),
        (1, Some(5)),
        (5, Some(10)),
        (0, None),
    ] {
        let mut j = new_job("ml", p);
        j.deadline = d.map(t);
        ids.push(s.submit_job(&j).await.unwrap().id);
    }
    // Jobs that are not waiting for a placement are not in the queue; placing and recovering ones are.
    s.transition(&tr(ids[4], JobState::Pending, JobState::Placing, 1))
        .await
        .unwrap();
    s.transition(&tr(ids[7], JobState::Pending, JobState::Placing, 1))
        .await
        .unwrap();
    s.begin_launch(
        &tr(ids[7], JobState::Placing, JobState::Launching, 1),
        &on_demand("aws"),
    )
    .await
    .unwrap();
    s.transition(&tr(ids[1], JobState::Pending, JobState::Placing, 1))
        .await
        .unwrap();
    s.begin_launch(
        &tr(ids[1], JobState::Placing, JobState::Launching, 1),
        &on_demand("aws"),
    )
    .await
    .unwrap();
    s.transition(&tr(ids[1], JobState::Launching, JobState::Recovering, 2))
        .await
        .unwrap();
    s.transition(&tr(ids[0], JobState::Pending, JobState::Cancelled, 2))
        .await
        .unwrap();

    let q = s.schedule_queue(100).await.unwrap();
    let order: Vec<JobId> = q.iter().map(|j| j.id).collect();
    // priority 9; priority 5 by deadline 10, 10 (older first), 50, none; priority 1.
    assert_eq!(order, vec![ids[4], ids[3], ids[6], ids[1], ids[2], ids[5]]);
    assert_eq!(q[0].state, JobState::Placing);
    assert_eq!(q[3].state, JobState::Recovering);
    assert_eq!(*q[0].spec, spec("H100", 8));
    assert_eq!(Job::from(q[1].clone()), s.job(ids[3]).await.unwrap());
    assert_eq!(
        s.schedule_queue(2)
            .await
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect::<Vec<_>>(),
        order[..2]
    );
    assert!(s.schedule_queue(0).await.unwrap().is_empty());
    // The same order as sorting the whole queue with `schedule_order`.
    let mut all = s.queued_jobs(&QUEUED_STATES).await.unwrap();
    all.sort_by(schedule_order);
    assert_eq!(all, q);
}

pub async fn an_urgent_job_behind_20000_queued_is_first(s: S) {
    with_team(&s, "ml").await;
    let mut handles = vec![];
    for w in 0..8 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..2_500 {
                let mut j = new_job("ml", (w * 2_500 + i) % 10);
                j.deadline = (i % 3 == 0).then(|| t(86_400 + i64::from(i)));
                s.submit_job(&j).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let urgent = s.submit_job(&new_job("ml", 100)).await.unwrap();
    let q = s.schedule_queue(5_000).await.unwrap();
    assert_eq!(q.len(), 5_000);
    assert_eq!(q[0].id, urgent.id);
    assert!(
        q.windows(2).all(|w| schedule_order(&w[0], &w[1]).is_lt()),
        "ordered"
    );
    let mut all = s.queued_jobs(&QUEUED_STATES).await.unwrap();
    assert_eq!(all.len(), 20_001);
    all.sort_by(schedule_order);
    all.truncate(5_000);
    assert_eq!(
        all, q,
        "the window is the first 5,000 of the whole queue in the scheduler's order"
    );
}

pub async fn racing_attempt_updates_have_one_winner(s: S) {
    racing_attempt_updates_between(s.clone(), s).await;
}

/// Several writers (through `a` and `b`, which may be two handles on one database) move one running attempt
/// to different final statuses at once: exactly one wins, the stored attempt is the winner's, and every
/// loser gets `IllegalAttemptUpdate` from the winner's status (never a silent overwrite).
pub async fn racing_attempt_updates_between(a: S, b: S) {
    with_team(&a, "ml").await;
    a.put_commitments(&[commitment("ri-1", 64)]).await.unwrap();
    for round in 0..5 {
        let (_, key) = running_committed_job(&a, "ri-1", round).await;
        let finals = [
            AttemptStatus::Succeeded,
            AttemptStatus::Failed,
            AttemptStatus::Lost,
            AttemptStatus::Cancelled,
        ];
        let mut handles = vec![];
        for (i, st) in finals.into_iter().cycle().take(8).enumerate() {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            handles.push(tokio::spawn(async move {
                (
                    st,
                    s.update_attempt(
                        &AttemptUpdate::new(&key, st, t(10)).detail(format!("writer {i}")),
                    )
                    .await,
                )
            }));
        }
        let mut winners = vec![];
        let mut losers = vec![];
        for h in handles {
            match h.await.unwrap() {
                (st, Ok(got)) => winners.push((st, got)),
                (_, Err(StoreError::IllegalAttemptUpdate { from, .. })) => losers.push(from),
                (_, Err(e)) => panic!("{e:?}"),
            }
        }
        // A same-status repeat is legal (st == st), so more than one writer may "win" only with the winner's
        // own status; what matters is that the stored status is one winner's and that losers saw it.
        let stored = a.attempt_by_key(&key).await.unwrap();
        assert!(!winners.is_empty());
        assert!(
            winners.iter().all(|(st, _)| *st == stored.status),
            "{winners:?} vs {stored:?}"
        );
        assert!(
            losers.iter().all(|from| *from == stored.status),
            "{losers:?} vs {stored:?}"
        );
        assert_eq!(winners.len() + losers.len(), 8);
    }
}

/// A committed attempt of a fresh job, moved to Running with the job.
async fn running_committed_job(s: &S, commitment: &str, at: i64) -> (JobId, String) {
    let mut committed = on_demand("aws");
    committed.market = Market::Committed;
    committed.commitment = Some(commitment.into());
    let j = s.submit_job(&new_job("ml", 1)).await.unwrap();
    s.transition(&tr(j.id, JobState::Pending, JobState::Placing, at))
        .await
        .unwrap();
    let (_, a) = s
        .begin_launch(
            &tr(j.id, JobState::Placing, JobState::Launching, at),
            &committed,
        )
        .await
        .unwrap();
    let key = a.idempotency_key;
    s.transition(
        &tr(j.id, JobState::Launching, JobState::Running, at)
            .with_attempt_update(AttemptUpdate::new(&key, AttemptStatus::Running, t(at))),
    )
    .await
    .unwrap();
    (j.id, key)
}

pub async fn cancelling_holds_gpus_until_confirmed(s: S) {
    with_team(&s, "ml").await;
    s.put_commitments(&[commitment("ri-1", 16)]).await.unwrap();
    let (j, key) = running_committed_job(&s, "ri-1", 1).await;

    let job = s
        .transition(
            &tr(j, JobState::Running, JobState::Cancelling, 2)
                .reason("cancelled_by_user")
                .with_attempt_update(AttemptUpdate::new(&key, AttemptStatus::Cancelling, t(2))),
        )
        .await
        .unwrap();
    assert_eq!(job.state, JobState::Cancelling);
    assert_eq!(s.job(j).await.unwrap().state, JobState::Cancelling);
    let a = s.attempt_by_key(&key).await.unwrap();
    assert_eq!(a.status, AttemptStatus::Cancelling);
    // Still in flight: the reconciler keeps asking the driver, and its GPUs count as used.
    assert_eq!(s.in_flight_attempts().await.unwrap(), vec![a]);
    assert_eq!(s.commitment_usage().await.unwrap()[0].gpus_in_use, 8);
    assert_eq!(
        s.job_counts().await.unwrap(),
        vec![(JobState::Cancelling, 1)]
    );
    assert_eq!(
        s.list_jobs(&JobFilter {
            states: vec![JobState::Cancelling],
            ..Default::default()
        })
        .await
        .unwrap()
        .jobs
        .len(),
        1
    );
    // A cancelling attempt never goes back to running.
    let e = s
        .update_attempt(&AttemptUpdate::new(&key, AttemptStatus::Running, t(3)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::IllegalAttemptUpdate {
                from: AttemptStatus::Cancelling,
                ..
            }
        ),
        "{e:?}"
    );

    // The driver confirmed: job and attempt become cancelled in one transaction.
    s.transition(
        &tr(j, JobState::Cancelling, JobState::Cancelled, 4).with_attempt_update(
            AttemptUpdate::new(&key, AttemptStatus::Cancelled, t(4)).detail("process group gone"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(s.job(j).await.unwrap().state, JobState::Cancelled);
    assert_eq!(
        s.attempt_by_key(&key).await.unwrap().status,
        AttemptStatus::Cancelled
    );
    assert!(s.in_flight_attempts().await.unwrap().is_empty());
    assert_eq!(s.commitment_usage().await.unwrap()[0].gpus_in_use, 0);
    let ev = s.job_events(j).await.unwrap();
    assert_eq!(
        ev.iter().map(|e| e.to).collect::<Vec<_>>()[4..],
        [JobState::Cancelling, JobState::Cancelled]
    );
}

pub async fn orphans_stay_in_flight_until_stopped(s: S) {
    with_team(&s, "ml").await;
    s.put_commitments(&[commitment("ri-1", 16)]).await.unwrap();
    let (j, key) = running_committed_job(&s, "ri-1", 1).await;

    // The provider went degraded: the job moves on, its attempt is left as an orphan, atomically.
    s.transition(
        &tr(j, JobState::Running, JobState::Recovering, 2)
            .reason("provider_unreachable")
            .with_attempt_update(AttemptUpdate::new(&key, AttemptStatus::Orphaned, t(2))),
    )
    .await
    .unwrap();
    assert_eq!(s.job(j).await.unwrap().state, JobState::Recovering);
    let inflight = s.in_flight_attempts().await.unwrap();
    assert_eq!(
        inflight
            .iter()
            .map(|a| (a.idempotency_key.as_str(), a.status))
            .collect::<Vec<_>>(),
        vec![(key.as_str(), AttemptStatus::Orphaned)]
    );
    assert_eq!(s.commitment_usage().await.unwrap()[0].gpus_in_use, 8);
    let e = s
        .update_attempt(&AttemptUpdate::new(&key, AttemptStatus::Running, t(3)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::IllegalAttemptUpdate {
                from: AttemptStatus::Orphaned,
                ..
            }
        ),
        "{e:?}"
    );

    // The provider answered again and confirmed the stop.
    let a = s
        .update_attempt(&AttemptUpdate::new(&key, AttemptStatus::Cancelled, t(4)))
        .await
        .unwrap();
    assert_eq!(a.status, AttemptStatus::Cancelled);
    assert!(s.in_flight_attempts().await.unwrap().is_empty());
    assert_eq!(s.commitment_usage().await.unwrap()[0].gpus_in_use, 0);
    assert_eq!(s.job(j).await.unwrap().state, JobState::Recovering);
}

pub async fn idempotency_keys_are_unique_across_jobs(s: S) {
    with_team(&s, "ml").await;
    let mut keys = std::collections::HashSet::new();
    for _ in 0..20 {
        let j = s.submit_job(&new_job("ml", 1)).await.unwrap();
        s.transition(&tr(j.id, JobState::Pending, JobState::Placing, 1))
            .await
            .unwrap();
        let (_, a) = s
            .begin_launch(
                &tr(j.id, JobState::Placing, JobState::Launching, 2),
                &on_demand("aws"),
            )
            .await
            .unwrap();
        assert!(keys.insert(a.idempotency_key));
    }
}

pub async fn list_jobs_with_filters_and_keyset_pages(s: S) {
    with_team(&s, "a").await;
    with_team(&s, "b").await;
    let mut ids = vec![];
    for i in 0..23 {
        let team = if i % 3 == 0 { "b" } else { "a" };
        let j = s.submit_job(&new_job(team, i)).await.unwrap();
        if i % 4 == 0 {
            s.transition(&tr(j.id, JobState::Pending, JobState::Cancelled, 1))
                .await
                .unwrap();
        }
        ids.push((j.id, team, i % 4 == 0));
    }
    for newest_first in [false, true] {
        for (team, states) in [
            (None, vec![]),
            (Some("a"), vec![]),
            (Some("b"), vec![JobState::Pending]),
            (None, vec![JobState::Cancelled, JobState::Running]),
        ] {
            let mut want: Vec<JobId> = ids
                .iter()
                .filter(|(_, t, c)| {
                    team.is_none_or(|x| x == *t)
                        && (states.is_empty()
                            || states.contains(&if *c {
                                JobState::Cancelled
                            } else {
                                JobState::Pending
                            }))
                })
                .map(|(id, _, _)| *id)
                .collect();
            if newest_first {
                want.reverse();
            }
            let mut got = vec![];
            let mut filter = JobFilter {
                team: team.map(TeamId::new),
                states: states.clone(),
                after: None,
                limit: 4,
                newest_first,
            };
            let mut pages = 0;
            loop {
                let page = s.list_jobs(&filter).await.unwrap();
                assert!(page.jobs.len() <= 4);
                got.extend(page.jobs.iter().map(|j| j.id));
                pages += 1;
                match page.next {
                    Some(n) => filter.after = Some(n),
                    None => break,
                }
            }
            assert_eq!(
                got, want,
                "team {team:?} states {states:?} newest_first {newest_first}"
            );
            assert_eq!(pages, want.len().div_ceil(4).max(1));
        }
    }
    let counts = s.job_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![(JobState::Cancelled, 6), (JobState::Pending, 17)]
    );
    let pending = s.jobs_in_states(&[JobState::Pending]).await.unwrap();
    assert_eq!(pending.len(), 17);
    assert!(pending.windows(2).all(|w| w[0].id < w[1].id));
    assert!(s.jobs_in_states(&[]).await.unwrap().is_empty());
    // The scheduler's shared-spec read returns the same jobs.
    let queued: Vec<Job> = s
        .queued_jobs(&[JobState::Pending])
        .await
        .unwrap()
        .into_iter()
        .map(Job::from)
        .collect();
    assert_eq!(queued, pending);
    let both = s
        .queued_jobs(&[JobState::Cancelled, JobState::Pending])
        .await
        .unwrap();
    assert_eq!(both.len(), 23);
    assert!(s.queued_jobs(&[]).await.unwrap().is_empty());
    let big = s
        .list_jobs(&JobFilter {
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((big.jobs.len(), big.next), (23, None));
}

// ---- commitments ---------------------------------------------------------------------------------------------

pub fn commitment(id: &str, gpus: u32) -> Commitment {
    Commitment {
        id: id.into(),
        provider: "aws".into(),
        accelerator: Accelerator::parse("H100").unwrap(),
        region: Some("us-east-1".into()),
        gpus,
        per_gpu_hour: Rate::from_usd_per_hour_f64(2.1).unwrap(),
        start: t(0),
        end: t(365 * 86_400),
    }
}

pub async fn commitments_and_usage(s: S) {
    with_team(&s, "ml").await;
    let (c1, c2) = (commitment("ri-1", 16), commitment("ri-2", 8));
    s.put_commitments(&[c1.clone(), c2.clone()]).await.unwrap();
    assert_eq!(s.commitments().await.unwrap(), vec![c1.clone(), c2.clone()]);

    // All or none: a bad commitment in a batch stores nothing of the batch.
    let mut bad = commitment("ri-3", 0);
    let e = s
        .put_commitments(&[commitment("ri-4", 4), bad.clone()])
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::InvalidInput {
            field: "commitment.gpus",
            ..
        }
    ));
    bad.gpus = 4;
    bad.end = bad.start;
    assert!(matches!(
        s.put_commitments(&[bad]).await,
        Err(StoreError::InvalidInput {
            field: "commitment.end",
            ..
        })
    ));
    assert_eq!(s.commitments().await.unwrap().len(), 2);

    let mut committed = on_demand("aws");
    committed.market = Market::Committed;
    committed.commitment = Some("ri-1".into());
    let mut keys = vec![];
    for _ in 0..2 {
        let j = s.submit_job(&new_job("ml", 1)).await.unwrap();
        s.transition(&tr(j.id, JobState::Pending, JobState::Placing, 1))
            .await
            .unwrap();
        let (_, a) = s
            .begin_launch(
                &tr(j.id, JobState::Placing, JobState::Launching, 2),
                &committed,
            )
            .await
            .unwrap();
        keys.push(a.idempotency_key);
    }
    let usage = s.commitment_usage().await.unwrap();
    assert_eq!(
        usage
            .iter()
            .map(|u| (u.commitment.id.as_str(), u.gpus_in_use, u.gpus_idle()))
            .collect::<Vec<_>>(),
        vec![("ri-1", 16, 0), ("ri-2", 0, 8)]
    );
    s.update_attempt(&AttemptUpdate::new(&keys[0], AttemptStatus::Failed, t(3)))
        .await
        .unwrap();
    assert_eq!(s.commitment_usage().await.unwrap()[0].gpus_in_use, 8);

    // A stored id is never overwritten: the whole batch is refused, naming the id.
    let mut c1b = c1.clone();
    c1b.gpus = 32;
    let e = s
        .put_commitments(&[commitment("ri-5", 4), c1b.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::DuplicateCommitment { id, index: 1 } if id.as_str() == "ri-1"),
        "{e:?}"
    );
    assert!(e.is_caller_error());
    assert_eq!(s.commitments().await.unwrap(), vec![c1.clone(), c2.clone()]);
    // Replacing means deleting first.
    assert!(s.delete_commitment(&"ri-1".into()).await.unwrap());
    s.put_commitments(&[c1b.clone()]).await.unwrap();
    assert_eq!(s.commitments().await.unwrap()[0], c1b);
    assert!(s.delete_commitment(&"ri-2".into()).await.unwrap());
    assert!(!s.delete_commitment(&"ri-2".into()).await.unwrap());
    assert_eq!(s.commitments().await.unwrap(), vec![c1b]);
}

pub async fn duplicate_commitments_are_refused(s: S) {
    // Twice in one batch: refused before the database is touched, naming the second occurrence.
    let e = s
        .put_commitments(&[commitment("a", 4), commitment("b", 4), commitment("a", 8)])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::DuplicateCommitment { id, index: 2 } if id.as_str() == "a"),
        "{e:?}"
    );
    assert!(s.commitments().await.unwrap().is_empty());
    s.put_commitments(&[commitment("a", 4)]).await.unwrap();
    // Racing imports of one id: exactly one wins, the stored commitment is the winner's, never a mix.
    let mut handles = vec![];
    for gpus in 1..=8 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.put_commitments(&[commitment("z", gpus)])
                .await
                .map(|()| gpus)
        }));
    }
    let mut winners = vec![];
    for h in handles {
        match h.await.unwrap() {
            Ok(g) => winners.push(g),
            Err(StoreError::DuplicateCommitment { id, index: 0 }) => assert_eq!(id.as_str(), "z"),
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let stored = s.commitments().await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|c| (c.id.as_str(), c.gpus))
            .collect::<Vec<_>>(),
        vec![("a", 4), ("z", winners[0])]
    );
}

// ---- provider health -----------------------------------------------------------------------------------------

pub async fn provider_health_round_trip(s: S) {
    assert_eq!(s.provider_health(&"local-a".into()).await.unwrap(), None);
    let mut h = ProviderHealth {
        provider: "local-a".into(),
        state: HealthState::Healthy,
        consecutive_failures: 0,
        last_heartbeat: Some(t(10)),
        last_error: None,
        updated_at: t(10),
    };
    s.put_provider_health(&h).await.unwrap();
    h.state = HealthState::Degraded;
    h.consecutive_failures = 3;
    h.last_error = Some("connection refused".into());
    h.updated_at = t(40);
    s.put_provider_health(&h).await.unwrap();
    let b = ProviderHealth {
        provider: "local-b".into(),
        last_heartbeat: None,
        ..h.clone()
    };
    s.put_provider_health(&b).await.unwrap();
    assert_eq!(
        s.provider_health(&"local-a".into()).await.unwrap(),
        Some(h.clone())
    );
    assert_eq!(s.all_provider_health().await.unwrap(), vec![h, b]);
    let bad = ProviderHealth {
        provider: "".into(),
        ..s.all_provider_health().await.unwrap()[0].clone()
    };
    assert!(matches!(
        s.put_provider_health(&bad).await,
        Err(StoreError::InvalidInput { .. })
    ));
}

// ---- spend ---------------------------------------------------------------------------------------------------

pub async fn spend_ledger_and_monthly_budget(s: S) {
    with_team(&s, "ml").await;
    with_team(&s, "infra").await;
    let j = s.submit_job(&new_job("ml", 1)).await.unwrap();
    let (nov, dec) = (
        month_range(2026, 11).unwrap(),
        month_range(2026, 12).unwrap(),
    );
    let entry = |team: &str, amount: i64, start: Timestamp| SpendEntry {
        job: Some(j.id),
        team: team.into(),
        provider: "aws".into(),
        market: Market::Spot,
        amount: Money::from_micros(amount),
        start,
        end: start.plus_seconds(3600),
    };
    s.record_spend(&entry("ml", 1_500_000, nov.0))
        .await
        .unwrap();
    s.record_spend(&entry("ml", 2_250_001, nov.1.plus_seconds(-1)))
        .await
        .unwrap();
    s.record_spend(&entry("ml", 7_000_000, dec.0))
        .await
        .unwrap();
    s.record_spend(&SpendEntry {
        job: None,
        ..entry("infra", 100, nov.0)
    })
    .await
    .unwrap();

    assert_eq!(
        s.team_spend(&"ml".into(), nov.0, nov.1).await.unwrap(),
        Money::from_micros(3_750_001)
    );
    assert_eq!(
        s.team_spend(&"ml".into(), dec.0, dec.1).await.unwrap(),
        Money::from_micros(7_000_000)
    );
    assert_eq!(
        s.team_spend(&"infra".into(), dec.0, dec.1).await.unwrap(),
        Money::ZERO
    );
    assert!(matches!(
        s.team_spend(&"ghost".into(), nov.0, nov.1).await,
        Err(StoreError::UnknownTeam { .. })
    ));

    assert!(matches!(
        s.record_spend(&entry("ghost", 1, nov.0)).await,
        Err(StoreError::UnknownTeam { .. })
    ));
    assert!(matches!(
        s.record_spend(&SpendEntry {
            job: Some(JobId(777_777)),
            ..entry("ml", 1, nov.0)
        })
        .await,
        Err(StoreError::UnknownJob { .. })
    ));
    let mut backwards = entry("ml", 1, nov.0);
    backwards.end = backwards.start.plus_seconds(-1);
    assert!(matches!(
        s.record_spend(&backwards).await,
        Err(StoreError::InvalidInput {
            field: "spend.end",
            ..
        })
    ));

    let all_nov = s.spend_entries(None, nov.0, nov.1).await.unwrap();
    assert_eq!(all_nov.len(), 3);
    assert_eq!(all_nov[0], entry("ml", 1_500_000, nov.0));
    assert_eq!(all_nov[2].job, None);
    assert_eq!(
        s.spend_entries(Some(&"infra".into()), nov.0, dec.1)
            .await
            .unwrap()
            .len(),
        1
    );
}

// ---- ledger --------------------------------------------------------------------------------------------------

fn price(
    provider: &str,
    market: Market,
    at: Timestamp,
    usd: i64,
) -> hedge_core::ledger::PriceVersion {
    hedge_core::ledger::PriceVersion {
        provider: provider.into(),
        market,
        from: at,
        per_gpu_hour: Rate::per_hour(Money::from_usd(usd)),
    }
}

/// Launches a job of `team` at `at` on `attempt` and moves it to Running; returns (job, attempt key).
pub async fn running_attempt(
    s: &S,
    team: &str,
    attempt: NewAttempt,
    at: Timestamp,
) -> (Job, String) {
    let j = s.submit_job(&new_job(team, 1)).await.unwrap();
    s.transition(
        &Transition::new(j.id, JobState::Pending, JobState::Placing, at).reason("placing"),
    )
    .await
    .unwrap();
    let (_, a) = s
        .begin_launch(
            &Transition::new(j.id, JobState::Placing, JobState::Launching, at).reason("placed"),
            &attempt,
        )
        .await
        .unwrap();
    let j = s
        .transition(
            &Transition::new(j.id, JobState::Launching, JobState::Running, at)
                .reason("started")
                .with_attempt_update(AttemptUpdate::new(
                    &a.idempotency_key,
                    AttemptStatus::Running,
                    at,
                )),
        )
        .await
        .unwrap();
    (j, a.idempotency_key)
}

/// An attempt's segments are written with its final status, priced from the price history (a price change
/// splits them), attributed by overlap, never twice.
pub async fn ledger_segments_are_booked_with_the_final_status(s: S) {
    with_team(&s, "ml").await;
    // aws on-demand: $2/GPU-h, then $3 from 2 h in.
    assert_eq!(
        s.record_prices(&[
            price("aws", Market::OnDemand, t(0), 2),
            price("aws", Market::OnDemand, t(7200), 3)
        ])
        .await
        .unwrap(),
        2
    );
    // The same prices again (and an unchanged later version) add nothing.
    assert_eq!(
        s.record_prices(&[
            price("aws", Market::OnDemand, t(7200), 3),
            price("aws", Market::OnDemand, t(9000), 3)
        ])
        .await
        .unwrap(),
        0
    );
    assert_eq!(s.price_versions().await.unwrap().len(), 2);
    let (j, key) = running_attempt(&s, "ml", on_demand("aws"), t(0)).await;
    // Running: nothing booked yet (running attempts accrue at query time, in the broker).
    assert!(s
        .ledger_segments(None, t(0), t(86_400), None, 100)
        .await
        .unwrap()
        .is_empty());
    // A stale end writes no segment.
    let stale = Transition::new(j.id, JobState::Running, JobState::Succeeded, t(10_800))
        .reason("succeeded")
        .expect_version(j.version + 5)
        .with_attempt_update(AttemptUpdate::new(
            &key,
            AttemptStatus::Succeeded,
            t(10_800),
        ));
    assert!(s.transition(&stale).await.is_err());
    assert!(s
        .ledger_segments(None, t(0), t(86_400), None, 100)
        .await
        .unwrap()
        .is_empty());
    // Ends after 3 h: 8 GPUs × 2 h × $2 + 8 × 1 h × $3 = $32 + $24 = $56.
    let end = Transition::new(j.id, JobState::Running, JobState::Succeeded, t(10_800))
        .reason("succeeded")
        .with_attempt_update(AttemptUpdate::new(
            &key,
            AttemptStatus::Succeeded,
            t(10_800),
        ));
    s.transition(&end).await.unwrap();
    let segs = s
        .ledger_segments(None, t(0), t(86_400), None, 100)
        .await
        .unwrap();
    assert_eq!(segs.len(), 2);
    let (a, b) = (&segs[0].1, &segs[1].1);
    assert_eq!(
        (a.seq, a.start, a.end, a.per_gpu_hour.hourly()),
        (0, t(0), t(7200), Money::from_usd(2))
    );
    assert_eq!(
        (b.seq, b.start, b.end, b.per_gpu_hour.hourly()),
        (1, t(7200), t(10_800), Money::from_usd(3))
    );
    assert_eq!(
        (a.team.as_str(), a.job, a.gpus, a.instance_type.as_str()),
        ("ml", j.id, 8, "p5.48xlarge")
    );
    assert_eq!(
        s.booked_spend_by_team(t(0), t(86_400)).await.unwrap(),
        [("ml".into(), Money::from_usd(56))]
    );
    // By overlap: [1 h, 2.5 h) holds 1 h at $16/h and 0.5 h at $24/h = $28.
    assert_eq!(
        s.booked_spend_by_team(t(3600), t(9000)).await.unwrap(),
        [("ml".into(), Money::from_usd(28))]
    );
    let pieces: Money = segs
        .iter()
        .map(|(_, x)| x.billed_in(t(3600), t(9000)))
        .sum();
    assert_eq!(pieces, Money::from_usd(28));
    assert!(s
        .booked_spend_by_team(t(10_800), t(20_000))
        .await
        .unwrap()
        .is_empty());
    // Repeating the end is refused and books nothing more.
    assert!(s
        .update_attempt(&AttemptUpdate::new(
            &key,
            AttemptStatus::Succeeded,
            t(20_000)
        ))
        .await
        .is_err());
    assert_eq!(
        s.ledger_segments(None, t(0), t(86_400), None, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    // Keyset pages and the team filter.
    let first = s
        .ledger_segments(None, t(0), t(86_400), None, 1)
        .await
        .unwrap();
    let second = s
        .ledger_segments(
            None,
            t(0),
            t(86_400),
            Some((first[0].1.start, first[0].0)),
            1,
        )
        .await
        .unwrap();
    assert_eq!((first[0].1.seq, second[0].1.seq), (0, 1));
    assert!(s
        .ledger_segments(Some(&"cv".into()), t(0), t(86_400), None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .ledger_segments(Some(&"ml\0".into()), t(0), t(86_400), None, 10)
        .await
        .unwrap()
        .is_empty());
    // A lost attempt on committed capacity is booked too, at zero billed and on-demand list.
    s.put_commitments(&[commitment("ri-1", 8)]).await.unwrap();
    let mut committed = on_demand("aws");
    committed.market = Market::Committed;
    committed.commitment = Some("ri-1".into());
    committed.gpus = 2;
    let (_, key2) = running_attempt(&s, "ml", committed, t(0)).await;
    s.update_attempt(&AttemptUpdate::new(&key2, AttemptStatus::Lost, t(3600)))
        .await
        .unwrap();
    let segs: Vec<_> = s
        .ledger_segments(None, t(0), t(86_400), None, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, x)| x.attempt == key2)
        .collect();
    assert_eq!(segs.len(), 1);
    assert_eq!(
        (
            segs[0].1.per_gpu_hour,
            segs[0].1.list_per_gpu_hour.hourly(),
            segs[0].1.commitment.clone()
        ),
        (Rate::ZERO, Money::from_usd(2), Some("ri-1".into()))
    );
    assert!(matches!(
        s.record_prices(&[price("bad\0", Market::Spot, t(0), 1)])
            .await,
        Err(StoreError::InvalidInput { .. })
    ));
    // A team's budget action round-trips (default `wait`).
    assert_eq!(
        s.team(&"ml".into()).await.unwrap().on_budget_exceeded,
        OnBudgetExceeded::Wait
    );
    s.put_team(&Team {
        on_budget_exceeded: OnBudgetExceeded::Stop,
        ..Team::new("ml")
    })
    .await
    .unwrap();
    assert_eq!(
        s.team(&"ml".into()).await.unwrap().on_budget_exceeded,
        OnBudgetExceeded::Stop
    );
}

/// Hostile strings (NUL, control characters, oversized text) get typed errors or "not found", never a
/// backend error, and nothing is stored. (PostgreSQL refuses NUL in text, so these would otherwise be 500s.)
pub async fn hostile_strings_are_refused_not_stored(s: S) {
    with_team(&s, "ml").await;
    let nul = "ml\0x";
    assert!(matches!(
        s.team(&nul.into()).await,
        Err(StoreError::UnknownTeam { .. })
    ));
    assert!(matches!(
        s.put_team(&Team::new(nul)).await,
        Err(StoreError::InvalidInput { .. })
    ));
    assert!(matches!(
        s.submit_job(&new_job(nul, 1)).await,
        Err(StoreError::InvalidInput { field: "team", .. })
    ));
    let e = s
        .create_token(&Principal::Team(nul.into()), "x", t(0))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::UnknownTeam { .. }), "{e:?}");
    let e = s
        .create_token(&Principal::Team("ml".into()), "bad\0label", t(0))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::InvalidInput {
                field: "token.label",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(s.authenticate("hedge_\0").await.unwrap(), None);
    assert!(matches!(
        s.attempt_by_key("k\0").await,
        Err(StoreError::UnknownAttempt { .. })
    ));
    let e = s
        .update_attempt(&AttemptUpdate::new("k\0", AttemptStatus::Running, t(0)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::InvalidInput {
                field: "attempt.idempotency_key",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!s.delete_commitment(&"c\0".into()).await.unwrap());
    assert_eq!(s.provider_health(&"p\0".into()).await.unwrap(), None);
    assert!(matches!(
        s.team_spend(&nul.into(), t(0), t(1)).await,
        Err(StoreError::UnknownTeam { .. })
    ));
    assert!(s
        .spend_entries(Some(&nul.into()), t(0), t(1))
        .await
        .unwrap()
        .is_empty());
    let page = s
        .list_jobs(&JobFilter {
            team: Some(nul.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.jobs.is_empty());

    let j = s.submit_job(&new_job("ml", 1)).await.unwrap();
    let e = s
        .transition(&tr(j.id, JobState::Pending, JobState::Placing, 1).reason("no\0pe"))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::InvalidInput {
            field: "transition.reason",
            ..
        }
    ));
    let huge = json!({"blob": "x".repeat(MAX_EXPLANATION_BYTES)});
    let e = s
        .transition(&tr(j.id, JobState::Pending, JobState::Placing, 1).explanation(huge))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::InvalidInput {
            field: "transition.explanation",
            ..
        }
    ));
    s.transition(&tr(j.id, JobState::Pending, JobState::Placing, 1))
        .await
        .unwrap();
    let mut bad = on_demand("aws");
    bad.offer = "p5\0".into();
    let e = s
        .begin_launch(&tr(j.id, JobState::Placing, JobState::Launching, 2), &bad)
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::InvalidInput {
            field: "attempt.offer",
            ..
        }
    ));
    let mut c = commitment("ri-1", 8);
    c.region = Some("us\0east".into());
    assert!(matches!(
        s.put_commitments(&[c]).await,
        Err(StoreError::InvalidInput {
            field: "commitment.region",
            ..
        })
    ));
    assert_eq!(events_len(&s, j.id).await, 2);
    assert!(s.commitments().await.unwrap().is_empty());

    // Driver output is kept, cleaned: NUL dropped, cut to MAX_DETAIL_CHARS.
    let (_, a) = s
        .begin_launch(
            &tr(j.id, JobState::Placing, JobState::Launching, 2),
            &on_demand("aws"),
        )
        .await
        .unwrap();
    let noisy = format!("exit 1\0{}", "é".repeat(MAX_DETAIL_CHARS));
    let a = s
        .update_attempt(
            &AttemptUpdate::new(&a.idempotency_key, AttemptStatus::Failed, t(3)).detail(noisy),
        )
        .await
        .unwrap();
    let d = a.detail.unwrap();
    assert!(d.starts_with("exit 1é") && !d.contains('\0'));
    assert_eq!(d.chars().count(), MAX_DETAIL_CHARS);
    let e = s
        .update_attempt(
            &AttemptUpdate::new(&a.idempotency_key, AttemptStatus::Failed, t(3)).handle("h\0"),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::InvalidInput {
            field: "attempt.driver_handle",
            ..
        }
    ));
}

/// Every (from, to) pair of attempt statuses: the store accepts exactly the moves
/// `AttemptStatus::can_become` allows, and a refused move changes nothing.
pub async fn attempt_status_moves_are_exactly_the_legal_ones(s: S) {
    with_team(&s, "ml").await;
    for from in AttemptStatus::ALL {
        for to in AttemptStatus::ALL {
            let j = s.submit_job(&new_job("ml", 1)).await.unwrap();
            s.transition(&tr(j.id, JobState::Pending, JobState::Placing, 1))
                .await
                .unwrap();
            let (_, a) = s
                .begin_launch(
                    &tr(j.id, JobState::Placing, JobState::Launching, 2),
                    &on_demand("aws"),
                )
                .await
                .unwrap();
            let key = a.idempotency_key;
            if from != AttemptStatus::Recorded {
                s.update_attempt(&AttemptUpdate::new(&key, from, t(3)))
                    .await
                    .unwrap();
            }
            let res = s
                .update_attempt(&AttemptUpdate::new(&key, to, t(4)).detail("d"))
                .await;
            let stored = s.attempt_by_key(&key).await.unwrap();
            if from.can_become(to) {
                let a = res.unwrap_or_else(|e| panic!("{from} -> {to}: {e:?}"));
                assert_eq!(
                    (a.status, a.updated_at, a.detail.as_deref()),
                    (to, t(4), Some("d"))
                );
                assert_eq!(stored, a);
            } else {
                assert!(
                    matches!(res, Err(StoreError::IllegalAttemptUpdate { .. })),
                    "{from} -> {to}: {res:?}"
                );
                assert_eq!(
                    (stored.status, stored.detail),
                    (from, None),
                    "{from} -> {to}"
                );
            }
            assert_eq!(
                s.in_flight_attempts()
                    .await
                    .unwrap()
                    .iter()
                    .any(|x| x.idempotency_key == key),
                stored.status.is_in_flight()
            );
        }
    }
}

// ---- concurrency and properties ------------------------------------------------------------------------------

/// Two writers race the same compare-and-set, many times: exactly one wins each race, the loser gets
/// `StaleTransition`, and exactly one event is written.
pub async fn racing_transitions_have_one_winner(s: S) {
    racing_transitions_between(s.clone(), s).await;
}

pub async fn racing_transitions_between(s1: S, s2: S) {
    with_team(&s1, "ml").await;
    for round in 0..40 {
        let j = s1.submit_job(&new_job("ml", 1)).await.unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let mut hs = vec![];
        for (w, s) in [s1.clone(), s2.clone()].into_iter().enumerate() {
            let b = barrier.clone();
            hs.push(tokio::spawn(async move {
                b.wait().await;
                s.transition(
                    &tr(j.id, JobState::Pending, JobState::Placing, round)
                        .reason(format!("writer-{w}")),
                )
                .await
            }));
        }
        let mut wins = 0;
        for h in hs {
            match h.await.unwrap() {
                Ok(job) => {
                    wins += 1;
                    assert_eq!(job.version, 1);
                }
                Err(StoreError::StaleTransition {
                    actual: JobState::Placing,
                    ..
                }) => {}
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
        let ev = s2.job_events(j.id).await.unwrap();
        assert_eq!(ev.len(), 2);
    }
}

/// Random sequences of (possibly stale, possibly illegal) transition requests: the store accepts exactly
/// the legal ones from the current state, never reaches an illegal state, and its events replay to the
/// stored state.
pub async fn random_transition_sequences_replay(s: S) {
    with_team(&s, "ml").await;
    let handle = tokio::runtime::Handle::current();
    let state = proptest::sample::select(JobState::ALL.to_vec());
    let step = (any::<bool>(), state.clone(), state);
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let result = tokio::task::block_in_place(|| {
        runner.run(&proptest::collection::vec(step, 1..30), |steps| {
            handle.block_on(async {
                let j = s.submit_job(&new_job("ml", 1)).await.unwrap();
                let mut cur = JobState::Pending;
                for (k, (use_current, from_any, to)) in steps.into_iter().enumerate() {
                    let from = if use_current { cur } else { from_any };
                    let at = k as i64 + 1;
                    let res = if to == JobState::Launching && from.can_transition_to(to) {
                        s.begin_launch(&tr(j.id, from, to, at), &on_demand("aws"))
                            .await
                            .map(|(j, _)| j)
                    } else {
                        s.transition(&tr(j.id, from, to, at)).await
                    };
                    match res {
                        Ok(job) => {
                            prop_assert!(from == cur && cur.can_transition_to(to));
                            prop_assert_eq!(job.state, to);
                            cur = to;
                        }
                        Err(StoreError::IllegalTransition { .. }) => {
                            prop_assert!(!from.can_transition_to(to))
                        }
                        Err(StoreError::StaleTransition { actual, .. }) => {
                            prop_assert!(from != cur && from.can_transition_to(to));
                            prop_assert_eq!(actual, cur);
                        }
                        Err(e) => {
                            return Err(TestCaseError::fail(format!("unexpected error {e:?}")))
                        }
                    }
                }
                let job = s.job(j.id).await.unwrap();
                prop_assert_eq!(job.state, cur);
                let events = s.job_events(j.id).await.unwrap();
                prop_assert_eq!(events.len() as u64, job.version + 1);
                prop_assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as u64));
                let replayed =
                    hedge_core::job::replay(events.iter().skip(1).map(|e| (e.from.unwrap(), e.to)));
                prop_assert_eq!(replayed, Ok(job.state));
                let launches = events
                    .iter()
                    .filter(|e| e.to == JobState::Launching)
                    .count();
                prop_assert_eq!(s.attempts(j.id).await.unwrap().len(), launches);
                prop_assert_eq!(job.current_attempt as usize, launches);
                Ok(())
            })
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Rows written straight into a version-1 schema (before the store knew `cancelling` and `orphaned`):
/// jobs 7 and 9 with their events, a running attempt of job 7 on commitment `ri-1`, and a spend line.
/// `false_` is the backend's literal for a false boolean column.
pub fn v1_fixture_sql(false_: &str) -> String {
    let spec = serde_json::to_string(&spec("H100", 8))
        .unwrap()
        .replace('\'', "''");
    format!(
        "INSERT INTO teams (id, monthly_budget_micros, quotas, allow_preemption) VALUES ('ml', NULL, '[]', {false_});
         INSERT INTO jobs (id, team_id, priority, deadline, spec, submitted_at, state, version, current_attempt, updated_at)
             VALUES (7, 'ml', 5, NULL, '{spec}', {t0}, 'running', 3, 1, {t3}),
                    (9, 'ml', 1, {t9}, '{spec}', {t0}, 'pending', 0, 0, {t0});
         INSERT INTO job_events (job_id, seq, from_state, to_state, reason, explanation, at) VALUES
             (7, 0, NULL, 'pending', 'submitted', 'null', {t0}), (7, 1, 'pending', 'placing', 'x', 'null', {t0}),
             (7, 2, 'placing', 'launching', 'x', '{{\"rank\":1}}', {t0}), (7, 3, 'launching', 'running', 'x', 'null', {t3}),
             (9, 0, NULL, 'pending', 'submitted', 'null', {t0});
         INSERT INTO commitments (id, provider, accelerator, region, gpus, per_gpu_hour_micros, start_at, end_at)
             VALUES ('ri-1', 'aws', 'H100', NULL, 16, 2000000, {t0}, {t9});
         INSERT INTO launch_attempts (job_id, attempt_no, idempotency_key, provider, offer, region, zone, market,
                 commitment_id, accelerator, gpus, driver_handle, status, detail, created_at, updated_at)
             VALUES (7, 1, 'hedge-old-j7-a1', 'aws', 'p5.48xlarge', 'us-east-1', NULL, 'committed', 'ri-1', 'H100', 8,
                     'pid:1', 'running', NULL, {t0}, {t3});
         INSERT INTO spend (job_id, team_id, provider, market, amount_micros, start_at, end_at)
             VALUES (7, 'ml', 'aws', 'committed', 1500, {t0}, {t3});",
        t0 = t(0).0,
        t3 = t(3).0,
        t9 = t(86_400).0,
    )
}

/// After a version-1 database with [`v1_fixture_sql`] was upgraded: every row is intact, ids continue after
/// the highest one, and the new states are storable.
pub async fn v1_fixture_survived_upgrade(s: S) {
    let j7 = s.job(JobId(7)).await.unwrap();
    assert_eq!(
        (j7.state, j7.version, j7.current_attempt, j7.priority),
        (JobState::Running, 3, 1, 5)
    );
    assert_eq!(j7.spec, spec("H100", 8));
    assert_eq!(s.job(JobId(9)).await.unwrap().deadline, Some(t(86_400)));
    let ev = s.job_events(JobId(7)).await.unwrap();
    assert_eq!(ev.len(), 4);
    assert_eq!(ev[2].explanation, json!({"rank": 1}));
    let a = s.attempt_by_key("hedge-old-j7-a1").await.unwrap();
    assert_eq!(
        (a.status, a.gpus, a.driver_handle.as_deref()),
        (AttemptStatus::Running, 8, Some("pid:1"))
    );
    assert_eq!(s.commitment_usage().await.unwrap()[0].gpus_in_use, 8);
    assert_eq!(
        s.team_spend(&"ml".into(), t(-10), t(10)).await.unwrap(),
        Money::from_micros(1500)
    );
    let next = s.submit_job(&new_job("ml", 1)).await.unwrap();
    assert_eq!(next.id, JobId(10), "job ids continue after the highest one");

    s.transition(
        &tr(JobId(7), JobState::Running, JobState::Cancelling, 5).with_attempt_update(
            AttemptUpdate::new("hedge-old-j7-a1", AttemptStatus::Cancelling, t(5)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        s.in_flight_attempts().await.unwrap()[0].status,
        AttemptStatus::Cancelling
    );
    assert_eq!(s.commitment_usage().await.unwrap()[0].gpus_in_use, 8);
    s.update_attempt(&AttemptUpdate::new(
        "hedge-old-j7-a1",
        AttemptStatus::Cancelled,
        t(6),
    ))
    .await
    .unwrap();
    assert!(s.in_flight_attempts().await.unwrap().is_empty());
}

/// Instantiates every conformance case for a backend. `$make` is an async fn returning
/// `(Arc<dyn Store>, guard)`; the guard lives until the test ends.
#[macro_export]
macro_rules! backend_suite {
    ($make:path) => {
        $crate::backend_suite!(@cases $make;
            teams_round_trip,
            bad_team_input_stores_nothing,
            tokens_are_hashed_and_bootstrapped_once,
            bootstrap_race_issues_one_token,
            submit_and_read_jobs,
            bad_job_input_stores_nothing,
            transitions_are_compare_and_set,
            launch_attempts_are_recorded_before_launch,
            idempotency_keys_are_unique_across_jobs,
            attempt_status_moves_are_exactly_the_legal_ones,
            list_jobs_with_filters_and_keyset_pages,
            commitments_and_usage,
            provider_health_round_trip,
            spend_ledger_and_monthly_budget,
            ledger_segments_are_booked_with_the_final_status,
            hostile_strings_are_refused_not_stored,
            racing_transitions_have_one_winner,
            random_transition_sequences_replay,
            cancelling_holds_gpus_until_confirmed,
            orphans_stay_in_flight_until_stopped,
            submits_with_a_key_are_idempotent,
            racing_submits_with_one_key_create_one_job,
            duplicate_commitments_are_refused,
            schedule_queue_is_the_schedulers_order,
            an_urgent_job_behind_20000_queued_is_first,
            racing_attempt_updates_have_one_winner,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $make().await;
                $crate::conformance::$case(store).await;
            }
        )*
    };
}
