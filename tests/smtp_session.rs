//! Protocol tests of the inbound session over in-memory IO: the state machine, limits,
//! relay refusal, smuggling, and what reaches the spool and queue.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::smtp::complete_reply;
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

struct Harness {
    client: DuplexStream,
    queued: UnboundedReceiver<Envelope>,
    spool: Arc<Spool>,
    _dir: tempfile::TempDir,
    buf: Vec<u8>,
}

fn recorder(dir: &tempfile::TempDir) -> markgate::record::Recorder {
    markgate::record::Recorder::open(&markgate::config::records::RecordsConfig {
        path: dir.path().join("records.sqlite"),
        ..Default::default()
    })
    .unwrap()
}

fn policy() -> Policy {
    Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).expect("shipped policy")
}

fn start(configure: impl FnOnce(&mut Config), relay_allowed: bool) -> Harness {
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
    tokio::spawn(Session::new(server, ctx, peer).run(true));
    Harness {
        client,
        queued,
        spool,
        _dir: dir,
        buf: Vec::new(),
    }
}

impl Harness {
    async fn send(&mut self, bytes: &str) {
        self.client.write_all(bytes.as_bytes()).await.unwrap();
    }

    /// Read one complete reply (all its lines).
    async fn reply(&mut self) -> String {
        loop {
            if let Some(end) = complete_reply(&self.buf) {
                let r: Vec<u8> = self.buf.drain(..end).collect();
                return String::from_utf8(r).unwrap();
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), self.client.read(&mut chunk))
                .await
                .expect("reply within 5s")
                .unwrap();
            assert!(
                n > 0,
                "connection closed; had {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn cmd(&mut self, line: &str, expect: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        let r = self.reply().await;
        assert!(
            r.starts_with(expect),
            "{line}: expected {expect}, got {r:?}"
        );
        r
    }

    async fn hello(&mut self) {
        let greeting = self.reply().await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        self.cmd("EHLO client.test", "250").await;
    }
}

const OFFICIAL_MESSAGE: &str = "From: a@westmidlands.pnn.police.uk\r\nTo: b@suffolk.pnn.police.uk\r\nSubject: [OFFICIAL] test\r\nX-Protective-Marking: OFFICIAL\r\nMessage-ID: <t1@test>\r\n\r\nHello\r\n.\r\n";

#[tokio::test]
async fn ehlo_advertises_the_extensions() {
    let mut h = start(|_| {}, true);
    let _ = h.reply().await;
    let r = h.cmd("EHLO client.test", "250").await;
    for ext in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
    ] {
        assert!(r.contains(ext), "{ext} missing from {r}");
    }
    assert!(!r.contains("STARTTLS"), "no TLS configured in this harness");
}

#[tokio::test]
async fn accepted_message_is_spooled_before_250_and_queued() {
    let mut h = start(|_| {}, true);
    h.hello().await;
    h.cmd("MAIL FROM:<a@westmidlands.pnn.police.uk>", "250 2.1.0")
        .await;
    h.cmd("RCPT TO:<b@suffolk.pnn.police.uk>", "250 2.1.5")
        .await;
    h.cmd("DATA", "354").await;
    h.send(OFFICIAL_MESSAGE).await;
    let r = h.reply().await;
    assert!(r.starts_with("250 2.0.0 queued as "), "{r}");
    let id = r.trim().rsplit(' ').next().unwrap().to_string();
    let env = h.queued.recv().await.unwrap();
    assert_eq!(env.id, id);
    assert_eq!(env.copies.len(), 1);
    assert!(env.copies[0].tls, "OFFICIAL requires tls");
    let spooled = h.spool.load(&id).unwrap();
    let copy = String::from_utf8_lossy(spooled.copy_bytes(0)).to_string();
    assert!(
        copy.contains("X-Markgate-Statement: stamped"),
        "one-off statement: {copy}"
    );
    assert!(copy.starts_with("Received: from client.test"));
    h.cmd("QUIT", "221").await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let mut h = start(|_| {}, true);
    let _ = h.reply().await;
    h.send("EHLO c.test\r\nMAIL FROM:<a@westmidlands.pnn.police.uk>\r\nRCPT TO:<b@suffolk.pnn.police.uk>\r\nRCPT TO:<c@westmidlands.pnn.police.uk>\r\nDATA\r\n").await;
    assert!(h.reply().await.starts_with("250-"));
    assert!(h.reply().await.starts_with("250 2.1.0"));
    assert!(h.reply().await.starts_with("250 2.1.5"));
    assert!(h.reply().await.starts_with("250 2.1.5"));
    assert!(h.reply().await.starts_with("354"));
    h.send(OFFICIAL_MESSAGE).await;
    assert!(h.reply().await.starts_with("250 2.0.0"));
    let env = h.queued.recv().await.unwrap();
    assert_eq!(
        env.copies.len(),
        2,
        "internal and one-off recipients get different copies"
    );
}

#[tokio::test]
async fn relay_from_outside_the_networks_is_refused() {
    let mut h = start(|_| {}, false);
    h.hello().await;
    h.cmd("MAIL FROM:<a@example.org>", "250").await;
    let r = h
        .cmd("RCPT TO:<b@suffolk.pnn.police.uk>", "554 5.7.1")
        .await;
    assert!(r.contains("relay access denied"), "{r}");
    h.cmd("DATA", "554 5.5.1").await;
}

