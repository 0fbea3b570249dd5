//! Hold for approval and the urgent path, end to end with real peers: swaks into `markgate
//! serve`, an aiosmtpd next hop over verified TLS receiving everything that leaves (the
//! copies, the approvers' notifications, the senders' notices), and the `markgate hold` CLI
//! run while the gateway runs.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::smtp::{swaks, Setup, Sink};
use common::{audit_records, free_port, wait_for};

const SENDER: &str = "pc.smith@westmidlands.pnn.police.uk";
const COLLEAGUE: &str = "pc.jones@westmidlands.pnn.police.uk";
const PARTNER: &str = "duty@suffolk.pnn.police.uk";
const MASH: &str = "mash@birmingham.gov.uk";
const SERGEANT: &str = "priya.shah@westmidlands.pnn.police.uk";
const INSPECTOR: &str = "jane.morgan@westmidlands.pnn.police.uk";
const SUPERINTENDENT: &str = "helen.reid@westmidlands.pnn.police.uk";

/// A gateway whose every route leads to one aiosmtpd sink (STARTTLS with the gateway's dev
/// CA, REQUIRETLS offered), with `approval` replacing the shipped `[approval]` times.
fn gateway(expire_after: &str, review_within: &str) -> (Setup, Sink, tempfile::TempDir) {
    let setup = Setup::new("", None);
    let scratch = tempfile::tempdir().unwrap();
    let certs = setup.path().join("certs");
    let sink = Sink::start_at("127.0.0.1", free_port(), scratch.path(), Some(&certs), true);
    setup.append_config(&format!(
        "[delivery.routes.default]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"required\"\ntls_name = \"localhost\"\n",
        sink.port
    ));
    let approvers = setup.path().join("policy/approvers.toml");
    let text = std::fs::read_to_string(&approvers).unwrap();
    let text = text
        .replace(
            "expire_after = \"5d\"",
            &format!("expire_after = \"{expire_after}\""),
        )
        .replace(
            "review_within = \"3d\"",
            &format!("review_within = \"{review_within}\""),
        );
    std::fs::write(&approvers, text).unwrap();
    (setup, sink, scratch)
}

