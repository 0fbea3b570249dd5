//! A receiving MTA for delivery tests: a Postfix 3.7 instance (`postfix -c DIR`, its own
//! main.cf, master.cf and queue) whose `smtpd` listens on one 127.0.0.0/8 address and port,
//! offers STARTTLS with a test-CA certificate (or no STARTTLS at all), and delivers every
//! recipient of its domain into one Maildir with Postfix's `virtual` agent. What a test reads
//! back is the message as it came over the wire (the trace headers Postfix added are taken
//! off again) plus the envelope and whether the session was TLS, from those trace headers.
//! Stopped (`postfix -c DIR stop`: this instance's master, by its pid file) when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::smtp::require;
use super::wait_for;

pub struct Postfix {
    pub dir: PathBuf,
    pub addr: String,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.dir)
            .arg("stop")
            .output();
    }
}

/// Where `virtual` delivers: the uid/gid of `nobody` (above virtual_minimum_uid).
const MAIL_ID: u32 = 65534;

impl Postfix {
    /// Accept mail for `domain` on `ip:port` as `hostname`; STARTTLS with
    /// `certs/dev-cert.pem` when `certs` is given.
    pub fn start(
        dir: &Path,
        ip: &str,
        port: u16,
        hostname: &str,
        domain: &str,
        certs: Option<&Path>,
    ) -> Postfix {
        require("postfix");
        let uid = Command::new("id").arg("-u").output().unwrap().stdout;
        assert_eq!(
            String::from_utf8_lossy(&uid).trim(),
            "0",
            "a Postfix receiver needs root (postfix start)"
        );
        let dir = dir.to_path_buf();
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["queue", "data", "mail"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        chown(&dir.join("data"), "postfix");
        std::os::unix::fs::chown(dir.join("mail"), Some(MAIL_ID), Some(MAIL_ID)).unwrap();
        let master = std::fs::read_to_string("/etc/postfix/master.cf").unwrap();
        // inet_interfaces must name an interface address (127.0.0.1); the smtpd line binds
        // the MX host's own loopback address
        let master: String = master
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() >= 8 && fields[0] == "smtp" && fields[1] == "inet" {
                    format!("{ip}:{port} inet n - n - - smtpd")
                } else if fields.len() >= 8 && line.starts_with(|c: char| c.is_ascii_lowercase()) {
                    // no chroot: the instance's queue holds no copy of /etc
                    let mut f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
                    f[4] = "n".into();
                    f.join(" ")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.join("master.cf"), master + "\n").unwrap();
        let d = dir.display();
        let tls = match certs {
            Some(c) => format!(
                "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {c}/dev-cert.pem\n\
                 smtpd_tls_key_file = {c}/dev-key.pem\nsmtpd_tls_received_header = yes\n",
                c = c.display()
            ),
            None => "smtpd_tls_security_level = none\n".to_string(),
        };
        std::fs::write(
            dir.join("main.cf"),
            format!(
                "compatibility_level = 3.7\nqueue_directory = {d}/queue\ndata_directory = {d}/data\n\
                 inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmyhostname = {hostname}\n\
                 mydestination =\nlocal_recipient_maps =\nrelay_domains =\n\
                 virtual_mailbox_domains = {domain}\nvirtual_mailbox_base = {d}/mail\n\
                 virtual_mailbox_maps = static:box/\nvirtual_uid_maps = static:{MAIL_ID}\n\
                 virtual_gid_maps = static:{MAIL_ID}\nmynetworks = 127.0.0.0/8\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject\n\
                 smtpd_tls_loglevel = 1\nmaillog_file_prefixes = {d}\nmaillog_file = {d}/maillog\n{tls}"
            ),
        )
        .unwrap();
        let out = Command::new("postfix")
            .arg("-c")
            .arg(&dir)
            .arg("start")
            .output()
            .expect("postfix (tests/deps.sh)");
        let receiver = Postfix {
            dir: dir.clone(),
            addr: format!("{ip}:{port}"),
        };
        assert!(
            out.status.success(),
            "postfix -c {d} start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let up = wait_for(Duration::from_secs(15), || {
            std::net::TcpStream::connect((ip, port)).ok()
        });
        assert!(up.is_some(), "Postfix did not listen on {ip}:{port}");
        receiver
    }

    /// (envelope json: `from`, `to`, `tls`, `tls_protocol`; the message as received) for
    /// everything delivered so far.
    pub fn received(&self) -> Vec<(serde_json::Value, String)> {
        let new = self.dir.join("mail/box/new");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&new).into_iter().flatten().flatten() {
            let stored = std::fs::read_to_string(entry.path()).unwrap();
            out.push(split_trace(&stored));
        }
        out
    }

    /// Wait until `count` messages were delivered (Postfix accepts, then delivers from its
    /// queue a moment later); everything received by then.
    pub fn wait_received(&self, count: usize, limit: Duration) -> Vec<(serde_json::Value, String)> {
        wait_for(limit, || {
            let got = self.received();
            (got.len() >= count).then_some(got)
        })
        .unwrap_or_else(|| {
            panic!(
                "{} of {count} messages delivered into {}; log:\n{}",
                self.received().len(),
                self.addr,
                self.log()
            )
        })
    }

    /// Nothing was delivered and nothing is on its way: no message in the Maildir and no
    /// message accepted into the queue (smtpd hands each accepted message to cleanup).
    pub fn nothing_accepted(&self) -> bool {
        self.received().is_empty() && !self.log().contains("postfix/cleanup")
    }

    /// The instance's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }
}

/// Take off what Postfix put in front of the message (Return-Path, X-Original-To and
/// Delivered-To from `virtual`, the Received line from `smtpd`) and read the envelope and TLS from them.
/// Maildir stores LF line ends; the message is given back with CRLF, as it was sent.
fn split_trace(stored: &str) -> (serde_json::Value, String) {
    let mut fields: Vec<String> = Vec::new();
    let mut lines = stored.split('\n').peekable();
    while let Some(line) = lines.peek() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.push('\n');
                last.push_str(line);
            }
        } else {
            let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
            let received_seen = fields
                .iter()
                .any(|f| f.to_ascii_lowercase().starts_with("received:"));
            let trace = matches!(
                name.as_str(),
                "return-path" | "delivered-to" | "x-original-to"
            ) || (name == "received" && !received_seen);
            if !trace {
                break;
            }
            fields.push(line.to_string());
        }
        lines.next();
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f.to_ascii_lowercase().starts_with(name))
            .map(|f| f[name.len()..].trim().to_string())
            .unwrap_or_default()
    };
    let received = field("received:");
    let protocol = received
        .split("(using ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(str::to_string);
    let meta = serde_json::json!({
        "from": field("return-path:").trim_matches(['<', '>']),
        "to": [field("delivered-to:")],
        "tls": protocol.is_some(),
        "tls_protocol": protocol,
        "received": received,
    });
    let message = lines.collect::<Vec<_>>().join("\r\n");
    (meta, message)
}

fn chown(path: &Path, user: &str) {
    let ok = Command::new("chown")
        .arg(user)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "chown {user} {}", path.display());
}
