//! Locking that survives a panicking thread.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, recovering the data if a thread panicked while holding it:
/// every structure the crate guards with a mutex is consistent between
/// statements, so a poisoned lock holds valid data. (The runtime's shared
/// request state has its own `lock`, which switches to loom's mutex when
/// model-checked.)
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
