//! Building a [`Cluster`]: its first nodes, the nodes it adds later, and
//! the configuration each node starts with (the simulator's choices, then
//! the user's `configure`), refused when it is invalid.

use super::*;

impl Cluster<HashChain> {
    /// A cluster whose nodes run [`HashChain`] state machines.
    pub fn new(config: SimConfig) -> Self {
        Self::with_state_machines(config, |_| HashChain::default())
    }
}

impl<S: StateMachine> Cluster<S> {
    /// A cluster whose node `id` runs the state machine `make(id)` (called
    /// again on every restart: state machines are volatile).
    ///
    /// # Panics
    ///
    /// If [`SimConfig::configure`] makes a node's [`RaftConfig`] invalid;
    /// [`try_with_state_machines`](Self::try_with_state_machines) refuses it
    /// instead.
    pub fn with_state_machines(config: SimConfig, make: impl FnMut(NodeId) -> S + 'static) -> Self {
        Self::try_with_state_machines(config, make).unwrap_or_else(|e| panic!("raft-io simulator: {e}"))
    }

    /// As [`with_state_machines`](Self::with_state_machines), but a
    /// [`RaftConfig`] that [`SimConfig::configure`] makes invalid is refused
    /// with [`ScenarioError::InvalidConfig`], naming the node and the
    /// field: that of a node of the cluster, or that of a node the fault
    /// schedules may add later as a joining node (ids up to 9).
    pub fn try_with_state_machines(
        config: SimConfig,
        make: impl FnMut(NodeId) -> S + 'static,
    ) -> std::result::Result<Self, ScenarioError> {
        let ids: Vec<NodeId> = (1..=config.nodes as NodeId).collect();
        let mut cluster = Self {
            net: Network::new(mix(config.seed, 0x6e65_7477), config.network),
            rng: Rng::new(mix(config.seed, 0x636c_7573)),
            checker: config.checks.then(Checker::default),
            trace: Trace::new(config.trace),
            cfg: config,
            nodes: Vec::new(),
            make: Box::new(make),
            queue: BinaryHeap::new(),
            in_flight: Vec::new(),
            free_slots: Vec::new(),
            seq: 0,
            now: 0,
            reads: Vec::new(),
            followups: Vec::new(),
            actions: Vec::new(),
            recorded: Vec::new(),
            recent: std::collections::VecDeque::new(),
            range: Vec::new(),
            queries: Vec::new(),
            tickets: Vec::new(),
            last_proposed: None,
            applied_terms: std::collections::HashMap::new(),
            writes: Vec::new(),
            next_ticket: 0,
            stats: SimStats::default(),
            hooks: crate::sim::user::Hooks::default(),
            failure: None,
            halted: false,
            outputs: std::collections::HashMap::new(),
            capture: None,
        };
        for &id in &ids {
            let raft = RaftConfig::new(id, ids.iter().copied());
            cluster.spawn(id, raft).map_err(|e| invalid_config(id, e))?;
        }
        // The nodes the schedules add join mid-run: a configuration `add_node`
        // would refuse there is refused now, before anything ran.
        let room = cluster.nodes.first().and_then(|n| n.node.as_ref()).map_or(u64::MAX, |n| n.log().max_step_bytes());
        for id in ids.len() as NodeId + 1..=crate::sim::schedule::MAX_NODES as NodeId {
            let raft = cluster.node_config(id, RaftConfig::joining(id));
            raft.validate_for(room).map_err(|e| invalid_config(id, e))?;
        }
        Ok(cluster)
    }

    /// Adds node `id` as a node joining the running cluster (it starts with
    /// no configuration; add it with a membership change).
    ///
    /// # Panics
    ///
    /// If [`SimConfig::configure`] makes node `id`'s [`RaftConfig`] invalid
    /// ([`try_with_state_machines`](Self::try_with_state_machines) checks
    /// the ids up to 9 before the run).
    pub fn add_node(&mut self, id: NodeId) {
        if self.slot(id).is_none() {
            if let Err(e) = self.spawn(id, RaftConfig::joining(id)) {
                panic!("raft-io simulator: {}", invalid_config(id, e));
            }
            let ids = self.ids();
            self.net.joined(id, &ids);
        }
    }

    /// Node `id`'s configuration: `raft` with the seed, the hand-over and
    /// the storage mode the simulator chooses, adjusted by the user's
    /// `configure`.
    fn node_config(&self, id: NodeId, raft: RaftConfig) -> RaftConfig {
        // Every node of a run applies the same way, by the seed: each of
        // the two hand-overs (`Apply`, `ApplyRange`) runs under every fault
        // (before the user's `configure`, which may choose).
        let ranges = mix(self.cfg.seed, crate::sim::APPLY_RANGES_SALT) & 1 == 1;
        let raft = (self.cfg.configure)(raft.seed(mix(self.cfg.seed, id)).apply_ranges(ranges));
        if self.cfg.async_storage { raft.async_storage(true) } else { raft }
    }

    /// Starts node `id` on a fresh log; refused, with nothing started, if
    /// the node refuses its configuration. A restart reuses the
    /// configuration accepted here.
    pub(super) fn spawn(&mut self, id: NodeId, raft: RaftConfig) -> Result<()> {
        let raft = self.node_config(id, raft);
        let log = SimLog::for_node(self.cfg.durable, self.cfg.seed, id, self.cfg.checks);
        let log = if raft.get_async_storage() { log.with_async_writes() } else { log };
        let node = RaftNode::with_log(raft.clone(), log)?;
        let skew = self.cfg.tick_skew;
        let factor = 1.0 + skew * (2.0 * (self.rng.next_u64() as f64 / u64::MAX as f64) - 1.0);
        let period = ((TICK as f64) * factor).round().max(1.0) as u64;
        let sm = (self.make)(id);
        if let Some(c) = self.checker.as_mut() {
            let _ = c.restart(id, node.log());
        }
        let pos = self.nodes.partition_point(|n| n.id < id);
        self.nodes.insert(
            pos,
            SimNode {
                id,
                config: raft,
                node: Some(node),
                down: None,
                sm,
                period,
                pause: None,
                disk: crate::sim::disk::Disk::default(),
            },
        );
        self.schedule(period, Due::Tick(id));
        Ok(())
    }
}

/// Node `id`'s configuration refused, as the simulator reports it. Any
/// other error starting a node on a fresh log is the simulator's or its
/// disk's, not the user's: it panics as it always did.
fn invalid_config(id: NodeId, e: Error) -> ScenarioError {
    match e {
        Error::InvalidConfig { field, reason } => ScenarioError::InvalidConfig { node: id, field, reason },
        other => panic!("raft-io simulator: node {id} failed to start: {other}"),
    }
}
