//! The bundle library as the gateways call it: options from a policy decision, sealing in
//! memory, to a writer and from disk, opening in memory, and one typed error per failure.

mod common;

use std::cell::Cell;
use std::path::PathBuf;

use chrono::NaiveDate;
use ed25519_dalek::SigningKey;
use markgate::bundle::{
    self, age_io, BundleError, BundleFile, OpenOptions, Phase, Progress, SealOptions,
    SignatureStatus,
};
use markgate::certs::CertError;
use markgate::decision::{decide, Disclosure};
use markgate::facts::{self, Recipient};
use markgate::policy::Policy;
use sha2::{Digest, Sha256};

fn policy() -> Policy {
    Policy::load(&common::bundle::root().join("policy")).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
}

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn sender() -> bundle::Sender {
    bundle::Sender {
        organisation: "West Midlands Police".into(),
        person: "DC 4321".into(),
    }
}

/// Options for Suffolk Constabulary, OFFICIAL-SENSITIVE, one-off, from a real decision.
fn suffolk_options(policy: &Policy) -> SealOptions {
    let marking = markgate::marking::read_text("OFFICIAL-SENSITIVE", &policy.markings).unwrap();
    let facts = facts::given(
        "dc4321@westmidlands.pnn.police.uk",
        vec![Recipient::mail("mp@suffolk.pnn.police.uk", policy)],
        marking,
        None,
        Default::default(),
        today(),
    );
    let decision = decide(&facts, policy);
    assert!(decision.is_allowed(), "{decision:?}");
    bundle::options_for(
        policy,
        &decision,
        &decision.recipients[0],
        &sender(),
        today(),
    )
    .unwrap()
}

fn suffolk_open<'a>(
    ids: &'a [Box<dyn age::Identity + Send + Sync>],
    key: &'a ed25519_dalek::VerifyingKey,
) -> OpenOptions<'a> {
    OpenOptions {
        identities: ids,
        verifying_key: Some(key),
        allow_unsigned: false,
        max_entry_size: bundle::DEFAULT_MAX_ENTRY_SIZE,
    }
}

fn files(big: &[u8]) -> Vec<BundleFile<'_>> {
    vec![
        BundleFile {
            name: "message.eml".into(),
            media_type: "message/rfc822".into(),
            data: b"Subject: test\r\n\r\nhello\r\n",
        },
        BundleFile {
            name: "footage.bin".into(),
            media_type: "application/octet-stream".into(),
            data: big,
        },
    ]
}

#[test]
fn options_follow_the_policy() {
    let policy = policy();
    let opts = suffolk_options(&policy);
    assert_eq!(
        opts.recipients,
        policy.partner("suffolk-police").unwrap().age_recipients
    );
    assert_eq!(opts.recipient_names, ["Suffolk Constabulary"]);
    assert_eq!(opts.isa, None);
    assert_eq!(opts.statement.as_deref(), Some(policy.statement.as_str()));
    // OFFICIAL-SENSITIVE: retain_days = 180
    assert_eq!(
        opts.destroy_by,
        NaiveDate::from_ymd_opt(2027, 5, 24).unwrap()
    );

    // Under a live ISA: its purpose and legal basis, no statement.
    let marking = markgate::marking::read_text("OFFICIAL", &policy.markings).unwrap();
    let birmingham = policy.partner("birmingham-cc").unwrap();
    let decision = decide(
        &facts::given(
            "x",
            vec![Recipient::bundle(&policy, Some(birmingham), &[])],
            marking.clone(),
            Some("ISA-0001"),
            Default::default(),
            today(),
        ),
        &policy,
    );
    assert_eq!(decision.recipients[0].disclosure, Disclosure::Isa);
    let opts = bundle::options_for(
        &policy,
        &decision,
        &decision.recipients[0],
        &sender(),
        today(),
    )
    .unwrap();
    assert_eq!(opts.isa.as_deref(), Some("ISA-0001"));
    assert!(opts.purpose.unwrap().contains("MASH"));
    assert_eq!(opts.statement, None);
    assert_eq!(
        opts.destroy_by,
        NaiveDate::from_ymd_opt(2027, 11, 25).unwrap()
    );

    // A blocked recipient is refused with the decision's reason.
    let housing = policy.partner("example-housing").unwrap();
    let decision = decide(
        &facts::given(
            "x",
            vec![Recipient::bundle(&policy, Some(housing), &[])],
            marking.clone(),
            Some("ISA-0002"),
            Default::default(),
            today(),
        ),
        &policy,
    );
    let err = bundle::options_for(
        &policy,
        &decision,
        &decision.recipients[0],
        &sender(),
        today(),
    )
    .unwrap_err();
    assert!(matches!(err, BundleError::Refused { ref rules, .. } if rules == &["isa-overdue"]));
}

