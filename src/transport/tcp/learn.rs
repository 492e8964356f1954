//! Peers learned from the replicated configuration: a member's address
//! ([`Membership::address`]) read as a [`PeerAddr`], and the transport's
//! peer set kept in line with the configuration in effect, members refused
//! at `max_peers` waiting for the room a removed peer leaves.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::addr::PeerAddr;
use super::carrier::Carrier;
use super::shared::{Admitted, NotAdded, Shared};
use super::{TcpGroupTransport, TcpTransport};
use crate::membership::Membership;
use crate::sync::lock;
use crate::types::NodeId;

/// A member's address as the TCP transport and the runtime read it: the
/// UTF-8 text of a socket address (`"10.0.0.7:7001"`, `"[::1]:7001"`) or of
/// a host name and port (`"raft-2.raft.svc:7001"`, looked up at every
/// dial), as [`address_bytes`] writes it ([`PeerAddr`]'s text). Anything
/// else (no port, a malformed name, bytes that are not UTF-8) is `None`.
pub fn address_of(address: &Bytes) -> Option<PeerAddr> {
    PeerAddr::from_bytes(address).ok()
}

/// The address bytes of `addr` (a [`SocketAddr`](std::net::SocketAddr) or
/// a [`PeerAddr`]) for the replicated configuration
/// ([`MembershipChange::AddVoterAt`](crate::MembershipChange::AddVoterAt),
/// [`Membership::with_address`]): its text, which [`address_of`] reads back.
pub fn address_bytes(addr: impl Into<PeerAddr>) -> Bytes {
    Bytes::from(addr.into().to_string())
}

/// The peers learned from configurations so far, and the members refused
/// for want of room under [`TcpConfig::max_peers`](super::TcpConfig::max_peers).
#[derive(Default)]
pub(super) struct Learned {
    /// The peers learned ([`TcpTransport::learn_peers`],
    /// [`TcpGroupTransport::learn_one_peer`]), by id.
    pub(super) peers: BTreeMap<NodeId, PeerAddr>,
    /// Members refused at `max_peers`, by id, with the address to dial: as
    /// soon as a peer is removed they are added, lowest id first
    /// ([`admit_waiting`]).
    pub(super) waiting: BTreeMap<NodeId, PeerAddr>,
}

/// Adds members waiting for room ([`Learned::waiting`]), lowest id first,
/// while there is room: each becomes a learned peer and is dialed at once.
/// Not a refusal: nothing is counted or reported. A member that is a peer
/// already (added by hand meanwhile) only stops waiting. Stops at the
/// first that cannot be added (no room, or its writer not spawned: it
/// waits on for the next removal or configuration).
pub(super) fn admit_waiting<C: Carrier>(shared: &std::sync::Arc<Shared<C>>, learned: &mut Learned) {
    while let Some((&id, addr)) = learned.waiting.first_key_value() {
        match shared.admit(id, addr.clone()) {
            Admitted::Added => {
                #[cfg(feature = "tracing")]
                tracing::info!(
                    node = shared.cfg.id,
                    cluster = shared.cfg.cluster_id,
                    peer = id,
                    %addr,
                    "peer learned from the configuration, admitted as room freed up"
                );
                if let Some((id, addr)) = learned.waiting.pop_first() {
                    learned.peers.insert(id, addr);
                }
            }
            Admitted::Known => {
                learned.waiting.remove(&id);
            }
            Admitted::No => return,
        }
    }
}

