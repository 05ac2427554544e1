//! Failover: a provider made unreachable through the fault wrapper loses its jobs to the other provider
//! within two health intervals, every move recorded with its reason; lost attempts and failed submits are
//! re-placed too; a probe brings the provider back.

// These tests measure how fast failover happens, so they read the wall clock (tokio::time::Instant::now,
// banned by clippy.toml in library code); the broker under test takes its time from its Clock.
#![allow(clippy::disallowed_methods)]

use crate::{backends, state, task, TestServer};
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

backends!(
    unreachable_provider_fails_over_within_two_health_intervals,
    |backend| async move {
        let _timed = crate::TIMED.lock().await;
        // The default interval (1 s): two of them bound the failover.
        let s =
            TestServer::start_with(backend, |c| c.health.interval = Duration::from_millis(1000))
                .await;
        let admin = s.admin.clone();
        let interval = s.broker.config.health.interval;
        let ml = s.token_for("ml").await;
        let mut ids = Vec::new();
        for i in 0..4 {
            ids.push(
                s.submit(&ml, &task(&format!("j{i}"), 1, "sleep 60")).await["id"]
                    .as_u64()
                    .unwrap(),
            );
        }
        for id in &ids {
            let j = s.wait_job(*id, 20, |j| state(j) == "running").await;
            assert_eq!(
                j["attempts"][0]["provider"], "local-a",
                "the cheaper provider first"
            );
        }
        let t0 = Instant::now();
        let (st, v) = s
            .call(
                "PUT",
                "/v1/admin/providers/local-a/faults",
                &admin,
                Some(json!({"unreachable": true}).to_string()),
            )
            .await;
        assert_eq!(st.as_u16(), 200, "{v}");
        let deadline = 2 * interval;
        for id in &ids {
            loop {
                let j = s.job(*id).await;
                let last = j["attempts"].as_array().unwrap().last().unwrap().clone();
                if last["provider"] == "local-b" && matches!(state(&j), "launching" | "running") {
                    break;
                }
                assert!(
                    t0.elapsed() <= deadline,
                    "job {id} not re-placed within {deadline:?}: {j:#}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let took = t0.elapsed();
        assert!(took <= deadline, "failover took {took:?}");
        for id in &ids {
            let ev = s.events(*id).await;
            let moved = ev
                .iter()
                .find(|e| e["reason"] == "provider_degraded")
                .unwrap_or_else(|| panic!("{ev:#?}"));
            assert_eq!(moved["from"], "running");
            assert_eq!(moved["to"], "recovering");
            assert_eq!(moved["explanation"]["provider"], "local-a");
            assert!(
                moved["explanation"]["health"]
                    .as_str()
                    .unwrap()
                    .contains("unreachable"),
                "{moved}"
            );
            let j = s.job(*id).await;
            assert_eq!(
                j["attempts"][0]["status"], "orphaned",
                "kept in flight until its stop is confirmed"
            );
        }
        let (_, p) = s.call("GET", "/v1/providers", &ml, None).await;
        assert_eq!(p["providers"][0]["health"], "degraded");
        // A probe brings it back once it answers again.
        s.call(
            "PUT",
            "/v1/admin/providers/local-a/faults",
            &admin,
            Some("{}".into()),
        )
        .await;
        let t1 = Instant::now();
        loop {
            let (_, p) = s.call("GET", "/v1/providers", &ml, None).await;
            if p["providers"][0]["health"] == "healthy" {
                break;
            }
            assert!(
                t1.elapsed() <= 2 * interval,
                "local-a not healthy again after {:?}",
                t1.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The attempts left running on local-a during the partition are stopped once it answers.
        let driver = s.broker.drivers[&hedge_core::ProviderId::parse("local-a")].clone();
        for id in &ids {
            let j = s.job(*id).await;
            let key = hedge_drivers::IdempotencyKey::parse(
                j["attempts"][0]["idempotency_key"].as_str().unwrap(),
            )
            .unwrap();
            let t2 = Instant::now();
            loop {
                let o = driver.observe(&key).await.unwrap();
                if o == hedge_drivers::Observation::Cancelled {
                    break;
                }
                assert!(
                    t2.elapsed() <= 2 * interval,
                    "job {id}'s old attempt still {o:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
);

backends!(
    lost_attempts_and_failed_submits_are_replaced,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let admin = s.admin.clone();
        let ml = s.token_for("ml").await;
        // Two failed submits on local-a: each is a failover back to placement, and the third try runs.
        s.call(
            "PUT",
            "/v1/admin/providers/local-a/faults",
            &admin,
            Some(json!({"fail_submits": 2}).to_string()),
        )
        .await;
        let id = s.submit(&ml, &task("flaky", 1, "sleep 60")).await["id"]
            .as_u64()
            .unwrap();
        let j = s.wait_job(id, 20, |j| state(j) == "running").await;
        assert_eq!(j["attempts"].as_array().unwrap().len(), 3, "{j:#}");
        let failed: Vec<_> = s
            .events(id)
            .await
            .into_iter()
            .filter(|e| e["reason"] == "launch_failed")
            .collect();
        assert_eq!(failed.len(), 2);
        assert!(
            failed[0]["explanation"]["error"]
                .as_str()
                .unwrap()
                .contains("fault injected"),
            "{:#}",
            failed[0]
        );
        // The provider loses the running attempt: the job is placed again.
        s.call(
            "PUT",
            "/v1/admin/providers/local-a/faults",
            &admin,
            Some(json!({"lose_next": 1}).to_string()),
        )
        .await;
        let j = s
            .wait_job(id, 20, |j| {
                j["attempts"].as_array().unwrap().len() == 4 && state(j) == "running"
            })
            .await;
        assert_eq!(j["attempts"][2]["status"], "lost");
        let lost = s
            .events(id)
            .await
            .into_iter()
            .find(|e| e["reason"] == "attempt_lost")
            .unwrap();
        assert!(
            lost["explanation"]["detail"]
                .as_str()
                .unwrap()
                .contains("lost attempt"),
            "{lost:#}"
        );
    }
);
