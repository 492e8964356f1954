//! The cost of one `RaftNode::step` on each hot path, in steady state, on
//! `MemoryLog`:
//!
//! * `follower_tick`: a tick on a follower with a live leader;
//! * `leader_heartbeat_tick`: a tick on which a 3-node leader sends its two
//!   heartbeats;
//! * `vote_request`: a voter granting a vote in a new term (adopts the term,
//!   records the vote, syncs, answers);
//! * `follower_append_64`: a follower appending a fresh AppendEntries of
//!   64 × 16 B entries and answering it (`commit_unchanged`), or doing the
//!   same when the message also commits the 64 entries of the previous one,
//!   which the follower then applies (`commit_64`);
//! * `leader_commit_on_ack`: a 3-node leader receiving the AppendResponse
//!   that makes a quorum for the next proposal of 1 or 64 entries, so it
//!   commits and applies them;
//! * `single_node_propose_commit_apply`: a single-node cluster proposing
//!   1 or 64 commands in one step, which appends, commits and applies them
//!   (reported per entry);
//! * `reference/bytes_clone_drop`: for scale, one clone and drop of a
//!   command `Bytes` (shared buffer, or static).
//!
//! `cargo bench --bench step`
//!
//! Each benchmark measures whole chunks of consecutive steps with one clock
//! reading around each chunk (so the clock's own cost is spread thin).
//! Whatever the steady state needs between chunks runs outside the timed
//! region: building the chunk's messages or proposal vectors, a heartbeat
//! that keeps a follower's election timer from firing, the acks of the
//! other follower, and compacting the log every 65 536 entries so it stays
//! bounded. Every action a step returns is taken and dropped inside the
//! timed region, as a driver would. The nodes use an election timeout of
//! 1000–2000 ticks and a heartbeat every tick, so a chunk of ticks never
//! crosses a timeout and every leader tick is a heartbeat tick; the work of
//! one tick does not depend on those values.
//!
//! Figures are recorded in `docs/BENCHMARKS.md`.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use raft_io::{
    Action, Actions, AppendEntries, AppendResponse, Entry, Event, Heartbeat, HeartbeatResponse, Index, Message,
    MessageBody, NodeId, RaftConfig, RaftLog, RaftNode, Term, VoteRequest,
};

/// Ticks per timed chunk (below the election timeout of 1000).
const TICK_CHUNK: u64 = 500;
/// Steps per timed chunk for the other paths.
const STEP_CHUNK: u64 = 256;
/// Entries appended between two compactions.
const COMPACT_EVERY: u64 = 1 << 16;

fn config(id: NodeId, voters: &[NodeId]) -> RaftConfig {
    RaftConfig::new(id, voters.iter().copied()).seed(id).election_timeout(1_000, 2_000).heartbeat_interval(1)
}

/// Takes and drops every action of a step, as a driver would.
fn consume(actions: Actions<'_>) {
    for action in actions {
        black_box(&action);
    }
}

fn step(node: &mut RaftNode, event: Event) {
    consume(node.step(event).expect("a steady-state step succeeds"));
}

/// Three nodes on `MemoryLog`, node 1 elected leader with messages delivered
/// by hand, every node holding and applying the leader's no-op.
fn three_nodes() -> Vec<RaftNode> {
    let mut nodes: Vec<RaftNode> = [1, 2, 3].iter().map(|&id| RaftNode::new(config(id, &[1, 2, 3])).unwrap()).collect();
    let mut inbox = VecDeque::new();
    let deliver = |nodes: &mut Vec<RaftNode>, to: NodeId, event: Event, inbox: &mut VecDeque<Message>| {
        for action in nodes[to as usize - 1].step(event).unwrap() {
            if let Action::Send { message, .. } = action {
                inbox.push_back(message);
            }
        }
    };
    deliver(&mut nodes, 1, Event::Campaign, &mut inbox);
    while let Some(m) = inbox.pop_front() {
        deliver(&mut nodes, m.to, Event::Message(m), &mut inbox);
    }
    assert!(nodes[0].is_leader());
    let last = nodes[0].last_index();
    assert!(nodes.iter().all(|n| n.last_applied() == last && n.commit_index() == last));
    nodes
}

/// A message from `from` to `to` in `term`.
fn message(from: NodeId, to: NodeId, term: Term, body: MessageBody) -> Message {
    Message { from, to, term, body }
}

/// A 16 B command whose buffer is shared (cloning it never allocates).
fn command() -> Bytes {
    let command = Bytes::from(b"0123456789abcdef".to_vec());
    drop(command.clone());
    command
}

/// Compacts `node`'s log through its applied index once `COMPACT_EVERY`
/// entries were applied since the last time.
fn maybe_compact(node: &mut RaftNode) {
    let applied = node.last_applied();
    if applied - node.log().snapshot_meta().index >= COMPACT_EVERY {
        step(node, Event::Snapshot { index: applied, data: Bytes::new() });
    }
}

