//! CONNECT: a tunnel cannot be inspected, so it is refused (403, JSON) unless the host is
//! listed in `http.allow_connect_npm`, the client declares the marking in a marking header,
//! and the policy allows that marking to that destination with no handling at all (no tls,
//! encrypt or statement): NOT PROTECTIVELY MARKED in the shipped policy.

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::decision::{builtin, Decision};

use super::body::{empty, Body};
use super::error::{HttpError, PolicyRefusal};
use super::guard::{AddressGuard, ConnectError};
use super::request::Target;
use super::settings::Settings;

/// Refuse the tunnel unless the settings and the decision allow it.
pub fn check(target: &Target, settings: &Settings, decision: &Decision) -> Result<(), HttpError> {
    let r = decision.recipients.first();
    let destination = r.map(|r| r.destination.clone()).unwrap_or_default();
    let refuse = |reason: String| {
        HttpError::ConnectRefused(PolicyRefusal {
            rule: builtin::CONNECT_NOT_INSPECTABLE.into(),
            rules: Vec::new(),
            marking: decision.marking.label.clone(),
            destination: destination.clone(),
            reason,
        })
    };
    if !settings.connect_allowed(&target.host) {
        return Err(refuse(format!(
            "CONNECT tunnels cannot be inspected for protective markings; send plain requests through markgate as a proxy (http://{}/...) so the policy can be applied",
            target.host
        )));
    }
    let no_handling = decision.is_allowed() && r.is_some_and(|r| r.actions.is_empty());
    if decision.marking.defaulted || !no_handling {
        return Err(refuse(format!(
            "a CONNECT tunnel to {} is allowed only for traffic declared (X-Protective-Marking) with a marking that needs no handling there, not {}",
            target.host, decision.marking.label
        )));
    }
    Ok(())
}

/// Connect to the target through the address guard, then answer 200 and splice the two
/// streams.
pub async fn tunnel(
    target: &Target,
    request: Request<Incoming>,
    guard: &AddressGuard,
) -> Result<Response<Body>, HttpError> {
    let port = target.port.unwrap_or(443);
    let mut upstream = guard
        .connect(&target.host, port)
        .await
        .map_err(|e| match e {
            ConnectError::Refused(refused) => HttpError::AddressRefused(refused),
            e => HttpError::Upstream {
                upstream: format!("{}:{port}", target.host),
                reason: e.to_string(),
            },
        })?;
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
            Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
        }
    });
    Ok(Response::new(empty()))
}
