//! The Slurm driver: runs each attempt as one batch job through slurmrestd's REST API (Slurm 22.05, API
//! v0.0.38), authenticated with a JWT (`X-SLURM-USER-NAME`, `X-SLURM-USER-TOKEN`).
//!
//! **Idempotency.** The attempt's idempotency key is the job's `name` and `comment`. Before submitting,
//! the driver looks the key up among the cluster's jobs (`GET /jobs`) and, on the shared job directory, for
//! the exit file the batch script leaves; a retried submit (after a crash or a lost response) finds the
//! first job instead of making a second one. A job id learnt once is cached in memory only as a shortcut:
//! every answer is re-derivable from the cluster and the job directory.
//!
//! **The batch script** (`<job_dir>/<key>.sh`, also sent as the job's script) runs the task's `setup` and
//! `run` with its `envs` and Hedge's `HEDGE_*` variables, writes stdout/stderr to `<key>.out`/`<key>.err`
//! and, last, the exit status to `<key>.exit`. The job directory must be on a filesystem the broker and
//! the compute nodes share (on the test clusters it is the same machine). The exit file keeps an attempt's
//! outcome after slurmctld has forgotten the job (`MinJobAge`), so a late observation never takes a
//! finished job for a lost one.
//!
//! **States.** [`map_state`] maps every Slurm job state onto an [`Observation`]: PENDING → queued;
//! RUNNING, COMPLETING, SUSPENDED → running (a job is not gone while it completes); COMPLETED → exited 0;
//! FAILED, TIMEOUT, OUT_OF_MEMORY, DEADLINE → exited non-zero (the job's own failure: not retried
//! elsewhere); CANCELLED → cancelled; NODE_FAIL, PREEMPTED, BOOT_FAIL → lost (the capacity failed: the
//! broker places the job again).
//!
//! **Outages.** A dead slurmctld makes slurmrestd calls hang for about 9 s; every call has a short timeout
//! ([`SlurmProviderConfig::timeout`]), and a timeout or refused connection is [`DriverError::Unreachable`]:
//! a provider outage for the broker's health tracking, never a job failure.

use crate::{
    Capabilities, Driver, DriverError, IdempotencyKey, LaunchSpec, Logs, Observation, Support,
};
use hedge_core::{Accelerator, ProviderId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// One Slurm cluster reached through slurmrestd.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmProviderConfig {
    pub name: ProviderId,
    /// slurmrestd's base URL, e.g. `http://127.0.0.1:6820`.
    pub endpoint: String,
    /// The Slurm user jobs run as (`X-SLURM-USER-NAME`).
    pub user: String,
    /// The JWT (`scontrol token`). Never logged: `Debug` redacts it.
    pub token: String,
    /// Partition to submit to; the cluster's default when `None`.
    pub partition: Option<String>,
    pub accelerator: Accelerator,
    pub gpus_per_node: u32,
    pub nodes: u32,
    /// A directory shared by the broker and the compute nodes: scripts, output and exit files.
    pub job_dir: PathBuf,
    /// Timeout of every REST call.
    pub timeout: Duration,
}

impl fmt::Debug for SlurmProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlurmProviderConfig")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("token", &"<redacted>")
            .field("partition", &self.partition)
            .field("accelerator", &self.accelerator)
            .field("gpus_per_node", &self.gpus_per_node)
            .field("nodes", &self.nodes)
            .field("job_dir", &self.job_dir)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The REST API version this driver speaks.
pub const API: &str = "v0.0.38";

/// The part of a v0.0.38 job record the driver reads.
#[derive(Clone, Debug, Deserialize)]
struct SlurmJob {
    job_id: u64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    job_state: String,
    /// A wait status: the exit code is `>> 8`, a signal is `& 0x7f`.
    #[serde(default)]
    exit_code: i64,
    #[serde(default)]
    state_reason: String,
}

#[derive(Deserialize)]
struct JobsResponse {
    #[serde(default)]
    jobs: Vec<SlurmJob>,
    #[serde(default)]
    errors: Vec<SlurmApiError>,
}

#[derive(Deserialize)]
struct SubmitResponse {
    #[serde(default)]
    job_id: Option<u64>,
    #[serde(default)]
    errors: Vec<SlurmApiError>,
}

#[derive(Deserialize, Debug)]
struct SlurmApiError {
    #[serde(default)]
    error_code: i64,
    #[serde(default)]
    error: String,
}

impl fmt::Display for SlurmApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (Slurm error {})", self.error, self.error_code)
    }
}

