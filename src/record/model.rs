//! The decision record: one row per decision and recipient, carrying everything seed 001
//! §3.12 asks an officer to write down (what was shared and why, with whom, when, the legal
//! basis or ISA, consent), plus what the gateway itself knows (marking sources, rules fired,
//! the policy version) and a fingerprint of the content (size and SHA-256, never the content).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::decision::{Disclosure, Verdict};
use crate::policy::{Action, Policy};

/// The channel a decision was made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Smtp,
    Http,
    Bundle,
    /// The record store's own administration (`audit prune`): not a decision to share.
    Audit,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Smtp => "smtp",
            Channel::Http => "http",
            Channel::Bundle => "bundle",
            Channel::Audit => "audit",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "smtp" => Some(Channel::Smtp),
            "http" => Some(Channel::Http),
            "bundle" => Some(Channel::Bundle),
            "audit" => Some(Channel::Audit),
            _ => None,
        }
    }
}

pub use crate::facts::Consent;

/// What a channel did for one recipient: a record states what happened, not only what the
/// decision said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordVerdict {
    /// Allowed, and the copy went on (forwarded, queued for delivery, sealed).
    Allow,
    /// Blocked by the decision, or refused by the channel after the decision allowed.
    Block,
    /// Allowed and handed on, and the hand-over failed: recorded after the `allow` record
    /// of the same request, it cancels that disclosure.
    Failed,
    /// Held for approval: the copy waits in the hold store (nothing left yet).
    Held,
    /// Sent at once on the urgent path (`X-Disclosure-Urgency: preserve-life`) where a rule
    /// asks for approval; to be reviewed.
    Urgent,
    /// A held recipient approved: its copy goes. Follows the `held` record.
    Approved,
    /// A held recipient rejected by an approver: nothing of its copy left.
    Rejected,
    /// A held recipient not decided in time: rejected automatically.
    Expired,
    /// An urgent release reviewed by an approver (justified or not).
    Reviewed,
    /// An urgent release not reviewed within `approval.review_within`: an incident.
    ReviewOverdue,
}

impl RecordVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordVerdict::Allow => "allow",
            RecordVerdict::Block => "block",
            RecordVerdict::Failed => "failed",
            RecordVerdict::Held => "held",
            RecordVerdict::Urgent => "urgent",
            RecordVerdict::Approved => "approved",
            RecordVerdict::Rejected => "rejected",
            RecordVerdict::Expired => "expired",
            RecordVerdict::Reviewed => "reviewed",
            RecordVerdict::ReviewOverdue => "review-overdue",
        }
    }

    /// Every verdict a record may carry.
    pub const ALL: [RecordVerdict; 10] = [
        RecordVerdict::Allow,
        RecordVerdict::Block,
        RecordVerdict::Failed,
        RecordVerdict::Held,
        RecordVerdict::Urgent,
        RecordVerdict::Approved,
        RecordVerdict::Rejected,
        RecordVerdict::Expired,
        RecordVerdict::Reviewed,
        RecordVerdict::ReviewOverdue,
    ];

    pub fn parse(s: &str) -> Option<RecordVerdict> {
        RecordVerdict::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The decision's verdict for a record of a decision (an urgent release was allowed);
    /// None for the records that follow the record of a decision: `failed`, and the steps of
    /// a hold or an urgent release (approved, rejected, expired, reviewed, review-overdue).
    pub fn decided(self) -> Option<Verdict> {
        match self {
            RecordVerdict::Allow | RecordVerdict::Urgent => Some(Verdict::Allow),
            RecordVerdict::Block => Some(Verdict::Block),
            RecordVerdict::Held => Some(Verdict::Held),
            RecordVerdict::Failed
            | RecordVerdict::Approved
            | RecordVerdict::Rejected
            | RecordVerdict::Expired
            | RecordVerdict::Reviewed
            | RecordVerdict::ReviewOverdue => None,
        }
    }
}

impl From<Verdict> for RecordVerdict {
    fn from(v: Verdict) -> RecordVerdict {
        match v {
            Verdict::Allow => RecordVerdict::Allow,
            Verdict::Block => RecordVerdict::Block,
            Verdict::Held => RecordVerdict::Held,
        }
    }
}

/// Prefix of a dry-run rule in a record's `rules`: it would have blocked, but did not.
pub const DRY_RUN_PREFIX: &str = "dry-run:";

