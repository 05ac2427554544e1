//! The local driver: runs each attempt as a process group on this machine.
//!
//! Every attempt lives in its own directory, named by its idempotency key, under
//! `<root>/<provider>/attempts/<key>/`:
//!
//! | file | written by | meaning |
//! |---|---|---|
//! | `run.sh`, `spec.json` | [`LocalDriver::submit`] | the command and the launch spec |
//! | `claimed/` | the wrapper, with `mkdir` | the one wrapper allowed to run the command has started |
//! | `pid` | the wrapper | process (and process group) id of the wrapper |
//! | `stdout.log`, `stderr.log` | the command | its output |
//! | `exit` | the wrapper | the command's exit status, written last, atomically |
//! | `cancel` | [`LocalDriver::cancel`] | cancellation was asked for |
//!
//! The wrapper is a few lines of `sh` started in its own process group and never waited for, so it
//! outlives the broker. `mkdir claimed` is atomic: of any number of wrappers started for one key, exactly one
//! runs the command, so a submit retried after a crash (same key) never starts the work twice, and a submit
//! interrupted before its wrapper started is completed by the retry. Each start is also appended to
//! `<root>/<provider>/starts.log` (see [`LocalDriver::starts`]), the record tests count launches with.
//!
//! Everything the driver knows is in these files, so a restarted broker re-observes every attempt.

use crate::{Capabilities, Driver, DriverError, IdempotencyKey, LaunchSpec, Logs, Observation, Support};
use hedge_core::{Accelerator, ProviderId};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// One local provider: this machine, presented with `gpus` GPUs of kind `accelerator`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LocalProviderConfig {
    pub name: ProviderId,
    pub gpus: u32,
    pub accelerator: Option<Accelerator>,
    /// Directory under which this provider keeps `<name>/attempts/`.
    pub root: PathBuf,
}

const WRAPPER: &str = r#"d="$1"; starts="$2"
mkdir "$d/claimed" 2>/dev/null || exit 0
echo $$ > "$d/pid.tmp" && mv -f "$d/pid.tmp" "$d/pid"
echo "$HEDGE_JOB_ID $HEDGE_ATTEMPT $HEDGE_IDEMPOTENCY_KEY $$" >> "$starts"
if [ -e "$d/cancel" ]; then code=143; else
  cd "$d" && sh "$d/run.sh" > "$d/stdout.log" 2> "$d/stderr.log" < /dev/null
  code=$?
fi
echo "$code" > "$d/exit.tmp" && mv -f "$d/exit.tmp" "$d/exit"
"#;

/// One line of `starts.log`: an attempt whose command actually started.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StartRecord {
    pub job: u64,
    pub attempt: u32,
    pub key: String,
    pub pid: u32,
}

/// The local process driver. Cheap to construct; all state is on disk.
pub struct LocalDriver {
    config: LocalProviderConfig,
    dir: PathBuf,
}

impl LocalDriver {
    /// Creates `<root>/<name>/attempts/` if needed.
    pub fn new(config: LocalProviderConfig) -> Result<Self, DriverError> {
        let dir = config.root.join(config.name.as_str());
        let attempts = dir.join("attempts");
        std::fs::create_dir_all(&attempts).map_err(DriverError::io("create directory", &attempts))?;
        Ok(LocalDriver { config, dir })
    }

    pub fn config(&self) -> &LocalProviderConfig {
        &self.config
    }

    fn attempt_dir(&self, key: &IdempotencyKey) -> PathBuf {
        self.dir.join("attempts").join(key.as_str())
    }

    fn starts_log(&self) -> PathBuf {
        self.dir.join("starts.log")
    }

    /// Every start recorded by this provider's wrappers, in order.
    pub fn starts(&self) -> Result<Vec<StartRecord>, DriverError> {
        read_starts(&self.starts_log())
    }

