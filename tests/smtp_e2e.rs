//! End-to-end tests of the SMTP gateway with real peers on 127.0.0.1: the `markgate serve`
//! binary, swaks and Python smtplib as clients, aiosmtpd as the next hop (with STARTTLS on a
//! test CA from `markgate certs dev`). Missing tools fail the test with a clear message
//! (tests/deps.sh installs them).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::smtp::{fixture, open_cover_bundle, swaks, Setup, Sink};
use common::Server;
use common::{free_port, wait_for};

#[test]
fn blocked_message_gets_550_and_reaches_nobody() {
    // RESTRICTED by its marking (and, until the marking readers land, by making unmarked
    // mail RESTRICTED in this copy of the policy).
    let setup = Setup::new(
        "",
        Some(("unmarked = \"OFFICIAL\"", "unmarked = \"RESTRICTED\"")),
    );
    let _server = setup.serve();
    let port = setup.port.to_string();
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{port}"),
        "--from",
        "officer@westmidlands.pnn.police.uk",
        "--to",
        "friend@gmail.com,colleague@westmidlands.pnn.police.uk",
        "--header",
        "Subject: [RESTRICTED] case notes",
        "--header",
        "X-Protective-Marking: RESTRICTED",
    ]);
    assert!(
        out.contains(
            "<** 550-5.7.1 <friend@gmail.com>: RESTRICTED may not be sent to gmail.com (internet)"
        ),
        "{out}"
    );
    assert!(out.contains("[rule restricted-not-internet]"), "{out}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        setup.outbox().is_empty(),
        "a blocked message reached someone"
    );
    assert_eq!(setup.spool_files(), 0);
}

/// Fail closed: a marking header the policy cannot read stops the message for every
/// recipient, with a reply the sender can act on.
#[test]
fn unreadable_marking_gets_550_and_reaches_nobody() {
    let setup = Setup::new("", None);
    let _server = setup.serve();
    let port = setup.port.to_string();
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{port}"),
        "--from",
        "officer@westmidlands.pnn.police.uk",
        "--to",
        "colleague@westmidlands.pnn.police.uk",
        "--header",
        "Subject: case notes",
        "--header",
        "X-Protective-Marking: OFICIAL-SENSITIVE",
    ]);
    assert!(out.contains("<** 550 5.7.1"), "{out}");
    assert!(out.contains("[rule marking-unreadable]"), "{out}");
    assert!(out.contains("OFICIAL-SENSITIVE"), "{out}");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        setup.outbox().is_empty(),
        "an unreadable marking was forwarded"
    );
}

/// The gateway and the sink share the gateway's dev CA.
fn tls_pair(routes: &str, sink_tls: bool) -> (Setup, Sink, tempfile::TempDir) {
    let setup_dir_probe = Setup::new("", None);
    // Regenerate the config with the routes, keeping the certificates.
    let scratch = tempfile::tempdir().unwrap();
    let certs = setup_dir_probe.path().join("certs");
    // a smart host with TLS stands for one that keeps it to the end: it offers REQUIRETLS
    // (delivery.routes.<class>.requiretls = "required" sends tls copies only to such)
    let sink = Sink::start_at(
        "127.0.0.1",
        free_port(),
        scratch.path(),
        sink_tls.then_some(certs.as_path()),
        sink_tls,
    );
    setup_dir_probe.append_config(&routes.replace("SINK_PORT", &sink.port.to_string()));
    (setup_dir_probe, sink, scratch)
}

