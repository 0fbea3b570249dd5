//! The admin page: one HTML page, no scripts, that a security manager and a mail
//! administrator read — incidents first (SECRET and above blocked, overdue ISAs cited), the
//! delivery queue (waiting, deferred with the next hop's last answer, bounced), the policy
//! version with the reload history (recoveries marked), the handling matrix, the ISA register
//! with review status, and decisions of the last 24 hours.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::Utc;
use serde::Serialize;

use crate::decision::{Verdict, ISA_DUE_SOON_DAYS};
use crate::policyops::matrix::{html_escape, Matrix};
use crate::record::register::{isa_register, status_label, IsaEntry};
use crate::service::activity::{Bounced, Queued, Reload};
use crate::service::gateway::Gateway;

/// Incidents shown: the newest, from this many days back.
const INCIDENT_DAYS: i64 = 30;
const INCIDENTS_SHOWN: u64 = 20;

/// Everything the page shows, also served as JSON at `/api/status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub policy_version: String,
    pub last_reload: crate::service::gateway::ReloadStatus,
    /// Load and reload attempts, newest first.
    pub reloads: Vec<Reload>,
    /// Incidents of the last 30 days, newest first (from the record store).
    pub incidents: Vec<Incident>,
    /// Set when the record store could not be read for incidents.
    pub incidents_error: Option<String>,
    /// Messages waiting for delivery, oldest first.
    pub queue: Vec<Queued>,
    /// Recipients bounced to their sender, newest first.
    pub bounced: Vec<Bounced>,
    pub isas: Vec<IsaEntry>,
    /// Decisions of the last 24 hours: class -> (allowed, blocked).
    pub decisions_24h: BTreeMap<String, (u64, u64)>,
}

/// A recorded security incident.
#[derive(Debug, Serialize)]
pub struct Incident {
    pub time: chrono::DateTime<Utc>,
    /// `classified-blocked` or `isa-overdue`.
    pub kind: &'static str,
    pub channel: String,
    pub sender: String,
    pub recipient: String,
    pub label: String,
    pub isa: Option<String>,
    pub rules: Vec<String>,
    pub reason: String,
}

fn incidents(gateway: &Gateway) -> Result<Vec<Incident>, crate::record::RecordError> {
    let path = &gateway.config.records.path;
    if !path.exists() {
        return Ok(Vec::new());
    }
    let filter = crate::record::Filter {
        since: Some(Utc::now() - chrono::Duration::days(INCIDENT_DAYS)),
        incidents_only: true,
        limit: Some(INCIDENTS_SHOWN),
        ..Default::default()
    };
    let mut found: Vec<Incident> = crate::record::Store::open_read_only(path)?
        .query(&filter)?
        .into_iter()
        .map(|r| {
            let r = r.record;
            Incident {
                time: r.time,
                kind: r.incident_kind.map(|k| k.as_str()).unwrap_or("incident"),
                channel: r.channel.as_str().to_string(),
                sender: r.sender,
                recipient: r.recipient,
                label: r.label,
                isa: r.isa,
                rules: r.rules,
                reason: r.reason,
            }
        })
        .collect();
    found.reverse();
    Ok(found)
}

