//! DNS for delivery, with DNSSEC validation: MX, address, TLSA and TXT lookups through
//! hickory's validating stub resolver (`[delivery.dns]`: the servers to ask and the trust
//! anchors to validate from).
//!
//! Every answer says whether it was proven (DNSSEC-secure) or not. An answer that fails
//! validation (bogus) is an error of its own, never mistaken for "no such record": a
//! forged "no TLSA" would otherwise switch DANE off for a host.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::rdata::{DNSSECRData, DS};
use hickory_resolver::proto::dnssec::{
    Algorithm, DigestType, Proof, PublicKey, PublicKeyBuf, TrustAnchors,
};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_resolver::{Resolver, ResolverBuilder};

use super::dane::Tlsa;
use crate::config::delivery::DnsConfig;

/// Why a lookup gave no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsFailure {
    /// DNSSEC validation failed: the answer may be forged.
    #[error("DNSSEC validation failed (bogus) for {name} {rtype}")]
    Bogus { name: String, rtype: &'static str },
    /// Timeout, SERVFAIL, no server reachable: try later.
    #[error("DNS lookup of {name} {rtype} failed: {detail}")]
    Temporary {
        name: String,
        rtype: &'static str,
        detail: String,
    },
    /// The name is not a DNS name.
    #[error("{name:?} is not a domain name")]
    BadName { name: String },
}

/// Records of one type, and whether DNSSEC proved them.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub records: Vec<T>,
    pub secure: bool,
    /// The name does not exist at all (NXDOMAIN).
    pub nxdomain: bool,
}

/// The mail exchangers of a domain (RFC 5321 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxHosts {
    /// MX records, sorted by preference (ties keep DNS order).
    Listed {
        hosts: Vec<(u16, String)>,
        secure: bool,
    },
    /// No MX: the domain itself is the host (its A/AAAA).
    Implicit { secure: bool },
    /// `0 .`: the domain accepts no mail (RFC 7505).
    Null,
    /// The domain does not exist.
    NoSuchDomain,
}

pub struct Dns {
    /// The validating resolver; built on first use when an anchor is a DS line, since the
    /// key it names must first be fetched and matched against the digest.
    resolver: tokio::sync::OnceCell<Resolver<TokioRuntimeProvider>>,
    config: DnsConfig,
    /// The anchors given as keys, and those given as digests (still to be turned into keys).
    anchors: TrustAnchors,
    digests: Vec<(Name, DS)>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dns")
    }
}

impl Dns {
    /// A validating resolver from `[delivery.dns]`.
    pub fn new(config: &DnsConfig) -> Result<Dns, String> {
        let (anchors, digests) = match &config.trust_anchors {
            Some(path) => load_anchors(path)?,
            None => (TrustAnchors::default(), Vec::new()),
        };
        let dns = Dns {
            resolver: tokio::sync::OnceCell::new(),
            config: config.clone(),
            anchors,
            digests,
        };
        let builder = dns.builder()?;
        if dns.digests.is_empty() {
            let resolver = dns.validating(builder, dns.anchors.clone())?;
            let _ = dns.resolver.set(resolver);
        }
        Ok(dns)
    }

    /// A resolver builder asking the configured servers (or the system's).
    fn builder(&self) -> Result<ResolverBuilder<TokioRuntimeProvider>, String> {
        if self.config.servers.is_empty() {
            return Resolver::builder_tokio()
                .map_err(|e| format!("system resolver configuration: {e}"));
        }
        let servers = self
            .config
            .servers
            .iter()
            .map(|s| {
                let addr: SocketAddr = s.parse().map_err(|_| {
                    format!("delivery.dns.servers: {s:?} is not an IP:PORT address")
                })?;
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in ns.connections.iter_mut() {
                    c.port = addr.port();
                }
                Ok(ns)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Resolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        ))
    }

    fn options(validate: bool) -> ResolverOpts {
        let mut opts = ResolverOpts::default();
        opts.validate = validate;
        opts.attempts = 2;
        opts.timeout = std::time::Duration::from_secs(5);
        opts.ndots = 0;
        opts
    }

    fn validating(
        &self,
        builder: ResolverBuilder<TokioRuntimeProvider>,
        anchors: TrustAnchors,
    ) -> Result<Resolver<TokioRuntimeProvider>, String> {
        builder
            .with_options(Self::options(true))
            .with_trust_anchor(Arc::new(anchors))
            .build()
            .map_err(|e| e.to_string())
    }

    /// The validating resolver, fetching the keys that DS anchors name on first use. A key
    /// fetch that fails is a temporary failure (the copy defers; the next lookup tries again).
    async fn resolver(&self) -> Result<&Resolver<TokioRuntimeProvider>, DnsFailure> {
        self.resolver
            .get_or_try_init(|| async {
                let mut anchors = self.anchors.clone();
                for key in self.keys_for_digests().await? {
                    anchors.insert_with_name(&key.1, LowerName::from(&key.0));
                }
                let builder = self
                    .builder()
                    .map_err(|detail| anchor_failure(".", detail))?;
                self.validating(builder, anchors)
                    .map_err(|detail| anchor_failure(".", detail))
            })
            .await
    }

