//! What the leader knows about each follower: how far its log matches, what
//! to send next, and how much is in flight. The three states a follower can
//! be in are described on [`ProgressState`].

use crate::types::{Index, NodeId};

/// Replication state of one follower, as its leader tracks it.
///
/// * `Probe`: the leader does not know where the logs diverge; it sends one
///   AppendEntries at a time and waits for the answer.
/// * `Replicate`: the logs match up to the follower's matched index; the
///   leader streams entries optimistically, up to `max_inflight` messages
///   ahead.
/// * `Snapshot`: the follower needs entries the leader has compacted; the
///   leader streams its snapshot in chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Looking for the point where the logs match, one message at a time.
    Probe,
    /// Streaming entries within the inflight window.
    Replicate,
    /// Streaming a snapshot.
    Snapshot,
}

/// A fixed-capacity ring of the last index (or snapshot offset) carried by
/// each message in flight. Allocated once per follower, so replication never
/// allocates for flow control.
#[derive(Clone, Debug)]
pub(crate) struct Inflights {
    ends: Box<[u64]>,
    start: usize,
    count: usize,
}

impl Inflights {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { ends: vec![0; capacity.max(1)].into_boxed_slice(), start: 0, count: 0 }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.count == self.ends.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Records a message carrying everything up to `end`.
    #[inline]
    pub(crate) fn push(&mut self, end: u64) {
        debug_assert!(!self.is_full());
        let slot = self.wrap(self.start + self.count);
        self.ends[slot] = end;
        self.count += 1;
    }

    /// Releases every message whose end is at or below `end`.
    pub(crate) fn free_to(&mut self, end: u64) {
        while self.count > 0 && self.ends[self.start] <= end {
            self.start = self.wrap(self.start + 1);
            self.count -= 1;
        }
    }

    /// Releases the oldest message (to let a probe through a full window).
    pub(crate) fn free_first(&mut self) {
        if self.count > 0 {
            self.start = self.wrap(self.start + 1);
            self.count -= 1;
        }
    }

    /// `slot` (below twice the capacity) as a position in the ring: a
    /// subtraction where `%` would divide (a division costs tens of cycles,
    /// on every message the leader sends or hears answered).
    #[inline]
    fn wrap(&self, slot: usize) -> usize {
        debug_assert!(slot < 2 * self.ends.len());
        if slot >= self.ends.len() { slot - self.ends.len() } else { slot }
    }

    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.count = 0;
    }
}

/// A snapshot being streamed to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotSend {
    /// Index of the snapshot being sent.
    pub(crate) index: Index,
    /// Its total size in bytes.
    pub(crate) total_len: u64,
    /// Offset of the next chunk to send.
    pub(crate) next_offset: u64,
    /// Bytes the follower has acknowledged.
    pub(crate) acked: u64,
    /// Whether the last chunk was sent.
    pub(crate) sent_all: bool,
}

/// The leader's view of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub(crate) id: NodeId,
    /// Highest index known to match the leader's log.
    pub(crate) matched: Index,
    /// Next index to send.
    pub(crate) next: Index,
    pub(crate) state: ProgressState,
    /// Probe: a message is outstanding.
    pub(crate) probe_sent: bool,
    pub(crate) inflights: Inflights,
    /// Heard from since the last check-quorum.
    pub(crate) recent_active: bool,
    /// The commit index last sent to this follower.
    pub(crate) commit_sent: Index,
    /// Heartbeat rounds since `matched` last advanced while entries were
    /// outstanding.
    pub(crate) stalled: u32,
    /// The latest heartbeat round the follower answered.
    pub(crate) acked_round: u64,
    /// The leader's tick when the latest answered round was sent (lease).
    pub(crate) acked_tick: u64,
    /// The follower acknowledged new entries since the last heartbeat
    /// round.
    pub(crate) acked_since_round: bool,
    /// New entries were sent to the follower since the last heartbeat round.
    pub(crate) sent_since_round: bool,
    /// The snapshot being streamed, in state Snapshot.
    pub(crate) snapshot: Option<SnapshotSend>,
    /// The index of the snapshot the follower refused as too large, this
    /// term: a stream of it goes one chunk at a time until the follower
    /// takes one, not in windows it would refuse whole.
    pub(crate) snapshot_refused: Option<Index>,
}

/// The follower `id` in `peers` (kept sorted by id), if tracked.
#[inline]
pub(crate) fn find(peers: &[Progress], id: NodeId) -> Option<&Progress> {
    position(peers, id).map(|i| &peers[i])
}

