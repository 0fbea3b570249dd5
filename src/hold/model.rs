//! What the hold store keeps about a held disclosure and an urgent release, as JSON files.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::{DecisionRecord, SourceRecord};

/// Where a hold is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldState {
    /// Waiting for an approver.
    Pending,
    /// Approved: the held copies go (or have gone) with their normal actions.
    Approved,
    /// Rejected by an approver: nothing of the held copies leaves.
    Rejected,
    /// Not decided within `approval.expire_after`: rejected automatically.
    Expired,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Pending => "pending",
            HoldState::Approved => "approved",
            HoldState::Rejected => "rejected",
            HoldState::Expired => "expired",
        }
    }
}

/// One held recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRecipient {
    pub address: String,
    /// Destination class (`secure`, `internet` ...).
    pub destination: String,
    /// Partner name from the register, if any.
    pub partner: Option<String>,
    /// The actions its copy was given (`tls`, `encrypt`, `statement`).
    pub actions: Vec<String>,
    /// The rules that fired for it.
    pub rules: Vec<String>,
    /// The role that must approve it.
    pub role: String,
    /// The disclosure kind (`one-off`, `isa`).
    pub disclosure: String,
}

/// Who decided a hold (or a review), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    /// The approver's identity (normalised mail address); `markgate` for an expiry.
    pub by: String,
    /// The approver's name as `approvers.toml` gives it.
    pub name: String,
    /// The approver's role at the time.
    pub role: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    /// Rejected without telling the sender.
    #[serde(default)]
    pub silent: bool,
}

/// A held disclosure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: String,
    pub state: HoldState,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    /// Envelope sender.
    pub sender: String,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    /// Size and SHA-256 of the message as received (links to its decision records).
    pub size: u64,
    pub sha256: String,
    /// The decision records of the held recipients, as written: every later step (approval,
    /// rejection, expiry) is recorded from these, so it is linked to them.
    pub records: Vec<DecisionRecord>,
    pub class: String,
    pub label: String,
    /// Where the marking was found.
    pub sources: Vec<SourceRecord>,
    pub recipients: Vec<HeldRecipient>,
    /// Recipients of the same message that went at once.
    #[serde(default)]
    pub released_now: Vec<String>,
    /// The highest role any held recipient needs.
    pub role: String,
    pub isa: Option<String>,
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    pub consent: Option<String>,
    pub policy_version: String,
    pub decided: Option<Decided>,
    /// What the gateway has done about it (each set once that step is durable).
    #[serde(default)]
    pub progress: Progress,
}

/// The gateway's steps for a hold, each done once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The approvers were sent their notification.
    pub notified: bool,
    /// The decision (approval, rejection, expiry) is in the record store.
    pub recorded: bool,
    /// Finished: the held copies were handed to the delivery queue (approved), or the
    /// sender was told and the copies destroyed (rejected, expired).
    pub finished: bool,
}

impl Hold {
    /// The recipients, as one line.
    pub fn recipient_list(&self) -> String {
        self.recipients
            .iter()
            .map(|r| r.address.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether an undecided hold is past its expiry at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.state == HoldState::Pending && now >= self.expires
    }
}

/// An approver's view of an urgent release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewDecision {
    Justified,
    NotJustified,
}

impl ReviewDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewDecision::Justified => "justified",
            ReviewDecision::NotJustified => "not-justified",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewDecision> {
        match s.trim() {
            "justified" => Some(ReviewDecision::Justified),
            "not-justified" => Some(ReviewDecision::NotJustified),
            _ => None,
        }
    }
}

/// Where an urgent release's review is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewState {
    Pending,
    Reviewed,
}

/// A review given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviewed {
    pub decision: ReviewDecision,
    #[serde(flatten)]
    pub by: Decided,
}

/// An urgent release (`X-Disclosure-Urgency: preserve-life`) that went at once without the
/// approval its rule asks for, and must be reviewed by an approver of that role afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub id: String,
    pub state: ReviewState,
    pub released: DateTime<Utc>,
    /// The review is overdue (an incident) after this.
    pub due: DateTime<Utc>,
    pub sender: String,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub sha256: String,
    /// The decision records of the urgent recipients, as written.
    pub records: Vec<DecisionRecord>,
    pub class: String,
    pub label: String,
    pub recipients: Vec<HeldRecipient>,
    pub role: String,
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    pub policy_version: String,
    pub reviewed: Option<Reviewed>,
    #[serde(default)]
    pub progress: ReviewProgress,
}

/// The gateway's steps for an urgent release, each done once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewProgress {
    /// The review given is in the record store.
    pub recorded: bool,
    /// The review was overdue, and that incident is in the record store.
    pub overdue_recorded: bool,
}

impl Review {
    /// Whether the review is overdue at `now` (not reviewed by its due time).
    pub fn is_overdue_at(&self, now: DateTime<Utc>) -> bool {
        match &self.reviewed {
            None => now >= self.due,
            Some(r) => r.by.at > self.due,
        }
    }
}
