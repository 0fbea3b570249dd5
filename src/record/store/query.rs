//! Reading records back: filtered queries in chain order, and the row decoding that
//! verification shares (a value that cannot be read is described, not skipped).

use chrono::{DateTime, Utc};
use rusqlite::Row;
use serde::Serialize;

use super::Store;
use crate::decision::Verdict;
use crate::policy::Action;
use crate::record::model::{
    format_time, parse_disclosure, parse_verdict, Channel, Consent, DecisionRecord, IncidentKind,
    SourceRecord,
};
use crate::record::RecordError;

pub(super) const COLUMNS: &str =
    "seq, id, time, channel, sender, recipient, partner, partner_id, class, \
    label, sources, defaulted, destination, verdict, actions, rules, reason, disclosure, isa, \
    purpose, legal_basis, consent, message_id, size, sha256, policy_version, incident, \
    incident_kind, prev_hash, hash";

/// A record with its place in the chain.
#[derive(Debug, Clone, Serialize)]
pub struct StoredRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub record: DecisionRecord,
    /// Chain hash, hex.
    pub hash: String,
}

/// Filters for [`Store::query`]; all given ones must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Time at or after.
    pub since: Option<DateTime<Utc>>,
    /// Time before.
    pub until: Option<DateTime<Utc>>,
    /// Partner name or id, any case.
    pub partner: Option<String>,
    /// ISA cited, any case.
    pub isa: Option<String>,
    /// Marking class, any case.
    pub class: Option<String>,
    pub verdict: Option<Verdict>,
    /// Sender address (any case), or `@domain` for every sender at a domain.
    pub sender: Option<String>,
    /// Only incidents.
    pub incidents_only: bool,
    /// Include the store's own records (channel `audit`: prunes), which are not decisions.
    /// Off by default, so reports, simulations and charts see decisions only.
    pub include_audit: bool,
    pub limit: Option<u64>,
}

impl Store {
    /// Records matching `filter`, in chain order.
    pub fn query(&self, filter: &Filter) -> Result<Vec<StoredRecord>, RecordError> {
        let mut out = Vec::new();
        self.query_each(filter, |r| {
            out.push(r);
            Ok::<_, RecordError>(())
        })?;
        Ok(out)
    }

    /// Call `f` for each record matching `filter`, in chain order, without holding them all.
    /// Errors from `f` stop the walk and are returned.
    pub fn query_each<E: From<RecordError>>(
        &self,
        filter: &Filter,
        mut f: impl FnMut(StoredRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<String> = Vec::new();
        if let Some(t) = filter.since {
            clauses.push("time >= ?");
            values.push(format_time(t));
        }
        if let Some(t) = filter.until {
            clauses.push("time < ?");
            values.push(format_time(t));
        }
        if let Some(p) = &filter.partner {
            clauses.push("(partner = ? COLLATE NOCASE OR partner_id = ? COLLATE NOCASE)");
            values.push(p.clone());
            values.push(p.clone());
        }
        if let Some(i) = &filter.isa {
            clauses.push("isa = ? COLLATE NOCASE");
            values.push(i.trim().to_string());
        }
        if let Some(c) = &filter.class {
            clauses.push("class = ? COLLATE NOCASE");
            values.push(c.clone());
        }
        if let Some(v) = filter.verdict {
            clauses.push("verdict = ?");
            values.push(v.as_str().into());
        }
        if let Some(s) = &filter.sender {
            if s.starts_with('@') {
                clauses.push("lower(sender) LIKE '%' || lower(?) ESCAPE '\\'");
                values.push(
                    s.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_"),
                );
            } else {
                clauses.push("sender = ? COLLATE NOCASE");
                values.push(s.clone());
            }
        }
        if filter.incidents_only {
            clauses.push("incident = 1");
        }
        if !filter.include_audit {
            clauses.push("channel <> 'audit'");
        }
        let mut sql = format!("SELECT {COLUMNS} FROM records");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY seq");
        if let Some(n) = filter.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let rerr = |e| self.read_err(e);
        let mut stmt = self.conn.prepare(&sql).map_err(rerr)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(values.iter()))
            .map_err(rerr)?;
        while let Some(row) = rows.next().map_err(rerr)? {
            let seq: i64 = row.get(0).map_err(rerr)?;
            let hash: Vec<u8> = row.get(29).map_err(rerr)?;
            let record = record_from_row(row).map_err(|message| RecordError::Corrupt {
                path: self.path.clone(),
                seq,
                message,
            })?;
            f(StoredRecord {
                seq,
                record,
                hash: hex::encode(hash),
            })?;
        }
        Ok(())
    }
}

/// Read a record back from its row; a value that cannot be read is described.
pub(super) fn record_from_row(row: &Row<'_>) -> Result<DecisionRecord, String> {
    fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, i: usize) -> Result<T, String> {
        row.get(i).map_err(|e| format!("column {i}: {e}"))
    }
    fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, String> {
        serde_json::from_str(text).map_err(|e| format!("{what}: {e}"))
    }
    let time_text: String = get(row, 2)?;
    let time = DateTime::parse_from_rfc3339(&time_text)
        .map_err(|e| format!("time {time_text:?}: {e}"))?
        .with_timezone(&Utc);
    let channel: String = get(row, 3)?;
    let verdict: String = get(row, 13)?;
    let actions: Vec<String> = json(&get::<String>(row, 14)?, "actions")?;
    let disclosure: String = get(row, 17)?;
    let consent: Option<String> = get(row, 21)?;
    let size: i64 = get(row, 23)?;
    let incident_kind: Option<String> = get(row, 27)?;
    Ok(DecisionRecord {
        id: get(row, 1)?,
        time,
        channel: Channel::parse(&channel).ok_or_else(|| format!("channel {channel:?}"))?,
        sender: get(row, 4)?,
        recipient: get(row, 5)?,
        partner: get(row, 6)?,
        partner_id: get(row, 7)?,
        class: get(row, 8)?,
        label: get(row, 9)?,
        sources: json::<Vec<SourceRecord>>(&get::<String>(row, 10)?, "sources")?,
        defaulted: get(row, 11)?,
        destination: get(row, 12)?,
        verdict: parse_verdict(&verdict).ok_or_else(|| format!("verdict {verdict:?}"))?,
        actions: actions
            .iter()
            .map(|a| Action::parse(a).ok_or_else(|| format!("action {a:?}")))
            .collect::<Result<_, _>>()?,
        rules: json(&get::<String>(row, 15)?, "rules")?,
        reason: get(row, 16)?,
        disclosure: parse_disclosure(&disclosure)
            .ok_or_else(|| format!("disclosure {disclosure:?}"))?,
        isa: get(row, 18)?,
        purpose: get(row, 19)?,
        legal_basis: get(row, 20)?,
        consent: match consent {
            None => None,
            Some(c) => Some(
                Consent::parse(&c)
                    .filter(|v| v.as_str() == c)
                    .ok_or_else(|| format!("consent {c:?}"))?,
            ),
        },
        message_id: get(row, 22)?,
        size: u64::try_from(size).map_err(|_| format!("size {size}"))?,
        sha256: get(row, 24)?,
        policy_version: get(row, 25)?,
        incident: get(row, 26)?,
        incident_kind: match incident_kind {
            None => None,
            Some(k) => Some(IncidentKind::parse(&k).ok_or_else(|| format!("incident kind {k:?}"))?),
        },
    })
}
