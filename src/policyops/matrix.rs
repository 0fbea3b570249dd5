//! The handling matrix: marking classes × destination classes, each cell saying whether a
//! one-off disclosure is allowed and what it requires. It is the one page staff read
//! (`markgate policy matrix`), and comparing two matrices shows what a policy change does
//! (`markgate policy diff`). Computed from the rules by the same pure evaluation the
//! gateway uses, so it cannot drift from enforcement.

use std::fmt::Write as _;

use serde::Serialize;

use crate::decision::rules::approval_role;
use crate::decision::{evaluate_rules, Disclosure, Verdict};
use crate::policy::{Action, Policy};

/// One cell: what happens to a class sent to a destination class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub verdict: Verdict,
    pub actions: Vec<Action>,
    /// Rules that decided the cell (the blocking rules, or every rule that fired).
    pub rules: Vec<String>,
    /// Block rules in dry-run mode that would block here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<String>,
    /// Allowed once an approver of this role approves (the cell is `held`), or, with
    /// `descriptor`, only when the marking carries that descriptor.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approval: Vec<HeldWhen>,
}

/// A cell's recipients wait for an approver of `role` (when the marking carries
/// `descriptor`, if one is named).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldWhen {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub descriptor: Option<String>,
    pub role: String,
}

