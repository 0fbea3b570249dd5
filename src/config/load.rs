//! Reading the configuration layers (embedded defaults, the TOML file, `MARKGATE_*`
//! environment overrides) so that every problem can be reported at once and traced to where
//! the value came from: the file and line, or the environment variable.
//!
//! The layers are merged into one TOML table that remembers each key's [`Origin`]. Each
//! section is then deserialized; when that fails, its keys are tried one at a time, so a
//! type error in one key does not hide the errors in the others.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::{Table, Value};

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Not given: the embedded default.
    Default,
    /// The configuration file, as named on the command line, and the 1-based line.
    File { path: PathBuf, line: usize },
    /// An environment variable such as `MARKGATE_SMTP__LISTEN`.
    Env { var: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env { var } => f.write_str(var),
        }
    }
}

/// One problem in a configuration: the key, the value as given, where it came from, and what
/// is wrong with it (including what is accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key (`smtp.listen`, `http.route[0].upstream`); empty for a whole-file problem.
    pub key: String,
    /// The value as written (TOML for the file, the raw text for a variable).
    pub value: Option<String>,
    pub origin: Origin,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.origin != Origin::Default {
            write!(f, "{}: ", self.origin)?;
        }
        match (&self.key, &self.value) {
            (k, _) if k.is_empty() => {}
            (k, Some(v)) => write!(f, "{k} = {v}: ")?,
            (k, None) => write!(f, "{k}: ")?,
        }
        f.write_str(&self.message)
    }
}

/// A problem found by a section's semantic check: the key and what is wrong. The loader adds
/// the value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The merged layers: values, and where each key (and each table) came from.
#[derive(Debug, Default)]
pub(super) struct Layers {
    pub table: Table,
    origins: BTreeMap<String, Origin>,
    /// Raw text of values set by environment variables, by key.
    env_raw: BTreeMap<String, String>,
    pub errors: Vec<ConfigError>,
}

/// Environment variables that are configuration: `MARKGATE_<SECTION>__<KEY>`. Others sharing
/// the prefix (`MARKGATE_LOG`, `MARKGATE_SIGNING_KEY`) are not.
pub(super) fn overrides() -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.strip_prefix("MARKGATE_")
                .is_some_and(|rest| rest.contains("__"))
        })
        .collect();
    vars.sort();
    vars
}

impl Layers {
    /// Read `file` (if any), then apply `env` overrides on top.
    pub fn read(file: Option<&Path>, env: &[(String, String)]) -> Layers {
        let mut layers = Layers::default();
        if let Some(path) = file {
            layers.read_file(path);
        }
        for (var, raw) in env {
            layers.apply_env(var, raw);
        }
        layers
    }

