//! The HTTP view of a snapshot, built once per snapshot (not per request): the policy
//! requests are decided with, the signing key that seals what must be encrypted, and the
//! security statement as a ready one-line header value.
//! Route hosts and address ranges are classified by the channel before the decision
//! (`request::classify`), so the policy itself is used as it is.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use hyper::header::HeaderValue;

use crate::policy::Policy;
use crate::service::snapshot::Snapshot;

pub struct View {
    /// The snapshot requests are decided and handled with.
    snapshot: Arc<Snapshot>,
    /// Its policy.
    pub policy: Arc<Policy>,
    /// The statement on one line, as a header value.
    pub statement: HeaderValue,
}

/// The current view, rebuilt when the gateway's policy snapshot changes.
#[derive(Default)]
pub struct Views {
    current: ArcSwapOption<View>,
}

impl Views {
    pub fn get(&self, snapshot: Arc<Snapshot>) -> Arc<View> {
        if let Some(view) = self.current.load_full() {
            if Arc::ptr_eq(&view.snapshot, &snapshot) {
                return view;
            }
        }
        let view = Arc::new(View {
            statement: statement_header(&snapshot.policy.statement),
            policy: snapshot.policy.clone(),
            snapshot,
        });
        self.current.store(Some(view.clone()));
        view
    }
}
impl View {
    /// Signs bundle manifests; without it `encrypt` is refused.
    pub fn signing_key(&self) -> Option<&ed25519_dalek::SigningKey> {
        self.snapshot.signing_key.as_deref()
    }
}

/// The statement with line breaks and runs of white space folded to single spaces, and
/// control characters dropped: a valid header value (non-ASCII kept as UTF-8 bytes).
pub fn statement_header(statement: &str) -> HeaderValue {
    let line = statement
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(|c: char| c.is_control(), "");
    HeaderValue::from_bytes(line.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""))
}
