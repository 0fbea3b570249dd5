//! The listener: accept connections until shutdown, within `smtp.max_connections` in all
//! and `smtp.max_connections_per_client` per address; run each session (and its STARTTLS
//! handshake); on shutdown stop accepting and give sessions in flight `smtp.shutdown_grace`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::error::Closing;
use super::inbound::{Outcome, Peer, Session};
use super::SmtpContext;

/// Counts connections per client address; the guard gives its slot back when dropped.
#[derive(Clone, Default)]
struct PerClient(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct ClientSlot {
    map: PerClient,
    ip: IpAddr,
}

impl PerClient {
    fn take(&self, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut map = self.0.lock().expect("per-client map");
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            map: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self.map.0.lock().expect("per-client map");
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Accept and serve until `ctx.shutdown`, then drain.
pub async fn serve(listener: TcpListener, ctx: Arc<SmtpContext>) {
    let config = &ctx.gateway.config.smtp;
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let per_client = PerClient::default();
    let tasks = TaskTracker::new();
    loop {
        let (mut stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = ctx.shutdown.cancelled() => break,
        };
        let ip = addr.ip().to_canonical();
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            refuse(&mut stream, Closing::TooManyConnections).await;
            continue;
        };
        let Some(slot) = per_client.take(ip, config.max_connections_per_client) else {
            tracing::warn!(client = %ip, "connection refused: too many from this client");
            refuse(&mut stream, Closing::TooManyFromClient { client: ip }).await;
            continue;
        };
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let _slot = slot;
            connection(stream, addr, ctx).await;
        });
    }
    drop(listener);
    tasks.close();
    let grace = config.shutdown_grace;
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!(
            sessions = tasks.len(),
            "sessions still open after the grace period; closing them (nothing unacknowledged is lost)"
        );
    }
}

async fn refuse(stream: &mut TcpStream, why: Closing) {
    let mut line = Vec::new();
    why.reply().write_to(&mut line);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let _ = stream.write_all(&line).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

async fn connection(stream: TcpStream, addr: SocketAddr, ctx: Arc<SmtpContext>) {
    let _ = stream.set_nodelay(true);
    let ip = addr.ip().to_canonical();
    let mut peer = Peer {
        ip,
        relay_allowed: ctx.relay_nets.iter().any(|n| n.contains(&ip)),
        tls: false,
    };
    let outcome = Session::new(stream, ctx.clone(), peer.clone())
        .run(true)
        .await;
    let stream = match outcome {
        Ok(Outcome::StartTls(stream)) => stream,
        Ok(Outcome::Closed) => return,
        Err(e) => {
            tracing::debug!(client = %ip, error = %e, "session ended");
            return;
        }
    };
    let Some(acceptor) = ctx.tls.clone() else {
        return;
    };
    let timeout = ctx.gateway.config.smtp.command_timeout;
    let tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::warn!(client = %ip, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::warn!(client = %ip, "TLS handshake timed out");
            return;
        }
    };
    peer.tls = true;
    if let Err(e) = Session::new(tls, ctx, peer).run(false).await {
        tracing::debug!(client = %ip, error = %e, "TLS session ended");
    }
}
