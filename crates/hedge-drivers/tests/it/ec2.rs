//! The EC2 driver against a real EC2 API endpoint: the moto server (PyPI `moto[server]`), started here on
//! loopback with dummy credentials. Nothing boots inside moto, so the test acts as the hypervisor: for each
//! instance moto reports running, it reads the instance's UserData back through the API
//! (`DescribeInstanceAttribute`) and runs exactly that boot script as a local process. The script reports
//! its output and exit status over HTTP to a small receiver standing in for the broker's report endpoint,
//! which checks the attempt token and hands the report to the driver — the real script and the real report
//! path.

// A test bounds its waits by the wall clock and finds moto through the environment.
#![allow(clippy::disallowed_methods)]

use crate::spec;
use hedge_drivers::ec2::{AttemptReport, OutputStream, TAG_KEY};
use hedge_drivers::{
    Driver, DriverError, Ec2Driver, Ec2ProviderConfig, IdempotencyKey, LaunchSpec, Observation,
};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One moto server on a free loopback port for the whole test binary (each test uses its own keys); a
/// watchdog shell ends it when this process exits.
pub struct Moto {
    pub url: String,
}

pub fn moto() -> &'static Moto {
    static MOTO: std::sync::OnceLock<Moto> = std::sync::OnceLock::new();
    MOTO.get_or_init(|| {
        let bin = std::env::var("HEDGE_MOTO_SERVER").unwrap_or_else(|_| "/var/tmp/hedge-moto-venv/bin/moto_server".into());
        if !std::path::Path::new(&bin).exists() {
            panic!(
                "moto_server not found at {bin}. Install it with\n\n    python3 -m venv /var/tmp/hedge-moto-venv && \
                 /var/tmp/hedge-moto-venv/bin/pip install 'moto[server]'\n\nor run bash scripts/test (or set HEDGE_MOTO_SERVER)."
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let watchdog = format!(
            "\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {me} 2>/dev/null; do sleep 1; done; kill $m",
            me = std::process::id()
        );
        // The watchdog outlives nothing but this process, which never waits for it (it ends with us).
        #[allow(clippy::zombie_processes)]
        Command::new("sh").args(["-c", &watchdog, &bin]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start moto_server");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(60), "moto_server did not listen on {port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { url: format!("http://127.0.0.1:{port}") }
    })
}

fn config(endpoint: &str, report_url: &str, state: &std::path::Path) -> Ec2ProviderConfig {
    Ec2ProviderConfig {
        name: hedge_core::ProviderId::parse("aws"),
        endpoint: endpoint.to_owned(),
        region: "us-east-1".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        image_id: "ami-12c6146b".into(),
        report_url: report_url.to_owned(),
        report_secret: "report-secret".into(),
        state_dir: state.to_owned(),
        // Generous: the test machine is shared with compilers, and moto is a Python server.
        timeout: Duration::from_secs(20),
    }
}

/// Receives boot scripts' reports (`POST /v1/attempts/{key}/logs?stream=..` and `/status`), checks the
/// attempt token with the driver and records the report through it: the broker's part, in the test.
async fn receiver(driver: Arc<Ec2Driver>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let d = driver.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                let mut line = String::new();
                r.read_line(&mut line).await.unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (mut len, mut auth) = (0usize, String::new());
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).await.unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (name, value) = h.split_once(':').unwrap_or((h, ""));
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => len = value.trim().parse().unwrap_or(0),
                        "authorization" => {
                            auth = value.trim().trim_start_matches("Bearer ").to_owned()
                        }
                        _ => {}
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).await.unwrap();
                let rest = path.strip_prefix("/v1/attempts/").unwrap_or("");
                let (key, tail) = rest.split_once('/').unwrap_or((rest, ""));
                let status = match IdempotencyKey::parse(key) {
                    Ok(k) if d.check_token(&k, &auth) => {
                        if tail == "status" {
                            let rep: AttemptReport = serde_json::from_slice(&body).unwrap();
                            d.record_report(&k, &rep).await.unwrap();
                        } else {
                            let stream = if tail.contains("stream=stderr") {
                                OutputStream::Stderr
                            } else {
                                OutputStream::Stdout
                            };
                            d.record_output(&k, stream, &body).await.unwrap();
                        }
                        "204 No Content"
                    }
                    _ => "401 Unauthorized",
                };
                w.write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .unwrap();
            });
        }
    });
    url
}

/// The hypervisor: boots (once) every running instance of these keys by running its UserData locally.
struct Hypervisor {
    booted: Mutex<BTreeSet<String>>,
    children: Mutex<Vec<Child>>,
}

