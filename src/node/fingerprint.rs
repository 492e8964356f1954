//! Model-checking support (feature `sim`): [`Clone`] for a node, and a
//! fingerprint of its complete state, so an exhaustive explorer can copy
//! nodes at every branch and recognise a state it has already seen.
//!
//! The fingerprint hashes everything that can influence what the node does
//! next or what a crash leaves behind. It leaves out only what provably
//! cannot:
//!
//! * the configuration (the same for a node id in every state, restarts
//!   included);
//! * counters that nothing reads back (`dropped_messages`, the monitoring
//!   `counters`, the log's sync counters) and the reason recorded for
//!   `tracing`;
//! * the campaign hold, which a many-groups host sets only for the length
//!   of one tick step and clears after it;
//! * per-step temporaries that every step resets before use (`step_bytes`
//!   and the scratch buffers), and the block small commands are copied
//!   into (which bytes it holds never changes what the node does);
//! * the random generator when the election timeout range holds a single
//!   value (`election_timeout_max == election_timeout_min + 1`): every draw
//!   then returns that value, so the generator's position changes nothing;
//! * the bound on the last no-op or configuration entry (`last_control`)
//!   when the node applies by `Action::Apply`: it is read only to apply by
//!   range.
//!
//! State kept in sibling modules (progress, reads, configurations, a
//! transfer, a snapshot being received) is hashed through its derived
//! `Debug` output, which prints every field; the node's own fields are
//! hashed one by one. The destructuring below names every field, so a new
//! field is a compile error here until it is hashed or argued away.

use std::fmt::{self, Write as _};
use std::hash::{DefaultHasher, Hash, Hasher};

use super::RaftNode;
use crate::log::{MemoryLog, RaftLog};

impl<L: RaftLog + Clone> Clone for RaftNode<L> {
    /// A copy of the node with its log, for explorers that branch on every
    /// event (feature `sim`). Two copies of one node must never both run in
    /// a real cluster: they would share an identity and a vote.
    fn clone(&self) -> Self {
        Self {
            cfg: self.cfg.clone(),
            log: self.log.clone(),
            id: self.id,
            term: self.term,
            vote: self.vote,
            commit: self.commit,
            applied: self.applied,
            role: self.role,
            leader: self.leader,
            configs: self.configs.clone(),
            rng: self.rng.clone(),
            ticks: self.ticks,
            election_elapsed: self.election_elapsed,
            election_timeout: self.election_timeout,
            heartbeat_elapsed: self.heartbeat_elapsed,
            vote_cooldown: self.vote_cooldown,
            owed_ticks: self.owed_ticks,
            quiet_limit: self.quiet_limit,
            quiet_tracked: self.quiet_tracked,
            campaign_held: self.campaign_held,
            leader_contact: self.leader_contact,
            lease_revoked_term: self.lease_revoked_term,
            votes: self.votes.clone(),
            peers: self.peers.clone(),
            term_start: self.term_start,
            uncommitted: self.uncommitted.clone(),
            transfer: self.transfer,
            reads: self.reads.clone(),
            incoming: self.incoming.clone(),
            restore_pending: self.restore_pending,
            snapshot_hint_at: self.snapshot_hint_at,
            applied_bytes: self.applied_bytes,
            last_control: self.last_control,
            must_sync: self.must_sync,
            durability: self.durability.clone(),
            halted: self.halted,
            out: self.out.clone(),
            proposal: self.proposal,
            scratch: Vec::new(),
            small_commands: bytes::BytesMut::new(),
            scratch_index: Vec::new(),
            scratch_ids: Vec::new(),
            reported: self.reported,
            dropped_messages: self.dropped_messages,
            counters: self.counters,
            step_bytes: self.step_bytes,
            removed: self.removed,
            #[cfg(feature = "tracing")]
            why: self.why,
        }
    }
}

