//! The synchronization primitives of the handle's shared state: `std`'s,
//! or loom's when the crate is model-checked (`RUSTFLAGS="--cfg loom"`,
//! unit tests only).

#[cfg(all(test, loom))]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Locks `m`, recovering the data if a thread panicked while holding it:
/// every structure guarded here is consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
