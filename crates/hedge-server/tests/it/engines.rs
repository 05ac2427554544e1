//! The broker over real engines: the three Slurm 22.05 test clusters (`scripts/slurm-test-clusters`) and
//! moto's EC2 API, configured as a user would (`owned:` + `driver: slurm`, `catalog:` + `driver: ec2`).
//! Nothing boots inside moto, so the test is the hypervisor: every instance moto reports running has its
//! UserData (read back through `DescribeInstanceAttribute`) run as a local process, which reports its output
//! and exit status to the broker's real `/v1/attempts/{key}/...` endpoints with its attempt token.

// A test bounds its waits by the wall clock and reads the clusters' endpoints from the environment.
#![allow(clippy::disallowed_methods)]

use crate::moto_server::moto;
use crate::{state, TIMED};
use hedge_server::{Broker, ServerConfig, SystemClock};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The clusters are shared by every test of this binary that uses them: one at a time.
static ENGINES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cluster_env(name: &str) {
    let var = format!("{}_URL", name.to_uppercase().replace('-', "_"));
    if std::env::var(&var).is_err() {
        panic!(
            "{var} is not set: the Slurm test clusters are not running. Start them with\n\n    \
             eval \"$(bash scripts/slurm-test-clusters start)\"\n\nor run bash scripts/test."
        );
    }
}

