//! Team A can neither see nor cancel team B's jobs, and no token ever reaches the server's logs.

use crate::{backends, task, TestServer};
use reqwest::StatusCode;
use std::io::BufRead;

backends!(
    teams_cannot_see_or_cancel_each_others_jobs,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let ml = s.token_for("ml").await;
        let research = s.token_for("research").await;
        let j = s.submit(&ml, &task("private", 1, "sleep 30")).await;
        let id = j["id"].as_u64().unwrap();
        let other = s.submit(&research, &task("theirs", 1, "sleep 30")).await;
        for path in [
            format!("/v1/jobs/{id}"),
            format!("/v1/jobs/{id}/events"),
            format!("/v1/jobs/{id}/logs"),
        ] {
            let (st, v) = s.call("GET", &path, &research, None).await;
            assert_eq!(
                (st, v["error"]["code"].as_str()),
                (StatusCode::NOT_FOUND, Some("not_found")),
                "{path}: {v}"
            );
        }
        let (st, _) = s
            .call("POST", &format!("/v1/jobs/{id}/cancel"), &research, None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (_, list) = s.call("GET", "/v1/jobs", &research, None).await;
        let ids: Vec<u64> = list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_u64().unwrap())
            .collect();
        assert_eq!(
            ids,
            vec![other["id"].as_u64().unwrap()],
            "a team lists only its own jobs"
        );
        let (st, _) = s.call("GET", "/v1/jobs?team=ml", &research, None).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = s
            .call(
                "POST",
                "/v1/teams/research/tokens",
                &research,
                Some("{}".into()),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "only the admin issues tokens");
        // The owner still can, and the job was never touched.
        let (st, v) = s.call("GET", &format!("/v1/jobs/{id}"), &ml, None).await;
        assert_eq!(st, StatusCode::OK);
        assert_ne!(crate::state(&v), "cancelled");
        let (st, _) = s
            .call("POST", &format!("/v1/jobs/{id}/cancel"), &ml, None)
            .await;
        assert_eq!(st, StatusCode::OK);
    }
);

/// Runs the real server binary, exercises every path that handles a token (bootstrap, issue, use, reject),
/// and greps everything it wrote for the secrets.
#[test]
fn tokens_never_appear_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::crash::free_port();
    let cfg = dir.path().join("hedge.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:{port}\ndata_dir: {}\nproviders: [{{name: local-a, gpus: 2, accelerator: H100, on_demand_per_gpu_hour: 1}}]\nteams: [{{id: ml}}]\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("server.log");
    let mut server = crate::crash::Server::spawn(&cfg, &log);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = std::fs::read_to_string(dir.path().join("data/admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let url = format!("http://127.0.0.1:{port}");
    let team_token = rt.block_on(async {
        let c = reqwest::Client::new();
        let v: serde_json::Value = c
            .post(format!("{url}/v1/teams/ml/tokens"))
            .bearer_auth(&admin)
            .body("{}")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let t = v["token"].as_str().unwrap().to_owned();
        let r = c
            .post(format!("{url}/v1/jobs"))
            .bearer_auth(&t)
            .body(task("t", 1, "echo hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = c
            .get(format!("{url}/v1/jobs"))
            .bearer_auth(format!("{t}x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = c
            .get(format!("{url}/v1/jobs?team={t}"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        t
    });
    server.kill();
    let mut lines = 0;
    for line in std::io::BufReader::new(std::fs::File::open(&log).unwrap()).lines() {
        let line = line.unwrap();
        lines += 1;
        for secret in [&admin, &team_token] {
            assert!(
                !line.contains(secret.as_str()),
                "a token leaked into the log: {line}"
            );
            // Not even a long piece of one.
            let piece = &secret[secret.len() - 16..];
            assert!(
                !line.contains(piece),
                "part of a token leaked into the log: {line}"
            );
        }
    }
    assert!(lines >= 5, "the server logged requests ({lines} lines)");
    crate::kill_attempts(&dir.path().join("data"));
}

/// The scheme is case-insensitive (RFC 9110), and every 401 says which scheme to use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_scheme_is_case_insensitive_and_401s_carry_www_authenticate() {
    let s = TestServer::start(crate::Backend::Sqlite).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = s
            .http
            .get(format!("{}/v1/jobs", s.url))
            .header("authorization", format!("{scheme} {}", s.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "scheme {scheme}");
    }
    let wrong = [
        None,
        Some("Basic abc".to_owned()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Token {}", s.admin)),
        Some("Bearer nope".to_owned()),
    ];
    for auth in wrong {
        for (method, path) in [
            ("GET", "/v1/jobs"),
            ("POST", "/v1/jobs"),
            ("GET", "/v1/jobs/1"),
            ("PUT", "/v1/teams/ml"),
            ("GET", "/v1/providers"),
        ] {
            let mut req = s.http.request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", s.url),
            );
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            let r = req.send().await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}"
            );
            assert_eq!(
                r.headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer"),
                "{method} {path}"
            );
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(
                (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
                (Some("unauthorized"), Some("Authorization"))
            );
        }
    }
}
