//! Replays what fuzzing found, with the fuzz targets' own checks (fuzz/checks/): every input
//! under tests/fixtures/fuzz/<target>/ (each one a crash or a broken promise found by
//! `fuzz/run.sh`, kept once fixed) and the committed seed corpora fuzz/corpus/<target>/.

#[path = "../fuzz/checks/marking_message.rs"]
mod marking_message;
#[path = "../fuzz/checks/mime_walk.rs"]
mod mime_walk;
#[path = "../fuzz/checks/office_document.rs"]
mod office_document;

use std::path::{Path, PathBuf};

/// Every file in the target's regression folder and seed corpus.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        root.join("tests/fixtures/fuzz").join(target),
        root.join("fuzz/corpus").join(target),
    ] {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_file() && path.extension().is_none_or(|x| x != "md") {
                let data = std::fs::read(&path).unwrap();
                out.push((path, data));
            }
        }
    }
    assert!(!out.is_empty(), "no inputs for {target}");
    out
}

fn replay(target: &str, check: fn(&[u8])) {
    let mut failed = Vec::new();
    for (path, data) in inputs(target) {
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target} fails on:\n{}",
        failed.join("\n")
    );
}

#[test]
fn marking_message_findings_stay_fixed() {
    replay("marking_message", marking_message::check);
}

#[test]
fn mime_walk_findings_stay_fixed() {
    replay("mime_walk", mime_walk::check);
}

#[test]
fn office_document_findings_stay_fixed() {
    replay("office_document", office_document::check);
}