#[tokio::test]
async fn bare_lf_smuggling_is_refused_and_nothing_queued() {
    let mut h = start(|_| {}, true);
    h.hello().await;
    h.cmd("MAIL FROM:<a@westmidlands.pnn.police.uk>", "250")
        .await;
    h.cmd("RCPT TO:<b@westmidlands.pnn.police.uk>", "250").await;
    h.cmd("DATA", "354").await;
    h.send("Subject: [OFFICIAL] a\r\n\r\nfirst\n.\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@gmail.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nhi\r\n.\r\n").await;
    let r = h.reply().await;
    assert!(r.starts_with("550 5.6.0") && r.contains("bare LF"), "{r}");
    // The session is still in step: the smuggled commands were data, not commands.
    h.cmd("NOOP", "250").await;
    assert!(h.queued.try_recv().is_err(), "nothing may be queued");
}

#[tokio::test]
async fn limits_have_clear_replies() {
    let mut h = start(
        |c| {
            c.smtp.max_recipients = 2;
            c.smtp.max_message_size = 2048;
            c.smtp.max_line_length = 100;
        },
        true,
    );
    h.hello().await;
    h.cmd(
        "MAIL FROM:<a@westmidlands.pnn.police.uk> SIZE=999999",
        "552 5.3.4",
    )
    .await;
    h.cmd("MAIL FROM:<a@westmidlands.pnn.police.uk>", "250")
        .await;
    h.cmd("RCPT TO:<b@westmidlands.pnn.police.uk>", "250").await;
    h.cmd("RCPT TO:<c@westmidlands.pnn.police.uk>", "250").await;
    h.cmd("RCPT TO:<d@westmidlands.pnn.police.uk>", "452 4.5.3")
        .await;
    h.cmd("DATA", "354").await;
    let big = format!(
        "Subject: x\r\n\r\n{}\r\n.\r\n",
        "0123456789\r\n".repeat(400)
    );
    h.send(&big).await;
    h.reply()
        .await
        .starts_with("552 5.3.4")
        .then_some(())
        .expect("size limit");
    h.cmd("MAIL FROM:<a@westmidlands.pnn.police.uk>", "250")
        .await;
    h.cmd("RCPT TO:<b@westmidlands.pnn.police.uk>", "250").await;
    h.cmd("DATA", "354").await;
    h.send(&format!("Subject: x\r\n\r\n{}\r\n.\r\n", "a".repeat(300)))
        .await;
    let r = h.reply().await;
    assert!(
        r.starts_with("550 5.6.0") && r.contains("longer than 100"),
        "{r}"
    );
}

#[tokio::test]
async fn out_of_order_commands_are_refused() {
    let mut h = start(|_| {}, true);
    let _ = h.reply().await;
    h.cmd("MAIL FROM:<a@b.test>", "503 5.5.1").await;
    h.cmd("EHLO c.test", "250").await;
    h.cmd("RCPT TO:<a@b.test>", "503 5.5.1").await;
    h.cmd("DATA", "503 5.5.1").await;
    h.cmd("BDAT 10 LAST", "502 5.5.1").await;
    h.cmd("HELLO", "500 5.5.1").await;
    h.cmd("RSET", "250").await;
}

#[tokio::test]
async fn require_tls_refuses_mail_in_plaintext() {
    let mut h = start(|c| c.smtp.require_tls = true, true);
    h.hello().await;
    h.cmd("MAIL FROM:<a@westmidlands.pnn.police.uk>", "530 5.7.0")
        .await;
}

#[tokio::test]
async fn idle_sessions_close_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.spool.dir = dir.path().join("spool");
    let snapshot = Snapshot::build(&config, policy(), None).unwrap();
    let gateway = Arc::new(Gateway::new(config, snapshot, recorder(&dir)));
    let (queue, _rx) = QueueHandle::new();
    let shutdown = CancellationToken::new();
    let ctx = Arc::new(SmtpContext {
        relay_nets: gateway.config.smtp.relay_nets(),
        gateway,
        tls: None,
        spool: Arc::new(Spool::open(&dir.path().join("spool")).unwrap()),
        queue,
        shutdown: shutdown.clone(),
    });
    let (mut client, server) = tokio::io::duplex(4096);
    let peer = Peer {
        ip: "127.0.0.1".parse().unwrap(),
        relay_allowed: true,
        tls: false,
    };
    let session = tokio::spawn(Session::new(server, ctx, peer).run(true));
    let mut buf = [0u8; 512];
    let _ = client.read(&mut buf).await.unwrap();
    shutdown.cancel();
    let n = client.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("421 4.3.2"));
    tokio::time::timeout(Duration::from_secs(2), session)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn timeout_replies_name_the_configured_time() {
    let mut h = start(
        |c| c.smtp.command_timeout = Duration::from_millis(300),
        true,
    );
    h.hello().await;
    let r = h.reply().await;
    assert_eq!(
        r, "421 4.4.2 command timeout after 300ms; closing connection\r\n",
        "{r}"
    );

    let mut h = start(|c| c.smtp.data_timeout = Duration::from_millis(1500), true);
    h.hello().await;
    h.cmd("MAIL FROM:<a@westmidlands.pnn.police.uk>", "250")
        .await;
    h.cmd("RCPT TO:<b@westmidlands.pnn.police.uk>", "250").await;
    h.cmd("DATA", "354").await;
    h.send("Subject: [OFFICIAL] stalled\r\n").await;
    let r = h.reply().await;
    assert_eq!(
        r, "421 4.4.2 data timeout after 1.5s; closing connection\r\n",
        "{r}"
    );
    assert!(h.queued.try_recv().is_err(), "nothing may be queued");
}
