//! Faults, made real (issue 13): the spool's and the record store's file systems full and
//! turned read-only under a running gateway, a next hop that resets in the middle of DATA or
//! answers 421 mid-session, slow clients holding connections, and kill -9 during a burst
//! while the next hop is down. Each asserts that nothing acknowledged (250, 200) is lost and
//! that clients get a temporary failure (4xx, 503) while the fault lasts. The file system
//! tests need root (CI runs as root) and skip with a message otherwise. Every wait is
//! bounded: each test takes seconds.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::faults::{
    fill, internal_route, messages_in, root_or_skip, send, tokens, Ext4, NextHop, Tmpfs,
};
use common::http::{HttpSetup, Upstream};
use common::smtp::{swaks, Client, Setup};
use common::{curl, free_port, wait_for};

/// A route to `upstream` for HTTP requests that need no handling.
fn http_route(upstream: &Upstream) -> String {
    format!(
        "[[http.route]]\nhost = \"api.partner.example\"\nupstream = \"http://127.0.0.1:{}\"\ndestination = \"internet\"\n",
        upstream.port()
    )
}

/// One NOT PROTECTIVELY MARKED request through the route: the status.
fn http_request(setup: &HttpSetup, n: u32) -> (u16, String) {
    curl(&[
        "-H",
        "Host: api.partner.example",
        "-H",
        "X-Protective-Marking: NOT PROTECTIVELY MARKED",
        "--data-binary",
        &format!("request {n}"),
        &format!("{}/r/{n}", setup.proxy()),
    ])
}

/// Send messages `range`, expecting each to be acknowledged.
fn send_acknowledged(port: u16, range: std::ops::Range<u32>) {
    for n in range {
        send(port, n).unwrap_or_else(|e| panic!("message {n} not acknowledged: {e:?}"));
    }
}

/// Send messages `range`, expecting each a temporary failure.
fn send_refused(port: u16, range: std::ops::Range<u32>) -> Vec<String> {
    range
        .map(|n| match send(port, n) {
            Ok(()) => panic!("message {n} acknowledged during the fault"),
            Err((transient, e)) => {
                assert!(transient, "message {n}: not a temporary failure: {e}");
                e
            }
        })
        .collect()
}

/// Wait (at most 20 s) until the next hop holds exactly the messages `expected`.
fn assert_delivered(dir: &std::path::Path, expected: &[u32]) {
    let got = wait_for(Duration::from_secs(20), || {
        let got = tokens(&messages_in(dir));
        (got.len() >= expected.len()).then_some(got)
    });
    let got = got.unwrap_or_else(|| tokens(&messages_in(dir)));
    assert_eq!(got, expected, "delivered: every acknowledged message, once");
}

