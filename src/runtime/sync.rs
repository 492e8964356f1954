//! The synchronization primitives of the handle's shared state: `std`'s,
//! or loom's when the crate is model-checked (`RUSTFLAGS="--cfg loom"`,
//! unit tests only).

use std::time::Instant;

#[cfg(all(test, loom))]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Locks `m`, recovering the data if a thread panicked while holding it:
/// every structure guarded here is consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `cv` (paired with the mutex `guard` came from) until `done`
/// holds for the guarded value, or until `deadline` passes (`None`: only
/// until `done` holds). Returns the guard either way; the caller tells the
/// two apart by looking at the value.
pub(crate) fn wait_until<'a, T>(
    cv: &Condvar,
    mut guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
    done: impl Fn(&T) -> bool,
) -> MutexGuard<'a, T> {
    while !done(&guard) {
        guard = match deadline {
            None => cv.wait(guard).unwrap_or_else(|p| p.into_inner()),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                match cv.wait_timeout(guard, deadline - now) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                }
            }
        };
    }
    guard
}
