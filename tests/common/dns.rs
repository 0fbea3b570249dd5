//! A DNSSEC-signed test root on 127.0.0.1, served by Debian's `knot` (authoritative, as an
//! ordinary process with its own config and storage): the root zone `.`, the zone `test.`
//! holding the records a test gives, and `bogus.test.`, delegated with a DS record that
//! matches none of its keys, so every answer from it fails validation. Zones are signed
//! with `ldns-signzone` (ECDSA P-256) when the server starts; the root's key-signing key is
//! the trust anchor: `anchor` as its DNSKEY line, `ds_anchor` as its DS line (SHA-256), either
//! one for `[delivery.dns] trust_anchors`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::smtp::require;
use super::{free_port, wait_for};

pub struct TestDns {
    child: Child,
    pub port: u16,
    /// Root DNSKEY lines to trust.
    pub anchor: PathBuf,
    /// The same root key as a DS line (what IANA publishes for the real root).
    pub ds_anchor: PathBuf,
    pub dir: PathBuf,
}

impl Drop for TestDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SOA: &str = "IN SOA ns.test. admin.test. 1 3600 600 86400 300";

fn keygen(dir: &Path, zone: &str, ksk: bool) -> String {
    let mut cmd = Command::new("ldns-keygen");
    cmd.current_dir(dir).args(["-a", "ECDSAP256SHA256"]);
    if ksk {
        cmd.arg("-k");
    }
    let out = cmd
        .arg(zone)
        .output()
        .expect("ldns-keygen (tests/deps.sh: ldnsutils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn sign(dir: &Path, zone: &str, file: &str, keys: &[&str]) {
    let out = Command::new("ldns-signzone")
        .current_dir(dir)
        .args(["-o", zone, "-f", &format!("{file}.signed"), file])
        .args(keys)
        .output()
        .expect("ldns-signzone (tests/deps.sh: ldnsutils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestDns {
    /// Sign and serve the zones: `test_records` are zone-file lines in `test.` (absolute
    /// names), `bogus_records` lines in `bogus.test.`.
    pub fn start(dir: &Path, test_records: &str, bogus_records: &str) -> TestDns {
        require("knotd");
        require("ldns-signzone");
        let dir = dir.join("dns");
        std::fs::create_dir_all(&dir).unwrap();
        let root_ksk = keygen(&dir, ".", true);
        let root_zsk = keygen(&dir, ".", false);
        let test_key = keygen(&dir, "test.", true);
        let bogus_key = keygen(&dir, "bogus.test.", true);
        let decoy_key = keygen(&dir, "bogus.test.", true);
        let read = |name: String| std::fs::read_to_string(dir.join(name)).unwrap();

        let root = format!(
            "$TTL 300\n. {SOA}\n. IN NS ns.test.\ntest. IN NS ns.test.\nns.test. IN A 127.0.0.1\n{}",
            read(format!("{test_key}.ds"))
        );
        let test = format!(
            "$TTL 300\ntest. {SOA}\ntest. IN NS ns.test.\nns.test. IN A 127.0.0.1\n\
             bogus.test. IN NS ns.test.\n{}{test_records}\n",
            // the DS of a key bogus.test. is not signed with
            read(format!("{decoy_key}.ds"))
        );
        let bogus =
            format!("$TTL 300\nbogus.test. {SOA}\nbogus.test. IN NS ns.test.\n{bogus_records}\n");
        std::fs::write(dir.join("root.zone"), root).unwrap();
        std::fs::write(dir.join("test.zone"), test).unwrap();
        std::fs::write(dir.join("bogus.zone"), bogus).unwrap();
        sign(&dir, ".", "root.zone", &[&root_ksk, &root_zsk]);
        sign(&dir, "test.", "test.zone", &[&test_key]);
        sign(&dir, "bogus.test.", "bogus.zone", &[&bogus_key]);
        let anchor = dir.join("root-anchor.txt");
        std::fs::write(&anchor, read(format!("{root_ksk}.key"))).unwrap();
        let ds_anchor = dir.join("root-anchor-ds.txt");
        let ds = read(format!("{root_ksk}.ds"));
        assert!(ds.contains(" DS") || ds.contains("\tDS"), "{ds}");
        std::fs::write(
            &ds_anchor,
            format!("; the test root's KSK, as a digest\n{ds}"),
        )
        .unwrap();

        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n\
             database:\n    storage: {d}/db\n\
             log:\n  - target: stderr\n    any: info\n\
             template:\n  - id: default\n    storage: {d}\n    zonefile-load: whole\n    journal-content: none\n    semantic-checks: off\n\
             zone:\n  - domain: .\n    file: root.zone.signed\n  - domain: test.\n    file: test.zone.signed\n  - domain: bogus.test.\n    file: bogus.zone.signed\n"
        );
        std::fs::write(dir.join("knot.conf"), conf).unwrap();
        let child = Command::new("knotd")
            .arg("-c")
            .arg(dir.join("knot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("knot.log")).unwrap())
            .spawn()
            .expect("start knotd (tests/deps.sh: knot)");
        let dns = TestDns {
            child,
            port,
            anchor,
            ds_anchor,
            dir: dir.clone(),
        };
        let loaded = wait_for(Duration::from_secs(10), || {
            let log = std::fs::read_to_string(dir.join("knot.log")).unwrap_or_default();
            (log.matches("loaded, serial").count() >= 3).then_some(())
        });
        assert!(
            loaded.is_some(),
            "knot did not load the zones:\n{}",
            std::fs::read_to_string(dir.join("knot.log")).unwrap_or_default()
        );
        dns
    }

    /// The `[delivery.dns]` table pointing markgate at this server and anchor.
    pub fn config(&self) -> String {
        self.config_with(&self.anchor)
    }

    /// [`TestDns::config`] with another trust anchor file.
    pub fn config_with(&self, anchor: &Path) -> String {
        format!(
            "[delivery.dns]\nservers = [\"127.0.0.1:{}\"]\ntrust_anchors = \"{}\"\n",
            self.port,
            anchor.display()
        )
    }
}
