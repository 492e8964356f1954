//! raft-io 1.0 (the older, unrelated crate of the same name) under the
//! comparison's rules. It has no batch proposal: a round of 64 is 64
//! `Event::Propose` steps.

use std::collections::VecDeque;
use std::time::Instant;

use raft_io_old::{Action, Event, Message, NodeId, RaftConfig, RaftLog, RaftNode, framing};

use crate::alloc;
use crate::workload::{Stats, Subject, Workload, command};

/// A cluster of raft-io 1.0 `RaftNode`s (its `MemoryLog`) driven by one thread.
pub struct Old {
    nodes: Vec<RaftNode>,
    queue: VecDeque<(NodeId, Message)>,
    applied: Vec<u64>,
    delivered: u64,
    codec: bool,
}

impl Old {
    fn carry_out(&mut self, i: usize, event: Event) {
        let actions = self.nodes[i].step(event).expect("step");
        for a in actions {
            match a {
                Action::Send { to, message } => self.queue.push_back((to, message)),
                // Every command is looked at, as the other harnesses do.
                Action::Apply { command, .. } => self.applied[i] += u64::from(!command.is_empty()),
                _ => {}
            }
        }
    }

    fn drain(&mut self) {
        while let Some((to, m)) = self.queue.pop_front() {
            self.delivered += 1;
            let m = if self.codec {
                let frame = framing::encode(&m).expect("encode");
                framing::decode(&frame).expect("decode")
            } else {
                m
            };
            self.carry_out((to - 1) as usize, Event::Message(m));
        }
    }

    fn tick_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.carry_out(i, Event::Tick);
        }
        self.drain();
    }

    fn leader(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.is_leader())
    }

    fn caught_up(&self) -> bool {
        let Some(l) = self.leader() else { return false };
        let last = self.nodes[l].log().last_index();
        self.nodes.iter().all(|n| n.last_applied() == last)
    }
}

impl Subject for Old {
    const NAME: &'static str = "raft-io 1.0";

    fn setup(w: &Workload) -> Self {
        let ids: Vec<NodeId> = (1..=w.nodes).collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                let cfg = RaftConfig::new(id, ids.clone())
                    .with_election_timeout(10, 20)
                    .with_heartbeat_interval(3)
                    .with_max_batch(64);
                RaftNode::new(cfg)
            })
            .collect();
        let mut c =
            Old { nodes, queue: VecDeque::new(), applied: vec![0; w.nodes as usize], delivered: 0, codec: false };
        for _ in 0..200 {
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
        let leader = self.leader().expect("leader");
        let (t0, a0) = (Instant::now(), alloc::count());
        let mut seq = 0u64;
        for size in w.rounds() {
            for _ in 0..size {
                seq += 1;
                self.carry_out(leader, Event::Propose(command(seq, w.command_bytes)));
            }
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
