//! What the tests over real loopback sockets share: a listen address with a
//! port the OS picks, and a bounded wait.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `127.0.0.1:0`: the OS picks the port.
pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Waits for `cond` with a generous deadline (a hang guard, not a timing
/// assertion).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}
