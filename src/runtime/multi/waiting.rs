//! The batches waiting for their group's round in flight
//! ([`MultiRuntime::coalesce_proposals`](super::MultiRuntime::coalesce_proposals)):
//! which groups wait, since when, and which the turn looks at again. The
//! decision whether a batch waits is the driver's (`Driver::waits`); this
//! keeps the books so that a turn visits only the waiting groups that had
//! news or whose wait ran out, never every waiting group.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::id_hash::SeededIds;
use crate::multi::GroupId;

#[derive(Default)]
pub(super) struct Waiting {
    /// Each wait with when it began, oldest first, so a turn finds the
    /// waits that ran out at the front. An entry whose group stopped
    /// waiting since, or waits again from a later time, is stale: skipped
    /// when reached, and dropped when the stale outnumber the live.
    queue: VecDeque<(Instant, GroupId)>,
    /// The groups waiting now (checked for every envelope received).
    now: HashSet<GroupId, SeededIds>,
    /// Waiting groups with news since the last look: the only ones whose
    /// round may have committed or whose leader may have stepped down.
    news: Vec<GroupId>,
}

impl Waiting {
    pub(super) fn contains(&self, group: GroupId) -> bool {
        self.now.contains(&group)
    }

    /// `group` had news (an envelope, a durability report, a request at
    /// its deadline): if it waits, the next look includes it.
    pub(super) fn news(&mut self, group: GroupId) {
        if self.now.contains(&group) {
            self.news.push(group);
        }
    }

    /// `group` begins waiting at `at`; `waits_since(since, group)` says
    /// whether an entry is live (for dropping stale ones).
    pub(super) fn start(&mut self, group: GroupId, at: Instant, waits_since: impl Fn(Instant, GroupId) -> bool) {
        self.queue.push_back((at, group));
        self.now.insert(group);
        if self.queue.len() > 2 * self.now.len() + 16 {
            self.queue.retain(|&(since, g)| waits_since(since, g));
        }
    }

    /// `group` waits no more.
    pub(super) fn stop(&mut self, group: GroupId) {
        self.now.remove(&group);
    }

    /// Adds to `out` the groups to look at again at `now`: those with
    /// news, and those whose wait of `max_wait` ran out (live entries
    /// only, by `waits_since`).
    pub(super) fn due(
        &mut self,
        now: Instant,
        max_wait: Duration,
        out: &mut Vec<GroupId>,
        waits_since: impl Fn(Instant, GroupId) -> bool,
    ) {
        out.append(&mut self.news);
        while let Some(&(since, group)) = self.queue.front() {
            if now.saturating_duration_since(since) < max_wait {
                break;
            }
            self.queue.pop_front();
            if waits_since(since, group) {
                out.push(group);
            }
        }
    }

    /// When the oldest wait runs out, if any group waits and the wait ends
    /// at a time the clock can name (a `max_wait` of `Duration::MAX` never
    /// runs out: the batch waits for its round or its size).
    pub(super) fn next_due(&self, max_wait: Duration) -> Option<Instant> {
        self.queue.front().and_then(|&(since, _)| since.checked_add(max_wait))
    }
}
