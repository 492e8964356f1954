//! [`MemoryTransport`]: in-process channels between nodes, for tests,
//! examples and single-process deployments.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use super::{RaftTransport, TransportError};
use crate::message::Message;
use crate::sync::lock;
use crate::types::NodeId;

/// One node's end of an in-process network. Build all ends at once with
/// [`MemoryTransport::cluster`]; each end is `Send`, so nodes may run on
/// their own threads.
///
/// ```
/// use raft_io::{Message, MessageBody, MemoryTransport, RaftTransport};
///
/// let mut ends = MemoryTransport::cluster([1, 2]);
/// let mut two = ends.pop().unwrap();
/// let mut one = ends.pop().unwrap();
/// one.send(Message { from: 1, to: 2, term: 1, body: MessageBody::TimeoutNow }).unwrap();
/// assert_eq!(two.try_recv().unwrap().from, 1);
/// assert!(one.try_recv().is_none());
/// ```
#[derive(Debug)]
pub struct MemoryTransport {
    id: NodeId,
    routes: Arc<Mutex<BTreeMap<NodeId, Route>>>,
    inbox: Receiver<Message>,
}

/// Called when a message arrives for an end ([`MemoryTransport::set_waker`]).
type Wake = Arc<dyn Fn() + Send + Sync>;

/// How to reach one end: its inbox, and whom to wake.
struct Route {
    inbox: Sender<Message>,
    waker: Option<Wake>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route").field("waker", &self.waker.is_some()).finish_non_exhaustive()
    }
}

impl MemoryTransport {
    /// Connected ends for every id, in the order given.
    pub fn cluster(ids: impl IntoIterator<Item = NodeId>) -> Vec<MemoryTransport> {
        let routes = Arc::new(Mutex::new(BTreeMap::new()));
        ids.into_iter().map(|id| Self::attach(&routes, id)).collect()
    }

    /// A new end for `id` on the same network as `self` (a node joining).
    pub fn join(&self, id: NodeId) -> MemoryTransport {
        Self::attach(&self.routes, id)
    }

    fn attach(routes: &Arc<Mutex<BTreeMap<NodeId, Route>>>, id: NodeId) -> MemoryTransport {
        let (tx, rx) = channel();
        lock(routes).insert(id, Route { inbox: tx, waker: None });
        MemoryTransport { id, routes: Arc::clone(routes), inbox: rx }
    }

    /// This end's node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Calls `waker` (on the sender's thread) every time a message is
    /// queued for this end, so a driver can sleep instead of polling; the
    /// runtime (feature `net`) sets one, through `Transport::set_waker`.
    /// Replaces any earlier waker.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use raft_io::{Message, MessageBody, MemoryTransport, RaftTransport};
    ///
    /// let mut ends = MemoryTransport::cluster([1, 2]);
    /// let woken = Arc::new(AtomicUsize::new(0));
    /// let count = Arc::clone(&woken);
    /// ends[1].set_waker(move || {
    ///     count.fetch_add(1, Ordering::Relaxed);
    /// });
    /// ends[0].send(Message { from: 1, to: 2, term: 1, body: MessageBody::TimeoutNow }).unwrap();
    /// assert_eq!(woken.load(Ordering::Relaxed), 1);
    /// ```
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        if let Some(route) = lock(&self.routes).get_mut(&self.id) {
            route.waker = Some(Arc::new(waker));
        }
    }
}

impl RaftTransport for MemoryTransport {
    fn send(&mut self, message: Message) -> Result<(), TransportError> {
        let to = message.to;
        let waker = {
            let routes = lock(&self.routes);
            let route = routes.get(&to).ok_or(TransportError::UnknownPeer(to))?;
            route.inbox.send(message).map_err(|_| TransportError::UnknownPeer(to))?;
            route.waker.clone()
        };
        // Outside the lock: a waker may take locks of its own.
        if let Some(wake) = waker {
            wake();
        }
        Ok(())
    }

    fn try_recv(&mut self) -> Option<Message> {
        self.inbox.try_recv().ok()
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        let mut routes = lock(&self.routes);
        routes.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageBody;

    fn msg(from: NodeId, to: NodeId) -> Message {
        Message { from, to, term: 1, body: MessageBody::TimeoutNow }
    }

    #[test]
    fn delivers_in_order_and_refuses_unknown_peers() {
        let mut ends = MemoryTransport::cluster([1, 2, 3]);
        ends[0].send(msg(1, 3)).unwrap();
        ends[1].send(msg(2, 3)).unwrap();
        assert_eq!(ends[2].try_recv().unwrap().from, 1);
        assert_eq!(ends[2].try_recv().unwrap().from, 2);
        assert!(ends[2].try_recv().is_none());
        assert_eq!(ends[0].send(msg(1, 9)), Err(TransportError::UnknownPeer(9)));
    }

    #[test]
    fn a_message_wakes_its_destination_only() {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        let mut ends = MemoryTransport::cluster([1, 2, 3]);
        let woken: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        for (end, count) in ends.iter().zip(&woken) {
            let count = Arc::clone(count);
            end.set_waker(move || {
                count.fetch_add(1, Relaxed);
            });
        }
        ends[0].send(msg(1, 3)).unwrap();
        ends[1].send(msg(2, 3)).unwrap();
        ends[2].send(msg(3, 2)).unwrap();
        let counts: Vec<usize> = woken.iter().map(|c| c.load(Relaxed)).collect();
        assert_eq!(counts, [0, 1, 2]);
        assert_eq!(ends[0].send(msg(1, 9)), Err(TransportError::UnknownPeer(9)));
        assert_eq!(woken.iter().map(|c| c.load(Relaxed)).sum::<usize>(), 3, "a refused send wakes nobody");
    }

    #[test]
    fn join_and_drop_update_routes() {
        let mut ends = MemoryTransport::cluster([1]);
        let mut four = ends[0].join(4);
        ends[0].send(msg(1, 4)).unwrap();
        assert_eq!(four.try_recv().unwrap().to, 4);
        drop(four);
        assert_eq!(ends[0].send(msg(1, 4)), Err(TransportError::UnknownPeer(4)));
    }
}
