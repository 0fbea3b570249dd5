//! Approvers at work on the admin page of a running `markgate serve` (issue 15, "Approving"),
//! with real peers: nginx as the force's authenticating reverse proxy (HTTP basic sign-in,
//! then `X-Remote-User` to the gateway from its own loopback address), headless Chromium
//! driven over DevTools as the approver's browser, curl with client certificates from a CA
//! made for the test, swaks into the SMTP listener and an aiosmtpd server receiving what is
//! released.
//!
//! What must hold: only a person the force's identity system names, listed in
//! `approvers.toml`, decides; the identity header counts only from the proxy; the shared
//! token reads and never decides; forms carry their session's token; a held message is shown
//! as text, so script and remote content in it never run or load.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::browser::Browser;
use common::nginx::Nginx;
use common::smtp::{swaks, Setup, Sink};
use common::tls::{person_cert, test_ca};
use common::*;
use markgate::hold::{HeldRecipient, Hold, HoldState, HoldStore};

const TOKEN: &str = "test-admin-token-0123456789";
const INSPECTOR: &str = "insp.jones@westmidlands.pnn.police.uk";
const SERGEANT: &str = "sgt.patel@westmidlands.pnn.police.uk";
/// An inspector who also sends mail: may approve others' messages, never their own.
const INSPECTOR_SENDER: &str = "insp.khan@westmidlands.pnn.police.uk";
const SENDER: &str = "pc.smith@westmidlands.pnn.police.uk";
const PARTNER: &str = "mash@birmingham.gov.uk";
/// A partner force on a secure network: its copy of personal data is held.
const PARTNER_FORCE: &str = "duty@suffolk.pnn.police.uk";
/// A colleague in the force itself: an ordinary recipient, whose copy goes at once.
const COLLEAGUE: &str = "analyst@westmidlands.pnn.police.uk";
/// The nginx sign-in password of every test user.
const PASSWORD: &str = "correct horse";
/// The proxy's own address: the only one the gateway believes the identity header from.
const PROXY_IP: &str = "127.0.0.2";

fn approvers_toml() -> String {
    format!(
        "roles = [\"sergeant\", \"inspector\", \"chief-inspector\", \"superintendent\"]\n\
         [[approver]]\nname = \"Inspector Jones\"\nemail = \"{INSPECTOR}\"\nrole = \"inspector\"\n\
         [[approver]]\nname = \"Sergeant Patel\"\nemail = \"{SERGEANT}\"\nrole = \"sergeant\"\n\
         [[approver]]\nname = \"Inspector Khan\"\nemail = \"{INSPECTOR_SENDER}\"\nrole = \"inspector\"\n"
    )
}

/// A gateway (`common::smtp::Setup`: development certificates, the shipped policy, whose
/// rule `personal-one-off-needs-inspector` holds for an Inspector) with the approvers above,
/// the identity header trusted from [`PROXY_IP`], (with `client_ca`) client certificates
/// from that CA on an HTTPS admin listener, and every route to an aiosmtpd server with TLS.
struct Lab {
    setup: Setup,
    server: Server,
    admin: u16,
    sink: Sink,
    _sink_dir: tempfile::TempDir,
}