    /// For each DS anchor, the DNSKEY of its owner whose digest it is (RFC 4509 §2.1).
    /// The keys are fetched without validation: the digest is what makes them trusted.
    async fn keys_for_digests(&self) -> Result<Vec<(Name, PublicKeyBuf)>, DnsFailure> {
        let fetcher = self
            .builder()
            .map_err(|detail| anchor_failure(".", detail))?
            .with_options(Self::options(false))
            .build()
            .map_err(|e| anchor_failure(".", e.to_string()))?;
        let mut keys = Vec::new();
        for (owner, ds) in &self.digests {
            let lookup = fetcher
                .lookup(owner.clone(), RecordType::DNSKEY)
                .await
                .map_err(|e| anchor_failure(&owner.to_string(), e.to_string()))?;
            let matching = lookup.answers().iter().find_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(key))
                    if key.public_key().algorithm() == ds.algorithm()
                        && ds.covers(owner, key).unwrap_or(false) =>
                {
                    Some(key.public_key().clone())
                }
                _ => None,
            });
            let key = matching.ok_or_else(|| {
                anchor_failure(
                    &owner.to_string(),
                    format!(
                        "no DNSKEY matches the trust anchor DS {} {}",
                        ds.key_tag(),
                        u8::from(ds.algorithm())
                    ),
                )
            })?;
            keys.push((owner.clone(), key));
        }
        Ok(keys)
    }

    async fn lookup(&self, name: &str, rtype: RecordType) -> Result<Answer<Record>, DnsFailure> {
        let label = rtype_name(rtype);
        let fqdn = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        let parsed = Name::from_utf8(&fqdn).map_err(|_| DnsFailure::BadName {
            name: name.to_string(),
        })?;
        let bogus = || DnsFailure::Bogus {
            name: name.to_string(),
            rtype: label,
        };
        match self.resolver().await?.lookup(parsed, rtype).await {
            Ok(lookup) => {
                let records: Vec<Record> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .cloned()
                    .collect();
                if records.iter().any(|r| r.proof == Proof::Bogus) {
                    return Err(bogus());
                }
                let secure =
                    !records.is_empty() && records.iter().all(|r| r.proof == Proof::Secure);
                Ok(Answer {
                    records,
                    secure,
                    nxdomain: false,
                })
            }
            Err(NetError::Dns(DnsError::Nsec {
                proof, response, ..
            })) => {
                if proof == Proof::Bogus {
                    return Err(bogus());
                }
                Ok(Answer {
                    records: Vec::new(),
                    secure: proof == Proof::Secure,
                    nxdomain: response.response_code == ResponseCode::NXDomain,
                })
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(none))) => Ok(Answer {
                records: Vec::new(),
                secure: false,
                nxdomain: none.response_code == ResponseCode::NXDomain,
            }),
            Err(NetError::Dns(DnsError::DnssecBogus)) => Err(bogus()),
            Err(e) => Err(DnsFailure::Temporary {
                name: name.to_string(),
                rtype: label,
                detail: e.to_string(),
            }),
        }
    }

    /// The mail exchangers of `domain`, in the order to try them.
    pub async fn mx(&self, domain: &str) -> Result<MxHosts, DnsFailure> {
        let answer = self.lookup(domain, RecordType::MX).await?;
        if answer.nxdomain {
            return Ok(MxHosts::NoSuchDomain);
        }
        let mut hosts: Vec<(u16, String)> = answer
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((
                    mx.preference,
                    mx.exchange
                        .to_ascii()
                        .trim_end_matches('.')
                        .to_ascii_lowercase(),
                )),
                _ => None,
            })
            .collect();
        if hosts.is_empty() {
            return Ok(MxHosts::Implicit {
                secure: answer.secure,
            });
        }
        if hosts.len() == 1 && hosts[0].1.is_empty() {
            return Ok(MxHosts::Null);
        }
        // a null MX among others is ignored (RFC 7505 §3)
        hosts.retain(|(_, h)| !h.is_empty());
        hosts.sort_by_key(|(p, _)| *p);
        Ok(MxHosts::Listed {
            hosts,
            secure: answer.secure,
        })
    }

    /// IPv4 and IPv6 addresses of `host`, and whether both answers were secure.
    pub async fn addresses(&self, host: &str) -> Result<Answer<IpAddr>, DnsFailure> {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(Answer {
                records: vec![ip],
                secure: false,
                nxdomain: false,
            });
        }
        let (v4, v6) = tokio::join!(
            self.lookup(host, RecordType::A),
            self.lookup(host, RecordType::AAAA)
        );
        let (v4, v6) = (v4?, v6?);
        let mut records = Vec::new();
        for r in v4.records.iter().chain(v6.records.iter()) {
            match &r.data {
                RData::A(a) => records.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => records.push(IpAddr::V6(a.0)),
                _ => {}
            }
        }
        Ok(Answer {
            secure: (v4.secure || v4.records.is_empty())
                && (v6.secure || v6.records.is_empty())
                && !records.is_empty(),
            nxdomain: v4.nxdomain && v6.nxdomain,
            records,
        })
    }

    /// The TLSA records at `_<port>._tcp.<host>`.
    pub async fn tlsa(&self, host: &str, port: u16) -> Result<Answer<Tlsa>, DnsFailure> {
        let answer = self
            .lookup(&format!("_{port}._tcp.{host}"), RecordType::TLSA)
            .await?;
        let records = answer
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::TLSA(t) => Some(Tlsa {
                    usage: t.cert_usage.into(),
                    selector: t.selector.into(),
                    matching: t.matching.into(),
                    data: t.cert_data.to_vec(),
                }),
                _ => None,
            })
            .collect();
        Ok(Answer {
            records,
            secure: answer.secure,
            nxdomain: answer.nxdomain,
        })
    }

    /// The TXT strings at `name`, each record's strings joined.
    pub async fn txt(&self, name: &str) -> Result<Answer<String>, DnsFailure> {
        let answer = self.lookup(name, RecordType::TXT).await?;
        let records = answer
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect();
        Ok(Answer {
            records,
            secure: answer.secure,
            nxdomain: answer.nxdomain,
        })
    }
}

