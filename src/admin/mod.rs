//! Admin listener (`admin.listen`, default 127.0.0.1:9090): the admin page behind a bearer
//! token, `/api/status` (JSON, same token), unauthenticated `/metrics` (Prometheus),
//! `/healthz` and `/readyz` for orchestration, and the approvers' pages: disclosures held
//! for approval, and urgent releases to review.
//!
//! Two kinds of people use it. The gateway's administrators read it with the shared token: a
//! browser signs in once with `?token=`, the token is exchanged for a session (a random id in
//! an HttpOnly, SameSite=Strict cookie that expires) and the browser is sent on without it.
//! Approvers sign in as themselves, named by the force's identity system ([`identity`]): a
//! client certificate from the force's CA (`admin.client_ca`, the listener then speaks
//! HTTPS) or the identity header of the force's sign-in proxy (`admin.identity_header`, from
//! `admin.trusted_proxies` only). Only such a person, listed in `approvers.toml`, may approve,
//! reject or review; the token never can. Every form carries its session's CSRF token.

pub mod holds;
pub mod identity;
pub mod metrics;
pub mod page;
pub mod session;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::service::gateway::{Gateway, Listener};
use identity::{IdentityError, IdentitySources};
use session::{constant_time_eq, Holder, Session, Sessions};

/// Largest form body read (a reason and the CSRF token).
const MAX_FORM: usize = 16 * 1024;
/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

struct Admin {
    gateway: Arc<Gateway>,
    token: String,
    metrics: Option<PrometheusHandle>,
    sessions: Sessions,
    sources: IdentitySources,
}

/// Who a request is from, once checked.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// The shared admin token (bearer or its session): reads, never approves.
    Token,
    /// An approver of `approvers.toml`, named by the force's identity system.
    Approver(crate::policy::Approver),
}

/// A request that may see the pages: who it is from, and the session its forms belong to.
pub struct Visit {
    pub viewer: Viewer,
    /// None for a bearer-token request (scripts: no forms).
    pub session: Option<Session>,
    /// A session opened by this request, to be set as a cookie on the response.
    new_session: Option<Session>,
}

/// The admin token: configured, or generated and written to `admin.token_file`.
pub fn admin_token(gateway: &Gateway) -> anyhow::Result<String> {
    if let Some(t) = &gateway.config.admin.token {
        return Ok(t.clone());
    }
    let path = &gateway.config.admin.token_file;
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_string();
        if existing.len() >= 16 {
            return Ok(existing);
        }
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, format!("{token}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    tracing::info!(token_file = %path.display(), "admin token generated");
    Ok(token)
}

/// Serve the admin listener until `shutdown`.
pub async fn run(
    gateway: Arc<Gateway>,
    metrics: Option<PrometheusHandle>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if !gateway.config.admin.enabled {
        shutdown.cancelled().await;
        return Ok(());
    }
    let token = admin_token(&gateway)?;
    metrics::register(&gateway.policy());
    let config = &gateway.config;
    let tls = match &config.admin.client_ca {
        Some(ca) => Some(tokio_rustls::TlsAcceptor::from(
            crate::certs::server_config_optional_client(
                &config.tls.cert_path(),
                &config.tls.key_path(),
                ca,
            )
            .with_context(|| format!("admin.client_ca {}", ca.display()))?,
        )),
        None => None,
    };
    let listen = config.admin.listen.clone();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("admin: cannot listen on {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, https = tls.is_some(), "admin page listening");
    gateway.listening_on(Listener::Admin, listener.local_addr()?);
    let admin = Arc::new(Admin {
        sources: IdentitySources::from_config(&gateway.config.admin),
        gateway,
        token,
        metrics,
        sessions: Sessions::default(),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let admin = admin.clone();
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve_connection(admin, stream, peer, Ok(None), watcher).await,
                        Some(acceptor) => {
                            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                            let Ok(Ok(stream)) = handshake else {
                                tracing::debug!(%peer, "admin: TLS handshake failed");
                                return;
                            };
                            let certificate = match stream.get_ref().1.peer_certificates() {
                                Some([leaf, ..]) => identity::certificate_email(leaf),
                                _ => Ok(None),
                            };
                            serve_connection(admin, stream, peer, certificate, watcher).await
                        }
                    }
                });
            }
        }
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

