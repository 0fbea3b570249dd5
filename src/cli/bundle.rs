//! `markgate bundle seal|open|inspect`: encrypted bundles for partner agencies. The flags
//! and exit codes are a contract (partners and mail administrators script them):
//! 0 done, 1 refused (by the policy when sealing; by a failed check when opening), 2 error.

use std::cell::RefCell;
use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, FixedOffset, Utc};
use clap::{Args, Subcommand};
use serde_json::json;

use markgate::bundle::{
    self, BundleError, Opened, Phase, Progress, SealError, SealOptions, SealRequest, SealTo,
    Sealed, SignatureStatus,
};

/// Exit code when the policy or a bundle check refuses.
const EXIT_REFUSED: u8 = 1;
/// Inputs at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_THRESHOLD: u64 = 64 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Seal files into an encrypted bundle for a partner, after checking the policy allows it.
    ///
    /// The bundle is an age-encrypted tar archive (the files, then MANIFEST.json,
    /// SECURITY-STATEMENT.txt for one-off disclosures and MANIFEST.sig) that the partner opens
    /// with `age -d -i key.txt bundle.age | tar -x`. Each file is read once. The output is
    /// written to a temporary file and renamed into place only on success.
    ///
    /// Exit status: 0 sealed, 1 refused by the policy (nothing written), 2 error.
    #[command(after_help = "Examples:\n  \
        markgate bundle seal --to suffolk-police --marking OFFICIAL-SENSITIVE \\\n      \
        --purpose 'Missing person enquiry' --legal-basis 'DPA 2018 s.35' report.pdf -o report.age\n  \
        markgate bundle seal --to 'Birmingham City Council' --marking OFFICIAL --isa ISA-0001 notes.txt -o out.age")]
    Seal(Box<SealArgs>),
    /// Decrypt a bundle, verify it completely, and write its files into a new directory.
    ///
    /// Checks: the key decrypts it; no path is absolute or climbs out with ..; no links,
    /// devices or FIFOs; no file over --max-file-size; MANIFEST.sig verifies against the
    /// force's public key; every file is listed, in order, with the right size and SHA-256.
    /// Files are written into a temporary directory beside the output and renamed into place
    /// only when everything has passed.
    ///
    /// Exit status: 0 opened, 1 refused by a check (nothing written), 2 error.
    Open(OpenArgs),
    /// Show a bundle's manifest and signature status without writing any file.
    ///
    /// With a key, the whole bundle is decrypted and checked as `open` would (exit 1 if a
    /// check fails). Without a key, only the age header is described.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct SealArgs {
    /// Partner to seal for: partner id or name from the register (case-insensitive).
    #[arg(
        long,
        value_name = "PARTNER",
        required_unless_present = "recipient",
        conflicts_with = "recipient"
    )]
    to: Option<String>,
    /// Seal to this age X25519 key (repeatable) instead of a partner. A key in no partner's
    /// register entry is decided as an unregistered recipient on the internet.
    #[arg(long, value_name = "AGE1...")]
    recipient: Vec<String>,
    /// Protective marking of the contents (a class name from the policy, e.g. OFFICIAL-SENSITIVE).
    #[arg(long, value_name = "CLASS")]
    marking: String,
    /// Information Sharing Agreement the disclosure is made under (its purpose and legal
    /// basis go in the manifest). Without it the disclosure is one-off.
    #[arg(long, value_name = "ID", conflicts_with_all = ["purpose", "legal_basis"])]
    isa: Option<String>,
    /// Purpose of a one-off disclosure.
    #[arg(long, value_name = "TEXT")]
    purpose: Option<String>,
    /// Legal basis of a one-off disclosure.
    #[arg(long, value_name = "TEXT")]
    legal_basis: Option<String>,
    /// Policy directory.
    #[arg(long, value_name = "DIR", default_value_os_t = super::default_policy_dir())]
    policy: PathBuf,
    /// Ed25519 manifest signing key (PKCS#8 PEM).
    #[arg(
        long,
        value_name = "PATH",
        env = "MARKGATE_SIGNING_KEY",
        default_value = "certs/signing-key.pem"
    )]
    signing_key: PathBuf,
    /// Sending organisation. Default: the registered partner whose domain is internal.
    #[arg(long, value_name = "NAME")]
    from_org: Option<String>,
    /// Sending person. Default: $USER.
    #[arg(long, value_name = "NAME")]
    from: Option<String>,
    /// Write ASCII-armored age (text) instead of binary.
    #[arg(long)]
    armor: bool,
    /// Decide as at this time (a date or RFC 3339), for ISA review dates and the destroy-by
    /// date.
    #[arg(long, value_name = "TIME", value_parser = super::parse_at)]
    at: Option<DateTime<FixedOffset>>,
    /// Replace OUT if it exists.
    #[arg(long)]
    force: bool,
    /// Print the manifest as JSON on standard output when done.
    #[arg(long)]
    json: bool,
    /// Decision record store (default: records.path, var/records.sqlite; MARKGATE_RECORDS__PATH).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Output bundle (`-` for standard output).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    /// Files to seal (each goes in under its base name).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

