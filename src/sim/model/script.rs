//! [`ModelScript`]: a cluster description and a list of explicit steps —
//! deliveries, duplicates, drops, ticks, timeouts, crashes, proposals,
//! reads, membership changes, leadership transfers and (in the asynchronous
//! storage mode) writes reported durable — with a text form that prints and
//! parses.
//! The exhaustive model checker prints its counterexamples in this form, and
//! [`replay`](super::replay) runs one on real nodes.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

use crate::config::RaftConfig;
use crate::membership::MembershipChange;
use crate::message::Message;
use crate::node::ReadKind;
use crate::sim::state_machine::fnv1a;
use crate::types::{NodeId, Term};

/// The cluster a script runs on: who the nodes are, how every node is
/// configured, and how many messages the network holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelCluster {
    /// The initial voters.
    pub voters: Vec<NodeId>,
    /// Nodes that start as joining nodes ([`RaftConfig::joining`]), to be
    /// added by a membership change.
    pub joining: Vec<NodeId>,
    /// Election timeout range `min..max` in ticks.
    pub election_timeout: (u64, u64),
    /// Ticks between heartbeats.
    pub heartbeat: u64,
    /// Pre-vote.
    pub pre_vote: bool,
    /// Check-quorum (and leader stickiness).
    pub check_quorum: bool,
    /// Lease reads (need check-quorum).
    pub lease_reads: bool,
    /// The lease's allowance for clock drift, in ticks.
    pub lease_drift: u64,
    /// Entries per AppendEntries.
    pub max_entries: usize,
    /// Messages in flight per follower.
    pub max_inflight: usize,
    /// Messages the network holds at once: a message sent while it is full
    /// is lost.
    pub capacity: usize,
    /// The seed of every node's generator.
    pub seed: u64,
    /// The asynchronous storage mode ([`RaftConfig::async_storage`]): each
    /// node's writes stay in flight until a [`ModelStep::Persist`] reports
    /// them, and a crash loses those not reported.
    pub async_storage: bool,
    /// Committed commands handed over by range
    /// ([`RaftConfig::apply_ranges`]), read from the node's log (a run of
    /// commands above its last no-op or configuration entry is handed over
    /// without a read).
    pub apply_ranges: bool,
}

impl ModelCluster {
    /// Voters `voters`, no joining node, timeouts `2..3` ticks, heartbeats
    /// every tick, pre-vote and check-quorum off, no lease reads, one entry
    /// per append, four appends in flight, a network of eight messages,
    /// synchronous storage, commands applied one by one.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            voters: voters.into_iter().collect(),
            joining: Vec::new(),
            election_timeout: (2, 3),
            heartbeat: 1,
            pre_vote: false,
            check_quorum: false,
            lease_reads: false,
            lease_drift: 0,
            max_entries: 1,
            max_inflight: 4,
            capacity: 8,
            seed: 0,
            async_storage: false,
            apply_ranges: false,
        }
    }

    /// Every node id, voters then joining nodes.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(&self.joining).copied()
    }

    /// The configuration of node `id` (a joining node's if `id` is one).
    pub fn raft_config(&self, id: NodeId) -> RaftConfig {
        let base = if self.joining.contains(&id) {
            RaftConfig::joining(id)
        } else {
            RaftConfig::new(id, self.voters.iter().copied())
        };
        base.election_timeout(self.election_timeout.0, self.election_timeout.1)
            .heartbeat_interval(self.heartbeat)
            .pre_vote(self.pre_vote)
            .check_quorum(self.check_quorum)
            .lease_reads(self.lease_reads)
            .lease_drift_ticks(self.lease_drift)
            .max_entries_per_message(self.max_entries)
            .max_inflight(self.max_inflight)
            .seed(self.seed)
            .async_storage(self.async_storage)
            .apply_ranges(self.apply_ranges)
    }
}

