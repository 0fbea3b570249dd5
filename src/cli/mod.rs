//! Command-line interface: one module per command group. Errors become messages on stderr
//! and exit codes here, and only here.

mod audit;
mod bundle;
mod certs;
mod check;
mod deliveries;
mod hold;
mod isa;
mod policy;
mod serve;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Secure exchange gateway: enforces protective-marking handling rules on mail and HTTP
/// between a police force and its partner agencies.
#[derive(Debug, Parser)]
#[command(name = "markgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decide a message against the policy and print the decision as JSON
    /// (exit 0 allowed, 1 blocked, 2 error).
    Check(check::CheckArgs),
    /// Validate, explain and inspect the handling policy.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run the gateway (SMTP and HTTP) on the embedded defaults or a config file.
    Serve(serve::ServeArgs),
    /// Generate development certificates and keys.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Seal, open and inspect encrypted bundles for partner agencies.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    /// Verify, search, report on and prune the decision records.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The ISA register: agreements, review dates and status.
    #[command(subcommand)]
    Isa(isa::IsaCommand),
    /// Disclosures held for approval, and urgent releases to review
    /// (exit 0 done, 1 refused, 2 error).
    #[command(subcommand)]
    Hold(hold::HoldCommand),
}

/// Exit code for errors (bad input, bad policy), distinct from "blocked".
pub const EXIT_ERROR: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Serve(args) => serve::run(args),
        Command::Certs(cmd) => certs::run(cmd),
        Command::Bundle(cmd) => bundle::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Isa(cmd) => isa::run(cmd),
        Command::Hold(cmd) => hold::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("markgate: {}", describe(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// An error and its causes on one line, each said once: a cause whose words its context
/// already gives ("cannot open record store x: unable to open database file" over "unable
/// to open database file") is not repeated, and the operating system's error numbers are
/// left out.
pub fn describe(e: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = without_os_error(&cause.to_string());
        if said.iter().any(|s| s.contains(text.trim())) {
            continue;
        }
        if text.contains('\n') {
            // A list (every error of a policy): each line stands on its own.
            said.push(text.trim_end().to_string());
            continue;
        }
        // A cause may repeat its context and add a library's own numbering
        // ("Error code 26: file is not a database"): keep only what is new.
        for part in text.split(": ") {
            let part = part.trim();
            let numbering = part
                .strip_prefix("Error code ")
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if part.is_empty() || numbering || said.iter().any(|s| s == part) {
                continue;
            }
            said.push(part.to_string());
        }
    }
    said.join(": ")
}

fn without_os_error(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(" (os error ") {
        out.push_str(&rest[..i]);
        rest = match rest[i..].find(')') {
            Some(end) => &rest[i + end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MARKGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The policy directory used when none is given.
pub fn default_policy_dir() -> PathBuf {
    PathBuf::from("policy")
}

/// Load a policy for a command, turning every validation error into one message.
pub fn load_policy(dir: &std::path::Path) -> anyhow::Result<markgate::policy::Policy> {
    markgate::policy::Policy::load(dir)
        .map_err(|errors| anyhow::anyhow!("invalid policy in {}:\n{errors}", dir.display()))
}

/// `--at`, in every command that takes it: a date (the start of that day, UTC) or an
/// RFC 3339 time.
pub fn parse_at(s: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc().fixed_offset());
    }
    Err(format!(
        "{s:?} is not a date (2026-11-25) or an RFC 3339 time (2026-11-25T09:30:00Z)"
    ))
}

/// `--at` where a day is what matters (ISA review status): the UTC day of [`parse_at`].
pub fn parse_at_day(s: &str) -> Result<chrono::NaiveDate, String> {
    parse_at(s).map(|t| t.with_timezone(&chrono::Utc).date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_is_a_date_or_a_time_and_nothing_else() {
        assert_eq!(
            parse_at("2026-11-25").unwrap().to_rfc3339(),
            "2026-11-25T00:00:00+00:00"
        );
        assert_eq!(
            parse_at_day("2026-11-25T23:30:00-05:00")
                .unwrap()
                .to_string(),
            "2026-11-26",
            "the day is the UTC day"
        );
        for bad in [
            "",
            "2026-13-01",
            "25/11/2026",
            "yesterday",
            "2026-11-25 10:00",
        ] {
            assert_eq!(
                parse_at(bad).unwrap_err(),
                format!(
                    "{:?} is not a date (2026-11-25) or an RFC 3339 time (2026-11-25T09:30:00Z)",
                    bad.trim()
                )
            );
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open record store x: {0}")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("unable to open database file")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn a_cause_is_said_once_without_os_numbers() {
        let io = std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::new(Outer(Inner(io)));
        assert_eq!(
            describe(&e),
            "cannot open record store x: unable to open database file: No such file or directory"
        );
        let list = anyhow::anyhow!("invalid policy in p:\na.toml:1:1: x: y\nb.toml:1:1: x: y");
        assert_eq!(
            describe(&list),
            "invalid policy in p:\na.toml:1:1: x: y\nb.toml:1:1: x: y"
        );
    }
}
