//! Decision records from the running gateway (seed 001 §3.12): every SMTP decision is recorded
//! with every field before the client hears the outcome, and when the record store cannot
//! take the record the gateway answers 451 and delivers nothing. (The HTTP side is checked in
//! http_gateway.rs: records before forwarding, 503 when recording fails.)

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

struct Gw {
    _tmp: tempfile::TempDir,
    _server: Server,
    dir: std::path::PathBuf,
    smtp: u16,
}

fn start(extra: &str, before_start: impl FnOnce(&Path)) -> Gw {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    copy_dir(&shipped_policy(), &dir.join("policy"));
    before_start(&dir);
    let smtp = free_port();
    let config = dir.join("markgate.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\ndir = \"{d}/policy\"\n[spool]\ndir = \"{d}/spool\"\n[records]\npath = \"{d}/records.sqlite\"\n{extra}\n\
             [smtp]\nlisten = \"127.0.0.1:{smtp}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
             [delivery]\noutbox = \"{d}/outbox\"\n[admin]\nenabled = false\n",
            d = dir.display(),
            http = free_port(),
        ),
    )
    .unwrap();
    let server = Server::start(&dir, &config);
    assert!(
        wait_for_port(smtp, Duration::from_secs(20)),
        "{}",
        server.log_text()
    );
    Gw {
        _tmp: tmp,
        _server: server,
        dir,
        smtp,
    }
}

fn send(port: u16, raw: &str, to: &[&str]) -> Result<(), lettre::transport::smtp::Error> {
    use lettre::address::Envelope;
    use lettre::{SmtpTransport, Transport};
    let envelope = Envelope::new(
        Some("pc.smith@westmidlands.pnn.police.uk".parse().unwrap()),
        to.iter().map(|a| a.parse().unwrap()).collect(),
    )
    .unwrap();
    let transport = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    transport.send_raw(&envelope, raw.as_bytes()).map(|_| ())
}

const REFERRAL: &str = "From: PC Smith <pc.smith@westmidlands.pnn.police.uk>\r\n\
To: MASH <mash@birmingham.gov.uk>, Duty <duty@westmidlands.pnn.police.uk>\r\n\
Subject: [OFFICIAL-SENSITIVE PERSONAL] referral 24/1187\r\n\
Message-ID: <ref-1187@westmidlands.pnn.police.uk>\r\n\
X-Disclosure-Purpose: Safeguarding referral\r\n\
X-Legal-Basis: Children Act 2004 s.11\r\n\
X-Consent: withheld\r\n\
\r\n\
Referral details.\r\n";