/// Which in-flight message a step means: its envelope, body kind and term
/// for the reader, and a digest of its whole content
/// ([`message_digest`]) to tell apart messages with the same envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageRef {
    /// The sender.
    pub from: NodeId,
    /// The destination.
    pub to: NodeId,
    /// The body's name ([`MessageBody::name`](crate::MessageBody::name)).
    pub kind: &'static str,
    /// The envelope's term.
    pub term: Term,
    /// [`message_digest`] of the message.
    pub digest: u64,
}

impl MessageRef {
    /// The reference to `message`.
    pub fn of(message: &Message) -> Self {
        Self {
            from: message.from,
            to: message.to,
            kind: message.body.name(),
            term: message.term,
            digest: message_digest(message),
        }
    }

    /// Whether `message` is the one referred to.
    pub fn matches(&self, message: &Message) -> bool {
        message.from == self.from && message.to == self.to && message_digest(message) == self.digest
    }
}

/// A digest of a message's complete content (FNV-1a over its `Debug`
/// form, which prints every field): equal messages have equal digests.
pub fn message_digest(message: &Message) -> u64 {
    struct Feed(u64);
    impl fmt::Write for Feed {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 = fnv1a(self.0, s.as_bytes());
            Ok(())
        }
    }
    let mut feed = Feed(0);
    // Writing to a digest cannot fail.
    let _ = fmt::Write::write_fmt(&mut feed, format_args!("{message:?}"));
    feed.0
}

/// One step of a script.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModelStep {
    /// Deliver an in-flight message (it leaves the network).
    Deliver(MessageRef),
    /// Deliver a copy of an in-flight message (it stays in the network).
    Duplicate(MessageRef),
    /// Lose an in-flight message.
    Drop(MessageRef),
    /// One tick on a node ([`Event::Tick`](crate::Event::Tick)).
    Tick(NodeId),
    /// A node's election timeout fires now
    /// ([`Event::Campaign`](crate::Event::Campaign)).
    Timeout(NodeId),
    /// A node crashes and restarts from what its log had synced.
    Crash(NodeId),
    /// A client writes `value` through a node (a one-byte command).
    Propose {
        /// The node.
        node: NodeId,
        /// The value written.
        value: u8,
    },
    /// A client reads through a node.
    Read {
        /// The node.
        node: NodeId,
        /// ReadIndex or lease.
        kind: ReadKind,
    },
    /// A membership change asked of a node.
    Change {
        /// The node.
        node: NodeId,
        /// The change.
        change: MembershipChange,
    },
    /// A leadership transfer asked of a node
    /// ([`Event::TransferLeadership`](crate::Event::TransferLeadership)).
    Transfer {
        /// The node (a leader, or the request is refused).
        node: NodeId,
        /// The voter it hands leadership to.
        to: NodeId,
    },
    /// The oldest write a node has in flight becomes durable, and the node
    /// is told ([`Event::Persisted`](crate::Event::Persisted)); asynchronous
    /// storage mode only ([`ModelCluster::async_storage`]).
    Persist(NodeId),
    /// A node's state machine takes a snapshot at its applied index and the
    /// node compacts its log behind it
    /// ([`Event::Snapshot`](crate::Event::Snapshot)), with the bytes
    /// [`snapshot_data`](super::snapshot_data) builds.
    Compact(NodeId),
}

/// A cluster and the steps to run on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelScript {
    /// The cluster.
    pub cluster: ModelCluster,
    /// The steps, in order.
    pub steps: Vec<ModelStep>,
}

/// A script text that does not parse: the line (1-based) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("model script line {line}: {reason}")]
pub struct ScriptError {
    /// The offending line (1-based; 0 for the script as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

const HEADER: &str = "raft-io model script 1";

/// Every body name, so parsed steps can hold a `&'static str`.
const KINDS: [&str; 14] = [
    "PreVote",
    "PreVoteResponse",
    "Vote",
    "VoteResponse",
    "Append",
    "AppendResponse",
    "Heartbeat",
    "HeartbeatResponse",
    "Snapshot",
    "SnapshotResponse",
    "TimeoutNow",
    "ReadIndex",
    "ReadIndexResponse",
    "Removed",
];

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn ids(ids: &[NodeId]) -> String {
    ids.iter().map(|id| format!(" {id}")).collect()
}

impl fmt::Display for MessageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{} {} t{} @{:016x}", self.from, self.to, self.kind, self.term, self.digest)
    }
}

