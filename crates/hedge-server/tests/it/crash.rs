//! Crash safety: the real server binary is SIGKILLed at seeded random moments while 200 jobs are being
//! submitted and launched, and restarted, 20 times. At the end every acknowledged job succeeded, and the
//! local providers' start records show exactly one process start per job.

use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `hedge-server` binary as a child process, its stderr appended to a log file.
pub struct Server {
    child: Child,
}

impl Server {
    pub fn spawn(config: &Path, log_path: &Path) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hedge-server"))
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start hedge-server");
        // It prints "listening on ADDR" once it serves.
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        if !line.starts_with("listening on") {
            let _ = child.wait();
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            panic!("hedge-server did not start: {line:?}; its log ends with {tail:#?}");
        }
        Server { child }
    }
    pub fn kill(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `job id -> number of process starts`, from every provider's `starts.log`.
fn starts(data: &Path) -> BTreeMap<u64, u32> {
    let mut out = BTreeMap::new();
    for p in std::fs::read_dir(data.join("providers")).unwrap().flatten() {
        let text = std::fs::read_to_string(p.path().join("starts.log")).unwrap_or_default();
        for line in text.lines() {
            let job: u64 = line.split_whitespace().next().unwrap().parse().unwrap();
            *out.entry(job).or_default() += 1;
        }
    }
    out
}

#[test]
fn sigkill_during_launches_loses_no_job_and_starts_none_twice_sqlite() {
    crash_run(None);
}

#[test]
fn sigkill_during_launches_loses_no_job_and_starts_none_twice_postgres() {
    // A database of its own on the test server, dropped at the end.
    let url = crate::pg_url();
    let db = format!("hedge_crash_{}", std::process::id());
    let admin = |sql: String| {
        let url = url.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("connect to PostgreSQL");
                tokio::spawn(conn);
                c.batch_execute(&sql).await
            })
        })
        .join()
        .unwrap()
    };
    let _ = admin(format!("DROP DATABASE IF EXISTS {db}"));
    admin(format!("CREATE DATABASE {db}")).expect("create the test database");
    let base = url
        .rsplit_once('/')
        .map_or(url.as_str(), |(b, _)| b)
        .to_owned();
    crash_run(Some(format!("{base}/{db}")));
    let _ = admin(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}

// Reads the environment (an optional seed) and bounds its final wait by the wall clock: a test, not the broker.
#[allow(clippy::disallowed_methods)]
fn crash_run(database_url: Option<String>) {
    const JOBS: usize = 200;
    const KILLS: usize = 20;
    let _timed = crate::TIMED.blocking_lock();
    // Tests have no CLI: an optional seed comes from the environment, to replay a failure.
    let seed: u64 = std::env::var("HEDGE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0005_eed4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let port = free_port();
    let cfg = dir.path().join("hedge.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:{port}\ndata_dir: {}\n{}reconcile_interval_ms: 20\nhealth: {{interval_ms: 2000}}\nproviders:\n  - {{name: local-a, gpus: 8, accelerator: H100, on_demand_per_gpu_hour: 2}}\n  - {{name: local-b, gpus: 8, accelerator: H100, on_demand_per_gpu_hour: 3}}\nteams: [{{id: ml}}]\n",
            data.display(),
            database_url.map(|u| format!("database_url: {u}\n")).unwrap_or_default()
        ),
    )
    .unwrap();
    let log = dir.path().join("server.log");
    let mut server = Server::spawn(&cfg, &log);
    let admin = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let url = format!("http://127.0.0.1:{port}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let body = "team: ml\nresources: {accelerators: H100:1}\nrun: sleep 0.3\n";

    // Submissions are paced across the kills; each kill comes after a seeded random delay.
    let kill_at: Vec<u64> = (0..KILLS).map(|_| rng.gen_range(50..450)).collect();
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut unacked = 0usize;
    let mut next_kill = 0usize;
    let mut kills_in_flight = 0usize;
    let mut since_kill = std::time::Duration::ZERO;
    let step = Duration::from_millis(25);
    while acked.len() < JOBS {
        let r = rt.block_on(
            http.post(format!("{url}/v1/jobs"))
                .bearer_auth(&admin)
                .body(body)
                .send(),
        );
        match r {
            Ok(resp) if resp.status().as_u16() == 201 => {
                let v: serde_json::Value = rt.block_on(resp.json()).unwrap();
                acked.insert(v["id"].as_u64().unwrap());
            }
            Ok(resp) => panic!("submit answered {}", resp.status()),
            Err(_) => unacked += 1,
        }
        std::thread::sleep(step);
        since_kill += step;
        if next_kill < KILLS && since_kill >= Duration::from_millis(kill_at[next_kill]) {
            let busy = rt
                .block_on(async {
                    http.get(format!(
                        "{url}/v1/jobs?state=placing,launching,running&limit=1"
                    ))
                    .bearer_auth(&admin)
                    .send()
                    .await?
                    .json::<serde_json::Value>()
                    .await
                })
                .map(|v| !v["jobs"].as_array().is_none_or(Vec::is_empty))
                .unwrap_or(false);
            kills_in_flight += usize::from(busy);
            server.kill();
            server = Server::spawn(&cfg, &log);
            next_kill += 1;
            since_kill = Duration::ZERO;
        }
    }
    while next_kill < KILLS {
        std::thread::sleep(Duration::from_millis(kill_at[next_kill]));
        server.kill();
        server = Server::spawn(&cfg, &log);
        next_kill += 1;
    }

    // Let the last server finish everything.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let jobs = loop {
        let v: serde_json::Value = rt
            .block_on(async {
                http.get(format!("{url}/v1/jobs?limit=1000"))
                    .bearer_auth(&admin)
                    .send()
                    .await?
                    .json()
                    .await
            })
            .expect("the last server answers");
        let jobs = v["jobs"].as_array().unwrap().clone();
        if jobs.iter().all(|j| j["state"] == "succeeded") || tokio::time::Instant::now() > deadline
        {
            break jobs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(server);
    let stored: BTreeMap<u64, String> = jobs
        .iter()
        .map(|j| {
            (
                j["id"].as_u64().unwrap(),
                j["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for id in &acked {
        assert_eq!(
            stored.get(id).map(String::as_str),
            Some("succeeded"),
            "seed {seed:#x}: acknowledged job {id} was lost or did not finish"
        );
    }
    assert!(
        stored.len() <= acked.len() + unacked,
        "seed {seed:#x}: more jobs than submissions"
    );
    assert!(
        stored.values().all(|s| s == "succeeded"),
        "seed {seed:#x}: {stored:?}"
    );
    let starts = starts(&data);
    for id in stored.keys() {
        assert_eq!(
            starts.get(id),
            Some(&1),
            "seed {seed:#x}: job {id} started {:?} times",
            starts.get(id)
        );
    }
    assert_eq!(
        starts.len(),
        stored.len(),
        "seed {seed:#x}: a process started for a job the store does not have"
    );
    assert!(
        kills_in_flight >= KILLS / 3,
        "seed {seed:#x}: only {kills_in_flight} kills hit jobs being launched or run"
    );
    crate::kill_attempts(&data);
}