impl Hypervisor {
    fn new() -> Self {
        Hypervisor {
            booted: Mutex::new(BTreeSet::new()),
            children: Mutex::new(vec![]),
        }
    }
    async fn boot(&self, d: &Ec2Driver, key: &IdempotencyKey) {
        for i in d.instances_of(key).await.unwrap() {
            if i.state != "running" || self.booted.lock().unwrap().contains(&i.instance_id) {
                continue;
            }
            let script = d
                .user_data(&i.instance_id)
                .await
                .unwrap()
                .expect("the instance has user data");
            let child = Command::new("sh")
                .arg("-c")
                .arg(&script)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            self.children.lock().unwrap().push(child);
            self.booted.lock().unwrap().insert(i.instance_id);
        }
    }
}

impl Drop for Hypervisor {
    fn drop(&mut self) {
        for c in self.children.lock().unwrap().iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn launch(job: u64, run: &str) -> LaunchSpec {
    let mut s = spec(job, run);
    s.instance_type = Some("p5.48xlarge".into());
    s.gpus_per_node = 8;
    s
}

async fn until(
    d: &Ec2Driver,
    hv: &Hypervisor,
    k: &IdempotencyKey,
    secs: u64,
    pred: impl Fn(&Observation) -> bool,
) -> Observation {
    let t0 = Instant::now();
    loop {
        hv.boot(d, k).await;
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

struct Env {
    driver: Arc<Ec2Driver>,
    hv: Hypervisor,
    _state: tempfile::TempDir,
}

async fn env() -> Env {
    let moto = moto();
    let state = tempfile::tempdir().unwrap();
    // The receiver records through a driver over the same state directory and secret as the one under
    // test (which needs the receiver's URL for its boot scripts), as the broker's endpoint would.
    let rx =
        Arc::new(Ec2Driver::new(config(&moto.url, "http://127.0.0.1:1", state.path())).unwrap());
    let url = receiver(rx).await;
    let driver = Arc::new(Ec2Driver::new(config(&moto.url, &url, state.path())).unwrap());
    Env {
        driver,
        hv: Hypervisor::new(),
        _state: state,
    }
}

#[tokio::test]
async fn a_launch_boots_its_script_which_reports_output_and_exit_status() {
    let e = env().await;
    let d = &e.driver;
    d.probe().await.expect("moto answers");
    let k = IdempotencyKey::parse("ec2-run").unwrap();
    let mut s = launch(
        1,
        "echo run $GREETING $HEDGE_JOB_ID; cat prepared; echo oops >&2",
    );
    s.setup = Some("echo setup-done > prepared".into());
    s.env.insert("GREETING".into(), "hello world".into());
    s.commitment = Some("plan-aws-H100-12p-0".into());
    let first = d.submit(&k, &s).await.unwrap();
    assert!(
        matches!(first, Observation::Queued | Observation::Running),
        "{first:?}"
    );
    let inst = d.instances_of(&k).await.unwrap();
    assert_eq!(inst.len(), 1);
    assert_eq!(
        inst[0].instance_type, "p5.48xlarge",
        "the instance type placement chose"
    );
    let tag = |name: &str| {
        inst[0]
            .tags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(tag(TAG_KEY).as_deref(), Some("ec2-run"));
    assert_eq!(tag("hedge:job").as_deref(), Some("1"));
    assert_eq!(tag("hedge:attempt").as_deref(), Some("1"));
    assert_eq!(tag("hedge:team").as_deref(), Some("ml"));
    assert_eq!(
        tag("hedge:commitment").as_deref(),
        Some("plan-aws-H100-12p-0")
    );
    let o = until(d, &e.hv, &k, 30, Observation::is_terminal).await;
    assert_eq!(o, Observation::Exited { code: 0 });
    let logs = d.logs(&k, 10_000).await.unwrap();
    assert!(logs.stdout.contains("run hello world 1"), "{logs:?}");
    assert!(logs.stdout.contains("setup-done"), "{logs:?}");
    assert_eq!(logs.stderr.trim(), "oops");
    // Done: the driver terminated the instance.
    let inst = d.instances_of(&k).await.unwrap();
    assert!(
        matches!(inst[0].state.as_str(), "shutting-down" | "terminated"),
        "{inst:?}"
    );
    // A failing command reports its code.
    let k2 = IdempotencyKey::parse("ec2-exit3").unwrap();
    d.submit(&k2, &launch(2, "exit 3")).await.unwrap();
    assert_eq!(
        until(d, &e.hv, &k2, 30, Observation::is_terminal).await,
        Observation::Exited { code: 3 }
    );
}

#[tokio::test]
async fn the_same_key_never_makes_a_second_instance_although_moto_ignores_client_tokens() {
    let e = env().await;
    let k = IdempotencyKey::parse("ec2-idem").unwrap();
    let s = launch(3, "sleep 30");
    e.driver.submit(&k, &s).await.unwrap();
    e.driver.submit(&k, &s).await.unwrap();
    // A restarted broker: a new driver over the same account.
    let fresh = Ec2Driver::new(e.driver.config().clone()).unwrap();
    fresh.submit(&k, &s).await.unwrap();
    assert_eq!(
        e.driver.instances_of(&k).await.unwrap().len(),
        1,
        "one key, one instance"
    );
}

#[tokio::test]
async fn cancel_terminates_the_instance_and_is_confirmed() {
    let e = env().await;
    let k = IdempotencyKey::parse("ec2-cancel").unwrap();
    e.driver.submit(&k, &launch(4, "sleep 60")).await.unwrap();
    until(&e.driver, &e.hv, &k, 30, |o| *o == Observation::Running).await;
    let t0 = Instant::now();
    let mut o = e.driver.cancel(&k).await.unwrap();
    while !o.is_terminal() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "cancel not confirmed: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        o = e.driver.cancel(&k).await.unwrap();
    }
    assert_eq!(o, Observation::Cancelled);
    let inst = e.driver.instances_of(&k).await.unwrap();
    assert_eq!(
        inst[0].state, "terminated",
        "moto shows the instance terminated"
    );
    assert_eq!(e.driver.observe(&k).await.unwrap(), Observation::Cancelled);
}

#[tokio::test]
async fn a_spot_instance_terminated_by_the_provider_is_a_preemption() {
    let e = env().await;
    let k = IdempotencyKey::parse("ec2-spot").unwrap();
    let mut s = launch(5, "sleep 60");
    s.spot = true;
    e.driver.submit(&k, &s).await.unwrap();
    until(&e.driver, &e.hv, &k, 30, |o| *o == Observation::Running).await;
    let inst = e.driver.instances_of(&k).await.unwrap();
    assert_eq!(
        inst[0].lifecycle.as_deref(),
        Some("spot"),
        "launched on the spot market"
    );
    // The provider reclaims it (TerminateInstances by someone else than Hedge).
    terminate_outside_hedge(&e.driver.config().endpoint, &inst[0].instance_id);
    let o = until(&e.driver, &e.hv, &k, 30, Observation::is_terminal).await;
    assert!(
        matches!(&o, Observation::Lost { reason } if reason.contains("preempted")),
        "{o:?}"
    );
}

/// Terminates an instance through the EC2 API as someone other than Hedge (boto3, the AWS SDK for Python).
fn terminate_outside_hedge(endpoint: &str, instance_id: &str) {
    let py = std::env::var("HEDGE_MOTO_PYTHON")
        .unwrap_or_else(|_| "/var/tmp/hedge-moto-venv/bin/python".into());
    let code = format!(
        "import boto3; boto3.client('ec2', endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='testing', \
         aws_secret_access_key='testing').terminate_instances(InstanceIds=['{instance_id}'])"
    );
    let st = Command::new(py)
        .args(["-c", &code])
        .status()
        .expect("run boto3");
    assert!(st.success(), "boto3 terminate_instances failed");
}

#[tokio::test]
async fn a_wrong_endpoint_is_an_outage_and_missing_credentials_are_refused() {
    let state = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = Ec2Driver::new(config(
        &format!("http://127.0.0.1:{port}"),
        "http://127.0.0.1:1",
        state.path(),
    ))
    .unwrap();
    let k = IdempotencyKey::parse("ec2-nowhere").unwrap();
    assert!(matches!(
        d.probe().await,
        Err(DriverError::Unreachable { .. })
    ));
    assert!(matches!(
        d.submit(&k, &launch(6, "true")).await,
        Err(DriverError::Unreachable { .. })
    ));
    let mut c = config("http://127.0.0.1:1", "http://127.0.0.1:1", state.path());
    c.secret_access_key.clear();
    let e = Ec2Driver::new(c)
        .err()
        .expect("missing credentials are an error");
    assert!(e.to_string().contains("credentials"), "{e}");
    let e = Ec2Driver::new(config("ftp://x", "http://127.0.0.1:1", state.path()))
        .err()
        .expect("bad scheme");
    assert!(e.to_string().contains("http"), "{e}");
}

#[test]
fn secrets_never_show_in_debug() {
    let c = config("http://x", "http://y", std::path::Path::new("/tmp"));
    let s = format!("{c:?}");
    assert!(
        !s.contains("report-secret") && !s.contains("secret_access_key: \"testing\""),
        "{s}"
    );
}

#[tokio::test]
async fn workdir_and_file_mounts_are_refused_by_name_not_dropped() {
    let e = env().await;
    let k = IdempotencyKey::parse("ec2-files").unwrap();
    let mut s = launch(7, "true");
    s.workdir = Some("/srv/code".into());
    let err = e.driver.submit(&k, &s).await.unwrap_err();
    assert!(
        matches!(err, DriverError::Unsupported { .. }) && err.to_string().contains("workdir"),
        "{err}"
    );
    let mut s = launch(7, "true");
    s.file_mounts.insert("data".into(), "/srv/data".into());
    assert!(e
        .driver
        .submit(&k, &s)
        .await
        .unwrap_err()
        .to_string()
        .contains("file_mounts.data"));
    assert!(
        e.driver.instances_of(&k).await.unwrap().is_empty(),
        "nothing was launched"
    );
}
