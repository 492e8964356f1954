//! Publishing [`NodeMetrics`] and, with feature `net`, the runtime's `RuntimeStats`
//! through the `metrics` crate facade (feature `metrics`): whatever
//! recorder the application installed (a Prometheus exporter, say) receives
//! them under the names below, each labelled `node="<id>"` (per-follower
//! gauges also `peer="<id>"`). The threaded runtime calls these every 10
//! ticks; an application driving a [`RaftNode`](crate::RaftNode) itself calls
//! [`publish_node`] when it likes.
//!
//! Node ids are unique within a cluster only: a process running nodes of
//! several clusters names each one's cluster with a [`Publisher`] that adds
//! `cluster="<label>"` to every series (the runtime's
//! `runtime::Runtime::metrics_cluster`, feature `net`), so one node id in
//! two clusters publishes two series. Without a label, as with
//! [`publish_node`] and `publish_runtime` (feature `net`), series carry no
//! `cluster` label.
//!
//! Counters stay monotonic for the life of the process (per node id and
//! cluster label): when a node's counts start again from zero (a runtime started anew after a halt, the same node
//! id published by a new [`RaftNode`](crate::RaftNode)), what was published
//! before is added to them rather than hidden by them (a recorder keeps a
//! counter's highest absolute value). A follower that a node no longer
//! reports (it stepped down, or the follower left) has its per-follower
//! gauges set to 0 once, rather than left at their last value.
//!
//! | name | kind | meaning |
//! |---|---|---|
//! | `raft_term` | gauge | current term |
//! | `raft_role` | gauge | 0 follower, 1 pre-candidate, 2 candidate, 3 leader |
//! | `raft_leader` | gauge | the known leader's id (0: none) |
//! | `raft_commit_index`, `raft_applied_index`, `raft_last_index`, `raft_snapshot_index` | gauge | log positions |
//! | `raft_writes_pending`, `raft_messages_held` | gauge | asynchronous storage: writes in flight; messages waiting for them |
//! | `raft_proposals_total`, `raft_proposals_refused_total` | counter | entries proposed; proposal steps refused (a refused batch counts once) |
//! | `raft_leader_changes_total`, `raft_elections_total` | counter | leader changes seen; elections started |
//! | `raft_messages_received_total`, `raft_messages_sent_total`, `raft_messages_dropped_total` | counter | messages |
//! | `raft_heartbeats_skipped_total` | counter | heartbeats a leader left out as redundant (the follower acknowledged new entries and was sent newer ones since the previous round) |
//! | `raft_lease_reads_total` | counter | reads a leader answered from its lease, without a heartbeat round |
//! | `raft_follower_regressions_total` | counter | refusals, received as leader, of an index the follower had acknowledged: it lost durable entries (remove it and add it back) |
//! | `raft_log_syncs_total` | counter | syncs (or asynchronous writes submitted) |
//! | `raft_log_sync_seconds_total` | gauge (a running total) | the time those syncs took, when the log measures it: a gauge so the fraction of a second survives (`rate()` reads it as a counter) |
//! | `raft_log_fsyncs_total` | counter | fsyncs the log made (when it counts them) |
//! | `raft_snapshots_sent_total`, `raft_snapshot_bytes_sent_total`, `raft_snapshots_installed_total`, `raft_snapshot_bytes_received_total`, `raft_snapshots_taken_total` | counter | snapshots |
//! | `raft_peer_match_index`, `raft_peer_lag` | gauge (leader, per `peer`) | a follower's match index and how far it is behind; 0 once this node no longer leads, or the follower left the configuration |
//! | `raft_runtime_steps_total`, `raft_runtime_ticks_total`, `raft_runtime_batches_total`, `raft_runtime_applied_total`, `raft_runtime_reads_total` | counter | runtime (feature `net`) |
//!
//! The many-groups runtime (`runtime::multi::MultiRuntime`, features `net`
//! and `persistence`) publishes every 10 ticks the host series below,
//! labelled `node` (and `cluster` with its `metrics_cluster`): a fixed set,
//! whatever the number of groups. The sums over its groups are taken by one
//! walk over them at each publication, nowhere else (some 50 ns a group:
//! half a millisecond every 10 ticks at 10 000 groups); a group
//! removed leaves its last counts in them, so they never go back. With its
//! `metrics_per_group`, for small numbers of groups (some 5 µs a group at
//! each publication), each group also
//! publishes the series of a node above, labelled `group="<id>"` as well
//! (but `raft_log_fsyncs_total` and `raft_log_sync_seconds_total`: the
//! shared WAL's, published once as `raft_multi_wal_*`); without it no
//! series has a `group` label. [`Publisher::group`] adds that label for
//! an application that publishes its groups itself.
//!
//! | name | kind | meaning |
//! |---|---|---|
//! | `raft_multi_groups`, `raft_multi_groups_led`, `raft_multi_groups_quiesced`, `raft_multi_groups_campaigning` | gauge | groups hosted; of them, led by this node, quiesced, in a pre-vote or vote round |
//! | `raft_multi_requests_held`, `raft_multi_requests_queued` | gauge | requests the driver holds (proposals in flight included); requests submitted and not yet taken |
//! | `raft_multi_proposals_total`, `raft_multi_proposals_refused_total`, `raft_multi_leader_changes_total`, `raft_multi_elections_total` | counter | the groups' `raft_proposals_total`, … summed (removed groups included) |
//! | `raft_multi_messages_received_total`, `raft_multi_messages_sent_total`, `raft_multi_messages_dropped_total` | counter | the groups' messages, summed |
//! | `raft_multi_heartbeats_skipped_total`, `raft_multi_lease_reads_total`, `raft_multi_follower_regressions_total`, `raft_multi_log_syncs_total` | counter | the groups' counts, summed (`log_syncs`: writes submitted to the shared WAL) |
//! | `raft_multi_snapshots_sent_total`, `raft_multi_snapshot_bytes_sent_total`, `raft_multi_snapshots_installed_total`, `raft_multi_snapshot_bytes_received_total`, `raft_multi_snapshots_taken_total` | counter | the groups' snapshots, summed |
//! | `raft_multi_runtime_turns_total`, `raft_multi_runtime_ticks_total`, `raft_multi_runtime_persisted_total` | counter | driver turns; host ticks; durability reports stepped |
//! | `raft_multi_runtime_envelopes_received_total`, `raft_multi_runtime_envelopes_sent_total` | counter | envelopes handed to the host; to the transport |
//! | `raft_multi_runtime_proposals_total`, `raft_multi_runtime_batches_total`, `raft_multi_runtime_applied_total`, `raft_multi_runtime_reads_total`, `raft_multi_runtime_snapshots_total` | counter | proposals accepted and the batch steps they went in; commands applied; reads served; snapshots taken |
//! | `raft_multi_runtime_snapshot_chunks_sent_total`, `raft_multi_runtime_snapshot_chunks_held_back_total`, `raft_multi_runtime_snapshot_chunks_received_total`, `raft_multi_runtime_snapshot_chunks_refused_total` | counter | snapshot chunks let through and held back by the per-node bounds on streams sent and received |
//! | `raft_multi_turn_seconds_total` | gauge (a running total, per `phase`) | the driver's wall time by phase of its turns: `receive`, `ticks`, `requests`, `send`, `flush`, `idle` |
//! | `raft_multi_wal_records_total`, `raft_multi_wal_fsyncs_total`, `raft_multi_wal_operations_total` | counter | the shared WAL's records, fsyncs (one per flush that wrote), group operations |
//! | `raft_multi_wal_checkpoints_total`, `raft_multi_wal_checkpoints_deferred_total`, `raft_multi_wal_compactions_total` | counter | its checkpoints written and deferred; prefixes dropped |
//! | `raft_multi_wal_sync_seconds_total` | gauge (a running total) | the time its fsyncs took |
//! | `raft_multi_wal_bytes` | gauge | bytes the WAL spans from its head |
//! | `raft_multi_host_steps_total`, `raft_multi_host_quiesces_total`, `raft_multi_host_wakes_total`, `raft_multi_host_quiet_messages_total`, `raft_multi_host_ticks_deferred_total` | counter | the host's group steps; groups quiesced and woken; messages a quiesced group took without waking; ticks deferred |
//! | `raft_multi_host_campaigns_held_total`, `raft_multi_host_peers_lost_total`, `raft_multi_host_woken_by_peer_loss_total` | counter | elections held back by `max_campaigns`; peers declared down; groups woken for it |
//! | `raft_multi_host_unknown_group_dropped_total`, `raft_multi_host_misaddressed_dropped_total` | counter | envelopes dropped: for a group not hosted; not for this node |

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use metrics::{Label, counter, gauge};

