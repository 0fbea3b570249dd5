//! `markgate policy ...`: commands for security managers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use chrono::{DateTime, FixedOffset, Utc};
use clap::Subcommand;

use markgate::decision::{decide, MessageFacts, Verdict};
use markgate::marking::Marking;
use markgate::policy::Policy;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy directory and report every error with file, line and column
    /// (exit 0 valid, 2 invalid).
    Check {
        /// Policy directory (default ./policy).
        dir: Option<PathBuf>,
    },
    /// Explain, for a person, what happens to a marking sent to an address and which rule decides.
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
        /// Decide as at this time (RFC 3339). Default: now.
        #[arg(long, value_parser = super::check_time)]
        at: Option<DateTime<FixedOffset>>,
    },
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { dir } => check(dir.unwrap_or_else(super::default_policy_dir)),
        PolicyCommand::Explain {
            policy,
            marking,
            to,
            isa,
            at,
        } => explain(policy, &marking, to, isa, at),
    }
}

fn check(dir: PathBuf) -> anyhow::Result<ExitCode> {
    match Policy::load(&dir) {
        Ok(p) => {
            println!(
                "policy {} is valid: {} marking classes, {} destination classes, {} partners, {} ISAs, {} rules; version {}",
                dir.display(),
                p.markings.classes.len(),
                p.destinations.names.len(),
                p.partners.len(),
                p.isas.len(),
                p.rules.len(),
                &p.version[..12]
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            eprintln!(
                "policy {} is invalid: {} error(s)",
                dir.display(),
                errors.0.len()
            );
            Ok(ExitCode::from(super::EXIT_ERROR))
        }
    }
}

fn explain(
    dir: PathBuf,
    marking_text: &str,
    to: Vec<String>,
    isa: Option<String>,
    at: Option<DateTime<FixedOffset>>,
) -> anyhow::Result<ExitCode> {
    let policy = super::load_policy(&dir)?;
    let Some(marking) = markgate::marking::read_text(marking_text, &policy.markings) else {
        bail!(
            "{marking_text:?} is not a marking class of this policy (classes: {})",
            policy
                .markings
                .classes
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let today = at
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now)
        .date_naive();
    let facts = MessageFacts {
        sender: String::new(),
        recipients: to,
        marking: Marking {
            sources: vec![],
            ..marking
        },
        isa_reference: isa,
        today,
    };
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
            match r.verdict {
                Verdict::Allow => "ALLOWED",
                Verdict::Block => "BLOCKED",
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
    }
    Ok(match decision.verdict {
        Verdict::Allow => ExitCode::SUCCESS,
        Verdict::Block => ExitCode::from(1),
    })
}
