//! Bad input is a 4xx JSON error naming the field, and nothing is stored; the OpenAPI document lists every
//! route.

use crate::{backends, task, TestServer};
use reqwest::StatusCode;

backends!(
    bad_input_is_rejected_naming_the_field_and_nothing_is_stored,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let ml = s.token_for("ml").await;
        let admin = s.admin.clone();
        let big = format!(
            "name: big\nresources: {{accelerators: H100:1}}\nrun: echo {}\n",
            "x".repeat(5000)
        );
        let cases: Vec<(&str, String, &str, u16, &str, &str)> = vec![
            (
                "invalid YAML",
                "name: [unclosed\nrun: x".into(),
                &ml,
                400,
                "invalid_yaml",
                "body",
            ),
            (
                "unknown accelerator",
                "resources: {accelerators: Z999:1}\nrun: x".into(),
                &ml,
                400,
                "unknown_accelerator",
                "resources.accelerators",
            ),
            (
                "zero GPUs",
                "resources: {accelerators: H100:0}\nrun: x".into(),
                &ml,
                400,
                "invalid_accelerators",
                "resources.accelerators",
            ),
            (
                "negative GPUs",
                "resources: {accelerators: H100:-1}\nrun: x".into(),
                &ml,
                400,
                "invalid_accelerators",
                "resources.accelerators",
            ),
            (
                "body over the limit",
                big,
                &ml,
                413,
                "body_too_large",
                "body",
            ),
            (
                "unknown team",
                "team: nobody\nresources: {accelerators: H100:1}\nrun: x".into(),
                &admin,
                404,
                "unknown_team",
                "team",
            ),
            (
                "another team",
                "team: research\nresources: {accelerators: H100:1}\nrun: x".into(),
                &ml,
                403,
                "forbidden",
                "team",
            ),
            (
                "no run",
                "resources: {accelerators: H100:1}".into(),
                &ml,
                400,
                "invalid_task",
                "run",
            ),
            (
                "bad priority",
                "priority: urgent\nrun: x".into(),
                &ml,
                400,
                "invalid_priority",
                "priority",
            ),
        ];
        for (what, body, token, status, code, field) in cases {
            let (st, v) = s.call("POST", "/v1/jobs", token, Some(body)).await;
            assert_eq!(st.as_u16(), status, "{what}: {v}");
            assert_eq!(v["error"]["code"], code, "{what}: {v}");
            assert_eq!(v["error"]["field"], field, "{what}: {v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{what}: {v}"
            );
        }
        let (st, v) = s
            .call(
                "POST",
                "/v1/jobs",
                "not-a-token",
                Some(task("t", 1, "true")),
            )
            .await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
        assert_eq!(s.total_jobs().await, 0, "nothing was stored");
        let (_, m) = s.call("GET", "/metrics", "", None).await;
        assert_eq!(m, serde_json::Value::Null, "metrics are text");
        let text = s
            .http
            .get(format!("{}/metrics", s.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("hedge_submits_rejected_total 9"), "{text}");
        assert!(text.contains("hedge_jobs{state=\"pending\"} 0"), "{text}");
        assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
        // Every line is a comment (# HELP, # TYPE, # UNIT, # EOF) or `name{labels} value`.
        for line in text.lines() {
            if line.starts_with("# ") {
                assert!(
                    ["# HELP ", "# TYPE ", "# UNIT ", "# EOF"]
                        .iter()
                        .any(|p| line.starts_with(p)),
                    "{line}"
                );
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("no value: {line}"));
            assert!(value.parse::<f64>().is_ok(), "value of {line}");
            let name = series.split('{').next().unwrap();
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "name of {line}"
            );
            if let Some(labels) = series.strip_prefix(name) {
                assert!(
                    labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                    "labels of {line}"
                );
            }
        }
        for name in [
            "hedge_jobs_submitted_total",
            "hedge_launches_total",
            "hedge_failovers_total",
            "hedge_preemptions_total",
            "hedge_reconcile_passes_total",
            "hedge_reconcile_errors_total",
            "hedge_reconcile_last_pass_seconds",
            "hedge_provider_healthy{provider=\"local-a\"}",
            "hedge_provider_gpus_in_use{provider=\"local-b\"}",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{name} "))),
                "{name} missing from\n{text}"
            );
        }
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_and_healthz_answers() {
    let s = TestServer::start(crate::Backend::Sqlite).await;
    let doc: serde_json::Value = s
        .http
        .get(format!("{}/v1/openapi.json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let src = include_str!("../../src/api.rs");
    let mut n = 0;
    for line in src
        .lines()
        .filter(|l| l.trim_start().starts_with(".route(\""))
    {
        let path = line.split('"').nth(1).unwrap();
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} is not in the OpenAPI document"
        );
        n += 1;
    }
    assert!(n >= 14, "found only {n} routes");
    let h: serde_json::Value = s
        .http
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");
}