use crate::multi::GroupId;
use crate::node::NodeMetrics;
use crate::types::{NodeId, Role};

mod label;
#[cfg(all(feature = "net", feature = "persistence"))]
pub(crate) mod multi;

pub use label::{ClusterLabel, LabelError, MAX_CLUSTER_LABEL_BYTES};

/// What was last published for each node of each cluster label (none for
/// a publisher without one) and group (none but for a group's own series),
/// across publications (a runtime publishes every 10 ticks).
type Key = (Option<ClusterLabel>, NodeId, Option<GroupId>);

static PUBLISHED: Mutex<BTreeMap<Key, Published>> = Mutex::new(BTreeMap::new());

/// One node's publications so far.
#[derive(Default)]
struct Published {
    /// Per counter name: the last value the node reported, and the sum of
    /// what it had reported before each time its counts started again.
    counters: BTreeMap<&'static str, (u64, u64)>,
    /// The followers whose gauges were last published.
    peers: Vec<NodeId>,
}

impl Published {
    /// The value to publish for counter `name` when the node reports
    /// `value`: a value below the last one means the counts started again
    /// from zero, and the last one is carried into the offset.
    fn monotonic(&mut self, name: &'static str, value: u64) -> u64 {
        let (last, offset) = self.counters.entry(name).or_insert((0, 0));
        if value < *last {
            *offset = offset.saturating_add(*last);
        }
        *last = value;
        offset.saturating_add(value)
    }
}