/// Runs `iters` timed steps in chunks of at most `chunk`: `prepare` builds
/// a chunk's inputs (untimed), `run` takes one input (timed), `between` runs
/// after each chunk (untimed). Returns the time of the timed parts.
fn chunked<S, I>(
    state: &mut S,
    iters: u64,
    chunk: u64,
    mut prepare: impl FnMut(&mut S, u64, &mut Vec<I>),
    mut run: impl FnMut(&mut S, I),
    mut between: impl FnMut(&mut S),
) -> Duration {
    let mut inputs = Vec::with_capacity(chunk as usize);
    let mut elapsed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(chunk);
        inputs.clear();
        prepare(state, n, &mut inputs);
        let start = Instant::now();
        for input in inputs.drain(..) {
            run(state, input);
        }
        elapsed += start.elapsed();
        between(state);
        left -= n;
    }
    elapsed
}

fn ticks(c: &mut Criterion) {
    let mut group = c.benchmark_group("step");

    let mut nodes = three_nodes();
    let (term, commit) = (nodes[0].term(), nodes[0].commit_index());
    let mut follower = nodes.swap_remove(1);
    let mut round = 1_000_000;
    group.bench_function("follower_tick", |b| {
        b.iter_custom(|iters| {
            chunked(
                &mut follower,
                iters,
                TICK_CHUNK,
                |_, n, inputs| inputs.extend((0..n).map(|_| ())),
                |f, ()| step(f, Event::Tick),
                |f| {
                    // The leader's heartbeat keeps the election timer from firing.
                    round += 1;
                    let hb = Heartbeat { commit, round };
                    step(f, Event::Message(message(1, 2, term, MessageBody::Heartbeat(hb))));
                },
            )
        })
    });
    assert!(!follower.is_leader() && follower.leader() == Some(1) && follower.term() == term);

    let mut leader = three_nodes().swap_remove(0);
    let term = leader.term();
    group.bench_function("leader_heartbeat_tick", |b| {
        b.iter_custom(|iters| {
            chunked(
                &mut leader,
                iters,
                TICK_CHUNK,
                |_, n, inputs| inputs.extend((0..n).map(|_| ())),
                |l, ()| step(l, Event::Tick),
                |l| {
                    // One untimed tick to learn the round, then both followers
                    // answer it (check-quorum sees them alive).
                    let mut round = None;
                    for action in l.step(Event::Tick).unwrap() {
                        if let Action::Send { message: Message { body: MessageBody::Heartbeat(hb), .. }, .. } = action {
                            round = Some(hb.round);
                        }
                    }
                    let round = round.expect("every leader tick sends heartbeats");
                    for from in [2, 3] {
                        let body = MessageBody::HeartbeatResponse(HeartbeatResponse { round });
                        step(l, Event::Message(message(from, 1, term, body)));
                    }
                },
            )
        })
    });
    assert!(leader.is_leader() && leader.term() == term);
    group.finish();
}

fn vote(c: &mut Criterion) {
    let mut group = c.benchmark_group("step");
    let mut voter = three_nodes().swap_remove(2);
    let (last_log_index, last_log_term) = (voter.last_index(), voter.term());
    // Requests from a leadership transfer get past the stickiness of a voter
    // that heard from its leader within the election timeout (its lease
    // promise counts from that contact), so each new term's request is
    // granted: the path measured is a granted vote with its term change.
    let mut term = voter.term() + 1;
    let req = VoteRequest { last_log_index, last_log_term, transfer: true };
    step(&mut voter, Event::Message(message(2, 3, term, MessageBody::Vote(req))));
    assert_eq!(voter.term(), term);
    group.bench_function("vote_request", |b| {
        b.iter_custom(|iters| {
            chunked(
                &mut voter,
                iters,
                STEP_CHUNK,
                |_, n, inputs| {
                    for _ in 0..n {
                        term += 1;
                        let req = VoteRequest { last_log_index, last_log_term, transfer: true };
                        inputs.push(message(2, 3, term, MessageBody::Vote(req)));
                    }
                },
                |v, m| step(v, Event::Message(m)),
                |_| {},
            )
        })
    });
    assert_eq!(voter.term(), term, "every request was granted in its term");
    assert_eq!(voter.status().vote, Some(2));
    group.finish();
}

/// A follower receiving fresh AppendEntries of 64 entries.
struct Follower {
    node: RaftNode,
    term: Term,
    /// The leader's commit index carried by each message: unchanged, or the
    /// last index of the previous message.
    commit_previous: bool,
    command: Bytes,
    /// The leader's log as the follower last heard it.
    last: Index,
    commit: Index,
    round: u64,
}

impl Follower {
    fn next_append(&mut self) -> Message {
        let prev = self.last;
        let entries = (1..=64).map(|k| Entry::normal(self.term, prev + k, self.command.clone())).collect();
        self.last += 64;
        if self.commit_previous {
            self.commit = prev;
        }
        let body =
            AppendEntries { prev_log_index: prev, prev_log_term: self.term, leader_commit: self.commit, entries };
        message(1, 2, self.term, MessageBody::Append(body))
    }

