//! The Slurm driver against real Slurm 22.05 clusters (slurmctld, two slurmd, slurmrestd with JWT) started
//! by `bash scripts/slurm-test-clusters start` (scripts/test does it). Without them these tests fail and
//! say how to start them.

// A test bounds its waits by the wall clock and reads the clusters' endpoints from the environment.
#![allow(clippy::disallowed_methods)]

use crate::spec;
use hedge_core::{Accelerator, ProviderId};
use hedge_drivers::{
    Driver, DriverError, IdempotencyKey, Observation, SlurmDriver, SlurmProviderConfig,
};
use std::time::{Duration, Instant};

/// The endpoint and token of test cluster `hedge-a`, `hedge-b` or `hedge-c`.
fn cluster(name: &str) -> (String, String) {
    let var = name.to_uppercase().replace('-', "_");
    let get = |suffix: &str| {
        std::env::var(format!("{var}_{suffix}")).unwrap_or_else(|_| {
            panic!(
                "{var}_{suffix} is not set: the Slurm test clusters are not running. Start them with\n\n    \
                 eval \"$(bash scripts/slurm-test-clusters start)\"\n\nor run bash scripts/test."
            )
        })
    };
    (get("URL"), get("TOKEN"))
}

fn driver(cluster_name: &str, dir: &std::path::Path) -> SlurmDriver {
    let (endpoint, token) = cluster(cluster_name);
    SlurmDriver::new(SlurmProviderConfig {
        name: ProviderId::parse(cluster_name),
        endpoint,
        user: "root".into(),
        token,
        partition: None,
        accelerator: Accelerator::parse("H100").unwrap(),
        gpus_per_node: 8,
        nodes: 2,
        job_dir: dir.to_owned(),
        timeout: Duration::from_secs(3),
    })
    .unwrap()
}

/// A key no earlier run used (slurmctld remembers finished jobs' names for a while).
fn unique_key(tag: &str, dir: &std::path::Path) -> IdempotencyKey {
    let salt = dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    IdempotencyKey::parse(&format!("hedge-test-{tag}-{salt}")).unwrap()
}

fn job_dir() -> tempfile::TempDir {
    std::fs::create_dir_all("/var/tmp/hedge-slurm-tests").unwrap();
    tempfile::Builder::new()
        .prefix("t")
        .tempdir_in("/var/tmp/hedge-slurm-tests")
        .unwrap()
}