/// Send OFFICIAL-SENSITIVE PERSONAL from `from` to `to` (comma-separated); the swaks
/// transcript.
fn send(setup: &Setup, from: &str, to: &str, subject: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "--server".to_string(),
        format!("127.0.0.1:{}", setup.port),
        "--from".into(),
        from.into(),
        "--to".into(),
        to.into(),
        "--header".into(),
        format!("Subject: [OFFICIAL-SENSITIVE PERSONAL] {subject}"),
        "--header".into(),
        "X-Disclosure-Purpose: Safeguarding referral".into(),
        "--header".into(),
        "X-Legal-Basis: DPA 2018 s.35".into(),
    ];
    for e in extra {
        args.push("--header".into());
        args.push(e.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    swaks(&args)
}

/// The hold id in a `250` reply that held recipients.
fn hold_id(transcript: &str) -> String {
    let line = transcript
        .lines()
        .find(|l| l.contains("<-  250 2.0.0 queued as"))
        .unwrap_or_else(|| panic!("not accepted: {transcript}"));
    line.rsplit_once("; hold ")
        .unwrap_or_else(|| panic!("no hold in {line}"))
        .1
        .trim()
        .to_string()
}

/// `markgate hold ARGS --config ...`: (exit code, stdout, stderr).
fn hold(setup: &Setup, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .arg("hold")
        .args(args)
        .arg("--config")
        .arg(setup.path().join("markgate.toml"))
        .current_dir(setup.path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `markgate hold VERB ID --approver WHO --reason WHY`: (exit code, stderr).
fn decide(setup: &Setup, verb: &str, id: &str, who: &str, why: &str) -> (i32, String) {
    let (code, _, err) = hold(setup, &[verb, id, "--approver", who, "--reason", why]);
    (code, err)
}

/// What the sink received for `rcpt`.
fn received_by(sink: &Sink, rcpt: &str) -> Vec<String> {
    sink.received()
        .into_iter()
        .filter(|(meta, _)| {
            meta["to"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(rcpt)))
        })
        .map(|(_, m)| m)
        .collect()
}

fn wait_received(sink: &Sink, rcpt: &str, what: &str, secs: u64) -> Vec<String> {
    wait_for(Duration::from_secs(secs), || {
        let got = received_by(sink, rcpt);
        got.iter().any(|m| m.contains(what)).then_some(got)
    })
    .unwrap_or_else(|| {
        panic!(
            "nothing with {what:?} reached {rcpt}: {:?}",
            received_by(sink, rcpt)
        )
    })
}

fn records(setup: &Setup) -> Vec<serde_json::Value> {
    audit_records(&setup.path().join("var/records.sqlite"))
}

fn records_with(setup: &Setup, verdict: &str) -> Vec<serde_json::Value> {
    records(setup)
        .into_iter()
        .filter(|r| r["verdict"] == verdict)
        .collect()
}

#[test]
fn a_held_and_an_ordinary_recipient_then_approval_by_an_inspector() {
    let (setup, sink, _scratch) = gateway("5d", "3d");
    let _server = setup.serve();
    let out = send(
        &setup,
        SENDER,
        &format!("{PARTNER},{COLLEAGUE}"),
        "referral",
        &[],
    );
    assert!(
        out.contains(&format!("held for approval (inspector): {PARTNER}; hold ")),
        "{out}"
    );
    let id = hold_id(&out);

    // The colleague's copy goes now; the approvers of inspector rank and above are told.
    wait_received(&sink, COLLEAGUE, "referral", 20);
    let note = wait_received(&sink, INSPECTOR, "Held for approval (inspector)", 20);
    let note = note
        .iter()
        .find(|m| m.contains("Held for approval"))
        .unwrap();
    for what in [
        id.as_str(),
        SENDER,
        PARTNER,
        "OFFICIAL-SENSITIVE PERSONAL",
        "personal-one-off-needs-inspector",
        "Safeguarding referral",
        "DPA 2018 s.35",
        "/holds/",
        "markgate hold approve",
    ] {
        assert!(note.contains(what), "notification lacks {what:?}:\n{note}");
    }
    assert!(received_by(&sink, SUPERINTENDENT)
        .iter()
        .any(|m| m.contains(&id)));
    assert!(
        received_by(&sink, SERGEANT).is_empty(),
        "a sergeant cannot approve"
    );
    assert!(received_by(&sink, PARTNER).is_empty(), "the held copy left");

    let (code, stdout, _) = hold(&setup, &["list", "--json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["state"], "pending");
    assert_eq!(list[0]["role"], "inspector");

    // Refused: a role too low, a stranger, no reason. Exit 1, nothing leaves.
    let (code, err) = decide(&setup, "approve", &id, SERGEANT, "ok");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is sergeant; this needs inspector or higher"),
        "{err}"
    );
    let (code, err) = decide(
        &setup,
        "approve",
        &id,
        "nobody@westmidlands.pnn.police.uk",
        "ok",
    );
    assert_eq!(code, 1, "{err}");
    let (code, err) = decide(&setup, "approve", &id, INSPECTOR, "  ");
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = hold(
        &setup,
        &[
            "approve",
            "no-such-hold",
            "--approver",
            INSPECTOR,
            "--reason",
            "x",
        ],
    );
    assert_eq!(code, 2, "an unknown hold is an error: {err}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(received_by(&sink, PARTNER).is_empty());

    let (code, err) = decide(&setup, "approve", &id, INSPECTOR, "Safeguarding: supported");
    assert_eq!(code, 0, "{err}");
    let copy = wait_received(&sink, PARTNER, "referral", 20);
    assert_eq!(copy.len(), 1);
    assert!(
        copy[0].contains("X-Markgate-Statement"),
        "the held copy keeps its actions:\n{}",
        copy[0]
    );
    // Final: a second decision is refused.
    let (code, err) = decide(&setup, "reject", &id, SUPERINTENDENT, "no");
    assert_eq!(code, 1);
    assert!(err.contains("the decision is final"), "{err}");

    // Records: held, then approved with who, their role and why, linked to the decision.
    let held = records_with(&setup, "held");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["recipient"], PARTNER);
    let approved = wait_for(Duration::from_secs(10), || {
        let a = records_with(&setup, "approved");
        (!a.is_empty()).then_some(a)
    })
    .expect("approval recorded");
    let reason = approved[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(INSPECTOR) && reason.contains("(inspector)"),
        "{reason}"
    );
    assert!(reason.contains("Safeguarding: supported"), "{reason}");
    assert!(reason.contains(held[0]["id"].as_str().unwrap()), "{reason}");
    assert!(approved[0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == &format!("hold:{id}")));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(received_by(&sink, PARTNER).len(), 1, "delivered once");
}

#[test]
fn an_approver_never_approves_their_own_message() {
    let (setup, _sink, _scratch) = gateway("5d", "3d");
    let _server = setup.serve();
    let out = send(&setup, SUPERINTENDENT, PARTNER, "my own", &[]);
    let id = hold_id(&out);
    let (code, err) = decide(&setup, "approve", &id, SUPERINTENDENT, "fine");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("never decides on their own message"), "{err}");
    let (code, err) = decide(
        &setup,
        "reject",
        &id,
        &SUPERINTENDENT.to_uppercase(),
        "fine",
    );
    assert_eq!(code, 1, "the identity is compared without case: {err}");
}

#[test]
fn rejection_and_expiry_tell_the_sender_and_nothing_of_the_copy_leaves() {
    let (setup, sink, _scratch) = gateway("3s", "3d");
    let _server = setup.serve();
    let rejected = hold_id(&send(&setup, SENDER, PARTNER, "to reject", &[]));
    let silent = hold_id(&send(&setup, COLLEAGUE, PARTNER, "to reject silently", &[]));
    let (code, err) = decide(
        &setup,
        "reject",
        &rejected,
        INSPECTOR,
        "no policing purpose",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = hold(
        &setup,
        &[
            "reject",
            &silent,
            "--approver",
            INSPECTOR,
            "--reason",
            "quietly",
            "--silent",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let notice = wait_received(&sink, SENDER, "no policing purpose", 20);
    assert!(
        notice
            .iter()
            .any(|m| m.contains("rejected by Insp Jane Morgan (inspector)")),
        "{notice:?}"
    );

    // Not approved within expire_after (3 s): rejected by the gateway, the sender told.
    let expiring = hold_id(&send(&setup, SENDER, PARTNER, "to expire", &[]));
    let notice = wait_received(&sink, SENDER, "not approved in time", 30);
    assert!(notice.iter().any(|m| m.contains(&expiring)), "{notice:?}");
    let (code, err) = decide(&setup, "approve", &expiring, INSPECTOR, "late");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("expired") || err.contains("final"), "{err}");

    std::thread::sleep(Duration::from_secs(1));
    assert!(
        received_by(&sink, PARTNER).is_empty(),
        "a rejected copy left"
    );
    assert!(
        !received_by(&sink, COLLEAGUE)
            .iter()
            .any(|m| m.contains("quietly")),
        "--silent told the sender"
    );
    for (id, verdict) in [
        (&rejected, "rejected"),
        (&silent, "rejected"),
        (&expiring, "expired"),
    ] {
        let found = records_with(&setup, verdict).into_iter().any(|r| {
            r["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == &format!("hold:{id}"))
        });
        assert!(found, "no {verdict} record for {id}");
        // Nothing of the held message is kept.
        let hold_dir = setup.path().join("spool/hold");
        assert!(!hold_dir.join(format!("{id}.msg")).exists());
        assert!(!hold_dir.join(format!("{id}.eml")).exists());
    }
}

#[test]
fn an_urgent_release_goes_at_once_and_an_overdue_review_is_an_incident() {
    let (setup, sink, _scratch) = gateway("5d", "2s");
    let _server = setup.serve();
    // To a partner under ISA-0001's register entry, but one-off (no ISA cited): encrypted.
    let out = send(
        &setup,
        SENDER,
        MASH,
        "life at risk",
        &["X-Disclosure-Urgency: preserve-life"],
    );
    assert!(out.contains("urgent release"), "{out}");
    assert!(!out.contains("held for approval"), "{out}");
    wait_received(&sink, MASH, "Encrypted message", 20);
    let urgent = records_with(&setup, "urgent");
    assert_eq!(urgent.len(), 1, "{urgent:?}");

    let (code, stdout, _) = hold(&setup, &["reviews", "--json"]);
    assert_eq!(code, 0);
    let reviews: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let id = reviews[0]["id"].as_str().unwrap().to_string();
    assert_eq!(reviews[0]["state"], "pending");

    // Not reviewed within review_within (2 s): an incident in the records and the report.
    let overdue = wait_for(Duration::from_secs(20), || {
        let r = records_with(&setup, "review-overdue");
        (!r.is_empty()).then_some(r)
    })
    .expect("overdue review recorded");
    assert_eq!(overdue[0]["incident"], true);
    assert_eq!(overdue[0]["incident_kind"], "urgent-review-overdue");
    let (code, stdout, _) = hold(&setup, &["reviews"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("OVERDUE"), "{stdout}");

    let (code, _, err) = hold(
        &setup,
        &[
            "review",
            &id,
            "--approver",
            SERGEANT,
            "--decision",
            "justified",
            "--reason",
            "ok",
        ],
    );
    assert_eq!(
        code, 1,
        "a sergeant cannot review an inspector's release: {err}"
    );
    let (code, _, err) = hold(
        &setup,
        &[
            "review",
            &id,
            "--approver",
            INSPECTOR,
            "--decision",
            "justified",
            "--reason",
            "threat to life confirmed",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let reviewed = wait_for(Duration::from_secs(10), || {
        let r = records_with(&setup, "reviewed");
        (!r.is_empty()).then_some(r)
    })
    .expect("review recorded");
    assert!(reviewed[0]["reason"]
        .as_str()
        .unwrap()
        .contains("justified: threat to life confirmed"));

    let report = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args([
            "audit",
            "report",
            "--isa",
            "ISA-0001",
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
            "--config",
        ])
        .arg(setup.path().join("markgate.toml"))
        .current_dir(setup.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("urgent releases: 1"), "{text}");
    assert!(text.contains("urgent-review-overdue"), "{text}");
}

#[test]
fn holds_survive_kill_9_and_an_approval_after_restart_delivers_once() {
    let (setup, sink, _scratch) = gateway("5d", "3d");
    let server = setup.serve();
    let first = hold_id(&send(&setup, SENDER, PARTNER, "first in flight", &[]));
    let second = hold_id(&send(&setup, COLLEAGUE, PARTNER, "second in flight", &[]));
    let (_, before, _) = hold(&setup, &["list", "--json"]);
    drop(server); // SIGKILL
    let server = setup.serve();
    let (code, after, _) = hold(&setup, &["list", "--json"]);
    assert_eq!(code, 0);
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();
    let after: serde_json::Value = serde_json::from_str(&after).unwrap();
    for (b, a) in before
        .as_array()
        .unwrap()
        .iter()
        .zip(after.as_array().unwrap())
    {
        assert_eq!(a["state"], "pending");
        assert_eq!(a["expires"], b["expires"], "a restart keeps the expiry");
    }
    let (code, err) = decide(&setup, "approve", &first, INSPECTOR, "after restart");
    assert_eq!(code, 0, "{err}");
    wait_received(&sink, PARTNER, "first in flight", 20);
    // Killed again once the queue has finished with it (a copy delivered but not yet marked
    // done may go twice, as any queued message: RFC 5321 at-least-once), then started: the
    // hold is not released a second time.
    let released = setup.path().join(format!("spool/{first}-held.msg"));
    assert!(wait_for(Duration::from_secs(10), || (!released.exists())
        .then_some(()))
    .is_some());
    drop(server);
    let _server = setup.serve();
    std::thread::sleep(Duration::from_secs(3));
    let copies: Vec<String> = received_by(&sink, PARTNER)
        .into_iter()
        .filter(|m| m.contains("first in flight"))
        .collect();
    assert_eq!(copies.len(), 1, "delivered {} times", copies.len());
    assert!(!received_by(&sink, PARTNER)
        .iter()
        .any(|m| m.contains("second in flight")));
    let (_, list, _) = hold(&setup, &["show", &second]);
    assert!(list.contains("\"state\": \"pending\""), "{list}");
    assert!(Path::new(&setup.path().join(format!("spool/hold/{second}.msg"))).exists());
}

#[test]
fn a_held_copy_that_must_be_encrypted_leaves_as_the_bundle_once_approved() {
    let (setup, sink, _scratch) = gateway("5d", "3d");
    let _server = setup.serve();
    let id = hold_id(&send(&setup, SENDER, MASH, "sealed referral", &[]));
    std::thread::sleep(Duration::from_secs(1));
    assert!(received_by(&sink, MASH).is_empty());
    let (code, err) = decide(&setup, "approve", &id, INSPECTOR, "MASH referral supported");
    assert_eq!(code, 0, "{err}");
    let got = wait_received(&sink, MASH, "Encrypted message", 20);
    assert_eq!(got.len(), 1);
    assert!(
        !got[0].contains("sealed referral\r\n\r\n"),
        "the content left in the clear"
    );
    let opened = tempfile::tempdir().unwrap();
    common::smtp::open_cover_bundle(
        &got[0],
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/birmingham.key"),
        opened.path(),
    );
    let inner = std::fs::read_to_string(opened.path().join("message.eml")).unwrap();
    assert!(inner.contains("sealed referral"), "{inner}");
}