impl Lab {
    fn start(client_ca: Option<&Path>, seed: impl FnOnce(&Path)) -> Lab {
        let setup = Setup::new("", None);
        let dir = setup.path();
        std::fs::write(dir.join("policy/approvers.toml"), approvers_toml()).unwrap();
        seed(&dir.join("spool"));
        let sink_dir = tempfile::tempdir().unwrap();
        // A next hop that keeps TLS to the end (it offers REQUIRETLS), as `tls` copies need.
        let sink = Sink::start_at(
            "127.0.0.1",
            free_port(),
            sink_dir.path(),
            Some(&dir.join("certs")),
            true,
        );
        let client_ca = client_ca
            .map(|ca| format!("client_ca = \"{}\"\n", ca.display()))
            .unwrap_or_default();
        let admin = setup.admin(&format!(
            "token = \"{TOKEN}\"\nidentity_header = \"X-Remote-User\"\n\
             trusted_proxies = [\"{PROXY_IP}\"]\n{client_ca}"
        ));
        for class in ["internal", "secure", "internet"] {
            setup.append_config(&format!(
                "[delivery.routes.{class}]\nhost = \"127.0.0.1\"\nport = {}\n\
                 tls = \"required\"\ntls_name = \"localhost\"\n",
                sink.port
            ));
        }
        let server = setup.serve();
        assert!(
            wait_for_port(admin, Duration::from_secs(20)),
            "admin listener did not start:\n{}",
            server.log_text()
        );
        Lab {
            setup,
            server,
            admin,
            sink,
            _sink_dir: sink_dir,
        }
    }

    fn dir(&self) -> &Path {
        self.setup.path()
    }

    /// The copy addressed to `to` once the receiving server has it (bounded wait).
    fn delivered_to(&self, to: &str, limit: Duration) -> Option<(serde_json::Value, String)> {
        wait_for(limit, || {
            self.sink
                .received()
                .into_iter()
                .find(|(meta, _)| meta["to"].to_string().contains(to))
        })
    }

    fn spool(&self) -> PathBuf {
        self.dir().join("spool")
    }

    fn store(&self) -> HoldStore {
        HoldStore::open(&markgate::hold::dir_for_spool(&self.spool())).unwrap()
    }

    /// nginx on 127.0.0.1 as the force's sign-in proxy: HTTP basic sign-in for each of
    /// `users`, the signed-in name passed on as `X-Remote-User` (whatever the client sent
    /// in that header is replaced), from [`PROXY_IP`].
    fn proxy(&self, users: &[&str]) -> Nginx {
        let dir = self.dir();
        let users_file = dir.join("proxy-users");
        let lines: String = users
            .iter()
            .map(|u| format!("{u}:{{PLAIN}}{PASSWORD}\n"))
            .collect();
        std::fs::write(&users_file, lines).unwrap();
        let port = free_port();
        Nginx::start(
            dir,
            port,
            &format!(
                "server {{ listen 127.0.0.1:{port};\n\
                 location / {{ auth_basic \"West Midlands Police sign-in\";\n\
                 auth_basic_user_file {users};\n\
                 proxy_pass http://127.0.0.1:{admin}; proxy_bind {PROXY_IP};\n\
                 proxy_set_header X-Remote-User $remote_user;\n\
                 proxy_set_header Authorization \"\"; }} }}\n",
                users = users_file.display(),
                admin = self.admin,
            ),
        )
    }
}

/// A held disclosure put straight into the hold store (as the SMTP side puts one), from
/// `sender`, with `subject` and an HTML body `html` beside a plain text one.
fn seed(spool: &Path, id: &str, sender: &str, subject: &str, html: &str, expires_in: i64) {
    let store = HoldStore::open(&markgate::hold::dir_for_spool(spool)).unwrap();
    let original = format!(
        "From: {sender}\r\nTo: {PARTNER}\r\nSubject: {subject}\r\n\
         X-Protective-Marking: OFFICIAL-SENSITIVE PERSONAL\r\n\
         X-Disclosure-Purpose: safeguarding referral\r\nX-Legal-Basis: DPA 2018 s.35(2)\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain part: referral for child A.\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b1--\r\n"
    );
    let now = chrono::Utc::now();
    let hold = Hold {
        id: id.to_string(),
        state: HoldState::Pending,
        created: now - chrono::Duration::minutes(5),
        expires: now + chrono::Duration::seconds(expires_in),
        sender: sender.to_string(),
        subject: Some(subject.to_string()),
        message_id: None,
        size: original.len() as u64,
        sha256: "0".repeat(64),
        records: Vec::new(),
        class: "OFFICIAL-SENSITIVE".into(),
        label: "OFFICIAL-SENSITIVE PERSONAL".into(),
        sources: vec![markgate::record::SourceRecord {
            location: "header:x-protective-marking".into(),
            text: "OFFICIAL-SENSITIVE PERSONAL".into(),
            class: "OFFICIAL-SENSITIVE".into(),
        }],
        recipients: vec![HeldRecipient {
            address: PARTNER.into(),
            destination: "internet".into(),
            partner: Some("Birmingham City Council".into()),
            actions: vec!["encrypt".into(), "statement".into()],
            rules: vec!["personal-one-off-needs-inspector".into()],
            role: "inspector".into(),
            disclosure: "one-off".into(),
        }],
        released_now: Vec::new(),
        role: "inspector".into(),
        isa: None,
        purpose: Some("safeguarding referral".into()),
        legal_basis: Some("DPA 2018 s.35(2)".into()),
        consent: None,
        policy_version: "test".into(),
        decided: None,
        progress: Default::default(),
    };
    store.put(&hold, b"", original.as_bytes()).unwrap();
}

