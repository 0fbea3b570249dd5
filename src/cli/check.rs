//! `markgate check`: decide one message and print the decision as JSON (a stable contract).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, FixedOffset, Utc};
use clap::Args;
use serde_json::json;

use markgate::decision::{decide, Verdict};
use markgate::{facts, message};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy directory.
    #[arg(long, default_value_os_t = super::default_policy_dir())]
    policy: PathBuf,
    /// Decide as at this time (a date or RFC 3339), for ISA review dates. Default: now.
    #[arg(long, value_parser = super::parse_at)]
    at: Option<DateTime<FixedOffset>>,
    /// Envelope sender.
    #[arg(long)]
    from: String,
    /// Envelope recipient (repeat for several).
    #[arg(long = "to", required = true)]
    to: Vec<String>,
    /// Message file (RFC 5322); `-` or nothing reads standard input.
    file: Option<PathBuf>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let policy = super::load_policy(&args.policy)?;
    let (raw, name) = match &args.file {
        Some(path) if path.as_os_str() != "-" => (
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        _ => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read standard input")?;
            (buf, "standard input".to_string())
        }
    };
    let parsed = message::parse(&raw).with_context(|| format!("{name} is not a message"))?;
    let today = args
        .at
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now)
        .date_naive();
    let facts = facts::from_message(&parsed, &args.from, &args.to, &policy, today);
    let decision = decide(&facts, &policy);
    let out = json!({
        "verdict": decision.verdict,
        "marking": decision.marking,
        "recipients": decision.recipients,
        "isa": decision.isa,
        "policy_version": decision.policy_version,
    });
    // A closed pipe (`markgate check ... | head`) is not an error worth a panic.
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&out)?
    );
    // Held recipients are not refused: the message is accepted and waits for an approver.
    Ok(match decision.verdict {
        Verdict::Allow | Verdict::Held => ExitCode::SUCCESS,
        Verdict::Block => ExitCode::from(1),
    })
}