async fn wait_for(
    d: &SlurmDriver,
    k: &IdempotencyKey,
    secs: u64,
    pred: impl Fn(&Observation) -> bool,
) -> Observation {
    let t0 = Instant::now();
    loop {
        let o = d.observe(k).await.unwrap();
        if pred(&o) {
            return o;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{k}: still {o:?} after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Jobs named `key` on the cluster, through slurmrestd.
async fn jobs_named(cluster_name: &str, key: &IdempotencyKey) -> Vec<serde_json::Value> {
    let (url, token) = cluster(cluster_name);
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/slurm/v0.0.38/jobs"))
        .header("X-SLURM-USER-NAME", "root")
        .header("X-SLURM-USER-TOKEN", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["name"] == key.as_str())
        .cloned()
        .collect()
}

#[tokio::test]
async fn runs_setup_and_run_with_envs_and_reads_its_logs() {
    let dir = job_dir();
    let d = driver("hedge-a", dir.path());
    d.probe().await.expect("hedge-a answers");
    let k = unique_key("env", dir.path());
    let mut s = spec(
        1,
        "echo run $GREETING gpus=$HEDGE_NUM_GPUS cvd=$CUDA_VISIBLE_DEVICES; cat setup.txt",
    );
    s.setup = Some("echo prepared > setup.txt".into());
    s.env.insert("GREETING".into(), "hello".into());
    s.gpus_per_node = 2;
    assert_eq!(d.submit(&k, &s).await.unwrap(), Observation::Queued);
    assert_eq!(
        wait_for(&d, &k, 30, Observation::is_terminal).await,
        Observation::Exited { code: 0 }
    );
    let logs = d.logs(&k, 10_000).await.unwrap();
    assert!(logs.stdout.contains("run hello gpus=2 cvd="), "{logs:?}");
    let cvd = logs
        .stdout
        .split("cvd=")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    assert_eq!(
        cvd.split(',').count(),
        2,
        "Slurm allocated two GPUs: {logs:?}"
    );
    assert!(
        logs.stdout.contains("prepared"),
        "setup ran first: {logs:?}"
    );
    let jobs = jobs_named("hedge-a", &k).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0]["comment"],
        k.as_str(),
        "the key is in the name and the comment"
    );
}

#[tokio::test]
async fn a_failing_setup_or_run_reports_its_exit_code() {
    let dir = job_dir();
    let d = driver("hedge-a", dir.path());
    let k = unique_key("exit3", dir.path());
    d.submit(&k, &spec(2, "exit 3")).await.unwrap();
    assert_eq!(
        wait_for(&d, &k, 30, Observation::is_terminal).await,
        Observation::Exited { code: 3 }
    );
    let k2 = unique_key("setupfail", dir.path());
    let mut s = spec(3, "echo never");
    s.setup = Some("exit 7".into());
    d.submit(&k2, &s).await.unwrap();
    assert_eq!(
        wait_for(&d, &k2, 30, Observation::is_terminal).await,
        Observation::Exited { code: 7 }
    );
    assert!(!d.logs(&k2, 1000).await.unwrap().stdout.contains("never"));
}

#[tokio::test]
async fn a_multi_node_task_runs_as_one_slurm_job_over_two_nodes() {
    let dir = job_dir();
    let d = driver("hedge-b", dir.path());
    let k = unique_key("multi", dir.path());
    let mut s = spec(
        4,
        "echo nodes=$SLURM_JOB_NUM_NODES list=$SLURM_JOB_NODELIST",
    );
    s.num_nodes = 2;
    s.gpus_per_node = 4;
    d.submit(&k, &s).await.unwrap();
    assert_eq!(
        wait_for(&d, &k, 30, Observation::is_terminal).await,
        Observation::Exited { code: 0 }
    );
    let out = d.logs(&k, 1000).await.unwrap().stdout;
    assert!(out.contains("nodes=2"), "{out}");
    assert_eq!(jobs_named("hedge-b", &k).await.len(), 1);
}

#[tokio::test]
async fn the_same_key_never_makes_a_second_job_even_from_a_new_driver() {
    let dir = job_dir();
    let d = driver("hedge-b", dir.path());
    let k = unique_key("idem", dir.path());
    let s = spec(5, "sleep 3");
    d.submit(&k, &s).await.unwrap();
    // A retry, and a retry by a fresh driver (a restarted broker: no cached job id).
    assert!(!d.submit(&k, &s).await.unwrap().is_terminal());
    let fresh = driver("hedge-b", dir.path());
    assert!(!fresh.submit(&k, &s).await.unwrap().is_terminal());
    assert_eq!(
        jobs_named("hedge-b", &k).await.len(),
        1,
        "one key, one sbatch'd job"
    );
    assert_eq!(
        wait_for(&fresh, &k, 30, Observation::is_terminal).await,
        Observation::Exited { code: 0 }
    );
    // Finished: a late submit of the same key reports the outcome instead of running it again.
    assert_eq!(
        fresh.submit(&k, &s).await.unwrap(),
        Observation::Exited { code: 0 }
    );
    assert_eq!(jobs_named("hedge-b", &k).await.len(), 1);
}

#[tokio::test]
async fn cancel_is_confirmed_and_slurm_shows_cancelled() {
    let dir = job_dir();
    let d = driver("hedge-a", dir.path());
    let k = unique_key("cancel", dir.path());
    d.submit(
        &k,
        &spec(
            6,
            "trap 'echo term' TERM; touch started; while :; do sleep 0.2; done",
        ),
    )
    .await
    .unwrap();
    wait_for(&d, &k, 30, |o| *o == Observation::Running).await;
    let t0 = Instant::now();
    let mut o = d.cancel(&k).await.unwrap();
    while !o.is_terminal() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "cancel not confirmed: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        o = d.cancel(&k).await.unwrap();
    }
    assert_eq!(o, Observation::Cancelled);
    let jobs = jobs_named("hedge-a", &k).await;
    assert_eq!(jobs[0]["job_state"], "CANCELLED", "{:#}", jobs[0]);
    // Idempotent.
    assert_eq!(d.cancel(&k).await.unwrap(), Observation::Cancelled);
}

