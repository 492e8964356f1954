#![cfg(all(unix, feature = "net", feature = "persistence"))]
//! One process per node of the many-groups runtime: three `sharded_node`
//! processes (examples/sharded_node) on loopback ports host [`GROUPS`]
//! groups, a client thread per group keeps writing distinct keys through
//! them, and the process that leads the most groups is killed with SIGKILL
//! while they write. The groups it led must elect new leaders and take
//! writes; it is restarted from its directory with the same command line.
//! Then its directory is made to count: another node is killed (every
//! write then needs the restarted node), the third and the restarted node
//! are killed too, and the restarted node comes back with the node that
//! missed those writes. Every group must take writes in every phase, and
//! every acknowledged write must then be read back, linearizably, from
//! every group on every node. Bad client input and bad command lines get a
//! clear error and change nothing. And a quorum lost for good in every
//! group is recovered from the survivor with `examples/force_voters`.
//!
//! The example binary is built as `tests/kv_node_processes.rs` builds
//! `kv_node` (`support/example_binary.rs`).

#[path = "support/example_binary.rs"]
mod example_binary;
#[path = "support/process.rs"]
mod process;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use process::{Conn, Process, ask_once, free_addr};

/// Generous: a loaded CI machine, debug builds, elections after a kill.
const DEADLINE: Duration = Duration::from_secs(90);

/// The groups every node hosts (ids `1..=GROUPS`).
const GROUPS: u64 = 6;

/// Writes each group must have acknowledged in each phase before the test
/// moves on to the next.
const PER_PHASE: usize = 10;

/// The phases of the test, as the writers see them (an index).
const PHASES: [&str; 5] = [
    "before the kill",
    "while the node that led the most groups was down",
    "after its restart",
    "while another node was down (the restarted node in every quorum)",
    "after a restart of the first node and the down node with the third down",
];

/// One `sharded_node` process, restartable with the command line that
/// started it.
struct Node {
    id: u64,
    client: SocketAddr,
    process: Process,
}

impl Node {
    fn new(id: u64, raft: SocketAddr, peers: &str, base: &Path) -> Self {
        let (client, dir) = (free_addr(), base.join(format!("node-{id}")));
        let args = [
            "--id",
            &id.to_string(),
            "--raft",
            &raft.to_string(),
            "--client",
            &client.to_string(),
            "--data",
            &dir.display().to_string(),
            "--peers",
            peers,
            "--groups",
            &GROUPS.to_string(),
        ]
        .map(str::to_owned)
        .to_vec();
        Node { id, client, process: Process::new(args, &dir.with_extension("log")) }
    }

    fn start(&mut self, bin: &Path) {
        self.process.start(bin);
    }

    fn kill(&mut self) {
        self.process.kill();
    }
}

