//! MTA-STS (RFC 8461): a domain without DNSSEC can still demand verified TLS to MX hosts it
//! names, by publishing a `_mta-sts` TXT record and a policy over HTTPS at
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
//!
//! Policies are cached for their `max_age`, in memory and in `delivery.mta_sts.cache` (one
//! JSON file per domain), so an attacker who later strips the TXT record or blocks the
//! HTTPS fetch cannot switch a known `enforce` policy off, not even across a restart. A new
//! TXT `id` makes the policy be fetched again; a fetch that fails keeps the cached one.

pub mod policy;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsConnector;

pub use policy::{Mode, Policy};

use super::dns::Dns;
use super::tls::TlsClients;

/// How long one policy fetch may take, in all (RFC 8461 §3.3 suggests a minute at most).
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// A policy as cached: with the TXT id it was fetched under and when it expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    id: String,
    policy: Policy,
    /// Unix seconds.
    expires: i64,
}

pub struct MtaSts {
    dns: Arc<Dns>,
    tls: Arc<rustls::ClientConfig>,
    port: u16,
    dir: PathBuf,
    cache: Mutex<HashMap<String, Cached>>,
}

impl MtaSts {
    pub fn new(dns: Arc<Dns>, tls: &TlsClients, port: u16, dir: PathBuf) -> MtaSts {
        let mut config = (*tls.pkix()).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        MtaSts {
            dns,
            tls: Arc::new(config),
            port,
            dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The policy in force for `domain`, if any (`testing` and `none` policies are returned
    /// too; only `enforce` changes delivery).
    pub async fn policy(&self, domain: &str) -> Option<Policy> {
        let domain = domain.to_ascii_lowercase();
        let now = chrono::Utc::now().timestamp();
        let cached = self.cached(&domain).filter(|c| c.expires > now);
        let id = match self.dns.txt(&format!("_mta-sts.{domain}")).await {
            Ok(answer) => policy::txt_id(&answer.records),
            Err(e) => {
                tracing::warn!(domain, error = %e, "MTA-STS TXT lookup failed; using any cached policy");
                return cached.map(|c| c.policy);
            }
        };
        let Some(id) = id else {
            // no (valid) TXT record: a cached policy stays in force until it expires
            return cached.map(|c| c.policy);
        };
        if let Some(c) = &cached {
            if c.id == id {
                return Some(c.policy.clone());
            }
        }
        match self.fetch(&domain).await {
            Ok(policy) => {
                let entry = Cached {
                    id,
                    expires: now + policy.max_age as i64,
                    policy: policy.clone(),
                };
                self.store(&domain, entry);
                Some(policy)
            }
            Err(e) => {
                tracing::warn!(domain, error = %e, "MTA-STS policy fetch failed");
                cached.map(|c| c.policy)
            }
        }
    }

    fn cache_file(&self, domain: &str) -> PathBuf {
        let safe: String = domain
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{safe}.json"))
    }

    fn cached(&self, domain: &str) -> Option<Cached> {
        if let Some(c) = self.cache.lock().expect("mta-sts cache").get(domain) {
            return Some(c.clone());
        }
        let bytes = std::fs::read(self.cache_file(domain)).ok()?;
        let c: Cached = serde_json::from_slice(&bytes).ok()?;
        self.cache
            .lock()
            .expect("mta-sts cache")
            .insert(domain.to_string(), c.clone());
        Some(c)
    }

    fn store(&self, domain: &str, entry: Cached) {
        let path = self.cache_file(domain);
        let written = std::fs::create_dir_all(&self.dir).and_then(|_| {
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(&entry).expect("policy serialises"))?;
            std::fs::rename(tmp, &path)
        });
        if let Err(e) = written {
            tracing::warn!(domain, file = %path.display(), error = %e, "cannot keep the MTA-STS policy on disk");
        }
        self.cache
            .lock()
            .expect("mta-sts cache")
            .insert(domain.to_string(), entry);
    }

    /// GET the policy over HTTPS, the certificate verified for `mta-sts.<domain>`.
    async fn fetch(&self, domain: &str) -> Result<Policy, String> {
        tokio::time::timeout(FETCH_TIMEOUT, self.fetch_inner(domain))
            .await
            .map_err(|_| format!("no policy within {FETCH_TIMEOUT:?}"))?
    }

    async fn fetch_inner(&self, domain: &str) -> Result<Policy, String> {
        let host = format!("mta-sts.{domain}");
        let addrs = self.dns.addresses(&host).await.map_err(|e| e.to_string())?;
        let ip = *addrs
            .records
            .first()
            .ok_or_else(|| format!("{host} has no address"))?;
        let tcp = tokio::net::TcpStream::connect((ip, self.port))
            .await
            .map_err(|e| format!("{host} ({ip}:{}): {e}", self.port))?;
        let name = super::tls::server_name(&host)?;
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{host}: TLS: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("{host}: {e}"))?;
        let driver = tokio::spawn(conn);
        let request = hyper::Request::get("/.well-known/mta-sts.txt")
            .header(hyper::header::HOST, &host)
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{host}: {e}"))?;
        if response.status() != hyper::StatusCode::OK {
            driver.abort();
            return Err(format!("{host} answered {}", response.status()));
        }
        let body = Limited::new(response.into_body(), policy::MAX_POLICY_BYTES)
            .collect()
            .await
            .map_err(|e| format!("{host}: policy body: {e}"))?
            .to_bytes();
        driver.abort();
        let text =
            std::str::from_utf8(&body).map_err(|_| format!("{host}: policy is not UTF-8"))?;
        Policy::parse(text).map_err(|e| format!("{host}: {e}"))
    }
}
