//! JSON bodies for the refusals hyper writes itself. A request head that does not parse
//! (bad request line, header, Content-Length or Transfer-Encoding: 400), is too large (431) or
//! has too long a target (414) is answered by hyper before any handler runs, with an empty
//! body. Every other refusal of the gateway is JSON, so these are too: the connection's
//! writes pass through [`HeadErrors`], which follows the framing of the responses written
//! (heads, Content-Length and chunked bodies) and, at a response boundary only, replaces
//! hyper's bodiless error response with the same status and a JSON body. Response bodies are
//! counted, never matched, so no upstream content can be mistaken for one.
//!
//! HTTP/2 connections, upgrades, CONNECT tunnels and close-delimited bodies are passed through
//! untouched from the moment they are seen.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::ErrorBody;

/// What the response to one HTTP/1 request can carry, pushed by the service in request
/// order (HTTP/1 answers in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// HEAD: the response head announces a body that is not sent.
    Head,
    /// CONNECT: a 2xx response turns the connection into a tunnel.
    Connect,
    Other,
}

/// The requests of one connection whose responses are still to be written.
#[derive(Debug, Default)]
pub struct Requests(Mutex<VecDeque<RequestKind>>);

impl Requests {
    pub fn push(&self, kind: RequestKind) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(kind);
    }

    fn pop(&self) -> Option<RequestKind> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
    }
}

/// The JSON responses that replace hyper's, built once.
#[derive(Debug)]
pub struct Replies {
    bad_request: Vec<u8>,
    too_large: Vec<u8>,
    uri_too_long: Vec<u8>,
}

impl Replies {
    pub fn new(max_header_bytes: usize) -> Replies {
        let reply = |status: &str, error: &'static str, reason: String| {
            let body = ErrorBody::plain(error, reason).to_json();
            let mut out = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: no-store\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(&body);
            out
        };
        Replies {
            bad_request: reply(
                "400 Bad Request",
                "bad-request",
                "the request head could not be parsed as HTTP/1.1 (request line, header field, Content-Length or Transfer-Encoding; RFC 9112); nothing was forwarded".into(),
            ),
            too_large: reply(
                "431 Request Header Fields Too Large",
                "header-too-large",
                format!("the request head is larger than http.max_header_bytes ({max_header_bytes} bytes); nothing was forwarded"),
            ),
            uri_too_long: reply(
                "414 URI Too Long",
                "uri-too-long",
                "the request target is too long; nothing was forwarded".into(),
            ),
        }
    }

    /// The replacement for `write` when it is one of hyper's bodiless error responses:
    /// exactly a status line of 400, 414 or 431 and only the headers hyper puts on it.
    fn for_canned(&self, write: &[u8]) -> Option<&[u8]> {
        let text = std::str::from_utf8(write).ok()?;
        let head = text.strip_suffix("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let reply = match lines.next()? {
            "HTTP/1.1 400 Bad Request" => &self.bad_request,
            "HTTP/1.1 431 Request Header Fields Too Large" => &self.too_large,
            "HTTP/1.1 414 URI Too Long" => &self.uri_too_long,
            _ => return None,
        };
        let mut length = false;
        for line in lines {
            match line {
                "content-length: 0" => length = true,
                "connection: close" => {}
                date if date.starts_with("date: ") => {}
                _ => return None,
            }
        }
        length.then_some(reply.as_slice())
    }
}

/// Where the written byte stream is, in the framing of responses.
#[derive(Debug)]
enum Framing {
    /// Inside a response head; `line` holds the current line, `status` is set once the
    /// status line is complete. A boundary when both are empty.
    Head {
        line: Vec<u8>,
        status: Option<u16>,
        length: Option<u64>,
        chunked: bool,
    },
    /// Body bytes still to come.
    Length(u64),
    /// A chunk-size line.
    ChunkSize(Vec<u8>),
    /// Chunk data still to come, then its CRLF.
    ChunkData(u64),
    /// The CRLF after chunk data (bytes left).
    ChunkEnd(u8),
    /// Trailer lines after the last chunk; the current line.
    Trailers(Vec<u8>),
    /// No more rewriting on this connection (HTTP/2, tunnel, upgrade, close-delimited body,
    /// anything unexpected).
    Passthrough,
}

