//! One checked snapshot, swapped whole (issue 12): the key material exists before any
//! listener starts, so HTTP encryption works from the first request of a first start; and a
//! policy reload that the `[http]` routes do not fit is refused like an invalid policy, the
//! old snapshot staying in force. Against the real `markgate serve` binary, with curl.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const TOKEN: &str = "test-admin-token-0123456789";

/// A fresh directory with a policy copy and a config naming no key material (the defaults
/// under `certs/`, generated on first start); Birmingham's API routed to a closed port.
fn fresh(extra_route: &str, admin: u16, http: u16) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    copy_dir(&shipped_policy(), &d.join("policy"));
    // free_port() may hand out a port twice; the closed upstream must not be a listener of
    // the gateway's own (the address guard refuses those, rightly)
    let smtp = loop {
        let p = free_port();
        if ![admin, http].contains(&p) {
            break p;
        }
    };
    let closed = loop {
        let p = free_port();
        if ![admin, http, smtp].contains(&p) {
            break p;
        }
    };
    let config = format!(
        "[policy]\ndir = \"{d}/policy\"\n[spool]\ndir = \"{d}/spool\"\n[records]\npath = \"{d}/records.sqlite\"\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"{TOKEN}\"\n\
         [smtp]\nlisten = \"127.0.0.1:{smtp}\"\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\nupstream_timeout = \"2s\"\n\
         [[http.route]]\nhost = \"api.birmingham.gov.uk\"\nupstream = \"https://127.0.0.1:{closed}\"\n\
         {extra_route}\n\
         [delivery]\noutbox = \"{d}/outbox\"\n",
        d = d.display(),
    );
    std::fs::write(d.join("markgate.toml"), config).unwrap();
    tmp
}

fn serve(dir: &Path, http: u16) -> Server {
    let server = Server::start(dir, &dir.join("markgate.toml"));
    assert!(
        wait_for_port(http, Duration::from_secs(20)),
        "{}",
        server.log_text()
    );
    server
}

/// A request through the gateway as a proxy: (status, JSON body or null).
fn request(http: u16, url: &str, marking: &str) -> (u16, serde_json::Value) {
    let (status, body) = curl(&[
        "-x",
        &format!("http://127.0.0.1:{http}"),
        "-H",
        &format!("X-Protective-Marking: {marking}"),
        "--data-binary",
        "referral",
        url,
    ]);
    (status, serde_json::from_str(&body).unwrap_or_default())
}

#[test]
fn http_encryption_works_from_the_first_request_of_every_first_start() {
    for start in 1..=5 {
        let http = free_port();
        let dir = fresh("", free_port(), http);
        assert!(!dir.path().join("certs").exists());
        let server = serve(dir.path(), http);
        // OFFICIAL-SENSITIVE to Birmingham must be sealed first: 501 without a signing key;
        // sealed, it is handed on and only the closed upstream stops it (502).
        let (status, json) = request(
            http,
            "http://api.birmingham.gov.uk/referrals",
            "OFFICIAL-SENSITIVE",
        );
        assert_eq!(status, 502, "start {start}: {json}\n{}", server.log_text());
        assert!(dir.path().join("certs/signing-key.pem").exists());
    }
}

fn status(admin: u16) -> serde_json::Value {
    admin_status(admin, TOKEN)
}

#[test]
fn a_reload_the_routes_do_not_fit_is_refused_and_the_old_snapshot_stays() {
    let (admin, http) = (free_port(), free_port());
    let route = "[[http.route]]\nhost = \"api.test-council.example\"\nupstream = \"https://127.0.0.1:9\"\npartner = \"test-council\"\n";
    let dir = fresh(route, admin, http);
    let partners = dir.path().join("policy/partners.toml");
    let original = std::fs::read_to_string(&partners).unwrap();
    let with_council = format!(
        "{original}\n[[partner]]\nid = \"test-council\"\nname = \"Test Council\"\ndomains = [\"test-council.example\"]\nage_recipients = []\n"
    );
    std::fs::write(&partners, &with_council).unwrap();
    let server = serve(dir.path(), http);
    assert!(wait_for_port(admin, Duration::from_secs(20)));
    let before = status(admin)["policy_version"].clone();

    // A valid policy without the partner the route names: the routes do not fit it.
    std::fs::write(&partners, &original).unwrap();
    server.signal("HUP");
    let st = wait_for(Duration::from_secs(10), || {
        let st = status(admin);
        (st["last_reload"]["ok"] == false).then_some(st)
    })
    .unwrap_or_else(|| panic!("reload not refused:\n{}", server.log_text()));
    assert_eq!(st["policy_version"], before, "the old snapshot must stay");
    let message = st["last_reload"]["message"].as_str().unwrap();
    assert!(
        message.contains("http.route") && message.contains("test-council"),
        "{message}"
    );

    // Requests are still decided with the old snapshot: the route's partner is known.
    let (status_code, json) = request(http, "http://api.test-council.example/x", "OFFICIAL");
    assert_eq!(status_code, 502, "{json}");
    let records = audit_records(&dir.path().join("records.sqlite"));
    let last = records
        .iter()
        .rfind(|r| r["recipient"] == "api.test-council.example")
        .unwrap();
    assert_eq!(last["partner_id"], "test-council", "{last}");

    // Restored, the policy reloads again.
    std::fs::write(&partners, &with_council).unwrap();
    server.signal("HUP");
    let reloaded = wait_for(Duration::from_secs(10), || {
        (status(admin)["last_reload"]["ok"] == true).then_some(())
    });
    assert!(reloaded.is_some(), "{}", server.log_text());
}
