//! Priority at scale: the scheduler reads the head of the queue in its own order (priority, deadline, age)
//! through the store's index, so an urgent job behind 20,000 queued ones is placed at the next pass.

// The test bounds its wait by the wall clock.
#![allow(clippy::disallowed_methods)]

use crate::{backends, state, TestServer};
use hedge_core::{AccelRequest, Accelerator, ResourceRequest, TaskSpec, TeamId, Timestamp};
use std::time::{Duration, Instant};

backends!(
    an_urgent_job_behind_20000_queued_ones_is_placed_at_the_next_pass,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let ml = s.token_for("ml").await;
        // 20,000 jobs nobody can run (no provider has an A100): they stay queued, oldest first.
        let mut spec = TaskSpec::single(ResourceRequest {
            accelerators: Some(AccelRequest::new(Accelerator::parse("A100").unwrap(), 1)),
            ..ResourceRequest::default()
        });
        spec.run = Some("true".into());
        // Straight into the store, 16 writers at a time (the HTTP path is tested elsewhere).
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..16 {
            let (store, spec) = (s.broker.store.clone(), spec.clone());
            writers.spawn(async move {
                for _ in (w..20_000).step_by(16) {
                    let job = hedge_store::NewJob {
                        team: TeamId::new("ml"),
                        priority: 0,
                        deadline: None,
                        spec: spec.clone(),
                        submitted_at: Timestamp::from_unix(1_700_000_000),
                        idempotency: None,
                    };
                    store.submit_job(&job).await.unwrap();
                }
            });
        }
        while let Some(r) = writers.join_next().await {
            r.unwrap();
        }
        let t0 = Instant::now();
        let urgent = "name: urgent\nresources: {accelerators: H100:1}\nrun: sleep 30\npriority: 10\nteam: ml\n";
        let id = s.submit(&ml, urgent).await["id"].as_u64().unwrap();
        let j = s
            .wait_job(id, 30, |j| matches!(state(j), "launching" | "running"))
            .await;
        let took = t0.elapsed();
        assert_eq!(j["attempts"][0]["provider"], "local-a");
        // A pass every 50 ms; a pass over a 5,000-job window takes well under a second even on CI.
        assert!(took < Duration::from_secs(10), "placed after {took:?}");
    }
);