impl Cell {
    /// Short text: `allow: tls, statement`, `block`, `allow (dry run would block)`.
    pub fn summary(&self) -> String {
        let mut s = match self.approval.iter().find(|h| h.descriptor.is_none()) {
            Some(held) => crate::decision::RecipientDecision::held_for(&held.role),
            None => String::from(self.verdict.as_str()),
        };
        if !self.actions.is_empty() {
            s.push_str(": ");
            s.push_str(
                &self
                    .actions
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if !self.dry_run.is_empty() {
            s.push_str(" (dry run would block)");
        }
        for held in self.approval.iter().filter(|h| h.descriptor.is_some()) {
            let _ = write!(
                s,
                "; {}: {}",
                held.descriptor.as_deref().unwrap_or_default(),
                crate::decision::RecipientDecision::held_for(&held.role)
            );
        }
        s
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub class: String,
    pub rank: u32,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub policy_version: String,
    pub destinations: Vec<String>,
    pub rows: Vec<Row>,
}

impl Matrix {
    /// Compute the matrix of a policy for one-off disclosures (inside the force: internal).
    pub fn of(policy: &Policy) -> Matrix {
        let mut order: Vec<usize> = (0..policy.markings.classes.len()).collect();
        order.sort_by_key(|&i| policy.markings.classes[i].rank);
        let destinations = policy.destinations.names.clone();
        let rows = order
            .into_iter()
            .map(|i| {
                let class = &policy.markings.classes[i];
                let cells = destinations
                    .iter()
                    .map(|dest| {
                        let disclosure = if *dest == policy.destinations.internal {
                            Disclosure::Internal
                        } else {
                            Disclosure::OneOff
                        };
                        let outcome = evaluate_rules(policy, &[Some(i)], dest, disclosure, &[]);
                        let dry_run = outcome
                            .dry_run_blocks
                            .iter()
                            .map(|r| r.id.clone())
                            .collect();
                        if let Some(_rule) = outcome.blocking {
                            Cell {
                                verdict: Verdict::Block,
                                actions: vec![],
                                rules: outcome
                                    .fired
                                    .iter()
                                    .filter(|r| {
                                        r.effect == crate::policy::Effect::Block && !r.dry_run
                                    })
                                    .map(|r| r.id.clone())
                                    .collect(),
                                dry_run,
                                approval: Vec::new(),
                            }
                        } else if !outcome.allowed {
                            Cell {
                                verdict: Verdict::Block,
                                actions: vec![],
                                rules: vec![crate::decision::builtin::DEFAULT_DENY.into()],
                                dry_run,
                                approval: Vec::new(),
                            }
                        } else {
                            let rules: Vec<String> =
                                outcome.fired.iter().map(|r| r.id.clone()).collect();
                            let approval = held_when(policy, i, dest, disclosure, &rules);
                            Cell {
                                verdict: match approval.iter().any(|h| h.descriptor.is_none()) {
                                    true => Verdict::Held,
                                    false => Verdict::Allow,
                                },
                                actions: outcome.actions,
                                rules,
                                dry_run,
                                approval,
                            }
                        }
                    })
                    .collect();
                Row {
                    class: class.name.clone(),
                    rank: class.rank,
                    cells,
                }
            })
            .collect();
        Matrix {
            policy_version: policy.version.clone(),
            destinations,
            rows,
        }
    }

    pub fn cell(&self, class: &str, destination: &str) -> Option<&Cell> {
        let col = self.destinations.iter().position(|d| d == destination)?;
        self.rows
            .iter()
            .find(|r| r.class == class)
            .map(|r| &r.cells[col])
    }

    pub fn to_text(&self) -> String {
        let header: Vec<String> = std::iter::once("class".to_string())
            .chain(self.destinations.iter().cloned())
            .collect();
        let body: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                std::iter::once(r.class.clone())
                    .chain(r.cells.iter().map(Cell::summary))
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                std::iter::once(&header)
                    .chain(body.iter())
                    .map(|row| row[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (n, row) in std::iter::once(&header).chain(body.iter()).enumerate() {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
            if n == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                let _ = writeln!(out, "{}", rule.join("  "));
            }
        }
        out.push_str(LEGEND);
        out
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::from("| class |");
        for d in &self.destinations {
            let _ = write!(out, " {d} |");
        }
        out.push_str("\n|---|");
        for _ in &self.destinations {
            out.push_str("---|");
        }
        out.push('\n');
        for r in &self.rows {
            let _ = write!(out, "| {} |", r.class);
            for c in &r.cells {
                let text = match c.verdict {
                    Verdict::Allow | Verdict::Held => c.summary(),
                    Verdict::Block => format!("**{}**", c.summary()),
                };
                let _ = write!(out, " {text} |");
            }
            out.push('\n');
        }
        out.push('\n');
        out.push_str(LEGEND);
        out
    }

    /// A standalone HTML page (also embedded in the admin page).
    pub fn to_html(&self) -> String {
        let mut out = String::from(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>markgate handling matrix</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}th,td{border:1px solid #999;padding:.4em .8em;text-align:left}td.allow{background:#e3f4e1}td.block{background:#f8d7d3;font-weight:bold}td.held{background:#fdf1c7}</style></head><body>\n<h1>Handling matrix</h1>\n",
        );
        out.push_str(&self.html_table());
        let _ = write!(
            out,
            "<p>Policy version <code>{}</code>.</p>\n<pre>{}</pre>\n</body></html>\n",
            &self.policy_version[..12.min(self.policy_version.len())],
            html_escape(LEGEND)
        );
        out
    }

    /// Just the `<table>` element.
    pub fn html_table(&self) -> String {
        let mut out = String::from("<table class=\"matrix\">\n<tr><th>class</th>");
        for d in &self.destinations {
            let _ = write!(out, "<th>{}</th>", html_escape(d));
        }
        out.push_str("</tr>\n");
        for r in &self.rows {
            let _ = write!(out, "<tr><th>{}</th>", html_escape(&r.class));
            for c in &r.cells {
                let _ = write!(
                    out,
                    "<td class=\"{}\" title=\"{}\">{}</td>",
                    c.verdict.as_str(),
                    html_escape(&c.rules.join(", ")),
                    html_escape(&c.summary())
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
        out
    }
}

/// When an allowed cell's recipients are held: for every marking of the class (`rules`
/// fired without descriptors), or only with one of the class's descriptors.
fn held_when(
    policy: &Policy,
    class: usize,
    dest: &str,
    disclosure: Disclosure,
    rules: &[String],
) -> Vec<HeldWhen> {
    if let Some(role) = approval_role(policy, rules) {
        return vec![HeldWhen {
            descriptor: None,
            role,
        }];
    }
    policy.markings.classes[class]
        .descriptors
        .iter()
        .filter_map(|d| {
            let with = evaluate_rules(
                policy,
                &[Some(class)],
                dest,
                disclosure,
                std::slice::from_ref(d),
            );
            let fired: Vec<String> = with.fired.iter().map(|r| r.id.clone()).collect();
            (with.blocking.is_none() && with.allowed)
                .then(|| approval_role(policy, &fired))
                .flatten()
                .map(|role| HeldWhen {
                    descriptor: Some(d.clone()),
                    role,
                })
        })
        .collect()
}

const LEGEND: &str = "tls: the next hop must use verified TLS; encrypt: sealed into an age bundle for the partner's key (no key: blocked); statement: the one-off security statement is stamped on (not needed under a live ISA covering the partner and the class).\n";

/// Escape text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One cell that differs between two matrices.
#[derive(Debug, Clone, Serialize)]
pub struct CellChange {
    pub class: String,
    pub destination: String,
    pub old: Option<Cell>,
    pub new: Option<Cell>,
}

/// Cell-by-cell difference; classes or destinations present on one side only show as
/// changes from or to nothing.
pub fn diff(old: &Matrix, new: &Matrix) -> Vec<CellChange> {
    let mut classes: Vec<&str> = old.rows.iter().map(|r| r.class.as_str()).collect();
    for r in &new.rows {
        if !classes.contains(&r.class.as_str()) {
            classes.push(&r.class);
        }
    }
    let mut dests: Vec<&str> = old.destinations.iter().map(String::as_str).collect();
    for d in &new.destinations {
        if !dests.contains(&d.as_str()) {
            dests.push(d);
        }
    }
    let mut changes = Vec::new();
    for class in &classes {
        for dest in &dests {
            let (a, b) = (old.cell(class, dest), new.cell(class, dest));
            let same = match (a, b) {
                (Some(a), Some(b)) => {
                    a.verdict == b.verdict
                        && a.actions == b.actions
                        && a.dry_run == b.dry_run
                        && a.approval == b.approval
                }
                (None, None) => true,
                _ => false,
            };
            if !same {
                changes.push(CellChange {
                    class: class.to_string(),
                    destination: dest.to_string(),
                    old: a.cloned(),
                    new: b.cloned(),
                });
            }
        }
    }
    changes
}