impl fmt::Display for ModelStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Deliver(m) => write!(f, "deliver {m}"),
            Self::Duplicate(m) => write!(f, "duplicate {m}"),
            Self::Drop(m) => write!(f, "drop {m}"),
            Self::Tick(n) => write!(f, "tick {n}"),
            Self::Timeout(n) => write!(f, "timeout {n}"),
            Self::Crash(n) => write!(f, "crash {n}"),
            Self::Persist(n) => write!(f, "persist {n}"),
            Self::Compact(n) => write!(f, "compact {n}"),
            Self::Transfer { node, to } => write!(f, "transfer {node} {to}"),
            Self::Propose { node, value } => write!(f, "propose {node} {value}"),
            Self::Read { node, kind: ReadKind::Index } => write!(f, "read {node} index"),
            Self::Read { node, kind: ReadKind::Lease } => write!(f, "read {node} lease"),
            Self::Change { node, change } => match change {
                MembershipChange::AddVoter(id) => write!(f, "change {node} add-voter {id}"),
                MembershipChange::AddLearner(id) => write!(f, "change {node} add-learner {id}"),
                MembershipChange::Promote(id) => write!(f, "change {node} promote {id}"),
                // The model never makes these (scripts carry no addresses);
                // shown for a reader, not parsed back.
                MembershipChange::AddVoterAt { id, address } => {
                    write!(f, "change {node} add-voter {id} at {}", String::from_utf8_lossy(address))
                }
                MembershipChange::AddLearnerAt { id, address } => {
                    write!(f, "change {node} add-learner {id} at {}", String::from_utf8_lossy(address))
                }
                MembershipChange::SetAddress { id, address } => match address {
                    Some(a) => write!(f, "change {node} set-address {id} {}", String::from_utf8_lossy(a)),
                    None => write!(f, "change {node} set-address {id} none"),
                },
                MembershipChange::Remove(id) => write!(f, "change {node} remove {id}"),
                MembershipChange::Replace { voters, learners } => {
                    write!(f, "change {node} replace{} /{}", ids(voters), ids(learners))
                }
            },
        }
    }
}

impl fmt::Display for ModelScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.cluster;
        writeln!(f, "{HEADER}")?;
        writeln!(f, "voters{}", ids(&c.voters))?;
        writeln!(f, "joining{}", ids(&c.joining))?;
        writeln!(f, "election-timeout {} {}", c.election_timeout.0, c.election_timeout.1)?;
        writeln!(f, "heartbeat {}", c.heartbeat)?;
        writeln!(f, "pre-vote {}", on_off(c.pre_vote))?;
        writeln!(f, "check-quorum {}", on_off(c.check_quorum))?;
        writeln!(f, "lease-reads {}", on_off(c.lease_reads))?;
        writeln!(f, "lease-drift {}", c.lease_drift)?;
        writeln!(f, "max-entries {}", c.max_entries)?;
        writeln!(f, "max-inflight {}", c.max_inflight)?;
        writeln!(f, "capacity {}", c.capacity)?;
        writeln!(f, "seed {}", c.seed)?;
        if c.async_storage {
            // Only when on: scripts of the synchronous mode print as before.
            writeln!(f, "async-storage on")?;
        }
        if c.apply_ranges {
            writeln!(f, "apply-ranges on")?;
        }
        writeln!(f, "steps")?;
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        Ok(())
    }
}

impl FromStr for ModelScript {
    type Err = ScriptError;

