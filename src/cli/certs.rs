//! `markgate certs dev`: development TLS material and the manifest signing key;
//! `markgate certs dkim`: a DKIM signing key and the DNS record to publish.

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
    /// Generate a DKIM signing key for `[dkim] key` and print the DNS TXT record to publish
    /// at <selector>._domainkey.<domain>.
    Dkim {
        /// Ed25519 (RFC 8463) or RSA-2048.
        #[arg(long, value_enum, default_value_t = DkimAlgorithmArg::Ed25519)]
        algorithm: DkimAlgorithmArg,
        /// Where to write the private key (PEM).
        #[arg(long, default_value = "certs/dkim-key.pem")]
        key: PathBuf,
        /// The selector, to print the record's full name (default: the record alone).
        #[arg(long)]
        selector: Option<String>,
        /// The signing domain, to print the record's full name.
        #[arg(long)]
        domain: Option<String>,
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DkimAlgorithmArg {
    Ed25519,
    Rsa,
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
        CertsCommand::Dkim {
            algorithm,
            key,
            selector,
            domain,
            force,
        } => {
            if key.exists() && !force {
                anyhow::bail!("{} already exists; pass --force to replace", key.display());
            }
            let algorithm = match algorithm {
                DkimAlgorithmArg::Ed25519 => markgate::certs::DkimAlgorithm::Ed25519,
                DkimAlgorithmArg::Rsa => markgate::certs::DkimAlgorithm::Rsa,
            };
            let record = markgate::certs::generate_dkim_key(&key, algorithm)?;
            eprintln!(
                "DKIM key written to {}; publish this TXT record:",
                key.display()
            );
            match (selector, domain) {
                (Some(s), Some(d)) => println!("{s}._domainkey.{d}. IN TXT \"{record}\""),
                _ => println!("{record}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
