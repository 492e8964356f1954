//! [`StateMachine`]: the application the runtime replicates — the crate's
//! one state machine trait ([`crate::StateMachine`]), shared with the
//! simulator (feature `sim`), so the state machine a deployment runs is the
//! one its simulations test.
//!
//! The runtime's driver thread owns it and calls it in log order:
//! [`apply`](StateMachine::apply) for every committed command (its output
//! answers the proposer), [`restore`](StateMachine::restore) when the node
//! installs a snapshot, [`snapshot`](StateMachine::snapshot) when the
//! node's snapshot policy asks for one. Reads run closures against it on
//! the same thread (see [`RaftHandle::read`](super::RaftHandle::read)).
//! Keep each call short: while it runs, the node neither ticks nor answers
//! its peers.

pub use crate::state_machine::StateMachine;
