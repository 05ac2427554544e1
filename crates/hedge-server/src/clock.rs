//! The clock: the one module that reads time. Everything else takes [`Clock`] values or timestamps.

use hedge_core::Timestamp;
use std::sync::Arc;

/// Wall-clock time for what is stored (seconds) and a monotonic millisecond counter for intervals.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
    /// Milliseconds since an arbitrary fixed origin; never goes backwards.
    fn monotonic_ms(&self) -> u64;
}

/// The system clock.
pub struct SystemClock {
    origin: tokio::time::Instant,
}

impl SystemClock {
    #[allow(clippy::disallowed_methods)] // the clock's home module: the monotonic origin
    pub fn shared() -> Arc<dyn Clock> {
        Arc::new(SystemClock {
            origin: tokio::time::Instant::now(),
        })
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the clock's home module
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_unix(d.as_secs() as i64)
    }
    fn monotonic_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }
}