fn rtype_name(rtype: RecordType) -> &'static str {
    match rtype {
        RecordType::MX => "MX",
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::TLSA => "TLSA",
        RecordType::TXT => "TXT",
        _ => "?",
    }
}

fn anchor_failure(owner: &str, detail: String) -> DnsFailure {
    DnsFailure::Temporary {
        name: owner.to_string(),
        rtype: "DNSKEY",
        detail: format!("trust anchor: {detail}"),
    }
}

/// Trust anchors from a file of DNSKEY lines (as `dig . DNSKEY` prints them) and DS lines
/// (as IANA publishes the root's anchor: `. IN DS 20326 8 2 E06D…`), in any mix.
fn load_anchors(path: &Path) -> Result<(TrustAnchors, Vec<(Name, DS)>), String> {
    let context =
        |e: &dyn std::fmt::Display| format!("delivery.dns.trust_anchors {}: {e}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| context(&e))?;
    let mut keys = String::new();
    let mut digests = Vec::new();
    for (number, line) in text.lines().enumerate() {
        match parse_ds(line) {
            Some(parsed) => {
                digests.push(parsed.map_err(|e| context(&format!("line {}: {e}", number + 1)))?)
            }
            None => {
                keys.push_str(line);
                keys.push('\n');
            }
        }
    }
    let anchors: TrustAnchors = keys.parse().map_err(|e| context(&e))?;
    if anchors.is_empty() && digests.is_empty() {
        return Err(context(&"no root DNSKEY or DS record in the file"));
    }
    Ok((anchors, digests))
}

/// A DS line (`OWNER [TTL] [CLASS] DS KEYTAG ALGORITHM DIGESTTYPE DIGEST`); `None` when the
/// line is no DS record (a DNSKEY line, a comment, blank).
fn parse_ds(line: &str) -> Option<Result<(Name, DS), String>> {
    let line = line.split(';').next().unwrap_or("");
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let at = tokens.iter().position(|t| t.eq_ignore_ascii_case("DS"))?;
    Some((|| {
        if at == 0 || at > 3 {
            return Err(
                "a DS line reads OWNER [TTL] [CLASS] DS KEYTAG ALGORITHM DIGESTTYPE DIGEST"
                    .to_string(),
            );
        }
        let owner =
            Name::from_utf8(tokens[0]).map_err(|e| format!("owner {:?}: {e}", tokens[0]))?;
        if !owner.is_fqdn() {
            return Err(format!("owner {:?} must end with a dot", tokens[0]));
        }
        let fields = &tokens[at + 1..];
        if fields.len() < 4 {
            return Err("DS needs KEYTAG ALGORITHM DIGESTTYPE DIGEST".to_string());
        }
        let number = |t: &str, what: &str| {
            t.parse::<u16>()
                .map_err(|_| format!("{what} {t:?} is not a number"))
        };
        let key_tag = number(fields[0], "key tag")?;
        let algorithm = u8::try_from(number(fields[1], "algorithm")?)
            .map_err(|_| format!("algorithm {} is out of range", fields[1]))?;
        let digest_type = u8::try_from(number(fields[2], "digest type")?)
            .map_err(|_| format!("digest type {} is out of range", fields[2]))?;
        let digest_type = DigestType::from(digest_type);
        if !matches!(digest_type, DigestType::SHA256 | DigestType::SHA384) {
            return Err(format!(
                "digest type {} is not SHA-256 (2) or SHA-384 (4)",
                fields[2]
            ));
        }
        let digest = hex::decode(fields[3..].concat()).map_err(|e| format!("digest: {e}"))?;
        Ok((
            owner,
            DS::new(key_tag, Algorithm::from_u8(algorithm), digest_type, digest),
        ))
    })())
}