/// Longest head or chunk line followed; anything longer stops the rewriting.
const MAX_LINE: usize = 64 * 1024;

impl Framing {
    fn boundary() -> Framing {
        Framing::Head {
            line: Vec::new(),
            status: None,
            length: None,
            chunked: false,
        }
    }

    fn at_boundary(&self) -> bool {
        matches!(self, Framing::Head { line, status: None, .. } if line.is_empty())
    }

    /// Follow `bytes`, which have been written.
    fn feed(&mut self, mut bytes: &[u8], requests: &Requests) {
        while !bytes.is_empty() {
            match self {
                Framing::Passthrough => return,
                Framing::Length(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        *self = Framing::boundary();
                    }
                }
                Framing::ChunkData(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        *self = Framing::ChunkEnd(2);
                    }
                }
                Framing::ChunkEnd(left) => {
                    *left -= 1;
                    bytes = &bytes[1..];
                    if *left == 0 {
                        *self = Framing::ChunkSize(Vec::new());
                    }
                }
                Framing::Head { line, .. } | Framing::ChunkSize(line) | Framing::Trailers(line) => {
                    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(bytes);
                        if line.len() > MAX_LINE {
                            *self = Framing::Passthrough;
                        }
                        return;
                    };
                    line.extend_from_slice(&bytes[..end]);
                    bytes = &bytes[end + 1..];
                    let line = std::mem::take(line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.line(line, requests);
                }
            }
        }
    }

    /// One complete line of a head, a chunk size or the trailers.
    fn line(&mut self, text: &[u8], requests: &Requests) {
        match self {
            Framing::Head {
                status: status @ None,
                ..
            } => {
                // The status line: "HTTP/1.x NNN reason".
                let code = text
                    .strip_prefix(b"HTTP/1.")
                    .and_then(|rest| rest.get(2..5))
                    .and_then(|code| std::str::from_utf8(code).ok()?.parse().ok());
                match code {
                    Some(code) => *status = Some(code),
                    None => *self = Framing::Passthrough,
                }
            }
            Framing::Head {
                status: Some(status),
                length,
                chunked,
                ..
            } => {
                if !text.is_empty() {
                    let Some(colon) = text.iter().position(|&b| b == b':') else {
                        *self = Framing::Passthrough;
                        return;
                    };
                    let name = &text[..colon];
                    let value = String::from_utf8_lossy(&text[colon + 1..]);
                    if name.eq_ignore_ascii_case(b"content-length") {
                        match value.trim().parse() {
                            Ok(n) => *length = Some(n),
                            Err(_) => *self = Framing::Passthrough,
                        }
                    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                        *chunked = value.to_ascii_lowercase().contains("chunked");
                    }
                    return;
                }
                // End of the head.
                let (status, length, chunked) = (*status, *length, *chunked);
                if (100..200).contains(&status) && status != 101 {
                    *self = Framing::boundary();
                    return;
                }
                let kind = requests.pop();
                *self = match kind {
                    None => Framing::Passthrough,
                    Some(_) if status == 101 => Framing::Passthrough,
                    Some(RequestKind::Connect) if (200..300).contains(&status) => {
                        Framing::Passthrough
                    }
                    Some(RequestKind::Head) => Framing::boundary(),
                    Some(_) if status == 204 || status == 304 => Framing::boundary(),
                    Some(_) if chunked => Framing::ChunkSize(Vec::new()),
                    Some(_) => match length {
                        Some(0) => Framing::boundary(),
                        Some(n) => Framing::Length(n),
                        None => Framing::Passthrough,
                    },
                };
            }
            Framing::ChunkSize(_) => {
                let size = std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| u64::from_str_radix(t.split(';').next()?.trim(), 16).ok());
                *self = match size {
                    Some(0) => Framing::Trailers(Vec::new()),
                    Some(n) => Framing::ChunkData(n),
                    None => Framing::Passthrough,
                };
            }
            Framing::Trailers(_) => {
                if text.is_empty() {
                    *self = Framing::boundary();
                }
            }
            _ => *self = Framing::Passthrough,
        }
    }
}

