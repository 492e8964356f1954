//! What the process tests share (`tests/kv_node_processes.rs`,
//! `tests/sharded_node_processes.rs`): a node process restartable with the
//! command line that started it and killed with SIGKILL, a free loopback
//! address, and a line-protocol client connection.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A loopback address nothing listens on (yet), for a child process to
/// bind later. Taken below the kernel's ephemeral range (32768 and up on
/// Linux, 49152 and up on macOS): a port the OS hands out for port 0 or for
/// an outgoing connection — which tests running in parallel make by the
/// hundred — could otherwise be taken between this check and the child's
/// bind. Each test process starts at its own place in 20000..30000.
pub fn free_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % 500) * 20;
    for _ in 0..10_000 {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 10_000;
        let port = u16::try_from(20_000 + offset).expect("below 30000");
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return l.local_addr().expect("addr");
        }
    }
    panic!("no free loopback port in 20000..30000");
}

/// One node process: its command line, where its output goes, and the
/// child while it runs. Dropped, it is killed.
pub struct Process {
    pub args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// A process not started yet, logging to `log` (appended across
    /// restarts).
    pub fn new(args: Vec<String>, log: &Path) -> Self {
        Process { args, log: log.to_owned(), child: None }
    }

    /// Starts (or restarts) `bin` with the command line.
    pub fn start(&mut self, bin: &Path) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("process log");
        let child = Command::new(bin)
            .args(&self.args)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        self.child = Some(child);
    }

    /// Whether it was started and not killed since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL on unix: no clean close of anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client connection to one node: one request line, one reply line.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.set_nodelay(true)?;
        Ok(Conn { reader: BufReader::new(s.try_clone()?), writer: s })
    }

    pub fn ask(&mut self, request: &str) -> std::io::Result<String> {
        // One write: the line and its newline in one segment (two small
        // writes wait out the peer's delayed acknowledgement, ~40 ms).
        self.writer.write_all(format!("{request}\n").as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end().to_owned())
    }
}

/// One request on a fresh connection.
pub fn ask_once(addr: SocketAddr, request: &str) -> std::io::Result<String> {
    Conn::open(addr)?.ask(request)
}
