//! The ISA review report (seed 000 §9.3): for one agreement and a period, the sharing that
//! happened with its partners, under the agreement and one-off, allowed and blocked, by
//! class and month, with consent and the security incidents to discuss.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate, NaiveTime};
use serde::Serialize;

use super::model::RecordVerdict;
use super::model::{disclosure_str, format_time};
use super::register::{partner_names, status_label};
use super::store::{Filter, Store};
use super::RecordError;
use crate::policy::{IsaStatus, Policy};

/// Disclosed, blocked and failed counts. Only what left counts as disclosed: a `failed`
/// record (allowed and handed on, then the hand-over failed) takes its disclosure back and
/// counts as failed; a channel's refusal after an allowing decision is recorded blocked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub disclosed: u64,
    pub blocked: u64,
    pub failed: u64,
    /// Held for approval (each held recipient once, whatever became of it).
    pub held: u64,
    /// Held, then approved: disclosed.
    pub approved: u64,
    /// Held, then rejected by an approver.
    pub rejected: u64,
    /// Held, and not decided in time (rejected automatically).
    pub expired: u64,
    /// Sent at once on the urgent path (disclosed), to be reviewed.
    pub urgent: u64,
}

impl Counts {
    fn add(&mut self, verdict: RecordVerdict) {
        match verdict {
            RecordVerdict::Allow => self.disclosed += 1,
            RecordVerdict::Block => self.blocked += 1,
            RecordVerdict::Failed => {
                self.disclosed = self.disclosed.saturating_sub(1);
                self.failed += 1;
            }
            RecordVerdict::Held => self.held += 1,
            RecordVerdict::Approved => {
                self.approved += 1;
                self.disclosed += 1;
            }
            RecordVerdict::Rejected => self.rejected += 1,
            RecordVerdict::Expired => self.expired += 1,
            RecordVerdict::Urgent => {
                self.urgent += 1;
                self.disclosed += 1;
            }
            RecordVerdict::Reviewed | RecordVerdict::ReviewOverdue => {}
        }
    }
}

/// One month and class.
#[derive(Debug, Clone, Serialize)]
pub struct MonthClass {
    /// `YYYY-MM`.
    pub month: String,
    pub class: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// A security incident in the period.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentLine {
    pub seq: i64,
    pub id: String,
    pub time: String,
    pub kind: String,
    pub sender: String,
    pub recipient: String,
    pub partner: Option<String>,
    pub label: String,
    pub rules: Vec<String>,
    pub reason: String,
}

/// What an ISA review needs from the records.
#[derive(Debug, Clone, Serialize)]
pub struct IsaReport {
    pub isa: String,
    /// From the policy, when the ISA is in it.
    pub partners: Vec<String>,
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    pub ceiling: Option<String>,
    pub next_review: Option<NaiveDate>,
    pub status: Option<IsaStatus>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Records in scope: citing the ISA, or to one of its partners.
    pub records: u64,
    pub total: Counts,
    /// By kind of disclosure: `isa`, `one-off`, `internal`.
    pub by_disclosure: BTreeMap<String, Counts>,
    pub by_class: BTreeMap<String, Counts>,
    pub by_month: Vec<MonthClass>,
    /// `given`, `withheld`, `not-required`, `not stated`.
    pub consent: BTreeMap<String, u64>,
    /// Disclosures (allowed) that stated no purpose / no legal basis.
    pub disclosed_without_purpose: u64,
    pub disclosed_without_legal_basis: u64,
    pub incidents: Vec<IncidentLine>,
}

