//! The address guard: the HTTP side is not a way into the gateway host or the networks behind
//! it. Every onward connection (proxied requests and CONNECT tunnels) is made here, to an
//! address that has been checked: names are resolved once, each resolved address is checked,
//! and only an allowed one is connected to, so a name that resolves differently the second
//! time (DNS rebinding) gains nothing. The peer address of the connected socket is checked
//! again before any byte is sent.
//!
//! Refused, with the rule named in the 403: loopback, unspecified (0.0.0.0 reaches the host
//! itself), link-local, private (RFC 1918, shared CGNAT space, IPv6 ULA and site-local),
//! other special-purpose ranges (documentation, benchmarking, multicast, reserved, Teredo and
//! 6to4 or NAT64 forms of a refused IPv4 address), and the gateway's own listeners. IPv4-mapped
//! IPv6 addresses are judged as the IPv4 address they are.
//!
//! Exceptions are named, never implied: a `[[http.route]]` upstream is reached wherever the
//! operator pointed it (its own client, see `upstream`), and an `[[http.address_range]]` opens
//! the special addresses it lies within (`10.20.0.0/16` opens those private addresses;
//! `0.0.0.0/0` names no special range and opens nothing). The gateway's own listeners are
//! never reachable through the proxy.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::rt::TokioIo;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use tokio::net::TcpStream;

use crate::address::canonical_ip;
use crate::service::gateway::{Gateway, OwnListeners};

/// An address the proxy refuses to connect to, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host} resolves to {addr}, {what} ({block}); markgate does not forward to the gateway host or private networks unless an [[http.route]] or [[http.address_range]] names them; nothing was forwarded")]
pub struct AddressRefused {
    /// The rule named in the refusal, e.g. `address-loopback`.
    pub rule: &'static str,
    /// The host as the request named it.
    pub host: String,
    /// The address that was refused.
    pub addr: SocketAddr,
    /// What kind of address it is, in words.
    pub what: &'static str,
    /// The special range it lies in.
    pub block: IpNet,
}

/// Why an onward connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Refused(#[from] AddressRefused),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host} has no address")]
    NoAddress { host: String },
    #[error("connect to {addr} timed out after {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A special-purpose address block and the rule that refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Special {
    pub rule: &'static str,
    pub what: &'static str,
    pub block: IpNet,
}

pub const RULE_LOOPBACK: &str = "address-loopback";
pub const RULE_UNSPECIFIED: &str = "address-unspecified";
pub const RULE_LINK_LOCAL: &str = "address-link-local";
pub const RULE_PRIVATE: &str = "address-private";
pub const RULE_RESERVED: &str = "address-reserved";
pub const RULE_OWN_LISTENER: &str = "address-gateway-listener";

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> IpNet {
    match Ipv4Net::new(Ipv4Addr::new(a, b, c, d), len) {
        Ok(net) => IpNet::V4(net),
        Err(_) => panic!("bad IPv4 block"),
    }
}

const fn v6(segments: [u16; 8], len: u8) -> IpNet {
    let [a, b, c, d, e, f, g, h] = segments;
    match Ipv6Net::new(Ipv6Addr::new(a, b, c, d, e, f, g, h), len) {
        Ok(net) => IpNet::V6(net),
        Err(_) => panic!("bad IPv6 block"),
    }
}

const fn entry(rule: &'static str, what: &'static str, block: IpNet) -> Special {
    Special { rule, what, block }
}

/// IPv4 special-purpose blocks (IANA registry, RFC 6890 and successors), most specific first
/// where they nest.
const SPECIAL_V4: [Special; 17] = [
    entry(
        RULE_UNSPECIFIED,
        "the unspecified address, which reaches this host",
        v4(0, 0, 0, 0, 32),
    ),
    entry(
        RULE_UNSPECIFIED,
        "a \"this network\" address",
        v4(0, 0, 0, 0, 8),
    ),
    entry(RULE_LOOPBACK, "a loopback address", v4(127, 0, 0, 0, 8)),
    entry(
        RULE_LINK_LOCAL,
        "a link-local address",
        v4(169, 254, 0, 0, 16),
    ),
    entry(RULE_PRIVATE, "a private address", v4(10, 0, 0, 0, 8)),
    entry(RULE_PRIVATE, "a private address", v4(172, 16, 0, 0, 12)),
    entry(RULE_PRIVATE, "a private address", v4(192, 168, 0, 0, 16)),
    entry(
        RULE_PRIVATE,
        "a shared (carrier-grade NAT) address",
        v4(100, 64, 0, 0, 10),
    ),
    entry(
        RULE_RESERVED,
        "an IETF protocol assignment",
        v4(192, 0, 0, 0, 24),
    ),
    entry(
        RULE_RESERVED,
        "a documentation address",
        v4(192, 0, 2, 0, 24),
    ),
    entry(
        RULE_RESERVED,
        "a 6to4 relay anycast address",
        v4(192, 88, 99, 0, 24),
    ),
    entry(
        RULE_RESERVED,
        "a benchmarking address",
        v4(198, 18, 0, 0, 15),
    ),
    entry(
        RULE_RESERVED,
        "a documentation address",
        v4(198, 51, 100, 0, 24),
    ),
    entry(
        RULE_RESERVED,
        "a documentation address",
        v4(203, 0, 113, 0, 24),
    ),
    entry(RULE_RESERVED, "a multicast address", v4(224, 0, 0, 0, 4)),
    entry(
        RULE_RESERVED,
        "the broadcast address",
        v4(255, 255, 255, 255, 32),
    ),
    entry(RULE_RESERVED, "a reserved address", v4(240, 0, 0, 0, 4)),
];