    fn read_file(&mut self, path: &Path) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.errors.push(ConfigError {
                    key: String::new(),
                    value: None,
                    origin: Origin::File {
                        path: path.to_path_buf(),
                        line: 1,
                    },
                    message: format!("cannot read the configuration file: {}", io_reason(&e)),
                });
                return;
            }
        };
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let (doc, syntax) = DeTable::parse_recoverable(&text);
        // What was recovered from a line that does not parse would only echo its error.
        let broken_lines: Vec<usize> = syntax
            .iter()
            .map(|e| e.span().map(|s| line_of(s.start)).unwrap_or(1))
            .collect();
        for e in syntax {
            self.errors.push(ConfigError {
                key: String::new(),
                value: None,
                origin: Origin::File {
                    path: path.to_path_buf(),
                    line: e.span().map(|s| line_of(s.start)).unwrap_or(1),
                },
                message: format!("not valid TOML: {}", e.message().trim()),
            });
        }
        let mut origins = BTreeMap::new();
        let table = convert_table(doc.get_ref(), "", &mut |key, span| {
            let line = line_of(span);
            origins.insert(
                key,
                Origin::File {
                    path: path.to_path_buf(),
                    line,
                },
            );
            !broken_lines.contains(&line)
        });
        self.origins.extend(origins);
        self.table = table;
    }

    fn apply_env(&mut self, var: &str, raw: &str) {
        let path: Vec<String> = var
            .strip_prefix("MARKGATE_")
            .unwrap_or(var)
            .split("__")
            .map(|p| p.to_ascii_lowercase())
            .collect();
        let key = path.join(".");
        if path.iter().any(String::is_empty) {
            self.errors.push(ConfigError {
                key,
                value: Some(raw.to_string()),
                origin: Origin::Env { var: var.into() },
                message: "not a configuration key: write MARKGATE_<SECTION>__<KEY>".into(),
            });
            return;
        }
        let mut table = &mut self.table;
        for (i, part) in path[..path.len() - 1].iter().enumerate() {
            let entry = table
                .entry(part.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            if !entry.is_table() {
                // A variable naming a key below a value that is not a table.
                self.errors.push(ConfigError {
                    key: path[..=i].join("."),
                    value: Some(raw.to_string()),
                    origin: Origin::Env { var: var.into() },
                    message: format!(
                        "{} is not a table, so it has no key {:?}",
                        path[..=i].join("."),
                        path[i + 1]
                    ),
                });
                return;
            }
            self.origins
                .entry(path[..=i].join("."))
                .or_insert_with(|| Origin::Env { var: var.into() });
            table = entry.as_table_mut().expect("checked above");
        }
        table.insert(path[path.len() - 1].clone(), env_value(raw));
        self.origins
            .insert(key.clone(), Origin::Env { var: var.into() });
        self.env_raw.insert(key, raw.to_string());
    }

    /// Where `key` (or the closest enclosing key given) came from.
    pub fn origin(&self, key: &str) -> Origin {
        let mut k = key;
        loop {
            if let Some(o) = self.origins.get(k) {
                return o.clone();
            }
            match k.rfind(['.', '[']) {
                Some(i) => k = &k[..i],
                None => return Origin::Default,
            }
        }
    }

    /// The value of `key` as given, for messages.
    pub fn shown_value(&self, key: &str) -> Option<String> {
        if let Some(raw) = self.env_raw.get(key) {
            return Some(raw.clone());
        }
        let mut value: Option<&Value> = None;
        for part in key.split('.') {
            let (name, index) = match part.split_once('[') {
                Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let table = match value {
                None => &self.table,
                Some(v) => v.as_table()?,
            };
            value = table.get(name);
            if let Some(i) = index {
                value = value?.as_array()?.get(i);
            }
        }
        value.map(inline)
    }

    /// An error for `key`, with its value and origin.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.to_string(),
            value: self.shown_value(key),
            origin: self.origin(key),
            message: message.into(),
        }
    }

    /// Deserialize section `name` (defaults for what is not given), recording an error for
    /// each key that does not fit instead of stopping at the first: each round names one
    /// problem by its exact key, drops the entry holding it, and tries the rest again.
    pub fn section<T: DeserializeOwned + Default>(&mut self, name: &str) -> T {
        let Some(value) = self.table.get(name).cloned() else {
            return T::default();
        };
        let Value::Table(mut table) = value else {
            let e = self.error(name, format!("[{name}] must be a table of keys"));
            self.errors.push(e);
            return T::default();
        };
        // Each round either drops an entry or fills a missing key, so this many are enough.
        let rounds = 2 * count_values(&table) + 8;
        let mut dropped: Vec<String> = Vec::new();
        // Once a stand-in value is in, what deserializes is not the configuration any more.
        let mut stood_in = false;
        for _ in 0..rounds {
            let e = match serde_path_to_error::deserialize::<_, T>(Value::Table(table.clone())) {
                // The keys left once the wrong ones were dropped, for the semantic checks.
                Ok(v) if !stood_in => return v,
                Ok(_) => break,
                Err(e) => e,
            };
            let segments: Vec<Segment> = e.path().iter().filter_map(Segment::of).collect();
            let key = format!("{name}{}", render(&segments));
            // An environment value that read as a number or a boolean may be meant as text.
            if let Some(raw) = self.env_raw.get(&key) {
                let text = Value::String(raw.clone());
                if value_at(&table, &segments) != Some(&text) {
                    set_at(&mut table, &segments, text);
                    continue;
                }
            }
            let inner = e.inner().to_string();
            // A key with no default that is not there: say so (unless it was given and is
            // wrong, which was said already), then stand in for it to read the rest.
            if let Some(field) = missing_field(&inner) {
                let full = format!("{key}.{field}");
                if !dropped.contains(&full) {
                    let mut error = self.error(&key, format!("missing key {field}"));
                    error.value = None;
                    self.errors.push(error);
                }
                stood_in = true;
                if !stand_in(&mut table, &segments, &field, |t| {
                    match serde_path_to_error::deserialize::<_, T>(Value::Table(t.clone())) {
                        Ok(_) => true,
                        Err(e) => {
                            let at: Vec<Segment> =
                                e.path().iter().filter_map(Segment::of).collect();
                            let mut here = segments.clone();
                            here.push(Segment::Key(field.clone()));
                            at != here
                                && missing_field(&e.inner().to_string()).as_deref()
                                    != Some(field.as_str())
                        }
                    }
                }) {
                    break;
                }
                continue;
            }
            let mut message = explain(&inner, &key);
            if inner.contains("variant") {
                // A value of the wrong kind for a key that takes one of some words: ask with a
                // word it cannot know, and the answer lists the words.
                let mut probe = table.clone();
                set_at(&mut probe, &segments, Value::String("\u{1}".into()));
                if let Err(e) = serde_path_to_error::deserialize::<_, T>(Value::Table(probe)) {
                    let words = explain(&e.inner().to_string(), &key);
                    if words.starts_with("not one of the accepted values") {
                        message = words;
                    }
                }
            }
            let error = self.error(&key, message);
            self.errors.push(error);
            dropped.push(key);
            if !drop_entry(&mut table, &segments) {
                break;
            }
        }
        T::default()
    }

    /// Record an error for every top-level key that is not a section in `known`: once for
    /// the file (at the section's first line), once for each environment variable.
    pub fn unknown_sections(&mut self, known: &[&str]) {
        let unknown: Vec<String> = self
            .table
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        let in_section = |name: &str, key: &str| {
            key == name
                || key.starts_with(&format!("{name}."))
                || key.starts_with(&format!("{name}["))
        };
        for name in unknown {
            let message = format!(
                "unknown section [{name}]; the sections are {}",
                known.join(", ")
            );
            let in_file = self
                .origins
                .iter()
                .filter(|(k, o)| in_section(&name, k) && matches!(o, Origin::File { .. }))
                .map(|(_, o)| o.clone())
                .min_by_key(|o| match o {
                    Origin::File { line, .. } => *line,
                    _ => usize::MAX,
                });
            if let Some(origin) = in_file {
                self.errors.push(ConfigError {
                    key: name.clone(),
                    value: None,
                    origin,
                    message: message.clone(),
                });
            }
            let from_env: Vec<String> = self
                .env_raw
                .keys()
                .filter(|k| in_section(&name, k))
                .cloned()
                .collect();
            for key in from_env {
                let e = self.error(&key, message.clone());
                self.errors.push(e);
            }
        }
    }

    /// The errors in the order a person fixes them: the file from top to bottom, then the
    /// environment variables, then problems with defaults.
    pub fn sorted_errors(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| match &e.origin {
            Origin::File { line, .. } => (0, *line, String::new()),
            Origin::Env { var } => (1, 0, var.clone()),
            Origin::Default => (2, 0, e.key.clone()),
        });
        self.errors
    }
}

