//! REQUIRETLS (RFC 8689) through a smart host, against real peers on 127.0.0.1: the
//! `markgate serve` binary relaying to an aiosmtpd smart host with STARTTLS on a test-CA
//! certificate, which offers REQUIRETLS or not (Debian 12's Postfix predates it). Inbound,
//! Python's smtplib sends `MAIL FROM:<...> REQUIRETLS` over STARTTLS.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::smtp::{swaks, Setup, Sink};
use common::{free_port, wait_for};

const SENDER: &str = "pc.smith@westmidlands.pnn.police.uk";

struct SmartHost {
    setup: Setup,
    sink: Sink,
    _server: common::Server,
}

/// A gateway routing `internet` to a smart host that offers REQUIRETLS or not.
fn smart_host(offers_requiretls: bool, route: &str, delivery: &str) -> SmartHost {
    let setup = Setup::new(delivery, None);
    let certs = setup.path().join("certs");
    let status = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args([
            "certs",
            "dev",
            "--force",
            "--host",
            "smarthost.test",
            "--dir",
        ])
        .arg(&certs)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let port = free_port();
    let sink = Sink::start_at(
        "127.0.0.1",
        port,
        &setup.path().join("smarthost"),
        Some(&certs),
        offers_requiretls,
    );
    setup.append_config(&format!(
        "[delivery.routes.internet]\nhost = \"127.0.0.1\"\nport = {port}\ntls_name = \"smarthost.test\"\n{route}"
    ));
    let server = setup.serve();
    SmartHost {
        setup,
        sink,
        _server: server,
    }
}

impl SmartHost {
    fn send(&self, to: &str, subject: &str) {
        let out = swaks(&[
            "--server",
            &format!("127.0.0.1:{}", self.setup.port),
            "--from",
            SENDER,
            "--to",
            to,
            "--header",
            &format!("Subject: {subject}"),
        ]);
        assert!(out.contains("250 2.0.0 queued as"), "{out}");
    }

    fn record(&self, recipient: &str, outcome: &str) -> serde_json::Value {
        wait_for(Duration::from_secs(20), || {
            let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
                .args(["audit", "query", "--deliveries", "--format", "json", "--db"])
                .arg(self.setup.path().join("var/records.sqlite"))
                .output()
                .ok()?;
            let records: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
            records
                .into_iter()
                .find(|r| r["recipient"] == recipient && r["outcome"] == outcome)
        })
        .unwrap_or_else(|| panic!("no {outcome} record for {recipient}"))
    }
}

#[test]
fn a_tls_copy_is_sent_with_requiretls_when_the_smart_host_offers_it() {
    let lab = smart_host(true, "", "");
    lab.send("duty@partner.test", "[OFFICIAL] referral");
    let record = lab.record("duty@partner.test", "delivered");
    assert_eq!(record["verification"], "smarthost-requiretls");
    assert!(
        record["next_hop"]
            .as_str()
            .unwrap()
            .contains("smart host internet"),
        "{record}"
    );
    let got = lab.sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["tls"], true);
    assert_eq!(got[0].0["requiretls"], true);
    // a copy without tls goes without the REQUIRETLS parameter
    lab.send(
        "menu@partner.test",
        "[NOT PROTECTIVELY MARKED] canteen menu",
    );
    let record = lab.record("menu@partner.test", "delivered");
    assert_eq!(record["verification"], "pkix");
    let got = wait_for(Duration::from_secs(5), || {
        let g = lab.sink.received();
        (g.len() == 2).then_some(g)
    })
    .unwrap();
    assert!(got.iter().any(|(m, _)| m["requiretls"] == false));
}

#[test]
fn without_requiretls_at_the_smart_host_a_tls_copy_defers_then_bounces_naming_it() {
    let lab = smart_host(false, "", "lifetime = \"3s\"\n");
    lab.send("duty@partner.test", "[OFFICIAL] referral");
    let deferred = lab.record("duty@partner.test", "deferred");
    let reason = deferred["reason"].as_str().unwrap();
    assert!(reason.contains("does not offer REQUIRETLS"), "{reason}");
    assert!(
        reason.contains("smart host internet (127.0.0.1:"),
        "{reason}"
    );
    let bounced = lab.record("duty@partner.test", "bounced");
    assert!(bounced["reason"].as_str().unwrap().contains("REQUIRETLS"));
    let bounce = wait_for(Duration::from_secs(10), || {
        lab.setup
            .outbox()
            .into_iter()
            .find(|m| m.contains("Undelivered mail returned to sender"))
    })
    .expect("a bounce to the sender");
    assert!(bounce.contains("does not offer REQUIRETLS"), "{bounce}");
    assert!(
        lab.sink.received().is_empty(),
        "the copy reached a smart host without REQUIRETLS"
    );
}

#[test]
fn requiretls_trust_sends_and_records_that_the_smart_host_was_trusted() {
    let lab = smart_host(false, "requiretls = \"trust\"\n", "");
    lab.send("duty@partner.test", "[OFFICIAL] referral");
    let record = lab.record("duty@partner.test", "delivered");
    assert_eq!(record["verification"], "smarthost-trusted");
    assert!(record["peer_cert_sha256"]
        .as_str()
        .is_some_and(|h| h.len() == 64));
    let got = lab.sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["tls"], true);
    assert_eq!(got[0].0["requiretls"], false);
}

/// Inbound REQUIRETLS: offered after STARTTLS only, and a message that arrived with it
/// leaves only over TLS, whatever its marking, even through a `tls = "none"` route.
#[test]
fn a_message_that_arrived_with_requiretls_leaves_only_with_tls() {
    // the route says plaintext; the REQUIRETLS message must not go that way
    let lab = smart_host(true, "tls = \"none\"\n", "");
    let script = format!(
        r#"
import smtplib, ssl
s = smtplib.SMTP("127.0.0.1", {port}, timeout=20)
s.ehlo("client.test")
assert "requiretls" not in s.esmtp_features, "REQUIRETLS offered before STARTTLS"
code, msg = s.docmd("MAIL FROM:<{sender}> REQUIRETLS")
assert code == 530, (code, msg)
s.rset()
s.starttls(context=ssl._create_unverified_context())
s.ehlo("client.test")
assert "requiretls" in s.esmtp_features, s.esmtp_features
s.sendmail("{sender}", ["menu@partner.test"],
           "From: {sender}\r\nTo: menu@partner.test\r\nSubject: [NOT PROTECTIVELY MARKED] canteen menu\r\n\r\nsoup\r\n",
           mail_options=["REQUIRETLS"])
s.quit()
print("sent")
"#,
        port = lab.setup.port,
        sender = SENDER
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("sent"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let record = lab.record("menu@partner.test", "delivered");
    assert_eq!(record["requiretls"], true);
    assert_eq!(record["tls_required"], true);
    assert_eq!(record["verification"], "smarthost-requiretls");
    let got = lab.sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["tls"], true);
    assert_eq!(got[0].0["requiretls"], true);
}
