//! The running gateway's shared state: configuration, the current policy snapshot (swapped
//! atomically on reload; each message is decided by the one snapshot it loaded), and the
//! keys. One `Arc<Gateway>` is handed to every listener.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::policy::Policy;

pub struct Gateway {
    pub config: Config,
    policy: ArcSwap<Policy>,
}

impl Gateway {
    pub fn new(config: Config, policy: Policy) -> Self {
        Self {
            config,
            policy: ArcSwap::from_pointee(policy),
        }
    }

    /// The policy snapshot to decide one message or request with.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Swap in a new, already validated policy.
    pub fn replace_policy(&self, policy: Policy) {
        self.policy.store(Arc::new(policy));
    }
}
