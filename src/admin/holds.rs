//! The approvers' pages: disclosures held for approval (`/holds`), one held disclosure with
//! its text and the Approve / Reject forms (`/holds/ID`), and urgent releases to review
//! (`/reviews`). The decisions themselves are the hold store's ([`crate::hold`]): these
//! pages pass it the signed-in approver and show its refusals as they are.
//!
//! A held message is the sender's text, so it is shown as text: every part HTML-escaped in a
//! `<pre>`, HTML parts too (never rendered, so no remote image, form or script of the
//! message reaches the approver's browser), under a content security policy that would
//! load nothing even if something slipped through.

use std::fmt::Write as _;

use chrono::Utc;
use hyper::StatusCode;

use crate::admin::page::{head, time};
use crate::admin::{Viewer, Visit};
use crate::hold::{HoldError, HoldState, HoldStore, Refusal, Review, ReviewDecision};
use crate::message::mime::{decode_unstructured, PartKind};
use crate::policy::Approver;
use crate::policyops::matrix::html_escape;
use crate::service::gateway::Gateway;

/// Text shown of one part of a held message; the rest is cut (the approver can ask the
/// gateway's administrators for the whole message).
const PART_SHOWN: usize = 256 * 1024;
/// Decided holds listed under the pending ones (the newest).
const DECIDED_SHOWN: usize = 50;

fn store(gateway: &Gateway) -> Result<HoldStore, HoldError> {
    HoldStore::open(&crate::hold::dir_for_spool(&gateway.config.spool.dir))
}

/// A page for `GET path`, or None when the path is not one of these pages.
pub fn get(gateway: &Gateway, visit: &Visit, path: &str) -> Option<(StatusCode, String)> {
    let page = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["", "holds"] => list(gateway, visit),
        ["", "holds", id] => detail(gateway, visit, id),
        ["", "reviews"] => reviews(gateway, visit),
        _ => return None,
    };
    Some(page.unwrap_or_else(|e| error_page(visit, &e)))
}

/// The result of a form `POST path` by `approver`, or None when the path takes no form.
pub async fn post(
    gateway: &Gateway,
    visit: &Visit,
    approver: &Approver,
    path: &str,
    form: &std::collections::HashMap<String, String>,
) -> Option<(StatusCode, String)> {
    let reason = form.get("reason").cloned().unwrap_or_default();
    let action = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["", "holds", id, "approve"] => Action::Approve(id.to_string()),
        ["", "holds", id, "reject"] => Action::Reject(id.to_string()),
        ["", "reviews", id] => match form.get("decision").and_then(|d| ReviewDecision::parse(d)) {
            Some(decision) => Action::Review(id.to_string(), decision),
            None => {
                return Some((
                    StatusCode::BAD_REQUEST,
                    refusal_page(
                        visit,
                        "Choose justified or not justified",
                        "A review says whether the urgent release was justified.",
                    ),
                ))
            }
        },
        _ => return None,
    };
    let store = match store(gateway) {
        Ok(s) => s,
        Err(e) => return Some(error_page(visit, &e)),
    };
    let policy = gateway.policy();
    let email = approver.email.clone();
    let run = {
        let action = action.clone();
        move || -> Result<String, HoldError> {
            let approvals = &policy.approvals;
            Ok(match &action {
                Action::Approve(id) => {
                    let hold = store.approve(approvals, id, &email, &reason)?;
                    format!(
                        "Approved hold {}: the held copies to {} go now, each with its \
                         rule's actions.",
                        hold.id,
                        hold.recipient_list()
                    )
                }
                Action::Reject(id) => {
                    let hold = store.reject(approvals, id, &email, &reason, false)?;
                    format!(
                        "Rejected hold {}: nothing of the copies to {} leaves, and {} is told \
                         why.",
                        hold.id,
                        hold.recipient_list(),
                        hold.sender
                    )
                }
                Action::Review(id, decision) => {
                    let review = store.review(approvals, id, &email, *decision, &reason)?;
                    format!(
                        "Reviewed the urgent release {} from {}: {}.",
                        review.id,
                        review.sender,
                        decision.as_str()
                    )
                }
            })
        }
    };
    let outcome = match tokio::task::spawn_blocking(run).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = %e, "admin: hold decision task failed");
            return Some((
                StatusCode::INTERNAL_SERVER_ERROR,
                refusal_page(
                    visit,
                    "Not done",
                    "The decision could not be taken; try again.",
                ),
            ));
        }
    };
    let back = match &action {
        Action::Approve(id) | Action::Reject(id) => format!("/holds/{id}"),
        Action::Review(..) => "/reviews".to_string(),
    };
    Some(match outcome {
        Ok(done) => {
            tracing::info!(approver = %approver.email, action = action.name(), "admin: {done}");
            let mut out = head("Done", visit);
            let _ = writeln!(
                out,
                "<p class=\"done\" id=\"outcome\">{}</p><p><a href=\"{}\">Back</a></p></body></html>",
                html_escape(&done),
                html_escape(&back)
            );
            (StatusCode::OK, out)
        }
        Err(HoldError::Refused(refusal)) => {
            tracing::warn!(approver = %approver.email, action = action.name(), %refusal, "admin: decision refused");
            let status = match refusal {
                Refusal::AlreadyDecided { .. } | Refusal::Expired { .. } => StatusCode::CONFLICT,
                Refusal::NoReason => StatusCode::BAD_REQUEST,
                _ => StatusCode::FORBIDDEN,
            };
            (
                status,
                refusal_page(visit, refusal_title(&refusal), &refusal.to_string()),
            )
        }
        Err(e) => error_page(visit, &e),
    })
}

