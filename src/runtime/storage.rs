//! The asynchronous storage mode in the threaded runtime
//! (`RaftConfig::async_storage`, `docs/PROTOCOL.md` §5.1): the driver never
//! waits for the disk. A log that reports its own completions (`WalLog`'s
//! sync thread, through [`RaftLog::notify_completions`]) posts the latest
//! durable token here and wakes the driver, which steps it as
//! `Event::Persisted` at the top of its next turn; one fsync of the sync
//! thread covers every write submitted while the previous one ran (group
//! commit across overlapping steps). A log that does not is reported the
//! turn's latest token at the end of the turn, and makes it durable in
//! `RaftLog::persisted`, on the driver thread: one sync per turn.

use std::sync::{Arc, Mutex};

use super::requests::Signal;
use crate::log::{RaftLog, WriteToken};
use crate::node::RaftNode;
use crate::sync::lock;

/// Where the log's notifier leaves the latest durable token.
#[derive(Debug, Default)]
pub(super) struct Completions {
    latest: Mutex<Option<WriteToken>>,
}

impl Completions {
    /// Takes the latest token posted since the last call.
    pub(super) fn take(&self) -> Option<WriteToken> {
        lock(&self.latest).take()
    }
}

/// How the driver learns that writes are durable.
#[derive(Debug)]
pub(super) enum Durability {
    /// Synchronous storage: nothing to learn.
    Sync,
    /// The log posts completions (and wakes the driver).
    Notified(Arc<Completions>),
    /// The driver reports the turn's latest token itself.
    Reported(Option<WriteToken>),
}

/// Sets the node's log up for the mode its configuration asks for.
pub(super) fn attach<L: RaftLog>(node: &mut RaftNode<L>, signal: &Arc<Signal>) -> std::io::Result<Durability> {
    if !node.config().get_async_storage() {
        return Ok(Durability::Sync);
    }
    let completions = Arc::new(Completions::default());
    let (posted, wake) = (Arc::clone(&completions), Arc::clone(signal));
    let notify = Box::new(move |token: WriteToken| {
        {
            let mut latest = lock(&posted.latest);
            if latest.is_none_or(|t| token.seq() > t.seq()) {
                *latest = Some(token);
            }
        }
        wake.notify();
    });
    match node.log_mut().notify_completions(notify) {
        Ok(true) => Ok(Durability::Notified(completions)),
        Ok(false) => Ok(Durability::Reported(None)),
        Err(e) => Err(std::io::Error::other(e)),
    }
}
