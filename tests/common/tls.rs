//! Certificates made for a test: a CA of its own, and client certificates it signs (a host
//! name for an MTA, an email address for a person), written as PEM files.

use std::path::{Path, PathBuf};

pub type TestCa = rcgen::CertifiedIssuer<'static, rcgen::KeyPair>;

/// A CA made for the test: its PEM (`.pem()`) and the issuer that signs client certificates.
pub fn test_ca(name: &str) -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    rcgen::CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A client certificate for the host `name` signed by `ca`, written as `dir/stem-cert.pem`
/// and `dir/stem-key.pem`.
pub fn client_cert(ca: &TestCa, name: &str, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    sign_client(params, ca, dir, stem)
}

/// A person's client certificate signed by `ca`: `email` as its subject alternative name
/// (none when `email` is None), `name` as its common name.
pub fn person_cert(
    ca: &TestCa,
    name: &str,
    email: Option<&str>,
    dir: &Path,
    stem: &str,
) -> (PathBuf, PathBuf) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    if let Some(email) = email {
        params.subject_alt_names = vec![rcgen::SanType::Rfc822Name(email.try_into().unwrap())];
    }
    sign_client(params, ca, dir, stem)
}

fn sign_client(
    mut params: rcgen::CertificateParams,
    ca: &TestCa,
    dir: &Path,
    stem: &str,
) -> (PathBuf, PathBuf) {
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    let cert_path = dir.join(format!("{stem}-cert.pem"));
    let key_path = dir.join(format!("{stem}-key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}