#[derive(Debug, Clone)]
enum Action {
    Approve(String),
    Reject(String),
    Review(String, ReviewDecision),
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Approve(_) => "approve",
            Action::Reject(_) => "reject",
            Action::Review(..) => "review",
        }
    }
}

fn refusal_title(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::UnknownApprover { .. } => "Refused: you are not an approver",
        Refusal::RoleTooLow { .. } => "Refused: your role is too low for this disclosure",
        Refusal::OwnMessage { .. } => "Refused: this is your own message",
        Refusal::AlreadyDecided { .. } => "Refused: already decided",
        Refusal::Expired { .. } => "Refused: the hold has expired",
        Refusal::NoReason => "Refused: give a reason",
    }
}

/// A page that says plainly what was refused and why.
pub fn refusal_page(visit: &Visit, title: &str, why: &str) -> String {
    let mut out = head(title, visit);
    let _ = writeln!(
        out,
        "<h2>{}</h2><p class=\"refused\" id=\"refusal\">{}</p></body></html>",
        html_escape(title),
        html_escape(why)
    );
    out
}

fn error_page(visit: &Visit, e: &HoldError) -> (StatusCode, String) {
    let status = match e {
        HoldError::NotFound(_) | HoldError::NoReview(_) => StatusCode::NOT_FOUND,
        HoldError::BadId(_) => StatusCode::BAD_REQUEST,
        HoldError::Refused(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (
        status,
        refusal_page(visit, "Not found or not readable", &e.to_string()),
    )
}

/// `2h 5m` since `then`.
fn age(then: &chrono::DateTime<Utc>) -> String {
    let minutes = (Utc::now() - *then).num_minutes().max(0);
    match (minutes / 1440, minutes % 1440 / 60, minutes % 60) {
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Recipients with their partner and destination, one per line.
fn recipients_cell(recipients: &[crate::hold::HeldRecipient]) -> String {
    recipients
        .iter()
        .map(|r| {
            format!(
                "{} ({}, {})",
                html_escape(&r.address),
                html_escape(r.partner.as_deref().unwrap_or("no partner")),
                html_escape(&r.destination)
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn rules_of(recipients: &[crate::hold::HeldRecipient]) -> String {
    let mut rules: Vec<&str> = recipients
        .iter()
        .flat_map(|r| r.rules.iter().map(String::as_str))
        .collect();
    rules.sort_unstable();
    rules.dedup();
    html_escape(&rules.join(", "))
}

fn optional(v: &Option<String>) -> String {
    html_escape(v.as_deref().unwrap_or("(not declared)"))
}

fn list(gateway: &Gateway, visit: &Visit) -> Result<(StatusCode, String), HoldError> {
    let holds = store(gateway)?.list()?;
    let (pending, decided): (Vec<_>, Vec<_>) =
        holds.iter().partition(|h| h.state == HoldState::Pending);
    let mut out = head("Held for approval", visit);
    let _ = writeln!(
        out,
        "<section id=\"holds\"><h2>Held for approval</h2><p>{} waiting for an approver.</p>",
        pending.len()
    );
    if !pending.is_empty() {
        out.push_str(
            "<table id=\"pending\"><tr><th>hold</th><th>held (UTC)</th><th>expires (UTC)</th>\
             <th>from</th><th>subject</th><th>to (partner, destination)</th><th>marking</th><th>found in</th>\
             <th>rule</th><th>needs</th><th>purpose</th><th>legal basis</th></tr>\n",
        );
        for h in &pending {
            let found = h
                .sources
                .iter()
                .map(|s| format!("{}: {}", html_escape(&s.location), html_escape(&s.text)))
                .collect::<Vec<_>>()
                .join("<br>");
            let _ = writeln!(
                out,
                "<tr class=\"held\"><td class=\"id\"><a href=\"/holds/{id}\">{id}</a></td>\
                 <td>{} ({} ago)</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{found}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(&h.created),
                age(&h.created),
                time(&h.expires),
                html_escape(&h.sender),
                html_escape(h.subject.as_deref().unwrap_or("")),
                recipients_cell(&h.recipients),
                html_escape(&h.label),
                rules_of(&h.recipients),
                html_escape(&h.role),
                optional(&h.purpose),
                optional(&h.legal_basis),
                id = html_escape(&h.id),
            );
        }
        out.push_str("</table>\n");
    }
    if !decided.is_empty() {
        out.push_str(
            "<h3>Decided</h3><table id=\"decided\"><tr><th>hold</th><th>held (UTC)</th>\
             <th>from</th><th>to</th><th>marking</th><th>decision</th><th>by</th>\
             <th>reason</th><th>when (UTC)</th></tr>\n",
        );
        for h in decided.iter().rev().take(DECIDED_SHOWN) {
            let d = h.decided.as_ref();
            let _ = writeln!(
                out,
                "<tr><td class=\"id\"><a href=\"/holds/{id}\">{id}</a></td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(&h.created),
                html_escape(&h.sender),
                html_escape(&h.recipient_list()),
                html_escape(&h.label),
                h.state.as_str(),
                d.map(|d| html_escape(&format!("{} ({}, {})", d.name, d.by, d.role)))
                    .unwrap_or_default(),
                d.map(|d| html_escape(&d.reason)).unwrap_or_default(),
                d.map(|d| time(&d.at)).unwrap_or_default(),
                id = html_escape(&h.id),
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section></body></html>\n");
    Ok((StatusCode::OK, out))
}

fn detail(gateway: &Gateway, visit: &Visit, id: &str) -> Result<(StatusCode, String), HoldError> {
    let store = store(gateway)?;
    let id = crate::hold::store::check_id(id)?;
    let h = store.show(id)?;
    let mut out = head(&format!("Held disclosure {id}"), visit);
    let _ = writeln!(
        out,
        "<section id=\"hold\"><h2>Held disclosure <code>{}</code></h2><table>",
        html_escape(&h.id)
    );
    let rows: [(&str, String); 12] = [
        ("state", h.state.as_str().to_string()),
        ("from", html_escape(&h.sender)),
        ("to (partner, destination)", recipients_cell(&h.recipients)),
        (
            "also sent at once to",
            html_escape(&h.released_now.join(", ")),
        ),
        ("marking", html_escape(&h.label)),
        (
            "marking found in",
            h.sources
                .iter()
                .map(|s| format!("{}: {}", html_escape(&s.location), html_escape(&s.text)))
                .collect::<Vec<_>>()
                .join("<br>"),
        ),
        ("rule", rules_of(&h.recipients)),
        (
            "needs approval by",
            format!("{} or higher", html_escape(&h.role)),
        ),
        ("purpose", optional(&h.purpose)),
        ("legal basis", optional(&h.legal_basis)),
        (
            "held (UTC)",
            format!("{} ({} ago)", time(&h.created), age(&h.created)),
        ),
        ("expires (UTC)", time(&h.expires)),
    ];
    for (name, value) in rows {
        let _ = writeln!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    if let Some(d) = &h.decided {
        let _ = writeln!(
            out,
            "<tr><th>decided</th><td id=\"decision\">{} by {} ({}, {}) at {}: {}</td></tr>",
            h.state.as_str(),
            html_escape(&d.name),
            html_escape(&d.by),
            html_escape(&d.role),
            time(&d.at),
            html_escape(&d.reason)
        );
    }
    out.push_str("</table>\n");
    decision_forms(&mut out, visit, &h);
    out.push_str("</section>\n");
    message_section(&mut out, store.original(id)?);
    out.push_str("</body></html>\n");
    Ok((StatusCode::OK, out))
}

/// Approve and Reject, each with its required reason, for an approver; a note otherwise.
fn decision_forms(out: &mut String, visit: &Visit, h: &crate::hold::Hold) {
    if h.state != HoldState::Pending {
        return;
    }
    let (Viewer::Approver(_), Some(session)) = (&visit.viewer, &visit.session) else {
        out.push_str(
            "<p class=\"refused\" id=\"read-only\">Signed in with the admin token: you can read \
             this hold but not decide it. Approvers sign in as themselves.</p>\n",
        );
        return;
    };
    for (action, label) in [("approve", "Approve"), ("reject", "Reject")] {
        let _ = writeln!(
            out,
            "<form id=\"{action}\" method=\"post\" action=\"/holds/{id}/{action}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"{action}-reason\">Reason to {action} (required)</label><br>\
             <textarea id=\"{action}-reason\" name=\"reason\" required></textarea><br>\
             <button type=\"submit\">{label}</button></form>",
            id = html_escape(&h.id),
            csrf = html_escape(&session.csrf),
        );
    }
}

/// The message as received: its headers a reader needs and every text part, as text.
fn message_section(out: &mut String, original: Option<Vec<u8>>) {
    out.push_str("<section id=\"message\"><h2>The message</h2>\n");
    let Some(raw) = original else {
        out.push_str("<p>The message is no longer kept: the hold is finished.</p></section>\n");
        return;
    };
    let parsed = match crate::message::parse(&raw) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(
                out,
                "<p class=\"failed\">The message cannot be read: {}</p></section>",
                html_escape(&e.to_string())
            );
            return;
        }
    };
    out.push_str("<table>");
    for name in ["From", "To", "Cc", "Date", "Subject"] {
        if let Some(value) = parsed.root.header_bytes(name) {
            let _ = write!(
                out,
                "<tr><th>{name}</th><td id=\"header-{}\">{}</td></tr>",
                name.to_ascii_lowercase(),
                html_escape(decode_unstructured(value).trim())
            );
        }
    }
    out.push_str("</table>\n");
    for part in &parsed.parts {
        let what = match part.kind {
            PartKind::Text => "text",
            PartKind::Html => "HTML, shown as its source text: not rendered, nothing loaded",
            PartKind::Enriched => "enriched text, shown as its source text",
            PartKind::Json => "JSON, shown as its source text",
            PartKind::Message => "attached message, shown as its source text",
            // an archive shown as text is noise: its marking places are in the decision
            PartKind::Document { .. } => continue,
        };
        let text = part.text();
        let (shown, cut) = match text.char_indices().nth(PART_SHOWN) {
            Some((at, _)) => (&text[..at], true),
            None => (&text[..], false),
        };
        let _ = writeln!(
            out,
            "<h3>Part {} ({what}){}</h3><pre class=\"part\">{}</pre>",
            part.id,
            if cut { ", cut" } else { "" },
            html_escape(shown)
        );
    }
    out.push_str("</section>\n");
}

fn reviews(gateway: &Gateway, visit: &Visit) -> Result<(StatusCode, String), HoldError> {
    let reviews = store(gateway)?.reviews()?;
    let now = Utc::now();
    let waiting = reviews.iter().filter(|r| r.reviewed.is_none()).count();
    let overdue = reviews
        .iter()
        .filter(|r| r.reviewed.is_none() && r.is_overdue_at(now))
        .count();
    let mut out = head("Urgent releases to review", visit);
    let _ = writeln!(
        out,
        "<section id=\"reviews\"><h2>Urgent releases to review</h2><p>Sent at once to \
         preserve life or prevent a death, without the approval their rule asks for: {waiting} \
         waiting for review, {overdue} overdue (an incident).</p>"
    );
    if !reviews.is_empty() {
        out.push_str(
            "<table><tr><th>release</th><th>sent (UTC)</th><th>review due (UTC)</th>\
             <th>from</th><th>to (partner, destination)</th><th>marking</th><th>rule</th>\
             <th>needs</th><th>purpose</th><th>legal basis</th><th>review</th></tr>\n",
        );
        for r in reviews.iter().rev() {
            let class = match (&r.reviewed, r.is_overdue_at(now)) {
                (None, true) => "overdue",
                (None, false) => "due-soon",
                (Some(_), _) => "live",
            };
            let _ = writeln!(
                out,
                "<tr class=\"{class}\" id=\"review-{id}\"><td class=\"id\">{id}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td></tr>",
                time(&r.released),
                time(&r.due),
                html_escape(&r.sender),
                recipients_cell(&r.recipients),
                html_escape(&r.label),
                rules_of(&r.recipients),
                html_escape(&r.role),
                optional(&r.purpose),
                optional(&r.legal_basis),
                review_cell(visit, r, now),
                id = html_escape(&r.id),
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section></body></html>\n");
    Ok((StatusCode::OK, out))
}

/// The review given, or the form to give it (an approver), or what is awaited (the token).
fn review_cell(visit: &Visit, r: &Review, now: chrono::DateTime<Utc>) -> String {
    if let Some(done) = &r.reviewed {
        return format!(
            "{} by {} ({}, {}) at {}{}: {}",
            done.decision.as_str(),
            html_escape(&done.by.name),
            html_escape(&done.by.by),
            html_escape(&done.by.role),
            time(&done.by.at),
            if r.is_overdue_at(now) { ", late" } else { "" },
            html_escape(&done.by.reason)
        );
    }
    let (Viewer::Approver(_), Some(session)) = (&visit.viewer, &visit.session) else {
        return "waiting for an approver's review".to_string();
    };
    format!(
        "<form id=\"review-form-{id}\" method=\"post\" action=\"/reviews/{id}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label><input type=\"radio\" name=\"decision\" value=\"justified\" required> justified</label> \
         <label><input type=\"radio\" name=\"decision\" value=\"not-justified\"> not justified</label><br>\
         <label for=\"review-reason-{id}\">Reason (required)</label><br>\
         <textarea id=\"review-reason-{id}\" name=\"reason\" required></textarea><br>\
         <button type=\"submit\">Record review</button></form>",
        id = html_escape(&r.id),
        csrf = html_escape(&session.csrf),
    )
}