/// Where the follower `id` is in `peers` (kept sorted by id), if tracked.
/// A cluster's handful of peers is scanned: fewer instructions and
/// branches than a binary search, in the quorum count every leader step
/// makes (one lookup per voter) and on every answer a leader receives.
#[inline]
pub(crate) fn position(peers: &[Progress], id: NodeId) -> Option<usize> {
    if peers.len() <= SCAN {
        return peers.iter().position(|p| p.id == id);
    }
    peers.binary_search_by_key(&id, |p| p.id).ok()
}

/// Peer sets up to this size are searched by a scan (`position`).
const SCAN: usize = 8;

impl Progress {
    pub(crate) fn new(id: NodeId, next: Index, max_inflight: usize) -> Self {
        Self {
            id,
            matched: 0,
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights: Inflights::new(max_inflight),
            recent_active: false,
            commit_sent: 0,
            stalled: 0,
            acked_round: 0,
            acked_tick: 0,
            acked_since_round: false,
            sent_since_round: false,
            snapshot: None,
            snapshot_refused: None,
        }
    }

    /// Whether the leader must wait before sending this follower more.
    pub(crate) fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.is_full(),
            ProgressState::Snapshot => true,
        }
    }

    pub(crate) fn become_probe(&mut self) {
        self.enter(ProgressState::Probe, None);
        self.next = self.matched + 1;
    }

    pub(crate) fn become_replicate(&mut self) {
        self.enter(ProgressState::Replicate, None);
        self.next = self.matched + 1;
    }

    pub(crate) fn become_snapshot(&mut self, send: SnapshotSend) {
        self.enter(ProgressState::Snapshot, Some(send));
    }

    /// Every state starts with nothing in flight and no stall.
    fn enter(&mut self, state: ProgressState, snapshot: Option<SnapshotSend>) {
        self.state = state;
        self.probe_sent = false;
        self.inflights.clear();
        self.snapshot = snapshot;
        self.stalled = 0;
    }

    /// Records that the follower's log matches through `index`. Returns
    /// false for a stale acknowledgement (nothing new); `matched` never moves
    /// backwards.
    #[inline]
    pub(crate) fn update_matched(&mut self, index: Index) -> bool {
        if index <= self.matched {
            return false;
        }
        self.matched = index;
        self.next = self.next.max(index + 1);
        self.stalled = 0;
        self.acked_since_round = true;
        true
    }

    /// Records that an AppendEntries was sent, carrying entries through
    /// `last` (equal to `next - 1` when it carried none).
    #[inline]
    pub(crate) fn sent_entries(&mut self, last: Index) {
        match self.state {
            ProgressState::Replicate => {
                if last >= self.next {
                    self.next = last + 1;
                    self.inflights.push(last);
                    self.sent_since_round = true;
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => {}
        }
    }

    /// Handles a rejection of the AppendEntries whose `prev_log_index` was
    /// `rejected`, resuming from `next` (computed from the follower's hint).
    pub(crate) fn reject(&mut self, rejected: Index, next: Index) -> Refusal {
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.matched {
                    return Refusal::Stale;
                }
                self.become_probe();
            }
            ProgressState::Probe => {
                if rejected + 1 != self.next {
                    return Refusal::Stale;
                }
                if rejected == self.matched {
                    // The follower refuses the very index it acknowledged:
                    // it lost entries it had made durable (PROTOCOL.md
                    // §5). No way back from here: keep the probe paused
                    // until the next heartbeat answer instead of retrying
                    // in a tight loop.
                    return Refusal::Contradicts;
                }
                self.next = next.clamp(self.matched + 1, rejected);
                self.probe_sent = false;
                return Refusal::Resume;
            }
            ProgressState::Snapshot => return Refusal::Stale,
        }
        self.next = next.clamp(self.matched + 1, rejected.max(self.matched + 1));
        Refusal::Resume
    }
}

/// What a follower's refusal of an append means to its progress
/// ([`Progress::reject`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// An answer to an append no longer outstanding: ignored.
    Stale,
    /// `next` moved back: probe again from there.
    Resume,
    /// The follower refused the index it acknowledged as matched, so it
    /// lost entries it had made durable; nothing is resent.
    Contradicts,
}

/// A public snapshot of one follower's progress, for [`Status`](crate::Status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// The follower.
    pub id: NodeId,
    /// Highest index known to match the leader's log.
    pub matched: Index,
    /// Next index the leader will send.
    pub next: Index,
    /// Replication state.
    pub state: ProgressState,
    /// Messages in flight.
    pub inflight: usize,
    /// Heard from since the last check-quorum.
    pub recent_active: bool,
}

