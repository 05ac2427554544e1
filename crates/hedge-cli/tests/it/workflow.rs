//! The planning workflow of docs/planning-workflow.md, end to end with the built binary: forecast from
//! usage history → prices from the catalog → plan → out of sample and rolling re-planning, then the same
//! plan around the commitments a running `hedge serve` has signed (`--existing-from`).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn ok(args: &[&str]) -> String {
    let o = crate::hedge(args);
    assert!(o.status.success(), "hedge {args:?}: {}", crate::render(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// The documented sequence (docs/planning-workflow.md, "End to end"), with 20 paths instead of 300.
#[test]
fn forecast_prices_plan_out_of_sample_sequence() {
    let dir = std::env::temp_dir().join(format!("hedge-workflow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let demand = dir.join("demand.yaml");
    ok(&[
        "forecast",
        "examples/planning/usage.csv",
        "--horizon",
        "24",
        "--scenarios",
        "5",
        "--seed",
        "1",
        "-o",
        demand.to_str().unwrap(),
    ]);
    // `cat demand.yaml examples/planning/providers.yaml > plan.yaml`
    let providers =
        std::fs::read_to_string(crate::repo_root().join("examples/planning/providers.yaml"))
            .unwrap();
    let plan = dir.join("plan.yaml");
    std::fs::write(
        &plan,
        std::fs::read_to_string(&demand).unwrap() + &providers,
    )
    .unwrap();
    let p = plan.to_str().unwrap();
    let text = ok(&["plan", p, "--out-of-sample", "20", "--seed", "7"]);
    for want in [
        "Hedge plan: 24 periods of 730 h from 2027-01",
        "catalog data/catalog.json (embedded): aws us-east-1 p5.48xlarge (36-month term)",
        "plan file (providers[1].commitments[0].rate; overrides the catalog's",
        "Out of sample: 20 fresh demand paths",
        "hindsight optimum",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    assert!(!text.contains("VIOLATION"), "{text}");
    let text = ok(&["plan", p, "--quick", "--rolling", "5", "--seed", "7"]);
    assert!(
        text.contains("Rolling re-planning: 5 paths, re-planned every 1 period(s)")
            && text.contains("gap to hindsight closed by re-planning:"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

struct Serve(Child, std::path::PathBuf);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// `hedge plan --existing-from URL`: the commitments the broker holds (`GET /v1/commitments`, bearer token)
/// are planned around: the plan's holdings include them, and it buys fewer new GPUs.
#[test]
fn plan_around_the_brokers_signed_commitments() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("hedge-workflow-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("hedge.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:{port}\ndata_dir: {}\nproviders: [{{name: lambda, gpus: 64, accelerator: H100, on_demand_per_gpu_hour: 3}}]\nteams: [{{id: ml}}]\n",
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
    // 40 H100 at lambda, 2027-01-01 for 365 days (12 periods of 730 h), $2.10/GPU-hour.
    let body = r#"[{"id": "lambda-h100-2027", "provider": "lambda", "accelerator": "H100", "gpus": 40, "per_gpu_hour": 2100000, "start": 1798761600, "end": 1830297600}]"#;
    let resp = reqwest::blocking::Client::new()
        .post(format!("{url}/v1/commitments"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert!(
        resp.status().is_success(),
        "import: {} {}",
        resp.status(),
        resp.text().unwrap_or_default()
    );
    let plan = crate::temp_file(
        "around.yaml",
        "schema: hedge.plan/v1
horizon: {start: 2027-01, periods: 12, period_hours: 730}
accelerators: [H100]
demand:
  - {scenario: base, probability: 1, gpus: {H100: [60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60]}}
providers:
  - name: lambda
    on_demand: {H100: 3.0}
    commitments:
      - {accelerator: H100, term_periods: 12, rate: 2.5}
",
    );
    let p = plan.to_str().unwrap();
    let json = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["plan", p, "--quick", "--format", "json"];
        args.extend_from_slice(extra);
        let o = crate::hedge(&args);
        assert!(o.status.success(), "{}", crate::render(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let new_gpus = |r: &serde_json::Value| {
        r["commitments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["gpus"].as_u64().unwrap())
            .sum::<u64>()
    };
    let alone = json(&[]);
    let around = json(&["--existing-from", &url, "--token", &token]);
    assert_eq!(new_gpus(&alone), 60, "{alone}");
    assert_eq!(
        new_gpus(&around),
        20,
        "the 40 signed GPUs are held already: {around}"
    );
    assert_eq!(around["committed_by_provider"][0][1][0], 60, "{around}");
    // A wrong token is the server's error, named.
    let o = crate::hedge(&[
        "plan",
        p,
        "--quick",
        "--existing-from",
        &url,
        "--token",
        "nope",
    ]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("HTTP 401"),
        "{}",
        crate::render(&o)
    );
}
