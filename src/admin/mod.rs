//! Admin listener (`admin.listen`, default 127.0.0.1:9090): the admin page behind a bearer
//! token, `/api/status` (JSON, same token), and unauthenticated `/metrics` (Prometheus),
//! `/healthz` and `/readyz` for orchestration.
//!
//! A browser signs in once with `?token=`: the token is exchanged for a session (a random
//! id in an HttpOnly, SameSite=Strict cookie that expires) and the browser is sent on to the
//! same page without the token, so the token stays out of the address bar, the history and
//! the cookie jar.

pub mod metrics;
pub mod page;

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::service::gateway::{Gateway, Listener};

const COOKIE: &str = "markgate_session";
/// How long a browser session lasts after signing in with the token.
const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(8 * 3600);
/// Sessions kept at once; signing in beyond this drops the oldest.
const MAX_SESSIONS: usize = 256;

struct Admin {
    gateway: Arc<Gateway>,
    token: String,
    metrics: Option<PrometheusHandle>,
    /// Session id -> when it expires.
    sessions: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl Admin {
    /// A new session for a browser that gave the token.
    fn open_session(&self) -> String {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let now = std::time::Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, expires| *expires > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), now + SESSION_LIFETIME);
        id
    }

    fn session_is_live(&self, id: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .iter()
            .any(|(k, expires)| constant_time_eq(k, id) && *expires > std::time::Instant::now())
    }
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
    let listen = gateway.config.admin.listen.clone();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("admin: cannot listen on {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, "admin page listening");
    gateway.listening_on(Listener::Admin, listener.local_addr()?);
    let admin = Arc::new(Admin {
        gateway,
        token,
        metrics,
        sessions: Default::default(),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let admin = admin.clone();
                let service = hyper::service::service_fn(move |req| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(handle(&admin, req)) }
                });
                let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

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
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'",
        )
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

fn json_error(status: StatusCode, error: &str, reason: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": error, "reason": reason }).to_string();
    respond(status, "application/json", body)
}

fn handle(admin: &Admin, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
            "the admin listener is read-only",
        );
    }
    match req.uri().path() {
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
        "/" | "/api/status" => {
            let Some(how) = authorised(admin, &req) else {
                let mut r = json_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send Authorization: Bearer <admin token> (see admin.token / admin.token_file)",
                );
                r.headers_mut().insert(
                    "www-authenticate",
                    "Bearer realm=\"markgate\"".parse().expect("valid header"),
                );
                return r;
            };
            if how == SignIn::Token {
                // Swap the token for a session and drop it from the address.
                let cookie = format!(
                    "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                    admin.open_session(),
                    SESSION_LIFETIME.as_secs()
                );
                let mut r = respond(StatusCode::SEE_OTHER, "text/plain", "signed in\n");
                r.headers_mut().insert(
                    "location",
                    req.uri()
                        .path()
                        .parse()
                        .expect("a path is a valid header value"),
                );
                if let Ok(v) = cookie.parse() {
                    r.headers_mut().insert("set-cookie", v);
                }
                return r;
            }
            if req.uri().path() == "/" {
                respond(
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    page::render(&admin.gateway),
                )
            } else {
                respond(
                    StatusCode::OK,
                    "application/json",
                    serde_json::to_string_pretty(&page::status(&admin.gateway)).unwrap_or_default(),
                )
            }
        }
        _ => json_error(
            StatusCode::NOT_FOUND,
            "not found",
            "try /, /api/status, /metrics, /healthz or /readyz",
        ),
    }
}

/// How a request proved it may see the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignIn {
    /// `Authorization: Bearer TOKEN` (scripts, curl).
    Bearer,
    /// The session cookie of a browser that signed in.
    Session,
    /// `?token=` in the address: a browser signing in, to be sent on without it.
    Token,
}

/// None when the request is not authorised.
fn authorised(admin: &Admin, req: &Request<Incoming>) -> Option<SignIn> {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if header.is_some_and(|t| constant_time_eq(t.trim(), &admin.token)) {
        return Some(SignIn::Bearer);
    }
    let session = req
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| {
            kv.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
        .any(|id| admin.session_is_live(&id));
    if session {
        return Some(SignIn::Session);
    }
    let query = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("token="))
        .any(|t| constant_time_eq(t, &admin.token));
    query.then_some(SignIn::Token)
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