/// Why a record is a security incident, to be discussed at the ISA review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentKind {
    /// A blocked disclosure of material at or above `records.incident_class` (SECRET).
    ClassifiedBlocked,
    /// A disclosure citing an ISA whose review is overdue (rule `isa-overdue`).
    IsaOverdue,
    /// An urgent release not reviewed within `approval.review_within`.
    UrgentReviewOverdue,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::ClassifiedBlocked => "classified-blocked",
            IncidentKind::IsaOverdue => "isa-overdue",
            IncidentKind::UrgentReviewOverdue => "urgent-review-overdue",
        }
    }

    pub fn parse(s: &str) -> Option<IncidentKind> {
        match s {
            "classified-blocked" => Some(IncidentKind::ClassifiedBlocked),
            "isa-overdue" => Some(IncidentKind::IsaOverdue),
            "urgent-review-overdue" => Some(IncidentKind::UrgentReviewOverdue),
            _ => None,
        }
    }
}

/// One place the marking was found (a copy of `marking::MarkingSource`, kept here so the
/// record's stored form does not change when the marking engine's types do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    #[serde(rename = "where")]
    pub location: String,
    pub text: String,
    pub class: String,
}

/// What the gateway knows about a message besides the decision.
#[derive(Debug, Clone)]
pub struct RecordMeta {
    pub channel: Channel,
    pub time: DateTime<Utc>,
    pub sender: String,
    pub message_id: Option<String>,
    /// Size of the content in bytes.
    pub size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// Blocked recipients of material ranked at or above this are incidents. From
    /// [`incident_min_rank`]; None records no class incidents.
    pub incident_min_rank: Option<u32>,
    /// The id under which held recipients wait (and urgent ones are reviewed), if any.
    pub hold_id: Option<String>,
}

impl RecordMeta {
    /// Meta for `content` received now on `channel`; the other fields are empty.
    pub fn new(channel: Channel, sender: &str, content: &[u8]) -> RecordMeta {
        use sha2::Digest;
        RecordMeta {
            channel,
            time: Utc::now(),
            sender: sender.to_string(),
            message_id: None,
            size: content.len() as u64,
            sha256: hex::encode(sha2::Sha256::digest(content)),
            incident_min_rank: None,
            hold_id: None,
        }
    }

    /// Meta for a parsed mail message received now: size and SHA-256 of the raw bytes and
    /// its `Message-ID` (unfolded).
    pub fn for_message(
        channel: Channel,
        sender: &str,
        message: &crate::message::ParsedMessage<'_>,
    ) -> RecordMeta {
        RecordMeta {
            message_id: message
                .root
                .header_raw("Message-ID")
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|v| !v.is_empty()),
            ..RecordMeta::new(channel, sender, message.raw)
        }
    }
}

/// The rank of `class` in `policy` (records.incident_class): blocked disclosures at or above
/// it are incidents. None when the policy has no such class.
pub fn incident_min_rank(policy: &Policy, class: &str) -> Option<u32> {
    policy
        .markings
        .find(class)
        .map(|i| policy.markings.class(i).rank)
}

/// A fresh random record id (UUID v4) from the thread's CSPRNG, which is seeded from the
/// operating system once rather than asked for every record (`Uuid::new_v4` makes one
/// `getrandom` system call per id).
pub(crate) fn record_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// One decision for one recipient, as kept for six years.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Unique id (UUID v4).
    pub id: String,
    /// When the decision was made, UTC, microsecond precision.
    pub time: DateTime<Utc>,
    pub channel: Channel,
    pub sender: String,
    pub recipient: String,
    /// Partner name, when the recipient domain belongs to a registered partner.
    pub partner: Option<String>,
    pub partner_id: Option<String>,
    /// Canonical marking class.
    pub class: String,
    /// Class with descriptors.
    pub label: String,
    /// Every place a marking was found.
    pub sources: Vec<SourceRecord>,
    /// True when no marking was found and the policy's unmarked class was assumed.
    pub defaulted: bool,
    /// Destination class (`internal`, `secure`, `internet`, `invalid` ...).
    pub destination: String,
    /// What the channel did for this recipient.
    pub verdict: RecordVerdict,
    pub actions: Vec<Action>,
    /// Ids of the rules that fired.
    pub rules: Vec<String>,
    pub reason: String,
    pub disclosure: Disclosure,
    /// The ISA the sender cited, if any (whether or not it was accepted).
    pub isa: Option<String>,
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    pub consent: Option<Consent>,
    pub message_id: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub policy_version: String,
    pub incident: bool,
    pub incident_kind: Option<IncidentKind>,
}

impl DecisionRecord {
    /// The stored form of `time`: RFC 3339, UTC, always six fractional digits, so text order
    /// is time order.
    pub fn time_text(&self) -> String {
        format_time(self.time)
    }

    /// Canonical serialisation (format 1) hashed into the chain: a JSON array of every field
    /// in a fixed order. Never change it; a new format gets a new tag.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(&Canonical(self)).expect("a record always serialises")
    }
}

/// The canonical form, serialised straight from the record without building a JSON tree.
struct Canonical<'a>(&'a DecisionRecord);

