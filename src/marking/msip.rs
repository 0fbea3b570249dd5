//! Microsoft Purview sensitivity labels, carried in the `msip_labels` header that Outlook and
//! Exchange Online write:
//!
//! ```text
//! msip_labels: MSIP_Label_<label id>_Enabled=true; MSIP_Label_<label id>_SetDate=...;
//!  MSIP_Label_<label id>_Method=Privileged; MSIP_Label_<label id>_Name=OFFICIAL-SENSITIVE;
//!  MSIP_Label_<label id>_SiteId=<tenant id>; MSIP_Label_<label id>_ActionId=...;
//! ```
//!
//! A header may carry several labels. Only enabled labels count. Each is read twice: its
//! `_Name` as a marking, and its (SiteId, label id) through the policy's label map, which
//! covers labels whose display name is not a class spelling.

/// One label found in the header.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Label {
    /// Label id, lower case.
    pub id: String,
    pub enabled: bool,
    pub name: Option<String>,
    /// Tenant id, lower case.
    pub site_id: Option<String>,
}

const PREFIX: &str = "msip_label_";

/// The items of an (unfolded) `msip_labels` value that are not `key=value`: nothing Outlook
/// writes, but where a `;` cut a label's name short (`_Name=NPM; SECRET`), what followed.
pub(crate) fn stray_items(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(';')
        .map(str::trim)
        .filter(|item| !item.is_empty() && !item.contains('='))
}

/// Every label in an (unfolded) `msip_labels` value, in order of first appearance.
pub(crate) fn labels(value: &str) -> Vec<Label> {
    let mut out: Vec<Label> = Vec::new();
    for item in value.split(';') {
        let Some((key, val)) = item.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let val = val.trim().trim_matches('"').trim();
        if key.len() <= PREFIX.len() || !key.is_char_boundary(PREFIX.len()) {
            continue;
        }
        let (prefix, rest) = key.split_at(PREFIX.len());
        if !prefix.eq_ignore_ascii_case(PREFIX) {
            continue;
        }
        let Some((id, attr)) = rest.rsplit_once('_') else {
            continue;
        };
        let id = id.trim().to_ascii_lowercase();
        let label = match out.iter().position(|l| l.id == id) {
            Some(i) => &mut out[i],
            None => {
                out.push(Label {
                    id,
                    ..Label::default()
                });
                out.last_mut().expect("just pushed")
            }
        };
        if attr.eq_ignore_ascii_case("enabled") {
            label.enabled = val.eq_ignore_ascii_case("true");
        } else if attr.eq_ignore_ascii_case("name") {
            label.name = Some(val.to_string());
        } else if attr.eq_ignore_ascii_case("siteid") {
            label.site_id = Some(val.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::labels;

    #[test]
    fn reads_several_labels_and_their_state() {
        let v =
            "MSIP_Label_AAA_Enabled=true; MSIP_Label_AAA_SiteId=T1; MSIP_Label_AAA_Name=OFFICIAL; \
                 MSIP_Label_bbb_Enabled=False; MSIP_Label_bbb_Name=SECRET; junk; x=y";
        let l = labels(v);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].id, "aaa");
        assert!(l[0].enabled);
        assert_eq!(l[0].site_id.as_deref(), Some("t1"));
        assert_eq!(l[0].name.as_deref(), Some("OFFICIAL"));
        assert!(!l[1].enabled);
        assert_eq!(super::stray_items(v).collect::<Vec<_>>(), ["junk"]);
    }
}
