//! Log replication, the leader's side: proposals, AppendEntries sent and
//! answered, the conflict hint, heartbeats and commit (the follower's side:
//! `follower.rs`; applying what committed: `apply.rs`).

use bytes::{Bytes, BytesMut};

use super::entry_pool;
use super::progress::{self, ProgressState, Refusal};
use super::{Proposal, RaftNode, observe};
use crate::config::SMALL_COMMAND_BLOCK;
use crate::error::{Error, Result};
use crate::log::RaftLog;
use crate::message::{AppendEntries, AppendResponse, Heartbeat, HeartbeatResponse, MessageBody};
use crate::types::{ENTRY_OVERHEAD, Entry, Index, NodeId, Role, Term};

impl<L: RaftLog> RaftNode<L> {
    /// Appends proposed commands as one batch (leader only): one append, one
    /// sync at the end of the step.
    pub(super) fn propose(&mut self, mut commands: impl ExactSizeIterator<Item = Bytes>) -> Result<()> {
        self.check_can_propose()?;
        let (first, term) = (self.log.last_index() + 1, self.term);
        let (last, bytes) = match commands.len() {
            0 => return Err(Error::EmptyProposal),
            1 => match commands.next() {
                Some(command) => self.append_command(command)?,
                None => return Err(Error::EmptyProposal),
            },
            n => self.with_scratch(|node, batch| {
                batch.reserve(n);
                let bytes = node.build_batch(commands, batch)?;
                let last = first - 1 + batch.len() as u64;
                node.append_log(batch)?;
                Ok((last, bytes))
            })?,
        };
        self.uncommitted.appended(last, bytes);
        self.counters.proposals += last + 1 - first;
        self.proposal = Proposal { first, last, term };
        self.broadcast_append(false)
    }

    /// A proposal of one command: the checks of
    /// [`build_batch`](Self::build_batch), then its entry appended where
    /// it is built, with no batch in between (the copy out of a batch
    /// just written stalls: docs/BENCHMARKS.md, "Store-forwarding stalls").
    /// Returns the entry's index and size in bytes.
    fn append_command(&mut self, command: Bytes) -> Result<(Index, u64)> {
        self.check_command(&command)?;
        let bytes = command.len() as u64 + ENTRY_OVERHEAD;
        self.check_batch_bytes(bytes)?;
        let index = self.log.last_index() + 1;
        let entry = self.command_entry(index, command);
        self.append_command_entry(entry)?;
        Ok((index, bytes))
    }

    /// Runs `f` with the node's reusable entries buffer (empty on entry,
    /// cleared after), so building, appending and applying batches does not
    /// allocate once the buffer has grown.
    pub(super) fn with_scratch<T>(&mut self, f: impl FnOnce(&mut Self, &mut Vec<Entry>) -> Result<T>) -> Result<T> {
        let mut batch = std::mem::take(&mut self.scratch);
        batch.clear();
        let result = f(self, &mut batch);
        batch.clear();
        self.scratch = batch;
        result
    }

    pub(super) fn check_can_propose(&self) -> Result<()> {
        if self.role != Role::Leader {
            return Err(self.not_leader());
        }
        if let Some(t) = self.transfer {
            return Err(Error::TransferPending { to: t.to });
        }
        Ok(())
    }

