//! Drivers: the only code in Hedge that talks to providers.
//!
//! A [`Driver`] runs launch attempts on one provider through three idempotent verbs:
//!
//! * [`Driver::submit`] is keyed by an [`IdempotencyKey`]. Submitting the same key twice never starts the
//!   work twice; the second call reports what the first one started.
//! * [`Driver::observe`] reports what the provider knows of an attempt ([`Observation`]).
//! * [`Driver::cancel`] stops an attempt; cancelling a finished or cancelled attempt is a no-op.
//!
//! What a provider can do is data: [`Capabilities`], where each unsupported feature carries its reason.
//!
//! Implementations: [`LocalDriver`] (processes on this machine, the embedded default), [`SlurmDriver`]
//! (batch jobs through slurmrestd's REST API), [`Ec2Driver`] (instances through the EC2 Query API) and
//! [`FaultyDriver`],
//! a wrapper around any driver that fails submits, loses attempts or makes the whole provider unreachable,
//! switched at run time through a [`FaultControl`].
//!
//! **Architecture Invariant:** only this crate starts, observes or stops work on a provider. The broker
//! decides *what* to run where; drivers only carry it out.

pub mod ec2;
mod fault;
mod local;
pub mod script;
pub mod slurm;

pub use ec2::{Ec2Driver, Ec2ProviderConfig};
pub use fault::{FaultControl, FaultSettings, FaultyDriver};
pub use local::{LocalDriver, LocalProviderConfig, StartRecord, DEFAULT_CANCEL_GRACE};
pub use slurm::{SlurmDriver, SlurmProviderConfig};

use hedge_core::{Accelerator, JobId, ProviderId, TeamId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The key of one launch attempt. The broker stores it *before* it calls [`Driver::submit`], so a submit
/// retried after a crash carries the same key and cannot start a second copy.
///
/// Keys are 1 to 128 characters of ASCII letters, digits, `-`, `_` and `.` (not starting with `.`), so a
/// driver may use one as a file name or a provider-side label.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, DriverError> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(IdempotencyKey(s.to_owned()))
        } else {
            Err(DriverError::BadKey { key: s.to_owned() })
        }
    }
    /// The canonical key of attempt `attempt` of job `job`: `j<job>-a<attempt>`.
    pub fn for_attempt(job: JobId, attempt: u32) -> Self {
        IdempotencyKey(format!("j{}-a{}", job.0, attempt))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for IdempotencyKey {
    type Error = DriverError;
    fn try_from(s: String) -> Result<Self, DriverError> {
        IdempotencyKey::parse(&s)
    }
}
impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}
impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

/// Everything a driver needs to start one attempt of a job: what to run and the allocation it got.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub job: JobId,
    /// 1 for the first attempt, incremented on every relaunch.
    pub attempt: u32,
    pub team: TeamId,
    pub name: Option<String>,
    /// The task's `setup:` commands, run before `run` (a failing setup fails the attempt).
    #[serde(default)]
    pub setup: Option<String>,
    /// The task's `run:` command, run with `sh -c`.
    pub run: String,
    /// A time limit for the attempt, for engines that enforce one (Slurm's `time_limit`).
    #[serde(default)]
    pub time_limit_minutes: Option<u32>,
    pub accelerator: Option<Accelerator>,
    /// GPUs per node.
    pub gpus_per_node: u32,
    pub num_nodes: u32,
    /// Extra environment for the command (the task's `envs:`). `HEDGE_*` names are reserved.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The task's working directory (absolute), copied to the attempt's own directory where the driver can.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Remote path -> local source path, linked into the attempt's directory where the driver can.
    #[serde(default)]
    pub file_mounts: BTreeMap<String, String>,
    /// The instance type placement chose (cloud VM drivers launch exactly this).
    #[serde(default)]
    pub instance_type: Option<String>,
    /// The zone placement chose, when it chose one.
    #[serde(default)]
    pub zone: Option<String>,
    /// Run on the spot market.
    #[serde(default)]
    pub spot: bool,
    /// The commitment this attempt runs on, if any (tagged on cloud resources).
    #[serde(default)]
    pub commitment: Option<String>,
    /// The provider-side capacity reservation of that commitment, when it names one.
    #[serde(default)]
    pub capacity_reservation: Option<String>,
}