#[tokio::test]
async fn what_a_cluster_cannot_run_is_rejected_naming_the_reason() {
    let dir = job_dir();
    let d = driver("hedge-a", dir.path());
    let k = unique_key("toobig", dir.path());
    let mut s = spec(7, "true");
    s.gpus_per_node = 9;
    let e = d.submit(&k, &s).await.unwrap_err();
    assert!(matches!(e, DriverError::Rejected { .. }), "{e}");
    assert!(e.to_string().contains("9 GPUs per node"), "{e}");
    s.gpus_per_node = 1;
    s.num_nodes = 3;
    assert!(d
        .submit(&k, &s)
        .await
        .unwrap_err()
        .to_string()
        .contains("3 nodes"));
    // Slurm itself refuses an unknown partition.
    let (endpoint, token) = cluster("hedge-a");
    let bad = SlurmDriver::new(SlurmProviderConfig {
        name: ProviderId::parse("hedge-a"),
        endpoint,
        user: "root".into(),
        token,
        partition: Some("no-such-partition".into()),
        accelerator: Accelerator::parse("H100").unwrap(),
        gpus_per_node: 8,
        nodes: 2,
        job_dir: dir.path().to_owned(),
        timeout: Duration::from_secs(3),
    })
    .unwrap();
    let k2 = unique_key("badpart", dir.path());
    let e = bad.submit(&k2, &spec(8, "true")).await.unwrap_err();
    assert!(matches!(e, DriverError::Rejected { .. }), "{e}");
}

#[tokio::test]
async fn an_unreachable_or_badly_authenticated_controller_is_an_outage_not_a_job_failure() {
    let dir = job_dir();
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_, token) = cluster("hedge-a");
    let mk = |endpoint: String, token: String| {
        SlurmDriver::new(SlurmProviderConfig {
            name: ProviderId::parse("gone"),
            endpoint,
            user: "root".into(),
            token,
            partition: None,
            accelerator: Accelerator::parse("H100").unwrap(),
            gpus_per_node: 8,
            nodes: 2,
            job_dir: dir.path().to_owned(),
            timeout: Duration::from_secs(2),
        })
        .unwrap()
    };
    let d = mk(format!("http://127.0.0.1:{port}"), token);
    let k = unique_key("gone", dir.path());
    assert!(matches!(
        d.probe().await,
        Err(DriverError::Unreachable { .. })
    ));
    assert!(matches!(
        d.observe(&k).await,
        Err(DriverError::Unreachable { .. })
    ));
    assert!(matches!(
        d.submit(&k, &spec(9, "true")).await,
        Err(DriverError::Unreachable { .. })
    ));
    // A wrong token.
    let (url, _) = cluster("hedge-a");
    let d = mk(url, "not-a-jwt".into());
    let e = d.probe().await.unwrap_err();
    assert!(matches!(e, DriverError::Unreachable { .. }), "{e}");
    // A malformed endpoint is refused at construction.
    let e = SlurmDriver::new(SlurmProviderConfig {
        name: ProviderId::parse("x"),
        endpoint: "not a url".into(),
        user: "root".into(),
        token: "t".into(),
        partition: None,
        accelerator: Accelerator::parse("H100").unwrap(),
        gpus_per_node: 8,
        nodes: 1,
        job_dir: dir.path().to_owned(),
        timeout: Duration::from_secs(2),
    })
    .err()
    .expect("a malformed endpoint is an error");
    assert!(e.to_string().contains("not a URL"), "{e}");
}

/// A killed controller (its slurmrestd stays up and hangs ~9 s per call): calls fail fast as an outage, and
/// after the restart the cluster answers and remembers its jobs.
#[tokio::test]
async fn a_dead_controller_times_out_fast_and_comes_back_with_its_jobs() {
    let dir = job_dir();
    let d = driver("hedge-c", dir.path());
    let k = unique_key("outage", dir.path());
    d.submit(&k, &spec(10, "sleep 2")).await.unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/slurm-test-clusters"
    );
    let run = |args: &[&str]| {
        let st = std::process::Command::new("bash")
            .arg(script)
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "slurm-test-clusters {args:?} failed");
    };
    run(&["kill", "hedge-c"]);
    let t0 = Instant::now();
    let r = d.observe(&k).await;
    let took = t0.elapsed();
    let e = match r {
        Err(e) => e,
        Ok(o) => {
            run(&["restart", "hedge-c"]);
            panic!("observe answered {o:?} with hedge-c's controller dead");
        }
    };
    run(&["restart", "hedge-c"]);
    assert!(matches!(e, DriverError::Unreachable { .. }), "{e}");
    assert!(took < Duration::from_secs(5), "the call hung {took:?}");
    d.probe().await.expect("hedge-c answers after the restart");
    let o = wait_for(&d, &k, 60, Observation::is_terminal).await;
    assert!(
        matches!(o, Observation::Exited { .. } | Observation::Lost { .. }),
        "{o:?}"
    );
    assert_eq!(
        jobs_named("hedge-c", &k).await.len(),
        1,
        "the restarted controller still knows the job"
    );
}