fn audit(setup: &HttpSetup, db: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_markgate"))
        .arg("audit")
        .args(args)
        .arg("--db")
        .arg(db)
        .current_dir(setup.path())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The message ids in the decision records of `db`.
fn recorded_messages(setup: &HttpSetup, db: &std::path::Path) -> Vec<String> {
    let (ok, out) = audit(setup, db, &["query", "--format", "json"]);
    assert!(ok, "{out}");
    let records: serde_json::Value = serde_json::from_str(&out).unwrap();
    records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["message_id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn spool_file_system_full() {
    if !root_or_skip("spool_file_system_full") {
        return;
    }
    let hop_port = free_port();
    let setup = HttpSetup::new(&internal_route(hop_port));
    let _spool = Tmpfs::mount(&setup.path().join("spool"), "2m");
    let server = setup.serve();
    // The next hop is down: acknowledged messages wait in the spool.
    send_acknowledged(setup.smtp, 0..5);

    let ballast = fill(&setup.path().join("spool"));
    let errors = send_refused(setup.smtp, 5..8);
    assert!(
        errors
            .iter()
            .all(|e| e.contains("451") || e.contains("452")),
        "{errors:?}"
    );
    let (status, body) = setup.readyz();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("spool directory"), "{body}");

    std::fs::remove_file(ballast).unwrap();
    assert_eq!(setup.readyz().0, 200);
    send_acknowledged(setup.smtp, 8..10);
    let hop = NextHop::start(hop_port, &setup.path().join("hop"), "accept", 0);
    assert_delivered(&hop.dir, &[0, 1, 2, 3, 4, 8, 9]);
    drop(server);
}

#[test]
fn record_store_file_system_full() {
    if !root_or_skip("record_store_file_system_full") {
        return;
    }
    let upstream = Upstream::start();
    let setup = HttpSetup::new(&http_route(&upstream));
    let d = setup.path().display().to_string();
    setup.edit(
        &format!("path = \"{d}/records.sqlite\""),
        &format!("path = \"{d}/rec/records.sqlite\""),
    );
    let db = setup.path().join("rec/records.sqlite");
    let _rec = Tmpfs::mount(&setup.path().join("rec"), "1m");
    let server = setup.serve();
    send_acknowledged(setup.smtp, 0..3);
    assert_eq!(http_request(&setup, 0).0, 200);

    // Full: SQLite goes on in the space it already has, then fails; from then on every
    // message gets a temporary failure and every request 503, and nothing goes unrecorded.
    let ballast = fill(&setup.path().join("rec"));
    let mut acknowledged = vec![0, 1, 2];
    let mut refused = Vec::new();
    for n in 3..300 {
        match send(setup.smtp, n) {
            Ok(()) => acknowledged.push(n),
            Err((transient, e)) => {
                assert!(transient && e.contains("451"), "message {n}: {e}");
                refused.push(n);
                if refused.len() == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused.len(), 3, "the full record store never refused");
    eprintln!(
        "measured: record store full: {} more messages recorded in the space SQLite had, then 451",
        acknowledged.len() - 3
    );
    // HTTP likewise: a request is forwarded only when its decision was recorded.
    let (before, mut forwarded, mut unavailable) = (upstream.hits(), 0, 0);
    for n in 1..200 {
        match http_request(&setup, n) {
            (200, _) => forwarded += 1,
            (503, body) => {
                assert!(body.contains("record-failed"), "{body}");
                unavailable += 1;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        unavailable, 1,
        "the full record store never refused a request"
    );
    assert_eq!(
        upstream.hits() - before,
        forwarded,
        "nothing forwarded unrecorded"
    );
    let (status, body) = setup.readyz();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("record store"), "{body}");

    std::fs::remove_file(ballast).unwrap();
    send_acknowledged(setup.smtp, 1000..1002);
    acknowledged.extend([1000, 1001]);
    assert_eq!(http_request(&setup, 2).0, 200);
    assert_eq!(setup.readyz().0, 200);
    let delivered = wait_for(Duration::from_secs(10), || {
        let outbox = tokens(&messages_in(&setup.path().join("outbox")));
        (outbox == acknowledged).then_some(())
    });
    let outbox = tokens(&messages_in(&setup.path().join("outbox")));
    assert!(
        delivered.is_some(),
        "acknowledged {acknowledged:?}, delivered {outbox:?}"
    );
    drop(server);

    // Every acknowledged message has its record, the refused ones none, and the chain holds.
    let recorded = recorded_messages(&setup, &db);
    for n in &acknowledged {
        assert!(
            recorded.iter().any(|m| m.contains(&format!("<fault-{n}@"))),
            "{n}: {recorded:?}"
        );
    }
    for n in &refused {
        assert!(
            !recorded.iter().any(|m| m.contains(&format!("<fault-{n}@"))),
            "{n}: {recorded:?}"
        );
    }
    let (ok, out) = audit(&setup, &db, &["verify"]);
    assert!(ok, "{out}");
}

#[test]
fn spool_file_system_turns_read_only() {
    if !root_or_skip("spool_file_system_turns_read_only") {
        return;
    }
    let hop_port = free_port();
    let setup = HttpSetup::new(&internal_route(hop_port));
    let spool = Ext4::mount(&setup.path().join("spool"));
    let server = setup.serve();
    send_acknowledged(setup.smtp, 0..4);

    spool.break_read_only();
    let errors = send_refused(setup.smtp, 4..6);
    assert!(errors.iter().all(|e| e.contains("451")), "{errors:?}");
    let (status, body) = setup.readyz();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("spool directory"), "{body}");

    // The operator stops the gateway, repairs the file system, starts it again.
    drop(server);
    spool.restore();
    let server = setup.serve();
    let hop = NextHop::start(hop_port, &setup.path().join("hop"), "accept", 0);
    send_acknowledged(setup.smtp, 6..7);
    assert_delivered(&hop.dir, &[0, 1, 2, 3, 6]);
    drop(server);
}

#[test]
fn record_store_file_system_turns_read_only() {
    if !root_or_skip("record_store_file_system_turns_read_only") {
        return;
    }
    let upstream = Upstream::start();
    let setup = HttpSetup::new(&http_route(&upstream));
    let d = setup.path().display().to_string();
    setup.edit(
        &format!("path = \"{d}/records.sqlite\""),
        &format!("path = \"{d}/rec/records.sqlite\""),
    );
    let db = setup.path().join("rec/records.sqlite");
    let rec = Ext4::mount(&setup.path().join("rec"));
    let server = setup.serve();
    send_acknowledged(setup.smtp, 0..3);
    assert_eq!(http_request(&setup, 0).0, 200);

    rec.break_read_only();
    let errors = send_refused(setup.smtp, 3..5);
    assert!(errors.iter().all(|e| e.contains("451")), "{errors:?}");
    let before = upstream.hits();
    let (status, body) = http_request(&setup, 1);
    assert_eq!(status, 503, "{body}");
    assert_eq!(upstream.hits(), before, "nothing forwarded unrecorded");
    let (status, body) = setup.readyz();
    assert_eq!(status, 503, "{body}");

    drop(server);
    rec.restore();
    let server = setup.serve();
    send_acknowledged(setup.smtp, 5..6);
    assert_eq!(http_request(&setup, 2).0, 200);
    let delivered = wait_for(Duration::from_secs(10), || {
        (tokens(&messages_in(&setup.path().join("outbox"))) == [0, 1, 2, 5]).then_some(())
    });
    let outbox = tokens(&messages_in(&setup.path().join("outbox")));
    assert!(
        delivered.is_some(),
        "acknowledged messages delivered: {outbox:?}"
    );
    drop(server);
    let recorded = recorded_messages(&setup, &db);
    for n in [0, 1, 2, 5] {
        assert!(
            recorded.iter().any(|m| m.contains(&format!("fault-{n}@"))),
            "{n}: {recorded:?}"
        );
    }
    let (ok, out) = audit(&setup, &db, &["verify"]);
    assert!(ok, "{out}");
}

/// The next hop resets the connection in the middle of DATA, then answers 421 mid-session:
/// each time the gateway keeps the message and tries again; nothing is lost, nothing is
/// bounced, nothing is delivered twice.
#[test]
fn next_hop_resets_in_data_and_answers_421() {
    for mode in ["reset", "421"] {
        let hop_port = free_port();
        let setup = HttpSetup::new(&internal_route(hop_port));
        let hop = NextHop::start(hop_port, &setup.path().join("hop"), mode, 3);
        let server = setup.serve();
        send_acknowledged(setup.smtp, 0..4);
        assert_delivered(&hop.dir, &[0, 1, 2, 3]);
        let log = hop.log();
        assert_eq!(log.matches("fault").count(), 3, "{mode}: {log}");
        let bounces = hop
            .messages()
            .iter()
            .filter(|m| m.contains("multipart/report") || m.contains("delivery-status"))
            .count();
        assert_eq!(bounces, 0, "{mode}: a temporary failure is not a bounce");
        drop(server);
    }
}

/// Send one byte a second of `what` until the peer closes or `limit` passes; how long the
/// connection was held.
fn trickle(mut stream: TcpStream, what: &'static [u8], limit: Duration) -> Duration {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut buf = [0u8; 512];
    for byte in what.iter().cycle() {
        if start.elapsed() > limit || stream.write_all(&[*byte]).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    start.elapsed()
}

/// Slow clients (a byte a second) hold connections: HTTP clients are cut at the head and
/// body timeouts and, while they hold every slot, others wait at most that long; SMTP
/// clients are capped per client address, and others are served at once.
#[test]
fn slow_clients_do_not_starve_others() {
    let upstream = Upstream::start();
    let setup = HttpSetup::new(&format!(
        "max_connections = 4\nheader_read_timeout = \"2s\"\nbody_read_timeout = \"2s\"\n{}",
        http_route(&upstream)
    ));
    setup.smtp_keys("max_connections_per_client = 3");
    let _server = setup.serve();

    // Under the cap: others are served at once.
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", setup.http)).unwrap();
            std::thread::spawn(move || {
                trickle(
                    s,
                    b"GET / HTTP/1.1\r\nHost: api.partner.example\r\n",
                    Duration::from_secs(10),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    assert_eq!(http_request(&setup, 0).0, 200);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    for held in slow {
        let held = held.join().unwrap();
        assert!(
            held < Duration::from_secs(4),
            "cut at the head timeout, not {held:?}"
        );
    }

    // Every slot held: a new client waits for the head timeout to free one, no longer.
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", setup.http)).unwrap();
            std::thread::spawn(move || {
                trickle(
                    s,
                    b"GET / HTTP/1.1\r\nHost: api.partner.example\r\n",
                    Duration::from_secs(10),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    assert_eq!(http_request(&setup, 1).0, 200);
    let waited = start.elapsed();
    eprintln!("measured: HTTP with every slot held by slow clients: served after {waited:?} (header_read_timeout 2s)");
    assert!(
        waited < Duration::from_secs(4),
        "waited {waited:?} with every slot held"
    );
    for held in slow {
        held.join().unwrap();
    }

    // A body sent a byte a second: refused when the body timeout passes (408).
    let mut s = TcpStream::connect(("127.0.0.1", setup.http)).unwrap();
    s.write_all(b"POST /slow HTTP/1.1\r\nHost: api.partner.example\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n").unwrap();
    let start = Instant::now();
    let reply = std::thread::spawn(move || {
        let mut reply = Vec::new();
        let mut buf = [0u8; 1024];
        s.set_read_timeout(Some(Duration::from_millis(900)))
            .unwrap();
        while start.elapsed() < Duration::from_secs(8) {
            let _ = s.write_all(b"x");
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    reply.extend_from_slice(&buf[..n]);
                    if reply.windows(4).any(|w| w == b"\r\n\r\n") && reply.ends_with(b"\n") {
                        break;
                    }
                }
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&reply).into_owned()
    })
    .join()
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("request-timeout"), "{reply}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );

    // SMTP: slow clients from one address (a byte a second of a command line never
    // finished) get at most their cap; others are served at once.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let smtp = setup.smtp;
    let greetings: Vec<String> = runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut greetings = Vec::new();
        for _ in 0..5 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            let mut stream = socket.connect(([127, 0, 0, 1], smtp).into()).await.unwrap();
            let mut buf = [0u8; 256];
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            greetings.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            tokio::spawn(async move {
                for byte in b"EHLO slow.example".iter().cycle().take(30) {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
        greetings
    });
    let accepted = greetings.iter().filter(|g| g.starts_with("220")).count();
    let refused = greetings
        .iter()
        .filter(|g| g.starts_with("421 4.7.0"))
        .count();
    assert_eq!((accepted, refused), (3, 2), "{greetings:?}");
    let start = Instant::now();
    send_acknowledged(setup.smtp, 0..3);
    eprintln!(
        "measured: SMTP with slow clients at their cap: 3 messages in {:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let delivered = wait_for(Duration::from_secs(10), || {
        let got = tokens(&messages_in(&setup.path().join("outbox")));
        (got == [0, 1, 2]).then_some(())
    });
    assert!(
        delivered.is_some(),
        "{:?}",
        tokens(&messages_in(&setup.path().join("outbox")))
    );
}

/// Slow SMTP clients (issue 13): 20 clients at one byte a second, half never finishing a
/// command line, half trickling message data after a fast MAIL, RCPT and DATA, are each
/// cut with `421 4.4.2` at their deadline (`command_timeout` 3s from the greeting,
/// `data_total_timeout` 4s from the 354; a byte a second never pauses for
/// `data_timeout`), however many bytes they send. Meanwhile ordinary clients (lettre,
/// swaks) are served at once; every message they saw acknowledged is delivered, and
/// nothing of the slow ones.
#[test]
fn slow_smtp_clients_are_cut_at_their_deadlines_and_others_are_served() {
    let setup = Setup::new("", None);
    setup.smtp_keys("command_timeout = \"3s\"\ndata_timeout = \"2s\"\ndata_total_timeout = \"4s\"");
    let _server = setup.serve();
    let port = setup.port;
    let second = Duration::from_secs(1);
    let slow: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                assert!(c.reply().starts_with("220"));
                let in_data = i % 2 == 1;
                let (held, said) = if in_data {
                    c.cmd("EHLO slow.example", "250");
                    c.cmd("MAIL FROM:<officer@westmidlands.pnn.police.uk>", "250");
                    c.cmd("RCPT TO:<colleague@westmidlands.pnn.police.uk>", "250");
                    c.cmd("DATA", "354");
                    c.trickle_until_closed(
                        b"Subject: [NOT PROTECTIVELY MARKED] slow\r\n\r\nslow-token\r\n",
                        second,
                        Duration::from_secs(15),
                    )
                } else {
                    c.trickle_until_closed(b"EHLO slow.example", second, Duration::from_secs(15))
                };
                (in_data, held, said)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // Ordinary clients while all 20 hold their connections.
    let mut slowest = Duration::ZERO;
    for n in 0..5 {
        let start = Instant::now();
        send_acknowledged(port, n..n + 1);
        slowest = slowest.max(start.elapsed());
    }
    let start = Instant::now();
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{port}"),
        "--from",
        "officer@westmidlands.pnn.police.uk",
        "--to",
        "colleague@westmidlands.pnn.police.uk",
        "--header",
        "Subject: [NOT PROTECTIVELY MARKED] swaks while slow clients hold on",
        "--body",
        "fault-token-5",
    ]);
    slowest = slowest.max(start.elapsed());
    assert!(out.contains("<-  250 2.0.0 queued as"), "{out}");
    eprintln!("measured: SMTP with 20 clients at a byte a second: the slowest of 6 ordinary messages took {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");

    let mut longest = [Duration::ZERO; 2];
    for client in slow {
        let (in_data, held, said) = client.join().unwrap();
        longest[in_data as usize] = longest[in_data as usize].max(held);
        let (expected, deadline) = match in_data {
            true => ("421 4.4.2 message data not complete within 4s", 4),
            false => ("421 4.4.2 command timeout after 3s", 3),
        };
        assert!(said.contains(expected), "{said:?}");
        let deadline = Duration::from_secs(deadline);
        assert!(
            held >= deadline - Duration::from_millis(600) && held < deadline + second,
            "in data: {in_data}: held {held:?} for a deadline of {deadline:?}"
        );
    }
    eprintln!(
        "measured: slow clients held a connection at most {:?} (command deadline 3s), {:?} (data deadline 4s)",
        longest[0], longest[1]
    );
    let outbox = setup.path().join("outbox");
    assert_delivered(&outbox, &[0, 1, 2, 3, 4, 5]);
    assert!(
        !messages_in(&outbox)
            .iter()
            .any(|m| m.contains("slow-token")),
        "a message that was never complete must not be delivered"
    );
}

/// kill -9 in the middle of a burst while the next hop is down, then both back: every
/// message the clients saw acknowledged is delivered, and the record chain holds.
#[test]
fn kill_9_during_a_burst_loses_nothing_acknowledged() {
    let hop_port = free_port();
    let setup = HttpSetup::new(&internal_route(hop_port));
    let server = setup.serve();
    let smtp = setup.smtp;
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..4u32)
        .map(|t| {
            let acknowledged = acknowledged.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let n = t * 100 + i;
                    match send(smtp, n) {
                        Ok(()) => acknowledged.lock().unwrap().push(n),
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    // Kill once some, not all, are in.
    let some = wait_for(Duration::from_secs(20), || {
        (acknowledged.lock().unwrap().len() >= 20).then_some(())
    });
    assert!(some.is_some(), "the burst did not start");
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap()
        .success());
    for s in senders {
        s.join().unwrap();
    }
    drop(server);
    let mut expected = acknowledged.lock().unwrap().clone();
    expected.sort();
    assert!(expected.len() < 100, "killed during the burst, not after");

    let _server = setup.serve();
    let hop = NextHop::start(hop_port, &setup.path().join("hop"), "accept", 0);
    // Every acknowledged message is delivered; one in flight when the gateway died may
    // arrive too (it was spooled before 250 could be written), never a duplicate.
    let restarted = Instant::now();
    let got = wait_for(Duration::from_secs(20), || {
        let got = tokens(&hop.messages());
        expected.iter().all(|n| got.contains(n)).then_some(got)
    })
    .unwrap_or_else(|| tokens(&hop.messages()));
    eprintln!(
        "measured: kill -9 after {} of 100 acknowledged; {} delivered {:?} after restart",
        expected.len(),
        got.len(),
        restarted.elapsed()
    );
    for n in &expected {
        assert!(
            got.contains(n),
            "acknowledged message {n} lost: delivered {got:?}"
        );
    }
    let mut unique = got.clone();
    unique.dedup();
    assert_eq!(unique, got, "nothing delivered twice");
    assert!(got.len() <= expected.len() + 4, "{got:?} vs {expected:?}");
    let (ok, out) = audit(&setup, &setup.path().join("records.sqlite"), &["verify"]);
    assert!(ok, "{out}");
}
