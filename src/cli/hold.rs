//! `markgate hold ...`: disclosures held for approval and urgent releases to review, for the
//! gateway's administrators (contract: exit 0 done, 1 refused, 2 error). They change the hold
//! store under its lock; a running `markgate serve` notices within a moment and does the
//! rest (delivers the approved copies, tells the sender of a rejection, records it all).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use markgate::config::Config;
use markgate::hold::{Hold, HoldError, HoldStore, Review, ReviewDecision};

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Gateway configuration file (TOML), for spool.dir and policy.dir.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Policy directory (approvers.toml); default policy.dir from the configuration.
    #[arg(long)]
    policy: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecisionArg {
    Justified,
    NotJustified,
}

#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Held disclosures: id, state, sender, recipients, marking, role needed, expiry.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// One held disclosure in full (as JSON).
    Show {
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Approve a held disclosure: its copies go with their normal handling (exit 1 refused).
    Approve {
        id: String,
        /// The approver's address, as in approvers.toml.
        #[arg(long)]
        approver: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Reject a held disclosure: nothing of it leaves; the sender is told why unless --silent.
    Reject {
        id: String,
        #[arg(long)]
        approver: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        silent: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Urgent releases (X-Disclosure-Urgency: preserve-life) and their reviews.
    Reviews {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Review an urgent release.
    Review {
        id: String,
        #[arg(long)]
        approver: String,
        #[arg(long, value_enum)]
        decision: DecisionArg,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(cmd: HoldCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        HoldCommand::List { json, store } => {
            let holds = open(&store)?.list()?;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&holds)?),
                false => print!("{}", holds_table(&holds)),
            }
            Ok(ExitCode::SUCCESS)
        }
        HoldCommand::Show { id, store } => {
            let hold = open(&store)?.show(&id)?;
            println!("{}", serde_json::to_string_pretty(&hold)?);
            Ok(ExitCode::SUCCESS)
        }
        HoldCommand::Approve {
            id,
            approver,
            reason,
            store,
        } => {
            let policy = policy(&store)?;
            decided(open(&store)?.approve(&policy.approvals, &id, &approver, &reason))
        }
        HoldCommand::Reject {
            id,
            approver,
            reason,
            silent,
            store,
        } => {
            let policy = policy(&store)?;
            decided(open(&store)?.reject(&policy.approvals, &id, &approver, &reason, silent))
        }
        HoldCommand::Reviews { json, store } => {
            let reviews = open(&store)?.reviews()?;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&reviews)?),
                false => print!("{}", reviews_table(&reviews)),
            }
            Ok(ExitCode::SUCCESS)
        }
        HoldCommand::Review {
            id,
            approver,
            decision,
            reason,
            store,
        } => {
            let policy = policy(&store)?;
            let decision = match decision {
                DecisionArg::Justified => ReviewDecision::Justified,
                DecisionArg::NotJustified => ReviewDecision::NotJustified,
            };
            match open(&store)?.review(&policy.approvals, &id, &approver, decision, &reason) {
                Ok(r) => {
                    println!("urgent release {} reviewed: {}", r.id, decision.as_str());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => refused_or_error(e),
            }
        }
    }
}

fn config(args: &StoreArgs) -> anyhow::Result<Config> {
    Config::load_sections(args.config.as_deref(), &["policy", "spool"]).map_err(anyhow::Error::from)
}

fn open(args: &StoreArgs) -> anyhow::Result<HoldStore> {
    let config = config(args)?;
    let dir = markgate::hold::dir_for_spool(&config.spool.dir);
    Ok(HoldStore::open(&dir)?)
}

fn policy(args: &StoreArgs) -> anyhow::Result<markgate::policy::Policy> {
    let dir = match &args.policy {
        Some(dir) => dir.clone(),
        None => config(args)?.policy.dir,
    };
    super::load_policy(&dir)
}

fn decided(result: Result<Hold, HoldError>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(hold) => {
            let by = hold.decided.as_ref().map(|d| d.by.as_str()).unwrap_or("");
            println!(
                "hold {} {} by {by}; the gateway {} now",
                hold.id,
                hold.state.as_str(),
                match hold.state {
                    markgate::hold::HoldState::Approved => "delivers it",
                    _ => "destroys the held copies",
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => refused_or_error(e),
    }
}

/// A refusal is exit 1 with its reason; anything else is an error (exit 2).
fn refused_or_error(e: HoldError) -> anyhow::Result<ExitCode> {
    match e {
        HoldError::Refused(refusal) => {
            eprintln!("markgate: refused: {refusal}");
            Ok(ExitCode::from(1))
        }
        other => Err(other.into()),
    }
}

fn holds_table(holds: &[Hold]) -> String {
    let rows: Vec<Vec<String>> = holds
        .iter()
        .map(|h| {
            vec![
                h.id.clone(),
                h.state.as_str().to_string(),
                h.sender.clone(),
                h.recipient_list(),
                h.label.clone(),
                h.role.clone(),
                h.expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ]
        })
        .collect();
    table(
        &[
            "id",
            "state",
            "sender",
            "held recipients",
            "marking",
            "role",
            "expires",
        ],
        &rows,
        "no held disclosures",
    )
}

fn reviews_table(reviews: &[Review]) -> String {
    let rows: Vec<Vec<String>> = reviews
        .iter()
        .map(|r| {
            let now = chrono::Utc::now();
            let state = match (&r.reviewed, r.is_overdue_at(now)) {
                (Some(given), _) => given.decision.as_str().to_string(),
                (None, true) => "OVERDUE".to_string(),
                (None, false) => "to review".to_string(),
            };
            vec![
                r.id.clone(),
                state,
                r.sender.clone(),
                r.recipients
                    .iter()
                    .map(|x| x.address.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                r.label.clone(),
                r.role.clone(),
                r.due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ]
        })
        .collect();
    table(
        &[
            "id",
            "review",
            "sender",
            "recipients",
            "marking",
            "role",
            "due",
        ],
        &rows,
        "no urgent releases",
    )
}

fn table(header: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    match rows.is_empty() {
        true => format!("{empty}\n"),
        false => super::table::render(header, rows),
    }
}