    /// Untimed: without commits riding on appends, a heartbeat commits what
    /// the follower holds; then compaction.
    fn between(&mut self) {
        if !self.commit_previous {
            self.commit = self.last;
            self.round += 1;
            let hb = Heartbeat { commit: self.commit, round: self.round };
            step(&mut self.node, Event::Message(message(1, 2, self.term, MessageBody::Heartbeat(hb))));
        }
        maybe_compact(&mut self.node);
    }
}

fn follower_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("step/follower_append_64");
    group.throughput(Throughput::Elements(64));
    for (name, commit_previous) in [("commit_unchanged", false), ("commit_64", true)] {
        let node = three_nodes().swap_remove(1);
        let (term, last, commit) = (node.term(), node.last_index(), node.commit_index());
        let mut f = Follower { node, term, commit_previous, command: command(), last, commit, round: 0 };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                chunked(
                    &mut f,
                    iters,
                    STEP_CHUNK,
                    |f, n, inputs| inputs.extend((0..n).map(|_| f.next_append())),
                    |f, m| step(&mut f.node, Event::Message(m)),
                    Follower::between,
                )
            })
        });
        assert_eq!(f.node.last_index(), f.last, "every append was taken");
        assert!(f.node.last_applied() >= f.last.saturating_sub(64));
    }
    group.finish();
}

/// A leader with both followers replicating, acks forged in their name.
struct Leader {
    node: RaftNode,
    term: Term,
    batch: usize,
    command: Bytes,
}

fn ack(from: NodeId, term: Term, index: Index) -> Message {
    message(from, 1, term, MessageBody::AppendResponse(AppendResponse { success: true, index, ..Default::default() }))
}

fn leader_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("step/leader_commit_on_ack");
    for batch in [1usize, 64] {
        let node = three_nodes().swap_remove(0);
        let term = node.term();
        let mut l = Leader { node, term, batch, command: command() };
        group.bench_function(BenchmarkId::from_parameter(format!("{batch}_entries")), |b| {
            b.iter_custom(|iters| {
                chunked(
                    &mut l,
                    iters,
                    // Within the default window of 64 messages in flight.
                    32,
                    |l, n, inputs| {
                        // Untimed: n proposals, each replicated to both
                        // followers at once; node 2's acks are the inputs.
                        for _ in 0..n {
                            let event = if l.batch == 1 {
                                Event::Propose(l.command.clone())
                            } else {
                                Event::ProposeBatch(vec![l.command.clone(); l.batch])
                            };
                            step(&mut l.node, event);
                            inputs.push(ack(2, l.term, l.node.last_index()));
                        }
                    },
                    |l, m| {
                        let before = l.node.commit_index();
                        step(&mut l.node, Event::Message(m));
                        debug_assert_eq!(l.node.commit_index(), before + l.batch as u64);
                    },
                    |l| {
                        // Untimed: node 3 catches up with one ack.
                        let last = l.node.last_index();
                        step(&mut l.node, Event::Message(ack(3, l.term, last)));
                        maybe_compact(&mut l.node);
                    },
                )
            })
        });
        assert!(l.node.is_leader());
        assert_eq!(l.node.last_applied(), l.node.last_index(), "every ack committed and applied its proposal");
    }
    group.finish();
}

fn single_node(c: &mut Criterion) {
    let mut group = c.benchmark_group("step/single_node_propose_commit_apply");
    for batch in [1usize, 64] {
        let mut node = RaftNode::new(config(1, &[1])).unwrap();
        step(&mut node, Event::Campaign);
        assert!(node.is_leader());
        let command = command();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("batch", batch), |b| {
            b.iter_custom(|iters| {
                chunked(
                    &mut node,
                    iters,
                    STEP_CHUNK,
                    |_, n, inputs| {
                        // Untimed: the caller's proposal vectors.
                        inputs.extend((0..n).map(|_| {
                            if batch == 1 {
                                Event::Propose(command.clone())
                            } else {
                                Event::ProposeBatch(vec![command.clone(); batch])
                            }
                        }))
                    },
                    step,
                    maybe_compact,
                )
            })
        });
        assert_eq!(node.last_applied(), node.last_index());
    }
    group.finish();
}

/// For scale: what one clone and drop of a command costs (two atomic
/// reference-count updates on a shared buffer; nothing for a static one).
fn reference(c: &mut Criterion) {
    let mut group = c.benchmark_group("reference/bytes_clone_drop");
    let shared = command();
    group.bench_function("shared", |b| b.iter(|| drop(black_box(black_box(&shared).clone()))));
    let fixed = Bytes::from_static(b"0123456789abcdef");
    group.bench_function("static", |b| b.iter(|| drop(black_box(black_box(&fixed).clone()))));
    group.finish();
}

criterion_group!(benches, ticks, vote, follower_append, leader_commit, single_node, reference);
criterion_main!(benches);
