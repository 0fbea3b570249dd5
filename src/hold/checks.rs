//! The rules an approval, a rejection and a review must pass, in one pure function: the
//! approver is in `approvers.toml`, their role reaches the role the rule asks for, they are
//! not the sender, the hold is still undecided (decisions are final) and not past its
//! expiry, and a reason is given.

use chrono::{DateTime, Utc};

use super::model::{Decided, HoldState};
use crate::address::bare_address;
use crate::policy::{Approvals, Approver};

/// Why an approver's decision is refused (CLI exit 1, HTTP 403/409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{email} is not an approver in approvers.toml")]
    UnknownApprover { email: String },
    #[error("{email} is {role}; this needs {required} or higher")]
    RoleTooLow {
        email: String,
        role: String,
        required: String,
    },
    #[error("{email} sent this message: an approver never decides on their own message")]
    OwnMessage { email: String },
    #[error("already {state} by {by} at {at}: the decision is final")]
    AlreadyDecided {
        state: String,
        by: String,
        at: String,
    },
    #[error("expired at {expires}: it was rejected automatically")]
    Expired { expires: DateTime<Utc> },
    #[error("a reason is required")]
    NoReason,
}

/// Check that `approver_email` may decide now on a hold (or review) of `sender` needing
/// `required`, in `state` with `decided` and `expires`. The approver as the policy lists
/// them, or the refusal.
#[allow(clippy::too_many_arguments)]
pub fn check_decider<'a>(
    approvals: &'a Approvals,
    approver_email: &str,
    reason: &str,
    sender: &str,
    required: &str,
    state: HoldState,
    decided: Option<&Decided>,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<&'a Approver, Refusal> {
    let email = bare_address(approver_email).to_ascii_lowercase();
    if let Some(d) = decided {
        return Err(Refusal::AlreadyDecided {
            state: state.as_str().to_string(),
            by: d.by.clone(),
            at: d.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
    }
    if let Some(expires) = expires {
        if state == HoldState::Expired || now >= expires {
            return Err(Refusal::Expired { expires });
        }
    }
    let approver = approvals
        .approver(&email)
        .ok_or_else(|| Refusal::UnknownApprover {
            email: email.clone(),
        })?;
    if bare_address(sender).eq_ignore_ascii_case(&approver.email) {
        return Err(Refusal::OwnMessage { email });
    }
    if !approvals.reaches(&approver.role, required) {
        return Err(Refusal::RoleTooLow {
            email,
            role: approver.role.clone(),
            required: required.to_string(),
        });
    }
    if reason.trim().is_empty() {
        return Err(Refusal::NoReason);
    }
    Ok(approver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn approvals() -> Approvals {
        let roles = ["sergeant", "inspector", "chief-inspector", "superintendent"];
        Approvals {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            approvers: roles
                .iter()
                .enumerate()
                .map(|(i, r)| Approver {
                    name: format!("Officer {i}"),
                    email: format!("a{i}@force.test"),
                    role: r.to_string(),
                })
                .collect(),
            ..Approvals::default()
        }
    }

    proptest! {
        /// Whoever asks, whatever the state: a decision passes only when every rule holds.
        #[test]
        fn only_a_qualified_other_person_decides_an_open_hold_in_time(
            who in 0usize..6,
            required in 0usize..4,
            sender_is_approver in any::<bool>(),
            decided in any::<bool>(),
            minutes_left in -5i64..5,
            reason in "[ a-z]{0,5}",
            upper in any::<bool>(),
        ) {
            let approvals = approvals();
            let email = if who < 4 { format!("a{who}@force.test") } else { format!("x{who}@force.test") };
            let asked = if upper { email.to_ascii_uppercase() } else { email.clone() };
            let sender = if sender_is_approver { format!("<{email}>") } else { "pc@force.test".into() };
            let now = Utc::now();
            let expires = now + chrono::Duration::minutes(minutes_left);
            let d = decided.then(|| Decided { by: "z@force.test".into(), name: "Z".into(), role: "superintendent".into(), reason: "r".into(), at: now, silent: false });
            let state = if decided { HoldState::Approved } else { HoldState::Pending };
            let result = check_decider(&approvals, &asked, &reason, &sender, &approvals.roles[required], state, d.as_ref(), Some(expires), now);
            let should_pass = who < 4 && who >= required && !sender_is_approver && !decided && minutes_left > 0 && !reason.trim().is_empty();
            prop_assert_eq!(result.is_ok(), should_pass, "{:?}", result);
            if let Ok(a) = result { prop_assert_eq!(&a.email, &email); }
        }
    }

    #[test]
    fn refusals_say_why() {
        let approvals = approvals();
        let now = Utc::now();
        let later = Some(now + chrono::Duration::hours(1));
        let low = check_decider(
            &approvals,
            "a0@force.test",
            "ok",
            "pc@force.test",
            "inspector",
            HoldState::Pending,
            None,
            later,
            now,
        );
        assert_eq!(
            low.unwrap_err().to_string(),
            "a0@force.test is sergeant; this needs inspector or higher"
        );
        let own = check_decider(
            &approvals,
            "a1@force.test",
            "ok",
            "A1@force.test",
            "inspector",
            HoldState::Pending,
            None,
            later,
            now,
        );
        assert!(matches!(own, Err(Refusal::OwnMessage { .. })));
    }
}
