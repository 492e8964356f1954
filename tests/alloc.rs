//! Allocation promises of the steady state, measured with a counting global
//! allocator (per thread, so parallel tests do not disturb each other):
//!
//! * a follower tick and a leader heartbeat tick allocate nothing;
//! * a proposal batch and an AppendEntries cost a constant number of
//!   allocations, whatever the number of entries: none, with messages up to
//!   128 entries, once the followers stepped on the same thread have
//!   emptied a few entry vectors for the leader to reuse;
//! * a whole 3-node cluster in the simulator, pipelined, allocates nothing
//!   per entry in steady state at batch 1 and 64 (feature `sim`);
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
    // The leader's entries vector for each follower message is one its
    // followers emptied (the thread's pool of vectors of up to 64
    // entries): nothing allocated on either side.
    assert_eq!(small, (0, 0));
    assert_eq!(medium, (0, 0));
    // A vector of room for more than 128 entries is not kept: one per
    // follower message.
    assert_eq!(large, (2, 0));
}

/// A `Bytes` built from a `Vec` allocates a shared header when it is first
/// cloned (into an AppendEntries, into an Apply). A small command is copied
/// into the leader's shared block instead, so one proposal of one 16 B
/// command costs the leader a share of a block per 256 commands, not a
/// header of its own (its two AppendEntries entry vectors are ones the
/// followers emptied).
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
    assert!(off >= proposals, "without blocks: a header per command ({off})");
    assert!(on <= 2 * (proposals * 16 / 4096 + 1), "with blocks: {on}");
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

/// A 3-node simulated cluster, proposals pipelined (eight batches in
/// flight), commands whose buffer is already shared: after a warm-up, the
/// whole run — three nodes, the simulator and the driver — allocates
/// nothing per entry, at batch 1 and at batch 64 (beyond the batch's own
/// vector): what it allocates is the snapshots' the nodes take on the way
/// (36 in 20 000 entries at batch 1; 40 036 when the leader's entry
/// vectors are not the ones its followers emptied).
#[cfg(feature = "sim")]
#[test]
fn a_simulated_cluster_allocates_nothing_per_entry_in_steady_state() {
    use raft_io::sim::{Cluster, HashChain, SimConfig};
    for batch in [1usize, 64] {
        let config = SimConfig::new(3)
            .seed(1)
            .checks(false)
            .trace(0)
            .bursts(false)
            .configure(|c| c.small_command_bytes(0).snapshot_entries(5_000));
        let mut cluster = Cluster::<HashChain>::new(config);
        let leader = cluster.elect(1_000).expect("a leader");
        let min_applied = |c: &Cluster<HashChain>| (1..=3).map(|id| c.node(id).map_or(0, |n| n.last_applied())).min();
        let run = |cluster: &mut Cluster<HashChain>, entries: u64| {
            let target = min_applied(cluster).unwrap_or(0) + entries;
            while min_applied(cluster).unwrap_or(0) < target {
                let last = cluster.node(leader).map_or(0, |n| n.last_index());
                if last - min_applied(cluster).unwrap_or(0) < 8 * batch as u64 {
                    let event = if batch == 1 { Event::Propose(CMD) } else { Event::ProposeBatch(vec![CMD; batch]) };
                    cluster.step_node(leader, event).expect("proposal");
                } else {
                    cluster.step();
                }
            }
        };
        run(&mut cluster, 20_000);
        let entries = 20_000u64;
        let ((), allocs) = count_allocations(|| run(&mut cluster, entries));
        let batches = entries.div_ceil(batch as u64);
        let theirs = if batch == 1 { 0 } else { batches }; // the batch vectors
        println!("batch {batch}: {allocs} allocations for {entries} entries ({batches} proposals)");
        // What is left is the snapshots' (every node takes one every 5 000
        // entries: their data, and the log's buffers around the compaction).
        assert!(allocs <= theirs + entries / 200, "batch {batch}: {allocs} allocations for {entries} entries");
    }
}