backends!(submit_run_logs_and_cancel, |backend| async move {
    let s = TestServer::start(backend).await;
    let ml = s.token_for("ml").await;
    let j = s
        .submit(
            &ml,
            &task(
                "hello",
                1,
                "sleep 0.4; echo hello from $HEDGE_PROVIDER job $HEDGE_JOB_ID",
            ),
        )
        .await;
    let id = j["id"].as_u64().unwrap();
    let done = s.wait_job(id, 20, |j| crate::state(j) == "succeeded").await;
    assert_eq!(
        done["attempts"][0]["provider"], "local-a",
        "the cheaper provider"
    );
    let (_, logs) = s
        .call("GET", &format!("/v1/jobs/{id}/logs"), &ml, None)
        .await;
    assert_eq!(logs["stdout"], format!("hello from local-a job {id}\n"));
    let reasons: Vec<String> = s
        .events(id)
        .await
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        reasons,
        [
            "submitted",
            "placing",
            "placed_on_demand",
            "started",
            "succeeded"
        ]
        .map(String::from)
        .to_vec()
    );
    let placed = &s.events(id).await[2];
    assert_eq!(
        placed["explanation"]["chosen"]["provider"], "local-a",
        "the placement explanation is stored"
    );

    let j = s.submit(&ml, &task("long", 1, "sleep 60")).await;
    let id = j["id"].as_u64().unwrap();
    s.wait_job(id, 20, |j| crate::state(j) == "running").await;
    let (st, v) = s
        .call("POST", &format!("/v1/jobs/{id}/cancel"), &ml, None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["state"], "cancelling",
        "reported cancelled only once the driver confirmed it"
    );
    let j = s.wait_job(id, 20, |j| crate::state(j) == "cancelled").await;
    assert_eq!(j["attempts"][0]["status"], "cancelled");
    let (st, v) = s
        .call("POST", &format!("/v1/jobs/{id}/cancel"), &ml, None)
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_finished"))
    );
});

/// The CLI's client: a clear error when no server answers.
#[test]
fn client_says_when_the_server_is_unreachable() {
    let port = crate::crash::free_port();
    let c =
        hedge_server::client::Client::new(&format!("http://127.0.0.1:{port}"), Some("t".into()));
    let e = c.jobs(&Default::default()).unwrap_err();
    assert!(
        matches!(e, hedge_server::client::ClientError::Unreachable { .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "cannot reach the Hedge server at http://127.0.0.1:{port}"
        )),
        "{msg}"
    );
    assert!(
        msg.contains("hedge serve") && msg.contains("HEDGE_URL"),
        "{msg}"
    );
    let e = hedge_server::client::Client::new("http://127.0.0.1:1", None)
        .jobs(&Default::default())
        .unwrap_err();
    assert!(e.to_string().contains("HEDGE_TOKEN"), "{e}");
}

