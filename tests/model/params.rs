//! The parameters of one model configuration: the cluster, the budgets of
//! each kind of action, and the bounds. Validated before a run: a
//! configuration whose state space would explode is refused with an
//! estimate of its size.

use std::fmt;

use raft_io::NodeId;
use raft_io::sim::model::ModelCluster;

/// The one membership change a configuration may make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangePlan {
    /// Add the joining node as a learner, then promote it.
    AddAndPromote(NodeId),
    /// Add the joining node as a learner (one change).
    AddLearner(NodeId),
    /// Remove a voter.
    Remove(NodeId),
    /// Replace voter `out` by the joining node `into` in one change
    /// (`MembershipChange::Replace`): two voters altered, so through a
    /// joint configuration, which the leader leaves by itself.
    Replace {
        /// The voter that leaves.
        out: NodeId,
        /// The joining node that becomes a voter.
        into: NodeId,
    },
}

/// One model configuration.
#[derive(Clone, Debug)]
pub struct Params {
    /// A name for reports.
    pub name: &'static str,
    /// The nodes and their Raft configuration.
    pub cluster: ModelCluster,
    /// Ticks, all nodes together.
    pub ticks: u8,
    /// Ticks of a leader in an untimed configuration. Commit notices wait
    /// for the leader's tick (PROTOCOL.md §4.4), so without these (or a
    /// read, whose round carries the commit index) an untimed configuration
    /// never tells the follower whose answer committed the last entry that
    /// it committed: that follower never applies it. With a heartbeat
    /// interval of two ticks
    /// ([`commit_notices`](Self::commit_notices)), one such tick sends the
    /// notices of what committed since the last, unanswered, and no
    /// heartbeat.
    pub leader_ticks: u8,
    /// Election timeouts fired directly (`Event::Campaign`).
    pub timeouts: u8,
    /// Crash-restarts.
    pub crashes: u8,
    /// Messages lost.
    pub drops: u8,
    /// Messages delivered twice.
    pub duplicates: u8,
    /// Client writes accepted.
    pub proposals: u8,
    /// Client reads issued.
    pub reads: u8,
    /// Leadership transfers asked of a leader.
    pub transfers: u8,
    /// Application snapshots taken (each by any node, at its applied index,
    /// compacting its log behind it).
    pub compactions: u8,
    /// The membership change, if any.
    pub change: Option<ChangePlan>,
    /// States where a node's term exceeds this are not explored.
    pub max_term: u64,
    /// States where a log holds more entries than this are not explored.
    pub max_log: u64,
    /// Check the bounded liveness property (costly: a fault-free run from
    /// every state).
    pub liveness: bool,
    /// Start the exploration from a settled leader instead of the fresh
    /// cluster: a fixed, fault-free prefix (every node ticks once per round,
    /// in id order, and every message is delivered at once, in order) runs
    /// until one leader is followed by every node and all of them know its
    /// no-op committed. The budgets count from there; the prefix is part of
    /// every counterexample (its steps come first). It lets a timed
    /// configuration (lease reads need check-quorum and ticks) spend its
    /// budget after the first election, which alone takes seven ticks or
    /// more with the vote cooldown of lease reads (PROTOCOL.md §8.2).
    pub warm_start: bool,
    /// The largest estimated state count accepted.
    pub limit: f64,
}

/// A configuration refused before it runs.
#[derive(Debug, PartialEq)]
pub enum ParamsError {
    /// A value out of range.
    Invalid(String),
    /// The estimated state space is larger than the limit.
    TooLarge {
        /// The estimate.
        estimate: f64,
        /// The limit.
        limit: f64,
    },
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(why) => write!(f, "invalid model parameters: {why}"),
            Self::TooLarge { estimate, limit } => write!(
                f,
                "the model would explore about {estimate:.1e} states, over the limit of {limit:.1e}: lower a \
                 budget (ticks, leader ticks, timeouts, crashes, drops, duplicates, proposals, reads, transfers, compactions), the node count or the \
                 network capacity, or raise the limit (RAFT_IO_MODEL_LIMIT)"
            ),
        }
    }
}