/// IPv6 special-purpose blocks; IPv4-mapped, NAT64 and 6to4 addresses are handled before
/// these (see [`special`]).
const SPECIAL_V6: [Special; 13] = [
    entry(
        RULE_UNSPECIFIED,
        "the unspecified address, which reaches this host",
        v6([0; 8], 128),
    ),
    entry(
        RULE_LOOPBACK,
        "the loopback address",
        v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
    ),
    entry(
        RULE_RESERVED,
        "an IPv4-compatible address (deprecated)",
        v6([0; 8], 96),
    ),
    entry(
        RULE_PRIVATE,
        "a local-use NAT64 address",
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
    ),
    entry(
        RULE_RESERVED,
        "a discard-only address",
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
    ),
    entry(
        RULE_RESERVED,
        "a documentation address",
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    ),
    entry(
        RULE_RESERVED,
        "an IETF protocol assignment (Teredo and others)",
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
    ),
    entry(
        RULE_RESERVED,
        "a documentation address",
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
    ),
    entry(
        RULE_RESERVED,
        "a segment-routing address",
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
    ),
    entry(
        RULE_PRIVATE,
        "a unique local address",
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    ),
    entry(
        RULE_LINK_LOCAL,
        "a link-local address",
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
    ),
    entry(
        RULE_PRIVATE,
        "a site-local address (deprecated)",
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
    ),
    entry(
        RULE_RESERVED,
        "a multicast address",
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
    ),
];

const NAT64: IpNet = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
const SIX_TO_FOUR: IpNet = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

/// The special-purpose block `ip` lies in, if any (`None`: a global address).
pub fn special(ip: IpAddr) -> Option<Special> {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => SPECIAL_V4
            .iter()
            .find(|s| s.block.contains(&IpAddr::V4(v4)))
            .copied(),
        IpAddr::V6(v6) => {
            let ip = IpAddr::V6(v6);
            // NAT64 and 6to4 carry an IPv4 address: refused when that address is.
            let embedded = if NAT64.contains(&ip) {
                let o = v6.octets();
                Some((NAT64, Ipv4Addr::new(o[12], o[13], o[14], o[15])))
            } else if SIX_TO_FOUR.contains(&ip) {
                let o = v6.octets();
                Some((SIX_TO_FOUR, Ipv4Addr::new(o[2], o[3], o[4], o[5])))
            } else {
                None
            };
            if let Some((block, inner)) = embedded {
                return special(IpAddr::V4(inner)).map(|s| Special {
                    rule: s.rule,
                    what: s.what,
                    block,
                });
            }
            SPECIAL_V6.iter().find(|s| s.block.contains(&ip)).copied()
        }
    }
}

/// The checks for one kind of onward connection.
#[derive(Clone)]
pub struct AddressGuard {
    /// `[[http.address_range]]` CIDRs: each opens the special addresses it lies within.
    ranges: Arc<Vec<IpNet>>,
    own: Arc<OwnListeners>,
    /// A route's client: its upstream is named by the operator, so only the gateway's own
    /// listeners are refused.
    route: bool,
    connect_timeout: Duration,
}

impl AddressGuard {
    /// The guard for requests to hosts the client named (absolute-form, CONNECT).
    pub fn new(gateway: &Gateway, ranges: Vec<IpNet>) -> AddressGuard {
        AddressGuard {
            ranges: Arc::new(ranges),
            own: gateway.own_listeners(),
            route: false,
            connect_timeout: gateway.config.http.connect_timeout,
        }
    }

    /// The same checks for a configured route's upstream.
    pub fn for_routes(&self) -> AddressGuard {
        AddressGuard {
            route: true,
            ..self.clone()
        }
    }

