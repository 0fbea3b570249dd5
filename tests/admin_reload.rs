//! Security managers' live operations against a running `markgate serve`: the admin page
//! behind its bearer token (checked in headless Chromium, screenshot kept), metrics and
//! health endpoints, and hot reload of a valid and an invalid policy by file watch and SIGHUP.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const TOKEN: &str = "test-admin-token-0123456789";

struct Setup {
    _tmp: tempfile::TempDir,
    server: Server,
    admin: u16,
    smtp: u16,
    policy: std::path::PathBuf,
    records: std::path::PathBuf,
}

fn start() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("policy");
    copy_dir(&shipped_policy(), &policy);
    let (admin, smtp) = (free_port(), free_port());
    let config = tmp.path().join("markgate.toml");
    std::fs::write(&config, gateway_config(tmp.path(), admin, smtp)).unwrap();
    let server = Server::start(tmp.path(), &config);
    assert!(
        wait_for_port(admin, Duration::from_secs(20)),
        "admin listener did not start:\n{}",
        server.log_text()
    );
    assert!(
        wait_for_port(smtp, Duration::from_secs(20)),
        "{}",
        server.log_text()
    );
    let records = tmp.path().join("records.sqlite");
    Setup {
        _tmp: tmp,
        server,
        admin,
        smtp,
        policy,
        records,
    }
}

/// A configuration on free ports inside `dir`.
fn gateway_config(dir: &Path, admin: u16, smtp: u16) -> String {
    format!(
        "[policy]\ndir = \"{policy}\"\n[spool]\ndir = \"{spool}\"\n[records]\npath = \"{records}\"\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"{TOKEN}\"\n\
         [smtp]\nlisten = \"127.0.0.1:{smtp}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
         [delivery]\noutbox = \"{outbox}\"\n",
        policy = dir.join("policy").display(),
        spool = dir.join("spool").display(),
        records = dir.join("records.sqlite").display(),
        outbox = dir.join("outbox").display(),
        http = free_port(),
    )
}

fn status(admin: u16) -> serde_json::Value {
    admin_status(admin, TOKEN)
}

