//! `isas.toml`: the Information Sharing Agreement register, its partners, ceiling class and
//! review dates (which must not contradict each other).

use std::ops::Range;

use chrono::{Months, NaiveDate};
use toml::Spanned;

use super::{defined_twice, Errors};
use crate::marking::MarkingScheme;
use crate::policy::model::IsasFile;
use crate::policy::source::SourceFile;
use crate::policy::{Isa, Partner};

fn date(
    file: &SourceFile,
    v: &Spanned<String>,
    what: &str,
    errors: &mut Errors,
) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(v.get_ref().trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.at(
                file,
                v.span(),
                format!("{what} {:?} is not a date (YYYY-MM-DD)", v.get_ref()),
            );
            None
        }
    }
}

pub(super) fn compile(
    raw: IsasFile,
    file: &SourceFile,
    scheme: &MarkingScheme,
    partners: &[Partner],
    errors: &mut Errors,
) -> Vec<Isa> {
    let mut out: Vec<Isa> = Vec::new();
    let mut defined_at: Vec<(String, Range<usize>)> = Vec::new();
    for entry in raw.isas {
        let id = entry.id.get_ref().trim().to_string();
        match defined_at.iter().find(|(o, _)| o.eq_ignore_ascii_case(&id)) {
            Some((_, first)) => {
                let message = defined_twice("ISA", &id, file, first, &entry.id.span());
                errors.at(file, entry.id.span(), message);
            }
            None => defined_at.push((id.clone(), entry.id.span())),
        }
        for p in &entry.partners {
            if !partners.iter().any(|x| x.id == *p.get_ref()) {
                errors.at(
                    file,
                    p.span(),
                    format!("ISA {id:?} names unknown partner {:?}", p.get_ref()),
                );
            }
        }
        let ceiling = match scheme.find(entry.ceiling.get_ref()) {
            Some(i) => scheme.classes[i].name.clone(),
            None => {
                errors.at(
                    file,
                    entry.ceiling.span(),
                    format!(
                        "ISA {id:?}: unknown ceiling class {:?}",
                        entry.ceiling.get_ref()
                    ),
                );
                continue;
            }
        };
        let start = date(file, &entry.start, "start", errors);
        let last_review = entry
            .last_review
            .as_ref()
            .map(|d| (d, date(file, d, "last_review", errors)));
        let next_review = entry
            .next_review
            .as_ref()
            .map(|d| (d, date(file, d, "next_review", errors)));
        let end = entry
            .end
            .as_ref()
            .map(|d| (d, date(file, d, "end", errors)));
        let Some(start) = start else { continue };
        let mut bad = false;
        let mut contradict = |span: Range<usize>, msg: String| {
            errors.at(file, span, format!("ISA {id:?}: {msg}"));
            bad = true;
        };
        if let Some((span, Some(lr))) = &last_review {
            if *lr < start {
                contradict(
                    span.span(),
                    format!("last_review {lr} is before start {start}"),
                );
            }
        }
        if let Some((span, Some(e))) = &end {
            if *e < start {
                contradict(span.span(), format!("end {e} is before start {start}"));
            }
        }
        let last = last_review.as_ref().and_then(|(_, d)| *d);
        let computed = match last {
            Some(lr) => lr.checked_add_months(Months::new(12)),
            None => start.checked_add_months(Months::new(6)),
        };
        let next = match &next_review {
            Some((span, Some(nr))) => {
                if *nr <= start {
                    contradict(
                        span.span(),
                        format!("next_review {nr} is not after start {start}"),
                    );
                }
                if let Some(lr) = last {
                    if *nr <= lr {
                        contradict(
                            span.span(),
                            format!("next_review {nr} is not after last_review {lr}"),
                        );
                    }
                }
                Some(*nr)
            }
            Some((_, None)) => None,
            None => computed,
        };
        let (Some(next_review), false) = (next, bad) else {
            continue;
        };
        if last_review.as_ref().is_some_and(|(_, d)| d.is_none())
            || end.as_ref().is_some_and(|(_, d)| d.is_none())
        {
            continue;
        }
        out.push(Isa {
            id,
            partners: entry.partners.iter().map(|p| p.get_ref().clone()).collect(),
            purpose: entry.purpose,
            legal_basis: entry.legal_basis,
            ceiling,
            start,
            last_review: last,
            next_review,
            end: end.and_then(|(_, d)| d),
        });
    }
    out
}
