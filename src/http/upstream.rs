//! Upstream phase: markgate originates the onward connection itself. Pooled keep-alive
//! clients (hyper-util legacy client over hyper-rustls, over the address guard's connector):
//! one for hosts the client named, one shared by every route without a client certificate,
//! and one per mutual-TLS route. Only the first is held to the private-address rules (a
//! route's upstream is named by the operator); none reaches the gateway's own listeners.
//! HTTPS is verified against `tls.ca` and the webpki roots; when the decision requires `tls`
//! the request goes over HTTPS whatever scheme the client asked for, and there is no
//! plaintext fallback.

use std::error::Error as _;
use std::time::Duration;

use anyhow::Context;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Request, Response, Uri, Version};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::Config;

use http_body_util::BodyExt;
use hyper::body::Body as _;

use super::body::{boxed, full, Body, BodyTooLarge, ClientBodyError, MarkingTrailer};
use super::error::HttpError;
use super::guard::{AddressGuard, ConnectError, GuardedConnector};
use super::request::Target;
use super::settings::Settings;
use crate::address::host_ip;

type HttpsClient = Client<HttpsConnector<GuardedConnector>, Body>;

/// The pooled clients.
pub struct Upstreams {
    /// Hosts the client named (absolute-form requests).
    named: HttpsClient,
    /// Routes without a client certificate.
    shared: HttpsClient,
    /// Per route index: its own client when it presents a client certificate.
    per_route: Vec<Option<HttpsClient>>,
    timeout: Duration,
    /// Responses up to this many bytes (known length) are read whole before answering.
    buffer_small: u64,
    guard: AddressGuard,
}

/// Where one request goes upstream.
pub struct Onward {
    pub uri: Uri,
    /// Index of the route whose client to use.
    pub route: Option<usize>,
}

impl Upstreams {
    pub fn new(
        config: &Config,
        settings: &Settings,
        guard: AddressGuard,
    ) -> anyhow::Result<Upstreams> {
        let http = &config.http;
        let build = |client_cert: Option<(&std::path::Path, &std::path::Path)>,
                     guard: AddressGuard| {
            let tls = crate::certs::client_config(config.tls.ca.as_deref(), client_cert)?;
            let connector = GuardedConnector { guard };
            let https = HttpsConnectorBuilder::new()
                .with_tls_config((*tls).clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(connector);
            Ok::<_, crate::certs::CertError>(
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(http.pool_idle_timeout)
                    .pool_max_idle_per_host(http.pool_max_idle_per_host)
                    .pool_timer(TokioTimer::new())
                    .timer(TokioTimer::new())
                    .build(https),
            )
        };
        let named = build(None, guard.clone()).context("upstream TLS configuration")?;
        let shared = build(None, guard.for_routes()).context("upstream TLS configuration")?;
        let mut per_route = Vec::new();
        for (route, raw) in settings.routes.iter().zip(&http.routes) {
            per_route.push(match (&raw.client_cert, &raw.client_key) {
                (Some(cert), Some(key)) if route.mutual_tls => Some(
                    build(Some((cert, key)), guard.for_routes()).with_context(|| {
                        format!("http.route {:?}: client certificate", raw.host)
                    })?,
                ),
                _ => None,
            });
        }
        Ok(Upstreams {
            named,
            shared,
            per_route,
            timeout: http.upstream_timeout,
            buffer_small: 16 * 1024,
            guard,
        })
    }

    /// The checks for connections to hosts the client named (CONNECT tunnels too).
    pub fn guard(&self) -> &AddressGuard {
        &self.guard
    }

    /// Refuse at once an IP-literal host the client named that may not be reached (names are
    /// checked when they are resolved, at connect).
    pub fn refuse_literal(&self, target: &Target) -> Result<(), HttpError> {
        if target.route.is_some() {
            return Ok(());
        }
        let Some(ip) = host_ip(&target.host) else {
            return Ok(());
        };
        let port = target.port.unwrap_or(if target.https { 443 } else { 80 });
        self.guard
            .check(&target.host, std::net::SocketAddr::new(ip, port))
            .map_err(HttpError::AddressRefused)
    }

    /// Send the request and return the upstream's response head with its body streaming.
    pub async fn forward(
        &self,
        onward: Onward,
        mut request: Request<Body>,
    ) -> Result<Response<Body>, HttpError> {
        let client = match onward.route {
            None => &self.named,
            Some(i) => self
                .per_route
                .get(i)
                .and_then(Option::as_ref)
                .unwrap_or(&self.shared),
        };
        let upstream = onward
            .uri
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        *request.uri_mut() = onward.uri;
        let response = match tokio::time::timeout(self.timeout, client.request(request)).await {
            Err(_) => {
                return Err(HttpError::UpstreamTimeout {
                    upstream,
                    reason: format!("no response within {:?}", self.timeout),
                })
            }
            Ok(Err(e)) => return Err(upstream_error(upstream, &e)),
            Ok(Ok(response)) => response,
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers, |_| false);
        // A small response of known length is read whole before answering, so its head and
        // body leave in one write (as nginx's proxy buffering does); others stream.
        let small = body
            .size_hint()
            .exact()
            .is_some_and(|n| n > 0 && n <= self.buffer_small);
        if small {
            let deadline = self.timeout;
            let data = match tokio::time::timeout(deadline, body.collect()).await {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(e)) => {
                    return Err(HttpError::Upstream {
                        upstream,
                        reason: format!("response body: {e}"),
                    })
                }
                Err(_) => {
                    return Err(HttpError::UpstreamTimeout {
                        upstream,
                        reason: format!("response body not received within {deadline:?}"),
                    })
                }
            };
            return Ok(Response::from_parts(parts, full(data)));
        }
        Ok(Response::from_parts(parts, boxed(body)))
    }
}