    /// Keys of every attempt this provider holds a directory for.
    pub fn keys(&self) -> Result<Vec<IdempotencyKey>, DriverError> {
        let attempts = self.dir.join("attempts");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&attempts).map_err(DriverError::io("list", &attempts))? {
            let e = e.map_err(DriverError::io("list", &attempts))?;
            if let Some(k) = e.file_name().to_str().and_then(|s| IdempotencyKey::parse(s).ok()) {
                out.push(k);
            }
        }
        out.sort();
        Ok(out)
    }

    fn env(&self, key: &IdempotencyKey, spec: &LaunchSpec, dir: &Path) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> =
            spec.env.iter().filter(|(k, _)| !k.starts_with("HEDGE_")).map(|(k, v)| (k.clone(), v.clone())).collect();
        let accel = spec.accelerator.as_ref().map(|a| a.to_string()).unwrap_or_default();
        env.extend([
            ("HEDGE_JOB_ID".to_owned(), spec.job.to_string()),
            ("HEDGE_ATTEMPT".to_owned(), spec.attempt.to_string()),
            ("HEDGE_IDEMPOTENCY_KEY".to_owned(), key.to_string()),
            ("HEDGE_PROVIDER".to_owned(), self.config.name.to_string()),
            ("HEDGE_TEAM".to_owned(), spec.team.to_string()),
            ("HEDGE_JOB_NAME".to_owned(), spec.name.clone().unwrap_or_default()),
            ("HEDGE_ACCELERATOR".to_owned(), accel),
            ("HEDGE_NUM_GPUS".to_owned(), spec.gpus_per_node.to_string()),
            ("HEDGE_NUM_NODES".to_owned(), spec.num_nodes.to_string()),
            ("HEDGE_NODE_RANK".to_owned(), "0".to_owned()),
            ("HEDGE_ATTEMPT_DIR".to_owned(), dir.display().to_string()),
        ]);
        env
    }

    fn check_fits(&self, key: &IdempotencyKey, spec: &LaunchSpec) -> Result<(), DriverError> {
        let reject = |reason: String| DriverError::Rejected { provider: self.config.name.clone(), key: key.clone(), reason };
        if spec.run.trim().is_empty() {
            return Err(DriverError::Unsupported {
                provider: self.config.name.clone(),
                reason: "the task has no run command".into(),
            });
        }
        if spec.num_nodes > 1 {
            return Err(DriverError::Unsupported {
                provider: self.config.name.clone(),
                reason: format!("a local provider is one node; the task asks for {}", spec.num_nodes),
            });
        }
        if spec.gpus_per_node > self.config.gpus {
            return Err(reject(format!("asks for {} GPUs, the provider has {}", spec.gpus_per_node, self.config.gpus)));
        }
        if spec.gpus_per_node > 0 {
            if let (Some(want), Some(have)) = (&spec.accelerator, &self.config.accelerator) {
                if want != have {
                    return Err(reject(format!("asks for {want}, the provider has {have}")));
                }
            }
        }
        Ok(())
    }
}

fn read_starts(path: &Path) -> Result<Vec<StartRecord>, DriverError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DriverError::io("read", path)(e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some(StartRecord {
                job: it.next()?.parse().ok()?,
                attempt: it.next()?.parse().ok()?,
                key: it.next()?.to_owned(),
                pid: it.next()?.parse().ok()?,
            })
        })
        .collect())
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DriverError> {
    // A unique temporary name: concurrent submits of one key each write their own copy.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    tokio::fs::write(&tmp, bytes).await.map_err(DriverError::io("write", &tmp))?;
    tokio::fs::rename(&tmp, path).await.map_err(DriverError::io("rename", path))
}

async fn exists(p: &Path) -> bool {
    tokio::fs::try_exists(p).await.unwrap_or(false)
}

/// Whether `pid` is a live (non-zombie) process whose command line mentions `dir` (guards against pid reuse).
async fn wrapper_alive(pid: u32, dir: &Path) -> bool {
    let stat = match tokio::fs::read_to_string(format!("/proc/{pid}/stat")).await {
        Ok(s) => s,
        Err(_) => return false,
    };
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    if matches!(state, Some('Z' | 'X') | None) {
        return false;
    }
    match tokio::fs::read(format!("/proc/{pid}/cmdline")).await {
        Ok(cmd) => {
            let needle = dir.as_os_str().as_encoded_bytes();
            cmd.windows(needle.len()).any(|w| w == needle)
        }
        Err(_) => false,
    }
}

async fn read_trimmed(p: &Path) -> Option<String> {
    tokio::fs::read_to_string(p).await.ok().map(|s| s.trim().to_owned())
}

async fn tail(path: &Path, max: u64) -> Result<(String, bool), DriverError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((String::new(), false)),
        Err(e) => return Err(DriverError::io("open", path)(e)),
    };
    let len = f.metadata().await.map_err(DriverError::io("stat", path))?.len();
    let start = len.saturating_sub(max);
    f.seek(std::io::SeekFrom::Start(start)).await.map_err(DriverError::io("seek", path))?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf).await.map_err(DriverError::io("read", path))?;
    Ok((String::from_utf8_lossy(&buf).into_owned(), start > 0))
}

