//! The simulated disk of the asynchronous storage mode
//! ([`SimConfig::async_storage`](super::SimConfig::async_storage)): when
//! each write a node submits is reported durable.
//!
//! Completions come back in submission order, after a delay drawn per
//! write: most within half a tick, some within a few ticks, a few much
//! later. Now and then a report is skipped and the next one covers it
//! (completions are cumulative), as a storage thread that drains several
//! writes with one fsync reports only the last. A write not reported when
//! its node crashes is lost ([`SimLog`](super::SimLog) keeps only reported
//! writes, or the `WalLog` only synced bytes), and a completion meant for a
//! node before it restarted is never delivered. A stalled disk
//! ([`Cluster::stall_disk`]) reports nothing until the stall ends.

use super::StateMachine;
use super::TICK;
use super::cluster::{Cluster, Due};
use crate::log::WriteToken;
use crate::node::Event;
use crate::types::NodeId;

/// One node's simulated disk.
#[derive(Clone, Debug, Default)]
pub(super) struct Disk {
    /// Bumped at every crash: completions of an earlier run are dropped.
    pub(super) run: u64,
    /// When the latest write is reported (completions keep their order).
    last_at: u64,
    /// Nothing completes before this time.
    stalled_until: u64,
    /// The latest write reported (or skipped), so older reports are not
    /// delivered twice.
    reported: u64,
    /// The write whose report may still be skipped (covered by the next).
    skippable: Option<u64>,
    /// Reports skipped.
    skipped: Vec<u64>,
}

impl<S: StateMachine> Cluster<S> {
    /// A node submitted a write: schedule its completion.
    pub(super) fn disk_submitted(&mut self, i: usize, token: WriteToken) {
        let r = self.rng.next_u64() % 100;
        let delay = match r {
            0..70 => self.rng.range(0, TICK / 2),
            70..95 => self.rng.range(TICK / 2, 2 * TICK),
            _ => self.rng.range(2 * TICK, 6 * TICK),
        };
        let batch = self.rng.next_u64() % 4 == 0;
        let now = self.now;
        let id = self.nodes[i].id;
        let disk = &mut self.nodes[i].disk;
        if batch {
            if let Some(prev) = disk.skippable.take() {
                disk.skipped.push(prev);
            }
        }
        disk.skippable = Some(token.seq());
        let at = now.saturating_add(delay).max(disk.last_at).max(disk.stalled_until);
        disk.last_at = at;
        let run = disk.run;
        self.schedule(at - now, Due::Persist { id, run, token });
    }

    /// A write's completion is due.
    pub(super) fn disk_complete(&mut self, id: NodeId, run: u64, token: WriteToken) {
        let Some(i) = self.slot(id) else { return };
        let now = self.now;
        let up = self.nodes[i].node.is_some();
        let disk = &mut self.nodes[i].disk;
        if disk.run != run || !up || token.seq() <= disk.reported {
            return;
        }
        if disk.stalled_until > now {
            // Stalled after this completion was scheduled: it waits too.
            let after = disk.stalled_until - now;
            self.schedule(after, Due::Persist { id, run, token });
            return;
        }
        if let Some(k) = disk.skipped.iter().position(|&s| s == token.seq()) {
            disk.skipped.swap_remove(k);
            return;
        }
        if disk.skippable == Some(token.seq()) {
            disk.skippable = None;
        }
        disk.reported = token.seq();
        self.stats.write_completions += 1;
        self.expect_ok(id, Event::Persisted(token));
    }

    /// Node `id`'s disk reports nothing for `ticks` ticks (asynchronous
    /// storage mode): its writes stay in flight, so a leader on it must step
    /// down and a follower on it stops acknowledging. A no-op for a node
    /// that is down.
    pub fn stall_disk(&mut self, id: NodeId, ticks: u64) {
        let Some(i) = self.slot(id) else { return };
        if self.nodes[i].node.is_none() {
            return;
        }
        self.stats.disk_stalls += 1;
        self.note(format!("n{id}: disk stalls for {ticks} ticks"));
        let until = super::ticks_after(self.now, ticks);
        let disk = &mut self.nodes[i].disk;
        disk.stalled_until = disk.stalled_until.max(until);
        disk.last_at = disk.last_at.max(until);
    }

    /// A crash: writes in flight are lost with the process, and their
    /// completions never arrive.
    pub(super) fn disk_crashed(&mut self, i: usize) {
        let disk = &mut self.nodes[i].disk;
        *disk = Disk { run: disk.run + 1, ..Disk::default() };
    }
}