/// A client connection whose writes are followed (see the module documentation).
pub struct HeadErrors<S> {
    inner: S,
    framing: Framing,
    requests: Arc<Requests>,
    replies: Arc<Replies>,
    /// A replacement response still to be written, and how much of it has been.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> HeadErrors<S> {
    pub fn new(inner: S, replies: Arc<Replies>) -> (HeadErrors<S>, Arc<Requests>) {
        let requests = Arc::new(Requests::default());
        let io = HeadErrors {
            inner,
            framing: Framing::boundary(),
            requests: requests.clone(),
            replies,
            pending: None,
        };
        (io, requests)
    }
}

impl<S: AsyncWrite + Unpin> HeadErrors<S> {
    /// Write out a pending replacement.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((reply, done)) = &mut self.pending {
            if *done == reply.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &reply[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }

    /// When `write` is hyper's bodiless error response at a response boundary: queue the
    /// JSON one instead.
    fn replace(&mut self, write: &[u8]) -> bool {
        if !self.framing.at_boundary() {
            return false;
        }
        let Some(reply) = self.replies.for_canned(write) else {
            return false;
        };
        self.pending = Some((reply.to_vec(), 0));
        self.framing = Framing::Passthrough;
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if this.replace(buf) {
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.framing.feed(&buf[..n], &this.requests);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        let mut nonempty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (nonempty.next(), nonempty.next()) {
            if this.replace(only) {
                let _ = this.poll_pending(cx)?;
                return Poll::Ready(Ok(only.len()));
            }
        }
        let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        let mut left = n;
        for buf in bufs {
            if left == 0 {
                break;
            }
            let take = left.min(buf.len());
            this.framing.feed(&buf[..take], &this.requests);
            left -= take;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::AsyncWriteExt;

    /// A socket that takes at most the next of `caps` bytes per write (partial writes).
    struct Socket {
        out: Vec<u8>,
        caps: Vec<usize>,
        at: usize,
        vectored: bool,
    }

    impl AsyncWrite for Socket {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let cap = self.caps[self.at % self.caps.len()].max(1);
            self.at += 1;
            let n = cap.min(buf.len());
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            self.vectored
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    const CANNED_400: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Fri, 27 Nov 2026 13:12:19 GMT\r\n\r\n";
    const CANNED_431: &[u8] =
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Fri, 27 Nov 2026 13:12:19 GMT\r\n\r\n";

    /// Write each of `writes` whole (as hyper does: again until all is taken); the bytes
    /// that reached the socket.
    async fn run(writes: &[Vec<u8>], kinds: &[RequestKind], caps: Vec<usize>) -> Vec<u8> {
        let socket = Socket {
            out: Vec::new(),
            caps,
            at: 0,
            vectored: false,
        };
        let (mut io, requests) = HeadErrors::new(socket, Arc::new(Replies::new(8192)));
        for kind in kinds {
            requests.push(*kind);
        }
        for write in writes {
            io.write_all(write).await.unwrap();
        }
        io.flush().await.unwrap();
        io.inner.out
    }

    #[tokio::test]
    async fn hyper_errors_get_json_bodies() {
        let out = run(&[CANNED_431.to_vec()], &[], vec![1000]).await;
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{text}"
        );
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "header-too-large");
        assert!(json["reason"].as_str().unwrap().contains("8192"));

        // After a complete response, on a slow socket (a byte at a time).
        let response = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_vec();
        let out = run(
            &[response.clone(), CANNED_400.to_vec()],
            &[RequestKind::Other],
            vec![1],
        )
        .await;
        assert!(out.starts_with(&response));
        let rest = String::from_utf8(out[response.len()..].to_vec()).unwrap();
        assert!(
            rest.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json"),
            "{rest}"
        );
        assert!(rest.contains(r#""error":"bad-request""#), "{rest}");
    }

    /// A body that is byte for byte hyper's error response is a body: never replaced.
    #[tokio::test]
    async fn bodies_that_look_like_errors_are_left_alone() {
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            CANNED_400.len()
        );
        let writes = vec![head.into_bytes(), CANNED_400.to_vec()];
        let out = run(&writes, &[RequestKind::Other], vec![4096]).await;
        assert_eq!(out, writes.concat());
        // Chunked: the chunk data is written on its own.
        let writes = vec![
            format!(
                "HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
                CANNED_400.len()
            )
            .into_bytes(),
            CANNED_400.to_vec(),
            b"\r\n0\r\n\r\n".to_vec(),
        ];
        let out = run(&writes, &[RequestKind::Other], vec![4096]).await;
        assert_eq!(out, writes.concat());
        // A response to HEAD announces a body it does not send; the next head is a boundary.
        let writes = vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n".to_vec(),
            CANNED_400.to_vec(),
        ];
        let out = run(&writes, &[RequestKind::Head], vec![4096]).await;
        assert!(String::from_utf8_lossy(&out).contains("bad-request"));
        // A tunnel is never rewritten.
        let writes = vec![b"HTTP/1.1 200 OK\r\n\r\n".to_vec(), CANNED_400.to_vec()];
        let out = run(&writes, &[RequestKind::Connect], vec![4096]).await;
        assert_eq!(out, writes.concat());
        // Nor HTTP/2.
        let writes = vec![b"\0\0\0\x04\0\0\0\0\0".to_vec(), CANNED_400.to_vec()];
        assert_eq!(run(&writes, &[], vec![4096]).await, writes.concat());
    }

    #[derive(Debug, Clone)]
    enum Shape {
        Length,
        Chunked(Vec<usize>),
        Head,
        NoContent,
        Continue,
    }

    /// One response as hyper writes it, split into writes: the head, then the body pieces
    /// (each a write of its own, as with vectored writes), and its request kind.
    fn response(shape: &Shape, body: &[u8]) -> (Vec<Vec<u8>>, Option<RequestKind>) {
        match shape {
            Shape::Length => (
                vec![
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: x\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes(),
                    body.to_vec(),
                ],
                Some(RequestKind::Other),
            ),
            Shape::Chunked(cuts) => {
                let mut writes = vec![
                    b"HTTP/1.1 502 Bad Gateway\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
                ];
                let mut rest = body;
                for &cut in cuts {
                    let (chunk, tail) = rest.split_at(cut.min(rest.len()));
                    if !chunk.is_empty() {
                        writes.push(format!("{:X}\r\n", chunk.len()).into_bytes());
                        writes.push(chunk.to_vec());
                        writes.push(b"\r\n".to_vec());
                    }
                    rest = tail;
                }
                if !rest.is_empty() {
                    writes.push(format!("{:x}\r\n", rest.len()).into_bytes());
                    writes.push(rest.to_vec());
                    writes.push(b"\r\n".to_vec());
                }
                writes.push(b"0\r\n\r\n".to_vec());
                (writes, Some(RequestKind::Other))
            }
            Shape::Head => (
                vec![format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
                    body.len() + 7
                )
                .into_bytes()],
                Some(RequestKind::Head),
            ),
            Shape::NoContent => (
                vec![b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()],
                Some(RequestKind::Other),
            ),
            Shape::Continue => (vec![b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()], None),
        }
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Length),
            proptest::collection::vec(0usize..200, 0..4).prop_map(Shape::Chunked),
            Just(Shape::Head),
            Just(Shape::NoContent),
            Just(Shape::Continue),
        ]
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            Just(CANNED_400.to_vec()),
            Just(CANNED_431.to_vec()),
            Just([CANNED_400, CANNED_400].concat()),
        ]
    }

    proptest! {
        /// Whatever responses were written before, however the socket split the writes:
        /// every response byte reaches the client unchanged, and only a bodiless error
        /// response written at a boundary (by hyper) is replaced.
        #[test]
        fn only_hyper_error_responses_are_replaced(
            responses in proptest::collection::vec((shape(), body()), 0..6),
            canned in any::<bool>(),
            caps in proptest::collection::vec(1usize..64, 1..8),
        ) {
            let mut writes = Vec::new();
            let mut kinds = Vec::new();
            for (shape, body) in &responses {
                let (w, kind) = response(shape, body);
                writes.extend(w);
                kinds.extend(kind);
            }
            let plain = writes.concat();
            if canned {
                writes.push(CANNED_400.to_vec());
            }
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let out = runtime.block_on(run(&writes, &kinds, caps));
            prop_assert_eq!(&out[..plain.len()], &plain[..]);
            let tail = &out[plain.len()..];
            if canned {
                let tail = String::from_utf8_lossy(tail);
                prop_assert!(tail.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json"), "{}", tail);
            } else {
                prop_assert!(tail.is_empty());
            }
        }
    }
}
