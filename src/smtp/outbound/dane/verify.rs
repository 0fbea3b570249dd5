//! The rustls certificate verifier for a DANE-authenticated MX host.
//!
//! DANE-EE: the server's own certificate (or its public key) matches a record; names and
//! dates are not checked (RFC 7672 §3.1.1). DANE-TA: a certificate in the server's chain
//! (or the full certificate in the record) matches a record and becomes the only trust
//! anchor; the chain is then checked the usual way, names included, against the MX host
//! name (RFC 7672 §3.1.2, §3.2.3).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use super::{Tlsa, DANE_EE, DANE_TA};

#[derive(Debug)]
pub struct DaneVerifier {
    records: Vec<Tlsa>,
    provider: Arc<CryptoProvider>,
}

impl DaneVerifier {
    /// A verifier for `records` (the usable ones are kept).
    pub fn new(records: &[Tlsa], provider: Arc<CryptoProvider>) -> DaneVerifier {
        DaneVerifier {
            records: records.iter().filter(|r| r.is_usable()).cloned().collect(),
            provider,
        }
    }

    fn trust_anchors(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        for record in self.records.iter().filter(|r| r.usage == DANE_TA) {
            for cert in intermediates.iter().chain(std::iter::once(end_entity)) {
                if record.matches(cert) {
                    let _ = roots.add(cert.clone().into_owned());
                }
            }
            // a full certificate in the record is itself the anchor
            if record.selector == 0 && record.matching == 0 {
                let _ = roots.add(CertificateDer::from(record.data.clone()));
            }
        }
        roots
    }
}

/// Why a certificate failed DANE.
#[derive(Debug, thiserror::Error)]
#[error("DANE: {0}")]
struct DaneMismatch(String);

fn mismatch(why: &str) -> Error {
    Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(DaneMismatch(why.to_string())),
    )))
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self
            .records
            .iter()
            .any(|r| r.usage == DANE_EE && r.matches(end_entity))
        {
            return Ok(ServerCertVerified::assertion());
        }
        let roots = self.trust_anchors(end_entity, intermediates);
        if roots.is_empty() {
            return Err(mismatch(
                "the server's certificate matches none of the TLSA records",
            ));
        }
        let chain =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| mismatch(&e.to_string()))?;
        chain
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| {
                mismatch(&format!(
                    "the chain to the DANE-TA anchor does not verify: {e}"
                ))
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
