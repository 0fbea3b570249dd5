//! Protocol tests of the inbound session over in-memory IO: the state machine, limits,
//! relay refusal, protocol edges, and what reaches the spool and queue (smuggling: see
//! smtp_smuggling.rs).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::smtp::{policy, recorder, start};
use markgate::config::Config;
use markgate::service::gateway::Gateway;
use markgate::service::snapshot::Snapshot;
use markgate::smtp::inbound::{Peer, Session};
use markgate::smtp::queue::spool::Spool;
use markgate::smtp::queue::QueueHandle;
use markgate::smtp::SmtpContext;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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

// ---------------------------------------------------------------------------------------
// Deadlines (RFC 5321 §4.5.3.2), on paused time: the clock only moves when every task
// waits, so each figure below is exact and no test waits for real.

/// One byte a second never finishes a command line: the client is cut at
/// `smtp.command_timeout` (default 5m) from the greeting, not kept by each byte.
#[tokio::test(start_paused = true)]
async fn a_command_line_trickled_a_byte_a_second_is_cut_at_the_command_deadline() {
    let mut h = start(|_| {}, true);
    let _ = h.reply().await;
    let start = Instant::now();
    let line = format!("NOOP {}\r\n", "x".repeat(500));
    let r = h.trickle(line.as_bytes(), Duration::from_secs(1)).await;
    let waited = start.elapsed();
    assert_eq!(
        r.as_deref(),
        Some("421 4.4.2 command timeout after 300s; closing connection\r\n")
    );
    assert!(
        (Duration::from_secs(300)..=Duration::from_secs(301)).contains(&waited),
        "{waited:?}"
    );
    assert_eq!(h.next_reply().await, None, "the session is closed");
}

