//! The SMTP gateway (being built).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::gateway::Gateway;

/// Run the SMTP listener until `shutdown` is cancelled.
pub async fn run(gateway: Arc<Gateway>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _ = gateway;
    shutdown.cancelled().await;
    Ok(())
}
