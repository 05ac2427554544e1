//! The server's configuration file (YAML or JSON), parsed once into validated values.
//!
//! ```yaml
//! listen: 127.0.0.1:8080
//! data_dir: /var/lib/hedge          # SQLite file, local providers' attempts, the admin token
//! database_url: postgres://...      # optional; default: SQLite at <data_dir>/hedge.db
//! reconcile_interval_ms: 100
//! health: { interval_ms: 1000, failure_threshold: 3, missed_heartbeats: 2 }
//! fault_injection: true             # enables PUT /v1/admin/providers/{name}/faults
//! cancel_grace_seconds: 30          # SIGTERM, then SIGKILL after this long, when a job is cancelled
//! providers:
//!   - { name: local-a, gpus: 4, accelerator: H100, on_demand_per_gpu_hour: 2.00 }
//!   - { name: local-b, gpus: 4, accelerator: H100, on_demand_per_gpu_hour: 2.50 }
//! ledger: { reserve_hours: 1, commitment_fees: usage_share }   # see crate::ledger
//! teams:
//!   - { id: ml, monthly_budget_usd: 1000, allow_preemption: true,
//!       quotas: [ { provider: local-a, accelerator: H100, max_gpus: 2 } ] }
//! ```

use crate::ServerError;
use hedge_core::{Accelerator, Money, ProviderId, Rate, TeamId};
use hedge_store::{Team, TeamQuota};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: SQLite at `<data_dir>/hedge.db`.
    pub database_url: Option<String>,
    pub reconcile_interval: Duration,
    pub health: HealthSettings,
    pub body_limit_bytes: usize,
    pub fault_injection: bool,
    pub providers: Vec<LocalProvider>,
    pub teams: Vec<Team>,
    /// How many times a launch is retried on a provider before the job fails over elsewhere.
    pub max_launch_retries: u32,
    /// How long a cancelled job's processes have after SIGTERM before SIGKILL (local providers).
    pub cancel_grace: Duration,
    /// Budget reservations and commitment fee allocation (`ledger:`).
    pub ledger: crate::ledger::LedgerSettings,
}

/// One local provider: this machine with `gpus` GPUs of `accelerator`, priced per GPU-hour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalProvider {
    pub name: ProviderId,
    pub gpus: u32,
    pub accelerator: Accelerator,
    pub on_demand_per_gpu_hour: Rate,
    pub spot_per_gpu_hour: Option<Rate>,
}

/// When a provider counts as degraded, and how often it is probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthSettings {
    /// Heartbeat and probe interval.
    pub interval: Duration,
    /// Consecutive failed driver calls that make a provider degraded.
    pub failure_threshold: u32,
    /// Intervals without one successful call that make a provider degraded.
    pub missed_heartbeats: u32,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            interval: Duration::from_millis(1000),
            failure_threshold: 3,
            missed_heartbeats: 2,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: String,
    data_dir: PathBuf,
    #[serde(default)]
    database_url: Option<String>,
    #[serde(default = "default_reconcile_ms")]
    reconcile_interval_ms: u64,
    #[serde(default)]
    health: RawHealth,
    #[serde(default = "default_body_limit")]
    body_limit_bytes: usize,
    #[serde(default)]
    fault_injection: bool,
    #[serde(default)]
    providers: Vec<RawProvider>,
    #[serde(default)]
    teams: Vec<RawTeam>,
    #[serde(default = "default_retries")]
    max_launch_retries: u32,
    #[serde(default = "default_cancel_grace_seconds")]
    cancel_grace_seconds: u64,
    #[serde(default)]
    ledger: crate::ledger::RawLedger,
}

