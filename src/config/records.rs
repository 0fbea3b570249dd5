//! `[records]` section of the gateway configuration: where decision records are kept, what
//! counts as an incident, and how long records are retained.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problem;
use crate::record::store::StoreOptions;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsConfig {
    /// `records.path`: the SQLite record store (its directory is created).
    pub path: PathBuf,
    /// `records.incident_class`: a blocked disclosure of material ranked at or above this
    /// policy class is recorded as a security incident.
    pub incident_class: String,
    /// `records.retention`: how long records are kept (`audit prune` without
    /// `--older-than`); seed 000 asks for six years.
    pub retention: String,
    /// `records.max_size_mb`: refuse to grow the store beyond this size; recording then
    /// fails (and the gateway answers with a temporary failure) before the disk fills.
    pub max_size_mb: Option<u64>,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("var/records.sqlite"),
            incident_class: "SECRET".into(),
            retention: "6y".into(),
            max_size_mb: None,
        }
    }
}

impl RecordsConfig {
    /// Problems with this section, each naming the key.
    pub fn validate(&self) -> Vec<Problem> {
        let mut errors = Vec::new();
        if self.path.as_os_str().is_empty() {
            errors.push(Problem::new("records.path", "must not be empty"));
        }
        if self.incident_class.trim().is_empty() {
            errors.push(Problem::new(
                "records.incident_class",
                "must name a marking class such as SECRET",
            ));
        }
        if let Err(e) = self.retention_duration() {
            errors.push(Problem::new("records.retention", e));
        }
        if self.max_size_mb == Some(0) {
            errors.push(Problem::new("records.max_size_mb", "must be at least 1"));
        }
        errors
    }

    /// `records.retention` as a duration.
    pub fn retention_duration(&self) -> Result<Duration, String> {
        match humantime::parse_duration(&self.retention) {
            Ok(d) if d >= Duration::from_secs(86_400) => Ok(d),
            Ok(_) => Err("shorter than a day".into()),
            Err(_) => Err("not a duration such as \"6y\" or \"2190d\"".into()),
        }
    }

    /// Options for opening the store.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            max_size_bytes: self.max_size_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = RecordsConfig::default();
        assert!(c.validate().is_empty());
        assert_eq!(c.path, PathBuf::from("var/records.sqlite"));
        assert!(c.retention_duration().unwrap() > Duration::from_secs(6 * 365 * 86_400));
    }

    #[test]
    fn bad_values_are_named() {
        let c = RecordsConfig {
            path: PathBuf::new(),
            incident_class: " ".into(),
            retention: "six years".into(),
            max_size_mb: Some(0),
        };
        let errors = c.validate();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert_eq!(errors[2].key, "records.retention");
    }
}
