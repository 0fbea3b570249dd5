//! `markgate serve` and the careless operator (issue 13): one gateway per state directory,
//! found with an advisory lock rather than a port clash; configured certificates, keys and
//! policy that do not load stop it with exit 2 and the reason; development keys only when
//! nothing is configured. The real binary.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::http::HttpSetup;
use common::{curl, free_port, wait_for};

/// Run `markgate serve --config CONFIG` in `dir`, expecting it to stop by itself within
/// 20 s: its exit code and stderr.
fn serve_exits(dir: &Path, config: &str) -> (Option<i32>, String) {
    let file = dir.join(format!("config-{}.toml", free_port()));
    std::fs::write(&file, config).unwrap();
    let log = dir.join(format!("{}.log", file.display()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = wait_for(Duration::from_secs(20), || child.try_wait().unwrap());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr = std::fs::read_to_string(&log).unwrap();
    (status.and_then(|s| s.code()), stderr)
}

/// The setup's config with its listeners moved to free ports (same state directories).
fn other_ports(setup: &HttpSetup) -> String {
    let config = std::fs::read_to_string(setup.path().join("markgate.toml")).unwrap();
    config
        .replace(
            &format!(":{}\"", setup.http),
            &format!(":{}\"", free_port()),
        )
        .replace(
            &format!(":{}\"", setup.smtp),
            &format!(":{}\"", free_port()),
        )
        .replace(
            &format!(":{}\"", setup.admin),
            &format!(":{}\"", free_port()),
        )
}

#[test]
fn a_second_gateway_on_the_same_state_refuses_to_start() {
    let setup = HttpSetup::new("");
    let first = setup.serve();
    let pid = first.child.id();
    let d = setup.path().display().to_string();

    // Same spool and record store, other ports.
    let (code, stderr) = serve_exits(setup.path(), &other_ports(&setup));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("spool directory {d}/spool")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("pid {pid}")), "{stderr}");

    // The record store alone is enough.
    let config = other_ports(&setup).replace(&format!("{d}/spool"), &format!("{d}/spool-2"));
    let (code, stderr) = serve_exits(setup.path(), &config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&format!("record store {d}")), "{stderr}");
    assert!(stderr.contains(&format!("pid {pid}")), "{stderr}");

    // Other state on the same HTTP port: a port clash, never a silently shared port.
    let config = std::fs::read_to_string(setup.path().join("markgate.toml"))
        .unwrap()
        .replace(&format!("{d}/spool"), &format!("{d}/spool-3"))
        .replace(&format!("{d}/records"), &format!("{d}/records-3"))
        .replace(
            &format!(":{}\"", setup.smtp),
            &format!(":{}\"", free_port()),
        )
        .replace(
            &format!(":{}\"", setup.admin),
            &format!(":{}\"", free_port()),
        );
    let (code, stderr) = serve_exits(setup.path(), &config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "http.listen 127.0.0.1:{}: cannot listen",
            setup.http
        )),
        "{stderr}"
    );

    // The first one was never disturbed.
    let (status, body) = curl(&[&format!("http://127.0.0.1:{}/readyz", setup.admin)]);
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    drop(first);
    // Its lock went with it (SIGKILL): the state is free again.
    let again = setup.serve();
    drop(again);
}

/// The config of `setup` with `from` replaced by `to` (which must be there).
fn edited(setup: &HttpSetup, from: &str, to: &str) -> String {
    let config = std::fs::read_to_string(setup.path().join("markgate.toml")).unwrap();
    assert!(config.contains(from), "{from}");
    config.replace(from, to)
}

#[test]
fn configured_keys_certificates_and_policy_must_load() {
    let setup = HttpSetup::new("");
    let d = setup.path().display().to_string();
    std::fs::write(setup.path().join("garbage.pem"), "not a certificate\n").unwrap();
    let policy = setup.path().join("broken-policy");
    common::copy_dir(&setup.path().join("policy"), &policy);
    std::fs::write(policy.join("markings.toml"), "[[class]\n").unwrap();
    for (what, from, to, expected) in [
        (
            "missing signing key",
            format!("signing_key = \"{d}/certs/signing-key.pem\""),
            format!("signing_key = \"{d}/certs/missing.pem\""),
            format!("tls.signing_key: {d}/certs/missing.pem: No such file"),
        ),
        (
            "certificate that does not load",
            format!("cert = \"{d}/certs/dev-cert.pem\""),
            format!("cert = \"{d}/garbage.pem\""),
            format!("tls.cert {d}/garbage.pem"),
        ),
        (
            "extra CA that does not load",
            format!("ca = \"{d}/certs/dev-ca.pem\""),
            format!("ca = \"{d}/garbage.pem\""),
            "tls.ca:".to_string(),
        ),
        (
            "certificate without key",
            format!("key = \"{d}/certs/dev-key.pem\"\n"),
            String::new(),
            "tls.cert is set without tls.key".to_string(),
        ),
        (
            "policy that does not compile",
            format!("dir = \"{d}/policy\""),
            format!("dir = \"{}\"", policy.display()),
            "invalid policy".to_string(),
        ),
    ] {
        let (code, stderr) = serve_exits(setup.path(), &edited(&setup, &from, &to));
        assert_eq!(code, Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains(&expected),
            "{what}: expected {expected:?} in {stderr}"
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", setup.http)).is_err(),
            "{what}: nothing listens"
        );
    }
    assert!(
        !setup.path().join("certs/missing.pem").exists(),
        "a configured key is never generated"
    );
}

#[test]
fn development_keys_only_when_nothing_is_configured() {
    let setup = HttpSetup::new("");
    let d = setup.path().display().to_string();
    let work = tempfile::tempdir().unwrap();
    // No [tls] at all: development material in ./certs, with a warning.
    let config = std::fs::read_to_string(setup.path().join("markgate.toml")).unwrap();
    let start = config.find("[tls]").unwrap();
    let end = config[start..].find("[admin]").unwrap() + start;
    let bare = format!("{}{}", &config[..start], &config[end..]);
    std::fs::write(setup.path().join("markgate.toml"), &bare).unwrap();
    let server = common::Server::start(work.path(), &setup.path().join("markgate.toml"));
    let ready = wait_for(Duration::from_secs(20), || {
        (curl(&[&format!("http://127.0.0.1:{}/readyz", setup.admin)]).0 == 200).then_some(())
    });
    assert!(ready.is_some(), "{}", server.log_text());
    assert!(work.path().join("certs/dev-cert.pem").exists());
    assert!(work.path().join("certs/signing-key.pem").exists());
    assert!(
        server.log_text().contains("DEVELOPMENT"),
        "{}",
        server.log_text()
    );
    drop(server);

    // A configured signing key: used, and no development one is made next to it.
    let work = tempfile::tempdir().unwrap();
    let with_key = bare.replace(
        "[admin]",
        &format!("[tls]\nsigning_key = \"{d}/certs/signing-key.pem\"\n[admin]"),
    );
    std::fs::write(setup.path().join("markgate.toml"), with_key).unwrap();
    let server = common::Server::start(work.path(), &setup.path().join("markgate.toml"));
    let ready = wait_for(Duration::from_secs(20), || {
        (curl(&[&format!("http://127.0.0.1:{}/readyz", setup.admin)]).0 == 200).then_some(())
    });
    assert!(ready.is_some(), "{}", server.log_text());
    assert!(work.path().join("certs/dev-cert.pem").exists());
    assert!(!work.path().join("certs/signing-key.pem").exists());
}
