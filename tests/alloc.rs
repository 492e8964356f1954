//! Allocation promises of the steady state, measured with a counting global
//! allocator (per thread, so parallel tests do not disturb each other):
//!
//! * a follower tick and a leader heartbeat tick allocate nothing;
//! * a proposal batch and an AppendEntries cost a constant number of
//!   allocations, whatever the number of entries.
//!
//! * a small command (at most `small_command_bytes`) costs no allocation of
//!   its own: it is copied into a block shared with the commands proposed
//!   after it.
//!
//! Commands are `Bytes::from_static` so that only raft-io's own allocations
//! are counted, and the batch test turns the small-command blocks off
//! (`small_command_bytes(0)`) so that what it counts is the same for every
//! batch (with them on, a new block is allocated every 4 KiB of commands).

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use bytes::Bytes;
use counting_alloc::{CountingAllocator, count_allocations};
use raft_io::{Action, Event, MemoryLog, Message, RaftConfig, RaftNode};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const CMD: Bytes = Bytes::from_static(b"0123456789abcdef");

/// Three nodes on pre-sized logs, node 1 leading, messages delivered by
/// hand. Returns the nodes.
fn cluster() -> Vec<RaftNode> {
    cluster_with(|c| c.small_command_bytes(0))
}

/// As [`cluster`], each node's configuration passed through `config`.
fn cluster_with(config: impl Fn(RaftConfig) -> RaftConfig) -> Vec<RaftNode> {
    let mut nodes: Vec<RaftNode> = (1..=3)
        .map(|id| {
            RaftNode::with_log(config(RaftConfig::new(id, [1, 2, 3]).seed(id)), MemoryLog::with_capacity(1 << 16))
                .unwrap()
        })
        .collect();
    let mut inbox: Vec<Message> = Vec::new();
    let step = |nodes: &mut Vec<RaftNode>, id: u64, e: Event, inbox: &mut Vec<Message>| {
        for a in nodes[id as usize - 1].step(e).unwrap() {
            if let Action::Send { message, .. } = a {
                inbox.push(message);
            }
        }
    };
    step(&mut nodes, 1, Event::Campaign, &mut inbox);
    for _ in 0..200 {
        let msgs: Vec<Message> = std::mem::take(&mut inbox);
        for m in msgs {
            let to = m.to;
            step(&mut nodes, to, Event::Message(m), &mut inbox);
        }
        for id in 1..=3 {
            step(&mut nodes, id, Event::Tick, &mut inbox);
        }
    }
    assert!(nodes[0].is_leader());
    nodes
}

#[test]
fn a_follower_tick_allocates_nothing() {
    let mut nodes = cluster();
    let follower = &mut nodes[1];
    for _ in 0..3 {
        let (n, allocs) = count_allocations(|| follower.step(Event::Tick).unwrap().count());
        assert_eq!((n, allocs), (0, 0));
    }
}

#[test]
fn a_leader_heartbeat_tick_allocates_nothing() {
    let mut nodes = cluster();
    let leader = &mut nodes[0];
    let mut heartbeats = 0;
    for _ in 0..10 {
        let (sent, allocs) = count_allocations(|| {
            leader.step(Event::Tick).unwrap().filter(|a| matches!(a, Action::Send { .. })).count()
        });
        assert_eq!(allocs, 0, "a leader tick allocated");
        heartbeats += sent;
    }
    assert!(heartbeats >= 8, "heartbeats were sent ({heartbeats})");
}

/// Allocations of one proposal batch of `n` commands on the leader, and of
/// the AppendEntries it produces on a follower, in steady state.
fn batch_costs(n: usize) -> (u64, u64) {
    let mut nodes = cluster();
    let mut leader_allocs = Vec::new();
    let mut follower_allocs = Vec::new();
    for _ in 0..8 {
        let batch: Vec<Bytes> = vec![CMD; n];
        let (messages, allocs) = count_allocations(|| {
            nodes[0]
                .step(Event::ProposeBatch(batch))
                .unwrap()
                .filter_map(|a| match a {
                    Action::Send { message, .. } => Some(message),
                    _ => None,
                })
                .collect::<Vec<Message>>()
        });
        // Collecting the messages into the test's own Vec is one of them.
        leader_allocs.push(allocs - 1);
        for m in messages {
            let to = m.to as usize - 1;
            let ((), allocs) = count_allocations(|| nodes[to].step(Event::Message(m)).unwrap().for_each(drop));
            follower_allocs.push(allocs);
        }
    }
    println!("{n} entries: leader {leader_allocs:?}, follower {follower_allocs:?}");
    // The first round warms up reusable buffers; every later round is equal.
    let steady = |v: &[u64]| {
        assert!(v[2..].iter().all(|&a| a == v[2]), "{v:?}");
        v[2]
    };
    (steady(&leader_allocs), steady(&follower_allocs))
}

#[test]
fn a_proposal_batch_and_an_append_cost_o1_allocations() {
    let small = batch_costs(1);
    let medium = batch_costs(64);
    let large = batch_costs(256);
    println!("allocations (leader batch, follower append) for 1 / 64 / 256 entries: {small:?} {medium:?} {large:?}");
    assert_eq!(small, medium);
    assert_eq!(medium, large);
    // One entries vector per follower message; nothing on the follower.
    assert_eq!(large, (2, 0));
}

