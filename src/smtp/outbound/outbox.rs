//! Local delivery into the outbox folder: one `.eml` per message and recipient, so a new
//! user sees exactly what would leave. There is no network hop, so a `tls` requirement is
//! recorded in the file's trace header instead of performed.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::DeliveryError;
use crate::smtp::queue::spool::{Copy, Envelope};
use crate::transform::headers::sanitise;

/// Write the copy once per recipient, durably (fsync, then rename into place).
pub fn write(
    dir: &Path,
    envelope: &Envelope,
    copy: &Copy,
    recipients: &[String],
    bytes: &[u8],
) -> Result<String, DeliveryError> {
    let fail =
        |e: std::io::Error| DeliveryError::Transient(format!("outbox {}: {e}", dir.display()));
    fs::create_dir_all(dir).map_err(fail)?;
    let index = envelope
        .copies
        .iter()
        .position(|c| c.offset == copy.offset)
        .unwrap_or(0);
    let mut written = Vec::new();
    for rcpt in recipients {
        let name = format!("{}.{index}.{}.eml", envelope.id, file_safe(rcpt));
        let tmp = dir.join(format!(".{name}.tmp"));
        let trace = format!(
            "X-Markgate-Delivery: outbox; recipient=<{}>; tls={}; actions={}\r\n\
             Return-Path: <{}>\r\n\
             Delivered-To: {}\r\n",
            sanitise(rcpt),
            if copy.tls {
                "required (recorded: local outbox, no network hop)"
            } else {
                "not-required"
            },
            if copy.actions.is_empty() {
                "none".to_string()
            } else {
                copy.actions.join(",")
            },
            sanitise(&envelope.sender),
            sanitise(rcpt),
        );
        let mut f = File::create(&tmp).map_err(fail)?;
        f.write_all(trace.as_bytes()).map_err(fail)?;
        f.write_all(bytes).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        fs::rename(&tmp, dir.join(&name)).map_err(fail)?;
        written.push(name);
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(fail)?;
    Ok(format!("outbox {}", written.join(" ")))
}

fn file_safe(address: &str) -> String {
    address
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect()
}
