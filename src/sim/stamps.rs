//! The times of the clients' histories: simulated time, with the order of
//! what happened within one instant kept.
//!
//! The linearizability checker orders an operation before another only if
//! it completed strictly before the other was invoked. In simulated time
//! much happens at once: a one-node cluster applies a write inside
//! `submit`, and the client that heard it acknowledged issues a read at the
//! same instant. With raw times both are at `t`, the checker takes them for
//! concurrent, and a read that misses the acknowledged write passes. A
//! stamp is `t * PER_INSTANT + k`, `k` placing the event among those of its
//! instant: the `i`-th invocation at `t` gets `2i + 1`, and an outcome the
//! cluster recorded after `j` of them gets `2j`.

/// Stamps per simulated time unit. Past 511 invocations in one instant the
/// later ones share a stamp with the outcomes around them: they count as
/// concurrent, which can only let more histories pass, never fewer.
pub(super) const PER_INSTANT: u64 = 1 << 10;

/// The invocations of the instants whose outcomes may not all be stamped
/// yet.
#[derive(Debug, Default)]
pub(super) struct Stamps {
    /// For each invocation: its time, and how many read and write outcomes
    /// the cluster had recorded when it was issued.
    marks: Vec<(u64, usize, usize)>,
}

impl Stamps {
    /// Stamps an invocation issued at `now`, when the cluster had recorded
    /// `reads` read outcomes and `writes` write outcomes.
    pub(super) fn invoke(&mut self, now: u64, reads: usize, writes: usize) -> u64 {
        let before = self.marks.iter().filter(|m| m.0 == now).count() as u64;
        self.marks.push((now, reads, writes));
        stamp(now, 2 * before + 1)
    }

    /// Stamps the outcome the cluster recorded at `at`, at position `k` of
    /// its read outcomes (`read`) or of its write outcomes.
    pub(super) fn outcome(&self, at: u64, read: bool, k: usize) -> u64 {
        let before = self.marks.iter().filter(|&&(t, r, w)| t == at && (if read { r } else { w }) <= k).count();
        stamp(at, 2 * before as u64)
    }

    /// Every outcome recorded so far is stamped, and the cluster is at
    /// `now`: no outcome of an earlier instant can follow.
    pub(super) fn settled(&mut self, now: u64) {
        self.marks.retain(|m| m.0 >= now);
    }
}

/// Stamps for a history whose invocations and outcomes are recorded as
/// they happen (the many-groups simulator's clients resolve an operation in
/// the step that completes it): the `n`-th event of an instant gets place
/// `n`, so an outcome recorded before an invocation of its instant comes
/// before it.
#[derive(Debug, Default)]
pub(super) struct InOrder {
    instant: u64,
    next: u64,
}

impl InOrder {
    /// The stamp of the next event, which happens at `now`.
    pub(super) fn next(&mut self, now: u64) -> u64 {
        if now != self.instant {
            self.instant = now;
            self.next = 0;
        }
        let k = self.next;
        self.next = self.next.saturating_add(1);
        stamp(now, k)
    }
}

fn stamp(at: u64, k: u64) -> u64 {
    at.saturating_mul(PER_INSTANT).saturating_add(k.min(PER_INSTANT - 1))
}

/// A stamp as failure reports show it: the simulated time, and the event's
/// place in its instant after a `#`.
pub(super) fn show(stamp: u64) -> String {
    format!("{}#{}", stamp / PER_INSTANT, stamp % PER_INSTANT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_recorded_before_an_invocation_of_its_instant_is_stamped_before_it() {
        let mut s = Stamps::default();
        // A write acknowledged (write outcome 0) before a read is issued.
        let read = s.invoke(7, 0, 1);
        assert!(s.outcome(7, false, 0) < read);
        // Its own outcome, recorded after it, comes after.
        assert!(s.outcome(7, true, 0) > read);
        // An outcome of a later instant comes after everything at 7.
        assert!(s.outcome(8, false, 1) > s.outcome(7, true, 5));
    }

    #[test]
    fn events_recorded_in_order_are_stamped_in_order_and_instants_never_invert() {
        let mut s = InOrder::default();
        let at_5: Vec<u64> = (0..3).map(|_| s.next(5)).collect();
        assert!(at_5.windows(2).all(|w| w[0] < w[1]));
        let at_6 = s.next(6);
        assert!(at_6 > at_5[2]);
        let many: Vec<u64> = (0..2000).map(|_| s.next(7)).collect();
        assert!(many.windows(2).all(|w| w[0] <= w[1]) && many[1999] < stamp(8, 0));
    }

    #[test]
    fn stamps_past_the_capacity_of_an_instant_tie_and_never_invert() {
        let mut s = Stamps::default();
        let stamps: Vec<u64> = (0..600).map(|i| s.invoke(3, 0, i)).collect();
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
        assert!(stamps.iter().all(|&x| x < stamp(4, 0)));
    }
}
