//! [`GroupTransport`]: what the many-groups driver needs from a transport
//! of [`Envelope`]s.

use bytes::Bytes;

use super::super::Waker;
use crate::multi::Envelope;
use crate::transport::TcpGroupTransport;
use crate::types::NodeId;

/// A transport of [`Envelope`]s the [`MultiRuntime`](super::MultiRuntime)
/// can drive: implemented by [`TcpGroupTransport`]; implement it for an
/// in-process transport in tests.
pub trait GroupTransport: Send + 'static {
    /// Queues a batch of envelopes, taking them all out of `envelopes`: the
    /// driver reuses the emptied vector (its capacity) for the next batch.
    /// Called at most twice per driver turn: with what the turn's steps
    /// sent, before its flush, and with what the flush's durability reports
    /// released, after it (each call only when there is something to send).
    /// Failures are the transport's to count: Raft treats an envelope that
    /// was not delivered as lost.
    fn send_batch(&mut self, envelopes: &mut Vec<Envelope>);

    /// The next envelope received, without blocking.
    fn try_recv(&mut self) -> Option<Envelope>;

    /// Up to `max` envelopes received, appended to `out` without blocking;
    /// returns how many. The default calls [`try_recv`](Self::try_recv)
    /// until it has none; a transport with a locked inbox takes them all
    /// under one lock.
    fn recv_many(&mut self, out: &mut Vec<Envelope>, max: usize) -> usize {
        let before = out.len();
        while out.len() - before < max {
            let Some(envelope) = self.try_recv() else { break };
            out.push(envelope);
        }
        out.len() - before
    }

    /// Arranges for `waker.wake()` whenever an envelope arrives and returns
    /// `true`; or returns `false` (the default) and the driver polls every
    /// millisecond.
    fn set_waker(&mut self, waker: Waker) -> bool {
        let _ = waker;
        false
    }

    /// A member of some group's configuration has the raft address
    /// `address` ([`Membership::address`](crate::Membership::address)):
    /// called once per member and address the driver has not passed before.
    /// The default does nothing.
    fn learn_peer(&mut self, id: NodeId, address: &Bytes) {
        let _ = (id, address);
    }

    /// No group of this node names `id` any more, which an earlier
    /// [`learn_peer`](Self::learn_peer) introduced: the transport may let it
    /// go (close its connection, drop what is queued for it). Called once
    /// per departure; a group that names `id` again (with its address)
    /// brings a new `learn_peer`. The default does nothing.
    fn forget_peer(&mut self, id: NodeId) {
        let _ = id;
    }

    /// Called once when the runtime stops. The default does nothing.
    fn close(&mut self) {}
}

impl GroupTransport for TcpGroupTransport {
    fn send_batch(&mut self, envelopes: &mut Vec<Envelope>) {
        // Refusals are counted in `TcpStats`.
        let _ = TcpGroupTransport::send_batch(self, envelopes.drain(..));
    }

    fn try_recv(&mut self) -> Option<Envelope> {
        TcpGroupTransport::try_recv(self)
    }

    fn recv_many(&mut self, out: &mut Vec<Envelope>, max: usize) -> usize {
        self.try_recv_many(out, max)
    }

    fn set_waker(&mut self, waker: Waker) -> bool {
        TcpGroupTransport::set_waker(self, move || waker.wake());
        true
    }

    fn learn_peer(&mut self, id: NodeId, address: &Bytes) {
        // An address that does not parse leaves the member to be wired by
        // hand; a writer that could not be spawned is retried when the
        // address is passed again (never, unless it changes).
        if let Some(addr) = crate::transport::tcp::address_of(address) {
            let _ = self.learn_one_peer(id, addr);
        }
    }

    fn forget_peer(&mut self, id: NodeId) {
        // Only a peer learned from a configuration: one added by hand stays.
        self.forget_learned_peer(id);
    }

    fn close(&mut self) {
        self.shutdown();
    }
}
