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
//! | `cancel` | [`LocalDriver::cancel`] | cancellation was asked for; its mtime is when it was first asked |
//!
//! The wrapper is a few lines of `sh` started in its own process group and never waited for, so it
//! outlives the broker. It runs the command as a child and catches SIGTERM itself (a caught signal is reset
//! to the default in the command, so the command still gets it), so a cancel's SIGTERM to the group reaches
//! the command while the wrapper stays to record the exit status.
//!
//! **Cancellation is confirmed, not assumed.** [`LocalDriver::cancel`] writes `cancel`, sends SIGTERM to
//! the whole process group the first time, and SIGKILL to the group once `cancel` is older than the grace
//! period ([`LocalProviderConfig::cancel_grace`], default 30 s). It reports [`Observation::Cancelled`] only
//! when no process of the group is left (read from `/proc`), so a command that traps SIGTERM is reported
//! running until it is gone. The broker calls `cancel` again at every pass until it sees a terminal answer.
//!
//! An I/O error reading an attempt's files (other than "no such file") is a [`DriverError::Io`], never
//! "not found": the broker's error policy decides what it means. `mkdir claimed` is atomic: of any number of wrappers started for one key, exactly one
//! runs the command, so a submit retried after a crash (same key) never starts the work twice, and a submit
//! interrupted before its wrapper started is completed by the retry. Each start is also appended to
//! `<root>/<provider>/starts.log` (see [`LocalDriver::starts`]), the record tests count launches with.
//!
//! Everything the driver knows is in these files, so a restarted broker re-observes every attempt.

use crate::{
    Capabilities, Driver, DriverError, IdempotencyKey, LaunchSpec, Logs, Observation, Support,
};
use hedge_core::{Accelerator, ProviderId};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// One local provider: this machine, presented with `gpus` GPUs of kind `accelerator`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LocalProviderConfig {
    pub name: ProviderId,
    pub gpus: u32,
    pub accelerator: Option<Accelerator>,
    /// Directory under which this provider keeps `<name>/attempts/`.
    pub root: PathBuf,
    /// How long a cancelled command has after SIGTERM before its process group gets SIGKILL.
    #[serde(default = "default_cancel_grace")]
    pub cancel_grace: Duration,
}

/// The default grace period between SIGTERM and SIGKILL on cancel.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(30);

fn default_cancel_grace() -> Duration {
    DEFAULT_CANCEL_GRACE
}

