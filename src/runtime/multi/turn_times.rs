//! Where a many-groups driver's time goes: its turns' wall time summed by
//! phase ([`TurnTimes`], in [`MultiStats`](super::MultiStats)).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The wall time a driver spent in each phase of its turns since it
/// started, summed. Together the phases cover the driver's whole life but
/// for its start and stop, so each one's share of their sum says what the
/// driver thread spent itself on; divided by the writes of a period, they
/// give a per-write account of one node.
///
/// Wall time, not CPU time: `flush` includes the time blocked in fsync
/// (also in `SharedWalStats::sync_time`), `idle` the time waiting for
/// work. A driver that is never idle is the node's bottleneck.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TurnTimes {
    /// Handing the envelopes received to the groups, and carrying out
    /// those steps' actions (applying what they committed included).
    pub receive: Duration,
    /// Ticks that fell due, requests past their deadline, retried
    /// membership changes; with feature `metrics`, the publications
    /// (every 10 ticks).
    pub ticks: Duration,
    /// Requests taken and served: proposal batches, reads, changes,
    /// status, groups created and removed, and those steps' actions.
    pub requests: Duration,
    /// Envelopes handed to the transport (both of a turn's batches), and
    /// the counters published.
    pub send: Duration,
    /// The flush of the shared WAL (one record, one fsync) and the
    /// durability reports stepped, with their actions.
    pub flush: Duration,
    /// Waiting for work.
    pub idle: Duration,
}

/// A phase of a turn.
#[derive(Clone, Copy)]
pub(crate) enum Phase {
    Receive,
    Ticks,
    Requests,
    Send,
    Flush,
    Idle,
}

/// The driver's running sums, in nanoseconds, read by any handle.
#[derive(Debug, Default)]
pub(crate) struct TurnClock([AtomicU64; 6]);

impl TurnClock {
    pub(crate) fn add(&self, phase: Phase, spent: Duration) {
        let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        self.0[phase as usize].fetch_add(nanos, Relaxed);
    }

    pub(crate) fn read(&self) -> TurnTimes {
        let at = |phase: Phase| Duration::from_nanos(self.0[phase as usize].load(Relaxed));
        TurnTimes {
            receive: at(Phase::Receive),
            ticks: at(Phase::Ticks),
            requests: at(Phase::Requests),
            send: at(Phase::Send),
            flush: at(Phase::Flush),
            idle: at(Phase::Idle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_phase_sums_apart() {
        let clock = TurnClock::default();
        clock.add(Phase::Receive, Duration::from_micros(3));
        clock.add(Phase::Flush, Duration::from_micros(5));
        clock.add(Phase::Receive, Duration::from_micros(4));
        clock.add(Phase::Idle, Duration::from_millis(1));
        let t = clock.read();
        assert_eq!(t.receive, Duration::from_micros(7));
        assert_eq!(t.flush, Duration::from_micros(5));
        assert_eq!(t.idle, Duration::from_millis(1));
        assert_eq!((t.ticks, t.requests, t.send), (Duration::ZERO, Duration::ZERO, Duration::ZERO));
    }
}
