//! The ISA a sender cites: it must exist, be in force and reviewed, cover the recipient's
//! partner and reach up to the class; otherwise the recipient is blocked with the reason.

use crate::destination::Destination;
use crate::marking::Marking;
use crate::policy::{Isa, IsaStatus, Policy};

use super::builtin;

/// Days before a review date at which an ISA counts as "due soon".
pub const ISA_DUE_SOON_DAYS: i64 = 30;

/// Check the ISA `reference` for a copy of `marking` to `dest` on `today`: the ISA, or the
/// builtin rule id that blocks and the reason.
pub fn check<'p>(
    reference: &str,
    dest: &Destination,
    marking: &Marking,
    today: chrono::NaiveDate,
    policy: &'p Policy,
) -> Result<&'p Isa, (&'static str, String)> {
    let label = &marking.label;
    let Some(isa) = policy.isa(reference) else {
        return Err((
            builtin::ISA_UNKNOWN,
            format!(
                "{reference} is not in the ISA register; check X-ISA-Reference or ask the Information Sharing Officer"
            ),
        ));
    };
    match isa.status_on(today, ISA_DUE_SOON_DAYS) {
        IsaStatus::Overdue => {
            return Err((
                builtin::ISA_OVERDUE,
                format!(
                    "{} was due for review on {} and is withdrawn until reviewed; disclosure under it must stop (ask the Information Sharing Officer)",
                    isa.id, isa.next_review
                ),
            ))
        }
        IsaStatus::NotStarted => {
            return Err((
                builtin::ISA_NOT_IN_FORCE,
                format!("{} does not start until {}; it cannot be used yet", isa.id, isa.start),
            ))
        }
        IsaStatus::Ended => {
            return Err((
                builtin::ISA_NOT_IN_FORCE,
                format!(
                    "{} ended on {}; it cannot be used",
                    isa.id,
                    isa.end.map(|d| d.to_string()).unwrap_or_default()
                ),
            ))
        }
        IsaStatus::Live | IsaStatus::DueSoon => {}
    }
    if !dest
        .partner
        .as_ref()
        .is_some_and(|p| isa.partners.contains(p))
    {
        return Err((
            builtin::ISA_NOT_COVERING,
            format!(
                "{} does not cover {} (partners: {}); remove X-ISA-Reference for a one-off disclosure or ask the Information Sharing Officer",
                isa.id,
                dest.domain,
                isa.partners
                    .iter()
                    .map(|id| policy.partner(id).map(|p| p.name.as_str()).unwrap_or(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let ceiling_rank = policy
        .markings
        .find(&isa.ceiling)
        .map(|i| policy.markings.class(i).rank);
    if ceiling_rank.is_none_or(|r| r < marking.rank) {
        return Err((
            builtin::ISA_CEILING,
            format!(
                "{} covers material up to {}, not {label} (review date {}); ask the Information Sharing Officer",
                isa.id, isa.ceiling, isa.next_review
            ),
        ));
    }
    Ok(isa)
}
