//! MX delivery with TLS enforced by marking, against real peers on 127.0.0.0/8: a
//! DNSSEC-signed test root served by knot (MX, TLSA right and wrong, a bogus zone, null MX,
//! `_mta-sts` TXT), Postfix 3.7 receivers (`smtpd`, STARTTLS on test-CA certificates, or
//! none), each MX host on its own loopback address and the shared `delivery.mx_port`, nginx serving MTA-STS
//! policies over HTTPS, and the `markgate serve` binary pointed at them with `[delivery.dns]`.
//! What markgate did is read back from its delivery records (`audit query --deliveries`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::dns::TestDns;
use common::postfix::Postfix;
use common::smtp::{require, swaks, Setup};
use common::{free_port, wait_for, Server};
use sha2::Digest;

const SENDER: &str = "pc.smith@westmidlands.pnn.police.uk";

/// MX host name → loopback address of its receiver.
const HOSTS: &[(&str, &str)] = &[
    ("mx.dane.test", "127.0.0.2"),
    ("mx.danebad.test", "127.0.0.3"),
    ("mx.bogus.test", "127.0.0.4"),
    ("mx.sts.test", "127.0.0.5"),
    ("mx.pkix.test", "127.0.0.6"),
    ("mx.plain.test", "127.0.0.7"),
    ("mx.ok-sts.test", "127.0.0.9"),
];

fn ip_of(host: &str) -> &'static str {
    HOSTS.iter().find(|(h, _)| *h == host).unwrap().1
}

/// A gateway with MX routes, its DNS and the test CA (which also signed every receiver).
struct Lab {
    setup: Setup,
    _dns: TestDns,
    mx_port: u16,
    certs: PathBuf,
    server: Option<Server>,
}

