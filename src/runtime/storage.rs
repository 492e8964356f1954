//! The asynchronous storage mode in the threaded runtime
//! (`RaftConfig::async_storage`, `docs/PROTOCOL.md` §5.1): a step never
//! waits for the disk. Two engines, as the log chooses
//! ([`RaftLog::notify_completions`]):
//!
//! * the log reports its own completions (`WalLog` opened with
//!   `WalOptions::sync_thread(true)`): its sync thread posts the latest
//!   durable token here and wakes the driver, which steps it as
//!   `Event::Persisted` at the top of its next turn; one fsync covers every
//!   write submitted while the previous one ran;
//! * otherwise (`WalLog`'s default) the driver reports the turn's latest
//!   token at the end of the turn, after the turn's messages were sent,
//!   and the log makes every write of the turn durable in
//!   `RaftLog::persisted`: one fsync per turn on the driver thread, with
//!   the leader's appends already on their way.

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