impl From<&Progress> for PeerStatus {
    fn from(p: &Progress) -> Self {
        Self {
            id: p.id,
            matched: p.matched,
            next: p.next,
            state: p.state,
            inflight: p.inflights.len(),
            recent_active: p.recent_active,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflights_ring_wraps_and_frees_in_order() {
        let mut f = Inflights::new(3);
        f.push(5);
        f.push(9);
        f.push(12);
        assert!(f.is_full());
        f.free_to(9);
        assert_eq!(f.len(), 1);
        f.push(15);
        f.push(20);
        assert!(f.is_full());
        f.free_to(4);
        assert_eq!(f.len(), 3, "nothing at or below 4");
        f.free_to(100);
        assert_eq!(f.len(), 0);
    }

    proptest::proptest! {
        /// The ring holds exactly what a plain queue would, whatever the
        /// capacity and the order of pushes and releases.
        #[test]
        fn inflights_behave_as_a_queue(
            capacity in 1usize..9,
            ops in proptest::collection::vec((0u8..3, 0u64..40), 0..200),
        ) {
            let mut ring = Inflights::new(capacity);
            let mut queue = std::collections::VecDeque::new();
            let mut next_end = 0;
            for (op, n) in ops {
                match op {
                    0 if !ring.is_full() => {
                        next_end += n % 4 + 1;
                        ring.push(next_end);
                        queue.push_back(next_end);
                    }
                    1 => {
                        let end = next_end.saturating_sub(n % 8);
                        ring.free_to(end);
                        while queue.front().is_some_and(|&e| e <= end) {
                            queue.pop_front();
                        }
                    }
                    _ => {
                        ring.free_first();
                        queue.pop_front();
                    }
                }
                proptest::prop_assert_eq!(ring.len(), queue.len());
                proptest::prop_assert_eq!(ring.is_full(), queue.len() == capacity);
                let held: Vec<u64> = (0..ring.count).map(|k| ring.ends[(ring.start + k) % ring.ends.len()]).collect();
                proptest::prop_assert_eq!(held, queue.iter().copied().collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn probe_sends_one_at_a_time() {
        let mut p = Progress::new(2, 11, 4);
        assert!(!p.is_paused());
        p.sent_entries(12);
        assert!(p.is_paused());
        assert_eq!(p.next, 11, "probing does not advance next");
        assert!(p.update_matched(12));
        p.become_replicate();
        assert_eq!(p.next, 13);
    }

    #[test]
    fn replicate_pipelines_within_the_window() {
        let mut p = Progress::new(2, 1, 2);
        p.become_replicate();
        p.sent_entries(10);
        assert!(!p.is_paused());
        p.sent_entries(20);
        assert!(p.is_paused());
        assert_eq!(p.next, 21);
        assert!(p.update_matched(10));
        p.inflights.free_to(10);
        assert!(!p.is_paused());
        assert!(!p.update_matched(5), "stale ack");
        assert_eq!(p.matched, 10, "matched never goes backwards");
    }

    #[test]
    fn a_new_state_starts_with_an_empty_window_and_a_probe_starts_past_the_match() {
        let mut p = Progress::new(2, 1, 2);
        p.matched = 5;
        p.become_replicate();
        p.sent_entries(10);
        p.sent_entries(20);
        assert!(p.is_paused(), "the window is full");
        p.stalled = 2;
        // A stalled pipeline falls back to probing from just past the match,
        // with nothing left in flight.
        p.become_probe();
        assert_eq!((p.state, p.next, p.inflights.len(), p.stalled), (ProgressState::Probe, 6, 0, 0));
        assert!(!p.is_paused(), "the probe goes at once");
        p.sent_entries(6);
        assert!(p.is_paused());
        // Its answer resumes the pipeline with the whole window free.
        assert!(p.update_matched(6));
        p.become_replicate();
        assert_eq!((p.state, p.next, p.inflights.len()), (ProgressState::Replicate, 7, 0));
        p.sent_entries(8);
        assert!(!p.is_paused(), "one of two slots used");
    }

    #[test]
    fn rejections_back_off_and_ignore_stale_ones() {
        let mut p = Progress::new(2, 1, 4);
        p.matched = 5;
        p.become_replicate();
        p.sent_entries(20);
        assert_eq!(p.reject(5, 1), Refusal::Stale, "a rejection at or below matched is stale");
        assert_eq!(p.state, ProgressState::Replicate);
        assert_eq!(p.reject(15, 9), Refusal::Resume);
        assert_eq!((p.state, p.next), (ProgressState::Probe, 9));
        p.sent_entries(9);
        assert_eq!(p.reject(12, 4), Refusal::Stale, "a probe rejection for another prev is stale");
        assert_eq!(p.reject(8, 2), Refusal::Resume);
        assert_eq!(p.next, 6, "never below matched + 1");
        p.sent_entries(6);
        assert_eq!(p.reject(5, 1), Refusal::Contradicts, "a refusal of the matched index itself");
        assert_eq!((p.next, p.matched), (6, 5), "nothing moves");
    }
}
