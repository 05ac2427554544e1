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
//! catalog: /path/to/skypilot/v8         # optional; default: the embedded catalog (`hedge serve --catalog`)
//! providers:
//!   # shorthand: GPUs on this machine, run as local processes
//!   - { name: local-a, gpus: 4, accelerator: H100, on_demand_per_gpu_hour: 2.00 }
//!   # a cluster the user owns, reached through slurmrestd (JWT from an environment variable or a file)
//!   - name: lab
//!     owned: { accelerator: H100, gpus_per_node: 8, nodes: 4, cost_per_gpu_hour: 0 }
//!     driver: { kind: slurm, endpoint: "http://10.0.0.5:6820", user: hedge, credentials: { env: LAB_JWT },
//!               job_dir: /shared/hedge, partition: gpu }
//!   # offers and prices from the catalog, run on EC2 (credentials: {env: AWS} reads AWS_ACCESS_KEY_ID and
//!   # AWS_SECRET_ACCESS_KEY; {file: PATH} reads an AWS shared-credentials file's [default] profile)
//!   - name: aws
//!     catalog: { provider: aws, regions: [us-east-1] }
//!     max_gpus: 64                     # GPUs the broker may hold on it at once (default 64)
//!     driver: { kind: ec2, image_id: ami-0123456789abcdef0, credentials: { env: AWS } }
//! ledger: { reserve_hours: 1, commitment_fees: usage_share }   # see crate::ledger
//! teams:
//!   - { id: ml, monthly_budget_usd: 1000, allow_preemption: true,
//!       quotas: [ { provider: local-a, accelerator: H100, max_gpus: 2 } ] }
//! ```

use crate::ServerError;
use hedge_core::{Accelerator, Money, ProviderId, Rate, RegionId, TeamId};
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
    pub providers: Vec<ProviderConfig>,
    /// The catalog `catalog:` providers take their offers from; `None`: the embedded catalog.
    pub catalog: Option<PathBuf>,
    pub teams: Vec<Team>,
    /// How many times a launch is retried on a provider before the job fails over elsewhere.
    pub max_launch_retries: u32,
    /// How long a cancelled job's processes have after SIGTERM before SIGKILL (local providers).
    pub cancel_grace: Duration,
    /// Budget reservations and commitment fee allocation (`ledger:`).
    pub ledger: crate::ledger::LedgerSettings,
}

/// One provider of the broker: what it sells and how its work runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderConfig {
    pub name: ProviderId,
    pub sells: Sells,
    pub driver: DriverConfig,
}

/// What a provider sells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sells {
    /// Nodes the user owns (or this machine): one accelerator, a fixed number of nodes, priced per GPU-hour.
    Owned {
        accelerator: Accelerator,
        gpus_per_node: u32,
        nodes: u32,
        on_demand_per_gpu_hour: Rate,
        spot_per_gpu_hour: Option<Rate>,
    },
    /// The offers of catalog provider `provider` in `regions`, at the catalog's prices; the broker holds at
    /// most `max_gpus` GPUs on it at once.
    Catalog {
        provider: ProviderId,
        regions: Vec<RegionId>,
        max_gpus: u32,
    },
}

/// How a provider runs work. Secrets are resolved when the configuration is read (never logged).
#[derive(Clone, PartialEq, Eq)]
pub enum DriverConfig {
    /// Processes on this machine (the embedded default).
    Local,
    /// A Slurm cluster through slurmrestd (REST API v0.0.38, JWT).
    Slurm {
        endpoint: String,
        user: String,
        token: String,
        partition: Option<String>,
        job_dir: Option<PathBuf>,
        timeout: Duration,
    },
    /// EC2 (or an EC2-compatible endpoint such as moto) through the EC2 Query API.
    Ec2 {
        endpoint: Option<String>,
        region: Option<String>,
        access_key_id: String,
        secret_access_key: String,
        image_id: String,
        /// The broker's URL as instances reach it; default `http://<listen>`.
        report_url: Option<String>,
        timeout: Duration,
    },
}

