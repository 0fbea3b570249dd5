//! Header grammars: `X-Protective-Marking` (a bare marking, or the Australian EPMS grammar
//! `VER=2018.4, NS=gov.au, SEC=OFFICIAL:Sensitive, ...`), and the RFC 7444 `SIO-Label`
//! parameters (`marking="OFFICIAL"; fgcolor=black; ...`).

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

/// The `NS=` and `SEC=` values of an EPMS value (the first of each).
pub(crate) fn epms(value: &str) -> (Option<&str>, Option<&str>) {
    let mut ns = None;
    let mut sec = None;
    for pair in value.split(',') {
        let Some((key, val)) = pair.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let val = val.trim();
        if key.eq_ignore_ascii_case("ns") && ns.is_none() {
            ns = Some(val);
        } else if key.eq_ignore_ascii_case("sec") && sec.is_none() {
            sec = Some(val);
        }
    }
    (ns, sec)
}

/// The value of one parameter of a `;`-separated parameter list, unquoted.
pub(crate) fn parameter(value: &str, name: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let (key, after) = rest.split_once('=')?;
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
            return Some(val);
        }
        if next.is_empty() {
            return None;
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
        assert_eq!(epms(v), (Some("gov.au"), Some("OFFICIAL:Sensitive")));
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
    }
}