#[test]
fn admin_page_needs_the_token_and_shows_matrix_isas_and_policy() {
    let s = start();
    let url = format!("http://127.0.0.1:{}/", s.admin);
    let (code, body) = curl(&[&url]);
    assert_eq!(code, 401);
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"], "unauthorized");
    assert_eq!(
        curl(&["-H", "Authorization: Bearer wrong-token-xxxxxxxx", &url]).0,
        401
    );

    let (code, page) = curl(&["-H", &format!("Authorization: Bearer {TOKEN}"), &url]);
    assert_eq!(code, 200);
    assert!(page.contains("<h2>Handling matrix</h2>"), "{page}");
    assert!(
        page.contains("<tr class=\"overdue\"><td>ISA-0002</td>"),
        "{page}"
    );
    assert!(
        page.contains("<tr class=\"live\"><td>ISA-0001</td>"),
        "{page}"
    );

    let ready = wait_for(Duration::from_secs(10), || {
        let (code, body) = curl(&[&format!("http://127.0.0.1:{}/readyz", s.admin)]);
        (code == 200).then_some(body)
    });
    assert_eq!(
        ready.as_deref(),
        Some("ready\n"),
        "SMTP and HTTP listeners bound"
    );
    let (code, health) = curl(&[&format!("http://127.0.0.1:{}/healthz", s.admin)]);
    assert_eq!((code, health.as_str()), (200, "ok\n"));
    let (code, metrics) = curl(&[&format!("http://127.0.0.1:{}/metrics", s.admin)]);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("markgate_isa_days_to_review{isa=\"ISA-0002\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("markgate_isas_due 1"), "{metrics}");
}

#[test]
fn valid_policy_change_is_reloaded_and_invalid_one_never_takes_effect() {
    let s = start();
    let before = status(s.admin)["policy_version"]
        .as_str()
        .unwrap()
        .to_string();

    // A valid change: swapped in by the file watcher.
    let rules = s.policy.join("rules.toml");
    let original = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(&rules, format!("{original}\n# reviewed by the ISU\n")).unwrap();
    let after = wait_for(Duration::from_secs(10), || {
        let v = status(s.admin)["policy_version"]
            .as_str()
            .unwrap()
            .to_string();
        (v != before).then_some(v)
    })
    .expect("valid policy change was not reloaded");
    assert!(s.server.log_text().contains("policy reloaded"));

    // An invalid change: rejected with file, line and column; the valid version stays.
    let broken = original.replace(r#"classes = ["RESTRICTED"]"#, r#"classes = ["RESTRICTD"]"#);
    std::fs::write(&rules, broken).unwrap();
    let st = wait_for(Duration::from_secs(10), || {
        let st = status(s.admin);
        (st["last_reload"]["ok"] == false).then_some(st)
    })
    .expect("invalid policy change was not reported");
    assert_eq!(
        st["policy_version"].as_str().unwrap(),
        after,
        "invalid policy must not take effect"
    );
    let message = st["last_reload"]["message"].as_str().unwrap();
    assert!(
        message.contains("rules.toml:") && message.contains(r#"unknown class "RESTRICTD""#),
        "{message}"
    );
    let (_, page) = curl(&[
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &format!("http://127.0.0.1:{}/", s.admin),
    ]);
    assert!(
        page.contains("rejected, previous policy still in force"),
        "{page}"
    );

    // SIGHUP reloads too: restore the policy with the watcher's event swallowed by sending
    // HUP right after writing; either path must end with the original version in force.
    std::fs::write(&rules, &original).unwrap();
    s.server.signal("HUP");
    let restored = wait_for(Duration::from_secs(10), || {
        let st = status(s.admin);
        (st["last_reload"]["ok"] == true && st["policy_version"].as_str() == Some(before.as_str()))
            .then_some(())
    });
    assert!(
        restored.is_some(),
        "policy not restored after SIGHUP:\n{}",
        s.server.log_text()
    );
}

#[test]
fn admin_page_renders_in_headless_chromium() {
    let s = start();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("admin-page.png");
    let _ = std::fs::remove_file(&shot);
    let url = format!("http://127.0.0.1:{}/?token={TOKEN}", s.admin);
    let profile = tempfile::tempdir().unwrap();
    let chromium = |extra: &[&str]| {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,1400",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium must be installed (tests/deps.sh)")
    };
    let dom = chromium(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("Handling matrix"), "{dom}");
    assert!(dom.contains("ISA-0002") && dom.contains("overdue"), "{dom}");
    assert!(dom.contains("<td class=\"block\""), "{dom}");
    chromium(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot too small: {} bytes",
        png.len()
    );
}

/// Send one OFFICIAL message over SMTP; true when it was accepted (250).
fn send_official(port: u16, n: usize) -> bool {
    use lettre::{Message, SmtpTransport, Transport};
    let message = Message::builder()
        .from("pc.smith@westmidlands.pnn.police.uk".parse().unwrap())
        .to("duty@suffolk.pnn.police.uk".parse().unwrap())
        .subject(format!("[OFFICIAL] live traffic {n}"))
        .body(format!("message {n}\r\n"))
        .unwrap();
    let transport = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    transport.send(&message).is_ok()
}

#[test]
fn reloads_under_live_smtp_traffic_never_decide_with_a_half_loaded_policy() {
    let s = start();
    let version_a = status(s.admin)["policy_version"]
        .as_str()
        .unwrap()
        .to_string();
    let rules = s.policy.join("rules.toml");
    let original = std::fs::read_to_string(&rules).unwrap();

    let port = s.smtp;
    // Paced over about two seconds, so the reloads below happen while mail is in flight.
    let sender = std::thread::spawn(move || {
        (0..40)
            .filter(|n| {
                std::thread::sleep(Duration::from_millis(50));
                send_official(port, *n)
            })
            .count()
    });
    // While mail flows: a valid change, an invalid one, then the original again.
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(
        &rules,
        format!("{original}\n# tightened wording, same rules\n"),
    )
    .unwrap();
    let version_b = wait_for(Duration::from_secs(10), || {
        let v = status(s.admin)["policy_version"]
            .as_str()
            .unwrap()
            .to_string();
        (v != version_a).then_some(v)
    })
    .expect("valid change reloaded");
    std::fs::write(
        &rules,
        original.replace("effect = \"allow\"", "effect = \"alow\""),
    )
    .unwrap();
    wait_for(Duration::from_secs(10), || {
        (status(s.admin)["last_reload"]["ok"] == false).then_some(())
    })
    .expect("invalid change rejected");
    std::fs::write(&rules, &original).unwrap();
    let accepted = sender.join().unwrap();
    assert_eq!(
        accepted,
        40,
        "every message is accepted whatever the reloads:\n{}",
        s.server.log_text()
    );

    let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args(["audit", "query", "--format", "json", "--db"])
        .arg(&s.records)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records.len(), 40);
    for r in &records {
        let v = r["policy_version"].as_str().unwrap();
        assert!(
            v == version_a || v == version_b,
            "decided by an unknown policy version {v}"
        );
        assert_eq!(r["verdict"], "allow");
    }

    // The traffic shows in the metrics: decisions by verdict and class, deliveries, queue
    // depth, and the rejected reload.
    let metrics = wait_for(Duration::from_secs(10), || {
        let (_, m) = curl(&[&format!("http://127.0.0.1:{}/metrics", s.admin)]);
        m.contains("markgate_deliveries_total{result=\"delivered\"} 40")
            .then_some(m)
    })
    .expect("all 40 delivered to the outbox");
    assert!(
        metrics.contains("markgate_decisions_total{verdict=\"allow\",class=\"OFFICIAL\"} 40"),
        "{metrics}"
    );
    assert!(metrics.contains("markgate_queue_depth 0"), "{metrics}");
    assert!(
        metrics.contains("markgate_policy_reloads_total{result=\"rejected\"}"),
        "{metrics}"
    );
    let (_, page) = curl(&[
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &format!("http://127.0.0.1:{}/", s.admin),
    ]);
    assert!(
        page.contains("40 allowed, 0 blocked"),
        "the admin chart counts the decisions"
    );
}
