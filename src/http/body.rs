//! Bodies in both directions: a bounded peek at the start of a request body (what marking
//! detection may read), then the peeked bytes and the rest of the stream forwarded as one
//! body without buffering, counting bytes against `http.max_body_bytes`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper::header::HeaderMap;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Body type of every response markgate sends and every request it forwards.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed_unsync()
}

/// A streamed body (an upstream response) as a [`Body`].
pub fn boxed(body: Incoming) -> Body {
    body.map_err(BoxError::from).boxed_unsync()
}

/// The request body grew past `http.max_body_bytes` while streaming.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than {0} bytes")]
pub struct BodyTooLarge(pub u64);

/// Why a request body could not be read; the channel's error turns it into a response.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    #[error("request body could not be read: {0}")]
    Client(String),
    /// Not all that must be read before forwarding arrived by `http.body_read_timeout`.
    #[error("the request body did not arrive within http.body_read_timeout")]
    Timeout,
}

/// The client's request body broke while it was being forwarded (a malformed chunk, a
/// connection closed early): the client's fault, answered 400, not an upstream failure.
#[derive(Debug, thiserror::Error)]
#[error("request body could not be read: {0}")]
pub struct ClientBodyError(pub hyper::Error);

/// A marking header arrived in the request's trailers after forwarding had begun: the
/// onward body is cut short, so the upstream never receives a complete request.
#[derive(Debug, thiserror::Error)]
#[error("a marking header ({0}) arrived in a trailer after the body was being forwarded; a marking must be in the request head")]
pub struct MarkingTrailer(pub String);

/// A request body after the peek: the bytes already read, and the rest still on the wire.
pub struct Peeked {
    pub head: Bytes,
    pub rest: Option<Incoming>,
    /// Trailers that arrived within the peek (a short chunked body's).
    pub trailers: Option<HeaderMap>,
    /// When what markgate must read before forwarding (the peek, a body to seal) must have
    /// arrived: `http.body_read_timeout` from the start of the request (408 after).
    pub deadline: Instant,
}

impl Peeked {
    /// A body not read before forwarding (no text to look for banner lines in).
    pub fn unread(body: Incoming, deadline: Instant) -> Peeked {
        Peeked {
            head: Bytes::new(),
            rest: (!body.is_end_stream()).then_some(body),
            trailers: None,
            deadline,
        }
    }
}

/// The next frame of a body markgate is reading before forwarding, by `deadline`.
async fn frame_by(
    body: &mut Incoming,
    deadline: Instant,
) -> Result<Option<Frame<Bytes>>, ReadError> {
    match tokio::time::timeout_at(deadline.into(), body.frame()).await {
        Err(_) => Err(ReadError::Timeout),
        Ok(None) => Ok(None),
        Ok(Some(Err(e))) => Err(ReadError::Client(e.to_string())),
        Ok(Some(Ok(frame))) => Ok(Some(frame)),
    }
}

/// Read up to `limit` bytes from the start of `body` (fewer if it ends first), by
/// `deadline`.
pub async fn peek(
    mut body: Incoming,
    limit: usize,
    max: u64,
    deadline: Instant,
) -> Result<Peeked, ReadError> {
    let mut head = Vec::new();
    let mut trailers = None;
    while head.len() < limit {
        match frame_by(&mut body, deadline).await? {
            None => {
                return Ok(Peeked {
                    head: head.into(),
                    rest: None,
                    trailers,
                    deadline,
                })
            }
            Some(frame) => match frame.into_data() {
                Ok(data) => {
                    head.extend_from_slice(&data);
                    if head.len() as u64 > max {
                        return Err(ReadError::TooLarge(max));
                    }
                }
                // Request trailers are read for markings, not forwarded.
                Err(frame) => trailers = frame.into_trailers().ok(),
            },
        }
    }
    let rest = (!body.is_end_stream()).then_some(body);
    Ok(Peeked {
        head: head.into(),
        rest,
        trailers,
        deadline,
    })
}

/// Read a whole body into memory by the peek's deadline, refusing more than `max` bytes
/// (for sealing bundles).
pub async fn collect(peeked: Peeked, max: u64) -> Result<Vec<u8>, ReadError> {
    let mut data = peeked.head.to_vec();
    if let Some(mut rest) = peeked.rest {
        while let Some(frame) = frame_by(&mut rest, peeked.deadline).await? {
            if let Ok(chunk) = frame.into_data() {
                data.extend_from_slice(&chunk);
                if data.len() as u64 > max {
                    return Err(ReadError::TooLarge(max));
                }
            }
        }
    }
    Ok(data)
}

/// The whole body as the peek: read into memory by the peek's deadline, refusing more than
/// `max` bytes (an Office document read whole for its marking).
pub async fn read_whole(peeked: Peeked, max: u64) -> Result<Peeked, ReadError> {
    let deadline = peeked.deadline;
    let mut trailers = peeked.trailers;
    let mut data = peeked.head.to_vec();
    if let Some(mut rest) = peeked.rest {
        while let Some(frame) = frame_by(&mut rest, deadline).await? {
            match frame.into_data() {
                Ok(chunk) => {
                    data.extend_from_slice(&chunk);
                    if data.len() as u64 > max {
                        return Err(ReadError::TooLarge(max));
                    }
                }
                Err(frame) => trailers = frame.into_trailers().ok(),
            }
        }
    }
    Ok(Peeked {
        head: data.into(),
        rest: None,
        trailers,
        deadline,
    })
}

/// The forwarded request body: the peeked head, then the rest of the client's stream.
/// Trailers are not forwarded; one carrying a marking header (`is_marking`) cuts the body.
pub struct Forwarded {
    head: Option<Bytes>,
    rest: Option<Incoming>,
    seen: u64,
    max: u64,
    is_marking: Box<dyn Fn(&str) -> bool + Send>,
}

impl Forwarded {
    pub fn body(peeked: Peeked, max: u64, is_marking: Box<dyn Fn(&str) -> bool + Send>) -> Body {
        if peeked.head.is_empty() && peeked.rest.is_none() {
            return empty();
        }
        let seen = peeked.head.len() as u64;
        Forwarded {
            head: (!peeked.head.is_empty()).then_some(peeked.head),
            rest: peeked.rest,
            seen,
            max,
            is_marking,
        }
        .boxed_unsync()
    }
}

impl HttpBody for Forwarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        let Some(rest) = self.rest.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(rest).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.seen += data.len() as u64;
                    if self.seen > self.max {
                        self.rest = None;
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge(self.max)))));
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                self.rest = None;
                let marking = frame.trailers_ref().and_then(|t| {
                    t.keys()
                        .find(|name| (self.is_marking)(name.as_str()))
                        .cloned()
                });
                match marking {
                    Some(name) => {
                        Poll::Ready(Some(Err(Box::new(MarkingTrailer(name.to_string())))))
                    }
                    None => Poll::Ready(None),
                }
            }
            Poll::Ready(Some(Err(e))) => {
                self.rest = None;
                Poll::Ready(Some(Err(Box::new(ClientBodyError(e)))))
            }
            Poll::Ready(None) => {
                self.rest = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let head = self.head.as_ref().map_or(0, |h| h.len() as u64);
        let rest = self
            .rest
            .as_ref()
            .map_or(SizeHint::with_exact(0), |r| r.size_hint());
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + head);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + head);
        }
        hint
    }
}