#[test]
fn in_memory_round_trip() {
    let policy = policy();
    let opts = suffolk_options(&policy);
    let big = common::bundle::data(200_000, 9);
    let key = signing_key();
    let sealed = bundle::seal_in_memory(&opts, &files(&big), &key).unwrap();
    let ids = age_io::load_identities(&common::bundle::key("suffolk")).unwrap();
    let vk = key.verifying_key();
    let (opened, contents) = bundle::open_in_memory(&sealed, &suffolk_open(&ids, &vk)).unwrap();
    let m = opened.manifest.unwrap();
    assert_eq!(m.marking.class, "OFFICIAL-SENSITIVE");
    assert_eq!(m.isa, "one-off");
    assert_eq!(m.files[1].sha256, hex::encode(Sha256::digest(&big)));
    assert!(matches!(opened.signature, SignatureStatus::Verified { .. }));
    assert_eq!(opened.statement.as_deref(), Some(policy.statement.as_str()));
    let names: Vec<_> = contents
        .iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    // The files first, the manifest block last (markgate-bundle/2).
    assert_eq!(
        names,
        [
            "message.eml",
            "footage.bin",
            "MANIFEST.json",
            "SECURITY-STATEMENT.txt",
            "MANIFEST.sig",
        ]
    );
    assert_eq!(contents[1].1, big);
    assert_eq!(m.format, "markgate-bundle/2");
    assert!(opened.files.iter().all(|f| f.verified));

    // seal_to_writer hands the writer back, holding the same kind of bundle.
    let out = bundle::seal_to_writer(&opts, &files(&big), &key, std::io::Cursor::new(Vec::new()))
        .unwrap()
        .into_inner();
    bundle::open_in_memory(&out, &suffolk_open(&ids, &vk)).unwrap();

    // Without a verifying key the signature is reported as not checked.
    let mut o = suffolk_open(&ids, &vk);
    o.verifying_key = None;
    let (opened, _) = bundle::open_in_memory(&sealed, &o).unwrap();
    assert_eq!(opened.signature, SignatureStatus::NotChecked);
}

struct Count {
    phases: Cell<u32>,
    bytes: Cell<u64>,
}

impl Progress for Count {
    fn begin(&self, _: Phase, _: u64) {
        self.phases.set(self.phases.get() + 1);
    }
    fn advance(&self, n: u64) {
        self.bytes.set(self.bytes.get() + n);
    }
}

