//! Shared helpers for the HTTP end-to-end tests: a plain-HTTP upstream on 127.0.0.1 that
//! counts what reaches it, a `markgate serve` with an HTTP listener on a free port, and raw
//! exchanges for what curl will not send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::smtp::Setup;
use super::{free_port, wait_for, Server};

/// A plain HTTP/1.1 server on 127.0.0.1 answering `200 upstream got N bytes` to every
/// request (reading its Content-Length body), counting them; one thread per connection.
pub struct Upstream {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counter = counter.clone();
                std::thread::spawn(move || serve_upstream(stream, &counter));
            }
        });
        Upstream { addr, hits }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn serve_upstream(mut stream: TcpStream, hits: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let chunked = head.contains("transfer-encoding: chunked");
        let mut body = buf.split_off(end + 4);
        if chunked {
            // Read to the terminating chunk (the tests' chunked bodies are small).
            while !body.windows(5).any(|w| w == b"0\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
        } else {
            while body.len() < length {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
        }
        hits.fetch_add(1, Ordering::SeqCst);
        let reply = format!("upstream got {} bytes", body.len());
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
        buf.clear();
    }
}

/// A [`Setup`] (certificates, policy copy, config) with the HTTP listener on a free port and
/// two workers, the admin listener on a free port, and the record store in the temp dir.
pub struct HttpSetup {
    pub setup: Setup,
    pub http: u16,
    pub admin: u16,
    pub smtp: u16,
}

impl std::ops::Deref for HttpSetup {
    type Target = Setup;
    fn deref(&self) -> &Setup {
        &self.setup
    }
}

impl HttpSetup {
    /// `http`: `[http]` keys, then `[[http.route]]` / `[[http.address_range]]` tables (and
    /// any other tables, such as `[delivery.routes.*]`).
    pub fn new(http: &str) -> HttpSetup {
        let setup = Setup::new("", None);
        let port = setup.http(&format!("workers = 2\n{http}"));
        let admin = free_port();
        let this = HttpSetup {
            smtp: setup.port,
            setup,
            http: port,
            admin,
        };
        let d = this.path().display().to_string();
        this.edit(
            "[tls]\n",
            &format!("[records]\npath = \"{d}/records.sqlite\"\n[tls]\n"),
        );
        this.edit(
            "[admin]\nenabled = false\n",
            &format!(
                "[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"test-token-0123456789\"\n"
            ),
        );
        this
    }

    /// Start `markgate serve` and wait until `/readyz` says ready.
    pub fn serve(&self) -> Server {
        let mut server = Server::start(self.path(), &self.path().join("markgate.toml"));
        let ready = wait_for(Duration::from_secs(20), || {
            if server.child.try_wait().ok().flatten().is_some() {
                return Some(false);
            }
            (super::curl(&[&format!("http://127.0.0.1:{}/readyz", self.admin)]).0 == 200)
                .then_some(true)
        });
        assert_eq!(
            ready,
            Some(true),
            "markgate did not become ready:\n{}",
            server.log_text()
        );
        server
    }

    /// Replace `from` (which must be there) by `to` in the config.
    pub fn edit(&self, from: &str, to: &str) {
        let path = self.path().join("markgate.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        assert!(config.contains(from), "{from:?} not in the config");
        std::fs::write(&path, config.replacen(from, to, 1)).unwrap();
    }

    /// `/readyz`: status and body.
    pub fn readyz(&self) -> (u16, String) {
        super::curl(&[&format!("http://127.0.0.1:{}/readyz", self.admin)])
    }

    /// `http://127.0.0.1:PORT`, for curl's `-x`.
    pub fn proxy(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }
}

/// Send `request` as is on a new connection to `port`; what comes back, up to the first
/// complete response (by Content-Length), the server closing, or 5 s.
pub fn raw(port: u16, request: &[u8]) -> String {
    raw_responses(port, request, 1)
}

/// Like [`raw`], up to `count` complete responses.
pub fn raw_responses(port: u16, request: &[u8], count: usize) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while complete_responses(&out) < count {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How many complete responses with a Content-Length (or none: no body) `buf` holds.
fn complete_responses(buf: &[u8]) -> usize {
    let mut count = 0;
    let mut rest = buf;
    while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if rest.len() < end + 4 + length {
            break;
        }
        rest = &rest[end + 4 + length..];
        count += 1;
    }
    count
}

/// The status and JSON body of the first response in `reply`.
pub fn json_reply(reply: &str) -> (u16, serde_json::Value) {
    let status = reply
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {reply:?}"));
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {reply:?}"));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "not JSON: {reply:?}"
    );
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(body.len());
    let json = serde_json::from_str(&body[..length.min(body.len())])
        .unwrap_or_else(|e| panic!("{e}: {reply:?}"));
    (status, json)
}