/// The CLI's client against a real server: submit, list, show, logs, cancel, and an API error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_round_trip() {
    let s = TestServer::start(crate::Backend::Sqlite).await;
    let ml = s.token_for("ml").await;
    let url = s.url.clone();
    tokio::task::spawn_blocking(move || {
        let c = hedge_server::client::Client::new(&url, Some(ml));
        use hedge_server::api_types::JobStateName;
        let j = c.submit(task("cli", 1, "echo from-cli; sleep 30")).unwrap();
        let id = j.job.id;
        assert_eq!(j.job.spec.name.as_deref(), Some("cli"));
        assert_eq!(c.jobs(&Default::default()).unwrap().jobs[0].id, id);
        for _ in 0..200 {
            if c.job(id).unwrap().job.state == JobStateName::Running {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(c.logs(id, 1000).unwrap().stdout, "from-cli\n");
        let cancelling = c.cancel(id).unwrap();
        assert_eq!(cancelling.state, JobStateName::Cancelling, "{cancelling:?}");
        for _ in 0..400 {
            if c.job(id).unwrap().job.state == JobStateName::Cancelled {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert_eq!(c.job(id).unwrap().job.state, JobStateName::Cancelled);
        let e = c
            .submit("resources: {accelerators: H100:0}\nrun: x".into())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("field resources.accelerators") && e.contains("HTTP 400"),
            "{e}"
        );
        assert!(c
            .events(id)
            .unwrap()
            .events
            .iter()
            .any(|e| e.reason == "cancelled_by_user"));
        let p = c.providers().unwrap();
        assert_eq!(
            p.providers
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["local-a", "local-b"]
        );
    })
    .await
    .unwrap();
}

backends!(
    commitment_imports_are_checked_and_all_or_nothing,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let admin = s.admin.clone();
        let now = 1_796_000_000i64;
        let good = |id: &str| serde_json::json!({"id": id, "provider": "local-b", "accelerator": "H100", "gpus": 2, "per_gpu_hour": 1_000_000, "start": now, "end": now + 86_400});
        let with = |k: &str, v: serde_json::Value| {
            let mut c = good("bad");
            c[k] = v;
            c
        };
        let cases = vec![
            (
                "unknown provider",
                with("provider", "azure".into()),
                422,
                "commitments[1].provider",
            ),
            (
                "accelerator not offered",
                with("accelerator", "A100".into()),
                422,
                "commitments[1].accelerator",
            ),
            (
                "zero GPUs",
                with("gpus", 0.into()),
                422,
                "commitments[1].gpus",
            ),
            (
                "negative GPUs",
                with("gpus", (-3).into()),
                422,
                "commitments[1].gpus",
            ),
            (
                "start before 2000",
                with("start", 100.into()),
                422,
                "commitments[1].start",
            ),
            (
                "start in 30 years",
                with("start", (now + 30 * 366 * 86_400).into()),
                422,
                "commitments[1].start",
            ),
            (
                "end before start",
                with("end", (now - 1).into()),
                409,
                "commitments[1].end",
            ),
            (
                "duplicate in the batch",
                good("ok-0"),
                409,
                "commitments[1].id",
            ),
        ];
        for (what, bad, status, field) in cases {
            let body = serde_json::json!([good("ok-0"), bad]);
            let (st, v) = s
                .call("POST", "/v1/commitments", &admin, Some(body.to_string()))
                .await;
            assert_eq!(
                (st.as_u16(), v["error"]["field"].as_str()),
                (status, Some(field)),
                "{what}: {v}"
            );
            let (_, list) = s.call("GET", "/v1/commitments", &admin, None).await;
            assert_eq!(
                list["commitments"].as_array().unwrap().len(),
                0,
                "{what}: nothing stored"
            );
        }
        let (st, v) = s
            .call(
                "POST",
                "/v1/commitments",
                &admin,
                Some(serde_json::json!([good("c1")]).to_string()),
            )
            .await;
        assert_eq!(st.as_u16(), 200, "{v}");
        // Already stored: a 409 naming the id, never a silent overwrite.
        let mut changed = good("c1");
        changed["gpus"] = 4.into();
        let (st, v) = s
            .call(
                "POST",
                "/v1/commitments",
                &admin,
                Some(serde_json::json!({"commitments": [good("c2"), changed]}).to_string()),
            )
            .await;
        assert_eq!(
            (
                st.as_u16(),
                v["error"]["code"].as_str(),
                v["error"]["field"].as_str()
            ),
            (409, Some("duplicate_commitment"), Some("commitments[1].id")),
            "{v}"
        );
        let (_, list) = s.call("GET", "/v1/commitments", &admin, None).await;
        assert_eq!(list["commitments"].as_array().unwrap().len(), 1, "{list}");
        assert_eq!(
            list["commitments"][0]["gpus"], 2,
            "the stored commitment was not replaced"
        );
    }
);
