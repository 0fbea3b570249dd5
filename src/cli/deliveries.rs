//! `markgate audit query --deliveries`: the delivery-attempt records (what happened to each
//! copy and recipient after the decision), as a table, CSV or JSON.

use std::io::Write;

use markgate::record::delivery::{DeliveryFilter, StoredDelivery};
use markgate::record::model::format_time;
use markgate::record::Store;

use super::audit::{csv_field, QueryFormat};

const TABLE_HEADER: [&str; 10] = [
    "seq",
    "time",
    "queue id",
    "recipient",
    "attempt",
    "outcome",
    "next hop",
    "tls",
    "verified",
    "reason",
];

const CSV_HEADER: [&str; 23] = [
    "seq",
    "id",
    "time",
    "queue_id",
    "copy",
    "sender",
    "recipient",
    "message_id",
    "marking",
    "destination",
    "actions",
    "tls_required",
    "requiretls",
    "attempt",
    "outcome",
    "next_hop",
    "tls_version",
    "tls_cipher",
    "verification",
    "peer_cert_sha256",
    "reason",
    "policy_version",
    "hash",
];

pub fn print(store: &Store, filter: &DeliveryFilter, format: QueryFormat) -> anyhow::Result<()> {
    let rows = store.query_deliveries(filter)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        QueryFormat::Table => {
            let cells: Vec<Vec<String>> = rows.iter().map(table_row).collect();
            write!(out, "{}", super::table::render(&TABLE_HEADER, &cells))?;
            writeln!(out, "{} delivery attempt(s)", rows.len())?;
        }
        QueryFormat::Csv => {
            writeln!(out, "{}", CSV_HEADER.join(","))?;
            for r in &rows {
                writeln!(out, "{}", csv_row(r))?;
            }
        }
        QueryFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn table_row(s: &StoredDelivery) -> Vec<String> {
    let r = &s.record;
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let mut reason: String = r.reason.chars().take(60).collect();
    if r.reason.chars().count() > 60 {
        reason.push('…');
    }
    vec![
        s.seq.to_string(),
        r.time.format("%Y-%m-%d %H:%M:%S").to_string(),
        r.queue_id.clone(),
        r.recipient.clone(),
        r.attempt.to_string(),
        r.outcome.as_str().into(),
        dash(&r.next_hop),
        match (&r.tls_version, &r.tls_cipher) {
            (Some(v), Some(c)) => format!("{v} {c}"),
            _ => "-".into(),
        },
        r.verification.clone(),
        reason,
    ]
}

fn csv_row(s: &StoredDelivery) -> String {
    let r = &s.record;
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let fields: Vec<String> = vec![
        s.seq.to_string(),
        r.id.clone(),
        format_time(r.time),
        r.queue_id.clone(),
        r.copy.to_string(),
        r.sender.clone(),
        r.recipient.clone(),
        opt(&r.message_id),
        r.marking.clone(),
        r.destination.clone(),
        r.actions.join(" "),
        r.tls_required.to_string(),
        r.requiretls.to_string(),
        r.attempt.to_string(),
        r.outcome.as_str().into(),
        opt(&r.next_hop),
        opt(&r.tls_version),
        opt(&r.tls_cipher),
        r.verification.clone(),
        opt(&r.peer_cert_sha256),
        r.reason.clone(),
        r.policy_version.clone(),
        s.hash.clone(),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}
