//! Shared helpers for the SMTP end-to-end tests: a temp dir with dev certificates, a policy
//! copy and a config for `markgate serve`, swaks, a raw TCP client, in-memory sessions, and
//! an aiosmtpd next hop ([`Sink`]).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use markgate::config::Config;
use markgate::policy::Policy;
use markgate::service::gateway::Gateway;
use markgate::service::snapshot::Snapshot;
use markgate::smtp::inbound::{Peer, Session};
use markgate::smtp::queue::spool::{Envelope, Spool};
use markgate::smtp::queue::QueueHandle;
use markgate::smtp::SmtpContext;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::{copy_dir, free_port, shipped_policy, wait_for, Server};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/smtp")
        .join(name)
}

pub fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "{tool} is required for this test: run tests/deps.sh");
}

/// A temp dir with dev certificates, a policy copy and a config; `extra` is appended.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Setup {
    pub fn new(extra: &str, policy_edit: Option<(&str, &str)>) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let status = Command::new(env!("CARGO_BIN_EXE_markgate"))
            .args(["certs", "dev", "--dir"])
            .arg(d.join("certs"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        copy_dir(&shipped_policy(), &d.join("policy"));
        if let Some((from, to)) = policy_edit {
            let p = d.join("policy/markings.toml");
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.contains(from));
            std::fs::write(&p, text.replace(from, to)).unwrap();
        }
        let port = free_port();
        let config = format!(
            r#"[smtp]
listen = "127.0.0.1:{port}"
hostname = "markgate.test"
[policy]
dir = "{d}/policy"
[spool]
dir = "{d}/spool"
[tls]
cert = "{d}/certs/dev-cert.pem"
key = "{d}/certs/dev-key.pem"
ca = "{d}/certs/dev-ca.pem"
signing_key = "{d}/certs/signing-key.pem"
[admin]
enabled = false
[http]
listen = "127.0.0.1:0"
[delivery]
outbox = "{d}/outbox"
retry_initial = "200ms"
retry_max = "500ms"
{extra}
"#,
            d = d.display(),
        );
        std::fs::write(d.join("markgate.toml"), config).unwrap();
        Setup { dir, port }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Append TOML to the end of the config, which is the `[delivery]` section: delivery
    /// keys, then `[delivery.routes.*]` tables.
    pub fn append_config(&self, toml: &str) {
        let config_path = self.path().join("markgate.toml");
        let mut config = std::fs::read_to_string(&config_path).unwrap();
        let last_table = config.lines().rev().find(|l| l.starts_with('['));
        assert!(
            last_table.is_some_and(|t| t.starts_with("[delivery")),
            "{last_table:?}"
        );
        config.push_str(toml);
        std::fs::write(&config_path, config).unwrap();
    }

    /// Add `keys` (TOML lines) to the `[smtp]` section of the config.
    pub fn smtp_keys(&self, keys: &str) {
        let config_path = self.path().join("markgate.toml");
        let config = std::fs::read_to_string(&config_path).unwrap();
        let anchor = "hostname = \"markgate.test\"\n";
        assert!(config.contains(anchor));
        std::fs::write(
            &config_path,
            config.replacen(anchor, &format!("{anchor}{}\n", keys.trim_end()), 1),
        )
        .unwrap();
    }

    /// Give the HTTP gateway a free port and the `[http]` keys and `[[http.route]]` tables in
    /// `toml`; returns the port.
    pub fn http(&self, toml: &str) -> u16 {
        let config_path = self.path().join("markgate.toml");
        let config = std::fs::read_to_string(&config_path).unwrap();
        let anchor = "[http]\nlisten = \"127.0.0.1:0\"\n";
        assert!(config.contains(anchor));
        let port = free_port();
        let http = format!("[http]\nlisten = \"127.0.0.1:{port}\"\n{}\n", toml.trim());
        std::fs::write(&config_path, config.replacen(anchor, &http, 1)).unwrap();
        port
    }

    /// Start `markgate serve` and wait until the SMTP listener is bound. Readiness is read
    /// from the log, not probed with a connection: a probe would hold one of the listener's
    /// connection slots (`smtp.max_connections*`) until the server noticed it had gone.
    pub fn serve(&self) -> Server {
        self.serve_with_env(&[])
    }

    /// [`Setup::serve`] with more environment variables for the server.
    pub fn serve_with_env(&self, env: &[(&str, &Path)]) -> Server {
        let mut server =
            Server::start_with_env(self.path(), &self.path().join("markgate.toml"), env);
        let listening = wait_for(Duration::from_secs(20), || {
            if server.child.try_wait().ok().flatten().is_some() {
                return Some(false);
            }
            server
                .log_text()
                .contains("SMTP gateway listening")
                .then_some(true)
        });
        assert_eq!(
            listening,
            Some(true),
            "markgate did not listen:\n{}",
            server.log_text()
        );
        server
    }

    pub fn outbox(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.path().join("outbox")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned())
            .collect()
    }

    /// Messages (and their progress files) in the spool; emptied files kept for reuse in
    /// `spool/free/` are not messages, nor is the gateway's lock file (`markgate.lock`).
    pub fn spool_files(&self) -> usize {
        std::fs::read_dir(self.path().join("spool"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter(|e| !e.file_name().to_string_lossy().starts_with("markgate."))
                    .count()
            })
            .unwrap_or(0)
    }
}