impl Params {
    /// A configuration of `voters` with every budget at zero.
    pub fn new(name: &'static str, voters: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            name,
            cluster: ModelCluster::new(voters),
            ticks: 0,
            leader_ticks: 0,
            timeouts: 0,
            crashes: 0,
            drops: 0,
            duplicates: 0,
            proposals: 0,
            reads: 0,
            transfers: 0,
            compactions: 0,
            change: None,
            max_term: 8,
            max_log: 8,
            liveness: false,
            warm_start: false,
            limit: std::env::var("RAFT_IO_MODEL_LIMIT").ok().and_then(|v| v.parse().ok()).unwrap_or(3e7),
        }
    }

    /// A rough estimate of the number of distinct states, from factors
    /// measured on the configurations of `docs/TESTING.md`: each budgeted
    /// action multiplies the space (an election by about 60, a write by 9,
    /// a read by 23, and a write with a read by 15 more, since the read may
    /// fall anywhere in the write's exchanges; a leader tick by 4, a
    /// transfer by 30, a compaction by 10; the asynchronous storage mode multiplies each
    /// election and write by 2.5 more), and a larger network or cluster
    /// multiplies it again. An order of magnitude, not a bound.
    pub fn estimate(&self) -> f64 {
        let pow = |base: f64, n: u8| base.powi(i32::from(n));
        let c = &self.cluster;
        let nodes = c.ids().count() as f64;
        let mut e = 25.0
            * pow(60.0, self.timeouts)
            * pow(3.0, self.ticks)
            * pow(4.0, self.leader_ticks)
            * pow(9.0, self.proposals)
            * pow(23.0, self.reads)
            * pow(10.0, self.crashes)
            * pow(5.0, self.drops)
            * pow(5.0, self.duplicates)
            * pow(30.0, self.transfers)
            * pow(10.0, self.compactions);
        if self.proposals > 0 && self.reads > 0 {
            e *= 15.0;
        }
        if c.async_storage {
            // Each write may finish anywhere after its step.
            e *= pow(2.5, self.timeouts + self.proposals);
        }
        e *= match self.change {
            None => 1.0,
            Some(ChangePlan::AddAndPromote(_)) => 27.0,
            Some(ChangePlan::AddLearner(_)) => 9.0,
            Some(ChangePlan::Remove(_)) => 5.0,
            Some(ChangePlan::Replace { .. }) => 27.0,
        };
        let exchanges = f64::from(self.timeouts)
            + f64::from(self.ticks) / 3.0
            + f64::from(self.leader_ticks)
            + f64::from(self.proposals + self.reads + self.transfers);
        e * (c.capacity as f64 / 4.0).max(1.0).powf(2.0 * exchanges) * (nodes / 3.0).max(1.0).powi(6)
    }

    /// One leader tick that sends commit notices only: the heartbeat
    /// interval is raised to two ticks (and the election timeout above it,
    /// which an untimed configuration never reaches: only leaders tick).
    pub fn commit_notices(mut self) -> Self {
        self.leader_ticks = 1;
        self.cluster.heartbeat = 2;
        self.cluster.election_timeout = (3, 4);
        self
    }

    /// Refuses parameters out of range and configurations estimated above
    /// the limit.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let invalid = |why: String| Err(ParamsError::Invalid(why));
        let c = &self.cluster;
        let nodes = c.ids().count();
        if !(1..=5).contains(&nodes) {
            return invalid(format!("{nodes} nodes: the model runs 1 to 5"));
        }
        if c.capacity == 0 || c.capacity > 16 {
            return invalid(format!("network capacity {}: must be 1 to 16", c.capacity));
        }
        for id in c.ids() {
            if let Err(e) = c.raft_config(id).validate() {
                return invalid(format!("node {id}: {e}"));
            }
        }
        if self.ticks > 0 && self.timeouts > 0 {
            return invalid("a configuration is either timed (ticks) or untimed (timeouts), not both".into());
        }
        if self.ticks > 0 && self.leader_ticks > 0 {
            return invalid(
                "a timed configuration ticks its leaders already: leader ticks are for untimed ones".into(),
            );
        }
        match self.change {
            Some(ChangePlan::AddAndPromote(id) | ChangePlan::AddLearner(id)) if !c.joining.contains(&id) => {
                return invalid(format!("node {id} is added but is not a joining node"));
            }
            Some(ChangePlan::Remove(id)) if !c.voters.contains(&id) => {
                return invalid(format!("node {id} is removed but is not a voter"));
            }
            Some(ChangePlan::Replace { out, into }) if !c.voters.contains(&out) || !c.joining.contains(&into) => {
                return invalid(format!("node {out} must be a voter and node {into} a joining node"));
            }
            _ => {}
        }
        if self.max_term == 0 || self.max_log == 0 {
            return invalid("max_term and max_log must be at least 1".into());
        }
        let estimate = self.estimate();
        if estimate > self.limit {
            return Err(ParamsError::TooLarge { estimate, limit: self.limit });
        }
        Ok(())
    }
}
