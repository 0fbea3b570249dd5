//! The ISA register as reviewers see it: every agreement with its partners, purpose,
//! ceiling, next review and status on a given day (seed 000 §9: review six months after the
//! start, then yearly; a missed review withdraws the agreement).

use chrono::NaiveDate;
use serde::Serialize;

use crate::policy::{IsaStatus, Policy};

/// An ISA whose review is due soon or overdue: what the gateway warns about at start and
/// exposes as a metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IsaDue {
    pub id: String,
    pub status: IsaStatus,
    pub next_review: NaiveDate,
    /// Days from today to the review date; negative when overdue.
    pub days_left: i64,
}

/// The ISAs that are overdue for review or due within `within_days` of `today`, earliest
/// review first.
pub fn isa_due_report(policy: &Policy, today: NaiveDate, within_days: i64) -> Vec<IsaDue> {
    let mut due: Vec<IsaDue> = policy
        .isas
        .iter()
        .filter_map(|isa| {
            let status = isa.status_on(today, within_days);
            matches!(status, IsaStatus::DueSoon | IsaStatus::Overdue).then(|| IsaDue {
                id: isa.id.clone(),
                status,
                next_review: isa.next_review,
                days_left: (isa.next_review - today).num_days(),
            })
        })
        .collect();
    due.sort_by(|a, b| a.next_review.cmp(&b.next_review).then(a.id.cmp(&b.id)));
    due
}

/// One line of the register.
#[derive(Debug, Clone, Serialize)]
pub struct IsaEntry {
    pub id: String,
    /// Partner names (ids when a partner is not in the register).
    pub partners: Vec<String>,
    pub purpose: String,
    pub legal_basis: String,
    pub ceiling: String,
    pub start: NaiveDate,
    pub last_review: Option<NaiveDate>,
    pub next_review: NaiveDate,
    pub end: Option<NaiveDate>,
    pub status: IsaStatus,
}

/// Every ISA of `policy` with its status on `today`.
pub fn isa_register(policy: &Policy, today: NaiveDate, due_within_days: i64) -> Vec<IsaEntry> {
    policy
        .isas
        .iter()
        .map(|isa| IsaEntry {
            id: isa.id.clone(),
            partners: partner_names(policy, &isa.partners),
            purpose: isa.purpose.clone(),
            legal_basis: isa.legal_basis.clone(),
            ceiling: isa.ceiling.clone(),
            start: isa.start,
            last_review: isa.last_review,
            next_review: isa.next_review,
            end: isa.end,
            status: isa.status_on(today, due_within_days),
        })
        .collect()
}

/// Partner names for ids, keeping an id that is not in the register.
pub fn partner_names(policy: &Policy, ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            policy
                .partner(id)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| id.clone())
        })
        .collect()
}

/// How a status reads in the register: `live`, `due soon`, `overdue`, `not started`, `ended`.
pub fn status_label(status: IsaStatus) -> &'static str {
    match status {
        IsaStatus::NotStarted => "not started",
        IsaStatus::Live => "live",
        IsaStatus::DueSoon => "due soon",
        IsaStatus::Overdue => "overdue",
        IsaStatus::Ended => "ended",
    }
}