/// A `Bytes` built from a `Vec` allocates a shared header when it is first
/// cloned (into an AppendEntries, into an Apply). A small command is copied
/// into the leader's shared block instead, so one proposal of one 16 B
/// command costs the leader the two AppendEntries entry vectors and a
/// share of a block per 256 commands, not a header of its own.
#[test]
fn a_small_command_costs_no_allocation_of_its_own() {
    let proposals = 1024u64;
    let costs = |small: usize| {
        let mut nodes = cluster_with(|c| c.small_command_bytes(small));
        let mut total = 0;
        for i in 0..proposals {
            let command = Bytes::from(format!("{i:016}").into_bytes());
            let (messages, allocs) = count_allocations(|| {
                let mut out = Vec::with_capacity(4);
                for a in nodes[0].step(Event::Propose(command)).unwrap() {
                    if let Action::Send { message, .. } = a {
                        out.push(message);
                    }
                }
                out
            });
            total += allocs - 1; // the test's own vector
            // Deliver everything, answers included, so the leader's window
            // never fills.
            let mut inbox = messages;
            while let Some(m) = inbox.pop() {
                let to = m.to as usize - 1;
                for a in nodes[to].step(Event::Message(m)).unwrap() {
                    if let Action::Send { message, .. } = a {
                        inbox.push(message);
                    }
                }
            }
        }
        total
    };
    let (on, off) = (costs(64), costs(0));
    println!("leader allocations for {proposals} proposals of 16 B: {on} with small-command blocks, {off} without");
    assert!(off >= 3 * proposals, "without blocks: a header per command ({off})");
    assert!(on <= 2 * proposals + 2 * (proposals * 16 / 4096 + 1), "with blocks: {on}");
}

/// With small-command blocks on, what every node applies is exactly what
/// was proposed, in order: commands of every size around the threshold
/// (1 to 97 bytes), across many 4 KiB block boundaries, proposed one
/// by one and in batches.
#[test]
fn small_command_blocks_apply_exactly_what_was_proposed() {
    let mut nodes = cluster_with(|c| c.small_command_bytes(64));
    let commands: Vec<Bytes> = (0..1500u32)
        .map(|i| Bytes::from((0..=(i % 97) as usize).map(|k| (i as usize * 31 + k) as u8).collect::<Vec<u8>>()))
        .collect();
    let mut applied: Vec<Vec<Bytes>> = vec![Vec::new(); 3];
    let mut inbox: Vec<Message> = Vec::new();
    let mut take = |id: usize, actions: Vec<Action>, inbox: &mut Vec<Message>| {
        for a in actions {
            match a {
                Action::Send { message, .. } => inbox.push(message),
                Action::Apply { command, .. } => applied[id].push(command),
                _ => {}
            }
        }
    };
    for (i, chunk) in commands.chunks(7).enumerate() {
        let event = if i % 2 == 0 {
            Event::ProposeBatch(chunk.to_vec())
        } else {
            for c in &chunk[..chunk.len() - 1] {
                let actions: Vec<Action> = nodes[0].step(Event::Propose(c.clone())).unwrap().collect();
                take(0, actions, &mut inbox);
            }
            Event::Propose(chunk[chunk.len() - 1].clone())
        };
        let actions: Vec<Action> = nodes[0].step(event).unwrap().collect();
        take(0, actions, &mut inbox);
        while let Some(m) = inbox.pop() {
            let to = m.to as usize - 1;
            let actions: Vec<Action> = nodes[to].step(Event::Message(m)).unwrap().collect();
            take(to, actions, &mut inbox);
        }
    }
    for _ in 0..5 {
        for (id, node) in nodes.iter_mut().enumerate() {
            let actions: Vec<Action> = node.step(Event::Tick).unwrap().collect();
            take(id, actions, &mut inbox);
        }
        while let Some(m) = inbox.pop() {
            let to = m.to as usize - 1;
            let actions: Vec<Action> = nodes[to].step(Event::Message(m)).unwrap().collect();
            take(to, actions, &mut inbox);
        }
    }
    for (id, got) in applied.iter().enumerate() {
        assert_eq!(got, &commands, "node {}", id + 1);
    }
}

/// A node that will never clone a command — no peer to send it to, and
/// commands handed over by range — keeps each as it came: no copy into a
/// block, no allocation for it. With a peer, or with `Action::Apply`, a
/// small command is copied into the block.
#[test]
fn a_lone_node_applying_by_range_copies_no_command() {
    let applied_ptr = |config: RaftConfig| {
        let mut node = RaftNode::new(config.small_command_bytes(64)).unwrap();
        node.step(Event::Campaign).unwrap();
        let command = Bytes::from(vec![7u8; 16]);
        let proposed = command.as_ptr();
        let mut actions = Vec::with_capacity(8);
        let ((), allocs) = count_allocations(|| node.step_into(Event::Propose(command), &mut actions).unwrap());
        let mut at = None;
        for a in actions {
            match a {
                Action::Apply { command, .. } => at = Some(command.as_ptr()),
                Action::ApplyRange { first, last } => {
                    node.visit_applied(first, last, |_, _, c| at = Some(c.as_ptr())).unwrap();
                }
                _ => {}
            }
        }
        (at.expect("applied") == proposed, allocs)
    };
    let (kept, allocs) = applied_ptr(RaftConfig::single(1).apply_ranges(true));
    assert!(kept, "a lone node applying by range keeps the proposed buffer");
    assert_eq!(allocs, 0, "and allocates nothing for it");
    let (kept, _) = applied_ptr(RaftConfig::single(1));
    assert!(!kept, "a lone node handing out Action::Apply copies a small command into a block");
    let (kept, _) = applied_ptr(RaftConfig::single(1).learners([2]).apply_ranges(true));
    assert!(!kept, "a node with a peer (a learner) copies it");
}