/// Chromium signing in to the proxy as `user` (HTTP basic, sent with every request).
fn signed_in_browser(user: &str) -> Browser {
    use base64::Engine;
    let mut browser = Browser::start();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"));
    browser.set_headers(serde_json::json!({ "Authorization": format!("Basic {basic}") }));
    browser
}

/// curl through the proxy as `user` (HTTP basic sign-in), with a cookie jar.
fn via_proxy(proxy: &Nginx, user: &str, jar: &Path, args: &[&str]) -> (u16, String) {
    let mut all = vec![
        "-u".to_string(),
        format!("{user}:{PASSWORD}"),
        "-b".into(),
        jar.display().to_string(),
        "-c".into(),
        jar.display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let path = all.pop().unwrap();
    all.push(format!("http://127.0.0.1:{}{path}", proxy.port));
    curl(&all.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The CSRF token in a page's form.
fn csrf_in(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no form on the page:\n{page}"));
    page[at + 19..].split('"').next().unwrap().to_string()
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_approver_signed_in_by_the_proxy_approves_in_chromium_and_the_copy_is_delivered() {
    let lab = Lab::start(None, |_| {});
    let proxy = lab.proxy(&[INSPECTOR]);
    // One message, a held recipient (personal data, one-off, to a partner) and an ordinary
    // one (the same force's colleague elsewhere): the ordinary copy goes now.
    let reply = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", lab.setup.port),
        "--from",
        SENDER,
        "--to",
        &format!("{PARTNER_FORCE},{COLLEAGUE}"),
        "--header",
        "Subject: [OFFICIAL-SENSITIVE PERSONAL] referral for child A",
        "--header",
        "X-Disclosure-Purpose: safeguarding referral",
        "--header",
        "X-Legal-Basis: DPA 2018 s.35(2)",
        // The sender cannot claim an approver's identity: headers in the mail are the
        // message's, never the sign-in's.
        "--header",
        &format!("X-Remote-User: {INSPECTOR}"),
        "--header",
        &format!("X-Approved-By: {INSPECTOR}"),
        "--body",
        "Referral details for the MASH.",
    ]);
    assert!(
        reply.contains("<-  250"),
        "{reply}\n{}",
        lab.server.log_text()
    );
    let hold = wait_for(Duration::from_secs(20), || {
        lab.store().list().ok()?.into_iter().next()
    })
    .unwrap_or_else(|| panic!("nothing held: {reply}\n{}", lab.server.log_text()));
    assert!(
        reply.contains(&hold.id),
        "the reply names the hold: {reply}"
    );
    let colleague_copy = lab.delivered_to(COLLEAGUE, Duration::from_secs(20));
    assert!(
        colleague_copy.is_some(),
        "the ordinary recipient's copy goes now: {:?}\n{}",
        lab.sink.received(),
        lab.server.log_text()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !lab.sink
            .received()
            .iter()
            .any(|(meta, _)| meta["to"].to_string().contains(PARTNER_FORCE)),
        "the held copy waits, whatever the mail says about approvers"
    );
    assert_eq!(
        lab.store().show(&hold.id).unwrap().state,
        HoldState::Pending
    );

    let mut browser = signed_in_browser(INSPECTOR);
    let base = format!("http://127.0.0.1:{}", proxy.port);
    browser.open(&format!("{base}/holds"));
    let list = browser.dom();
    assert!(list.contains("Signed in as Inspector Jones"), "{list}");
    for shown in [
        SENDER,
        "duty@suffolk.pnn.police.uk (Suffolk Constabulary, secure)",
        "OFFICIAL-SENSITIVE PERSONAL",
        "safeguarding referral",
        "DPA 2018 s.35(2)",
        "inspector",
    ] {
        assert!(list.contains(shown), "{shown} in the list:\n{list}");
    }
    browser.open(&format!("{base}/holds/{}", hold.id));
    let detail = browser.dom();
    assert!(
        detail.contains("Referral details for the MASH."),
        "{detail}"
    );
    browser.type_into(
        "#approve-reason",
        "Supported: MASH referral, necessary and proportionate",
    );
    browser.screenshot(&artifacts().join("admin-hold-detail.png"));
    browser.press("#approve button");
    let outcome = browser.dom();
    assert!(
        outcome.contains("Approved hold") && outcome.contains(PARTNER_FORCE),
        "{outcome}"
    );

    let delivered = lab.delivered_to(PARTNER_FORCE, Duration::from_secs(30));
    assert!(
        delivered.is_some(),
        "the approved copy reaches the partner's server:\n{}",
        lab.server.log_text()
    );
    let decided = lab.store().show(&hold.id).unwrap();
    assert_eq!(decided.state, HoldState::Approved);
    let by = decided.decided.unwrap();
    assert_eq!(
        (by.by.as_str(), by.role.as_str(), by.reason.as_str()),
        (
            INSPECTOR,
            "inspector",
            "Supported: MASH referral, necessary and proportionate"
        )
    );
    browser.open(&format!("{base}/holds"));
    assert!(browser.dom().contains("0 waiting for an approver"));
    let shot = artifacts().join("admin-approval.png");
    browser.screenshot(&shot);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
}

#[test]
fn the_identity_header_counts_only_from_the_proxy() {
    let lab = Lab::start(None, |spool| {
        seed(
            spool,
            "h-header",
            SENDER,
            "[OFFICIAL-SENSITIVE PERSONAL] referral",
            "<p>x</p>",
            3600,
        )
    });
    let direct = format!("http://127.0.0.1:{}/holds", lab.admin);
    // From any address but the proxy's, the header is refused, whoever it names.
    for from in ["127.0.0.1", "127.0.0.3"] {
        let (code, body) = curl(&[
            "--interface",
            from,
            "-H",
            &format!("X-Remote-User: {INSPECTOR}"),
            &direct,
        ]);
        assert_eq!(code, 403, "{from}: {body}");
        assert!(
            body.contains("not in admin.trusted_proxies") && body.contains(from),
            "{body}"
        );
        // Even beside the token: the header is never ignored into a read-only visit.
        let (code, _) = curl(&[
            "--interface",
            from,
            "-H",
            &format!("X-Remote-User: {INSPECTOR}"),
            "-H",
            &format!("Authorization: Bearer {TOKEN}"),
            &direct,
        ]);
        assert_eq!(code, 403);
    }
    assert!(lab.server.log_text().contains("sign-in refused"));

    let proxy = lab.proxy(&[
        INSPECTOR,
        SERGEANT,
        "someone.else@westmidlands.pnn.police.uk",
    ]);
    let jar = lab.dir().join("jar");
    // A wrong password never reaches the gateway.
    let (code, _) = curl(&[
        "-u",
        &format!("{INSPECTOR}:wrong"),
        &format!("http://127.0.0.1:{}/holds", proxy.port),
    ]);
    assert_eq!(code, 401);
    // What the client puts in the header itself is replaced by the proxy.
    let (code, page) = via_proxy(
        &proxy,
        SERGEANT,
        &jar,
        &["-H", &format!("X-Remote-User: {INSPECTOR}"), "/holds"],
    );
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Signed in as Sergeant Patel"), "{page}");
    // Signed in by the force, but not an approver: nothing to see.
    let (code, body) = via_proxy(
        &proxy,
        "someone.else@westmidlands.pnn.police.uk",
        &jar,
        &["/holds"],
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("not an [[approver]]"), "{body}");
}

#[test]
fn the_token_reads_but_never_decides_and_forms_need_their_session() {
    let lab = Lab::start(None, |spool| {
        seed(
            spool,
            "h-token",
            SENDER,
            "[OFFICIAL-SENSITIVE PERSONAL] referral",
            "<p>x</p>",
            3600,
        )
    });
    let base = format!("http://127.0.0.1:{}", lab.admin);
    let jar = lab.dir().join("token-jar");
    let jar_s = jar.display().to_string();
    // Sign in with the token: a session, read-only.
    let (code, _) = curl(&["-c", &jar_s, &format!("{base}/holds?token={TOKEN}")]);
    assert_eq!(code, 303);
    let (code, page) = curl(&["-b", &jar_s, &format!("{base}/holds/h-token")]);
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("Signed in with the admin token: read only."),
        "{page}"
    );
    assert!(page.contains("id=\"read-only\""), "{page}");
    assert!(
        !page.contains("name=\"csrf\""),
        "no form for the token: {page}"
    );
    // Posting anyway, with the session or the bearer token, is refused.
    for auth in [
        vec!["-b", jar_s.as_str()],
        vec!["-H", "Authorization: Bearer test-admin-token-0123456789"],
    ] {
        let mut args = auth.clone();
        args.extend(["--data", "reason=looks+fine&csrf=x", "-X", "POST"]);
        let url = format!("{base}/holds/h-token/approve");
        args.push(&url);
        let (code, body) = curl(&args);
        assert_eq!(code, 403, "{body}");
        assert!(body.contains("never approves"), "{body}");
    }
    let proxy = lab.proxy(&[INSPECTOR]);
    let jar2 = lab.dir().join("inspector-jar");
    let (_, page) = via_proxy(&proxy, INSPECTOR, &jar2, &["/holds/h-token"]);
    let csrf = csrf_in(&page);
    // The approver's own session, but no token, another token, or a form from elsewhere.
    for (extra, form) in [
        (vec![], "reason=ok".to_string()),
        (vec![], "reason=ok&csrf=0000".to_string()),
        (
            vec!["-H", "Sec-Fetch-Site: cross-site"],
            format!("reason=ok&csrf={csrf}"),
        ),
    ] {
        let mut args = extra.clone();
        args.extend(["--data", form.as_str(), "/holds/h-token/approve"]);
        let (code, body) = via_proxy(&proxy, INSPECTOR, &jar2, &args);
        assert_eq!(code, 403, "{form}: {body}");
        assert!(body.contains("Refused"), "{body}");
    }
    // The token of the session, but posted without the session cookie (another browser).
    let (code, _) = curl(&[
        "-u",
        &format!("{INSPECTOR}:{PASSWORD}"),
        "--data",
        &format!("reason=ok&csrf={csrf}"),
        &format!("http://127.0.0.1:{}/holds/h-token/approve", proxy.port),
    ]);
    assert_eq!(code, 403);
    assert_eq!(
        lab.store().show("h-token").unwrap().state,
        HoldState::Pending
    );
    // And a reason is required.
    let (code, body) = via_proxy(
        &proxy,
        INSPECTOR,
        &jar2,
        &[
            "--data",
            &format!("reason=+&csrf={csrf}"),
            "/holds/h-token/approve",
        ],
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("reason is required"), "{body}");
    assert_eq!(
        lab.store().show("h-token").unwrap().state,
        HoldState::Pending
    );
}

#[test]
fn refusals_are_shown_plainly_role_too_low_own_message_expired_already_decided() {
    let lab = Lab::start(None, |spool| {
        seed(
            spool,
            "h-role",
            SENDER,
            "[OFFICIAL-SENSITIVE PERSONAL] a",
            "<p>a</p>",
            3600,
        );
        seed(
            spool,
            "h-own",
            INSPECTOR_SENDER,
            "[OFFICIAL-SENSITIVE PERSONAL] b",
            "<p>b</p>",
            3600,
        );
        seed(
            spool,
            "h-late",
            SENDER,
            "[OFFICIAL-SENSITIVE PERSONAL] c",
            "<p>c</p>",
            2,
        );
    });
    let proxy = lab.proxy(&[INSPECTOR, SERGEANT, INSPECTOR_SENDER]);
    let decide = |user: &str, id: &str, action: &str, reason: &str| {
        let jar = lab
            .dir()
            .join(format!("jar-{}", user.split('@').next().unwrap()));
        // The session's token, from a page that still has a form (h-own stays pending).
        let (code, page) = via_proxy(&proxy, user, &jar, &["/holds/h-own"]);
        assert_eq!(code, 200, "{page}");
        let csrf = csrf_in(&page);
        via_proxy(
            &proxy,
            user,
            &jar,
            &[
                "--data",
                &format!("reason={reason}&csrf={csrf}"),
                &format!("/holds/{id}/{action}"),
            ],
        )
    };
    let (code, body) = decide(SERGEANT, "h-role", "approve", "fine");
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("your role is too low") && body.contains("needs inspector or higher"),
        "{body}"
    );
    let (code, body) = decide(INSPECTOR_SENDER, "h-own", "approve", "mine");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("this is your own message"), "{body}");
    let (code, body) = decide(INSPECTOR, "h-role", "reject", "not+proportionate");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Rejected hold h-role"), "{body}");
    let (code, body) = decide(INSPECTOR, "h-role", "approve", "changed+my+mind");
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("already decided") && body.contains("final"),
        "{body}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let jar = lab.dir().join("jar-late");
    let (_, page) = via_proxy(&proxy, INSPECTOR, &jar, &["/holds"]);
    let csrf = csrf_in(&via_proxy(&proxy, INSPECTOR, &jar, &["/holds/h-own"]).1);
    let (code, body) = via_proxy(
        &proxy,
        INSPECTOR,
        &jar,
        &[
            "--data",
            &format!("reason=late&csrf={csrf}"),
            "/holds/h-late/approve",
        ],
    );
    assert_eq!(code, 409, "{body}\n{page}");
    assert!(body.contains("expired"), "{body}");
}