#[test]
fn seal_files_streams_from_disk() {
    let policy = policy();
    let opts = suffolk_options(&policy);
    let dir = tempfile::tempdir().unwrap();
    let big = common::bundle::data(1_000_000, 3);
    let paths: Vec<PathBuf> = [("empty.txt", &b""[..]), ("big.bin", &big[..])]
        .iter()
        .map(|(n, d)| {
            let p = dir.path().join(n);
            std::fs::write(&p, d).unwrap();
            p
        })
        .collect();
    let count = Count {
        phases: Cell::new(0),
        bytes: Cell::new(0),
    };
    let mut out = Vec::new();
    let m = bundle::seal_files(&opts, &paths, &signing_key(), &mut out, &count).unwrap();
    // One pass over the input.
    assert_eq!(count.phases.get(), 1);
    assert_eq!(count.bytes.get(), big.len() as u64);
    assert_eq!(m.files[0].size, 0);
    assert_eq!(m.files[1].media_type, "application/octet-stream");
    let ids = age_io::load_identities(&common::bundle::key("suffolk")).unwrap();
    let vk = signing_key().verifying_key();
    let (opened, contents) = bundle::open_in_memory(&out, &suffolk_open(&ids, &vk)).unwrap();
    assert_eq!(opened.manifest.unwrap(), m);
    assert_eq!(contents[1].1, big);
}

#[test]
fn seal_files_refuses_what_is_not_a_regular_file() {
    let policy = policy();
    let opts = suffolk_options(&policy);
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let err = bundle::seal_files(
        &opts,
        &[dir.path().to_path_buf()],
        &signing_key(),
        &mut out,
        &bundle::NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(
        out.is_empty(),
        "nothing is written before the inputs are checked"
    );
    let missing = dir.path().join("missing.txt");
    assert!(bundle::seal_files(
        &opts,
        &[missing],
        &signing_key(),
        &mut out,
        &bundle::NoProgress
    )
    .is_err());
}

#[test]
fn seal_refuses_bad_inputs() {
    let policy = policy();
    let opts = suffolk_options(&policy);
    let key = signing_key();
    let one = |name: &str| {
        bundle::seal_in_memory(
            &opts,
            &[BundleFile {
                name: name.into(),
                media_type: "text/plain".into(),
                data: b"x",
            }],
            &key,
        )
        .unwrap_err()
    };
    assert!(matches!(one("../x"), BundleError::BadFileName { .. }));
    assert!(matches!(
        one("MANIFEST.json"),
        BundleError::BadFileName { .. }
    ));
    let twice = [
        BundleFile {
            name: "a".into(),
            media_type: "text/plain".into(),
            data: b"1",
        },
        BundleFile {
            name: "a".into(),
            media_type: "text/plain".into(),
            data: b"2",
        },
    ];
    assert!(matches!(
        bundle::seal_in_memory(&opts, &twice, &key),
        Err(BundleError::DuplicateName(_))
    ));
    let mut no_keys = opts.clone();
    no_keys.recipients.clear();
    assert!(matches!(
        bundle::seal_in_memory(&no_keys, &[], &key),
        Err(BundleError::NoRecipients)
    ));
    let mut bad_key = opts.clone();
    bad_key.recipients = vec!["age1notakey".into()];
    assert!(matches!(
        bundle::seal_in_memory(&bad_key, &[], &key),
        Err(BundleError::BadRecipient(_))
    ));
}

/// Where the age payload starts: after the header's `---` MAC line and the 16-byte nonce.
fn payload_start(bundle: &[u8]) -> usize {
    let mac = bundle.windows(4).position(|w| w == b"\n---").unwrap() + 1;
    let end = mac + bundle[mac..].iter().position(|&b| b == b'\n').unwrap() + 1;
    end + 16
}

#[test]
fn each_failure_has_its_own_error() {
    let policy = policy();
    let opts = suffolk_options(&policy);
    let big = common::bundle::data(300_000, 5);
    let key = signing_key();
    let sealed = bundle::seal_in_memory(&opts, &files(&big), &key).unwrap();
    let ids = age_io::load_identities(&common::bundle::key("suffolk")).unwrap();
    let vk = key.verifying_key();
    let open = |bytes: &[u8]| bundle::open_in_memory(bytes, &suffolk_open(&ids, &vk)).unwrap_err();

    let start = payload_start(&sealed);
    let mut tampered = sealed.clone();
    tampered[start + 65_552 + 100] ^= 1;
    assert!(
        matches!(open(&tampered), BundleError::Tampered { block: 1 }),
        "{}",
        open(&tampered)
    );
    // a changed header MAC (the base64 after "--- ")
    let mut header = sealed.clone();
    let mac = sealed.windows(4).position(|w| w == b"\n---").unwrap() + 5;
    header[mac] = if header[mac] == b'A' { b'B' } else { b'A' };
    assert!(
        matches!(open(&header), BundleError::HeaderTampered),
        "{}",
        open(&header)
    );
    // cut on a chunk boundary, and inside a chunk
    assert!(matches!(
        open(&sealed[..start + 2 * 65_552]),
        BundleError::Truncated
    ));
    assert!(matches!(
        open(&sealed[..sealed.len() - 10]),
        BundleError::Truncated
    ));
    assert!(matches!(
        open(b"not an age file at all"),
        BundleError::NotAgeFile(_)
    ));

    let birmingham = age_io::load_identities(&common::bundle::key("birmingham")).unwrap();
    let err = bundle::open_in_memory(&sealed, &suffolk_open(&birmingham, &vk)).unwrap_err();
    assert!(matches!(err, BundleError::WrongKey));

    let other = SigningKey::from_bytes(&[1; 32]).verifying_key();
    let err = bundle::open_in_memory(&sealed, &suffolk_open(&ids, &other)).unwrap_err();
    assert!(matches!(err, BundleError::BadSignature { .. }));
    assert!(err.to_string().contains("names signing key"), "{err}");

    let mut small = suffolk_open(&ids, &vk);
    small.max_entry_size = 1000;
    let err = bundle::open_in_memory(&sealed, &small).unwrap_err();
    assert!(matches!(err, BundleError::Oversize { ref name, .. } if name == "footage.bin"));
}

/// A tar archive of `members`, in that order, encrypted to `recipient` with the age crate:
/// bundles laid out by hand.
fn hand_made(recipient: &str, members: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    use std::str::FromStr;
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, name, *data).unwrap();
    }
    let plain = tar.into_inner().unwrap();
    let recipient = age::x25519::Recipient::from_str(recipient).unwrap();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let mut out = Vec::new();
    let mut w = encryptor.wrap_output(&mut out).unwrap();
    w.write_all(&plain).unwrap();
    w.finish().unwrap();
    out
}

