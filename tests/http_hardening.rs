//! The HTTP side as an attacker meets it (issue 13): the proxy is no way into the gateway
//! host (loopback in every spelling, names that resolve to it, the gateway's own listeners),
//! only http and https are proxied, and protocol errors are JSON refusals with the right
//! status. The real `markgate serve` binary, curl and raw sockets, all on 127.0.0.1.

mod common;

use common::curl;
use common::http::{json_reply, raw, raw_responses, HttpSetup, Upstream};

/// What curl got through the proxy: status and JSON body.
fn via_proxy(setup: &HttpSetup, url: &str) -> (u16, serde_json::Value) {
    let (status, body) = curl(&[
        "-x",
        &setup.proxy(),
        "-H",
        "X-Protective-Marking: NOT PROTECTIVELY MARKED",
        url,
    ]);
    let json = serde_json::from_str(&body).unwrap_or_else(|_| serde_json::json!({ "body": body }));
    (status, json)
}

#[test]
fn the_proxy_does_not_reach_the_gateway_host() {
    let upstream = Upstream::start();
    let setup = HttpSetup::new("");
    let _server = setup.serve();
    let u = upstream.port();

    // The issue's reproduction: the admin metrics through the proxy.
    let (status, j) = via_proxy(&setup, &format!("http://127.0.0.1:{}/metrics", setup.admin));
    assert_eq!(status, 403, "{j}");
    assert_eq!(j["error"], "address-refused", "{j}");
    assert_eq!(j["rule"], "address-gateway-listener", "{j}");

    // Loopback, however it is written, and names that resolve to it.
    for (url, rule) in [
        (format!("http://127.0.0.1:{u}/"), "address-loopback"),
        (format!("http://127.0.0.1.:{u}/"), "address-loopback"),
        (format!("http://2130706433:{u}/"), "address-loopback"),
        (format!("http://0x7f000001:{u}/"), "address-loopback"),
        (format!("http://0x7f.1:{u}/"), "address-loopback"),
        (format!("http://0177.0.0.1:{u}/"), "address-loopback"),
        (format!("http://127.1:{u}/"), "address-loopback"),
        (format!("http://127.0.0.2:{u}/"), "address-loopback"),
        (format!("http://[::1]:{u}/"), "address-loopback"),
        (
            format!("http://[::ffff:127.0.0.1]:{u}/"),
            "address-loopback",
        ),
        (format!("http://[::ffff:7f00:1]:{u}/"), "address-loopback"),
        (format!("http://0.0.0.0:{u}/"), "address-unspecified"),
        (format!("http://0:{u}/"), "address-unspecified"),
        (format!("http://[::]:{u}/"), "address-unspecified"),
        (format!("http://localhost:{u}/"), "address-loopback"),
        (format!("http://LocalHost.:{u}/"), "address-loopback"),
        (
            format!("http://127.0.0.1:{}/", setup.smtp),
            "address-gateway-listener",
        ),
        (
            format!("http://localhost:{}/", setup.http),
            "address-gateway-listener",
        ),
    ] {
        let (status, j) = via_proxy(&setup, &url);
        assert_eq!(status, 403, "{url}: {j}");
        assert_eq!(j["error"], "address-refused", "{url}: {j}");
        assert_eq!(j["rule"], rule, "{url}: {j}");
        assert!(
            j["reason"]
                .as_str()
                .unwrap()
                .contains("nothing was forwarded"),
            "{j}"
        );
    }
    // https:// in absolute form (curl would tunnel it with CONNECT).
    let reply = raw(
        setup.http,
        format!("GET https://localhost:{u}/ HTTP/1.1\r\nHost: localhost\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\n\r\n").as_bytes(),
    );
    let (status, j) = json_reply(&reply);
    assert_eq!(
        (status, &j["rule"]),
        (403, &serde_json::json!("address-loopback")),
        "{reply}"
    );
    assert_eq!(upstream.hits(), 0, "nothing reached the host's services");

    // CONNECT is held to the same rules, even to a host listed for tunnels.
    for target in [format!("127.0.0.1:{u}"), format!("localhost:{u}")] {
        let reply = raw(
            setup.http,
            format!(
                "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\n\r\n"
            )
            .as_bytes(),
        );
        let (status, j) = json_reply(&reply);
        assert_eq!(status, 403, "{target}: {reply}");
        assert!(
            j["rule"] == "address-loopback" || j["rule"] == "connect-not-inspectable",
            "{target}: {j}"
        );
    }
}

