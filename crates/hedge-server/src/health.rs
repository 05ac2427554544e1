//! Provider health, as a pure state machine over the outcomes of driver calls and probes.
//!
//! A provider becomes **degraded** after `failure_threshold` consecutive failed calls, or when it has not
//! answered one call for `missed_heartbeats` intervals. Placement avoids degraded providers and the
//! reconciler fails their jobs over. A degraded provider is probed every interval; one successful probe
//! makes it **healthy** again.

use crate::config::HealthSettings;
use hedge_core::ProviderId;
use hedge_store::HealthState;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProviderStatus {
    pub state: HealthState,
    pub consecutive_failures: u32,
    /// Monotonic ms of the last successful call.
    pub last_ok_ms: u64,
    pub last_probe_ms: u64,
    pub last_error: Option<String>,
}

/// A change of a provider's state, with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthChange {
    Degraded {
        provider: ProviderId,
        reason: String,
    },
    Recovered {
        provider: ProviderId,
    },
}

pub struct HealthTracker {
    settings: HealthSettings,
    providers: BTreeMap<ProviderId, ProviderStatus>,
}

impl HealthTracker {
    pub fn new(
        settings: HealthSettings,
        providers: impl IntoIterator<Item = ProviderId>,
        now_ms: u64,
    ) -> Self {
        let providers = providers
            .into_iter()
            .map(|p| {
                let st = ProviderStatus {
                    state: HealthState::Healthy,
                    consecutive_failures: 0,
                    last_ok_ms: now_ms,
                    last_probe_ms: now_ms,
                    last_error: None,
                };
                (p, st)
            })
            .collect();
        HealthTracker {
            settings,
            providers,
        }
    }

    pub fn status(&self, p: &ProviderId) -> Option<&ProviderStatus> {
        self.providers.get(p)
    }
    pub fn all(&self) -> &BTreeMap<ProviderId, ProviderStatus> {
        &self.providers
    }
    pub fn is_healthy(&self, p: &ProviderId) -> bool {
        self.providers
            .get(p)
            .is_some_and(|s| s.state == HealthState::Healthy)
    }

    /// Records the outcome of a driver call or probe.
    pub fn record(
        &mut self,
        p: &ProviderId,
        now_ms: u64,
        outcome: Result<(), String>,
    ) -> Option<HealthChange> {
        let threshold = self.settings.failure_threshold;
        let st = self.providers.get_mut(p)?;
        match outcome {
            Ok(()) => {
                st.consecutive_failures = 0;
                st.last_ok_ms = now_ms;
                if st.state == HealthState::Degraded {
                    st.state = HealthState::Healthy;
                    st.last_error = None;
                    return Some(HealthChange::Recovered {
                        provider: p.clone(),
                    });
                }
                None
            }
            Err(e) => {
                st.consecutive_failures += 1;
                st.last_error = Some(e.clone());
                if st.state == HealthState::Healthy && st.consecutive_failures >= threshold {
                    st.state = HealthState::Degraded;
                    let reason = format!(
                        "{} consecutive failures, last: {e}",
                        st.consecutive_failures
                    );
                    return Some(HealthChange::Degraded {
                        provider: p.clone(),
                        reason,
                    });
                }
                None
            }
        }
    }

    /// Degrades providers that missed their heartbeats.
    pub fn check_heartbeats(&mut self, now_ms: u64) -> Vec<HealthChange> {
        let limit =
            self.settings.interval.as_millis() as u64 * u64::from(self.settings.missed_heartbeats);
        let mut out = Vec::new();
        for (p, st) in &mut self.providers {
            if st.state == HealthState::Healthy && now_ms.saturating_sub(st.last_ok_ms) > limit {
                st.state = HealthState::Degraded;
                let reason = format!(
                    "no answer for {} ms (heartbeat limit {limit} ms)",
                    now_ms - st.last_ok_ms
                );
                out.push(HealthChange::Degraded {
                    provider: p.clone(),
                    reason,
                });
            }
        }
        out
    }

    /// Providers due for a probe: every provider once per interval (the probe is also the heartbeat).
    pub fn due_for_probe(&mut self, now_ms: u64) -> Vec<ProviderId> {
        let interval = self.settings.interval.as_millis() as u64;
        let mut out = Vec::new();
        for (p, st) in &mut self.providers {
            let quiet = now_ms.saturating_sub(st.last_ok_ms) >= interval / 2;
            if now_ms.saturating_sub(st.last_probe_ms) >= interval / 2
                && (quiet || st.state == HealthState::Degraded)
            {
                st.last_probe_ms = now_ms;
                out.push(p.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tracker() -> (HealthTracker, ProviderId) {
        let s = HealthSettings {
            interval: Duration::from_millis(1000),
            failure_threshold: 3,
            missed_heartbeats: 2,
        };
        let p = ProviderId::parse("a");
        (HealthTracker::new(s, [p.clone()], 0), p)
    }

    #[test]
    fn consecutive_failures_degrade_and_a_success_recovers() {
        let (mut t, p) = tracker();
        assert_eq!(t.record(&p, 10, Err("x".into())), None);
        assert_eq!(t.record(&p, 20, Ok(())), None, "a success resets the count");
        assert_eq!(t.record(&p, 30, Err("x".into())), None);
        assert_eq!(t.record(&p, 40, Err("x".into())), None);
        assert!(matches!(
            t.record(&p, 50, Err("boom".into())),
            Some(HealthChange::Degraded { .. })
        ));
        assert!(!t.is_healthy(&p));
        assert_eq!(t.record(&p, 60, Err("x".into())), None, "degraded once");
        assert_eq!(t.due_for_probe(600), vec![p.clone()]);
        assert_eq!(
            t.due_for_probe(700),
            vec![],
            "probed at most every half interval"
        );
        assert_eq!(
            t.record(&p, 700, Ok(())),
            Some(HealthChange::Recovered {
                provider: p.clone()
            })
        );
    }

    #[test]
    fn missed_heartbeats_degrade() {
        let (mut t, _) = tracker();
        assert!(t.check_heartbeats(2000).is_empty());
        let ch = t.check_heartbeats(2001);
        assert!(
            matches!(&ch[..], [HealthChange::Degraded { reason, .. }] if reason.contains("heartbeat")),
            "{ch:?}"
        );
    }
}
