//! Policy tests (`markgate policy test`): cases security managers write next to the policy
//! (`policy/tests/*.toml`), each a message or marking with sender, recipients and the
//! expected verdict, actions and rules, run through the same pure engine the gateway uses.
//!
//! ```toml
//! [[case]]
//! name = "RESTRICTED may not go to the internet"
//! marking = "RESTRICTED"            # or: message = """Subject: ...\n\nbody"""
//! to = ["someone@gmail.com"]
//! expect = { verdict = "block", rules = ["restricted-not-internet"] }
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::decision::{decide, Decision};
use crate::facts::{self, Declared, Recipient};
use crate::policy::source::{PolicyError, SourceFile};
use crate::policy::Policy;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default, rename = "case")]
    cases: Vec<TestCase>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    /// A marking written on its own ("OFFICIAL-SENSITIVE PERSONAL").
    #[serde(default)]
    pub marking: Option<String>,
    /// A whole RFC 5322 message, inline.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default = "default_from")]
    pub from: String,
    pub to: Vec<String>,
    /// ISA cited (as X-ISA-Reference would).
    #[serde(default)]
    pub isa: Option<String>,
    /// Declared purpose, legal basis and consent (as the X-Disclosure-Purpose, X-Legal-Basis
    /// and X-Consent headers would).
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub legal_basis: Option<String>,
    #[serde(default)]
    pub consent: Option<String>,
    /// Urgency declared (as X-Disclosure-Urgency would: `preserve-life` is urgent).
    #[serde(default)]
    pub urgency: Option<String>,
    /// Day of the decision (YYYY-MM-DD); default: today.
    #[serde(default)]
    pub at: Option<String>,
    /// Expectation for the message as a whole, and for each recipient unless overridden.
    pub expect: Expect,
    /// Per-recipient expectations.
    #[serde(default)]
    pub recipient: Vec<RecipientExpect>,
}