/// Serve HTTP on one accepted connection; `certificate` is the address its verified client
/// certificate names (or why it cannot be used).
async fn serve_connection<S>(
    admin: Arc<Admin>,
    stream: S,
    peer: SocketAddr,
    certificate: Result<Option<String>, IdentityError>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let certificate = Arc::new(certificate);
    let service = hyper::service::service_fn(move |req| {
        let admin = admin.clone();
        let certificate = certificate.clone();
        async move { Ok::<_, Infallible>(handle(&admin, req, peer, &certificate).await) }
    });
    let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .into_owned();
    let _ = watcher.watch(conn).await;
}

/// The response parts every admin answer shares: no caching, no sniffing, and a content
/// security policy that lets nothing load or run (no scripts, no remote images, no frames,
/// forms only back to this listener).
fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

fn json_error(status: StatusCode, error: &str, reason: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": error, "reason": reason }).to_string();
    respond(status, "application/json", body)
}

fn html(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "text/html; charset=utf-8", body)
}

async fn handle(
    admin: &Admin,
    req: Request<Incoming>,
    peer: SocketAddr,
    certificate: &Result<Option<String>, IdentityError>,
) -> Response<Full<Bytes>> {
    let read = req.method() == Method::GET || req.method() == Method::HEAD;
    if read {
        if let Some(open) = unauthenticated(admin, req.uri().path()) {
            return open;
        }
    }
    let visit = match visit(admin, &req, peer, certificate) {
        Ok(v) => v,
        Err(refusal) => return *refusal,
    };
    let new_session = visit.new_session.clone();
    let path = req.uri().path().to_string();
    let mut response = if read {
        get(admin, &visit, &path)
    } else if req.method() == Method::POST {
        post(admin, &visit, req, &path).await
    } else {
        json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
            "the admin listener takes GET, and POST from its own forms",
        )
    };
    if let Some(session) = new_session {
        if let Ok(v) = session::cookie(&session).parse() {
            response.headers_mut().append("set-cookie", v);
        }
    }
    response
}

/// `/healthz`, `/readyz` and `/metrics`: for orchestration, no sign-in.
fn unauthenticated(admin: &Admin, path: &str) -> Option<Response<Full<Bytes>>> {
    Some(match path {
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => match admin.gateway.readiness() {
            problems if problems.is_empty() => respond(StatusCode::OK, "text/plain", "ready\n"),
            problems => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready:\n{}\n", problems.join("\n")),
            ),
        },
        "/metrics" => match &admin.metrics {
            Some(handle) => respond(StatusCode::OK, "text/plain; version=0.0.4", handle.render()),
            None => json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "metrics unavailable",
                "no metrics recorder is installed",
            ),
        },
        _ => return None,
    })
}

/// Who the request is from, or the response that refuses it.
fn visit(
    admin: &Admin,
    req: &Request<Incoming>,
    peer: SocketAddr,
    certificate: &Result<Option<String>, IdentityError>,
) -> Result<Visit, Box<Response<Full<Bytes>>>> {
    let refused = |e: &IdentityError| {
        tracing::warn!(%peer, reason = %e, "admin: sign-in refused");
        Box::new(json_error(
            StatusCode::FORBIDDEN,
            "sign-in refused",
            &e.to_string(),
        ))
    };
    let certificate = certificate.as_ref().map_err(refused)?;
    let person = admin
        .sources
        .identify(req.headers(), peer.ip(), certificate.as_deref())
        .map_err(|e| refused(&e))?;
    let cookies = session::cookie_ids(req.headers());
    let session_of = |holder: &Holder| {
        cookies
            .iter()
            .filter_map(|id| admin.sessions.find(id))
            .find(|s| &s.holder == holder)
    };
    if let Some(email) = person {
        let policy = admin.gateway.policy();
        let Some(approver) = policy.approvals.approver(&email).cloned() else {
            tracing::warn!(%peer, %email, "admin: signed-in person is not an approver");
            return Err(Box::new(json_error(
                StatusCode::FORBIDDEN,
                "not an approver",
                &format!(
                    "{email} is signed in by the force's identity system but is not an \
                     [[approver]] in {}/approvers.toml",
                    policy.dir.display()
                ),
            )));
        };
        let holder = Holder::Person(approver.email.clone());
        return Ok(match session_of(&holder) {
            Some(s) => Visit {
                viewer: Viewer::Approver(approver),
                session: Some(s),
                new_session: None,
            },
            None => {
                let s = admin.sessions.open(holder);
                Visit {
                    viewer: Viewer::Approver(approver),
                    session: Some(s.clone()),
                    new_session: Some(s),
                }
            }
        });
    }
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|t| constant_time_eq(t.trim(), &admin.token)) {
        return Ok(Visit {
            viewer: Viewer::Token,
            session: None,
            new_session: None,
        });
    }
    if let Some(s) = session_of(&Holder::Token) {
        return Ok(Visit {
            viewer: Viewer::Token,
            session: Some(s),
            new_session: None,
        });
    }
    let token_in_query = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("token="))
        .any(|t| constant_time_eq(t, &admin.token));
    if token_in_query && (req.method() == Method::GET || req.method() == Method::HEAD) {
        // Swap the token for a session and drop it from the address.
        let s = admin.sessions.open(Holder::Token);
        let mut r = respond(StatusCode::SEE_OTHER, "text/plain", "signed in\n");
        r.headers_mut().insert(
            "location",
            req.uri()
                .path()
                .parse()
                .expect("a path is a valid header value"),
        );
        if let Ok(v) = session::cookie(&s).parse() {
            r.headers_mut().insert("set-cookie", v);
        }
        return Err(Box::new(r));
    }
    let mut r = json_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send Authorization: Bearer <admin token> (see admin.token / admin.token_file), or \
         sign in as an approver through the force's identity system (admin.client_ca, \
         admin.identity_header)",
    );
    r.headers_mut().insert(
        "www-authenticate",
        "Bearer realm=\"markgate\"".parse().expect("valid header"),
    );
    Err(Box::new(r))
}

