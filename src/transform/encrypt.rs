//! The `encrypt` action: the whole original message, byte for byte, goes into an
//! age-encrypted bundle (`message.eml`, message/rfc822) sealed to the partner's registered
//! keys and signed by the force, attached to a plain cover message whose subject carries only
//! the marking and whose body says how to open it with the stock `age` tool.

use base64::Engine;
use ed25519_dalek::SigningKey;

use crate::bundle::{self, BundleFile, Sender};
use crate::decision::{Decision, RecipientDecision};
use crate::policy::Policy;

use super::headers;
use super::TransformError;

/// The cover message for `recipients` (all of one partner), with the sealed bundle attached.
pub fn cover_message(
    raw: &[u8],
    decision: &Decision,
    recipients: &[&RecipientDecision],
    policy: &Policy,
    key: &SigningKey,
    today: chrono::NaiveDate,
    id: &str,
) -> Result<Vec<u8>, TransformError> {
    let first = recipients.first().ok_or(TransformError::NoHeaders)?;
    let (header, _) = headers::split(raw);
    let from_field = headers::fields(header)
        .into_iter()
        .find(|f| headers::name(f) == "from")
        .map(|f| String::from_utf8_lossy(f).trim_end().to_string())
        .unwrap_or_else(|| "From: <postmaster@invalid>".into());
    let person = from_field
        .split_once(':')
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let sender = Sender::of(policy, None, person);
    let opts = bundle::options_for(policy, decision, first, &sender, today)
        .map_err(|e| TransformError::Encrypt(e.to_string()))?;
    let sealed = bundle::seal_in_memory(
        &opts,
        &[BundleFile {
            name: "message.eml".into(),
            media_type: "message/rfc822".into(),
            data: raw,
        }],
        key,
    )
    .map_err(|e| TransformError::Encrypt(e.to_string()))?;

    let label = headers::sanitise(&decision.marking.label);
    let partner = first
        .partner
        .clone()
        .unwrap_or_else(|| "the recipient".into());
    let file = format!("{id}.age");
    let boundary = format!("=_markgate_enc_{}", uuid::Uuid::new_v4().simple());
    let to = recipients
        .iter()
        .map(|r| format!("<{}>", r.address))
        .collect::<Vec<_>>()
        .join(", ");
    let instructions = format!(
        "This message is marked {label}. Its content was encrypted for {partner} by the\r\n\
         {org} secure mail gateway and is attached as {file}.\r\n\
         \r\n\
         To open it, save the attachment and run, with your organisation's age key:\r\n\
         \r\n\
         \x20   age -d -i YOUR-KEY-FILE {file} | tar -x\r\n\
         \r\n\
         This gives message.eml (the original message: open it with your mail program),\r\n\
         MANIFEST.json and MANIFEST.sig (what was sent and on what terms, signed by\r\n\
         {org}){statement}.\r\n\
         \r\n\
         Handle the content as {label} and destroy it by {destroy_by}.\r\n",
        org = headers::sanitise(&sender.organisation),
        statement = if opts.statement.is_some() {
            ", and SECURITY-STATEMENT.txt, the terms of this disclosure"
        } else {
            ""
        },
        destroy_by = opts.destroy_by,
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(&sealed);
    let mut out = Vec::with_capacity(encoded.len() + 4096);
    out.extend_from_slice(
        format!(
            "{from_field}\r\n\
             To: {to}\r\n\
             Subject: [{label}] Encrypted message from {org}\r\n\
             Date: {date}\r\n\
             Message-ID: <{id}.{uniq}@markgate>\r\n\
             X-Protective-Marking: {label}\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\
             \r\n\
             --{boundary}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 7bit\r\n\
             \r\n\
             {instructions}\r\n\
             --{boundary}\r\n\
             Content-Type: application/octet-stream; name=\"{file}\"\r\n\
             Content-Disposition: attachment; filename=\"{file}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             \r\n",
            org = headers::sanitise(&sender.organisation),
            date = chrono::Utc::now().to_rfc2822(),
            uniq = uuid::Uuid::new_v4().simple(),
        )
        .as_bytes(),
    );
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;
    use crate::bundle::{OpenOptions, UNKNOWN_ORGANISATION};

    /// With no internal partner in the register, a bundle by mail names the same fallback
    /// organisation as HTTP and `bundle seal` do.
    #[test]
    fn a_bundle_by_mail_names_the_one_fallback_organisation() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut policy = Policy::load(&root.join("policy")).unwrap();
        let own = crate::destination::own_organisation(&policy)
            .unwrap()
            .id
            .clone();
        policy.partners.retain(|p| p.id != own);
        let raw = b"From: PC Smith <pc@westmidlands.pnn.police.uk>\r\nSubject: [OFFICIAL-SENSITIVE] referral\r\n\r\nbody\r\n";
        let parsed = crate::message::parse(raw).unwrap();
        let today = chrono::Utc::now().date_naive();
        let to = ["mash@birmingham.gov.uk".to_string()];
        let facts = crate::facts::from_message(
            &parsed,
            "pc@westmidlands.pnn.police.uk",
            &to,
            &policy,
            today,
        );
        let decision = crate::decision::decide(&facts, &policy);
        assert!(decision.is_allowed(), "{decision:?}");
        let key = SigningKey::from_bytes(&[7; 32]);
        let recipients: Vec<&RecipientDecision> = decision.recipients.iter().collect();
        let cover =
            cover_message(raw, &decision, &recipients, &policy, &key, today, "id1").unwrap();
        let cover = String::from_utf8(cover).unwrap();
        let (_, attachment) = cover
            .split_once("Content-Transfer-Encoding: base64\r\n\r\n")
            .unwrap();
        let encoded: String = attachment
            .lines()
            .take_while(|l| !l.starts_with("--"))
            .collect();
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let identities = crate::bundle::age_io::load_identities(
            &root.join("tests/fixtures/keys/birmingham.key"),
        )
        .unwrap();
        let opts = OpenOptions {
            identities: &identities,
            verifying_key: Some(&key.verifying_key()),
            allow_unsigned: false,
            max_entry_size: 1 << 20,
        };
        let (opened, _) = crate::bundle::open_in_memory(&sealed, &opts).unwrap();
        let manifest = opened.manifest.unwrap();
        assert_eq!(manifest.sender.organisation, UNKNOWN_ORGANISATION);
        assert_eq!(
            manifest.sender.person,
            "PC Smith <pc@westmidlands.pnn.police.uk>"
        );
    }
}