pub fn swaks(args: &[&str]) -> String {
    require("swaks");
    let out = Command::new("swaks")
        .args(["--timeout", "20"])
        .args(args)
        .output()
        .expect("run swaks");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Length of the first complete (multi-line) SMTP reply in `buf`.
pub fn complete_reply(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(pos) = buf[start..].windows(2).position(|w| w == b"\r\n") {
        let line = &buf[start..start + pos];
        start += pos + 2;
        if line.len() < 4 || line[3] == b' ' {
            return Some(start);
        }
    }
    None
}

/// Open the bundle attached to a cover message with the stock tools (Python's email module,
/// `age -d -i KEY`, `tar -x`) into `into`, as the partner would.
pub fn open_cover_bundle(cover: &str, key: &Path, into: &Path) {
    require("age");
    require("tar");
    std::fs::create_dir_all(into).unwrap();
    let cover_path = into.with_extension("cover.eml");
    std::fs::write(&cover_path, cover).unwrap();
    let bundle = into.with_extension("bundle.age");
    let script = format!(
        "import email, subprocess, sys\n\
         m = email.message_from_bytes(open({cover:?}, 'rb').read())\n\
         parts = [p for p in m.walk() if p.get_filename()]\n\
         open({bundle:?}, 'wb').write(parts[0].get_payload(decode=True))\n\
         d = subprocess.run(['age', '-d', '-i', {key:?}, {bundle:?}], capture_output=True, check=True).stdout\n\
         subprocess.run(['tar', '-x', '-C', {opened:?}], input=d, check=True)\n",
        cover = cover_path.to_str().unwrap(),
        bundle = bundle.to_str().unwrap(),
        key = key.to_str().unwrap(),
        opened = into.to_str().unwrap(),
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// aiosmtpd next hop; killed on drop.
pub struct Sink {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Sink {
    /// On 127.0.0.1 and a free port; STARTTLS with `tls/dev-cert.pem` when given.
    pub fn start(dir: &Path, tls: Option<&Path>) -> Sink {
        Sink::start_on(free_port(), dir, tls)
    }

    pub fn start_on(port: u16, dir: &Path, tls: Option<&Path>) -> Sink {
        Sink::start_at("127.0.0.1", port, dir, tls, false)
    }

    /// With sink.py's own options (`--reject ADDR`: that mailbox does not exist).
    pub fn start_with(port: u16, dir: &Path, tls: Option<&Path>, options: &[&str]) -> Sink {
        Sink::spawn("127.0.0.1", port, dir, tls, false, options)
    }

    /// On `ip:port` (any address in 127.0.0.0/8, so MX hosts can share a port);
    /// `requiretls` offers REQUIRETLS (RFC 8689) after STARTTLS.
    pub fn start_at(ip: &str, port: u16, dir: &Path, tls: Option<&Path>, requiretls: bool) -> Sink {
        Sink::spawn(ip, port, dir, tls, requiretls, &[])
    }

    fn spawn(
        ip: &str,
        port: u16,
        dir: &Path,
        tls: Option<&Path>,
        requiretls: bool,
        options: &[&str],
    ) -> Sink {
        let ok = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "python3 with aiosmtpd is required: run tests/deps.sh");
        let mut cmd = Command::new("python3");
        cmd.arg(fixture("sink.py"))
            .arg(port.to_string())
            .arg(dir)
            .args(["--host", ip])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(certs) = tls {
            cmd.arg("--cert")
                .arg(certs.join("dev-cert.pem"))
                .arg("--key")
                .arg(certs.join("dev-key.pem"));
        }
        if requiretls {
            cmd.arg("--requiretls");
        }
        cmd.args(options);
        let child = cmd.spawn().expect("start sink.py");
        let up = wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect((ip, port)).ok()
        });
        assert!(up.is_some(), "sink did not start on {ip}:{port}");
        Sink {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// (meta json, message) of everything received so far.
    pub fn received(&self) -> Vec<(serde_json::Value, String)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
            {
                let meta = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                let eml = std::fs::read(p.with_extension("eml")).unwrap();
                out.push((meta, String::from_utf8_lossy(&eml).into_owned()));
            }
        }
        out
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking TCP connection to 127.0.0.1:`port` from the loopback address `local`,
/// with a receive buffer of `recv_buffer` bytes if given (a client slow to read fills it
/// sooner).
pub fn tcp_connect(local: &str, port: u16, recv_buffer: Option<u32>) -> TcpStream {
    let local: std::net::SocketAddr = format!("{local}:0").parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket.bind(local).expect("bind a loopback source address");
        let stream = socket
            .connect(([127, 0, 0, 1], port).into())
            .await
            .expect("connect");
        stream.into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream
}

/// A raw SMTP client over TCP.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connect from 127.0.0.1.
    pub fn connect(port: u16) -> Client {
        Client::from_stream(TcpStream::connect(("127.0.0.1", port)).expect("connect"))
    }

    /// Connect from another loopback address (127.0.0.2, ...) to 127.0.0.1.
    pub fn connect_from(local: &str, port: u16) -> Client {
        Client::from_stream(tcp_connect(local, port, None))
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &str) {
        self.send_bytes(bytes.as_bytes());
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// One complete (possibly multi-line) reply; panics after 10s or when the server closes.
    pub fn reply(&mut self) -> String {
        loop {
            if let Some(end) = complete_reply(&self.buf) {
                let r: Vec<u8> = self.buf.drain(..end).collect();
                return String::from_utf8(r).unwrap();
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!(
                    "connection closed; had {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!(
                    "no reply ({e}); had {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    pub fn cmd(&mut self, line: &str, expect: &str) -> String {
        self.send(&format!("{line}\r\n"));
        let r = self.reply();
        assert!(
            r.starts_with(expect),
            "{line}: expected {expect}, got {r:?}"
        );
        r
    }

    /// The greeting and EHLO.
    pub fn hello(&mut self) -> String {
        let greeting = self.reply();
        assert!(greeting.starts_with("220 "), "{greeting}");
        self.cmd("EHLO client.test", "250")
    }

    /// MAIL from officer@westmidlands.pnn.police.uk, RCPT to each of `rcpts`, DATA: each
    /// accepted; what is sent next is message data.
    pub fn start_data(&mut self, rcpts: &[&str]) {
        self.cmd("MAIL FROM:<officer@westmidlands.pnn.police.uk>", "250");
        for r in rcpts {
            self.cmd(&format!("RCPT TO:<{r}>"), "250");
        }
        self.cmd("DATA", "354");
    }

    /// Send one message; the reply to the end of data.
    pub fn message(&mut self, rcpts: &[&str], data: &str) -> String {
        self.start_data(rcpts);
        self.send(data);
        self.reply()
    }

    /// Send `bytes` one at a time (from the start again when they run out), one every
    /// `every`, until the server closes the connection or `limit` passes: how long that
    /// took, and everything the server said meanwhile.
    pub fn trickle_until_closed(
        &mut self,
        bytes: &[u8],
        every: Duration,
        limit: Duration,
    ) -> (Duration, String) {
        let start = std::time::Instant::now();
        self.stream.set_read_timeout(Some(every)).unwrap();
        let mut said = std::mem::take(&mut self.buf);
        for byte in bytes.iter().cycle() {
            if start.elapsed() > limit {
                break;
            }
            // once the server has closed, the write fails and the read says why
            let _ = self.stream.write_all(&[*byte]);
            let mut chunk = [0u8; 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => said.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        (start.elapsed(), String::from_utf8_lossy(&said).into_owned())
    }

    /// True when the server has closed the connection (EOF or reset) within 5s, with nothing
    /// more sent.
    pub fn closed_by_server(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut chunk = [0u8; 512];
        match self.stream.read(&mut chunk) {
            Ok(0) => self.buf.is_empty(),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                false
            }
            Err(e) => matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
        }
    }

    /// Everything the server sends until it closes the connection (EOF or reset), what was
    /// already buffered included; panics if it stays open for 10s.
    pub fn rest_until_closed(&mut self) -> String {
        let mut rest = std::mem::take(&mut self.buf);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut chunk = [0u8; 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "the connection stayed open ({e}); had {:?}",
                    String::from_utf8_lossy(&rest)
                ),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the connection stayed open"
            );
        }
        String::from_utf8_lossy(&rest).into_owned()
    }
}

/// An in-memory SMTP session (no sockets) on a gateway with the shipped policy, its spool
/// and record store in a temp dir; [`Harness::reconnect`] opens another session on the same
/// gateway.
pub struct Harness {
    client: DuplexStream,
    pub queued: UnboundedReceiver<Envelope>,
    pub spool: Arc<Spool>,
    pub ctx: Arc<SmtpContext>,
    _dir: tempfile::TempDir,
    buf: Vec<u8>,
}

pub fn recorder(dir: &tempfile::TempDir) -> markgate::record::Recorder {
    markgate::record::Recorder::open(&markgate::config::records::RecordsConfig {
        path: dir.path().join("records.sqlite"),
        ..Default::default()
    })
    .unwrap()
}

pub fn policy() -> Policy {
    Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).expect("shipped policy")
}

pub fn start(configure: impl FnOnce(&mut Config), relay_allowed: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.spool.dir = dir.path().join("spool");
    configure(&mut config);
    let snapshot = Snapshot::build(&config, policy(), None).unwrap();
    let gateway = Arc::new(Gateway::new(config, snapshot, recorder(&dir)));
    let spool = Arc::new(Spool::open(&dir.path().join("spool")).unwrap());
    let (queue, queued) = QueueHandle::new();
    let ctx = Arc::new(SmtpContext {
        relay_nets: gateway.config.smtp.relay_nets(),
        gateway,
        tls: None,
        spool: spool.clone(),
        queue,
        shutdown: CancellationToken::new(),
    });
    Harness {
        client: connect(&ctx, relay_allowed),
        queued,
        spool,
        ctx,
        _dir: dir,
        buf: Vec::new(),
    }
}

/// A new session on `ctx`; the client's end of it. A relaying client is 127.0.0.1, another
/// one 192.0.2.7.
fn connect(ctx: &Arc<SmtpContext>, relay_allowed: bool) -> DuplexStream {
    let (client, server) = tokio::io::duplex(1 << 20);
    let peer = Peer {
        ip: if relay_allowed {
            "127.0.0.1".parse().unwrap()
        } else {
            "192.0.2.7".parse().unwrap()
        },
        relay_allowed,
        tls: false,
    };
    tokio::spawn(Session::new(server, ctx.clone(), peer).run(true));
    client
}

impl Harness {
    /// Drop this session and open another on the same gateway (a relaying client).
    pub fn reconnect(&mut self) {
        self.client = connect(&self.ctx, true);
        self.buf.clear();
    }

    pub async fn send(&mut self, bytes: &str) {
        self.send_bytes(bytes.as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.client.write_all(bytes).await.unwrap();
    }

    /// Everything the server sends until it closes the session.
    pub async fn rest_until_closed(&mut self) -> String {
        let mut rest = std::mem::take(&mut self.buf);
        tokio::time::timeout(Duration::from_secs(5), self.client.read_to_end(&mut rest))
            .await
            .expect("the session ends within 5s")
            .unwrap();
        String::from_utf8_lossy(&rest).into_owned()
    }

    /// Read one complete reply (all its lines).
    pub async fn reply(&mut self) -> String {
        let reply = tokio::time::timeout(Duration::from_secs(5), self.next_reply())
            .await
            .expect("reply within 5s");
        reply.unwrap_or_else(|| {
            panic!(
                "connection closed; had {:?}",
                String::from_utf8_lossy(&self.buf)
            )
        })
    }

    /// The next complete reply, however long it takes; `None` when the session closed
    /// first. Cancel-safe: what was read stays buffered.
    pub async fn next_reply(&mut self) -> Option<String> {
        loop {
            if let Some(end) = complete_reply(&self.buf) {
                let r: Vec<u8> = self.buf.drain(..end).collect();
                return Some(String::from_utf8(r).unwrap());
            }
            let mut chunk = [0u8; 4096];
            match self.client.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Send `bytes` one at a time, one every `every`, while listening: the first reply the
    /// server gives (`None`: all sent and no reply within `every` of the last byte).
    pub async fn trickle(&mut self, bytes: &[u8], every: Duration) -> Option<String> {
        for byte in bytes {
            if self.client.write_all(&[*byte]).await.is_err() {
                break;
            }
            if let Ok(reply) = tokio::time::timeout(every, self.next_reply()).await {
                return reply;
            }
        }
        tokio::time::timeout(every, self.next_reply())
            .await
            .ok()
            .flatten()
    }

    pub async fn cmd(&mut self, line: &str, expect: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        let r = self.reply().await;
        assert!(
            r.starts_with(expect),
            "{line}: expected {expect}, got {r:?}"
        );
        r
    }

    pub async fn hello(&mut self) {
        let greeting = self.reply().await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        self.cmd("EHLO client.test", "250").await;
    }

    /// The greeting, EHLO, MAIL from a@westmidlands.pnn.police.uk, RCPT to
    /// b@westmidlands.pnn.police.uk and DATA, each accepted: what is sent next is message
    /// data.
    pub async fn start_data(&mut self) {
        self.hello().await;
        self.cmd("MAIL FROM:<a@westmidlands.pnn.police.uk>", "250")
            .await;
        self.cmd("RCPT TO:<b@westmidlands.pnn.police.uk>", "250")
            .await;
        self.cmd("DATA", "354").await;
    }
}
