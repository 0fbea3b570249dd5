//! Hold for approval, and the urgent path (seed 001 §3.8).
//!
//! A one-off disclosure of personal data needs the support of an approver of a given rank
//! (Inspector or higher). A rule with `approval = "<role>"` holds the recipients it allows:
//! their copies (already transformed with their actions: statement, encryption, tls) are
//! put in the [`HoldStore`] and fsynced before the sender hears `250`, and go only when an
//! approver of that role or higher approves. A message marked `X-Disclosure-Urgency:
//! preserve-life` is not held: it goes at once and joins the list of urgent releases that
//! an approver must review afterwards ([`Review`]).
//!
//! The store is a directory of small files, changed only under an exclusive lock, so the
//! command line (`markgate hold approve ...`) and the running gateway (which delivers the
//! release, sends the notifications and the rejection notices, expires holds and records
//! every step) share it safely:
//!
//! ```text
//! <spool.dir>/hold/hold.lock         the lock every change takes
//! <spool.dir>/hold/<id>.json         the hold: what was held, its state and who decided
//! <spool.dir>/hold/<id>.msg          the held copies, in the spool's file format
//! <spool.dir>/hold/<id>.eml          the message as received, for the approver to read
//! <spool.dir>/hold/reviews/<id>.json an urgent release waiting for (or given) its review
//! ```
//!
//! A decision is final: the CLI and the admin page only ever move a hold from `pending` to
//! `approved` or `rejected`, and the gateway moves an undecided one past its expiry to
//! `expired`. What follows a decision is done by the gateway (`crate::smtp::hold`), exactly
//! once:
//! each step is marked done in the hold's file after it is durable, and a release is the
//! rename of `<id>.msg` into the spool, so a crash between steps repeats none of them that
//! left the gateway.

pub mod checks;
mod from_decision;
pub mod model;
pub mod store;

pub use checks::{check_decider, Refusal};
pub use from_decision::{highest_role, recipients_of, records_of, review_of, Released};
pub use model::{
    Decided, HeldRecipient, Hold, HoldState, Review, ReviewDecision, ReviewState, Reviewed,
};
pub use store::{HoldError, HoldStore};

pub use crate::facts::{URGENCY_HEADER, URGENCY_PRESERVE_LIFE};

/// The hold store of a spool directory.
pub fn dir_for_spool(spool_dir: &std::path::Path) -> std::path::PathBuf {
    spool_dir.join("hold")
}
