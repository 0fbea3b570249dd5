//! The SMTP inbound session under fuzzing: the client's bytes in (commands and message data),
//! the replies out, over in-memory IO with the shipped policy.
//!
//! Asserted: no panic; the replies are well-formed SMTP lines; and the smuggling property,
//! in both `smtp.bare_line_endings` modes: a second transaction sent after message data that
//! holds no CR LF "." CR LF is message data, never run (the sender's MAIL is the only one
//! accepted, one reply answers the data, nothing from the forged sender is queued).
//!
//! The first input byte chooses: bit 0 the bare-line-ending mode; bit 1 whether the rest is
//! the whole client side of a session (raw), or message data sent after EHLO, MAIL, RCPT and
//! DATA and followed by a smuggled transaction and QUIT.

#![no_main]

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use markgate::config::records::RecordsConfig;
use markgate::config::smtp::BareLineEndings;
use markgate::config::Config;
use markgate::policy::Policy;
use markgate::record::Recorder;
use markgate::service::gateway::Gateway;
use markgate::service::snapshot::Snapshot;
use markgate::smtp::inbound::{Peer, Session};
use markgate::smtp::queue::spool::{Envelope, Spool};
use markgate::smtp::queue::QueueHandle;
use markgate::smtp::SmtpContext;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

const SENDER: &str = "officer@westmidlands.pnn.police.uk";
const FORGED: &str = "forged@attacker.test";

const BEFORE_DATA: &[u8] = b"EHLO fuzz.test\r\nMAIL FROM:<officer@westmidlands.pnn.police.uk>\r\n\
RCPT TO:<colleague@westmidlands.pnn.police.uk>\r\nDATA\r\n";

const SMUGGLED: &[u8] = b"MAIL FROM:<forged@attacker.test>\r\n\
RCPT TO:<victim@westmidlands.pnn.police.uk>\r\nDATA\r\n\
Subject: [OFFICIAL] smuggled\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n";

/// A gateway per bare-line-ending mode, built once.
struct World {
    runtime: tokio::runtime::Runtime,
    gateways: Vec<(Arc<SmtpContext>, Mutex<UnboundedReceiver<Envelope>>)>,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = work_dir();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let gateways = [BareLineEndings::Reject, BareLineEndings::Normalise]
            .into_iter()
            .enumerate()
            .map(|(i, mode)| {
                let dir = dir.path().join(i.to_string());
                let (ctx, queued) = runtime.block_on(async { context(&dir, mode) });
                (ctx, Mutex::new(queued))
            })
            .collect();
        World {
            runtime,
            gateways,
            _dir: dir,
        }
    })
}

/// A directory for this process's spools and record stores, on a memory file system when
/// there is one (fsyncs are cheap there). libFuzzer ends the process without running
/// destructors, so directories left by processes that are gone are removed first.
fn work_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
    .join("markgate-fuzz-smtp_session");
    std::fs::create_dir_all(&base).unwrap();
    for entry in std::fs::read_dir(&base).unwrap().flatten() {
        let name = entry.file_name();
        let pid = name
            .to_string_lossy()
            .split('-')
            .next()
            .unwrap_or("")
            .to_string();
        if !Path::new("/proc").join(&pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{}-", std::process::id()))
        .tempdir_in(&base)
        .unwrap()
}

fn context(dir: &Path, mode: BareLineEndings) -> (Arc<SmtpContext>, UnboundedReceiver<Envelope>) {
    let mut config = Config::default();
    config.spool.dir = dir.join("spool");
    config.smtp.bare_line_endings = mode;
    // small, so the fuzzer reaches the size and line limits
    config.smtp.max_message_size = 4096;
    config.smtp.max_line_length = 200;
    let policy = Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy"))
        .expect("shipped policy");
    let recorder = Recorder::open(&RecordsConfig {
        path: dir.join("records.sqlite"),
        ..Default::default()
    })
    .expect("record store");
    let snapshot = Snapshot::build(&config, policy, None).expect("snapshot");
    let gateway = Arc::new(Gateway::new(config, snapshot, recorder));
    let (queue, queued) = QueueHandle::new();
    let ctx = Arc::new(SmtpContext {
        relay_nets: gateway.config.smtp.relay_nets(),
        spool: Arc::new(Spool::open(&dir.join("spool")).expect("spool")),
        hold: markgate::hold::HoldStore::open(&dir.join("spool/hold")).expect("hold store"),
        gateway,
        tls: None,
        queue,
        shutdown: CancellationToken::new(),
    });
    (ctx, queued)
}

/// One session: `client` written (then end of input), every reply read to the close.
fn converse(world: &World, ctx: &Arc<SmtpContext>, client: &[u8]) -> Vec<u8> {
    world.runtime.block_on(async {
        let (near, far) = tokio::io::duplex(1 << 16);
        let peer = Peer {
            ip: "127.0.0.1".parse().unwrap(),
            relay_allowed: true,
            tls: false,
        };
        let session = tokio::spawn(Session::new(far, ctx.clone(), peer).run(true));
        let (mut from_server, mut to_server) = tokio::io::split(near);
        let write = async {
            // the session may close first (QUIT, too many errors): the rest is not read
            let _ = to_server.write_all(client).await;
            let _ = to_server.shutdown().await;
        };
        let read = async {
            let mut replies = Vec::new();
            let _ = from_server.read_to_end(&mut replies).await;
            replies
        };
        let ((), replies) = tokio::join!(write, read);
        let _ = session.await.expect("the session does not panic");
        replies
    })
}

/// The replies, one string each (continuation lines joined); panics on a malformed line.
fn replies(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.split_terminator("\r\n") {
        let b = line.as_bytes();
        assert!(
            b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && (b[3] == b' ' || b[3] == b'-'),
            "malformed reply line {line:?}"
        );
        current.push_str(line);
        current.push('\n');
        if b[3] == b' ' {
            out.push(std::mem::take(&mut current));
        }
    }
    assert!(current.is_empty(), "unfinished reply {current:?}");
    out
}

fn has_end_of_data(data: &[u8]) -> bool {
    [b"\r\n", data]
        .concat()
        .windows(5)
        .any(|w| w == b"\r\n.\r\n")
}

fuzz_target!(|input: &[u8]| {
    let Some((&choice, rest)) = input.split_first() else {
        return;
    };
    let world = world();
    let (ctx, queued) = &world.gateways[usize::from(choice & 1)];
    let smuggle = choice & 2 != 0;
    let client = if smuggle {
        [BEFORE_DATA, rest, SMUGGLED].concat()
    } else {
        rest.to_vec()
    };
    let replies = replies(&converse(world, ctx, &client));
    assert!(
        replies.first().is_some_and(|r| r.starts_with("220 ")),
        "{replies:?}"
    );
    let queued: Vec<Envelope> =
        std::iter::from_fn(|| queued.lock().unwrap().try_recv().ok()).collect();
    if !smuggle || has_end_of_data(rest) {
        return;
    }
    // greeting, EHLO, MAIL, RCPT, 354, the one reply to the data, QUIT
    assert_eq!(replies.len(), 7, "{replies:?}");
    assert!(replies[4].starts_with("354 "), "{replies:?}");
    assert!(replies[6].starts_with("221 "), "{replies:?}");
    let mails = replies
        .iter()
        .filter(|r| r.starts_with("250 2.1.0"))
        .count();
    assert_eq!(mails, 1, "a smuggled MAIL was run: {replies:?}");
    for envelope in &queued {
        assert_eq!(envelope.sender, SENDER, "{FORGED} must never be queued");
    }
});
