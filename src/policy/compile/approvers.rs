//! `approvers.toml`: the approver roles (lowest first), the people who may approve held
//! disclosures with their role, and how long a hold and an urgent release's review may wait.
//! Optional: a policy without it has no roles, and a rule asking for approval is an error.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use super::{defined_twice, Errors};
use crate::policy::model::ApproversFile;
use crate::policy::source::SourceFile;
use crate::policy::{Approvals, Approver, DEFAULT_EXPIRE_AFTER, DEFAULT_REVIEW_WITHIN};

pub(super) fn compile(raw: ApproversFile, file: &SourceFile, errors: &mut Errors) -> Approvals {
    let mut roles: Vec<String> = Vec::new();
    let mut role_at: HashMap<String, Range<usize>> = HashMap::new();
    for r in &raw.roles {
        let name = r.get_ref().trim().to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            errors.at(
                file,
                r.span(),
                format!(
                    "role {:?}: a role is a word of letters, digits and dashes (chief-inspector)",
                    r.get_ref()
                ),
            );
            continue;
        }
        if let Some(first) = role_at.get(&name) {
            let message = defined_twice("role", &name, file, first, &r.span());
            errors.at(file, r.span(), message);
            continue;
        }
        role_at.insert(name.clone(), r.span());
        roles.push(name);
    }
    let mut approvers: Vec<Approver> = Vec::new();
    let mut email_at: HashMap<String, Range<usize>> = HashMap::new();
    for a in raw.approvers {
        let email = a.email.get_ref().trim().to_ascii_lowercase();
        match crate::address::address_domain(&email) {
            Ok(_) if email.split('@').next().is_some_and(|l| !l.is_empty()) => {}
            _ => {
                errors.at(
                    file,
                    a.email.span(),
                    format!(
                        "approver {:?}: {:?} is not a mail address (name@force.pnn.police.uk)",
                        a.name.get_ref(),
                        a.email.get_ref()
                    ),
                );
                continue;
            }
        }
        if let Some(first) = email_at.get(&email) {
            let message = defined_twice("approver", &email, file, first, &a.email.span());
            errors.at(file, a.email.span(), message);
            continue;
        }
        email_at.insert(email.clone(), a.email.span());
        let role = a.role.get_ref().trim().to_ascii_lowercase();
        if !roles.contains(&role) {
            errors.at(
                file,
                a.role.span(),
                format!(
                    "approver {email:?}: unknown role {:?} (roles: {})",
                    a.role.get_ref(),
                    roles.join(", ")
                ),
            );
            continue;
        }
        if a.name.get_ref().trim().is_empty() {
            errors.at(
                file,
                a.name.span(),
                format!("approver {email:?}: empty name"),
            );
            continue;
        }
        approvers.push(Approver {
            name: a.name.get_ref().trim().to_string(),
            email,
            role,
        });
    }
    let expire_after = duration(
        &raw.approval.expire_after,
        DEFAULT_EXPIRE_AFTER,
        "expire_after",
        file,
        errors,
    );
    let review_within = duration(
        &raw.approval.review_within,
        DEFAULT_REVIEW_WITHIN,
        "review_within",
        file,
        errors,
    );
    Approvals {
        roles,
        approvers,
        expire_after,
        review_within,
    }
}

/// A duration as `5d`, `36h`, `90m` or `30s` (humantime), at least one second.
fn duration(
    value: &Option<Spanned<String>>,
    default: std::time::Duration,
    key: &str,
    file: &SourceFile,
    errors: &mut Errors,
) -> std::time::Duration {
    let Some(value) = value else {
        return default;
    };
    match parse_duration(value.get_ref()) {
        Ok(d) => d,
        Err(why) => {
            errors.at(file, value.span(), format!("approval.{key}: {why}"));
            default
        }
    }
}

/// A positive duration such as `5d`, `36h`, `90m`, `30s` (humantime units).
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d >= std::time::Duration::from_secs(1) => Ok(d),
        Ok(_) => Err(format!("{text:?} is shorter than one second")),
        Err(_) => Err(format!(
            "{text:?} is not a duration such as \"5d\", \"36h\" or \"90m\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::ApproversFile;
    use proptest::prelude::*;

    const KNOWN: [&str; 3] = ["sergeant", "inspector", "superintendent"];

    fn compile_text(text: &str) -> (Approvals, Vec<crate::policy::PolicyError>) {
        let file = SourceFile::new(std::path::Path::new("approvers.toml"), text.to_string());
        let mut errors = Errors(Vec::new());
        let raw: ApproversFile = toml::from_str(text).expect("generated TOML parses");
        let approvals = compile(raw, &file, &mut errors);
        (approvals, errors.0)
    }

    proptest! {
        /// Whatever the file says, a valid entry is taken as written and every bad one is
        /// an error located on its own line: none is silently dropped or let through.
        #[test]
        fn every_approver_is_taken_or_refused_where_it_is_written(
            approvers in proptest::collection::vec(
                (0usize..5, "[a-z]{1,6}", prop_oneof![Just("@westmidlands.pnn.police.uk"), Just(""), Just("@")]),
                0..6,
            ),
            expire in prop_oneof![Just("5d".to_string()), Just("1s".to_string()), Just("0s".to_string()), "[a-z0-9 ]{0,6}"],
        ) {
            let mut text = String::from("roles = [\"sergeant\", \"inspector\", \"superintendent\"]\n");
            let mut lines = Vec::new();
            for (i, (role, local, domain)) in approvers.iter().enumerate() {
                let role = KNOWN.get(*role).copied().unwrap_or("constable");
                text.push_str("[[approver]]\n");
                text.push_str(&format!("name = \"Officer {i}\"\n"));
                lines.push(text.matches('\n').count() + 1);
                text.push_str(&format!("email = \"{local}{i}{domain}\"\n"));
                text.push_str(&format!("role = \"{role}\"\n"));
            }
            text.push_str(&format!("[approval]\nexpire_after = \"{expire}\"\n"));
            let (approvals, errors) = compile_text(&text);
            for (i, (role, local, domain)) in approvers.iter().enumerate() {
                let email = format!("{local}{i}{domain}");
                let valid = *domain == "@westmidlands.pnn.police.uk" && KNOWN.get(*role).is_some();
                let taken = approvals.approver(&email).is_some();
                prop_assert_eq!(taken, valid, "{} in\n{}", email, text);
                if !valid {
                    // On the line of its address or of its role.
                    let at = lines[i];
                    prop_assert!(errors.iter().any(|e| e.line == at || e.line == at + 1), "{:?}", errors);
                }
            }
            let duration_ok = parse_duration(&expire).is_ok();
            prop_assert_eq!(
                errors.iter().any(|e| e.message.starts_with("approval.expire_after")),
                !duration_ok
            );
            if duration_ok {
                prop_assert_eq!(approvals.expire_after, humantime::parse_duration(&expire).unwrap());
            }
        }

        /// A duration is accepted exactly when humantime reads it as one second or more.
        #[test]
        fn durations_are_humantime_of_at_least_a_second(text in "[0-9]{0,3}[a-z ]{0,4}") {
            let expected = humantime::parse_duration(text.trim()).ok().filter(|d| d.as_secs() >= 1);
            prop_assert_eq!(parse_duration(&text).ok(), expected);
        }
    }
}