#[async_trait::async_trait]
impl Driver for LocalDriver {
    fn provider(&self) -> &ProviderId {
        &self.config.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            accelerator: self.config.accelerator.clone(),
            gpus: self.config.gpus,
            spot: Support::No { reason: "a local machine has no spot market".into() },
            multi_node: Support::No { reason: "a local provider is a single node".into() },
            logs: Support::Yes,
        }
    }

    async fn submit(&self, key: &IdempotencyKey, spec: &LaunchSpec) -> Result<Observation, DriverError> {
        let dir = self.attempt_dir(key);
        if exists(&dir.join("claimed")).await {
            return self.observe(key).await;
        }
        self.check_fits(key, spec)?;
        tokio::fs::create_dir_all(&dir).await.map_err(DriverError::io("create directory", &dir))?;
        let spec_json = serde_json::to_vec_pretty(spec).expect("a LaunchSpec always serializes");
        write_atomic(&dir.join("spec.json"), &spec_json).await?;
        write_atomic(&dir.join("run.sh"), spec.run.as_bytes()).await?;
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("hedge-wrapper")
            .arg(&dir)
            .arg(self.starts_log())
            .envs(self.env(key, spec, &dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(DriverError::io("start wrapper for", &dir))?;
        // Never waited for: the wrapper must outlive the broker. Tokio reaps it if it exits first.
        drop(child);
        Ok(Observation::Queued)
    }

    async fn observe(&self, key: &IdempotencyKey) -> Result<Observation, DriverError> {
        let dir = self.attempt_dir(key);
        if !exists(&dir).await {
            return Ok(Observation::NotFound);
        }
        let cancelled = exists(&dir.join("cancel")).await;
        if let Some(code) = read_trimmed(&dir.join("exit")).await {
            let code: i32 = code.parse().unwrap_or(-1);
            return Ok(if cancelled && code != 0 { Observation::Cancelled } else { Observation::Exited { code } });
        }
        if !exists(&dir.join("claimed")).await {
            return Ok(if cancelled { Observation::Cancelled } else { Observation::Queued });
        }
        let Some(pid) = read_trimmed(&dir.join("pid")).await.and_then(|p| p.parse::<u32>().ok()) else {
            // Claimed a moment ago; the pid file follows.
            return Ok(Observation::Running);
        };
        if wrapper_alive(pid, &dir).await {
            return Ok(Observation::Running);
        }
        // The wrapper may have written `exit` between our two reads.
        if let Some(code) = read_trimmed(&dir.join("exit")).await {
            let code: i32 = code.parse().unwrap_or(-1);
            return Ok(if cancelled && code != 0 { Observation::Cancelled } else { Observation::Exited { code } });
        }
        Ok(if cancelled {
            Observation::Cancelled
        } else {
            Observation::Lost { reason: format!("process {pid} is gone and left no exit status") }
        })
    }

    async fn cancel(&self, key: &IdempotencyKey) -> Result<Observation, DriverError> {
        let dir = self.attempt_dir(key);
        if !exists(&dir).await {
            return Ok(Observation::NotFound);
        }
        if exists(&dir.join("exit")).await {
            return self.observe(key).await;
        }
        let marker = dir.join("cancel");
        tokio::fs::write(&marker, b"").await.map_err(DriverError::io("write", &marker))?;
        if let Some(pid) = read_trimmed(&dir.join("pid")).await.and_then(|p| p.parse::<i32>().ok()) {
            if wrapper_alive(pid as u32, &dir).await {
                // The wrapper leads its own process group: signal the command with it.
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
        }
        self.observe(key).await
    }

    async fn logs(&self, key: &IdempotencyKey, max_bytes: u64) -> Result<Logs, DriverError> {
        let dir = self.attempt_dir(key);
        if !exists(&dir).await {
            return Err(DriverError::NotFound { provider: self.config.name.clone(), key: key.clone() });
        }
        let (stdout, t1) = tail(&dir.join("stdout.log"), max_bytes).await?;
        let (stderr, t2) = tail(&dir.join("stderr.log"), max_bytes).await?;
        Ok(Logs { stdout, stderr, truncated: t1 || t2 })
    }

    async fn probe(&self) -> Result<(), DriverError> {
        let attempts = self.dir.join("attempts");
        tokio::fs::metadata(&attempts).await.map(|_| ()).map_err(|e| DriverError::Unreachable {
            provider: self.config.name.clone(),
            reason: format!("{}: {e}", attempts.display()),
        })
    }
}
