//! `markgate serve`: run the gateway.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use markgate::config::Config;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML). Without it the embedded defaults apply; `MARKGATE_*`
    /// environment variables override either.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(markgate::serve::run(config))?;
    Ok(ExitCode::SUCCESS)
}
