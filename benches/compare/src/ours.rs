//! raft-io (this repository) under the comparison's rules.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use raft_io::framing::{self, DecodeLimits};
use raft_io::{Action, Event, Message, RaftConfig, RaftNode};

use crate::alloc;
use crate::workload::{Stats, Subject, Workload, command};

/// A cluster of `RaftNode<MemoryLog>` driven by one thread.
pub struct Ours {
    nodes: Vec<RaftNode>,
    queue: VecDeque<Message>,
    applied: Vec<u64>,
    leader: usize,
    delivered: u64,
    codec: bool,
    limits: DecodeLimits,
    /// The sender's write buffer, reused for every frame (as a transport does).
    wbuf: BytesMut,
    /// The actions of the step being carried out (reused).
    actions: Vec<Action>,
}

impl Ours {
    fn carry_out(&mut self, i: usize, event: Event) {
        let node = &mut self.nodes[i];
        node.step_into(event, &mut self.actions).expect("step");
        for a in self.actions.drain(..) {
            match a {
                Action::Send { message, .. } => self.queue.push_back(message),
                Action::Apply { .. } => self.applied[i] += 1,
                // The commands, borrowed from the log (`apply_ranges`).
                Action::ApplyRange { first, last } => {
                    let applied = &mut self.applied[i];
                    // Every command is looked at (as raft-rs's harness
                    // looks at each committed entry's data).
                    node.visit_applied(first, last, |_, _, command| *applied += u64::from(!command.is_empty()))
                        .expect("apply");
                }
                _ => {}
            }
        }
    }

    /// Delivers messages one at a time until none is in flight.
    fn drain(&mut self) {
        while let Some(m) = self.queue.pop_front() {
            self.delivered += 1;
            let m = if self.codec {
                self.wbuf.clear();
                framing::encode_into(&m, &mut self.wbuf);
                drop(m);
                let read: &[u8] = &self.wbuf; // what a socket read hands over
                // One copy of the frame: the decoded entries are slices of it.
                framing::decode(&Bytes::copy_from_slice(read), &self.limits).expect("decode")
            } else {
                m
            };
            let i = (m.to - 1) as usize;
            self.carry_out(i, Event::Message(m));
        }
    }

    fn tick_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.carry_out(i, Event::Tick);
        }
        self.drain();
    }

    fn caught_up(&self) -> bool {
        let last = self.nodes[self.leader].last_index();
        self.nodes.iter().all(|n| n.last_applied() == last)
    }
}

impl Subject for Ours {
    const NAME: &'static str = "raft-io 0.8";

    fn setup(w: &Workload) -> Self {
        let ids: Vec<u64> = (1..=w.nodes).collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                let cfg = RaftConfig::new(id, ids.clone())
                    .seed(7)
                    .election_timeout(10, 20)
                    .heartbeat_interval(3)
                    .check_quorum(false)
                    .max_entries_per_message(64)
                    // Opt-in (PROTOCOL.md §4.5, "Small commands"): the
                    // benchmark's state machine keeps no command.
                    .small_command_bytes(64)
                    // Opt-in (the runtime's own setting): committed
                    // commands are read from the log, borrowed.
                    .apply_ranges(true);
                RaftNode::new(cfg).expect("node")
            })
            .collect();
        let mut c = Ours {
            nodes,
            queue: VecDeque::new(),
            applied: vec![0; w.nodes as usize],
            leader: 0,
            delivered: 0,
            codec: false,
            limits: DecodeLimits::default(),
            wbuf: BytesMut::new(),
            actions: Vec::new(),
        };
        c.carry_out(0, Event::Campaign);
        c.drain();
        for _ in 0..100 {
            if c.nodes[0].is_leader() && c.caught_up() {
                break;
            }
            c.tick_all();
        }
        assert!(c.nodes[0].is_leader() && c.caught_up(), "setup");
        c.applied.iter_mut().for_each(|a| *a = 0);
        c.delivered = 0;
        c.codec = w.codec;
        c
    }

    fn run(&mut self, w: &Workload) -> Stats {
        let (t0, a0) = (Instant::now(), alloc::count());
        let mut seq = 0u64;
        let leader = self.leader;
        for size in w.rounds() {
            if size == 1 {
                seq += 1;
                let cmd = Bytes::from(command(seq, w.command_bytes));
                self.carry_out(leader, Event::Propose(cmd));
            } else {
                let batch: Vec<Bytes> = (0..size)
                    .map(|_| {
                        seq += 1;
                        Bytes::from(command(seq, w.command_bytes))
                    })
                    .collect();
                self.carry_out(leader, Event::ProposeBatch(batch));
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
