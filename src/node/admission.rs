//! Which messages a node looks at, before the term rules of Raft apply:
//! the defence against a single message taking a cluster's availability
//! away (the policy is normative in `docs/PROTOCOL.md`, "Terms from
//! messages").
//!
//! * **Term jumps.** A message may raise this node's term by at most
//!   [`MAX_TERM_JUMP`]; one further ahead is dropped. An honest node only
//!   lags by the elections it missed, far fewer than 2^32, so it still
//!   follows a newer leader; a stranger or a damaged peer cannot push the
//!   cluster to [`MAX_TERM`](crate::MAX_TERM), and a node that did reach it
//!   cannot drag the others there.
//! * **Strangers.** A sender that is in no configuration this node knows may
//!   be a member added after this node's latest configuration (this node
//!   lags), so the messages such a member sends to a lagging node — a
//!   leader's append, heartbeat and snapshot, a candidate's (pre-)vote
//!   request — are handled as from anyone. Everything else from a stranger
//!   (answers to requests this node never sent it, `TimeoutNow`, reads,
//!   removal notices) is dropped before its term is looked at.
//! * **Removed nodes.** A (pre-)vote request from a node outside both the
//!   configuration in effect and the committed one is answered with a
//!   [`RemovalNotice`]; the request itself is still handled (this node may
//!   be the one that lags). A node that receives a notice for a
//!   configuration at least as new as any it knows stops campaigning and
//!   reports [`Action::Removed`], until a newer configuration that includes
//!   it reaches it (its id was added back).

use super::{Action, RaftNode, Why, observe};
use crate::log::RaftLog;
use crate::message::{Message, MessageBody, RemovalNotice};
use crate::types::{MAX_TERM_JUMP, NodeId, Role};

impl<L: RaftLog> RaftNode<L> {
    /// Whether `m` may be handled at all (see the module docs). A message
    /// refused here is counted as dropped and changes nothing.
    pub(super) fn admissible(&self, m: &Message) -> bool {
        if m.term > self.term.saturating_add(MAX_TERM_JUMP) {
            return false;
        }
        match m.body {
            MessageBody::Append(_)
            | MessageBody::Heartbeat(_)
            | MessageBody::Snapshot(_)
            | MessageBody::Vote(_)
            | MessageBody::PreVote(_) => true,
            // A leader's peers are the members of its configuration in
            // effect (a follower has none): asked first, as every answer
            // a leader receives comes from one of them.
            _ => {
                let peer = self.peer_index(m.from).is_some();
                debug_assert!(!peer || self.configs.knows(m.from), "a peer outside every known configuration");
                peer || self.configs.knows(m.from)
            }
        }
    }

    /// Answers a (pre-)vote request from a node that the committed
    /// configuration does not include, and that the configuration in effect
    /// does not include either, with the index of that committed
    /// configuration.
    pub(super) fn notify_if_removed(&mut self, from: NodeId) {
        if self.configs.effective().contains(from) {
            return;
        }
        let (config_index, committed) = self.configs.committed(self.commit);
        if config_index == 0 || committed.contains(from) {
            return;
        }
        let body = MessageBody::Removed(RemovalNotice { config_index });
        self.send(from, body);
    }

    /// A member says a committed configuration removed this node. Believed
    /// only when it is at least as new as every configuration this node
    /// knows (a member that merely lags behind the configuration that
    /// added this node is ignored).
    pub(super) fn on_removal_notice(&mut self, n: RemovalNotice) {
        if self.removed.is_some() || n.config_index < self.configs.effective_index() || n.config_index == 0 {
            self.drop_message();
            return;
        }
        self.removed = Some(n.config_index);
        observe!(
            tracing::Level::WARN,
            node = self.id,
            term = self.term,
            config_index = n.config_index,
            "removed from the cluster"
        );
        self.because(Why::RemovalNotice);
        if self.role != Role::Follower {
            self.become_follower(self.term, None);
        }
        self.fail_all_reads(super::ReadFailure::NotMember);
        self.out.push(Action::Removed { config_index: n.config_index });
    }
}
