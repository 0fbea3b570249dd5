//! Bundles against the real peers partners use: the stock `age` CLI (Debian's Go age 1.1),
//! GNU `tar` and `openssl`. markgate seals, the stock tools open, and the other way round;
//! every refusal names its own cause and leaves nothing behind.

mod common;

use std::process::Command;

use common::bundle::{
    age_decrypt, age_encrypt, data, have, key, pipe, raw_tar, untar, Env, RawEntry, SUFFOLK,
};
use predicates::prelude::*;

fn peers() -> bool {
    have("age") && have("tar")
}

/// The members of a markgate bundle for Suffolk, decrypted with the stock age CLI.
fn members(env: &Env, bundle: &std::path::Path, into: &str) -> (std::path::PathBuf, Vec<String>) {
    let dir = env.path(into);
    let names = untar(&dir, &age_decrypt(bundle, &key("suffolk")));
    (dir, names)
}

#[test]
fn stock_age_and_tar_open_a_sealed_bundle_and_the_signature_verifies() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let small = env.write("notes.txt", b"Subject seen at 14:05 near the canal.\n");
    let large = env.write("statement.pdf", &data(300_000, 1));
    let bundle = env.seal_for_suffolk(&[&small, &large], "out.age", &[]);

    // Exactly what a partner runs: age -d -i key.txt bundle.age | tar -x
    let dir = env.path("partner");
    std::fs::create_dir(&dir).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg("age -d -i \"$1\" \"$2\" | tar -x -C \"$3\"")
        .arg("sh")
        .arg(key("suffolk"))
        .arg(&bundle)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(dir.join("notes.txt")).unwrap(),
        std::fs::read(&small).unwrap()
    );
    assert_eq!(
        std::fs::read(dir.join("statement.pdf")).unwrap(),
        std::fs::read(&large).unwrap()
    );

    let (_, names) = members(&env, &bundle, "listed");
    assert_eq!(
        names,
        [
            "notes.txt",
            "statement.pdf",
            "MANIFEST.json",
            "SECURITY-STATEMENT.txt",
            "MANIFEST.sig",
        ]
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "markgate-bundle/2");
    assert_eq!(manifest["marking"]["class"], "OFFICIAL");
    assert_eq!(manifest["isa"], "one-off");
    assert_eq!(manifest["recipients"][0], "Suffolk Constabulary");
    assert_eq!(manifest["sender"]["organisation"], "West Midlands Police");
    assert_eq!(manifest["files"][1]["size"], 300_000);
    let policy = markgate::policy::Policy::load(&env.policy).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("SECURITY-STATEMENT.txt")).unwrap(),
        policy.statement
    );

    // The partner's developer verifies the signature with openssl alone (docs/bundle-format.md).
    if have("openssl") {
        let sig = pipe(
            Command::new("base64")
                .arg("-d")
                .arg(dir.join("MANIFEST.sig")),
            b"",
        );
        std::fs::write(env.path("sig.bin"), sig).unwrap();
        let out = Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&env.signing_pub)
            .arg("-in")
            .arg(dir.join("MANIFEST.json"))
            .arg("-sigfile")
            .arg(env.path("sig.bin"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully"));
    }
}

#[test]
fn armored_bundle_opens_with_stock_age() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let file = env.write("a.txt", b"armored\n");
    let bundle = env.seal_for_suffolk(&[&file], "out.age", &["--armor"]);
    let text = std::fs::read_to_string(&bundle).unwrap();
    assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    let (dir, _) = members(&env, &bundle, "x");
    assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"armored\n");
    // and markgate opens its own armored output
    env.markgate()
        .args(["bundle", "open", "-i"])
        .arg(key("suffolk"))
        .arg(&bundle)
        .assert()
        .success();
    assert_eq!(std::fs::read(env.path("out/a.txt")).unwrap(), b"armored\n");
}

#[test]
fn markgate_opens_and_verifies_its_bundle() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let file = env.write("a.txt", &data(200_000, 2));
    let bundle = env.seal_for_suffolk(&[&file], "out.age", &[]);
    env.markgate()
        .args(["bundle", "open", "-i"])
        .arg(key("suffolk"))
        .arg(&bundle)
        .args(["-o", "opened"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Marking:      OFFICIAL"))
        .stdout(predicate::str::contains("Signature:    verified"))
        .stdout(predicate::str::contains("In receiving this information"));
    assert_eq!(
        std::fs::read(env.path("opened/a.txt")).unwrap(),
        std::fs::read(&file).unwrap()
    );
    assert!(env.path("opened/MANIFEST.sig").exists());
    // inspect --json, nothing written
    let out = env
        .markgate()
        .args(["bundle", "inspect", "--json", "-i"])
        .arg(key("suffolk"))
        .arg(&bundle)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["signature"]["status"], "verified");
    assert_eq!(v["manifest"]["files"][0]["name"], "a.txt");
    // inspect without a key describes the header only
    env.markgate()
        .args(["bundle", "inspect"])
        .arg(&bundle)
        .assert()
        .success()
        .stdout(predicate::str::contains("1 recipient stanza(s): X25519"));
}