#[test]
fn official_one_off_to_a_partner_arrives_with_the_statement() {
    let (setup, sink, _scratch) = tls_pair(
        "[delivery.routes.secure]\nhost = \"127.0.0.1\"\nport = SINK_PORT\ntls = \"required\"\ntls_name = \"localhost\"\n",
        true,
    );
    let server = setup.serve();
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", setup.port),
        "--from",
        "officer@westmidlands.pnn.police.uk",
        "--to",
        "analyst@suffolk.pnn.police.uk",
        "--header",
        "Subject: [OFFICIAL] meeting notes",
        "--header",
        "X-Protective-Marking: OFFICIAL",
        "--header",
        "TLS-Required: No",
        "--body",
        "Notes from the meeting.",
    ]);
    assert!(
        out.contains("<~  250 2.0.0 queued as") || out.contains("<-  250 2.0.0 queued as"),
        "{out}"
    );
    let got = wait_for(Duration::from_secs(20), || {
        let r = sink.received();
        (!r.is_empty()).then_some(r)
    })
    .unwrap_or_else(|| panic!("not delivered:\n{}", server.log_text()));
    assert_eq!(got.len(), 1);
    let (meta, eml) = &got[0];
    assert_eq!(meta["tls"], true, "tls was required: {meta}");
    assert_eq!(meta["to"][0], "analyst@suffolk.pnn.police.uk");
    assert!(eml.contains("X-Markgate-Statement: stamped"), "{eml}");
    assert!(eml.contains("In receiving this information, you must ensure"));
    assert_eq!(eml.matches("In receiving this information").count(), 1);
    assert!(
        !eml.to_ascii_lowercase().contains("tls-required"),
        "TLS-Required must be removed"
    );
    assert!(eml.contains("Notes from the meeting."));
    let statement_at = eml.find("In receiving this information").unwrap();
    let body_at = eml.find("Notes from the meeting.").unwrap();
    assert!(
        statement_at < body_at,
        "statement must be the first text part"
    );
}

/// Send an OFFICIAL message to a Suffolk analyst (a `secure` destination) and expect `250`.
fn official_to_suffolk(setup: &Setup, subject: &str) {
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", setup.port),
        "--from",
        "officer@westmidlands.pnn.police.uk",
        "--to",
        "analyst@suffolk.pnn.police.uk",
        "--header",
        &format!("Subject: [OFFICIAL] {subject}"),
        "--header",
        "X-Protective-Marking: OFFICIAL",
    ]);
    assert!(out.contains("250 2.0.0 queued as"), "{out}");
}

/// The bounce the sender finds in the outbox.
fn bounce(setup: &Setup, server: &Server) -> String {
    wait_for(Duration::from_secs(20), || {
        setup
            .outbox()
            .into_iter()
            .find(|m| m.contains("Undelivered mail returned to sender"))
    })
    .unwrap_or_else(|| panic!("no bounce:\n{}", server.log_text()))
}

#[test]
fn tls_requirement_never_falls_back_to_plaintext_and_bounces_after_the_lifetime() {
    // The next hop offers no STARTTLS: nothing may reach it; the sender gets a DSN.
    let (setup, sink, _scratch) = tls_pair(
        "lifetime = \"2s\"\n[delivery.routes.secure]\nhost = \"127.0.0.1\"\nport = SINK_PORT\ntls = \"none\"\n",
        false,
    );
    let server = setup.serve();
    official_to_suffolk(&setup, "plain please");
    let bounce = bounce(&setup, &server);
    assert!(
        bounce.contains("Delivered-To: officer@westmidlands.pnn.police.uk"),
        "{bounce}"
    );
    assert!(bounce.contains("analyst@suffolk.pnn.police.uk"));
    assert!(bounce.contains("message/delivery-status"));
    assert!(
        !bounce.contains("In receiving this information"),
        "bounce must not carry the body"
    );
    assert!(sink.received().is_empty(), "delivered without TLS");
    assert!(
        wait_for(Duration::from_secs(5), || (setup.spool_files() == 0)
            .then_some(()))
        .is_some()
    );
}