/// The genuine members of a freshly sealed bundle: (manifest, statement, signature, files).
struct Genuine {
    manifest: bundle::Manifest,
    statement: Vec<u8>,
    files: Vec<(String, Vec<u8>)>,
}

impl Genuine {
    fn new(big: &[u8]) -> Genuine {
        let policy = policy();
        let opts = suffolk_options(&policy);
        let key = signing_key();
        let sealed = bundle::seal_in_memory(&opts, &files(big), &key).unwrap();
        let ids = age_io::load_identities(&common::bundle::key("suffolk")).unwrap();
        let vk = key.verifying_key();
        let (opened, contents) = bundle::open_in_memory(&sealed, &suffolk_open(&ids, &vk)).unwrap();
        Genuine {
            manifest: opened.manifest.unwrap(),
            statement: opened.statement.unwrap().into_bytes(),
            files: contents
                .into_iter()
                .take(2)
                .map(|(p, d)| (p.to_string_lossy().into_owned(), d))
                .collect(),
        }
    }

    /// The manifest with `format`, and its signature.
    fn signed(&self, format: &str) -> (Vec<u8>, Vec<u8>) {
        let mut m = self.manifest.clone();
        m.format = format.into();
        let bytes = m.to_bytes();
        let sig = bundle::manifest::sign(&bytes, &signing_key());
        (bytes, sig)
    }

    fn open(&self, bundle: &[u8]) -> Result<(bundle::Opened, bundle::MemoryFiles), BundleError> {
        let ids = age_io::load_identities(&common::bundle::key("suffolk")).unwrap();
        let vk = signing_key().verifying_key();
        bundle::open_in_memory(bundle, &suffolk_open(&ids, &vk))
    }
}

