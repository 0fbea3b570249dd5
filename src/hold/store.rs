//! The hold store on disk: every file written durably (temporary file fsynced, renamed, the
//! directory fsynced), every change made under the store's exclusive lock, so the gateway
//! and the command line can change it at the same time.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::checks::{check_decider, Refusal};
use super::model::{Decided, Hold, HoldState, Review, ReviewDecision, ReviewState, Reviewed};
use crate::policy::Approvals;

const LOCK: &str = "hold.lock";
const REVIEWS: &str = "reviews";

/// What can go wrong with the hold store.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The decision is not allowed (CLI exit 1).
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error("no hold {0:?}")]
    NotFound(String),
    #[error("hold {id}: no approver of role {role:?} or higher in approvers.toml to notify")]
    NoApprover { id: String, role: String },
    #[error("no urgent release {0:?} to review")]
    NoReview(String),
    #[error("{0:?} is not a hold id (letters, digits and dashes)")]
    BadId(String),
    #[error("hold file {path}: {why}")]
    Damaged { path: PathBuf, why: String },
    #[error("hold store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl HoldError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> HoldError + '_ {
        move |source| HoldError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// True for a refusal (the rules said no), false for an error.
    pub fn is_refusal(&self) -> bool {
        matches!(self, HoldError::Refused(_))
    }
}

/// A hold id (or review id) as given from outside: letters, digits and dashes, 1 to 64 of
/// them, so it can never name a file outside the store.
pub fn check_id(id: &str) -> Result<&str, HoldError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !id.starts_with('-');
    match ok {
        true => Ok(id),
        false => Err(HoldError::BadId(id.chars().take(80).collect())),
    }
}

/// The hold store directory.
#[derive(Debug, Clone)]
pub struct HoldStore {
    dir: PathBuf,
}

