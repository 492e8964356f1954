//! raft-rs 0.7 (`raft` on crates.io) under the comparison's rules:
//! `RawNode` on its `MemStorage`, each `Ready` handled as its documentation
//! prescribes (send, persist entries and hard state, send the persisted
//! messages, apply, advance). A round of 64 is one `MsgPropose` carrying 64
//! entries; W4c serializes each message with its protobuf codec.

use std::collections::VecDeque;
use std::time::Instant;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, EntryType, Message, MessageType};
use raft::storage::MemStorage;
use raft::{Config, RawNode};

use crate::alloc;
use crate::workload::{Stats, Subject, Workload, command};

/// A cluster of raft-rs `RawNode<MemStorage>` driven by one thread.
pub struct RaftRs {
    nodes: Vec<RawNode<MemStorage>>,
    queue: VecDeque<Message>,
    applied: Vec<u64>,
    delivered: u64,
    codec: bool,
    /// The sender's write buffer, reused for every message.
    wbuf: Vec<u8>,
}

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

impl RaftRs {
    /// Handles node `i`'s `Ready`, if it has one.
    fn on_ready(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if !node.has_ready() {
            return;
        }
        let mut rd = node.ready();
        self.queue.extend(rd.take_messages());
        let mut applied = 0;
        for e in rd.take_committed_entries() {
            if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
                applied += 1;
            }
        }
        if !rd.entries().is_empty() {
            node.mut_store().wl().append(rd.entries()).expect("append");
        }
        if let Some(hs) = rd.hs() {
            node.mut_store().wl().set_hardstate(hs.clone());
        }
        self.queue.extend(rd.take_persisted_messages());
        let mut light = node.advance(rd);
        if let Some(commit) = light.commit_index() {
            node.mut_store().wl().mut_hard_state().set_commit(commit);
        }
        self.queue.extend(light.take_messages());
        for e in light.take_committed_entries() {
            if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
                applied += 1;
            }
        }
        node.advance_apply();
        self.applied[i] += applied;
    }

    fn drain(&mut self) {
        while let Some(m) = self.queue.pop_front() {
            self.delivered += 1;
            let m = if self.codec {
                self.wbuf.clear();
                m.write_to_vec(&mut self.wbuf).expect("encode");
                drop(m);
                Message::parse_from_bytes(&self.wbuf).expect("decode")
            } else {
                m
            };
            let i = (m.to - 1) as usize;
            self.nodes[i].step(m).expect("step");
            self.on_ready(i);
        }
    }

    fn tick_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.nodes[i].tick();
            self.on_ready(i);
        }
        self.drain();
    }

    fn caught_up(&self) -> bool {
        let l = &self.nodes[0].raft;
        let last = l.raft_log.last_index();
        l.state == raft::StateRole::Leader
            && self.nodes.iter().all(|n| n.raft.raft_log.applied == last && n.raft.raft_log.committed == last)
    }
}

impl Subject for RaftRs {
    const NAME: &'static str = "raft-rs 0.7";

    fn setup(w: &Workload) -> Self {
        let ids: Vec<u64> = (1..=w.nodes).collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                let cfg = Config {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 3,
                    max_size_per_msg: 1 << 20,
                    max_inflight_msgs: 256,
                    check_quorum: false,
                    ..Config::default()
                };
                let store = MemStorage::new_with_conf_state(ConfState::from((ids.clone(), vec![])));
                RawNode::new(&cfg, store, &logger()).expect("node")
            })
            .collect();
        let mut c = RaftRs {
            nodes,
            queue: VecDeque::new(),
            applied: vec![0; w.nodes as usize],
            delivered: 0,
            codec: false,
            wbuf: Vec::new(),
        };
        c.nodes[0].campaign().expect("campaign");
        c.on_ready(0);
        c.drain();
        for _ in 0..100 {
            if c.caught_up() {
                break;
            }
            c.tick_all();
        }
        assert!(c.caught_up(), "setup");
        c.applied.iter_mut().for_each(|a| *a = 0);
        c.delivered = 0;
        c.codec = w.codec;
        c
    }

    fn run(&mut self, w: &Workload) -> Stats {
        let (t0, a0) = (Instant::now(), alloc::count());
        let mut seq = 0u64;
        for size in w.rounds() {
            if size == 1 {
                seq += 1;
                self.nodes[0].propose(Vec::new(), command(seq, w.command_bytes)).expect("propose");
            } else {
                let mut m = Message::default();
                m.set_msg_type(MessageType::MsgPropose);
                m.from = 1;
                m.to = 1;
                for _ in 0..size {
                    seq += 1;
                    m.entries.push(Entry { data: command(seq, w.command_bytes).into(), ..Entry::default() });
                }
                self.nodes[0].step(m).expect("propose batch");
            }
            self.on_ready(0);
            self.drain();
        }
        let mut tail_ticks = 0;
        while self.applied.iter().any(|&a| a < w.entries) {
            assert!(tail_ticks < 100, "followers never learned the commit index");
            self.tick_all();
            tail_ticks += 1;
        }
        let stats = Stats::since(t0, a0, self.delivered, tail_ticks);
        assert!(self.applied.iter().all(|&a| a == w.entries));
        stats
    }
}
