//! `[dkim]` section: markgate signs what it sends (stamping and encryption break the
//! sender's own signature). Absent: nothing is signed.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// `dkim.domain`: copies whose From domain is this or one of its subdomains are signed
    /// (`d=`).
    pub domain: String,
    /// `dkim.selector`: the key's DNS name is `<selector>._domainkey.<domain>` (`s=`).
    pub selector: String,
    /// `dkim.key`: the private key, Ed25519 or RSA-2048, PEM (`markgate certs dkim`).
    pub key: PathBuf,
}

impl DkimConfig {
    /// Problems with this section, each a full sentence naming the key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let label_ok = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        };
        if !label_ok(self.domain.trim_end_matches('.')) {
            errors.push(format!(
                "dkim.domain: {:?} is not a domain name",
                self.domain
            ));
        }
        if !label_ok(&self.selector) {
            errors.push(format!(
                "dkim.selector: {:?} is not a DNS label",
                self.selector
            ));
        }
        errors
    }
}