fn get(admin: &Admin, visit: &Visit, path: &str) -> Response<Full<Bytes>> {
    match path {
        "/" => html(StatusCode::OK, page::render(&admin.gateway, visit)),
        "/api/status" => respond(
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&page::status(&admin.gateway)).unwrap_or_default(),
        ),
        _ => match holds::get(&admin.gateway, visit, path) {
            Some((status, body)) => html(status, body),
            None => not_found(),
        },
    }
}

fn not_found() -> Response<Full<Bytes>> {
    json_error(
        StatusCode::NOT_FOUND,
        "not found",
        "try /, /holds, /reviews, /api/status, /metrics, /healthz or /readyz",
    )
}

/// A form post: only an approver signed in as themselves, in their own session, with that
/// session's CSRF token, from a page of this listener.
async fn post(
    admin: &Admin,
    visit: &Visit,
    req: Request<Incoming>,
    path: &str,
) -> Response<Full<Bytes>> {
    let Viewer::Approver(approver) = &visit.viewer else {
        return html(
            StatusCode::FORBIDDEN,
            holds::refusal_page(
                visit,
                "Only an approver can do this",
                "The admin token shows these pages but never approves, rejects or reviews. \
                 Sign in as yourself through the force's identity system (your client \
                 certificate, or the force's sign-in page).",
            ),
        );
    };
    if req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site != "same-origin" && site != "none")
    {
        return html(
            StatusCode::FORBIDDEN,
            holds::refusal_page(
                visit,
                "Refused: the form came from another site",
                "Approvals are only taken from this page's own forms.",
            ),
        );
    }
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(why) => return json_error(StatusCode::BAD_REQUEST, "bad form", why),
    };
    let csrf_ok = match (&visit.session, form.get("csrf")) {
        (Some(s), Some(sent)) => {
            s.holder == Holder::Person(approver.email.clone()) && constant_time_eq(&s.csrf, sent)
        }
        _ => false,
    };
    // A session opened by this very request has never shown a form: nothing can match it.
    if !csrf_ok || visit.new_session.is_some() {
        tracing::warn!(approver = %approver.email, "admin: form without its session's CSRF token");
        return html(
            StatusCode::FORBIDDEN,
            holds::refusal_page(
                visit,
                "Refused: this form is not from your session",
                "Open the page again and use its form (the form must carry the token of your \
                 own signed-in session).",
            ),
        );
    }
    match holds::post(&admin.gateway, visit, approver, path, &form).await {
        Some((status, body)) => html(status, body),
        None => not_found(),
    }
}

/// An `application/x-www-form-urlencoded` body, at most [`MAX_FORM`] bytes; a field given
/// twice is refused.
async fn read_form(
    req: Request<Incoming>,
) -> Result<std::collections::HashMap<String, String>, &'static str> {
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err("send the form as application/x-www-form-urlencoded");
    }
    let body = Limited::new(req.into_body(), MAX_FORM)
        .collect()
        .await
        .map_err(|_| "the form is too large or was cut off")?
        .to_bytes();
    let mut fields = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(&body) {
        if fields.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err("a form field is given twice");
        }
    }
    Ok(fields)
}
