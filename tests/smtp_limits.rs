//! End-to-end tests of what protects the SMTP listener, against the `markgate serve` binary
//! with real peers on 127.0.0.1: client certificates behind STARTTLS (Python smtplib with a
//! certificate made for the test), connection caps, command and data timeouts, attacks on
//! both (pipelining across a deadline, half-closed and half-open connections, a client that
//! never reads), and the message-size, line-length and recipient limits (a plain TCP
//! client, so every byte and the moment of each reply are under the test's control).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::smtp::{require, tcp_connect, Client, Setup};
use common::wait_for;

/// An OFFICIAL message (allowed internally), ending with the end-of-data line.
fn official(subject: &str, body: &str) -> String {
    format!(
        "From: officer@westmidlands.pnn.police.uk\r\nTo: colleague@westmidlands.pnn.police.uk\r\n\
         Subject: [OFFICIAL] {subject}\r\nX-Protective-Marking: OFFICIAL\r\n\r\n{body}\r\n.\r\n"
    )
}

const COLLEAGUE: &str = "colleague@westmidlands.pnn.police.uk";

/// Wait (bounded) until the outbox holds `n` messages, then a little longer to see that no
/// more arrive.
fn outbox_settles(setup: &Setup, n: usize) -> Vec<String> {
    wait_for(Duration::from_secs(10), || {
        (setup.outbox().len() >= n).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1000));
    setup.outbox()
}

// ---------------------------------------------------------------------------------------
// Client certificates