/// Asks `request` of `addr` until `accept` takes the reply (errors and
/// other replies are retried after a back-off), within [`DEADLINE`].
fn ask_until<T>(addr: SocketAddr, request: &str, mut accept: impl FnMut(&str) -> Option<T>) -> T {
    let give_up = Instant::now() + DEADLINE;
    let mut last = None;
    while Instant::now() < give_up {
        match ask_once(addr, request) {
            Ok(reply) => match accept(&reply) {
                Some(t) => return t,
                None => last = Some(reply),
            },
            Err(e) => last = Some(e.to_string()),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr}: {request:?} not answered as wanted within {DEADLINE:?}; last reply {last:?}");
}

/// The group's leader as `addr` knows it, once it knows one.
fn leader_of(addr: SocketAddr, group: u64) -> u64 {
    ask_until(addr, &format!("LEADER {group}"), |r| r.strip_prefix("LEADER ").and_then(|id| id.parse().ok()))
}

/// The groups the node at `addr` leads.
fn leads(addr: SocketAddr) -> Vec<u64> {
    ask_until(addr, "LEADS", |r| {
        let groups = r.strip_prefix("LEADS")?;
        groups.split_whitespace().map(|g| g.parse().ok()).collect()
    })
}

/// An acknowledged write: its key, value, and the phase it was sent in.
struct Acked {
    key: String,
    value: String,
    phase: usize,
}

/// What the writers share with the test's thread.
struct Writers {
    /// Client addresses by node id (a restarted node keeps its ports).
    clients: BTreeMap<u64, SocketAddr>,
    /// The phase writes are sent in (an index in [`PHASES`]).
    phase: AtomicUsize,
    stop: AtomicBool,
    /// `acked[group - 1][phase]`: writes acknowledged, by phase sent in.
    counts: Vec<[AtomicUsize; PHASES.len()]>,
    /// The acknowledged writes of each group (index `group - 1`).
    acked: Vec<Mutex<Vec<Acked>>>,
}

impl Writers {
    /// Writes distinct keys to `group` until told to stop, following
    /// redirects. A write counts as acknowledged only on `OK`; one whose
    /// outcome is unknown (an `ERR outcome unknown`, a connection lost with
    /// the request sent) is dropped and a new key written.
    fn write(&self, group: u64) {
        // A writer that fails stops the others, and the test.
        let _stop = StopOnDrop(&self.stop);
        let ids: Vec<u64> = self.clients.keys().copied().collect();
        let next = |at: u64| ids[(ids.iter().position(|&id| id == at).unwrap_or(0) + 1) % ids.len()];
        let mut at = ids[group as usize % ids.len()];
        let mut conns: BTreeMap<u64, Conn> = BTreeMap::new();
        let (mut n, mut pending, mut redirects) = (0, None, 0);
        while !self.stop.load(SeqCst) {
            let (key, value, phase) = pending.get_or_insert_with(|| {
                n += 1;
                let phase = self.phase.load(SeqCst);
                (format!("g{group}-k{n:05}"), format!("value-{n}-phase-{phase}"), phase)
            });
            let reply = match conns.get_mut(&at) {
                Some(c) => c.ask(&format!("PUT {group} {key} {value}")),
                None => match Conn::open(self.clients[&at]) {
                    Ok(c) => {
                        conns.insert(at, c);
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            let backoff = match reply {
                Ok(r) if r == "OK" => {
                    let write = Acked { key: key.clone(), value: value.clone(), phase: *phase };
                    self.acked[group as usize - 1].lock().expect("acked").push(write);
                    self.counts[group as usize - 1][*phase].fetch_add(1, SeqCst);
                    pending = None;
                    redirects = 0;
                    false
                }
                Ok(r) if r.starts_with("REDIRECT ") => {
                    let to = r["REDIRECT ".len()..].parse::<u64>().ok().filter(|id| self.clients.contains_key(id));
                    at = to.unwrap_or_else(|| panic!("group {group}: bad redirect {r:?}"));
                    redirects += 1;
                    redirects > 3
                }
                Ok(r) if r.starts_with("ERR outcome unknown") => {
                    pending = None;
                    true
                }
                Ok(r) => {
                    assert!(r.starts_with("ERR "), "group {group}: unexpected reply {r:?}");
                    // Nothing done (no leader known, busy): try another node.
                    at = next(at);
                    true
                }
                Err(_) => {
                    // The node is down, or went down with the request sent:
                    // the outcome is unknown, the key is not reused.
                    conns.remove(&at);
                    pending = None;
                    at = next(at);
                    true
                }
            };
            if backoff {
                redirects = 0;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Waits until every group has [`PER_PHASE`] writes sent in `phase`
    /// acknowledged.
    fn wait_for_acks(&self, phase: usize) {
        assert_eq!(self.phase.load(SeqCst), phase);
        let what = PHASES[phase];
        let give_up = Instant::now() + DEADLINE;
        for (i, counts) in self.counts.iter().enumerate() {
            while counts[phase].load(SeqCst) < PER_PHASE {
                assert!(!self.stop.load(SeqCst), "a writer failed (see its panic)");
                assert!(
                    Instant::now() < give_up,
                    "group {}: {} of {PER_PHASE} writes acknowledged {what} within {DEADLINE:?}",
                    i + 1,
                    counts[phase].load(SeqCst)
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Sets `stop` when dropped, so writers end even when the test panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Reads every acknowledged write of `group` through the node at `addr`
/// (linearizable reads) and checks its value.
fn check_group(id: u64, addr: SocketAddr, group: u64, acked: &[Acked]) {
    let give_up = Instant::now() + DEADLINE;
    let mut conn = None;
    for w in acked {
        loop {
            assert!(Instant::now() < give_up, "node {id}: could not read {} of group {group}", w.key);
            if conn.is_none() {
                conn = Conn::open(addr).ok();
            }
            let reply = match conn.as_mut().map(|c| c.ask(&format!("GET {group} {}", w.key))) {
                Some(Ok(r)) => r,
                _ => {
                    conn = None;
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if let Some(got) = reply.strip_prefix("VALUE ") {
                assert_eq!(got, w.value, "node {id}: group {group}, key {}", w.key);
                break;
            }
            assert_ne!(
                reply, "NOTFOUND",
                "node {id}: group {group}: acknowledged write {}={} (sent in phase {}) lost",
                w.key, w.value, w.phase
            );
            // Not ready (a node catching up after its restart): retry.
            assert!(reply.starts_with("ERR "), "node {id}: unexpected reply {reply:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Bad requests get an `ERR` and change nothing; the connection serves on.
fn bad_input_changes_nothing(nodes: &[Node]) {
    let by_id = |id: u64| nodes.iter().find(|n| n.id == id).expect("a node of ours").client;
    let leader = by_id(leader_of(nodes[0].client, 1));
    let mut c = Conn::open(leader).expect("connect");
    let cases = [
        ("FROB x", "ERR unknown command"),
        ("", "ERR empty request"),
        ("PUT", "ERR malformed request"),
        ("PUT 1 lonely", "ERR malformed request"),
        ("PUT one k v", "ERR malformed request: group \"one\" is not a number"),
        ("PUT -1 k v", "ERR malformed request"),
        ("PUT 99 k v", "ERR unknown group 99"),
        ("PUT 0 k v", "ERR unknown group 0"),
        ("GET 1", "ERR malformed request"),
        ("GET x k", "ERR malformed request"),
        ("GET 99 k", "ERR unknown group 99"),
        ("LEADER 99", "ERR unknown group 99"),
        ("LEADER", "ERR malformed request"),
        ("LEADS 1", "ERR malformed request"),
    ];
    for (request, want) in cases {
        let reply = c.ask(request).expect("a reply");
        assert!(reply.starts_with(want), "{request:?}: {reply:?}, wanted {want:?}");
    }
    // A line over the bound: an error, then the connection is closed.
    let mut long = Conn::open(leader).expect("connect");
    let reply = long.ask(&format!("PUT 1 long {}", "x".repeat(5000))).expect("a reply");
    assert!(reply.starts_with("ERR request line longer"), "{reply:?}");
    // A client that disconnects mid-request: nothing done.
    let mut s = TcpStream::connect(leader).expect("connect");
    s.write_all(b"PUT 1 half-sent value").expect("send");
    drop(s);
    // Nothing was written, in any group (linearizable reads: a write that
    // had been acknowledged would show).
    for g in 1..=GROUPS {
        for key in ["lonely", "k", "long", "half-sent"] {
            assert_eq!(c.ask(&format!("GET {g} {key}")).expect("a reply"), "NOTFOUND", "group {g}, key {key}");
        }
    }
    assert!(c.ask("LEADS").expect("a reply").starts_with("LEADS"), "the connection still serves");
}

/// Three nodes, each naming the three as its peers, started.
fn start_three(bin: &Path, base: &Path) -> Vec<Node> {
    let rafts: Vec<(u64, SocketAddr)> = (1..=3).map(|id| (id, free_addr())).collect();
    let peers = rafts.iter().map(|(id, a)| format!("{id}={a}")).collect::<Vec<_>>().join(",");
    let mut nodes: Vec<Node> = rafts.iter().map(|&(id, raft)| Node::new(id, raft, &peers, base)).collect();
    for n in &mut nodes {
        n.start(bin);
    }
    nodes
}

#[test]
fn three_processes_of_many_groups_survive_sigkill_of_a_leader_and_restart() {
    let started = Instant::now();
    let bin = example_binary::binary("sharded_node");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut nodes = start_three(&bin, tmp.path());
    for g in 1..=GROUPS {
        leader_of(nodes[0].client, g);
    }
    bad_input_changes_nothing(&nodes);

    let writers = Writers {
        clients: nodes.iter().map(|n| (n.id, n.client)).collect(),
        phase: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        counts: (1..=GROUPS).map(|_| Default::default()).collect(),
        acked: (1..=GROUPS).map(|_| Mutex::default()).collect(),
    };
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&writers.stop);
        for g in 1..=GROUPS {
            let writers = &writers;
            s.spawn(move || writers.write(g));
        }
        writers.wait_for_acks(0);

        // SIGKILL the node that leads the most groups, while they write.
        let led: Vec<Vec<u64>> = nodes.iter().map(|n| leads(n.client)).collect();
        let victim = (0..nodes.len()).max_by_key(|&i| led[i].len()).expect("three nodes");
        let (victim_id, victim_led) = (nodes[victim].id, &led[victim]);
        assert!(!victim_led.is_empty(), "the node leading the most groups leads some: {led:?}");
        nodes[victim].kill();
        writers.phase.store(1, SeqCst);
        eprintln!("killed node {victim_id}, the leader of groups {victim_led:?} (leads: {led:?})");

        // The groups it led elect new leaders; every group takes writes.
        let survivor = nodes.iter().find(|n| n.process.is_running()).expect("a survivor").client;
        for &g in victim_led {
            let give_up = Instant::now() + DEADLINE;
            while leader_of(survivor, g) == victim_id {
                assert!(Instant::now() < give_up, "group {g}: still led by the killed node {victim_id}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        writers.wait_for_acks(1);

        // Restart it from its directory, with the same command line.
        nodes[victim].start(&bin);
        writers.phase.store(2, SeqCst);
        writers.wait_for_acks(2);

        // Then make its directory count. Another node (`a`) goes down: every
        // write acknowledged now is on the restarted node's disk and on the
        // third node's (`b`). Then `b` and the restarted node are killed and
        // the restarted node comes back with `a`, which missed those writes:
        // among the live nodes only its directory has them.
        let (a, b) = match victim {
            0 => (1, 2),
            1 => (0, 2),
            _ => (0, 1),
        };
        nodes[a].kill();
        writers.phase.store(3, SeqCst);
        writers.wait_for_acks(3);
        nodes[b].kill();
        nodes[victim].kill();
        writers.phase.store(4, SeqCst);
        nodes[a].start(&bin);
        nodes[victim].start(&bin);
        writers.wait_for_acks(4);
        nodes[b].start(&bin);
    });

    let acked: Vec<Vec<Acked>> = writers.acked.into_iter().map(|a| a.into_inner().expect("acked")).collect();
    let total: usize = acked.iter().map(Vec::len).sum();
    std::thread::scope(|s| {
        for n in &nodes {
            for (i, group) in acked.iter().enumerate() {
                s.spawn(move || check_group(n.id, n.client, i as u64 + 1, group));
            }
        }
    });
    eprintln!(
        "{total} acknowledged writes in {GROUPS} groups read back from 3 nodes; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A command line that cannot be used is refused before anything starts,
/// with the flag named and exit status 2.
/// A quorum lost for good in every group (`raft_io::recovery`,
/// PROTOCOL.md §7.4): all three nodes SIGKILLed and two directories
/// destroyed; `examples/force_voters` makes the survivor the only voter of
/// every group in its shared WAL (half of them, then the other half, with
/// `--groups`: the groups not named are left as they are), and restarted
/// with its usual command line it leads every group, serves every
/// acknowledged write and takes new ones.
#[test]
fn every_group_of_a_lost_quorum_is_recovered_from_the_survivor() {
    let bin = example_binary::binary("sharded_node");
    let tool = example_binary::binary("force_voters");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut nodes = start_three(&bin, tmp.path());
    let clients: BTreeMap<u64, SocketAddr> = nodes.iter().map(|n| (n.id, n.client)).collect();
    // A write through `addr`, following redirects, until acknowledged.
    let put = |addr: SocketAddr, group: u64, key: &str| {
        let mut at = addr;
        loop {
            let reply = ask_until(at, &format!("PUT {group} {key} v-{key}"), |r| {
                (r == "OK" || r.starts_with("REDIRECT ")).then(|| r.to_owned())
            });
            match reply.strip_prefix("REDIRECT ").and_then(|id| id.parse::<u64>().ok()) {
                Some(id) => at = clients.get(&id).copied().unwrap_or(addr),
                None => return,
            }
        }
    };
    let mut acked: Vec<Vec<Acked>> = (1..=GROUPS).map(|_| Vec::new()).collect();
    for g in 1..=GROUPS {
        leader_of(nodes[0].client, g);
        for k in 0..3 {
            let key = format!("g{g}-a{k}");
            put(nodes[0].client, g, &key);
            acked[g as usize - 1].push(Acked { value: format!("v-{key}"), key, phase: 0 });
        }
    }
    for n in &mut nodes {
        n.kill();
    }
    for id in [2, 3] {
        std::fs::remove_dir_all(tmp.path().join(format!("node-{id}"))).expect("destroy a node's directory");
    }
    let dir = tmp.path().join("node-1").display().to_string();
    let tool_says = |args: &[&str]| {
        let out = Command::new(&tool).arg(&dir).args(args).output().expect("run force_voters");
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code(), said)
    };
    // A group the WAL does not hold is refused before anything is written.
    let (code, said) = tool_says(&["1", "--groups", "1,99"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("group 99 is not in") && said.contains("no group changed"), "{said}");
    // The first half of the groups, then the rest: a group not named is
    // shown and left as it is.
    let half = GROUPS / 2;
    let first: Vec<String> = (1..=half).map(|g| g.to_string()).collect();
    let (code, shown) = tool_says(&["1", "--groups", &first.join(",")]);
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(shown.matches("voters [1, 2, 3]").count() as u64, GROUPS, "every group shown before: {shown}");
    assert_eq!(shown.matches("voters [1],").count() as u64, half, "the groups named forced: {shown}");
    assert_eq!(shown.matches("(left as it is)").count() as u64, GROUPS - half, "{shown}");
    assert!(shown.lines().last().is_some_and(|l| l == format!("forced voters [1] in {half} groups")), "{shown}");
    let (code, shown) = tool_says(&[]);
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(shown.matches("voters [1],").count() as u64, half, "only the groups named changed: {shown}");
    assert_eq!(shown.matches("voters [1, 2, 3]").count() as u64, GROUPS - half, "{shown}");
    let rest: Vec<String> = (half + 1..=GROUPS).map(|g| g.to_string()).collect();
    let (code, shown) = tool_says(&["1", "--groups", &rest.join(",")]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.lines().last().is_some_and(|l| l == format!("forced voters [1] in {} groups", GROUPS - half)),
        "{shown}"
    );

    let survivor = &mut nodes[0];
    survivor.start(&bin);
    let client = survivor.client;
    let give_up = Instant::now() + DEADLINE;
    while leads(client).len() as u64 != GROUPS {
        assert!(Instant::now() < give_up, "the survivor never led every group");
        std::thread::sleep(Duration::from_millis(100));
    }
    for g in 1..=GROUPS {
        let key = format!("g{g}-b");
        put(client, g, &key);
        acked[g as usize - 1].push(Acked { value: format!("v-{key}"), key, phase: 1 });
        check_group(1, client, g, &acked[g as usize - 1]);
    }
}

#[test]
fn a_bad_command_line_is_refused_naming_the_flag() {
    let bin = example_binary::binary("sharded_node");
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("never");
    let good = ["--id", "1", "--raft", "127.0.0.1:1", "--client", "127.0.0.1:2", "--peers", "1=127.0.0.1:1"];
    let with = |flag: &str, value: &str| -> Vec<String> {
        let mut args: Vec<String> = good.iter().map(|s| (*s).to_owned()).collect();
        match args.iter().position(|a| a == flag) {
            Some(i) => args[i + 1] = value.to_owned(),
            None => args.extend([flag.to_owned(), value.to_owned()]),
        }
        args
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (with("--groups", "0"), "--groups"),
        (with("--groups", "many"), "--groups"),
        (good.iter().map(|s| (*s).to_owned()).collect(), "--groups"),
        (with("--id", "0"), "--id"),
        (with("--raft", "nowhere"), "--raft"),
        (with("--client", "127.0.0.1"), "--client"),
        (with("--peers", "1=127.0.0.1:1,2=x"), "--peers"),
        (with("--peers", "2=127.0.0.1:1"), "--peers"),
        (with("--cluster-id", "-3"), "--cluster-id"),
        (with("--frobnicate", "1"), "--frobnicate"),
    ];
    for (args, named) in cases {
        let mut args = args;
        if named != "--groups" {
            args.extend(["--groups".to_owned(), "6".to_owned()]);
        }
        let out = Command::new(&bin).args(&args).arg("--data").arg(&data).output().expect("run sharded_node");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{args:?}: {err}");
    }
    assert!(!data.exists(), "nothing was created");
}