impl Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        struct Actions<'a>(&'a [Action]);
        impl Serialize for Actions<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|a| a.as_str()))
            }
        }
        struct Sources<'a>(&'a [SourceRecord]);
        impl Serialize for Sources<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|x| [&x.location, &x.text, &x.class]))
            }
        }
        let r = self.0;
        let mut seq = serializer.serialize_seq(Some(28))?;
        seq.serialize_element("markgate-record-1")?;
        seq.serialize_element(&r.id)?;
        seq.serialize_element(&r.time_text())?;
        seq.serialize_element(r.channel.as_str())?;
        seq.serialize_element(&r.sender)?;
        seq.serialize_element(&r.recipient)?;
        seq.serialize_element(&r.partner)?;
        seq.serialize_element(&r.partner_id)?;
        seq.serialize_element(&r.class)?;
        seq.serialize_element(&r.label)?;
        seq.serialize_element(&Sources(&r.sources))?;
        seq.serialize_element(&r.defaulted)?;
        seq.serialize_element(&r.destination)?;
        seq.serialize_element(r.verdict.as_str())?;
        seq.serialize_element(&Actions(&r.actions))?;
        seq.serialize_element(&r.rules)?;
        seq.serialize_element(&r.reason)?;
        seq.serialize_element(disclosure_str(r.disclosure))?;
        seq.serialize_element(&r.isa)?;
        seq.serialize_element(&r.purpose)?;
        seq.serialize_element(&r.legal_basis)?;
        seq.serialize_element(&r.consent.map(Consent::as_str))?;
        seq.serialize_element(&r.message_id)?;
        seq.serialize_element(&r.size)?;
        seq.serialize_element(&r.sha256)?;
        seq.serialize_element(&r.policy_version)?;
        seq.serialize_element(&r.incident)?;
        seq.serialize_element(&r.incident_kind.map(IncidentKind::as_str))?;
        seq.end()
    }
}

/// Drop sub-microsecond precision, which the stored form does not keep.
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// RFC 3339, UTC, six fractional digits (`2026-11-25T13:10:41.123456Z`).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn disclosure_str(d: Disclosure) -> &'static str {
    match d {
        Disclosure::Internal => "internal",
        Disclosure::Isa => "isa",
        Disclosure::OneOff => "one-off",
    }
}

pub fn parse_disclosure(s: &str) -> Option<Disclosure> {
    match s {
        "internal" => Some(Disclosure::Internal),
        "isa" => Some(Disclosure::Isa),
        "one-off" => Some(Disclosure::OneOff),
        _ => None,
    }
}

pub fn parse_verdict(s: &str) -> Option<RecordVerdict> {
    RecordVerdict::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_from_a_message() {
        let raw = b"From: a@b\r\nMessage-ID: <m1@b>\r\nSubject: x\r\n\r\nbody\r\n";
        let parsed = crate::message::parse(raw).unwrap();
        let meta = RecordMeta::for_message(Channel::Smtp, "a@b", &parsed);
        assert_eq!(meta.message_id.as_deref(), Some("<m1@b>"));
        assert_eq!(meta.size, raw.len() as u64);
        assert_eq!(meta.sha256.len(), 64);
    }

    #[test]
    fn record_ids_are_distinct_version_4_uuids() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| record_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids.iter().take(10) {
            let uuid = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(uuid.get_version_num(), 4, "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
    }

    #[test]
    fn canonical_form_is_a_fixed_array() {
        let r = DecisionRecord {
            id: "id-1".into(),
            time: DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
            channel: Channel::Http,
            sender: "a@b".into(),
            recipient: "c@d".into(),
            partner: None,
            partner_id: None,
            class: "OFFICIAL".into(),
            label: "OFFICIAL".into(),
            sources: vec![SourceRecord {
                location: "subject".into(),
                text: "OFFICIAL".into(),
                class: "OFFICIAL".into(),
            }],
            defaulted: false,
            destination: "internet".into(),
            verdict: RecordVerdict::Allow,
            actions: vec![Action::Tls],
            rules: vec!["official-tls".into()],
            reason: "ok".into(),
            disclosure: Disclosure::OneOff,
            isa: None,
            purpose: Some("p".into()),
            legal_basis: None,
            consent: Some(Consent::Given),
            message_id: None,
            size: 3,
            sha256: "00".into(),
            policy_version: "v".into(),
            incident: false,
            incident_kind: None,
        };
        assert_eq!(
            String::from_utf8(r.canonical()).unwrap(),
            r#"["markgate-record-1","id-1","2026-01-02T03:04:05.000000Z","http","a@b","c@d",null,null,"OFFICIAL","OFFICIAL",[["subject","OFFICIAL","OFFICIAL"]],false,"internet","allow",["tls"],["official-tls"],"ok","one-off",null,"p",null,"given",null,3,"00","v",false,null]"#
        );
    }

    #[test]
    fn time_text_is_fixed_width() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_time(t), "2026-01-02T03:04:05.000000Z");
    }
}
