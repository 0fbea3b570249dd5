//! The HTTP view of a policy snapshot, built once per snapshot (not per request): the policy
//! with the partner routes' hosts added to its destination classes and partner register, so
//! the pure decision engine classifies route hosts as configured, and the security statement
//! as a ready one-line header value.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use hyper::header::HeaderValue;

use crate::destination::{classify_domain, Destination};
use crate::policy::Policy;

use super::settings::Settings;

pub struct View {
    /// The snapshot this view was built from.
    source: Arc<Policy>,
    /// The snapshot with route hosts added: what requests are decided with.
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
    pub fn get(&self, policy: Arc<Policy>, settings: &Settings) -> Arc<View> {
        if let Some(view) = self.current.load_full() {
            if Arc::ptr_eq(&view.source, &policy) {
                return view;
            }
        }
        let view = Arc::new(View::build(policy, settings));
        self.current.store(Some(view.clone()));
        view
    }
}

impl View {
    fn build(source: Arc<Policy>, settings: &Settings) -> View {
        let mut policy = (*source).clone();
        for route in &settings.routes {
            add_host(&mut policy, &route.host, &route.destination, &route.partner);
        }
        View {
            statement: statement_header(&source.statement),
            policy: Arc::new(policy),
            source,
        }
    }

    /// The policy to decide a request to `dest` with: the view's policy, or for an IP
    /// literal classified by an address range, a copy that knows that one address.
    pub fn policy_for(&self, dest: &Destination) -> std::borrow::Cow<'_, Policy> {
        let seen = classify_domain(&dest.domain, &self.policy);
        if seen.class == dest.class && seen.partner == dest.partner {
            return std::borrow::Cow::Borrowed(&self.policy);
        }
        let mut policy = (*self.policy).clone();
        add_host(
            &mut policy,
            &dest.domain,
            &Some(dest.class.clone()),
            &dest.partner,
        );
        std::borrow::Cow::Owned(policy)
    }
}

fn add_host(policy: &mut Policy, host: &str, class: &Option<String>, partner: &Option<String>) {
    if let Some(class) = class {
        policy
            .destinations
            .suffixes
            .push((host.to_string(), class.clone()));
    }
    if let Some(id) = partner {
        if let Some(p) = policy.partners.iter_mut().find(|p| &p.id == id) {
            p.domains.push(host.to_string());
        }
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