/// Where the force's public key is when `--signing-pub` is not given.
const DEFAULT_SIGNING_PUB: &str = "certs/signing-pub.pem";

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The force's manifest public key (SPKI PEM). Default: certs/signing-pub.pem.
    #[arg(long, value_name = "PATH", env = "MARKGATE_SIGNING_PUB")]
    signing_pub: Option<PathBuf>,
    /// Accept a bundle without MANIFEST.sig (an archive made with tar and age). It is still
    /// reported as UNSIGNED: nothing proves who made it.
    #[arg(long)]
    allow_unsigned: bool,
    /// Largest file accepted (bytes, or with K, M, G, T suffix).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "16G")]
    max_file_size: u64,
    /// Print the result as JSON on standard output.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// age identity file (AGE-SECRET-KEY-1...).
    #[arg(short = 'i', long = "identity", value_name = "KEY")]
    identity: PathBuf,
    /// Directory to create for the files (must not exist). Default: the bundle's name
    /// without its extension.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
    #[command(flatten)]
    keys: KeyArgs,
    /// The bundle (`-` for standard input), or the `.eml` cover message it came attached to.
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// age identity file; without it only the age header is described.
    #[arg(short = 'i', long = "identity", value_name = "KEY")]
    identity: Option<PathBuf>,
    #[command(flatten)]
    keys: KeyArgs,
    /// The bundle (`-` for standard input).
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
}

pub fn run(cmd: BundleCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BundleCommand::Seal(args) => seal(*args),
        BundleCommand::Open(args) => open(args),
        BundleCommand::Inspect(args) => inspect(args),
    }
}

// --- seal ------------------------------------------------------------------------------