    /// Checks one command as a proposal would, without proposing it: it is
    /// refused when empty ([`Error::EmptyProposal`]) or larger than
    /// `max_message_bytes` ([`Error::ProposalTooLarge`]). A driver that
    /// batches commands from several clients into one
    /// [`Event::ProposeBatch`](super::Event::ProposeBatch) (which is refused
    /// whole if any command is) uses it to refuse a bad command alone.
    ///
    /// ```
    /// use raft_io::{Error, RaftConfig, RaftNode};
    ///
    /// let node = RaftNode::new(RaftConfig::single(1).max_message_bytes(64))?;
    /// assert!(node.check_command(b"put k v").is_ok());
    /// assert!(matches!(node.check_command(b""), Err(Error::EmptyProposal)));
    /// assert!(matches!(node.check_command(&[0; 65]), Err(Error::ProposalTooLarge { size: 65, max: 64 })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn check_command(&self, command: &[u8]) -> Result<()> {
        if command.is_empty() {
            return Err(Error::EmptyProposal);
        }
        let (size, max) = (command.len() as u64, self.cfg.max_message_bytes);
        if size > max {
            return Err(Error::ProposalTooLarge { size, max });
        }
        Ok(())
    }

    /// Validates commands and turns them into entries; nothing is appended
    /// if any command is refused. Returns the batch's size in bytes.
    fn build_batch(&mut self, commands: impl Iterator<Item = Bytes>, batch: &mut Vec<Entry>) -> Result<u64> {
        let mut index = self.log.last_index();
        let mut bytes = 0u64;
        for command in commands {
            self.check_command(&command)?;
            index += 1;
            let e = self.command_entry(index, command);
            bytes += e.size();
            batch.push(e);
        }
        self.check_batch_bytes(bytes)?;
        Ok(bytes)
    }

    /// The entry of `command` at `index` in this term, packed or kept as
    /// it came ([`packs`](Self::packs)). Each way builds the entry from
    /// the command where it lies: passing the command through one more
    /// move first stalls the copy into the entry (docs/BENCHMARKS.md,
    /// "Store-forwarding stalls"), so this is always inlined.
    #[inline(always)]
    fn command_entry(&mut self, index: Index, command: Bytes) -> Entry {
        if self.packs(command.len()) {
            Entry::normal(self.term, index, self.pack_into_block(command))
        } else {
            Entry::normal(self.term, index, command)
        }
    }

    /// Whether a proposal of `bytes` fits this step's room in the log
    /// ([`Error::BatchTooLarge`]) and the uncommitted limit.
    fn check_batch_bytes(&self, bytes: u64) -> Result<()> {
        let max = self.step_room();
        if bytes > max {
            return Err(Error::BatchTooLarge { size: bytes, max });
        }
        self.check_uncommitted(bytes)
    }

    /// Whether a command of `n` bytes is copied into the leader's current
    /// shared block (a fresh 4 KiB block when it has no room left), so that
    /// cloning it later is a reference count, not an allocation
    /// (PROTOCOL.md, "Small commands"): one of at most
    /// `small_command_bytes` is; a larger one is kept as it came, and so is
    /// every command of a node that will not clone it: one with no peer to
    /// send it to that applies by range.
    #[inline]
    fn packs(&self, n: usize) -> bool {
        let cloned = !self.peers.is_empty() || !self.cfg.apply_ranges;
        cloned && self.cfg.small_command_bytes != 0 && n <= self.cfg.small_command_bytes
    }

    /// The copy of a command [`packs`](Self::packs) says to pack, out of line.
    fn pack_into_block(&mut self, command: Bytes) -> Bytes {
        let n = command.len();
        if self.small_commands.capacity() < n {
            self.small_commands = BytesMut::with_capacity(SMALL_COMMAND_BLOCK);
        }
        self.small_commands.extend_from_slice(&command);
        self.small_commands.split().freeze()
    }

    /// Appends leader-created entries (no-op, configuration) and replicates.
    pub(super) fn append_leader_entry(&mut self, entry: Entry) -> Result<()> {
        observe!(
            tracing::Level::INFO,
            node = self.id,
            term = self.term,
            index = entry.index,
            kind = ?entry.kind,
            "leader entry appended (configuration change or no-op)"
        );
        self.uncommitted.appended(entry.index, entry.size());
        self.with_scratch(|node, batch| {
            batch.push(entry);
            node.append_log(batch)
        })?;
        self.broadcast_append(false)
    }

    pub(super) fn broadcast_append(&mut self, allow_empty: bool) -> Result<()> {
        for i in 0..self.peers.len() {
            self.send_append(i, allow_empty)?;
        }
        Ok(())
    }

    /// Sends peer `i` what it needs next, within its flow control: entries
    /// (or an empty probe when `allow_empty`), or a snapshot when the entries
    /// it needs were compacted. Returns whether a message was sent.
    pub(super) fn send_append(&mut self, i: usize, allow_empty: bool) -> Result<bool> {
        let pr = &self.peers[i];
        if pr.is_paused() {
            return Ok(false);
        }
        let (to, next) = (pr.id, pr.next);
        let prev = next - 1;
        let last = self.log.last_index();
        let Some(prev_term) = (if self.holds_own_entry(prev) { Some(self.term) } else { self.log.term(prev) }) else {
            return self.start_snapshot_send(i);
        };
        let entries = if next <= last {
            let hi = (last + 1).min(next.saturating_add(self.cfg.max_entries_per_message as u64));
            let mut entries = entry_pool::take((hi - next) as usize);
            let max_bytes = self.cfg.max_message_bytes;
            // Entries the log lends as one slice are cloned here, inlined.
            match self.log.entry_run(next, hi) {
                Some(run) => crate::log::clone_fitting(run, max_bytes, &mut entries),
                None => self.log.entries(next, hi, max_bytes, &mut entries)?,
            }
            entries
        } else {
            Vec::new()
        };
        if entries.is_empty() && !allow_empty {
            return Ok(false);
        }
        let last_sent = prev + entries.len() as u64;
        let commit = self.commit;
        let pr = &mut self.peers[i];
        pr.sent_entries(last_sent);
        pr.commit_sent = pr.commit_sent.max(commit.min(last_sent));
        self.send_built(to, self.term, || {
            MessageBody::Append(AppendEntries {
                prev_log_index: prev,
                prev_log_term: prev_term,
                leader_commit: commit,
                entries,
            })
        });
        Ok(true)
    }

    /// Sends peer `i` as much as its window allows. A peer already sent
    /// everything (`next` past the last index) gets nothing, and no look at
    /// the log: its previous entry is then the last one or the snapshot's,
    /// whose term is known, so no snapshot is due either.
    fn fill_window(&mut self, i: usize) -> Result<()> {
        while self.peers[i].next <= self.log.last_index() && self.send_append(i, false)? {}
        Ok(())
    }

    pub(super) fn on_append_response(&mut self, from: NodeId, r: AppendResponse) -> Result<()> {
        if self.role != Role::Leader {
            return Ok(());
        }
        let Some(i) = self.peer_index(from) else {
            self.drop_message();
            return Ok(());
        };
        self.peers[i].recent_active = true;
        if r.success {
            if r.index > self.log.last_index() {
                // Claims a match past our log: not from a follower of ours.
                self.drop_message();
                return Ok(());
            }
            let pr = &mut self.peers[i];
            let advanced = pr.update_matched(r.index);
            // The follower's step was full: it took a prefix and asks for
            // the rest now (PROTOCOL.md §4.2), from just after what it holds.
            let cut = r.hint_index != 0 && r.index == pr.matched;
            match pr.state {
                ProgressState::Probe if cut || r.index + 1 >= pr.next => pr.become_replicate(),
                ProgressState::Replicate if cut => pr.become_replicate(),
                ProgressState::Replicate => pr.inflights.free_to(r.index),
                _ => {}
            }
            if advanced || self.peers[i].state == ProgressState::Replicate {
                self.on_peer_caught_up(i);
                self.fill_window(i)?;
            }
        } else {
            if r.index > self.log.last_index() {
                // A rejection of an index this leader never sent (a
                // stale-term notice among them: meant for this node's older
                // term, it says nothing about this follower's log).
                self.drop_message();
                return Ok(());
            }
            if r.hint_index == 0 {
                // The follower knows no configuration (a joining node, so it
                // has never matched anything): it needs the snapshot, even
                // one at index 0.
                let pr = &self.peers[i];
                if pr.matched == 0 && pr.state != ProgressState::Snapshot {
                    self.start_snapshot_send(i)?;
                }
                return Ok(());
            }
            let next = self.next_from_hint(r.index, r.hint_term, r.hint_index);
            match self.peers[i].reject(r.index, next) {
                Refusal::Resume => {
                    self.send_append(i, true)?;
                }
                Refusal::Contradicts => self.follower_regressed(from, r.index),
                Refusal::Stale => {}
            }
        }
        Ok(())
    }

    /// A follower refused the index it had acknowledged as matched: it
    /// lost entries it made durable (a wiped or replaced disk under the same
    /// node id), which Raft's guarantees exclude (PROTOCOL.md §5). The
    /// leader cannot repair it, since the follower may have been counted in
    /// quorums it no longer honours; it is counted and reported, so an
    /// operator can remove the node and add it back (§7).
    #[cold]
    fn follower_regressed(&mut self, follower: NodeId, matched: Index) {
        self.counters.follower_regressions += 1;
        observe!(
            tracing::Level::WARN,
            node = self.id,
            term = self.term,
            follower,
            matched,
            "a follower refused entries it had acknowledged: its log lost durable entries; remove it and add it back"
        );
        let _ = (follower, matched);
    }

    /// Where to resume after a rejection of `prev_log_index = rejected`,
    /// from the follower's hint: skip the follower's whole conflicting term.
    fn next_from_hint(&self, rejected: Index, hint_term: Term, hint_index: Index) -> Index {
        if hint_term == 0 {
            return hint_index;
        }
        let j = self.last_index_with_term_at_most(hint_term, rejected);
        if self.log.term(j) == Some(hint_term) { j + 1 } else { hint_index }
    }

    /// The largest index `<= hi` whose term is at most `term` (terms are
    /// non-decreasing along the log, so this is a binary search).
    fn last_index_with_term_at_most(&self, term: Term, hi: Index) -> Index {
        let lo = self.log.first_index() - 1;
        let mut hi = hi.min(self.log.last_index());
        if hi <= lo || self.log.term(lo).is_none_or(|t| t > term) {
            return lo;
        }
        let mut lo = lo;
        // Invariant: term(lo) <= term; answer in [lo, hi].
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.log.term(mid).is_some_and(|t| t <= term) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }

    /// Leader: a heartbeat round to every follower. Each carries the commit
    /// index capped at what the follower is known to hold. A follower whose
    /// heartbeat would be redundant gets none (see [`Self::may_skip_heartbeats`]).
    pub(super) fn broadcast_heartbeat(&mut self) -> Result<()> {
        // Asked before this round becomes the previous one.
        let may_skip = self.may_skip_heartbeats();
        let round = self.reads.next_round(self.ticks);
        self.assign_reads(round);
        let commit = self.commit;
        // The peers that stalled this round (rare: no allocation otherwise).
        let mut resend = Vec::new();
        for i in 0..self.peers.len() {
            let pr = &mut self.peers[i];
            let (acked, sent) = (std::mem::take(&mut pr.acked_since_round), std::mem::take(&mut pr.sent_since_round));
            let redundant = may_skip && pr.state == ProgressState::Replicate && acked && sent;
            let safe_commit = commit.min(pr.matched);
            let to = pr.id;
            // Retransmission: a follower that made no progress for a few
            // rounds with messages outstanding is probed again.
            match pr.state {
                ProgressState::Replicate if pr.inflights.len() > 0 => {
                    pr.stalled += 1;
                    if pr.stalled >= 3 {
                        pr.become_probe();
                        resend.push(i);
                    }
                }
                ProgressState::Snapshot => {
                    pr.stalled += 1;
                    if pr.stalled >= 3 {
                        pr.stalled = 0;
                        self.rewind_snapshot(i);
                        resend.push(i);
                    }
                }
                _ => {}
            }
            if redundant {
                // The commit index stays unsent: the next append or commit
                // notification carries it.
                self.counters.heartbeats_skipped += 1;
                continue;
            }
            let pr = &mut self.peers[i];
            pr.commit_sent = pr.commit_sent.max(safe_commit);
            self.send(to, MessageBody::Heartbeat(Heartbeat { commit: safe_commit, round }));
        }
        // Only the stalled peers are sent to again: a forced append to a
        // healthy follower with entries in flight would arrive ahead of
        // them on a reordering network, be refused, and drop it to Probe.
        for i in resend {
            match self.peers[i].state {
                ProgressState::Snapshot => {
                    self.send_snapshot_chunks(i)?;
                }
                _ => {
                    self.send_append(i, true)?;
                }
            }
        }
        Ok(())
    }

    /// Whether the next round may leave out followers that do not need it
    /// (`docs/PROTOCOL.md` §4.3). A follower that acknowledged new entries
    /// since the previous round and was sent newer ones since is in touch,
    /// and the append sent to it resets its election timer as a heartbeat
    /// would; the commit index goes with the next append or notification.
    /// The round still goes to every follower while a read waits for one
    /// (appends carry no round), with lease reads (the lease is renewed by
    /// answered rounds alone), when the previous round is more than two
    /// intervals old ("since the previous round" is then too long ago: a
    /// quiesced group woken, a stall reported as `Ticks(n)`; a slow turn's
    /// few ticks stay within), and unless the minimum election timeout
    /// exceeds three heartbeat intervals (a follower so served may hear from
    /// the leader only every other interval, and an acknowledgement may be
    /// late).
    fn may_skip_heartbeats(&self) -> bool {
        let interval = self.cfg.heartbeat_interval;
        let recent =
            self.reads.last_round_tick().is_some_and(|t| self.ticks.saturating_sub(t) <= interval.saturating_mul(2));
        recent
            && self.reads.nothing_confirming()
            && !self.cfg.lease_reads
            && self.cfg.election_timeout_min > interval.saturating_mul(3)
    }

    /// Follower: a heartbeat resets the election timer (in `follow`) and may
    /// advance the commit index.
    pub(super) fn on_heartbeat(&mut self, from: NodeId, hb: Heartbeat) {
        let commit = hb.commit.min(self.log.last_index());
        if commit > self.commit {
            self.commit = commit;
        }
        // A commit notice is not answered: the leader learns nothing from
        // an answer (the follower held `commit` when it was sent).
        if !hb.is_commit_notice() {
            self.send(from, MessageBody::HeartbeatResponse(HeartbeatResponse { round: hb.round }));
        }
    }

    pub(super) fn on_heartbeat_response(&mut self, from: NodeId, r: HeartbeatResponse) -> Result<()> {
        if self.role != Role::Leader {
            return Ok(());
        }
        let Some(i) = self.peer_index(from) else {
            self.drop_message();
            return Ok(());
        };
        self.peers[i].recent_active = true;
        if r.round == Heartbeat::COMMIT_NOTICE_ROUND {
            // A follower of an earlier version answers commit notices too:
            // a sign of life, not an answer to a round.
            return Ok(());
        }
        if r.round > self.reads.last_round() {
            // An answer to a round this node never sent: counting it would
            // confirm this peer for rounds it has not seen (reads served
            // without a quorum's answer).
            self.drop_message();
            return Ok(());
        }
        let last = self.log.last_index();
        let tick = self.reads.round_tick(r.round).map(|sent| if mutant!(LeaseFromAnswers) { self.ticks } else { sent });
        let pr = &mut self.peers[i];
        if r.round > pr.acked_round {
            pr.acked_round = r.round;
            if let Some(t) = tick {
                pr.acked_tick = pr.acked_tick.max(t);
            }
        }
        let probing = pr.state == ProgressState::Probe;
        if probing {
            pr.probe_sent = false;
        }
        // A follower in Replicate that made no progress since the last
        // round may have lost an append: probe at `next - 1` (an empty
        // append) so that a gap is rejected and repaired at once.
        let stalled = pr.state == ProgressState::Replicate && pr.stalled > 0;
        if stalled && pr.inflights.is_full() {
            pr.inflights.free_first();
        }
        if pr.matched < last {
            self.send_append(i, probing || stalled)?;
        }
        self.confirm_reads();
        Ok(())
    }

    /// Leader: advance the commit index to the largest index a quorum holds,
    /// if that entry is of the current term.
    pub(super) fn maybe_commit(&mut self) {
        // No voter holds more than the leader's log (answers claiming more
        // are dropped), so nothing past it can commit.
        if self.commit >= self.log.last_index() {
            return;
        }
        // Synchronous persistence: our own log is durable by the end of the
        // step, before anything leaves, so the leader counts its last index.
        // Asynchronous: only what its log reported durable.
        let own = if mutant!(CountUndurableSelf) {
            self.log.last_index()
        } else {
            self.durability.durable_index(self.log.last_index())
        };
        let me = self.id;
        let peers = &self.peers;
        let candidate = self.configs.effective().committed_index(
            |id| {
                if id == me { own } else { progress::find(peers, id).map_or(0, |p| p.matched) }
            },
            &mut self.scratch_index,
        );
        // Only an entry of this term commits by counting replicas (Raft
        // §5.4.2).
        if candidate > self.commit && (self.holds_own_entry(candidate) || mutant!(CommitPreviousTerm)) {
            self.commit = candidate;
        }
    }

    /// Whether `index` is an entry of this leader's term that its log still
    /// holds, without a term lookup: a leader's log holds its term's entries
    /// from its no-op at `term_start` to its end, every one appended by it
    /// (a leader never truncates), and only earlier terms' before.
    #[inline]
    fn holds_own_entry(&self, index: Index) -> bool {
        let held = index >= self.log.first_index() && index <= self.log.last_index();
        let own = self.role == Role::Leader && held && index >= self.term_start;
        debug_assert_eq!(
            own,
            self.role == Role::Leader && held && self.log.term(index) == Some(self.term),
            "this term's entries start at term_start"
        );
        own
    }

    /// Leader, on a tick: tell followers that can use it about a newer
    /// commit index that no append or heartbeat has carried yet, with a
    /// commit notice: a heartbeat of round 0, carrying the commit index
    /// capped at what the follower is known to hold, which the follower
    /// takes and does not answer (`docs/PROTOCOL.md` §4.4). Not sent in the
    /// step that commits: under load the next append carries the commit
    /// index anyway, and a notification per commit cost a message and its
    /// answer per follower per entry at batch 1.
    pub(super) fn notify_commit(&mut self) {
        let commit = self.commit;
        for i in 0..self.peers.len() {
            let pr = &self.peers[i];
            let safe = commit.min(pr.matched);
            // A follower with appends in flight learns the commit index from
            // the next append (or from this notification once the last ack
            // is in), so under load commits ride on entries.
            if safe <= pr.commit_sent || pr.state != ProgressState::Replicate || pr.inflights.len() > 0 {
                continue;
            }
            let to = pr.id;
            self.peers[i].commit_sent = safe;
            self.send(to, MessageBody::Heartbeat(Heartbeat::commit_notice(safe)));
        }
    }
}
