//! What the node tells a `tracing` subscriber (feature `tracing`): role and
//! leader changes with their reason, elections, membership changes,
//! snapshots, storage failures. Without the feature none of it is compiled:
//! [`Why`] is recorded by a method that does nothing, and every event is a
//! macro that expands to nothing.
//!
//! Events carry `node` and `term` fields (and `group` once a node runs
//! inside a multi-group host). Nothing on the per-entry path is above
//! `trace` level.

use super::RaftNode;
use crate::log::RaftLog;

/// Why the node's role or leader changed, for the `role changed` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(super) enum Why {
    /// Started (or restarted) as a follower.
    #[default]
    Start,
    /// Its election timeout fired.
    ElectionTimeout,
    /// The embedder asked it to campaign (`Event::Campaign`).
    Campaign,
    /// Its leader told it to campaign (leadership transfer).
    TransferTarget,
    /// It won an election.
    ElectionWon,
    /// A quorum refused it.
    ElectionLost,
    /// A message carried a higher term.
    HigherTerm,
    /// It heard from the leader of its term.
    LeaderFound,
    /// Check-quorum: no quorum answered it within an election timeout.
    CheckQuorum,
    /// Asynchronous storage: its writes made no progress for an election
    /// timeout.
    DiskStalled,
    /// The configuration that removed it committed.
    RemovedFromConfig,
    /// A member told it that a committed configuration removed it.
    RemovalNotice,
}

impl Why {
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Why::Start => "start",
            Why::ElectionTimeout => "election timeout",
            Why::Campaign => "campaign requested",
            Why::TransferTarget => "leadership transfer",
            Why::ElectionWon => "election won",
            Why::ElectionLost => "election lost",
            Why::HigherTerm => "higher term",
            Why::LeaderFound => "leader found",
            Why::CheckQuorum => "check-quorum",
            Why::DiskStalled => "disk stalled",
            Why::RemovedFromConfig => "removed from the configuration",
            Why::RemovalNotice => "removal notice",
        }
    }
}

impl<L: RaftLog> RaftNode<L> {
    /// Records why the next role or leader change happens.
    #[inline]
    pub(super) fn because(&mut self, _why: Why) {
        #[cfg(feature = "tracing")]
        {
            self.why = _why;
        }
    }
}

/// `tracing::event!` with the feature on; nothing at all without it.
macro_rules! observe {
    ($($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        {
            tracing::event!($($arg)*);
        }
    }};
}
pub(super) use observe;