#[test]
fn archive_made_with_tar_and_age_is_refused_as_unsigned_unless_allowed() {
    if !peers() {
        return;
    }
    let env = Env::new();
    env.write("a.txt", b"from tar\n");
    let plain = pipe(
        Command::new("tar")
            .arg("-c")
            .arg("-C")
            .arg(env.dir.path())
            .arg("a.txt"),
        b"",
    );
    let bundle = env.write("plain.age", &age_encrypt(&plain, SUFFOLK));
    env.markgate()
        .args(["bundle", "open", "-i"])
        .arg(key("suffolk"))
        .arg(&bundle)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "unsigned bundle: MANIFEST.sig is missing",
        ));
    assert!(!env.path("plain").exists());

    env.markgate()
        .args(["bundle", "open", "--allow-unsigned", "-i"])
        .arg(key("suffolk"))
        .arg(&bundle)
        .assert()
        .success()
        .stderr(predicate::str::contains("WARNING: UNSIGNED BUNDLE"))
        .stdout(predicate::str::contains("MISSING: unsigned bundle"));
    assert_eq!(
        std::fs::read(env.path("plain/a.txt")).unwrap(),
        b"from tar\n"
    );
}

/// Open `bundle` with the Suffolk key and expect a refusal whose message contains `needle`,
/// with no output directory and no temporary directory left behind.
fn assert_refused(env: &Env, bundle: &std::path::Path, extra: &[&str], needle: &str) {
    let before = env.listing();
    env.markgate()
        .args(["bundle", "open", "-i"])
        .arg(key("suffolk"))
        .args(extra)
        .arg(bundle)
        .args(["-o", "refused-out"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(needle));
    assert_eq!(env.listing(), before, "something was left behind");
}

#[test]
fn tampered_ciphertext_is_refused() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let file = env.write("a.bin", &data(400_000, 3));
    let bundle = env.seal_for_suffolk(&[&file], "out.age", &[]);
    let mut bytes = std::fs::read(&bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let bad = env.write("tampered.age", &bytes);
    assert_refused(&env, &bad, &[], "tampered ciphertext");
}

#[test]
fn truncated_bundle_is_refused() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let file = env.write("a.bin", &data(400_000, 4));
    let bundle = env.seal_for_suffolk(&[&file], "out.age", &[]);
    let bytes = std::fs::read(&bundle).unwrap();
    let cut = env.write("cut.age", &bytes[..bytes.len() * 2 / 3]);
    assert_refused(&env, &cut, &[], "truncated bundle");
    // cut inside the age header
    let cut = env.write("cut2.age", &bytes[..60]);
    assert_refused(&env, &cut, &[], "truncated bundle");
}

#[test]
fn wrong_key_is_refused() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let file = env.write("a.txt", b"x");
    let bundle = env.seal_for_suffolk(&[&file], "out.age", &[]);
    let before = env.listing();
    env.markgate()
        .args(["bundle", "open", "-i"])
        .arg(key("birmingham"))
        .arg(&bundle)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("wrong key"));
    assert_eq!(env.listing(), before);
}

/// Decrypt a markgate bundle with the stock tools and return its members' bytes.
fn member_bytes(env: &Env, bundle: &std::path::Path, name: &str) -> Vec<u8> {
    let dir = env.path(&format!("m-{name}"));
    if !dir.exists() {
        untar(&dir, &age_decrypt(bundle, &key("suffolk")));
    }
    std::fs::read(dir.join(name)).unwrap()
}

#[test]
fn swapped_manifest_is_refused_by_the_signature() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let file = env.write("a.txt", b"original\n");
    let bundle = env.seal_for_suffolk(&[&file], "out.age", &[]);
    let manifest = String::from_utf8(member_bytes(&env, &bundle, "MANIFEST.json")).unwrap();
    let statement = member_bytes(&env, &bundle, "SECURITY-STATEMENT.txt");
    let sig = member_bytes(&env, &bundle, "MANIFEST.sig");
    // Same files, a later destroy-by date: re-encrypted to the right key with the stock CLI.
    let swapped = manifest.replace("\"destroy_by\": \"", "\"destroy_by\": \"9");
    assert_ne!(swapped, manifest);
    let archive = raw_tar(&[
        RawEntry::file("a.txt", b"original\n"),
        RawEntry::file("MANIFEST.json", swapped.as_bytes()),
        RawEntry::file("SECURITY-STATEMENT.txt", &statement),
        RawEntry::file("MANIFEST.sig", &sig),
    ]);
    let bad = env.write("swapped.age", &age_encrypt(&archive, SUFFOLK));
    assert_refused(&env, &bad, &[], "bad signature");
}

