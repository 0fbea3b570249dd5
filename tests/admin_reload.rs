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
    start_with("")
}

/// With `extra` appended to the configuration (which ends in its `[delivery]` section).
fn start_with(extra: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("policy");
    copy_dir(&shipped_policy(), &policy);
    let (admin, smtp) = (free_port(), free_port());
    let config = tmp.path().join("markgate.toml");
    std::fs::write(
        &config,
        format!("{}{extra}", gateway_config(tmp.path(), admin, smtp)),
    )
    .unwrap();
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
    // The new snapshot is in force a moment before the line is logged.
    assert!(
        wait_for(Duration::from_secs(5), || s
            .server
            .log_text()
            .contains("policy reloaded")
            .then_some(()))
        .is_some(),
        "{}",
        s.server.log_text()
    );

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
    // Something to show: a SECRET disclosure blocked (an incident), a delivery deferred (the
    // secure route's next hop is down), a bounce (the internet next hop has no such user),
    // and a rejected policy change followed by a recovery.
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = common::smtp::Sink::start_with(
        free_port(),
        sink_dir.path(),
        None,
        &["--reject", "nobody@gmail.com"],
    );
    let s = start_with(&format!(
        "retry_initial = \"1h\"\nretry_max = \"2h\"\n\
         [delivery.routes.secure]\nhost = \"127.0.0.1\"\nport = {down}\ntls = \"none\"\n\
         [delivery.routes.internet]\nhost = \"127.0.0.1\"\nport = {sink}\ntls = \"none\"\n",
        down = free_port(),
        sink = sink.port,
    ));
    assert!(!send(
        s.smtp,
        "[SECRET] source names",
        "duty@suffolk.pnn.police.uk"
    ));
    assert!(send(
        s.smtp,
        "[OFFICIAL] referral",
        "duty@suffolk.pnn.police.uk"
    ));
    assert!(send(
        s.smtp,
        "[NOT PROTECTIVELY MARKED] rota",
        "nobody@gmail.com"
    ));
    reject_a_change_then_restore(&s);
    let st = wait_for(Duration::from_secs(20), || {
        let st = status(s.admin);
        let ready = st["reloads"][0]["recovered"] == true
            && st["queue"][0]["last_error"].is_string()
            && st["bounced"][0]["reason"].is_string();
        ready.then_some(st)
    })
    .unwrap_or_else(|| panic!("{:#}\n{}", status(s.admin), s.server.log_text()));
    assert_eq!(st["incidents"][0]["kind"], "classified-blocked", "{st:#}");
    assert_eq!(
        st["queue"][0]["recipients"][0],
        "duty@suffolk.pnn.police.uk"
    );
    assert!(
        st["bounced"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("5.1.1"),
        "the next hop's answer: {st:#}"
    );

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("admin-page.png");
    let _ = std::fs::remove_file(&shot);
    // Signing in with the token: the page is reached through the session it is swapped for.
    let url = format!("http://127.0.0.1:{}/?token={TOKEN}", s.admin);
    let profile = tempfile::tempdir().unwrap();
    let chromium = |extra: &[&str]| {
        Command::new("chromium")
            .args(common::browser::HEADLESS)
            .arg("--window-size=1280,2200")
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
    assert!(dom.contains("<h2>Incidents, last 30 days</h2>"), "{dom}");
    assert!(dom.contains("classified material blocked"), "{dom}");
    assert!(
        dom.contains("<h2>Delivery queue</h2><p>1 waiting, 1 deferred, 1 bounced recently.</p>"),
        "{dom}"
    );
    assert!(
        dom.contains("nobody@gmail.com") && dom.contains("User unknown"),
        "{dom}"
    );
    assert!(dom.contains("<h2>Policy reloads</h2>"), "{dom}");
    assert!(
        dom.contains("<td class=\"recovered\">recovered</td>"),
        "{dom}"
    );
    assert!(dom.contains("<td class=\"failed\">rejected</td>"), "{dom}");
    chromium(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot too small: {} bytes",
        png.len()
    );
}

#[test]
fn signing_in_swaps_the_token_for_an_expiring_session_and_takes_it_out_of_the_address() {
    let s = start();
    let url = format!("http://127.0.0.1:{}/?token={TOKEN}", s.admin);
    let (code, response) = curl(&["-i", &url]);
    assert_eq!(code, 303, "{response}");
    let header = |name: &str| {
        response
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in {response}"))
    };
    assert_eq!(header("location"), "/");
    let cookie = header("set-cookie");
    assert!(
        !cookie.contains(TOKEN),
        "the cookie is not the token: {cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let session = cookie.split(';').next().unwrap();
    let page = format!("http://127.0.0.1:{}/", s.admin);
    let (code, body) = curl(&["-H", &format!("Cookie: {session}"), &page]);
    assert_eq!(code, 200, "the session opens the page");
    assert!(body.contains("<h2>Handling matrix</h2>"));
    // A made-up session, or the token itself in the cookie, does not.
    for forged in [
        "markgate_session=0123456789abcdef",
        &format!("markgate_session={TOKEN}"),
    ] {
        let (code, _) = curl(&["-H", &format!("Cookie: {forged}"), &page]);
        assert_eq!(code, 401, "{forged}");
    }
    let (code, _) = curl(&[
        "-i",
        &format!("http://127.0.0.1:{}/?token=wrong-token-0000000000", s.admin),
    ]);
    assert_eq!(code, 401);
}

#[test]
fn every_metric_is_described_counted_from_zero_and_documented() {
    let s = start();
    let (code, metrics) = curl(&[&format!("http://127.0.0.1:{}/metrics", s.admin)]);
    assert_eq!(code, 200);
    let families: Vec<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    for family in &families {
        assert!(
            metrics.contains(&format!("# HELP {family} ")),
            "no HELP for {family}:\n{metrics}"
        );
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "no TYPE for {family}:\n{metrics}"
        );
    }
    // Counters exist before anything happened, at zero.
    for series in [
        "markgate_deliveries_total{result=\"delivered\"} 0",
        "markgate_deliveries_total{result=\"deferred\"} 0",
        "markgate_deliveries_total{result=\"failed\"} 0",
        "markgate_delivery_retries_total 0",
        "markgate_policy_reloads_total{result=\"loaded\"} 0",
        "markgate_policy_reloads_total{result=\"rejected\"} 0",
        "markgate_decisions_total{verdict=\"block\",class=\"SECRET\"} 0",
        "markgate_decisions_total{verdict=\"allow\",class=\"OFFICIAL\"} 0",
        "markgate_queue_depth 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == series),
            "{series} in:\n{metrics}"
        );
    }
    // Every metric the code updates is exported (from zero) ...
    fn names_in(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                names_in(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for macro_call in ["counter!(", "gauge!(", "histogram!("] {
                    for piece in text.split(macro_call).skip(1) {
                        let Some(rest) = piece.trim_start().strip_prefix("\"markgate_") else {
                            continue;
                        };
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect();
                        out.push(format!("markgate_{name}"));
                    }
                }
            }
        }
    }
    let mut in_code = Vec::new();
    names_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut in_code,
    );
    in_code.sort();
    in_code.dedup();
    assert!(in_code.len() >= 8, "{in_code:?}");
    for name in &in_code {
        assert!(
            families.contains(&name.as_str()),
            "{name} is used but not exported from zero:\n{metrics}"
        );
    }
    // ... and every metric the README documents exists.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut documented: Vec<&str> = readme
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("markgate_"))
        .collect();
    documented.sort();
    documented.dedup();
    assert!(documented.len() >= 7, "{documented:?}");
    for name in documented {
        assert!(
            families.contains(&name),
            "{name} is documented but not exported:\n{metrics}"
        );
    }
}

/// Break rules.toml (an effect misspelt), wait until the gateway has rejected it, and put
/// the file back as it was.
fn reject_a_change_then_restore(s: &Setup) {
    let rules = s.policy.join("rules.toml");
    let original = std::fs::read_to_string(&rules).unwrap();
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
}

/// Send one OFFICIAL message over SMTP; true when it was accepted (250).
fn send_official(port: u16, n: usize) -> bool {
    send(
        port,
        &format!("[OFFICIAL] live traffic {n}"),
        "duty@suffolk.pnn.police.uk",
    )
}

/// Send one message with `subject` to `to`; true when it was accepted (250).
fn send(port: u16, subject: &str, to: &str) -> bool {
    use lettre::{Message, SmtpTransport, Transport};
    let message = Message::builder()
        .from("pc.smith@westmidlands.pnn.police.uk".parse().unwrap())
        .to(to.parse().unwrap())
        .subject(subject)
        .body("message\r\n".to_string())
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
    reject_a_change_then_restore(&s);
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