#[test]
fn a_bounce_carries_the_next_hops_enhanced_status_code() {
    // The next hop has no such mailbox: 550 5.1.1, and the sender's bounce says 5.1.1
    // (unknown user), not a generic 5.0.0.
    let setup = Setup::new("", None);
    let scratch = tempfile::tempdir().unwrap();
    let certs = setup.path().join("certs");
    let sink = Sink::start_with(
        free_port(),
        scratch.path(),
        Some(&certs),
        // a smart host that keeps TLS to the end (REQUIRETLS), without that mailbox
        &["--requiretls", "--reject", "analyst@suffolk.pnn.police.uk"],
    );
    setup.append_config(&format!(
        "[delivery.routes.secure]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"required\"\ntls_name = \"localhost\"\n",
        sink.port
    ));
    let server = setup.serve();
    official_to_suffolk(&setup, "to a mailbox that is not there");
    let bounce = bounce(&setup, &server);
    assert!(
        bounce.contains("Final-Recipient: rfc822; analyst@suffolk.pnn.police.uk\r\nAction: failed\r\nStatus: 5.1.1\r\n"),
        "{bounce}"
    );
    assert!(bounce.contains("User unknown"), "{bounce}");
    assert!(sink.received().is_empty());
}

#[test]
fn a_next_hop_whose_certificate_is_not_trusted_gets_nothing() {
    // The sink presents a certificate from another CA than the one markgate trusts.
    let stranger = Setup::new("", None);
    let setup = Setup::new("", None);
    let scratch = tempfile::tempdir().unwrap();
    let sink = Sink::start(scratch.path(), Some(&stranger.path().join("certs")));
    setup.append_config(&format!(
        "lifetime = \"2s\"\n[delivery.routes.secure]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"required\"\ntls_name = \"localhost\"\n",
        sink.port
    ));
    let server = setup.serve();
    official_to_suffolk(&setup, "to an impostor");
    let bounce = bounce(&setup, &server);
    assert!(bounce.contains("analyst@suffolk.pnn.police.uk"), "{bounce}");
    assert!(
        sink.received().is_empty(),
        "delivered to an untrusted next hop"
    );
    let log = server.log_text();
    assert!(log.contains("delivery deferred"), "{log}");
    assert!(log.to_ascii_lowercase().contains("certificate"), "{log}");
}

#[test]
fn a_pooled_connection_the_next_hop_closed_is_replaced_at_once() {
    let setup = Setup::new("", None);
    let scratch = tempfile::tempdir().unwrap();
    let port = free_port();
    let certs = setup.path().join("certs");
    let sink = Sink::start_at("127.0.0.1", port, scratch.path(), Some(&certs), true);
    setup.append_config(&format!(
        "[delivery.routes.internal]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"required\"\ntls_name = \"localhost\"\n"
    ));
    let server = setup.serve();
    let send = |subject: &str| {
        let out = swaks(&[
            "--server",
            &format!("127.0.0.1:{}", setup.port),
            "--from",
            "officer@westmidlands.pnn.police.uk",
            "--to",
            "colleague@westmidlands.pnn.police.uk",
            "--header",
            &format!("Subject: {subject}"),
        ]);
        assert!(out.contains("250 2.0.0 queued as"), "{out}");
    };
    send("first");
    wait_for(Duration::from_secs(20), || {
        (sink.received().len() == 1).then_some(())
    })
    .unwrap_or_else(|| panic!("first not delivered:\n{}", server.log_text()));
    // The next hop restarts: the pooled connection to it is now closed.
    drop(sink);
    let second_dir = tempfile::tempdir().unwrap();
    let sink = Sink::start_at("127.0.0.1", port, second_dir.path(), Some(&certs), true);
    send("second");
    // Replaced within the same attempt: no deferral is logged.
    let got = wait_for(Duration::from_secs(15), || {
        let r = sink.received();
        (!r.is_empty()).then_some(r)
    })
    .unwrap_or_else(|| panic!("second not delivered at once:\n{}", server.log_text()));
    assert!(got[0].1.contains("Subject: second"), "{}", got[0].1);
    assert!(
        !server.log_text().contains("delivery deferred"),
        "{}",
        server.log_text()
    );
}

