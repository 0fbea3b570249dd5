//! The top-level modules of `src/` form layers: each uses only modules below it, and no two
//! use each other, directly or around a loop. Read from the source, so a `use` that brings a
//! cycle back fails here with the file that added it.
//!
//! The allowed order, lowest first (a module may use only modules listed before it):
//!
//! ```text
//! address, message            leaves: domain and host syntax, the parsed message
//! config, certs               settings, then key material and TLS
//! marking, policy             the marking scheme and reader, then the policy compiled against it
//! destination, facts, decision
//! record, bundle, transform   evidence, the sealed format, what a rule requires
//! hold                        disclosures held for an approver, and urgent releases to review
//! policyops                   policy tools over decisions and records
//! service                     the running gateway every channel shares
//! smtp, http, admin           the channels and the admin listener
//! serve                       starts them all
//! ```
//!
//! A module not yet listed is held to the cycle check alone. `src/cli/` is the binary's edge
//! (it uses the library as `markgate::`), and `#[cfg(test)]` modules may use what their tests
//! need, so neither is read. Comments are not uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: &[&str] = &[
    "address",
    "message",
    "config",
    "certs",
    "marking",
    "policy",
    "destination",
    "facts",
    "decision",
    "record",
    "bundle",
    "transform",
    "hold",
    "policyops",
    "service",
    "smtp",
    "http",
    "admin",
    "serve",
];

/// Top-level module -> the other top-level modules it uses, with one file that does.
type Uses = BTreeMap<String, BTreeMap<String, PathBuf>>;

#[test]
fn no_cycles_between_top_level_modules() {
    let uses = top_level_uses(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let problems = problems(&uses);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check itself fails on what it must find: a module using one above it, and a loop
/// between modules it does not know.
#[test]
fn the_check_finds_an_upward_use_and_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |path: &str, text: &str| {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "lib.rs",
        "pub mod policy; pub mod marking; pub mod hold; pub mod other;",
    );
    write(
        "marking/mod.rs",
        "mod scheme;\n// crate::serve in a comment is no use\n",
    );
    write(
        "marking/scheme.rs",
        "use super::super::policy::Policy;\n#[cfg(test)]\nmod tests { use crate::serve; }\n",
    );
    write("policy/mod.rs", "use crate::marking::normalise;\n");
    write("hold.rs", "use crate::{other::Thing, policy};\n");
    write("other/mod.rs", "pub fn f() { crate::hold::g() }\n");
    let uses = top_level_uses(src);
    assert_eq!(
        uses["marking"].keys().collect::<Vec<_>>(),
        ["policy"],
        "{uses:?}"
    );
    let problems = problems(&uses);
    assert!(
        problems.iter().any(|p| p.contains("LAYERS lists serve")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("marking/scheme.rs uses crate::policy")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("hold -> other -> hold")),
        "{problems:?}"
    );
}

fn problems(uses: &Uses) -> Vec<String> {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut problems: Vec<String> = LAYERS
        .iter()
        .filter(|m| !uses.contains_key(**m))
        .map(|m| format!("LAYERS lists {m}, which is not a module of src/"))
        .collect();
    for (module, used) in uses {
        for (other, file) in used {
            if let (Some(a), Some(b)) = (rank(module), rank(other)) {
                if b >= a {
                    problems.push(format!(
                        "{} uses crate::{other}, which is not below {module} in the layering",
                        file.display()
                    ));
                }
            }
        }
    }
    for cycle in cycles(uses) {
        let files: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{}", uses[&w[0]][&w[1]].display()))
            .collect();
        problems.push(format!(
            "import cycle {} (in {})",
            cycle.join(" -> "),
            files.join(", ")
        ));
    }
    problems
}

/// One loop through each module that lies on one, as a path that ends where it starts.
fn cycles(uses: &Uses) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for start in uses.keys() {
        if reported.contains(start) {
            continue;
        }
        // Breadth-first from `start`'s neighbours back to `start`: the shortest loop.
        let mut previous: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue: Vec<&String> = vec![start];
        let mut closed_by = None;
        'search: while !queue.is_empty() {
            let mut next = Vec::new();
            for module in queue {
                for other in uses.get(module).into_iter().flat_map(|u| u.keys()) {
                    if other == start {
                        closed_by = Some(module);
                        break 'search;
                    }
                    if !previous.contains_key(other) {
                        previous.insert(other, module);
                        next.push(other);
                    }
                }
            }
            queue = next;
        }
        if let Some(mut at) = closed_by {
            let mut path = vec![start.clone()];
            while at != start {
                path.push(at.clone());
                at = previous[at];
            }
            path.push(start.clone());
            let last = path.len() - 1;
            path[1..last].reverse();
            reported.extend(path.iter().cloned());
            found.push(path);
        }
    }
    found
}

