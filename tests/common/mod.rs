//! The one place for test helpers: free ports, a copy of the shipped policy, a `markgate
//! serve` child process that is killed when dropped; (in [`smtp`]) the SMTP test setup,
//! (in [`record`]) decisions from the shipped policy turned into records, (in [`bundle`])
//! the bundle tests' scratch environment and stock peers.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod bundle;
pub mod dns;
pub mod faults;
pub mod http;
pub mod postfix;
pub mod record;
pub mod smtp;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn shipped_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A running `markgate serve`; killed (SIGKILL) on drop unless stopped.
pub struct Server {
    pub child: Child,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Server {
    /// Start `markgate serve --config CONFIG` in `dir`, stderr to `dir/serve.log`.
    pub fn start(dir: &Path, config: &Path) -> Server {
        Server::start_with_env(dir, config, &[])
    }

    /// [`Server::start`] with more environment variables (e.g. `SSL_CERT_FILE`).
    pub fn start_with_env(dir: &Path, config: &Path, env: &[(&str, &Path)]) -> Server {
        let log = dir.join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_markgate"))
            .envs(env.iter().copied())
            .arg("serve")
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .env("MARKGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start markgate serve");
        Server {
            child,
            dir: dir.to_path_buf(),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `f` until it returns Some, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Wait until something accepts TCP connections on 127.0.0.1:port.
pub fn wait_for_port(port: u16, limit: Duration) -> bool {
    wait_for(limit, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .is_some()
}

/// Every decision record in the store at `db`, as `markgate audit query --format json`
/// prints them.
pub fn audit_records(db: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args(["audit", "query", "--format", "json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Run curl with arguments; (status code, body).
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl must be installed (tests/deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The admin API's `/api/status` on `admin`, with the bearer `token`.
pub fn admin_status(admin: u16, token: &str) -> serde_json::Value {
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("http://127.0.0.1:{admin}/api/status"),
    ]);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}