#[test]
fn starttls_completes_with_the_test_certificate() {
    let setup = Setup::new("", None);
    let _server = setup.serve();
    let ca = setup.path().join("certs/dev-ca.pem");
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", setup.port),
        "--from",
        "officer@westmidlands.pnn.police.uk",
        "--to",
        "colleague@westmidlands.pnn.police.uk",
        "--header",
        "Subject: [OFFICIAL] over tls",
        "--header",
        "X-Protective-Marking: OFFICIAL",
        "--tls",
        "--tls-verify",
        "--tls-ca-path",
        ca.to_str().unwrap(),
        "--tls-sni",
        "localhost",
    ]);
    assert!(out.contains("TLS started"), "{out}");
    assert!(out.contains("250 2.0.0 queued as"), "{out}");
    let mail = wait_for(Duration::from_secs(10), || setup.outbox().pop()).expect("delivered");
    assert!(mail.contains("with ESMTPS"), "{mail}");
}

#[test]
fn relay_from_outside_the_allowed_networks_is_refused() {
    let setup = Setup::new("", None);
    setup.smtp_keys("relay_networks = [\"127.0.0.1/32\"]");
    let _server = setup.serve();
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", setup.port),
        "--local-interface",
        "127.0.0.2",
        "--from",
        "someone@example.org",
        "--to",
        "analyst@suffolk.pnn.police.uk",
    ]);
    assert!(out.contains("554 5.7.1"), "{out}");
    assert!(
        out.contains("relay access denied: client 127.0.0.2"),
        "{out}"
    );
    let ok = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", setup.port),
        "--local-interface",
        "127.0.0.1",
        "--from",
        "officer@westmidlands.pnn.police.uk",
        "--to",
        "colleague@westmidlands.pnn.police.uk",
        "--header",
        "Subject: [OFFICIAL] inside",
        "--header",
        "X-Protective-Marking: OFFICIAL",
    ]);
    assert!(ok.contains("250 2.0.0 queued as"), "{ok}");
}