/// Cancels every job on the three clusters (`scancel`, as an operator would) and waits until none is left, so
/// each test starts on empty clusters whatever an earlier (failed) test left running.
fn clear_clusters() {
    for c in ["HEDGE_A", "HEDGE_B", "HEDGE_C"] {
        let Ok(conf) = std::env::var(format!("{c}_CONF")) else {
            continue;
        };
        let _ = Command::new("scancel")
            .args(["-u", "root"])
            .env("SLURM_CONF", &conf)
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            let out = Command::new("squeue")
                .args(["-h", "-t", "PD,R,CG,S"])
                .env("SLURM_CONF", &conf)
                .output();
            match out {
                Ok(o) if o.status.success() && o.stdout.iter().all(u8::is_ascii_whitespace) => {
                    break
                }
                // A killed cluster does not answer: nothing to wait for.
                Ok(o) if !o.status.success() => break,
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// What test cluster `cluster` (`hedge-a`..`hedge-c`) lists through slurmrestd's `GET /jobs`, as an operator
/// would see it.
async fn slurm_jobs(http: &reqwest::Client, cluster: &str) -> Value {
    let var = cluster.to_uppercase().replace('-', "_");
    http.get(format!(
        "{}/slurm/v0.0.38/jobs",
        std::env::var(format!("{var}_URL")).unwrap()
    ))
    .header("X-SLURM-USER-NAME", "root")
    .header(
        "X-SLURM-USER-TOKEN",
        std::env::var(format!("{var}_TOKEN")).unwrap(),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

struct Engines {
    url: String,
    admin: String,
    broker: Arc<Broker>,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    hypervisor: Arc<Hypervisor>,
    _dir: tempfile::TempDir,
}

/// Boots every instance moto reports running (its UserData as a local process group) and powers off the
/// ones that are no longer running (kills their process group), as a hypervisor would.
#[derive(Default)]
struct Hypervisor {
    booted: Mutex<BTreeSet<String>>,
    children: Mutex<BTreeMap<String, Child>>,
    stop: std::sync::atomic::AtomicBool,
}

impl Hypervisor {
    fn power_off(c: &mut Child) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = c.wait();
    }
}

impl Drop for Hypervisor {
    fn drop(&mut self) {
        for c in self.children.lock().unwrap().values_mut() {
            Hypervisor::power_off(c);
        }
    }
}

/// The broker configuration of these tests: the three clusters at $1, $1.5 and $2 per GPU-hour and moto's EC2
/// as `aws-east` (catalog provider aws, us-east-1).
fn engines_yaml(addr: std::net::SocketAddr, data_dir: &std::path::Path) -> String {
    let slurm = |name: &str, cost: f64| {
        let var = name.to_uppercase().replace('-', "_");
        format!(
            "  - name: {name}\n    owned: {{ accelerator: H100, gpus_per_node: 8, nodes: 2, cost_per_gpu_hour: {cost} }}\n    \
             driver: {{ kind: slurm, endpoint: '{}', credentials: {{ env: {var}_TOKEN }}, timeout_ms: 1500 }}\n",
            std::env::var(format!("{var}_URL")).unwrap()
        )
    };
    format!(
        "listen: {addr}\ndata_dir: {}\nreconcile_interval_ms: 100\nfault_injection: true\n\
         health: {{ interval_ms: 2000, failure_threshold: 2, missed_heartbeats: 2 }}\nproviders:\n{}{}{}\
         \x20 - name: aws-east\n    catalog: {{ provider: aws, regions: [us-east-1] }}\n    max_gpus: 64\n    \
         driver: {{ kind: ec2, endpoint: '{}', image_id: ami-12c6146b, credentials: {{ env: HEDGE_ENGINES_AWS }}, timeout_ms: 20000 }}\n\
         teams:\n  - {{ id: ml }}\n",
        data_dir.display(),
        slurm("hedge-a", 1.0),
        slurm("hedge-b", 1.5),
        slurm("hedge-c", 2.0),
        moto().url,
    )
}

/// Starts the test's hypervisor over the instances `d`'s account runs.
fn spawn_hypervisor(d: Arc<hedge_drivers::Ec2Driver>) -> Arc<Hypervisor> {
    let hypervisor = Arc::new(Hypervisor::default());
    let hv = hypervisor.clone();
    tokio::spawn(async move {
        while !hv.stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(instances) = d.hedge_instances().await {
                for i in &instances {
                    if i.state == "running" {
                        continue;
                    }
                    if let Some(mut c) = hv.children.lock().unwrap().remove(&i.instance_id) {
                        Hypervisor::power_off(&mut c);
                    }
                }
                for i in instances.into_iter().filter(|i| i.state == "running") {
                    if hv.booted.lock().unwrap().contains(&i.instance_id) {
                        continue;
                    }
                    let Ok(Some(script)) = d.user_data(&i.instance_id).await else {
                        continue;
                    };
                    let child = {
                        use std::os::unix::process::CommandExt;
                        Command::new("sh")
                            .arg("-c")
                            .arg(&script)
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .process_group(0)
                            .spawn()
                            .unwrap()
                    };
                    hv.children
                        .lock()
                        .unwrap()
                        .insert(i.instance_id.clone(), child);
                    hv.booted.lock().unwrap().insert(i.instance_id);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    hypervisor
}

impl Engines {
    async fn start() -> Self {
        for c in ["hedge-a", "hedge-b", "hedge-c"] {
            cluster_env(c);
        }
        clear_clusters();
        moto();
        // SAFETY of the environment: only these tests read these two variables.
        std::env::set_var("HEDGE_ENGINES_AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("HEDGE_ENGINES_AWS_SECRET_ACCESS_KEY", "testing");
        std::fs::create_dir_all("/var/tmp/hedge-slurm-tests").unwrap();
        // Slurm's nodes read the job directory: a directory they see (not a private /tmp).
        let dir = tempfile::Builder::new()
            .prefix("broker")
            .tempdir_in("/var/tmp/hedge-slurm-tests")
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let yaml = engines_yaml(addr, dir.path());
        let config = ServerConfig::parse(&yaml, "engines test").unwrap();
        let store = hedge_store::open(&config.store_url()).await.unwrap();
        let broker = Broker::with_store(config, store, SystemClock::shared())
            .await
            .unwrap();
        broker.probe_all().await.expect("every engine answers");
        let admin = std::fs::read_to_string(dir.path().join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(hedge_server::serve(broker.clone(), listener, async move {
            let _ = rx.await;
        }));
        let hypervisor = spawn_hypervisor(
            broker
                .ec2
                .get(&hedge_core::ProviderId::parse("aws-east"))
                .unwrap()
                .clone(),
        );
        Engines {
            url: format!("http://{addr}"),
            admin,
            broker,
            http: reqwest::Client::new(),
            stop: Some(tx),
            hypervisor,
            _dir: dir,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<String>) -> (StatusCode, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.url))
            .bearer_auth(&self.admin);
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.unwrap();
        let st = resp.status();
        let text = resp.text().await.unwrap();
        (st, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn submit(&self, yaml: &str) -> u64 {
        let (st, v) = self
            .call("POST", "/v1/jobs", Some(format!("team: ml\n{yaml}")))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v["id"].as_u64().unwrap()
    }

    async fn job(&self, id: u64) -> Value {
        let (st, v) = self.call("GET", &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }

    async fn wait_job(
        &self,
        id: u64,
        secs: u64,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let t0 = Instant::now();
        loop {
            let j = self.job(id).await;
            if pred(&j) {
                return j;
            }
            if t0.elapsed() > Duration::from_secs(secs) {
                let (_, ev) = self
                    .call("GET", &format!("/v1/jobs/{id}/events"), None)
                    .await;
                panic!("job {id} is not {what} after {secs} s: {j:#}\nevents: {ev:#}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Engines {
    fn drop(&mut self) {
        self.hypervisor
            .stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        clear_clusters();
    }
}

fn task(name: &str, gpus: u32, run: &str) -> String {
    format!("name: {name}\nresources: {{accelerators: H100:{gpus}}}\nrun: {run:?}\n")
}

/// 30 jobs through three Slurm clusters and EC2: placement spreads them, the commitment first, then the
/// cheapest feasible (Slurm at $1, $1.5, $2 per GPU-hour before EC2's p5 on-demand price), every job succeeds
/// and its output is readable through the logs endpoint (`hedge logs`), from Slurm's output files and from
/// the EC2 instances' reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_jobs_spread_over_three_slurm_clusters_and_ec2() {
    let _engines = ENGINES.lock().await;
    let _timed = TIMED.lock().await;
    let e = Engines::start().await;
    let (st, v) = e
        .call(
            "POST",
            "/v1/commitments",
            Some(json!([{"id": "c-hedge-c", "provider": "hedge-c", "accelerator": "H100", "gpus": 8, "per_gpu_hour": 500_000, "start": 1_700_000_000, "end": 2_000_000_000}]).to_string()),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            e.submit(&task(
                &format!("spread-{i}"),
                8,
                &format!("sleep 2; echo out-{i}; echo err-{i} >&2"),
            ))
            .await,
        );
    }
    let mut by_provider: BTreeMap<String, usize> = BTreeMap::new();
    let mut committed = 0;
    for (i, id) in ids.iter().enumerate() {
        let j = e
            .wait_job(*id, 240, "succeeded", |j| {
                state(j) == "succeeded" || state(j) == "failed"
            })
            .await;
        assert_eq!(state(&j), "succeeded", "{j:#}");
        let a = j["attempts"].as_array().unwrap().last().unwrap().clone();
        *by_provider
            .entry(a["provider"].as_str().unwrap().to_owned())
            .or_default() += 1;
        if a["market"] == "committed" {
            assert_eq!(a["commitment"], "c-hedge-c", "{a:#}");
            committed += 1;
        }
        let (st, logs) = e.call("GET", &format!("/v1/jobs/{id}/logs"), None).await;
        assert_eq!(st, StatusCode::OK, "{logs}");
        assert!(
            logs["stdout"]
                .as_str()
                .unwrap()
                .contains(&format!("out-{i}")),
            "job {id} on {}: {logs:#}",
            a["provider"]
        );
        assert!(
            logs["stderr"]
                .as_str()
                .unwrap()
                .contains(&format!("err-{i}")),
            "job {id} on {}: {logs:#}",
            a["provider"]
        );
    }
    for p in ["hedge-a", "hedge-b", "hedge-c", "aws-east"] {
        assert!(
            by_provider.get(p).copied().unwrap_or(0) > 0,
            "no job ran on {p}: {by_provider:?}"
        );
    }
    assert!(committed > 0, "no job used the commitment: {by_provider:?}");
    // What the EC2 attempts cost is booked at their offer's catalog price (p5.48xlarge in us-east-1), not at
    // a provider-wide rate: the FOCUS export's rows of those attempts bill the catalog's per-GPU price.
    let catalog = hedge_catalog::default_catalog().unwrap().catalog;
    let mut ec2_rows = 0;
    let resp = e
        .http
        .get(format!("{}/v1/cost/export?from=2020-01-01", e.url))
        .bearer_auth(&e.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csv = resp.text().await.unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| {
        header
            .iter()
            .position(|c| *c == n)
            .unwrap_or_else(|| panic!("no {n} in {header:?}"))
    };
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != header.len() || f[col("x_attempt")].is_empty() {
            continue;
        }
        let attempt = f[col("x_attempt")];
        let on_ec2 = {
            let job: u64 = f[col("x_job")].parse().unwrap_or(0);
            let j = e.job(job).await;
            j["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["idempotency_key"] == attempt && a["provider"] == "aws-east")
        };
        if !on_ec2 {
            continue;
        }
        ec2_rows += 1;
        let offer = catalog
            .offers()
            .iter()
            .find(|o| {
                o.provider.as_str() == "aws"
                    && o.instance_type == "p5.48xlarge"
                    && o.location.region().as_str() == "us-east-1"
            })
            .unwrap();
        let want_per_gpu = offer.prices.on_demand.unwrap().hourly().micros() / 8;
        let billed: f64 = f[col("BilledCost")].parse().unwrap();
        let qty: f64 = f[col("ConsumedQuantity")].parse().unwrap();
        if qty > 0.0 {
            let per_gpu_hour = billed / qty * 1e6;
            assert!(
                (per_gpu_hour - want_per_gpu as f64).abs() <= 0.02 * want_per_gpu as f64,
                "{line}: {per_gpu_hour} vs {want_per_gpu}"
            );
        }
    }
    assert!(ec2_rows > 0, "no ledger row of an EC2 attempt in {csv}");
    // The first job went to the commitment: committed capacity comes first.
    let first = e.job(ids[0]).await;
    assert_eq!(first["attempts"][0]["market"], "committed", "{first:#}");
    // The cheapest cluster fills before the dearer ones: the second job (on-demand) went to hedge-a.
    let second = e.job(ids[1]).await;
    assert_eq!(second["attempts"][0]["provider"], "hedge-a", "{second:#}");
    drop(e);
}

/// A cancelled job stops on its engine: Slurm reports the job CANCELLED, EC2 the instance terminated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_job_on_slurm_and_on_ec2() {
    let _engines = ENGINES.lock().await;
    let e = Engines::start().await;
    // Fill the Slurm clusters' 48 GPUs so the last job goes to EC2.
    let mut slurm_ids = Vec::new();
    for i in 0..6 {
        slurm_ids.push(e.submit(&task(&format!("long-{i}"), 8, "sleep 300")).await);
    }
    let ec2_id = e.submit(&task("long-ec2", 8, "sleep 300")).await;
    let running = |j: &Value| state(j) == "running";
    let slurm_job = e.wait_job(slurm_ids[0], 120, "running", running).await;
    let ec2_job = e.wait_job(ec2_id, 120, "running", running).await;
    assert_eq!(
        ec2_job["attempts"][0]["provider"], "aws-east",
        "{ec2_job:#}"
    );
    let slurm_provider = slurm_job["attempts"][0]["provider"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in slurm_ids.iter().chain([&ec2_id]) {
        let (st, v) = e.call("POST", &format!("/v1/jobs/{id}/cancel"), None).await;
        assert!(st.is_success(), "{v}");
    }
    let cancelled = |j: &Value| state(j) == "cancelled";
    e.wait_job(slurm_ids[0], 120, "cancelled", cancelled).await;
    e.wait_job(ec2_id, 120, "cancelled", cancelled).await;
    // What the engines themselves say.
    let key = hedge_drivers::IdempotencyKey::parse(
        slurm_job["attempts"][0]["idempotency_key"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let driver = e
        .broker
        .drivers
        .get(&hedge_core::ProviderId::parse(&slurm_provider))
        .unwrap();
    assert_eq!(
        driver.observe(&key).await.unwrap(),
        hedge_drivers::Observation::Cancelled,
        "Slurm's view of {key}"
    );
    let jobs = slurm_jobs(&e.http, &slurm_provider).await;
    let slurm_state = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == key.as_str())
        .map(|j| j["job_state"].as_str().unwrap_or("").to_owned())
        .unwrap_or_else(|| panic!("slurmctld does not list {key}"));
    assert_eq!(slurm_state, "CANCELLED");
    let ec2 = e
        .broker
        .ec2
        .get(&hedge_core::ProviderId::parse("aws-east"))
        .unwrap();
    let ec2_key = hedge_drivers::IdempotencyKey::parse(
        ec2_job["attempts"][0]["idempotency_key"].as_str().unwrap(),
    )
    .unwrap();
    let instances = ec2.instances_of(&ec2_key).await.unwrap();
    assert_eq!(instances.len(), 1, "{instances:?}");
    assert_eq!(instances[0].state, "terminated", "{instances:?}");
    for id in &slurm_ids {
        e.wait_job(*id, 120, "cancelled", cancelled).await;
    }
}

/// A plan's commitment names the catalog provider (`aws`): it maps onto the configured provider that sells
/// aws's offers in its region (`aws-east`), and is refused with the field named when nothing matches. The
/// instances' report endpoints take only the attempt's own token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_commitments_map_onto_catalog_providers_and_reports_need_the_attempt_token() {
    let _engines = ENGINES.lock().await;
    let e = Engines::start().await;
    let body = |provider: &str, accel: &str, region: &str| {
        json!([{"id": format!("c-{provider}-{accel}-{region}"), "provider": provider, "accelerator": accel, "region": region, "gpus": 8,
                "per_gpu_hour": 2_000_000, "start": 1_700_000_000, "end": 2_000_000_000}])
        .to_string()
    };
    let (st, v) = e
        .call(
            "POST",
            "/v1/commitments",
            Some(body("aws", "H100", "us-east-1")),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, list) = e.call("GET", "/v1/commitments", None).await;
    assert_eq!(list["commitments"][0]["provider"], "aws-east", "{list:#}");
    let (st, v) = e
        .call(
            "POST",
            "/v1/commitments",
            Some(body("aws", "H100", "eu-west-9")),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "commitments[0].accelerator", "{v}");
    let (st, v) = e
        .call(
            "POST",
            "/v1/commitments",
            Some(body("gcp", "H100", "us-east-1")),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "commitments[0].provider", "{v}");

    // Reports: an unknown attempt and a wrong token are both 401 and change nothing.
    let id = e.submit(&task("report", 8, "sleep 300")).await;
    let j = e
        .wait_job(id, 120, "launched", |j| {
            j["attempts"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    let key = j["attempts"][0]["idempotency_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = |path: String, token: &str, body: &str| {
        e.http
            .post(format!("{}{path}", e.url))
            .bearer_auth(token)
            .body(body.to_owned())
            .send()
    };
    let r = post(
        format!("/v1/attempts/{key}/status"),
        "not-the-token",
        r#"{"exit_code": 0}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post(
        "/v1/attempts/hedge-nope-j1-a1/status".into(),
        "x",
        r#"{"exit_code": 0}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post(
        format!("/v1/attempts/{key}/status"),
        &e.admin,
        r#"{"exit_code": 0}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "an API token is not an attempt token"
    );
    assert_ne!(state(&e.job(id).await), "succeeded");
    let (st, v) = e.call("POST", &format!("/v1/jobs/{id}/cancel"), None).await;
    assert!(st.is_success(), "{v}");
    e.wait_job(id, 120, "cancelled", |j| state(j) == "cancelled")
        .await;
}

fn clusters_script(args: &[&str]) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slurm-test-clusters");
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "slurm-test-clusters {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Ends the cluster's outage however the test ends.
struct Revive(&'static str);
impl Drop for Revive {
    fn drop(&mut self) {
        clusters_script(&["restart", self.0]);
    }
}

/// One Slurm cluster dies (slurmctld and both slurmd SIGKILLed; slurmrestd left answering slowly, as a dead
/// controller does): its running jobs are re-placed on the others within two health intervals and none is
/// lost. Restarted, it is healthy again and takes new work, and the jobs it still runs (its orphans) are
/// stopped, so at most one attempt per job runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_outage_moves_its_jobs_and_the_restarted_cluster_stops_its_orphans() {
    let _engines = ENGINES.lock().await;
    let _timed = TIMED.lock().await;
    let e = Engines::start().await;
    let interval = e.broker.config.health.interval;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            e.submit(&task(&format!("outage-{i}"), 8, "sleep 600"))
                .await,
        );
    }
    let mut on_a = Vec::new();
    for id in &ids {
        let j = e
            .wait_job(*id, 120, "running", |j| state(j) == "running")
            .await;
        if j["attempts"][0]["provider"] == "hedge-a" {
            on_a.push((
                *id,
                j["attempts"][0]["idempotency_key"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ));
        }
    }
    assert_eq!(
        on_a.len(),
        2,
        "the cheapest cluster takes two 8-GPU jobs first"
    );
    let revive = Revive("hedge-a");
    clusters_script(&["kill", "hedge-a"]);
    let t0 = Instant::now();
    for (id, _) in &on_a {
        e.wait_job(*id, 60, "re-placed", |j| {
            j["attempts"]
                .as_array()
                .is_some_and(|a| a.len() >= 2 && a.last().unwrap()["provider"] != "hedge-a")
        })
        .await;
    }
    let moved_after = t0.elapsed();
    eprintln!("re-placed after {moved_after:?} (health interval {interval:?})");
    // Two health intervals, and the reconcile pass that acts on it.
    assert!(
        moved_after <= interval * 2 + Duration::from_millis(500),
        "re-placed after {moved_after:?}; health interval {interval:?}"
    );
    for (id, _) in &on_a {
        e.wait_job(*id, 120, "running elsewhere", |j| state(j) == "running")
            .await;
    }
    drop(revive);
    // Healthy again, and the orphans on it are stopped.
    let t1 = Instant::now();
    loop {
        let (_, v) = e.call("GET", "/v1/providers", None).await;
        let a = v["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "hedge-a")
            .unwrap()
            .clone();
        if a["health"] == "healthy" {
            break;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(60),
            "hedge-a is not healthy again: {a:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let driver = e
        .broker
        .drivers
        .get(&hedge_core::ProviderId::parse("hedge-a"))
        .unwrap()
        .clone();
    for (id, key) in &on_a {
        let key = hedge_drivers::IdempotencyKey::parse(key).unwrap();
        let t2 = Instant::now();
        loop {
            let o = driver.observe(&key).await;
            if matches!(o, Ok(ref o) if o.is_terminal()) {
                break;
            }
            assert!(
                t2.elapsed() < Duration::from_secs(90),
                "job {id}'s orphan {key} on hedge-a still {o:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let j = e.job(*id).await;
        let running = j["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status"] == "running" || a["status"] == "submitted")
            .count();
        assert_eq!(running, 1, "job {id}: {j:#}");
    }
    // It takes new work: with the others' jobs cancelled, a new job goes to the cheapest cluster again.
    for id in &ids {
        let (st, v) = e.call("POST", &format!("/v1/jobs/{id}/cancel"), None).await;
        assert!(st.is_success(), "{v}");
    }
    for id in &ids {
        e.wait_job(*id, 120, "cancelled", |j| state(j) == "cancelled")
            .await;
    }
    let id = e.submit(&task("after-outage", 8, "echo back")).await;
    let j = e
        .wait_job(id, 120, "succeeded", |j| state(j) == "succeeded")
        .await;
    assert_eq!(j["attempts"][0]["provider"], "hedge-a", "{j:#}");
}

/// `hedge-server CONFIG` with a bad provider fails at start, before it listens, with an error that names the
/// provider and the key.
#[test]
fn bad_provider_configuration_fails_at_start_naming_provider_and_key() {
    cluster_env("hedge-a");
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let a_url = std::env::var("HEDGE_A_URL").unwrap();
    let cases = [
        (
            format!("  - {{ name: lab, owned: {{ accelerator: H100, gpus_per_node: 8 }}, driver: {{ kind: slurm, endpoint: 'http://{dead}', credentials: {{ env: HEDGE_A_TOKEN }}, timeout_ms: 1000 }} }}"),
            "lab.driver.endpoint",
            "cannot reach",
        ),
        (
            format!("  - {{ name: lab, owned: {{ accelerator: H100, gpus_per_node: 8 }}, driver: {{ kind: slurm, endpoint: '{a_url}' }} }}"),
            "(lab).driver.credentials",
            "missing",
        ),
        (
            "  - { name: lab, owned: { accelerator: H100, gpus_per_node: 8 }, driver: { kind: nomad } }".to_owned(),
            "(lab).driver.kind",
            "unknown driver kind",
        ),
        (
            "  - { name: cloud, catalog: { provider: acme, regions: [r1] }, driver: { kind: ec2, image_id: ami-1, credentials: { env: HEDGE_ENGINES_AWS } } }".to_owned(),
            "(cloud).catalog.provider",
            "no provider acme",
        ),
        (
            "  - { name: cloud, catalog: { provider: aws, regions: [mars-north-1] }, driver: { kind: ec2, image_id: ami-1, credentials: { env: HEDGE_ENGINES_AWS } } }".to_owned(),
            "(cloud).catalog.regions",
            "no region mars-north-1",
        ),
        (
            "  - { name: lab, owned: { accelerator: H100, gpus_per_node: 0 }, driver: { kind: local } }".to_owned(),
            "(lab).owned.gpus_per_node",
            "at least 1",
        ),
    ];
    for (provider, key, reason) in cases {
        let path = dir.path().join("hedge.yaml");
        std::fs::write(
            &path,
            format!(
                "listen: 127.0.0.1:0\ndata_dir: {}\nproviders:\n{provider}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hedge-server"))
            .arg(&path)
            .env("HEDGE_ENGINES_AWS_ACCESS_KEY_ID", "testing")
            .env("HEDGE_ENGINES_AWS_SECRET_ACCESS_KEY", "testing")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{provider}: started");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening"),
            "{provider}: listened"
        );
        assert!(
            stderr.contains(key) && stderr.contains(reason),
            "{provider}\n  -> {stderr}\n  wanted {key}: ...{reason}..."
        );
    }
}

/// A spot instance terminated through the EC2 API (not by Hedge) is a preemption: the job's event says so,
/// and the job recovers on a new instance and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ec2_spot_preemption_recovers_the_job() {
    let _engines = ENGINES.lock().await;
    let e = Engines::start().await;
    let id = e.submit("name: spot\nresources: {accelerators: H100:8, use_spot: true}\nrun: 'sleep 4; echo finished'\n").await;
    let j = e
        .wait_job(id, 120, "running", |j| state(j) == "running")
        .await;
    let first = j["attempts"][0].clone();
    assert_eq!(
        (first["provider"].as_str(), first["market"].as_str()),
        (Some("aws-east"), Some("spot")),
        "{j:#}"
    );
    let ec2 = e
        .broker
        .ec2
        .get(&hedge_core::ProviderId::parse("aws-east"))
        .unwrap()
        .clone();
    let key =
        hedge_drivers::IdempotencyKey::parse(first["idempotency_key"].as_str().unwrap()).unwrap();
    let instances = ec2.instances_of(&key).await.unwrap();
    assert_eq!(instances.len(), 1, "{instances:?}");
    assert_eq!(
        instances[0].lifecycle.as_deref(),
        Some("spot"),
        "{instances:?}"
    );
    // The reclaim: terminated by someone other than Hedge.
    ec2.terminate(&instances[0].instance_id).await.unwrap();
    let j = e
        .wait_job(id, 180, "succeeded", |j| {
            state(j) == "succeeded" || state(j) == "failed"
        })
        .await;
    assert_eq!(state(&j), "succeeded", "{j:#}");
    let attempts = j["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{j:#}");
    assert_eq!(attempts[0]["status"], "lost", "{j:#}");
    assert_ne!(
        attempts.last().unwrap()["idempotency_key"],
        first["idempotency_key"]
    );
    let (_, ev) = e.call("GET", &format!("/v1/jobs/{id}/events"), None).await;
    let preempted = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "spot_preempted")
        .cloned();
    let preempted = preempted.unwrap_or_else(|| panic!("no spot_preempted event: {ev:#}"));
    assert!(preempted.to_string().contains("preempted"), "{preempted}");
    let (_, logs) = e.call("GET", &format!("/v1/jobs/{id}/logs"), None).await;
    assert!(
        logs["stdout"].as_str().unwrap_or("").contains("finished"),
        "{logs:#}"
    );
}

/// SIGKILL the broker (the `hedge-server` process) while it launches on Slurm and EC2, twice, and restart it:
/// the work it started is adopted by key lookup, every job finishes, and each attempt key has exactly one
/// sbatch'd job or one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_during_launches_adopts_its_work_with_one_job_or_instance_per_key() {
    let _engines = ENGINES.lock().await;
    let _timed = TIMED.lock().await;
    for c in ["hedge-a", "hedge-b", "hedge-c"] {
        cluster_env(c);
    }
    clear_clusters();
    std::env::set_var("HEDGE_ENGINES_AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("HEDGE_ENGINES_AWS_SECRET_ACCESS_KEY", "testing");
    std::fs::create_dir_all("/var/tmp/hedge-slurm-tests").unwrap();
    let dir = tempfile::Builder::new()
        .prefix("restart")
        .tempdir_in("/var/tmp/hedge-slurm-tests")
        .unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = dir.path().join("hedge.yaml");
    std::fs::write(&config, engines_yaml(addr, &dir.path().join("data"))).unwrap();
    let log = dir.path().join("server.log");
    // The hypervisor lives in the test, so it outlives the broker's deaths.
    let ec2 = Arc::new(
        hedge_drivers::Ec2Driver::new(hedge_drivers::Ec2ProviderConfig {
            name: hedge_core::ProviderId::parse("aws-east"),
            endpoint: moto().url.clone(),
            region: "us-east-1".into(),
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            image_id: "ami-12c6146b".into(),
            report_url: format!("http://{addr}"),
            report_secret: "unused".into(),
            state_dir: dir.path().join("hv"),
            timeout: Duration::from_secs(20),
        })
        .unwrap(),
    );
    let hv = spawn_hypervisor(ec2.clone());
    let mut server = crate::crash::Server::spawn(&config, &log);
    let admin = std::fs::read_to_string(dir.path().join("data/admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let http = reqwest::Client::new();
    let url = format!("http://{addr}");
    let mut ids = Vec::new();
    for i in 0..12 {
        let r = http
            .post(format!("{url}/v1/jobs"))
            .bearer_auth(&admin)
            .body(format!(
                "team: ml\n{}",
                task(&format!("restart-{i}"), 8, &format!("sleep 3; echo ok-{i}"))
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(r.json::<Value>().await.unwrap()["id"].as_u64().unwrap());
    }
    // Die in the middle of the launches, twice.
    for pause_ms in [150, 400] {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        server.kill();
        server = crate::crash::Server::spawn(&config, &log);
    }
    let t0 = Instant::now();
    let mut keys: Vec<(String, String)> = Vec::new();
    for id in &ids {
        let j = loop {
            let r = http
                .get(format!("{url}/v1/jobs/{id}"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            let j: Value = r.json().await.unwrap();
            if state(&j) == "succeeded" || state(&j) == "failed" {
                break j;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(240),
                "job {id} did not finish: {j:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(state(&j), "succeeded", "{j:#}");
        for a in j["attempts"].as_array().unwrap() {
            keys.push((
                a["provider"].as_str().unwrap().to_owned(),
                a["idempotency_key"].as_str().unwrap().to_owned(),
            ));
        }
    }
    drop(server);
    let providers: BTreeSet<&str> = keys.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        providers.contains("aws-east") && providers.len() >= 2,
        "launches went to {providers:?}"
    );
    // Each key: exactly one Slurm job of that name, or exactly one instance tagged with it.
    let http2 = reqwest::Client::new();
    for (provider, key) in &keys {
        let n = if provider == "aws-east" {
            ec2.instances_of(&hedge_drivers::IdempotencyKey::parse(key).unwrap())
                .await
                .unwrap()
                .len()
        } else {
            let jobs = slurm_jobs(&http2, provider).await;
            jobs["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|j| j["name"] == key.as_str())
                .count()
        };
        assert_eq!(n, 1, "{provider} has {n} jobs/instances for key {key}");
    }
    hv.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    clear_clusters();
}
