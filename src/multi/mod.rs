//! Many Raft groups in one process (`docs/PROTOCOL.md` §10): the
//! [`MultiNode`] host, sans-I/O like [`RaftNode`](crate::RaftNode).
//!
//! A host owns one [`RaftNode`](crate::RaftNode) per group this node is a
//! replica of, keyed by [`GroupId`]. It takes events addressed to a group
//! ([`MultiNode::step`]), envelopes from other hosts
//! ([`MultiNode::receive`]) and its own clock ([`MultiNode::tick`]), and
//! returns [`HostAction`]s: each group's actions tagged with the group, and
//! [`Envelope`]s to send. A group inside the host is exactly a lone
//! `RaftNode` with the same configuration; the host adds five things around
//! the groups, never inside them:
//!
//! * **quiescence**: a group with nothing to do stops ticking on every
//!   replica (no timers, no heartbeats) until something addresses it;
//! * **liveness per peer**: one ping per pair of nodes per heartbeat
//!   interval, however many groups; a peer silent for more than
//!   `peer_timeout` ticks wakes every quiesced group it leads here, which
//!   then elects a new leader;
//! * **campaign pacing**: at most [`HostConfig::max_campaigns`] groups
//!   campaign at once, so thousands of groups that lose their leaders
//!   together elect in turn instead of overloading the node;
//! * **leadership balancing** ([`MultiNode::rebalance`]);
//! * **one copy of each configuration**: groups whose configurations are
//!   equal read one shared copy (when a group is created and when its
//!   configuration changes), so checking a message's sender against a
//!   cold group's configuration does not miss the cache.
//!
//! Writes: run every group in the asynchronous storage mode on one shared
//! log (`raft_io::log::shared`, feature `persistence`) and make a host
//! turn's writes durable with one fsync before reporting them with
//! [`MultiNode::step`]`(group, Event::Persisted(token))`.

mod balance;
mod campaigns;
mod config;
mod envelope;
mod error;
mod group_map;
mod host;
#[cfg(test)]
mod layout_tests;
mod quiesce;
mod receive;
#[cfg(test)]
mod shared_configs_tests;
mod stats;

pub use balance::plan_transfers;
pub use config::{DEFAULT_MAX_CAMPAIGNS, HostConfig};
pub use envelope::{Envelope, EnvelopeBody};
pub use error::MultiError;
pub(crate) use group_map::GroupMap;
pub use host::{HostAction, MultiNode};
pub use stats::HostStats;

/// Identifies a Raft group across the nodes that replicate it. 0 is
/// invalid.
pub type GroupId = u64;