fn first_cert_der(pem: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_file_iter(pem)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

impl Lab {
    /// `delivery` is appended to `[delivery]` (before the routes).
    fn new(delivery: &str, https_port: u16) -> Lab {
        Lab::with_zone(delivery, https_port, |_| String::new())
    }

    /// [`Lab::new`] with more records in `test.`, made from the lab's directory.
    fn with_zone(delivery: &str, https_port: u16, extra_zone: impl FnOnce(&Path) -> String) -> Lab {
        Lab::build(delivery, https_port, extra_zone, |dns| dns.anchor.clone())
    }

    /// [`Lab::with_zone`] trusting the anchor file `anchor` makes from the test DNS.
    fn build(
        delivery: &str,
        https_port: u16,
        extra_zone: impl FnOnce(&Path) -> String,
        anchor: impl FnOnce(&TestDns) -> PathBuf,
    ) -> Lab {
        let setup = Setup::new(delivery, None);
        let d = setup.path().to_path_buf();
        let certs = d.join("certs");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_markgate"));
        cmd.args(["certs", "dev", "--force", "--dir"]).arg(&certs);
        for (h, _) in HOSTS {
            cmd.args(["--host", h]);
        }
        for h in ["mta-sts.sts.test", "mta-sts.ok-sts.test", "smarthost.test"] {
            cmd.args(["--host", h]);
        }
        assert!(cmd.stdout(Stdio::null()).status().unwrap().success());
        let der = first_cert_der(&certs.join("dev-cert.pem"));
        let spki = markgate::smtp::outbound::dane::spki(&der).unwrap();
        let right = hex::encode(sha2::Sha256::digest(&spki));
        let wrong = hex::encode(sha2::Sha256::digest(b"not this key"));
        let mx_port = free_port();
        let mut zone = String::new();
        for (host, ip) in HOSTS {
            let domain = host.trim_start_matches("mx.");
            if domain != "bogus.test" {
                zone.push_str(&format!("{domain}. IN MX 10 {host}.\n{host}. IN A {ip}\n"));
            }
        }
        zone.push_str(&format!(
            "_{mx_port}._tcp.mx.dane.test. IN TLSA 3 1 1 {right}\n\
             _{mx_port}._tcp.mx.danebad.test. IN TLSA 3 1 1 {wrong}\n\
             nullmx.test. IN MX 0 .\n\
             _mta-sts.sts.test. IN TXT \"v=STSv1; id=2026a;\"\n\
             mta-sts.sts.test. IN A 127.0.0.1\n\
             _mta-sts.ok-sts.test. IN TXT \"v=STSv1; id=2026a;\"\n\
             mta-sts.ok-sts.test. IN A 127.0.0.1\n"
        ));
        zone.push_str(&extra_zone(&d));
        let bogus = "bogus.test. IN MX 10 mx.bogus.test.\nmx.bogus.test. IN A 127.0.0.4\n";
        let dns = TestDns::start(&d, &zone, bogus);
        setup.append_config(&format!(
            "mx_port = {mx_port}\n{}[delivery.mta_sts]\nhttps_port = {https_port}\ncache = \"{}/mta-sts\"\n\
             [delivery.routes.internet]\nmx = true\n",
            dns.config_with(&anchor(&dns)),
            d.display()
        ));
        Lab {
            setup,
            _dns: dns,
            mx_port,
            certs,
            server: None,
        }
    }

    fn serve(&mut self) {
        self.server = Some(self.setup.serve());
    }

    fn serve_with_env(&mut self, env: &[(&str, &Path)]) {
        self.server = Some(self.setup.serve_with_env(env));
    }

    /// The MX host `host` (a Postfix smtpd for its domain), with STARTTLS when `tls`.
    fn receiver(&self, host: &str, tls: bool) -> Postfix {
        Postfix::start(
            &self.setup.path().join("rcv").join(host),
            ip_of(host),
            self.mx_port,
            host,
            host.trim_start_matches("mx."),
            tls.then_some(self.certs.as_path()),
        )
    }

    /// Send through the gateway; swaks' transcript.
    fn send(&self, to: &str, subject: &str) -> String {
        swaks(&[
            "--server",
            &format!("127.0.0.1:{}", self.setup.port),
            "--from",
            SENDER,
            "--to",
            to,
            "--header",
            &format!("Subject: {subject}"),
        ])
    }

    /// The delivery records so far (`audit query --deliveries --format json`).
    fn deliveries(&self) -> Vec<serde_json::Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
            .args(["audit", "query", "--deliveries", "--format", "json", "--db"])
            .arg(self.setup.path().join("var/records.sqlite"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Wait until a delivery record for `recipient` has `outcome`.
    fn wait_outcome(&self, recipient: &str, outcome: &str, limit: Duration) -> serde_json::Value {
        wait_for(limit, || {
            self.deliveries()
                .into_iter()
                .find(|r| r["recipient"] == recipient && r["outcome"] == outcome)
        })
        .unwrap_or_else(|| {
            panic!(
                "no {outcome} record for {recipient}; records: {:#?}\nlog:\n{}",
                self.deliveries(),
                self.server
                    .as_ref()
                    .map(|s| s.log_text())
                    .unwrap_or_default()
            )
        })
    }

    /// Wait for a `deferred` record for `recipient` whose reason contains `why`.
    fn deferred_because(&self, recipient: &str, why: &str) -> serde_json::Value {
        let record = self.wait_outcome(recipient, "deferred", Duration::from_secs(20));
        assert!(
            record["reason"].as_str().unwrap().contains(why),
            "{why:?} not in {record}"
        );
        record
    }

    fn bounces(&self) -> Vec<String> {
        self.setup
            .outbox()
            .into_iter()
            .filter(|m| m.contains("Undelivered mail returned to sender"))
            .collect()
    }

    fn audit_verify(&self) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
            .args(["audit", "verify", "--db"])
            .arg(self.setup.path().join("var/records.sqlite"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn cert_sha256(lab: &Lab) -> String {
    hex::encode(sha2::Sha256::digest(first_cert_der(
        &lab.certs.join("dev-cert.pem"),
    )))
}

#[test]
fn dane_match_delivers_over_verified_tls_and_the_record_says_how() {
    let mut lab = Lab::new("", 443);
    let rcv = lab.receiver("mx.dane.test", true);
    lab.serve();
    let out = lab.send("duty@dane.test", "[OFFICIAL] referral");
    assert!(out.contains("250 2.0.0 queued as"), "{out}");
    let record = lab.wait_outcome("duty@dane.test", "delivered", Duration::from_secs(20));
    assert_eq!(record["verification"], "dane");
    assert_eq!(record["tls_required"], true);
    assert!(
        record["tls_version"]
            .as_str()
            .unwrap()
            .starts_with("TLSv1."),
        "{record}"
    );
    assert!(
        record["tls_cipher"].as_str().unwrap().starts_with("TLS"),
        "{record}"
    );
    assert_eq!(record["peer_cert_sha256"], cert_sha256(&lab));
    assert!(
        record["next_hop"]
            .as_str()
            .unwrap()
            .starts_with(&format!("mx.dane.test:{}", lab.mx_port)),
        "{record}"
    );
    let got = rcv.wait_received(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["tls"], true, "{:?}", got[0].0);
    assert_eq!(got[0].0["tls_protocol"], record["tls_version"]);
    assert_eq!(got[0].0["to"][0], "duty@dane.test");
    let verify = lab.audit_verify();
    assert!(
        verify.contains("deliveries intact: 1 delivery records"),
        "{verify}"
    );
}

#[test]
fn a_ds_only_trust_anchor_validates_the_test_root() {
    // the anchor file holds the root key's DS line and nothing else: markgate fetches the
    // root DNSKEY set, keeps the key whose digest it is, and validates from it
    let mut lab = Lab::build(
        "",
        443,
        |_| String::new(),
        |dns| {
            let text = std::fs::read_to_string(&dns.ds_anchor).unwrap();
            assert!(!text.contains("DNSKEY"), "{text}");
            dns.ds_anchor.clone()
        },
    );
    let rcv = lab.receiver("mx.dane.test", true);
    lab.serve();
    lab.send("duty@dane.test", "[OFFICIAL] referral");
    let record = lab.wait_outcome("duty@dane.test", "delivered", Duration::from_secs(20));
    assert_eq!(record["verification"], "dane", "{record}");
    rcv.wait_received(1, Duration::from_secs(10));
}

#[test]
fn a_ds_anchor_matching_no_root_key_defers_everything() {
    let mut lab = Lab::build(
        "",
        443,
        |_| String::new(),
        |dns| {
            let text = std::fs::read_to_string(&dns.ds_anchor).unwrap();
            let digest = text.split_whitespace().last().unwrap().to_string();
            let wrong: String = digest.chars().rev().collect();
            assert_ne!(wrong, digest);
            let path = dns.dir.join("wrong-ds.txt");
            std::fs::write(&path, text.replace(&digest, &wrong)).unwrap();
            path
        },
    );
    let rcv = lab.receiver("mx.dane.test", true);
    lab.serve();
    lab.send("duty@dane.test", "[NOT PROTECTIVELY MARKED] canteen menu");
    lab.deferred_because("duty@dane.test", "no DNSKEY matches the trust anchor DS");
    std::thread::sleep(Duration::from_secs(1));
    assert!(rcv.nothing_accepted(), "delivered without a trusted root");
}

#[test]
fn tlsa_mismatch_never_delivers_and_bounces_even_without_tls_in_the_decision() {
    let mut lab = Lab::new("lifetime = \"3s\"\n", 443);
    let rcv = lab.receiver("mx.danebad.test", true);
    lab.serve();
    // OFFICIAL requires tls; NOT PROTECTIVELY MARKED does not, but DANE is still enforced
    lab.send("a@danebad.test", "[OFFICIAL] referral");
    lab.send("b@danebad.test", "[NOT PROTECTIVELY MARKED] canteen menu");
    for rcpt in ["a@danebad.test", "b@danebad.test"] {
        lab.deferred_because(rcpt, "TLSA");
        let bounced = lab.wait_outcome(rcpt, "bounced", Duration::from_secs(20));
        assert!(
            bounced["reason"].as_str().unwrap().contains("gave up"),
            "{bounced}"
        );
    }
    assert!(rcv.nothing_accepted(), "a TLSA mismatch received mail");
    let bounces = wait_for(Duration::from_secs(10), || {
        let b = lab.bounces();
        (b.len() == 2).then_some(b)
    })
    .expect("two bounces in the outbox");
    assert!(
        bounces.iter().any(|b| b.contains("<a@danebad.test>")),
        "{bounces:?}"
    );
}

#[test]
fn bogus_dnssec_defers_and_is_never_read_as_no_tlsa() {
    let mut lab = Lab::new("", 443);
    let rcv = lab.receiver("mx.bogus.test", true);
    lab.serve();
    lab.send("x@bogus.test", "[NOT PROTECTIVELY MARKED] hello");
    lab.deferred_because("x@bogus.test", "DNSSEC validation failed");
    std::thread::sleep(Duration::from_secs(2));
    assert!(rcv.nothing_accepted());
    assert!(
        lab.bounces().is_empty(),
        "a bogus answer bounced instead of deferring"
    );
}

#[test]
fn a_receiver_without_starttls_gets_nothing_for_a_tls_copy() {
    let mut lab = Lab::new("", 443);
    let rcv = lab.receiver("mx.plain.test", false);
    lab.serve();
    lab.send("y@plain.test", "[OFFICIAL] referral");
    lab.deferred_because("y@plain.test", "does not offer STARTTLS");
    std::thread::sleep(Duration::from_secs(2));
    assert!(rcv.nothing_accepted(), "a tls copy went in plaintext");
    // a copy without tls goes there in plaintext, recorded as unverified
    lab.send("z@plain.test", "[NOT PROTECTIVELY MARKED] canteen menu");
    let record = lab.wait_outcome("z@plain.test", "delivered", Duration::from_secs(20));
    assert_eq!(record["verification"], "none");
    assert!(record["tls_version"].is_null());
    let got = rcv.wait_received(1, Duration::from_secs(10));
    assert_eq!(got[0].0["to"][0], "z@plain.test");
    assert_eq!(got[0].0["tls"], false);
}

#[test]
fn pkix_verifies_an_mx_without_dane_or_mta_sts() {
    let mut lab = Lab::new("", 443);
    let rcv = lab.receiver("mx.pkix.test", true);
    lab.serve();
    lab.send("p@pkix.test", "[OFFICIAL] referral");
    let record = lab.wait_outcome("p@pkix.test", "delivered", Duration::from_secs(20));
    assert_eq!(record["verification"], "pkix");
    let got = rcv.wait_received(1, Duration::from_secs(10));
    assert_eq!(got[0].0["tls"], true);
}

/// A lab whose config trusts no `tls.ca`: PKIX rests on the system roots alone.
fn lab_without_tls_ca() -> Lab {
    let lab = Lab::new("", 443);
    let config_path = lab.setup.path().join("markgate.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let ca_line = format!("ca = \"{}\"\n", lab.certs.join("dev-ca.pem").display());
    assert!(config.contains(&ca_line));
    std::fs::write(&config_path, config.replace(&ca_line, "")).unwrap();
    lab
}

#[test]
fn pkix_trusts_the_system_roots_without_tls_ca() {
    let mut lab = lab_without_tls_ca();
    let rcv = lab.receiver("mx.pkix.test", true);
    // the host's trust store, as OpenSSL finds it, holds the test CA
    let store = lab.certs.join("dev-ca.pem");
    let empty = lab.setup.path().join("no-cert-dir");
    std::fs::create_dir_all(&empty).unwrap();
    lab.serve_with_env(&[("SSL_CERT_FILE", &store), ("SSL_CERT_DIR", &empty)]);
    lab.send("p@pkix.test", "[OFFICIAL] referral");
    let record = lab.wait_outcome("p@pkix.test", "delivered", Duration::from_secs(20));
    assert_eq!(record["verification"], "pkix");
    rcv.wait_received(1, Duration::from_secs(10));
}

#[test]
fn pkix_never_delivers_to_a_certificate_no_trusted_root_signed() {
    // the machine's own trust store, which does not hold the test CA
    let mut lab = lab_without_tls_ca();
    let rcv = lab.receiver("mx.pkix.test", true);
    lab.serve();
    lab.send("p@pkix.test", "[OFFICIAL] referral");
    lab.deferred_because("p@pkix.test", "certificate");
    std::thread::sleep(Duration::from_secs(1));
    assert!(rcv.nothing_accepted(), "delivered to an unverified MX");
}

#[test]
fn null_mx_bounces_at_once() {
    let mut lab = Lab::new("", 443);
    lab.serve();
    lab.send("n@nullmx.test", "[OFFICIAL] referral");
    let record = lab.wait_outcome("n@nullmx.test", "bounced", Duration::from_secs(10));
    assert_eq!(record["attempt"], 1);
    assert!(
        record["reason"].as_str().unwrap().contains("null MX"),
        "{record}"
    );
    let bounce =
        wait_for(Duration::from_secs(10), || lab.bounces().into_iter().next()).expect("a bounce");
    assert!(bounce.contains("null MX"), "{bounce}");
}

/// nginx serving `/.well-known/mta-sts.txt` over HTTPS with a test-CA certificate, one
/// policy per `mta-sts.<domain>` server name.
struct Nginx {
    child: std::process::Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start(dir: &Path, certs: &Path, policies: &[(&str, &str)]) -> Nginx {
        require("nginx");
        let port = free_port();
        let root = dir.join("nginx");
        let mut servers = String::new();
        for (domain, policy) in policies {
            let docs = root.join(domain).join(".well-known");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join("mta-sts.txt"), policy).unwrap();
            servers.push_str(&format!(
                "server {{ listen 127.0.0.1:{port} ssl; server_name mta-sts.{domain};\n\
                 ssl_certificate {c}/dev-cert.pem; ssl_certificate_key {c}/dev-key.pem;\n\
                 root {r}/{domain}; default_type text/plain; }}\n",
                c = certs.display(),
                r = root.display()
            ));
        }
        let conf = format!(
            "daemon off; master_process off; pid {r}/nginx.pid; error_log {r}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {r}/tmp; proxy_temp_path {r}/tmp;\n\
             fastcgi_temp_path {r}/tmp; uwsgi_temp_path {r}/tmp; scgi_temp_path {r}/tmp;\n{servers}}}\n",
            r = root.display()
        );
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::write(root.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        assert!(
            common::wait_for_port(port, Duration::from_secs(10)),
            "nginx did not start"
        );
        Nginx { child, port }
    }
}

#[test]
fn mta_sts_enforce_delivers_only_to_a_listed_mx() {
    // the nginx port must be known before the gateway's config is written
    let probe = tempfile::tempdir().unwrap();
    let certs_dir = probe.path().join("certs");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_markgate"));
    cmd.args(["certs", "dev", "--dir"]).arg(&certs_dir);
    for h in ["mta-sts.sts.test", "mta-sts.ok-sts.test"] {
        cmd.args(["--host", h]);
    }
    assert!(cmd.stdout(Stdio::null()).status().unwrap().success());
    let nginx = Nginx::start(
        probe.path(),
        &certs_dir,
        &[
            (
                "sts.test",
                "version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n",
            ),
            (
                "ok-sts.test",
                "version: STSv1\nmode: enforce\nmx: *.ok-sts.test\nmax_age: 86400\n",
            ),
        ],
    );
    let mut lab = Lab::new("", nginx.port);
    // the gateway must trust the CA that signed nginx's certificate as well
    let both = lab.setup.path().join("both-ca.pem");
    std::fs::write(
        &both,
        [
            std::fs::read(lab.certs.join("dev-ca.pem")).unwrap(),
            std::fs::read(certs_dir.join("dev-ca.pem")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let config_path = lab.setup.path().join("markgate.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let ca_line = format!("ca = \"{}\"", lab.certs.join("dev-ca.pem").display());
    assert!(config.contains(&ca_line));
    std::fs::write(
        &config_path,
        config.replace(&ca_line, &format!("ca = \"{}\"", both.display())),
    )
    .unwrap();
    let outside = lab.receiver("mx.sts.test", true);
    let listed = lab.receiver("mx.ok-sts.test", true);
    lab.serve();
    // without tls in the decision too: the domain's policy is enforced for every copy
    lab.send("s@sts.test", "[NOT PROTECTIVELY MARKED] canteen menu");
    lab.send("o@ok-sts.test", "[OFFICIAL] referral");
    lab.deferred_because("s@sts.test", "MTA-STS");
    let record = lab.wait_outcome("o@ok-sts.test", "delivered", Duration::from_secs(20));
    assert_eq!(record["verification"], "mta-sts");
    assert_eq!(listed.wait_received(1, Duration::from_secs(10)).len(), 1);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        outside.nothing_accepted(),
        "an MX outside the policy got mail"
    );
    // the policy is cached on disk for its max_age
    let cached = std::fs::read_to_string(lab.setup.path().join("mta-sts/sts.test.json")).unwrap();
    assert!(cached.contains("mx.elsewhere.test"), "{cached}");
    // an attacker now blocks the policy fetch, and the gateway restarts: the policy read
    // back from disk still keeps mail off the MX it does not list (a gateway that only
    // remembered in memory would fetch, fail, and deliver to mx.sts.test)
    drop(nginx);
    lab.server = None;
    lab.serve();
    lab.send("t@sts.test", "[NOT PROTECTIVELY MARKED] canteen menu again");
    lab.deferred_because("t@sts.test", "MTA-STS");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        outside.nothing_accepted(),
        "after a restart without the policy server, an MX outside the cached policy got mail"
    );
}

/// A TXT record's text as zone-file strings of at most 255 bytes each.
fn txt_strings(text: &str) -> String {
    text.as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", std::str::from_utf8(c).unwrap()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// dkimpy's verdict on `message`, its key looked up in the test DNS.
fn dkimpy_verify(message: &[u8], dns_port: u16, dir: &Path) -> String {
    let path = dir.join("signed.eml");
    std::fs::write(&path, message).unwrap();
    let script = format!(
        r#"
import dkim, dns.resolver
def txt(name, timeout=5):
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = {dns_port}
    a = r.resolve(name.decode().rstrip("."), "TXT")
    return b"".join(a[0].strings)
msg = open("{path}", "rb").read()
print("verified" if dkim.verify(msg, dnsfunc=txt) else "FAILED")
"#,
        path = path.display()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn dkim_signature_on_a_stamped_message_verifies_with_dkimpy() {
    let ok = Command::new("python3")
        .args(["-c", "import dkim, dns.resolver"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "python3 with dkimpy is required: run tests/deps.sh");
    for algorithm in ["ed25519", "rsa"] {
        let mut lab = Lab::with_zone("", 443, |d| {
            let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
                .args(["certs", "dkim", "--algorithm", algorithm, "--key"])
                .arg(d.join("dkim.pem"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let record = String::from_utf8(out.stdout).unwrap();
            assert!(
                record.starts_with(&format!("v=DKIM1; k={algorithm}; p=")),
                "{record}"
            );
            format!(
                "mg._domainkey.westmidlands.test. IN TXT {}\n",
                txt_strings(record.trim())
            )
        });
        lab.setup.append_config(&format!(
            "[dkim]\ndomain = \"westmidlands.test\"\nselector = \"mg\"\nkey = \"{}\"\n",
            lab.setup.path().join("dkim.pem").display()
        ));
        let rcv = lab.receiver("mx.dane.test", true);
        lab.serve();
        // OFFICIAL to the internet is stamped with the security statement, then signed;
        // a sender outside dkim.domain is not signed
        for from in ["officer@cid.westmidlands.test", "someone@elsewhere.test"] {
            let out = swaks(&[
                "--server",
                &format!("127.0.0.1:{}", lab.setup.port),
                "--from",
                from,
                "--to",
                "duty@dane.test",
                "--header",
                "Subject: [OFFICIAL] referral",
                "--header",
                "X-Protective-Marking: OFFICIAL",
            ]);
            assert!(out.contains("250 2.0.0 queued as"), "{out}");
        }
        let got = rcv.wait_received(2, Duration::from_secs(20));
        let signed = got
            .iter()
            .find(|(m, _)| m["from"] == "officer@cid.westmidlands.test")
            .unwrap();
        let unsigned = got
            .iter()
            .find(|(m, _)| m["from"] == "someone@elsewhere.test")
            .unwrap();
        assert!(!unsigned.1.contains("DKIM-Signature"), "{}", unsigned.1);
        let message = &signed.1;
        assert!(message.starts_with("DKIM-Signature:"), "{message}");
        assert!(
            message.contains("X-Markgate-Statement"),
            "not stamped: {message}"
        );
        let header: String = message
            .split("\r\n")
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("");
        for h in [
            "from",
            "to",
            "subject",
            "x-protective-marking",
            "x-markgate-statement",
            "content-type",
        ] {
            assert!(
                header
                    .to_ascii_lowercase()
                    .replace([' ', '\t'], "")
                    .contains(&format!(":{h}"))
                    || header
                        .to_ascii_lowercase()
                        .replace([' ', '\t'], "")
                        .contains(&format!("h={h}")),
                "h= lacks {h}: {header}"
            );
        }
        assert!(header.contains("c=relaxed/relaxed"), "{header}");
        let verdict = dkimpy_verify(message.as_bytes(), lab._dns.port, lab.setup.path());
        assert!(verdict.contains("verified"), "{algorithm}: {verdict}");
        // and one changed byte in the body fails it: the check is real
        let tampered = message.replacen("protected", "protecteD", 1);
        assert_ne!(&tampered, message);
        let verdict = dkimpy_verify(tampered.as_bytes(), lab._dns.port, lab.setup.path());
        assert!(verdict.contains("FAILED"), "{algorithm}: {verdict}");
    }
}