/// The exit code in a wait status: `status >> 8`, or `128 + signal` for a job killed by a signal.
pub fn exit_code_of(status: i64) -> i32 {
    let sig = status & 0x7f;
    if sig != 0 {
        128 + sig as i32
    } else {
        ((status >> 8) & 0xff) as i32
    }
}

/// Maps a Slurm job state (and its wait status) onto what the broker acts on. Pure; see the module docs.
pub fn map_state(state: &str, exit_status: i64, reason: &str) -> Observation {
    let code = exit_code_of(exit_status);
    let failed = |default: i32| Observation::Exited {
        code: if code == 0 { default } else { code },
    };
    // A job state may carry flags after a '+' in some versions (e.g. "CANCELLED+COMPLETING").
    let (base, flags) = state.split_once('+').unwrap_or((state, ""));
    if flags.contains("COMPLETING") {
        return Observation::Running;
    }
    match base {
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD"
        | "CONFIGURING" => Observation::Queued,
        "RUNNING" | "COMPLETING" | "SUSPENDED" | "STAGE_OUT" | "SIGNALING" | "RESIZING"
        | "STOPPED" => Observation::Running,
        "COMPLETED" => Observation::Exited { code },
        "FAILED" => failed(1),
        "TIMEOUT" => failed(124),
        "OUT_OF_MEMORY" => failed(137),
        "DEADLINE" => failed(124),
        "CANCELLED" => Observation::Cancelled,
        "NODE_FAIL" => Observation::Lost {
            reason: format!("Slurm node failure ({reason})"),
        },
        "PREEMPTED" => Observation::Lost {
            reason: "preempted by Slurm".to_owned(),
        },
        "BOOT_FAIL" => Observation::Lost {
            reason: format!("Slurm node boot failure ({reason})"),
        },
        other => Observation::Lost {
            reason: format!("unknown Slurm job state {other:?}"),
        },
    }
}

/// The Slurm driver. Cheap to construct; what matters is on the cluster and in the job directory.
pub struct SlurmDriver {
    config: SlurmProviderConfig,
    http: reqwest::Client,
    /// key -> Slurm job id, learnt from submits and lookups (a cache, never the only record).
    ids: Mutex<HashMap<String, u64>>,
}

