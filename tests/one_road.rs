//! One road from input to decision to record (issue 12): the real `markgate serve` binary
//! with mail (swaks) and HTTP (curl, raw CONNECT) on one policy. Each test is a divergence
//! the channels once had, or a record that once said "allow" for what did not leave:
//! - `X-Consent: maybe` is no declaration, on mail and HTTP alike;
//! - declarations are recorded as the decision saw them (RFC 2047 words decoded);
//! - a bundle sent by mail carries the declared purpose and legal basis;
//! - a refusal after an allowing decision (CONNECT) is recorded as refused, and a request
//!   whose upstream failed as failed; `audit report` and `policy simulate` count neither as
//!   a disclosure. (Encryption can no longer be unavailable in a running gateway: a
//!   configured signing key that does not load stops `serve`, see tests/serve_state.rs.)

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::smtp::{open_cover_bundle, swaks, Setup};
use common::{audit_records, curl, free_port, wait_for, wait_for_port, Server};

/// A rule that makes OFFICIAL to the internet declare consent.
const CONSENT_RULE: &str = r#"
[[rule]]
id = "official-internet-declares-consent"
classes = ["OFFICIAL"]
destinations = ["internet"]
effect = "require"
requires = ["consent"]
"#;

/// A gateway with the consent rule, and Birmingham's API routed to a port nobody listens on.
struct Road {
    setup: Setup,
    server: Server,
    http: u16,
}

impl Road {
    fn start() -> Road {
        let setup = Setup::new("", None);
        let rules = setup.path().join("policy/rules.toml");
        let mut text = std::fs::read_to_string(&rules).unwrap();
        text.push_str(CONSENT_RULE);
        std::fs::write(&rules, text).unwrap();
        let http = setup.http(&format!(
            "upstream_timeout = \"2s\"\n\
             [[http.route]]\nhost = \"api.birmingham.gov.uk\"\nupstream = \"https://127.0.0.1:{}\"\n",
            free_port()
        ));
        let server = setup.serve();
        assert!(
            wait_for_port(http, Duration::from_secs(20)),
            "{}",
            server.log_text()
        );
        Road {
            setup,
            server,
            http,
        }
    }

    fn mail(&self, to: &str, headers: &[&str]) -> String {
        let server = format!("127.0.0.1:{}", self.setup.port);
        let mut args = vec![
            "--server",
            &server,
            "--from",
            "officer@westmidlands.pnn.police.uk",
            "--to",
            to,
        ];
        for h in headers {
            args.extend(["--header", h]);
        }
        swaks(&args)
    }

    /// curl through the gateway as a proxy; (status, JSON body or null).
    fn request(&self, url: &str, headers: &[&str]) -> (u16, serde_json::Value) {
        let proxy = format!("http://127.0.0.1:{}", self.http);
        let mut args = vec!["-x", &proxy];
        for h in headers {
            args.extend(["-H", h]);
        }
        args.push(url);
        let (status, body) = curl(&args);
        (status, serde_json::from_str(&body).unwrap_or_default())
    }

    fn records(&self) -> Vec<serde_json::Value> {
        audit_records(&self.setup.path().join("var/records.sqlite"))
    }

    fn markgate(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_markgate"))
            .args(args)
            .current_dir(self.setup.path())
            .output()
            .unwrap()
    }
}

/// Records of one recipient, oldest first.
fn to<'a>(records: &'a [serde_json::Value], recipient: &str) -> Vec<&'a serde_json::Value> {
    records
        .iter()
        .filter(|r| r["recipient"] == recipient)
        .collect()
}

fn rules(record: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(record["rules"].clone()).unwrap()
}

#[test]
fn consent_maybe_is_no_declaration_on_mail_or_http() {
    let road = Road::start();
    let mail = |consent: &str| {
        road.mail(
            "someone@gmail.com",
            &[
                "Subject: [OFFICIAL] visit",
                &format!("X-Consent: {consent}"),
            ],
        )
    };
    let out = mail("maybe");
    assert!(out.contains("<** 550 5.7.1"), "{out}");
    assert!(out.contains("official-internet-declares-consent"), "{out}");
    let out = mail("Given");
    assert!(out.contains(" 250 2.0.0 queued"), "{out}");

    let request = |consent: &str| {
        road.request(
            "http://api.birmingham.gov.uk/visits",
            &[
                "X-Protective-Marking: OFFICIAL",
                &format!("X-Consent: {consent}"),
            ],
        )
    };
    let (status, json) = request("maybe");
    assert_eq!(status, 403, "{json}");
    assert_eq!(json["rule"], "official-internet-declares-consent");
    // Declared: allowed, and only the unreachable upstream stops it (502).
    let (status, json) = request("given");
    assert_eq!(status, 502, "{json}");

    let records = road.records();
    let consents: Vec<&serde_json::Value> = records.iter().map(|r| &r["consent"]).collect();
    assert!(
        consents.contains(&&serde_json::json!("given")),
        "{records:#?}"
    );
    for r in &records {
        assert_ne!(r["consent"], "maybe", "{r}");
    }
}