/// Publishes with the labels it was given: a [`ClusterLabel`] or none.
/// Cheap to clone; the free functions [`publish_node`] and
/// `publish_runtime` are those of a publisher without a label.
///
/// ```
/// use raft_io::telemetry::{ClusterLabel, Publisher};
///
/// let east = Publisher::new().cluster(ClusterLabel::new("east")?);
/// east.publish_node(&raft_io::NodeMetrics::default()); // raft_term{cluster="east",node="0"}, ...
/// # Ok::<(), raft_io::telemetry::LabelError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Publisher {
    cluster: Option<ClusterLabel>,
    group: Option<GroupId>,
}

impl Publisher {
    /// A publisher of series labelled `node` (and `peer`) only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `cluster="<label>"` to every series published.
    pub fn cluster(mut self, label: ClusterLabel) -> Self {
        self.cluster = Some(label);
        self
    }

    /// Adds `group="<id>"` to every series published: for a node that is
    /// one replica of one group among the many its process hosts (the
    /// many-groups runtime's per-group mode, `MultiRuntime::metrics_per_group`,
    /// features `net` and `persistence`). Counters are carried per group.
    pub fn group(mut self, group: GroupId) -> Self {
        self.group = Some(group);
        self
    }

    /// The cluster label, if any.
    pub fn cluster_label(&self) -> Option<&ClusterLabel> {
        self.cluster.as_ref()
    }

    /// The group label, if any.
    pub fn group_label(&self) -> Option<GroupId> {
        self.group
    }

    /// The labels of every series of `node`: `cluster` (if set), `node`,
    /// `group` (if set).
    fn labels(&self, node: NodeId) -> Vec<Label> {
        let mut labels = Vec::with_capacity(4);
        if let Some(c) = &self.cluster {
            labels.push(Label::new("cluster", c.as_str().to_owned()));
        }
        labels.push(Label::new("node", node.to_string()));
        if let Some(g) = self.group {
            labels.push(Label::new("group", g.to_string()));
        }
        labels
    }

    /// Runs `f` on what was published for `node` under these labels.
    fn with_published<T>(&self, node: NodeId, f: impl FnOnce(&mut Published) -> T) -> T {
        // A panic while the lock was held left nothing half-written that
        // matters more than the next publication: the map is used as it is.
        let mut published = PUBLISHED.lock().unwrap_or_else(PoisonError::into_inner);
        f(published.entry((self.cluster.clone(), node, self.group)).or_default())
    }

    /// Publishes `m` through the installed `metrics` recorder.
    pub fn publish_node(&self, m: &NodeMetrics) {
        let labels = self.labels(m.node);
        let role = match m.role {
            Role::Follower => 0.0,
            Role::PreCandidate => 1.0,
            Role::Candidate => 2.0,
            Role::Leader => 3.0,
        };
        let gauges = [
            ("raft_term", m.term as f64),
            ("raft_role", role),
            ("raft_leader", m.leader.unwrap_or(0) as f64),
            ("raft_commit_index", m.commit_index as f64),
            ("raft_applied_index", m.applied_index as f64),
            ("raft_last_index", m.last_index as f64),
            ("raft_snapshot_index", m.snapshot_index as f64),
            ("raft_writes_pending", m.writes_pending as f64),
            ("raft_messages_held", m.messages_held as f64),
        ];
        for (name, value) in gauges {
            gauge!(name, labels.iter()).set(value);
        }
        let counters = node_counters(m);
        let fsyncs = m.log_fsyncs.map(|n| ("raft_log_fsyncs_total", n));
        self.with_published(m.node, |published| {
            set_counters(published, &labels, counters.iter().chain(&fsyncs));
            forget_peers(published, &labels, m);
        });
        if let Some(t) = m.log_sync_time {
            // A counter of seconds, as Prometheus names it; kept as a gauge
            // so the fraction survives.
            gauge!("raft_log_sync_seconds_total", labels.iter()).set(t.as_secs_f64());
        }
        for p in &m.peers {
            let labels = with_peer(&labels, p.id);
            gauge!("raft_peer_match_index", labels.iter()).set(p.match_index as f64);
            gauge!("raft_peer_lag", labels.iter()).set(p.lag as f64);
        }
    }