impl SlurmDriver {
    /// Creates the job directory. Fails on a malformed endpoint; does not contact the cluster (see
    /// [`Driver::probe`]).
    pub fn new(config: SlurmProviderConfig) -> Result<Self, DriverError> {
        let url = reqwest::Url::parse(&config.endpoint).map_err(|e| DriverError::Unsupported {
            provider: config.name.clone(),
            reason: format!("endpoint {:?} is not a URL: {e}", config.endpoint),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DriverError::Unsupported {
                provider: config.name.clone(),
                reason: format!("endpoint {:?} must be http:// or https://", config.endpoint),
            });
        }
        std::fs::create_dir_all(&config.job_dir)
            .map_err(DriverError::io("create directory", &config.job_dir))?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(2)))
            .timeout(config.timeout)
            .build()
            .map_err(|e| DriverError::Unsupported {
                provider: config.name.clone(),
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(SlurmDriver {
            config,
            http,
            ids: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &SlurmProviderConfig {
        &self.config
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/slurm/{API}{path}",
            self.config.endpoint.trim_end_matches('/')
        )
    }

    fn file(&self, key: &IdempotencyKey, ext: &str) -> PathBuf {
        self.config.job_dir.join(format!("{}.{ext}", key.as_str()))
    }

    fn unreachable(&self, e: impl fmt::Display) -> DriverError {
        DriverError::Unreachable {
            provider: self.config.name.clone(),
            reason: e.to_string(),
        }
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value, DriverError> {
        let resp = req
            .header("X-SLURM-USER-NAME", &self.config.user)
            .header("X-SLURM-USER-TOKEN", &self.config.token)
            .send()
            .await
            .map_err(|e| {
                self.unreachable(if e.is_timeout() {
                    "slurmrestd did not answer in time".to_owned()
                } else {
                    e.to_string()
                })
            })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(self.unreachable(format!(
                "slurmrestd refused the credentials (HTTP {status})"
            )));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            self.unreachable(format!(
                "slurmrestd answered HTTP {status} with a body that is not JSON: {e}"
            ))
        })?;
        if status.is_server_error()
            && v.get("errors")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        {
            return Err(self.unreachable(format!("slurmrestd answered HTTP {status}")));
        }
        Ok(v)
    }

    /// Every job slurmctld knows.
    async fn jobs(&self) -> Result<Vec<SlurmJob>, DriverError> {
        let v = self.call(self.http.get(self.url("/jobs"))).await?;
        let r: JobsResponse = serde_json::from_value(v)
            .map_err(|e| self.unreachable(format!("unexpected /jobs answer: {e}")))?;
        if let Some(e) = r.errors.first() {
            return Err(self.unreachable(format!("/jobs: {e}")));
        }
        Ok(r.jobs)
    }

    /// The job of this attempt, newest first if (by hand) there are several.
    async fn find(&self, key: &IdempotencyKey) -> Result<Option<SlurmJob>, DriverError> {
        let cached = self
            .ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key.as_str())
            .copied();
        if let Some(id) = cached {
            let v = self
                .call(self.http.get(self.url(&format!("/job/{id}"))))
                .await?;
            if let Ok(r) = serde_json::from_value::<JobsResponse>(v) {
                if let Some(j) = r
                    .jobs
                    .into_iter()
                    .find(|j| j.job_id == id && j.name == key.as_str())
                {
                    return Ok(Some(j));
                }
            }
        }
        let found = self
            .jobs()
            .await?
            .into_iter()
            .filter(|j| j.name == key.as_str())
            .max_by_key(|j| j.job_id);
        if let Some(j) = &found {
            self.ids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.as_str().to_owned(), j.job_id);
        }
        Ok(found)
    }

    fn script(&self, key: &IdempotencyKey, spec: &LaunchSpec) -> Result<String, DriverError> {
        let exit = self.file(key, "exit");
        let mut s = String::from("#!/bin/sh\n");
        s.push_str(&format!(
            "# Hedge attempt {key}: job {} attempt {}\n",
            spec.job, spec.attempt
        ));
        let body = crate::script::task_script(&self.config.name, spec)?;
        s.push_str(&format!(
            "mkdir -p {d} && cd {d} || exit 1\n",
            d = shell_quote(&self.file(key, "d").display().to_string())
        ));
        s.push_str("hedge_task() (\n");
        s.push_str(&body);
        s.push_str(")\n");
        s.push_str("hedge_task\ncode=$?\n");
        s.push_str(&format!(
            "echo \"$code\" > {tmp} && mv -f {tmp} {exit}\nexit \"$code\"\n",
            tmp = shell_quote(&format!("{}.tmp", exit.display())),
            exit = shell_quote(&exit.display().to_string())
        ));
        Ok(s)
    }

    fn env(&self, key: &IdempotencyKey, spec: &LaunchSpec) -> serde_json::Map<String, Value> {
        let mut env = serde_json::Map::new();
        env.insert("PATH".into(), json!("/usr/local/bin:/usr/bin:/bin"));
        for (k, v) in spec.env.iter().filter(|(k, _)| !k.starts_with("HEDGE_")) {
            env.insert(k.clone(), json!(v));
        }
        let accel = spec
            .accelerator
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default();
        for (k, v) in [
            ("HEDGE_JOB_ID", spec.job.to_string()),
            ("HEDGE_ATTEMPT", spec.attempt.to_string()),
            ("HEDGE_IDEMPOTENCY_KEY", key.to_string()),
            ("HEDGE_PROVIDER", self.config.name.to_string()),
            ("HEDGE_TEAM", spec.team.to_string()),
            ("HEDGE_JOB_NAME", spec.name.clone().unwrap_or_default()),
            ("HEDGE_ACCELERATOR", accel),
            ("HEDGE_NUM_GPUS", spec.gpus_per_node.to_string()),
            ("HEDGE_NUM_NODES", spec.num_nodes.to_string()),
        ] {
            env.insert(k.into(), json!(v));
        }
        env
    }

    fn check_fits(&self, key: &IdempotencyKey, spec: &LaunchSpec) -> Result<(), DriverError> {
        let reject = |reason: String| DriverError::Rejected {
            provider: self.config.name.clone(),
            key: key.clone(),
            reason,
        };
        if spec.run.trim().is_empty() {
            return Err(DriverError::Unsupported {
                provider: self.config.name.clone(),
                reason: "the task has no run command".into(),
            });
        }
        if spec.num_nodes > self.config.nodes {
            return Err(reject(format!(
                "asks for {} nodes, the cluster has {}",
                spec.num_nodes, self.config.nodes
            )));
        }
        if spec.gpus_per_node > self.config.gpus_per_node {
            return Err(reject(format!(
                "asks for {} GPUs per node, the cluster's nodes have {}",
                spec.gpus_per_node, self.config.gpus_per_node
            )));
        }
        if spec.gpus_per_node > 0 {
            if let Some(want) = &spec.accelerator {
                if *want != self.config.accelerator {
                    return Err(reject(format!(
                        "asks for {want}, the cluster has {}",
                        self.config.accelerator
                    )));
                }
            }
        }
        Ok(())
    }

    /// What the job directory says of a job slurmctld no longer knows.
    async fn observe_files(&self, key: &IdempotencyKey) -> Result<Observation, DriverError> {
        match read_opt(&self.file(key, "exit")).await? {
            Some(code) => Ok(Observation::Exited {
                code: code.trim().parse().unwrap_or(-1),
            }),
            None => Ok(Observation::NotFound),
        }
    }

    fn observation(&self, j: &SlurmJob) -> Observation {
        map_state(&j.job_state, j.exit_code, &j.state_reason)
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

async fn read_opt(p: &Path) -> Result<Option<String>, DriverError> {
    match tokio::fs::read_to_string(p).await {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DriverError::io("read", p)(e)),
    }
}

