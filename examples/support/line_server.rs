//! What the node examples with a line-based client protocol share
//! (`kv_node`, `sharded_node`): a TCP server with a thread per connection
//! that reads one request line at a time, at most [`MAX_LINE`] bytes, and
//! writes one reply line per request. Clients are bounded
//! ([`ClientLimits`]): at most so many at once, each closed when silent (or
//! not reading its replies) for too long, so that clients cannot use up the
//! node's threads and file descriptors, which its log needs too.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The longest request line, newline included.
pub const MAX_LINE: usize = 4096;

/// How many clients a node serves, and for how long a silent one.
#[derive(Clone, Copy, Debug)]
pub struct ClientLimits {
    /// Connections served at once; one more is answered `ERR too many
    /// clients` and closed (`--max-clients`, default 256: each takes two
    /// file descriptors, well under the usual limit of 1024).
    pub max: usize,
    /// A connection with no request for this long, or whose replies are
    /// not read for this long, is closed (`--client-idle-ms`, default 30 s).
    pub idle: Duration,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self { max: 256, idle: Duration::from_secs(30) }
    }
}

/// Accepts connections on `listener` for good, each served on its own
/// thread: every request line is answered with `handle(line)`, given
/// the line without its newline (nor a `\r` before it). A line that is not
/// UTF-8 is answered with an `ERR` and the connection goes on; a line
/// longer than [`MAX_LINE`] bytes gets an `ERR` and closes the connection;
/// a client that goes away mid-line has nothing done for it. Beyond
/// `limits.max` clients a connection gets an `ERR` and is closed; a client
/// idle for `limits.idle` is closed. An accept that fails (out of file
/// descriptors, say) is retried after a pause that doubles up to a second,
/// and logged at the 1st, 2nd, 4th, … failure in a row. `name` prefixes
/// what is logged.
pub fn serve<H>(listener: TcpListener, name: &'static str, limits: ClientLimits, handle: H)
where
    H: Fn(&str) -> String + Clone + Send + 'static,
{
    let active = Arc::new(AtomicUsize::new(0));
    let mut failures = 0u64;
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => {
                failures = 0;
                stream
            }
            Err(e) => {
                failures += 1;
                if failures.is_power_of_two() {
                    eprintln!("{name}: accept: {e} ({failures} in a row)");
                }
                std::thread::sleep(Duration::from_millis(10 << failures.min(7)));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= limits.max {
            active.fetch_sub(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = writeln!(stream, "ERR too many clients ({}); try again later", limits.max);
            continue;
        }
        let (handle, done) = (handle.clone(), Arc::clone(&active));
        let spawned = std::thread::Builder::new().name(format!("{name}-client")).spawn(move || {
            connection(stream, name, limits.idle, handle);
            done.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            // No thread for it: the connection is dropped (closed).
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn connection(stream: TcpStream, name: &str, idle: Duration, handle: impl Fn(&str) -> String) {
    let peer = stream.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
    if stream.set_read_timeout(Some(idle)).and_then(|()| stream.set_write_timeout(Some(idle))).is_err() {
        return;
    }
    // A reply is one write: sent at once, not held for an acknowledgement.
    let _ = stream.set_nodelay(true);
    let Ok(write_half) = stream.try_clone() else { return };
    let mut out = std::io::BufWriter::new(write_half);
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        // At most MAX_LINE bytes: a client cannot make the node buffer more.
        let read = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line);
        let reply = match read {
            Ok(0) => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                eprintln!("{name}: client {peer} idle for {idle:?}; closed");
                return;
            }
            Err(e) => {
                eprintln!("{name}: client {peer}: {e}");
                return;
            }
            Ok(_) if line.last() != Some(&b'\n') && line.len() < MAX_LINE => {
                // The client went away mid-request: nothing was done.
                eprintln!("{name}: client {peer} disconnected mid-request ({} bytes); ignored", line.len());
                return;
            }
            Ok(_) if line.last() != Some(&b'\n') => {
                let _ = writeln!(out, "ERR request line longer than {MAX_LINE} bytes; closing");
                let _ = out.flush();
                return;
            }
            Ok(_) => match std::str::from_utf8(&line[..line.len() - 1]) {
                Err(_) => "ERR malformed request: not UTF-8".to_owned(),
                Ok(text) => handle(text.strip_suffix('\r').unwrap_or(text)),
            },
        };
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}
