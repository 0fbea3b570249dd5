//! Delivery status notifications (RFC 3464): the bounce a sender gets when a copy could not
//! be delivered. It carries the failed recipients and reasons and the original *headers*
//! only (never the body: a bounce must not become a second disclosure channel).

use super::spool::{Copy, Envelope, Spooled};
use crate::transform::headers;

/// One recipient that could not be delivered: copy index, recipient, reason.
pub type Failed = (usize, String, String);

/// The bounce for the `failed` recipients of `original`, addressed to its sender (whose
/// destination class is `destination`).
pub fn build(
    hostname: &str,
    destination: String,
    original: &Envelope,
    spooled: &Spooled,
    failed: &[Failed],
) -> (Envelope, Vec<u8>) {
    let id = format!(
        "{}-dsn{}",
        original.id,
        failed.first().map(|f| f.0).unwrap_or(0)
    );
    let boundary = format!("=_markgate_dsn_{}", uuid::Uuid::new_v4().simple());
    let date = chrono::Utc::now().to_rfc2822();
    let first_copy = failed.first().map(|f| f.0).unwrap_or(0);
    let (orig_headers, _) = headers::split(spooled.copy_bytes(first_copy));

    let mut human = String::new();
    let mut status = format!(
        "Reporting-MTA: dns; {hostname}\r\nX-Markgate-Queue-ID: {}\r\nArrival-Date: {}\r\n",
        original.id,
        chrono::DateTime::from_timestamp(original.received, 0)
            .map(|d| d.to_rfc2822())
            .unwrap_or_default()
    );
    for (_, rcpt, reason) in failed {
        human.push_str(&format!("<{rcpt}>: {}\r\n", headers::sanitise(reason)));
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {}\r\n",
            if reason.contains(" 5") || reason.starts_with('5') { "5.0.0" } else { "4.4.7" },
            headers::sanitise(reason)
        ));
    }
    let body = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{sender}>\r\n\
         Subject: [{marking}] Undelivered mail returned to sender\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Your message (queue id {orig_id}, marked {marking}) could not be delivered to:\r\n\
         \r\n\
         {human}\r\n\
         The message headers are attached; the content was not returned.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         {status}\r\n\
         --{boundary}\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n",
        sender = original.sender,
        marking = headers::sanitise(&original.marking),
        orig_id = original.id,
    );
    let mut bytes = body.into_bytes();
    bytes.extend_from_slice(orig_headers);
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());

    let tls = failed.iter().any(|(i, _, _)| original.copies[*i].tls);
    let envelope = Envelope {
        id,
        received: chrono::Utc::now().timestamp(),
        sender: String::new(),
        client_ip: "127.0.0.1".into(),
        helo: hostname.into(),
        marking: original.marking.clone(),
        policy_version: original.policy_version.clone(),
        is_dsn: true,
        copies: vec![Copy {
            recipients: vec![original.sender.clone()],
            destination,
            actions: if tls { vec!["tls".into()] } else { vec![] },
            tls,
            requiretls: false,
            offset: 0,
            len: bytes.len() as u64,
        }],
        body_len: bytes.len() as u64,
    };
    (envelope, bytes)
}
