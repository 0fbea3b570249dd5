//! DANE for SMTP (RFC 7672): the MX host's TLSA records, published in a DNSSEC-signed zone,
//! say which certificate (DANE-EE, usage 3) or which issuing authority (DANE-TA, usage 2)
//! the server must present. Once the records are secure, a certificate that matches none
//! of them is no delivery to that host, whatever the message's marking: RFC 7672 makes this
//! mandatory, and a downgrade to an unauthenticated or plaintext session is what it
//! prevents.
//!
//! PKIX-TA (0) and PKIX-EE (1) records are unusable for SMTP (RFC 7672 §3.1.3) and ignored;
//! a TLSA set with no usable record asks for TLS without naming a certificate.

mod verify;

pub use verify::DaneVerifier;

use sha2::{Digest, Sha256, Sha512};

/// One TLSA record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

/// Certificate usages that SMTP honours.
pub const DANE_TA: u8 = 2;
pub const DANE_EE: u8 = 3;

impl Tlsa {
    /// Usable for SMTP: DANE-TA or DANE-EE, a known selector and matching type.
    pub fn is_usable(&self) -> bool {
        matches!(self.usage, DANE_TA | DANE_EE)
            && self.selector <= 1
            && match self.matching {
                0 => !self.data.is_empty(),
                1 => self.data.len() == 32,
                2 => self.data.len() == 64,
                _ => false,
            }
    }

    /// Does the certificate (DER) match this record's selector and matching type?
    pub fn matches(&self, cert_der: &[u8]) -> bool {
        let selected: Vec<u8> = match self.selector {
            0 => cert_der.to_vec(),
            1 => match spki(cert_der) {
                Some(s) => s,
                None => return false,
            },
            _ => return false,
        };
        match self.matching {
            0 => selected == self.data,
            1 => Sha256::digest(&selected).as_slice() == self.data.as_slice(),
            2 => Sha512::digest(&selected).as_slice() == self.data.as_slice(),
            _ => false,
        }
    }

    /// `3 1 1 <hex>`, as in a zone file.
    pub fn to_text(&self) -> String {
        format!(
            "{} {} {} {}",
            self.usage,
            self.selector,
            self.matching,
            hex::encode(&self.data)
        )
    }
}

/// The DER SubjectPublicKeyInfo of a certificate.
pub fn spki(cert_der: &[u8]) -> Option<Vec<u8>> {
    let cert = rustls::pki_types::CertificateDer::from(cert_der);
    let anchor = webpki::anchor_from_trusted_cert(&cert).ok()?;
    Some(webpki::spki_for_anchor(&anchor).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mx.example.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (
            cert.der().to_vec(),
            rcgen::PublicKeyData::subject_public_key_info(&key),
        )
    }

    #[test]
    fn every_selector_and_matching_type_matches_its_own_certificate_only() {
        let (der, spki_der) = cert();
        let (other, _) = cert();
        assert_eq!(spki(&der).unwrap(), spki_der);
        for (selector, selected) in [(0u8, der.clone()), (1, spki_der.clone())] {
            for (matching, data) in [
                (0u8, selected.clone()),
                (1, Sha256::digest(&selected).to_vec()),
                (2, Sha512::digest(&selected).to_vec()),
            ] {
                let t = Tlsa {
                    usage: DANE_EE,
                    selector,
                    matching,
                    data,
                };
                assert!(t.is_usable());
                assert!(t.matches(&der), "{}", t.to_text());
                assert!(!t.matches(&other), "{}", t.to_text());
            }
        }
    }

    #[test]
    fn pkix_usages_and_odd_lengths_are_unusable() {
        let base = Tlsa {
            usage: DANE_EE,
            selector: 1,
            matching: 1,
            data: vec![0; 32],
        };
        assert!(base.is_usable());
        for usage in [0u8, 1, 4, 255] {
            assert!(!Tlsa {
                usage,
                ..base.clone()
            }
            .is_usable());
        }
        assert!(!Tlsa {
            data: vec![0; 31],
            ..base.clone()
        }
        .is_usable());
        assert!(!Tlsa {
            matching: 3,
            ..base.clone()
        }
        .is_usable());
        assert!(!Tlsa {
            selector: 2,
            ..base
        }
        .is_usable());
    }
}
