//! The HTTP gateway: the force's systems send partner requests through markgate, which
//! applies the same marking engine and handling policy as for mail.
//!
//! Layout, in the order a request passes (one file per phase):
//! - `listener`: accept HTTP/1.1 and HTTP/2, connection cap, graceful shutdown; hyper's own
//!   head-error responses get JSON bodies (`head_errors`);
//! - `request`: where the request goes (absolute-form proxy URI or a partner route named by
//!   Host), its marking (headers, banner lines of a bounded peek at a text body), and the
//!   destination class of its host;
//! - decision: `decision::decide`, pure, on the policy [`view`] of the current snapshot;
//! - record: the decision is recorded before anything is forwarded (503 if it cannot be);
//! - transform: security statement header, `encrypt` (bundle), hop-by-hop headers;
//! - `upstream`: pooled onward connection, HTTPS whenever `tls` is required, made through
//!   the address `guard` (never to the gateway host or private networks unless named);
//! - `error`: every refusal and failure becomes a JSON response in one place.
//!
//! CONNECT tunnels cannot be inspected and are refused (`connect`).

mod body;
mod connect;
mod decisions;
mod encrypt;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod guard;
mod head_errors;
mod listener;
mod readable;
mod request;
mod settings;
mod upstream;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderName, CONTENT_LENGTH, VIA};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response};
use tokio_util::sync::CancellationToken;

use crate::decision::{self, builtin, Decision, RecipientDecision};
use crate::facts::{self, Recipient};
use crate::policy::Action;
use crate::record::{Channel, Outcome, RecordMeta};
use crate::service::gateway::{Gateway, Listener};

use body::{Body, Forwarded, Peeked};
use error::{HttpError, PolicyRefusal};
use guard::AddressGuard;
use request::Target;
use settings::Settings;
use upstream::{Onward, Upstreams};
use view::{View, Views};

pub use error::HttpError as Error;
pub use guard::AddressRefused;

/// Run the HTTP listener until `shutdown` is cancelled: `http.workers` threads, each with
/// its own runtime and upstream pool, accepting on one shared listening socket (see
/// `listener`).
pub async fn run(gateway: Arc<Gateway>, shutdown: CancellationToken) -> anyhow::Result<()> {
    crate::certs::install_crypto_provider();
    let config = &gateway.config.http;
    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let socket = listener::bind(config.listen)?;
    let addr = socket.local_addr()?;
    let permits = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let views = Arc::new(Views::default());
    let mut done = Vec::new();
    for index in 0..workers {
        let http = HttpGateway::new(gateway.clone(), views.clone())?;
        let socket = socket.try_clone()?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let (permits, shutdown) = (permits.clone(), shutdown.clone());
        std::thread::Builder::new()
            .name(format!("markgate-http-{index}"))
            .spawn(move || {
                let result = worker(socket, http, permits, shutdown);
                let _ = done_tx.send(result);
            })?;
        done.push(done_rx);
    }
    drop(socket);
    tracing::info!(listen = %addr, workers, routes = config.routes.len(), "http gateway listening");
    gateway.listening_on(Listener::Http, addr);
    let mut result = Ok(());
    for rx in done {
        let r = rx
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("http worker panicked")));
        if result.is_ok() {
            result = r;
        }
    }
    result
}

/// One worker thread: a single-threaded runtime accepting on its copy of the listening socket.
fn worker(
    socket: std::net::TcpListener,
    http: HttpGateway,
    permits: Arc<tokio::sync::Semaphore>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // The requests of this thread wait for their records together.
        crate::record::Recorder::answer_on_this_thread();
        keep_a_timer_pending();
        let listener = tokio::net::TcpListener::from_std(socket)?;
        listener::serve(listener, Arc::new(http), permits, shutdown).await
    })
}

/// Keep one timer pending on this thread's runtime at all times. Each request arms timers
/// (hyper's head deadline, the upstream deadline); tokio wakes its own driver, a system call,
/// for every timer armed after it last slept with none pending, which is what a worker whose
/// requests all wait for their records does. With a short timer always pending, a request's
/// longer deadline never comes first and arming it costs nothing.
fn keep_a_timer_pending() {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    });
}

/// Everything a request needs, shared by all connections.
pub struct HttpGateway {
    gateway: Arc<Gateway>,
    settings: Settings,
    views: Arc<Views>,
    upstreams: Upstreams,
    statement_header: HeaderName,
}

