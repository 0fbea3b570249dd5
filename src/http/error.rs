//! Every way a request can be refused or fail, and the one place they become HTTP responses:
//! a status and a JSON body `{"error", "reason"}` plus `rule`, `marking` and `destination`
//! when the policy decided, and `rule` when the address guard refused. Head parse errors
//! that hyper answers itself get the same body (see `listener`).

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::body::{full, Body, ReadError};
use super::guard::AddressRefused;

/// A refusal the policy decided (block, CONNECT, encryption impossible).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyRefusal {
    /// The rule that decided.
    pub rule: String,
    /// Every rule that fired, when more than the deciding one.
    pub rules: Vec<String>,
    pub marking: String,
    pub destination: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{}", .0.reason)]
    Blocked(PolicyRefusal),
    #[error("{}", .0.reason)]
    ConnectRefused(PolicyRefusal),
    #[error("{0}")]
    BadRequest(String),
    #[error("no partner route for host {0:?}; use a configured partner host or an absolute URI")]
    NoRoute(String),
    #[error("request loops back through markgate")]
    Loop,
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    #[error("request body could not be read: {0}")]
    ClientBody(String),
    #[error(
        "the request body did not arrive within http.body_read_timeout; nothing was forwarded"
    )]
    ClientTimeout,
    #[error("{}", .0.reason)]
    EncryptUnavailable(PolicyRefusal),
    #[error("{0}")]
    AddressRefused(AddressRefused),
    #[error("decision could not be recorded: {0}")]
    Record(String),
    #[error("upstream {upstream} failed: {reason}")]
    Upstream { upstream: String, reason: String },
    #[error("upstream {upstream} timed out: {reason}")]
    UpstreamTimeout { upstream: String, reason: String },
}

impl From<ReadError> for HttpError {
    fn from(e: ReadError) -> HttpError {
        match e {
            ReadError::TooLarge(max) => HttpError::TooLarge(max),
            ReadError::Client(reason) => HttpError::ClientBody(reason),
            ReadError::Timeout => HttpError::ClientTimeout,
        }
    }
}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    marking: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a str>,
    reason: String,
}

impl ErrorBody<'_> {
    /// A body naming only the error and the reason.
    pub fn plain(error: &'static str, reason: String) -> ErrorBody<'static> {
        ErrorBody {
            error,
            rule: None,
            rules: None,
            marking: None,
            destination: None,
            reason,
        }
    }

    /// The JSON text, newline-terminated.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        json.push(b'\n');
        json
    }
}

impl HttpError {
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::Blocked(_) | HttpError::ConnectRefused(_) | HttpError::AddressRefused(_) => {
                StatusCode::FORBIDDEN
            }
            HttpError::BadRequest(_) | HttpError::ClientBody(_) => StatusCode::BAD_REQUEST,
            HttpError::NoRoute(_) => StatusCode::NOT_FOUND,
            HttpError::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
            HttpError::Loop => StatusCode::LOOP_DETECTED,
            HttpError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            // A temporary failure: the same request goes through once the gateway can seal.
            HttpError::EncryptUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Record(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            HttpError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Short machine-readable name of the error.
    pub fn code(&self) -> &'static str {
        match self {
            HttpError::Blocked(_) => "blocked",
            HttpError::ConnectRefused(_) => "connect-refused",
            HttpError::BadRequest(_) => "bad-request",
            HttpError::NoRoute(_) => "no-route",
            HttpError::Loop => "loop-detected",
            HttpError::TooLarge(_) => "body-too-large",
            HttpError::ClientBody(_) => "client-body",
            HttpError::ClientTimeout => "request-timeout",
            HttpError::EncryptUnavailable(_) => "encrypt-unavailable",
            HttpError::AddressRefused(_) => "address-refused",
            HttpError::Record(_) => "record-failed",
            HttpError::Upstream { .. } => "upstream-failed",
            HttpError::UpstreamTimeout { .. } => "upstream-timeout",
        }
    }

    fn refusal(&self) -> Option<&PolicyRefusal> {
        match self {
            HttpError::Blocked(r) | HttpError::ConnectRefused(r) => Some(r),
            HttpError::EncryptUnavailable(r) => Some(r),
            _ => None,
        }
    }

    /// The response sent to the client. Nothing has been forwarded when this is built.
    pub fn into_response(self) -> Response<Body> {
        let refusal = self.refusal();
        let rule = match &self {
            HttpError::AddressRefused(a) => Some(a.rule),
            _ => refusal.map(|r| r.rule.as_str()),
        };
        let body = ErrorBody {
            error: self.code(),
            rule,
            rules: refusal.map(|r| r.rules.as_slice()).filter(|r| r.len() > 1),
            marking: refusal.map(|r| r.marking.as_str()),
            destination: refusal.map(|r| r.destination.as_str()),
            reason: self.to_string(),
        };
        let mut response = Response::new(full(body.to_json()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