/// The upstream URI: the route's upstream (or the host the client named), the request's
/// path and query, and HTTPS whenever `tls` is required.
pub fn onward_uri(
    target: &Target,
    settings: &Settings,
    path: Option<&PathAndQuery>,
    tls: bool,
) -> Result<Uri, HttpError> {
    let path = path.map_or("/", |p| p.as_str());
    let (scheme, authority, prefix) = match target.route.map(|i| &settings.routes[i]) {
        Some(route) => (
            route.scheme.clone(),
            route.authority.clone(),
            route.path_prefix.as_str(),
        ),
        None => {
            let scheme = if target.https {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            };
            let authority = match target.port {
                Some(port) => format!("{}:{port}", target.host),
                None => target.host.clone(),
            };
            let authority: Authority = authority
                .parse()
                .map_err(|_| HttpError::BadRequest(format!("invalid host {authority:?}")))?;
            (scheme, authority, "")
        }
    };
    // tls: HTTPS to the same host; plain http's default port 80 becomes 443, an explicit
    // port is kept (a plaintext server there fails the handshake: 502, never plaintext).
    let (scheme, authority) = if tls && scheme != Scheme::HTTPS {
        let authority = match authority.port_u16() {
            Some(80) | None => authority.host().parse().unwrap_or(authority),
            Some(_) => authority,
        };
        (Scheme::HTTPS, authority)
    } else {
        (scheme, authority)
    };
    let path_and_query = if prefix.is_empty() {
        PathAndQuery::try_from(path)
    } else {
        PathAndQuery::try_from(format!("{prefix}{path}"))
    }
    .map_err(|_| HttpError::BadRequest("invalid path".into()))?;
    Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| HttpError::BadRequest(format!("invalid upstream URI: {e}")))
}

/// Headers that describe one hop and never travel on.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Remove the hop-by-hop fields, and those `Connection` names, except the ones `keep`s.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep: impl Fn(&str) -> bool) {
    // Names listed in Connection are hop-by-hop too.
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .filter(|n| !keep(n.as_str()))
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(hyper::header::TRANSFER_ENCODING);
}

pub const VIA: HeaderValue = HeaderValue::from_static("1.1 markgate");

/// Prepare the client's request head for the upstream: hop-by-hop headers and Host go
/// (the client sets Host from the upstream URI), HTTP/1.1 upstream, Via added. A marking
/// header (`is_marking`) travels on even when `Connection` names it: the partner is told
/// the marking the request was decided on.
pub fn prepare_head(parts: &mut hyper::http::request::Parts, is_marking: impl Fn(&str) -> bool) {
    strip_hop_by_hop(&mut parts.headers, is_marking);
    parts.headers.remove(HOST);
    parts.headers.append(hyper::header::VIA, VIA);
    parts.version = Version::HTTP_11;
}

fn upstream_error(upstream: String, e: &hyper_util::client::legacy::Error) -> HttpError {
    let mut chain = Vec::new();
    let mut source = e.source();
    let mut timed_out = false;
    while let Some(s) = source {
        if let Some(too_large) = s.downcast_ref::<BodyTooLarge>() {
            return HttpError::TooLarge(too_large.0);
        }
        if let Some(ConnectError::Refused(refused)) = s.downcast_ref::<ConnectError>() {
            return HttpError::AddressRefused(refused.clone());
        }
        if let Some(trailer) = s.downcast_ref::<MarkingTrailer>() {
            return HttpError::BadRequest(format!(
                "{trailer}; the upstream was sent an incomplete body"
            ));
        }
        if let Some(client) = s.downcast_ref::<ClientBodyError>() {
            return HttpError::ClientBody(client.0.to_string());
        }
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            timed_out = true;
        }
        chain.push(s.to_string());
        source = s.source();
    }
    chain.dedup();
    let reason = if chain.is_empty() {
        e.to_string()
    } else {
        chain.join(": ")
    };
    if timed_out || reason.contains("timed out") {
        return HttpError::UpstreamTimeout { upstream, reason };
    }
    HttpError::Upstream { upstream, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_cannot_name_a_marking_away() {
        let (mut parts, ()) = hyper::Request::builder()
            .uri("http://api.partner.example/")
            .header("x-protective-marking", "OFFICIAL-SENSITIVE")
            .header(CONNECTION, "close, X-Protective-Marking, x-other")
            .header("x-other", "hop")
            .body(())
            .unwrap()
            .into_parts();
        prepare_head(&mut parts, |name| name == "x-protective-marking");
        assert_eq!(parts.headers["x-protective-marking"], "OFFICIAL-SENSITIVE");
        assert!(!parts.headers.contains_key("x-other"));
        assert!(!parts.headers.contains_key(CONNECTION));
    }
}