fn suffolk_recipient() -> String {
    suffolk_options(&policy()).recipients[0].clone()
}

#[test]
fn bundles_in_the_earlier_manifest_first_layout_still_open() {
    let big = common::bundle::data(150_000, 7);
    let g = Genuine::new(&big);
    let (manifest, sig) = g.signed("markgate-bundle/1");
    let v1 = hand_made(
        &suffolk_recipient(),
        &[
            ("MANIFEST.json", &manifest),
            ("SECURITY-STATEMENT.txt", &g.statement),
            ("MANIFEST.sig", &sig),
            (&g.files[0].0, &g.files[0].1),
            (&g.files[1].0, &g.files[1].1),
        ],
    );
    let (opened, contents) = g.open(&v1).unwrap();
    assert_eq!(opened.manifest.unwrap().format, "markgate-bundle/1");
    assert!(matches!(opened.signature, SignatureStatus::Verified { .. }));
    assert!(opened.files.iter().all(|f| f.verified));
    assert_eq!(contents[4].1, big);

    // A v1 manifest does not go last, nor a v2 one first (when there are files).
    let late_v1 = hand_made(
        &suffolk_recipient(),
        &[
            (&g.files[0].0, &g.files[0].1),
            (&g.files[1].0, &g.files[1].1),
            ("MANIFEST.json", &manifest),
            ("SECURITY-STATEMENT.txt", &g.statement),
            ("MANIFEST.sig", &sig),
        ],
    );
    let err = g.open(&late_v1).unwrap_err();
    assert!(matches!(err, BundleError::BadManifest(_)), "{err}");
    let (manifest2, sig2) = g.signed("markgate-bundle/2");
    let early_v2 = hand_made(
        &suffolk_recipient(),
        &[
            ("MANIFEST.json", &manifest2),
            ("SECURITY-STATEMENT.txt", &g.statement),
            ("MANIFEST.sig", &sig2),
            (&g.files[0].0, &g.files[0].1),
            (&g.files[1].0, &g.files[1].1),
        ],
    );
    let err = g.open(&early_v2).unwrap_err();
    assert!(matches!(err, BundleError::BadManifest(_)), "{err}");
}