/// A value on one line, as TOML writes it inline.
fn inline(value: &Value) -> String {
    match value {
        Value::Table(t) if t.is_empty() => "{}".into(),
        Value::Table(t) => format!(
            "{{ {} }}",
            t.iter()
                .map(|(k, v)| format!("{k} = {}", inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        v => v.to_string(),
    }
}

/// One step of a key path inside a section.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Segment {
    fn of(s: &serde_path_to_error::Segment) -> Option<Segment> {
        match s {
            serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
            _ => None,
        }
    }
}

/// `.route[1].upstream`
fn render(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| match s {
            Segment::Key(k) => format!(".{k}"),
            Segment::Index(i) => format!("[{i}]"),
        })
        .collect()
}

fn child<'v>(value: &'v Value, segment: &Segment) -> Option<&'v Value> {
    match (value, segment) {
        (Value::Table(t), Segment::Key(k)) => t.get(k),
        (Value::Array(a), Segment::Index(i)) => a.get(*i),
        _ => None,
    }
}

fn child_mut<'v>(value: &'v mut Value, segment: &Segment) -> Option<&'v mut Value> {
    match (value, segment) {
        (Value::Table(t), Segment::Key(k)) => t.get_mut(k),
        (Value::Array(a), Segment::Index(i)) => a.get_mut(*i),
        _ => None,
    }
}

