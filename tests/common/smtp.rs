//! Shared helpers for the SMTP end-to-end tests: a temp dir with dev certificates, a policy
//! copy and a config for `markgate serve`, swaks, and an aiosmtpd next hop ([`Sink`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{copy_dir, free_port, shipped_policy, wait_for, Server};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/smtp")
        .join(name)
}

pub fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "{tool} is required for this test: run tests/deps.sh");
}

/// A temp dir with dev certificates, a policy copy and a config; `extra` is appended.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Setup {
    pub fn new(extra: &str, policy_edit: Option<(&str, &str)>) -> Setup {
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
        if let Some((from, to)) = policy_edit {
            let p = d.join("policy/markings.toml");
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.contains(from));
            std::fs::write(&p, text.replace(from, to)).unwrap();
        }
        let port = free_port();
        let config = format!(
            r#"[smtp]
listen = "127.0.0.1:{port}"
hostname = "markgate.test"
[policy]
dir = "{d}/policy"
[spool]
dir = "{d}/spool"
[tls]
cert = "{d}/certs/dev-cert.pem"
key = "{d}/certs/dev-key.pem"
ca = "{d}/certs/dev-ca.pem"
signing_key = "{d}/certs/signing-key.pem"
[admin]
enabled = false
[http]
listen = "127.0.0.1:0"
[delivery]
outbox = "{d}/outbox"
retry_initial = "200ms"
retry_max = "500ms"
{extra}
"#,
            d = d.display(),
        );
        std::fs::write(d.join("markgate.toml"), config).unwrap();
        Setup { dir, port }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Append TOML to the end of the config, which is the `[delivery]` section: delivery
    /// keys, then `[delivery.routes.*]` tables.
    pub fn append_config(&self, toml: &str) {
        let config_path = self.path().join("markgate.toml");
        let mut config = std::fs::read_to_string(&config_path).unwrap();
        let last_table = config.lines().rev().find(|l| l.starts_with('['));
        assert!(
            last_table.is_some_and(|t| t.starts_with("[delivery")),
            "{last_table:?}"
        );
        config.push_str(toml);
        std::fs::write(&config_path, config).unwrap();
    }

    /// Add `keys` (TOML lines) to the `[smtp]` section of the config.
    pub fn smtp_keys(&self, keys: &str) {
        let config_path = self.path().join("markgate.toml");
        let config = std::fs::read_to_string(&config_path).unwrap();
        let anchor = "hostname = \"markgate.test\"\n";
        assert!(config.contains(anchor));
        std::fs::write(
            &config_path,
            config.replacen(anchor, &format!("{anchor}{}\n", keys.trim_end()), 1),
        )
        .unwrap();
    }

    /// Give the HTTP gateway a free port and the `[http]` keys and `[[http.route]]` tables in
    /// `toml`; returns the port.
    pub fn http(&self, toml: &str) -> u16 {
        let config_path = self.path().join("markgate.toml");
        let config = std::fs::read_to_string(&config_path).unwrap();
        let anchor = "[http]\nlisten = \"127.0.0.1:0\"\n";
        assert!(config.contains(anchor));
        let port = free_port();
        let http = format!("[http]\nlisten = \"127.0.0.1:{port}\"\n{}\n", toml.trim());
        std::fs::write(&config_path, config.replacen(anchor, &http, 1)).unwrap();
        port
    }

    /// Start `markgate serve` and wait until the SMTP listener is bound. Readiness is read
    /// from the log, not probed with a connection: a probe would hold one of the listener's
    /// connection slots (`smtp.max_connections*`) until the server noticed it had gone.
    pub fn serve(&self) -> Server {
        let mut server = Server::start(self.path(), &self.path().join("markgate.toml"));
        let listening = wait_for(Duration::from_secs(20), || {
            if server.child.try_wait().ok().flatten().is_some() {
                return Some(false);
            }
            server
                .log_text()
                .contains("SMTP gateway listening")
                .then_some(true)
        });
        assert_eq!(
            listening,
            Some(true),
            "markgate did not listen:\n{}",
            server.log_text()
        );
        server
    }

    pub fn outbox(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.path().join("outbox")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned())
            .collect()
    }

    /// Messages (and their progress files) in the spool; emptied files kept for reuse in
    /// `spool/free/` are not messages.
    pub fn spool_files(&self) -> usize {
        std::fs::read_dir(self.path().join("spool"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .count()
            })
            .unwrap_or(0)
    }
}

