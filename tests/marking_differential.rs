//! Differential check (issue 16): the same message through `markgate check` (CLI JSON), over
//! SMTP into `markgate serve` (Python smtplib), and as an HTTP request with the same headers
//! and body through the gateway's HTTP proxy (curl, to an HTTPS upstream on 127.0.0.1) is
//! read as the same class and gets the same verdict for each destination: a force address,
//! a partner on a secure network, a partner on the internet, the plain internet.
//!
//! One message per destination, so a verdict is the channel's answer for that destination:
//! SMTP 250 or 5xx, HTTP 200 or 403. The class and the rules are those the channel recorded
//! (`markgate audit query`). The messages are the tricky ones of issue 16 (holes 1 to 4, and
//! the second round's enclosures, letter spacing, near misses, overrides and text parts).
//! HTTP has no subject, so the marking stands in headers and the body only, except for the
//! subject cases, which are compared between the CLI and SMTP.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::smtp::{fixture, require};
use common::{copy_dir, free_port, shipped_policy, wait_for_port, Server};
use serde_json::Value;

/// (mail recipient, HTTP host) in the same destination class and partner.
const DESTINATIONS: [(&str, &str); 4] = [
    (
        "duty@westmidlands.pnn.police.uk",
        "api.westmidlands.pnn.police.uk",
    ),
    ("duty@suffolk.pnn.police.uk", "api.suffolk.pnn.police.uk"),
    ("mash@birmingham.gov.uk", "api.birmingham.gov.uk"),
    ("someone@gmail.com", "api.gmail.com"),
];

const SENDER: &str = "pc.smith@westmidlands.pnn.police.uk";

/// A tricky message: its headers (raw bytes allowed) and its body.
struct Case {
    name: &'static str,
    headers: Vec<(&'static str, Vec<u8>)>,
    subject: &'static [u8],
    content_type: &'static str,
    body: &'static [u8],
}

impl Case {
    fn new(name: &'static str, headers: &[(&'static str, &[u8])]) -> Case {
        Case {
            name,
            headers: headers.iter().map(|(n, v)| (*n, v.to_vec())).collect(),
            subject: b"Liaison notes",
            content_type: "text/plain; charset=utf-8",
            body: b"Notes of the meeting are below.\r\n\r\nSam\r\n",
        }
    }

    fn body(mut self, content_type: &'static str, body: &'static [u8]) -> Case {
        self.content_type = content_type;
        self.body = body;
        self
    }

    fn subject(mut self, subject: &'static [u8]) -> Case {
        self.subject = subject;
        self
    }

    /// Whether the HTTP channel can carry it: no marking in the subject.
    fn over_http(&self) -> bool {
        self.subject == b"Liaison notes"
    }

    fn message(&self, to: &str, n: usize) -> Vec<u8> {
        let mut m = format!(
            "From: {SENDER}\r\nTo: {to}\r\nMessage-ID: <{}-{n}@differential.test>\r\nSubject: ",
            self.name
        )
        .into_bytes();
        m.extend(self.subject);
        m.extend(b"\r\n");
        for (name, value) in &self.headers {
            m.extend(name.as_bytes());
            m.extend(b": ");
            m.extend(value);
            m.extend(b"\r\n");
        }
        m.extend(format!("Content-Type: {}\r\n\r\n", self.content_type).as_bytes());
        m.extend(self.body);
        m
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case::new("npm-comma-secret", &[("X-Protective-Marking", b"NOT PROTECTIVELY MARKED, SECRET")]),
        Case::new("npm-restricted", &[("X-Protective-Marking", b"NPM RESTRICTED")]),
        Case::new("unclassified-slashes-confidential", &[("X-Protective-Marking", b"UNCLASSIFIED//CONFIDENTIAL")]),
        Case::new("npm-annex", &[("X-Protective-Marking", b"NPM (SECRET annex attached)")]),
        Case::new("two-headers", &[("X-Protective-Marking", b"NOT PROTECTIVELY MARKED"), ("X-Protective-Marking", b"RESTRICTED")]),
        Case::new("epms-two-sec", &[("X-Protective-Marking", b"VER=2018.4, NS=gov.uk, SEC=OFFICIAL, SEC=RESTRICTED, ORIGIN=a@b.gov.uk")]),
        Case::new("epms-untrusted", &[("X-Protective-Marking", b"VER=2018.4, NS=gov.au, SEC=CONFIDENTIAL")]),
        Case::new("sio-npm-confidential", &[("SIO-Label", b"marking=\"NPM, CONFIDENTIAL\"; fgcolor=black")]),
        Case::new("listed-official-secret", &[("X-Classification", b"OFFICIAL SECRET")]),
        Case::new("msip-cut-name", &[("msip_labels", b"MSIP_Label_a_Enabled=true; MSIP_Label_a_Name=NPM; RESTRICTED")]),
        Case::new("empty-header", &[("X-Protective-Marking", b"")]),
        Case::new("undecodable-header", &[("X-Protective-Marking", b"RESTR\xadICTED")]),
        Case::new("encoded-word", &[("X-Protective-Marking", b"=?utf-8?q?OFFICIAL-SENSITIVE_PERSONAL?=")]),
        Case::new("official-sensitive", &[("X-Protective-Marking", b"OFFICIAL-SENSITIVE")]),
        Case::new("banner-npm-restricted", &[("X-Protective-Marking", b"OFFICIAL")])
            .body("text/plain; charset=utf-8", b"NPM / RESTRICTED\r\n\r\nNotes below.\r\n"),
        Case::new("prose", &[])
            .body("text/plain; charset=utf-8", b"Secret Santa draw on Friday.\r\n\r\nRestricted parking too.\r\n"),
        Case::new("hidden-html", &[]).body(
            "text/html; charset=utf-8",
            b"<html><body><div style=\"display:none\">OFFICIAL</div><div>RESTRICTED</div><div>Notes below.</div></body></html>\r\n",
        ),
        Case::new("subject-npm-secret", &[]).subject(b"NPM SECRET: source update"),
        Case::new("subject-undecodable", &[]).subject(b"[RESTR\xadICTED] custody handover"),
        Case::new("subject-secret-santa", &[]).subject(b"Secret Santa draw on Friday"),
        // issue 16, second round: enclosures, letter spacing, near misses, bidi, text parts
        // a reader opens
        Case::new("subject-curly", &[]).subject(b"{Secret} source update"),
        Case::new("subject-round-lower", &[]).subject(b"(restricted) custody handover"),
        Case::new("subject-letter-spaced", &[]).subject(b"[S.E.C.R.E.T] source update"),
        Case::new("subject-near-miss", &[]).subject(b"[SECR3T] source update"),
        Case::new("subject-override", &[]).subject("[\u{202E}TERCES\u{202C}] source update".as_bytes()),
        Case::new("subject-tag", &[]).subject(b"[EXTERNAL] [Ticket #123] printer"),
        Case::new("header-letter-spaced", &[("X-Classification", b"S E C R E T")]),
        Case::new("header-near-miss", &[("X-Protective-Marking", b"OFFICAL SENSITVE")]),
        Case::new("epms-untrusted-near-miss", &[("X-Protective-Marking", b"VER=2018.4, NS=gov.au, SEC=SECRT")]),
        Case::new("banner-letter-spaced", &[])
            .body("text/plain; charset=utf-8", b"R E S T R I C T E D\r\n\r\nNotes below.\r\n"),
        Case::new("banner-enriched", &[])
            .body("text/enriched; charset=utf-8", b"<bold>SECRET</bold>\r\n\r\nNotes below.\r\n"),
        Case::new("banner-markdown", &[])
            .body("text/markdown; charset=utf-8", b"# RESTRICTED\r\n\r\nNotes below.\r\n"),
        Case::new("banner-near-miss", &[])
            .body("text/plain; charset=utf-8", b"*** RESTRICED ***\r\n\r\nNotes below.\r\n"),
    ]
}

