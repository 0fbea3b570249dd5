//! Encrypt phase: when the decision requires `encrypt`, the request body becomes a bundle
//! (`crate::bundle`: age for the partner's X25519 keys, signed manifest) and goes upstream
//! as `Content-Type: application/age`. The original content type is kept in the manifest
//! (the sealed file's media type), and the security statement inside the bundle for one-off
//! disclosures. Sealing needs the whole body: it is read into memory up to
//! `http.encrypt_max_bytes` (413 beyond), and sealed off the request thread.

use chrono::NaiveDate;
use ed25519_dalek::SigningKey;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};

use crate::bundle::{self, BundleFile, Sender};
use crate::decision::{builtin, Decision, RecipientDecision};
use crate::policy::Policy;

use super::body::{self, Peeked};
use super::error::{HttpError, PolicyRefusal};

/// Everything sealing needs besides the body.
pub struct SealRequest<'a> {
    pub policy: &'a Policy,
    pub decision: &'a Decision,
    pub recipient: &'a RecipientDecision,
    pub sender: &'a str,
    pub today: NaiveDate,
}

/// Refuse: this request must be encrypted and cannot be (no signing key, sealing failed).
pub fn refuse(marking: &str, recipient: &RecipientDecision, why: &str) -> HttpError {
    HttpError::EncryptUnavailable(PolicyRefusal {
        rule: builtin::ENCRYPT_UNAVAILABLE.into(),
        rules: Vec::new(),
        marking: marking.to_string(),
        destination: recipient.destination.clone(),
        reason: format!(
            "{marking} to {} must be encrypted, and it could not be: {why}; nothing was forwarded",
            recipient.domain.as_deref().unwrap_or("the destination")
        ),
    })
}

/// Seal the body; rewrite the content headers for the bundle. Returns the bundle bytes.
pub async fn seal(
    req: SealRequest<'_>,
    headers: &mut HeaderMap,
    peeked: Peeked,
    key: Option<&SigningKey>,
    max: u64,
) -> Result<Vec<u8>, HttpError> {
    let label = &req.decision.marking.label;
    let Some(key) = key.cloned() else {
        return Err(refuse(
            label,
            req.recipient,
            "the gateway has no bundle signing key (tls.signing_key)",
        ));
    };
    let sender = Sender::of(req.policy, None, req.sender.to_string());
    let opts = bundle::options_for(req.policy, req.decision, req.recipient, &sender, req.today)
        .map_err(|e| refuse(label, req.recipient, &e.to_string()))?;
    let media_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let data = body::collect(peeked, max).await?;
    let sealed = tokio::task::spawn_blocking(move || {
        let files = [BundleFile {
            name: "request-body".into(),
            media_type,
            data: &data,
        }];
        bundle::seal_in_memory(&opts, &files, &key)
    })
    .await
    .map_err(|e| refuse(label, req.recipient, &e.to_string()))?
    .map_err(|e| refuse(label, req.recipient, &e.to_string()))?;
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/age"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(sealed.len()));
    headers.remove(hyper::header::CONTENT_ENCODING);
    Ok(sealed)
}