#[test]
fn a_client_certificate_from_the_force_ca_signs_an_approver_in_over_https() {
    let pki = tempfile::tempdir().unwrap();
    let force = test_ca("West Midlands Police CA");
    let ca_file = pki.path().join("force-ca.pem");
    std::fs::write(&ca_file, force.pem()).unwrap();
    let (jones, jones_key) =
        person_cert(&force, "Insp Jones", Some(INSPECTOR), pki.path(), "jones");
    let (nobody, nobody_key) = person_cert(&force, "No Address", None, pki.path(), "nobody");
    let (rogue, rogue_key) = person_cert(
        &test_ca("Someone else's CA"),
        "Insp Jones",
        Some(INSPECTOR),
        pki.path(),
        "rogue",
    );
    let lab = Lab::start(Some(&ca_file), |spool| {
        seed(
            spool,
            "h-cert",
            SENDER,
            "[OFFICIAL-SENSITIVE PERSONAL] referral",
            "<p>x</p>",
            3600,
        )
    });
    // The gateway's own (development) certificate, made in its directory at first start.
    let dev_ca = lab.dir().join("certs/dev-ca.pem");
    let url = |path: &str| format!("https://127.0.0.1:{}{path}", lab.admin);
    let jar = pki.path().join("jar").display().to_string();
    let with = |cert: &Path, key: &Path, extra: &[&str], path: &str| {
        let mut args = vec![
            "--cacert".to_string(),
            dev_ca.display().to_string(),
            "--cert".into(),
            cert.display().to_string(),
            "--key".into(),
            key.display().to_string(),
            "-b".into(),
            jar.clone(),
            "-c".into(),
            jar.clone(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(url(path));
        curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (code, page) = with(&jones, &jones_key, &[], "/holds/h-cert");
    assert_eq!(code, 200, "{page}\n{}", lab.server.log_text());
    assert!(page.contains("Signed in as Inspector Jones"), "{page}");
    let csrf = csrf_in(&page);
    let (code, done) = with(
        &jones,
        &jones_key,
        &["--data", &format!("reason=proportionate&csrf={csrf}")],
        "/holds/h-cert/approve",
    );
    assert_eq!(code, 200, "{done}");
    assert!(done.contains("Approved hold h-cert"), "{done}");
    let decided = lab.store().show("h-cert").unwrap().decided.unwrap();
    assert_eq!(decided.by, INSPECTOR);
    // A certificate naming no address signs nobody in (the token still reads).
    let (code, _) = with(&nobody, &nobody_key, &[], "/holds");
    assert_eq!(code, 401);
    // A certificate from another CA does not get through the handshake.
    let (code, _) = with(&rogue, &rogue_key, &[], "/holds");
    assert_eq!(code, 0, "handshake refused");
    // Without a certificate: the token reads over HTTPS, health needs nothing.
    let (code, _) = curl(&[
        "--cacert",
        &dev_ca.display().to_string(),
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &url("/holds"),
    ]);
    assert_eq!(code, 200);
    let (code, _) = curl(&["--cacert", &dev_ca.display().to_string(), &url("/healthz")]);
    assert_eq!(code, 200);
}

#[test]
fn script_and_remote_content_in_a_held_message_are_shown_as_text_and_never_run() {
    // A listener standing for a tracking server: the page must never contact it.
    let beacon = TcpListener::bind("127.0.0.1:0").unwrap();
    beacon.set_nonblocking(true).unwrap();
    let beacon_url = format!(
        "http://127.0.0.1:{}/pixel.gif",
        beacon.local_addr().unwrap().port()
    );
    let subject = "[OFFICIAL-SENSITIVE PERSONAL] <script>window.__pwned='subject'</script><img src=x onerror=\"window.__pwned='img'\">";
    let html = format!(
        "<html><body><script>window.__pwned='body'</script>\
         <img src=\"{beacon_url}\"><iframe src=\"{beacon_url}\"></iframe>\
         <a href=\"javascript:window.__pwned='link'\">click</a>\
         <style>@import url({beacon_url});</style>&lt;escaped already&gt;</body></html>"
    );
    let lab = Lab::start(None, |spool| {
        seed(spool, "h-xss", SENDER, subject, &html, 3600)
    });
    let proxy = lab.proxy(&[INSPECTOR]);
    let mut browser = signed_in_browser(INSPECTOR);
    for path in ["/holds", "/holds/h-xss"] {
        browser.open(&format!("http://127.0.0.1:{}{path}", proxy.port));
        assert_eq!(
            browser.eval("typeof window.__pwned"),
            "undefined",
            "{path}: a script of the message ran"
        );
        assert_eq!(browser.eval("document.scripts.length"), 0, "{path}");
        assert_eq!(browser.eval("document.images.length"), 0, "{path}");
        assert_eq!(
            browser.eval("document.querySelectorAll('iframe, a[href^=javascript], style:not(head style), [onerror]').length"),
            0,
            "{path}"
        );
    }
    let text = browser.eval("document.getElementById('message').textContent");
    let text = text.as_str().unwrap();
    assert!(
        text.contains("<script>window.__pwned='body'</script>"),
        "{text}"
    );
    assert!(
        text.contains(&format!("<img src=\"{beacon_url}\">")),
        "{text}"
    );
    assert!(
        text.contains("&lt;escaped already&gt;"),
        "shown as sent: {text}"
    );
    let subject_shown = browser.eval("document.getElementById('header-subject').textContent");
    assert_eq!(subject_shown, subject);
    browser.screenshot(&artifacts().join("admin-hold-escaped.png"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        beacon.accept().is_err(),
        "the page loaded remote content from the message"
    );
}

#[test]
fn an_urgent_release_is_listed_for_review_and_reviewed_by_an_approver() {
    let lab = Lab::start(None, |_| {});
    let reply = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", lab.setup.port),
        "--from",
        INSPECTOR_SENDER,
        "--to",
        PARTNER_FORCE,
        "--header",
        "Subject: [OFFICIAL-SENSITIVE PERSONAL] missing person at risk",
        "--header",
        "X-Disclosure-Purpose: preserve life",
        "--header",
        "X-Legal-Basis: DPA 2018 s.35(2)",
        "--header",
        "X-Disclosure-Urgency: preserve-life",
        "--body",
        "Last seen near the canal.",
    ]);
    assert!(reply.contains("<-  250"), "{reply}");
    let review = wait_for(Duration::from_secs(20), || {
        lab.store().reviews().ok()?.into_iter().next()
    })
    .unwrap_or_else(|| {
        panic!(
            "no urgent release listed: {reply}\n{}",
            lab.server.log_text()
        )
    });
    let proxy = lab.proxy(&[INSPECTOR, INSPECTOR_SENDER]);
    // The token sees the list and what it waits for, without a form.
    let (code, page) = curl(&[
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &format!("http://127.0.0.1:{}/reviews", lab.admin),
    ]);
    assert_eq!(code, 200);
    assert!(page.contains("1 waiting for review, 0 overdue"), "{page}");
    assert!(page.contains("waiting for an approver's review"), "{page}");
    assert!(!page.contains("name=\"csrf\""), "{page}");

    let review_as = |user: &str, decision: &str, reason: &str| {
        let jar = lab.dir().join(format!("review-jar-{}", &user[..4]));
        let (code, page) = via_proxy(&proxy, user, &jar, &["/reviews"]);
        assert_eq!(code, 200, "{page}");
        assert!(
            page.contains("missing person") || page.contains(INSPECTOR_SENDER),
            "{page}"
        );
        let csrf = csrf_in(&page);
        via_proxy(
            &proxy,
            user,
            &jar,
            &[
                "--data",
                &format!("decision={decision}&reason={reason}&csrf={csrf}"),
                &format!("/reviews/{}", review.id),
            ],
        )
    };
    // The sender reviews their own release: refused.
    let (code, body) = review_as(INSPECTOR_SENDER, "justified", "it+was+urgent");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("this is your own message"), "{body}");
    // Neither justified nor not: refused before the store is asked.
    let (code, body) = review_as(INSPECTOR, "perhaps", "unsure");
    assert_eq!(code, 400, "{body}");
    let (code, body) = review_as(INSPECTOR, "justified", "risk+to+life+was+real");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("justified"), "{body}");
    let reviewed = lab
        .store()
        .show_review(&review.id)
        .unwrap()
        .reviewed
        .unwrap();
    assert_eq!(reviewed.by.by, INSPECTOR);
    assert_eq!(reviewed.by.reason, "risk to life was real");
    let (_, page) = via_proxy(&proxy, INSPECTOR, &lab.dir().join("after"), &["/reviews"]);
    assert!(page.contains("0 waiting for review"), "{page}");
    assert!(page.contains("justified by Inspector Jones"), "{page}");
}
