//! Delivery-attempt records: what happened to each copy and recipient after the decision,
//! on every attempt: delivered, deferred or bounced; to which MX or smart host; over which
//! TLS version and cipher; how the peer was verified (`dane`, `mta-sts`, `pkix`,
//! `smarthost-requiretls`, `smarthost-trusted`, `none`); the SHA-256 of its certificate;
//! and the reason.
//!
//! Kept in the same SQLite store as the decisions, in their own table `deliveries` with
//! their own hash chain (`delivery_head`, genesis 32 zero bytes, `hash = SHA-256(prev ‖
//! canonical)`), written by the same writer thread in the same kind of durable transaction.
//! `audit verify` walks both chains. A chain of its own keeps the decision chain's stored
//! format and code untouched; the two are linked by the queue id and `Message-ID`.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::model::format_time;
use super::store::{chain_hash, ChainHead, Tamper, GENESIS};

/// Tables of the delivery chain (created with the store).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    time TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    copy INTEGER NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    message_id TEXT,
    marking TEXT NOT NULL,
    destination TEXT NOT NULL,
    actions TEXT NOT NULL,
    tls_required INTEGER NOT NULL,
    requiretls INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    next_hop TEXT,
    tls_version TEXT,
    tls_cipher TEXT,
    verification TEXT NOT NULL,
    peer_cert_sha256 TEXT,
    reason TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_time ON deliveries(time);
CREATE INDEX IF NOT EXISTS deliveries_queue ON deliveries(queue_id);
CREATE TABLE IF NOT EXISTS delivery_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
);
INSERT OR IGNORE INTO delivery_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
CREATE TABLE IF NOT EXISTS delivery_anchors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pruned_at TEXT NOT NULL,
    cutoff TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    last_hash BLOB NOT NULL
);
";

/// What an attempt came to for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Delivered,
    /// Failed for now; tried again later.
    Deferred,
    /// Failed for good (or for longer than `delivery.lifetime`): returned to the sender.
    Bounced,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Deferred => "deferred",
            Outcome::Bounced => "bounced",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "delivered" => Some(Outcome::Delivered),
            "deferred" => Some(Outcome::Deferred),
            "bounced" => Some(Outcome::Bounced),
            _ => None,
        }
    }
}

/// One delivery attempt for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    pub id: String,
    pub time: DateTime<Utc>,
    /// The spool's id of the message (also in the `Received:` header markgate adds).
    pub queue_id: String,
    /// Which copy of the message (copies differ by handling).
    pub copy: u32,
    pub sender: String,
    pub recipient: String,
    pub message_id: Option<String>,
    /// The marking label the decision was made on.
    pub marking: String,
    pub destination: String,
    pub actions: Vec<String>,
    /// The decision required `tls` (or the message arrived with REQUIRETLS).
    pub tls_required: bool,
    /// The message arrived with REQUIRETLS.
    pub requiretls: bool,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub outcome: Outcome,
    /// The MX or smart host (and address) the attempt ended on; None when none was reached.
    pub next_hop: Option<String>,
    pub tls_version: Option<String>,
    pub tls_cipher: Option<String>,
    /// `dane`, `mta-sts`, `pkix`, `smarthost-requiretls`, `smarthost-trusted` or `none`.
    pub verification: String,
    pub peer_cert_sha256: Option<String>,
    /// The next hop's answer when delivered; why not, otherwise.
    pub reason: String,
    pub policy_version: String,
}

impl DeliveryRecord {
    /// Canonical serialisation hashed into the delivery chain: a JSON array of every field
    /// in a fixed order. Never change it; a new format gets a new tag.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!([
            "markgate-delivery-1",
            self.id,
            format_time(self.time),
            self.queue_id,
            self.copy,
            self.sender,
            self.recipient,
            self.message_id,
            self.marking,
            self.destination,
            self.actions,
            self.tls_required,
            self.requiretls,
            self.attempt,
            self.outcome.as_str(),
            self.next_hop,
            self.tls_version,
            self.tls_cipher,
            self.verification,
            self.peer_cert_sha256,
            self.reason,
            self.policy_version,
        ]))
        .expect("a delivery record serialises")
    }
}

/// A delivery record with its place in the chain.
#[derive(Debug, Clone, Serialize)]
pub struct StoredDelivery {
    pub seq: i64,
    #[serde(flatten)]
    pub record: DeliveryRecord,
    pub hash: String,
}

