//! Integration tests of the broker: the real HTTP API over loopback, real local processes, real stores.
//! Tests written with [`backends!`] run once on SQLite and once on PostgreSQL (`HEDGE_TEST_DATABASE_URL`,
//! started by scripts/test; without it the PostgreSQL variants fail and say how to start one).

mod api;
mod auth;
mod crash;
mod errors;
mod failover;
mod fencing;
mod idempotency;
mod placement;
mod queue;
mod tasks;

use hedge_server::{Broker, ServerConfig, SystemClock};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Held by the tests that measure time (failover deadlines) and by the one that loads the machine most
/// (crash safety), so they do not run at the same time on a 2-core CI machine.
pub static TIMED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per store backend: `backends!(name, |backend| async move { .. })`.
#[macro_export]
macro_rules! backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)($crate::Backend::Postgres).await
            }
        }
    };
}

pub fn pg_url() -> String {
    // Tests have no CLI: they read their one setting from the environment.
    #[allow(clippy::disallowed_methods)]
    let url = std::env::var("HEDGE_TEST_DATABASE_URL").unwrap_or_default();
    if url.trim().is_empty() {
        panic!(
            "HEDGE_TEST_DATABASE_URL is not set. Start a server with\n\n    eval \"$(bash scripts/pg-test-server start)\"\n\nor run bash scripts/test."
        );
    }
    url
}

/// A server running in this process on 127.0.0.1:0, with its own data directory (and PostgreSQL schema).
pub struct TestServer {
    pub url: String,
    pub admin: String,
    pub broker: Arc<Broker>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    schema: Option<String>,
}

/// Two local providers: `local-a` (4 H100, $2/GPU-h) and `local-b` (4 H100, $3/GPU-h).
pub fn two_providers(dir: &std::path::Path) -> ServerConfig {
    ServerConfig::parse(
        &format!(
            r#"
data_dir: {}
reconcile_interval_ms: 50
health: {{ interval_ms: 500, failure_threshold: 3, missed_heartbeats: 2 }}
fault_injection: true
body_limit_bytes: 4096
providers:
  - {{ name: local-a, gpus: 4, accelerator: H100, on_demand_per_gpu_hour: 2.0 }}
  - {{ name: local-b, gpus: 4, accelerator: H100, on_demand_per_gpu_hour: 3.0 }}
teams:
  - {{ id: ml }}
  - {{ id: research }}
"#,
            dir.display()
        ),
        "test",
    )
    .unwrap()
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, edit: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = two_providers(dir.path());
        edit(&mut config);
        let (store, schema): (Arc<dyn hedge_store::Store>, Option<String>) = match backend {
            Backend::Sqlite => (hedge_store::open(&config.store_url()).await.unwrap(), None),
            Backend::Postgres => {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let schema = format!(
                    "hedge_srv_{}_{}",
                    std::process::id(),
                    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                let opts = hedge_store::PgOptions {
                    schema: Some(schema.clone()),
                    max_connections: 8,
                };
                let s = hedge_store::PgStore::connect_with(&pg_url(), &opts)
                    .await
                    .expect("connect to PostgreSQL");
                (Arc::new(s), Some(schema))
            }
        };
        let broker = Broker::with_store(config, store, SystemClock::shared())
            .await
            .unwrap();
        let admin = std::fs::read_to_string(dir.path().join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(hedge_server::serve(broker.clone(), listener, async move {
            let _ = rx.await;
        }));
        TestServer {
            url,
            admin,
            broker,
            http: reqwest::Client::new(),
            _dir: dir,
            stop: Some(tx),
            schema,
        }
    }

    pub async fn token_for(&self, team: &str) -> String {
        let (st, v) = self
            .call(
                "POST",
                &format!("/v1/teams/{team}/tokens"),
                &self.admin.clone(),
                Some(json!({"label": "test"}).to_string()),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    /// Any request; returns the status and the JSON body (Null when the body is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.unwrap();
        let st = resp.status();
        let text = resp.text().await.unwrap();
        (st, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn submit(&self, token: &str, yaml: &str) -> Value {
        let (st, v) = self
            .call("POST", "/v1/jobs", token, Some(yaml.to_owned()))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v
    }

    pub async fn job(&self, id: u64) -> Value {
        let (st, v) = self
            .call("GET", &format!("/v1/jobs/{id}"), &self.admin.clone(), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }

    pub async fn events(&self, id: u64) -> Vec<Value> {
        let (_, v) = self
            .call(
                "GET",
                &format!("/v1/jobs/{id}/events"),
                &self.admin.clone(),
                None,
            )
            .await;
        v["events"].as_array().cloned().unwrap_or_default()
    }

    /// Polls until `pred(job)` holds, or panics after `secs` seconds.
    // A test bounds its wait by the wall clock (tokio::time::Instant::now); the broker it drives reads none.
    #[allow(clippy::disallowed_methods)]
    pub async fn wait_job(&self, id: u64, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let j = self.job(id).await;
            if pred(&j) {
                return j;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "job {id} did not get there in {secs} s: {j:#}\nevents: {:#}",
                    json!(self.events(id).await)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn total_jobs(&self) -> usize {
        let (_, v) = self
            .call("GET", "/v1/jobs?limit=1000", &self.admin.clone(), None)
            .await;
        v["jobs"].as_array().map_or(0, Vec::len)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        kill_attempts(self._dir.path());
        if let Some(schema) = self.schema.take() {
            let url = pg_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok((c, conn)) =
                        tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(conn);
                        let _ = c
                            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .await;
                    }
                })
            })
            .join();
        }
    }
}

pub fn state(j: &Value) -> &str {
    j["state"].as_str().unwrap_or("")
}

pub fn task(name: &str, gpus: u32, run: &str) -> String {
    format!("name: {name}\nresources: {{accelerators: H100:{gpus}}}\nrun: {run:?}\n")
}

/// Kills the process group of every attempt under `data_dir` (tests leave no process behind).
pub fn kill_attempts(data_dir: &std::path::Path) {
    let Ok(providers) = std::fs::read_dir(data_dir.join("providers")) else {
        return;
    };
    for p in providers.flatten() {
        let Ok(attempts) = std::fs::read_dir(p.path().join("attempts")) else {
            continue;
        };
        for a in attempts.flatten() {
            if std::fs::metadata(a.path().join("exit")).is_ok() {
                continue;
            }
            if let Some(pid) = std::fs::read_to_string(a.path().join("pid"))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}
