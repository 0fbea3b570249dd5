//! The SMTP channel's side of holding for approval ([`crate::hold`]).
//!
//! - [`intake`]: at end of data, the held copies (already transformed with their actions)
//!   and the message as received go into the hold store, fsynced before `250`; an urgent
//!   release joins the review list.
//! - [`Keeper`]: a task inside `markgate serve` that watches the hold store (polled every
//!   [`POLL`]: the command line changes it from another process) and does what follows,
//!   each step once: notify the approvers through the gateway's own delivery, release an
//!   approved hold into the spool (a rename: the copies then go like any queued message),
//!   tell the sender of a rejection or expiry (a DSN naming the reason, unless `--silent`)
//!   and destroy the held copies, expire holds past `approval.expire_after`, and record
//!   every decision and every overdue review in the record store.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio_util::sync::CancellationToken;

use super::queue::spool::{self, Copy, Envelope, Spool};
use super::queue::{dsn, QueueHandle};
use crate::decision::{Decision, Verdict};
use crate::hold::model::Progress;
use crate::hold::{Hold, HoldError, HoldState, HoldStore, Review, ReviewState};
use crate::message::ParsedMessage;
use crate::record::{DecisionRecord, RecordVerdict, Step};
use crate::service::gateway::Gateway;
use crate::transform::headers::sanitise;

/// How often the keeper looks at the hold store.
pub const POLL: Duration = Duration::from_millis(250);

/// Suffix of the spool id a released hold's copies are queued under.
pub const RELEASED_SUFFIX: &str = "-held";

/// What the session knows about a message it is holding or releasing urgently.
pub struct Intake<'a> {
    pub id: &'a str,
    pub sender: &'a str,
    pub parsed: &'a ParsedMessage<'a>,
    pub decision: &'a Decision,
    /// The decision records written for this message.
    pub records: &'a [DecisionRecord],
}

/// Put the held recipients of a message in the hold store (`held` is the envelope of their
/// copies and `bodies` the copies), durably; the hold as stored.
pub fn intake(
    store: &HoldStore,
    message: &Intake<'_>,
    approvals: &crate::policy::Approvals,
    held: &Envelope,
    bodies: &[Vec<u8>],
) -> Result<Hold, HoldError> {
    let decision = message.decision;
    let now = Utc::now();
    let recipients = crate::hold::recipients_of(decision, Verdict::Held, false);
    let role = crate::hold::highest_role(approvals, &recipients);
    let hold = Hold {
        id: message.id.to_string(),
        state: HoldState::Pending,
        created: now,
        expires: now + chrono::Duration::from_std(approvals.expire_after).unwrap_or_default(),
        sender: message.sender.to_string(),
        subject: subject(message.parsed),
        message_id: message_id(message.parsed),
        size: message.parsed.raw.len() as u64,
        sha256: sha256(message.parsed.raw),
        records: crate::hold::records_of(message.records, RecordVerdict::Held),
        class: decision.marking.class.clone(),
        label: decision.marking.label.clone(),
        sources: crate::record::builder::sources(decision),
        released_now: decision
            .with_verdict(Verdict::Allow)
            .map(|r| r.address.clone())
            .collect(),
        recipients,
        role,
        isa: decision.isa.clone(),
        purpose: decision.declared.purpose.clone(),
        legal_basis: decision.declared.legal_basis.clone(),
        consent: decision.declared.consent.map(|c| c.as_str().to_string()),
        policy_version: decision.policy_version.clone(),
        decided: None,
        progress: Progress::default(),
    };
    store.put(&hold, &spool::encode(held, bodies), message.parsed.raw)?;
    Ok(hold)
}