const COLUMNS: &str = "seq, id, time, queue_id, copy, sender, recipient, message_id, marking, \
    destination, actions, tls_required, requiretls, attempt, outcome, next_hop, tls_version, \
    tls_cipher, verification, peer_cert_sha256, reason, policy_version, prev_hash, hash";

fn read_head(conn: &Connection) -> rusqlite::Result<ChainHead> {
    conn.query_row(
        "SELECT seq, hash FROM delivery_head WHERE id = 1",
        [],
        |r| {
            let seq: i64 = r.get(0)?;
            let hash: Vec<u8> = r.get(1)?;
            let mut h = [0u8; 32];
            if hash.len() == 32 {
                h.copy_from_slice(&hash);
            }
            Ok(ChainHead { seq, hash: h })
        },
    )
}

/// Append `records` to the delivery chain inside an open transaction.
pub fn append_in(conn: &Connection, records: &[&DeliveryRecord]) -> rusqlite::Result<ChainHead> {
    let mut head = read_head(conn)?;
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO deliveries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
         ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)"
    ))?;
    for r in records {
        let hash = chain_hash(&head.hash, &r.canonical());
        let seq = head.seq + 1;
        stmt.execute(params![
            seq,
            r.id,
            format_time(r.time),
            r.queue_id,
            r.copy,
            r.sender,
            r.recipient,
            r.message_id,
            r.marking,
            r.destination,
            serde_json::to_string(&r.actions).unwrap_or_else(|_| "[]".into()),
            r.tls_required,
            r.requiretls,
            r.attempt,
            r.outcome.as_str(),
            r.next_hop,
            r.tls_version,
            r.tls_cipher,
            r.verification,
            r.peer_cert_sha256,
            r.reason,
            r.policy_version,
            head.hash.as_slice(),
            hash.as_slice(),
        ])?;
        head = ChainHead { seq, hash };
    }
    conn.prepare_cached("UPDATE delivery_head SET seq = ?1, hash = ?2 WHERE id = 1")?
        .execute(params![head.seq, head.hash.as_slice()])?;
    Ok(head)
}

fn from_row(row: &rusqlite::Row<'_>) -> Result<(StoredDelivery, Vec<u8>), String> {
    fn get<T: rusqlite::types::FromSql>(row: &rusqlite::Row<'_>, i: usize) -> Result<T, String> {
        row.get(i).map_err(|e| format!("column {i}: {e}"))
    }
    let time: String = get(row, 2)?;
    let outcome: String = get(row, 14)?;
    let actions: String = get(row, 10)?;
    let hash: Vec<u8> = get(row, 23)?;
    let record = DeliveryRecord {
        id: get(row, 1)?,
        time: DateTime::parse_from_rfc3339(&time)
            .map_err(|e| format!("time {time:?}: {e}"))?
            .with_timezone(&Utc),
        queue_id: get(row, 3)?,
        copy: get(row, 4)?,
        sender: get(row, 5)?,
        recipient: get(row, 6)?,
        message_id: get(row, 7)?,
        marking: get(row, 8)?,
        destination: get(row, 9)?,
        actions: serde_json::from_str(&actions).map_err(|e| format!("actions: {e}"))?,
        tls_required: get(row, 11)?,
        requiretls: get(row, 12)?,
        attempt: get(row, 13)?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| format!("outcome {outcome:?}"))?,
        next_hop: get(row, 15)?,
        tls_version: get(row, 16)?,
        tls_cipher: get(row, 17)?,
        verification: get(row, 18)?,
        peer_cert_sha256: get(row, 19)?,
        reason: get(row, 20)?,
        policy_version: get(row, 21)?,
    };
    let prev: Vec<u8> = get(row, 22)?;
    Ok((
        StoredDelivery {
            seq: get(row, 0)?,
            record,
            hash: hex::encode(hash),
        },
        prev,
    ))
}

/// Filters for [`query`].
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub queue_id: Option<String>,
    pub recipient: Option<String>,
    pub outcome: Option<Outcome>,
    /// Only the newest N matching records (still listed oldest first).
    pub limit: Option<u64>,
}

fn has_table(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Delivery records matching `filter`, in chain order.
pub fn query(conn: &Connection, filter: &DeliveryFilter) -> Result<Vec<StoredDelivery>, String> {
    if !has_table(conn).map_err(|e| e.to_string())? {
        return Ok(Vec::new());
    }
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
    if let Some(q) = &filter.queue_id {
        clauses.push("queue_id = ?");
        values.push(q.clone());
    }
    if let Some(r) = &filter.recipient {
        clauses.push("recipient = ? COLLATE NOCASE");
        values.push(r.clone());
    }
    if let Some(o) = filter.outcome {
        clauses.push("outcome = ?");
        values.push(o.as_str().into());
    }
    let mut sql = format!("SELECT {COLUMNS} FROM deliveries");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    let sql = super::store::query::in_chain_order(sql, filter.limit);
    let mut stmt = conn.prepare(&sql).map_err(|e| e.to_string())?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(values.iter()))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        out.push(from_row(row)?.0);
    }
    Ok(out)
}

