//! Hedge's broker service: `hedge serve`.
//!
//! * [`api`]: the `/v1` HTTP API (axum), `/v1/openapi.json`, `/metrics`, `/healthz`; auth by per-team and
//!   admin bearer tokens. The only module that knows HTTP; errors become JSON through [`ApiError`].
//! * [`reconcile`]: the reconciliation loop, one pass of numbered phases, comparing the store (desired
//!   state) with what the drivers observe, and acting.
//! * [`schedule`]: one scheduling pass as a pure function (committed capacity first, quotas, budgets,
//!   priorities and preemption).
//! * [`policy`]: classifies driver errors as retry, failover or fatal.
//! * [`health`]: provider health as a pure state machine.
//!
//! [`Broker::start`] opens the store and the drivers; [`serve`] runs the API and the loop until shutdown.
//!
//! **Architecture Invariant:** the reconciler is the only writer of job states other than submission and
//! cancellation, and every launch attempt is recorded in the store before its driver is called.

pub mod api;
pub mod api_types;
pub mod client;
pub mod clock;
pub mod config;
mod error;
pub mod fuzzing;
pub mod health;
pub mod ledger;
pub mod metrics;
pub mod openapi;
pub mod policy;
pub mod reconcile;
pub mod schedule;
pub mod submit;

pub use clock::{Clock, SystemClock};
pub use config::{DriverConfig, HealthSettings, ProviderConfig, Sells, ServerConfig};
pub use error::{chain, ApiError, ServerError};

use hedge_core::{AccelRequest, Accelerator, Catalog, Location, Offer, Prices, ProviderId};
use hedge_drivers::{
    Capabilities, Driver, Ec2Driver, Ec2ProviderConfig, FaultControl, FaultyDriver, LocalDriver,
    LocalProviderConfig, SlurmDriver, SlurmProviderConfig, Support,
};
use hedge_store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Everything the API handlers and the reconciler share.
pub struct Broker {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: ServerConfig,
    pub drivers: BTreeMap<ProviderId, Arc<dyn Driver>>,
    /// What each provider's driver can do (placement never chooses a provider whose driver cannot run the job).
    pub capabilities: BTreeMap<ProviderId, Capabilities>,
    /// The EC2 providers' drivers, which also take their instances' reports (`POST /v1/attempts/{key}/status`).
    pub ec2: BTreeMap<ProviderId, Arc<Ec2Driver>>,
    /// Fault controls of the providers (every local provider is wrapped; faults are off until switched on).
    pub faults: BTreeMap<ProviderId, FaultControl>,
    /// Offers of the configured providers: what placement chooses from.
    pub catalog: Catalog,
    /// Accelerators a task may name: the default catalog's and the configured providers'.
    pub known_accelerators: BTreeSet<Accelerator>,
    pub health: Mutex<health::HealthTracker>,
    pub metrics: metrics::Metrics,
    /// Providers a driver call failed on (unanswered) in the current reconcile pass: the rest of the pass
    /// makes no more calls to them, so one dead provider costs a pass one client timeout, not one per attempt.
    pub unanswered: Mutex<BTreeSet<ProviderId>>,
    /// Monotonic milliseconds at which each job not yet launched was submitted through this process (for the
    /// submit-to-launch histogram; lost on restart, which only skips those jobs' samples).
    pub submitted_ms: Mutex<std::collections::HashMap<hedge_core::JobId, u64>>,
    /// Wakes the reconciler early (after a submit or a cancel).
    pub wake: tokio::sync::Notify,
    /// Why each waiting job waits, as of the last pass (not stored when it is only "no capacity yet").
    pub waiting: Mutex<BTreeMap<hedge_core::JobId, Arc<schedule::WaitReason>>>,
}

