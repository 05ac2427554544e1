//! Confirmed cancellation and fencing: a job is reported cancelled, and its GPUs freed, only once its
//! processes are gone (also when it traps SIGTERM); an attempt left behind by a failover is persisted as
//! `orphaned` and stopped, confirmed, once its provider answers again — with or without a broker restart in
//! between — so after a partition heals exactly one process of the job is alive.

// These tests bound their waits by the wall clock; the broker under test reads its own Clock.
#![allow(clippy::disallowed_methods)]

use crate::crash::{free_port, Server};
use crate::{backends, state, TestServer};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// Live (non-zombie) processes of job `job` started under `data_dir`, found by their environment.
pub fn live_processes_of_job(data_dir: &Path, job: u64) -> Vec<u32> {
    let job_var = format!("HEDGE_JOB_ID={job}");
    let dir_prefix = format!("HEDGE_ATTEMPT_DIR={}", data_dir.display());
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(") ")
            .and_then(|(_, r)| r.chars().next())
            .is_none_or(|c| c == 'Z' || c == 'X');
        if zombie {
            continue;
        }
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let env = String::from_utf8_lossy(&env);
        let mut vars = env.split('\0');
        let (mut has_job, mut has_dir) = (false, false);
        for v in &mut vars {
            has_job |= v == job_var;
            has_dir |= v.starts_with(&dir_prefix);
        }
        if has_job && has_dir {
            out.push(pid);
        }
    }
    out
}

/// The job's processes, counted by their `sleep` leaf (one per live attempt: the wrapper and `sh run.sh`
/// are its parents), so "one attempt alive" reads as 1.
fn live_attempts_of_job(data_dir: &Path, job: u64) -> usize {
    live_processes_of_job(data_dir, job)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        })
        .count()
}

fn gpus_in_use(providers: &Value, name: &str) -> u64 {
    providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()["gpus_in_use"]
        .as_u64()
        .unwrap()
}

backends!(
    a_job_that_traps_sigterm_is_cancelled_only_once_its_process_is_gone,
    |backend| async move {
        let s = TestServer::start_with(backend, |c| c.cancel_grace = Duration::from_secs(2)).await;
        let ml = s.token_for("ml").await;
        let data_dir = s.broker.config.data_dir.clone();
        let script = "trap 'echo got-term' TERM; while :; do sleep 0.1; done";
        let id = s.submit(&ml, &crate::task("stubborn", 4, script)).await["id"]
            .as_u64()
            .unwrap();
        s.wait_job(id, 20, |j| state(j) == "running").await;
        assert!(!live_processes_of_job(&data_dir, id).is_empty());
        let (st, v) = s
            .call("POST", &format!("/v1/jobs/{id}/cancel"), &ml, None)
            .await;
        assert_eq!(st.as_u16(), 200, "{v}");
        assert_eq!(
            v["state"], "cancelling",
            "a running job is cancelling until its work is confirmed gone"
        );
        let t0 = Instant::now();
        // Within the grace the process traps SIGTERM and lives on: the job stays cancelling, its 4 GPUs used.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(state(&s.job(id).await), "cancelling");
        assert!(
            !live_processes_of_job(&data_dir, id).is_empty(),
            "the job traps SIGTERM"
        );
        let (_, p) = s.call("GET", "/v1/providers", &ml, None).await;
        assert_eq!(
            gpus_in_use(&p, "local-a"),
            4,
            "GPUs count as used until the cancel is confirmed: {p:#}"
        );
        // A new 4-GPU job cannot use local-a's GPUs yet: it goes to the dearer local-b.
        let other = s.submit(&ml, &crate::task("next", 4, "sleep 30")).await["id"]
            .as_u64()
            .unwrap();
        let j = s.wait_job(other, 20, |j| state(j) == "running").await;
        assert_eq!(j["attempts"][0]["provider"], "local-b", "{j:#}");
        // After the grace: SIGKILL, then the confirmation.
        let j = s.wait_job(id, 20, |j| state(j) == "cancelled").await;
        assert!(
            live_processes_of_job(&data_dir, id).is_empty(),
            "cancelled is reported only once the process is gone"
        );
        assert!(
            t0.elapsed() >= Duration::from_secs(2),
            "not before the grace: {:?}",
            t0.elapsed()
        );
        assert_eq!(j["attempts"][0]["status"], "cancelled");
        let ev = s.events(id).await;
        let reasons: Vec<&str> = ev.iter().map(|e| e["reason"].as_str().unwrap()).collect();
        let n = reasons.len();
        assert_eq!(
            &reasons[n - 2..],
            ["cancelled_by_user", "cancel_confirmed"],
            "{reasons:?}"
        );
        assert_eq!(ev[n - 2]["to"], "cancelling");
        let log = s
            .call("GET", &format!("/v1/jobs/{id}/logs"), &ml, None)
            .await
            .1;
        assert!(
            log["stdout"]
                .as_str()
                .unwrap_or_default()
                .contains("got-term"),
            "the job got SIGTERM first: {log}"
        );
        let (_, p) = s.call("GET", "/v1/providers", &ml, None).await;
        assert_eq!(
            gpus_in_use(&p, "local-a"),
            0,
            "freed after the confirmation: {p:#}"
        );
        // Cancelling again is idempotent on a cancelling job and a conflict on a cancelled one.
        let (st, _) = s
            .call("POST", &format!("/v1/jobs/{id}/cancel"), &ml, None)
            .await;
        assert_eq!(st.as_u16(), 409);
    }
);

