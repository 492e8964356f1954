//! Which connection events reach `tracing` when a remote party repeats
//! them (feature `tracing`).
//!
//! Three kinds of [`NetEvent`] happen at a rate a remote party chooses: an
//! undecodable frame ([`NetEvent::DecodeError`], one per frame a peer
//! sends), a refused inbound connection ([`NetEvent::Refused`], one per
//! connection anyone opens) and a peer refused past `max_peers`
//! ([`NetEvent::PeerOverLimit`], one per member past the bound of every
//! configuration learned: a configuration may name thousands). Logged each
//! time, a flood of any would flood the node's log too, and the disk or the collector behind it. So
//! each kind keeps a running count for the transport's life, and an
//! occurrence is logged when its count is a power of two or a multiple of
//! [`LOG_EVERY`]: the 1st, 2nd, 4th, … 2048th, then every 4096th, each with
//! the count so far. A flood stays visible (and its size), a lone event is
//! logged at once, and the counts need no clock. The hook set with
//! [`TcpConfig::on_event`](super::TcpConfig::on_event) still receives
//! every event, and [`TcpStats`](super::TcpStats) counts them all.

use std::sync::atomic::{AtomicU64, Ordering};

use super::NetEvent;

/// Past the powers of two, an occurrence of a repeated kind is logged
/// once in this many.
pub(crate) const LOG_EVERY: u64 = 4096;

/// The running counts of the kinds of event a remote party can repeat.
#[derive(Default)]
pub(crate) struct Floods {
    decode_errors: AtomicU64,
    refusals: AtomicU64,
    peers_over_limit: AtomicU64,
}

/// Whether `event` is logged.
pub(crate) enum Logged {
    /// Every occurrence of this kind is logged.
    Always,
    /// This occurrence, the `n`th of its kind, is logged.
    Nth(u64),
    /// Not this one.
    Skipped,
}

impl Floods {
    /// Counts `event` if it is of a repeated kind; whether to log it.
    pub(crate) fn count(&self, event: &NetEvent) -> Logged {
        let counter = match event {
            NetEvent::DecodeError { .. } => &self.decode_errors,
            NetEvent::Refused { .. } => &self.refusals,
            NetEvent::PeerOverLimit { .. } => &self.peers_over_limit,
            _ => return Logged::Always,
        };
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if logged(n) { Logged::Nth(n) } else { Logged::Skipped }
    }
}

/// Whether the `n`th occurrence (from 1) of a repeated kind is logged.
fn logged(n: u64) -> bool {
    n.is_power_of_two() || n % LOG_EVERY == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::FrameError;

    #[test]
    fn a_flood_is_logged_at_powers_of_two_then_once_in_log_every() {
        let logged: Vec<u64> = (1..=3 * LOG_EVERY).filter(|&n| logged(n)).collect();
        let mut expected: Vec<u64> = (0..=12).map(|k| 1 << k).collect();
        expected.extend([2 * LOG_EVERY, 3 * LOG_EVERY]);
        assert_eq!(logged, expected);
    }

    #[test]
    fn each_repeated_kind_keeps_its_own_count_and_the_rest_are_always_logged() {
        let floods = Floods::default();
        let decode = NetEvent::DecodeError { peer: 2, error: FrameError::Truncated { needed: 1, remaining: 0 } };
        let refused =
            NetEvent::Refused { addr: "127.0.0.1:1".parse().unwrap(), reason: super::super::Refusal::BadMagic };
        let n = |l: Logged| match l {
            Logged::Nth(n) => Some(n),
            Logged::Skipped => None,
            Logged::Always => Some(0),
        };
        assert_eq!(n(floods.count(&decode)), Some(1));
        assert_eq!(n(floods.count(&decode)), Some(2));
        assert_eq!(n(floods.count(&decode)), None);
        assert_eq!(n(floods.count(&refused)), Some(1));
        assert_eq!(n(floods.count(&decode)), Some(4));
        let over = NetEvent::PeerOverLimit { peer: 9, max_peers: 8 };
        assert_eq!(n(floods.count(&over)), Some(1));
        assert_eq!(n(floods.count(&over)), Some(2));
        assert_eq!(n(floods.count(&over)), None);
        let closed = NetEvent::InboundClosed { peer: 2, reason: String::new() };
        for _ in 0..5 {
            assert_eq!(n(floods.count(&closed)), Some(0));
        }
    }
}
