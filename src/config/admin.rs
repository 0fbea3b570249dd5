//! `[admin]` section: the security managers' admin page, `/metrics`, `/healthz`, `/readyz`.

use std::path::PathBuf;

use serde::Deserialize;

use super::Problem;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// `admin.enabled`: serve the admin page and metrics.
    pub enabled: bool,
    /// `admin.listen`: address of the admin page (keep it on loopback or a management network).
    pub listen: String,
    /// `admin.token`: bearer token for the admin page. When unset, a random token is generated
    /// at start and written to `admin.token_file`.
    pub token: Option<String>,
    /// `admin.token_file`: where a generated token is written (mode 0600).
    pub token_file: PathBuf,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:9090".into(),
            token: None,
            token_file: PathBuf::from("var/admin-token"),
        }
    }
}

impl AdminConfig {
    pub fn validate(&self) -> Vec<Problem> {
        let mut errors = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            errors.push(Problem::new(
                "admin.listen",
                "not an address and port such as 127.0.0.1:9090",
            ));
        }
        if self.token.as_deref().is_some_and(|t| t.len() < 16) {
            errors.push(Problem::new("admin.token", "use at least 16 characters"));
        }
        errors
    }
}
