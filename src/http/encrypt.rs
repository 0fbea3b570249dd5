//! Encrypt phase: when the decision requires `encrypt`, the request body becomes an age
//! bundle for the partner's key (`Content-Type: application/age`, the original content type
//! and the security statement kept in the bundle's manifest).
//!
//! The bundle format belongs to `crate::bundle`; until it is available this phase refuses
//! (501, JSON) rather than forward anything in plaintext.

use crate::decision::RecipientDecision;

use super::error::{HttpError, PolicyRefusal};

/// Rule id named when a request that must be encrypted cannot be.
pub const ENCRYPT_UNAVAILABLE: &str = "encrypt-unavailable";

/// Refuse: sealing bundles is not available in this build.
pub fn unavailable(marking: &str, recipient: &RecipientDecision) -> HttpError {
    HttpError::EncryptUnavailable(PolicyRefusal {
        rule: ENCRYPT_UNAVAILABLE.into(),
        marking: marking.to_string(),
        destination: recipient.destination.clone(),
        reason: format!(
            "{marking} to {} must be encrypted, and this gateway cannot seal bundles yet; nothing was forwarded",
            recipient.domain.as_deref().unwrap_or("the destination")
        ),
    })
}
