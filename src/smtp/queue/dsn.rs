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
            status_code(reason),
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

/// The RFC 3463 status for a failed recipient: the next hop's own enhanced status code when
/// its reply carried one (`550 5.1.1 <x>: User unknown` gives 5.1.1), else 5.0.0 for a
/// permanent failure (a 5xx reply) and 4.4.7 (delivery time expired) for one that never
/// succeeded.
fn status_code(reason: &str) -> &str {
    // The reply follows "said:"; before it is the next hop's address, whose digits
    // (10.5.1.1:25) must not be taken for a code.
    let reply = reason.split_once(" said: ").map_or(reason, |(_, r)| r);
    let code = reply
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .map(|w| w.trim_end_matches([':', ',', ';']))
        .find(|w| is_enhanced_code(w));
    let permanent = || {
        reply.contains("permanent")
            || reply
                .split(|c: char| !c.is_ascii_digit())
                .any(|n| n.len() == 3 && n.starts_with('5'))
    };
    match code {
        Some(code) => code,
        None if permanent() => "5.0.0",
        None => "4.4.7",
    }
}

/// `5.1.1`: class 4 or 5, subject and detail of up to three digits.
fn is_enhanced_code(word: &str) -> bool {
    let mut parts = word.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    matches!(class, "4" | "5")
        && [subject, detail]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::status_code;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Whatever a next hop answers, the bounce says a well-formed RFC 3463 status of
        /// class 4 or 5; and an enhanced code in the answer is the one kept.
        #[test]
        fn every_answer_gives_a_well_formed_status(
            host in "[0-9.]{0,15}(:[0-9]{1,5})?",
            text in "\\PC{0,60}",
            class in 4u8..=5,
            subject in 0u16..1000,
            detail in 0u16..1000,
        ) {
            let reason = format!("{host} said: {text}");
            let status = status_code(&reason);
            let parts: Vec<&str> = status.split('.').collect();
            prop_assert_eq!(parts.len(), 3, "{}", status);
            prop_assert!(parts[0] == "4" || parts[0] == "5");
            prop_assert!(parts[1..].iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit())));
            let code = format!("{class}.{subject}.{detail}");
            let answer = format!("{host} said: permanent error (550): {code} <x@y>: no");
            prop_assert_eq!(status_code(&answer), code.as_str());
        }
    }

    #[test]
    fn the_next_hops_enhanced_code_is_kept() {
        assert_eq!(
            status_code("127.0.0.1:2526 said: permanent error (550): 5.1.1 <nobody@suffolk.pnn.police.uk>: Recipient address rejected: User unknown"),
            "5.1.1"
        );
        assert_eq!(
            status_code("10.5.1.1:25 said: permanent error (554): transaction failed"),
            "5.0.0"
        );
        assert_eq!(status_code("recipient <a@b>: 5.7.1 relay denied"), "5.7.1");
        assert_eq!(
            status_code("10.5.1.1:25: connection refused (gave up after 7 attempts)"),
            "4.4.7"
        );
        assert_eq!(status_code("x said: 550 5.1.10 no"), "5.1.10");
        assert_eq!(status_code("x said: 550 6.1.1 no"), "5.0.0");
    }
}