/// What is known about a request besides its decision: what a record carries.
#[derive(Debug)]
pub struct RequestMeta<'a> {
    pub method: &'a Method,
    pub host: &'a str,
    pub path: &'a str,
    pub peer: SocketAddr,
    pub route: Option<&'a str>,
}

impl HttpGateway {
    pub fn new(gateway: Arc<Gateway>, views: Arc<Views>) -> anyhow::Result<HttpGateway> {
        let config = &gateway.config;
        let settings = Settings::new(&config.http)?;
        let guard = AddressGuard::new(&gateway, settings.ranges.iter().map(|r| r.net).collect());
        let upstreams = Upstreams::new(config, &settings, guard)?;
        let statement_header = HeaderName::from_bytes(config.http.statement_header.as_bytes())
            .context("http.statement_header")?;
        Ok(HttpGateway {
            settings,
            upstreams,
            statement_header,
            views,
            gateway,
        })
    }

    /// Answer one request; failures become JSON error responses here and only here.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        match self.pass(request, peer).await {
            Ok(response) => response,
            Err(e) => {
                tracing::info!(%peer, status = e.status().as_u16(), error = e.code(), reason = %e, "http request refused");
                e.into_response()
            }
        }
    }

    /// The phases, top to bottom.
    async fn pass(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, HttpError> {
        let view = self.views.get(self.gateway.snapshot());
        let (mut parts, body) = request.into_parts();
        if parts
            .headers
            .get_all(VIA)
            .iter()
            .any(|v| v.as_bytes().windows(8).any(|w| w == b"markgate"))
        {
            return Err(HttpError::Loop);
        }
        let target = request::target(&parts, &self.settings)?;
        self.upstreams.refuse_literal(&target)?;
        if parts.method == Method::CONNECT {
            return self.connect(parts, body, &target, &view, peer).await;
        }

        // Request: marking from headers and a bounded peek at a text body.
        let max = self.gateway.config.http.max_body_bytes;
        if content_length(&parts).is_some_and(|n| n > max) {
            return Err(HttpError::TooLarge(max));
        }
        request::transfer_codings(&parts.headers)?;
        let deadline = std::time::Instant::now() + self.gateway.config.http.body_read_timeout;
        let peek = self.gateway.config.http.marking_peek_bytes;
        let mut peeked = if body.is_end_stream() {
            Peeked::unread(body, deadline)
        } else {
            body::peek(body, peek, max, deadline).await?
        };
        // An Office document is read whole: its label may be anywhere in the archive.
        let mut keep = peek;
        if peeked.rest.is_some() && readable::may_hold_document(&parts.headers, &peeked.head) {
            let limit = self.gateway.config.http.document_max_bytes.min(max);
            peeked = body::read_whole(peeked, limit).await?;
            keep = peeked.head.len();
        }
        // Decision (memoised when headers carry every fact).
        let today = chrono::Utc::now().date_naive();
        let readable = readable::read(&parts.headers, &peeked, keep, max);
        let decision = match (&readable, &peeked.trailers) {
            (None, None) => {
                let key = decisions::key(&parts.headers, &target.host, today, &view);
                decisions::get_or_decide(&view, key, || {
                    let marking = request::read_marking(&parts.headers, None, &view.policy);
                    self.decide(&parts, &target, marking, peer, today, &view)
                })
            }
            (readable, trailers) => {
                // trailers that arrived with the body are read like the head's fields
                let mut headers = parts.headers.clone();
                for (name, value) in trailers.iter().flatten() {
                    headers.append(name.clone(), value.clone());
                }
                let marking = request::read_marking(&headers, readable.as_ref(), &view.policy);
                Arc::new(self.decide(&parts, &target, marking, peer, today, &view))
            }
        };
        let meta = RequestMeta {
            method: &parts.method,
            host: &target.host,
            path: parts.uri.path(),
            peer,
            route: target.route.map(|i| self.settings.routes[i].host.as_str()),
        };
        let size = content_length(&parts).unwrap_or(peeked.head.len() as u64);
        let evidence = self.evidence(&meta, &peeked.head, size);
        let recipient = match permit(&decision) {
            Ok(r) => r,
            Err(refusal) => {
                let outcome = Outcome::without_hold(&decision);
                self.record(&view.policy, &decision, evidence, &outcome)
                    .await?;
                return Err(refusal);
            }
        };

        // Transform; a request the channel cannot handle as allowed is recorded refused.
        let client = decision_sender(peer);
        let seal = encrypt::SealRequest {
            policy: &view.policy,
            decision: &decision,
            recipient,
            sender: &client,
            today,
        };
        let (onward, body) = match self
            .transform(&mut parts, peeked, &target, &view, seal)
            .await
        {
            Ok(handled) => handled,
            Err(e) => {
                let rule = match &e {
                    HttpError::EncryptUnavailable(_) => builtin::ENCRYPT_UNAVAILABLE,
                    _ => builtin::HANDLING_FAILED,
                };
                let reason = e.to_string();
                self.record(
                    &view.policy,
                    &decision,
                    evidence,
                    &Outcome::Refused { rule, reason },
                )
                .await?;
                return Err(e);
            }
        };

        // Record, before anything leaves; then upstream.
        let records = self
            .record(
                &view.policy,
                &decision,
                evidence.clone(),
                &Outcome::AsDecided,
            )
            .await?;
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        if let Err(e) = self.review_urgent(&view.policy, &decision, &evidence, &records) {
            self.record_failure(&view.policy, &decision, evidence, &ids, &e)
                .await?;
            return Err(e);
        }
        tracing::debug!(%peer, host = %target.host, marking = %decision.marking.label, upstream = %onward.uri, "forwarding");
        let forwarded = self
            .upstreams
            .forward(onward, Request::from_parts(parts, body))
            .await;
        if let Err(e) = &forwarded {
            self.record_failure(&view.policy, &decision, evidence, &ids, e)
                .await?;
        }
        forwarded
    }

    /// The transform phase: onward URI and head, security statement, encryption (`seal`
    /// names the decision and recipient being handled).
    async fn transform(
        &self,
        parts: &mut Parts,
        peeked: Peeked,
        target: &Target,
        view: &View,
        seal: encrypt::SealRequest<'_>,
    ) -> Result<(Onward, Body), HttpError> {
        let actions = &seal.recipient.actions;
        let tls = actions.contains(&Action::Tls);
        let onward = Onward {
            uri: upstream::onward_uri(target, &self.settings, parts.uri.path_and_query(), tls)?,
            route: target.route,
        };
        upstream::prepare_head(parts, |name| {
            request::is_marking_header(name, &view.policy.markings)
        });
        parts.headers.remove(&self.statement_header);
        if actions.contains(&Action::Statement) {
            parts
                .headers
                .insert(self.statement_header.clone(), view.statement.clone());
        }
        if !actions.contains(&Action::Encrypt) {
            let max = self.gateway.config.http.max_body_bytes;
            let listed = view.policy.markings.marking_headers.clone();
            let is_marking = Box::new(move |name: &str| request::is_marking_name(name, &listed));
            return Ok((onward, Forwarded::body(peeked, max, is_marking)));
        }
        let max = self.gateway.config.http.encrypt_max_bytes;
        let sealed =
            encrypt::seal(seal, &mut parts.headers, peeked, view.signing_key(), max).await?;
        Ok((onward, body::full(sealed)))
    }

    /// Decide one request: pure (`decision::decide`) on the view's policy, for the host the
    /// client named, classified by the routes and address ranges of `[http]`.
    fn decide(
        &self,
        parts: &Parts,
        target: &Target,
        marking: crate::marking::Marking,
        peer: SocketAddr,
        today: chrono::NaiveDate,
        view: &View,
    ) -> Decision {
        let dest = request::classify(&target.host, &self.settings, &view.policy);
        let facts = facts::from_request(
            |name| parts.headers.get(name).map(|v| v.as_bytes()),
            &decision_sender(peer),
            Recipient::host(&target.host, dest),
            marking,
            today,
        );
        decision::decide(&facts, &view.policy)
    }

    async fn connect(
        &self,
        parts: Parts,
        body: Incoming,
        target: &Target,
        view: &View,
        peer: SocketAddr,
    ) -> Result<Response<Body>, HttpError> {
        let marking = request::read_marking(&parts.headers, None, &view.policy);
        let today = chrono::Utc::now().date_naive();
        let decision = self.decide(&parts, target, marking, peer, today, view);
        let meta = RequestMeta {
            method: &parts.method,
            host: &target.host,
            path: "",
            peer,
            route: None,
        };
        let evidence = self.evidence(&meta, b"", 0);
        let outcome = match connect::check(target, &self.settings, &decision) {
            Err(HttpError::ConnectRefused(refusal)) if decision.is_allowed() => Outcome::Refused {
                rule: builtin::CONNECT_NOT_INSPECTABLE,
                reason: refusal.reason.clone(),
            },
            _ => Outcome::without_hold(&decision),
        };
        let ids: Vec<String> = self
            .record(&view.policy, &decision, evidence.clone(), &outcome)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        connect::check(target, &self.settings, &decision)?;
        let tunnel = connect::tunnel(
            target,
            Request::from_parts(parts, body),
            self.upstreams.guard(),
        )
        .await;
        if let Err(e) = &tunnel {
            self.record_failure(&view.policy, &decision, evidence, &ids, e)
                .await?;
        }
        tunnel
    }
}

