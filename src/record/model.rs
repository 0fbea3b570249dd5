//! The decision record: one row per decision and recipient, carrying everything seed 001
//! §3.12 asks an officer to write down (what was shared and why, with whom, when, the legal
//! basis or ISA, consent), plus what the gateway itself knows (marking sources, rules fired,
//! the policy version) and a fingerprint of the content (size and SHA-256, never the content).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::decision::{builtin, Decision, Disclosure, Verdict};
use crate::policy::{Action, Policy};

/// The channel a decision was made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Smtp,
    Http,
    Bundle,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Smtp => "smtp",
            Channel::Http => "http",
            Channel::Bundle => "bundle",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "smtp" => Some(Channel::Smtp),
            "http" => Some(Channel::Http),
            "bundle" => Some(Channel::Bundle),
            _ => None,
        }
    }
}

/// Whether the subject consented to the sharing (`X-Consent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consent {
    Given,
    Withheld,
    NotRequired,
}

impl Consent {
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Given => "given",
            Consent::Withheld => "withheld",
            Consent::NotRequired => "not-required",
        }
    }

    /// Read an `X-Consent` value: `given`, `withheld` or `not-required` (case, surrounding
    /// space, and `_`/space for `-` tolerated). None for anything else.
    pub fn parse(s: &str) -> Option<Consent> {
        let v = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        match v.as_str() {
            "given" => Some(Consent::Given),
            "withheld" => Some(Consent::Withheld),
            "not-required" => Some(Consent::NotRequired),
            _ => None,
        }
    }
}

/// Why a record is a security incident, to be discussed at the ISA review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentKind {
    /// A blocked disclosure of material at or above `records.incident_class` (SECRET).
    ClassifiedBlocked,
    /// A disclosure citing an ISA whose review is overdue (rule `isa-overdue`).
    IsaOverdue,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::ClassifiedBlocked => "classified-blocked",
            IncidentKind::IsaOverdue => "isa-overdue",
        }
    }

    pub fn parse(s: &str) -> Option<IncidentKind> {
        match s {
            "classified-blocked" => Some(IncidentKind::ClassifiedBlocked),
            "isa-overdue" => Some(IncidentKind::IsaOverdue),
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
    /// `X-Disclosure-Purpose`.
    pub purpose: Option<String>,
    /// `X-Legal-Basis`.
    pub legal_basis: Option<String>,
    /// `X-Consent`.
    pub consent: Option<Consent>,
    /// Blocked recipients of material ranked at or above this are incidents. From
    /// [`incident_min_rank`]; None records no class incidents.
    pub incident_min_rank: Option<u32>,
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
            purpose: None,
            legal_basis: None,
            consent: None,
            incident_min_rank: None,
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

/// One decision for one recipient, as kept for six years.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    pub verdict: Verdict,
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
    /// One record per recipient of `decision`.
    pub fn from_decision(decision: &Decision, meta: &RecordMeta) -> Vec<DecisionRecord> {
        let time = truncate_micros(meta.time);
        let sources: Vec<SourceRecord> = decision
            .marking
            .sources
            .iter()
            .map(|s| SourceRecord {
                location: s.location.clone(),
                text: s.text.clone(),
                class: s.class.clone(),
            })
            .collect();
        decision
            .recipients
            .iter()
            .map(|r| {
                let classified = r.verdict == Verdict::Block
                    && meta
                        .incident_min_rank
                        .is_some_and(|min| decision.marking.rank >= min);
                let overdue = r.rules.iter().any(|id| id == builtin::ISA_OVERDUE);
                let incident_kind = if classified {
                    Some(IncidentKind::ClassifiedBlocked)
                } else if overdue {
                    Some(IncidentKind::IsaOverdue)
                } else {
                    None
                };
                DecisionRecord {
                    id: uuid::Uuid::new_v4().to_string(),
                    time,
                    channel: meta.channel,
                    sender: meta.sender.clone(),
                    recipient: r.address.clone(),
                    partner: r.partner.clone(),
                    partner_id: r.partner_id.clone(),
                    class: decision.marking.class.clone(),
                    label: decision.marking.label.clone(),
                    sources: sources.clone(),
                    defaulted: decision.marking.defaulted,
                    destination: r.destination.clone(),
                    verdict: r.verdict,
                    actions: r.actions.clone(),
                    rules: r.rules.clone(),
                    reason: r.reason.clone(),
                    disclosure: r.disclosure,
                    isa: decision.isa.clone(),
                    purpose: meta.purpose.clone(),
                    legal_basis: meta.legal_basis.clone(),
                    consent: meta.consent,
                    message_id: meta.message_id.clone(),
                    size: meta.size,
                    sha256: meta.sha256.clone(),
                    policy_version: decision.policy_version.clone(),
                    incident: incident_kind.is_some(),
                    incident_kind,
                }
            })
            .collect()
    }

    /// The stored form of `time`: RFC 3339, UTC, always six fractional digits, so text order
    /// is time order.
    pub fn time_text(&self) -> String {
        format_time(self.time)
    }

    /// Canonical serialisation (format 1) hashed into the chain: a JSON array of every field
    /// in a fixed order. Never change it; a new format gets a new tag.
    pub fn canonical(&self) -> Vec<u8> {
        let value = serde_json::json!([
            "markgate-record-1",
            self.id,
            self.time_text(),
            self.channel.as_str(),
            self.sender,
            self.recipient,
            self.partner,
            self.partner_id,
            self.class,
            self.label,
            self.sources
                .iter()
                .map(|s| [&s.location, &s.text, &s.class])
                .collect::<Vec<_>>(),
            self.defaulted,
            self.destination,
            self.verdict.as_str(),
            self.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            self.rules,
            self.reason,
            disclosure_str(self.disclosure),
            self.isa,
            self.purpose,
            self.legal_basis,
            self.consent.map(Consent::as_str),
            self.message_id,
            self.size,
            self.sha256,
            self.policy_version,
            self.incident,
            self.incident_kind.map(IncidentKind::as_str),
        ]);
        serde_json::to_vec(&value).expect("a JSON value always serialises")
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

pub fn parse_verdict(s: &str) -> Option<Verdict> {
    match s {
        "allow" => Some(Verdict::Allow),
        "block" => Some(Verdict::Block),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_values() {
        assert_eq!(Consent::parse(" Given "), Some(Consent::Given));
        assert_eq!(Consent::parse("NOT_REQUIRED"), Some(Consent::NotRequired));
        assert_eq!(Consent::parse("not required"), Some(Consent::NotRequired));
        assert_eq!(Consent::parse("maybe"), None);
    }

    #[test]
    fn time_text_is_fixed_width() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_time(t), "2026-01-02T03:04:05.000000Z");
    }
}
