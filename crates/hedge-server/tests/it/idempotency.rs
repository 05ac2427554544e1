//! `Idempotency-Key` on `POST /v1/jobs`: a retry with the same key and body answers the first job; another
//! body with that key is a 409 naming the header; the CLI's client reuses its key when a response is lost.

use crate::{backends, task, TestServer};
use reqwest::StatusCode;
use std::io::{Read, Write};

async fn post(
    s: &TestServer,
    token: &str,
    key: Option<&str>,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = s
        .http
        .post(format!("{}/v1/jobs", s.url))
        .bearer_auth(token)
        .body(body.to_owned());
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let r = req.send().await.unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(serde_json::Value::Null))
}

backends!(
    same_key_same_body_answers_the_first_job,
    |backend| async move {
        let s = TestServer::start(backend).await;
        let ml = s.token_for("ml").await;
        let body = task("once", 1, "sleep 30");
        let (st1, first) = post(&s, &ml, Some("key-1"), &body).await;
        assert_eq!(st1, StatusCode::CREATED, "{first}");
        assert_eq!(first["idempotency_key"], "key-1");
        let (st2, again) = post(&s, &ml, Some("key-1"), &body).await;
        assert_eq!(st2, StatusCode::CREATED, "{again}");
        assert_eq!(again["id"], first["id"], "the same job");
        assert_eq!(s.total_jobs().await, 1, "one job stored");
        // Another body under the same key: refused, naming the header; still one job.
        let (st3, e) = post(&s, &ml, Some("key-1"), &task("other", 2, "true")).await;
        assert_eq!(
            (
                st3.as_u16(),
                e["error"]["code"].as_str(),
                e["error"]["field"].as_str()
            ),
            (409, Some("idempotency_conflict"), Some("Idempotency-Key")),
            "{e}"
        );
        assert_eq!(s.total_jobs().await, 1);
        // Keys are per team: research may use the same key for its own job.
        let research = s.token_for("research").await;
        let (st4, theirs) = post(&s, &research, Some("key-1"), &body).await;
        assert_eq!(st4, StatusCode::CREATED, "{theirs}");
        assert_ne!(theirs["id"], first["id"]);
        // Without a key every POST is a new job; a malformed key is a 400 naming the header.
        let (_, a) = post(&s, &ml, None, &body).await;
        let (_, b) = post(&s, &ml, None, &body).await;
        assert_ne!(a["id"], b["id"]);
        let (st5, e) = post(&s, &ml, Some("has space"), &body).await;
        assert_eq!(
            (st5.as_u16(), e["error"]["field"].as_str()),
            (400, Some("Idempotency-Key")),
            "{e}"
        );
    }
);

/// A loopback proxy that forwards the first request to `upstream` and then drops the connection without
/// answering (a lost response); every later connection is passed through.
fn lossy_proxy(upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            // A failure here makes the client's request fail, which the test asserts on.
            let mut client = conn.expect("the proxy accepts a connection");
            let mut server =
                std::net::TcpStream::connect(upstream).expect("the proxy reaches the broker");
            if n == 0 {
                // Read the whole request, forward it, wait for the answer to start, and drop both.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let k = client.read(&mut chunk).unwrap_or(0);
                    buf.extend_from_slice(&chunk[..k]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                    if k == 0 {
                        break;
                    }
                }
                server.write_all(&buf).unwrap();
                let _ = server.read(&mut chunk);
                drop(client);
                continue;
            }
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_retries_a_lost_response_with_the_same_key() {
    let s = TestServer::start(crate::Backend::Sqlite).await;
    let ml = s.token_for("ml").await;
    let upstream: std::net::SocketAddr = s.url.trim_start_matches("http://").parse().unwrap();
    let proxy = lossy_proxy(upstream);
    let job = tokio::task::spawn_blocking(move || {
        let c = hedge_server::client::Client::new(&format!("http://{proxy}"), Some(ml)).retry(
            hedge_server::client::Retry {
                attempts: 3,
                first_backoff: std::time::Duration::from_millis(50),
            },
        );
        c.submit(task("retried", 1, "sleep 30")).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        s.total_jobs().await,
        1,
        "the lost first answer did not make a second job"
    );
    let stored = s.job(job.job.id).await;
    assert_eq!(
        stored["idempotency_key"],
        serde_json::json!(job.job.idempotency_key),
        "the retry carried the first request's key"
    );
    assert!(
        job.job
            .idempotency_key
            .as_deref()
            .is_some_and(|k| k.len() == 36),
        "a UUID: {:?}",
        job.job.idempotency_key
    );
}

/// Errors that are worth a retry, and those that are not.
#[test]
fn retryable_errors() {
    use hedge_server::client::ClientError;
    let api = |status| ClientError::Api {
        status,
        code: "x".into(),
        message: String::new(),
        field: None,
    };
    assert!(ClientError::Unreachable {
        url: String::new(),
        reason: String::new()
    }
    .is_retryable());
    assert!(api(503).is_retryable());
    assert!(!api(422).is_retryable());
    assert!(!api(400).is_retryable());
    assert!(!ClientError::NoToken.is_retryable());
}