/// The outcome of walking the delivery chain.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryVerify {
    pub records: u64,
    pub head_hash: String,
    pub tamper: Option<Tamper>,
}

/// Walk the delivery chain from its latest anchor and report the first thing wrong (the
/// same checks as the decision chain: changed, out of order, removed, truncated).
pub fn verify(conn: &Connection) -> Result<DeliveryVerify, String> {
    let e = |e: rusqlite::Error| e.to_string();
    if !has_table(conn).map_err(e)? {
        // a store written before delivery records existed
        return Ok(DeliveryVerify {
            records: 0,
            head_hash: hex::encode(GENESIS),
            tamper: None,
        });
    }
    let anchor: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT last_seq, last_hash FROM delivery_anchors ORDER BY last_seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(e)?;
    let head = read_head(conn).map_err(e)?;
    let (mut expected, mut running) = match anchor {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_vec()),
    };
    let mut report = DeliveryVerify {
        records: 0,
        head_hash: hex::encode(head.hash),
        tamper: None,
    };
    let mut stmt = conn
        .prepare(&format!("SELECT {COLUMNS} FROM deliveries ORDER BY seq"))
        .map_err(e)?;
    let mut rows = stmt.query([]).map_err(e)?;
    while let Some(row) = rows.next().map_err(e)? {
        let seq: i64 = row.get(0).map_err(e)?;
        let id: String = row
            .get::<_, Option<String>>(1)
            .map_err(e)?
            .unwrap_or_default();
        report.records += 1;
        let (stored, prev) = match from_row(row) {
            Ok(x) => x,
            Err(detail) => {
                report.tamper = Some(Tamper::Changed { seq, id, detail });
                return Ok(report);
            }
        };
        if hex::encode(chain_hash(&prev, &stored.record.canonical())) != stored.hash {
            report.tamper = Some(Tamper::Changed {
                seq,
                id,
                detail: "its content does not match its hash".into(),
            });
            return Ok(report);
        }
        if seq > expected {
            report.tamper = Some(Tamper::Removed {
                from_seq: expected,
                to_seq: seq - 1,
                before_seq: seq,
                before_id: id,
            });
            return Ok(report);
        }
        if prev != running {
            report.tamper = Some(Tamper::PredecessorMissing { seq, id });
            return Ok(report);
        }
        running = hex::decode(&stored.hash).unwrap_or_default();
        expected = seq + 1;
    }
    let last = expected - 1;
    if head.seq > last {
        report.tamper = Some(Tamper::Truncated {
            from_seq: last + 1,
            to_seq: head.seq,
        });
    } else if head.seq != last || head.hash.as_slice() != running.as_slice() {
        report.tamper = Some(Tamper::HeadMismatch {
            head_seq: head.seq,
            last_seq: last,
        });
    }
    Ok(report)
}

/// Remove delivery records older than `cutoff` (a prefix of the chain), leaving an anchor
/// so the rest still verifies. Returns how many were removed.
pub fn prune(conn: &Connection, cutoff: DateTime<Utc>) -> rusqlite::Result<u64> {
    let cutoff_text = format_time(cutoff);
    let first_kept: Option<i64> = conn.query_row(
        "SELECT MIN(seq) FROM deliveries WHERE time >= ?1",
        [&cutoff_text],
        |r| r.get(0),
    )?;
    let target = match first_kept {
        Some(k) => k - 1,
        None => read_head(conn)?.seq,
    };
    let last_hash: Option<Vec<u8>> = conn
        .query_row(
            "SELECT hash FROM deliveries WHERE seq = ?1",
            [target],
            |r| r.get(0),
        )
        .optional()?;
    let Some(last_hash) = last_hash else {
        return Ok(0);
    };
    let removed = conn.execute("DELETE FROM deliveries WHERE seq <= ?1", [target])? as u64;
    conn.execute(
        "INSERT INTO delivery_anchors (pruned_at, cutoff, last_seq, count, last_hash) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![format_time(Utc::now()), cutoff_text, target, removed as i64, last_hash],
    )?;
    Ok(removed)
}
