//! [`DriverLife`]: the lifecycle of a runtime's driver thread, the same for
//! the single-group runtime and the runtime for many groups — its join
//! handle, whether and why it stopped, and waiting for it to stop.

use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::thread::{JoinHandle, ThreadId};

use super::StopReason;
use crate::sync::lock;

/// What the handles know of the driver thread.
#[derive(Debug, Default)]
pub(crate) struct DriverLife {
    driver: Mutex<Option<JoinHandle<()>>>,
    driver_thread: OnceLock<ThreadId>,
    stopped: Mutex<bool>,
    /// Why the driver stopped, once it has.
    stop_reason: Mutex<Option<StopReason>>,
    stopped_cv: Condvar,
}

impl DriverLife {
    /// Records the spawned driver thread.
    pub(crate) fn started(&self, join: JoinHandle<()>) {
        let _ = self.driver_thread.set(join.thread().id());
        *lock(&self.driver) = Some(join);
    }

    /// Records why the driver stops (the first reason given wins).
    pub(crate) fn stopping(&self, reason: StopReason) {
        lock(&self.stop_reason).get_or_insert(reason);
    }

    /// Runs the driver loop. A panic (of the state machine, a query, the
    /// transport) ends the driver: its message becomes the stop reason
    /// before the thread's guard marks it stopped, then it unwinds on.
    pub(crate) fn run_recording_panics(&self, run: impl FnOnce()) {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic payload".to_owned());
            self.stopping(StopReason::Panicked(msg));
            std::panic::resume_unwind(panic);
        }
    }

    /// Marks the driver stopped and wakes every [`wait_stopped`](Self::wait_stopped) caller.
    pub(crate) fn mark_stopped(&self) {
        *lock(&self.stopped) = true;
        self.stopped_cv.notify_all();
    }

    /// Whether the driver is still running.
    pub(crate) fn is_running(&self) -> bool {
        !*lock(&self.stopped)
    }

    /// Why the driver stopped; `None` while it runs.
    pub(crate) fn stop_reason(&self) -> Option<StopReason> {
        lock(&self.stop_reason).clone()
    }

    /// Waits until the driver thread has exited (after it was told to
    /// stop): joins it, or, when another caller already did, waits for the
    /// stopped mark. Returns at once on the driver thread itself (a read
    /// query calling `shutdown`).
    pub(crate) fn wait_stopped(&self) {
        if self.driver_thread.get() == Some(&std::thread::current().id()) {
            return;
        }
        let join = lock(&self.driver).take();
        if let Some(join) = join {
            let _ = join.join();
            return;
        }
        let mut stopped = lock(&self.stopped);
        while !*stopped {
            stopped = self.stopped_cv.wait(stopped).unwrap_or_else(PoisonError::into_inner);
        }
    }
}