/// Put an urgent release on the review list, durably.
pub fn add_review(
    store: &HoldStore,
    message: &Intake<'_>,
    approvals: &crate::policy::Approvals,
) -> Result<Review, HoldError> {
    let review = crate::hold::review_of(
        &crate::hold::Released {
            id: message.id,
            sender: message.sender,
            subject: subject(message.parsed),
            message_id: message_id(message.parsed),
            sha256: sha256(message.parsed.raw),
        },
        message.decision,
        message.records,
        approvals,
    );
    store.add_review(&review)?;
    Ok(review)
}

fn subject(parsed: &ParsedMessage<'_>) -> Option<String> {
    parsed
        .root
        .header_bytes("Subject")
        .and_then(crate::facts::text)
}

fn message_id(parsed: &ParsedMessage<'_>) -> Option<String> {
    parsed
        .root
        .header_bytes("Message-ID")
        .and_then(crate::facts::text)
}

fn sha256(raw: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(raw))
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The gateway's side of the hold store, run by `markgate serve`.
pub struct Keeper {
    pub gateway: Arc<Gateway>,
    pub store: HoldStore,
    pub spool: Arc<Spool>,
    pub queue: QueueHandle,
    pub hostname: String,
    /// Problems already logged (see [`Keeper::warn_once`]).
    pub warned: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Keeper {
    /// Run until `shutdown`. Starts once the queue has recovered the spool (`recovered`), so
    /// a hold released now is never also picked up by that recovery.
    pub async fn run(self, recovered: CancellationToken, shutdown: CancellationToken) {
        tokio::select! {
            _ = recovered.cancelled() => {}
            _ = shutdown.cancelled() => return,
        }
        loop {
            if let Err(e) = self.pass().await {
                tracing::error!(error = %e, "hold store: will try again");
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// One look at every hold and urgent release; each step not yet done is done.
    pub async fn pass(&self) -> Result<(), HoldError> {
        let now = Utc::now();
        let (holds, damaged) = self.store.list_readable()?;
        for e in damaged {
            self.warn_once(
                &e.to_string(),
                "a hold file cannot be read; the others go on",
            );
        }
        for hold in holds {
            if hold.progress.finished && hold.progress.recorded {
                continue;
            }
            if let Err(e) = self.step(hold, now).await {
                self.warn_once(&e.to_string(), "hold step failed; trying again");
            }
        }
        for review in self.store.reviews()? {
            if let Err(e) = self.review_step(review, now).await {
                self.warn_once(&e.to_string(), "urgent review step failed; trying again");
            }
        }
        Ok(())
    }

    async fn step(&self, mut hold: Hold, now: DateTime<Utc>) -> Result<(), HoldError> {
        let id = hold.id.clone();
        if hold.is_expired_at(now) {
            hold = self.store.expire_if_due(&id, now)?;
            if hold.state == HoldState::Expired {
                tracing::warn!(hold = id, "hold expired without a decision: rejected");
            }
        }
        if hold.state == HoldState::Pending && !hold.progress.notified {
            self.notify(&hold).await?;
            hold = self.store.update(&id, |h| h.progress.notified = true)?;
            tracing::info!(
                hold = id,
                role = hold.role,
                "approvers notified of a held disclosure"
            );
        }
        let Some(decided) = hold.decided.clone() else {
            return Ok(());
        };
        if !hold.progress.recorded {
            let verdict = match hold.state {
                HoldState::Approved => RecordVerdict::Approved,
                HoldState::Rejected => RecordVerdict::Rejected,
                HoldState::Expired => RecordVerdict::Expired,
                HoldState::Pending => return Ok(()),
            };
            let step = Step {
                verdict,
                time: decided.at,
                hold_id: id.clone(),
                by: format!("{} <{}>", decided.name, decided.by),
                role: decided.role.clone(),
                reason: decided.reason.clone(),
            };
            self.gateway
                .record_step(&hold.records, &step)
                .await
                .map_err(|e| HoldError::Io {
                    path: self.store.dir().to_path_buf(),
                    source: std::io::Error::other(format!(
                        "cannot record the {}: {e}",
                        verdict.as_str()
                    )),
                })?;
            hold = self.store.update(&id, |h| h.progress.recorded = true)?;
        }
        if hold.progress.finished {
            return Ok(());
        }
        match hold.state {
            HoldState::Approved => self.release(&hold).await?,
            HoldState::Rejected | HoldState::Expired => self.refuse(&hold, &decided).await?,
            HoldState::Pending => return Ok(()),
        }
        self.store.destroy_message(&id)?;
        self.store.update(&id, |h| h.progress.finished = true)?;
        Ok(())
    }

    /// Hand an approved hold's copies to the queue: `hold/<id>.msg` is renamed into the spool
    /// (so a restart recovers it there, and the hold store no longer has it: never twice).
    async fn release(&self, hold: &Hold) -> Result<(), HoldError> {
        let from = self.store.msg_path(&hold.id);
        let id = format!("{}{RELEASED_SUFFIX}", hold.id);
        let to = self.spool.dir().join(format!("{id}.msg"));
        let bytes = match std::fs::read(&from) {
            Ok(b) => b,
            // Released before a restart: the spool's recovery has queued it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(HoldError::Io { path: from, source }),
        };
        let spooled = spool::decode(bytes).ok_or_else(|| HoldError::Damaged {
            path: from.clone(),
            why: "not a complete spool file".into(),
        })?;
        // Its delivery.lifetime runs from the approval, not from when it was held: the
        // held file is rewritten (atomically, still in the hold store) before it moves.
        let mut envelope = spooled.envelope.clone();
        envelope.received = Utc::now().timestamp();
        let copies: Vec<Vec<u8>> = (0..envelope.copies.len())
            .map(|i| spooled.copy_bytes(i).to_vec())
            .collect();
        self.store
            .replace_held(&hold.id, &spool::encode(&envelope, &copies))?;
        std::fs::rename(&from, &to)
            .and_then(|()| std::fs::File::open(self.spool.dir())?.sync_all())
            .map_err(|source| HoldError::Io {
                path: to.clone(),
                source,
            })?;
        tracing::info!(
            hold = hold.id,
            queued = id,
            recipients = hold.recipient_list(),
            "approved hold released for delivery"
        );
        self.queue.enqueue(envelope);
        Ok(())
    }

    /// Tell the sender a rejected or expired hold was not sent (unless silent); the copies
    /// are then destroyed by the caller.
    async fn refuse(&self, hold: &Hold, decided: &crate::hold::Decided) -> Result<(), HoldError> {
        if decided.silent {
            tracing::info!(
                hold = hold.id,
                "hold rejected silently: the sender is not told"
            );
            return Ok(());
        }
        let path = self.store.msg_path(&hold.id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            // Already told and destroyed before a restart.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(HoldError::Io { path, source }),
        };
        let spooled = spool::decode(bytes).ok_or_else(|| HoldError::Damaged {
            path: path.clone(),
            why: "not a complete spool file".into(),
        })?;
        let why = match hold.state {
            HoldState::Expired => format!(
                "5.7.1 not sent: held for approval ({}) and not approved in time: {}",
                hold.role, decided.reason
            ),
            _ => format!(
                "5.7.1 not sent: the disclosure was rejected by {} ({}): {}",
                decided.name, decided.role, decided.reason
            ),
        };
        let failed: Vec<dsn::Failed> = spooled
            .envelope
            .copies
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.recipients.iter().map(move |r| (i, r.clone())))
            .map(|(i, r)| (i, r, why.clone()))
            .collect();
        let policy = self.gateway.policy();
        let destination = crate::destination::class_of(&hold.sender, &policy);
        let (envelope, body) = dsn::build(
            &self.hostname,
            destination,
            &spooled.envelope,
            &spooled,
            &failed,
        );
        self.spool_store(&envelope, &[body]).await?;
        tracing::info!(
            hold = hold.id,
            dsn = envelope.id,
            sender = hold.sender,
            "sender told the held disclosure was not sent"
        );
        self.queue.enqueue(envelope);
        Ok(())
    }

    /// Log `what` once for the life of the gateway (the store is looked at four times a
    /// second).
    fn warn_once(&self, what: &str, message: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.insert(what.to_string()) {
            tracing::error!(what, "{message}");
        }
    }

    /// Send the approvers of the hold's role (or higher) the notification, through the
    /// gateway's own delivery.
    async fn notify(&self, hold: &Hold) -> Result<(), HoldError> {
        let policy = self.gateway.policy();
        let approvers: Vec<&crate::policy::Approver> =
            policy.approvals.approvers_for(&hold.role).collect();
        if approvers.is_empty() {
            // Notified once an approver of the role is added (the policy is reloaded).
            return Err(HoldError::NoApprover {
                id: hold.id.clone(),
                role: hold.role.clone(),
            });
        }
        let admin = self.gateway.config.admin.approvers_url();
        let to: Vec<&str> = approvers.iter().map(|a| a.email.as_str()).collect();
        let body = notification(hold, &self.hostname, &admin, &to);
        // One copy per destination class of the approvers (normally: internal), over
        // verified TLS (it names a disclosure of the hold's marking).
        let mut copies: Vec<Copy> = Vec::new();
        for a in &approvers {
            let destination = crate::destination::class_of(&a.email, &policy);
            match copies.iter_mut().find(|c| c.destination == destination) {
                Some(c) => c.recipients.push(a.email.clone()),
                None => copies.push(Copy {
                    recipients: vec![a.email.clone()],
                    destination,
                    actions: vec!["tls".into()],
                    tls: true,
                    requiretls: false,
                    offset: (copies.len() * body.len()) as u64,
                    len: body.len() as u64,
                }),
            }
        }
        let offset = (copies.len() * body.len()) as u64;
        let bodies: Vec<Vec<u8>> = copies.iter().map(|_| body.clone()).collect();
        let envelope = Envelope {
            id: format!("{}-notify", hold.id),
            received: Utc::now().timestamp(),
            sender: String::new(),
            client_ip: "127.0.0.1".into(),
            helo: self.hostname.clone(),
            marking: hold.label.clone(),
            policy_version: hold.policy_version.clone(),
            is_dsn: true,
            copies,
            body_len: offset,
        };

        self.spool_store(&envelope, &bodies).await?;
        self.queue.enqueue(envelope);
        Ok(())
    }

    /// Put a message the gateway itself sends (a notification, a notice) in the spool.
    async fn spool_store(&self, envelope: &Envelope, bodies: &[Vec<u8>]) -> Result<(), HoldError> {
        self.spool
            .store(envelope, bodies)
            .await
            .map_err(|source| HoldError::Io {
                path: self.spool.dir().to_path_buf(),
                source,
            })
    }

    async fn review_step(&self, review: Review, now: DateTime<Utc>) -> Result<(), HoldError> {
        let id = review.id.clone();
        let records = &review.records;
        let record = |step: Step| async move {
            self.gateway
                .record_step(records, &step)
                .await
                .map_err(|e| HoldError::Io {
                    path: self.store.dir().to_path_buf(),
                    source: std::io::Error::other(format!("cannot record the review step: {e}")),
                })
        };
        if review.is_overdue_at(now) && !review.progress.overdue_recorded {
            record(Step {
                verdict: RecordVerdict::ReviewOverdue,
                time: review.due,
                hold_id: id.clone(),
                by: "markgate".into(),
                role: String::new(),
                reason: format!(
                    "the urgent release of {} was not reviewed by an approver ({} or higher) by {}",
                    time(review.released),
                    review.role,
                    time(review.due)
                ),
            })
            .await?;
            self.store
                .update_review(&id, |r| r.progress.overdue_recorded = true)?;
            tracing::warn!(
                review = id,
                "urgent release not reviewed in time: incident recorded"
            );
        }
        if let (ReviewState::Reviewed, Some(given), false) =
            (review.state, &review.reviewed, review.progress.recorded)
        {
            record(Step {
                verdict: RecordVerdict::Reviewed,
                time: given.by.at,
                hold_id: id.clone(),
                by: format!("{} <{}>", given.by.name, given.by.by),
                role: given.by.role.clone(),
                reason: format!("{}: {}", given.decision.as_str(), given.by.reason),
            })
            .await?;
            self.store
                .update_review(&id, |r| r.progress.recorded = true)?;
        }
        Ok(())
    }
}

/// The notification to approvers: who sent what to whom, the marking and where it was found,
/// the rule, the purpose and legal basis declared, the expiry, and where to approve. The
/// message itself is not in it.
pub fn notification(hold: &Hold, hostname: &str, admin_url: &str, to: &[&str]) -> Vec<u8> {
    let mut recipients = String::new();
    for r in &hold.recipients {
        recipients.push_str(&format!(
            "  {} ({}{}; {}; with {}; rules {})\r\n",
            r.address,
            r.destination,
            r.partner
                .as_deref()
                .map(|p| format!(", partner {p}"))
                .unwrap_or_default(),
            r.disclosure,
            if r.actions.is_empty() {
                "no actions".to_string()
            } else {
                r.actions.join(", ")
            },
            r.rules.join(", ")
        ));
    }
    let found: Vec<String> = hold
        .sources
        .iter()
        .map(|s| format!("{} {:?}", s.location, s.text))
        .collect();
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not declared)".into());
    let subject = hold.subject.clone().unwrap_or_default();
    let text = format!(
        "From: markgate approvals <postmaster@{hostname}>\r\n\
         To: {to}\r\n\
         Subject: [{label}] Held for approval ({role}): {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}-notify@{hostname}>\r\n\
         X-Protective-Marking: {label}\r\n\
         Auto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         {label}\r\n\
         \r\n\
         A disclosure is held for your approval ({role} or higher, seed 001 s3.8).\r\n\
         \r\n\
         Hold:         {id}\r\n\
         From:         {sender}\r\n\
         To:\r\n{recipients}\
         Subject:      {subject}\r\n\
         Marking:      {label} (found in: {found})\r\n\
         Purpose:      {purpose}\r\n\
         Legal basis:  {legal_basis}\r\n\
         ISA:          {isa}\r\n\
         Held since:   {created}\r\n\
         Expires:      {expires} (then rejected automatically)\r\n\
         \r\n\
         Approve or reject it, giving a reason, on the admin page:\r\n\
         \r\n\
         \x20 {admin_url}/holds/{id}\r\n\
         \r\n\
         or on the gateway host:\r\n\
         \r\n\
         \x20 markgate hold show {id}\r\n\
         \x20 markgate hold approve {id} --approver YOUR-ADDRESS --reason TEXT\r\n\
         \x20 markgate hold reject {id} --approver YOUR-ADDRESS --reason TEXT [--silent]\r\n\
         \r\n\
         The message itself is not attached; read it there. You cannot approve a message you\r\n\
         sent yourself.\r\n\
         \r\n\
         {label}\r\n",
        to = to
            .iter()
            .map(|a| format!("<{a}>"))
            .collect::<Vec<_>>()
            .join(", "),
        role = sanitise(&hold.role),
        label = sanitise(&hold.label),
        subject = sanitise(&subject),
        date = Utc::now().to_rfc2822(),
        id = hold.id,
        sender = sanitise(&hold.sender),
        found = sanitise(&found.join(", ")),
        purpose = sanitise(&or_none(&hold.purpose)),
        legal_basis = sanitise(&or_none(&hold.legal_basis)),
        isa = sanitise(hold.isa.as_deref().unwrap_or("none (one-off)")),
        created = time(hold.created),
        expires = time(hold.expires),
    );
    text.into_bytes()
}