fn default_cancel_grace_seconds() -> u64 {
    hedge_drivers::DEFAULT_CANCEL_GRACE.as_secs()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    interval_ms: Option<u64>,
    failure_threshold: Option<u32>,
    missed_heartbeats: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    gpus: u32,
    accelerator: String,
    on_demand_per_gpu_hour: f64,
    #[serde(default)]
    spot_per_gpu_hour: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    id: String,
    #[serde(default)]
    monthly_budget_usd: Option<f64>,
    #[serde(default)]
    allow_preemption: bool,
    #[serde(default)]
    quotas: Vec<RawQuota>,
    /// `wait` (default) or `stop` (see `crate::ledger`).
    #[serde(default)]
    on_budget_exceeded: hedge_store::OnBudgetExceeded,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    accelerator: Option<String>,
    max_gpus: u32,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_reconcile_ms() -> u64 {
    100
}
fn default_body_limit() -> usize {
    1 << 20
}
fn default_retries() -> u32 {
    3
}

impl ServerConfig {
    /// A configuration with no providers and no teams, for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen: default_listen()
                .parse()
                .expect("the default address parses"),
            data_dir: data_dir.into(),
            database_url: None,
            reconcile_interval: Duration::from_millis(default_reconcile_ms()),
            health: HealthSettings::default(),
            body_limit_bytes: default_body_limit(),
            fault_injection: false,
            providers: vec![],
            teams: vec![],
            max_launch_retries: default_retries(),
            cancel_grace: hedge_drivers::DEFAULT_CANCEL_GRACE,
            ledger: crate::ledger::LedgerSettings::default(),
        }
    }

    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServerError::ReadConfig {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the YAML (or JSON) text of a configuration file; relative `data_dir`s stay relative.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ServerError> {
        let bad = |field: &str, reason: String| ServerError::Config {
            origin: origin.to_owned(),
            field: field.to_owned(),
            reason,
        };
        let raw: RawConfig = serde_norway::from_str(text).map_err(|e| bad("", e.to_string()))?;
        let listen = raw
            .listen
            .parse()
            .map_err(|e| bad("listen", format!("{:?}: {e}", raw.listen)))?;
        let mut providers = Vec::new();
        for (i, p) in raw.providers.iter().enumerate() {
            let f = |k: &str| format!("providers[{i}].{k}");
            let name = ProviderId::parse(&p.name);
            if name.as_str().is_empty()
                || !name
                    .as_str()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(bad(
                    &f("name"),
                    format!("{:?} must be letters, digits, '-' and '_'", p.name),
                ));
            }
            if providers.iter().any(|q: &LocalProvider| q.name == name) {
                return Err(bad(&f("name"), format!("{name} is configured twice")));
            }
            let accelerator = Accelerator::parse(&p.accelerator)
                .map_err(|e| bad(&f("accelerator"), e.to_string()))?;
            let on_demand_per_gpu_hour = Rate::from_usd_per_hour_f64(p.on_demand_per_gpu_hour)
                .map_err(|e| bad(&f("on_demand_per_gpu_hour"), e.to_string()))?;
            let spot_per_gpu_hour = p
                .spot_per_gpu_hour
                .map(Rate::from_usd_per_hour_f64)
                .transpose()
                .map_err(|e| bad(&f("spot_per_gpu_hour"), e.to_string()))?;
            providers.push(LocalProvider {
                name,
                gpus: p.gpus,
                accelerator,
                on_demand_per_gpu_hour,
                spot_per_gpu_hour,
            });
        }
        let mut teams = Vec::new();
        for (i, t) in raw.teams.iter().enumerate() {
            let f = |k: &str| format!("teams[{i}].{k}");
            let monthly_budget = t
                .monthly_budget_usd
                .map(Money::from_usd_f64)
                .transpose()
                .map_err(|e| bad(&f("monthly_budget_usd"), e.to_string()))?;
            let mut quotas = Vec::new();
            for q in &t.quotas {
                let accelerator = q
                    .accelerator
                    .as_deref()
                    .map(Accelerator::parse)
                    .transpose()
                    .map_err(|e| bad(&f("quotas.accelerator"), e.to_string()))?;
                quotas.push(TeamQuota {
                    provider: q.provider.as_deref().map(ProviderId::parse),
                    accelerator,
                    max_gpus: q.max_gpus,
                });
            }
            teams.push(Team {
                id: TeamId::new(t.id.trim()),
                monthly_budget,
                quotas,
                allow_preemption: t.allow_preemption,
                on_budget_exceeded: t.on_budget_exceeded,
            });
        }
        let health = HealthSettings {
            interval: Duration::from_millis(raw.health.interval_ms.unwrap_or(1000).max(10)),
            failure_threshold: raw.health.failure_threshold.unwrap_or(3).max(1),
            missed_heartbeats: raw.health.missed_heartbeats.unwrap_or(2).max(1),
        };
        let ledger = raw
            .ledger
            .validate()
            .map_err(|(field, reason)| bad(&field, reason))?;
        Ok(ServerConfig {
            ledger,
            listen,
            data_dir: raw.data_dir,
            database_url: raw.database_url,
            reconcile_interval: Duration::from_millis(raw.reconcile_interval_ms.max(5)),
            health,
            body_limit_bytes: raw.body_limit_bytes,
            fault_injection: raw.fault_injection,
            providers,
            teams,
            max_launch_retries: raw.max_launch_retries,
            cancel_grace: Duration::from_secs(raw.cancel_grace_seconds),
        })
    }

    /// The store URL: the configured one, or the SQLite file under the data directory.
    pub fn store_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => self.data_dir.join("hedge.db").display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let c = ServerConfig::parse(
            r#"
listen: 127.0.0.1:9999
data_dir: /tmp/x
health: { interval_ms: 500, failure_threshold: 2 }
providers:
  - { name: Local-A, gpus: 4, accelerator: h100-sxm, on_demand_per_gpu_hour: 2.0 }
teams:
  - { id: ml, monthly_budget_usd: 10, quotas: [ { accelerator: H100, max_gpus: 2 } ] }
"#,
            "test.yaml",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.providers[0].name.as_str(), "local-a");
        assert_eq!(c.providers[0].accelerator.as_str(), "H100");
        assert_eq!(c.providers[0].on_demand_per_gpu_hour.to_string(), "$2.00/h");
        assert_eq!(c.health.interval, Duration::from_millis(500));
        assert_eq!(c.health.missed_heartbeats, 2);
        assert_eq!(
            c.teams[0].monthly_budget,
            Some(Money::from_usd_f64(10.0).unwrap())
        );
        assert_eq!(c.store_url(), "/tmp/x/hedge.db");
    }

    #[test]
    fn errors_name_the_field() {
        let e = ServerConfig::parse("data_dir: x\nproviders: [{name: a, gpus: 1, accelerator: 'H 1', on_demand_per_gpu_hour: 1}]", "c.yaml")
            .unwrap_err();
        assert!(e.to_string().contains("providers[0].accelerator"), "{e}");
        let e = ServerConfig::parse("data_dir: x\nlisten: nope", "c.yaml").unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let e = ServerConfig::parse("data_dir: x\nbogus: 1", "c.yaml").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
