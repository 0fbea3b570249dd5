//! The `http_head` fuzz target's way in (fuzz/fuzz_targets/http_head.rs): request head bytes
//! go through what the listener does (hyper's HTTP/1 parser over an in-memory connection,
//! with the head-error rewriting of `head_errors`) and then the proxy's own target, marking
//! and decision code for each request parsed. Nothing is recorded or forwarded, so the
//! fuzzer needs no network and no upstream.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Config;
use crate::policy::Policy;
use crate::service::gateway::Gateway;
use crate::service::snapshot::Snapshot;

use super::body::{empty, Body};
use super::head_errors::{HeadErrors, Replies, RequestKind};
use super::request;
use super::view::Views;
use super::HttpGateway;

/// What the proxy decided on one parsed request head.
#[derive(Debug, Clone)]
pub struct HeadOutcome {
    /// The host the request is for (normalised).
    pub host: String,
    /// The marking class the engine settled on.
    pub class: String,
    /// The destination class of the host.
    pub destination: String,
    /// Whether the policy allowed it (it would then be forwarded).
    pub allowed: bool,
}

/// An HTTP gateway on the shipped policy, for running heads through.
pub struct HeadFuzzer {
    runtime: tokio::runtime::Runtime,
    http: Arc<HttpGateway>,
    replies: Arc<Replies>,
    _records: tempfile::TempDir,
}

impl HeadFuzzer {
    /// A gateway on the policy in `policy_dir`, recording nowhere that matters (a temporary
    /// store that is never written: heads are only decided).
    pub fn new(policy_dir: &std::path::Path) -> anyhow::Result<HeadFuzzer> {
        let records = tempfile::tempdir()?;
        let mut config = Config::default();
        config.policy.dir = policy_dir.to_path_buf();
        config.records.path = records.path().join("records.sqlite");
        let policy = Policy::load(policy_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
        let recorder = crate::record::Recorder::open(&config.records)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let replies = Arc::new(Replies::new(config.http.max_header_bytes));
        // No signing key: heads are decided, nothing is sealed.
        let snapshot = Snapshot::build(&config, policy, None)?;
        let gateway = Arc::new(Gateway::new(config, snapshot, recorder));
        let http = runtime.block_on(async {
            HttpGateway::new(gateway, Arc::new(Views::default())).map(Arc::new)
        })?;
        Ok(HeadFuzzer {
            runtime,
            http,
            replies,
            _records: records,
        })
    }

    /// Send `bytes` as a client would; the outcome (or refusal code) of every request hyper
    /// parsed from them, and the bytes the client got back.
    pub fn run(&self, bytes: &[u8]) -> (Vec<Result<HeadOutcome, &'static str>>, Vec<u8>) {
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let http = self.http.clone();
        let replies = self.replies.clone();
        let seen = outcomes.clone();
        let reply = self.runtime.block_on(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let (server, requests) = HeadErrors::new(server, replies);
            let service = service_fn(move |request: Request<Incoming>| {
                requests.push(match *request.method() {
                    hyper::Method::HEAD => RequestKind::Head,
                    hyper::Method::CONNECT => RequestKind::Connect,
                    _ => RequestKind::Other,
                });
                let (parts, _body) = request.into_parts();
                let outcome = http.head_outcome(&parts);
                seen.lock().unwrap_or_else(|p| p.into_inner()).push(outcome);
                async { Ok::<_, Infallible>(Response::new(empty()) as Response<Body>) }
            });
            let limits = &self.http.gateway.config.http;
            let connection = hyper::server::conn::http1::Builder::new()
                .max_buf_size(limits.max_header_bytes)
                .serve_connection(TokioIo::new(server), service);
            let (mut read, mut write) = tokio::io::split(client);
            let send = async {
                let _ = write.write_all(bytes).await;
                let _ = write.shutdown().await;
            };
            let receive = async {
                let mut reply = Vec::new();
                let _ = read.read_to_end(&mut reply).await;
                reply
            };
            let (_, _, reply) = tokio::join!(connection, send, receive);
            reply
        });
        let outcomes = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|p| p.into_inner()));
        (outcomes, reply)
    }
}

impl HttpGateway {
    /// The head phase of `pass`: target, marking from the headers, decision.
    fn head_outcome(&self, parts: &Parts) -> Result<HeadOutcome, &'static str> {
        let view = self.views.get(self.gateway.snapshot());
        let target = request::target(parts, &self.settings).map_err(|e| e.code())?;
        let marking = request::read_marking(&parts.headers, None, &view.policy);
        let today = chrono::Utc::now().date_naive();
        let client = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let decision = self.decide(parts, &target, marking, client, today, &view);
        let destination = decision
            .recipients
            .first()
            .map(|r| r.destination.clone())
            .unwrap_or_default();
        Ok(HeadOutcome {
            host: target.host,
            class: decision.marking.class.clone(),
            destination,
            allowed: decision.is_allowed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz corpus seeds run through the harness: what fuzzing starts from holds.
    #[test]
    fn secret_heads_are_never_allowed_to_the_internet() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let fuzzer = HeadFuzzer::new(&root.join("policy")).unwrap();
        let (outcomes, reply) = fuzzer.run(
            b"GET http://api.example.com/ HTTP/1.1\r\nHost: api.example.com\r\nX-Protective-Marking: SECRET\r\n\r\nGET http://api.example.com/ HTTP/1.1\r\nHost: api.example.com\r\nX-Protective-Marking: NOT PROTECTIVELY MARKED\r\n\r\n",
        );
        assert_eq!(outcomes.len(), 2, "{}", String::from_utf8_lossy(&reply));
        let secret = outcomes[0].as_ref().unwrap();
        assert_eq!(
            (secret.class.as_str(), secret.destination.as_str()),
            ("SECRET", "internet")
        );
        assert!(!secret.allowed);
        assert!(outcomes[1].as_ref().unwrap().allowed);
        let (outcomes, reply) =
            fuzzer.run(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n");
        assert!(outcomes.is_empty());
        assert!(String::from_utf8_lossy(&reply).contains("bad-request"));
    }
}
