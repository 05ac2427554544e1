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
    exactly_the_jobs_a_budget_covers_launch,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let admin = s.admin.clone();
        // Each job reserves 1 h (the default `ledger.reserve_hours`) of its placement's cost: one GPU on local-a
        // is $2. A $5 budget covers K = 2 of N = 6 jobs submitted at once; running attempts keep counting
        // (accrued plus the rest of their reservation), so no later pass launches a third.
        s.call(
            "PUT",
            "/v1/teams/research",
            &admin,
            Some(json!({"monthly_budget_usd": 5.0}).to_string()),
        )
        .await;
        let research = s.token_for("research").await;
        let mut ids = Vec::new();
        for i in 0..6 {
            ids.push(
                s.submit(&research, &task(&format!("b{i}"), 1, "sleep 30"))
                    .await["id"]
                    .as_u64()
                    .unwrap(),
            );
        }
        let mut waiting = Vec::new();
        for id in &ids {
            let j = s
                .wait_job(*id, 20, |j| {
                    state(j) == "running" || j["waiting"]["reason"] == "over_budget"
                })
                .await;
            if state(&j) != "running" {
                waiting.push(j);
            }
        }
        // Several more passes: still exactly two.
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let mut running = 0;
        for id in &ids {
            let j = s.job(*id).await;
            if matches!(state(&j), "running" | "launching") {
                running += 1;
            } else {
                assert_eq!(j["waiting"]["reason"], "over_budget", "{j:#}");
                let d = &j["waiting"]["detail"];
                assert_eq!(
                    (d["budget"].as_i64(), d["needed"].as_i64()),
                    (Some(5_000_000), Some(2_000_000)),
                    "{j:#}"
                );
                assert!(d["spent"].as_i64().unwrap() >= 3_999_990, "{j:#}");
            }
        }
        assert_eq!((running, waiting.len()), (2, 4));
        // The ledger's gauges: two 1-GPU jobs on local-a bill $4/h; about $1 of the budget is left.
        let text = s
            .http
            .get(format!("{}/metrics", s.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let gauge = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}{{team=\"research\"}} ")))
                .and_then(|v| v.parse::<f64>().ok())
        };
        assert_eq!(
            gauge("hedge_team_spend_rate_usd_per_hour"),
            Some(4.0),
            "{text}"
        );
        let left = gauge("hedge_team_budget_remaining_usd").unwrap_or_else(|| panic!("{text}"));
        assert!((0.99..=1.0).contains(&left), "{left}");
        assert!(s
            .events(waiting[0]["id"].as_u64().unwrap())
            .await
            .iter()
            .any(|e| e["reason"] == "over_budget"));
    }
);

backends!(
    a_time_limit_is_what_a_launch_reserves,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let admin = s.admin.clone();
        // time_limit_seconds: 60 on one GPU of local-a ($2/GPU-h) reserves $0.033333: a $0.10 budget covers three.
        s.call(
            "PUT",
            "/v1/teams/research",
            &admin,
            Some(json!({"monthly_budget_usd": 0.1}).to_string()),
        )
        .await;
        let research = s.token_for("research").await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let body = format!(
                "time_limit_seconds: 60\n{}",
                task(&format!("t{i}"), 1, "sleep 30")
            );
            ids.push(s.submit(&research, &body).await["id"].as_u64().unwrap());
        }
        let mut running = 0;
        for id in &ids {
            let j = s
                .wait_job(*id, 20, |j| {
                    state(j) == "running" || j["waiting"]["reason"] == "over_budget"
                })
                .await;
            if state(&j) == "running" {
                running += 1;
                assert_eq!(j["spec"]["time_limit_seconds"], 60, "{j:#}");
            } else {
                assert_eq!(j["waiting"]["detail"]["needed"], 33_333, "{j:#}");
            }
        }
        assert_eq!(running, 3);
        let (st, e) = s
            .call(
                "POST",
                "/v1/jobs",
                &research,
                Some(format!("time_limit_seconds: 0\n{}", task("z", 1, "true"))),
            )
            .await;
        assert_eq!(
            (st.as_u16(), e["error"]["field"].as_str()),
            (400, Some("time_limit_seconds")),
            "{e}"
        );
    }
);

