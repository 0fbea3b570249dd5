//! The queue: accepted messages wait in the [`spool`] and are delivered by the
//! [`manager`], never by the session that accepted them. Failed deliveries are retried with
//! backoff; after `delivery.lifetime` (or at once on a permanent failure) the sender gets a
//! delivery status notification ([`dsn`]).

pub mod dsn;
pub mod manager;
pub mod spool;

use tokio::sync::mpsc;

use spool::Envelope;

/// Hands newly spooled messages to the queue manager.
#[derive(Clone)]
pub struct QueueHandle {
    tx: mpsc::UnboundedSender<Envelope>,
}

impl QueueHandle {
    pub fn new() -> (QueueHandle, mpsc::UnboundedReceiver<Envelope>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (QueueHandle { tx }, rx)
    }

    /// Queue a message that is already on disk. If the manager has stopped (shutdown), the
    /// message stays in the spool and is recovered on the next start.
    pub fn enqueue(&self, envelope: Envelope) {
        let _ = self.tx.send(envelope);
    }
}