impl LaunchSpec {
    pub fn total_gpus(&self) -> u32 {
        self.gpus_per_node.saturating_mul(self.num_nodes)
    }
}

/// What a provider reports of one attempt.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Observation {
    /// Accepted, not started yet.
    Queued,
    Running,
    /// The command finished with this exit code (0 = success).
    Exited {
        code: i32,
    },
    Cancelled,
    /// The provider knows the attempt but its work vanished (process gone without an exit status, instance
    /// reclaimed).
    Lost {
        reason: String,
    },
    /// The provider has no record of this key.
    NotFound,
}

impl Observation {
    /// Whether the attempt can change state any more.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Observation::Queued | Observation::Running)
    }
}

/// Whether a provider supports a feature; when it does not, why.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "supported", rename_all = "snake_case")]
pub enum Support {
    Yes,
    No { reason: String },
}

/// What a provider can do, as data.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Capabilities {
    pub accelerator: Option<Accelerator>,
    /// GPUs the provider can run at once.
    pub gpus: u32,
    pub spot: Support,
    pub multi_node: Support,
    pub logs: Support,
}

/// A chunk of an attempt's logs.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Logs {
    pub stdout: String,
    pub stderr: String,
    /// Whether earlier output was cut off to honour the size limit.
    pub truncated: bool,
}

/// What failed in a driver call.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("provider {provider} is unreachable: {reason}")]
    Unreachable {
        provider: ProviderId,
        reason: String,
    },
    #[error("provider {provider} rejected the launch of {key}: {reason}")]
    Rejected {
        provider: ProviderId,
        key: IdempotencyKey,
        reason: String,
    },
    #[error("provider {provider} cannot run this launch: {reason}")]
    Unsupported {
        provider: ProviderId,
        reason: String,
    },
    #[error("provider {provider} has no attempt {key}")]
    NotFound {
        provider: ProviderId,
        key: IdempotencyKey,
    },
    #[error("idempotency key {key:?} must be 1-128 characters of letters, digits, '-', '_', '.'")]
    BadKey { key: String },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl DriverError {
    pub(crate) fn io(
        op: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> DriverError {
        let path = path.display().to_string();
        move |source| DriverError::Io { op, path, source }
    }
}

/// One provider's driver. Every verb is idempotent; see the crate documentation.
#[async_trait::async_trait]
pub trait Driver: Send + Sync {
    fn provider(&self) -> &ProviderId;
    fn capabilities(&self) -> Capabilities;
    /// Starts attempt `key` unless it was started before, and reports its state.
    async fn submit(
        &self,
        key: &IdempotencyKey,
        spec: &LaunchSpec,
    ) -> Result<Observation, DriverError>;
    async fn observe(&self, key: &IdempotencyKey) -> Result<Observation, DriverError>;
    /// Asks for attempt `key` to stop and reports what is true now: `Running`/`Queued` while its work is
    /// still alive (the broker calls again until it sees a terminal observation, the confirmation), a
    /// terminal observation once it is gone. Stopping a finished, cancelled or unknown attempt is not an
    /// error.
    async fn cancel(&self, key: &IdempotencyKey) -> Result<Observation, DriverError>;
    /// The last `max_bytes` of each of the attempt's output streams.
    async fn logs(&self, key: &IdempotencyKey, max_bytes: u64) -> Result<Logs, DriverError>;
    /// A cheap health check: succeeds when the provider answers.
    async fn probe(&self) -> Result<(), DriverError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(IdempotencyKey::for_attempt(JobId(42), 3).as_str(), "j42-a3");
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(129), ".."] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        let k: IdempotencyKey = serde_json::from_str("\"j1-a1\"").unwrap();
        assert_eq!(k.as_str(), "j1-a1");
        assert!(serde_json::from_str::<IdempotencyKey>("\"../etc\"").is_err());
    }
}