    /// Refuse `addr` (for a request that named `host`) unless it may be reached.
    pub fn check(&self, host: &str, addr: SocketAddr) -> Result<(), AddressRefused> {
        let refuse = |rule, what, block| AddressRefused {
            rule,
            host: host.to_string(),
            addr,
            what,
            block,
        };
        if self.own.contains(addr) {
            let block = IpNet::from(canonical_ip(addr.ip()));
            return Err(refuse(
                RULE_OWN_LISTENER,
                "one of the gateway's own listeners",
                block,
            ));
        }
        if self.route {
            return Ok(());
        }
        let Some(special) = special(addr.ip()) else {
            return Ok(());
        };
        let ip = canonical_ip(addr.ip());
        let named = self.ranges.iter().any(|range| {
            range.contains(&ip)
                && range.prefix_len() >= special.block.prefix_len()
                && special.block.contains(range)
        });
        if named {
            return Ok(());
        }
        Err(refuse(special.rule, special.what, special.block))
    }

    /// Resolve `host` (an IP literal or a name, through the system resolver: /etc/hosts,
    /// DNS) and keep the addresses that may be reached; refused when none may.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let resolved: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|source| ConnectError::Resolve {
                    host: host.to_string(),
                    source,
                })?
                .collect(),
        };
        let mut allowed = Vec::with_capacity(resolved.len());
        let mut first_refusal = None;
        for addr in resolved {
            match self.check(host, addr) {
                Ok(()) => allowed.push(addr),
                Err(refused) => {
                    first_refusal.get_or_insert(refused);
                }
            }
        }
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(refused)) => Err(refused.into()),
            (true, None) => Err(ConnectError::NoAddress {
                host: host.to_string(),
            }),
        }
    }

    /// Connect to `host:port`: resolve, check, connect to the first allowed address that
    /// answers, and check the connected peer again.
    pub async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, ConnectError> {
        let mut last = None;
        for addr in self.resolve(host, port).await? {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Err(_) => {
                    last = Some(ConnectError::Timeout {
                        addr,
                        timeout: self.connect_timeout,
                    })
                }
                Ok(Err(source)) => last = Some(ConnectError::Connect { addr, source }),
                Ok(Ok(stream)) => {
                    let peer = stream
                        .peer_addr()
                        .map_err(|source| ConnectError::Connect { addr, source })?;
                    self.check(host, peer)?;
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
            }
        }
        Err(last.unwrap_or(ConnectError::NoAddress {
            host: host.to_string(),
        }))
    }
}