    /// Parses the text form ([`Display`](fmt::Display)). Blank lines and
    /// lines starting with `#` are ignored; every header line must come
    /// before `steps`.
    fn from_str(text: &str) -> Result<Self, ScriptError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        match lines.next() {
            Some((_, HEADER)) => {}
            Some((line, _)) => return Err(ScriptError { line, reason: format!("expected `{HEADER}`") }),
            None => return Err(ScriptError { line: 0, reason: "empty script".into() }),
        }
        let mut cluster = ModelCluster::new([]);
        let mut steps = Vec::new();
        let mut in_steps = false;
        for (line, text) in lines {
            let err = |reason: String| ScriptError { line, reason };
            let words: Vec<&str> = text.split_whitespace().collect();
            if in_steps {
                steps.push(parse_step(&words).map_err(err)?);
                continue;
            }
            let (key, rest) = (words[0], &words[1..]);
            match key {
                "steps" => in_steps = true,
                "voters" => cluster.voters = numbers(rest).map_err(err)?,
                "joining" => cluster.joining = numbers(rest).map_err(err)?,
                "election-timeout" => match numbers(rest).map_err(err)?[..] {
                    [lo, hi] => cluster.election_timeout = (lo, hi),
                    _ => return Err(err("election-timeout takes two numbers".into())),
                },
                "heartbeat" => cluster.heartbeat = one(rest).map_err(err)?,
                "pre-vote" => cluster.pre_vote = switch(rest).map_err(err)?,
                "check-quorum" => cluster.check_quorum = switch(rest).map_err(err)?,
                "lease-reads" => cluster.lease_reads = switch(rest).map_err(err)?,
                "lease-drift" => cluster.lease_drift = one(rest).map_err(err)?,
                "max-entries" => cluster.max_entries = one(rest).map_err(err)? as usize,
                "max-inflight" => cluster.max_inflight = one(rest).map_err(err)? as usize,
                "capacity" => cluster.capacity = one(rest).map_err(err)? as usize,
                "seed" => cluster.seed = one(rest).map_err(err)?,
                "async-storage" => cluster.async_storage = switch(rest).map_err(err)?,
                "apply-ranges" => cluster.apply_ranges = switch(rest).map_err(err)?,
                other => return Err(err(format!("unknown header line `{other}`"))),
            }
        }
        if !in_steps {
            return Err(ScriptError { line: 0, reason: "no `steps` line".into() });
        }
        Ok(Self { cluster, steps })
    }
}

fn number(word: &str) -> Result<u64, String> {
    word.parse().map_err(|_| format!("`{word}` is not a number"))
}

fn numbers(words: &[&str]) -> Result<Vec<u64>, String> {
    words.iter().map(|w| number(w)).collect()
}

fn one(words: &[&str]) -> Result<u64, String> {
    match words {
        [w] => number(w),
        _ => Err("expected one number".into()),
    }
}

fn switch(words: &[&str]) -> Result<bool, String> {
    match words {
        ["on"] => Ok(true),
        ["off"] => Ok(false),
        _ => Err("expected `on` or `off`".into()),
    }
}

fn parse_ref(words: &[&str]) -> Result<MessageRef, String> {
    let [route, kind, term, digest] = words else {
        return Err("expected `FROM->TO KIND tTERM @DIGEST`".into());
    };
    let (from, to) = route.split_once("->").ok_or_else(|| format!("`{route}` is not FROM->TO"))?;
    let kind = KINDS.iter().find(|k| **k == *kind).ok_or_else(|| format!("unknown message kind `{kind}`"))?;
    let term = term.strip_prefix('t').ok_or_else(|| format!("`{term}` is not tTERM"))?;
    let digest = digest.strip_prefix('@').ok_or_else(|| format!("`{digest}` is not @DIGEST"))?;
    Ok(MessageRef {
        from: number(from)?,
        to: number(to)?,
        kind,
        term: number(term)?,
        digest: u64::from_str_radix(digest, 16).map_err(|_| format!("`{digest}` is not a hex digest"))?,
    })
}

