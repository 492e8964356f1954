//! Many proposals' outcomes gathered in one queue: [`Completions`].

use std::time::{Duration, Instant};

use crate::runtime::RuntimeError;
use crate::runtime::requests::Outcomes;
use crate::runtime::sync::Arc;

/// The outcomes of proposals submitted with
/// [`MultiHandle::propose_to`](super::MultiHandle::propose_to), each with
/// the tag its caller gave it, in the order they came.
///
/// One thread keeps many proposals in flight, to any groups and through
/// any nodes' handles, and waits once for whichever ends first: the
/// outcomes that came meanwhile are all there when it wakes, and the
/// driver wakes it once for all the outcomes of a step, not once per
/// proposal. A [`Ticket`](super::Ticket) costs a reply slot allocated per
/// proposal and a wait or a poll of its own.
///
/// Every proposal `propose_to` accepted ends in exactly one outcome here:
/// the state machine's output for its command, or why not — among them
/// [`RuntimeError::Timeout`] (from the driver, at its first tick past the
/// handle's timeout counted from the submission) and
/// [`RuntimeError::ShuttingDown`] if its node stops first. A proposal
/// `propose_to` refused has no outcome here. Unlike a ticket, which times
/// out on the caller's side, the timeout here is the driver's: a driver
/// stuck inside a step (a state machine's `apply` that blocks, a disk that
/// hangs an fsync) gives it only once it moves again; a caller that needs
/// a bound regardless keeps its own deadline per tag.
///
/// A clone shares the queue: what one clone takes, the others do not see.
///
/// ```
/// use std::time::Duration;
/// use raft_io::runtime::multi::Completions;
///
/// let done: Completions<u64> = Completions::new();
/// let mut out = Vec::new();
/// // Nothing in flight: nothing comes.
/// assert_eq!(done.wait_timeout(Duration::from_millis(1), &mut out), 0);
/// assert_eq!(done.take(&mut out), 0);
/// ```
pub struct Completions<O> {
    pub(super) outcomes: Arc<Outcomes<O>>,
}

/// One outcome: the tag given to
/// [`propose_to`](super::MultiHandle::propose_to), and what the proposal
/// came to.
pub type Completion<O> = (u64, Result<O, RuntimeError>);

impl<O> Completions<O> {
    /// An empty queue.
    pub fn new() -> Self {
        Self { outcomes: Arc::new(Outcomes::default()) }
    }

    /// Moves every outcome that has come to the end of `out`, first waiting
    /// up to `timeout` if none has; returns how many it moved (0: none came
    /// in time).
    pub fn wait_timeout(&self, timeout: Duration, out: &mut Vec<Completion<O>>) -> usize {
        self.outcomes.take_by(Instant::now().checked_add(timeout), out)
    }

    /// Moves every outcome that has come to the end of `out`, without
    /// waiting; returns how many it moved.
    pub fn take(&self, out: &mut Vec<Completion<O>>) -> usize {
        self.outcomes.take_by(Some(Instant::now()), out)
    }
}

impl<O> Default for Completions<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O> Clone for Completions<O> {
    fn clone(&self) -> Self {
        Self { outcomes: Arc::clone(&self.outcomes) }
    }
}

impl<O> std::fmt::Debug for Completions<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completions").finish_non_exhaustive()
    }
}
