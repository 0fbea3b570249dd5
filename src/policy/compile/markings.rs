//! `markings.toml`: marking classes with their spellings and descriptors, where markings are
//! read, and the Microsoft sensitivity labels mapped to classes.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use super::{defined_twice, place, Errors};
use crate::marking::normalise;
use crate::marking::{MarkingClass, MarkingScheme, MsipLabel};
use crate::policy::model::MarkingsFile;
use crate::policy::source::SourceFile;

pub(super) fn compile(
    raw: MarkingsFile,
    file: &SourceFile,
    errors: &mut Errors,
) -> Option<MarkingScheme> {
    let mut classes: Vec<MarkingClass> = Vec::new();
    // Every spelling (names included): the class it belongs to and where it was written.
    let mut spelling_owner: HashMap<String, (String, Range<usize>)> = HashMap::new();
    for entry in &raw.classes {
        let name = entry.name.get_ref().trim().to_string();
        if name.is_empty() {
            errors.at(file, entry.name.span(), "a marking class needs a name");
            continue;
        }
        let normalised_name = normalise(&name);
        if let Some((owner, first)) = spelling_owner.get(&normalised_name) {
            if normalise(owner) == normalised_name {
                let message = defined_twice("class", &name, file, first, &entry.name.span());
                errors.at(file, entry.name.span(), message);
                continue;
            }
        }
        let mut spellings = vec![(normalised_name, entry.name.span())];
        for s in &entry.spellings {
            let n = normalise(s.get_ref());
            if n.is_empty() {
                errors.at(file, s.span(), "empty spelling");
            } else if !spellings.iter().any(|(x, _)| *x == n) {
                spellings.push((n, s.span()));
            }
        }
        for (s, span) in &spellings {
            match spelling_owner.get(s) {
                Some((owner, first)) => errors.at(
                    file,
                    span.clone(),
                    format!(
                        "spelling {s:?} of class {name:?} is already a spelling of class {owner:?} ({})",
                        place(file, first)
                    ),
                ),
                None => {
                    spelling_owner.insert(s.clone(), (name.clone(), span.clone()));
                }
            }
        }
        let mut spellings: Vec<String> = spellings.into_iter().map(|(s, _)| s).collect();
        spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let descriptors = entry
            .descriptors
            .iter()
            .map(|d| normalise(d.get_ref()))
            .collect();
        classes.push(MarkingClass {
            name,
            rank: entry.rank,
            scheme: entry.scheme.clone(),
            spellings,
            descriptors,
            retain_days: entry.retain_days.unwrap_or(raw.retain_days),
        });
    }
    if classes.is_empty() {
        errors
            .0
            .push(file.error_at(0, "no marking classes defined ([[class]])"));
        return None;
    }
    let find = |name: &str| -> Option<usize> {
        let n = normalise(name);
        classes.iter().position(|c| c.spellings.contains(&n))
    };
    let class_names = || {
        classes
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let unmarked = match find(raw.unmarked.get_ref()) {
        Some(i) => Some(i),
        None => {
            errors.at(
                file,
                raw.unmarked.span(),
                format!(
                    "unknown class {:?} for unmarked messages (classes: {})",
                    raw.unmarked.get_ref(),
                    class_names()
                ),
            );
            None
        }
    };
    let mut msip_labels: BTreeMap<(String, String), (MsipLabel, Range<usize>)> = BTreeMap::new();
    for label in &raw.msip_labels {
        let mut well_formed = true;
        for (what, id) in [("site_id", &label.site_id), ("label_id", &label.label_id)] {
            if !is_guid(id.get_ref().trim()) {
                errors.at(
                    file,
                    id.span(),
                    format!(
                        "{what} {:?} is not a GUID such as 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d (copy it from the label's properties in Microsoft Purview)",
                        id.get_ref()
                    ),
                );
                well_formed = false;
            }
        }
        let Some(class) = find(label.class.get_ref()) else {
            errors.at(
                file,
                label.class.span(),
                format!(
                    "unknown class {:?} in msip_label (classes: {})",
                    label.class.get_ref(),
                    class_names()
                ),
            );
            continue;
        };
        let mut descriptors = Vec::new();
        for d in &label.descriptors {
            let n = normalise(d.get_ref());
            if classes[class].descriptors.contains(&n) {
                descriptors.push(n);
            } else {
                errors.at(
                    file,
                    d.span(),
                    format!(
                        "class {:?} has no descriptor {:?} (its descriptors: {})",
                        classes[class].name,
                        d.get_ref(),
                        if classes[class].descriptors.is_empty() {
                            "none".to_string()
                        } else {
                            classes[class].descriptors.join(", ")
                        }
                    ),
                );
                well_formed = false;
            }
        }
        if !well_formed {
            continue;
        }
        let key = (
            label.site_id.get_ref().trim().to_ascii_lowercase(),
            label.label_id.get_ref().trim().to_ascii_lowercase(),
        );
        if let Some((_, first)) = msip_labels.get(&key) {
            let message = format!(
                "sensitivity label {:?} listed twice for this tenant, at {} and :{}",
                label.label_id.get_ref(),
                place(file, first),
                file.line_col(label.label_id.span().start).0
            );
            errors.at(file, label.label_id.span(), message);
            continue;
        }
        msip_labels.insert(
            key,
            (MsipLabel { class, descriptors }, label.label_id.span()),
        );
    }
    let mut caveats: Vec<String> = Vec::new();
    for caveat in &raw.caveats {
        let n = normalise(caveat.get_ref());
        let within = |spelling: &String| format!(" {n} ").contains(&format!(" {spelling} "));
        if n.is_empty() {
            errors.at(file, caveat.span(), "empty caveat");
        } else if let Some((spelling, (owner, _))) = spelling_owner.iter().find(|(s, _)| within(s))
        {
            errors.at(
                file,
                caveat.span(),
                format!("caveat {n:?} holds {spelling:?}, a spelling of class {owner:?}: a caveat must not hide a class"),
            );
        } else if !caveats.contains(&n) {
            caveats.push(n);
        }
    }
    let mut marking_headers: Vec<String> = vec!["x-protective-marking".into()];
    for h in &raw.sources.headers {
        let h = h.trim().to_ascii_lowercase();
        if !marking_headers.contains(&h) {
            marking_headers.push(h);
        }
    }
    Some(MarkingScheme {
        classes,
        unmarked: unmarked?,
        marking_headers,
        epms_namespaces: raw
            .sources
            .epms_namespaces
            .iter()
            .map(|n| n.trim().to_ascii_lowercase())
            .collect(),
        banner_prefixes: raw
            .sources
            .banner_prefixes
            .iter()
            .map(|p| normalise(p))
            .collect(),
        subject_prefixes: raw
            .sources
            .subject_prefixes
            .iter()
            .map(|p| normalise(p))
            .collect(),
        caveats,
        msip_labels: msip_labels
            .into_iter()
            .map(|(k, (label, _))| (k, label))
            .collect(),
    })
}

/// `0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d`: how the `msip_labels` header writes label and
/// tenant ids (matched without braces, case-insensitively).
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::is_guid;

    #[test]
    fn guids() {
        assert!(is_guid("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"));
        assert!(is_guid("0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"));
        assert!(!is_guid("{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}"));
        assert!(!is_guid("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4"));
        assert!(!is_guid("0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"));
        assert!(!is_guid("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4g"));
    }
}
