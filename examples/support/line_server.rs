//! What the node examples with a line-based client protocol share
//! (`kv_node`, `sharded_node`): a TCP server with a thread per connection
//! that reads one request line at a time, at most [`MAX_LINE`] bytes, and
//! writes one reply line per request.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};

/// The longest request line, newline included.
pub const MAX_LINE: usize = 4096;

/// Accepts connections on `listener` until it fails, each served on its
/// own thread: every request line is answered with `handle(line)`, given
/// the line without its newline (nor a `\r` before it). A line that is not
/// UTF-8 is answered with an `ERR` and the connection goes on; a line
/// longer than [`MAX_LINE`] bytes gets an `ERR` and closes the connection;
/// a client that goes away mid-line has nothing done for it. `name`
/// prefixes what is logged.
pub fn serve<H>(listener: TcpListener, name: &'static str, handle: H)
where
    H: Fn(&str) -> String + Clone + Send + 'static,
{
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let handle = handle.clone();
                std::thread::spawn(move || connection(stream, name, handle));
            }
            Err(e) => eprintln!("{name}: accept: {e}"),
        }
    }
}

fn connection(stream: TcpStream, name: &str, handle: impl Fn(&str) -> String) {
    let peer = stream.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
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
