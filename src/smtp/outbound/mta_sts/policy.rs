//! The MTA-STS policy file (RFC 8461 §3.2) and the `_mta-sts` TXT record (§3.1).

use serde::{Deserialize, Serialize};

/// Longest policy body read (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Longest `max_age` honoured: one year (RFC 8461 §3.2).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub mode: Mode,
    /// MX patterns, lower case: `mail.example.com` or `*.example.com`.
    pub mx: Vec<String>,
    pub max_age: u64,
}

impl Policy {
    /// Parse a policy body; every problem is an error (a policy that cannot be read is not
    /// used, RFC 8461 §3.2).
    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut version = None;
        let mut mode = None;
        let mut max_age = None;
        let mut mx = Vec::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| format!("line {line:?} is not key: value"))?;
            let value = value.trim();
            match key.trim() {
                "version" => version = Some(value.to_string()),
                "mode" => {
                    mode = Some(match value {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        other => {
                            return Err(format!("mode {other:?} is not enforce, testing or none"))
                        }
                    })
                }
                "max_age" => {
                    if value.is_empty()
                        || value.len() > 10
                        || !value.bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(format!("max_age {value:?} is not a number of seconds"));
                    }
                    max_age = Some(
                        value
                            .parse::<u64>()
                            .map_err(|e| e.to_string())?
                            .min(MAX_AGE_LIMIT),
                    );
                }
                "mx" => {
                    let pattern = value.to_ascii_lowercase();
                    let bare = pattern.strip_prefix("*.").unwrap_or(&pattern);
                    if bare.is_empty() || bare.contains('*') || bare.contains(char::is_whitespace) {
                        return Err(format!(
                            "mx {value:?} is not a host name or *.domain pattern"
                        ));
                    }
                    mx.push(pattern.trim_end_matches('.').to_string());
                }
                _ => {} // unknown keys are ignored (§3.2)
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err("version is not STSv1".into());
        }
        let mode = mode.ok_or("no mode")?;
        let max_age = max_age.ok_or("no max_age")?;
        if mode != Mode::None && mx.is_empty() {
            return Err("no mx pattern".into());
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// Does the MX host name match a pattern? A wildcard stands for exactly one leftmost
    /// label (RFC 8461 §4.1).
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => host
                    .split_once('.')
                    .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
                None => *pattern == host,
            })
    }
}

/// The `id` of a `v=STSv1; id=...;` TXT record, when `records` hold exactly one such record.
pub fn txt_id(records: &[String]) -> Option<String> {
    let sts: Vec<&String> = records
        .iter()
        .filter(|r| r.trim_start().starts_with("v=STSv1"))
        .collect();
    if sts.len() != 1 {
        return None;
    }
    let mut fields = sts[0].split(';').map(str::trim);
    if fields.next() != Some("v=STSv1") {
        return None;
    }
    fields
        .filter_map(|f| f.strip_prefix("id="))
        .map(str::trim)
        .find(|id| {
            !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_rfc_example() {
        let p = Policy::parse(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604800);
        assert!(p.matches("mail.example.com"));
        assert!(p.matches("MAIL.example.com."));
        assert!(p.matches("a.example.net"));
        assert!(!p.matches("example.net"), "a wildcard needs one label");
        assert!(
            !p.matches("a.b.example.net"),
            "a wildcard is one label only"
        );
        assert!(!p.matches("evil-mail.example.com"));
    }

    #[test]
    fn refuses_broken_policies() {
        for body in [
            "mode: enforce\nmx: a.test\nmax_age: 1\n",
            "version: STSv1\nmx: a.test\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: a.test\n",
            "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -5\n",
            "version: STSv1\nmode: enforce\nmx: *.*.test\nmax_age: 5\n",
            "<html>not found</html>",
        ] {
            assert!(Policy::parse(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn txt_record_ids() {
        assert_eq!(
            txt_id(&["v=STSv1; id=20160831085700Z;".into()]).as_deref(),
            Some("20160831085700Z")
        );
        assert_eq!(
            txt_id(&["v=STSv1;id=abc".into(), "other".into()]).as_deref(),
            Some("abc")
        );
        assert_eq!(
            txt_id(&["v=STSv1; id=a".into(), "v=STSv1; id=b".into()]),
            None
        );
        assert_eq!(txt_id(&["v=STSv2; id=a".into()]), None);
        assert_eq!(txt_id(&["v=STSv1; id=".into()]), None);
    }

    proptest! {
        /// A host matches a policy only if it is listed or one label under a wildcard.
        #[test]
        fn matching_is_exact_or_one_label(label in "[a-z0-9]{1,8}", extra in "[a-z0-9]{1,8}", domain in "[a-z]{1,6}\\.test") {
            let p = Policy { mode: Mode::Enforce, mx: vec![format!("*.{domain}"), format!("mx.{domain}")], max_age: 1 };
            let one_label = format!("{label}.{domain}");
            let deeper = format!("{extra}.{label}.{domain}");
            let outside = format!("{label}.{domain}.evil");
            prop_assert!(p.matches(&one_label));
            prop_assert!(!p.matches(&deeper));
            prop_assert!(!p.matches(&outside));
            prop_assert!(!p.matches(&domain));
        }

        /// Parsing never panics, whatever the body.
        #[test]
        fn parse_never_panics(body in ".{0,300}") {
            let _ = Policy::parse(&body);
        }
    }
}
