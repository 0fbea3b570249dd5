//! `markgate policy ...`: commands for security managers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use chrono::{DateTime, FixedOffset, Utc};
use clap::Subcommand;

use markgate::decision::{decide, RecipientDecision, Verdict};
use markgate::facts::{self, Recipient};
use markgate::marking::Marking;
use markgate::policy::Policy;
use markgate::policyops::matrix::Matrix;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy directory and report every error with file, line and column
    /// (exit 0 valid, 2 invalid).
    Check {
        /// Policy directory (default ./policy).
        dir: Option<PathBuf>,
    },
    /// Explain, for a person, what happens to a marking sent to an address and which rule decides.
    ///
    /// Exit status: 0 allowed, 1 blocked, 2 error (an unknown marking, a bad argument, an
    /// invalid policy).
    Explain {
        #[arg(long, default_value_os_t = super::default_policy_dir())]
        policy: PathBuf,
        /// Marking class, optionally with descriptors ("OFFICIAL-SENSITIVE PERSONAL").
        #[arg(long)]
        marking: String,
        /// Recipient address (repeat for several).
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        /// ISA cited, as in X-ISA-Reference.
        #[arg(long)]
        isa: Option<String>,
        /// Declared purpose, as in X-Disclosure-Purpose.
        #[arg(long)]
        purpose: Option<String>,
        /// Declared legal basis, as in X-Legal-Basis.
        #[arg(long)]
        legal_basis: Option<String>,
        /// Declared consent (given, withheld, not-required), as in X-Consent.
        #[arg(long, value_parser = parse_consent)]
        consent: Option<String>,
        /// Decide as at this time (a date or RFC 3339). Default: now.
        #[arg(long, value_parser = super::parse_at)]
        at: Option<DateTime<FixedOffset>>,
    },
    /// Print the handling matrix: marking classes x destination classes, allowed or not and
    /// the actions required.
    Matrix {
        #[arg(long, default_value_os_t = super::default_policy_dir())]
        policy: PathBuf,
        #[arg(long, value_enum, default_value_t = MatrixFormat::Text)]
        format: MatrixFormat,
    },
    /// Show how the handling matrix changes from OLD to NEW, cell by cell
    /// (exit 0 no change, 1 changes, 2 error).
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// Print the changes as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replay the recorded decisions of a period under a candidate policy and list what
    /// would change, by rule (exit 0 no change, 1 changes, 2 error).
    Simulate {
        /// The candidate policy directory.
        #[arg(long)]
        candidate: PathBuf,
        /// Start of the period: a duration ago ("7d"), a date or RFC 3339 time.
        #[arg(long, default_value = "7d", value_parser = super::audit::parse_since)]
        since: DateTime<Utc>,
        #[command(flatten)]
        store: super::audit::StoreArgs,
        /// Print the changes as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the policy's own test cases (DIR/tests/*.toml); exit 1 if any fails.
    Test {
        /// Policy directory (default ./policy).
        dir: Option<PathBuf>,
        /// Day the cases are decided on when they give none (a date or RFC 3339).
        /// Default: today.
        #[arg(long, value_parser = super::parse_at_day)]
        at: Option<chrono::NaiveDate>,
        /// Also fail when a policy rule is not exercised by any case.
        #[arg(long)]
        require_coverage: bool,
    },
}