const WRAPPER: &str = r#"d="$1"; starts="$2"
trap ':' TERM
mkdir "$d/claimed" 2>/dev/null || exit 0
echo $$ > "$d/pid.tmp" && mv -f "$d/pid.tmp" "$d/pid"
echo "$HEDGE_JOB_ID $HEDGE_ATTEMPT $HEDGE_IDEMPOTENCY_KEY $$" >> "$starts"
if [ -e "$d/cancel" ]; then code=143
elif ! cd "$d"; then code=126
else
  sh "$d/run.sh" > "$d/stdout.log" 2> "$d/stderr.log" < /dev/null &
  child=$!
  while :; do
    wait "$child"; code=$?
    kill -0 "$child" 2>/dev/null || break
  done
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
        std::fs::create_dir_all(&attempts)
            .map_err(DriverError::io("create directory", &attempts))?;
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
            if let Some(k) = e
                .file_name()
                .to_str()
                .and_then(|s| IdempotencyKey::parse(s).ok())
            {
                out.push(k);
            }
        }
        out.sort();
        Ok(out)
    }

    fn env(&self, key: &IdempotencyKey, spec: &LaunchSpec, dir: &Path) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = spec
            .env
            .iter()
            .filter(|(k, _)| !k.starts_with("HEDGE_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let accel = spec
            .accelerator
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default();
        env.extend([
            ("HEDGE_JOB_ID".to_owned(), spec.job.to_string()),
            ("HEDGE_ATTEMPT".to_owned(), spec.attempt.to_string()),
            ("HEDGE_IDEMPOTENCY_KEY".to_owned(), key.to_string()),
            ("HEDGE_PROVIDER".to_owned(), self.config.name.to_string()),
            ("HEDGE_TEAM".to_owned(), spec.team.to_string()),
            (
                "HEDGE_JOB_NAME".to_owned(),
                spec.name.clone().unwrap_or_default(),
            ),
            ("HEDGE_ACCELERATOR".to_owned(), accel),
            ("HEDGE_NUM_GPUS".to_owned(), spec.gpus_per_node.to_string()),
            ("HEDGE_NUM_NODES".to_owned(), spec.num_nodes.to_string()),
            ("HEDGE_NODE_RANK".to_owned(), "0".to_owned()),
            ("HEDGE_ATTEMPT_DIR".to_owned(), dir.display().to_string()),
        ]);
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
        if spec.num_nodes > 1 {
            return Err(DriverError::Unsupported {
                provider: self.config.name.clone(),
                reason: format!(
                    "a local provider is one node; the task asks for {}",
                    spec.num_nodes
                ),
            });
        }
        if spec.gpus_per_node > self.config.gpus {
            return Err(reject(format!(
                "asks for {} GPUs, the provider has {}",
                spec.gpus_per_node, self.config.gpus
            )));
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
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(DriverError::io("write", &tmp))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(DriverError::io("rename", path))
}

/// Whether `p` exists; an I/O error other than "no such file" is an error, never "absent".
async fn exists(p: &Path) -> Result<bool, DriverError> {
    tokio::fs::try_exists(p)
        .await
        .map_err(DriverError::io("stat", p))
}

/// Processes of process group `pgid` that are alive (not zombies), read from `/proc`.
async fn group_members(pgid: u32) -> Result<Vec<u32>, DriverError> {
    let proc = Path::new("/proc");
    let mut out = Vec::new();
    let mut dir = tokio::fs::read_dir(proc)
        .await
        .map_err(DriverError::io("list", proc))?;
    while let Some(e) = dir
        .next_entry()
        .await
        .map_err(DriverError::io("list", proc))?
    {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A process can exit between the listing and the read: that is "not a member", not an error.
        let Ok(stat) = tokio::fs::read_to_string(e.path().join("stat")).await else {
            continue;
        };
        if let Some((state, pgrp)) = parse_stat(&stat) {
            if pgrp == pgid && !matches!(state, 'Z' | 'X') {
                out.push(pid);
            }
        }
    }
    Ok(out)
}

/// `(state, process group)` from a `/proc/<pid>/stat` line (`pid (comm) state ppid pgrp ...`; `comm` may
/// hold spaces and parentheses, so fields are counted after its last `)`).
fn parse_stat(stat: &str) -> Option<(char, u32)> {
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let _ppid = f.next()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// How long ago `p` was last modified; the local driver's one wall-clock read (drivers are the I/O edge).
#[allow(clippy::disallowed_methods)] // compares a file's mtime with the wall clock: both are outside state
async fn age(p: &Path) -> Result<Duration, DriverError> {
    let m = tokio::fs::metadata(p)
        .await
        .map_err(DriverError::io("stat", p))?;
    let modified = m.modified().map_err(DriverError::io("stat", p))?;
    Ok(std::time::SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default())
}

/// Whether `pid` is a live (non-zombie) process whose command line mentions `dir` (guards against pid reuse).
async fn wrapper_alive(pid: u32, dir: &Path) -> bool {
    let stat = match tokio::fs::read_to_string(format!("/proc/{pid}/stat")).await {
        Ok(s) => s,
        Err(_) => return false,
    };
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
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

/// The trimmed contents of `p`, `None` if it does not exist; any other I/O error is an error.
async fn read_trimmed(p: &Path) -> Result<Option<String>, DriverError> {
    match tokio::fs::read_to_string(p).await {
        Ok(s) => Ok(Some(s.trim().to_owned())),
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
impl Driver for LocalDriver {
    fn provider(&self) -> &ProviderId {
        &self.config.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            accelerator: self.config.accelerator.clone(),
            gpus: self.config.gpus,
            spot: Support::No {
                reason: "a local machine has no spot market".into(),
            },
            multi_node: Support::No {
                reason: "a local provider is a single node".into(),
            },
            logs: Support::Yes,
        }
    }

    async fn submit(
        &self,
        key: &IdempotencyKey,
        spec: &LaunchSpec,
    ) -> Result<Observation, DriverError> {
        let dir = self.attempt_dir(key);
        if exists(&dir.join("claimed")).await? {
            return self.observe(key).await;
        }
        self.check_fits(key, spec)?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(DriverError::io("create directory", &dir))?;
        let spec_json = serde_json::to_vec_pretty(spec).expect("a LaunchSpec always serializes");
        write_atomic(&dir.join("spec.json"), &spec_json).await?;
        let script = crate::script::task_script(&self.config.name, spec)?;
        write_atomic(&dir.join("run.sh"), script.as_bytes()).await?;
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
        if !exists(&dir).await? {
            return Ok(Observation::NotFound);
        }
        let cancelled = exists(&dir.join("cancel")).await?;
        let pid = read_trimmed(&dir.join("pid"))
            .await?
            .and_then(|p| p.parse::<u32>().ok());
        // Work of a cancelled attempt is gone only when no process of its group is left.
        let group_alive = |pid: Option<u32>| async move {
            match pid {
                Some(pid) if cancelled => group_members(pid).await.map(|m| !m.is_empty()),
                _ => Ok(false),
            }
        };
        if let Some(code) = read_trimmed(&dir.join("exit")).await? {
            if group_alive(pid).await? {
                return Ok(Observation::Running);
            }
            let code: i32 = code.parse().unwrap_or(-1);
            return Ok(if cancelled && code != 0 {
                Observation::Cancelled
            } else {
                Observation::Exited { code }
            });
        }
        if !exists(&dir.join("claimed")).await? {
            return Ok(if cancelled {
                Observation::Cancelled
            } else {
                Observation::Queued
            });
        }
        let Some(pid) = pid else {
            // Claimed a moment ago; the pid file follows.
            return Ok(Observation::Running);
        };
        if wrapper_alive(pid, &dir).await {
            return Ok(Observation::Running);
        }
        // The wrapper may have written `exit` between our two reads.
        if let Some(code) = read_trimmed(&dir.join("exit")).await? {
            if group_alive(Some(pid)).await? {
                return Ok(Observation::Running);
            }
            let code: i32 = code.parse().unwrap_or(-1);
            return Ok(if cancelled && code != 0 {
                Observation::Cancelled
            } else {
                Observation::Exited { code }
            });
        }
        // The wrapper is gone without an exit status (killed); its command may still run in the group.
        if !group_members(pid).await?.is_empty() {
            return Ok(Observation::Running);
        }
        Ok(if cancelled {
            Observation::Cancelled
        } else {
            Observation::Lost {
                reason: format!("process {pid} is gone and left no exit status"),
            }
        })
    }

    async fn cancel(&self, key: &IdempotencyKey) -> Result<Observation, DriverError> {
        let dir = self.attempt_dir(key);
        if !exists(&dir).await? {
            return Ok(Observation::NotFound);
        }
        let marker = dir.join("cancel");
        let first = !exists(&marker).await?;
        if first {
            tokio::fs::write(&marker, b"")
                .await
                .map_err(DriverError::io("write", &marker))?;
        }
        if let Some(pid) = read_trimmed(&dir.join("pid"))
            .await?
            .and_then(|p| p.parse::<i32>().ok())
        {
            if !group_members(pid as u32).await?.is_empty() {
                // The wrapper leads its own process group: signal everything the command started.
                let signal = if age(&marker).await? >= self.config.cancel_grace {
                    Some(nix::sys::signal::Signal::SIGKILL)
                } else if first {
                    Some(nix::sys::signal::Signal::SIGTERM)
                } else {
                    None
                };
                if let Some(sig) = signal {
                    match nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), sig) {
                        // ESRCH: the group ended between the scan and the signal.
                        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                        Err(e) => {
                            return Err(DriverError::Io {
                                op: "signal the process group of",
                                path: dir.display().to_string(),
                                source: std::io::Error::from(e),
                            })
                        }
                    }
                }
            }
        }
        self.observe(key).await
    }

    async fn logs(&self, key: &IdempotencyKey, max_bytes: u64) -> Result<Logs, DriverError> {
        let dir = self.attempt_dir(key);
        if !exists(&dir).await? {
            return Err(DriverError::NotFound {
                provider: self.config.name.clone(),
                key: key.clone(),
            });
        }
        let (stdout, t1) = tail(&dir.join("stdout.log"), max_bytes).await?;
        let (stderr, t2) = tail(&dir.join("stderr.log"), max_bytes).await?;
        Ok(Logs {
            stdout,
            stderr,
            truncated: t1 || t2,
        })
    }

    async fn probe(&self) -> Result<(), DriverError> {
        let attempts = self.dir.join("attempts");
        tokio::fs::metadata(&attempts)
            .await
            .map(|_| ())
            .map_err(|e| DriverError::Unreachable {
                provider: self.config.name.clone(),
                reason: format!("{}: {e}", attempts.display()),
            })
    }
}
