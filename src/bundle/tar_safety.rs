//! What may come out of a tar archive: plain files (and, in unsigned archives, directories)
//! at relative paths that stay inside the output directory. Everything else (absolute paths,
//! `..`, symbolic and hard links, devices, FIFOs) is refused before a byte is written.

use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::BundleError;

/// Longest member name accepted.
pub const MAX_NAME_LEN: usize = 255;

/// What a tar entry is, once it has been found safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// Metadata only (a pax global header): nothing to extract.
    Skip,
}

/// A member of a signed bundle is a flat file name: no directories, no separators, no
/// control characters, not `.` or `..`.
pub fn check_member_name(name: &str) -> Result<(), BundleError> {
    let bad = |reason| {
        Err(BundleError::BadFileName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 255 bytes");
    }
    if name == "." || name == ".." {
        return bad("it is a directory reference");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("it contains a path separator");
    }
    if name.chars().any(char::is_control) {
        return bad("it contains control characters");
    }
    Ok(())
}

/// Classify a tar entry type, refusing links, devices and anything unknown.
pub fn entry_kind(entry_type: EntryType, path: &str) -> Result<EntryKind, BundleError> {
    let refuse = |kind| {
        Err(BundleError::UnsafeEntryType {
            path: path.to_string(),
            kind,
        })
    };
    match entry_type {
        EntryType::Regular | EntryType::Continuous => Ok(EntryKind::File),
        EntryType::Directory => Ok(EntryKind::Dir),
        EntryType::XGlobalHeader => Ok(EntryKind::Skip),
        EntryType::Symlink => refuse("symbolic link"),
        EntryType::Link => refuse("hard link"),
        EntryType::Char => refuse("character device"),
        EntryType::Block => refuse("block device"),
        EntryType::Fifo => refuse("FIFO"),
        EntryType::GNUSparse => refuse("sparse file"),
        _ => refuse("unknown-type"),
    }
}

/// A path from an archive as a relative path under the output directory: `.` components
/// dropped; absolute paths, drive prefixes and `..` refused. `None` for the archive root
/// itself (`./`).
pub fn safe_relative_path(raw: &Path) -> Result<Option<PathBuf>, BundleError> {
    let shown = raw.to_string_lossy().into_owned();
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => {
                let text = part.to_string_lossy();
                if text.chars().any(char::is_control) || text.contains('\\') {
                    return Err(BundleError::UnsafePath {
                        path: shown,
                        reason: "it contains control characters or backslashes",
                    });
                }
                out.push(part)
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(BundleError::UnsafePath {
                    path: shown,
                    reason: "it climbs out of the output directory with ..",
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(BundleError::UnsafePath {
                    path: shown,
                    reason: "it is absolute",
                })
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names() {
        for ok in ["a.txt", "Report (final).pdf", "ünïcode.doc", ".hidden"] {
            check_member_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a\\b", "/etc", "a\nb"] {
            assert!(check_member_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_member_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn relative_paths() {
        let p = |s: &str| safe_relative_path(Path::new(s));
        assert_eq!(p("./a/b.txt").unwrap(), Some(PathBuf::from("a/b.txt")));
        assert_eq!(p("./").unwrap(), None);
        assert!(matches!(p("../x"), Err(BundleError::UnsafePath { .. })));
        assert!(matches!(
            p("a/../../x"),
            Err(BundleError::UnsafePath { .. })
        ));
        assert!(matches!(
            p("/etc/passwd"),
            Err(BundleError::UnsafePath { .. })
        ));
    }

    #[test]
    fn entry_types() {
        assert_eq!(
            entry_kind(EntryType::Regular, "a").unwrap(),
            EntryKind::File
        );
        for t in [
            EntryType::Symlink,
            EntryType::Link,
            EntryType::Char,
            EntryType::Fifo,
        ] {
            assert!(matches!(
                entry_kind(t, "a"),
                Err(BundleError::UnsafeEntryType { .. })
            ));
        }
    }
}
