//! Signed checkpoints (issue 13): cutting the newest records and moving the chain head back
//! passes the chain walk, but not `audit verify` with the checkpoint log; a forged
//! checkpoint is reported; a running gateway writes checkpoints at its interval and at
//! shutdown. The attacker edits the store with the stock `sqlite3` tool.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::Duration;

use assert_cmd::Command;
use common::record::*;
use ed25519_dalek::SigningKey;
use markgate::record::checkpoint::Checkpoint;
use markgate::record::store::StoreOptions;
use markgate::record::Store;

/// A store of the eight sample records, a signing key and a configuration naming them.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("certs")).unwrap();
        markgate::certs::generate_signing_key(&d.join("certs")).unwrap();
        let mut store = Store::open(&d.join("records.sqlite"), &StoreOptions::default()).unwrap();
        let recs = sample(&policy());
        store.append(&recs.iter().collect::<Vec<_>>()).unwrap();
        std::fs::write(
            d.join("markgate.toml"),
            format!(
                "[records]\npath = {:?}\ncheckpoint_log = {:?}\n[tls]\nsigning_key = {:?}\n",
                d.join("records.sqlite"),
                d.join("checkpoints.log"),
                d.join("certs/signing-key.pem"),
            ),
        )
        .unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> String {
        self.path("markgate.toml").to_str().unwrap().to_string()
    }

    /// `markgate audit SUBCOMMAND --config ... ARGS`: (exit code, stdout, stderr).
    fn audit(&self, subcommand: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::cargo_bin("markgate")
            .unwrap()
            .current_dir(self.dir.path())
            .args(["audit", subcommand, "--config", &self.config()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn checkpoint(&self) {
        let (code, out, err) = self.audit("checkpoint", &[]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.starts_with("checkpoint: seq "), "{out}");
    }

    fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("checkpoints.log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Run SQL on the store with the sqlite3 command-line tool, as an attacker with the host.
    fn sqlite3(&self, sql: &str) -> String {
        sqlite3(&self.path("records.sqlite"), sql)
    }
}

fn sqlite3(db: &Path, sql: &str) -> String {
    let out = StdCommand::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 is installed (tests/deps.sh)");
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Delete the records after `keep` and move the chain head back to the last one kept: a
/// shorter chain that walks clean.
const CUT_AFTER_5: &str = "DELETE FROM records WHERE seq > 5; \
     UPDATE chain_head SET seq = 5, hash = (SELECT hash FROM records WHERE seq = 5);";

#[test]
fn cutting_the_newest_records_and_the_head_is_caught_by_the_checkpoints() {
    let f = Fixture::new();
    f.checkpoint();
    let lines = f.log_lines();
    assert_eq!(lines.len(), 1);
    let cp: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let keys: Vec<&str> = cp.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(keys.len(), 4, "{cp}");
    for key in ["time", "seq", "head", "signature"] {
        assert!(keys.contains(&key), "{cp}");
    }
    assert_eq!(cp["seq"], 8);

    let (code, out, _) = f.audit("verify", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("intact: 8 records (seq 1 to 8)"), "{out}");
    assert!(out.contains("checkpoints: 1 in"), "{out}");

    f.sqlite3(CUT_AFTER_5);
    // The chain alone is a clean, shorter chain: without the log verify cannot tell.
    let (code, out, _) = f.audit("verify", &["--checkpoints", "/dev/null"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("intact: 5 records (seq 1 to 5)"), "{out}");
    // With it, the missing range is named.
    let (code, out, _) = f.audit("verify", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("TAMPERED: records seq 6 to 8 are missing"),
        "{out}"
    );
    assert!(out.contains("the store ends at seq 5"), "{out}");
}

#[test]
fn a_chain_rewritten_after_a_checkpoint_does_not_match_it() {
    let f = Fixture::new();
    f.checkpoint();
    f.sqlite3(CUT_AFTER_5);
    // New records chained after seq 5 bring the store back to seq 8, with other content.
    let mut store = Store::open(&f.path("records.sqlite"), &StoreOptions::default()).unwrap();
    let recs = records(
        &policy(),
        "2026-11-01T09:00:00Z",
        "OFFICIAL",
        &["a@gmail.com", "b@gmail.com", "c@gmail.com"],
        None,
    );
    store.append(&recs.iter().collect::<Vec<_>>()).unwrap();
    assert_eq!(store.head().unwrap().seq, 8);
    drop(store);
    let (code, out, _) = f.audit("verify", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("TAMPERED: record seq 8 does not match the checkpoint"),
        "{out}"
    );
}

#[test]
fn a_forged_checkpoint_is_reported_as_a_bad_signature() {
    let f = Fixture::new();
    f.checkpoint();
    let genuine = Checkpoint::parse_line(&f.log_lines()[0]).unwrap();
    // Signed by another key, vouching for a record that was never there.
    let other = SigningKey::from_bytes(&[9; 32]);
    let head = markgate::record::store::ChainHead {
        seq: 20,
        hash: [7; 32],
    };
    let forged = Checkpoint::sign(head, chrono::Utc::now(), &other);
    // And the genuine one with its seq changed.
    let altered = Checkpoint {
        seq: 7,
        ..genuine.clone()
    };
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(f.path("checkpoints.log"))
        .unwrap();
    use std::io::Write;
    writeln!(log, "{}", forged.to_line()).unwrap();
    writeln!(log, "{}", altered.to_line()).unwrap();
    drop(log);
    let (code, out, _) = f.audit("verify", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("TAMPERED: the checkpoint on line 2 (seq 20,")
            && out.contains("has a bad signature"),
        "{out}"
    );
    assert!(
        out.contains("TAMPERED: the checkpoint on line 3 (seq 7,"),
        "{out}"
    );
    // A forged checkpoint vouches for nothing: seq 20 is not reported missing.
    assert!(!out.contains("missing"), "{out}");
}

#[test]
fn verify_reads_a_copy_kept_elsewhere_with_the_public_key() {
    let f = Fixture::new();
    f.checkpoint();
    // The copy a syslog server kept: each line behind the syslog header.
    let copy = f.path("loghost-copy.log");
    let line = &f.log_lines()[0];
    std::fs::write(
        &copy,
        format!("Nov 27 13:00:00 gateway markgate-checkpoint: {line}\n"),
    )
    .unwrap();
    // The local log is gone and the public key is all the auditor holds.
    std::fs::remove_file(f.path("checkpoints.log")).unwrap();
    std::fs::remove_file(f.path("certs/signing-key.pem")).unwrap();
    let public = f.path("certs/signing-pub.pem");
    f.sqlite3(CUT_AFTER_5);
    let (code, out, _) = f.audit("verify", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("checkpoints: none ("), "{out}");
    let (code, out, _) = f.audit(
        "verify",
        &[
            "--checkpoints",
            copy.to_str().unwrap(),
            "--signing-pub",
            public.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("records seq 6 to 8 are missing"), "{out}");
    // A named copy that does not exist is an error, not a pass.
    let (code, _, err) = f.audit("verify", &["--checkpoints", "/nonexistent/copy.log"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn checkpoints_survive_a_prune_of_the_records_they_vouch_for() {
    let f = Fixture::new();
    f.checkpoint();
    // Age every record by ten years, re-chained (as if written then), and prune them all.
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.sqlite");
    let mut store = Store::open(&old, &StoreOptions::default()).unwrap();
    let recs = records(
        &policy(),
        "2015-01-10T09:00:00Z",
        "OFFICIAL",
        &["a@gmail.com", "b@gmail.com"],
        None,
    );
    store.append(&recs.iter().collect::<Vec<_>>()).unwrap();
    drop(store);
    let log = f.path("old-checkpoints.log");
    let key = f.path("certs/signing-key.pem");
    markgate::record::checkpoint::write_now(&old, &key, &log).unwrap();
    let run = |args: &[&str]| {
        Command::cargo_bin("markgate")
            .unwrap()
            .current_dir(f.dir.path())
            .args(args)
            .args(["--config", &f.config()])
            .output()
            .unwrap()
    };
    let out = run(&["audit", "prune", "--db", old.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = run(&[
        "audit",
        "verify",
        "--db",
        old.to_str().unwrap(),
        "--checkpoints",
        log.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // The checkpoint's seq 2 is the prune anchor: its hash is still checked.
    assert!(text.contains("checkpoints: 1 in"), "{text}");
}

#[test]
fn a_running_gateway_checkpoints_at_its_interval_and_at_shutdown() {
    common::smtp::require("swaks");
    let setup = common::smtp::Setup::new("[records]\ncheckpoint_interval = \"1s\"\n", None);
    let log = setup.path().join("var/checkpoints.log");
    let server = setup.serve();
    let reply = common::smtp::swaks(&[
        "--server",
        &format!("127.0.0.1:{}", setup.port),
        "--from",
        "pc.smith@westmidlands.pnn.police.uk",
        "--to",
        "duty@suffolk.pnn.police.uk",
        "--header",
        "Subject: [OFFICIAL] checkpoint test",
    ]);
    assert!(reply.contains("250 "), "{reply}");
    // Two at the interval, the later one covering the message's record.
    let lines = common::wait_for(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).ok()?;
        let cps: Vec<Checkpoint> = text
            .lines()
            .map(|l| Checkpoint::parse_line(l).unwrap())
            .collect();
        (cps.len() >= 2 && cps.last().unwrap().seq >= 1).then_some(cps)
    })
    .unwrap_or_else(|| panic!("no checkpoints at the interval:\n{}", server.log_text()));
    let key =
        markgate::certs::load_verifying_key(&setup.path().join("certs/signing-pub.pem")).unwrap();
    assert!(lines.iter().all(|c| c.signature_is_valid(&key)));
    let gap = |a: &Checkpoint, b: &Checkpoint| {
        let t = |c: &Checkpoint| chrono::DateTime::parse_from_rfc3339(&c.time).unwrap();
        (t(b) - t(a)).num_milliseconds()
    };
    assert!(gap(&lines[0], &lines[1]) >= 900, "{lines:?}");

    // At SIGTERM: one more, after the signal, for the head the gateway ends with.
    let before = std::fs::read_to_string(&log).unwrap().lines().count();
    let signalled = chrono::Utc::now();
    server.signal("TERM");
    let mut server = server;
    let status = common::wait_for(Duration::from_secs(20), || server.child.try_wait().unwrap())
        .expect("markgate stops on SIGTERM");
    assert!(status.success(), "{}", server.log_text());
    let text = std::fs::read_to_string(&log).unwrap();
    let last = Checkpoint::parse_line(text.lines().last().unwrap()).unwrap();
    assert!(text.lines().count() > before, "{text}");
    let last_time = chrono::DateTime::parse_from_rfc3339(&last.time).unwrap();
    assert!(last_time >= signalled, "{last:?} before {signalled}");
    let head = Store::open_read_only(&setup.path().join("var/records.sqlite"))
        .unwrap()
        .head()
        .unwrap();
    assert_eq!(last.seq, head.seq);
    assert_eq!(last.head, hex::encode(head.hash));
    assert!(last.signature_is_valid(&key));

    // And the gateway's own store verifies against its log.
    let out = Command::cargo_bin("markgate")
        .unwrap()
        .current_dir(setup.path())
        .args(["audit", "verify", "--config", "markgate.toml"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("matched the store"), "{text}");
}
