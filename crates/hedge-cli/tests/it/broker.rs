//! The broker's client commands against a real `hedge serve`: `hedge submit` sends an idempotency key, and
//! `submit`, `jobs`, `job` and `cost` print what the typed API answered.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Serve(Child, std::path::PathBuf);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

#[test]
fn submit_jobs_and_job_through_the_typed_client() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("hedge-cli-broker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("hedge.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:{port}\ndata_dir: {}\nproviders: [{{name: local-a, gpus: 1, accelerator: H100, on_demand_per_gpu_hour: 1}}]\nteams: [{{id: ml}}]\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_hedge"))
        .args([
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--log-level",
            "warn",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _serve = Serve(child, dir.clone());
    let token_file = dir.join("data/admin.token");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if std::fs::metadata(&token_file).is_ok_and(|m| m.len() > 0)
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    let task = dir.join("task.yaml");
    std::fs::write(
        &task,
        "name: cli-job\nteam: ml\nresources: {accelerators: H100:1}\nrun: echo hi\nmystery: 1\n",
    )
    .unwrap();
    let conn = ["--url", url.as_str(), "--token", token.as_str()];
    let run = |args: &[&str]| {
        let o = crate::hedge(&[args, &conn[..]].concat());
        assert!(o.status.success(), "{args:?}: {}", crate::render(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let out = run(&["submit", task.to_str().unwrap()]);
    assert!(
        out.starts_with("submitted job 1 (team ml, pending)"),
        "{out}"
    );
    assert!(
        out.contains("warning: ") && out.contains("mystery"),
        "the parser's warnings are shown: {out}"
    );
    let page: serde_json::Value =
        serde_json::from_str(&run(&["jobs", "--format", "json"])).unwrap();
    assert_eq!(page["jobs"][0]["id"], 1, "{page}");
    let key = page["jobs"][0]["idempotency_key"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        key.len(),
        36,
        "hedge submit sent a UUID Idempotency-Key: {page}"
    );
    let table = run(&["jobs", "--team", "ml"]);
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("cli-job") && l.contains("ml")),
        "{table}"
    );
    let job: serde_json::Value =
        serde_json::from_str(&run(&["job", "1", "--format", "json"])).unwrap();
    assert_eq!(
        (
            job["job"]["id"].as_u64(),
            job["events"][0]["reason"].as_str()
        ),
        (Some(1), Some("submitted")),
        "{job}"
    );
    let bad = crate::hedge(&[&["job", "999"][..], &conn[..]].concat());
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("HTTP 404"),
        "{}",
        crate::render(&bad)
    );

    // `hedge cost`: the job's spend once it ended, the FOCUS export streamed, the commitment metrics.
    for _ in 0..200 {
        let job: serde_json::Value =
            serde_json::from_str(&run(&["job", "1", "--format", "json"])).unwrap();
        if job["job"]["state"] == "succeeded" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let spend: serde_json::Value =
        serde_json::from_str(&run(&["cost", "--format", "json"])).unwrap();
    assert!(
        spend["teams"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["team"] == "ml")),
        "{spend}"
    );
    let table = run(&["cost"]);
    assert!(
        table.contains("TEAM") && table.lines().any(|l| l.starts_with("total")),
        "{table}"
    );
    let csv = run(&["cost", "export", "--focus-version", "1.2"]);
    let header = csv.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("AvailabilityZone,BilledCost,")
            && header.ends_with("x_team,x_job,x_attempt"),
        "{csv}"
    );
    let file = dir.join("focus.csv");
    run(&[
        "cost",
        "export",
        "--from",
        "2026-01-01",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .starts_with("AvailabilityZone,BilledCost,"));
    let metrics = run(&["cost", "commitments"]);
    assert!(
        metrics.contains("COMMITMENT") && metrics.contains("UTIL"),
        "{metrics}"
    );
    // A wrong date is a usage error naming the flag; a window the server refuses is an error naming the field.
    let bad = crate::hedge(&[&["cost", "--from", "2026-02-31"][..], &conn[..]].concat());
    assert_eq!(bad.status.code(), Some(2), "{}", crate::render(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--from"),
        "{}",
        crate::render(&bad)
    );
    let bad = crate::hedge(
        &[
            &["cost", "--from", "2026-03-01", "--to", "2026-02-01"][..],
            &conn[..],
        ]
        .concat(),
    );
    assert_eq!(bad.status.code(), Some(1), "{}", crate::render(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("field to"),
        "{}",
        crate::render(&bad)
    );
}