backends!(
    an_orphan_left_by_a_partition_is_stopped_when_its_provider_answers,
    |backend| async move {
        let _timed = crate::TIMED.lock().await;
        let s = TestServer::start(backend).await;
        let admin = s.admin.clone();
        let ml = s.token_for("ml").await;
        let data_dir = s.broker.config.data_dir.clone();
        let id = s
            .submit(&ml, &crate::task("partitioned", 1, "sleep 120"))
            .await["id"]
            .as_u64()
            .unwrap();
        let j = s.wait_job(id, 20, |j| state(j) == "running").await;
        assert_eq!(j["attempts"][0]["provider"], "local-a");
        // 1. local-a stops answering: the job moves to local-b.
        let (st, v) = s
            .call(
                "PUT",
                "/v1/admin/providers/local-a/faults",
                &admin,
                Some(json!({"unreachable": true}).to_string()),
            )
            .await;
        assert_eq!(st.as_u16(), 200, "{v}");
        let j = s
            .wait_job(id, 20, |j| {
                state(j) == "running" && j["attempts"].as_array().unwrap().len() == 2
            })
            .await;
        assert_eq!(j["attempts"][1]["provider"], "local-b");
        assert_eq!(
            j["attempts"][0]["status"], "orphaned",
            "the old attempt is persisted as an orphan: {j:#}"
        );
        // During the partition both attempts may run.
        wait_until(
            20,
            || live_attempts_of_job(&data_dir, id) == 2,
            "both attempts alive during the partition",
        )
        .await;
        let (_, p) = s.call("GET", "/v1/providers", &ml, None).await;
        assert_eq!(
            gpus_in_use(&p, "local-a"),
            1,
            "the orphan's GPU counts until it is stopped: {p:#}"
        );
        // 3. local-a answers again: the orphan is stopped, confirmed; exactly one process of the job is alive.
        s.call(
            "PUT",
            "/v1/admin/providers/local-a/faults",
            &admin,
            Some("{}".into()),
        )
        .await;
        let j = s
            .wait_job(id, 20, |j| j["attempts"][0]["status"] == "cancelled")
            .await;
        assert_eq!(state(&j), "running");
        assert_eq!(
            live_attempts_of_job(&data_dir, id),
            1,
            "exactly one attempt of the job is alive after the partition heals"
        );
        let (_, p) = s.call("GET", "/v1/providers", &ml, None).await;
        assert_eq!(gpus_in_use(&p, "local-a"), 0, "{p:#}");
    }
);

async fn wait_until(secs: u64, mut cond: impl FnMut() -> bool, what: &str) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The partition test across a broker crash: the orphan is in the store, so the restarted broker stops it.
#[test]
fn an_orphan_is_stopped_after_the_broker_is_sigkilled_and_restarted_sqlite() {
    let _timed = crate::TIMED.blocking_lock();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let cfg = dir.path().join("hedge.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:{port}\ndata_dir: {}\nreconcile_interval_ms: 50\nfault_injection: true\n\
             health: {{ interval_ms: 500, failure_threshold: 3, missed_heartbeats: 2 }}\n\
             providers:\n  - {{ name: local-a, gpus: 4, accelerator: H100, on_demand_per_gpu_hour: 2.0 }}\n\
             \x20 - {{ name: local-b, gpus: 4, accelerator: H100, on_demand_per_gpu_hour: 3.0 }}\nteams:\n  - {{ id: ml }}\n",
            data.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("server.log");
    let mut server = Server::spawn(&cfg, &log);
    let base = format!("http://127.0.0.1:{port}");
    let admin = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let http = reqwest::blocking::Client::new();
    let call = |method: &str, path: &str, body: Option<String>| -> Value {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = http.request(m, format!("{base}{path}")).bearer_auth(&admin);
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().unwrap();
        let st = resp.status();
        let v: Value = resp.json().unwrap_or(Value::Null);
        assert!(st.is_success(), "{method} {path}: {st} {v}");
        v
    };
    let wait_job = |id: u64, what: &str, pred: &dyn Fn(&Value) -> bool| -> Value {
        let t0 = std::time::Instant::now();
        loop {
            let j = call("GET", &format!("/v1/jobs/{id}"), None);
            if pred(&j) {
                return j;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}: {j:#}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    };
    let sub = call(
        "POST",
        "/v1/jobs",
        Some("team: ml\nname: p\nresources: {accelerators: H100:1}\nrun: sleep 120\n".into()),
    );
    let id = sub["id"].as_u64().unwrap();
    let j = wait_job(id, "running on local-a", &|j| j["state"] == "running");
    assert_eq!(j["attempts"][0]["provider"], "local-a");
    // 1. local-a becomes unreachable; the job moves to local-b.
    call(
        "PUT",
        "/v1/admin/providers/local-a/faults",
        Some(json!({"unreachable": true}).to_string()),
    );
    let j = wait_job(id, "moved to local-b", &|j| {
        j["state"] == "running" && j["attempts"].as_array().unwrap().len() == 2
    });
    assert_eq!(j["attempts"][1]["provider"], "local-b");
    assert_eq!(j["attempts"][0]["status"], "orphaned");
    let t0 = std::time::Instant::now();
    while live_attempts_of_job(&data, id) != 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "both attempts should be alive during the partition"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    // 2. SIGKILL the broker and restart it. 3. The restarted broker's local-a answers (faults are not kept).
    server.kill();
    let _server = Server::spawn(&cfg, &log);
    // 4. The orphan is stopped (confirmed) and exactly one process of the job is alive.
    let j = wait_job(id, "the orphan stopped", &|j| {
        j["attempts"][0]["status"] == "cancelled"
    });
    assert_eq!(j["state"], "running");
    assert_eq!(
        j["attempts"].as_array().unwrap().len(),
        2,
        "no relaunch after the restart: {j:#}"
    );
    assert_eq!(
        live_attempts_of_job(&data, id),
        1,
        "exactly one attempt alive after the partition heals"
    );
    crate::kill_attempts(&data);
}