/// The guarded TCP connector under the upstream clients' TLS layer.
#[derive(Clone)]
pub struct GuardedConnector {
    pub guard: AddressGuard,
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default();
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            guard.connect(host, port).await.map(TokioIo::new)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rule(s: &str) -> Option<&'static str> {
        special(ip(s)).map(|s| s.rule)
    }

    #[test]
    fn special_addresses_are_named() {
        for (addr, expected) in [
            ("127.0.0.1", Some(RULE_LOOPBACK)),
            ("127.255.1.2", Some(RULE_LOOPBACK)),
            ("::1", Some(RULE_LOOPBACK)),
            ("::ffff:127.0.0.1", Some(RULE_LOOPBACK)),
            ("::ffff:7f00:1", Some(RULE_LOOPBACK)),
            ("0.0.0.0", Some(RULE_UNSPECIFIED)),
            ("0.1.2.3", Some(RULE_UNSPECIFIED)),
            ("::", Some(RULE_UNSPECIFIED)),
            ("169.254.169.254", Some(RULE_LINK_LOCAL)),
            ("fe80::1", Some(RULE_LINK_LOCAL)),
            ("10.1.2.3", Some(RULE_PRIVATE)),
            ("172.31.255.255", Some(RULE_PRIVATE)),
            ("192.168.0.1", Some(RULE_PRIVATE)),
            ("100.64.0.1", Some(RULE_PRIVATE)),
            ("100.127.255.254", Some(RULE_PRIVATE)),
            ("fd00::1", Some(RULE_PRIVATE)),
            ("fc00::1", Some(RULE_PRIVATE)),
            ("fec0::1", Some(RULE_PRIVATE)),
            ("::ffff:10.0.0.1", Some(RULE_PRIVATE)),
            ("64:ff9b::7f00:1", Some(RULE_LOOPBACK)),
            ("64:ff9b::a00:1", Some(RULE_PRIVATE)),
            ("2002:7f00:1::", Some(RULE_LOOPBACK)),
            ("2002:a9fe:a9fe::1", Some(RULE_LINK_LOCAL)),
            ("::127.0.0.1", Some(RULE_RESERVED)),
            ("224.0.0.1", Some(RULE_RESERVED)),
            ("255.255.255.255", Some(RULE_RESERVED)),
            ("240.0.0.1", Some(RULE_RESERVED)),
            ("198.18.0.1", Some(RULE_RESERVED)),
            ("192.0.2.1", Some(RULE_RESERVED)),
            ("2001:db8::1", Some(RULE_RESERVED)),
            ("2001::1", Some(RULE_RESERVED)),
            ("ff02::1", Some(RULE_RESERVED)),
            // Global addresses pass.
            ("8.8.8.8", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("192.169.0.1", None),
            ("2a00:1450::1", None),
            ("64:ff9b::808:808", None),
            ("2002:808:808::1", None),
            ("::ffff:8.8.8.8", None),
        ] {
            assert_eq!(rule(addr), expected, "{addr}");
        }
    }

    /// Every IPv4 address in a special block, and only those, is refused: checked at every
    /// block's edges and exhaustively over a sample across the whole space.
    #[test]
    fn ipv4_blocks_have_exact_edges() {
        let std_special = |a: Ipv4Addr| {
            let [x, y, ..] = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_documentation()
                || x == 0
                || x >= 240
                || (x == 100 && (64..128).contains(&y))
                || (x == 198 && (18..20).contains(&y))
                || (x == 192 && y == 0 && a.octets()[2] == 0)
                || (x == 192 && y == 88 && a.octets()[2] == 99)
        };
        let mut n: u32 = 0;
        while let Some(next) = n.checked_add(65_521) {
            for a in [n, n.wrapping_add(255), n | 0xff] {
                let addr = Ipv4Addr::from(a);
                assert_eq!(
                    special(IpAddr::V4(addr)).is_some(),
                    std_special(addr),
                    "{addr}"
                );
            }
            n = next;
        }
        for s in SPECIAL_V4 {
            let IpNet::V4(net) = s.block else {
                unreachable!()
            };
            for inside in [net.network(), net.broadcast()] {
                assert!(special(IpAddr::V4(inside)).is_some(), "{inside}");
            }
        }
    }

    fn guard(ranges: &[&str]) -> AddressGuard {
        AddressGuard {
            ranges: Arc::new(ranges.iter().map(|r| r.parse().unwrap()).collect()),
            own: Arc::new(OwnListeners::default()),
            route: false,
            connect_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn only_ranges_within_a_special_block_open_it() {
        let at = |s: &str| SocketAddr::new(ip(s), 80);
        let g = guard(&["10.20.0.0/16", "127.0.0.1/32", "0.0.0.0/0", "::/0"]);
        assert!(g.check("h", at("10.20.1.1")).is_ok());
        assert_eq!(
            g.check("h", at("10.21.1.1")).unwrap_err().rule,
            RULE_PRIVATE
        );
        assert!(g.check("h", at("127.0.0.1")).is_ok());
        assert!(g.check("h", at("::ffff:127.0.0.1")).is_ok());
        assert_eq!(
            g.check("h", at("127.0.0.2")).unwrap_err().rule,
            RULE_LOOPBACK
        );
        // A catch-all range names no special block.
        assert_eq!(
            g.check("h", at("169.254.169.254")).unwrap_err().rule,
            RULE_LINK_LOCAL
        );
        assert_eq!(g.check("h", at("::1")).unwrap_err().rule, RULE_LOOPBACK);
        assert!(g.check("h", at("8.8.8.8")).is_ok());
    }

    #[test]
    fn own_listeners_are_refused_even_for_routes() {
        let g = guard(&["127.0.0.0/8"]);
        g.own.add("127.0.0.1:9090".parse().unwrap());
        g.own.add("0.0.0.0:2525".parse().unwrap());
        let routes = g.for_routes();
        for g in [&g, &routes] {
            let refused = g.check("h", "127.0.0.1:9090".parse().unwrap()).unwrap_err();
            assert_eq!(refused.rule, RULE_OWN_LISTENER);
            assert!(g
                .check("h", "[::ffff:127.0.0.1]:9090".parse().unwrap())
                .is_err());
            // A wildcard listener is reached on any local address.
            assert!(g.check("h", "127.0.0.7:2525".parse().unwrap()).is_err());
            assert!(g.check("h", "0.0.0.0:2525".parse().unwrap()).is_err());
            assert!(g.check("h", "127.0.0.1:9091".parse().unwrap()).is_ok());
        }
        // Routes reach what the operator named, loopback included.
        assert!(routes.check("h", "127.0.0.1:8443".parse().unwrap()).is_ok());
        assert!(routes.check("h", "[::1]:8443".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn names_are_checked_on_what_they_resolve_to() {
        let g = guard(&[]);
        let err = g.resolve("localhost", 80).await.unwrap_err();
        let ConnectError::Refused(refused) = err else {
            panic!("{err}")
        };
        assert!([RULE_LOOPBACK].contains(&refused.rule), "{refused}");
        assert!(matches!(
            g.resolve("[::1]", 80).await,
            Err(ConnectError::Refused(_))
        ));
        assert!(matches!(
            g.connect("127.0.0.1", 9).await,
            Err(ConnectError::Refused(_))
        ));
    }
}
