//! Configuration errors a person can act on: every problem at once (type and parse errors
//! included), each naming the key, the value given, where it came from (file and line, or the
//! environment variable) and what is accepted; never a Rust type name.

use std::path::Path;
use std::process::Command;

use markgate::config::{Config, ConfigErrors, Origin, SECTIONS};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn errors(file: Option<&Path>, vars: &[(&str, &str)]) -> ConfigErrors {
    match Config::load_with(file, &SECTIONS, &env(vars)) {
        Ok(_) => panic!("the configuration should be refused"),
        Err(e) => e,
    }
}

/// Words that belong to Rust, not to a configuration.
fn assert_plain_words(text: &str) {
    for word in [
        "usize",
        "u16",
        "u64",
        "u32",
        "i64",
        "struct ",
        "enum ",
        "variant",
        "Option",
        "Duration",
        "SocketAddr",
        "PathBuf",
        "untagged",
        "os error",
    ] {
        assert!(!text.contains(word), "{word:?} in {text}");
    }
}

#[test]
fn every_problem_in_the_file_and_the_environment_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("markgate.toml");
    std::fs::write(
        &file,
        r#"[smtp]
listen = "nowhere"
max_recipients = "lots"
bare_line_endings = "whatever"
command_timeout = "5 minutes please"
lisen = 3

[delivery.routes.secure]
host = "x"
port = 70000

[[http.route]]
host = "a.example"
upstream = "https://a.example"

[[http.route]]
host = "b.example"
upstream = 5
"#,
    )
    .unwrap();
    let e = errors(
        Some(&file),
        &[
            ("MARKGATE_SMTP__REQUIRE_TLS", "maybe"),
            ("MARKGATE_BOGUS__X", "1"),
            ("MARKGATE_RECORDS__RETENTION", "forever"),
        ],
    );
    let text = e.to_string();
    let f = file.display();
    for line in [
        format!("{f}:2: smtp.listen = \"nowhere\": not an address and port such as 127.0.0.1:2525"),
        format!("{f}:3: smtp.max_recipients = \"lots\": expected a whole number"),
        format!("{f}:4: smtp.bare_line_endings = \"whatever\": not one of the accepted values: reject, normalise"),
        format!("{f}:5: smtp.command_timeout = \"5 minutes please\": expected a duration such as \"30s\""),
        format!("{f}:6: smtp.lisen = 3: unknown key \"lisen\" in [smtp]; the keys are listen, hostname"),
        format!("{f}:10: delivery.routes.secure.port = 70000: expected a whole number from 0 to 65535"),
        format!("{f}:18: http.route[1].upstream = 5: expected text in quotes"),
        "MARKGATE_BOGUS__X: bogus.x = 1: unknown section [bogus]; the sections are policy, spool".into(),
        "MARKGATE_RECORDS__RETENTION: records.retention = forever: not a duration such as \"6y\"".into(),
        "MARKGATE_SMTP__REQUIRE_TLS: smtp.require_tls = maybe: expected true or false".into(),
    ] {
        assert!(
            text.lines().any(|l| l.trim().starts_with(&line)),
            "missing {line:?} in\n{text}"
        );
    }
    assert_eq!(e.0.len(), 10, "one error each, no echoes:\n{text}");
    assert_plain_words(&text);
}

/// The approvers' sign-in keys (`admin.identity_header`, `admin.trusted_proxies`): a header
/// name that is not one, a proxy list that trusts everyone or names no address, and one key
/// without the other, each named with its line.
#[test]
fn admin_sign_in_keys_are_checked_and_located() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("markgate.toml");
    std::fs::write(
        &file,
        "[admin]\nidentity_header = \"X Remote User\"\n\
         trusted_proxies = [\"127.0.0.1\", \"0.0.0.0/0\", \"the proxy\"]\n",
    )
    .unwrap();
    let e = errors(Some(&file), &[]);
    let found: Vec<(String, String)> =
        e.0.iter()
            .map(|e| {
                let Origin::File { line, .. } = &e.origin else {
                    panic!("{e}")
                };
                (format!("{}:{line}", e.key), e.message.clone())
            })
            .collect();
    assert_eq!(found.len(), 3, "{e}");
    assert_eq!(found[0].0, "admin.identity_header:2", "{e}");
    assert!(found[0].1.contains("not a header name"), "{e}");
    assert_eq!(found[1].0, "admin.trusted_proxies[1]:3", "{e}");
    assert!(found[1].1.contains("trusts every address"), "{e}");
    assert_eq!(found[2].0, "admin.trusted_proxies[2]:3", "{e}");
    assert!(found[2].1.contains("not an address"), "{e}");
    assert_plain_words(&e.to_string());

    // One without the other: a header nobody may set, or proxies for no header.
    let e = errors(
        None,
        &[("MARKGATE_ADMIN__IDENTITY_HEADER", "X-Remote-User")],
    );
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].key, "admin.identity_header");
    assert!(
        e.0[0].message.contains("needs admin.trusted_proxies"),
        "{e}"
    );
    std::fs::write(&file, "[admin]\ntrusted_proxies = [\"127.0.0.1\"]\n").unwrap();
    let e = errors(Some(&file), &[]);
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].key, "admin.trusted_proxies");
    assert!(
        e.0[0].message.contains("without admin.identity_header"),
        "{e}"
    );
    // Both, well formed: accepted.
    std::fs::write(
        &file,
        "[admin]\nidentity_header = \"X-Remote-User\"\ntrusted_proxies = [\"127.0.0.1\", \"::1\"]\n",
    )
    .unwrap();
    let config = Config::load_with(Some(&file), &SECTIONS, &[]).unwrap();
    assert_eq!(config.admin.proxy_nets().len(), 2);
}

