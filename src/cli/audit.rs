//! `markgate audit ...`: verify, search, report on, checkpoint and prune the decision
//! records.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use clap::{Args, Subcommand, ValueEnum};

use markgate::config::Config;
use markgate::decision::Verdict;
use markgate::record::checkpoint::{self, CheckpointReport};
use markgate::record::model::{disclosure_str, format_time};
use markgate::record::report::isa_report;
use markgate::record::store::StoreOptions;
use markgate::record::{Filter, PrunePlan, PruneRequest, RecordError, Store, StoredRecord};

/// Where the record store is: `--db`, else `records.path` from the configuration.
#[derive(Debug, Args)]
pub struct StoreArgs {
    // (shared with `policy simulate`)
    /// Record store (default: records.path from the configuration, var/records.sqlite).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Gateway configuration file (TOML); MARKGATE_* environment overrides apply.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl StoreArgs {
    pub fn config(&self) -> anyhow::Result<Config> {
        Config::load_sections(self.config.as_deref(), &["records", "policy"])
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    pub fn db(&self, config: &Config) -> PathBuf {
        self.db
            .clone()
            .unwrap_or_else(|| config.records.path.clone())
    }
}

/// Where the checkpoint log is: `--checkpoints`, else `records.checkpoint_log` when the
/// store is the configured one (the log of the gateway's store says nothing about another).
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Checkpoint log (default: records.checkpoint_log, var/checkpoints.log, when the store
    /// is records.path); for verify, a copy kept elsewhere.
    #[arg(long, value_name = "FILE")]
    checkpoints: Option<PathBuf>,
}

impl CheckpointArgs {
    fn log(&self, store: &StoreArgs, config: &Config) -> Option<PathBuf> {
        match (&self.checkpoints, &store.db) {
            (Some(log), _) => Some(log.clone()),
            (None, Some(db)) if *db != config.records.path => None,
            (None, _) => Some(config.records.checkpoint_log.clone()),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and compare it with the signed checkpoints (exit 0 intact, 1
    /// tampered, naming the record or the missing range; 2 error).
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        log: CheckpointArgs,
        /// The force's Ed25519 public key (SPKI PEM) the checkpoints are checked with
        /// (default: signing-pub.pem beside tls.signing_key, else derived from that key).
        #[arg(long, value_name = "PATH")]
        signing_pub: Option<PathBuf>,
    },
    /// Append a signed checkpoint of the chain head to the checkpoint log now.
    Checkpoint {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        log: CheckpointArgs,
    },
    /// Search the records.
    Query(QueryArgs),
    /// What an ISA review needs: disclosures and blocks by class and month, one-off versus
    /// ISA, consent, incidents.
    Report(ReportArgs),
    /// Apply retention: remove records older than a duration, keeping the chain verifiable.
    /// Nothing younger than records.retention goes without --override-retention --reason;
    /// the prune is itself recorded in the chain with who ran it and why.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Remove records older than this ("6y", "2190d"); default records.retention.
    #[arg(long, value_parser = parse_duration)]
    older_than: Option<std::time::Duration>,
    /// Show what would be removed and remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Remove records younger than records.retention too (needs --reason).
    #[arg(long, requires = "reason")]
    override_retention: bool,
    /// Why the records are removed; kept in the record of the prune.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerdictArg {
    Allow,
    Block,
    /// Held for approval (what became of each hold follows in its own records).
    Held,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// From this time (RFC 3339, a date YYYY-MM-DD, or a duration ago such as 24h or 7d).
    #[arg(long, value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339; a date means up to the end of that day; or a duration ago).
    #[arg(long, value_parser = parse_until)]
    until: Option<DateTime<Utc>>,
    /// Partner name or id, as in the partner register.
    #[arg(long)]
    partner: Option<String>,
    /// ISA cited.
    #[arg(long)]
    isa: Option<String>,
    /// Marking class, as the policy spells it.
    #[arg(long)]
    class: Option<String>,
    /// Policy that --class and --partner are checked against (default policy.dir from the
    /// configuration).
    #[arg(long, value_name = "DIR")]
    policy: Option<PathBuf>,
    #[arg(long, value_enum)]
    verdict: Option<VerdictArg>,
    /// Sender address, or @domain.
    #[arg(long)]
    sender: Option<String>,
    /// Only security incidents.
    #[arg(long)]
    incidents: bool,
    /// Only the newest N matching records (listed oldest first).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    format: QueryFormat,
    /// Show the delivery-attempt records (outcome, next hop, TLS, verification) instead of
    /// the decisions; with --since, --until, --limit, --queue-id, --recipient, --outcome.
    #[arg(long, conflicts_with_all = ["partner", "isa", "class", "verdict", "sender", "incidents"])]
    deliveries: bool,
    /// Delivery records of this queue id.
    #[arg(long, requires = "deliveries")]
    queue_id: Option<String>,
    /// Delivery records for this recipient.
    #[arg(long, requires = "deliveries")]
    recipient: Option<String>,
    /// Delivery records with this outcome.
    #[arg(long, value_enum, requires = "deliveries")]
    outcome: Option<OutcomeArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutcomeArg {
    Delivered,
    Deferred,
    Bounced,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Policy directory (default policy.dir from the configuration).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The ISA under review.
    #[arg(long)]
    isa: String,
    /// First day of the period (YYYY-MM-DD).
    #[arg(long)]
    from: NaiveDate,
    /// Last day of the period, inclusive (YYYY-MM-DD).
    #[arg(long)]
    to: NaiveDate,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify {
            store,
            log,
            signing_pub,
        } => verify(&store, &log, signing_pub.as_deref()),
        AuditCommand::Checkpoint { store, log } => write_checkpoint(&store, &log),
        AuditCommand::Query(args) => query(args),
        AuditCommand::Report(args) => report(args),
        AuditCommand::Prune(args) => prune(&args),
    }
}

fn open_read(path: &Path) -> anyhow::Result<Store> {
    if !path.exists() {
        bail!("record store {} does not exist", path.display());
    }
    if path.is_dir() {
        bail!(
            "{} is a directory: give the record store file (records.path, such as var/records.sqlite)",
            path.display()
        );
    }
    Ok(Store::open_read_only(path)?)
}

fn verify(
    args: &StoreArgs,
    log_args: &CheckpointArgs,
    signing_pub: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let db = args.db(&config);
    let store = open_read(&db)?;
    let report = store.verify()?;
    let log = log_args.log(args, &config);
    // The default log may not exist yet (a store no gateway has checkpointed); a log named
    // with --checkpoints must.
    let checkpoints = match &log {
        Some(path) if path.exists() || log_args.checkpoints.is_some() => {
            let lines = checkpoint::read_log(path)?;
            let key = verifying_key(&config, signing_pub)?;
            Some((path, store.check_checkpoints(&lines, &key)?))
        }
        _ => None,
    };
    let range = match (report.first_seq, report.last_seq) {
        (Some(a), Some(b)) => format!(" (seq {a} to {b})"),
        _ => String::new(),
    };
    let anchor = report
        .anchor
        .as_ref()
        .map(|(seq, _)| format!(", after pruned seq {seq}"))
        .unwrap_or_default();
    let problems: Vec<String> = report
        .tamper
        .iter()
        .map(|t| t.to_string())
        .chain(
            checkpoints
                .iter()
                .flat_map(|(_, c)| c.problems.iter().map(|p| p.to_string())),
        )
        .collect();
    let checkpoint_line = match (&checkpoints, &log) {
        (Some((path, c)), _) => checkpoint_summary(path, c),
        (None, Some(path)) => format!(
            "checkpoints: none ({} does not exist); nothing vouches for the end of the chain",
            path.display()
        ),
        (None, None) => {
            "checkpoints: not checked (give --checkpoints FILE, the checkpoint log of this store)"
                .to_string()
        }
    };
    let deliveries = store.verify_deliveries()?;
    let deliveries_line = match &deliveries.tamper {
        None => format!(
            "deliveries intact: {} delivery records; head {}",
            deliveries.records, deliveries.head_hash
        ),
        Some(t) => format!("TAMPERED (delivery records): delivery {t}"),
    };
    if problems.is_empty() {
        println!(
            "intact: {} records{range}{anchor}; head {}",
            report.records, report.head_hash
        );
        println!("{checkpoint_line}");
        println!("{deliveries_line}");
        return Ok(if deliveries.tamper.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    for problem in &problems {
        println!("TAMPERED: {problem}");
    }
    println!(
        "store {}; checked {} records{range}{anchor}",
        db.display(),
        report.records
    );
    println!("{checkpoint_line}");
    println!("{deliveries_line}");
    Ok(ExitCode::from(1))
}

fn checkpoint_summary(path: &Path, report: &CheckpointReport) -> String {
    let mut line = format!(
        "checkpoints: {} in {} matched the store",
        report.checked,
        path.display()
    );
    if report.pruned > 0 {
        line.push_str(&format!(
            ", {} were for records since pruned",
            report.pruned
        ));
    }
    if let Some((seq, time)) = &report.last {
        line.push_str(&format!("; the last vouches for seq {seq} at {time}"));
    }
    line
}

/// The public key checkpoints are checked with: `--signing-pub`, else `signing-pub.pem`
/// beside `tls.signing_key`, else the public half of `tls.signing_key`.
fn verifying_key(
    config: &Config,
    signing_pub: Option<&Path>,
) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    if let Some(path) = signing_pub {
        return Ok(markgate::certs::load_verifying_key(path)?);
    }
    let private = &config.tls.signing_key_path();
    let beside = private
        .parent()
        .unwrap_or(Path::new("."))
        .join("signing-pub.pem");
    if beside.exists() {
        return Ok(markgate::certs::load_verifying_key(&beside)?);
    }
    let key = markgate::certs::load_signing_key(private).with_context(|| {
        "cannot check the checkpoints without the force's public key: give --signing-pub PATH"
    })?;
    Ok(key.verifying_key())
}

fn write_checkpoint(args: &StoreArgs, log: &CheckpointArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let db = args.db(&config);
    if !db.exists() {
        bail!("record store {} does not exist", db.display());
    }
    let Some(log) = log.log(args, &config) else {
        bail!(
            "{} is not records.path: give --checkpoints FILE, the checkpoint log of this store",
            db.display()
        );
    };
    let written = checkpoint::write_now(&db, &config.tls.signing_key_path(), &log)?;
    println!(
        "checkpoint: seq {} head {} at {} appended to {}",
        written.seq,
        written.head,
        written.time,
        log.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let store = open_read(&args.store.db(&config))?;
    if args.deliveries {
        use markgate::record::delivery::{DeliveryFilter, Outcome};
        let filter = DeliveryFilter {
            since: args.since,
            until: args.until,
            queue_id: args.queue_id,
            recipient: args.recipient,
            outcome: args.outcome.map(|o| match o {
                OutcomeArg::Delivered => Outcome::Delivered,
                OutcomeArg::Deferred => Outcome::Deferred,
                OutcomeArg::Bounced => Outcome::Bounced,
            }),
            limit: args.limit,
        };
        return super::deliveries::print(&store, &filter, args.format).map(|()| ExitCode::SUCCESS);
    }
    // A class or partner the policy does not know is a mistake, not a search with no result.
    let (class, partner) = if args.class.is_some() || args.partner.is_some() {
        let dir = args.policy.clone().unwrap_or(config.policy.dir.clone());
        let policy = super::load_policy(&dir)
            .context("--class and --partner are checked against the policy (give --policy DIR)")?;
        (
            args.class
                .as_deref()
                .map(|c| known_class(&policy, c))
                .transpose()?,
            args.partner
                .as_deref()
                .map(|p| known_partner(&policy, p))
                .transpose()?,
        )
    } else {
        (None, None)
    };
    let filter = Filter {
        since: args.since,
        until: args.until,
        partner,
        isa: args.isa,
        class,
        verdict: args.verdict.map(|v| match v {
            VerdictArg::Allow => Verdict::Allow,
            VerdictArg::Block => Verdict::Block,
            VerdictArg::Held => Verdict::Held,
        }),
        sender: args.sender,
        incidents_only: args.incidents,
        // The records of prunes are shown with the decisions.
        include_audit: true,
        limit: args.limit,
    };
    match print_query(&store, &filter, args.format) {
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        other => other.map(|()| ExitCode::SUCCESS),
    }
}

/// The policy's name for a class, however it was spelt (`official-sensitive`).
fn known_class(policy: &markgate::policy::Policy, wanted: &str) -> anyhow::Result<String> {
    match policy.markings.find(wanted) {
        Some(i) => Ok(policy.markings.classes[i].name.clone()),
        None => bail!(
            "--class {wanted:?} is not a marking class of the policy in {} (classes: {})",
            policy.dir.display(),
            policy.markings.class_names()
        ),
    }
}

/// A partner of the register, by id or name.
fn known_partner(policy: &markgate::policy::Policy, wanted: &str) -> anyhow::Result<String> {
    let wanted = wanted.trim();
    match policy
        .partners
        .iter()
        .find(|p| p.id.eq_ignore_ascii_case(wanted) || p.name.eq_ignore_ascii_case(wanted))
    {
        Some(_) => Ok(wanted.to_string()),
        None => bail!(
            "--partner {wanted:?} is not in the partner register of the policy in {} (partners: {})",
            policy.dir.display(),
            policy
                .partners
                .iter()
                .map(|p| format!("{} ({})", p.id, p.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn print_query(store: &Store, filter: &Filter, format: QueryFormat) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        QueryFormat::Table => {
            let rows = store.query(filter)?;
            write!(out, "{}", table(&rows))?;
        }
        QueryFormat::Csv => {
            writeln!(out, "{}", CSV_HEADER.join(","))?;
            store.query_each(filter, |r| -> anyhow::Result<()> {
                writeln!(out, "{}", csv_row(&r))?;
                Ok(())
            })?;
        }
        QueryFormat::Json => {
            writeln!(out, "[")?;
            let mut first = true;
            store.query_each(filter, |r| -> anyhow::Result<()> {
                let sep = if first { "" } else { "," };
                first = false;
                writeln!(out, "{sep}{}", serde_json::to_string(&r)?)?;
                Ok(())
            })?;
            writeln!(out, "]")?;
        }
    }
    out.flush()?;
    Ok(())
}

const TABLE_HEADER: [&str; 11] = [
    "seq",
    "time",
    "channel",
    "sender",
    "recipient",
    "partner",
    "marking",
    "dest",
    "verdict",
    "disclosure",
    "isa",
];

fn table(rows: &[StoredRecord]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|s| {
            let r = &s.record;
            vec![
                s.seq.to_string(),
                r.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                r.channel.as_str().into(),
                r.sender.clone(),
                r.recipient.clone(),
                r.partner.clone().unwrap_or_else(|| "-".into()),
                r.label.clone(),
                r.destination.clone(),
                if r.incident {
                    format!("{}!", r.verdict.as_str())
                } else {
                    r.verdict.as_str().into()
                },
                disclosure_str(r.disclosure).into(),
                r.isa.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut out = super::table::render(&TABLE_HEADER, &cells);
    out.push_str(&format!(
        "{} record(s); ! marks a security incident\n",
        rows.len()
    ));
    out
}

const CSV_HEADER: [&str; 29] = [
    "seq",
    "id",
    "time",
    "channel",
    "sender",
    "recipient",
    "partner",
    "partner_id",
    "class",
    "label",
    "sources",
    "defaulted",
    "destination",
    "verdict",
    "actions",
    "rules",
    "reason",
    "disclosure",
    "isa",
    "purpose",
    "legal_basis",
    "consent",
    "message_id",
    "size",
    "sha256",
    "policy_version",
    "incident",
    "incident_kind",
    "hash",
];

fn csv_row(s: &StoredRecord) -> String {
    let r = &s.record;
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let fields: Vec<String> = vec![
        s.seq.to_string(),
        r.id.clone(),
        format_time(r.time),
        r.channel.as_str().into(),
        r.sender.clone(),
        r.recipient.clone(),
        opt(&r.partner),
        opt(&r.partner_id),
        r.class.clone(),
        r.label.clone(),
        r.sources
            .iter()
            .map(|s| format!("{}={}", s.location, s.text))
            .collect::<Vec<_>>()
            .join("; "),
        r.defaulted.to_string(),
        r.destination.clone(),
        r.verdict.as_str().into(),
        r.actions
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(";"),
        r.rules.join(";"),
        r.reason.clone(),
        disclosure_str(r.disclosure).into(),
        opt(&r.isa),
        opt(&r.purpose),
        opt(&r.legal_basis),
        r.consent
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        opt(&r.message_id),
        r.size.to_string(),
        r.sha256.clone(),
        r.policy_version.clone(),
        r.incident.to_string(),
        r.incident_kind
            .map(|k| k.as_str().to_string())
            .unwrap_or_default(),
        s.hash.clone(),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// Quote a CSV field when it needs it (RFC 4180). A field starting with `=`, `+`, `-` or `@`
/// is prefixed with `'` so a spreadsheet does not run it as a formula.
pub(super) fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '-', '@']) {
        format!("'{f}")
    } else {
        f.to_string()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    if args.to < args.from {
        bail!("--to {} is before --from {}", args.to, args.from);
    }
    let config = args.store.config()?;
    let store = open_read(&args.store.db(&config))?;
    let policy_dir = args.policy.unwrap_or_else(|| config.policy.dir.clone());
    let policy = super::load_policy(&policy_dir)?;
    if policy.isa(&args.isa).is_none() {
        eprintln!(
            "markgate: warning: {} is not in the ISA register of {}; counting only records that cite it",
            args.isa,
            policy_dir.display()
        );
    }
    let report = isa_report(&store, Some(&policy), &args.isa, args.from, args.to)?;
    match args.format {
        ReportFormat::Text => print!("{}", report.to_text()),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn prune(args: &PruneArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let retention = config
        .records
        .retention_duration()
        .map_err(|e| anyhow::anyhow!(e))?;
    let older_than = args.older_than.unwrap_or(retention);
    let db = args.store.db(&config);
    if !db.exists() {
        bail!("record store {} does not exist", db.display());
    }
    let now = Utc::now();
    let ago = |d: std::time::Duration, what: &str| {
        chrono::Duration::from_std(d)
            .map(|d| now - d)
            .with_context(|| format!("{what} is too long"))
    };
    let request = PruneRequest {
        cutoff: ago(older_than, "--older-than")?,
        retention_start: ago(retention, "records.retention")?,
        retention: config.records.retention.clone(),
        override_retention: args.override_retention,
        operator: operator(),
        reason: args.reason.clone(),
    };
    let mut store = Store::open(&db, &StoreOptions::default())?;
    if args.dry_run {
        let plan = store.plan_prune(&request)?;
        print_plan(&plan, &request);
        let refused = plan.retained().is_some() && !args.override_retention;
        return Ok(if refused {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    let outcome = match store.prune(&request) {
        Err(e @ RecordError::Retained { .. }) => {
            eprintln!("markgate: {e}");
            return Ok(ExitCode::from(1));
        }
        other => other?,
    };
    match (outcome.first_seq, outcome.last_seq) {
        (Some(a), Some(b)) => println!(
            "pruned {} record(s), seq {a} to {b}, older than {}; the chain now starts from an anchor at seq {b}",
            outcome.removed, outcome.cutoff
        ),
        _ if outcome.deliveries > 0 => println!(
            "pruned no decision records: none older than {}",
            outcome.cutoff
        ),
        _ => println!("nothing to prune: no records older than {}", outcome.cutoff),
    }
    if outcome.deliveries > 0 {
        println!(
            "pruned {} delivery-attempt record(s) older than {}",
            outcome.deliveries, outcome.cutoff
        );
    }
    if let Some(seq) = outcome.record_seq {
        println!("recorded as seq {seq}: by {}", request.operator);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_plan(plan: &PrunePlan, request: &PruneRequest) {
    if !plan.removes_anything() {
        println!(
            "dry run: nothing to prune: no records older than {}",
            plan.cutoff
        );
        return;
    }
    match (plan.first_seq, plan.last_seq) {
        (Some(first), Some(last)) => println!(
            "dry run: would prune {} record(s), seq {first} to {last}, from {} to {} (older than {})",
            plan.count,
            plan.oldest.as_deref().unwrap_or("?"),
            plan.newest.as_deref().unwrap_or("?"),
            plan.cutoff
        ),
        _ => println!(
            "dry run: would prune no decision records (none older than {})",
            plan.cutoff
        ),
    }
    if plan.deliveries > 0 {
        println!(
            "and {} delivery-attempt record(s) older than {}",
            plan.deliveries, plan.cutoff
        );
    }
    if let Some(retained) = plan.retained() {
        let verdict = if request.override_retention {
            "would be removed by --override-retention"
        } else {
            "so the prune would be refused"
        };
        println!(
            "of these, {retained} are younger than records.retention ({}): {verdict}",
            request.retention
        );
    }
}

/// Who is running this command: the operating-system user (from the real user id of this
/// process), and the user who called sudo when there is one.
fn operator() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let name = uid.and_then(|uid| {
        std::fs::read_to_string("/etc/passwd")
            .ok()?
            .lines()
            .find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
    });
    let mut who = match (name, uid) {
        (Some(name), Some(uid)) => format!("{name} (uid {uid})"),
        (None, Some(uid)) => format!("uid {uid}"),
        _ => "unknown user".to_string(),
    };
    if let Ok(sudo) = std::env::var("SUDO_USER") {
        who.push_str(&format!(", via sudo by {sudo}"));
    }
    who
}

/// A humantime duration ("6y", "30d", "12h").
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration such as 6y, 30d or 12h: {e}"))
}

fn parse_time(s: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt()
                .ok_or_else(|| format!("{s:?} is out of range"))?
        } else {
            d
        };
        return Ok(d.and_time(NaiveTime::MIN).and_utc());
    }
    if let Ok(ago) = humantime::parse_duration(s) {
        let ago = chrono::Duration::from_std(ago).map_err(|e| e.to_string())?;
        return Ok(Utc::now() - ago);
    }
    Err(format!(
        "{s:?} is not a time: give RFC 3339 (2026-11-25T10:00:00Z), a date (2026-11-25) or a duration ago (24h, 7d)"
    ))
}

pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, false)
}

fn parse_until(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }

    #[test]
    fn dates_bound_whole_days() {
        assert_eq!(
            format_time(parse_until("2026-01-31").unwrap()),
            "2026-02-01T00:00:00.000000Z"
        );
        assert_eq!(
            format_time(parse_since("2026-01-31").unwrap()),
            "2026-01-31T00:00:00.000000Z"
        );
        assert!(parse_since("yesterday").is_err());
        assert!(parse_duration("6y").is_ok());
    }
}