/// A bundle whose signed members are genuine, after `files` of the attacker's choosing in
/// place of the sealed file, re-encrypted to Suffolk with the stock CLI.
fn forged(env: &Env, name: &str, files: &[RawEntry<'_>]) -> std::path::PathBuf {
    let file = env.write("a.txt", b"original\n");
    let bundle = env.seal_for_suffolk(&[&file], &format!("{name}-orig.age"), &["--force"]);
    // this bundle's members, not those cached from an earlier call
    let members = ["MANIFEST.json", "SECURITY-STATEMENT.txt", "MANIFEST.sig"];
    for name in members {
        std::fs::remove_dir_all(env.path(&format!("m-{name}"))).ok();
    }
    let [manifest, statement, sig] = members.map(|name| member_bytes(env, &bundle, name));
    for name in members {
        std::fs::remove_dir_all(env.path(&format!("m-{name}"))).ok();
    }
    let mut entries: Vec<RawEntry<'_>> = files
        .iter()
        .map(|e| RawEntry {
            name: e.name,
            kind: e.kind,
            data: e.data,
            link: e.link,
        })
        .collect();
    entries.extend([
        RawEntry::file("MANIFEST.json", &manifest),
        RawEntry::file("SECURITY-STATEMENT.txt", &statement),
        RawEntry::file("MANIFEST.sig", &sig),
    ]);
    env.write(
        &format!("{name}.age"),
        &age_encrypt(&raw_tar(&entries), SUFFOLK),
    )
}

#[test]
fn replaced_file_content_is_refused_by_its_hash() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let bad = forged(&env, "hash", &[RawEntry::file("a.txt", b"altered!\n")]);
    assert_refused(&env, &bad, &[], "hash mismatch for \"a.txt\"");
}

#[test]
fn path_traversal_entry_is_refused() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let bad = forged(&env, "trav", &[RawEntry::file("../evil.txt", b"x")]);
    assert_refused(&env, &bad, &[], "unsafe path \"../evil.txt\"");
    assert!(!env.dir.path().parent().unwrap().join("evil.txt").exists());

    // In an unsigned archive too, even when unsigned archives are allowed.
    let archive = raw_tar(&[RawEntry::file("/tmp/markgate-evil.txt", b"x")]);
    let bad = env.write("abs.age", &age_encrypt(&archive, SUFFOLK));
    assert_refused(
        &env,
        &bad,
        &["--allow-unsigned"],
        "unsafe path \"/tmp/markgate-evil.txt\": it is absolute",
    );
    let archive = raw_tar(&[RawEntry::file("a/../../evil.txt", b"x")]);
    let bad = env.write("dotdot.age", &age_encrypt(&archive, SUFFOLK));
    assert_refused(&env, &bad, &["--allow-unsigned"], "climbs out");
}

#[test]
fn symlink_entry_is_refused() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let link = RawEntry {
        name: "a.txt",
        kind: tar::EntryType::Symlink,
        data: b"",
        link: Some("/etc/passwd"),
    };
    let bad = forged(&env, "link", &[link]);
    assert_refused(
        &env,
        &bad,
        &[],
        "unsafe entry \"a.txt\": symbolic link entries are never extracted",
    );

    let archive = raw_tar(&[
        RawEntry {
            name: "passwd",
            kind: tar::EntryType::Symlink,
            data: b"",
            link: Some("/etc/passwd"),
        },
        RawEntry::file("passwd", b"overwrite through the link"),
    ]);
    let bad = env.write("link2.age", &age_encrypt(&archive, SUFFOLK));
    assert_refused(&env, &bad, &["--allow-unsigned"], "symbolic link");
    let archive = raw_tar(&[RawEntry {
        name: "hard",
        kind: tar::EntryType::Link,
        data: b"",
        link: Some("/etc/shadow"),
    }]);
    let bad = env.write("link3.age", &age_encrypt(&archive, SUFFOLK));
    assert_refused(&env, &bad, &["--allow-unsigned"], "hard link");
}

