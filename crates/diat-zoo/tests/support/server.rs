//! A small HTTP/1.1 file server on 127.0.0.1 with scripted faults, for the download tests.
//!
//! Every response closes its connection. Range requests (`bytes=N-`, `bytes=N-M`) and
//! `If-Range` (against the file's ETag) are honoured. A path can be given a queue of faults; each
//! request to it takes the next one (an empty queue serves normally).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do with one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and a short text body.
    Status(u16),
    /// Send the head and `n` body bytes, then reset the connection (RST).
    ResetAfter(usize),
    /// Send the head (full Content-Length) and `n` body bytes, then close normally.
    Truncate(usize),
    /// Like `Truncate`, but stop at byte `n` of the file, wherever the response starts: a
    /// resumed request (`Range: bytes=N-` with N >= n) gets the head and no body byte at all.
    TruncateAt(usize),
    /// Send the body `chunk` bytes at a time, one chunk every `every`.
    Trickle { chunk: usize, every: Duration },
    /// Send the head, then nothing for this long, then close.
    Stall(Duration),
    /// `302 Found` to this location.
    Redirect(String),
    /// `416 Range Not Satisfiable`.
    Status416,
    /// Ignore Range: always `200` with the whole body.
    IgnoreRange,
    /// Claim `Content-Encoding: gzip`.
    Gzip,
    /// Replace the file (new bytes and ETag) and then serve normally.
    Replace(Vec<u8>, String),
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub accept_encoding: Option<String>,
}

#[derive(Default)]
struct State {
    files: HashMap<String, (Vec<u8>, String)>,
    faults: HashMap<String, VecDeque<Fault>>,
    seen: Vec<Seen>,
}

/// The server; it runs until the test process ends.
#[derive(Clone)]
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl TestServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &st);
                });
            }
        });
        Self { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn serve(&self, path: &str, body: Vec<u8>) {
        let etag = format!(
            "\"{}-{}\"",
            body.len(),
            body.iter().take(64).map(|&b| u64::from(b)).sum::<u64>()
        );
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.to_string(), (body, etag));
    }

    pub fn script(&self, path: &str, faults: Vec<Fault>) {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert(path.to_string(), faults.into());
    }

    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    pub fn total_requests(&self) -> usize {
        self.state.lock().unwrap().seen.len()
    }
}

fn handle(mut conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let (fault, file) = {
        let mut st = state.lock().unwrap();
        st.seen.push(Seen {
            path: path.clone(),
            range: headers.get("range").cloned(),
            if_range: headers.get("if-range").cloned(),
            accept_encoding: headers.get("accept-encoding").cloned(),
        });
        let fault = st.faults.get_mut(&path).and_then(VecDeque::pop_front);
        if let Some(Fault::Replace(body, etag)) = &fault {
            st.files.insert(path.clone(), (body.clone(), etag.clone()));
        }
        (fault, st.files.get(&path).cloned())
    };
    let simple = |conn: &mut TcpStream,
                  status: &str,
                  extra: &str,
                  body: &str|
     -> std::io::Result<()> {
        write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )?;
        conn.flush()
    };
    match &fault {
        Some(Fault::Status(code)) => {
            return simple(
                &mut conn,
                &format!("{code} Scripted"),
                "",
                &format!("scripted error {code} body"),
            );
        }
        Some(Fault::Redirect(to)) => {
            return simple(&mut conn, "302 Found", &format!("Location: {to}\r\n"), "");
        }
        Some(Fault::Status416) => {
            let len = file.as_ref().map_or(0, |f| f.0.len());
            return simple(
                &mut conn,
                "416 Range Not Satisfiable",
                &format!("Content-Range: bytes */{len}\r\n"),
                "",
            );
        }
        _ => {}
    }
    let Some((body, etag)) = file else {
        return simple(&mut conn, "404 Not Found", "", "no such file");
    };
    let len = body.len();
    let mut start = 0usize;
    let mut end = len; // exclusive
    let mut partial = false;
    let range_ok = !matches!(fault, Some(Fault::IgnoreRange))
        && headers.get("if-range").is_none_or(|v| *v == etag);
    if let (Some(r), true) = (headers.get("range"), range_ok)
        && let Some((a, b)) = r.strip_prefix("bytes=").and_then(|s| s.split_once('-'))
    {
        let a: usize = a.parse().unwrap_or(0);
        if a >= len {
            return simple(
                &mut conn,
                "416 Range Not Satisfiable",
                &format!("Content-Range: bytes */{len}\r\n"),
                "",
            );
        }
        start = a;
        if let Ok(b) = b.parse::<usize>() {
            end = (b + 1).min(len);
        }
        partial = true;
    }
    let slice = &body[start..end];
    let mut head = if partial {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}\r\n",
            end - 1
        )
    } else {
        "HTTP/1.1 200 OK\r\n".to_string()
    };
    head.push_str(&format!(
        "Content-Length: {}\r\nContent-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\nETag: {etag}\r\nConnection: close\r\n",
        slice.len()
    ));
    if matches!(fault, Some(Fault::Gzip)) {
        head.push_str("Content-Encoding: gzip\r\n");
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    match fault {
        Some(Fault::ResetAfter(n)) => {
            conn.write_all(&slice[..n.min(slice.len())])?;
            conn.flush()?;
            std::thread::sleep(Duration::from_millis(50));
            socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO))?;
            drop(conn);
            Ok(())
        }
        Some(Fault::Truncate(n)) => {
            conn.write_all(&slice[..n.min(slice.len())])?;
            conn.flush()?;
            conn.shutdown(std::net::Shutdown::Both)
        }
        Some(Fault::TruncateAt(n)) => {
            conn.write_all(&slice[..n.saturating_sub(start).min(slice.len())])?;
            conn.flush()?;
            conn.shutdown(std::net::Shutdown::Both)
        }
        Some(Fault::Trickle { chunk, every }) => {
            for c in slice.chunks(chunk) {
                conn.write_all(c)?;
                conn.flush()?;
                std::thread::sleep(every);
            }
            Ok(())
        }
        Some(Fault::Stall(d)) => {
            conn.flush()?;
            std::thread::sleep(d);
            Ok(())
        }
        _ => {
            conn.write_all(slice)?;
            conn.flush()
        }
    }
}
