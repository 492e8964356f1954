//! The synchronization primitives of the handle's shared state: `std`'s,
//! or loom's when the crate is model-checked (`RUSTFLAGS="--cfg loom"`,
//! unit tests only).

use std::time::Instant;

#[cfg(all(test, loom))]
pub(crate) use loom::sync::{
    Arc, Condvar, Mutex, MutexGuard,
    atomic::{AtomicBool, Ordering},
};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::{
    Arc, Condvar, Mutex, MutexGuard,
    atomic::{AtomicBool, Ordering},
};

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

/// A value behind a mutex, with a condition variable that is signalled only
/// when some thread is waiting on it. A notification costs a system call
/// whether or not anyone waits (`std`'s futex condition variable always
/// wakes the kernel), and most of the runtime's notifications find no one
/// waiting: a reply taken with `try_get` or after it came, a driver that is
/// busy when a request is queued. Counting the waiters (under the same
/// mutex as the value) makes those free.
///
/// No wake-up is lost: a waiter counts itself and looks at the value under
/// the lock, and [`update`](Self::update) changes the value and reads the
/// count under the lock, so either the waiter sees the new value before it
/// waits, or the updater sees the waiter and wakes it. The loom model
/// checks of `requests.rs` cover every interleaving of the two.
pub(crate) struct Watched<T> {
    state: Mutex<WatchedState<T>>,
    changed: Condvar,
}

struct WatchedState<T> {
    value: T,
    waiters: usize,
}

impl<T: Default> Default for Watched<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> Watched<T> {
    pub(crate) fn new(value: T) -> Self {
        Self { state: Mutex::new(WatchedState { value, waiters: 0 }), changed: Condvar::new() }
    }

    /// Changes the value with `f`, then wakes every waiter, if there is one.
    pub(crate) fn update(&self, f: impl FnOnce(&mut T)) {
        if self.update_quietly(f) {
            self.notify();
        }
    }

    /// Changes the value with `f` without waking anyone; returns whether
    /// a thread waits on it, in which case the caller owes it a
    /// [`notify`](Self::notify) (a deferred wake-up: the waiter counted
    /// itself under the lock and sleeps until notified, so it sees the new
    /// value once the notification comes).
    pub(crate) fn update_quietly(&self, f: impl FnOnce(&mut T)) -> bool {
        self.update_deciding(|value, waiting| {
            f(value);
            waiting
        })
    }

    /// As [`update_quietly`](Self::update_quietly), with `f` told whether
    /// a thread waits and deciding whether it is owed a
    /// [`notify`](Self::notify) (one wake-up for many updates: an update
    /// that finds one owed already need not owe another). The decision
    /// is the caller's to keep: a waiter that is owed nothing sleeps on.
    pub(crate) fn update_deciding(&self, f: impl FnOnce(&mut T, bool) -> bool) -> bool {
        let mut state = lock(&self.state);
        let waiting = state.waiters > 0;
        f(&mut state.value, waiting)
    }

    /// Threads waiting now.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn waiters(&self) -> usize {
        lock(&self.state).waiters
    }

    /// Wakes every waiter (after [`update_quietly`](Self::update_quietly)
    /// said one waits).
    pub(crate) fn notify(&self) {
        self.changed.notify_all();
    }

    /// Waits until `done` holds for the value or `deadline` passes (`None`:
    /// only until `done` holds), then hands the value to `then`, which
    /// tells the two apart.
    pub(crate) fn wait_until<R>(
        &self,
        deadline: Option<Instant>,
        done: impl Fn(&T) -> bool,
        then: impl FnOnce(&mut T) -> R,
    ) -> R {
        let mut state = lock(&self.state);
        state.waiters += 1;
        state = wait_until(&self.changed, state, deadline, |s| done(&s.value));
        state.waiters -= 1;
        then(&mut state.value)
    }
}
