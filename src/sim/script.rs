//! [`ByteScript`]: drive a simulated cluster from arbitrary bytes — the
//! interpreter behind the `cluster` fuzz target and its stable-Rust
//! proptest twin. Every byte string is a valid script: each operation reads
//! what it needs and missing bytes read as zero.
//!
//! Operations: ticks, proposals, partitions, heals, crashes, restarts,
//! snapshots, membership changes, reads, and messages from buggy (not
//! Byzantine) peers — replays, truncated appends, messages from unknown
//! node ids, and (with feature `framing`) arbitrary frames decoded from the
//! script (which leaves out their checksum: the interpreter computes it, so
//! that arbitrary bytes reach the decoder behind it) and delivered as stale
//! messages from an unknown node. The simulator checks the five safety
//! properties after every event (a violation panics, which is what the
//! fuzzer looks for), and the clients' history is returned for the
//! linearizability checker.

use bytes::Bytes;

use super::linearizability::History;
use super::{Cluster, KvStore, KvWorkload, NetworkFaults, Replay, SimConfig};
use crate::membership::MembershipChange;
use crate::node::ReadKind;

/// An interpreter of byte scripts: every byte string drives a simulated
/// key-value cluster through faults, client operations and buggy peers;
/// the safety checkers watch every event and the clients' history comes
/// back for the linearizability checker.
#[derive(Debug)]
pub struct ByteScript<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> ByteScript<'a> {
    /// A script over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// Runs the script on a fresh cluster (its size and seed come from the
    /// first bytes), then heals everything and returns the cluster and the
    /// clients' history (check it with
    /// [`History::check`](super::linearizability::History::check)). Panics
    /// only on a safety violation.
    pub fn run(mut self) -> (Cluster<KvStore>, History) {
        let nodes = 1 + usize::from(self.byte() % 5);
        let seed = u64::from(self.byte());
        let config = SimConfig::new(nodes)
            .seed(seed)
            .keep_messages(64)
            .network(NetworkFaults::lossy())
            .configure(|c| c.snapshot_entries(8).max_message_bytes(128).lease_reads(true));
        let mut cluster = Cluster::with_state_machines(config, |_| KvStore::default());
        let mut clients = KvWorkload::new(seed, 2, true);
        let mut steps = 0;
        while !self.done() && steps < 2_000 {
            steps += 1;
            self.op(&mut cluster, &mut clients);
        }
        cluster.heal();
        cluster.set_network(NetworkFaults::reliable());
        for id in cluster.ids() {
            cluster.restart(id);
        }
        cluster.run_ticks(50);
        let history = clients.history(&cluster);
        (cluster, history)
    }

    fn node(&mut self, cluster: &Cluster<KvStore>) -> u64 {
        let ids = cluster.ids();
        ids[usize::from(self.byte()) % ids.len()]
    }

    fn op(&mut self, cluster: &mut Cluster<KvStore>, clients: &mut KvWorkload) {
        match self.byte() % 20 {
            0..=3 => cluster.run_ticks(u64::from(self.byte() % 8) + 1),
            4..=8 => clients.round(cluster),
            9 => {
                let id = self.node(cluster);
                let _ = cluster.propose(id, Bytes::copy_from_slice(&[self.byte(), self.byte()]));
            }
            10 => {
                let mask = self.byte();
                let ids = cluster.ids();
                let (a, b): (Vec<u64>, Vec<u64>) = ids.iter().partition(|&&id| mask & (1 << (id % 8)) != 0);
                cluster.partition(&[&a, &b]);
            }
            11 => cluster.heal(),
            12 => {
                let id = self.node(cluster);
                cluster.crash(id);
            }
            13 => {
                let id = self.node(cluster);
                cluster.restart(id);
            }
            14 => {
                let id = self.node(cluster);
                cluster.snapshot(id);
            }
            15 => self.change(cluster),
            16 => {
                let id = self.node(cluster);
                let kind = if self.byte() % 2 == 0 { ReadKind::Index } else { ReadKind::Lease };
                let read = u64::from(self.byte()) + 10_000;
                let _ = cluster.read(id, read, kind);
            }
            17 | 18 => {
                let pick = usize::from(self.byte());
                let how = match self.byte() % 3 {
                    0 => Replay::AsIs,
                    1 => Replay::TruncateEntries(usize::from(self.byte() % 3)),
                    _ => Replay::FromUnknown(1_000 + u64::from(self.byte() % 4)),
                };
                cluster.replay(pick, how);
            }
            _ => self.frame(cluster),
        }
    }

    fn change(&mut self, cluster: &mut Cluster<KvStore>) {
        let Some(leader) = cluster.leader() else { return };
        let target = self.node(cluster);
        let change = match self.byte() % 4 {
            0 => {
                let id = cluster.ids().iter().max().copied().unwrap_or(0) + 1;
                if id > 8 {
                    return;
                }
                cluster.add_node(id);
                MembershipChange::AddLearner(id)
            }
            1 => MembershipChange::Promote(target),
            2 => MembershipChange::Remove(target),
            _ => {
                let _ = cluster.transfer_leadership(leader, target);
                return;
            }
        };
        let _ = cluster.change_membership(leader, change);
    }

    /// An arbitrary frame from the script, decoded and delivered as a stale
    /// message from an unknown node (feature `framing`). The script holds the
    /// frame without its checksum field (the format byte, then the rest);
    /// the checksum is computed and inserted here.
    fn frame(&mut self, cluster: &mut Cluster<KvStore>) {
        let len = usize::from(self.byte() % 64);
        let end = (self.at + len).min(self.bytes.len());
        let unsealed = &self.bytes[self.at.min(end)..end];
        self.at = end;
        let to = self.node(cluster);
        #[cfg(feature = "framing")]
        {
            let frame = crate::framing::seal(unsealed);
            let limits = crate::framing::DecodeLimits::default();
            let term = cluster.node(to).map_or(0, |n| n.term());
            // Only a receiver past term 0 can be sent a stale message.
            if let (Ok(mut m), true) = (crate::framing::decode(&frame, &limits), term > 0) {
                m.from = 1_000 + (m.from % 4);
                m.to = to;
                m.term = m.term.min(term.saturating_sub(1));
                cluster.inject(m);
            }
        }
        #[cfg(not(feature = "framing"))]
        let _ = (unsealed, to);
    }
}
