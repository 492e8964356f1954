use raft_io::sim::{Chaos, Cluster, FaultProfile, SimConfig};
fn main() {
    let seed: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let nodes: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let profile = match std::env::args().nth(3).as_deref() {
        Some("e") => FaultProfile::Everything,
        _ => FaultProfile::Membership,
    };
    let mut c = Cluster::new(SimConfig::new(nodes).seed(seed).tick_skew(0.2).trace(60));
    let mut chaos = Chaos::new(profile, seed);
    chaos.run(&mut c, 300);
    let ok = chaos.heal_and_check_liveness(&mut c, 1500);
    println!("ok={ok}");
    for id in c.ids() {
        let n = c.node(id).unwrap();
        let s = n.status();
        println!(
            "n{id}: {:?} t{} leader {:?} commit {} applied {} last {} cfg v{:?} l{:?} o{:?} peers {:?}",
            s.role,
            s.term,
            s.leader,
            s.commit,
            s.applied,
            s.last_index,
            s.membership.voters(),
            s.membership.learners(),
            s.membership.outgoing(),
            s.peers.iter().map(|p| (p.id, p.matched, p.next, p.state)).collect::<Vec<_>>()
        );
    }
    println!("{}", c.trace());
}