/// The store's exclusive lock, released when dropped.
pub struct Locked(#[allow(dead_code)] File);

impl HoldStore {
    /// Open (create) the store in `dir` (see [`super::dir_for_spool`]).
    pub fn open(dir: &Path) -> Result<HoldStore, HoldError> {
        fs::create_dir_all(dir.join(REVIEWS)).map_err(HoldError::io(dir))?;
        Ok(HoldStore {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Take the store's exclusive lock (waits for another process holding it).
    pub fn lock(&self) -> Result<Locked, HoldError> {
        let path = self.dir.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(HoldError::io(&path))?;
        file.lock().map_err(HoldError::io(&path))?;
        Ok(Locked(file))
    }

    fn json_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// The held copies of `id`, in the spool's file format.
    pub fn msg_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.msg"))
    }

    fn eml_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.eml"))
    }

    fn review_path(&self, id: &str) -> PathBuf {
        self.dir.join(REVIEWS).join(format!("{id}.json"))
    }

    /// Put a new hold: the message as received, the held copies (spool file format) and the
    /// hold itself, all durable when this returns (before the sender hears `250`).
    pub fn put(&self, hold: &Hold, held_copies: &[u8], original: &[u8]) -> Result<(), HoldError> {
        check_id(&hold.id)?;
        let _lock = self.lock()?;
        write_file(&self.eml_path(&hold.id), original)?;
        write_file(&self.msg_path(&hold.id), held_copies)?;
        // The hold file last: a hold exists once this is on disk.
        self.save_locked(hold)?;
        sync_dir(&self.dir)
    }

    /// Replace the held copies of `id` (durably; the gateway does this just before it
    /// releases them).
    pub fn replace_held(&self, id: &str, held_copies: &[u8]) -> Result<(), HoldError> {
        let _lock = self.lock()?;
        write_file(&self.msg_path(check_id(id)?), held_copies)
    }

    /// Replace a hold's file (the lock must be held).
    pub fn save_locked(&self, hold: &Hold) -> Result<(), HoldError> {
        write_json(&self.json_path(&hold.id), hold)
    }

    /// Every hold, oldest first (a damaged hold file is an error).
    pub fn list(&self) -> Result<Vec<Hold>, HoldError> {
        let (holds, mut damaged) = self.list_readable()?;
        match damaged.pop() {
            Some(e) => Err(e),
            None => Ok(holds),
        }
    }

    /// Every hold that can be read, oldest first, and the errors of those that cannot (so
    /// one damaged file does not stop the gateway carrying out the others).
    pub fn list_readable(&self) -> Result<(Vec<Hold>, Vec<HoldError>), HoldError> {
        let (mut holds, damaged) = read_all::<Hold>(&self.dir)?;
        holds.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok((holds, damaged))
    }

    /// One hold.
    pub fn show(&self, id: &str) -> Result<Hold, HoldError> {
        let id = check_id(id)?;
        read_json(&self.json_path(id))?.ok_or_else(|| HoldError::NotFound(id.to_string()))
    }

    /// The message as received, for an approver to read (None once the hold is finished:
    /// nothing of a delivered or rejected message is kept).
    pub fn original(&self, id: &str) -> Result<Option<Vec<u8>>, HoldError> {
        let id = check_id(id)?;
        match fs::read(self.eml_path(id)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(HoldError::io(&self.eml_path(id))(e)),
        }
    }

    /// Approve hold `id` as `approver_email`, with `reason`. Final: the gateway then sends
    /// the held copies with their normal actions.
    pub fn approve(
        &self,
        approvals: &Approvals,
        id: &str,
        approver_email: &str,
        reason: &str,
    ) -> Result<Hold, HoldError> {
        self.decide(
            approvals,
            id,
            approver_email,
            reason,
            HoldState::Approved,
            false,
        )
    }

    /// Reject hold `id` as `approver_email`, with `reason`. Final: nothing of the held copies
    /// leaves; the sender is told why unless `silent`.
    pub fn reject(
        &self,
        approvals: &Approvals,
        id: &str,
        approver_email: &str,
        reason: &str,
        silent: bool,
    ) -> Result<Hold, HoldError> {
        self.decide(
            approvals,
            id,
            approver_email,
            reason,
            HoldState::Rejected,
            silent,
        )
    }

    fn decide(
        &self,
        approvals: &Approvals,
        id: &str,
        approver_email: &str,
        reason: &str,
        to: HoldState,
        silent: bool,
    ) -> Result<Hold, HoldError> {
        let id = check_id(id)?;
        let _lock = self.lock()?;
        let mut hold = self.show(id)?;
        let now = Utc::now();
        let approver = check_decider(
            approvals,
            approver_email,
            reason,
            &hold.sender,
            &hold.role,
            hold.state,
            hold.decided.as_ref(),
            Some(hold.expires),
            now,
        )?;
        hold.state = to;
        hold.decided = Some(Decided {
            by: approver.email.clone(),
            name: approver.name.clone(),
            role: approver.role.clone(),
            reason: reason.trim().to_string(),
            at: now,
            silent,
        });
        self.save_locked(&hold)?;
        Ok(hold)
    }

    /// Expire hold `id` if it is still pending past its expiry (the gateway does this); the
    /// hold as it now is.
    pub fn expire_if_due(&self, id: &str, now: DateTime<Utc>) -> Result<Hold, HoldError> {
        let _lock = self.lock()?;
        let mut hold = self.show(id)?;
        if hold.is_expired_at(now) {
            hold.state = HoldState::Expired;
            hold.decided = Some(Decided {
                by: "markgate".into(),
                name: "markgate (automatic expiry)".into(),
                role: String::new(),
                reason: format!(
                    "not approved by {} (held since {})",
                    hold.expires
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    hold.created
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                at: now,
                silent: false,
            });
            self.save_locked(&hold)?;
        }
        Ok(hold)
    }

    /// Change a hold's progress under the lock (`f` gets the hold as on disk now).
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Hold)) -> Result<Hold, HoldError> {
        let _lock = self.lock()?;
        let mut hold = self.show(id)?;
        f(&mut hold);
        self.save_locked(&hold)?;
        Ok(hold)
    }

    /// Forget the message of a finished hold: the original and any held copies left (the
    /// hold's file stays, as the list of what was decided).
    pub fn destroy_message(&self, id: &str) -> Result<(), HoldError> {
        for path in [self.eml_path(id), self.msg_path(id)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(HoldError::io(&path)(e)),
            }
        }
        sync_dir(&self.dir)
    }

    /// Put a new urgent release on the review list (durable when this returns).
    pub fn add_review(&self, review: &Review) -> Result<(), HoldError> {
        check_id(&review.id)?;
        let _lock = self.lock()?;
        write_json(&self.review_path(&review.id), review)
    }

    /// Every urgent release, oldest first.
    pub fn reviews(&self) -> Result<Vec<Review>, HoldError> {
        let (mut reviews, mut damaged) = read_all::<Review>(&self.dir.join(REVIEWS))?;
        if let Some(e) = damaged.pop() {
            return Err(e);
        }
        reviews.sort_by(|a, b| a.released.cmp(&b.released).then(a.id.cmp(&b.id)));
        Ok(reviews)
    }

    /// One urgent release.
    pub fn show_review(&self, id: &str) -> Result<Review, HoldError> {
        let id = check_id(id)?;
        read_json(&self.review_path(id))?.ok_or_else(|| HoldError::NoReview(id.to_string()))
    }

    /// Review urgent release `id` as `approver_email`: the same rules as an approval (role,
    /// not their own message, a reason, once), but a late review is still taken (it was an
    /// incident when it became overdue).
    pub fn review(
        &self,
        approvals: &Approvals,
        id: &str,
        approver_email: &str,
        decision: ReviewDecision,
        reason: &str,
    ) -> Result<Review, HoldError> {
        let id = check_id(id)?;
        let _lock = self.lock()?;
        let mut review = self.show_review(id)?;
        let state = match review.state {
            ReviewState::Pending => HoldState::Pending,
            ReviewState::Reviewed => HoldState::Approved,
        };
        let now = Utc::now();
        let approver = check_decider(
            approvals,
            approver_email,
            reason,
            &review.sender,
            &review.role,
            state,
            review.reviewed.as_ref().map(|r| &r.by),
            None,
            now,
        )
        .map_err(|refusal| match refusal {
            Refusal::AlreadyDecided { by, at, .. } => Refusal::AlreadyDecided {
                state: "reviewed".into(),
                by,
                at,
            },
            other => other,
        })?;
        review.state = ReviewState::Reviewed;
        review.reviewed = Some(Reviewed {
            decision,
            by: Decided {
                by: approver.email.clone(),
                name: approver.name.clone(),
                role: approver.role.clone(),
                reason: reason.trim().to_string(),
                at: now,
                silent: false,
            },
        });
        write_json(&self.review_path(id), &review)?;
        Ok(review)
    }

    /// Change an urgent release's progress under the lock.
    pub fn update_review(
        &self,
        id: &str,
        f: impl FnOnce(&mut Review),
    ) -> Result<Review, HoldError> {
        let _lock = self.lock()?;
        let mut review = self.show_review(id)?;
        f(&mut review);
        write_json(&self.review_path(id), &review)?;
        Ok(review)
    }
}