impl Broker {
    /// Opens the store, applies the configured teams, creates the drivers and bootstraps the admin token
    /// (written to `<data_dir>/admin.token`, never logged).
    pub async fn start(
        config: ServerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Broker>, ServerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::Io {
            what: "creating the data directory",
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let store = hedge_store::open(&config.store_url())
            .await
            .map_err(ServerError::Store)?;
        Self::with_store(config, store, clock).await
    }

    pub async fn with_store(
        config: ServerConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Broker>, ServerError> {
        for team in &config.teams {
            store.put_team(team).await.map_err(ServerError::Store)?;
        }
        if let Some(tok) = store
            .bootstrap_admin_token(clock.now())
            .await
            .map_err(ServerError::Store)?
        {
            let path = config.data_dir.join("admin.token");
            write_secret(&path, &tok.secret)?;
            tracing::info!(path = %path.display(), "bootstrapped the admin token");
        }
        let full = match &config.catalog {
            Some(path) => Some(hedge_catalog::load(path).map_err(|e| ServerError::Config {
                origin: "hedge serve".into(),
                field: "catalog".into(),
                reason: format!("{}: {}", path.display(), chain(&e)),
            })?),
            None => match hedge_catalog::default_catalog() {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %chain(&e), "default catalog unavailable; only owned providers can be configured");
                    None
                }
            },
        };
        let mut drivers: BTreeMap<ProviderId, Arc<dyn Driver>> = BTreeMap::new();
        let mut faults = BTreeMap::new();
        let mut ec2 = BTreeMap::new();
        let report_secret = report_secret(&config.data_dir)?;
        for p in &config.providers {
            let (driver, control) = make_driver(&config, p, &report_secret, &mut ec2)?;
            drivers.insert(p.name.clone(), driver);
            faults.insert(p.name.clone(), control);
        }
        let capabilities: BTreeMap<ProviderId, Capabilities> = drivers
            .iter()
            .map(|(n, d)| (n.clone(), d.capabilities()))
            .collect();
        let mut catalog = broker_catalog(
            &config.providers,
            full.as_ref().map(|l| &l.catalog),
            &capabilities,
        )
        .map_err(|(field, reason)| ServerError::Config {
            origin: "providers".into(),
            field,
            reason,
        })?;
        // An EC2 account sees only some zones (local zones need opting in; an endpoint such as moto has its own
        // list): offers in zones it does not see are dropped, so placement never chooses one.
        for (name, d) in &ec2 {
            let zones = d
                .availability_zones()
                .await
                .map_err(|e| ServerError::Config {
                    origin: "providers".into(),
                    field: format!("{name}.driver.endpoint"),
                    reason: format!(
                        "the ec2 driver cannot list the region's availability zones: {}",
                        chain(&e)
                    ),
                })?;
            let seen: BTreeSet<&str> = zones
                .iter()
                .flat_map(|(n, id)| [n.as_str(), id.as_str()])
                .collect();
            let offers: Vec<Offer> = catalog
                .offers()
                .iter()
                .filter(|o| {
                    &o.provider != name
                        || o.location.zone().is_none_or(|z| seen.contains(z.as_str()))
                })
                .cloned()
                .collect();
            catalog = Catalog::new(offers, Default::default(), vec![]);
        }
        // The configured and catalog prices become the price history's current versions (kept only when they
        // changed), so attempts are priced at what was in force while they ran.
        store
            .record_prices(&ledger::config_prices(
                &config.providers,
                &catalog,
                clock.now(),
            ))
            .await
            .map_err(ServerError::Store)?;
        let mut known_accelerators: BTreeSet<Accelerator> =
            catalog.accelerators().into_iter().cloned().collect();
        if let Some(l) = &full {
            known_accelerators.extend(l.catalog.accelerators().into_iter().cloned());
        }
        let health = health::HealthTracker::new(
            config.health,
            drivers.keys().cloned(),
            clock.monotonic_ms(),
        );
        Ok(Arc::new(Broker {
            store,
            clock,
            config,
            drivers,
            capabilities,
            ec2,
            faults,
            catalog,
            known_accelerators,
            health: Mutex::new(health),
            metrics: metrics::Metrics::default(),
            unanswered: Mutex::new(BTreeSet::new()),
            submitted_ms: Mutex::new(Default::default()),
            wake: tokio::sync::Notify::new(),
            waiting: Mutex::new(BTreeMap::new()),
        }))
    }

    pub fn provider_config(&self, p: &ProviderId) -> Option<&ProviderConfig> {
        self.config.providers.iter().find(|c| &c.name == p)
    }

    /// Checks every provider answers, at start: a wrong endpoint or a rejected credential fails the start with
    /// an error naming the provider, instead of degrading it later.
    pub async fn probe_all(&self) -> Result<(), ServerError> {
        for (name, d) in &self.drivers {
            if let Err(e) = d.probe().await {
                let kind = self.provider_config(name).map_or("?", |p| p.driver.kind());
                return Err(ServerError::Config {
                    origin: "providers".into(),
                    field: format!("{name}.driver.endpoint"),
                    reason: format!("the {kind} driver cannot reach its provider: {}", chain(&e)),
                });
            }
        }
        Ok(())
    }
}