fn parse_step(words: &[&str]) -> Result<ModelStep, String> {
    let node = |i: usize| words.get(i).ok_or_else(|| "missing node id".to_owned()).and_then(|w| number(w));
    Ok(match words[0] {
        "deliver" => ModelStep::Deliver(parse_ref(&words[1..])?),
        "duplicate" => ModelStep::Duplicate(parse_ref(&words[1..])?),
        "drop" => ModelStep::Drop(parse_ref(&words[1..])?),
        "tick" => ModelStep::Tick(node(1)?),
        "timeout" => ModelStep::Timeout(node(1)?),
        "crash" => ModelStep::Crash(node(1)?),
        "persist" => ModelStep::Persist(node(1)?),
        "compact" => ModelStep::Compact(node(1)?),
        "transfer" => ModelStep::Transfer { node: node(1)?, to: node(2)? },
        "propose" => {
            let value = node(2)?;
            let value = u8::try_from(value).map_err(|_| format!("value {value} is not a byte"))?;
            ModelStep::Propose { node: node(1)?, value }
        }
        "read" => {
            let kind = match words.get(2) {
                Some(&"index") => ReadKind::Index,
                Some(&"lease") => ReadKind::Lease,
                _ => return Err("expected `read NODE index|lease`".into()),
            };
            ModelStep::Read { node: node(1)?, kind }
        }
        "change" => {
            let target = || node(3);
            let change = match words.get(2) {
                Some(&"add-voter") => MembershipChange::AddVoter(target()?),
                Some(&"add-learner") => MembershipChange::AddLearner(target()?),
                Some(&"promote") => MembershipChange::Promote(target()?),
                Some(&"remove") => MembershipChange::Remove(target()?),
                Some(&"replace") => {
                    let rest = &words[3..];
                    let split = rest.iter().position(|w| *w == "/").ok_or("replace needs `/`")?;
                    MembershipChange::Replace {
                        voters: numbers(&rest[..split])?,
                        learners: numbers(&rest[split + 1..])?,
                    }
                }
                _ => return Err("unknown membership change".into()),
            };
            ModelStep::Change { node: node(1)?, change }
        }
        other => return Err(format!("unknown step `{other}`")),
    })
}

/// The one-byte command that writes `value` to the register
/// ([`ModelStep::Propose`]).
pub fn command(value: u8) -> Bytes {
    Bytes::copy_from_slice(&[value])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{MessageBody, VoteRequest};

    #[test]
    fn scripts_print_and_parse_back() {
        let vote = Message { from: 1, to: 2, term: 1, body: MessageBody::Vote(VoteRequest::default()) };
        let mut cluster = ModelCluster::new([1, 2, 3]);
        cluster.joining = vec![4];
        cluster.pre_vote = true;
        cluster.async_storage = true;
        cluster.apply_ranges = true;
        let script = ModelScript {
            cluster,
            steps: vec![
                ModelStep::Timeout(1),
                ModelStep::Deliver(MessageRef::of(&vote)),
                ModelStep::Duplicate(MessageRef::of(&vote)),
                ModelStep::Drop(MessageRef::of(&vote)),
                ModelStep::Tick(2),
                ModelStep::Crash(3),
                ModelStep::Persist(2),
                ModelStep::Compact(3),
                ModelStep::Transfer { node: 1, to: 3 },
                ModelStep::Propose { node: 1, value: 7 },
                ModelStep::Read { node: 2, kind: ReadKind::Lease },
                ModelStep::Change { node: 1, change: MembershipChange::AddLearner(4) },
                ModelStep::Change {
                    node: 1,
                    change: MembershipChange::Replace { voters: vec![1, 4], learners: vec![] },
                },
            ],
        };
        let text = script.to_string();
        assert_eq!(text.parse::<ModelScript>().unwrap(), script, "{text}");
    }

    #[test]
    fn bad_scripts_name_the_line() {
        let good = ModelScript { cluster: ModelCluster::new([1]), steps: vec![ModelStep::Tick(1)] }.to_string();
        assert!(good.parse::<ModelScript>().is_ok());
        let bad = good.replace("tick 1", "tick one");
        let err = bad.parse::<ModelScript>().unwrap_err();
        assert_eq!(err.line, good.lines().count());
        assert!(err.to_string().contains("not a number"), "{err}");
        assert_eq!("nonsense".parse::<ModelScript>().unwrap_err().line, 1);
        assert!(good.replace("steps\n", "").parse::<ModelScript>().is_err());
        let unknown = good.replace("tick 1", "deliver 1->2 Bogus t1 @00");
        assert!(unknown.parse::<ModelScript>().unwrap_err().reason.contains("Bogus"));
    }
}
