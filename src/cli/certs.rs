//! `markgate certs dev`: development TLS material and the manifest signing key.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Generate a development CA, a server certificate signed by it, and an Ed25519
    /// manifest signing key (never for production).
    Dev {
        /// Output directory.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Extra host names for the server certificate (localhost and 127.0.0.1 are always in).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cmd: CertsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CertsCommand::Dev { dir, hosts, force } => {
            let existing: Vec<_> = ["dev-cert.pem", "dev-key.pem", "signing-key.pem"]
                .iter()
                .map(|f| dir.join(f))
                .filter(|p| p.exists())
                .collect();
            if !existing.is_empty() && !force {
                anyhow::bail!(
                    "{} already exists; pass --force to replace",
                    existing[0].display()
                );
            }
            let tls = markgate::certs::generate_dev_tls(&dir, &hosts)?;
            let (signing, public) = markgate::certs::generate_signing_key(&dir)?;
            println!("development CA:      {}", tls.ca_cert.display());
            println!("server certificate:  {}", tls.cert.display());
            println!("server key:          {}", tls.key.display());
            println!("signing key:         {}", signing.display());
            println!("signing public key:  {}", public.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