pub fn status(gateway: &Gateway) -> Status {
    let policy = gateway.policy();
    let today = Utc::now().date_naive();
    let isas = isa_register(&policy, today, ISA_DUE_SOON_DAYS);
    let mut decisions_24h: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for d in gateway.recent_decisions() {
        let entry = decisions_24h.entry(d.class).or_default();
        match d.verdict {
            Verdict::Allow => entry.0 += 1,
            Verdict::Block => entry.1 += 1,
        }
    }
    let (incidents, incidents_error) = match incidents(gateway) {
        Ok(found) => (found, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    Status {
        policy_version: policy.version.clone(),
        last_reload: (*gateway.reload_status()).clone(),
        reloads: gateway.activity.reloads(),
        incidents,
        incidents_error,
        queue: gateway.activity.queue(),
        bounced: gateway.activity.bounces(),
        isas,
        decisions_24h,
    }
}

pub fn render(gateway: &Gateway) -> String {
    let policy = gateway.policy();
    let status = status(gateway);
    let matrix = Matrix::of(&policy);
    let mut out = String::from(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>markgate admin</title>\n<style>",
        "body{font-family:sans-serif;margin:1.5em;color:#222}h1{margin-top:0}section{margin-bottom:2em}",
        "table{border-collapse:collapse;font-size:92%}th,td{border:1px solid #999;padding:.35em .7em;text-align:left}",
        "td.allow{background:#e3f4e1}td.block{background:#f8d7d3;font-weight:bold}",
        ".live{background:#e3f4e1}.due-soon{background:#fff1c2}.overdue{background:#f8d7d3;font-weight:bold}",
        ".not-started,.ended{background:#e8e8e8}.ok{color:#17692b}.failed{color:#b3261e}",
        "pre{background:#f4f4f4;padding:.6em;white-space:pre-wrap}",
        ".incident{background:#f8d7d3}.deferred{background:#fff1c2}.recovered{color:#17692b;font-weight:bold}",
        "td.error{font-family:monospace;font-size:90%;min-width:16em;max-width:26em;overflow-wrap:anywhere}",
        "td.id{font-family:monospace;font-size:85%}",
        "</style></head><body>\n<h1>markgate</h1>\n"
    ));

    incidents_section(&mut out, &status);
    queue_section(&mut out, &status);

    let reload = &status.last_reload;
    let _ = writeln!(
        out,
        "<section id=\"policy\"><h2>Policy</h2><p>Version <code>{}</code> from <code>{}</code>.</p><p>Last reload {}: <span class=\"{}\">{}</span></p>{}</section>",
        html_escape(&status.policy_version[..12.min(status.policy_version.len())]),
        html_escape(&policy.dir.display().to_string()),
        reload.at.format("%Y-%m-%d %H:%M:%S UTC"),
        if reload.ok { "ok" } else { "failed" },
        if reload.ok { "ok" } else { "rejected, previous policy still in force" },
        if reload.ok { format!("<p>{}</p>", html_escape(&reload.message)) } else { format!("<pre>{}</pre>", html_escape(&reload.message)) },
    );

    reload_history(&mut out, &status);

    out.push_str("<section id=\"matrix\"><h2>Handling matrix</h2>\n");
    out.push_str(&matrix.html_table());
    out.push_str("</section>\n");

    out.push_str("<section id=\"isas\"><h2>Information Sharing Agreements</h2>\n<table><tr><th>ISA</th><th>partners</th><th>purpose</th><th>ceiling</th><th>next review</th><th>status</th></tr>\n");
    for isa in &status.isas {
        let class = isa.status.as_str();
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&isa.id),
            html_escape(&isa.partners.join(", ")),
            html_escape(&isa.purpose),
            html_escape(&isa.ceiling),
            isa.next_review,
            status_label(isa.status),
        );
    }
    out.push_str("</table></section>\n");

    out.push_str("<section id=\"decisions\"><h2>Decisions, last 24 hours</h2>\n");
    out.push_str(&chart(&status.decisions_24h));
    out.push_str("</section>\n</body></html>\n");
    out
}

