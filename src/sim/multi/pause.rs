//! The process-pause fault with many groups per node: a node's host stops
//! being stepped (a stalled thread, a suspended process) while it loses
//! nothing. Its ticks do not happen, so it sends nothing — not even the
//! per-peer pings — and its peers see it silent: past their peer timeout
//! they wake the quiesced groups it leads, which elect new leaders.
//! Envelopes addressed to it wait (a socket buffer) or are lost (its peers
//! gave up on the connection); a flush of its disk that completes meanwhile
//! is reported when it resumes. Client requests to it are lost, as requests
//! to a down node are. On resuming, the host reports the finished flush,
//! takes the waiting envelopes, then is ticked once for every tick it
//! missed (the whole gap: its clock jumps, so its peers may look silent to
//! it in turn for a moment).

use super::{Due, MultiCluster, TICK};
use crate::multi::Envelope;
use crate::sim::{PauseInbox, Violation};
use crate::types::NodeId;

/// A paused host's driver: when it resumes and what waits for it.
#[derive(Debug)]
pub(super) struct HostPause {
    inbox: PauseInbox,
    /// Simulated time at which it resumes (a stale resume, of a pause that
    /// a crash ended, is ignored).
    until: u64,
    /// Ticks that came due while paused.
    missed: u64,
    /// Envelopes that arrived, in order (with [`PauseInbox::Kept`]).
    waiting: Vec<Envelope>,
    /// Whether a flush of the node's writes completed meanwhile.
    pub(super) flush: bool,
}

impl MultiCluster {
    /// Pauses node `id`'s host for `ticks` ticks: nothing is stepped on it
    /// until it resumes (see the module docs). A no-op for a node that is
    /// down or already paused.
    pub fn pause(&mut self, id: NodeId, ticks: u64, inbox: PauseInbox) {
        let Some(i) = self.slot(id) else { return };
        if self.slots[i].host.is_none() || self.slots[i].pause.is_some() {
            return;
        }
        self.stats.pauses += 1;
        let after = ticks.max(1).saturating_mul(TICK);
        self.slots[i].pause = Some(HostPause {
            inbox,
            until: self.now.saturating_add(after),
            missed: 0,
            waiting: Vec::new(),
            flush: false,
        });
        self.schedule(after, Due::Resume(id));
    }

    /// Whether node `id`'s host is paused.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.slot(id).is_some_and(|i| self.slots[i].pause.is_some())
    }

    /// A tick of node slot `i`: counted, not stepped, while it is paused.
    /// Returns whether it is paused.
    pub(super) fn pause_tick(&mut self, i: usize) -> bool {
        match self.slots[i].pause.as_mut() {
            Some(p) => {
                p.missed += 1;
                true
            }
            None => false,
        }
    }

    /// An envelope for node slot `i`: kept for later or lost while it is
    /// paused; given back otherwise.
    pub(super) fn hold_if_paused(&mut self, i: usize, env: Envelope) -> Option<Envelope> {
        let Some(p) = self.slots[i].pause.as_mut() else { return Some(env) };
        if p.inbox == PauseInbox::Kept {
            p.waiting.push(env);
        }
        None
    }

    /// Resumes node `id`'s host (see the module docs).
    pub(super) fn resume(&mut self, id: NodeId) -> Result<(), Violation> {
        let Some(i) = self.slot(id) else { return Ok(()) };
        if self.slots[i].pause.as_ref().is_none_or(|p| p.until > self.now) {
            return Ok(());
        }
        self.resume_now(i)
    }

    /// Resumes node slot `i`'s host now, if it is paused.
    pub(super) fn resume_now(&mut self, i: usize) -> Result<(), Violation> {
        let Some(pause) = self.slots[i].pause.take() else { return Ok(()) };
        let (id, run) = (self.slots[i].id, self.slots[i].run);
        if pause.flush {
            self.flush(id, run)?;
        }
        // What waited is read at once, as one batch.
        self.deliver_all(i, pause.waiting)?;
        // The time that passed, reported at once (PROTOCOL.md §8.4), as
        // the threaded runtime does after a long turn.
        if let Some(h) = self.slots[i].host.as_mut() {
            h.advance(pause.missed).map_err(|e| Violation::new("Host", format!("node {id}: tick failed: {e}")))?;
            self.carry_out(i)?;
        }
        Ok(())
    }
}