impl RaftNode<MemoryLog> {
    /// A 64-bit fingerprint of the node's complete state, log included (its
    /// durable part too), for exhaustive model checking (the crate's model
    /// checker uses it with feature `sim`; the method needs no feature):
    /// equal states have equal fingerprints, and two different states share
    /// one only by a 64-bit hash collision. Stable within one build of the
    /// crate, not across builds.
    ///
    /// ```
    /// use raft_io::{Event, RaftConfig, RaftNode};
    ///
    /// let a = RaftNode::new(RaftConfig::new(1, [1, 2, 3])).unwrap();
    /// let mut b = a.clone();
    /// assert_eq!(a.fingerprint(), b.fingerprint());
    /// let _ = b.step(Event::Tick).unwrap();
    /// assert_ne!(a.fingerprint(), b.fingerprint());
    /// ```
    pub fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.hash_state(&mut h);
        h.finish()
    }

    fn hash_state(&self, h: &mut DefaultHasher) {
        let Self {
            cfg,
            log,
            id,
            term,
            vote,
            commit,
            applied,
            role,
            leader,
            configs,
            rng,
            ticks,
            election_elapsed,
            election_timeout,
            heartbeat_elapsed,
            vote_cooldown,
            owed_ticks,
            // Worked out from the rest after every step.
            quiet_limit: _,
            quiet_tracked: _,
            campaign_held: _,
            leader_contact,
            lease_revoked_term,
            votes,
            peers,
            term_start,
            uncommitted,
            transfer,
            reads,
            incoming,
            restore_pending,
            snapshot_hint_at,
            applied_bytes,
            last_control,
            must_sync,
            durability,
            halted,
            out,
            // Overwritten when the next step starts: what the latest
            // step proposed, never read by the node.
            proposal: _,
            scratch: _,
            small_commands: _,
            scratch_index: _,
            scratch_ids: _,
            reported,
            dropped_messages: _,
            counters: _,
            step_bytes: _,
            removed,
            #[cfg(feature = "tracing")]
                why: _,
        } = self;
        log.hash_state(h);
        (id, term, vote, commit, applied, role, leader).hash(h);
        hash_debug(h, configs);
        // A one-value range: every draw returns it (see the module docs).
        if cfg.election_timeout_max > cfg.election_timeout_min + 1 {
            hash_debug(h, rng);
        }
        (ticks, election_elapsed, election_timeout, heartbeat_elapsed, vote_cooldown, owed_ticks).hash(h);
        (leader_contact, lease_revoked_term, votes, term_start, uncommitted).hash(h);
        peers.len().hash(h);
        for p in peers {
            hash_debug(h, p);
        }
        hash_debug(h, transfer);
        hash_debug(h, reads);
        hash_debug(h, incoming);
        hash_debug(h, durability);
        (restore_pending, snapshot_hint_at, applied_bytes, must_sync, halted).hash(h);
        // Read only to apply by range (see the module docs).
        if cfg.apply_ranges {
            last_control.hash(h);
        }
        // Drained by every step; hashed in case a caller left actions in it.
        out.len().hash(h);
        for a in out {
            hash_debug(h, a);
        }
        (reported, removed).hash(h);
    }
}

/// Feeds `value`'s `Debug` output to `h`, with a terminator so that
/// consecutive values cannot run into each other.
fn hash_debug(h: &mut DefaultHasher, value: &impl fmt::Debug) {
    struct Feed<'a>(&'a mut DefaultHasher);
    impl fmt::Write for Feed<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    // Writing to a hasher cannot fail.
    let _ = write!(Feed(h), "{value:?}");
    h.write_u8(0xff);
}

#[cfg(test)]
mod tests {
    use crate::{Event, RaftConfig, RaftNode};

    #[test]
    fn clones_behave_alike_and_fingerprints_follow_the_state() {
        let cfg = RaftConfig::new(1, [1, 2, 3]).election_timeout(2, 3).heartbeat_interval(1).pre_vote(false);
        let mut a = RaftNode::new(cfg).unwrap();
        let mut b = a.clone();
        assert_eq!(a.fingerprint(), b.fingerprint());
        for _ in 0..3 {
            let x: Vec<_> = a.step(Event::Tick).unwrap().collect();
            let y: Vec<_> = b.step(Event::Tick).unwrap().collect();
            assert_eq!(x, y);
            assert_eq!(a.fingerprint(), b.fingerprint());
        }
        let before = a.fingerprint();
        let _ = a.step(Event::Tick).unwrap();
        assert_ne!(before, a.fingerprint(), "a tick changes the clock");
    }

    #[test]
    fn counters_nothing_reads_are_left_out() {
        let mut a = RaftNode::new(RaftConfig::new(1, [1, 2, 3])).unwrap();
        let before = a.fingerprint();
        // A message for another node is dropped: only a counter changes.
        let stray = crate::Message { from: 2, to: 9, term: 0, body: crate::MessageBody::TimeoutNow };
        let _ = a.step(Event::Message(stray)).unwrap();
        assert_eq!(a.status().dropped_messages, 1);
        assert_eq!(before, a.fingerprint());
    }
}
