//! [`StateMachine`]: the application the runtime replicates.

use bytes::Bytes;

use crate::types::Index;

/// The application state the runtime replicates. The runtime's driver
/// thread owns it and calls it in log order: [`apply`](Self::apply) for
/// every committed command, [`restore`](Self::restore) when the node
/// installs a snapshot, [`snapshot`](Self::snapshot) when the node's
/// snapshot policy asks for one. Reads run closures against it on the same
/// thread (see [`RaftHandle::read`](super::RaftHandle::read)).
///
/// Keep each call short: while it runs, the node neither ticks nor answers
/// its peers.
///
/// ```
/// use bytes::Bytes;
/// use raft_io::runtime::StateMachine;
///
/// /// A counter: every command adds its length; apply returns the new total.
/// #[derive(Default)]
/// struct Counter(u64);
///
/// impl StateMachine for Counter {
///     type Output = u64;
///     fn apply(&mut self, _index: u64, command: &Bytes) -> u64 {
///         self.0 += command.len() as u64;
///         self.0
///     }
///     fn snapshot(&self) -> Bytes {
///         Bytes::copy_from_slice(&self.0.to_be_bytes())
///     }
///     fn restore(&mut self, data: &Bytes) {
///         self.0 = data.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
///     }
/// }
/// ```
pub trait StateMachine: Send + 'static {
    /// What applying a command returns to its proposer (through
    /// [`RaftHandle::propose`](super::RaftHandle::propose)).
    type Output: Send + 'static;

    /// Applies the command committed at `index`. Must be deterministic: every
    /// node applies the same commands in the same order and must reach the
    /// same state. A command the application cannot parse must not panic:
    /// it is in the log for good; return an error value instead.
    fn apply(&mut self, index: Index, command: &Bytes) -> Self::Output;

    /// Serializes the whole state (covering every command applied so far).
    fn snapshot(&self) -> Bytes;

    /// Replaces the whole state with one produced by
    /// [`snapshot`](Self::snapshot), possibly on another node.
    fn restore(&mut self, data: &Bytes);
}