fn seal(args: SealArgs) -> anyhow::Result<ExitCode> {
    let policy = super::load_policy(&args.policy)?;
    let request = SealRequest {
        to: match &args.to {
            Some(partner) => SealTo::Partner(partner.clone()),
            None => SealTo::Keys(args.recipient.clone()),
        },
        marking: args.marking.clone(),
        isa: args.isa.clone(),
        purpose: args.purpose.clone(),
        legal_basis: args.legal_basis.clone(),
        from_org: args.from_org.clone(),
        from_person: args
            .from
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "unknown".into()),
        at: args
            .at
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(Utc::now),
        armor: args.armor,
    };
    let signing_key = || {
        markgate::certs::ensure_dev_signing_key(&args.signing_key)?;
        markgate::certs::load_signing_key(&args.signing_key)
    };
    let mut records = markgate::config::Config::load_sections(None, &["records"])?.records;
    if let Some(db) = &args.db {
        records.path = db.clone();
    }
    let open_recorder = || markgate::record::Recorder::open(&records);
    let total: u64 = args
        .files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress = Bar::new(total);
    let stdout = std::io::stdout();
    let mut stdout_lock;
    let output = if args.output.as_os_str() == "-" {
        stdout_lock = stdout.lock();
        bundle::Output::Stream(&mut stdout_lock)
    } else {
        bundle::Output::File {
            path: &args.output,
            replace: args.force,
        }
    };
    let sealed = bundle::seal_and_record(
        &policy,
        &request,
        &args.files,
        signing_key,
        output,
        open_recorder,
        &progress,
    );
    let Sealed { manifest, options } = match sealed {
        Ok(sealed) => sealed,
        Err(SealError::PrivateKey) => anyhow::bail!(
            "--recipient was given an age PRIVATE key (AGE-SECRET-KEY-...): give the partner's public key (age1...), and treat that private key as disclosed"
        ),
        Err(e) if e.is_refusal() => {
            eprintln!("markgate: refused: {e}");
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
        Err(e) => return Err(e.into()),
    };
    eprintln!(
        "sealed {} file(s), {} bytes, {} for {} ({}): {}",
        manifest.files.len(),
        manifest.files.iter().map(|f| f.size).sum::<u64>(),
        manifest.marking.label,
        describe_recipients(&options),
        if manifest.isa == bundle::manifest::ONE_OFF {
            "one-off disclosure".to_string()
        } else {
            format!("under {}", manifest.isa)
        },
        args.output.display()
    );
    eprintln!(
        "bundle id {}; destroy by {}",
        manifest.bundle_id, manifest.destroy_by
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_recipients(opts: &SealOptions) -> String {
    if opts.recipient_names.is_empty() {
        format!("{} key(s)", opts.recipients.len())
    } else {
        opts.recipient_names.join(", ")
    }
}

// --- open and inspect ---------------------------------------------------------------------

impl KeyArgs {
    /// The force's public key. Without it a bundle cannot be verified, which only
    /// `--allow-unsigned` accepts, and only when no key was named.
    fn verifying_key(&self) -> anyhow::Result<Option<ed25519_dalek::VerifyingKey>> {
        let path = self
            .signing_pub
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SIGNING_PUB));
        match markgate::certs::load_verifying_key(&path) {
            Ok(k) => Ok(Some(k)),
            Err(markgate::certs::CertError::Missing { .. })
                if self.allow_unsigned && self.signing_pub.is_none() =>
            {
                eprintln!(
                    "markgate: warning: no public key at {}: the signature is NOT CHECKED",
                    path.display()
                );
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn open(args: OpenArgs) -> anyhow::Result<ExitCode> {
    let identities = bundle::age_io::load_identities(&args.identity)?;
    let verifying = args.keys.verifying_key()?;
    let dest = match &args.output {
        Some(d) => d.clone(),
        None => default_output_dir(&args.bundle)?,
    };
    let opts = bundle::OpenOptions {
        identities: &identities,
        verifying_key: verifying.as_ref(),
        allow_unsigned: args.keys.allow_unsigned,
        max_entry_size: args.keys.max_file_size,
    };
    let (input, size) = open_input(&args.bundle)?;
    let progress = Bar::new(size);
    match bundle::open(input, &opts, &dest, &progress) {
        Ok(opened) => {
            report(&opened, args.keys.json, Some(&dest))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => refuse_or_fail(e),
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let Some(identity) = &args.identity else {
        let (input, _) = open_input(&args.bundle)?;
        let header = header_summary(input)?;
        if args.keys.json {
            println!("{}", serde_json::to_string_pretty(&header)?);
        } else {
            println!(
                "age-encrypted bundle ({}), {} recipient stanza(s): {}",
                if header["armored"] == true {
                    "armored"
                } else {
                    "binary"
                },
                header["stanzas"].as_array().map_or(0, Vec::len),
                header["stanzas"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            );
            println!("give -i KEY to read the manifest");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let identities = bundle::age_io::load_identities(identity)?;
    let verifying = match args.keys.verifying_key() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("markgate: warning: signature not checked: {e}");
            None
        }
    };
    let opts = bundle::OpenOptions {
        identities: &identities,
        verifying_key: verifying.as_ref(),
        allow_unsigned: args.keys.allow_unsigned,
        max_entry_size: args.keys.max_file_size,
    };
    let (input, size) = open_input(&args.bundle)?;
    let progress = Bar::new(size);
    match bundle::inspect(input, &opts, &progress) {
        Ok(opened) => {
            report(&opened, args.keys.json, None)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => refuse_or_fail(e),
    }
}

/// Print what a bundle holds: marking first, the statement, the terms, the files.
fn report(opened: &Opened, as_json: bool, dest: Option<&Path>) -> anyhow::Result<()> {
    let unsigned = opened.signature == SignatureStatus::Missing;
    if unsigned {
        eprintln!("markgate: WARNING: UNSIGNED BUNDLE: it has no MANIFEST.sig, so nothing proves who made it or that its contents are as sent");
    }
    if as_json {
        let out = json!({
            "signature": opened.signature,
            "manifest": opened.manifest,
            "statement": opened.statement,
            "files": opened.files,
            "output": dest,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let mut out = String::new();
    use std::fmt::Write as _;
    match &opened.manifest {
        Some(m) => {
            let _ = writeln!(out, "Marking:      {}", m.marking.label);
            let _ = writeln!(out, "Bundle:       {}", m.bundle_id);
            let _ = writeln!(
                out,
                "From:         {}, {}",
                m.sender.person, m.sender.organisation
            );
            let _ = writeln!(out, "To:           {}", m.recipients.join(", "));
            let _ = writeln!(out, "Created:      {}", m.created.to_rfc3339());
            let _ = writeln!(
                out,
                "Disclosure:   {}",
                if m.isa == bundle::manifest::ONE_OFF {
                    "one-off".to_string()
                } else {
                    format!("under {}", m.isa)
                }
            );
            if let Some(p) = &m.purpose {
                let _ = writeln!(out, "Purpose:      {p}");
            }
            if let Some(l) = &m.legal_basis {
                let _ = writeln!(out, "Legal basis:  {l}");
            }
            let _ = writeln!(out, "Destroy by:   {}", m.destroy_by);
        }
        None => {
            let _ = writeln!(out, "Marking:      unknown (no manifest)");
        }
    }
    let _ = writeln!(
        out,
        "Signature:    {}",
        match &opened.signature {
            SignatureStatus::Verified { key } =>
                format!("verified (key {})", &key[..16.min(key.len())]),
            SignatureStatus::NotChecked => "present, NOT CHECKED (no public key)".into(),
            SignatureStatus::Missing => "MISSING: unsigned bundle".into(),
        }
    );
    if let Some(s) = &opened.statement {
        let _ = writeln!(out, "\nSecurity statement:\n{s}\n");
    }
    let _ = writeln!(out, "Files:");
    for f in &opened.files {
        let _ = writeln!(
            out,
            "  {}  {:>12}  {}{}",
            f.sha256,
            f.size,
            f.path.display(),
            if f.verified { "" } else { "  (unverified)" }
        );
    }
    if let Some(d) = dest {
        let _ = writeln!(out, "Written to:   {}", d.display());
    }
    print!("{out}");
    Ok(())
}

fn refuse(e: &BundleError) -> anyhow::Result<ExitCode> {
    eprintln!("markgate: refused: {e}");
    Ok(ExitCode::from(EXIT_REFUSED))
}

fn refuse_or_fail(e: BundleError) -> anyhow::Result<ExitCode> {
    if e.is_refusal() {
        refuse(&e)
    } else {
        Err(e.into())
    }
}

/// The bundle to read: an age file, or a cover message as markgate mails it (an `.eml` with
/// the bundle attached), whose attachment is read instead.
fn open_input(path: &Path) -> anyhow::Result<(Box<dyn std::io::Read>, u64)> {
    use std::io::{BufRead, BufReader, Read};
    let mut input: BufReader<Box<dyn std::io::Read>> = if path.as_os_str() == "-" {
        BufReader::with_capacity(64 * 1024, Box::new(std::io::stdin().lock()))
    } else {
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        BufReader::with_capacity(64 * 1024, Box::new(file))
    };
    let head = input.fill_buf()?;
    let is_age = head.starts_with(b"age-encryption.org/")
        || head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----");
    if is_age || head.is_empty() {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        return Ok((Box::new(input), size));
    }
    // Cover messages are mail: they fit in memory (smtp.max_message_size).
    let mut message = Vec::new();
    (&mut input)
        .take(256 * 1024 * 1024)
        .read_to_end(&mut message)?;
    match markgate::transform::encrypt::attached_bundle(&message) {
        Some(bundle) => {
            let size = bundle.len() as u64;
            Ok((Box::new(std::io::Cursor::new(bundle)), size))
        }
        // Not a cover message either: let the age reader say what is wrong with it.
        None => Ok((Box::new(std::io::Cursor::new(message)), 0)),
    }
}

/// `dir/report.age` opens into `dir/report`.
fn default_output_dir(bundle: &Path) -> anyhow::Result<PathBuf> {
    let stem = bundle
        .file_stem()
        .filter(|s| Some(*s) != bundle.file_name())
        .context("cannot derive an output directory from the bundle name; give -o DIR")?;
    Ok(bundle.with_file_name(stem))
}

/// Describe the age header without decrypting: armored or not, and the stanza types.
fn header_summary(input: Box<dyn std::io::Read>) -> anyhow::Result<serde_json::Value> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(input);
    let armored = reader
        .fill_buf()?
        .starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----");
    let mut lines = std::io::BufReader::new(age::armor::ArmoredReader::new(reader)).lines();
    let first = lines.next().transpose().ok().flatten().unwrap_or_default();
    if first.trim() != "age-encryption.org/v1" {
        return Err(BundleError::NotAgeFile("no age-encryption.org/v1 header".into()).into());
    }
    let mut stanzas = Vec::new();
    for line in lines {
        let Ok(line) = line else { break };
        if line.starts_with("---") {
            break;
        }
        if let Some(rest) = line.strip_prefix("-> ") {
            let kind = rest.split_whitespace().next().unwrap_or("");
            // age adds random "grease" stanzas that stand for nobody.
            if !kind.ends_with("-grease") {
                stanzas.push(kind.to_string());
            }
        }
    }
    Ok(json!({ "armored": armored, "stanzas": stanzas }))
}

/// `1024`, `64K`, `10M`, `16G`, `1T` (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("{s:?}: unknown size suffix (K, M, G, T)")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size (e.g. 1048576, 64K, 10M, 16G)"))
}

/// An indicatif bar on stderr, only for large inputs and only when stderr is a terminal.
struct Bar {
    enabled: bool,
    /// Used when a phase does not know its total (opening a bundle whose manifest is last).
    total_hint: u64,
    bar: RefCell<Option<indicatif::ProgressBar>>,
}

impl Bar {
    fn new(total_hint: u64) -> Bar {
        Bar {
            enabled: total_hint >= PROGRESS_THRESHOLD && std::io::stderr().is_terminal(),
            total_hint,
            bar: RefCell::new(None),
        }
    }
}

impl Progress for Bar {
    fn begin(&self, phase: Phase, total: u64) {
        if !self.enabled {
            return;
        }
        let total = if total == 0 { self.total_hint } else { total };
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:>8} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(phase.as_str());
        *self.bar.borrow_mut() = Some(bar);
    }
    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.inc(bytes);
        }
    }
    fn end(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("16g"), Ok(16 << 30));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn output_dirs() {
        assert_eq!(
            default_output_dir(Path::new("a/report.age")).unwrap(),
            PathBuf::from("a/report")
        );
        assert!(default_output_dir(Path::new("report")).is_err());
    }
}