fn default_from() -> String {
    "sender@westmidlands.pnn.police.uk".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub verdict: String,
    /// Actions every allowed recipient must require (exactly).
    #[serde(default)]
    pub actions: Option<Vec<String>>,
    /// Rules that must have fired (for every recipient; others may fire too).
    #[serde(default)]
    pub rules: Option<Vec<String>>,
    /// Expected marking class (checks the marking engine on `message` cases).
    #[serde(default)]
    pub class: Option<String>,
    /// Dry-run rules expected to report that they would have blocked.
    #[serde(default)]
    pub would_block: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientExpect {
    pub address: String,
    pub verdict: String,
    #[serde(default)]
    pub actions: Option<Vec<String>>,
    #[serde(default)]
    pub rules: Option<Vec<String>>,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub file: PathBuf,
    pub name: String,
    /// Empty when the case passed; otherwise one line per difference (expected vs actual).
    pub differences: Vec<String>,
    /// Rule ids that fired.
    pub fired: Vec<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Everything a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub results: Vec<CaseResult>,
    /// Policy rules no case fired.
    pub uncovered: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

/// Run every `*.toml` in `tests_dir` against `policy`. Malformed test files are errors with
/// file, line and column.
pub fn run(
    policy: &Policy,
    tests_dir: &Path,
    today: NaiveDate,
) -> Result<Report, Vec<PolicyError>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(tests_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) => {
            return Err(vec![PolicyError {
                file: tests_dir.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read policy tests: {}", crate::config::io_reason(&e)),
            }])
        }
    };
    files.sort();
    let mut errors = Vec::new();
    let mut report = Report::default();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(PolicyError {
                    file: path.clone(),
                    line: 1,
                    column: 1,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let source = SourceFile::new(&path, text);
        let parsed: TestFile = match toml::from_str(&source.text) {
            Ok(p) => p,
            Err(e) => {
                errors.push(
                    source.error_at(e.span().map(|s| s.start).unwrap_or(0), e.message().trim()),
                );
                continue;
            }
        };
        for case in parsed.cases {
            report.results.push(run_case(policy, &path, &case, today));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let fired: BTreeSet<&str> = report
        .results
        .iter()
        .flat_map(|r| r.fired.iter().map(String::as_str))
        .collect();
    report.uncovered = policy
        .rules
        .iter()
        .filter(|r| !fired.contains(r.id.as_str()))
        .map(|r| r.id.clone())
        .collect();
    Ok(report)
}

fn run_case(policy: &Policy, file: &Path, case: &TestCase, today: NaiveDate) -> CaseResult {
    let mut result = CaseResult {
        file: file.to_path_buf(),
        name: case.name.clone(),
        differences: vec![],
        fired: vec![],
    };
    let today = match case
        .at
        .as_deref()
        .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"))
    {
        None => today,
        Some(Ok(d)) => d,
        Some(Err(_)) => {
            result.differences.push(format!(
                "at: {:?} is not a date (YYYY-MM-DD)",
                case.at.as_deref().unwrap_or("")
            ));
            return result;
        }
    };
    let declared = Declared {
        urgent: case
            .urgency
            .as_deref()
            .is_some_and(|u| facts::is_urgent(u.as_bytes())),
        ..Declared::given(
            case.purpose.as_deref(),
            case.legal_basis.as_deref(),
            case.consent.as_deref(),
        )
    };
    let facts = match (&case.marking, &case.message) {
        (Some(m), None) => match crate::marking::read_text(m, &policy.markings) {
            Some(marking) => {
                let to = case.to.iter().map(|a| Recipient::mail(a, policy)).collect();
                facts::given(
                    &case.from,
                    to,
                    marking,
                    case.isa.as_deref(),
                    declared,
                    today,
                )
            }
            None => {
                result.differences.push(format!(
                    "marking: {m:?} is not a marking class of this policy"
                ));
                return result;
            }
        },
        (None, Some(raw)) => {
            let raw = raw.replace("\r\n", "\n").replace('\n', "\r\n");
            match crate::message::parse(raw.as_bytes()) {
                Ok(parsed) => {
                    // What the case says wins over the message's own headers.
                    let mut facts =
                        facts::from_message(&parsed, &case.from, &case.to, policy, today);
                    facts.declared = declared.or(facts.declared);
                    if let Some(isa) = case.isa.as_deref().and_then(|i| facts::text(i.as_bytes())) {
                        facts.isa_reference = Some(isa);
                    }
                    facts
                }
                Err(e) => {
                    result.differences.push(format!("message: {e}"));
                    return result;
                }
            }
        }
        _ => {
            result
                .differences
                .push("give exactly one of `marking` and `message`".into());
            return result;
        }
    };
    let decision = decide(&facts, policy);
    result.fired = decision
        .recipients
        .iter()
        .flat_map(|r| r.rules.iter().cloned())
        .collect();
    compare(case, &decision, &mut result.differences);
    result
}

fn names(actions: &[crate::policy::Action]) -> Vec<String> {
    actions.iter().map(|a| a.as_str().to_string()).collect()
}

fn compare(case: &TestCase, decision: &Decision, diffs: &mut Vec<String>) {
    if decision.verdict.as_str() != case.expect.verdict {
        diffs.push(format!(
            "verdict: expected {}, got {}",
            case.expect.verdict,
            decision.verdict.as_str()
        ));
    }
    if let Some(class) = &case.expect.class {
        if !decision.marking.class.eq_ignore_ascii_case(class) {
            diffs.push(format!(
                "class: expected {class}, got {}",
                decision.marking.class
            ));
        }
    }
    if let Some(want) = &case.expect.would_block {
        for r in &decision.recipients {
            let missing: Vec<&String> =
                want.iter().filter(|w| !r.would_block.contains(w)).collect();
            if !missing.is_empty() {
                diffs.push(format!(
                    "{}: would_block: expected [{}], got [{}]",
                    r.address,
                    want.join(", "),
                    r.would_block.join(", ")
                ));
            }
        }
    }
    for r in &decision.recipients {
        let specific = case
            .recipient
            .iter()
            .find(|e| e.address.eq_ignore_ascii_case(&r.address));
        let (verdict, actions, rules) = match specific {
            Some(e) => (Some(&e.verdict), e.actions.as_ref(), e.rules.as_ref()),
            None => (
                None,
                case.expect.actions.as_ref(),
                case.expect.rules.as_ref(),
            ),
        };
        if let Some(v) = verdict {
            if r.verdict.as_str() != v {
                diffs.push(format!(
                    "{}: verdict: expected {v}, got {} ({})",
                    r.address,
                    r.verdict.as_str(),
                    r.reason
                ));
            }
        }
        if let Some(want) = actions {
            let mut want = want.clone();
            want.sort();
            let mut got = names(&r.actions);
            got.sort();
            if want != got {
                diffs.push(format!(
                    "{}: actions: expected [{}], got [{}]",
                    r.address,
                    want.join(", "),
                    got.join(", ")
                ));
            }
        }
        if let Some(want) = rules {
            let missing: Vec<&String> = want.iter().filter(|w| !r.rules.contains(w)).collect();
            if !missing.is_empty() {
                diffs.push(format!(
                    "{}: rules: expected [{}] to fire, got [{}]",
                    r.address,
                    want.join(", "),
                    r.rules.join(", ")
                ));
            }
        }
    }
    for e in &case.recipient {
        if !decision
            .recipients
            .iter()
            .any(|r| r.address.eq_ignore_ascii_case(&e.address))
        {
            diffs.push(format!(
                "{}: expected as a recipient, but the case does not send to it",
                e.address
            ));
        }
    }
}
