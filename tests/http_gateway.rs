//! End-to-end: curl → the real `markgate serve` binary → a real HTTPS upstream on 127.0.0.1
//! with a test CA. The upstream counts what reaches it, so blocked requests are shown never
//! to arrive.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

/// An HTTPS upstream on 127.0.0.1 recording every request it receives.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    async fn start(cert: &Path, key: &Path) -> Upstream {
        Self::start_with(cert, key, None).await
    }

    /// With `client_ca`, only clients presenting a certificate from that CA get through.
    async fn start_with(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Upstream {
        let config = markgate::certs::server_config(cert, key, client_ca).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: Request<Incoming>| {
                        let record = record.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await?.to_bytes().to_vec();
                            let reply = format!("upstream got {} bytes", body.len());
                            record.lock().unwrap().push(Seen {
                                path: parts.uri.to_string(),
                                headers: parts.headers,
                                body,
                            });
                            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(reply))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Upstream { addr, seen }
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request arrived")
    }
}

/// A running `markgate serve` with routes to the upstreams.
struct Gateway {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    good: Upstream,
    wrong: Upstream,
    mutual: Upstream,
}

impl Gateway {
    /// The decision records the gateway wrote, via `markgate audit query --format json`.
    fn records(&self) -> Vec<serde_json::Value> {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_markgate"))
            .args(["audit", "query", "--format", "json", "--db"])
            .arg(self._dir.path().join("records.sqlite"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

async fn start(extra_http: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let trusted = markgate::certs::generate_dev_tls(&dir.path().join("trusted"), &[]).unwrap();
    let untrusted = markgate::certs::generate_dev_tls(&dir.path().join("untrusted"), &[]).unwrap();
    let (signing_key, _) = markgate::certs::generate_signing_key(dir.path()).unwrap();
    let good = Upstream::start(&trusted.cert, &trusted.key).await;
    let wrong = Upstream::start(&untrusted.cert, &untrusted.key).await;
    let mutual = Upstream::start_with(&trusted.cert, &trusted.key, Some(&trusted.ca_cert)).await;
    // Accepts TCP and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let port = free_port();
    let mut config = format!(
        r#"
[policy]
dir = "{policy}"

[records]
path = "{records}"

[spool]
dir = "{spool}"

[tls]
cert = "{cert}"
key = "{key}"
ca = "{ca}"
signing_key = "{signing}"

[http]
listen = "127.0.0.1:{port}"
marking_peek_bytes = 4096
max_body_bytes = 8388608
upstream_timeout = "1s"
allow_connect_npm = ["status.birmingham.gov.uk", "127.0.0.1"]
{extra_http}

[[http.route]]
host = "api.birmingham.gov.uk"
upstream = "https://127.0.0.1:{good}"

# A plain http:// upstream URL: reached over HTTPS anyway when the decision requires tls.
[[http.route]]
host = "api.suffolk.pnn.police.uk"
upstream = "http://127.0.0.1:{good}/v1"

# Same partner, but the server presents a certificate from a CA markgate does not trust.
[[http.route]]
host = "wrong.birmingham.gov.uk"
upstream = "https://127.0.0.1:{wrong}"

# Mutual TLS: the upstream wants a client certificate; only this route presents one.
[[http.route]]
host = "mtls.birmingham.gov.uk"
upstream = "https://127.0.0.1:{mutual}"
client_cert = "{cert}"
client_key = "{key}"

[[http.route]]
host = "nocert.birmingham.gov.uk"
upstream = "https://127.0.0.1:{mutual}"

[[http.route]]
host = "silent.birmingham.gov.uk"
upstream = "https://127.0.0.1:{silent_port}"

# CONNECT tunnels go to 127.0.0.1 (the test's echo server and upstream): loopback must be
# named to be reachable at all, and is classed as the internet.
[[http.address_range]]
cidr = "127.0.0.1/32"
destination = "internet"
"#,
        mutual = mutual.addr.port(),
        records = dir.path().join("records.sqlite").display(),
        spool = dir.path().join("spool").display(),
        policy = repo("policy").display(),
        cert = trusted.cert.display(),
        key = trusted.key.display(),
        ca = trusted.ca_cert.display(),
        signing = signing_key.display(),
        good = good.addr.port(),
        wrong = wrong.addr.port(),
    );
    // Give the SMTP side a free port too, once its configuration has a listen key, and keep
    // the admin page out of the way (these tests run in parallel).
    for extra in [
        format!("\n[smtp]\nlisten = \"127.0.0.1:{}\"\n", free_port()),
        "\n[admin]\nenabled = false\n".to_string(),
    ] {
        if toml::from_str::<markgate::config::Config>(&format!("{config}{extra}")).is_ok() {
            config.push_str(&extra);
        }
    }
    let file = dir.path().join("markgate.toml");
    std::fs::write(&file, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .env("RUST_LOG", "markgate=warn")
        .env("MARKGATE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "markgate did not start listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Gateway {
        child,
        port,
        _dir: dir,
        good,
        wrong,
        mutual,
    }
}

struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

async fn curl(args: &[&str]) -> Reply {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    Reply {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_string(),
    }
}

impl Gateway {
    fn proxy(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_requests_arrive_over_verified_tls_with_the_statement() {
    let gw = start("").await;
    // Absolute-form proxy request for http://; the route's upstream is HTTPS.
    let r = curl(&[
        "-x",
        &gw.proxy(),
        "-H",
        "X-Protective-Marking: OFFICIAL",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        r#"{"referral": 1}"#,
        "http://api.birmingham.gov.uk/referrals?x=1",
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "upstream got 15 bytes");
    let seen = gw.good.last();
    assert_eq!(seen.path, "/referrals?x=1");
    assert_eq!(seen.body, br#"{"referral": 1}"#);
    // One-off disclosure (no ISA cited): the security statement travels on one line.
    let statement = seen.headers["x-security-statement"].to_str().unwrap();
    assert!(
        statement.starts_with("In receiving this information"),
        "{statement}"
    );
    assert!(!statement.contains('\n'));
    assert!(seen.headers["via"].to_str().unwrap().contains("markgate"));

    // Under a live ISA: no statement needed.
    let r = curl(&[
        "-x",
        &gw.proxy(),
        "-H",
        "X-Protective-Marking: OFFICIAL",
        "-H",
        "X-ISA-Reference: ISA-0001",
        "http://api.birmingham.gov.uk/cases",
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(gw.good.last().headers.get("x-security-statement").is_none());

    // Origin-form (reverse proxy by Host) to a route whose upstream URL is http://: tls is
    // required (OFFICIAL to a secure network), so it still arrives over HTTPS, under /v1.
    let r = curl(&[
        "-H",
        "Host: api.suffolk.pnn.police.uk",
        &format!("{}/status", gw.proxy()),
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gw.good.last().path, "/v1/status");

    // HTTP/2 (prior knowledge) from the client works the same way.
    let before = gw.good.count();
    let r = curl(&[
        "--http2-prior-knowledge",
        "-H",
        "Host: api.birmingham.gov.uk",
        &format!("{}/h2", gw.proxy()),
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gw.good.count(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_requests_never_reach_the_upstream() {
    let gw = start("").await;
    let r = curl(&[
        "-x",
        &gw.proxy(),
        "-H",
        "X-Protective-Marking: RESTRICTED",
        "--data-binary",
        "case notes",
        "http://api.birmingham.gov.uk/referrals",
    ])
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let j = r.json();
    assert_eq!(j["error"], "blocked");
    assert_eq!(j["rule"], "restricted-not-internet");
    assert_eq!(j["marking"], "RESTRICTED");
    assert_eq!(j["destination"], "internet");
    assert!(j["reason"]
        .as_str()
        .unwrap()
        .contains("api.birmingham.gov.uk"));

    // A banner line in a text body is read too (no header at all).
    let r = curl(&[
        "-H",
        "Host: api.suffolk.pnn.police.uk",
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        "Classification: SECRET\n\nthe plan\n",
        &format!("{}/upload", gw.proxy()),
    ])
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["rule"], "secret-never");
    assert_eq!(gw.good.count(), 0, "nothing blocked may reach the upstream");

    // Both refusals were recorded before the answer, the SECRET one as an incident.
    let records = gw.records();
    assert_eq!(records.len(), 2, "{records:#?}");
    let restricted = &records[0];
    assert_eq!(restricted["channel"], "http");
    assert_eq!(restricted["verdict"], "block");
    assert_eq!(restricted["class"], "RESTRICTED");
    assert_eq!(restricted["destination"], "internet");
    assert_eq!(restricted["partner"], "Birmingham City Council");
    assert_eq!(
        restricted["rules"],
        serde_json::json!(["restricted-not-internet"])
    );
    assert_eq!(restricted["size"], 10);
    assert_eq!(restricted["sha256"], sha256_hex(b"case notes"));
    assert_eq!(records[1]["class"], "SECRET");
    assert_eq!(records[1]["incident"], true);
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_upstream_certificate_fails_closed() {
    let gw = start("").await;
    let r = curl(&[
        "-x",
        &gw.proxy(),
        "-H",
        "X-Protective-Marking: OFFICIAL",
        "http://wrong.birmingham.gov.uk/referrals",
    ])
    .await;
    assert_eq!(r.status, 502, "{}", r.body);
    let j = r.json();
    assert_eq!(j["error"], "upstream-failed");
    assert!(j["reason"].as_str().unwrap().contains("certificate"), "{j}");
    assert_eq!(gw.wrong.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_is_refused_with_json() {
    let gw = start("").await;
    let connect = |host: &'static str, marking: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", gw.port))
            .await
            .unwrap();
        let head = format!(
            "CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n{marking}Connection: close\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).to_string()
    };
    let reply = connect("api.birmingham.gov.uk", "").await;
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    assert!(reply.contains(r#""error":"connect-refused""#), "{reply}");
    assert!(
        reply.contains(r#""rule":"connect-not-inspectable""#),
        "{reply}"
    );
    // Even a host listed for CONNECT needs traffic declared NOT PROTECTIVELY MARKED.
    let reply = connect(
        "status.birmingham.gov.uk",
        "X-Protective-Marking: OFFICIAL\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    assert!(reply.contains("OFFICIAL"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_body_opens_with_the_age_cli() {
    let gw = start("").await;
    let body = r#"{"child": "details"}"#;
    // OFFICIAL-SENSITIVE to the internet: allowed only encrypted (for Birmingham's key).
    let r = curl(&[
        "-x",
        &gw.proxy(),
        "-H",
        "X-Protective-Marking: OFFICIAL-SENSITIVE",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
        "http://api.birmingham.gov.uk/referrals",
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = gw.good.last();
    assert_eq!(seen.headers["content-type"], "application/age");
    assert!(!String::from_utf8_lossy(&seen.body).contains("details"));

    let dir = tempfile::tempdir().unwrap();
    let sealed = dir.path().join("bundle.age");
    std::fs::write(&sealed, &seen.body).unwrap();
    let tar = Command::new("/usr/bin/age")
        .arg("-d")
        .arg("-i")
        .arg(repo("tests/fixtures/keys/birmingham.key"))
        .arg(&sealed)
        .output()
        .unwrap();
    assert!(
        tar.status.success(),
        "{}",
        String::from_utf8_lossy(&tar.stderr)
    );
    let mut archive = tar::Archive::new(&tar.stdout[..]);
    let mut files = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        files.insert(name, data);
    }
    let names: Vec<&String> = files.keys().collect();
    let file = files
        .iter()
        .find(|(n, _)| n.ends_with("request-body"))
        .unwrap_or_else(|| panic!("no request body in {names:?}"));
    assert_eq!(file.1, body.as_bytes());
    let manifest = String::from_utf8_lossy(&files["MANIFEST.json"]).to_string();
    assert!(manifest.contains("application/json"), "{manifest}");
    assert!(manifest.contains("OFFICIAL-SENSITIVE"), "{manifest}");
    // A one-off disclosure: the statement travels inside the bundle and as the header.
    assert!(files.contains_key("SECURITY-STATEMENT.txt"), "{names:?}");
    assert!(seen.headers.contains_key("x-security-statement"));

    // A partner without a key cannot be sent anything that must be encrypted.
    let r = curl(&[
        "-x",
        &gw.proxy(),
        "-H",
        "X-Protective-Marking: OFFICIAL-SENSITIVE",
        "--data-binary",
        body,
        "http://api.unregistered.example/referrals",
    ])
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["rule"], "encrypt-needs-partner-key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_and_limits_apply() {
    let gw = start("").await;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![b'x'; 5 * 1024 * 1024]).unwrap();
    let r = curl(&[
        "-x",
        &gw.proxy(),
        "-H",
        "X-Protective-Marking: OFFICIAL",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", big.display()),
        "http://api.birmingham.gov.uk/upload",
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gw.good.last().body.len(), 5 * 1024 * 1024);

    let huge = dir.path().join("huge.bin");
    std::fs::write(&huge, vec![b'x'; 9 * 1024 * 1024]).unwrap();
    let r = curl(&[
        "-x",
        &gw.proxy(),
        "--data-binary",
        &format!("@{}", huge.display()),
        "http://api.birmingham.gov.uk/upload",
    ])
    .await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["error"], "body-too-large");

    // Origin-form for a host with no route.
    let r = curl(&["-H", "Host: nowhere.example", &format!("{}/x", gw.proxy())]).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["error"], "no-route");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_per_route_and_upstream_timeout() {
    let gw = start("").await;
    let r = curl(&[
        "-x",
        &gw.proxy(),
        "-H",
        "X-Protective-Marking: OFFICIAL",
        "http://mtls.birmingham.gov.uk/x",
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gw.mutual.count(), 1);
    let r = curl(&[
        "-x",
        &gw.proxy(),
        "-H",
        "X-Protective-Marking: OFFICIAL",
        "http://nocert.birmingham.gov.uk/x",
    ])
    .await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(gw.mutual.count(), 1);

    let r = curl(&[
        "-x",
        &gw.proxy(),
        "-H",
        "X-Protective-Marking: OFFICIAL",
        "http://silent.birmingham.gov.uk/x",
    ])
    .await;
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.json()["error"], "upstream-timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_tunnel_only_for_declared_npm_to_listed_hosts() {
    let gw = start("").await;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", gw.port))
        .await
        .unwrap();
    let target = format!("127.0.0.1:{}", gw.good.addr.port());
    let head = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_gateway_cleanly() {
    let mut gw = start("").await;
    let r = curl(&[
        "-H",
        "Host: api.birmingham.gov.uk",
        "-H",
        "X-Protective-Marking: OFFICIAL",
        &format!("{}/before", gw.proxy()),
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pid = gw.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = gw.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "markgate did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", gw.port))
        .await
        .is_err());
}

/// CONNECT over HTTP/2 (RFC 9113 §8.5) gets the same treatment as over HTTP/1.1: refused
/// with the JSON reason unless the host is listed and the traffic is declared NOT
/// PROTECTIVELY MARKED, and when allowed the stream carries the tunnel both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_over_http2_is_refused_or_tunnelled_like_http1() {
    use hyper::Method;
    use hyper_util::rt::TokioExecutor;

    let gw = start("").await;
    // A plain TCP echo server as the tunnel's far end.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });

    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", gw.port))
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("markgate speaks HTTP/2 with prior knowledge");
    tokio::spawn(connection);
    let connect = |authority: String, marking: Option<&'static str>| {
        let mut request = Request::builder().method(Method::CONNECT).uri(authority);
        if let Some(marking) = marking {
            request = request.header("x-protective-marking", marking);
        }
        request.body(http_body_util::Empty::<Bytes>::new()).unwrap()
    };

    // Not listed: refused, with the rule and what to do instead.
    let refused = sender
        .send_request(connect("api.birmingham.gov.uk:443".into(), None))
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.version(), hyper::Version::HTTP_2);
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "connect-refused", "{json}");
    assert_eq!(json["rule"], "connect-not-inspectable", "{json}");

    // Listed, but declared OFFICIAL: refused.
    let official = sender
        .send_request(connect(format!("127.0.0.1:{echo_port}"), Some("OFFICIAL")))
        .await
        .unwrap();
    assert_eq!(official.status(), 403);

    // Listed and declared NOT PROTECTIVELY MARKED: a working tunnel on this stream.
    let allowed = sender
        .send_request(connect(
            format!("127.0.0.1:{echo_port}"),
            Some("NOT PROTECTIVELY MARKED"),
        ))
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let upgraded = tokio::time::timeout(Duration::from_secs(5), hyper::upgrade::on(allowed))
        .await
        .unwrap()
        .expect("the CONNECT stream becomes a tunnel");
    let mut tunnel = TokioIo::new(upgraded);
    tunnel.write_all(b"ping through markgate").await.unwrap();
    let mut back = [0u8; 21];
    tokio::time::timeout(Duration::from_secs(5), tunnel.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"ping through markgate");

    // Every CONNECT decision was recorded, refused or not.
    let connects = gw
        .records()
        .into_iter()
        .filter(|r| {
            r["message_id"]
                .as_str()
                .unwrap_or("")
                .starts_with("CONNECT ")
        })
        .count();
    assert_eq!(connects, 3);
}

/// Fail closed: a marking header the policy cannot read is refused before anything is
/// forwarded, with the rule and where the unreadable marking was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_marking_header_is_refused() {
    let gw = start("").await;
    let r = curl(&[
        "-x",
        &gw.proxy(),
        "-H",
        "X-Protective-Marking: OFFICIAL SENSATIVE",
        "--data-binary",
        "referral",
        "http://api.birmingham.gov.uk/referrals",
    ])
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let j = r.json();
    assert_eq!(j["error"], "blocked", "{j}");
    assert_eq!(j["rule"], "marking-unreadable", "{j}");
    assert!(
        j["reason"]
            .as_str()
            .unwrap()
            .contains("x-protective-marking"),
        "{j}"
    );
    assert_eq!(gw.good.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_needing_approval_is_refused_unless_urgent_and_an_urgent_one_is_to_be_reviewed() {
    let gw = start("").await;
    let personal = |urgent: bool| {
        let mut args = vec![
            "-x".to_string(),
            gw.proxy(),
            "-H".into(),
            "X-Protective-Marking: OFFICIAL-SENSITIVE PERSONAL".into(),
            "--data-binary".into(),
            "case 24/1187".into(),
            "http://api.suffolk.pnn.police.uk/referrals".into(),
        ];
        if urgent {
            args.splice(
                2..2,
                [
                    "-H".to_string(),
                    "X-Disclosure-Urgency: preserve-life".into(),
                ],
            );
        }
        args
    };
    // An HTTP request cannot wait for an approver: refused, recorded as such, not forwarded.
    let before = gw.good.count();
    let args = personal(false);
    let r = curl(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("held for approval (inspector)"),
        "{}",
        r.body
    );
    assert_eq!(gw.good.count(), before);
    let last = gw.records().last().cloned().unwrap();
    assert_eq!(last["verdict"], "block");
    assert!(
        last["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "hold-unavailable"),
        "{last}"
    );

    // To preserve life it goes at once, is recorded urgent, and joins the review list.
    let args = personal(true);
    let r = curl(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gw.good.count(), before + 1);
    let last = gw.records().last().cloned().unwrap();
    assert_eq!(last["verdict"], "urgent");
    let reviews = markgate::hold::HoldStore::open(&gw._dir.path().join("spool/hold"))
        .unwrap()
        .reviews()
        .unwrap();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].id, last["id"].as_str().unwrap());
    assert_eq!(reviews[0].role, "inspector");
    assert_eq!(
        reviews[0].recipients[0].address,
        "api.suffolk.pnn.police.uk"
    );
}