/// Build the report for `isa` over the days `from` to `to` inclusive. Records count when they
/// cite the ISA or go to one of the partners it names in `policy`.
pub fn isa_report(
    store: &Store,
    policy: Option<&Policy>,
    isa: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<IsaReport, RecordError> {
    let entry = policy.and_then(|p| p.isa(isa));
    let partner_ids: Vec<String> = entry.map(|i| i.partners.clone()).unwrap_or_default();
    let mut report = IsaReport {
        isa: entry
            .map(|i| i.id.clone())
            .unwrap_or_else(|| isa.trim().to_string()),
        partners: match (policy, entry) {
            (Some(p), Some(i)) => partner_names(p, &i.partners),
            _ => Vec::new(),
        },
        purpose: entry.map(|i| i.purpose.clone()),
        legal_basis: entry.map(|i| i.legal_basis.clone()),
        ceiling: entry.map(|i| i.ceiling.clone()),
        next_review: entry.map(|i| i.next_review),
        status: entry.map(|i| i.status_on(to, crate::decision::ISA_DUE_SOON_DAYS)),
        from,
        to,
        records: 0,
        total: Counts::default(),
        by_disclosure: BTreeMap::new(),
        by_class: BTreeMap::new(),
        by_month: Vec::new(),
        consent: BTreeMap::new(),
        disclosed_without_purpose: 0,
        disclosed_without_legal_basis: 0,
        incidents: Vec::new(),
    };
    let filter = Filter {
        since: Some(from.and_time(NaiveTime::MIN).and_utc()),
        until: to.succ_opt().map(|d| d.and_time(NaiveTime::MIN).and_utc()),
        ..Filter::default()
    };
    let mut months: BTreeMap<(String, String), Counts> = BTreeMap::new();
    store.query_each(&filter, |stored| -> Result<(), RecordError> {
        let r = &stored.record;
        let cites = r
            .isa
            .as_deref()
            .is_some_and(|i| i.trim().eq_ignore_ascii_case(report.isa.as_str()));
        let to_partner = r
            .partner_id
            .as_ref()
            .is_some_and(|p| partner_ids.contains(p));
        if !cites && !to_partner {
            return Ok(());
        }
        report.records += 1;
        report.total.add(r.verdict);
        report
            .by_disclosure
            .entry(disclosure_str(r.disclosure).to_string())
            .or_default()
            .add(r.verdict);
        report
            .by_class
            .entry(r.class.clone())
            .or_default()
            .add(r.verdict);
        let month = format!("{:04}-{:02}", r.time.year(), r.time.month());
        months
            .entry((month, r.class.clone()))
            .or_default()
            .add(r.verdict);
        if r.verdict == RecordVerdict::Failed {
            // Its disclosure is taken back; its consent was counted with it.
            report.disclosed_without_purpose -=
                u64::from(r.purpose.is_none()).min(report.disclosed_without_purpose);
            report.disclosed_without_legal_basis -=
                u64::from(r.legal_basis.is_none()).min(report.disclosed_without_legal_basis);
            return Ok(());
        }
        *report
            .consent
            .entry(
                r.consent
                    .map(|c| c.as_str())
                    .unwrap_or("not stated")
                    .to_string(),
            )
            .or_default() += 1;
        if matches!(
            r.verdict,
            RecordVerdict::Allow | RecordVerdict::Approved | RecordVerdict::Urgent
        ) {
            report.disclosed_without_purpose += u64::from(r.purpose.is_none());
            report.disclosed_without_legal_basis += u64::from(r.legal_basis.is_none());
        }
        if let Some(kind) = r.incident_kind {
            report.incidents.push(IncidentLine {
                seq: stored.seq,
                id: r.id.clone(),
                time: format_time(r.time),
                kind: kind.as_str().to_string(),
                sender: r.sender.clone(),
                recipient: r.recipient.clone(),
                partner: r.partner.clone(),
                label: r.label.clone(),
                rules: r.rules.clone(),
                reason: r.reason.clone(),
            });
        }
        Ok(())
    })?;
    report.by_month = months
        .into_iter()
        .map(|((month, class), counts)| MonthClass {
            month,
            class,
            counts,
        })
        .collect();
    Ok(report)
}

impl IsaReport {
    /// The report as text for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "ISA review report: {}", self.isa);
        let _ = writeln!(s, "Period: {} to {}", self.from, self.to);
        if !self.partners.is_empty() {
            let _ = writeln!(s, "Partners: {}", self.partners.join(", "));
        }
        if let Some(p) = &self.purpose {
            let _ = writeln!(s, "Purpose: {p}");
        }
        if let Some(l) = &self.legal_basis {
            let _ = writeln!(s, "Legal basis: {l}");
        }
        if let Some(c) = &self.ceiling {
            let _ = writeln!(s, "Ceiling: {c}");
        }
        if let (Some(n), Some(st)) = (self.next_review, self.status) {
            let _ = writeln!(
                s,
                "Next review: {n} (status at end of period: {})",
                status_label(st)
            );
        }
        if self.purpose.is_none() {
            let _ = writeln!(
                s,
                "(ISA not in the policy: only records citing it are counted)"
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Records: {}  disclosed: {}  blocked: {}  incidents: {}",
            self.records,
            self.total.disclosed,
            self.total.blocked,
            self.incidents.len()
        );
        if self.total.failed > 0 {
            let _ = writeln!(
                s,
                "Allowed, then failed on the way (not disclosed): {}",
                self.total.failed
            );
        }
        let _ = writeln!(
            s,
            "Held for approval: {}  approved: {}  rejected: {}  expired: {}  urgent releases: {}",
            self.total.held,
            self.total.approved,
            self.total.rejected,
            self.total.expired,
            self.total.urgent
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "By kind of disclosure:");
        let _ = writeln!(
            s,
            "  {:<10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8}",
            "kind", "disclosed", "blocked", "held", "approved", "rejected", "urgent"
        );
        for (k, c) in &self.by_disclosure {
            let _ = writeln!(
                s,
                "  {:<10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8}",
                k,
                c.disclosed,
                c.blocked,
                c.held,
                c.approved,
                c.rejected + c.expired,
                c.urgent
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "By month and class:");
        let _ = writeln!(
            s,
            "  {:<8} {:<26} {:>10} {:>10}",
            "month", "class", "disclosed", "blocked"
        );
        for m in &self.by_month {
            let _ = writeln!(
                s,
                "  {:<8} {:<26} {:>10} {:>10}",
                m.month, m.class, m.counts.disclosed, m.counts.blocked
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "Consent:");
        for (k, n) in &self.consent {
            let _ = writeln!(s, "  {k:<14} {n:>10}");
        }
        let _ = writeln!(
            s,
            "Disclosed without a stated purpose: {}; without a legal basis: {}",
            self.disclosed_without_purpose, self.disclosed_without_legal_basis
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "Security incidents: {}", self.incidents.len());
        for i in &self.incidents {
            let _ = writeln!(
                s,
                "  seq {} {} {} {} -> {} [{}] rules {}: {}",
                i.seq,
                i.time,
                i.kind,
                i.sender,
                i.recipient,
                i.label,
                i.rules.join(","),
                i.reason
            );
        }
        s
    }
}