/// A CA made for the test: its PEM and the issuer that signs client certificates.
fn test_ca(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    rcgen::CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A client certificate for `name` signed by `ca`, written as `dir/stem-cert.pem` and
/// `dir/stem-key.pem`.
fn client_cert(
    ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    name: &str,
    dir: &Path,
    stem: &str,
) -> (PathBuf, PathBuf) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    let cert_path = dir.join(format!("{stem}-cert.pem"));
    let key_path = dir.join(format!("{stem}-key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// Python smtplib sending one OFFICIAL message; STARTTLS verified against the gateway's dev
/// CA, presenting `cert` when given. Prints `TLS <version>` once STARTTLS is done, then
/// `SENT`, or `REPLY <code> <text>` for a refusal, or `ERROR <type> <detail>`.
const SMTPLIB_CLIENT: &str = r#"
import smtplib, ssl, sys
port, ca, cert, key, subject, starttls = sys.argv[1:7]
def out(*a):
    print(*a, flush=True)
msg = ("From: officer@westmidlands.pnn.police.uk\r\n"
       "To: colleague@westmidlands.pnn.police.uk\r\n"
       "Subject: [OFFICIAL] " + subject + "\r\n"
       "X-Protective-Marking: OFFICIAL\r\n\r\nsent by " + subject + "\r\n")
try:
    s = smtplib.SMTP("127.0.0.1", int(port), timeout=10)
    s.ehlo("force-mta.test")
    if starttls == "starttls":
        ctx = ssl.create_default_context(cafile=ca)
        if cert:
            ctx.load_cert_chain(cert, key)
        s.starttls(context=ctx)
        out("TLS", s.sock.version())
    s.sendmail("officer@westmidlands.pnn.police.uk", ["colleague@westmidlands.pnn.police.uk"], msg)
    out("SENT")
    s.quit()
except smtplib.SMTPResponseException as e:
    out("REPLY", e.smtp_code, e.smtp_error.decode(errors="replace"))
except smtplib.SMTPRecipientsRefused as e:
    out("REPLY", e.recipients)
except Exception as e:
    out("ERROR", type(e).__name__, e)
"#;

fn smtplib_send(
    setup: &Setup,
    cert: Option<&(PathBuf, PathBuf)>,
    subject: &str,
    tls: bool,
) -> String {
    require("python3");
    let ca = setup.path().join("certs/dev-ca.pem");
    let (cert, key) = match cert {
        Some((c, k)) => (c.to_str().unwrap(), k.to_str().unwrap()),
        None => ("", ""),
    };
    let out = Command::new("timeout")
        .arg("30")
        .arg("python3")
        .args(["-c", SMTPLIB_CLIENT])
        .arg(setup.port.to_string())
        .arg(&ca)
        .args([cert, key, subject, if tls { "starttls" } else { "plain" }])
        .output()
        .expect("run python3");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn only_a_client_certificate_from_the_configured_ca_may_relay() {
    let setup = Setup::new("", None);
    let pki = setup.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let force_ca = test_ca("Force MTA CA");
    std::fs::write(pki.join("force-mta-ca.pem"), force_ca.pem()).unwrap();
    let mta = client_cert(&force_ca, "mta.westmidlands.test", &pki, "mta");
    let rogue = client_cert(
        &test_ca("Someone else's CA"),
        "mta.rogue.test",
        &pki,
        "rogue",
    );
    setup.smtp_keys(&format!(
        // require_tls is not set: requiring a client certificate requires TLS
        "require_client_cert = true\nclient_ca = \"{}\"",
        pki.join("force-mta-ca.pem").display()
    ));
    let server = setup.serve();

    let out = smtplib_send(&setup, Some(&mta), "from the force MTA", true);
    assert!(out.starts_with("TLS TLSv1."), "{out}");
    assert!(out.contains("SENT"), "{out}\n{}", server.log_text());

    for (who, cert) in [("no certificate", None), ("another CA", Some(&rogue))] {
        let out = smtplib_send(&setup, cert, who, true);
        assert!(!out.contains("SENT"), "{who}: relayed: {out}");
        assert!(
            out.contains("ERROR") || out.contains("REPLY 5"),
            "{who}: must be refused: {out}"
        );
    }
    // Without STARTTLS at all: no way around the certificate check.
    let out = smtplib_send(&setup, None, "in plaintext", false);
    assert!(
        out.starts_with(
            "REPLY 530 5.7.0 must issue a STARTTLS command first (smtp.require_client_cert)"
        ),
        "{out}"
    );

    let log = server.log_text();
    assert_eq!(
        log.matches("TLS handshake failed").count(),
        2,
        "both refused handshakes are logged:\n{log}"
    );
    let delivered = outbox_settles(&setup, 1);
    assert_eq!(
        delivered.len(),
        1,
        "only the force MTA's message: {delivered:#?}"
    );
    assert!(delivered[0].contains("sent by from the force MTA"));
    assert!(delivered[0].contains("with ESMTPS"), "{}", delivered[0]);
    assert_eq!(setup.spool_files(), 0);
}

// ---------------------------------------------------------------------------------------
// Connection caps

#[test]
fn a_third_connection_from_one_client_gets_421_and_the_first_two_keep_working() {
    let setup = Setup::new("", None);
    setup.smtp_keys("max_connections_per_client = 2");
    let server = setup.serve();
    let mut first = Client::connect(setup.port);
    let mut second = Client::connect(setup.port);
    first.hello();
    second.hello();

    let mut third = Client::connect(setup.port);
    let r = third.reply();
    assert_eq!(
        r, "421 4.7.0 too many connections from 127.0.0.1; try again later\r\n",
        "{r}"
    );
    assert!(third.closed_by_server(), "the refused connection is closed");

    // The cap is per client: another address still gets in.
    let mut other = Client::connect_from("127.0.0.2", setup.port);
    other.hello();

    // The first two are unaffected.
    let r = first.message(&[COLLEAGUE], &official("first of two", "one"));
    assert!(r.starts_with("250 2.0.0 queued as"), "{r}");
    second.cmd("NOOP", "250");

    // Once one leaves, 127.0.0.1 may connect again.
    second.cmd("QUIT", "221");
    assert!(second.closed_by_server());
    let greeting = wait_for(Duration::from_secs(5), || {
        let mut c = Client::connect(setup.port);
        let r = c.reply();
        r.starts_with("220 ").then_some((c, r))
    });
    let (mut again, _) = greeting.expect("a slot is free again after a client left");
    again.cmd("EHLO client.test", "250");
    again.cmd("QUIT", "221");

    assert!(
        server
            .log_text()
            .contains("connection refused: too many from this client"),
        "{}",
        server.log_text()
    );
    assert_eq!(outbox_settles(&setup, 1).len(), 1);
}

#[test]
fn max_connections_caps_all_clients_together() {
    let setup = Setup::new("", None);
    setup.smtp_keys("max_connections = 2");
    let _server = setup.serve();
    let mut a = Client::connect_from("127.0.0.1", setup.port);
    let mut b = Client::connect_from("127.0.0.2", setup.port);
    a.hello();
    b.hello();
    let mut c = Client::connect_from("127.0.0.3", setup.port);
    let r = c.reply();
    assert_eq!(
        r, "421 4.3.2 too many connections; try again later\r\n",
        "{r}"
    );
    assert!(c.closed_by_server());

    let r = a.message(&[COLLEAGUE], &official("while full", "still served"));
    assert!(r.starts_with("250 2.0.0 queued as"), "{r}");
    b.cmd("QUIT", "221");
    assert!(b.closed_by_server());
    let back = wait_for(Duration::from_secs(5), || {
        let mut c = Client::connect_from("127.0.0.3", setup.port);
        c.reply().starts_with("220 ").then_some(c)
    });
    back.expect("accepted again once a session ended")
        .cmd("EHLO client.test", "250");
}

// ---------------------------------------------------------------------------------------
// Timeouts

#[test]
fn an_idle_client_gets_421_4_4_2_after_the_command_timeout_and_is_disconnected() {
    let setup = Setup::new("", None);
    setup.smtp_keys("command_timeout = \"1s\"\ndata_timeout = \"30s\"");
    let _server = setup.serve();
    let mut idle = Client::connect(setup.port);
    idle.hello();
    let since = Instant::now();
    let r = idle.reply();
    let waited = since.elapsed();
    assert_eq!(
        r, "421 4.4.2 command timeout after 1s; closing connection\r\n",
        "{r}"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "after {waited:?}"
    );
    assert!(idle.closed_by_server());

    // Idle in the middle of a transaction is the same.
    let mut slow = Client::connect(setup.port);
    slow.hello();
    slow.cmd("MAIL FROM:<officer@westmidlands.pnn.police.uk>", "250");
    assert!(slow.reply().starts_with("421 4.4.2 command timeout"));
    assert!(slow.closed_by_server());

    // A client that keeps talking is not cut off.
    let mut busy = Client::connect(setup.port);
    busy.hello();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(500));
        busy.cmd("NOOP", "250");
    }
    let r = busy.message(&[COLLEAGUE], &official("busy", "kept talking"));
    assert!(r.starts_with("250 2.0.0 queued as"), "{r}");
}

#[test]
fn a_client_stalling_in_data_is_dropped_and_nothing_partial_is_kept() {
    let setup = Setup::new("", None);
    setup.smtp_keys("command_timeout = \"30s\"\ndata_timeout = \"1s\"");
    let server = setup.serve();
    let mut stalled = Client::connect(setup.port);
    stalled.hello();
    stalled.cmd("MAIL FROM:<officer@westmidlands.pnn.police.uk>", "250");
    stalled.cmd(&format!("RCPT TO:<{COLLEAGUE}>"), "250");
    stalled.cmd("DATA", "354");
    stalled.send(
        "From: officer@westmidlands.pnn.police.uk\r\nSubject: [OFFICIAL] partial\r\n\
         X-Protective-Marking: OFFICIAL\r\n\r\nPARTIAL-BODY half a message\r\n",
    );
    let since = Instant::now();

    // Others are served while it stalls.
    let mut other = Client::connect(setup.port);
    other.hello();
    let r = other.message(&[COLLEAGUE], &official("meanwhile", "complete message"));
    assert!(r.starts_with("250 2.0.0 queued as"), "{r}");

    let r = stalled.reply();
    let waited = since.elapsed();
    assert_eq!(
        r, "421 4.4.2 data timeout after 1s; closing connection\r\n",
        "{r}"
    );
    assert!(waited < Duration::from_secs(5), "after {waited:?}");
    assert!(stalled.closed_by_server());

    // And after it.
    let mut after = Client::connect(setup.port);
    after.hello();
    let r = after.message(&[COLLEAGUE], &official("afterwards", "complete message"));
    assert!(r.starts_with("250 2.0.0 queued as"), "{r}");

    let delivered = outbox_settles(&setup, 2);
    assert_eq!(delivered.len(), 2, "{delivered:#?}");
    assert!(
        delivered.iter().all(|m| !m.contains("PARTIAL-BODY")),
        "part of a message was delivered"
    );
    assert_eq!(setup.spool_files(), 0, "{}", server.log_text());
}

// ---------------------------------------------------------------------------------------
// Attacks on the deadlines and caps, from outside

/// Pipelining across the deadline: commands that each finish in time are served however
/// long the session lasts; a line left unfinished behind pipelined ones is cut at its own
/// deadline, counted from the answer to the last complete one.
#[test]
fn pipelining_across_the_command_deadline() {
    let setup = Setup::new("", None);
    setup.smtp_keys("command_timeout = \"2s\"");
    let _server = setup.serve();
    let mut c = Client::connect(setup.port);
    c.hello();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        c.cmd("NOOP", "250");
    }
    c.send("NOOP\r\nRSET\r\nNO");
    assert_eq!(c.reply(), "250 2.0.0 ok\r\n");
    assert_eq!(c.reply(), "250 2.0.0 reset\r\n");
    let answered = Instant::now();
    let (held, said) =
        c.trickle_until_closed(b"OP", Duration::from_millis(700), Duration::from_secs(10));
    assert_eq!(
        said,
        "421 4.4.2 command timeout after 2s; closing connection\r\n"
    );
    let cut = answered.elapsed();
    assert!(
        cut >= Duration::from_millis(1900) && cut < Duration::from_secs(3),
        "cut {cut:?} after the last answer ({held:?} trickling)"
    );
}

/// A client that shuts down its sending side right after a pipelined transaction still gets
/// every reply, and its message is delivered; one that does so in the middle of the data
/// gets no 250 and nothing of it is kept.
#[test]
fn a_half_closed_connection_gets_every_reply_and_a_half_sent_message_is_dropped() {
    let setup = Setup::new("", None);
    let server = setup.serve();
    let mut c = Client::connect(setup.port);
    c.send(&format!(
        "EHLO client.test\r\nMAIL FROM:<officer@westmidlands.pnn.police.uk>\r\nRCPT TO:<{COLLEAGUE}>\r\nDATA\r\n{}QUIT\r\n",
        official("half-closed", "HALF-CLOSED-COMPLETE")
    ));
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let said = c.rest_until_closed();
    assert!(said.contains("250 2.0.0 queued as"), "{said}");
    assert!(said.ends_with("221 2.0.0 bye\r\n"), "{said}");

    let mut c = Client::connect(setup.port);
    c.send(&format!(
        "EHLO client.test\r\nMAIL FROM:<officer@westmidlands.pnn.police.uk>\r\nRCPT TO:<{COLLEAGUE}>\r\nDATA\r\nSubject: [OFFICIAL] half\r\n\r\nHALF-CLOSED-PARTIAL"
    ));
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let said = c.rest_until_closed();
    assert!(
        said.ends_with("354 send the message, end with <CRLF>.<CRLF>\r\n"),
        "{said}"
    );

    let delivered = outbox_settles(&setup, 1);
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    assert!(delivered[0].contains("HALF-CLOSED-COMPLETE"));
    assert_eq!(setup.spool_files(), 0, "{}", server.log_text());
}

/// Connections that never say anything fill `smtp.max_connections`: the next client gets
/// `421 4.3.2`, each silent one is closed with `421 4.4.2` at the command deadline, and
/// then clients are served again.
#[test]
fn half_open_connections_up_to_the_cap_are_let_go_at_the_command_deadline() {
    let setup = Setup::new("", None);
    setup.smtp_keys("max_connections = 8\ncommand_timeout = \"2s\"");
    let _server = setup.serve();
    let opened = Instant::now();
    let mut silent: Vec<Client> = (0..8).map(|_| Client::connect(setup.port)).collect();
    let mut refused = Client::connect(setup.port);
    assert_eq!(
        refused.reply(),
        "421 4.3.2 too many connections; try again later\r\n"
    );
    for c in &mut silent {
        assert!(c.reply().starts_with("220 "));
        assert_eq!(
            c.reply(),
            "421 4.4.2 command timeout after 2s; closing connection\r\n"
        );
        assert!(c.closed_by_server());
    }
    let freed = opened.elapsed();
    assert!(freed < Duration::from_secs(4), "{freed:?}");
    let back = wait_for(Duration::from_secs(3), || {
        let mut c = Client::connect(setup.port);
        c.reply().starts_with("220 ").then_some(c)
    });
    let mut c = back.expect("served again once the silent ones were let go");
    c.cmd("EHLO client.test", "250");
    let r = c.message(&[COLLEAGUE], &official("after the silent ones", "served"));
    assert!(r.starts_with("250 2.0.0 queued as"), "{r}");
}

/// A client that asks for STARTTLS and then sends its handshake a byte a second is cut
/// at the command deadline: the handshake has one deadline in all, not one per byte.
#[test]
fn a_tls_handshake_trickled_a_byte_a_second_is_cut_at_the_command_deadline() {
    let setup = Setup::new("", None);
    setup.smtp_keys("command_timeout = \"2s\"");
    let _server = setup.serve();
    let mut c = Client::connect(setup.port);
    c.hello();
    c.cmd("STARTTLS", "220");
    // the start of a TLS record holding a ClientHello, never finished
    let hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let (held, said) =
        c.trickle_until_closed(&hello, Duration::from_millis(500), Duration::from_secs(10));
    assert_eq!(said, "", "nothing is said in the middle of a handshake");
    assert!(
        held >= Duration::from_millis(1500) && held < Duration::from_secs(3),
        "held {held:?}"
    );
}

/// A client that pipelines commands and never reads the replies is let go at the command
/// deadline once the server can no longer write to it (its slot is freed), not held for
/// ever on a blocked write.
#[test]
fn a_client_that_never_reads_its_replies_is_let_go() {
    let setup = Setup::new("", None);
    setup.smtp_keys("max_connections = 1\ncommand_timeout = \"2s\"");
    let _server = setup.serve();
    let port = setup.port;
    let flood = std::thread::spawn(move || {
        let stream = tcp_connect("127.0.0.1", port, Some(4096));
        stream
            .set_write_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let start = Instant::now();
        let noops = "NOOP\r\n".repeat(1000);
        while start.elapsed() < Duration::from_secs(30) {
            match (&stream).write_all(noops.as_bytes()) {
                Ok(()) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return start.elapsed(),
            }
        }
        panic!("the server kept a client that does not read for 30s");
    });
    let cut = flood.join().unwrap();
    eprintln!("measured: a client that pipelines and never reads was let go after {cut:?} (command_timeout 2s)");
    assert!(cut < Duration::from_secs(6), "{cut:?}");
    let back = wait_for(Duration::from_secs(3), || {
        let mut c = Client::connect(port);
        c.reply().starts_with("220 ").then_some(c)
    });
    back.expect("the slot is free again")
        .cmd("EHLO client.test", "250");
}

// ---------------------------------------------------------------------------------------
// Message limits

#[test]
fn message_size_limit_is_advertised_and_enforced_before_and_after_data() {
    let setup = Setup::new("", None);
    setup.smtp_keys("max_message_size = 2048");
    let _server = setup.serve();
    let mut c = Client::connect(setup.port);
    let ehlo = c.hello();
    assert!(ehlo.contains("250-SIZE 2048\r\n"), "{ehlo}");
    c.cmd(
        "MAIL FROM:<officer@westmidlands.pnn.police.uk> SIZE=999999",
        "552 5.3.4 message size 999999 exceeds the maximum of 2048 bytes",
    );
    // A client that does not declare the size is stopped at the end of data.
    let big = official("too big", &"0123456789 ".repeat(1000));
    let r = c.message(&[COLLEAGUE], &big);
    assert_eq!(
        r, "552 5.3.4 message exceeds the maximum size of 2048 bytes\r\n",
        "{r}"
    );
    // The session is still in step and a message within the limit goes through.
    let r = c.message(&[COLLEAGUE], &official("small", "fits"));
    assert!(r.starts_with("250 2.0.0 queued as"), "{r}");
    c.cmd("QUIT", "221");
    let delivered = outbox_settles(&setup, 1);
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].contains("Subject: [OFFICIAL] small"));
}