fn value_at<'v>(table: &'v Table, path: &[Segment]) -> Option<&'v Value> {
    let (Segment::Key(k), rest) = path.split_first()? else {
        return None;
    };
    rest.iter().try_fold(table.get(k)?, child)
}

fn set_at(table: &mut Table, path: &[Segment], new: Value) {
    let Some((Segment::Key(k), rest)) = path.split_first() else {
        return;
    };
    let Some(mut value) = table.get_mut(k) else {
        return;
    };
    for segment in rest {
        match child_mut(value, segment) {
            Some(v) => value = v,
            None => return,
        }
    }
    *value = new;
}

/// The field a "missing field `x`" message names.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.trim().strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// Put a stand-in value for `field` in the table at `path`, of a kind `fits` accepts, so
/// that the keys after it can still be read. False when no kind fits.
fn stand_in(
    table: &mut Table,
    path: &[Segment],
    field: &str,
    fits: impl Fn(&Table) -> bool,
) -> bool {
    let candidates = [
        Value::String(String::new()),
        Value::Integer(0),
        Value::Boolean(false),
        Value::Array(Vec::new()),
        Value::Table(Table::new()),
    ];
    for candidate in candidates {
        let mut trial = table.clone();
        let target = if path.is_empty() {
            Some(&mut trial)
        } else {
            let (Segment::Key(first), rest) = path.split_first().expect("not empty") else {
                return false;
            };
            let mut value = trial.get_mut(first);
            for segment in rest {
                value = value.and_then(|v| child_mut(v, segment));
            }
            value.and_then(Value::as_table_mut)
        };
        let Some(target) = target else { return false };
        target.insert(field.to_string(), candidate);
        if fits(&trial) {
            *table = trial;
            return true;
        }
    }
    false
}

/// Drop the entry holding the problem at `path`: a key of the section, or the whole route
/// or range (`routes.secure`, `route[1]`) a deeper key belongs to, so that a half-removed
/// entry does not raise a second error. False when there is nothing to drop.
fn drop_entry(table: &mut Table, path: &[Segment]) -> bool {
    match path {
        [Segment::Key(k)] => table.remove(k).is_some(),
        [Segment::Key(k), second, ..] => match (table.get_mut(k), second) {
            (Some(Value::Table(t)), Segment::Key(name)) => t.remove(name).is_some(),
            (Some(Value::Array(a)), Segment::Index(i)) if *i < a.len() => {
                a.remove(*i);
                true
            }
            _ => table.remove(k).is_some(),
        },
        _ => false,
    }
}

fn count_values(table: &Table) -> usize {
    fn count(v: &Value) -> usize {
        match v {
            Value::Table(t) => t.values().map(count).sum::<usize>() + 1,
            Value::Array(a) => a.iter().map(count).sum::<usize>() + 1,
            _ => 1,
        }
    }
    table.values().map(count).sum()
}

/// An environment value: a TOML value when it reads as one (a number, `true`, a list such as
/// `["10.0.0.0/8"]`), else the text itself.
fn env_value(raw: &str) -> Value {
    match DeValue::parse(raw) {
        Ok(v) => Value::deserialize(toml::de::ValueDeserializer::from(v))
            .unwrap_or_else(|_| Value::String(raw.to_string())),
        Err(_) => Value::String(raw.to_string()),
    }
}

/// A parsed TOML document as a plain table, calling `at(key, offset)` for every key and
/// leaving out the keys for which it answers false.
fn convert_table(
    table: &DeTable<'_>,
    prefix: &str,
    at: &mut dyn FnMut(String, usize) -> bool,
) -> Table {
    let mut out = Table::new();
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        if at(path.clone(), key.span().start) {
            out.insert(key.get_ref().to_string(), convert_value(value, &path, at));
        }
    }
    out
}

