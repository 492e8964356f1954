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
    routes: Arc<Mutex<BTreeMap<NodeId, Sender<Message>>>>,
    inbox: Receiver<Message>,
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

    fn attach(routes: &Arc<Mutex<BTreeMap<NodeId, Sender<Message>>>>, id: NodeId) -> MemoryTransport {
        let (tx, rx) = channel();
        lock(routes).insert(id, tx);
        MemoryTransport { id, routes: Arc::clone(routes), inbox: rx }
    }

    /// This end's node id.
    pub fn id(&self) -> NodeId {
        self.id
    }
}

impl RaftTransport for MemoryTransport {
    fn send(&mut self, message: Message) -> Result<(), TransportError> {
        let routes = lock(&self.routes);
        let to = message.to;
        let route = routes.get(&to).ok_or(TransportError::UnknownPeer(to))?;
        route.send(message).map_err(|_| TransportError::UnknownPeer(to))
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
    fn join_and_drop_update_routes() {
        let mut ends = MemoryTransport::cluster([1]);
        let mut four = ends[0].join(4);
        ends[0].send(msg(1, 4)).unwrap();
        assert_eq!(four.try_recv().unwrap().to, 4);
        drop(four);
        assert_eq!(ends[0].send(msg(1, 4)), Err(TransportError::UnknownPeer(4)));
    }
}