#[test]
fn a_line_longer_than_the_limit_is_refused_and_one_at_the_limit_is_not() {
    let setup = Setup::new("", None);
    setup.smtp_keys("max_line_length = 100");
    let _server = setup.serve();
    let mut c = Client::connect(setup.port);
    c.hello();
    let r = c.message(&[COLLEAGUE], &official("too long", &"a".repeat(101)));
    assert!(
        r.starts_with("550 5.6.0 line 6 is longer than 100 bytes"),
        "{r}"
    );
    let r = c.message(&[COLLEAGUE], &official("at the limit", &"b".repeat(100)));
    assert!(r.starts_with("250 2.0.0 queued as"), "{r}");
    c.cmd("QUIT", "221");
    let delivered = outbox_settles(&setup, 1);
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].contains("Subject: [OFFICIAL] at the limit"));
}

#[test]
fn recipients_beyond_the_limit_get_452_and_the_message_goes_to_the_others() {
    let setup = Setup::new("", None);
    setup.smtp_keys("max_recipients = 2");
    let _server = setup.serve();
    let mut c = Client::connect(setup.port);
    c.hello();
    c.cmd("MAIL FROM:<officer@westmidlands.pnn.police.uk>", "250");
    c.cmd("RCPT TO:<b@westmidlands.pnn.police.uk>", "250 2.1.5");
    c.cmd("RCPT TO:<c@westmidlands.pnn.police.uk>", "250 2.1.5");
    c.cmd(
        "RCPT TO:<d@westmidlands.pnn.police.uk>",
        "452 4.5.3 too many recipients (at most 2 per message)",
    );
    c.cmd("DATA", "354");
    c.send(&official("to two", "hello"));
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 queued as"), "{r}");
    c.cmd("QUIT", "221");
    let delivered = outbox_settles(&setup, 2);
    let mut to: Vec<&str> = delivered
        .iter()
        .map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Delivered-To: "))
                .expect("Delivered-To")
        })
        .collect();
    to.sort();
    assert_eq!(
        to,
        [
            "b@westmidlands.pnn.police.uk",
            "c@westmidlands.pnn.police.uk"
        ]
    );
}

/// STARTTLS command injection (CVE-2011-0411): commands pipelined in plaintext behind
/// STARTTLS must never be run inside the TLS session. markgate closes the connection.
#[test]
fn commands_pipelined_behind_starttls_are_not_run() {
    let setup = Setup::new("", None);
    let _server = setup.serve();
    let mut client = Client::connect(setup.port);
    let ehlo = client.hello();
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    client.send("STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n");
    // Whatever arrives before the close, it is never a reply to the injected command.
    let rest = client.rest_until_closed();
    assert!(
        !rest.contains("250"),
        "the injected command was answered: {rest:?}"
    );
}
