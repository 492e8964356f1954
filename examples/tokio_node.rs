//! Driving `RaftNode`s from a tokio event loop: each node is a task that owns
//! its node and selects over a tick interval, its inbox of peer messages and
//! its client requests. The core is sans-I/O, so this is all the glue an
//! async service needs; tokio is only a dev-dependency of this crate.
//!
//! Run: `cargo run --example tokio_node`

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use raft_io::{Action, Error, Event, Index, Message, NodeId, RaftConfig, RaftNode, Term};
use tokio::sync::{mpsc, oneshot};

/// A client request: propose `command`; the reply comes once it is applied.
struct Propose {
    command: Bytes,
    reply: oneshot::Sender<Result<Index, String>>,
}

/// Every node's inbox, for routing `Action::Send`.
type Peers = BTreeMap<NodeId, mpsc::UnboundedSender<Message>>;

/// One node's task: ticks every 5 ms, steps messages and proposals as they
/// come, carries out the actions, answers proposers when their entry is
/// applied (or lost to a leader change).
async fn run_node(
    mut node: RaftNode,
    peers: Peers,
    mut inbox: mpsc::UnboundedReceiver<Message>,
    mut requests: mpsc::Receiver<Propose>,
    applied_log: mpsc::UnboundedSender<(NodeId, Index, Bytes)>,
) {
    let mut ticker = tokio::time::interval(Duration::from_millis(5));
    let mut waiting: HashMap<Index, (Term, oneshot::Sender<Result<Index, String>>)> = HashMap::new();
    loop {
        let mut replies = Vec::new();
        let step = tokio::select! {
            _ = ticker.tick() => node.step(Event::Tick).map(|a| a.collect::<Vec<_>>()),
            Some(message) = inbox.recv() => node.step(Event::Message(message)).map(|a| a.collect()),
            request = requests.recv() => match request {
                Some(Propose { command, reply }) => {
                    let result = node.step(Event::Propose(command)).map(|a| a.collect::<Vec<_>>());
                    match (&result, node.last_proposal()) {
                        (Ok(_), Some(p)) => {
                            waiting.insert(p.first, (p.term, reply));
                        }
                        // Cannot happen: an accepted proposal went somewhere.
                        (Ok(_), None) => replies.push((reply, Err("proposal not placed".into()))),
                        (Err(e), _) => replies.push((reply, Err(e.to_string()))),
                    }
                    result
                }
                None => return, // every client is gone: stop
            },
        };
        let actions = match step {
            Ok(actions) => actions,
            Err(Error::Halted) => return,
            Err(_) => Vec::new(), // a refused proposal was answered above
        };
        for action in actions {
            match action {
                Action::Send { to, message } => {
                    if let Some(peer) = peers.get(&to) {
                        let _ = peer.send(message);
                    }
                }
                Action::Apply { index, term, command } => {
                    let _ = applied_log.send((node.id(), index, command));
                    if let Some((t, reply)) = waiting.remove(&index) {
                        let _ = reply.send(if t == term { Ok(index) } else { Err("lost to a new leader".into()) });
                    }
                }
                _ => {}
            }
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ids: [NodeId; 3] = [1, 2, 3];
    let (applied_tx, mut applied_rx) = mpsc::unbounded_channel();
    let mut inboxes = BTreeMap::new();
    let mut receivers = BTreeMap::new();
    for id in ids {
        let (tx, rx) = mpsc::unbounded_channel();
        inboxes.insert(id, tx);
        receivers.insert(id, rx);
    }
    let mut clients = BTreeMap::new();
    let mut tasks = Vec::new();
    for id in ids {
        let node = RaftNode::new(RaftConfig::new(id, ids).seed(id))?;
        let (req_tx, req_rx) = mpsc::channel(64);
        clients.insert(id, req_tx);
        let inbox = receivers.remove(&id).ok_or("inbox")?;
        tasks.push(tokio::spawn(run_node(node, inboxes.clone(), inbox, req_rx, applied_tx.clone())));
    }
    drop(applied_tx);

    // Propose through every node until one accepts (the leader); the others
    // refuse with NotLeader.
    let mut committed = 0;
    let mut i = 0;
    while committed < 20 {
        for client in clients.values() {
            let (reply, answer) = oneshot::channel();
            client.send(Propose { command: Bytes::from(format!("set x={i}")), reply }).await?;
            if let Ok(index) = answer.await? {
                committed += 1;
                println!("committed \"set x={i}\" at index {index}");
            }
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(clients);
    for task in tasks {
        task.await?;
    }
    // Every node applied the same commands at the same indexes.
    let mut by_node: BTreeMap<NodeId, Vec<(Index, Bytes)>> = BTreeMap::new();
    while let Some((node, index, command)) = applied_rx.recv().await {
        by_node.entry(node).or_default().push((index, command));
    }
    let reference = by_node.get(&1).cloned().unwrap_or_default();
    let agree = by_node.values().all(|log| log.iter().zip(&reference).all(|(a, b)| a == b));
    assert!(agree, "nodes applied different logs");
    println!("tokio_node: {committed} commands committed; the nodes applied identical logs");
    Ok(())
}
