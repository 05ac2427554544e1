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
pub use config::{HealthSettings, LocalProvider, ServerConfig};
pub use error::{chain, ApiError, ServerError};

use hedge_core::{AccelRequest, Accelerator, Catalog, Location, Offer, Prices, ProviderId};
use hedge_drivers::{Driver, FaultControl, FaultyDriver, LocalDriver, LocalProviderConfig};
use hedge_store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Everything the API handlers and the reconciler share.
pub struct Broker {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: ServerConfig,
    pub drivers: BTreeMap<ProviderId, Arc<dyn Driver>>,
    /// Fault controls of the providers (every local provider is wrapped; faults are off until switched on).
    pub faults: BTreeMap<ProviderId, FaultControl>,
    /// Offers of the configured providers: what placement chooses from.
    pub catalog: Catalog,
    /// Accelerators a task may name: the default catalog's and the configured providers'.
    pub known_accelerators: BTreeSet<Accelerator>,
    pub health: Mutex<health::HealthTracker>,
    pub metrics: metrics::Metrics,
    /// Wakes the reconciler early (after a submit or a cancel).
    pub wake: tokio::sync::Notify,
    /// Why each waiting job waits, as of the last pass (not stored when it is only "no capacity yet").
    pub waiting: Mutex<BTreeMap<hedge_core::JobId, schedule::WaitReason>>,
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
        // The configured prices become the price history's current versions (kept only when they changed),
        // so attempts are priced at what was in force while they ran.
        store
            .record_prices(&ledger::config_prices(&config.providers, clock.now()))
            .await
            .map_err(ServerError::Store)?;
        let mut drivers: BTreeMap<ProviderId, Arc<dyn Driver>> = BTreeMap::new();
        let mut faults = BTreeMap::new();
        let root = config.data_dir.join("providers");
        for p in &config.providers {
            let local = LocalDriver::new(LocalProviderConfig {
                name: p.name.clone(),
                gpus: p.gpus,
                accelerator: Some(p.accelerator.clone()),
                root: root.clone(),
                cancel_grace: config.cancel_grace,
            })
            .map_err(|source| ServerError::Driver {
                provider: p.name.to_string(),
                source,
            })?;
            let (faulty, control) = FaultyDriver::new(local);
            drivers.insert(p.name.clone(), Arc::new(faulty));
            faults.insert(p.name.clone(), control);
        }
        let catalog = local_catalog(&config.providers);
        let mut known_accelerators: BTreeSet<Accelerator> = config
            .providers
            .iter()
            .map(|p| p.accelerator.clone())
            .collect();
        match hedge_catalog::default_catalog() {
            Ok(loaded) => {
                known_accelerators.extend(loaded.catalog.accelerators().into_iter().cloned())
            }
            Err(e) => {
                tracing::warn!(error = %chain(&e), "default catalog unavailable; only local accelerators are known")
            }
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
            faults,
            catalog,
            known_accelerators,
            health: Mutex::new(health),
            metrics: metrics::Metrics::default(),
            wake: tokio::sync::Notify::new(),
            waiting: Mutex::new(BTreeMap::new()),
        }))
    }

    pub fn provider_config(&self, p: &ProviderId) -> Option<&LocalProvider> {
        self.config.providers.iter().find(|c| &c.name == p)
    }
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

/// The offers of the configured local providers: one instance shape per GPU count (`local-2xH100`), priced
/// per GPU-hour, in the provider's own region `local`.
pub fn local_catalog(providers: &[LocalProvider]) -> Catalog {
    let mut offers = Vec::new();
    for p in providers {
        for n in 1..=p.gpus {
            offers.push(Offer {
                provider: p.name.clone(),
                instance_type: format!("local-{n}x{}", p.accelerator),
                accelerator: Some(AccelRequest::new(p.accelerator.clone(), n)),
                vcpus_milli: None,
                memory_mib: None,
                location: Location::Region {
                    region: "local".into(),
                },
                prices: Prices {
                    on_demand: Some(p.on_demand_per_gpu_hour.times(n)),
                    spot: p.spot_per_gpu_hour.map(|r| r.times(n)),
                    committed: vec![],
                },
            });
        }
        offers.push(Offer {
            provider: p.name.clone(),
            instance_type: "local-cpu".into(),
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
    Catalog::new(offers, Default::default(), vec![])
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
        on_listen(addr);
        serve(broker, listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
}
pub use tracing::Level as LogLevel;