impl std::fmt::Debug for DriverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverConfig::Local => f.write_str("Local"),
            DriverConfig::Slurm {
                endpoint,
                user,
                partition,
                job_dir,
                ..
            } => f
                .debug_struct("Slurm")
                .field("endpoint", endpoint)
                .field("user", user)
                .field("token", &"<redacted>")
                .field("partition", partition)
                .field("job_dir", job_dir)
                .finish(),
            DriverConfig::Ec2 {
                endpoint,
                region,
                access_key_id,
                image_id,
                report_url,
                ..
            } => f
                .debug_struct("Ec2")
                .field("endpoint", endpoint)
                .field("region", region)
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .field("image_id", image_id)
                .field("report_url", report_url)
                .finish(),
        }
    }
}

impl DriverConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            DriverConfig::Local => "local",
            DriverConfig::Slurm { .. } => "slurm",
            DriverConfig::Ec2 { .. } => "ec2",
        }
    }
}

impl ProviderConfig {
    /// The shorthand `{name, gpus, accelerator, on_demand_per_gpu_hour}`: GPUs of this machine, run locally.
    pub fn local(
        name: &str,
        gpus: u32,
        accelerator: Accelerator,
        on_demand_per_gpu_hour: Rate,
    ) -> Self {
        ProviderConfig {
            name: ProviderId::parse(name),
            sells: Sells::Owned {
                accelerator,
                gpus_per_node: gpus,
                nodes: 1,
                on_demand_per_gpu_hour,
                spot_per_gpu_hour: None,
            },
            driver: DriverConfig::Local,
        }
    }

    /// The one accelerator an owned provider runs; `None` for a catalog provider (whatever its offers have).
    pub fn accelerator(&self) -> Option<&Accelerator> {
        match &self.sells {
            Sells::Owned { accelerator, .. } => Some(accelerator),
            Sells::Catalog { .. } => None,
        }
    }