#[test]
fn named_addresses_are_reached_and_nothing_else() {
    let upstream = Upstream::start();
    let u = upstream.port();
    let setup = HttpSetup::new(&format!(
        r#"allow_connect_npm = ["127.0.0.1", "localhost"]

[[http.route]]
host = "api.partner.example"
upstream = "http://127.0.0.1:{u}"
destination = "internet"

[[http.address_range]]
cidr = "127.0.0.1/32"
destination = "internet"
"#
    ));
    let _server = setup.serve();

    // A route names its upstream.
    let (status, body) = curl(&[
        "-H",
        "Host: api.partner.example",
        "-H",
        "X-Protective-Marking: NOT PROTECTIVELY MARKED",
        &format!("{}/via-route", setup.proxy()),
    ]);
    assert_eq!((status, body.as_str()), (200, "upstream got 0 bytes"));
    // The address range names 127.0.0.1 (in any spelling, and through a name)...
    for url in [
        format!("http://127.0.0.1:{u}/"),
        format!("http://2130706433:{u}/"),
        format!("http://[::ffff:127.0.0.1]:{u}/"),
        format!("http://localhost:{u}/"),
    ] {
        let (status, j) = via_proxy(&setup, &url);
        assert_eq!(status, 200, "{url}: {j}");
    }
    assert_eq!(upstream.hits(), 5);
    // ...and nothing else of loopback, nor the gateway's own listeners.
    let (status, j) = via_proxy(&setup, &format!("http://127.0.0.2:{u}/"));
    assert_eq!(
        (status, &j["rule"]),
        (403, &serde_json::json!("address-loopback")),
        "{j}"
    );
    let (status, j) = via_proxy(&setup, &format!("http://127.0.0.1:{}/metrics", setup.admin));
    assert_eq!(status, 403, "{j}");
    assert_eq!(j["rule"], "address-gateway-listener", "{j}");
    // CONNECT to a named address works; to the admin listener it does not.
    let reply = raw(
        setup.http,
        format!(
            "CONNECT 127.0.0.1:{} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\n\r\n",
            setup.admin
        )
        .as_bytes(),
    );
    let (status, j) = json_reply(&reply);
    assert_eq!(
        (status, &j["rule"]),
        (403, &serde_json::json!("address-gateway-listener")),
        "{reply}"
    );
    assert_eq!(upstream.hits(), 5);
}

