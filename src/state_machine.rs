//! [`StateMachine`]: the application a Raft group replicates — one trait for
//! the threaded runtime (feature `net`) and the simulator (feature `sim`),
//! so the state machine you ship is the one you test.

use bytes::Bytes;

use crate::types::Index;

/// The application state Raft replicates. Whoever drives the node — the
/// threaded `runtime` (feature `net`), the simulator's `Cluster`
/// (feature `sim`) or your own loop — calls it in log order:
/// [`apply`](Self::apply) for every committed command,
/// [`restore`](Self::restore) when the node installs a snapshot,
/// [`snapshot`](Self::snapshot) when the node's snapshot policy asks for
/// one.
///
/// [`apply`](Self::apply) returns an [`Output`](Self::Output) — a result, a
/// refusal ("insufficient funds"), anything your clients should hear. The
/// runtime hands it to the proposer; the simulator hands it to simulated
/// clients (`Cluster::write_output`) and to the linearizability checker.
///
/// # The digest contract (simulator)
///
/// The simulator checks State Machine Safety on application state by
/// comparing [`digest`](Self::digest)s of nodes that applied through the
/// same index. For that check to mean anything:
///
/// * **equal states must give equal digests** (otherwise every run reports
///   a false divergence), and
/// * **different states should give different digests**: two replicas that
///   diverged but digest alike are *not* reported. A digest that covers only
///   part of the state (say, the number of accounts but not their balances)
///   misses every divergence in the part it leaves out, and the bug surfaces
///   later, if ever, as a wrong answer to a client.
///
/// The default digest hashes the bytes of [`snapshot`](Self::snapshot): it
/// covers the whole state if the snapshot does, but it is only correct if
/// the snapshot is *canonical* (equal states serialize to equal bytes — not
/// so for a `HashMap` serialized in iteration order) and it costs a snapshot
/// per simulated step. Override it with a cheaper running hash (see
/// `sim::HashChain`) when states are large.
///
/// ```
/// use bytes::Bytes;
/// use raft_io::StateMachine;
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
///
/// let mut c = Counter::default();
/// assert_eq!(c.apply(1, &Bytes::from_static(b"abc")), 3);
/// // The default digest hashes the snapshot: equal states, equal digests.
/// let mut d = Counter::default();
/// d.restore(&c.snapshot());
/// assert_eq!(c.digest(), d.digest());
/// ```
pub trait StateMachine: Send + 'static {
    /// What applying a command returns to its proposer (through the
    /// runtime's `RaftHandle::propose`, or to a simulated client).
    type Output: Send + 'static;

    /// Applies the command committed at `index`. Must be deterministic: every
    /// node applies the same commands in the same order and must reach the
    /// same state (no clock, no randomness, no `HashMap` iteration order, no
    /// node-dependent value). A command the application cannot parse must
    /// not panic: it is in the log for good; return an error value instead.
    fn apply(&mut self, index: Index, command: &Bytes) -> Self::Output;

    /// Serializes the whole state (covering every command applied so far).
    fn snapshot(&self) -> Bytes;

    /// Replaces the whole state with one produced by
    /// [`snapshot`](Self::snapshot), possibly on another node.
    fn restore(&mut self, data: &Bytes);

    /// A digest of the whole state, for the simulator's State Machine
    /// Safety check: equal states must give equal digests, and different
    /// states should give different ones (see the
    /// [digest contract](Self#the-digest-contract-simulator)). The default
    /// hashes [`snapshot`](Self::snapshot).
    fn digest(&self) -> u64 {
        fnv1a(0, &self.snapshot())
    }

    /// Answers an application query (bytes in, bytes out) against the
    /// current state, for reads the simulator issues
    /// (`Cluster::read_query`, `sim::Workload` reads). The default answers
    /// nothing. The runtime reads through closures instead
    /// (`RaftHandle::read`) and never calls this.
    fn query(&self, _query: &[u8]) -> Option<Bytes> {
        None
    }
}

/// FNV-1a over `bytes`, continuing from `seed`.
pub(crate) fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}