#[test]
fn records_keep_the_declarations_the_decision_saw() {
    let road = Road::start();
    let declared = [
        "X-Disclosure-Purpose: =?UTF-8?Q?Safeguarding_referral?=",
        "X-Legal-Basis: =?UTF-8?B?Q2hpbGRyZW4gQWN0IDIwMDQgcy4xMQ==?=",
        "X-Consent: not-required",
    ];
    // By mail, OFFICIAL-SENSITIVE to Birmingham goes sealed in a bundle (one-off).
    let mut headers = vec!["Subject: [OFFICIAL-SENSITIVE] referral 24/1187"];
    headers.extend(declared);
    let out = road.mail("mash@birmingham.gov.uk", &headers);
    assert!(out.contains(" 250 2.0.0 queued"), "{out}");
    // Over HTTP the same headers (the upstream is down: 502, still recorded).
    let mut headers = vec!["X-Protective-Marking: OFFICIAL"];
    headers.extend(declared);
    let (status, json) = road.request("http://api.birmingham.gov.uk/referrals", &headers);
    assert_eq!(status, 502, "{json}");

    let records = road.records();
    for recipient in ["mash@birmingham.gov.uk", "api.birmingham.gov.uk"] {
        let r = to(&records, recipient)[0];
        assert_eq!(r["purpose"], "Safeguarding referral", "{r}");
        assert_eq!(r["legal_basis"], "Children Act 2004 s.11", "{r}");
        assert_eq!(r["consent"], "not-required", "{r}");
    }

    // The bundle the mail became says what was declared, as HTTP and `bundle seal` do.
    let cover = wait_for(Duration::from_secs(20), || road.setup.outbox().pop())
        .unwrap_or_else(|| panic!("not delivered:\n{}", road.server.log_text()));
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/birmingham.key");
    let opened = road.setup.path().join("opened");
    open_cover_bundle(&cover, &key, &opened);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(opened.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["isa"], "one-off");
    assert_eq!(manifest["purpose"], "Safeguarding referral", "{manifest}");
    assert_eq!(
        manifest["legal_basis"], "Children Act 2004 s.11",
        "{manifest}"
    );
    assert_eq!(manifest["sender"]["organisation"], "West Midlands Police");
}

/// A raw CONNECT through the gateway; the status line of the reply.
fn connect(port: u16, host: &str, marking: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\nX-Protective-Marking: {marking}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or_default().to_string()
}

#[test]
fn what_did_not_leave_is_not_recorded_as_a_disclosure() {
    let road = Road::start();
    // NOT PROTECTIVELY MARKED may go anywhere with no handling: the policy allows it, and
    // the channel refuses the tunnel, which it cannot inspect.
    let reply = connect(
        road.http,
        "api.birmingham.gov.uk",
        "NOT PROTECTIVELY MARKED",
    );
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    // Allowed, handed on, and the upstream is not there.
    let (status, json) = road.request(
        "http://api.birmingham.gov.uk/referrals",
        &["X-Protective-Marking: OFFICIAL", "X-Consent: given"],
    );
    assert_eq!(status, 502, "{json}");

    let records = road.records();
    let api = to(&records, "api.birmingham.gov.uk");
    assert_eq!(api.len(), 3, "{api:#?}");
    let refused = api[0];
    assert_eq!(refused["verdict"], "block", "{refused}");
    assert_eq!(rules(refused).last().unwrap(), "connect-not-inspectable");
    assert!(refused["reason"].as_str().unwrap().contains("CONNECT"));
    assert_eq!(refused["actions"], serde_json::json!([]));
    let (allowed, failed) = (api[1], api[2]);
    assert_eq!(allowed["verdict"], "allow", "{allowed}");
    assert_eq!(failed["verdict"], "failed", "{failed}");
    assert_eq!(rules(failed).last().unwrap(), "upstream-failed");
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains(allowed["id"].as_str().unwrap()), "{reason}");
    for r in [allowed, failed] {
        assert_eq!(r["partner_id"], "birmingham-cc");
    }

    // The ISA review report counts neither as disclosed.
    let db = road.setup.path().join("var/records.sqlite");
    let policy = road.setup.path().join("policy");
    let today = chrono::Utc::now().date_naive().to_string();
    let out = road.markgate(&[
        "audit",
        "report",
        "--isa",
        "ISA-0001",
        "--from",
        &today,
        "--to",
        &today,
        "--policy",
        policy.to_str().unwrap(),
        "--format",
        "json",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["total"]["disclosed"], 0, "{report:#}");
    assert_eq!(report["total"]["blocked"], 1, "{report:#}");
    assert_eq!(report["total"]["failed"], 1, "{report:#}");

    // A candidate that blocks every OFFICIAL disclosure to the internet changes nothing that
    // left: neither request did.
    let candidate = road.setup.path().join("candidate");
    common::copy_dir(&road.setup.path().join("policy"), &candidate);
    let rules_file = candidate.join("rules.toml");
    let mut text = std::fs::read_to_string(&rules_file).unwrap();
    text.push_str(
        "\n[[rule]]\nid = \"no-official-internet\"\nclasses = [\"OFFICIAL\", \"NOT PROTECTIVELY MARKED\"]\ndestinations = [\"internet\"]\neffect = \"block\"\n",
    );
    std::fs::write(&rules_file, text).unwrap();
    let out = road.markgate(&[
        "policy",
        "simulate",
        "--candidate",
        candidate.to_str().unwrap(),
        "--since",
        "1h",
        "--json",
        "--db",
        db.to_str().unwrap(),
    ]);
    let sim: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(sim["replayed"], 0, "{sim:#}");
    assert_eq!(sim["changes"], serde_json::json!([]), "{sim:#}");
}
