//! `[records]` section of the gateway configuration: where decision records are kept, what
//! counts as an incident, how long records are retained, how commits are grouped, and where
//! and how often the chain is checkpointed.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problem;

/// The longest `records.commit_delay` accepted.
const MAX_COMMIT_DELAY: Duration = Duration::from_millis(10);

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
    /// `records.commit_delay`: under load, how long the record writer waits for more records
    /// before committing a group ("0s" commits at once; a few hundred microseconds lets
    /// commits grow with load). Every record is still fsynced before its caller is answered.
    pub commit_delay: String,
    /// `records.checkpoint_log`: where the gateway appends signed checkpoints of the chain
    /// head (one JSON line each); ship a copy off the host.
    pub checkpoint_log: PathBuf,
    /// `records.checkpoint_interval`: how often the running gateway appends a checkpoint
    /// (and once more at shutdown).
    pub checkpoint_interval: String,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("var/records.sqlite"),
            incident_class: "SECRET".into(),
            retention: "6y".into(),
            max_size_mb: None,
            commit_delay: "300us".into(),
            checkpoint_log: PathBuf::from("var/checkpoints.log"),
            checkpoint_interval: "1m".into(),
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
        if let Err(e) = self.commit_delay_duration() {
            errors.push(Problem::new("records.commit_delay", e));
        }
        if self.checkpoint_log.as_os_str().is_empty() {
            errors.push(Problem::new("records.checkpoint_log", "must not be empty"));
        }
        if let Err(e) = self.checkpoint_interval_duration() {
            errors.push(Problem::new("records.checkpoint_interval", e));
        }
        errors
    }

    /// `records.commit_delay` as a duration (at most 10 ms: it is added to every answer).
    pub fn commit_delay_duration(&self) -> Result<Duration, String> {
        match humantime::parse_duration(&self.commit_delay) {
            Ok(d) if d <= MAX_COMMIT_DELAY => Ok(d),
            Ok(_) => Err("longer than 10ms: every answer waits for it".into()),
            Err(_) => Err("not a duration such as \"200us\" or \"0s\"".into()),
        }
    }

    /// `records.checkpoint_interval` as a duration (at least a second).
    pub fn checkpoint_interval_duration(&self) -> Result<Duration, String> {
        match humantime::parse_duration(&self.checkpoint_interval) {
            Ok(d) if d >= Duration::from_secs(1) => Ok(d),
            Ok(_) => Err("shorter than a second".into()),
            Err(_) => Err("not a duration such as \"1m\"".into()),
        }
    }

    /// `records.retention` as a duration.
    pub fn retention_duration(&self) -> Result<Duration, String> {
        match humantime::parse_duration(&self.retention) {
            Ok(d) if d >= Duration::from_secs(86_400) => Ok(d),
            Ok(_) => Err("shorter than a day".into()),
            Err(_) => Err("not a duration such as \"6y\" or \"2190d\"".into()),
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
            commit_delay: "1s".into(),
            checkpoint_log: PathBuf::new(),
            checkpoint_interval: "10ms".into(),
        };
        let errors = c.validate();
        assert_eq!(errors.len(), 7, "{errors:?}");
        assert_eq!(errors[2].key, "records.retention");
        assert_eq!(errors[4].key, "records.commit_delay");
        assert_eq!(errors[6].key, "records.checkpoint_interval");
    }
}
