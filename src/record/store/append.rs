//! Appending to the chain: records are encoded ahead of time ([`PreparedRecord`]), so the
//! single writer only hashes each one onto the head and inserts it, all in one transaction
//! that also moves `chain_head`.

use rusqlite::{params, Connection};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{classify, read_head, ChainHead, Store};
use crate::record::model::{disclosure_str, Consent, DecisionRecord, IncidentKind};
use crate::record::RecordError;

const INSERT: &str = "INSERT INTO records (seq, id, time, channel, sender, recipient, partner, \
    partner_id, class, label, sources, defaulted, destination, verdict, actions, rules, reason, \
    disclosure, isa, purpose, legal_basis, consent, message_id, size, sha256, policy_version, \
    incident, incident_kind, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
    ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, \
    ?29, ?30)";

/// Chain hash of a record after `prev`.
pub fn chain_hash(prev: &[u8], canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

/// A record with its stored encodings worked out, so callers can do that work in parallel
/// and the single writer only hashes and inserts.
#[derive(Debug, Clone)]
pub struct PreparedRecord {
    pub record: DecisionRecord,
    canonical: Vec<u8>,
    time: String,
    sources: String,
    actions: String,
    rules: String,
}

impl PreparedRecord {
    pub fn new(record: DecisionRecord) -> PreparedRecord {
        fn json<T: Serialize + ?Sized>(v: &T) -> String {
            serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
        }
        PreparedRecord {
            canonical: record.canonical(),
            time: record.time_text(),
            sources: json(&record.sources),
            actions: json(
                &record
                    .actions
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>(),
            ),
            rules: json(&record.rules),
            record,
        }
    }
}

impl Store {
    /// Append records to the chain in one durable transaction; all or nothing.
    pub fn append(&mut self, records: &[&DecisionRecord]) -> Result<ChainHead, RecordError> {
        let prepared: Vec<PreparedRecord> = records
            .iter()
            .map(|r| PreparedRecord::new((*r).clone()))
            .collect();
        self.append_prepared(&prepared.iter().collect::<Vec<_>>())
    }

    /// [`Store::append`] for records already prepared.
    pub fn append_prepared(
        &mut self,
        records: &[&PreparedRecord],
    ) -> Result<ChainHead, RecordError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| classify(&self.path, e))?;
        let head = append_in(&tx, records).map_err(|e| classify(&self.path, e))?;
        tx.commit().map_err(|e| classify(&self.path, e))?;
        Ok(head)
    }
}

/// Insert `records` after the current head inside an open transaction.
pub(super) fn append_in(
    conn: &Connection,
    records: &[&PreparedRecord],
) -> rusqlite::Result<ChainHead> {
    let mut head = read_head(conn)?;
    let mut stmt = conn.prepare_cached(INSERT)?;
    for p in records {
        let r = &p.record;
        let hash = chain_hash(&head.hash, &p.canonical);
        let seq = head.seq + 1;
        stmt.execute(params![
            seq,
            r.id,
            p.time,
            r.channel.as_str(),
            r.sender,
            r.recipient,
            r.partner,
            r.partner_id,
            r.class,
            r.label,
            p.sources,
            r.defaulted,
            r.destination,
            r.verdict.as_str(),
            p.actions,
            p.rules,
            r.reason,
            disclosure_str(r.disclosure),
            r.isa,
            r.purpose,
            r.legal_basis,
            r.consent.map(Consent::as_str),
            r.message_id,
            r.size as i64,
            r.sha256,
            r.policy_version,
            r.incident,
            r.incident_kind.map(IncidentKind::as_str),
            head.hash.as_slice(),
            hash.as_slice(),
        ])?;
        head = ChainHead { seq, hash };
    }
    conn.prepare_cached("UPDATE chain_head SET seq = ?1, hash = ?2 WHERE id = 1")?
        .execute(params![head.seq, head.hash.as_slice()])?;
    Ok(head)
}
