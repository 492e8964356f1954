#![cfg(feature = "sim")]
use raft_io::sim::{Chaos, Cluster, FaultProfile, SimConfig};

#[test]
fn smoke() {
    for seed in 0..20 {
        for n in [1, 3, 5] {
            for profile in FaultProfile::ALL {
                let mut c = Cluster::new(SimConfig::new(n).seed(seed));
                let mut chaos = Chaos::new(profile, seed);
                chaos.run(&mut c, 200);
                assert!(chaos.heal_and_check_liveness(&mut c, 2000), "seed {seed} n {n} {profile:?}");
            }
        }
    }
}
