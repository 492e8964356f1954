//! The client server of `kv_node`: a thread per connection, one reply line
//! per request line.

use std::net::TcpListener;
use std::sync::PoisonError;

use raft_io::runtime::{RaftHandle, RuntimeError, address_bytes};
use raft_io::{Membership, MembershipChange, NodeId, ReadKind};

use crate::line_server;
use crate::protocol::{self, Request};
use crate::store::{self, Directory, Store};

/// What a connection handler needs.
#[derive(Clone)]
pub struct Server {
    pub handle: RaftHandle<Store>,
    pub directory: Directory,
    /// Where `BACKUP` writes (`--backup-dir`).
    pub backup_dir: Option<std::path::PathBuf>,
}

impl Server {
    /// Accepts connections until the listener fails.
    pub fn serve(self, listener: TcpListener, limits: line_server::ClientLimits) {
        line_server::serve(listener, "kv_node", limits, move |line| match protocol::parse(line) {
            Err(reply) => reply,
            Ok(request) => self.execute(request),
        });
    }

    fn execute(&self, request: Request) -> String {
        let h = &self.handle;
        match request {
            Request::Get(key) => match h.read(move |s: &Store| s.map.get(&key).cloned()) {
                Ok(Some(v)) => format!("VALUE {v}"),
                Ok(None) => "NOTFOUND".into(),
                Err(e) => self.error(e),
            },
            Request::Put(key, value) => self.write(|| h.propose(store::put(&key, &value)).map(drop)),
            Request::Del(key) => self.write(|| h.propose(store::delete(&key)).map(drop)),
            Request::Join(id, addr) => {
                let change = MembershipChange::AddVoterAt { id, address: address_bytes(addr) };
                match self.leader_only(|| h.change_membership(change)) {
                    Ok(m) => format!("OK {}", members(&m)),
                    // Idempotent: a join whose reply was lost (its outcome
                    // unknown to the joiner) is answered alike when repeated.
                    Err(reply) => match h.status() {
                        Ok(s) if s.membership.address(id) == Some(&address_bytes(addr)) => {
                            format!("OK {}", members(&s.membership))
                        }
                        _ => reply,
                    },
                }
            }
            Request::Remove(id) => match self.leader_only(|| h.change_membership(MembershipChange::Remove(id))) {
                Ok(_) => "OK".into(),
                Err(reply) => reply,
            },
            Request::Members => match h.status() {
                Ok(s) => format!("MEMBERS {}", members(&s.membership)),
                Err(e) => self.error(e),
            },
            Request::Stats => match h.metrics() {
                Ok(m) => format!("STATS lease_reads={}", m.lease_reads),
                Err(e) => self.error(e),
            },
            Request::Backup(name) => match self.backup(&name) {
                Ok(reply) | Err(reply) => reply,
            },
            Request::Leader => match h.leader() {
                Some(id) => format!("LEADER {id} {}", self.client_addr(id).unwrap_or_else(|| "?".into())),
                None => "ERR no leader known; retry".into(),
            },
        }
    }

    /// An online backup, written to `<name>.backup` in the backup directory:
    /// taken on the leader only, once a ReadIndex round has confirmed that
    /// it still leads.
    ///
    /// A backup holds what this node knows committed. A follower may lag
    /// behind the leader, and a leader cut off from its quorum may have been
    /// deposed while its successor acknowledged writes it never saw: either
    /// would write a backup silently missing acknowledged writes. The read
    /// returns once the node has applied through the read index (every
    /// write acknowledged before it), and its commit index never goes back,
    /// so the backup taken after it holds all of them. It is a ReadIndex
    /// round even with `--lease-reads`: a backup is rare, and this way it
    /// leans on no bound on clock drift.
    fn backup(&self, name: &str) -> Result<String, String> {
        let dir = self.backup_dir.as_ref().ok_or("ERR backups are off (start the node with --backup-dir)")?;
        self.leader_only(|| self.handle.read_with(ReadKind::Index, |_: &Store| ()))?;
        let backup = self.handle.backup().map_err(|e| self.error(e))?;
        let file = dir.join(format!("{name}.backup"));
        crate::backup_file::write_new(&file, &backup.encode()).map_err(|e| format!("ERR {e}"))?;
        Ok(format!("OK {} through index {}", file.display(), backup.last_index()))
    }

    fn write(&self, f: impl FnOnce() -> Result<(), RuntimeError>) -> String {
        match self.leader_only(f) {
            Ok(()) => "OK".into(),
            Err(reply) => reply,
        }
    }

    /// Runs a leader-only request; a follower answers with a redirect
    /// before trying (the handle would refuse it anyway).
    fn leader_only<T>(&self, f: impl FnOnce() -> Result<T, RuntimeError>) -> Result<T, String> {
        if let Some(leader) = self.handle.leader().filter(|&l| l != self.handle.id()) {
            return Err(self.redirect(leader, None));
        }
        f().map_err(|e| self.error(e))
    }

    fn client_addr(&self, id: NodeId) -> Option<String> {
        self.directory.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()
    }

    fn redirect(&self, leader: NodeId, raft: Option<raft_io::transport::PeerAddr>) -> String {
        let raft = raft.map_or_else(String::new, |a| format!(", raft {a}"));
        match self.client_addr(leader) {
            Some(addr) => format!("REDIRECT {addr} (node {leader} leads{raft})"),
            None => {
                format!("ERR not the leader; node {leader} leads{raft}, its client address is not known yet; retry")
            }
        }
    }

    fn error(&self, e: RuntimeError) -> String {
        match e {
            RuntimeError::NotLeader { leader: Some(l), leader_addr } => self.redirect(l, leader_addr),
            RuntimeError::NotLeader { leader: None, .. } => "ERR no leader known; retry".into(),
            e if e.outcome_unknown() => format!("ERR outcome unknown: {e}"),
            e => format!("ERR {e}"),
        }
    }
}

/// `id=raft address` of every member that has one, comma-separated.
fn members(m: &Membership) -> String {
    m.addresses().map(|(id, a)| format!("{id}={}", String::from_utf8_lossy(a))).collect::<Vec<_>>().join(",")
}
