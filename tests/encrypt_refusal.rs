//! Encryption refused, end to end on both channels (issues 12 and 13): the real `markgate
//! serve` binary, swaks for mail and curl for HTTP, one policy. OFFICIAL-SENSITIVE to the
//! internet must be age-encrypted (rule `official-sensitive-internet-encrypted`); to a
//! partner registered without a key, or a domain that is no partner at all, there is no key
//! to encrypt to. Each channel refuses with its documented reply (`550 5.7.1` naming the
//! rules; `403` JSON with `rule: encrypt-needs-partner-key`), sends nothing on, and records
//! a block naming both the rule that required encryption and why it could not be done.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::smtp::{swaks, Setup};
use common::{audit_records, curl, wait_for_port};

/// A partner in the register with a mail domain and no age key.
const KEYLESS_PARTNER: &str = r#"
[[partner]]
id = "keyless-trust"
name = "Keyless Trust"
domains = ["keyless.example"]
"#;

const REQUIRING_RULE: &str = "official-sensitive-internet-encrypted";
const NO_KEY_RULE: &str = "encrypt-needs-partner-key";

fn rules(record: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(record["rules"].clone()).unwrap_or_default()
}

#[test]
fn encryption_without_a_partner_key_is_refused_and_recorded_as_block_on_mail_and_http() {
    let setup = Setup::new("", None);
    let partners = setup.path().join("policy/partners.toml");
    let mut text = std::fs::read_to_string(&partners).unwrap();
    text.push_str(KEYLESS_PARTNER);
    std::fs::write(&partners, text).unwrap();
    // The keyless partner's API is routed to a listener of the test's: it must never be
    // connected to.
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    upstream.set_nonblocking(true).unwrap();
    let http = setup.http(&format!(
        "[[http.route]]\nhost = \"api.keyless.example\"\nupstream = \"http://127.0.0.1:{}\"\n",
        upstream.local_addr().unwrap().port()
    ));
    let server = setup.serve();
    assert!(
        wait_for_port(http, Duration::from_secs(20)),
        "{}",
        server.log_text()
    );

    // Mail: one refusal per recipient without a key, each naming its rules.
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", setup.port),
        "--from",
        "officer@westmidlands.pnn.police.uk",
        "--to",
        "caseworker@keyless.example,friend@gmail.com",
        "--header",
        "Subject: [OFFICIAL-SENSITIVE] referral",
        "--header",
        "X-Protective-Marking: OFFICIAL-SENSITIVE",
        "--body",
        "encrypt-refusal-token",
    ]);
    for recipient in ["caseworker@keyless.example", "friend@gmail.com"] {
        let line = out
            .lines()
            .find(|l| l.contains("550") && l.contains(recipient))
            .unwrap_or_else(|| panic!("no 550 for {recipient}:\n{out}"));
        assert!(line.contains("5.7.1"), "{line}");
        assert!(
            line.contains(&format!("[rule {REQUIRING_RULE}, {NO_KEY_RULE}]")),
            "{line}"
        );
    }
    assert!(
        out.contains(
            "partner Keyless Trust has no key in the register; ask the Information Security Unit"
        ),
        "the reason names the partner and what to do:\n{out}"
    );

    // HTTP: 403 JSON naming the rule and the reason.
    let proxy = format!("http://127.0.0.1:{http}");
    for url in [
        "http://api.keyless.example/referrals",
        "http://api.unregistered.example/referrals",
    ] {
        let (status, body) = curl(&[
            "-x",
            &proxy,
            "-H",
            "X-Protective-Marking: OFFICIAL-SENSITIVE",
            "--data-binary",
            "encrypt-refusal-token",
            url,
        ]);
        assert_eq!(status, 403, "{url}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "blocked", "{json}");
        assert_eq!(json["rule"], NO_KEY_RULE, "{json}");
        assert!(
            json["reason"]
                .as_str()
                .unwrap_or("")
                .contains("must be encrypted"),
            "{json}"
        );
    }
    assert!(
        upstream.accept().is_err(),
        "nothing may be forwarded to the keyless partner"
    );
    assert!(setup.outbox().is_empty(), "nothing may be delivered");

    // Records: a block on each channel, naming both rules.
    let records = audit_records(&setup.path().join("var/records.sqlite"));
    let blocked: Vec<_> = records
        .iter()
        .filter(|r| {
            r["verdict"] == "block" && rules(r).last().map(String::as_str) == Some(NO_KEY_RULE)
        })
        .collect();
    for channel in ["smtp", "http"] {
        let on: Vec<_> = blocked.iter().filter(|r| r["channel"] == channel).collect();
        assert_eq!(on.len(), 2, "{channel}: {records:#?}");
        for r in on {
            assert_eq!(rules(r), [REQUIRING_RULE, NO_KEY_RULE], "{r}");
            assert_eq!(r["label"], "OFFICIAL-SENSITIVE", "{r}");
            assert_eq!(r["destination"], "internet", "{r}");
        }
    }
    assert!(
        !records.iter().any(|r| r["verdict"] == "allow"),
        "nothing was allowed: {records:#?}"
    );
}