/// The deadline is per command: slow commands that each finish in time are all served,
/// however long the session lasts.
#[tokio::test(start_paused = true)]
async fn each_command_has_its_own_deadline() {
    let mut h = start(|c| c.smtp.command_timeout = Duration::from_secs(10), true);
    let _ = h.reply().await;
    let start = Instant::now();
    for _ in 0..3 {
        // 6 bytes, 6 seconds: inside 10s
        let r = h.trickle(b"NOOP\r\n", Duration::from_secs(1)).await;
        assert_eq!(r.as_deref(), Some("250 2.0.0 ok\r\n"));
    }
    assert!(
        start.elapsed() >= Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    h.cmd("QUIT", "221").await;
}

/// Pipelining across the deadline: the commands that arrived complete are answered; the
/// line left unfinished has its deadline from the last answer, and is cut there.
#[tokio::test(start_paused = true)]
async fn a_partial_line_after_pipelined_commands_is_cut_at_its_own_deadline() {
    let mut h = start(|c| c.smtp.command_timeout = Duration::from_secs(10), true);
    let _ = h.reply().await;
    tokio::time::advance(Duration::from_secs(8)).await;
    let start = Instant::now();
    h.send("NOOP\r\nRSET\r\nNO").await;
    assert_eq!(h.reply().await, "250 2.0.0 ok\r\n");
    assert_eq!(h.reply().await, "250 2.0.0 reset\r\n");
    let r = h
        .trickle(b"OP 12345678901234567890\r\n", Duration::from_secs(1))
        .await;
    assert_eq!(
        r.as_deref(),
        Some("421 4.4.2 command timeout after 10s; closing connection\r\n")
    );
    let waited = start.elapsed();
    assert!(
        (Duration::from_secs(10)..=Duration::from_secs(11)).contains(&waited),
        "{waited:?}"
    );
}

/// Message data a byte a second never pauses for `smtp.data_timeout` (3m), and is cut at
/// `smtp.data_total_timeout` (10m) from the 354; nothing is queued.
#[tokio::test(start_paused = true)]
async fn data_trickled_a_byte_a_second_is_cut_at_the_data_total_deadline() {
    let mut h = start(|_| {}, true);
    h.start_data().await;
    let start = Instant::now();
    let body = OFFICIAL_MESSAGE.replace("Hello", &"Hello ".repeat(200));
    let r = h.trickle(body.as_bytes(), Duration::from_secs(1)).await;
    let waited = start.elapsed();
    let r = r.expect("a reply before the data ended");
    assert!(
        r.starts_with("421 4.4.2 message data not complete within 600s; closing connection"),
        "{r}"
    );
    assert!(
        (Duration::from_secs(600)..=Duration::from_secs(601)).contains(&waited),
        "{waited:?}"
    );
    assert!(h.queued.try_recv().is_err(), "nothing may be queued");
}

/// A pause in the data as long as `smtp.data_timeout` ends the session; the reply names the
/// configured time.
#[tokio::test(start_paused = true)]
async fn a_pause_in_the_data_is_cut_at_the_data_timeout() {
    let mut h = start(|c| c.smtp.data_timeout = Duration::from_millis(1500), true);
    h.start_data().await;
    tokio::time::advance(Duration::from_secs(1)).await;
    h.send("Subject: [OFFICIAL] stalled\r\n").await;
    let sent = Instant::now();
    let r = h.next_reply().await;
    assert_eq!(
        r.as_deref(),
        Some("421 4.4.2 data timeout after 1.5s; closing connection\r\n")
    );
    assert_eq!(
        sent.elapsed(),
        Duration::from_millis(1500),
        "measured from the last data"
    );
    assert!(h.queued.try_recv().is_err(), "nothing may be queued");
}

/// A client that is fast is never near a deadline: a message trickled within the limits
/// is accepted and queued.
#[tokio::test(start_paused = true)]
async fn a_slow_message_within_the_deadlines_is_accepted() {
    let mut h = start(
        |c| {
            c.smtp.data_timeout = Duration::from_secs(2);
            c.smtp.data_total_timeout = Duration::from_secs(1000);
        },
        true,
    );
    h.start_data().await;
    let (last, message) = OFFICIAL_MESSAGE.as_bytes().split_last().unwrap();
    let early = h.trickle(message, Duration::from_secs(1)).await;
    assert_eq!(early, None, "nothing said before the end of the data");
    // The decision, record and spool run on threads the paused clock does not wait for:
    // the last byte, then the reply however long (in paused time) it takes.
    h.send_bytes(&[*last]).await;
    let r = h.next_reply().await.expect("a reply to the end of data");
    assert!(r.starts_with("250 2.0.0 queued as "), "{r}");
    assert!(h.queued.try_recv().is_ok());
}

// ---------------------------------------------------------------------------------------
// Protocol edges (RFC 5321/6531/6152; issue 13)

/// A command line over `smtp.max_command_line`, wherever the rest of it would land in the
/// reads of the session (around 4 KiB and 32 KiB), gets one `500 5.5.2`; the rest of the
/// line, here a MAIL command, is never run.
#[tokio::test]
async fn a_command_line_over_the_limit_gets_one_500_and_its_tail_is_never_run() {
    let mut h = start(|_| {}, true);
    let tail = "MAIL FROM:<tail@evil.test>\r\n";
    let pads = (4080..4110).chain(32 * 1024 - 40..32 * 1024 + 8);
    for pad in pads {
        h.reconnect();
        h.hello().await;
        h.send(&format!("NOOP {}{tail}RSET\r\n", "x".repeat(pad)))
            .await;
        let r = h.reply().await;
        assert_eq!(
            r, "500 5.5.2 NOOP line longer than 564 octets; the whole line was discarded, send a shorter command\r\n",
            "pad {pad}"
        );
        let r = h.reply().await;
        assert!(
            r.starts_with("250 2.0.0 reset"),
            "pad {pad}: the tail ran: {r}"
        );
    }
}

#[tokio::test]
async fn the_command_line_limit_is_configurable_and_counts_the_crlf() {
    let mut h = start(|c| c.smtp.max_command_line = 600, true);
    h.hello().await;
    // "NOOP " + 593 + CRLF = 600 octets
    h.cmd(&format!("NOOP {}", "x".repeat(593)), "250").await;
    h.cmd(&format!("NOOP {}", "x".repeat(594)), "500 5.5.2")
        .await;
    // the default: 512 octets (RFC 5321) and what SIZE, BODY and SMTPUTF8 may add
    let mut h = start(|_| {}, true);
    h.hello().await;
    h.cmd(&format!("NOOP {}", "x".repeat(557)), "250").await;
    h.cmd(
        &format!("NOOP {}", "x".repeat(558)),
        "500 5.5.2 NOOP line longer than 564 octets",
    )
    .await;
    h.cmd(
        &format!(
            "MAIL FROM:<{}@{}westmidlands.pnn.police.uk> SIZE=9999999999999999999 BODY=8BITMIME SMTPUTF8",
            "a".repeat(64),
            format!("{}.", "d".repeat(62)).repeat(2)
        ),
        "552 5.3.4",
    )
    .await;
}

#[tokio::test]
async fn rcpt_to_postmaster_is_accepted_and_decided_as_internal() {
    let mut h = start(|_| {}, true);
    h.hello().await;
    h.cmd("MAIL FROM:<a@westmidlands.pnn.police.uk>", "250")
        .await;
    let r = h.cmd("RCPT TO:<Postmaster>", "250 2.1.5").await;
    assert!(r.contains("postmaster@westmidlands.pnn.police.uk"), "{r}");
    h.cmd("RCPT TO:<>", "501 5.1.3").await;
    h.cmd("DATA", "354").await;
    h.send(OFFICIAL_MESSAGE).await;
    let r = h.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let env = h.queued.recv().await.unwrap();
    assert_eq!(env.copies.len(), 1);
    assert_eq!(env.copies[0].destination, "internal");
    assert_eq!(
        env.copies[0].recipients,
        ["postmaster@westmidlands.pnn.police.uk"]
    );
}

#[tokio::test]
async fn parameters_of_extensions_not_offered_get_555() {
    let mut h = start(|_| {}, true);
    h.hello().await;
    for mail in [
        "MAIL FROM:<a@westmidlands.pnn.police.uk> BODY=BINARYMIME",
        "MAIL FROM:<a@westmidlands.pnn.police.uk> RET=FULL",
        "MAIL FROM:<a@westmidlands.pnn.police.uk> ENVID=abc",
        "MAIL FROM:<a@westmidlands.pnn.police.uk> AUTH=<>",
        "MAIL FROM:<a@westmidlands.pnn.police.uk> X-UNKNOWN=1",
    ] {
        h.cmd(mail, "555 5.5.4").await;
    }
    // REQUIRETLS is offered after STARTTLS only; without TLS it has its own reply
    h.cmd(
        "MAIL FROM:<a@westmidlands.pnn.police.uk> REQUIRETLS",
        "530 5.7.10",
    )
    .await;
    h.cmd(
        "MAIL FROM:<a@westmidlands.pnn.police.uk> BODY=8BITMIME SIZE=100",
        "250 2.1.0",
    )
    .await;
    for rcpt in [
        "RCPT TO:<b@westmidlands.pnn.police.uk> NOTIFY=SUCCESS,FAILURE",
        "RCPT TO:<b@westmidlands.pnn.police.uk> NOTIFY=NEVER",
        "RCPT TO:<b@westmidlands.pnn.police.uk> ORCPT=rfc822;b@westmidlands.pnn.police.uk",
    ] {
        h.cmd(rcpt, "555 5.5.4").await;
    }
    h.cmd("RCPT TO:<b@westmidlands.pnn.police.uk>", "250").await;
}

#[tokio::test]
async fn a_utf8_address_needs_smtputf8() {
    let mut h = start(|_| {}, true);
    h.hello().await;
    h.cmd("MAIL FROM:<jösé@westmidlands.pnn.police.uk>", "553 5.6.7")
        .await;
    h.cmd("MAIL FROM:<a@westmidlands.pnn.police.uk>", "250")
        .await;
    h.cmd("RCPT TO:<zoë@westmidlands.pnn.police.uk>", "553 5.6.7")
        .await;
    h.cmd("RSET", "250").await;
    h.cmd(
        "MAIL FROM:<jösé@westmidlands.pnn.police.uk> SMTPUTF8",
        "250 2.1.0",
    )
    .await;
    h.cmd("RCPT TO:<zoë@westmidlands.pnn.police.uk>", "250 2.1.5")
        .await;
}

const EIGHT_BIT_MESSAGE: &[u8] = b"From: a@westmidlands.pnn.police.uk\r\n\
To: b@westmidlands.pnn.police.uk\r\nSubject: [OFFICIAL] caf\xc3\xa9\r\n\
X-Protective-Marking: OFFICIAL\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
R\xc3\xa9sum\xc3\xa9 attached\r\n.\r\n";

/// 8-bit data needs BODY=8BITMIME (or SMTPUTF8): refused without it, carried with it, its
/// `Content-Transfer-Encoding: 8bit` label kept.
#[tokio::test]
async fn eight_bit_data_without_body_8bitmime_is_refused_and_with_it_kept_as_8bit() {
    let mut h = start(|_| {}, true);
    h.hello().await;
    h.cmd("MAIL FROM:<a@westmidlands.pnn.police.uk>", "250")
        .await;
    h.cmd("RCPT TO:<b@westmidlands.pnn.police.uk>", "250").await;
    h.cmd("DATA", "354").await;
    h.send_bytes(EIGHT_BIT_MESSAGE).await;
    let r = h.reply().await;
    assert!(
        r.starts_with("550 5.6.0") && r.contains("BODY=8BITMIME"),
        "{r}"
    );
    assert!(h.queued.try_recv().is_err());

    h.cmd(
        "MAIL FROM:<a@westmidlands.pnn.police.uk> BODY=8BITMIME",
        "250",
    )
    .await;
    h.cmd("RCPT TO:<b@westmidlands.pnn.police.uk>", "250").await;
    h.cmd("DATA", "354").await;
    h.send_bytes(EIGHT_BIT_MESSAGE).await;
    let r = h.reply().await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let env = h.queued.recv().await.unwrap();
    let spooled = h.spool.load(&env.id).unwrap();
    let copy = spooled.copy_bytes(0);
    let needle: &[u8] = b"Content-Transfer-Encoding: 8bit\r\n\r\nR\xc3\xa9sum\xc3\xa9 attached\r\n";
    assert!(
        copy.windows(needle.len()).any(|w| w == needle),
        "{}",
        String::from_utf8_lossy(copy)
    );
    assert!(!String::from_utf8_lossy(copy).contains(": 7bit"));
}

#[tokio::test]
async fn an_over_long_ehlo_and_rcpt_before_mail_get_replies_that_say_what_to_do() {
    let mut h = start(|_| {}, true);
    let _ = h.reply().await;
    let r = h
        .cmd(&format!("EHLO {}", "a".repeat(300)), "501 5.5.4")
        .await;
    assert!(r.contains("300 octets") && r.contains("255"), "{r}");
    let r = h.cmd("EHLO", "501 5.5.4").await;
    assert!(r.contains("domain name"), "{r}");
    let r = h
        .cmd(
            &format!("EHLO {}", "a".repeat(600)),
            "500 5.5.2 EHLO line longer than 564 octets",
        )
        .await;
    assert!(r.contains("255 octets"), "{r}");
    h.cmd("EHLO c.test", "250").await;
    let r = h
        .cmd("RCPT TO:<b@westmidlands.pnn.police.uk>", "503 5.5.1")
        .await;
    assert!(
        r.contains("RCPT before MAIL") && r.contains("MAIL FROM"),
        "{r}"
    );
}