#[test]
fn manifest_last_bundles_are_checked_against_the_manifest() {
    let big = common::bundle::data(150_000, 8);
    let g = Genuine::new(&big);
    let (manifest, sig) = g.signed("markgate-bundle/2");
    let (a, b) = (
        (g.files[0].0.as_str(), g.files[0].1.as_slice()),
        (g.files[1].0.as_str(), g.files[1].1.as_slice()),
    );
    let meta = [
        ("MANIFEST.json", manifest.as_slice()),
        ("SECURITY-STATEMENT.txt", g.statement.as_slice()),
        ("MANIFEST.sig", sig.as_slice()),
    ];
    let with = |files: &[(&str, &[u8])], tail: &[(&str, &[u8])]| {
        let members: Vec<(&str, &[u8])> = files.iter().chain(&meta).chain(tail).copied().collect();
        g.open(&hand_made(&suffolk_recipient(), &members))
    };

    // As sealed.
    let (opened, _) = with(&[a, b], &[]).unwrap();
    assert!(opened.files.iter().all(|f| f.verified));

    let err = with(&[b, a], &[]).unwrap_err();
    assert!(
        matches!(err, BundleError::UnexpectedEntry { ref reason, .. } if reason.contains("at this position")),
        "{err}"
    );
    let err = with(&[a], &[]).unwrap_err();
    assert!(
        matches!(err, BundleError::MissingFile(ref n) if n == "footage.bin"),
        "{err}"
    );
    let err = with(&[a, b, ("extra.txt", b"x")], &[]).unwrap_err();
    assert!(
        matches!(err, BundleError::UnexpectedEntry { ref name, .. } if name == "extra.txt"),
        "{err}"
    );
    let altered = {
        let mut v = b.1.to_vec();
        v[1000] ^= 1;
        v
    };
    let err = with(&[a, (b.0, &altered)], &[]).unwrap_err();
    assert!(matches!(err, BundleError::HashMismatch { .. }), "{err}");
    let err = with(&[a, (b.0, &b.1[..1000])], &[]).unwrap_err();
    assert!(matches!(err, BundleError::SizeMismatch { .. }), "{err}");
    let err = with(&[a, ("sub/footage.bin", b.1)], &[]).unwrap_err();
    assert!(matches!(err, BundleError::UnexpectedEntry { .. }), "{err}");
    let err = with(&[a, a], &[]).unwrap_err();
    assert!(
        matches!(err, BundleError::UnexpectedEntry { ref reason, .. } if reason.contains("twice")),
        "{err}"
    );
    let err = with(&[a, b], &[("late.txt", b"x")]).unwrap_err();
    assert!(
        matches!(err, BundleError::UnexpectedEntry { ref reason, .. } if reason.contains("nothing may follow")),
        "{err}"
    );

    // No signature: refused unless unsigned bundles are allowed.
    let unsigned = hand_made(&suffolk_recipient(), &[a, b, meta[0], meta[1]]);
    let err = g.open(&unsigned).unwrap_err();
    assert!(
        matches!(err, BundleError::Unsigned { has_manifest: true }),
        "{err}"
    );
    // A manifest altered after signing.
    let text = String::from_utf8(manifest.clone()).unwrap();
    let altered = text.replace("\"destroy_by\": \"", "\"destroy_by\": \"9");
    assert_ne!(altered, text);
    let swapped = hand_made(
        &suffolk_recipient(),
        &[
            a,
            b,
            ("MANIFEST.json", altered.as_bytes()),
            meta[1],
            meta[2],
        ],
    );
    let err = g.open(&swapped).unwrap_err();
    assert!(matches!(err, BundleError::BadSignature { .. }), "{err}");
}

#[test]
fn bundle_without_files_round_trips() {
    let policy = policy();
    let opts = suffolk_options(&policy);
    let key = signing_key();
    let sealed = bundle::seal_in_memory(&opts, &[], &key).unwrap();
    let ids = age_io::load_identities(&common::bundle::key("suffolk")).unwrap();
    let vk = key.verifying_key();
    let (opened, contents) = bundle::open_in_memory(&sealed, &suffolk_open(&ids, &vk)).unwrap();
    assert!(opened.manifest.unwrap().files.is_empty());
    assert_eq!(contents.len(), 3);
}

/// A seal request for Suffolk Constabulary, as `bundle seal --to suffolk-police` makes it.
fn suffolk_request(marking: &str) -> bundle::SealRequest {
    bundle::SealRequest {
        to: bundle::SealTo::Partner("Suffolk Constabulary".into()),
        marking: marking.into(),
        isa: None,
        purpose: Some("Missing person enquiry".into()),
        legal_basis: Some("DPA 2018 s.35".into()),
        from_org: None,
        from_person: "DC 4321".into(),
        at: today().and_hms_opt(9, 0, 0).unwrap().and_utc(),
        armor: false,
    }
}

fn stored(db: &std::path::Path) -> Vec<markgate::record::StoredRecord> {
    markgate::record::Store::open_read_only(db)
        .unwrap()
        .query(&Default::default())
        .unwrap()
}

