//! The error policy: every driver error is classified as retry, failover or fatal, apart from the loop that
//! acts on it (as kube-rs keeps `error_policy` apart from `reconcile`).

use hedge_drivers::DriverError;
use serde::Serialize;

/// What the reconciler does about a failed driver call.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ErrorAction {
    /// Transient: try the same call on the same provider at the next pass. Counts against the provider's
    /// health, which fails the job over if the provider stays unreachable.
    Retry { reason: String },
    /// This provider cannot run this attempt now: give the job back to placement, which avoids it.
    Failover { reason: String },
    /// No provider can run this job: fail it.
    Fatal { reason: String },
}

impl ErrorAction {
    /// The stable reason code stored with the job event.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorAction::Retry { .. } => "driver_retry",
            ErrorAction::Failover { .. } => "launch_failed",
            ErrorAction::Fatal { .. } => "launch_fatal",
        }
    }
}

/// Classifies `e`, the `failures`-th consecutive failure of the same call (1 for the first). Transient
/// errors become a failover once they happened more than `max_retries` times in a row.
pub fn classify(e: &DriverError, failures: u32, max_retries: u32) -> ErrorAction {
    let reason = crate::error::chain(e);
    let transient = || {
        if failures > max_retries {
            ErrorAction::Failover {
                reason: format!("{reason} ({failures} times in a row)"),
            }
        } else {
            ErrorAction::Retry {
                reason: reason.clone(),
            }
        }
    };
    match e {
        DriverError::Unreachable { .. } | DriverError::Io { .. } => transient(),
        DriverError::Rejected { .. } | DriverError::NotFound { .. } => {
            ErrorAction::Failover { reason }
        }
        DriverError::Unsupported { .. } | DriverError::BadKey { .. } => {
            ErrorAction::Fatal { reason }
        }
    }
}

/// Whether an error says something about the provider's health (as opposed to about one request).
pub fn counts_against_health(e: &DriverError) -> bool {
    matches!(
        e,
        DriverError::Unreachable { .. } | DriverError::Io { .. } | DriverError::Rejected { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hedge_core::ProviderId;
    use hedge_drivers::IdempotencyKey;

    fn p() -> ProviderId {
        ProviderId::parse("local-a")
    }

    #[test]
    fn table() {
        let unreachable = DriverError::Unreachable {
            provider: p(),
            reason: "down".into(),
        };
        let rejected = DriverError::Rejected {
            provider: p(),
            key: IdempotencyKey::parse("k").unwrap(),
            reason: "full".into(),
        };
        let unsupported = DriverError::Unsupported {
            provider: p(),
            reason: "2 nodes".into(),
        };
        let cases = [
            (&unreachable, 1, "driver_retry"),
            (&unreachable, 3, "driver_retry"),
            (&unreachable, 4, "launch_failed"),
            (&rejected, 1, "launch_failed"),
            (&unsupported, 1, "launch_fatal"),
        ];
        for (e, n, want) in cases {
            assert_eq!(classify(e, n, 3).code(), want, "{e} x{n}");
        }
        assert!(counts_against_health(&unreachable));
        assert!(!counts_against_health(&unsupported));
    }
}
