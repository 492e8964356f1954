//! Measures `WalLog::open` of a large log, e.g. with a cold page cache.
//!
//! ```text
//! cargo run --release --features persistence --example wal_recovery -- build DIR 1000000 64
//! for f in DIR/wal/*.wal; do dd if=$f iflag=nocache count=0 status=none; done   # evict it
//! cargo run --release --features persistence --example wal_recovery -- open DIR
//! ```
//!
//! `build DIR N B` writes N entries of 16 bytes, B per step (one record and
//! one sync per step) into a new log at DIR. `open DIR` times the open.

use std::time::Instant;

use raft_io::{Entry, RaftLog, WalLog};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: wal_recovery build DIR ENTRIES BATCH | open DIR";
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["build", dir, n, batch] => {
            let (n, batch): (u64, u64) = (n.parse()?, batch.parse()?);
            let t = Instant::now();
            let mut log = WalLog::open(dir)?;
            let data = bytes::Bytes::from(vec![0x5a; 16]);
            let mut buf = Vec::new();
            while log.last_index() < n {
                let first = log.last_index() + 1;
                let last = (first + batch - 1).min(n);
                buf.extend((first..=last).map(|i| Entry::normal(1, i, data.clone())));
                log.append(&mut buf)?;
                log.sync()?;
            }
            println!("wrote {n} entries, {batch} per sync, in {:?}", t.elapsed());
        }
        ["open", dir] => {
            let t = Instant::now();
            let log = WalLog::open(dir)?;
            let took = t.elapsed();
            let r = log.recovery_report();
            println!("opened {} entries in {} records in {took:?}", log.last_index(), r.records);
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