#[test]
fn a_toml_syntax_error_is_reported_with_its_line_beside_the_other_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("markgate.toml");
    std::fs::write(&file, "[smtp]\nlisten = \"127.0.0.1:25\"\nhostname = \n").unwrap();
    let e = errors(Some(&file), &[("MARKGATE_ADMIN__LISTEN", "nowhere")]);
    assert_eq!(
        e.0.len(),
        2,
        "the syntax error, not an echo of it as an empty host name: {e}"
    );
    assert!(
        matches!(&e.0[0].origin, Origin::File { line: 3, .. }),
        "{e}"
    );
    assert!(e.0[0].message.starts_with("not valid TOML"), "{e}");
    assert_eq!(e.0[1].key, "admin.listen");
}

#[test]
fn a_missing_file_is_named_as_given_once() {
    let e = errors(Some(Path::new("no/such/markgate.toml")), &[]);
    assert_eq!(
        e.to_string(),
        "invalid configuration:\n  no/such/markgate.toml:1: cannot read the configuration file: No such file or directory"
    );
}

#[test]
fn an_environment_value_that_reads_as_a_number_may_still_be_text() {
    let c = Config::load_with(
        None,
        &SECTIONS,
        &env(&[
            ("MARKGATE_SMTP__HOSTNAME", "1234"),
            ("MARKGATE_SMTP__MAX_RECIPIENTS", "7"),
            ("MARKGATE_SMTP__RELAY_NETWORKS", r#"["10.0.0.0/8"]"#),
        ]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.smtp.hostname, "1234");
    assert_eq!(c.smtp.max_recipients, 7);
    assert_eq!(c.smtp.relay_networks, vec!["10.0.0.0/8".to_string()]);
}

/// Every key of the documented example, given a value of the wrong kind, is refused naming
/// the key, the value and where it came from: in the file (an inline table is the wrong kind
/// for every key), and through its environment variable for the keys that are not text (a
/// variable's value may always be text).
#[test]
fn every_documented_key_with_a_wrong_value_is_named_where_it_was_given() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/markgate.example.toml");
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    let mut keys = Vec::new();
    fn leaves(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
        for (k, v) in table {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => leaves(&path, t, out),
                toml::Value::Array(a) if a.iter().any(toml::Value::is_table) => {}
                _ => out.push((path, v.clone())),
            }
        }
    }
    leaves("", &doc, &mut keys);
    assert!(keys.len() > 40, "{keys:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("markgate.toml");
    for (key, example) in &keys {
        // The example's table, with this one key given the wrong kind of value.
        let (table, name) = key.rsplit_once('.').unwrap();
        let mut text = format!("[{table}]\n");
        let mut line = 0;
        for (sibling, value) in keys
            .iter()
            .filter(|(k, _)| k.rsplit_once('.').unwrap().0 == table)
        {
            let sibling_name = sibling.rsplit_once('.').unwrap().1;
            if sibling == key {
                line = text.lines().count() + 1;
                text.push_str(&format!("{name} = {{ wrong = 1 }}\n"));
            } else {
                text.push_str(&format!("{sibling_name} = {value}\n"));
            }
        }
        std::fs::write(&file, &text).unwrap();
        let e = errors(Some(&file), &[]);
        assert_eq!(e.0.len(), 1, "{key}: {e}");
        assert_eq!(e.0[0].key, *key, "{e}");
        assert_eq!(
            e.0[0].origin,
            Origin::File {
                path: file.clone(),
                line
            },
            "{e}"
        );
        assert_eq!(e.0[0].value.as_deref(), Some("{ wrong = 1 }"), "{e}");
        let says_what_is_accepted = e.0[0].message.starts_with("expected ")
            || e.0[0]
                .message
                .starts_with("not one of the accepted values: ");
        assert!(says_what_is_accepted, "{key}: {e}");
        assert_plain_words(&e.to_string());

        if example.is_str() {
            continue;
        }
        let var = format!("MARKGATE_{}", key.replace('.', "__").to_ascii_uppercase());
        let e = errors(None, &[(&var, "{ wrong = 1 }")]);
        assert_eq!(e.0.len(), 1, "{key}: {e}");
        assert_eq!(e.0[0].origin, Origin::Env { var: var.clone() }, "{e}");
        assert_eq!(e.0[0].key, *key, "{e}");
        assert_eq!(e.0[0].value.as_deref(), Some("{ wrong = 1 }"), "{e}");
        assert_plain_words(&e.to_string());
    }
}

#[test]
fn commands_that_do_not_use_a_section_are_not_stopped_by_it() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("records.sqlite");
    markgate::record::Store::open(&db, &Default::default()).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_markgate"))
            .args(args)
            .current_dir(root)
            .env("MARKGATE_BOGUS__X", "1")
            .env("MARKGATE_SMTP__LISTEN", "nowhere")
            .output()
            .unwrap()
    };
    let out = run(&["isa", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["audit", "verify", "--db", db.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `serve` uses every section: both problems, each naming its variable.
    let out = run(&["serve"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MARKGATE_BOGUS__X: bogus.x = 1: unknown section [bogus]"),
        "{err}"
    );
    assert!(
        err.contains("MARKGATE_SMTP__LISTEN: smtp.listen = nowhere: not an address"),
        "{err}"
    );
}

mod generated {
    use super::*;
    use proptest::prelude::*;

    /// Lines a configuration file is made of: section headers, keys of the right and the
    /// wrong kind, and broken TOML.
    fn line() -> impl Strategy<Value = String> {
        let section = prop::sample::select(vec![
            "smtp",
            "delivery",
            "http",
            "records",
            "admin",
            "tls",
            "policy",
            "spool",
            "bogus",
            "delivery.routes.secure",
            "[http.route]",
        ]);
        let key = prop::sample::select(vec![
            "listen",
            "hostname",
            "max_recipients",
            "require_tls",
            "command_timeout",
            "port",
            "host",
            "tls",
            "retention",
            "bare_line_endings",
            "relay_networks",
            "upstream",
            "x",
        ]);
        let value = prop::sample::select(vec![
            "\"127.0.0.1:25\"",
            "\"nowhere\"",
            "25",
            "-1",
            "70000",
            "true",
            "\"maybe\"",
            "[\"10.0.0.0/8\"]",
            "[1, 2]",
            "{ a = 1 }",
            "\"5m\"",
            "\"soon\"",
            "",
            "\"unclosed",
        ]);
        prop_oneof![
            section.prop_map(|s| format!("[{s}]")),
            (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
            "\\PC{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Whatever the file holds, loading it never panics, and every problem points at a
        /// line of that file (or names its variable) and says what is wrong.
        #[test]
        fn every_problem_points_at_a_line_of_the_file(lines in prop::collection::vec(line(), 0..12)) {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("markgate.toml");
            let text = lines.join("\n");
            std::fs::write(&file, &text).unwrap();
            let count = text.lines().count().max(1);
            if let Err(e) = Config::load_with(Some(&file), &SECTIONS, &env(&[("MARKGATE_SMTP__MAX_RECIPIENTS", "lots")])) {
                let from_variable = Origin::Env { var: "MARKGATE_SMTP__MAX_RECIPIENTS".into() };
                prop_assert!(e.0.iter().any(|x| x.origin == from_variable), "{}", e);
                for error in &e.0 {
                    match &error.origin {
                        Origin::File { path, line } => {
                            prop_assert_eq!(path, &file);
                            prop_assert!(*line >= 1 && *line <= count + 1, "line {} of {}: {}", line, count, e);
                        }
                        Origin::Env { var } => prop_assert_eq!(var.as_str(), "MARKGATE_SMTP__MAX_RECIPIENTS"),
                        Origin::Default => prop_assert!(!error.key.is_empty(), "{}", e),
                    }
                    prop_assert!(!error.message.is_empty());
                }
                assert_plain_words(&e.to_string());
            } else {
                prop_assert!(false, "the variable is always wrong");
            }
        }
    }
}
