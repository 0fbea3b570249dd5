//! `[smtp]` section of the gateway configuration.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {}

impl SmtpConfig {
    /// Problems with this section, each a full sentence naming the key.
    pub fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}
