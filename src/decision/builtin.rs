//! Rule ids that are not written in the policy: those the engine itself fires, and those a
//! channel names when it refuses or fails after the decision allowed. Records, reports and
//! `policy simulate` tell the two apart by these ids.

pub const DEFAULT_DENY: &str = "default-deny";
pub const INVALID_RECIPIENT: &str = "invalid-recipient";
pub const NO_RECIPIENTS: &str = "no-recipients";
pub const ISA_UNKNOWN: &str = "isa-unknown";
pub const ISA_OVERDUE: &str = "isa-overdue";
pub const ISA_NOT_IN_FORCE: &str = "isa-not-in-force";
pub const ISA_NOT_COVERING: &str = "isa-partner-not-covered";
pub const ISA_CEILING: &str = "isa-ceiling-exceeded";
pub const ENCRYPT_NO_KEY: &str = "encrypt-needs-partner-key";
/// A place meant to carry the marking holds something the policy cannot read.
pub const MARKING_UNREADABLE: &str = "marking-unreadable";

/// The recipient was allowed, and nothing was sent because another recipient of the same
/// message was blocked.
pub const OTHER_RECIPIENT_BLOCKED: &str = "other-recipient-blocked";
/// A CONNECT tunnel was refused: its content cannot be inspected.
pub const CONNECT_NOT_INSPECTABLE: &str = "connect-not-inspectable";
/// The decision required `encrypt` and the channel could not encrypt (no signing key,
/// sealing failed).
pub const ENCRYPT_UNAVAILABLE: &str = "encrypt-unavailable";
/// The handling the decision required could not be applied (a transform that failed).
pub const HANDLING_FAILED: &str = "handling-failed";
/// A bundle could not be sealed (a bad key, an unreadable file, no signing key).
pub const SEAL_FAILED: &str = "seal-failed";
/// The allowed request was handed to its upstream, and the upstream failed.
pub const UPSTREAM_FAILED: &str = "upstream-failed";

/// The recipient is held for approval, and the channel cannot keep it waiting (an HTTP
/// request, a bundle sealed on the command line): refused, nothing sent.
pub const HOLD_UNAVAILABLE: &str = "hold-unavailable";

/// Ids a channel names when it did not do what the decision allowed: no policy decides
/// these, so replaying them under another policy says nothing.
pub const CHANNEL: [&str; 7] = [
    HOLD_UNAVAILABLE,
    OTHER_RECIPIENT_BLOCKED,
    CONNECT_NOT_INSPECTABLE,
    ENCRYPT_UNAVAILABLE,
    HANDLING_FAILED,
    SEAL_FAILED,
    UPSTREAM_FAILED,
];
