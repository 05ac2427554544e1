//! Placement in the service: committed capacity first (consumption tracked per commitment), quotas and
//! budgets make jobs wait with the reason in their events, priorities preempt only where the team allows.

use crate::{backends, state, task, TestServer};
use serde_json::json;

backends!(
    committed_capacity_first_then_on_demand,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let admin = s.admin.clone();
        let c = json!([{"id": "c-b", "provider": "local-b", "accelerator": "H100", "region": null, "gpus": 2,
                    "per_gpu_hour": 1_500_000, "start": 1_700_000_000, "end": 2_000_000_000}]);
        let (st, v) = s
            .call("POST", "/v1/commitments", &admin, Some(c.to_string()))
            .await;
        assert_eq!(st.as_u16(), 200, "{v}");
        let ml = s.token_for("ml").await;
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(
                s.submit(&ml, &task(&format!("c{i}"), 1, "sleep 60")).await["id"]
                    .as_u64()
                    .unwrap(),
            );
        }
        let mut where_ = Vec::new();
        for id in &ids {
            let j = s.wait_job(*id, 20, |j| state(j) == "running").await;
            where_.push((
                j["attempts"][0]["provider"].as_str().unwrap().to_owned(),
                j["attempts"][0]["market"].as_str().unwrap().to_owned(),
            ));
        }
        assert_eq!(
            where_,
            [
                ("local-b", "committed"),
                ("local-b", "committed"),
                ("local-a", "on_demand")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .to_vec(),
            "the commitment on the dearer provider is used first, then on-demand"
        );
        let (_, list) = s.call("GET", "/v1/commitments", &ml, None).await;
        assert_eq!(list["commitments"][0]["gpus_in_use"], 2);
        assert_eq!(list["commitments"][0]["gpus_idle"], 0);
        let (_, p) = s.call("GET", "/v1/providers", &ml, None).await;
        assert_eq!(p["providers"][1]["committed_gpus_free"], 0);
        assert_eq!(s.events(ids[0]).await[2]["reason"], "placed_committed");
    }
);

backends!(
    quota_and_budget_make_jobs_wait_with_the_reason,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let admin = s.admin.clone();
        s.call(
            "PUT",
            "/v1/teams/ml",
            &admin,
            Some(json!({"quotas": [{"accelerator": "H100", "max_gpus": 2}]}).to_string()),
        )
        .await;
        s.call(
            "PUT",
            "/v1/teams/research",
            &admin,
            Some(json!({"monthly_budget_usd": 0.0}).to_string()),
        )
        .await;
        let ml = s.token_for("ml").await;
        let research = s.token_for("research").await;
        let a = s.submit(&ml, &task("a", 2, "sleep 60")).await["id"]
            .as_u64()
            .unwrap();
        s.wait_job(a, 20, |j| state(j) == "running").await;
        let b = s.submit(&ml, &task("b", 1, "sleep 60")).await["id"]
            .as_u64()
            .unwrap();
        let j = s
            .wait_job(b, 20, |j| j["waiting"]["reason"] == "over_quota")
            .await;
        assert_eq!(state(&j), "pending");
        let ev = s.events(b).await;
        let w = ev
            .iter()
            .find(|e| e["reason"] == "over_quota")
            .unwrap_or_else(|| panic!("{ev:#?}"));
        assert_eq!(
            (
                w["explanation"]["max_gpus"].as_u64(),
                w["explanation"]["in_use"].as_u64()
            ),
            (Some(2), Some(2))
        );
        let r = s.submit(&research, &task("r", 1, "true")).await["id"]
            .as_u64()
            .unwrap();
        s.wait_job(r, 20, |j| j["waiting"]["reason"] == "over_budget")
            .await;
        assert!(s
            .events(r)
            .await
            .iter()
            .any(|e| e["reason"] == "over_budget"));
        // Freeing the quota lets the waiting job run.
        s.call("POST", &format!("/v1/jobs/{a}/cancel"), &ml, None)
            .await;
        s.wait_job(b, 20, |j| state(j) == "running").await;
    }
);