/// What one channel did for one message and destination.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    class: String,
    allowed: bool,
    unreadable: bool,
}

/// The gateway: `markgate serve` with SMTP, HTTP routes for every destination host to an
/// HTTPS upstream, and a record store.
struct Gateway {
    dir: tempfile::TempDir,
    smtp: u16,
    http: u16,
    _server: Server,
    _upstream: KillOnDrop,
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start() -> Gateway {
    require("python3");
    require("curl");
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
    let upstream_port = free_port();
    let upstream = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/http/upstream.py"))
        .arg(upstream_port.to_string())
        .arg(d.join("certs/dev-cert.pem"))
        .arg(d.join("certs/dev-key.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 upstream.py");
    let upstream = KillOnDrop(upstream);
    assert!(
        wait_for_port(upstream_port, Duration::from_secs(10)),
        "upstream did not start"
    );
    let (smtp, http) = (free_port(), free_port());
    let mut config = format!(
        r#"[policy]
dir = "{d}/policy"
[records]
path = "{d}/records.sqlite"
[spool]
dir = "{d}/spool"
[tls]
cert = "{d}/certs/dev-cert.pem"
key = "{d}/certs/dev-key.pem"
ca = "{d}/certs/dev-ca.pem"
signing_key = "{d}/certs/signing-key.pem"
[admin]
enabled = false
[smtp]
listen = "127.0.0.1:{smtp}"
hostname = "markgate.test"
[delivery]
outbox = "{d}/outbox"
[http]
listen = "127.0.0.1:{http}"
"#,
        d = d.display()
    );
    for (_, host) in DESTINATIONS {
        config.push_str(&format!(
            "[[http.route]]\nhost = \"{host}\"\nupstream = \"https://127.0.0.1:{upstream_port}\"\n"
        ));
    }
    let file = d.join("markgate.toml");
    std::fs::write(&file, config).unwrap();
    let server = Server::start(d, &file);
    for port in [smtp, http] {
        assert!(
            wait_for_port(port, Duration::from_secs(20)),
            "markgate did not listen on {port}:\n{}",
            server.log_text()
        );
    }
    Gateway {
        dir,
        smtp,
        http,
        _server: server,
        _upstream: upstream,
    }
}

impl Gateway {
    fn policy(&self) -> PathBuf {
        self.dir.path().join("policy")
    }

    fn records(&self) -> Vec<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
            .args(["audit", "query", "--format", "json", "--db"])
            .arg(self.dir.path().join("records.sqlite"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

fn outcome_of_record(r: &Value, allowed: bool) -> Outcome {
    let rules = r["rules"].as_array().cloned().unwrap_or_default();
    Outcome {
        class: r["class"].as_str().unwrap_or_default().to_string(),
        allowed,
        unreadable: rules.iter().any(|x| x == "marking-unreadable"),
    }
}

/// `markgate check` for one message to one recipient.
fn cli(gw: &Gateway, raw: &[u8], to: &str) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args(["check", "--policy"])
        .arg(gw.policy())
        .args(["--from", SENDER, "--to", to, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("check: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(if v["verdict"] == "allow" { 0 } else { 1 })
    );
    Outcome {
        class: v["marking"]["class"].as_str().unwrap().to_string(),
        allowed: v["verdict"] == "allow",
        unreadable: v["recipients"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "marking-unreadable"),
    }
}

/// Every message over SMTP in one smtplib session; the outcome of each from its reply and
/// its record.
fn smtp(gw: &Gateway, messages: &[(String, PathBuf, String)]) -> Vec<Outcome> {
    let jobs: Vec<Value> = messages
        .iter()
        .map(|(to, path, _)| serde_json::json!({"from": SENDER, "to": [to], "path": path}))
        .collect();
    let mut child = Command::new("python3")
        .arg(fixture("send_raw.py"))
        .arg(gw.smtp.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&jobs).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let replies: Vec<Value> = serde_json::from_slice(&out.stdout).expect("send_raw.py output");
    let records: BTreeMap<String, Value> = gw
        .records()
        .into_iter()
        .filter(|r| r["channel"] == "smtp")
        .filter_map(|r| Some((r["message_id"].as_str()?.to_string(), r)))
        .collect();
    messages
        .iter()
        .zip(replies)
        .map(|((_, _, id), reply)| {
            let record = records
                .get(id)
                .unwrap_or_else(|| panic!("no SMTP record for {id}: reply {reply}"));
            outcome_of_record(record, reply["code"] == 250)
        })
        .collect()
}

/// One HTTP request through the proxy, its headers and body those of the message;
/// `recorded` counts the records so far.
fn http(gw: &Gateway, case: &Case, host: &str, scratch: &Path, recorded: &mut usize) -> Outcome {
    let body = scratch.join(format!("{}.body", case.name));
    std::fs::write(&body, case.body).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "20",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ])
    .arg("-x")
    .arg(format!("http://127.0.0.1:{}", gw.http))
    .arg("-H")
    .arg(format!("Content-Type: {}", case.content_type));
    for (name, value) in &case.headers {
        // `Name;` is how curl sends a header with an empty value
        let mut header = name.as_bytes().to_vec();
        if value.is_empty() {
            header.push(b';');
        } else {
            header.extend(b": ");
            header.extend(value);
        }
        cmd.arg("-H")
            .arg(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&header));
    }
    let out = cmd
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(format!("http://{host}/differential/{}", case.name))
        .output()
        .unwrap();
    let status: u16 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        status == 200 || status == 403,
        "{} to {host}: HTTP {status}",
        case.name
    );
    let records = gw.records();
    assert_eq!(
        records.len(),
        *recorded + 1,
        "one record for {} to {host}",
        case.name
    );
    *recorded = records.len();
    outcome_of_record(records.last().unwrap(), status == 200)
}

#[test]
fn the_same_message_reads_and_decides_the_same_on_every_channel() {
    let gw = start();
    let scratch = tempfile::tempdir().unwrap();
    let cases = cases();
    let mut messages = Vec::new();
    for case in &cases {
        for (n, (to, _)) in DESTINATIONS.iter().enumerate() {
            let path = scratch.path().join(format!("{}-{n}.eml", case.name));
            std::fs::write(&path, case.message(to, n)).unwrap();
            let id = format!("<{}-{n}@differential.test>", case.name);
            messages.push((to.to_string(), path, id));
        }
    }
    let over_smtp = smtp(&gw, &messages);
    let mut recorded = gw.records().len();
    let mut differences = Vec::new();
    for (c, case) in cases.iter().enumerate() {
        for (n, (to, host)) in DESTINATIONS.iter().enumerate() {
            let raw = std::fs::read(&messages[c * DESTINATIONS.len() + n].1).unwrap();
            let by_cli = cli(&gw, &raw, to);
            let by_smtp = &over_smtp[c * DESTINATIONS.len() + n];
            if by_smtp != &by_cli {
                differences.push(format!(
                    "{} to {to}: check {by_cli:?}, SMTP {by_smtp:?}",
                    case.name
                ));
            }
            if case.over_http() {
                let by_http = http(&gw, case, host, scratch.path(), &mut recorded);
                if by_http != by_cli {
                    differences.push(format!(
                        "{} to {to} / {host}: check {by_cli:?}, HTTP {by_http:?}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(differences.is_empty(), "\n{}", differences.join("\n"));
}
