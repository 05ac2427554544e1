//! Every error leaves as the JSON error body, including the framework's own answers: path, query and body
//! rejections, the router's 404 and 405 (which keeps its `Allow` header).

use crate::TestServer;
use reqwest::StatusCode;

/// Sends a request and returns the status, the headers and the body parsed as the API's error type.
async fn error(
    s: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (
    StatusCode,
    reqwest::header::HeaderMap,
    hedge_server::api_types::ErrorDetail,
) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = s.http.request(m, format!("{}{path}", s.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.body(b.to_owned());
    }
    let resp = req.send().await.unwrap();
    let (st, headers) = (resp.status(), resp.headers().clone());
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{method} {path}: {st}"
    );
    let text = resp.text().await.unwrap();
    let body: hedge_server::api_types::ErrorBody =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"));
    assert!(!body.error.message.is_empty(), "{method} {path}: {text}");
    (st, headers, body.error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_rejections_are_json_errors_naming_the_field() {
    let s = TestServer::start(crate::Backend::Sqlite).await;
    let admin = s.admin.clone();
    let a = Some(admin.as_str());
    /// Method, path, body, status, code, field.
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        u16,
        &'a str,
        Option<&'a str>,
    );
    let cases: &[Case] = &[
        ("GET", "/v1/jobs/ml", None, 400, "invalid_path", Some("id")),
        (
            "GET",
            "/v1/jobs/-1/events",
            None,
            400,
            "invalid_path",
            Some("id"),
        ),
        (
            "POST",
            "/v1/jobs/99999999999999999999999/cancel",
            None,
            400,
            "invalid_path",
            Some("id"),
        ),
        (
            "GET",
            "/v1/jobs?limit=lots",
            None,
            400,
            "invalid_query",
            Some("limit"),
        ),
        (
            "GET",
            "/v1/jobs?limit=5000",
            None,
            400,
            "invalid_query",
            Some("limit"),
        ),
        (
            "GET",
            "/v1/jobs?bogus=1",
            None,
            400,
            "invalid_query",
            Some("bogus"),
        ),
        (
            "GET",
            "/v1/jobs?state=sleeping",
            None,
            400,
            "invalid_query",
            Some("state"),
        ),
        (
            "GET",
            "/v1/jobs/1/logs?tail_bytes=x",
            None,
            400,
            "invalid_query",
            Some("tail_bytes"),
        ),
        (
            "PUT",
            "/v1/teams/ml",
            Some("{\"quotas\": [{\"max_gpus\": \"two\"}]}"),
            400,
            "invalid_json",
            Some("quotas[0].max_gpus"),
        ),
        (
            "PUT",
            "/v1/teams/ml",
            Some("{\"budget\": 3}"),
            400,
            "invalid_json",
            Some("budget"),
        ),
        (
            "PUT",
            "/v1/teams/ml",
            Some("not json"),
            400,
            "invalid_json",
            Some("body"),
        ),
        (
            "PUT",
            "/v1/admin/providers/local-a/faults",
            Some("{\"unreachable\": 3}"),
            400,
            "invalid_json",
            Some("unreachable"),
        ),
        ("GET", "/v1/jobs/12345", None, 404, "not_found", None),
        ("GET", "/v1/nothing-here", None, 404, "not_found", None),
        ("GET", "/nope", None, 404, "not_found", None),
    ];
    for (method, path, body, status, code, field) in cases {
        let (st, _, e) = error(&s, method, path, a, *body).await;
        assert_eq!(
            (st.as_u16(), e.code.as_str(), e.field.as_deref()),
            (*status, *code, *field),
            "{method} {path}: {e:?}"
        );
    }
    // The body limit: 413 naming the body.
    let big = "x".repeat(5000);
    let (st, _, e) = error(&s, "PUT", "/v1/teams/ml", a, Some(&big)).await;
    assert_eq!(
        (st.as_u16(), e.code.as_str(), e.field.as_deref()),
        (413, "body_too_large", Some("body"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_405_is_a_json_error_and_keeps_allow() {
    let s = TestServer::start(crate::Backend::Sqlite).await;
    let admin = s.admin.clone();
    for (method, path, allow) in [
        ("DELETE", "/v1/jobs/1", vec!["GET", "HEAD"]),
        ("PUT", "/v1/jobs", vec!["GET", "HEAD", "POST"]),
        ("GET", "/v1/jobs/1/cancel", vec!["POST"]),
        (
            "DELETE",
            "/v1/admin/providers/local-a/faults",
            vec!["GET", "HEAD", "PUT"],
        ),
    ] {
        let (st, headers, e) = error(&s, method, path, Some(&admin), None).await;
        assert_eq!(
            (st, e.code.as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            "{method} {path}"
        );
        let mut got: Vec<String> = headers
            .get("allow")
            .unwrap()
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        got.sort();
        assert_eq!(got, allow, "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route_with_its_methods_and_typed_ids() {
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
    for line in src
        .lines()
        .filter(|l| l.trim_start().starts_with(".route(\""))
    {
        let path = line.split('"').nth(1).unwrap();
        for m in ["get", "post", "put", "delete", "patch"] {
            let routed = [" ", "."]
                .iter()
                .any(|pre| line.contains(&format!("{pre}{m}(")));
            assert_eq!(
                doc["paths"][path].get(m).is_some(),
                routed,
                "{m} {path}: routed {routed}, documented the other way"
            );
        }
    }
    let get_job = &doc["paths"]["/v1/jobs/{id}"]["get"];
    assert_eq!(get_job["parameters"][0]["schema"]["type"], "integer");
    for st in ["200", "400", "401", "404"] {
        assert!(
            get_job["responses"].get(st).is_some(),
            "GET /v1/jobs/{{id}} documents {st}"
        );
    }
    let submit = &doc["paths"]["/v1/jobs"]["post"];
    assert!(
        submit["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
        "{submit:#}"
    );
    assert!(
        submit["responses"].get("409").is_some(),
        "a reused Idempotency-Key is documented"
    );
    // The broker's own vocabulary: its providers are the values a commitment may name.
    let provider = &doc["components"]["schemas"]["CommitmentInput"]["properties"]["provider"];
    assert_eq!(provider["enum"], serde_json::json!(["local-a", "local-b"]));
}

/// The binaries parse their arguments with clap: a bad or missing argument is exit code 2 and a message that
/// names it.
#[test]
fn binaries_name_the_bad_argument() {
    let run = |bin: &str, args: &[&str]| {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let server = env!("CARGO_BIN_EXE_hedge-server");
    let load = env!("CARGO_BIN_EXE_hedge-broker-load");
    let cases: &[(&str, &[&str], &str)] = &[
        (server, &[], "<CONFIG>"),
        (server, &["c.yaml", "loud"], "LOG_LEVEL"),
        (
            load,
            &["submit", "http://127.0.0.1:1", "t", "ten", "2"],
            "<REQUESTS>",
        ),
        (
            load,
            &["submit", "http://127.0.0.1:1", "t", "10"],
            "<CONCURRENCY>",
        ),
        (load, &["schedule", "many"], "<JOBS>"),
        (load, &["bogus"], "bogus"),
    ];
    for (bin, args, names) in cases {
        let (code, err) = run(bin, args);
        assert_eq!(code, Some(2), "{bin} {args:?}: {err}");
        assert!(
            err.contains(names),
            "{bin} {args:?} should name {names}: {err}"
        );
    }
    let (code, err) = run(server, &["/nonexistent/hedge.yaml", "warn"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("/nonexistent/hedge.yaml"), "{err}");
}
