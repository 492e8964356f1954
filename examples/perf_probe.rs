use bytes::Bytes;
use raft_io::sim::{Cluster, SimConfig};
use raft_io::{Action, Event, RaftConfig, RaftNode};
use std::time::Instant;

fn cluster(batch: usize, size: usize, total: u64) -> f64 {
    let mut c = Cluster::with_state_machines(
        SimConfig::new(3)
            .seed(1)
            .checks(false)
            .trace(0)
            .configure(|c| c.max_inflight(256).max_uncommitted_bytes(1 << 30).snapshot_entries(100_000)),
        |_| Count(0),
    );
    let leader = c.elect(1000).unwrap();
    let payload = Bytes::from(vec![7u8; size]);
    let start_idx = c.node(leader).unwrap().last_index();
    let target = start_idx + total;
    let t = Instant::now();
    loop {
        let l = c.node(leader).unwrap();
        let last = l.last_index();
        let slowest = c.ids().iter().map(|&id| c.node(id).unwrap().last_applied()).min().unwrap();
        if slowest >= target {
            break;
        }
        if last < target && last - slowest < 8 * batch as u64 {
            let cmds = (0..batch).map(|_| payload.clone()).collect();
            c.propose_batch(leader, cmds).unwrap();
        } else {
            c.step();
        }
    }
    eprintln!(
        "delivered {} msgs, {} per batch, time {} ticks",
        c.delivered(),
        c.delivered() as f64 / (total as f64 / batch as f64),
        c.now() / 1000
    );
    total as f64 / t.elapsed().as_secs_f64()
}

fn single(total: u64) -> f64 {
    let mut n = RaftNode::new(RaftConfig::single(1)).unwrap();
    while !n.is_leader() {
        n.step(Event::Tick).unwrap().for_each(drop);
    }
    let payload = Bytes::from(vec![7u8; 16]);
    let t = Instant::now();
    let mut applied = 0u64;
    for _ in 0..total / 64 {
        let cmds = (0..64).map(|_| payload.clone()).collect();
        for a in n.step(Event::ProposeBatch(cmds)).unwrap() {
            if let Action::Apply { .. } = a {
                applied += 1;
            }
        }
    }
    assert_eq!(applied, total / 64 * 64);
    t.elapsed().as_nanos() as f64 / applied as f64
}

fn main() {
    sizes();
    if std::env::var("TOTAL").is_err() {
        println!("single batch64: {:.1} ns/entry", single(6_400_000));
    }
    let only: Option<usize> = std::env::args().nth(1).map(|a| a.parse().unwrap());
    let only_batch: Option<usize> = std::env::args().nth(2).map(|a| a.parse().unwrap());
    for (b, s) in [(1, 16), (64, 16), (64, 1024)]
        .into_iter()
        .filter(|(b, s)| only.is_none_or(|o| o == *s) && only_batch.is_none_or(|o| o == *b))
    {
        let total: u64 =
            std::env::var("TOTAL").ok().map(|v| v.parse().unwrap()).unwrap_or(if b == 1 { 100_000 } else { 2_000_000 });
        println!("3-node batch {b} size {s}: {:.0} entries/s", cluster(b, s, total));
    }
}
#[allow(dead_code)]
fn sizes() {
    println!(
        "Message {} Action {} Entry {} Body {}",
        std::mem::size_of::<raft_io::Message>(),
        std::mem::size_of::<Action>(),
        std::mem::size_of::<raft_io::Entry>(),
        std::mem::size_of::<raft_io::MessageBody>()
    );
}

struct Count(u64);
impl raft_io::sim::StateMachine for Count {
    fn apply(&mut self, _i: u64, c: &Bytes) {
        self.0 += c.len() as u64;
    }
    fn snapshot(&self) -> Bytes {
        Bytes::new()
    }
    fn restore(&mut self, _d: &Bytes) {}
    fn digest(&self) -> u64 {
        self.0
    }
}