impl TcpTransport {
    /// Brings the peers learned from configurations in line with
    /// `membership` (the configuration in effect): every other member whose
    /// address parses ([`address_of`]) becomes a peer at that address (a
    /// peer known at another address is disconnected and redialed there),
    /// and every peer learned this way earlier that is no longer a member
    /// is removed once [`TcpConfig::departed_grace`](super::TcpConfig::departed_grace)
    /// has passed (until then it is still dialed and accepted, so that it
    /// can be told of its removal).
    /// Peers added by hand ([`add_peer`](Self::add_peer),
    /// [`TcpConfig::peer`](super::TcpConfig::peer)) are never removed here,
    /// though a configuration address replaces theirs. The empty
    /// configuration (of a node still joining) changes nothing. The runtime calls
    /// this at start and for every configuration the node reports, so a
    /// cluster whose configuration carries addresses needs no wiring after
    /// bootstrap.
    ///
    /// A peer learned this way is checked at the handshake (and under TLS
    /// against its certificate) exactly like one added by hand: the
    /// address says where to dial, never who answers.
    ///
    /// Returns the members whose address does not parse (they are not
    /// added; the membership change that gave it was refused nowhere, as
    /// the core keeps addresses opaque).
    ///
    /// A new member past [`TcpConfig::max_peers`](super::TcpConfig::max_peers)
    /// is not added either: it is counted
    /// ([`TcpStats::peers_over_limit`](super::TcpStats::peers_over_limit))
    /// and reported ([`NetEvent::PeerOverLimit`](super::NetEvent::PeerOverLimit)),
    /// and it waits for room: as soon as a peer is removed (by
    /// [`remove_peer`](Self::remove_peer), by a configuration it left with
    /// no grace, or when a departed member's grace is over) the members
    /// waiting are added, lowest id first, and dialed, with no further
    /// configuration (and no further count or report). A member that leaves
    /// the configuration stops waiting. So a configuration naming thousands
    /// of members cannot make the node start thousands of writer threads,
    /// and a member kept out only while a departed one held its slot is
    /// dialed as soon as that one goes.
    ///
    /// # Errors
    ///
    /// A new peer's writer thread could not be spawned; peers handled
    /// before it are in place, and a later call retries the rest.
    pub fn learn_peers(&self, membership: &Membership) -> std::io::Result<Vec<NodeId>> {
        learn(&self.shared, membership)
    }
}

impl TcpGroupTransport {
    /// As [`TcpTransport::learn_peers`]: brings the peers learned from
    /// configurations in line with `membership`. A host of many groups
    /// passes the union of its groups' members, with their addresses.
    ///
    /// # Errors
    ///
    /// As [`TcpTransport::learn_peers`].
    pub fn learn_peers(&self, membership: &Membership) -> std::io::Result<Vec<NodeId>> {
        learn(&self.shared, membership)
    }