    /// Publishes the counters of node `id`'s runtime through the installed
    /// `metrics` recorder.
    #[cfg(feature = "net")]
    pub fn publish_runtime(&self, id: NodeId, s: &crate::runtime::RuntimeStats) {
        let labels = self.labels(id);
        let counters = [
            ("raft_runtime_steps_total", s.steps),
            ("raft_runtime_ticks_total", s.ticks),
            ("raft_runtime_batches_total", s.batches),
            ("raft_runtime_applied_total", s.applied),
            ("raft_runtime_reads_total", s.reads),
        ];
        self.with_published(id, |published| set_counters(published, &labels, &counters));
    }
}

/// Publishes `m` through the installed `metrics` recorder, with no
/// cluster label ([`Publisher::publish_node`] of [`Publisher::new`]).
pub fn publish_node(m: &NodeMetrics) {
    Publisher::new().publish_node(m);
}

/// Publishes a runtime's counters through the installed `metrics` recorder,
/// with no cluster label ([`Publisher::publish_runtime`] of
/// [`Publisher::new`]).
#[cfg(feature = "net")]
pub fn publish_runtime(id: NodeId, s: &crate::runtime::RuntimeStats) {
    Publisher::new().publish_runtime(id, s);
}

/// How many counters every node reports ([`node_counters`]).
const NODE_COUNTERS: usize = 16;

/// The counters of `m` that every node reports (`log_fsyncs`, optional,
/// apart), by series name.
fn node_counters(m: &NodeMetrics) -> [(&'static str, u64); NODE_COUNTERS] {
    [
        ("raft_proposals_total", m.proposals),
        ("raft_proposals_refused_total", m.proposals_refused),
        ("raft_leader_changes_total", m.leader_changes),
        ("raft_elections_total", m.elections),
        ("raft_messages_received_total", m.messages_received),
        ("raft_messages_sent_total", m.messages_sent),
        ("raft_messages_dropped_total", m.dropped_messages),
        ("raft_heartbeats_skipped_total", m.heartbeats_skipped),
        ("raft_lease_reads_total", m.lease_reads),
        ("raft_follower_regressions_total", m.follower_regressions),
        ("raft_log_syncs_total", m.log_syncs),
        ("raft_snapshots_sent_total", m.snapshots_sent),
        ("raft_snapshot_bytes_sent_total", m.snapshot_bytes_sent),
        ("raft_snapshots_installed_total", m.snapshots_installed),
        ("raft_snapshot_bytes_received_total", m.snapshot_bytes_received),
        ("raft_snapshots_taken_total", m.snapshots_taken),
    ]
}

/// `labels` and `peer="<id>"`.
fn with_peer(labels: &[Label], peer: NodeId) -> Vec<Label> {
    let mut out = labels.to_vec();
    out.push(Label::new("peer", peer.to_string()));
    out
}

/// Sets each counter, labelled with `labels`, to its absolute value,
/// carried past the restarts of the counts `published` saw.
fn set_counters<'a>(
    published: &mut Published,
    labels: &[Label],
    counters: impl IntoIterator<Item = &'a (&'static str, u64)>,
) {
    for &(name, value) in counters {
        counter!(name, labels.iter()).absolute(published.monotonic(name, value));
    }
}

/// Sets to 0 the per-follower gauges of the followers published last time
/// and not in `m` (the node stepped down, or they left), then remembers
/// `m`'s.
fn forget_peers(published: &mut Published, labels: &[Label], m: &NodeMetrics) {
    if published.peers.iter().eq(m.peers.iter().map(|p| &p.id)) {
        return;
    }
    for &gone in published.peers.iter().filter(|&&id| m.peers.iter().all(|p| p.id != id)) {
        let labels = with_peer(labels, gone);
        gauge!("raft_peer_match_index", labels.iter()).set(0.0);
        gauge!("raft_peer_lag", labels.iter()).set(0.0);
    }
    published.peers.clear();
    published.peers.extend(m.peers.iter().map(|p| p.id));
}