backends!(
    a_team_that_stops_at_its_budget_has_its_jobs_cancelled,
    |backend| async move {
        // Reservations of 1 s: a 1-GPU job on local-a ($2/GPU-h, $0.000556 a second) fits a $0.002 budget at
        // launch and reaches it after about 3.6 s of running.
        let s = TestServer::start_with(backend, |c| c.ledger.reserve_seconds = 1).await;
        let admin = s.admin.clone();
        let body = json!({"monthly_budget_usd": 0.002, "on_budget_exceeded": "stop"}).to_string();
        let (st, v) = s
            .call("PUT", "/v1/teams/research", &admin, Some(body))
            .await;
        assert_eq!(
            (st.as_u16(), v["on_budget_exceeded"].as_str()),
            (200, Some("stop")),
            "{v}"
        );
        s.call(
            "PUT",
            "/v1/teams/ml",
            &admin,
            Some(json!({"monthly_budget_usd": 0.002}).to_string()),
        )
        .await;
        let research = s.token_for("research").await;
        let ml = s.token_for("ml").await;
        let r = s.submit(&research, &task("r", 1, "sleep 60")).await["id"]
            .as_u64()
            .unwrap();
        let m = s.submit(&ml, &task("m", 1, "sleep 60")).await["id"]
            .as_u64()
            .unwrap();
        s.wait_job(r, 20, |j| state(j) == "running").await;
        s.wait_job(m, 20, |j| state(j) == "running").await;
        // `stop`: cancelled once its spend reaches the budget, the stop confirmed by the provider.
        let j = s.wait_job(r, 30, |j| state(j) == "cancelled").await;
        assert_eq!(j["attempts"][0]["status"], "cancelled", "{j:#}");
        let ev = s.events(r).await;
        let e = ev
            .iter()
            .find(|e| e["reason"] == "budget_exceeded")
            .unwrap_or_else(|| panic!("{ev:#?}"));
        assert!(e["explanation"]["spent"].as_i64().unwrap() >= 2000, "{e:#}");
        // `wait` (the default): the running job goes on past the budget.
        let (_, spend) = s.call("GET", "/v1/cost/spend?team=ml", &admin, None).await;
        assert!(spend["total"].as_i64().unwrap() >= 2000, "{spend:#}");
        assert_eq!(state(&s.job(m).await), "running");
    }
);