    /// Learns one peer from a configuration: `id` becomes a peer at `addr`
    /// (a peer known at another address is disconnected and redialed
    /// there), remembered as learned, so that
    /// [`forget_learned_peer`](Self::forget_learned_peer) may remove it.
    /// This node's own id is ignored. The many-groups runtime calls it for
    /// every member address of its groups' configurations.
    ///
    /// # Errors
    ///
    /// A new peer past [`TcpConfig::max_peers`](super::TcpConfig::max_peers)
    /// ([`TooManyPeers`](super::TooManyPeers); counted and reported as by
    /// [`learn_peers`](Self::learn_peers), and, as there, it waits: it is
    /// added as soon as a peer is removed, unless forgotten first), or the
    /// peer's writer thread could not be spawned.
    pub fn learn_one_peer(&self, id: NodeId, addr: impl Into<PeerAddr>) -> std::io::Result<()> {
        if id == self.shared.cfg.id {
            return Ok(());
        }
        let addr = addr.into();
        let mut learned = lock(&self.shared.learned);
        match learn_one(&self.shared, id, addr.clone()) {
            Ok(()) => {
                learned.waiting.remove(&id);
                learned.peers.insert(id, addr);
                Ok(())
            }
            Err(NotAdded::Full(refused)) => {
                learned.waiting.insert(id, addr);
                Err(refused.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes peer `id`, once
    /// [`TcpConfig::departed_grace`](super::TcpConfig::departed_grace) has
    /// passed, if it was learned from a configuration
    /// ([`learn_one_peer`](Self::learn_one_peer),
    /// [`learn_peers`](Self::learn_peers)); a peer added by hand stays.
    /// A member waiting for room under
    /// [`TcpConfig::max_peers`](super::TcpConfig::max_peers) stops waiting.
    /// A peer let go at once (no grace) makes room for those still waiting.
    /// Returns whether it was learned (and so is let go).
    pub fn forget_learned_peer(&self, id: NodeId) -> bool {
        let mut learned = lock(&self.shared.learned);
        learned.waiting.remove(&id);
        let removed = learned.peers.remove(&id).is_some();
        if removed {
            self.shared.retire_peer(id);
            admit_waiting(&self.shared, &mut learned);
            #[cfg(feature = "tracing")]
            tracing::info!(
                node = self.shared.cfg.id,
                cluster = self.shared.cfg.cluster_id,
                peer = id,
                "peer retired: no group names it; dropped once the grace has passed"
            );
        }
        removed
    }
}

/// Makes `id` a peer at `addr`: added, or moved (its open connection leads
/// to the old address, so it is closed, queued messages dropped as Raft
/// tolerates, and the peer redialed at the new one).
fn learn_one<C: Carrier>(shared: &std::sync::Arc<Shared<C>>, id: NodeId, addr: PeerAddr) -> Result<(), NotAdded> {
    let moved = lock(&shared.peers).get(&id).is_some_and(|p| p.addr() != addr);
    if moved {
        // The learned peers are locked: its slot is taken again at once.
        shared.drop_peer(id);
    }
    // A peer known at this address is kept (taken back if its grace was
    // running).
    shared.try_add_peer(id, addr)
}

fn learn<C: Carrier>(shared: &std::sync::Arc<Shared<C>>, membership: &Membership) -> std::io::Result<Vec<NodeId>> {
    // A joining node knows no configuration yet: that says nothing about
    // who its peers are (the ones it was given stay).
    if membership.is_empty() {
        return Ok(Vec::new());
    }
    let me = shared.cfg.id;
    let mut learned = lock(&shared.learned);
    // Departures first: with no grace, their slots under `max_peers` go to
    // the arrivals.
    learned.waiting.retain(|&id, _| membership.contains(id));
    let gone: Vec<NodeId> = learned.peers.keys().copied().filter(|&id| !membership.contains(id)).collect();
    for id in gone {
        learned.peers.remove(&id);
        shared.retire_peer(id);
        #[cfg(feature = "tracing")]
        tracing::info!(
            node = me,
            cluster = shared.cfg.cluster_id,
            peer = id,
            "peer retired: no longer a member; dropped once the grace has passed"
        );
    }
    let mut unusable = Vec::new();
    for (id, bytes) in membership.addresses() {
        if id == me {
            continue;
        }
        let Some(addr) = address_of(bytes) else {
            #[cfg(feature = "tracing")]
            tracing::warn!(
                node = me,
                cluster = shared.cfg.cluster_id,
                peer = id,
                "member address is neither a socket address nor a host name and port; not dialed"
            );
            unusable.push(id);
            continue;
        };
        match learn_one(shared, id, addr.clone()) {
            Ok(()) => {}
            // Past `max_peers`: not dialed (counted and reported), but
            // waiting for room; the members after it are tried too, as they
            // may be known peers whose address changed.
            Err(NotAdded::Full(_)) => {
                learned.waiting.insert(id, addr);
                continue;
            }
            Err(NotAdded::Spawn(e)) => return Err(e),
        }
        learned.waiting.remove(&id);
        #[cfg(feature = "tracing")]
        if learned.peers.get(&id) != Some(&addr) {
            tracing::info!(node = me, cluster = shared.cfg.cluster_id, peer = id, %addr, "peer learned from the configuration");
        }
        learned.peers.insert(id, addr);
    }
    // Room the departures left that no member above took (one still
    // waiting whose address now fails to parse or was cleared keeps the
    // address it waited with).
    admit_waiting(shared, &mut learned);
    Ok(unusable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_socket_addresses_or_names_in_text() {
        let v4: std::net::SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let v6: std::net::SocketAddr = "[::1]:7001".parse().unwrap();
        for addr in [v4, v6] {
            assert_eq!(address_of(&address_bytes(addr)), Some(PeerAddr::from(addr)));
        }
        let name: PeerAddr = "localhost:7001".parse().unwrap();
        assert_eq!(address_of(&address_bytes(name.clone())), Some(name));
        for bad in [&b"node_2:7001"[..], b"127.0.0.1", b"\xff\xfe", b"1.2.3.4:99999", b"1.2.3:7001"] {
            assert_eq!(address_of(&Bytes::copy_from_slice(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn a_member_whose_address_does_not_parse_is_reported_and_not_dialed() {
        // Names are never looked up here (no DNS in a unit test).
        let nowhere = |_: &str, _: u16| -> std::io::Result<Vec<std::net::SocketAddr>> { Ok(Vec::new()) };
        let cfg = super::super::TcpConfig::new(1, "127.0.0.1:0".parse().unwrap())
            .resolver(nowhere)
            .departed_grace(std::time::Duration::ZERO);
        let t = TcpTransport::bind(cfg).unwrap();
        let m = Membership::new([1, 2, 3, 4], []).unwrap();
        let m = m.with_address(2, "node_2.example:7001").unwrap().with_address(3, "127.0.0.1:9").unwrap();
        let m = m.with_address(4, "node-4.example:7001").unwrap();
        let m = m.with_address(1, "not even an address").unwrap();
        assert_eq!(t.learn_peers(&m).unwrap(), vec![2], "node 2's is no host name; its own is never dialed");
        assert_eq!(
            t.handle().peers(),
            vec![(3, "127.0.0.1:9".parse().unwrap()), (4, "node-4.example:7001".parse().unwrap())]
        );
        // Node 4 leaves.
        let m = m.apply(&crate::MembershipChange::Remove(4)).unwrap();
        t.learn_peers(&m).unwrap();
        // The empty configuration of a joining node changes nothing.
        assert!(t.learn_peers(&Membership::empty()).unwrap().is_empty());
        assert_eq!(t.handle().peers().len(), 1);
        // Node 3 leaves: dropped.
        let m = m.apply(&crate::MembershipChange::Remove(3)).unwrap();
        t.learn_peers(&m).unwrap();
        assert!(t.handle().peers().is_empty());
        t.shutdown();
    }

    #[test]
    fn a_departed_peer_is_kept_for_the_grace_and_taken_back_if_it_returns() {
        let grace = std::time::Duration::from_millis(100);
        let cfg = super::super::TcpConfig::new(1, "127.0.0.1:0".parse().unwrap()).departed_grace(grace);
        let t = TcpTransport::bind(cfg).unwrap();
        let m = Membership::new([1, 2], []).unwrap().with_address(2, "127.0.0.1:9").unwrap();
        t.learn_peers(&m).unwrap();
        let without = m.apply(&crate::MembershipChange::Remove(2)).unwrap();
        let retiring = |t: &TcpTransport| lock(&t.shared.peers).get(&2).map(|p| p.retiring());
        assert_eq!(retiring(&t), Some(false));
        // It leaves and comes back within the grace: kept, and no longer to
        // be let go.
        t.learn_peers(&without).unwrap();
        assert_eq!(retiring(&t), Some(true), "kept for the grace");
        t.learn_peers(&m).unwrap();
        assert_eq!(retiring(&t), Some(false), "taken back");
        // It leaves for good: let go once the grace is over.
        t.learn_peers(&without).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !t.handle().peers().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never let go");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        t.shutdown();
    }
}