/// Who a request's decision names as sender: the client's address.
fn decision_sender(peer: SocketAddr) -> String {
    format!("http-client@[{}]", peer.ip())
}

fn content_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Blocked decisions stop here: nothing is forwarded.
fn permit(decision: &Decision) -> Result<&RecipientDecision, HttpError> {
    let recipient = decision
        .recipients
        .first()
        .expect("an HTTP decision has one recipient");
    if decision.is_allowed() {
        return Ok(recipient);
    }
    Err(HttpError::Blocked(PolicyRefusal {
        rule: recipient.rules.last().cloned().unwrap_or_default(),
        rules: recipient.rules.clone(),
        marking: decision.marking.label.clone(),
        destination: recipient.destination.clone(),
        reason: recipient.reason.clone(),
    }))
}

impl HttpGateway {
    /// What a record says about a request besides its decision: the client, `METHOD
    /// host/path`, and the content fingerprint: the SHA-256 of the body as far as it was read
    /// for marking (the whole body when it fits in `http.marking_peek_bytes`); the size is
    /// the declared Content-Length.
    fn evidence(&self, meta: &RequestMeta<'_>, content: &[u8], size: u64) -> RecordMeta {
        let mut record = RecordMeta::new(Channel::Http, &decision_sender(meta.peer), content);
        record.size = size;
        record.message_id = Some(format!("{} {}{}", meta.method, meta.host, meta.path));
        record
    }

