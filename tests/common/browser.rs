//! Headless Chromium driven over the DevTools protocol, for tests that use a page the way a
//! person does: open it, type into a form, press a button, read the DOM, take a screenshot.
//! The protocol runs over a WebSocket; this speaks the little of RFC 6455 it needs (masked
//! text frames out, text frames in) on a blocking socket with timeouts, so no test waits
//! forever.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Headless Chromium that stays on this machine: no sandbox (tests may run as root), no
/// GPU, and none of its own traffic (updates, sync, QUIC).
pub const HEADLESS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// How long one protocol call or page load may take.
const STEP: Duration = Duration::from_secs(30);

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    socket: TcpStream,
    next_id: u64,
    /// Events received while waiting for answers, oldest first.
    events: Vec<Value>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Start headless Chromium with an empty profile and attach to its first tab.
    pub fn start() -> Browser {
        super::smtp::require("chromium");
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromium")
            .args(HEADLESS)
            .args([
                "--window-size=1280,1600",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium must be installed (tests/deps.sh)");
        let port_file = profile.path().join("DevToolsActivePort");
        let port: u16 = super::wait_for(STEP, || {
            std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next()?.trim().parse().ok())
        })
        .expect("chromium did not open its DevTools port");
        let path = super::wait_for(STEP, || page_socket_path(port))
            .expect("chromium has no page to attach to");
        let socket = websocket_connect(port, &path);
        let mut browser = Browser {
            child,
            _profile: profile,
            socket,
            next_id: 0,
            events: Vec::new(),
        };
        browser.call("Page.enable", json!({}));
        browser.call("Network.enable", json!({}));
        browser
    }

    /// Send a protocol command and wait for its answer (`result`); panics on an error answer.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        write_frame(&mut self.socket, message.as_bytes());
        let deadline = Instant::now() + STEP;
        while Instant::now() < deadline {
            let message = self.receive();
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method} failed: {message}");
                return message["result"].clone();
            }
            self.events.push(message);
        }
        panic!("no answer to {method} within {STEP:?}");
    }

    fn receive(&mut self) -> Value {
        let text = read_message(&mut self.socket);
        serde_json::from_slice(&text).expect("DevTools sends JSON")
    }

    /// Send these headers with every request (as an authenticating client would).
    pub fn set_headers(&mut self, headers: Value) {
        self.call("Network.setExtraHTTPHeaders", json!({ "headers": headers }));
    }

    /// Run `action`, then wait until the page it leads to has loaded.
    fn and_wait_for_load(&mut self, action: impl FnOnce(&mut Browser)) {
        self.events.clear();
        action(self);
        let deadline = Instant::now() + STEP;
        while !self
            .events
            .iter()
            .any(|e| e["method"] == "Page.loadEventFired")
        {
            assert!(Instant::now() < deadline, "the page did not load");
            let event = self.receive();
            self.events.push(event);
        }
    }

    /// Open `url` and wait until it has loaded.
    pub fn open(&mut self, url: &str) {
        self.and_wait_for_load(|b| {
            b.call("Page.navigate", json!({ "url": url }));
        });
    }

    /// The value of a JavaScript expression evaluated by DevTools in the page (the page's
    /// own content security policy does not apply to DevTools).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// The page's DOM as HTML.
    pub fn dom(&mut self) -> String {
        self.eval("document.documentElement.outerHTML")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Type `text` into the field `selector`, as keyboard input.
    pub fn type_into(&mut self, selector: &str, text: &str) {
        let found = self.eval(&format!(
            "(() => {{ const e = document.querySelector({s}); if (!e) return false; e.focus(); return true; }})()",
            s = json!(selector)
        ));
        assert_eq!(
            found,
            json!(true),
            "no {selector} on the page:\n{}",
            self.dom()
        );
        self.call("Input.insertText", json!({ "text": text }));
    }

    /// Press the button `selector` and wait for the page it leads to.
    pub fn press(&mut self, selector: &str) {
        let script = format!(
            "(() => {{ const e = document.querySelector({s}); if (!e) return false; e.click(); return true; }})()",
            s = json!(selector)
        );
        self.and_wait_for_load(|b| {
            let found = b.eval(&script);
            assert_eq!(found, json!(true), "no {selector} on the page");
        });
    }

    /// A PNG screenshot of the whole page, written to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let shot = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

/// The WebSocket path of the browser's first page (`/devtools/page/ID`).
fn page_socket_path(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(STEP)).ok()?;
    write!(
        s,
        "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    // DevTools keeps the connection open: read the head, then Content-Length bytes.
    let mut reader = BufReader::new(s);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let body = String::from_utf8(body).ok()?;
    let pages: Vec<Value> = serde_json::from_str(&body).ok()?;
    let url = pages.iter().find(|p| p["type"] == "page")?["webSocketDebuggerUrl"]
        .as_str()?
        .to_string();
    Some(url.split_once(&format!("127.0.0.1:{port}"))?.1.to_string())
}

fn websocket_connect(port: u16, path: &str) -> TcpStream {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket.set_read_timeout(Some(STEP)).unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: bWFya2dhdGUtdGVzdHMtMDE=\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(socket.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(
        status.contains(" 101 "),
        "DevTools refused the WebSocket: {status}"
    );
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    assert!(
        reader.buffer().is_empty(),
        "no frame is sent before the first call"
    );
    socket
}

/// One masked text frame (a client must mask, RFC 6455 §5.3).
fn write_frame(socket: &mut TcpStream, payload: &[u8]) {
    let mask: [u8; 4] = rand::random();
    let mut frame = vec![0x81u8];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 65536 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    socket.write_all(&frame).unwrap();
}

/// One whole message (continuation frames joined); pings are answered.
fn read_message(socket: &mut TcpStream) -> Vec<u8> {
    let mut message = Vec::new();
    loop {
        let mut head = [0u8; 2];
        socket.read_exact(&mut head).expect("DevTools frame");
        let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                socket.read_exact(&mut b).unwrap();
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                socket.read_exact(&mut b).unwrap();
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        socket.read_exact(&mut payload).unwrap();
        match opcode {
            0x9 => {
                let mut pong = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                pong.extend_from_slice(&payload);
                socket.write_all(&pong).unwrap();
                continue;
            }
            0x8 => panic!("DevTools closed the connection"),
            _ => message.extend_from_slice(&payload),
        }
        if fin {
            return message;
        }
    }
}