#[test]
fn kill_9_during_a_burst_loses_no_acknowledged_message() {
    let setup = Setup::new("", None);
    let server = setup.serve();
    let burst = Command::new("python3")
        .arg(fixture("burst.py"))
        .args([setup.port.to_string(), "400".into(), "10".into()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 for burst.py");
    // Kill once the burst is well under way.
    let spool = setup.path().join("spool");
    wait_for(Duration::from_secs(20), || {
        std::fs::read_dir(&spool)
            .ok()
            .and_then(|d| (d.count() > 5).then_some(()))
    });
    std::thread::sleep(Duration::from_millis(300));
    server.signal("KILL");
    let out = burst.wait_with_output().unwrap();
    let acked: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        acked.len() > 5,
        "the burst should have got some messages in"
    );
    drop(server);
    let server = setup.serve();
    let missing = wait_for(Duration::from_secs(60), || {
        let delivered = setup.outbox().join("\n");
        let missing: Vec<&String> = acked
            .iter()
            .filter(|id| !delivered.contains(id.as_str()))
            .collect();
        missing.is_empty().then_some(())
    });
    assert!(
        missing.is_some(),
        "acknowledged messages lost after kill -9 ({} acked):\n{}",
        acked.len(),
        server.log_text()
    );
}

#[test]
fn sigterm_stops_accepting_and_keeps_the_spool() {
    let setup = Setup::new("", None);
    let mut server = setup.serve();
    server.signal("TERM");
    let status = wait_for(Duration::from_secs(15), || {
        server.child.try_wait().ok().flatten()
    })
    .expect("markgate must exit after SIGTERM");
    assert!(status.success(), "{}", server.log_text());
    assert!(std::net::TcpStream::connect(("127.0.0.1", setup.port)).is_err());
    assert!(setup.path().join("spool").exists());
}

/// A SIGTERM that arrives while the gateway is still starting (before any listener is
/// bound) takes the clean path: exit 0, "shutdown requested", and the shutdown checkpoint
/// written. The signal is sent the moment the log shows the policy loaded, which is before
/// the listeners start; a handler installed only after them would leave the default action
/// (death by SIGTERM, no checkpoint). Three starts, as the window is milliseconds wide.
#[test]
fn sigterm_while_starting_shuts_down_cleanly_with_a_checkpoint() {
    use std::os::unix::process::ExitStatusExt;
    for attempt in 0..3 {
        let setup = Setup::new("", None);
        let mut server = Server::start(setup.path(), &setup.path().join("markgate.toml"));
        let started = std::time::Instant::now();
        while !server.log_text().contains("policy loaded") {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no start: {}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        server.signal("TERM");
        let status = wait_for(Duration::from_secs(15), || {
            server.child.try_wait().ok().flatten()
        })
        .expect("markgate must exit after SIGTERM");
        let log = server.log_text();
        assert_eq!(
            (status.code(), status.signal()),
            (Some(0), None),
            "attempt {attempt}: not a clean shutdown:\n{log}"
        );
        assert!(log.contains("shutdown requested"), "{log}");
        let checkpoints =
            std::fs::read_to_string(setup.path().join("var/checkpoints.log")).unwrap_or_default();
        let last: serde_json::Value = serde_json::from_str(
            checkpoints
                .lines()
                .last()
                .unwrap_or_else(|| panic!("no checkpoint:\n{log}")),
        )
        .unwrap();
        assert!(last["signature"].is_string(), "{last}");
    }
}

#[test]
fn confidential_to_suffolk_arrives_as_a_bundle_that_age_opens_to_the_original() {
    let setup = Setup::new("", None);
    let server = setup.serve();
    let original: &[u8] = b"From: Officer <officer@westmidlands.pnn.police.uk>\r\n\
To: analyst@suffolk.pnn.police.uk\r\n\
Subject: [CONFIDENTIAL] Operation Kestrel\r\n\
X-Protective-Marking: CONFIDENTIAL\r\n\
Message-ID: <kestrel-1@test>\r\n\
\r\n\
The source is reliable.\r\n\
.a line that starts with a dot\r\n\
\xc3\xa9t\xc3\xa9 8-bit text\r\n";
    let eml = setup.path().join("original.eml");
    std::fs::write(&eml, original).unwrap();
    let send = format!(
        "import smtplib\ns = smtplib.SMTP('127.0.0.1', {}, timeout=20)\n\
         s.sendmail('officer@westmidlands.pnn.police.uk', ['analyst@suffolk.pnn.police.uk'], open({:?}, 'rb').read(), mail_options=['BODY=8BITMIME'])\n\
         s.quit()\n",
        setup.port,
        eml.to_str().unwrap()
    );
    let out = Command::new("python3")
        .args(["-c", &send])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    let cover = wait_for(Duration::from_secs(20), || setup.outbox().pop())
        .unwrap_or_else(|| panic!("not delivered:\n{}", server.log_text()));
    assert!(
        cover.contains("Subject: [CONFIDENTIAL] Encrypted message from West Midlands Police"),
        "{cover}"
    );
    assert!(
        !cover.contains("Kestrel") && !cover.contains("source is reliable"),
        "cover leaks content"
    );
    assert!(cover.contains("age -d -i"), "opening instructions");

    // Open it as the partner would, with the stock tools.
    let opened = setup.path().join("opened");
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/suffolk.key");
    open_cover_bundle(&cover, &key, &opened);
    let back = std::fs::read(opened.join("message.eml")).expect("message.eml in the bundle");
    assert_eq!(
        back, original,
        "the bundle must hold the original byte for byte"
    );
    assert!(opened.join("MANIFEST.json").exists());

    // markgate opens the cover message as it arrived, checking the force's signature.
    let cover_path = setup.path().join("cover.eml");
    std::fs::write(&cover_path, &cover).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args(["bundle", "open", "-i"])
        .arg(&key)
        .arg("--signing-pub")
        .arg(setup.path().join("certs/signing-pub.pem"))
        .arg(&cover_path)
        .arg("-o")
        .arg(setup.path().join("opened-by-markgate"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Signature:    verified"));
    assert_eq!(
        std::fs::read(setup.path().join("opened-by-markgate/message.eml")).unwrap(),
        original
    );
}