/// `--consent`, read as the X-Consent header is: one of its values, in its canonical form.
fn parse_consent(s: &str) -> Result<String, String> {
    markgate::facts::Consent::parse(s)
        .map(|c| c.as_str().to_string())
        .ok_or_else(|| {
            format!(
                "{s:?} is not a consent value: given, withheld or not-required (as in X-Consent)"
            )
        })
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MatrixFormat {
    Text,
    Markdown,
    Html,
    Json,
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { dir } => check(dir.unwrap_or_else(super::default_policy_dir)),
        PolicyCommand::Explain {
            policy,
            marking,
            to,
            isa,
            purpose,
            legal_basis,
            consent,
            at,
        } => {
            let declared = markgate::facts::Declared::given(
                purpose.as_deref(),
                legal_basis.as_deref(),
                consent.as_deref(),
            );
            explain(policy, &marking, to, isa, declared, at)
        }
        PolicyCommand::Matrix { policy, format } => {
            let policy = super::load_policy(&policy)?;
            let matrix = Matrix::of(&policy);
            match format {
                MatrixFormat::Text => print!("{}", matrix.to_text()),
                MatrixFormat::Markdown => print!("{}", matrix.to_markdown()),
                MatrixFormat::Html => print!("{}", matrix.to_html()),
                MatrixFormat::Json => println!("{}", serde_json::to_string_pretty(&matrix)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Diff { old, new, json } => diff(&old, &new, json),
        PolicyCommand::Simulate {
            candidate,
            since,
            store,
            json,
        } => simulate(&candidate, since, &store, json),
        PolicyCommand::Test {
            dir,
            at,
            require_coverage,
        } => test(
            dir.unwrap_or_else(super::default_policy_dir),
            at,
            require_coverage,
        ),
    }
}

fn simulate(
    candidate: &std::path::Path,
    since: DateTime<Utc>,
    store: &super::audit::StoreArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let candidate_policy = super::load_policy(candidate)?;
    let config = store.config()?;
    let db = store.db(&config);
    let records =
        markgate::record::Store::open_read_only(&db)?.query(&markgate::record::Filter {
            since: Some(since),
            ..Default::default()
        })?;
    let recorded: Vec<markgate::policyops::simulate::Recorded> =
        records.iter().map(|r| (&r.record).into()).collect();
    let sim = markgate::policyops::simulate::replay(&candidate_policy, &recorded);
    if json {
        println!("{}", serde_json::to_string_pretty(&sim)?);
    } else {
        println!(
            "replayed {} recorded decision(s) since {} under {}: {} would change",
            sim.replayed,
            since.format("%Y-%m-%d %H:%M UTC"),
            candidate.display(),
            sim.changes.len()
        );
        for ((kind, rule), n) in sim.by_rule() {
            println!("  {n:>5}  {kind} by {rule}");
        }
        for c in &sim.changes {
            let actions = |a: &[markgate::policy::Action]| {
                a.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
            };
            println!(
                "{} {} {} -> {}: {} {} [{}] => {} [{}] ({}): {}",
                c.time.format("%Y-%m-%d %H:%M:%S"),
                c.channel,
                c.sender,
                c.recipient,
                c.marking,
                c.old_verdict.as_str(),
                actions(&c.old_actions),
                c.new_verdict.as_str(),
                actions(&c.new_actions),
                c.new_rules.join(", "),
                c.new_reason
            );
        }
    }
    Ok(if sim.changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn diff(old: &std::path::Path, new: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let (a, b) = (super::load_policy(old)?, super::load_policy(new)?);
    let changes = markgate::policyops::matrix::diff(&Matrix::of(&a), &Matrix::of(&b));
    if json {
        println!("{}", serde_json::to_string_pretty(&changes)?);
    } else if changes.is_empty() {
        println!("no change to the handling matrix");
    } else {
        let show = |c: &Option<markgate::policyops::matrix::Cell>| match c {
            Some(c) => format!("{} [{}]", c.summary(), c.rules.join(", ")),
            None => "(not in policy)".to_string(),
        };
        for c in &changes {
            println!(
                "{} -> {}: {}  =>  {}",
                c.class,
                c.destination,
                show(&c.old),
                show(&c.new)
            );
        }
        println!("{} cell(s) changed", changes.len());
    }
    Ok(if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn test(
    dir: PathBuf,
    at: Option<chrono::NaiveDate>,
    require_coverage: bool,
) -> anyhow::Result<ExitCode> {
    let policy = super::load_policy(&dir)?;
    let today = at.unwrap_or_else(|| Utc::now().date_naive());
    let report = match markgate::policyops::test::run(&policy, &dir.join("tests"), today) {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            return Ok(ExitCode::from(super::EXIT_ERROR));
        }
    };
    for r in &report.results {
        let file = r
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if r.passed() {
            println!("PASS {file}: {}", r.name);
        } else {
            println!("FAIL {file}: {}", r.name);
            for d in &r.differences {
                println!("    {d}");
            }
        }
    }
    if !report.uncovered.is_empty() {
        println!("rules no case exercises: {}", report.uncovered.join(", "));
    }
    println!(
        "policy tests: {} passed, {} failed",
        report.passed(),
        report.failed()
    );
    let failed = report.failed() > 0
        || report.results.is_empty()
        || (require_coverage && !report.uncovered.is_empty());
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn check(dir: PathBuf) -> anyhow::Result<ExitCode> {
    match Policy::load(&dir) {
        Ok(p) => {
            println!(
                "{} is valid ({} marking classes, {} destination classes, {} partners, {} ISAs, {} rules; version {})",
                as_dir(&dir),
                p.markings.classes.len(),
                p.destinations.names.len(),
                p.partners.len(),
                p.isas.len(),
                p.rules.len(),
                &p.version[..12]
            );
            let holding: Vec<String> = p
                .rules
                .iter()
                .filter_map(|r| Some(format!("{} ({})", r.id, r.approval.as_ref()?)))
                .collect();
            if !holding.is_empty() || !p.approvals.approvers.is_empty() {
                println!(
                    "held for approval by: {}; {} approvers in {} roles ({}); holds expire after {}, urgent releases are reviewed within {}",
                    if holding.is_empty() { "no rule".to_string() } else { holding.join(", ") },
                    p.approvals.approvers.len(),
                    p.approvals.roles.len(),
                    p.approvals.roles.join(" < "),
                    humantime::format_duration(p.approvals.expire_after),
                    humantime::format_duration(p.approvals.review_within),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            eprintln!("{} is invalid: {} error(s)", as_dir(&dir), errors.0.len());
            Ok(ExitCode::from(super::EXIT_ERROR))
        }
    }
}

/// A directory as given, written as one (`policy/`); anything else as given.
fn as_dir(dir: &std::path::Path) -> String {
    let shown = dir.display().to_string();
    if shown.ends_with('/') || !dir.is_dir() {
        shown
    } else {
        format!("{shown}/")
    }
}

fn explain(
    dir: PathBuf,
    marking_text: &str,
    to: Vec<String>,
    isa: Option<String>,
    declared: markgate::facts::Declared,
    at: Option<DateTime<FixedOffset>>,
) -> anyhow::Result<ExitCode> {
    let policy = super::load_policy(&dir)?;
    let Some(marking) = markgate::marking::read_text(marking_text, &policy.markings) else {
        bail!(
            "{marking_text:?} is not a marking class of this policy (classes: {})",
            policy.markings.class_names()
        );
    };
    let today = at
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now)
        .date_naive();
    let marking = Marking {
        sources: vec![],
        ..marking
    };
    let recipients = to.iter().map(|a| Recipient::mail(a, &policy)).collect();
    let facts = facts::given("", recipients, marking, isa.as_deref(), declared, today);
    let decision = decide(&facts, &policy);
    println!("Marking: {}", decision.marking.label);
    if let Some(isa) = &decision.isa {
        println!("ISA cited: {isa}");
    }
    for r in &decision.recipients {
        println!();
        println!("To {}", r.address);
        println!(
            "  destination: {}{}",
            r.destination,
            r.partner
                .as_deref()
                .map(|p| format!(" (partner: {p})"))
                .unwrap_or_default()
        );
        println!(
            "  disclosure:  {}",
            serde_json::to_value(r.disclosure)?.as_str().unwrap_or("")
        );
        println!(
            "  verdict:     {}",
            match (r.verdict, &r.approval) {
                (Verdict::Held, Some(role)) =>
                    format!("HELD - {}", RecipientDecision::held_for(role)),
                (Verdict::Allow, Some(role)) if r.urgent => format!(
                    "ALLOWED at once (urgent) - would be {}",
                    RecipientDecision::held_for(role)
                ),
                (Verdict::Block, _) => "BLOCKED".into(),
                _ => "ALLOWED".into(),
            }
        );
        if !r.actions.is_empty() {
            println!(
                "  required:    {}",
                r.actions
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for id in &r.rules {
            match policy.rules.iter().find(|rule| &rule.id == id) {
                Some(rule) => println!(
                    "  rule:        {id}{}",
                    rule.description
                        .as_deref()
                        .map(|d| format!(" - {d}"))
                        .unwrap_or_default()
                ),
                None => println!("  rule:        {id} (built in)"),
            }
        }
        println!("  reason:      {}", r.reason);
        if !r.would_block.is_empty() {
            println!(
                "  dry run:     would be blocked by {}",
                r.would_block.join(", ")
            );
        }
    }
    Ok(match decision.verdict {
        Verdict::Allow | Verdict::Held => ExitCode::SUCCESS,
        Verdict::Block => ExitCode::from(1),
    })
}
