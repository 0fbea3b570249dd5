//! `markgate isa ...`: the ISA register and its review dates.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};

use markgate::config::Config;
use markgate::decision::ISA_DUE_SOON_DAYS;
use markgate::record::register::{isa_due_report, isa_register, status_label};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsaFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Policy directory (default policy.dir from the configuration, ./policy).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Gateway configuration file (TOML), for policy.dir.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Status as on this day (a date or RFC 3339). Default: today (UTC).
    #[arg(long, value_parser = super::parse_at_day)]
    at: Option<NaiveDate>,
    #[arg(long, value_enum, default_value_t = IsaFormat::Table)]
    format: IsaFormat,
}

#[derive(Debug, Subcommand)]
pub enum IsaCommand {
    /// Every ISA: id, partners, purpose, ceiling, next review and status (live, due soon,
    /// overdue, not started, ended).
    List(RegisterArgs),
    /// ISAs overdue for review or due within a period (exit 0 none, 1 some, 2 error).
    Due {
        #[command(flatten)]
        register: RegisterArgs,
        /// Window ahead of today ("30d", "8w").
        #[arg(long, default_value = "30d", value_parser = super::audit::parse_duration)]
        within: std::time::Duration,
    },
}

pub fn run(cmd: IsaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        IsaCommand::List(args) => list(&args),
        IsaCommand::Due { register, within } => due(&register, within),
    }
}

fn load(args: &RegisterArgs) -> anyhow::Result<(markgate::policy::Policy, NaiveDate)> {
    let dir = match &args.policy {
        Some(dir) => dir.clone(),
        None => {
            Config::load_sections(args.config.as_deref(), &["policy"])
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .policy
                .dir
        }
    };
    let policy = super::load_policy(&dir)?;
    Ok((policy, args.at.unwrap_or_else(|| Utc::now().date_naive())))
}

fn list(args: &RegisterArgs) -> anyhow::Result<ExitCode> {
    let (policy, today) = load(args)?;
    let entries = isa_register(&policy, today, ISA_DUE_SOON_DAYS);
    if args.format == IsaFormat::Json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            [
                e.id.clone(),
                e.partners.join(", "),
                e.purpose.clone(),
                e.ceiling.clone(),
                e.next_review.to_string(),
                status_label(e.status).to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            [
                "id",
                "partners",
                "purpose",
                "ceiling",
                "next review",
                "status"
            ],
            &rows
        )
    );
    println!("{} ISA(s), status as on {today}", entries.len());
    Ok(ExitCode::SUCCESS)
}

fn due(args: &RegisterArgs, within: std::time::Duration) -> anyhow::Result<ExitCode> {
    let (policy, today) = load(args)?;
    let days = (within.as_secs() / 86_400) as i64;
    let due = isa_due_report(&policy, today, days);
    if args.format == IsaFormat::Json {
        println!("{}", serde_json::to_string_pretty(&due)?);
    } else if due.is_empty() {
        println!("no ISA is overdue or due for review within {days} days of {today}");
    } else {
        let rows: Vec<[String; 6]> = due
            .iter()
            .map(|d| {
                let isa = policy.isa(&d.id);
                [
                    d.id.clone(),
                    isa.map(|i| {
                        markgate::record::register::partner_names(&policy, &i.partners).join(", ")
                    })
                    .unwrap_or_default(),
                    d.next_review.to_string(),
                    status_label(d.status).to_string(),
                    if d.days_left < 0 {
                        format!("{} days ago", -d.days_left)
                    } else {
                        format!("in {} days", d.days_left)
                    },
                    isa.map(|i| i.purpose.clone()).unwrap_or_default(),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                ["id", "partners", "next review", "status", "when", "purpose"],
                &rows
            )
        );
    }
    Ok(if due.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let rows: Vec<Vec<&String>> = rows.iter().map(|r| r.iter().collect()).collect();
    super::table::render(&header, &rows)
}
