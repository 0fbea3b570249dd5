//! The HTTP view of a policy snapshot, built once per snapshot (not per request): the policy
//! requests are decided with, and the security statement as a ready one-line header value.
//! Route hosts and address ranges are classified by the channel before the decision
//! (`request::classify`), so the policy itself is used as it is.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use hyper::header::HeaderValue;

use crate::policy::Policy;

pub struct View {
    /// The snapshot requests are decided with.
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
    pub fn get(&self, policy: Arc<Policy>) -> Arc<View> {
        if let Some(view) = self.current.load_full() {
            if Arc::ptr_eq(&view.policy, &policy) {
                return view;
            }
        }
        let view = Arc::new(View {
            statement: statement_header(&policy.statement),
            policy,
        });
        self.current.store(Some(view.clone()));
        view
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