    /// Record what became of the decision, before anything is forwarded or refused; a
    /// request whose decision cannot be recorded gets 503 and nothing is forwarded.
    async fn record(
        &self,
        policy: &crate::policy::Policy,
        decision: &Decision,
        evidence: RecordMeta,
        outcome: &Outcome,
    ) -> Result<Vec<crate::record::DecisionRecord>, HttpError> {
        self.gateway
            .record_decision(policy, decision, evidence, outcome)
            .await
            .map_err(|e| HttpError::Record(e.to_string()))
    }

    /// A request released at once on the urgent path (`X-Disclosure-Urgency: preserve-life`,
    /// records `ids`) joins the review list, as an urgent mail does; it is not forwarded
    /// unless it is on that list.
    fn review_urgent(
        &self,
        policy: &crate::policy::Policy,
        decision: &Decision,
        evidence: &RecordMeta,
        records: &[crate::record::DecisionRecord],
    ) -> Result<(), HttpError> {
        if !decision.recipients.iter().any(|r| r.urgent) {
            return Ok(());
        }
        let dir = crate::hold::dir_for_spool(&self.gateway.config.spool.dir);
        let id = records.first().map(|r| r.id.as_str()).unwrap_or_default();
        let review = crate::hold::review_of(
            &crate::hold::Released {
                id,
                sender: &evidence.sender,
                subject: None,
                message_id: evidence.message_id.clone(),
                sha256: evidence.sha256.clone(),
            },
            decision,
            records,
            &policy.approvals,
        );
        crate::hold::HoldStore::open(&dir)
            .and_then(|store| store.add_review(&review))
            .map_err(|e| {
                HttpError::Record(format!(
                    "the urgent release could not be put on the review list: {e}"
                ))
            })
    }

    /// The upstream of an allowed request (records `ids`) failed: record that nothing was
    /// disclosed after all.
    async fn record_failure(
        &self,
        policy: &crate::policy::Policy,
        decision: &Decision,
        evidence: RecordMeta,
        ids: &[String],
        error: &HttpError,
    ) -> Result<(), HttpError> {
        let outcome = Outcome::Failed {
            rule: builtin::UPSTREAM_FAILED,
            reason: format!(
                "allowed (record {}) and handed on, then failed: {error}",
                ids.join(", ")
            ),
        };
        self.record(policy, decision, evidence, &outcome).await?;
        Ok(())
    }
}
