//! A real HTTP/1.1 server on the loopback address, for download tests: each path answers with a
//! behaviour a real host shows (the file, with `Range` honoured; a connection cut mid-way; 404;
//! bytes trickling in; a stall). Shared by data's and trainer's tests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How a path answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The bytes, or their tail from a `Range: bytes=N-` request (206).
    File(Vec<u8>),
    /// A 200 announcing all the bytes, then only the first `n` of them and a closed connection.
    CutAfter(Vec<u8>, usize),
    /// 404 Not Found.
    NotFound,
    /// The bytes in `chunk`-byte pieces with `pause` between them.
    Trickle(Vec<u8>, usize, Duration),
    /// A 200 announcing all the bytes, the first `n`, then silence for `pause` and a close.
    StallAfter(Vec<u8>, usize, Duration),
}

/// Each request's path and `Range` header (`None`: none sent), in arrival order.
pub type Requests = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A running server; its thread lives as long as the test process.
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Every request it answered.
    pub ranges: Requests,
}

impl Server {
    /// The URL of `path` on this server, as a `&'static str` (download descriptions hold those).
    pub fn url(&self, path: &str) -> &'static str {
        Box::leak(format!("{}/{path}", self.base).into_boxed_str())
    }
}

/// Starts a server answering `routes` (path without the leading slash → answer).
pub fn serve(routes: Vec<(&str, Answer)>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes: Arc<HashMap<String, Answer>> = Arc::new(
        routes
            .into_iter()
            .map(|(path, answer)| (path.to_string(), answer))
            .collect(),
    );
    let ranges: Requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ranges);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let routes = Arc::clone(&routes);
            let seen = Arc::clone(&seen);
            thread::spawn(move || {
                let _ = answer(stream, &routes, &seen);
            });
        }
    });
    Server { base, ranges }
}

fn answer(
    mut stream: TcpStream,
    routes: &HashMap<String, Answer>,
    seen: &Mutex<Vec<(String, Option<String>)>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }
    seen.lock().unwrap().push((path.clone(), range.clone()));
    let head = |status: &str, length: usize, extra: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {length}\r\nContent-Type: \
             application/octet-stream\r\nConnection: close\r\n{extra}\r\n"
        )
    };
    match routes.get(&path) {
        None | Some(Answer::NotFound) => {
            stream.write_all(head("404 Not Found", 9, "").as_bytes())?;
            stream.write_all(b"not found")?;
        }
        Some(Answer::File(bytes)) => {
            let from = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
            match from {
                Some(from) if from >= bytes.len() => {
                    stream.write_all(head("416 Range Not Satisfiable", 0, "").as_bytes())?;
                }
                Some(from) => {
                    let extra = format!(
                        "Content-Range: bytes {from}-{}/{}\r\n",
                        bytes.len() - 1,
                        bytes.len()
                    );
                    let tail = &bytes[from..];
                    stream.write_all(head("206 Partial Content", tail.len(), &extra).as_bytes())?;
                    stream.write_all(tail)?;
                }
                None => {
                    stream.write_all(head("200 OK", bytes.len(), "").as_bytes())?;
                    stream.write_all(bytes)?;
                }
            }
        }
        Some(Answer::CutAfter(bytes, n)) => {
            stream.write_all(head("200 OK", bytes.len(), "").as_bytes())?;
            stream.write_all(&bytes[..*n])?;
        }
        Some(Answer::Trickle(bytes, chunk, pause)) => {
            stream.write_all(head("200 OK", bytes.len(), "").as_bytes())?;
            for piece in bytes.chunks(*chunk) {
                stream.write_all(piece)?;
                stream.flush()?;
                thread::sleep(*pause);
            }
        }
        Some(Answer::StallAfter(bytes, n, pause)) => {
            stream.write_all(head("200 OK", bytes.len(), "").as_bytes())?;
            stream.write_all(&bytes[..*n])?;
            stream.flush()?;
            thread::sleep(*pause);
        }
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// `len` bytes that differ from any other call's with another `seed`.
pub fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

/// The SHA-256 of `bytes`, hex, as a `&'static str` (download descriptions hold those).
pub fn sha256_hex(bytes: &[u8]) -> &'static str {
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Box::leak(hex.into_boxed_str())
}
