//! A minimal HTTP/1.1 endpoint for Prometheus text, on std's `TcpListener`
//! (no async runtime), and a scraper for it: shared by the
//! `metrics_prometheus` example and `tests/metrics_scrape.rs`.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Serves `render()` at `GET /metrics` on `listener`, one request per
/// connection, until `stop` is set (then one more connection wakes it).
/// Any other path gets 404, any malformed request 400.
pub fn serve(
    listener: TcpListener,
    render: impl Fn() -> String + Send + 'static,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop.load(Ordering::Acquire) {
                break;
            }
            if let Ok(stream) = stream {
                let _ = answer(stream, &render);
            }
        }
    })
}

fn answer(mut stream: TcpStream, render: &impl Fn() -> String) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    // The request line, then every header up to the blank line (at most
    // 8 KiB in all): closing with unread bytes would reset the connection.
    let mut reader = BufReader::new(&stream).take(8 << 10);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 0 && header != "\r\n" {
        header.clear();
    }
    let (status, body) = match line.split_whitespace().collect::<Vec<_>>()[..] {
        ["GET", "/metrics", _] => ("200 OK", render()),
        ["GET", _, _] => ("404 Not Found", "not found\n".to_owned()),
        _ => ("400 Bad Request", "bad request\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)
}

/// `GET path` on `addr`: the status line and the body.
pub fn get(addr: SocketAddr, path: &str) -> io::Result<(String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((head.lines().next().unwrap_or("").to_owned(), body.to_owned()))
}

/// The value of the series `name{labels}` in Prometheus text, if present
/// (labels written exactly as the exporter does, e.g. `node="1"`).
pub fn value(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = format!("{name}{{{labels}}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.trim().parse().ok())
}
