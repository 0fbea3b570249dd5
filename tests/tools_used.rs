//! tests/tools_used.pl derives what the tests and benchmarks run from their source, so that
//! tests/deps.sh and tests/fresh_machine.sh cannot forget a tool. These tests give it a
//! made-up tree and check it finds each way a program is started, and nothing else.

use std::path::Path;
use std::process::Command;

fn derive(root: &Path) -> (i32, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools_used.pl");
    let out = Command::new("perl").arg(script).arg(root).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A made-up test file from tests/fixtures/tools_used/ (kept under a name the real
/// derivation does not read, so its made-up programs are not taken for the suite's).
fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tools_used")
            .join(name),
    )
    .unwrap()
}

fn names(list: &str, kind: &str) -> Vec<String> {
    let mut found: Vec<String> = list
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some(kind)).then(|| parts.next().unwrap().to_string())
        })
        .collect();
    found.sort();
    found
}

#[test]
fn finds_every_way_a_test_or_benchmark_starts_a_program() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // peer.rs: Command::new with literals, a helper that runs the program it is given,
    // timeout wrapping a program, an `sh -c` snippet, swaks with --tls, Python with imports
    // and a subprocess call. load.sh: functions, builtins, variables, heredoc bodies (an
    // nginx configuration) and arithmetic are not programs; what runs inside $(...), after a
    // pipe, after assignments, and the imports of a Python heredoc are.
    write(root, "tests/peer.rs", &fixture("peer.rs.txt"));
    write(root, "tests/bench/load.sh", &fixture("load.sh.txt"));
    write(
        root,
        "tests/fixtures/sink.py",
        "import argparse\nfrom aiosmtpd.controller import Controller\n",
    );
    write(root, "tests/deps.sh", "apt-get install installer-only\n");

    let (code, list, err) = derive(root);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names(&list, "command"),
        [
            "/usr/bin/gizmo",
            "cat",
            "dirname",
            "fred",
            "frobnicate",
            "garply",
            "grault",
            "plugh",
            "python3",
            "quux",
            "sh",
            "swaks",
            "thud",
            "timeout",
            "wibble",
            "xyzzy",
            "zork",
        ],
        "{list}"
    );
    assert_eq!(
        names(&list, "python"),
        [
            "aiosmtpd",
            "argparse",
            "numpy",
            "smtplib",
            "statistics",
            "sys",
            "walrus"
        ],
        "{list}"
    );
    assert_eq!(names(&list, "capability"), ["swaks-starttls"], "{list}");
    assert!(
        list.contains("tests/bench/load.sh:"),
        "each item says where it is used: {list}"
    );
}

#[test]
fn a_program_it_cannot_read_is_an_error_not_a_silent_gap() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tests/x.rs", &fixture("unreadable.rs.txt"));
    let (code, _, err) = derive(dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("tests/x.rs:3: cannot tell which program Command::new(tool) runs"),
        "{err}"
    );
}

#[test]
fn the_suite_uses_what_a_fresh_machine_was_found_to_lack() {
    let (code, list, err) = derive(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert_eq!(code, 0, "{err}");
    for (kind, name) in [
        ("capability", "swaks-starttls"),
        ("command", "bc"),
        ("command", "chromium"),
        ("python", "aiosmtpd"),
    ] {
        assert!(
            names(&list, kind).iter().any(|n| n == name),
            "{kind} {name} in {list}"
        );
    }
}