/// `bundle seal` as one library step: decided, sealed into a bundle Suffolk opens, and
/// recorded with the bundle's id; a refusal is recorded and writes nothing; bad input
/// opens no record store at all.
#[test]
fn seal_and_record_decides_seals_and_records() {
    let policy = policy();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("referral.txt");
    std::fs::write(&input, b"referral details\n").unwrap();
    let db = dir.path().join("records.sqlite");
    let recorder = || markgate::record::Recorder::open_path(&db, &Default::default());
    let mut out = Vec::new();
    let sealed = bundle::seal_and_record(
        &policy,
        &suffolk_request("OFFICIAL-SENSITIVE"),
        std::slice::from_ref(&input),
        || Ok(signing_key()),
        bundle::Output::Stream(&mut out),
        recorder,
        &bundle::NoProgress,
    )
    .unwrap();
    assert_eq!(sealed.options.recipient_names, ["Suffolk Constabulary"]);
    let ids = age_io::load_identities(&common::bundle::key("suffolk")).unwrap();
    let vk = signing_key().verifying_key();
    let (opened, _) = bundle::open_in_memory(&out, &suffolk_open(&ids, &vk)).unwrap();
    let manifest = opened.manifest.unwrap();
    assert_eq!(manifest.bundle_id, sealed.manifest.bundle_id);
    assert_eq!(manifest.purpose.as_deref(), Some("Missing person enquiry"));
    let records = stored(&db);
    assert_eq!(records.len(), 1);
    let r = &records[0].record;
    assert_eq!(r.verdict.as_str(), "allow");
    assert_eq!(r.message_id.as_deref(), Some(manifest.bundle_id.as_str()));
    assert_eq!(r.purpose.as_deref(), Some("Missing person enquiry"));

    // SECRET is refused by the policy: recorded as blocked, nothing written, no key asked.
    let path = dir.path().join("secret.age");
    let seal_to_path = |marking: &str, key: &dyn Fn() -> Result<SigningKey, CertError>| {
        bundle::seal_and_record(
            &policy,
            &suffolk_request(marking),
            std::slice::from_ref(&input),
            key,
            bundle::Output::File {
                path: &path,
                replace: false,
            },
            recorder,
            &bundle::NoProgress,
        )
        .unwrap_err()
    };
    let refused = seal_to_path("SECRET", &|| panic!("a refused seal loads no signing key"));
    assert!(refused.is_refusal(), "{refused}");
    assert!(!path.exists());
    let records = stored(&db);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].record.verdict.as_str(), "block");

    // A signing key that does not load: recorded as refused (seal-failed), not a disclosure.
    let failed = seal_to_path("OFFICIAL", &|| {
        markgate::certs::load_signing_key(&dir.path().join("missing.pem"))
    });
    assert!(
        matches!(failed, bundle::SealError::SigningKey(_)),
        "{failed}"
    );
    assert!(!failed.is_refusal());
    let records = stored(&db);
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].record.verdict.as_str(), "block");
    assert_eq!(records[2].record.rules.last().unwrap(), "seal-failed");
    assert!(!path.exists());

    // Bad input (a private key, an unknown partner or marking) decides and records nothing.
    let never = || -> Result<markgate::record::Recorder, markgate::record::RecordError> {
        panic!("bad input opens no record store")
    };
    let mut bad = suffolk_request("OFFICIAL");
    bad.to = bundle::SealTo::Keys(vec!["AGE-SECRET-KEY-1XYZ".into()]);
    let mut unknown_partner = suffolk_request("OFFICIAL");
    unknown_partner.to = bundle::SealTo::Partner("nobody".into());
    for (request, expected) in [
        (bad, "PRIVATE key"),
        (unknown_partner, "not in the partner register"),
        (suffolk_request("PINK"), "unknown marking \"PINK\""),
    ] {
        let e = bundle::seal_and_record(
            &policy,
            &request,
            std::slice::from_ref(&input),
            || Ok(signing_key()),
            bundle::Output::Stream(&mut Vec::new()),
            never,
            &bundle::NoProgress,
        )
        .unwrap_err();
        assert!(e.to_string().contains(expected), "{e}");
        assert!(!e.is_refusal());
    }
    assert_eq!(stored(&db).len(), 3);
}