backends!(
    spend_is_booked_and_the_export_sums_to_the_ledger,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let admin = s.admin.clone();
        // An idle commitment on local-b accrues its fee; a job on local-a is booked when it ends.
        let c = json!([{"id": "c-b", "provider": "local-b", "accelerator": "H100", "region": null, "gpus": 1,
                    "per_gpu_hour": 1_000_000, "start": 1_700_000_000, "end": 2_000_000_000}]);
        let (st, v) = s
            .call("POST", "/v1/commitments", &admin, Some(c.to_string()))
            .await;
        assert_eq!(st.as_u16(), 200, "{v}");
        let research = s.token_for("research").await;
        // Two GPUs: the commitment has one, so this goes on demand to local-a.
        let id = s.submit(&research, &task("paid", 2, "sleep 1.2")).await["id"]
            .as_u64()
            .unwrap();
        let j = s.wait_job(id, 20, |j| state(j) == "succeeded").await;
        assert_eq!(j["attempts"][0]["provider"], "local-a", "{j:#}");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let to = s.broker.clock.now();
        let from = to.plus_seconds(-3600);
        let q = format!("from={}&to={}", civil(from), civil(to));
        let (st, spend) = s
            .call("GET", &format!("/v1/cost/spend?{q}"), &admin, None)
            .await;
        assert_eq!(st.as_u16(), 200, "{spend}");
        let team = |name: Option<&str>| {
            spend["teams"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["team"].as_str() == name)
                .map(|t| t["spend"].as_i64().unwrap())
        };
        // 2 GPUs × $2/GPU-h: $0.001111 per second, and at least one second ran.
        let research_spend = team(Some("research")).expect("research has spend");
        assert!(research_spend >= 1111, "{spend:#}");
        // The idle commitment's fee for the hour: 1 GPU × $1 = $1, charged to no team (nobody used it).
        assert_eq!(team(None), Some(1_000_000), "{spend:#}");
        assert_eq!(spend["total"].as_i64(), Some(research_spend + 1_000_000));
        // A team token sees its own team only.
        let (_, own) = s
            .call("GET", &format!("/v1/cost/spend?{q}"), &research, None)
            .await;
        assert_eq!(own["total"].as_i64(), Some(research_spend), "{own:#}");
        let (st, _) = s
            .call(
                "GET",
                &format!("/v1/cost/spend?{q}&team=ml"),
                &research,
                None,
            )
            .await;
        assert_eq!(st.as_u16(), 403);
        // The FOCUS export: its EffectiveCost and BilledCost sum to the ledger's total, to the micro-dollar.
        for version in ["1.0", "1.2"] {
            let resp = s
                .http
                .get(format!(
                    "{}/v1/cost/export?{q}&focus_version={version}",
                    s.url
                ))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            assert!(resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv"));
            let csv = resp.text().await.unwrap();
            let rows = parse_csv(&csv);
            let col = |name: &str| {
                rows[0]
                    .iter()
                    .position(|c| c == name)
                    .unwrap_or_else(|| panic!("no {name} column"))
            };
            let sum = |name: &str| rows[1..].iter().map(|r| micros(&r[col(name)])).sum::<i64>();
            assert_eq!(
                sum("EffectiveCost"),
                spend["total"].as_i64().unwrap(),
                "{csv}"
            );
            assert_eq!(sum("BilledCost"), spend["total"].as_i64().unwrap(), "{csv}");
            let x_team = col("x_team");
            assert!(rows[1..].iter().any(|r| r[x_team] == "research"
                && r[col("ChargeCategory")] == "Usage"
                && r[col("PricingCategory")] == "Standard"));
            assert!(rows[1..]
                .iter()
                .any(|r| r[col("CommitmentDiscountStatus")] == "Unused"
                    && r[col("CommitmentDiscountId")] == "c-b"));
            assert!(rows[1..]
                .iter()
                .any(|r| r[col("ChargeCategory")] == "Purchase"
                    && r[col("ChargeFrequency")] == "Recurring"));
        }
        let (st, e) = s
            .call("GET", "/v1/cost/export?focus_version=2.0", &admin, None)
            .await;
        assert_eq!(
            (st.as_u16(), e["error"]["field"].as_str()),
            (400, Some("focus_version"))
        );
        let (st, e) = s
            .call("GET", "/v1/cost/spend?from=2026-02-31", &admin, None)
            .await;
        assert_eq!(
            (st.as_u16(), e["error"]["field"].as_str()),
            (409, Some("from"))
        );
        let (st, e) = s
            .call("GET", "/v1/cost/spend?from=2026-2-1", &admin, None)
            .await;
        assert_eq!(
            (st.as_u16(), e["error"]["field"].as_str()),
            (400, Some("from"))
        );
        let (st, e) = s
            .call(
                "GET",
                "/v1/cost/commitments?from=2026-03-01&to=2026-02-01",
                &admin,
                None,
            )
            .await;
        assert_eq!(
            (st.as_u16(), e["error"]["field"].as_str()),
            (409, Some("to"))
        );
        let (st, _) = s.call("GET", "/v1/cost/export", &research, None).await;
        assert_eq!(st.as_u16(), 403);
        // Commitment metrics: the idle hour is all waste.
        let (st, m) = s
            .call("GET", &format!("/v1/cost/commitments?{q}"), &admin, None)
            .await;
        assert_eq!(st.as_u16(), 200, "{m}");
        let c = &m["commitments"][0];
        assert_eq!(
            (
                c["id"].as_str(),
                c["fee"].as_i64(),
                c["waste"].as_i64(),
                c["utilization"].as_f64()
            ),
            (Some("c-b"), Some(1_000_000), Some(1_000_000), Some(0.0))
        );
    }
);

fn civil(t: hedge_core::Timestamp) -> String {
    t.to_string()
}

fn micros(s: &str) -> i64 {
    let neg = s.starts_with('-');
    let (w, f) = s
        .trim_start_matches('-')
        .split_once('.')
        .unwrap_or((s, "0"));
    let v = w.parse::<i64>().unwrap() * 1_000_000 + format!("{f:0<6}")[..6].parse::<i64>().unwrap();
    if neg {
        -v
    } else {
        v
    }
}

/// RFC 4180 lines (quoted fields may hold commas and doubled quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let mut row = Vec::new();
        let (mut cur, mut quoted, mut chars) = (String::new(), false, line.chars().peekable());
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => row.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        row.push(cur);
        rows.push(row);
    }
    rows
}

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
