//! Header grammars: `X-Protective-Marking` (a bare marking, or the Australian EPMS grammar
//! `VER=2018.4, NS=gov.au, SEC=OFFICIAL:Sensitive, ...`), and the RFC 7444 `SIO-Label`
//! parameters (`marking="OFFICIAL"; fgcolor=black; ...`).
//!
//! These only cut a value into its fields; what each field means is the reader's
//! ([`super::reader`]). Every field is kept, repeated ones too: a second `SEC=` or a second
//! `marking=` is read like the first, never dropped.

/// True when a value is written in the EPMS grammar: `KEY=value` pairs separated by commas,
/// starting with a key.
pub(crate) fn is_epms(value: &str) -> bool {
    let first = value.split(',').next().unwrap_or("");
    match first.split_once('=') {
        Some((key, _)) => {
            let key = key.trim();
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphabetic())
        }
        None => false,
    }
}

/// The fields of an EPMS value, in order: (key as written, value). A comma-separated piece
/// that does not start with `KEY=` continues the value before it (`NOTE=a, b`).
pub(crate) fn epms_fields(value: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for piece in value.split(',') {
        let starts_field = piece.split_once('=').filter(|(key, _)| {
            let key = key.trim();
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphabetic())
        });
        match (starts_field, fields.last_mut()) {
            (Some((key, val)), _) => fields.push((key.trim().to_string(), val.trim().to_string())),
            (None, Some((_, val))) => {
                val.push(',');
                val.push_str(piece);
            }
            (None, None) => fields.push((String::new(), piece.trim().to_string())),
        }
    }
    fields
}

/// The value of one parameter of a `;`-separated parameter list, unquoted.
#[cfg(test)]
fn parameter(value: &str, name: &str) -> Option<String> {
    parameters(value, name).into_iter().next()
}

/// Every value of one parameter of a `;`-separated parameter list, unquoted, in order.
pub(crate) fn parameters(value: &str, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = value;
    loop {
        let Some((key, after)) = rest.split_once('=') else {
            return found;
        };
        let key = key.trim().trim_start_matches(';').trim();
        let after = after.trim_start();
        let (val, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            out.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            let next = quoted[end..].split_once(';').map_or("", |(_, n)| n);
            (out, next)
        } else {
            match after.split_once(';') {
                Some((v, n)) => (v.trim().to_string(), n),
                None => (after.trim().to_string(), ""),
            }
        };
        if key.eq_ignore_ascii_case(name) {
            found.push(val);
        }
        if next.is_empty() {
            return found;
        }
        rest = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epms_values() {
        let v = "VER=2018.4, NS=gov.au, SEC=OFFICIAL:Sensitive, CAVEAT=SH:CABINET, ORIGIN=a@b";
        assert!(is_epms(v));
        let fields = epms_fields(v);
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["VER", "NS", "SEC", "CAVEAT", "ORIGIN"]);
        assert_eq!(fields[2].1, "OFFICIAL:Sensitive");
        let fields = epms_fields("SEC=OFFICIAL, NOTE=one, two, SEC=SECRET");
        assert_eq!(fields[1], ("NOTE".to_string(), "one, two".to_string()));
        assert_eq!(fields[2], ("SEC".to_string(), "SECRET".to_string()));
        assert!(!is_epms("OFFICIAL-SENSITIVE"));
        assert!(!is_epms("OFFICIAL: a=b"));
    }

    #[test]
    fn sio_label_parameters() {
        let v = r#"marking="OFFICIAL-SENSITIVE; \"PERSONAL\""; fgcolor=black; type=":ess""#;
        assert_eq!(
            parameter(v, "marking").as_deref(),
            Some(r#"OFFICIAL-SENSITIVE; "PERSONAL""#)
        );
        assert_eq!(parameter(v, "fgcolor").as_deref(), Some("black"));
        assert_eq!(parameter(v, "type").as_deref(), Some(":ess"));
        assert_eq!(parameter(v, "label"), None);
        assert_eq!(
            parameter("fgcolor=red; marking=SECRET", "marking").as_deref(),
            Some("SECRET")
        );
        assert_eq!(
            parameters(r#"marking="NPM"; marking=SECRET"#, "marking"),
            ["NPM", "SECRET"]
        );
    }
}
