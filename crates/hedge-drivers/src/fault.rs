//! A fault-injecting wrapper around any [`Driver`], switched at run time through a [`FaultControl`].
//! Tests and the demo use it to fail submits, lose attempts, or make a whole provider unreachable; the
//! wrapped driver is the real one, so everything not faulted behaves exactly as in production.

use crate::{Capabilities, Driver, DriverError, IdempotencyKey, LaunchSpec, Logs, Observation};
use hedge_core::ProviderId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Which faults are switched on. The default is none.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSettings {
    /// Every call, including [`Driver::probe`], fails with [`DriverError::Unreachable`]. The wrapped
    /// provider keeps running what it runs, as in a network partition.
    pub unreachable: bool,
    /// The next this many submits fail with [`DriverError::Rejected`].
    pub fail_submits: u32,
    /// The next this many observations of a queued or running attempt lose it: the wrapped attempt is
    /// cancelled and the attempt is reported [`Observation::Lost`] from then on.
    pub lose_next: u32,
}

#[derive(Debug, Default)]
struct State {
    settings: FaultSettings,
    lost: BTreeSet<IdempotencyKey>,
    injected: u64,
}

/// A handle to switch one provider's faults; cheap to clone and shared with the [`FaultyDriver`].
#[derive(Clone, Debug, Default)]
pub struct FaultControl(Arc<Mutex<State>>);

impl FaultControl {
    pub fn set(&self, settings: FaultSettings) {
        self.lock().settings = settings;
    }
    pub fn get(&self) -> FaultSettings {
        self.lock().settings.clone()
    }
    pub fn set_unreachable(&self, on: bool) {
        self.lock().settings.unreachable = on;
    }
    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `D` with faults injected as its [`FaultControl`] says.
pub struct FaultyDriver<D> {
    inner: D,
    control: FaultControl,
}

impl<D: Driver> FaultyDriver<D> {
    pub fn new(inner: D) -> (Self, FaultControl) {
        let control = FaultControl::default();
        (
            FaultyDriver {
                inner,
                control: control.clone(),
            },
            control,
        )
    }
    pub fn inner(&self) -> &D {
        &self.inner
    }
    pub fn control(&self) -> &FaultControl {
        &self.control
    }
    fn check_reachable(&self) -> Result<(), DriverError> {
        let mut st = self.control.lock();
        if st.settings.unreachable {
            st.injected += 1;
            return Err(DriverError::Unreachable {
                provider: self.inner.provider().clone(),
                reason: "fault injected: provider unreachable".into(),
            });
        }
        Ok(())
    }
    fn lost(key: &IdempotencyKey) -> Observation {
        Observation::Lost {
            reason: format!("fault injected: provider lost attempt {key}"),
        }
    }
}

#[async_trait::async_trait]
impl<D: Driver> Driver for FaultyDriver<D> {
    fn provider(&self) -> &ProviderId {
        self.inner.provider()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn submit(
        &self,
        key: &IdempotencyKey,
        spec: &LaunchSpec,
    ) -> Result<Observation, DriverError> {
        self.check_reachable()?;
        {
            let mut st = self.control.lock();
            if st.lost.contains(key) {
                return Ok(Self::lost(key));
            }
            if st.settings.fail_submits > 0 {
                st.settings.fail_submits -= 1;
                st.injected += 1;
                return Err(DriverError::Rejected {
                    provider: self.inner.provider().clone(),
                    key: key.clone(),
                    reason: "fault injected: submit failed".into(),
                });
            }
        }
        self.inner.submit(key, spec).await
    }

    async fn observe(&self, key: &IdempotencyKey) -> Result<Observation, DriverError> {
        self.check_reachable()?;
        if self.control.lock().lost.contains(key) {
            return Ok(Self::lost(key));
        }
        let obs = self.inner.observe(key).await?;
        if obs.is_terminal() {
            return Ok(obs);
        }
        let lose = {
            let mut st = self.control.lock();
            if st.settings.lose_next > 0 {
                st.settings.lose_next -= 1;
                st.injected += 1;
                st.lost.insert(key.clone());
                true
            } else {
                false
            }
        };
        if lose {
            self.inner.cancel(key).await?;
            return Ok(Self::lost(key));
        }
        Ok(obs)
    }

    async fn cancel(&self, key: &IdempotencyKey) -> Result<Observation, DriverError> {
        self.check_reachable()?;
        if self.control.lock().lost.contains(key) {
            return Ok(Self::lost(key));
        }
        self.inner.cancel(key).await
    }

    async fn logs(&self, key: &IdempotencyKey, max_bytes: u64) -> Result<Logs, DriverError> {
        self.check_reachable()?;
        self.inner.logs(key, max_bytes).await
    }

    async fn probe(&self) -> Result<(), DriverError> {
        self.check_reachable()?;
        self.inner.probe().await
    }
}