#[test]
fn smtp_decisions_are_recorded_with_every_field() {
    let gw = start("", |_| {});
    send(
        gw.smtp,
        REFERRAL,
        &["mash@birmingham.gov.uk", "duty@westmidlands.pnn.police.uk"],
    )
    .unwrap();
    let got = audit_records(&gw.dir.join("records.sqlite"));
    assert_eq!(got.len(), 2, "one record per recipient: {got:#?}");
    let mash = got
        .iter()
        .find(|r| r["recipient"] == "mash@birmingham.gov.uk")
        .unwrap();
    assert_eq!(mash["channel"], "smtp");
    assert_eq!(mash["sender"], "pc.smith@westmidlands.pnn.police.uk");
    assert_eq!(mash["partner"], "Birmingham City Council");
    assert_eq!(mash["class"], "OFFICIAL-SENSITIVE");
    assert_eq!(mash["label"], "OFFICIAL-SENSITIVE PERSONAL");
    assert_eq!(mash["sources"][0]["where"], "subject");
    assert_eq!(mash["destination"], "internet");
    // One-off personal data to a partner waits for an Inspector, with its handling.
    assert_eq!(mash["verdict"], "held");
    assert_eq!(mash["actions"], serde_json::json!(["encrypt", "statement"]));
    assert!(mash["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "official-sensitive-internet-encrypted"));
    assert!(mash["reason"]
        .as_str()
        .unwrap()
        .contains("birmingham.gov.uk"));
    assert_eq!(mash["disclosure"], "one-off");
    assert_eq!(mash["purpose"], "Safeguarding referral");
    assert_eq!(mash["legal_basis"], "Children Act 2004 s.11");
    assert_eq!(mash["consent"], "withheld");
    assert_eq!(mash["message_id"], "<ref-1187@westmidlands.pnn.police.uk>");
    // The size of the content as received (the client may end the data with one more CRLF).
    let size = mash["size"].as_u64().unwrap() as usize;
    assert!(
        (REFERRAL.len()..=REFERRAL.len() + 2).contains(&size),
        "{size}"
    );
    assert_eq!(mash["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(mash["policy_version"].as_str().unwrap().len(), 64);
    assert!(mash["time"].as_str().unwrap().starts_with("20"));
    let duty = got
        .iter()
        .find(|r| r["recipient"] == "duty@westmidlands.pnn.police.uk")
        .unwrap();
    assert_eq!(duty["disclosure"], "internal");
    assert_eq!(duty["actions"], serde_json::json!(["tls"]));

    // The shipped policy trials "declare purpose and legal basis" in dry run: a personal
    // one-off without them is not blocked (it waits for its approver, as any personal
    // one-off), and the record says which rule would have blocked it.
    let undeclared = REFERRAL
        .replace("X-Disclosure-Purpose: Safeguarding referral\r\n", "")
        .replace("X-Legal-Basis: Children Act 2004 s.11\r\n", "");
    send(gw.smtp, &undeclared, &["mash@birmingham.gov.uk"]).unwrap();
    let got = audit_records(&gw.dir.join("records.sqlite"));
    let last = got.last().unwrap();
    assert_eq!(last["verdict"], "held");
    assert!(
        last["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "dry-run:personal-one-off-declares-purpose"),
        "{last:#}"
    );
    assert!(mash["rules"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| !r.as_str().unwrap().starts_with("dry-run:")));

    assert!(Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args(["audit", "verify", "--db"])
        .arg(gw.dir.join("records.sqlite"))
        .status()
        .unwrap()
        .success());
}

#[test]
fn a_full_record_store_gets_451_and_nothing_is_delivered() {
    // A store already at its size cap: the next decision cannot be recorded.
    let gw = start("max_size_mb = 1", |dir| {
        fill_store(&dir.join("records.sqlite"), 1024 * 1024)
    });
    // The store may still have room for a record or two in its last page: send until one
    // is refused.
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..200 {
        // Not personal data: allowed at once (personal data would wait for an approver).
        let referral = REFERRAL.replace("PERSONAL] ", "] ");
        match send(gw.smtp, &referral, &["mash@birmingham.gov.uk"]) {
            Ok(()) => accepted += 1,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let err = refused.expect("a full record store must refuse the message");
    let code = err.status().map(|c| c.to_string());
    assert_eq!(code.as_deref(), Some("451"), "{err}");
    assert!(err.to_string().contains("recorded"), "{err}");
    // Only what was accepted (and so recorded) is delivered; the refused message is not.
    std::thread::sleep(Duration::from_millis(1000));
    let outbox = gw.dir.join("outbox");
    let delivered = std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0);
    assert_eq!(delivered, accepted, "nothing may leave without its record");
}

/// Write records until the store file is at least `bytes` long.
fn fill_store(path: &Path, bytes: u64) {
    use markgate::decision::decide;
    use markgate::facts::{self, Recipient};
    use markgate::record::{build, Channel, DecisionRecord, Outcome, RecordMeta};
    let policy = markgate::policy::Policy::load(&shipped_policy()).unwrap();
    let facts = facts::given(
        "filler@westmidlands.pnn.police.uk",
        vec![Recipient::mail("x@suffolk.pnn.police.uk", &policy)],
        markgate::marking::read_text("OFFICIAL", &policy.markings).unwrap(),
        None,
        Default::default(),
        chrono::Utc::now().date_naive(),
    );
    let decision = decide(&facts, &policy);
    // Measure the database's pages, not its files: the write-ahead log holds several versions
    // of the same pages until it is checkpointed, so file sizes overstate how full it is.
    let database_bytes = || {
        let conn = rusqlite::Connection::open(path).unwrap();
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        (pages * page_size) as u64
    };
    let recorder = markgate::record::Recorder::open_path(path, &Default::default()).unwrap();
    while database_bytes() < bytes + 64 * 1024 {
        let meta = RecordMeta::new(
            Channel::Smtp,
            "filler@westmidlands.pnn.police.uk",
            &[0u8; 512],
        );
        let batch: Vec<DecisionRecord> = (0..200)
            .flat_map(|_| build(&decision, &meta, &Outcome::AsDecided))
            .collect();
        recorder.record_blocking(batch).unwrap();
    }
}