backends!(
    priorities_preempt_only_where_the_team_allows,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let admin = s.admin.clone();
        s.call(
            "PUT",
            "/v1/teams/ml",
            &admin,
            Some(json!({"allow_preemption": true}).to_string()),
        )
        .await;
        let ml = s.token_for("ml").await;
        let research = s.token_for("research").await;
        // Fill both providers (8 GPUs) with low-priority work: 4 jobs of ml, 4 of research.
        let mut low = Vec::new();
        for (tok, team) in [(&ml, "ml"), (&research, "research")] {
            for i in 0..2 {
                let body = format!(
                    "priority: 0\n{}",
                    task(&format!("{team}-low{i}"), 2, "sleep 60")
                );
                low.push(s.submit(tok, &body).await["id"].as_u64().unwrap());
            }
        }
        for id in &low {
            s.wait_job(*id, 20, |j| state(j) == "running").await;
        }
        // research may not preempt: its urgent job waits.
        let r = s
            .submit(
                &research,
                &format!("priority: 100\n{}", task("r-urgent", 2, "sleep 60")),
            )
            .await["id"]
            .as_u64()
            .unwrap();
        s.wait_job(r, 20, |j| j["waiting"]["reason"] == "no_fit")
            .await;
        // ml may: one of its own low-priority jobs is preempted and the urgent job runs.
        let m = s
            .submit(
                &ml,
                &format!("priority: 100\n{}", task("m-urgent", 2, "sleep 60")),
            )
            .await["id"]
            .as_u64()
            .unwrap();
        s.wait_job(m, 20, |j| state(j) == "running").await;
        let mut preempted = 0;
        for id in &low {
            let ev = s.events(*id).await;
            if let Some(e) = ev.iter().find(|e| e["reason"] == "preempted") {
                assert_eq!(e["explanation"]["by"], m);
                let j = s.job(*id).await;
                assert_eq!(j["team"], "ml", "only the team's own jobs are preempted");
                preempted += 1;
            }
        }
        assert_eq!(preempted, 1);
        assert_eq!(state(&s.job(r).await), "pending");
    }
);

backends!(
    spend_is_booked_and_counts_against_the_budget,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let admin = s.admin.clone();
        // A budget of $0.0001: one GPU-second on local-a ($2/GPU-h) costs $0.00056.
        s.call(
            "PUT",
            "/v1/teams/research",
            &admin,
            Some(json!({"monthly_budget_usd": 0.0001}).to_string()),
        )
        .await;
        let research = s.token_for("research").await;
        let first = s.submit(&research, &task("first", 1, "sleep 1.5")).await["id"]
            .as_u64()
            .unwrap();
        s.wait_job(first, 20, |j| state(j) == "succeeded").await;
        let second = s.submit(&research, &task("second", 1, "true")).await["id"]
            .as_u64()
            .unwrap();
        let j = s
            .wait_job(second, 20, |j| j["waiting"]["reason"] == "over_budget")
            .await;
        assert!(
            j["waiting"]["detail"]["spent"].as_i64().unwrap() >= 500,
            "{j:#}"
        );
    }
);

backends!(a_plans_json_imports_as_commitments, |backend| async move {
    let s = TestServer::start(backend).await;
    let admin = s.admin.clone();
    let plan = json!({
        "horizon": {"start": "2026-01", "periods": 24, "period_hours": 730},
        "expected_cost_usd": 1.0,
        "commitments": [{"provider": "local-b", "accelerator": "H100", "term_periods": 24, "start_period": 0, "gpus": 3, "rate": 1.25}]
    });
    let (st, v) = s
        .call("POST", "/v1/commitments", &admin, Some(plan.to_string()))
        .await;
    assert_eq!(st.as_u16(), 200, "{v}");
    let (_, list) = s.call("GET", "/v1/commitments", &admin, None).await;
    let c = &list["commitments"][0];
    assert_eq!(
        (
            c["id"].as_str(),
            c["gpus"].as_u64(),
            c["per_gpu_hour"].as_i64()
        ),
        (Some("plan-local-b-H100-24p-0-0"), Some(3), Some(1_250_000))
    );
    let (_, p) = s.call("GET", "/v1/providers", &admin, None).await;
    assert_eq!(p["providers"][1]["committed_gpus_free"], 3);
    let (st, v) = s
        .call(
            "POST",
            "/v1/commitments",
            &admin,
            Some("{\"commitments\": 3}".into()),
        )
        .await;
    assert_eq!(
        (st.as_u16(), v["error"]["code"].as_str()),
        (400, Some("invalid_commitments"))
    );
    let ml = s.token_for("ml").await;
    let (st, _) = s
        .call("POST", "/v1/commitments", &ml, Some(plan.to_string()))
        .await;
    assert_eq!(st.as_u16(), 403, "only the admin imports commitments");
});