fn convert_value(
    value: &toml::Spanned<DeValue<'_>>,
    path: &str,
    at: &mut dyn FnMut(String, usize) -> bool,
) -> Value {
    match value.get_ref() {
        DeValue::Table(t) => Value::Table(convert_table(t, path, at)),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let p = format!("{path}[{i}]");
                    at(p.clone(), item.span().start).then(|| convert_value(item, &p, at))
                })
                .collect(),
        ),
        _ => Value::deserialize(toml::de::ValueDeserializer::from(value.clone()))
            .unwrap_or_else(|_| Value::String(String::new())),
    }
}

/// An I/O error as a person reads it: the reason, without the OS error number.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// A deserializer's message in the words of the configuration: what is accepted, never the
/// name of a Rust type.
pub fn explain(message: &str, key: &str) -> String {
    let message = message.trim();
    let message = message.lines().next().unwrap_or(message).trim();
    let ticks = |s: &str| -> Vec<String> {
        s.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let names = ticks(rest);
        let (unknown, accepted) = names
            .split_first()
            .map_or((String::new(), &[][..]), |(u, a)| (u.clone(), a));
        let section = key.rsplit_once('.').map_or(key, |(s, _)| s);
        return if accepted.is_empty() {
            format!("unknown key {unknown:?} in [{section}]")
        } else {
            format!(
                "unknown key {unknown:?} in [{section}]; the keys are {}",
                accepted.join(", ")
            )
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let names = ticks(rest);
        if let Some((_, accepted)) = names.split_first() {
            return format!("not one of the accepted values: {}", accepted.join(", "));
        }
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("missing key {}", ticks(rest).join(""));
    }
    let expected = message
        .rsplit_once("expected ")
        .map(|(_, e)| e.trim_end_matches('.'));
    let accepted = match expected {
        Some("u8" | "u16" | "u32" | "u64" | "usize" | "i64" | "i32" | "u128") => {
            let range = match expected {
                Some("u8") => " from 0 to 255",
                Some("u16") => " from 0 to 65535",
                _ => "",
            };
            Some(format!("a whole number{range}"))
        }
        Some("a boolean") => Some("true or false".into()),
        Some("a string" | "a borrowed string") => Some("text in quotes".into()),
        Some("path string") => Some("a path in quotes".into()),
        Some("a sequence") => Some("a list such as [\"a\", \"b\"]".into()),
        Some(e) if e.starts_with("struct ") || e.starts_with("a map") => {
            Some("a table of keys".into())
        }
        Some(e) if e.starts_with("a duration") => Some(e.to_string()),
        _ => None,
    };
    if let Some(accepted) = accepted {
        return format!("expected {accepted}");
    }
    if message.contains("socket address") {
        return "expected an address and port such as 127.0.0.1:8080".into();
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_words_become_configuration_words() {
        assert_eq!(
            explain(
                "invalid type: string \"x\", expected usize",
                "smtp.max_recipients"
            ),
            "expected a whole number"
        );
        assert_eq!(
            explain(
                "invalid value: integer `70000`, expected u16",
                "delivery.routes.x.port"
            ),
            "expected a whole number from 0 to 65535"
        );
        assert_eq!(
            explain(
                "unknown variant `whatever`, expected `reject` or `normalise`",
                "smtp.bare_line_endings"
            ),
            "not one of the accepted values: reject, normalise"
        );
        assert_eq!(
            explain(
                "unknown field `lisen`, expected one of `listen`, `hostname`",
                "smtp.lisen"
            ),
            "unknown key \"lisen\" in [smtp]; the keys are listen, hostname"
        );
    }

    #[test]
    fn env_values_read_as_toml_when_they_can() {
        assert_eq!(env_value("25"), Value::Integer(25));
        assert_eq!(env_value("true"), Value::Boolean(true));
        assert_eq!(
            env_value("127.0.0.1:25"),
            Value::String("127.0.0.1:25".into())
        );
        assert_eq!(
            env_value(r#"["10.0.0.0/8"]"#),
            Value::Array(vec![Value::String("10.0.0.0/8".into())])
        );
    }
}
