//! The HTTP side as an attacker meets it (issue 13): the proxy is no way into the gateway
//! host (loopback in every spelling, names that resolve to it, the gateway's own listeners),
//! only http and https are proxied, and protocol errors are JSON refusals with the right
//! status. The real `markgate serve` binary, curl and raw sockets, all on 127.0.0.1.

mod common;

use common::curl;
use common::http::{json_reply, raw, raw_responses, HttpSetup, Upstream};

/// A gateway with `http` keys whose route `api.partner.example` leads to `upstream`, an
/// internet destination.
fn partner_route(upstream: &Upstream, http: &str) -> HttpSetup {
    HttpSetup::new(&format!(
        "{http}[[http.route]]\nhost = \"api.partner.example\"\nupstream = \"http://127.0.0.1:{}\"\ndestination = \"internet\"\n",
        upstream.port()
    ))
}

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
    let setup = partner_route(&upstream, "max_header_bytes = 8192\n");
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
    let setup = partner_route(&upstream, "");
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

/// A request marked NOT PROTECTIVELY MARKED in its head whose body says SECRET however the
/// body came, and bodies markgate cannot read: each is blocked and recorded, and nothing
/// reaches the upstream; plainly readable NPM bodies still go (the control).
#[test]
fn a_body_is_read_however_it_came_or_refused() {
    use std::io::Write as _;
    let upstream = Upstream::start();
    let setup = partner_route(&upstream, "");
    let _server = setup.serve();
    let gzip = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let zlib = |data: &[u8]| {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let post = |headers: &str, body: &[u8]| {
        let mut request = format!(
            "POST /upload HTTP/1.1\r\nHost: api.partner.example\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\nConnection: close\r\n{headers}"
        )
        .into_bytes();
        if !headers.contains("Transfer-Encoding") {
            request.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        raw(setup.http, &request)
    };
    let secret = b"SECRET\r\n\r\nthe operation plan\r\n\r\nSECRET\r\n".as_slice();
    let form = [
        b"--b0und\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nsee file\r\n--b0und\r\nContent-Disposition: form-data; name=\"file\"; filename=\"plan.txt\"\r\nContent-Type: text/plain\r\n\r\n".as_slice(),
        secret,
        b"\r\n--b0und--\r\n",
    ]
    .concat();
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(
            std::str::from_utf8(secret)
                .unwrap()
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let chunked_trailer = b"6\r\nhello\n\r\n0\r\nX-Protective-Marking: SECRET\r\n\r\n";
    let bomb = gzip(&vec![b'a'; 80 << 20]);
    let gzipped = gzip(secret);
    let cut = &gzipped[..gzipped.len() - 8];
    let before = upstream.hits();
    for (what, headers, body, rule) in [
        (
            "no Content-Type (curl -T)",
            "",
            secret.to_vec(),
            "secret-never",
        ),
        (
            "octet-stream holding text",
            "Content-Type: application/octet-stream\r\n",
            secret.to_vec(),
            "secret-never",
        ),
        (
            "gzip",
            "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n",
            gzipped.clone(),
            "secret-never",
        ),
        (
            "deflate",
            "Content-Type: text/plain\r\nContent-Encoding: deflate\r\n",
            zlib(secret),
            "secret-never",
        ),
        (
            "multipart form with a file",
            "Content-Type: multipart/form-data; boundary=b0und\r\n",
            form.clone(),
            "secret-never",
        ),
        (
            "UTF-16 text",
            "Content-Type: text/plain; charset=utf-16\r\n",
            utf16.clone(),
            "secret-never",
        ),
        ("UTF-16 with no type", "", utf16, "secret-never"),
        (
            "multipart under another boundary",
            "Content-Type: multipart/form-data; boundary=other\r\n",
            form.clone(),
            "marking-unreadable",
        ),
        (
            "multipart without boundary",
            "Content-Type: multipart/form-data\r\n",
            form.clone(),
            "marking-unreadable",
        ),
        (
            "a trailer",
            "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n",
            chunked_trailer.to_vec(),
            "secret-never",
        ),
        (
            "an unknown Content-Encoding",
            "Content-Type: text/plain\r\nContent-Encoding: br\r\n",
            b"\x1b\x03\x00".to_vec(),
            "marking-unreadable",
        ),
        (
            "gzip twice",
            "Content-Type: text/plain\r\nContent-Encoding: gzip, gzip\r\n",
            gzip(&gzipped),
            "marking-unreadable",
        ),
        (
            "truncated gzip",
            "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n",
            cut.to_vec(),
            "marking-unreadable",
        ),
        (
            "not gzip at all",
            "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n",
            secret.to_vec(),
            "marking-unreadable",
        ),
        (
            "a gzip bomb",
            "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n",
            bomb,
            "marking-unreadable",
        ),
    ] {
        let reply = post(headers, &body);
        let (status, j) = json_reply(&reply);
        assert_eq!(status, 403, "{what}: {reply}");
        assert_eq!(j["error"], "blocked", "{what}: {j}");
        assert_eq!(j["rule"], rule, "{what}: {j}");
    }
    // A transfer coding hyper does not undo would be forwarded still coded: 400.
    let reply = post(
        "Content-Type: text/plain\r\nTransfer-Encoding: gzip, chunked\r\n",
        &[
            format!("{:x}\r\n", gzipped.len()).as_bytes(),
            &gzipped,
            b"\r\n0\r\n\r\n",
        ]
        .concat(),
    );
    let (status, j) = json_reply(&reply);
    assert_eq!(
        (status, j["error"].as_str()),
        (400, Some("bad-request")),
        "{reply}"
    );
    assert_eq!(upstream.hits(), before, "nothing reached the upstream");

    // The records: one block per refusal, with the rule and what the decision saw.
    let records = common::audit_records(&setup.path().join("records.sqlite"));
    let blocks: Vec<_> = records.iter().filter(|r| r["verdict"] == "block").collect();
    assert_eq!(blocks.len(), 15, "{records:#?}");
    assert!(
        blocks
            .iter()
            .any(|r| r["rules"].to_string().contains("marking-unreadable")
                && r["reason"]
                    .as_str()
                    .unwrap()
                    .contains("\"content-encoding: br\": Content-Encoding br cannot be read")),
        "{blocks:#?}"
    );
    for place in ["banner:first:body", "banner:first:body:part2"] {
        assert!(
            blocks.iter().any(|r| r["class"] == "SECRET"
                && r["sources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["where"] == place)),
            "{place}: {blocks:#?}"
        );
    }

    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args(["audit", "verify", "--config"])
        .arg(setup.path().join("markgate.toml"))
        .current_dir(setup.path())
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");

    // Controls: readable NPM bodies go, compressed and binary ones included.
    let npm = b"NOT PROTECTIVELY MARKED\nlunch menu\n".as_slice();
    for (headers, body) in [
        (
            "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n",
            gzip(npm),
        ),
        ("", npm.to_vec()),
        (
            "Content-Type: application/octet-stream\r\n",
            b"\x89PNG\r\n\x1a\n\0\0SECRET\n".to_vec(),
        ),
    ] {
        let reply = post(headers, &body);
        assert!(reply.starts_with("HTTP/1.1 200"), "{headers}: {reply}");
    }
    assert_eq!(upstream.hits(), before + 3);
}

/// A marking header in the trailer of a body longer than the peek arrives after forwarding
/// began: the onward body is cut, so the upstream never receives a complete request.
#[test]
fn a_late_marking_trailer_cuts_the_onward_body() {
    let upstream = Upstream::start();
    let setup = partner_route(&upstream, "");
    let _server = setup.serve();
    let line = "lunch menu, nothing to see here\n".repeat(4096);
    let mut request = format!(
        "POST /upload HTTP/1.1\r\nHost: api.partner.example\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{line}\r\n",
        line.len()
    );
    request.push_str("0\r\nX-Protective-Marking: SECRET\r\n\r\n");
    let reply = raw(setup.http, request.as_bytes());
    let (status, j) = json_reply(&reply);
    assert_eq!(status, 400, "{reply}");
    assert!(j["reason"].as_str().unwrap().contains("trailer"), "{j}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(upstream.hits(), 0, "the upstream got a complete request");
}

/// Requests that share a connection are decided one by one: a SECRET request pipelined
/// after an NPM one, or smuggled behind it with both Content-Length and
/// Transfer-Encoding, is blocked; a SECRET body sent after `Expect: 100-continue` is read
/// before anything is forwarded.
#[test]
fn requests_sharing_a_connection_are_each_decided() {
    let upstream = Upstream::start();
    let setup = partner_route(&upstream, "");
    let _server = setup.serve();
    let npm = "Host: api.partner.example\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\n";
    let secret = "Host: api.partner.example\r\nX-Protective-Marking: SECRET\r\n";
    let blocked = |reply: &str| {
        let at = reply
            .find("HTTP/1.1 403")
            .unwrap_or_else(|| panic!("{reply}"));
        let (status, j) = json_reply(&reply[at..]);
        assert_eq!(
            (status, j["rule"].as_str()),
            (403, Some("secret-never")),
            "{reply}"
        );
    };

    let pipelined = format!("GET /a HTTP/1.1\r\n{npm}\r\nGET /b HTTP/1.1\r\n{secret}\r\n");
    let reply = raw_responses(setup.http, pipelined.as_bytes(), 2);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    blocked(&reply);
    assert_eq!(upstream.hits(), 1);

    let smuggled = format!(
        "POST /a HTTP/1.1\r\n{npm}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n{secret}\r\n"
    );
    let reply = raw_responses(setup.http, smuggled.as_bytes(), 2);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        !reply.contains("upstream got") || reply.matches("upstream got").count() == 1,
        "{reply}"
    );
    assert_eq!(upstream.hits(), 2, "{reply}");

    let expect = b"POST /e HTTP/1.1\r\nHost: api.partner.example\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\nContent-Length: 16\r\n\r\nSECRET\n\nplan\n\n\n\n";
    let reply = raw_responses(setup.http, expect, 2);
    blocked(&reply);
    assert_eq!(upstream.hits(), 2, "{reply}");
}