#[test]
fn only_http_and_https_targets_are_proxied() {
    let setup = HttpSetup::new("");
    let _server = setup.serve();
    for target in [
        "ftp://files.example/x",
        "gopher://old.example/",
        "file:///etc/passwd",
        "ws://chat.example/",
    ] {
        let reply = raw(
            setup.http,
            format!("GET {target} HTTP/1.1\r\nHost: files.example\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        let (status, j) = json_reply(&reply);
        assert_eq!(status, 400, "{target}: {reply}");
        assert_eq!(j["error"], "bad-request", "{j}");
        // file:/// has no authority: hyper cannot parse it as a proxy request at all.
        if !target.starts_with("file:") {
            assert!(
                j["reason"]
                    .as_str()
                    .unwrap()
                    .contains("only http:// and https://"),
                "{j}"
            );
        }
    }
}

#[test]
fn host_errors_are_400_json() {
    let setup = HttpSetup::new("");
    let _server = setup.serve();
    for (what, request) in [
        (
            "duplicate Host",
            "GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        ),
        (
            "duplicate Host, origin-form",
            "GET / HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n",
        ),
        (
            "Host with userinfo",
            "GET / HTTP/1.1\r\nHost: user@a.example\r\n\r\n",
        ),
        (
            "absolute-form with userinfo",
            "GET http://user:pw@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
        ),
        (
            "HTTP/1.1 without Host",
            "GET http://a.example/ HTTP/1.1\r\n\r\n",
        ),
        ("invalid host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
        (
            "name ending in a number",
            "GET http://example.123/ HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
    ] {
        let reply = raw(setup.http, request.as_bytes());
        let (status, j) = json_reply(&reply);
        assert_eq!(status, 400, "{what}: {reply}");
        assert_eq!(j["error"], "bad-request", "{what}: {j}");
    }
}

/// Head errors hyper answers itself (malformed request line or header, bad Content-Length,
/// a head over `http.max_header_bytes`) carry the JSON body too, also after a response on
/// a kept-alive connection; a valid response is never altered.
#[test]
fn framing_errors_are_json() {
    let upstream = Upstream::start();
    let setup = HttpSetup::new(&format!(
        "max_header_bytes = 8192\n[[http.route]]\nhost = \"api.partner.example\"\nupstream = \"http://127.0.0.1:{}\"\ndestination = \"internet\"\n",
        upstream.port()
    ));
    let _server = setup.serve();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: api.partner.example\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let reply = raw(setup.http, big.as_bytes());
    let (status, j) = json_reply(&reply);
    assert_eq!(status, 431, "{reply}");
    assert_eq!(j["error"], "header-too-large");
    assert!(j["reason"].as_str().unwrap().contains("8192"), "{j}");

    for (what, request) in [
        ("bad Content-Length", "POST / HTTP/1.1\r\nHost: api.partner.example\r\nContent-Length: abc\r\n\r\n"),
        ("two Content-Lengths", "POST / HTTP/1.1\r\nHost: api.partner.example\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        ("bad header name", "GET / HTTP/1.1\r\nHost: api.partner.example\r\nBad Header: x\r\n\r\n"),
        ("bad method", "G(T / HTTP/1.1\r\nHost: api.partner.example\r\n\r\n"),
        ("bad version", "GET / HTTP/9.9\r\nHost: api.partner.example\r\n\r\n"),
        ("bare LF in header", "GET / HTTP/1.1\r\nHost: api.partner.example\r\nX: a\rb\r\n\r\n"),
    ] {
        let reply = raw(setup.http, request.as_bytes());
        let (status, j) = json_reply(&reply);
        assert_eq!(status, 400, "{what}: {reply}");
        assert_eq!(j["error"], "bad-request", "{what}: {j}");
    }

    // Keep-alive: a good request answered unchanged, then the malformed one as JSON.
    let reply = raw_responses(
        setup.http,
        b"GET /one HTTP/1.1\r\nHost: api.partner.example\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\n\r\nGET / HTTP/1.1\r\nHost: api.partner.example\r\nContent-Length: x\r\n\r\n",
        2,
    );
    let (first, second) = reply.split_at(reply.find("upstream got 0 bytes").expect(&reply) + 20);
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    let (status, j) = json_reply(second);
    assert_eq!(
        (status, &j["error"]),
        (400, &serde_json::json!("bad-request")),
        "{reply}"
    );
}

/// A client's chunked body that breaks part-way is the client's fault (400), not the
/// upstream's (502), on the streaming path (binary body) and the peek path (text body).
#[test]
fn a_broken_chunked_body_is_400() {
    let upstream = Upstream::start();
    let setup = HttpSetup::new(&format!(
        "[[http.route]]\nhost = \"api.partner.example\"\nupstream = \"http://127.0.0.1:{}\"\ndestination = \"internet\"\n",
        upstream.port()
    ));
    let _server = setup.serve();
    for content_type in ["application/octet-stream", "text/plain"] {
        let request = format!(
            "POST /upload HTTP/1.1\r\nHost: api.partner.example\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nbroken\r\n0\r\n\r\n"
        );
        let reply = raw(setup.http, request.as_bytes());
        let (status, j) = json_reply(&reply);
        assert_eq!(status, 400, "{content_type}: {reply}");
        assert_eq!(j["error"], "client-body", "{content_type}: {j}");
    }
}
