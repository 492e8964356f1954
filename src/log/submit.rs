//! The asynchronous storage contract's vocabulary: the token that names one
//! write, and what a log answers when a write is submitted.
//!
//! In the asynchronous mode (`RaftConfig::async_storage`) a node does not
//! wait for its log at the end of a step. It hands every mutation of the
//! step to the log as one *write* with [`RaftLog::submit`](super::RaftLog::submit),
//! names it with a [`WriteToken`], and goes on. When the log says the write
//! is durable, the embedder reports it with `Event::Persisted(token)`. The
//! rules (which messages wait for which writes, what truncations and
//! snapshots do to writes in flight, what a crash means) are normative in
//! `docs/PROTOCOL.md` §5.1.

use std::fmt;

/// Names one write of the asynchronous storage mode: every mutation a node
/// made to its log up to the end of one step.
///
/// Writes of one node are numbered in the order they are submitted
/// ([`seq`](Self::seq) grows by one per write), and completions are
/// *cumulative*: reporting a token says that it and every earlier write are
/// durable. The [`epoch`](Self::epoch) tells one run of a node from
/// another, so that a completion meant for a node before it restarted is
/// refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteToken {
    epoch: u64,
    seq: u64,
}

impl WriteToken {
    /// A token; nodes make them, logs and embedders pass them back.
    pub fn new(epoch: u64, seq: u64) -> Self {
        Self { epoch, seq }
    }

    /// Which run of the node issued the write.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The write's number within its epoch, from 1.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl fmt::Debug for WriteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "write {}#{:x}", self.seq, self.epoch)
    }
}

impl fmt::Display for WriteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What [`RaftLog::submit`](super::RaftLog::submit) did with a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Submitted {
    /// The write is durable already (the log synced it before returning):
    /// no completion will be reported, and the node counts it durable at
    /// once. This is what a log without an asynchronous path answers.
    Durable,
    /// The write is on its way; the log will say when it is durable, and
    /// the embedder reports that with `Event::Persisted(token)`.
    Pending,
}