fn time(t: &chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn incidents_section(out: &mut String, status: &Status) {
    out.push_str("<section id=\"incidents\"><h2>Incidents, last 30 days</h2>\n");
    if let Some(e) = &status.incidents_error {
        let _ = writeln!(
            out,
            "<p class=\"failed\">The record store could not be read: {}</p>",
            html_escape(e)
        );
    } else if status.incidents.is_empty() {
        out.push_str(
            "<p>None: no SECRET or higher disclosure blocked, no overdue ISA cited.</p>\n",
        );
    } else {
        out.push_str("<table><tr><th>time (UTC)</th><th>incident</th><th>marking</th><th>from</th><th>to</th><th>ISA</th><th>rule</th><th>reason</th></tr>\n");
        for i in &status.incidents {
            let _ = writeln!(
                out,
                "<tr class=\"incident\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(&i.time),
                match i.kind {
                    "classified-blocked" => "classified material blocked",
                    "isa-overdue" => "overdue ISA cited",
                    other => other,
                },
                html_escape(&i.label),
                html_escape(&i.sender),
                html_escape(&i.recipient),
                html_escape(i.isa.as_deref().unwrap_or("")),
                html_escape(&i.rules.join(", ")),
                html_escape(&i.reason),
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

fn queue_section(out: &mut String, status: &Status) {
    let deferred = status
        .queue
        .iter()
        .filter(|q| q.last_error.is_some())
        .count();
    let _ = writeln!(
        out,
        "<section id=\"queue\"><h2>Delivery queue</h2><p>{} waiting, {deferred} deferred, {} bounced recently.</p>",
        status.queue.len(),
        status.bounced.len()
    );
    if !status.queue.is_empty() {
        out.push_str("<table><tr><th>queue id</th><th>from</th><th>to</th><th>marking</th><th>accepted (UTC)</th><th>attempts</th><th>last error</th><th>next attempt</th></tr>\n");
        for q in &status.queue {
            let _ = writeln!(
                out,
                "<tr class=\"{}\"><td class=\"id\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"error\">{}</td><td>{}</td></tr>",
                if q.last_error.is_some() { "deferred" } else { "queued" },
                html_escape(&q.id),
                html_escape(if q.sender.is_empty() { "(bounce)" } else { &q.sender }),
                html_escape(&q.recipients.join(", ")),
                html_escape(&q.marking),
                time(&q.received),
                q.attempts,
                html_escape(q.last_error.as_deref().unwrap_or("")),
                q.next_attempt.as_ref().map(time).unwrap_or_default(),
            );
        }
        out.push_str("</table>\n");
    }
    if !status.bounced.is_empty() {
        out.push_str("<h3>Bounced</h3><table><tr><th>time (UTC)</th><th>queue id</th><th>from</th><th>to</th><th>reason</th></tr>\n");
        for b in &status.bounced {
            let _ = writeln!(
                out,
                "<tr class=\"bounced\"><td>{}</td><td class=\"id\">{}</td><td>{}</td><td>{}</td><td class=\"error\">{}</td></tr>",
                time(&b.at),
                html_escape(&b.id),
                html_escape(&b.sender),
                html_escape(&b.recipients.join(", ")),
                html_escape(&b.reason),
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

fn reload_history(out: &mut String, status: &Status) {
    out.push_str("<section id=\"reloads\"><h2>Policy reloads</h2>\n<table><tr><th>time (UTC)</th><th>result</th><th>version in force</th><th>detail</th></tr>\n");
    for r in &status.reloads {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
            time(&r.at),
            match (r.ok, r.recovered) {
                (false, _) => "failed",
                (true, true) => "recovered",
                (true, false) => "ok",
            },
            match (r.ok, r.recovered) {
                (false, _) => "rejected",
                (true, true) => "recovered",
                (true, false) => "ok",
            },
            html_escape(&r.version[..12.min(r.version.len())]),
            if r.ok {
                html_escape(&r.message)
            } else {
                format!("<pre>{}</pre>", html_escape(&r.message))
            },
        );
    }
    out.push_str("</table></section>\n");
}

/// Horizontal stacked bars (allowed green, blocked red) per class, as inline SVG.
fn chart(counts: &BTreeMap<String, (u64, u64)>) -> String {
    if counts.is_empty() {
        return "<p>No decisions in the last 24 hours.</p>\n".into();
    }
    let max = counts
        .values()
        .map(|(a, b)| a + b)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (label_w, bar_w, row_h) = (220.0, 480.0, 26.0);
    let height = row_h * counts.len() as f64 + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"decisions by class and verdict\">\n",
        label_w + bar_w + 140.0
    );
    for (i, (class, (allowed, blocked))) in counts.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let wa = bar_w * *allowed as f64 / max;
        let wb = bar_w * *blocked as f64 / max;
        let _ = writeln!(
            svg,
            "<text x=\"0\" y=\"{ty}\" font-size=\"13\">{name}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{wa:.1}\" height=\"18\" fill=\"#3a8d48\"><title>{allowed} allowed</title></rect><rect x=\"{xb:.1}\" y=\"{y}\" width=\"{wb:.1}\" height=\"18\" fill=\"#c0392b\"><title>{blocked} blocked</title></rect><text x=\"{xt:.1}\" y=\"{ty}\" font-size=\"12\">{allowed} allowed, {blocked} blocked</text>",
            ty = y + 14.0,
            name = html_escape(class),
            xb = label_w + wa,
            xt = label_w + wa + wb + 6.0,
        );
    }
    let _ = writeln!(
        svg,
        "<rect x=\"{label_w}\" y=\"{ly}\" width=\"12\" height=\"12\" fill=\"#3a8d48\"/><text x=\"{}\" y=\"{ty}\" font-size=\"12\">allowed</text><rect x=\"{}\" y=\"{ly}\" width=\"12\" height=\"12\" fill=\"#c0392b\"/><text x=\"{}\" y=\"{ty}\" font-size=\"12\">blocked</text></svg>",
        label_w + 16.0,
        label_w + 90.0,
        label_w + 106.0,
        ly = height - 20.0,
        ty = height - 10.0,
    );
    svg
}