async fn tail(path: &Path, max: u64) -> Result<(String, bool), DriverError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((String::new(), false)),
        Err(e) => return Err(DriverError::io("open", path)(e)),
    };
    let len = f
        .metadata()
        .await
        .map_err(DriverError::io("stat", path))?
        .len();
    let start = len.saturating_sub(max);
    f.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(DriverError::io("seek", path))?;
    let mut buf = Vec::new();
    f.take(max)
        .read_to_end(&mut buf)
        .await
        .map_err(DriverError::io("read", path))?;
    Ok((String::from_utf8_lossy(&buf).into_owned(), start > 0))
}

#[async_trait::async_trait]
impl Driver for SlurmDriver {
    fn provider(&self) -> &ProviderId {
        &self.config.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            accelerator: Some(self.config.accelerator.clone()),
            gpus: self.config.gpus_per_node.saturating_mul(self.config.nodes),
            spot: Support::No {
                reason: "a Slurm cluster has no spot market".into(),
            },
            multi_node: Support::Yes,
            logs: Support::Yes,
        }
    }

    async fn submit(
        &self,
        key: &IdempotencyKey,
        spec: &LaunchSpec,
    ) -> Result<Observation, DriverError> {
        // Idempotency: the key is looked up on the cluster (and in the job directory) before any submit.
        if let Some(j) = self.find(key).await? {
            return Ok(self.observation(&j));
        }
        if let o @ Observation::Exited { .. } = self.observe_files(key).await? {
            return Ok(o);
        }
        self.check_fits(key, spec)?;
        let script = self.script(key, spec)?;
        let script_path = self.file(key, "sh");
        tokio::fs::write(&script_path, &script)
            .await
            .map_err(DriverError::io("write", &script_path))?;
        let mut job = json!({
            "name": key.as_str(),
            "comment": key.as_str(),
            // One task per node: without `tasks`, slurmrestd 22.05 shrinks the allocation to one node.
            "nodes": [spec.num_nodes.max(1), spec.num_nodes.max(1)],
            "tasks": spec.num_nodes.max(1),
            "tasks_per_node": 1,
            "current_working_directory": self.config.job_dir.display().to_string(),
            "standard_output": self.file(key, "out").display().to_string(),
            "standard_error": self.file(key, "err").display().to_string(),
            "environment": self.env(key, spec),
            "requeue": false,
        });
        if spec.gpus_per_node > 0 {
            job["gpus_per_node"] = json!(spec.gpus_per_node.to_string());
        }
        if let Some(minutes) = spec.time_limit_minutes {
            job["time_limit"] = json!(minutes);
        }
        if let Some(p) = &self.config.partition {
            job["partition"] = json!(p);
        }
        let v = self
            .call(
                self.http
                    .post(self.url("/job/submit"))
                    .json(&json!({"script": script, "job": job})),
            )
            .await?;
        let r: SubmitResponse = serde_json::from_value(v)
            .map_err(|e| self.unreachable(format!("unexpected /job/submit answer: {e}")))?;
        if let Some(e) = r.errors.first() {
            return Err(DriverError::Rejected {
                provider: self.config.name.clone(),
                key: key.clone(),
                reason: e.to_string(),
            });
        }
        let Some(id) = r.job_id else {
            return Err(self.unreachable("/job/submit answered without a job id"));
        };
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.as_str().to_owned(), id);
        Ok(Observation::Queued)
    }

    async fn observe(&self, key: &IdempotencyKey) -> Result<Observation, DriverError> {
        match self.find(key).await? {
            Some(j) => Ok(self.observation(&j)),
            None => self.observe_files(key).await,
        }
    }

    async fn cancel(&self, key: &IdempotencyKey) -> Result<Observation, DriverError> {
        let Some(j) = self.find(key).await? else {
            return self.observe_files(key).await;
        };
        let o = self.observation(&j);
        if o.is_terminal() {
            return Ok(o);
        }
        // An error in the answer ("already completing") is not a failure: the observation below says what
        // is true, and the broker calls again until it is terminal.
        self.call(self.http.delete(self.url(&format!("/job/{}", j.job_id))))
            .await?;
        // Slurm reports CANCELLED only once the job's processes were signalled and reaped (COMPLETING
        // before that), so this is the confirmation the broker waits for.
        self.observe(key).await
    }

    async fn logs(&self, key: &IdempotencyKey, max_bytes: u64) -> Result<Logs, DriverError> {
        let out = self.file(key, "out");
        let script = self.file(key, "sh");
        if read_opt(&script).await?.is_none() && read_opt(&out).await?.is_none() {
            return Err(DriverError::NotFound {
                provider: self.config.name.clone(),
                key: key.clone(),
            });
        }
        let (stdout, t1) = tail(&out, max_bytes).await?;
        let (stderr, t2) = tail(&self.file(key, "err"), max_bytes).await?;
        Ok(Logs {
            stdout,
            stderr,
            truncated: t1 || t2,
        })
    }

    async fn probe(&self) -> Result<(), DriverError> {
        let v = self.call(self.http.get(self.url("/ping"))).await?;
        let up = v.get("pings").and_then(Value::as_array).is_some_and(|p| {
            p.iter()
                .any(|p| p.get("ping").and_then(Value::as_str) == Some("UP"))
        });
        if up {
            Ok(())
        } else {
            Err(self.unreachable(format!(
                "slurmctld is not up: {}",
                v.get("errors").cloned().unwrap_or_default()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slurm_state_maps_onto_the_lifecycle() {
        use Observation::*;
        let cases: &[(&str, i64, Observation)] = &[
            ("PENDING", 0, Queued),
            ("RUNNING", 0, Running),
            ("COMPLETING", 0, Running),
            ("COMPLETED", 0, Exited { code: 0 }),
            ("FAILED", 3 << 8, Exited { code: 3 }),
            ("FAILED", 0, Exited { code: 1 }),
            ("CANCELLED", 143 << 8, Cancelled),
            ("CANCELLED+COMPLETING", 0, Running),
            ("TIMEOUT", 0, Exited { code: 124 }),
            ("OUT_OF_MEMORY", 0, Exited { code: 137 }),
            ("DEADLINE", 0, Exited { code: 124 }),
            ("SUSPENDED", 0, Running),
        ];
        for (state, status, want) in cases {
            assert_eq!(&map_state(state, *status, "None"), want, "{state}");
        }
        for state in ["NODE_FAIL", "PREEMPTED", "BOOT_FAIL"] {
            assert!(
                matches!(map_state(state, 0, "x"), Lost { .. }),
                "{state}: capacity failures are lost, relaunched elsewhere"
            );
        }
        assert_eq!(
            map_state("PREEMPTED", 0, "x"),
            Lost {
                reason: "preempted by Slurm".into()
            }
        );
        assert!(matches!(map_state("SOMETHING_NEW", 0, "x"), Lost { .. }));
    }

    #[test]
    fn wait_status_decoding() {
        assert_eq!(exit_code_of(0), 0);
        assert_eq!(exit_code_of(768), 3);
        assert_eq!(exit_code_of(9), 137, "killed by SIGKILL");
        assert_eq!(exit_code_of(36608), 143);
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        let c = SlurmProviderConfig {
            name: ProviderId::parse("a"),
            endpoint: "http://127.0.0.1:1".into(),
            user: "root".into(),
            token: "secret-jwt".into(),
            partition: None,
            accelerator: Accelerator::parse("H100").unwrap(),
            gpus_per_node: 8,
            nodes: 2,
            job_dir: "/tmp".into(),
            timeout: Duration::from_secs(3),
        };
        assert!(!format!("{c:?}").contains("secret-jwt"));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