/// The secret the EC2 providers' per-attempt report tokens derive from: `<data_dir>/report.secret`, made once.
fn report_secret(data_dir: &std::path::Path) -> Result<String, ServerError> {
    let path = data_dir.join("report.secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        _ => {
            let secret = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            write_secret(&path, &secret)?;
            Ok(secret)
        }
    }
}

/// The driver of one configured provider, wrapped for fault injection (off until switched on).
fn make_driver(
    config: &ServerConfig,
    p: &ProviderConfig,
    report_secret: &str,
    ec2: &mut BTreeMap<ProviderId, Arc<Ec2Driver>>,
) -> Result<(Arc<dyn Driver>, FaultControl), ServerError> {
    let err = |source| ServerError::Driver {
        provider: p.name.to_string(),
        source,
    };
    let dir = config.data_dir.join("providers");
    Ok(match &p.driver {
        DriverConfig::Local => {
            let local = LocalDriver::new(LocalProviderConfig {
                name: p.name.clone(),
                gpus: p.gpus(),
                accelerator: p.accelerator().cloned(),
                root: dir,
                cancel_grace: config.cancel_grace,
            })
            .map_err(err)?;
            let (d, c) = FaultyDriver::new(local);
            (Arc::new(d), c)
        }
        DriverConfig::Slurm {
            endpoint,
            user,
            token,
            partition,
            job_dir,
            timeout,
        } => {
            let Sells::Owned {
                accelerator,
                gpus_per_node,
                nodes,
                ..
            } = &p.sells
            else {
                unreachable!("the configuration only pairs slurm with owned capacity")
            };
            let slurm = SlurmDriver::new(SlurmProviderConfig {
                name: p.name.clone(),
                endpoint: endpoint.clone(),
                user: user.clone(),
                token: token.clone(),
                partition: partition.clone(),
                accelerator: accelerator.clone(),
                gpus_per_node: *gpus_per_node,
                nodes: *nodes,
                job_dir: job_dir.clone().unwrap_or_else(|| dir.join(p.name.as_str())),
                timeout: *timeout,
            })
            .map_err(err)?;
            let (d, c) = FaultyDriver::new(slurm);
            (Arc::new(d), c)
        }
        DriverConfig::Ec2 {
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            image_id,
            report_url,
            timeout,
        } => {
            let region = region.clone().unwrap_or_else(|| "us-east-1".into());
            let driver = Arc::new(
                Ec2Driver::new(Ec2ProviderConfig {
                    name: p.name.clone(),
                    endpoint: endpoint
                        .clone()
                        .unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com")),
                    region,
                    access_key_id: access_key_id.clone(),
                    secret_access_key: secret_access_key.clone(),
                    image_id: image_id.clone(),
                    report_url: report_url
                        .clone()
                        .unwrap_or_else(|| format!("http://{}", config.listen)),
                    report_secret: report_secret.to_owned(),
                    state_dir: dir.join(p.name.as_str()),
                    timeout: *timeout,
                })
                .map_err(err)?,
            );
            ec2.insert(p.name.clone(), driver.clone());
            let (d, c) = FaultyDriver::new(driver);
            (Arc::new(d), c)
        }
    })
}

fn write_secret(path: &std::path::Path, secret: &str) -> Result<(), ServerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| ServerError::Io {
        what: "writing the admin token to",
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(secret.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)
}

