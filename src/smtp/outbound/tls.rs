//! The TLS client configurations delivery chooses from, one per way of verifying a next
//! hop: PKIX (the system's trust store plus `tls.ca`, name checked), DANE (the TLSA records of the
//! host), and opportunistic (encrypt, check nothing; only for copies that do not require
//! TLS and whose host has no DANE records).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::dane::{DaneVerifier, Tlsa};

/// How the next hop's identity was established, as recorded for each attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Certificate matched the MX host's DNSSEC-secure TLSA records.
    Dane,
    /// The MX matched the domain's MTA-STS policy (enforce) and the certificate is valid
    /// for it under PKIX.
    MtaSts,
    /// Certificate valid for the host name under the system roots plus `tls.ca`.
    Pkix,
    /// Smart host verified (PKIX) and asked with REQUIRETLS to keep TLS to the end.
    SmarthostRequireTls,
    /// Smart host verified (PKIX) but does not offer REQUIRETLS: trusted to keep TLS
    /// (`requiretls = "trust"`).
    SmarthostTrusted,
    /// Not verified (plaintext, or opportunistic TLS).
    None,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Dane => "dane",
            Verification::MtaSts => "mta-sts",
            Verification::Pkix => "pkix",
            Verification::SmarthostRequireTls => "smarthost-requiretls",
            Verification::SmarthostTrusted => "smarthost-trusted",
            Verification::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Verification> {
        [
            Verification::Dane,
            Verification::MtaSts,
            Verification::Pkix,
            Verification::SmarthostRequireTls,
            Verification::SmarthostTrusted,
            Verification::None,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// The client configurations, built once.
pub struct TlsClients {
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    pkix: Arc<ClientConfig>,
    opportunistic: Arc<ClientConfig>,
}

impl TlsClients {
    /// Trust the system roots plus the PEM certificates in `extra_ca` (`tls.ca`).
    ///
    /// The system roots are the host's trust store as OpenSSL finds it (`SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`, else Debian's /etc/ssl/certs from `ca-certificates`), so the
    /// administrators who manage the host's CAs decide, not a list compiled into the binary.
    /// A host without a trust store trusts `tls.ca` alone: fewer roots, never more.
    pub fn new(extra_ca: Option<&Path>) -> anyhow::Result<TlsClients> {
        crate::certs::install_crypto_provider();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        let system = rustls_native_certs::load_native_certs();
        for error in &system.errors {
            tracing::warn!(%error, "system root certificates: some could not be read");
        }
        let (added, ignored) = roots.add_parsable_certificates(system.certs);
        if added == 0 {
            tracing::warn!(
                "no system root certificates found: PKIX next hops are checked against tls.ca only"
            );
        } else {
            tracing::debug!(added, ignored, "system root certificates loaded");
        }
        if let Some(path) = extra_ca {
            for cert in crate::certs::load_certs(path)? {
                roots.add(cert)?;
            }
        }
        let roots = Arc::new(roots);
        let pkix = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        let opportunistic = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider.clone())))
            .with_no_client_auth();
        Ok(TlsClients {
            pkix: Arc::new(pkix),
            opportunistic: Arc::new(opportunistic),
            provider,
            roots,
        })
    }

    /// Verified against the roots, for the name the connection is made to.
    pub fn pkix(&self) -> Arc<ClientConfig> {
        self.pkix.clone()
    }

    /// Encrypted, nothing verified.
    pub fn opportunistic(&self) -> Arc<ClientConfig> {
        self.opportunistic.clone()
    }

    /// Verified against `records` (DANE-EE / DANE-TA).
    pub fn dane(&self, records: &[Tlsa]) -> Arc<ClientConfig> {
        let verifier = DaneVerifier::new(records, self.provider.clone());
        Arc::new(
            ClientConfig::builder_with_provider(self.provider.clone())
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth(),
        )
    }

    /// The PKIX roots (the MTA-STS policy fetch uses them too).
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }

    pub fn provider(&self) -> Arc<CryptoProvider> {
        self.provider.clone()
    }
}

/// A server name for SNI and PKIX checks.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.trim_end_matches('.').to_string())
        .map_err(|_| format!("{host:?} is not a host name"))
}

/// Accepts any certificate (handshake signatures are still checked).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