/// Write `bytes` to `path` durably: a temporary file fsynced, renamed over `path`, the
/// directory fsynced.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), HoldError> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(HoldError::io(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), HoldError> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("hold state serialises");
    bytes.push(b'\n');
    write_file(path, &bytes)
}

fn sync_dir(dir: &Path) -> Result<(), HoldError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(HoldError::io(dir))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, HoldError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| HoldError::Damaged {
                path: path.to_path_buf(),
                why: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HoldError::io(path)(e)),
    }
}

/// Every `*.json` in `dir` that can be read, and the errors of those that cannot.
fn read_all<T: serde::de::DeserializeOwned>(
    dir: &Path,
) -> Result<(Vec<T>, Vec<HoldError>), HoldError> {
    let mut out = Vec::new();
    let mut damaged = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((out, damaged)),
        Err(e) => return Err(HoldError::io(dir)(e)),
    };
    for entry in entries {
        let path = entry.map_err(HoldError::io(dir))?.path();
        if path.extension().is_some_and(|e| e == "json") {
            match read_json(&path) {
                Ok(Some(value)) => out.push(value),
                Ok(None) => {}
                Err(e) => damaged.push(e),
            }
        }
    }
    Ok((out, damaged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hold::model::Progress;
    use crate::policy::Approver;
    use proptest::prelude::*;

    fn approvals() -> Approvals {
        Approvals {
            roles: vec!["sergeant".into(), "inspector".into()],
            approvers: vec![
                Approver {
                    name: "Sgt S".into(),
                    email: "s@force.test".into(),
                    role: "sergeant".into(),
                },
                Approver {
                    name: "Insp I".into(),
                    email: "i@force.test".into(),
                    role: "inspector".into(),
                },
            ],
            ..Approvals::default()
        }
    }

    fn hold(id: &str, expires_in: chrono::Duration) -> Hold {
        let now = Utc::now();
        Hold {
            id: id.into(),
            state: HoldState::Pending,
            created: now,
            expires: now + expires_in,
            sender: "pc@force.test".into(),
            subject: Some("referral".into()),
            message_id: None,
            size: 3,
            sha256: "00".into(),
            records: Vec::new(),
            class: "OFFICIAL-SENSITIVE".into(),
            label: "OFFICIAL-SENSITIVE PERSONAL".into(),
            sources: Vec::new(),
            recipients: Vec::new(),
            released_now: Vec::new(),
            role: "inspector".into(),
            isa: None,
            purpose: None,
            legal_basis: None,
            consent: None,
            policy_version: "v".into(),
            decided: None,
            progress: Progress::default(),
        }
    }

    #[test]
    fn a_hold_is_kept_decided_once_and_a_damaged_file_does_not_hide_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = HoldStore::open(dir.path()).unwrap();
        store
            .put(
                &hold("h1", chrono::Duration::days(5)),
                b"copies",
                b"original",
            )
            .unwrap();
        store
            .put(
                &hold("h2", chrono::Duration::seconds(-1)),
                b"copies",
                b"original",
            )
            .unwrap();
        assert_eq!(
            store.original("h1").unwrap().as_deref(),
            Some(&b"original"[..])
        );
        assert!(matches!(
            store.approve(&approvals(), "h1", "s@force.test", "ok"),
            Err(HoldError::Refused(Refusal::RoleTooLow { .. }))
        ));
        let approved = store
            .approve(&approvals(), "h1", "I@Force.test", " supported ")
            .unwrap();
        assert_eq!(approved.state, HoldState::Approved);
        let by = approved.decided.as_ref().unwrap();
        assert_eq!(
            (by.by.as_str(), by.role.as_str(), by.reason.as_str()),
            ("i@force.test", "inspector", "supported")
        );
        assert!(matches!(
            store.reject(&approvals(), "h1", "i@force.test", "no", false),
            Err(HoldError::Refused(Refusal::AlreadyDecided { .. }))
        ));
        // Past its expiry: refused, then expired by the gateway.
        assert!(matches!(
            store.approve(&approvals(), "h2", "i@force.test", "late"),
            Err(HoldError::Refused(Refusal::Expired { .. }))
        ));
        assert_eq!(
            store.expire_if_due("h2", Utc::now()).unwrap().state,
            HoldState::Expired
        );
        // A damaged file: `list` says so, the gateway still sees the rest.
        std::fs::write(dir.path().join("h3.json"), b"{not json").unwrap();
        assert!(matches!(store.list(), Err(HoldError::Damaged { .. })));
        let (readable, damaged) = store.list_readable().unwrap();
        assert_eq!(
            readable.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            ["h1", "h2"]
        );
        assert_eq!(damaged.len(), 1);
        store.destroy_message("h1").unwrap();
        assert_eq!(store.original("h1").unwrap(), None);
    }

    proptest! {
        /// Whatever id is asked for, it either names a file inside the store or is refused.
        #[test]
        fn an_id_never_leaves_the_store(id in "\\PC{0,70}") {
            let dir = tempfile::tempdir().unwrap();
            let store = HoldStore::open(dir.path()).unwrap();
            match check_id(&id) {
                Ok(id) => {
                    let path = store.json_path(id);
                    prop_assert_eq!(path.parent(), Some(dir.path()));
                    prop_assert!(matches!(store.show(id), Err(HoldError::NotFound(_))));
                }
                Err(e) => prop_assert!(matches!(e, HoldError::BadId(_))),
            }
        }
    }
}
