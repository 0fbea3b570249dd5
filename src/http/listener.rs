//! Listener phase: accept HTTP/1.1 and HTTP/2 (cleartext, prior knowledge) connections,
//! at most `http.max_connections` at once, with the head size and head read-timeout limits;
//! on shutdown stop accepting and give requests in flight `http.shutdown_grace` to finish.
//! Head parse errors hyper answers itself get JSON bodies (`head_errors`).
//!
//! Thread per core: `http.workers` threads, each with a single-threaded tokio runtime and its
//! own upstream connection pool, so a request and its onward connection stay on one thread
//! with no cross-thread wake-ups. They accept on one listening socket, bound once by this
//! process: no SO_REUSEPORT, so a second gateway cannot silently share the port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::head_errors::{HeadErrors, Replies, RequestKind};
use super::HttpGateway;

/// Serve on one listener until `shutdown`; `permits` caps connections across all workers.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<HttpGateway>,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let limits = &gateway.gateway.config.http;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes.min(u32::MAX as usize) as u32);
    let builder = Arc::new(builder);
    let replies = Arc::new(Replies::new(limits.max_header_bytes));
    let graceful = GracefulShutdown::new();
    let grace = limits.shutdown_grace;

    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit?,
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let gateway = gateway.clone();
        let (stream, requests) = HeadErrors::new(stream, replies.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                if request.version() < Version::HTTP_2 {
                    requests.push(match *request.method() {
                        Method::HEAD => RequestKind::Head,
                        Method::CONNECT => RequestKind::Connect,
                        _ => RequestKind::Other,
                    });
                }
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(gateway.handle(request, peer).await) }
            });
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %e, "http connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("http: all connections finished"),
        _ = tokio::time::sleep(grace) => tracing::warn!("http: shutdown grace period over; closing remaining connections"),
    }
    Ok(())
}

/// Bind the listening socket every worker accepts on (SO_REUSEADDR for quick restarts; no
/// SO_REUSEPORT). Returned as a standard socket, non-blocking, for the workers' runtimes.
pub fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    use anyhow::Context;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }?;
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("http.listen {addr}: cannot listen"))?;
    Ok(socket.listen(1024)?.into_std()?)
}