#[test]
fn oversize_entry_is_refused() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let file = env.write("big.bin", &data(300_000, 5));
    let bundle = env.seal_for_suffolk(&[&file], "out.age", &[]);
    assert_refused(
        &env,
        &bundle,
        &["--max-file-size", "100K"],
        "oversize entry \"big.bin\": 300000 bytes is over the limit of 102400 bytes",
    );
    let archive = raw_tar(&[RawEntry::file("big.bin", &data(300_000, 5))]);
    let bad = env.write("plain-big.age", &age_encrypt(&archive, SUFFOLK));
    assert_refused(
        &env,
        &bad,
        &["--allow-unsigned", "--max-file-size", "1K"],
        "oversize entry",
    );
}

#[test]
fn existing_output_directory_is_not_overwritten() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let file = env.write("a.txt", b"x");
    let bundle = env.seal_for_suffolk(&[&file], "out.age", &[]);
    std::fs::create_dir(env.path("out")).unwrap();
    env.markgate()
        .args(["bundle", "open", "-i"])
        .arg(key("suffolk"))
        .arg(&bundle)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"));
    assert_eq!(std::fs::read_dir(env.path("out")).unwrap().count(), 0);
}

/// Hostile archives an attacker (or a broken partner tool) might send: device files,
/// duplicate names, members missing from or added to the manifest, a tar cut short inside
/// a valid age stream, an entry that collides with a directory. Each is refused with exit 1
/// naming the cause, and nothing is left behind.
#[test]
fn hostile_archives_are_refused_and_leave_nothing() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let unsigned_refused = |entries: &[RawEntry<'_>], needle: &str| {
        let bad = env.write("unsigned.age", &age_encrypt(&raw_tar(entries), SUFFOLK));
        assert_refused(&env, &bad, &["--allow-unsigned"], needle);
    };
    let special = |name: &'static str, kind| RawEntry {
        name,
        kind,
        data: b"",
        link: None,
    };
    for (kind, what) in [
        (tar::EntryType::Char, "character device"),
        (tar::EntryType::Block, "block device"),
        (tar::EntryType::Fifo, "FIFO"),
    ] {
        let bad = forged(&env, "dev", &[special("a.txt", kind)]);
        assert_refused(&env, &bad, &[], what);
        unsigned_refused(&[special("null", kind)], what);
    }

    // The signed file twice: the genuine copy, then another.
    let bad = forged(
        &env,
        "dup",
        &[
            RawEntry::file("a.txt", b"original\n"),
            RawEntry::file("a.txt", b"altered!\n"),
        ],
    );
    assert_refused(&env, &bad, &[], "a.txt");
    let bad = forged(
        &env,
        "dup2",
        &[
            RawEntry::file("a.txt", b"original\n"),
            RawEntry::file("MANIFEST.json", b"{}"),
        ],
    );
    assert_refused(&env, &bad, &[], "MANIFEST");
    unsigned_refused(
        &[
            RawEntry::file("x.txt", b"one"),
            RawEntry::file("x.txt", b"two"),
        ],
        "x.txt",
    );
    unsigned_refused(
        &[
            special("d", tar::EntryType::Directory),
            RawEntry::file("d", b"file over a directory"),
        ],
        "\"d\": it appears twice",
    );
    unsigned_refused(
        &[
            RawEntry::file("f", b"a file"),
            RawEntry::file("f/g", b"under the file"),
        ],
        "\"f/g\": it lies under a file",
    );
    unsigned_refused(
        &[
            RawEntry::file("e", b"a file"),
            special("e", tar::EntryType::Directory),
        ],
        "\"e\": it appears twice",
    );

    // The manifest and the content disagree.
    let bad = forged(&env, "missing", &[]);
    assert_refused(&env, &bad, &[], "comes after the files");
    let bad = forged(&env, "missing2", &[RawEntry::file("b.txt", b"other\n")]);
    assert_refused(
        &env,
        &bad,
        &[],
        "the manifest lists \"a.txt\" at this position",
    );
    let bad = forged(
        &env,
        "extra",
        &[
            RawEntry::file("a.txt", b"original\n"),
            RawEntry::file("extra.txt", b"smuggled\n"),
        ],
    );
    assert_refused(&env, &bad, &[], "extra.txt");

    // A tar cut short inside a complete, authentic age stream.
    let archive = raw_tar(&[RawEntry::file("big.bin", &data(100_000, 7))]);
    let bad = env.write("cut-tar.age", &age_encrypt(&archive[..50_000], SUFFOLK));
    assert_refused(&env, &bad, &["--allow-unsigned"], "not a valid tar archive");
}
