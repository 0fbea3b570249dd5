//! Command-line interface: one module per command group. Errors become messages on stderr
//! and exit codes here, and only here.

mod audit;
mod bundle;
mod certs;
mod check;
mod deliveries;
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("markgate: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
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

/// Parse an RFC 3339 time argument.
pub fn check_time(s: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}