    /// GPUs the broker may hold on the provider at once.
    pub fn gpus(&self) -> u32 {
        match &self.sells {
            Sells::Owned {
                gpus_per_node,
                nodes,
                ..
            } => gpus_per_node.saturating_mul(*nodes),
            Sells::Catalog { max_gpus, .. } => *max_gpus,
        }
    }
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
    catalog: Option<PathBuf>,
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
    // The local shorthand.
    #[serde(default)]
    gpus: Option<u32>,
    #[serde(default)]
    accelerator: Option<String>,
    #[serde(default)]
    on_demand_per_gpu_hour: Option<f64>,
    #[serde(default)]
    spot_per_gpu_hour: Option<f64>,
    // The long form.
    #[serde(default)]
    owned: Option<RawOwned>,
    #[serde(default)]
    catalog: Option<RawCatalogSource>,
    #[serde(default)]
    max_gpus: Option<u32>,
    #[serde(default)]
    driver: Option<RawDriver>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOwned {
    accelerator: String,
    gpus_per_node: u32,
    #[serde(default = "one")]
    nodes: u32,
    #[serde(default)]
    cost_per_gpu_hour: f64,
    #[serde(default)]
    spot_per_gpu_hour: Option<f64>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogSource {
    provider: String,
    #[serde(default)]
    regions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDriver {
    kind: String,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    credentials: Option<RawCredentials>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    partition: Option<String>,
    #[serde(default)]
    job_dir: Option<PathBuf>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    image_id: Option<String>,
    #[serde(default)]
    report_url: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    file: Option<PathBuf>,
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
            catalog: None,
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
        let mut providers: Vec<ProviderConfig> = Vec::new();
        for (i, p) in raw.providers.iter().enumerate() {
            let name = ProviderId::parse(&p.name);
            if name.as_str().is_empty()
                || !name
                    .as_str()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(bad(
                    &format!("providers[{i}].name"),
                    format!("{:?} must be letters, digits, '-' and '_'", p.name),
                ));
            }
            if providers.iter().any(|q| q.name == name) {
                return Err(bad(
                    &format!("providers[{i}].name"),
                    format!("{name} is configured twice"),
                ));
            }
            providers.push(provider(p, &name, &|k: &str, reason: String| {
                bad(&format!("providers[{i}] ({name}).{k}"), reason)
            })?);
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
            catalog: raw.catalog,
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

type Bad<'a> = &'a dyn Fn(&str, String) -> ServerError;

fn rate(v: f64, field: &str, bad: Bad<'_>) -> Result<Rate, ServerError> {
    Rate::from_usd_per_hour_f64(v).map_err(|e| bad(field, e.to_string()))
}

/// One provider entry: the local shorthand, or `owned:`/`catalog:` with a `driver:`.
fn provider(
    p: &RawProvider,
    name: &ProviderId,
    bad: Bad<'_>,
) -> Result<ProviderConfig, ServerError> {
    let shorthand =
        p.gpus.is_some() || p.accelerator.is_some() || p.on_demand_per_gpu_hour.is_some();
    let sells = match (&p.owned, &p.catalog, shorthand) {
        (Some(_), Some(_), _) => return Err(bad("catalog", "a provider sells either `owned:` capacity or `catalog:` offers, not both".into())),
        (Some(_), None, true) | (None, Some(_), true) => {
            return Err(bad("gpus", "`gpus`/`accelerator`/`on_demand_per_gpu_hour` are the local shorthand; with `owned:` or `catalog:` say them there".into()))
        }
        (None, None, true) => {
            let gpus = p.gpus.ok_or_else(|| bad("gpus", "missing: how many GPUs the local provider has".into()))?;
            let accelerator = p.accelerator.as_deref().ok_or_else(|| bad("accelerator", "missing".into()))?;
            let accelerator = Accelerator::parse(accelerator).map_err(|e| bad("accelerator", e.to_string()))?;
            let od = p.on_demand_per_gpu_hour.ok_or_else(|| bad("on_demand_per_gpu_hour", "missing".into()))?;
            Sells::Owned {
                accelerator,
                gpus_per_node: gpus,
                nodes: 1,
                on_demand_per_gpu_hour: rate(od, "on_demand_per_gpu_hour", bad)?,
                spot_per_gpu_hour: p.spot_per_gpu_hour.map(|v| rate(v, "spot_per_gpu_hour", bad)).transpose()?,
            }
        }
        (Some(o), None, false) => {
            let accelerator = Accelerator::parse(&o.accelerator).map_err(|e| bad("owned.accelerator", e.to_string()))?;
            if o.gpus_per_node == 0 {
                return Err(bad("owned.gpus_per_node", "must be at least 1: an owned provider with no GPUs can run nothing".into()));
            }
            if o.nodes == 0 {
                return Err(bad("owned.nodes", "must be at least 1: an owned provider with no nodes can run nothing".into()));
            }
            Sells::Owned {
                accelerator,
                gpus_per_node: o.gpus_per_node,
                nodes: o.nodes,
                on_demand_per_gpu_hour: rate(o.cost_per_gpu_hour, "owned.cost_per_gpu_hour", bad)?,
                spot_per_gpu_hour: o.spot_per_gpu_hour.map(|v| rate(v, "owned.spot_per_gpu_hour", bad)).transpose()?,
            }
        }
        (None, Some(c), false) => {
            let provider = ProviderId::parse(&c.provider);
            if provider.as_str().is_empty() {
                return Err(bad("catalog.provider", "missing: which catalog provider's offers this provider sells".into()));
            }
            let max_gpus = p.max_gpus.unwrap_or(64);
            if max_gpus == 0 {
                return Err(bad("max_gpus", "must be at least 1".into()));
            }
            Sells::Catalog { provider, regions: c.regions.iter().map(|r| RegionId::new(r.trim())).collect(), max_gpus }
        }
        (None, None, false) => {
            return Err(bad("owned", "missing: say what the provider sells, `owned: {accelerator, gpus_per_node, nodes}` or `catalog: {provider, regions}`".into()))
        }
    };
    if p.max_gpus.is_some() && !matches!(sells, Sells::Catalog { .. }) {
        return Err(bad(
            "max_gpus",
            "only for `catalog:` providers (an owned provider has gpus_per_node x nodes)".into(),
        ));
    }
    let driver =
        match &p.driver {
            None if shorthand => DriverConfig::Local,
            None => return Err(bad(
                "driver",
                "missing: say how the provider runs work, `driver: {kind: local|slurm|ec2, ...}`"
                    .into(),
            )),
            Some(d) => driver(d, name, &sells, bad)?,
        };
    Ok(ProviderConfig {
        name: name.clone(),
        sells,
        driver,
    })
}

/// A driver entry, with its credentials read.
fn driver(
    d: &RawDriver,
    name: &ProviderId,
    sells: &Sells,
    bad: Bad<'_>,
) -> Result<DriverConfig, ServerError> {
    let timeout = Duration::from_millis(d.timeout_ms.unwrap_or(3000).clamp(100, 120_000));
    let only = |ok: &[&str]| -> Result<(), ServerError> {
        let given = [
            ("endpoint", d.endpoint.is_some()),
            ("credentials", d.credentials.is_some()),
            ("user", d.user.is_some()),
            ("partition", d.partition.is_some()),
            ("job_dir", d.job_dir.is_some()),
            ("region", d.region.is_some()),
            ("image_id", d.image_id.is_some()),
            ("report_url", d.report_url.is_some()),
            ("timeout_ms", d.timeout_ms.is_some()),
        ];
        match given.iter().find(|(k, set)| *set && !ok.contains(k)) {
            Some((k, _)) => Err(bad(
                &format!("driver.{k}"),
                format!("not a setting of a {} driver", d.kind),
            )),
            None => Ok(()),
        }
    };
    let endpoint = |required: bool| -> Result<Option<String>, ServerError> {
        match &d.endpoint {
            None if required => Err(bad(
                "driver.endpoint",
                "missing: the URL the driver talks to".into(),
            )),
            None => Ok(None),
            Some(e) => {
                let u = reqwest::Url::parse(e)
                    .map_err(|err| bad("driver.endpoint", format!("{e:?} is not a URL: {err}")))?;
                if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                    return Err(bad(
                        "driver.endpoint",
                        format!("{e:?} must be an http:// or https:// URL with a host"),
                    ));
                }
                Ok(Some(e.trim_end_matches('/').to_owned()))
            }
        }
    };
    match d.kind.as_str() {
        "local" => {
            only(&[])?;
            match sells {
                Sells::Owned { nodes: 1, .. } => Ok(DriverConfig::Local),
                Sells::Owned { nodes, .. } => Err(bad(
                    "owned.nodes",
                    format!("a local driver runs on this one machine, not {nodes} nodes"),
                )),
                Sells::Catalog { .. } => Err(bad(
                    "driver.kind",
                    "a local driver runs owned capacity, not catalog offers".into(),
                )),
            }
        }
        "slurm" => {
            only(&[
                "endpoint",
                "credentials",
                "user",
                "partition",
                "job_dir",
                "timeout_ms",
            ])?;
            if matches!(sells, Sells::Catalog { .. }) {
                return Err(bad(
                    "driver.kind",
                    "a Slurm cluster sells `owned:` capacity (its nodes), not catalog offers"
                        .into(),
                ));
            }
            let endpoint = endpoint(true)?.unwrap_or_default();
            let token = secret(d.credentials.as_ref(), bad)?;
            let token = token.trim().to_owned();
            if token.is_empty() {
                return Err(bad("driver.credentials", "the Slurm JWT is empty".into()));
            }
            Ok(DriverConfig::Slurm {
                endpoint,
                user: d.user.clone().unwrap_or_else(|| "root".into()),
                token,
                partition: d.partition.clone(),
                job_dir: d.job_dir.clone(),
                timeout,
            })
        }
        "ec2" => {
            only(&[
                "endpoint",
                "credentials",
                "region",
                "image_id",
                "report_url",
                "timeout_ms",
            ])?;
            let Sells::Catalog { regions, .. } = sells else {
                return Err(bad(
                    "driver.kind",
                    "an EC2 provider sells `catalog:` offers (provider aws), not owned capacity"
                        .into(),
                ));
            };
            let region = match (&d.region, regions.as_slice()) {
                (Some(r), rs) if rs.is_empty() || rs.iter().any(|x| x.as_str() == r) => {
                    Some(r.clone())
                }
                (Some(r), _) => {
                    return Err(bad(
                        "driver.region",
                        format!("{r} is not one of the provider's catalog regions"),
                    ))
                }
                (None, [one]) => Some(one.to_string()),
                (None, _) => return Err(bad(
                    "catalog.regions",
                    "an EC2 provider serves exactly one region: configure one provider per region"
                        .into(),
                )),
            };
            let (access_key_id, secret_access_key) = aws_credentials(d.credentials.as_ref(), bad)?;
            let image_id = d.image_id.clone().ok_or_else(|| {
                bad(
                    "driver.image_id",
                    "missing: the AMI instances boot from".into(),
                )
            })?;
            if let Some(u) = &d.report_url {
                reqwest::Url::parse(u)
                    .map_err(|e| bad("driver.report_url", format!("{u:?} is not a URL: {e}")))?;
            }
            let _ = name;
            Ok(DriverConfig::Ec2 {
                endpoint: endpoint(false)?,
                region,
                access_key_id,
                secret_access_key,
                image_id,
                report_url: d.report_url.clone(),
                timeout,
            })
        }
        other => Err(bad(
            "driver.kind",
            format!("unknown driver kind {other:?}: one of local, slurm, ec2"),
        )),
    }
}

/// The text of `credentials: {env: NAME}` or `{file: PATH}`.
// The configuration layer: `credentials: {env: NAME}` says to read the environment, once, at start.
#[allow(clippy::disallowed_methods)]
fn secret(c: Option<&RawCredentials>, bad: Bad<'_>) -> Result<String, ServerError> {
    match c {
        None => Err(bad(
            "driver.credentials",
            "missing: `{env: NAME}` or `{file: PATH}`".into(),
        )),
        Some(RawCredentials {
            env: Some(_),
            file: Some(_),
        }) => Err(bad(
            "driver.credentials",
            "give `env` or `file`, not both".into(),
        )),
        Some(RawCredentials {
            env: Some(var),
            file: None,
        }) => std::env::var(var).map_err(|_| {
            bad(
                "driver.credentials.env",
                format!("environment variable {var} is not set"),
            )
        }),
        Some(RawCredentials {
            env: None,
            file: Some(path),
        }) => std::fs::read_to_string(path).map_err(|e| {
            bad(
                "driver.credentials.file",
                format!("cannot read {}: {e}", path.display()),
            )
        }),
        Some(RawCredentials {
            env: None,
            file: None,
        }) => Err(bad(
            "driver.credentials",
            "give `env: NAME` or `file: PATH`".into(),
        )),
    }
}

/// AWS keys: `{env: PREFIX}` reads `PREFIX_ACCESS_KEY_ID` and `PREFIX_SECRET_ACCESS_KEY` (so `{env: AWS}`
/// reads the usual variables); `{file: PATH}` reads the `[default]` profile of a shared-credentials file.
// The configuration layer: `credentials: {env: PREFIX}` says to read the environment, once, at start.
#[allow(clippy::disallowed_methods)]
fn aws_credentials(
    c: Option<&RawCredentials>,
    bad: Bad<'_>,
) -> Result<(String, String), ServerError> {
    match c {
        Some(RawCredentials { env: Some(prefix), file: None }) => {
            let get = |suffix: &str| {
                let var = format!("{prefix}_{suffix}");
                std::env::var(&var)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .ok_or_else(|| bad("driver.credentials.env", format!("environment variable {var} is not set")))
            };
            Ok((get("ACCESS_KEY_ID")?, get("SECRET_ACCESS_KEY")?))
        }
        Some(RawCredentials { env: None, file: Some(path) }) => {
            let text = secret(c, bad)?;
            parse_aws_credentials(&text).map_err(|reason| bad("driver.credentials.file", format!("{}: {reason}", path.display())))
        }
        Some(RawCredentials { env: Some(_), file: Some(_) }) => Err(bad("driver.credentials", "give `env` or `file`, not both".into())),
        _ => Err(bad("driver.credentials", "missing: `{env: PREFIX}` (PREFIX_ACCESS_KEY_ID, PREFIX_SECRET_ACCESS_KEY) or `{file: PATH}`".into())),
    }
}

/// The `[default]` profile's keys of an AWS shared-credentials file.
pub fn parse_aws_credentials(text: &str) -> Result<(String, String), String> {
    let mut section = String::new();
    let (mut id, mut secret) = (None, None);
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
    {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_owned();
            continue;
        }
        if section != "default" {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_owned()),
                "aws_secret_access_key" => secret = Some(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(i), Some(s)) if !i.is_empty() && !s.is_empty() => Ok((i, s)),
        _ => Err("no [default] profile with aws_access_key_id and aws_secret_access_key".into()),
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
        assert_eq!(c.providers[0].accelerator().unwrap().as_str(), "H100");
        assert_eq!(c.providers[0].gpus(), 4);
        assert_eq!(c.providers[0].driver, DriverConfig::Local);
        let Sells::Owned {
            on_demand_per_gpu_hour,
            ..
        } = &c.providers[0].sells
        else {
            panic!()
        };
        assert_eq!(on_demand_per_gpu_hour.to_string(), "$2.00/h");
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
        assert!(
            e.to_string().contains("providers[0] (a).accelerator"),
            "{e}"
        );
        let e = ServerConfig::parse("data_dir: x\nlisten: nope", "c.yaml").unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let e = ServerConfig::parse("data_dir: x\nbogus: 1", "c.yaml").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    fn provider_err(yaml: &str) -> String {
        ServerConfig::parse(&format!("data_dir: x\nproviders:\n{yaml}"), "c.yaml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn owned_slurm_and_catalog_ec2_providers() {
        std::env::set_var("HEDGE_CFG_TEST_JWT", "tok\n");
        std::env::set_var("HEDGE_CFG_TEST_AWS_ACCESS_KEY_ID", "AKID");
        std::env::set_var("HEDGE_CFG_TEST_AWS_SECRET_ACCESS_KEY", "sekrit");
        let c = ServerConfig::parse(
            "data_dir: x
providers:
  - name: lab
    owned: { accelerator: H100, gpus_per_node: 8, nodes: 2 }
    driver: { kind: slurm, endpoint: 'http://127.0.0.1:6820/', credentials: { env: HEDGE_CFG_TEST_JWT }, partition: gpu }
  - name: aws
    catalog: { provider: aws, regions: [us-east-1] }
    max_gpus: 32
    driver: { kind: ec2, endpoint: 'http://127.0.0.1:5000', image_id: ami-1, credentials: { env: HEDGE_CFG_TEST_AWS } }
",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.providers[0].gpus(), 16);
        assert_eq!(c.providers[0].accelerator().unwrap().as_str(), "H100");
        let DriverConfig::Slurm {
            endpoint,
            token,
            user,
            partition,
            ..
        } = &c.providers[0].driver
        else {
            panic!("{:?}", c.providers[0])
        };
        assert_eq!(
            (
                endpoint.as_str(),
                token.as_str(),
                user.as_str(),
                partition.as_deref()
            ),
            ("http://127.0.0.1:6820", "tok", "root", Some("gpu"))
        );
        assert_eq!(c.providers[1].gpus(), 32);
        assert_eq!(c.providers[1].accelerator(), None);
        let DriverConfig::Ec2 {
            region,
            access_key_id,
            secret_access_key,
            ..
        } = &c.providers[1].driver
        else {
            panic!()
        };
        assert_eq!(
            (
                region.as_deref(),
                access_key_id.as_str(),
                secret_access_key.as_str()
            ),
            (Some("us-east-1"), "AKID", "sekrit")
        );
        // Secrets stay out of Debug output.
        let dbg = format!("{:?}", c.providers);
        assert!(!dbg.contains("sekrit") && !dbg.contains("tok\""), "{dbg}");
    }

    #[test]
    fn bad_providers_name_the_provider_and_the_key() {
        let cases = [
            (
                "  - { name: lab, owned: { accelerator: H100, gpus_per_node: 8 }, driver: { kind: kubernetes } }",
                "providers[0] (lab).driver.kind",
                "unknown driver kind",
            ),
            (
                "  - { name: lab, owned: { accelerator: H100, gpus_per_node: 8 }, driver: { kind: slurm, endpoint: 'http://h:1' } }",
                "providers[0] (lab).driver.credentials",
                "missing",
            ),
            (
                "  - { name: lab, owned: { accelerator: H100, gpus_per_node: 8 }, driver: { kind: slurm, endpoint: 'http://h:1', credentials: { env: HEDGE_CFG_TEST_UNSET_VAR } } }",
                "providers[0] (lab).driver.credentials.env",
                "HEDGE_CFG_TEST_UNSET_VAR is not set",
            ),
            (
                "  - { name: lab, owned: { accelerator: H100, gpus_per_node: 8 }, driver: { kind: slurm, endpoint: 'http://h:1', credentials: { file: /nonexistent/jwt } } }",
                "providers[0] (lab).driver.credentials.file",
                "cannot read /nonexistent/jwt",
            ),
            (
                "  - { name: lab, owned: { accelerator: H100, gpus_per_node: 0 }, driver: { kind: local } }",
                "providers[0] (lab).owned.gpus_per_node",
                "at least 1",
            ),
            (
                "  - { name: lab, owned: { accelerator: H100, gpus_per_node: 8, nodes: 0 }, driver: { kind: local } }",
                "providers[0] (lab).owned.nodes",
                "at least 1",
            ),
            (
                "  - { name: lab, owned: { accelerator: H100, gpus_per_node: 8 }, driver: { kind: slurm, endpoint: 'not a url', credentials: { env: PATH } } }",
                "providers[0] (lab).driver.endpoint",
                "not a URL",
            ),
            (
                "  - { name: aws, catalog: { provider: aws, regions: [us-east-1, us-west-2] }, driver: { kind: ec2, image_id: ami-1, credentials: { env: HEDGE_CFG_TEST_AWS } } }",
                "providers[0] (aws).catalog.regions",
                "exactly one region",
            ),
            (
                "  - { name: aws, catalog: { provider: aws, regions: [us-east-1] }, driver: { kind: ec2, image_id: ami-1, credentials: { env: HEDGE_CFG_NO_SUCH_PREFIX } } }",
                "providers[0] (aws).driver.credentials.env",
                "HEDGE_CFG_NO_SUCH_PREFIX_ACCESS_KEY_ID is not set",
            ),
            (
                "  - { name: lab, owned: { accelerator: H100, gpus_per_node: 8 } }",
                "providers[0] (lab).driver",
                "missing",
            ),
            (
                "  - { name: lab, owned: { accelerator: H100, gpus_per_node: 8 }, driver: { kind: local, image_id: x } }",
                "providers[0] (lab).driver.image_id",
                "not a setting of a local driver",
            ),
            (
                "  - { name: aws, catalog: { provider: aws }, driver: { kind: slurm, endpoint: 'http://h:1', credentials: { env: PATH } } }",
                "providers[0] (aws).driver.kind",
                "not catalog offers",
            ),
        ];
        for (yaml, field, reason) in cases {
            let e = provider_err(yaml);
            assert!(
                e.contains(field) && e.contains(reason),
                "{yaml}\n  -> {e}\n  wanted {field}: ...{reason}..."
            );
        }
    }

    #[test]
    fn aws_shared_credentials_file() {
        let text = "[other]\naws_access_key_id = X\n[default]\n# c\naws_access_key_id = AKID\naws_secret_access_key=S3\n";
        assert_eq!(
            parse_aws_credentials(text).unwrap(),
            ("AKID".into(), "S3".into())
        );
        assert!(parse_aws_credentials(
            "[other]\naws_access_key_id = X\naws_secret_access_key = Y\n"
        )
        .is_err());
    }
}