pub fn swaks(args: &[&str]) -> String {
    require("swaks");
    let out = Command::new("swaks")
        .args(["--timeout", "20"])
        .args(args)
        .output()
        .expect("run swaks");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Length of the first complete (multi-line) SMTP reply in `buf`.
pub fn complete_reply(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(pos) = buf[start..].windows(2).position(|w| w == b"\r\n") {
        let line = &buf[start..start + pos];
        start += pos + 2;
        if line.len() < 4 || line[3] == b' ' {
            return Some(start);
        }
    }
    None
}

/// Open the bundle attached to a cover message with the stock tools (Python's email module,
/// `age -d -i KEY`, `tar -x`) into `into`, as the partner would.
pub fn open_cover_bundle(cover: &str, key: &Path, into: &Path) {
    require("age");
    require("tar");
    std::fs::create_dir_all(into).unwrap();
    let cover_path = into.with_extension("cover.eml");
    std::fs::write(&cover_path, cover).unwrap();
    let bundle = into.with_extension("bundle.age");
    let script = format!(
        "import email, subprocess, sys\n\
         m = email.message_from_bytes(open({cover:?}, 'rb').read())\n\
         parts = [p for p in m.walk() if p.get_filename()]\n\
         open({bundle:?}, 'wb').write(parts[0].get_payload(decode=True))\n\
         d = subprocess.run(['age', '-d', '-i', {key:?}, {bundle:?}], capture_output=True, check=True).stdout\n\
         subprocess.run(['tar', '-x', '-C', {opened:?}], input=d, check=True)\n",
        cover = cover_path.to_str().unwrap(),
        bundle = bundle.to_str().unwrap(),
        key = key.to_str().unwrap(),
        opened = into.to_str().unwrap(),
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// aiosmtpd next hop; killed on drop.
pub struct Sink {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Sink {
    /// On 127.0.0.1 and a free port; STARTTLS with `tls/dev-cert.pem` when given.
    pub fn start(dir: &Path, tls: Option<&Path>) -> Sink {
        Sink::start_on(free_port(), dir, tls)
    }

    pub fn start_on(port: u16, dir: &Path, tls: Option<&Path>) -> Sink {
        Sink::start_at("127.0.0.1", port, dir, tls, false)
    }

    /// With sink.py's own options (`--reject ADDR`: that mailbox does not exist).
    pub fn start_with(port: u16, dir: &Path, tls: Option<&Path>, options: &[&str]) -> Sink {
        Sink::spawn("127.0.0.1", port, dir, tls, false, options)
    }

    /// On `ip:port` (any address in 127.0.0.0/8, so MX hosts can share a port);
    /// `requiretls` offers REQUIRETLS (RFC 8689) after STARTTLS.
    pub fn start_at(ip: &str, port: u16, dir: &Path, tls: Option<&Path>, requiretls: bool) -> Sink {
        Sink::spawn(ip, port, dir, tls, requiretls, &[])
    }

    fn spawn(
        ip: &str,
        port: u16,
        dir: &Path,
        tls: Option<&Path>,
        requiretls: bool,
        options: &[&str],
    ) -> Sink {
        let ok = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "python3 with aiosmtpd is required: run tests/deps.sh");
        let mut cmd = Command::new("python3");
        cmd.arg(fixture("sink.py"))
            .arg(port.to_string())
            .arg(dir)
            .args(["--host", ip])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(certs) = tls {
            cmd.arg("--cert")
                .arg(certs.join("dev-cert.pem"))
                .arg("--key")
                .arg(certs.join("dev-key.pem"));
        }
        if requiretls {
            cmd.arg("--requiretls");
        }
        cmd.args(options);
        let child = cmd.spawn().expect("start sink.py");
        let up = wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect((ip, port)).ok()
        });
        assert!(up.is_some(), "sink did not start on {ip}:{port}");
        Sink {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// (meta json, message) of everything received so far.
    pub fn received(&self) -> Vec<(serde_json::Value, String)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
            {
                let meta = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                let eml = std::fs::read(p.with_extension("eml")).unwrap();
                out.push((meta, String::from_utf8_lossy(&eml).into_owned()));
            }
        }
        out
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
