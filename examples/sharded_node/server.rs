//! The client server of `sharded_node`: runs each request against the
//! many-groups runtime's handle and words the reply.

use std::net::TcpListener;

use raft_io::runtime::RuntimeError;
use raft_io::runtime::multi::MultiHandle;

use crate::kv::{self, Kv};
use crate::line_server;
use crate::protocol::{self, Request};

/// What a connection handler needs.
#[derive(Clone)]
pub struct Server {
    pub handle: MultiHandle<Kv>,
}

impl Server {
    /// Accepts connections until the listener fails.
    pub fn serve(self, listener: TcpListener, limits: line_server::ClientLimits) {
        line_server::serve(listener, "sharded_node", limits, move |line| match protocol::parse(line) {
            Err(reply) => reply,
            Ok(request) => self.execute(request),
        });
    }

    fn execute(&self, request: Request) -> String {
        let h = &self.handle;
        match request {
            // Acknowledged once the group has committed and applied it.
            Request::Put(group, key, value) => match h.propose(group, kv::put(key.as_bytes(), value.as_bytes())) {
                Ok(_) => "OK".into(),
                Err(e) => self.error(e, true),
            },
            Request::Get(group, key) => match h.read(group, move |s: &Kv| s.get(key.as_bytes())) {
                Ok(Some(v)) => format!("VALUE {}", String::from_utf8_lossy(&v)),
                Ok(None) => "NOTFOUND".into(),
                Err(e) => self.error(e, false),
            },
            Request::Leader(group) => match h.status(group) {
                Ok(s) => match s.leader {
                    Some(id) => format!("LEADER {id}"),
                    None => "ERR no leader known; retry".into(),
                },
                Err(e) => self.error(e, false),
            },
            Request::Leads => match h.groups() {
                Ok(groups) => {
                    let led = groups.into_iter().filter(|&g| h.status(g).is_ok_and(|s| s.leader == Some(s.id)));
                    led.fold("LEADS".to_owned(), |out, g| format!("{out} {g}"))
                }
                Err(e) => self.error(e, false),
            },
        }
    }

    /// The reply to a failed request; `write`: a proposal, whose outcome
    /// may be unknown.
    fn error(&self, e: RuntimeError, write: bool) -> String {
        match e {
            RuntimeError::NotLeader { leader: Some(l), .. } if l != self.handle.id() => format!("REDIRECT {l}"),
            RuntimeError::NotLeader { .. } => "ERR no leader known; retry".into(),
            RuntimeError::UnknownGroup(g) => format!("ERR unknown group {g}"),
            e if write && e.outcome_unknown() => format!("ERR outcome unknown: {e}"),
            e => format!("ERR {e}"),
        }
    }
}