/// Which top-level modules each top-level module of `src` uses (`crate::x`, `crate::{x, ..}`,
/// and `super::` climbing to the crate root).
fn top_level_uses(src: &Path) -> Uses {
    let mut tops = BTreeSet::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let is_module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if is_module && !["lib", "main", "cli"].contains(&name.as_str()) {
            tops.insert(name);
        }
    }
    let mut uses = Uses::new();
    for top in &tops {
        let used = uses.entry(top.clone()).or_default();
        let mut files = Vec::new();
        let single = src.join(format!("{top}.rs"));
        if single.is_file() {
            files.push(single);
        }
        collect_rs(&src.join(top), &mut files);
        for file in files {
            let depth = module_depth(src, &file);
            for other in used_modules(&std::fs::read_to_string(&file).unwrap(), depth) {
                if &other != top && tops.contains(&other) {
                    used.entry(other).or_insert_with(|| file.clone());
                }
            }
        }
    }
    uses
}

fn collect_rs(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_rs(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// How many modules deep the file's module is: `src/a.rs` and `src/a/mod.rs` are 1,
/// `src/a/b.rs` is 2.
fn module_depth(src: &Path, file: &Path) -> usize {
    let relative = file.strip_prefix(src).unwrap();
    let parts = relative.components().count();
    if file.file_name().is_some_and(|n| n == "mod.rs") {
        parts - 1
    } else {
        parts
    }
}

/// The first path segment after the crate root in every path of `text` that starts at it,
/// outside comments and `#[cfg(test)]` modules.
fn used_modules(text: &str, depth: usize) -> BTreeSet<String> {
    let code = strip_comments(text);
    let code = match code.find("#[cfg(test)]\nmod ") {
        Some(at) => &code[..at],
        None => &code[..],
    };
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    let ident = |from: usize| -> &str {
        let end = code[from..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(code.len(), |n| from + n);
        &code[from..end]
    };
    let mut at = 0;
    while at < code.len() {
        let boundary = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if boundary && code[at..].starts_with("crate::") {
            let rest = at + "crate::".len();
            if code[rest..].starts_with('{') {
                let close = code[rest..].find('}').map_or(code.len(), |n| rest + n);
                for item in code[rest + 1..close].split(',') {
                    let item = item.trim();
                    let name = item.split("::").next().unwrap_or("").trim();
                    if !name.is_empty() {
                        found.insert(name.to_string());
                    }
                }
            } else {
                found.insert(ident(rest).to_string());
            }
            at = rest;
        } else if boundary && code[at..].starts_with("super::") {
            let mut climbed = 0;
            let mut rest = at;
            while code[rest..].starts_with("super::") {
                climbed += 1;
                rest += "super::".len();
            }
            if climbed >= depth {
                found.insert(ident(rest).to_string());
            }
            at = rest;
        } else {
            at += code[at..].chars().next().map_or(1, char::len_utf8);
        }
    }
    found
}

/// `text` without `//` comments (doc comments included) and `/* */` comments; string
/// literals are kept as they are (none of them name a module path that matters here).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            rest = &rest[end..];
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |n| n + 2);
            rest = &rest[end..];
        } else if rest.starts_with("'\"'") {
            // The character literal '"' opens no string.
            out.push_str(&rest[..3]);
            rest = &rest[3..];
        } else if rest.starts_with("r#\"") {
            let end = rest[3..].find("\"#").map_or(rest.len(), |n| n + 5);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else if rest.starts_with('"') {
            // Skip a string literal whole, so `"http://..."` is not a comment.
            let mut end = 1;
            let bytes = rest.as_bytes();
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let end = (end + 1).min(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}