/// The offers placement chooses from: exactly the configured providers.
///
/// * An owned provider offers one instance shape per GPU count up to a node (`lab-8xH100`) at its own
///   per-GPU rate, in its own region `local`, and a CPU-only shape at no cost.
/// * A catalog provider offers the catalog's offers of its catalog provider in its regions, renamed to it.
///
/// A driver without spot support gets no spot prices. Errors name the provider's field.
pub fn broker_catalog(
    providers: &[ProviderConfig],
    full: Option<&Catalog>,
    capabilities: &BTreeMap<ProviderId, Capabilities>,
) -> Result<Catalog, (String, String)> {
    let mut offers = Vec::new();
    for (i, p) in providers.iter().enumerate() {
        let field = |k: &str| format!("providers[{i}] ({}).{k}", p.name);
        let spot_ok = capabilities
            .get(&p.name)
            .is_none_or(|c| c.spot == Support::Yes);
        match &p.sells {
            Sells::Owned {
                accelerator,
                gpus_per_node,
                on_demand_per_gpu_hour,
                spot_per_gpu_hour,
                ..
            } => {
                for n in 1..=*gpus_per_node {
                    offers.push(Offer {
                        provider: p.name.clone(),
                        instance_type: format!("{}-{n}x{accelerator}", p.name),
                        accelerator: Some(AccelRequest::new(accelerator.clone(), n)),
                        vcpus_milli: None,
                        memory_mib: None,
                        location: Location::Region {
                            region: "local".into(),
                        },
                        prices: Prices {
                            on_demand: Some(on_demand_per_gpu_hour.times(n)),
                            spot: spot_per_gpu_hour.filter(|_| spot_ok).map(|r| r.times(n)),
                            committed: vec![],
                        },
                    });
                }
                offers.push(Offer {
                    provider: p.name.clone(),
                    instance_type: format!("{}-cpu", p.name),
                    accelerator: None,
                    vcpus_milli: None,
                    memory_mib: None,
                    location: Location::Region {
                        region: "local".into(),
                    },
                    prices: Prices {
                        on_demand: Some(hedge_core::Rate::ZERO),
                        spot: None,
                        committed: vec![],
                    },
                });
            }
            Sells::Catalog {
                provider, regions, ..
            } => {
                let Some(full) = full else {
                    return Err((
                        field("catalog"),
                        "no catalog is loaded (the embedded one failed to load)".into(),
                    ));
                };
                let of_provider: Vec<&Offer> = full
                    .offers()
                    .iter()
                    .filter(|o| &o.provider == provider)
                    .collect();
                if of_provider.is_empty() {
                    let mut known: Vec<&str> =
                        full.offers().iter().map(|o| o.provider.as_str()).collect();
                    known.dedup();
                    known.sort_unstable();
                    known.dedup();
                    return Err((
                        field("catalog.provider"),
                        format!(
                            "the catalog has no provider {provider} (it has {})",
                            known.join(", ")
                        ),
                    ));
                }
                for r in regions {
                    if !of_provider.iter().any(|o| o.location.region() == r) {
                        let mut known: Vec<&str> = of_provider
                            .iter()
                            .map(|o| o.location.region().as_str())
                            .collect();
                        known.sort_unstable();
                        known.dedup();
                        return Err((
                            field("catalog.regions"),
                            format!(
                                "catalog provider {provider} has no region {r} (it has {})",
                                known.join(", ")
                            ),
                        ));
                    }
                }
                for o in of_provider
                    .into_iter()
                    .filter(|o| regions.is_empty() || regions.contains(o.location.region()))
                {
                    let mut o = o.clone();
                    o.provider = p.name.clone();
                    if !spot_ok {
                        o.prices.spot = None;
                    }
                    offers.push(o);
                }
            }
        }
    }
    Ok(Catalog::new(offers, Default::default(), vec![]))
}

/// The offers of local providers only (`hedge-broker-load` and tests build placements without drivers).
pub fn local_catalog(providers: &[ProviderConfig]) -> Catalog {
    broker_catalog(providers, None, &BTreeMap::new())
        .unwrap_or_else(|_| Catalog::new(vec![], Default::default(), vec![]))
}

/// Runs the API on `listener` and the reconciler until `shutdown` resolves.
pub async fn serve(
    broker: Arc<Broker>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(%addr, backend = broker.store.backend(), providers = broker.drivers.len(), "hedge serve listening");
    let loop_task = tokio::spawn(reconcile::run(broker.clone()));
    let app = api::router(broker.clone());
    let r = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    loop_task.abort();
    r.map_err(|source| ServerError::Io {
        what: "serving on",
        path: addr,
        source,
    })
}

/// Runs `hedge serve` to completion (Ctrl-C stops it): logging to stderr at `log_level`, a multi-threaded
/// runtime, the store, the drivers, the API and the reconciler. `on_listen` is called with the bound address.
pub fn run_blocking(
    config: ServerConfig,
    log_level: tracing::Level,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<(), ServerError> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(log_level)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ServerError::Io {
            what: "starting the runtime",
            path: String::new(),
            source,
        })?;
    rt.block_on(async move {
        // A server restarted right after a crash may find its port still held for a moment: retry for 5 s.
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(config.listen).await {
                Ok(l) => break l,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(source) => {
                    return Err(ServerError::Io {
                        what: "listening on",
                        path: config.listen.to_string(),
                        source,
                    })
                }
            }
        };
        let addr = listener.local_addr().map_err(|source| ServerError::Io {
            what: "listening on",
            path: config.listen.to_string(),
            source,
        })?;
        let broker = Broker::start(config, SystemClock::shared()).await?;
        broker.probe_all().await?;
        on_listen(addr);
        serve(broker, listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
}
pub use tracing::Level as LogLevel;
