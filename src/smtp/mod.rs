//! The SMTP gateway: markgate as a mail relay that enforces the handling policy.
//!
//! Layout, in the order mail flows:
//! - [`listener`]: accepts connections, applies connection limits and the relay networks,
//!   runs STARTTLS handshakes, drains on shutdown;
//! - [`inbound`]: one session per connection, one file per SMTP verb; at end of data the
//!   message is decided, transformed ([`crate::transform`]), recorded and spooled before
//!   `250`;
//! - [`queue`]: the fsynced spool, the manager that delivers from it with retries, and
//!   bounces;
//! - [`outbound`]: delivery of one copy to its next hop (SMTP relay with verified TLS) or to
//!   the local outbox.

pub mod error;
pub mod hold;
pub mod inbound;
pub mod listener;
pub mod outbound;
pub mod queue;
pub mod reply;

use std::sync::Arc;

use anyhow::Context;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::service::gateway::{Gateway, Listener};
use queue::manager::QueueManager;
use queue::spool::Spool;
use queue::QueueHandle;

/// What every session shares.
pub struct SmtpContext {
    pub gateway: Arc<Gateway>,
    /// Present when STARTTLS is offered.
    pub tls: Option<TlsAcceptor>,
    pub spool: Arc<Spool>,
    pub queue: QueueHandle,
    /// Where held disclosures wait for an approver ([`crate::hold`]).
    pub hold: crate::hold::HoldStore,
    pub relay_nets: Vec<ipnet::IpNet>,
    pub shutdown: CancellationToken,
}

impl SmtpContext {
    pub fn hostname(&self) -> &str {
        &self.gateway.config.smtp.hostname
    }
}

/// Run the SMTP listener and the delivery queue until `shutdown` is cancelled, then drain.
pub async fn run(gateway: Arc<Gateway>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = &gateway.config;
    let tls = tls_acceptor(config)?;
    let spool = Arc::new(
        Spool::open(&config.spool.dir)
            .with_context(|| format!("spool.dir {}", config.spool.dir.display()))?,
    );
    let hold = crate::hold::HoldStore::open(&crate::hold::dir_for_spool(&config.spool.dir))
        .context("hold store")?;
    let (queue, rx) = QueueHandle::new();
    let recovered = CancellationToken::new();
    let dkim = match &config.dkim {
        Some(d) => Some(outbound::dkim::DkimSigner::load(d).context("[dkim]")?),
        None => None,
    };
    let delivery = outbound::Delivery::new(
        config.delivery.clone(),
        config.smtp.hostname.clone(),
        config.tls.ca.clone(),
        dkim,
    )
    .context("delivery")?;
    let manager = Arc::new(QueueManager {
        gateway: gateway.clone(),
        spool: spool.clone(),
        delivery: Arc::new(delivery),
        config: config.delivery.clone(),
        hostname: config.smtp.hostname.clone(),
        handle: queue.clone(),
        recovered: recovered.clone(),
    });
    let listener = tokio::net::TcpListener::bind(&config.smtp.listen)
        .await
        .with_context(|| format!("smtp.listen {}", config.smtp.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        spool = %config.spool.dir.display(),
        delivery = if config.delivery.routes.is_empty() { "outbox" } else { "routes" },
        "SMTP gateway listening"
    );
    gateway.listening_on(Listener::Smtp, listener.local_addr()?);
    let grace = config.smtp.shutdown_grace;
    let queue_task = tokio::spawn(manager.run(rx, shutdown.clone(), grace));
    let keeper = hold::Keeper {
        gateway: gateway.clone(),
        store: hold.clone(),
        spool: spool.clone(),
        queue: queue.clone(),
        hostname: config.smtp.hostname.clone(),
    };
    let keeper_task = tokio::spawn(keeper.run(recovered, shutdown.clone()));
    let ctx = Arc::new(SmtpContext {
        relay_nets: config.smtp.relay_nets(),
        gateway: gateway.clone(),
        tls,
        spool,
        queue,
        hold,
        shutdown: shutdown.clone(),
    });
    listener::serve(listener, ctx).await;
    let _ = queue_task.await;
    let _ = keeper_task.await;
    tracing::info!("SMTP gateway stopped; the spool is kept");
    Ok(())
}

/// The STARTTLS configuration from `tls.cert` / `tls.key` (or the development material
/// `serve` prepares when none is configured: `service::snapshot::prepare_key_material`).
fn tls_acceptor(config: &Config) -> anyhow::Result<Option<TlsAcceptor>> {
    let tls = &config.tls;
    let client_ca = if config.smtp.require_client_cert {
        config.smtp.client_ca.as_deref()
    } else {
        None
    };
    let server = crate::certs::server_config(&tls.cert_path(), &tls.key_path(), client_ca)
        .context("STARTTLS certificate (tls.cert, tls.key)")?;
    Ok(Some(TlsAcceptor::from(server)))
}
