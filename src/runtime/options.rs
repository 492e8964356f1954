//! The settings both runtimes share (the single-group [`Runtime`] and the
//! many-groups [`MultiRuntime`]): one place for their defaults and bounds,
//! which each builder's setters apply.
//!
//! [`Runtime`]: super::Runtime
//! [`MultiRuntime`]: super::multi::MultiRuntime

use std::time::Duration;

/// The common tuning of a runtime's driver.
#[derive(Clone, Debug)]
pub(crate) struct CommonOptions {
    /// How often the driver ticks.
    pub(crate) tick_interval: Duration,
    /// How long a request may wait before it fails with `Timeout`.
    pub(crate) request_timeout: Duration,
    /// Most requests queued (and, in the many-groups runtime, held).
    pub(crate) max_pending: usize,
    /// Most proposals in one batch step.
    pub(crate) max_batch: usize,
    /// Most command bytes in one batch step.
    pub(crate) max_batch_bytes: usize,
}

impl Default for CommonOptions {
    fn default() -> Self {
        Self {
            tick_interval: Duration::from_millis(10),
            request_timeout: Duration::from_secs(5),
            max_pending: 65536,
            max_batch: 4096,
            max_batch_bytes: 4 << 20,
        }
    }
}

impl CommonOptions {
    /// Clamped to between 100 µs and an hour.
    pub(crate) fn set_tick_interval(&mut self, interval: Duration) {
        self.tick_interval = interval.clamp(Duration::from_micros(100), Duration::from_secs(3600));
    }

    pub(crate) fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
    }

    /// At least 1.
    pub(crate) fn set_max_pending(&mut self, n: usize) {
        self.max_pending = n.max(1);
    }

    /// At least 1.
    pub(crate) fn set_max_batch(&mut self, n: usize) {
        self.max_batch = n.max(1);
    }

    /// At least 1.
    pub(crate) fn set_max_batch_bytes(&mut self, n: usize) {
        self.max_batch_bytes = n.max(1);
    }
}
