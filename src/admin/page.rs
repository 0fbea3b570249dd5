//! The admin page: one HTML page, no scripts, that a security manager reads — the handling
//! matrix, the ISA register with review status, decisions of the last 24 hours, and the
//! policy version with the result of the last reload.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::Utc;
use serde::Serialize;

use crate::decision::{Verdict, ISA_DUE_SOON_DAYS};
use crate::policyops::matrix::{html_escape, Matrix};
use crate::record::register::{isa_register, status_label, IsaEntry};
use crate::service::gateway::Gateway;

/// Everything the page shows, also served as JSON at `/api/status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub policy_version: String,
    pub last_reload: crate::service::gateway::ReloadStatus,
    pub isas: Vec<IsaEntry>,
    /// Decisions of the last 24 hours: class -> (allowed, blocked).
    pub decisions_24h: BTreeMap<String, (u64, u64)>,
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
    Status {
        policy_version: policy.version.clone(),
        last_reload: (*gateway.reload_status()).clone(),
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
        "table{border-collapse:collapse}th,td{border:1px solid #999;padding:.35em .7em;text-align:left}",
        "td.allow{background:#e3f4e1}td.block{background:#f8d7d3;font-weight:bold}",
        ".live{background:#e3f4e1}.due-soon{background:#fff1c2}.overdue{background:#f8d7d3;font-weight:bold}",
        ".not-started,.ended{background:#e8e8e8}.ok{color:#17692b}.failed{color:#b3261e}",
        "pre{background:#f4f4f4;padding:.6em;white-space:pre-wrap}",
        "</style></head><body>\n<h1>markgate</h1>\n"
    ));

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
